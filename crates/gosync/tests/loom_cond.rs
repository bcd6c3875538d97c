//! loom models of a `Cond<RawMutex>` async wait (`Cond::wait_async`) that is signalled and then
//! dropped while it re-acquires the lock (the "signalled, re-locking" row of the cancel-safety
//! table in `src/sync/cond.rs`), racing another waiter (a thread in Go's
//! `lock; for !ready { wait }; unlock` loop) and the signaller's unlock:
//!
//! * the signal it received is passed on, so the other waiter — queued before the signal,
//!   hence owed the wake-up once the dropped future passes it on — wakes (a lost signal leaves
//!   it parked forever: loom reports the deadlock);
//! * its pending re-lock (a `LockFuture` queued on the mutex) is cancelled without losing the
//!   mutex: the lock ends free, with nobody queued on the mutex or the `Cond`;
//! * the guarded flag is only touched under the mutex (loom checks for data races).
//!
//! Run with:
//!
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gosync --release --test
//! loom_cond`
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use gosync::sync::{Cond, RawMutex};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Serializes the models: the mutex's starvation flag is shared by the whole process.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` under loom with the starvation flag set to `starving` and a preemption bound;
/// prints how many interleavings were explored (see `--nocapture`).
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
fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
}

/// A flag guarded by the cond's mutex.
struct State {
    c: Cond<RawMutex>,
    ready: UnsafeCell<bool>,
    /// How many times the thread waiter returned from `wait` (loom atomic: read after joins).
    woken: AtomicUsize,
}

// SAFETY: `ready` is only touched with the mutex held; loom checks exactly that.
unsafe impl Sync for State {}

impl State {
    fn new() -> Arc<Self> {
        Arc::new(State {
            c: Cond::new(RawMutex::new()),
            ready: UnsafeCell::new(false),
            woken: AtomicUsize::new(0),
        })
    }

    /// Call with the lock held.
    fn ready(&self) -> bool {
        // SAFETY: the mutex is held.
        self.ready.with(|p| unsafe { *p })
    }

    /// Call with the lock held.
    fn set_ready(&self) {
        // SAFETY: the mutex is held.
        self.ready.with_mut(|p| unsafe { *p = true });
    }

    /// Go's loop: lock; for !ready { Wait() }; unlock.
    fn wait_ready(&self) {
        self.c.locker().lock();
        while !self.ready() {
            self.c.wait();
            self.woken.fetch_add(1, Ordering::Relaxed);
        }
        self.c.locker().unlock();
    }

    fn assert_free(&self) {
        let m = self.c.locker();
        assert!(!m.is_locked(), "the mutex ended locked: {m:?}");
        assert!(!m.is_woken(), "a WOKEN bit was left behind: {m:?}");
        assert_eq!(
            m.waiters(),
            0,
            "a locker was left queued on the mutex: {m:?}"
        );
        assert_eq!(self.c.waiters(), 0, "a waiter was left queued on the cond");
        assert!(m.try_lock(), "the mutex is not free: {m:?}");
        assert!(self.ready());
        m.unlock();
    }
}

/// What the task's wait future had reached when the signal came and it was polled again.
enum Outcome {
    /// Woken and re-locking, its re-lock queued on the held mutex: the case under test.
    Relocking,
    /// Woken and re-locked at once: it consumed the signal and holds the lock.
    Relocked,
}

/// Main's task waits first (so it is the head of the cond's queue and the one signal goes to
/// it); a thread waiter queues behind it if it locks before the flag is set; a signaller
/// thread sets the flag under the lock and signals (under the lock, or after unlocking).
/// Main polls its future until the signal has moved it to re-locking; if the re-lock is
/// pending (the signaller, or the thread waiter, holds the mutex), main drops the future,
/// and counts that case in `reached`.
fn relocking_future_dropped(signal_under_lock: bool, reached: &std::sync::atomic::AtomicUsize) {
    let s = State::new();
    s.c.locker().lock();
    let mut f = s.c.wait_async();
    assert!(poll_once(&mut f).is_pending());
    assert!(
        !s.c.locker().is_locked(),
        "the first poll did not release the lock"
    );

    let waiter = {
        let s = s.clone();
        thread::spawn(move || s.wait_ready())
    };
    let signaller = {
        let s = s.clone();
        thread::spawn(move || {
            s.c.locker().lock();
            s.set_ready();
            if signal_under_lock {
                s.c.signal();
                s.c.locker().unlock();
            } else {
                s.c.locker().unlock();
                s.c.signal();
            }
        })
    };

    // Block until the signal moved the wait to re-locking; the queue is FIFO and the task
    // queued first, so the one signal is the task's.
    let outcome = loom::future::block_on(futures::future::poll_fn(|cx| {
        match Pin::new(&mut f).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Outcome::Relocked),
            Poll::Pending if format!("{f:?}").contains("relocking") => {
                Poll::Ready(Outcome::Relocking)
            }
            Poll::Pending => Poll::Pending,
        }
    }));
    match outcome {
        Outcome::Relocking => {
            reached.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Signalled, re-lock pending: the drop passes the signal to the head of the queue
            // (the thread waiter, if it waits) and cancels the re-lock.
            drop(f);
        }
        Outcome::Relocked => {
            // The task used the signal; it holds the lock and sees the flag. A thread waiter
            // queued behind it is owed nothing by the Cond: wake it as the program would.
            assert!(s.ready(), "woken before the flag was set");
            drop(f);
            s.c.signal();
            s.c.locker().unlock();
        }
    }
    waiter.join().unwrap();
    signaller.join().unwrap();
    // The thread waiter waited at most once: its one wake-up was the passed-on signal (or,
    // in the relocked case, main's), and the flag was set by then.
    assert!(s.woken.load(Ordering::Relaxed) <= 1);
    s.assert_free();
}

/// Runs `relocking_future_dropped` and checks that some interleaving dropped the future
/// while it was re-locking (the model would prove nothing otherwise).
fn check_relocking(starving: bool, signal_under_lock: bool) {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    check(starving, 3, move || {
        relocking_future_dropped(signal_under_lock, &counted)
    });
    let reached = count.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{reached} of them dropped the future while re-locking");
    assert!(
        reached > 0,
        "no interleaving dropped the future while re-locking"
    );
}

#[test]
fn relocking_future_dropped_signal_under_lock() {
    check_relocking(false, true);
}

/// With the signal sent after the unlock, a re-lock can only be pending while the thread
/// waiter holds the mutex — having seen the flag, it never waits — so this variant checks the
/// cancelled re-lock against the waiter's `lock`/`unlock`, not the passed-on signal.
#[test]
fn relocking_future_dropped_signal_after_unlock() {
    check_relocking(false, false);
}

#[test]
fn relocking_future_dropped_signal_under_lock_handoff() {
    check_relocking(true, true);
}

/// Deterministic up to the drop: the thread waiter is certainly queued behind the task (main
/// waits for it), and main itself holds the mutex when it signals, so the task's re-lock is
/// certainly pending when main drops the future; the drop then races main's unlock and the
/// thread waiter. The thread waiter is owed the passed-on signal and must wake.
fn relocking_future_dropped_racing_unlock() {
    let s = State::new();
    s.c.locker().lock();
    let mut f = s.c.wait_async();
    assert!(poll_once(&mut f).is_pending());
    let waiter = {
        let s = s.clone();
        thread::spawn(move || s.wait_ready())
    };
    // The thread waiter checked the flag and queued behind the task.
    while s.c.waiters() < 2 {
        thread::yield_now();
    }
    s.c.locker().lock();
    s.set_ready();
    s.c.signal();
    assert_eq!(
        s.c.waiters(),
        1,
        "the signal did not go to the head of the queue"
    );
    // The task is woken: this poll moves it to re-locking, and the re-lock queues on the
    // mutex main holds.
    assert!(poll_once(&mut f).is_pending());
    assert!(format!("{f:?}").contains("relocking"), "{f:?}");
    assert_eq!(
        s.c.locker().waiters(),
        1,
        "the re-lock did not queue on the mutex"
    );
    let unlocker = {
        let s = s.clone();
        thread::spawn(move || s.c.locker().unlock())
    };
    drop(f);
    unlocker.join().unwrap();
    waiter.join().unwrap();
    assert_eq!(s.woken.load(Ordering::Relaxed), 1);
    s.assert_free();
}

#[test]
fn relocking_future_dropped_racing_unlock_normal() {
    check(false, 4, relocking_future_dropped_racing_unlock);
}

#[test]
fn relocking_future_dropped_racing_unlock_handoff() {
    check(true, 4, relocking_future_dropped_racing_unlock);
}
