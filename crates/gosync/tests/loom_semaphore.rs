//! loom models of `semaphore::Weighted`: the hand-off from a release to a queued waiter, a
//! waiter's context ending while a release hands it units (exactly one outcome, no unit lost
//! or given twice), a cancelled head letting the request behind it go, and an async request
//! dropped while a release serves it. In every model the units end all free with nobody
//! queued, and loom reports any lost wake-up as a deadlock. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p gosync --release --test loom_semaphore`.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use gosync::context;
use gosync::semaphore::Weighted;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

fn bounded(n: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(n);
    b
}

/// Takes `n` units, checks the units in use never exceed the size, and gives them back.
fn use_units(sem: &Weighted, in_use: &AtomicUsize, n: usize) {
    let now = in_use.fetch_add(n, Ordering::SeqCst) + n;
    assert!(now <= sem.size(), "{now} units in use of {}", sem.size());
    in_use.fetch_sub(n, Ordering::SeqCst);
    sem.release(n);
}

/// Two threads contend for one unit while the main thread releases it: mutual exclusion, and
/// the waiter that queues is served (a lost hand-off deadlocks).
#[test]
fn hand_off_to_a_queued_thread() {
    bounded(3).check(|| {
        let sem = Arc::new(Weighted::new(1));
        let in_use = Arc::new(AtomicUsize::new(0));
        let bg = context::background();
        sem.acquire(&bg, 1).unwrap();
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (sem, in_use) = (sem.clone(), in_use.clone());
                thread::spawn(move || {
                    sem.acquire(&context::background(), 1).unwrap();
                    use_units(&sem, &in_use, 1);
                })
            })
            .collect();
        sem.release(1);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
    });
}

/// A queued request's context is cancelled while the holder releases: it either gets the unit
/// (and gives it back) or fails, never both, and the unit is not lost.
#[test]
fn cancel_races_the_hand_off() {
    bounded(3).check(|| {
        let sem = Arc::new(Weighted::new(1));
        let in_use = Arc::new(AtomicUsize::new(0));
        sem.acquire(&context::background(), 1).unwrap();
        let (ctx, cancel) = context::with_cancel(&context::background());
        let t = {
            let (sem, in_use) = (sem.clone(), in_use.clone());
            thread::spawn(move || {
                if sem.acquire(&ctx, 1).is_ok() {
                    use_units(&sem, &in_use, 1);
                }
            })
        };
        let c = thread::spawn(move || cancel.cancel());
        sem.release(1);
        c.join().unwrap();
        t.join().unwrap();
        assert_eq!(sem.available(), 1, "a unit was lost or given twice");
        assert_eq!(sem.waiters(), 0);
    });
}

/// A large request whose context ends, with a small one that may queue behind it: the small
/// one is always served (x/sync's `TestAllocCancelDoesntStarve`).
#[test]
fn a_cancelled_head_lets_the_next_go() {
    bounded(2).check(|| {
        let sem = Arc::new(Weighted::new(2));
        sem.acquire(&context::background(), 1).unwrap();
        let (ctx, cancel) = context::with_cancel(&context::background());
        let big = {
            let sem = sem.clone();
            thread::spawn(move || {
                if sem.acquire(&ctx, 2).is_ok() {
                    sem.release(2);
                }
            })
        };
        let small = {
            let sem = sem.clone();
            thread::spawn(move || {
                sem.acquire(&context::background(), 1).unwrap();
                sem.release(1);
            })
        };
        cancel.cancel();
        small.join().unwrap();
        sem.release(1);
        big.join().unwrap();
        assert_eq!(sem.available(), 2);
        assert_eq!(sem.waiters(), 0);
    });
}

/// A waker that unparks a loom thread.
fn thread_waker() -> std::task::Waker {
    struct Unpark(thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    std::task::Waker::from(std::sync::Arc::new(Unpark(thread::current())))
}

/// An async request polled once (queued), then dropped while another thread releases: the
/// units handed to it, if any, go back; a thread queued behind it is served.
#[test]
fn an_async_request_dropped_during_the_hand_off() {
    bounded(2).check(|| {
        let sem = Arc::new(Weighted::new(1));
        sem.acquire(&context::background(), 1).unwrap();
        let task = {
            let sem = sem.clone();
            thread::spawn(move || {
                let ctx = context::background();
                let waker = thread_waker();
                let mut f = Box::pin(sem.acquire_async(&ctx, 1));
                let got = matches!(
                    Pin::new(&mut f)
                        .as_mut()
                        .poll(&mut Context::from_waker(&waker)),
                    Poll::Ready(Ok(()))
                );
                drop(f);
                if got {
                    sem.release(1);
                }
            })
        };
        let other = {
            let sem = sem.clone();
            thread::spawn(move || {
                sem.acquire(&context::background(), 1).unwrap();
                sem.release(1);
            })
        };
        sem.release(1);
        task.join().unwrap();
        other.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
    });
}
