//! loom models of a `RawRwMutex` writer future that gives up after it announced itself:
//!
//! * a reader meets the pending writer and backs off (takes its increment back, which wakes
//!   the writer when it was the last count) while the writer's `lock_async` future is dropped
//!   and withdraws — for a thread reader (`rlock`) and a task reader (`rlock_async`);
//! * the writer future is dropped after the last reader handed it the lock, while a reader and
//!   another writer wait behind it: the drop must unlock as a writer and let both in.
//!
//! Every model ends with the lock fully free (`try_lock` succeeds, no reader counted, no writer
//! pending, no waiter queued); loom reports a deadlock if a waiter is left parked, and a data
//! race on the guarded cell — written under the write lock, read under a read lock — if the
//! lock's happens-before edges are missing. Run with:
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gosync --release --test
//! loom_rwmutex`
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use gosync::sync::RawRwMutex;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Runs `f` under loom with a preemption bound; prints how many interleavings were explored
/// (see `--nocapture`).
fn check(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    b.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
}

/// A counter written under the write lock and read under read locks.
struct Guarded {
    rw: RawRwMutex,
    v: UnsafeCell<usize>,
}

// SAFETY: `v` is written under the write lock and read under a read lock (or after every other
// thread has joined); loom checks that these accesses never race.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new() -> Arc<Self> {
        Arc::new(Guarded {
            rw: RawRwMutex::new(),
            v: UnsafeCell::new(0),
        })
    }

    /// Call with a read lock (or the write lock) held.
    fn get(&self) -> usize {
        // SAFETY: a lock is held.
        self.v.with(|p| unsafe { *p })
    }

    /// Call with the write lock held.
    fn incr(&self) {
        // SAFETY: the write lock is held.
        self.v.with_mut(|p| unsafe { *p += 1 });
    }

    /// A blocking reader: rlock, read, runlock.
    fn read(&self) -> usize {
        self.rw.rlock();
        let v = self.get();
        self.rw.runlock();
        v
    }

    /// A blocking writer: lock, increment, unlock.
    fn write(&self) {
        self.rw.lock();
        self.incr();
        self.rw.unlock();
    }

    /// An async reader, driven by loom's `block_on`.
    fn read_async(&self) -> usize {
        loom::future::block_on(async {
            self.rw.rlock_async().await;
            let v = self.get();
            self.rw.runlock();
            v
        })
    }

    /// Everyone has left: the lock is fully free, and the counter reads `expected`.
    fn assert_free(&self, expected: usize) {
        assert_eq!(
            self.rw.reader_count(),
            0,
            "a reader is still counted: {:?}",
            self.rw
        );
        assert!(
            !self.rw.is_writer_pending(),
            "a writer is still pending: {:?}",
            self.rw
        );
        assert!(
            !self.rw.is_locked(),
            "the write lock is still held: {:?}",
            self.rw
        );
        assert_eq!(
            self.rw.waiters(),
            0,
            "a waiter is still queued: {:?}",
            self.rw
        );
        assert!(self.rw.try_lock(), "the lock is not free: {:?}", self.rw);
        assert_eq!(self.get(), expected);
        self.rw.unlock();
        assert!(self.rw.try_rlock(), "readers are shut out: {:?}", self.rw);
        self.rw.runlock();
    }
}

/// Main holds a read lock; a writer future announces itself and queues. Then, at once: main
/// drops the writer future (it withdraws), a leaver thread releases main's read lock, and a
/// reader (thread or task) arrives, meets `WRITER` and backs off — its back-off may be the
/// count that reaches zero, and so hand the lock to the writer that is withdrawing. Main then
/// writes with a blocking `lock` while the reader may still be reading, or still on its way
/// in (its back-off may then be the last count this second writer waits for, and must wake
/// it).
fn backoff_races_withdrawal(async_reader: bool) {
    let g = Guarded::new();
    g.rw.rlock();
    let mut w = Box::pin(g.rw.lock_async());
    assert!(poll_once(w.as_mut()).is_pending());
    assert!(g.rw.is_writer_pending());
    assert_eq!(g.rw.reader_count(), 1);

    let leaver = {
        let g = g.clone();
        thread::spawn(move || g.rw.runlock())
    };
    let reader = {
        let g = g.clone();
        thread::spawn(move || {
            if async_reader {
                g.read_async()
            } else {
                g.read()
            }
        })
    };
    drop(w);
    // The withdrawn writer left `w` free: a new writer gets in, racing the reader.
    g.write();
    leaver.join().unwrap();
    let seen = reader.join().unwrap();
    assert!(seen <= 1, "the reader saw {seen} writes");
    g.assert_free(1);
}

#[test]
fn thread_reader_backoff_races_writer_withdrawal() {
    check(3, || backoff_races_withdrawal(false));
}

#[test]
fn task_reader_backoff_races_writer_withdrawal() {
    check(2, || backoff_races_withdrawal(true));
}

/// As above with no later writer, so loom can explore more preemptions: the reader that
/// backs off must get in whether the writer withdrew before or after it was handed the lock.
fn backoff_races_withdrawal_small(async_reader: bool) {
    let g = Guarded::new();
    g.rw.rlock();
    let mut w = Box::pin(g.rw.lock_async());
    assert!(poll_once(w.as_mut()).is_pending());
    let leaver = {
        let g = g.clone();
        thread::spawn(move || g.rw.runlock())
    };
    let reader = {
        let g = g.clone();
        thread::spawn(move || {
            if async_reader {
                g.read_async()
            } else {
                g.read()
            }
        })
    };
    drop(w);
    leaver.join().unwrap();
    assert_eq!(reader.join().unwrap(), 0, "a withdrawn writer wrote");
    g.assert_free(0);
}

#[test]
fn thread_reader_backoff_races_writer_withdrawal_deep() {
    check(4, || backoff_races_withdrawal_small(false));
}

#[test]
fn task_reader_backoff_races_writer_withdrawal_deep() {
    check(4, || backoff_races_withdrawal_small(true));
}

/// Main holds a read lock and a writer future queues behind it; main's `runlock`, the last
/// one, hands the write lock to the queued writer (deterministically: nobody else runs yet).
/// Then a reader thread and a writer thread arrive and wait, while main drops the writer
/// future without polling it: the drop must unlock as a writer — grant the reader, release
/// the writers' mutex to the writer thread — and the write must not race the read.
fn dropped_after_handoff(async_reader: bool) {
    let g = Guarded::new();
    g.rw.rlock();
    let mut w = Box::pin(g.rw.lock_async());
    assert!(poll_once(w.as_mut()).is_pending());
    g.rw.runlock();
    assert!(
        g.rw.is_locked() && !g.rw.is_writer_pending(),
        "the last reader did not hand the lock to the queued writer: {:?}",
        g.rw
    );
    assert!(
        !g.rw.try_rlock(),
        "a reader got in past a writer holding the lock"
    );

    let reader = {
        let g = g.clone();
        thread::spawn(move || {
            if async_reader {
                g.read_async()
            } else {
                g.read()
            }
        })
    };
    let writer = {
        let g = g.clone();
        thread::spawn(move || g.write())
    };
    drop(w);
    writer.join().unwrap();
    let seen = reader.join().unwrap();
    assert!(seen <= 1, "the reader saw {seen} writes");
    g.assert_free(1);
}

#[test]
fn thread_reader_waits_on_writer_dropped_after_handoff() {
    check(4, || dropped_after_handoff(false));
}

#[test]
fn task_reader_waits_on_writer_dropped_after_handoff() {
    check(3, || dropped_after_handoff(true));
}

/// The writer future is dropped after the hand-off while a reader *future* waits behind it
/// (polled on its own thread, which tells main once it is certainly in the readers' queue)
/// and a writer thread waits for the writers' mutex: the drop must grant the queued reader
/// the read lock *before* it lets the next writer in, and wake it.
#[test]
fn queued_reader_future_granted_by_writer_dropped_after_handoff() {
    check(3, || {
        let g = Guarded::new();
        g.rw.rlock();
        let mut w = Box::pin(g.rw.lock_async());
        assert!(poll_once(w.as_mut()).is_pending());
        g.rw.runlock();
        assert!(g.rw.is_locked());
        let queued = Arc::new(AtomicBool::new(false));
        let reader = {
            let (g, queued) = (g.clone(), queued.clone());
            thread::spawn(move || {
                let mut r = Box::pin(g.rw.rlock_async());
                assert!(poll_once(r.as_mut()).is_pending());
                queued.store(true, Ordering::Release);
                // A real waker from here on: a lost wake-up leaves this thread parked.
                loom::future::block_on(r);
                let seen = g.get();
                g.rw.runlock();
                seen
            })
        };
        let writer = {
            let g = g.clone();
            thread::spawn(move || g.write())
        };
        while !queued.load(Ordering::Acquire) {
            thread::yield_now();
        }
        drop(w);
        writer.join().unwrap();
        // The queued reader was granted before the writers' mutex was released.
        assert_eq!(
            reader.join().unwrap(),
            0,
            "the next writer overtook a granted reader"
        );
        g.assert_free(1);
    });
}
