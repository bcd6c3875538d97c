//! A waker that panics must not strand the waiters woken with it. Every batch wake — an
//! `RwMutex` unlock granting readers, `Cond::broadcast`, a `WaitGroup` release, a context's
//! cancellation, a `Once` finishing — wakes the whole batch, then re-raises the panic (or, when
//! the thread is already unwinding from a panicking `Once` function, lets that panic go on).
#![cfg(not(loom))]

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;

use gosync::context;
use gosync::sync::{Cond, Once, RawMutex, RawRwMutex, WaitGroup};
use support::{counting_waker, panicking_waker, poll_noop, poll_with};

#[test]
fn rwmutex_unlock_wakes_every_granted_reader() {
    let rw = RawRwMutex::new();
    rw.lock();
    let mut a = pin!(rw.rlock_async());
    let mut b = pin!(rw.rlock_async());
    let (wb, count) = counting_waker();
    assert!(poll_with(a.as_mut(), &panicking_waker()).is_pending());
    assert!(poll_with(b.as_mut(), &wb).is_pending());
    assert!(
        catch_unwind(AssertUnwindSafe(|| rw.unlock())).is_err(),
        "the panic comes back"
    );
    assert_eq!(
        count.count(),
        1,
        "the reader after the panicking waker was not woken"
    );
    assert!(poll_noop(a.as_mut()).is_ready());
    assert!(poll_noop(b.as_mut()).is_ready());
    rw.runlock();
    rw.runlock();
    assert!(
        rw.try_lock(),
        "granted readers left counted in the state word"
    );
    rw.unlock();
}

#[test]
fn cond_broadcast_wakes_everyone() {
    let c = Cond::new(RawMutex::new());
    c.locker().lock();
    let mut a = pin!(c.wait_async());
    assert!(poll_with(a.as_mut(), &panicking_waker()).is_pending());
    c.locker().lock();
    let mut b = pin!(c.wait_async());
    let (wb, count) = counting_waker();
    assert!(poll_with(b.as_mut(), &wb).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| c.broadcast())).is_err());
    assert_eq!(count.count(), 1, "a broadcast wake-up was lost");
    assert!(poll_noop(a.as_mut()).is_ready());
    c.locker().unlock();
    assert!(poll_noop(b.as_mut()).is_ready());
    c.locker().unlock();
}

#[test]
fn waitgroup_release_wakes_every_waiter() {
    let wg = WaitGroup::new();
    wg.add(1);
    let mut a = pin!(wg.wait_async());
    let mut b = pin!(wg.wait_async());
    let (wb, count) = counting_waker();
    assert!(poll_with(a.as_mut(), &panicking_waker()).is_pending());
    assert!(poll_with(b.as_mut(), &wb).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| wg.done())).is_err());
    assert_eq!(count.count(), 1, "a WaitGroup release was lost");
    assert!(poll_noop(a.as_mut()).is_ready());
    assert!(poll_noop(b.as_mut()).is_ready());
    assert_eq!(wg.count(), 0);
}

#[test]
fn context_cancel_wakes_every_waiter_and_cancels_the_whole_tree() {
    let (ctx, cancel) = context::with_cancel(&context::background());
    let (child, _child_cancel) = context::with_cancel(&ctx);
    let mut a = pin!(ctx.done());
    let mut b = pin!(ctx.done());
    let mut c = pin!(child.done());
    let (wb, count_b) = counting_waker();
    let (wc, count_c) = counting_waker();
    assert!(poll_with(a.as_mut(), &panicking_waker()).is_pending());
    assert!(poll_with(b.as_mut(), &wb).is_pending());
    assert!(poll_with(c.as_mut(), &wc).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| cancel.cancel())).is_err());
    assert_eq!(
        count_b.count(),
        1,
        "a waiter of the cancelled context was not woken"
    );
    assert_eq!(
        count_c.count(),
        1,
        "a waiter of the child context was not woken"
    );
    assert!(child.err().is_some(), "the child was not cancelled");
    assert!(poll_noop(b.as_mut()).is_ready());
    assert!(poll_noop(c.as_mut()).is_ready());
    assert!(poll_noop(a.as_mut()).is_ready());
}

/// `f` panics while a waiter with a panicking waker is queued: `Once` finishes inside the
/// runner's drop during unwinding, where a second panic would abort the whole test binary.
#[test]
fn once_finishing_during_an_unwind_does_not_abort() {
    let once = Arc::new(Once::new());
    let (started_tx, started) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let runner = {
        let once = once.clone();
        std::thread::spawn(move || {
            once.call_once(|| {
                started_tx.send(()).unwrap();
                go.recv().unwrap();
                panic!("f panics");
            })
        })
    };
    started.recv().unwrap();
    let mut a = pin!(once.call_once_async(|| async {}));
    let mut b = pin!(once.call_once_async(|| async {}));
    let (wb, count) = counting_waker();
    assert!(poll_with(a.as_mut(), &panicking_waker()).is_pending());
    assert!(poll_with(b.as_mut(), &wb).is_pending());
    go_tx.send(()).unwrap();
    assert!(runner.join().is_err(), "f's own panic goes on");
    assert_eq!(
        count.count(),
        1,
        "a waiter behind the panicking waker was not woken"
    );
    assert!(poll_noop(a.as_mut()).is_ready());
    assert!(poll_noop(b.as_mut()).is_ready());
    assert!(once.is_done());
}
