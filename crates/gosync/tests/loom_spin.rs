//! loom models of the spin lock: mutual exclusion and the unlock → lock happens-before edge
//! (loom reports a data race on the protected cell if either is missing), for the raw form,
//! the guard form and `try_lock`. (Checked to fail when the release store is made relaxed, and
//! when the contended path takes the lock with an unconditional swap instead of a CAS.) Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gosync --release --test loom_spin`.
#![cfg(loom)]

use gosync::spin::{RawSpinLock, SpinLock};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// A raw lock and a counter it guards.
struct Guarded {
    lock: RawSpinLock,
    value: UnsafeCell<usize>,
}

// SAFETY: `value` is touched only with `lock` held; loom checks exactly that.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new() -> Arc<Self> {
        Arc::new(Guarded {
            lock: RawSpinLock::new(),
            value: UnsafeCell::new(0),
        })
    }

    /// Call with the lock held.
    fn incr(&self) {
        // SAFETY: the lock is held (loom checks it).
        self.value.with_mut(|p| unsafe { *p += 1 });
    }

    /// Call with the lock held, or after every other thread has joined.
    fn get(&self) -> usize {
        // SAFETY: as above.
        self.value.with(|p| unsafe { *p })
    }
}

/// Two threads lock, increment (read then write: two accesses), and unlock.
#[test]
fn raw_two_threads() {
    loom::model(|| {
        let g = Guarded::new();
        let other = {
            let g = g.clone();
            thread::spawn(move || {
                g.lock.lock();
                g.incr();
                g.lock.unlock();
            })
        };
        g.lock.lock();
        g.incr();
        g.lock.unlock();
        other.join().unwrap();
        assert_eq!(g.get(), 2);
        assert!(!g.lock.is_locked());
    });
}

/// Two threads entering twice each: the interleavings where a spinner sees the lock free
/// and the holder takes it again before the spinner's swap (what test-and-test-and-set must
/// survive) need a second entry.
#[test]
fn raw_two_threads_twice() {
    loom::model(|| {
        let g = Guarded::new();
        let other = {
            let g = g.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    g.lock.lock();
                    g.incr();
                    g.lock.unlock();
                }
            })
        };
        for _ in 0..2 {
            g.lock.lock();
            g.incr();
            g.lock.unlock();
        }
        other.join().unwrap();
        assert_eq!(g.get(), 4);
    });
}

/// `try_lock` racing `lock`: a successful try excludes the other holder; a failed one
/// touches nothing. Afterwards the count matches the successful entries.
#[test]
fn try_lock_races_lock() {
    loom::model(|| {
        let g = Guarded::new();
        let other = {
            let g = g.clone();
            thread::spawn(move || {
                if g.lock.try_lock() {
                    g.incr();
                    g.lock.unlock();
                    1
                } else {
                    0
                }
            })
        };
        g.lock.lock();
        g.incr();
        g.lock.unlock();
        let tried = other.join().unwrap();
        assert_eq!(g.get(), 1 + tried);
    });
}

/// The guard form: the guard's `Deref`/`DerefMut` record their accesses inside the critical
/// section, so overlapping holders would show as a race on the lock's own cell.
#[test]
fn guards_two_threads() {
    loom::model(|| {
        let lock = Arc::new(SpinLock::new(0usize));
        let other = {
            let lock = lock.clone();
            thread::spawn(move || {
                *lock.lock() += 1;
            })
        };
        {
            let mut g = lock.lock();
            *g += 1;
        }
        other.join().unwrap();
        assert_eq!(*lock.lock(), 2);
    });
}

/// Three threads, one entry each, with one preemption: spinners that yield to each other
/// make the unbounded three-thread space too large for loom (it runs out of branches); the
/// two-thread models above are exhaustive.
#[test]
fn raw_three_threads_bounded() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(1);
    b.max_branches = 20_000;
    b.check(|| {
        let g = Guarded::new();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || {
                    g.lock.lock();
                    g.incr();
                    g.lock.unlock();
                })
            })
            .collect();
        g.lock.lock();
        g.incr();
        g.lock.unlock();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(g.get(), 3);
    });
}
