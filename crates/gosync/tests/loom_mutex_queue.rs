//! loom models of a `RawMutex` with several queued waiters, threads and tasks mixed, whose
//! head is an async `lock_async` future that gives up after `unlock` chose it:
//!
//! * in starvation (hand-off) mode, the head future is dropped after `unlock` handed it the
//!   lock: the drop must pass the lock on to the next waiter;
//! * in normal mode, the head future is dropped after `unlock` woke it to compete (`RETRY`):
//!   the drop must wake the next waiter in its place, while a newcomer may barge;
//! * a task whose waker changes between two polls while an `unlock` on another thread races
//!   the second poll: the wake-up reaches the new waker, or the second poll completes.
//!
//! After every model the mutex must be free, with no `WOKEN` bit, no starvation mode and no
//! queued waiter; loom reports a deadlock if a waiter is left parked, and a data race if the
//! lock's happens-before edges are missing.
//!
//! The flag `__loom_force_starvation` is process-wide, so the models in this binary take a
//! lock to run one at a time. Run with:
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gosync --release --test
//! loom_mutex_queue`
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use gosync::sync::RawMutex;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Serializes the models: the starvation flag is shared by the whole process.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` under loom with the starvation flag set to `starving` and a preemption bound.
/// Prints how many interleavings were explored (see `--nocapture`).
fn check(starving: bool, bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    gosync::__loom_force_starvation(starving);
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    b.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    gosync::__loom_force_starvation(false);
    eprintln!(
        "{} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
}

/// Polls `f` once with `waker`.
fn poll_with<F: Future>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

/// A waker that counts its wake-ups in a loom atomic.
struct Count(AtomicUsize);

impl Count {
    fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Count(AtomicUsize::new(0)))
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for Count {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A counter guarded by the mutex.
struct Guarded {
    m: RawMutex,
    v: UnsafeCell<usize>,
}

// SAFETY: `v` is only touched with `m` held (or after every other thread has joined); loom
// checks exactly that.
unsafe impl Sync for Guarded {}

/// A thread that locks, increments and unlocks.
fn spawn_incr(g: &Arc<Guarded>) -> thread::JoinHandle<()> {
    let g = g.clone();
    thread::spawn(move || {
        g.m.lock();
        g.incr();
        g.m.unlock();
    })
}

impl Guarded {
    fn new() -> Arc<Self> {
        Arc::new(Guarded {
            m: RawMutex::new(),
            v: UnsafeCell::new(0),
        })
    }

    /// Call with the mutex held.
    fn incr(&self) {
        // SAFETY: the mutex is held.
        self.v.with_mut(|p| unsafe { *p += 1 });
    }

    /// Call with the mutex held.
    fn value(&self) -> usize {
        // SAFETY: the mutex is held.
        self.v.with(|p| unsafe { *p })
    }

    /// Spins (yielding to loom) until `n` waiters are queued.
    fn wait_for_waiters(&self, n: usize) {
        while self.m.waiters() < n {
            thread::yield_now();
        }
    }

    /// Everyone has left: the mutex is free and clean, and the counter reads `expected`.
    fn assert_free(&self, expected: usize) {
        assert!(!self.m.is_locked(), "the mutex ended locked: {:?}", self.m);
        assert!(
            !self.m.is_woken(),
            "a WOKEN bit was left behind: {:?}",
            self.m
        );
        assert!(
            !self.m.is_starving(),
            "starvation mode was left on: {:?}",
            self.m
        );
        assert_eq!(
            self.m.waiters(),
            0,
            "a waiter was left queued: {:?}",
            self.m
        );
        assert!(self.m.try_lock(), "the mutex is not free: {:?}", self.m);
        assert_eq!(self.value(), expected);
        self.m.unlock();
    }
}

/// Hand-off mode. The queue is [task f1, thread T, task f2]; `unlock` hands the lock to f1,
/// whose future is then dropped without being polled, while T may still be on its way to
/// park: the drop must hand the lock to T, and T's unlock to f2.
#[test]
fn head_future_dropped_after_handoff() {
    check(true, 4, || {
        let g = Guarded::new();
        g.m.lock();
        let mut f1 = Box::pin(g.m.lock_async());
        assert!(poll_once(f1.as_mut()).is_pending());
        let t = spawn_incr(&g);
        g.wait_for_waiters(2);
        let mut f2 = Box::pin(g.m.lock_async());
        assert!(poll_once(f2.as_mut()).is_pending());
        assert_eq!(g.m.waiters(), 3);

        g.m.unlock();
        // Starving: the lock was handed to the head (f1), not released.
        assert!(g.m.is_locked(), "no hand-off to the head: {:?}", g.m);
        assert!(!g.m.try_lock(), "a barger took a lock owed to the head");
        assert_eq!(g.m.waiters(), 2);

        drop(f1);
        // T gets the lock from the drop, f2 from T's unlock.
        loom::future::block_on(f2);
        g.incr();
        g.m.unlock();
        t.join().unwrap();
        g.assert_free(2);
    });
}

/// Hand-off mode, with the unlock and the drop of the head future on different threads, and
/// a newcomer thread arriving meanwhile: whether the drop came before the unlock (f1 left the
/// queue with nothing) or after (f1 passes the lock on), T and the newcomer both get the lock.
#[test]
fn head_future_dropped_racing_handoff() {
    check(true, 3, || {
        let g = Guarded::new();
        g.m.lock();
        let mut f1 = Box::pin(g.m.lock_async());
        assert!(poll_once(f1.as_mut()).is_pending());
        let t = spawn_incr(&g);
        g.wait_for_waiters(2);
        let unlocker = {
            let g = g.clone();
            thread::spawn(move || g.m.unlock())
        };
        let newcomer = spawn_incr(&g);
        drop(f1);
        unlocker.join().unwrap();
        t.join().unwrap();
        newcomer.join().unwrap();
        g.assert_free(2);
    });
}

/// Normal mode. The queue is [task f1, thread T]; `unlock` wakes f1 to compete (`RETRY`) —
/// unless a newcomer thread, spinning meanwhile, has set `WOKEN` to say it takes the lock
/// itself — and f1's future is dropped without being polled: the drop must wake T in f1's
/// place (or, if the newcomer holds the lock by then, leave that to the newcomer's unlock).
#[test]
fn head_future_dropped_after_retry() {
    check(false, 4, || {
        let g = Guarded::new();
        g.m.lock();
        let mut f1 = Box::pin(g.m.lock_async());
        assert!(poll_once(f1.as_mut()).is_pending());
        let t = spawn_incr(&g);
        // T spun and queued: it holds no WOKEN, so the unlock must wake the head.
        g.wait_for_waiters(2);
        let newcomer = spawn_incr(&g);

        g.m.unlock();
        drop(f1);
        t.join().unwrap();
        newcomer.join().unwrap();
        g.assert_free(2);
    });
}

/// Normal mode, deterministic up to the drop: the queue is [task f1, thread T, task f2],
/// `unlock` wakes f1 (it leaves the queue, the mutex is free, nobody holds WOKEN), then f1 is
/// dropped: the RETRY must go on to T, and T's unlock must wake f2.
#[test]
fn head_future_dropped_after_retry_three_waiters() {
    check(false, 5, || {
        let g = Guarded::new();
        g.m.lock();
        let mut f1 = Box::pin(g.m.lock_async());
        assert!(poll_once(f1.as_mut()).is_pending());
        let t = spawn_incr(&g);
        g.wait_for_waiters(2);
        let a = Count::new();
        let mut f2 = Box::pin(g.m.lock_async());
        assert!(poll_with(f2.as_mut(), &Waker::from(a.clone())).is_pending());
        assert_eq!(g.m.waiters(), 3);

        g.m.unlock();
        // f1 was taken off the queue and woken to compete; the lock is free.
        assert!(!g.m.is_locked());
        assert_eq!(g.m.waiters(), 2, "unlock did not wake the head: {:?}", g.m);
        assert_eq!(a.get(), 0, "f2 was woken ahead of f1 and T");

        drop(f1);
        // T was woken in f1's place (a lost wake-up leaves T parked: loom reports it); its
        // unlock wakes f2.
        t.join().unwrap();
        assert_eq!(a.get(), 1, "T's unlock did not wake f2: {:?}", g.m);
        assert!(
            poll_once(f2.as_mut()).is_ready(),
            "woken f2 could not lock a free mutex"
        );
        g.incr();
        g.m.unlock();
        g.assert_free(2);
    });
}

/// A queued task is polled again with a different waker while another thread unlocks: the
/// notification must reach the new waker, or the second poll must see it and complete. A
/// second waiter (a thread) queued behind the task must get the lock afterwards. Counts in
/// `seen` the interleavings where the second poll completed (`[0]`) and where it was pending
/// and B was woken (`[1]`).
fn waker_change_races_unlock(with_thread_behind: bool, seen: &[std::sync::atomic::AtomicUsize; 2]) {
    let g = Guarded::new();
    g.m.lock();
    let mut f = Box::pin(g.m.lock_async());
    let a = Count::new();
    assert!(poll_with(f.as_mut(), &Waker::from(a.clone())).is_pending());
    let behind = with_thread_behind.then(|| {
        let t = spawn_incr(&g);
        g.wait_for_waiters(2);
        t
    });
    let unlocker = {
        let g = g.clone();
        thread::spawn(move || g.m.unlock())
    };
    let b = Count::new();
    let second = poll_with(f.as_mut(), &Waker::from(b.clone()));
    unlocker.join().unwrap();
    seen[usize::from(second.is_pending())].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if second.is_pending() {
        // The notification came after the second poll registered B: B must have been woken
        // (a wake that went to the stale waker A is lost).
        assert_eq!(
            b.get(),
            1,
            "lost wake-up: the second poll was pending and B was not woken (A woken {} times)",
            a.get()
        );
        let third = poll_with(f.as_mut(), &Waker::from(b.clone()));
        assert!(
            third.is_ready(),
            "the woken task did not get the lock: {:?}",
            g.m
        );
    }
    // The task holds the lock (nobody else could take it while the thread behind waits).
    assert!(g.m.is_locked());
    g.incr();
    g.m.unlock();
    let expected = if let Some(t) = behind {
        t.join().unwrap();
        2
    } else {
        1
    };
    g.assert_free(expected);
}

/// Runs `waker_change_races_unlock` and checks that loom explored both sides of the race.
fn check_waker_change(starving: bool, bound: usize, with_thread_behind: bool) {
    let seen = std::sync::Arc::new([
        std::sync::atomic::AtomicUsize::new(0),
        std::sync::atomic::AtomicUsize::new(0),
    ]);
    let counted = seen.clone();
    check(starving, bound, move || {
        waker_change_races_unlock(with_thread_behind, &counted)
    });
    let [ready, woken] = [0, 1].map(|i| seen[i].load(std::sync::atomic::Ordering::Relaxed));
    eprintln!("second poll ready in {ready}, pending then B woken in {woken}");
    assert!(
        ready > 0 && woken > 0,
        "loom did not explore both sides of the race"
    );
}

#[test]
fn waker_change_races_unlock_normal() {
    check_waker_change(false, 6, false);
}

#[test]
fn waker_change_races_unlock_handoff() {
    check_waker_change(true, 6, false);
}

#[test]
fn waker_change_races_unlock_with_thread_behind_normal() {
    check_waker_change(false, 4, true);
}

#[test]
fn waker_change_races_unlock_with_thread_behind_handoff() {
    check_waker_change(true, 4, true);
}
