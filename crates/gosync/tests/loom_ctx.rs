//! loom models of the one completion protocol: a waiter that sits in a primitive's queue and
//! in a context's queue at once is completed by exactly one of them, and nothing is lost —
//! the lock, a queued peer's turn, a value. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p gosync --release --test loom_ctx`.
#![cfg(loom)]

use gosync::chan::Chan;
use gosync::context::{self, SendCtxError};
use gosync::sync::RawMutex;
use loom::sync::Arc;
use loom::thread;

fn bounded(n: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(n);
    b
}

/// `lock_ctx` queued on a held mutex races the context's cancel and the holder's unlock:
/// whichever wins, the lock ends free (never held by nobody, never given to a gone waiter),
/// and a waiter that got the lock really holds it.
#[test]
fn lock_ctx_races_cancel_and_unlock() {
    bounded(3).check(|| {
        let m = Arc::new(RawMutex::new());
        m.lock();
        let (ctx, cancel) = context::with_cancel(&context::background());
        let t = {
            let m = m.clone();
            thread::spawn(move || {
                let got = m.lock_ctx(&ctx).is_ok();
                if got {
                    assert!(m.is_locked());
                    m.unlock();
                }
            })
        };
        let c = thread::spawn(move || cancel.cancel());
        m.unlock();
        c.join().unwrap();
        t.join().unwrap();
        assert!(m.try_lock(), "the lock was lost");
        m.unlock();
        assert_eq!(m.waiters(), 0);
        assert!(!m.is_woken() && !m.is_starving());
    });
}

/// The same race with a second waiter queued behind the `lock_ctx` one: if the context wins,
/// the unlock's wake-up (or hand-off) must reach that second waiter (loom reports a deadlock
/// if it parks forever).
#[test]
fn a_cancelled_head_passes_its_turn_on() {
    bounded(2).check(|| {
        let m = Arc::new(RawMutex::new());
        m.lock();
        let (ctx, cancel) = context::with_cancel(&context::background());
        let first = {
            let m = m.clone();
            thread::spawn(move || {
                if m.lock_ctx(&ctx).is_ok() {
                    m.unlock();
                }
            })
        };
        let second = {
            let m = m.clone();
            thread::spawn(move || {
                m.lock();
                m.unlock();
            })
        };
        cancel.cancel();
        m.unlock();
        first.join().unwrap();
        second.join().unwrap();
        assert!(m.try_lock());
        m.unlock();
    });
}

/// `recv_ctx` on a rendezvous channel races a cancel and a `try_send`: the value is delivered
/// exactly when the send succeeded, and comes back to the sender otherwise.
#[test]
fn recv_ctx_races_cancel_and_a_send() {
    bounded(3).check(|| {
        let ch: Chan<u32> = Chan::new(0);
        let (ctx, cancel) = context::with_cancel(&context::background());
        let rx = ch.clone();
        let t = thread::spawn(move || rx.recv_ctx(&ctx));
        let c = thread::spawn(move || cancel.cancel());
        let sent = ch.try_send(7).is_ok();
        c.join().unwrap();
        let got = t.join().unwrap();
        match got {
            Ok(Some(v)) => assert!(sent && v == 7),
            Ok(None) => panic!("the channel is not closed"),
            Err(_) => assert!(!sent, "a value was sent to a receiver whose context won"),
        }
    });
}

/// `send_ctx` on a rendezvous channel races a cancel and a `try_recv`: the value is received
/// exactly once, or given back in the error.
#[test]
fn send_ctx_races_cancel_and_a_receive() {
    bounded(3).check(|| {
        let ch: Chan<u32> = Chan::new(0);
        let (ctx, cancel) = context::with_cancel(&context::background());
        let tx = ch.clone();
        let t = thread::spawn(move || tx.send_ctx(&ctx, 9));
        let c = thread::spawn(move || cancel.cancel());
        let got = ch.try_recv().ok();
        c.join().unwrap();
        match t.join().unwrap() {
            Ok(()) => assert_eq!(got, Some(9)),
            Err(SendCtxError::Done(_, v)) => assert!(v == 9 && got.is_none()),
            Err(SendCtxError::Closed(_)) => panic!("the channel is not closed"),
        }
    });
}
