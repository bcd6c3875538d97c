//! Models shared by the normal-mode and hand-off-mode loom binaries.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use gosync::sync::RawMutex;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// Polls `f` once with a waker that does nothing.
pub fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
}

struct Guarded {
    m: RawMutex,
    v: UnsafeCell<usize>,
}

// SAFETY: `v` is only touched with `m` held; loom checks exactly that.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new() -> Arc<Self> {
        Arc::new(Guarded {
            m: RawMutex::new(),
            v: UnsafeCell::new(0),
        })
    }

    /// The counter; call with the mutex held or after every other thread has joined.
    fn value(&self) -> usize {
        // SAFETY: no concurrent writer, per the caller's contract (checked by loom).
        self.v.with(|p| unsafe { *p })
    }

    fn incr(&self) {
        // SAFETY: called with the mutex held.
        self.v.with_mut(|p| unsafe { *p += 1 });
    }
}

/// Two threads and (in the second model) a task increment a counter under the mutex: loom
/// reports a data race if the unlock→lock edge is missing, and a deadlock if a wake-up is lost.
pub fn mutex_models() {
    loom::model(|| {
        let g = Guarded::new();
        let g2 = g.clone();
        let t = thread::spawn(move || {
            g2.m.lock();
            g2.incr();
            g2.m.unlock();
        });
        g.m.lock();
        g.incr();
        g.m.unlock();
        t.join().unwrap();
        g.m.lock();
        assert_eq!(g.value(), 2);
        g.m.unlock();
    });
    loom::model(|| {
        let g = Guarded::new();
        let g2 = g.clone();
        let t = thread::spawn(move || {
            loom::future::block_on(async {
                g2.m.lock_async().await;
                g2.incr();
                g2.m.unlock();
            })
        });
        g.m.lock();
        g.incr();
        g.m.unlock();
        t.join().unwrap();
        assert!(g.m.try_lock());
        assert_eq!(g.value(), 2);
        g.m.unlock();
    });
}

/// Three parties, one of them twice: a woken waiter can lose the race to a barger and must
/// queue again, or find the mutex free again as it queues. Run with a preemption bound.
pub fn three_party_model() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let g = Guarded::new();
        let ts: Vec<_> = (0..2)
            .map(|i| {
                let g = g.clone();
                thread::spawn(move || {
                    for _ in 0..(1 + i) {
                        g.m.lock();
                        g.incr();
                        g.m.unlock();
                    }
                })
            })
            .collect();
        g.m.lock();
        g.incr();
        g.m.unlock();
        for t in ts {
            t.join().unwrap();
        }
        assert!(!g.m.is_woken(), "a WOKEN bit was left behind");
        assert!(g.m.try_lock());
        assert_eq!(g.value(), 4);
        g.m.unlock();
    });
}

/// A task queues on a held mutex, then its future is dropped while another thread unlocks:
/// whatever the interleaving (removed before the unlock, woken, or handed the lock), the mutex
/// ends up free, and a third party waiting in line still gets it.
pub fn cancel_model() {
    loom::model(|| {
        let m = Arc::new(RawMutex::new());
        m.lock();
        let mut f = Box::pin(m.lock_async());
        assert!(poll_once(f.as_mut()).is_pending());
        let m2 = m.clone();
        let unlocker = thread::spawn(move || m2.unlock());
        drop(f);
        unlocker.join().unwrap();
        assert!(m.try_lock(), "the lock leaked to a dropped future");
        m.unlock();
    });
    loom::model(|| {
        let m = Arc::new(RawMutex::new());
        m.lock();
        let mut f = Box::pin(m.lock_async());
        assert!(poll_once(f.as_mut()).is_pending());
        let m2 = m.clone();
        let waiter = thread::spawn(move || {
            m2.lock();
            m2.unlock();
        });
        m.unlock();
        drop(f);
        waiter.join().unwrap();
        assert!(m.try_lock());
        m.unlock();
    });
}
