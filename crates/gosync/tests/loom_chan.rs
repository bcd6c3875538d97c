//! loom models of the channel core: the hand-off and its happens-before edges, a buffered
//! channel at capacity, close racing blocked parties, select firing exactly once, and
//! cancellation of async operations racing their peers. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p gosync --release --test loom_chan`.
//!
//! Payloads live in loom's `UnsafeCell`, written and read without atomics: loom reports a data
//! race if a channel operation fails to order the accesses, so every model checks the
//! happens-before edges of the Go memory model as well as the values.
#![cfg(loom)]

mod loom_support;

use gosync::chan::{Chan, Select, SendError, TryRecvError, TrySendError};
use gosync::{select, select_async};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use loom_support::poll_once;

/// A plain memory cell shared between threads, ordered only by the channel under test.
struct Payload(UnsafeCell<u64>);

// SAFETY: accesses are ordered by the channel operations of each model; loom checks exactly
// that and reports a race otherwise.
unsafe impl Sync for Payload {}

impl Payload {
    fn new() -> Arc<Self> {
        Arc::new(Payload(UnsafeCell::new(0)))
    }

    fn write(&self, v: u64) {
        // SAFETY: see the `Sync` impl.
        self.0.with_mut(|p| unsafe { *p = v });
    }

    fn read(&self) -> u64 {
        // SAFETY: see the `Sync` impl.
        self.0.with(|p| unsafe { *p })
    }
}

/// Runs a model of a select with two or more arms once with the arms polled in order and once
/// in reverse (the select's random order is fixed under loom). The order is process-wide, so
/// the models that set it take turns.
fn in_both_orders(f: impl Fn() + Sync + Send + 'static) {
    static ORDER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let f = std::sync::Arc::new(f);
    let _turn = ORDER.lock().unwrap_or_else(|e| e.into_inner());
    for reverse in [false, true] {
        gosync::__loom_select_reverse(reverse);
        let f = f.clone();
        loom::model(move || f());
    }
    gosync::__loom_select_reverse(false);
}

/// Unbuffered hand-off: the value arrives; what the sender wrote before sending is visible to
/// the receiver after receiving (send → receive), and what the receiver wrote before receiving
/// is visible to the sender once its send returns (receive → send completes).
#[test]
fn unbuffered_hand_off() {
    loom::model(|| {
        let ch: Chan<u64> = Chan::new(0);
        let to_receiver = Payload::new();
        let to_sender = Payload::new();
        let t = {
            let (ch, to_receiver, to_sender) = (ch.clone(), to_receiver.clone(), to_sender.clone());
            thread::spawn(move || {
                to_receiver.write(7);
                ch.send(1).unwrap();
                assert_eq!(to_sender.read(), 9);
            })
        };
        to_sender.write(9);
        assert_eq!(ch.recv(), Some(1));
        assert_eq!(to_receiver.read(), 7);
        t.join().unwrap();
    });
}

/// The same hand-off with an async receiver on one side.
#[test]
fn unbuffered_hand_off_to_a_task() {
    loom::model(|| {
        let ch: Chan<u64> = Chan::new(0);
        let data = Payload::new();
        let t = {
            let (ch, data) = (ch.clone(), data.clone());
            thread::spawn(move || {
                data.write(7);
                ch.send(1).unwrap();
            })
        };
        assert_eq!(loom::future::block_on(ch.recv_async()), Some(1));
        assert_eq!(data.read(), 7);
        t.join().unwrap();
    });
}

/// Capacity 1, two sends and two receives: values in order, each send's payload visible to
/// its receive, and the first receive visible once the second send returns (the k-th receive
/// happens before the (k+C)-th send completes).
#[test]
fn buffered_cap_one() {
    loom::model(|| {
        let ch: Chan<u64> = Chan::new(1);
        let data = [Payload::new(), Payload::new()];
        let first_recv = Payload::new();
        let t = {
            let (ch, data, first_recv) = (ch.clone(), data.clone(), first_recv.clone());
            thread::spawn(move || {
                data[0].write(10);
                ch.send(0).unwrap();
                data[1].write(11);
                ch.send(1).unwrap();
                assert_eq!(first_recv.read(), 1);
            })
        };
        first_recv.write(1);
        assert_eq!(ch.recv(), Some(0));
        assert_eq!(data[0].read(), 10);
        assert_eq!(ch.recv(), Some(1));
        assert_eq!(data[1].read(), 11);
        t.join().unwrap();
    });
}

/// Close races a sender blocked (or about to block) on an unbuffered channel nobody receives
/// from: the send fails with its value; the close happens before the failure is seen.
#[test]
fn close_races_a_blocked_send() {
    loom::model(|| {
        let ch: Chan<u64> = Chan::new(0);
        let before_close = Payload::new();
        let t = {
            let (ch, before_close) = (ch.clone(), before_close.clone());
            thread::spawn(move || {
                assert_eq!(ch.send(5), Err(SendError(5)));
                assert_eq!(before_close.read(), 3);
            })
        };
        before_close.write(3);
        ch.close();
        t.join().unwrap();
        assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
    });
}

/// Close races a blocked receiver: it wakes with `None`, and the close happens before.
#[test]
fn close_races_a_blocked_recv() {
    loom::model(|| {
        let ch: Chan<u64> = Chan::new(1);
        let before_close = Payload::new();
        let t = {
            let (ch, before_close) = (ch.clone(), before_close.clone());
            thread::spawn(move || {
                assert_eq!(ch.recv(), None);
                assert_eq!(before_close.read(), 3);
            })
        };
        before_close.write(3);
        ch.close();
        t.join().unwrap();
    });
}

/// Close races a sender and a receiver meeting on an unbuffered channel: either they meet
/// (Ok and the value) or the close stops both (the value back, and `None`).
#[test]
fn close_races_a_rendezvous() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(b.preemption_bound.map_or(2, |p| p.min(2)));
    b.check(|| {
        let ch: Chan<u64> = Chan::new(0);
        let s = {
            let ch = ch.clone();
            thread::spawn(move || ch.send(5))
        };
        let r = {
            let ch = ch.clone();
            thread::spawn(move || ch.recv())
        };
        ch.close();
        match (s.join().unwrap(), r.join().unwrap()) {
            (Ok(()), Some(5)) | (Err(SendError(5)), None) => {}
            other => panic!("inconsistent outcome {other:?}"),
        }
    });
}

/// A select over two buffered channels, each filled by its own sender: exactly one arm fires,
/// its payload is visible, and the other value stays in its channel.
#[test]
fn select_over_two_channels_fires_once() {
    in_both_orders(|| {
        let (a, b): (Chan<u64>, Chan<u64>) = (Chan::new(1), Chan::new(1));
        let data = [Payload::new(), Payload::new()];
        let senders: Vec<_> = [(a.clone(), 1u64), (b.clone(), 2u64)]
            .into_iter()
            .zip(data.clone())
            .map(|((ch, v), d)| {
                thread::spawn(move || {
                    d.write(v * 10);
                    ch.send(v).unwrap();
                })
            })
            .collect();
        let (fired, v) = select! {
            recv(a) -> v => (0, v.unwrap()),
            recv(b) -> v => (1, v.unwrap()),
        };
        assert_eq!(v, fired + 1);
        assert_eq!(data[fired as usize].read(), v * 10);
        for s in senders {
            s.join().unwrap();
        }
        let (this, other) = if fired == 0 { (&a, &b) } else { (&b, &a) };
        assert_eq!(this.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(other.try_recv(), Ok(2 - fired));
    });
}

/// The same on unbuffered channels, where both senders block: the select takes one value;
/// the other sender still waits, and its value is the next received on its channel.
#[test]
fn select_over_two_unbuffered_channels_fires_once() {
    in_both_orders(|| {
        let (a, b): (Chan<u64>, Chan<u64>) = (Chan::new(0), Chan::new(0));
        let sa = {
            let a = a.clone();
            thread::spawn(move || a.send(1).unwrap())
        };
        let sb = {
            let b = b.clone();
            thread::spawn(move || b.send(2).unwrap())
        };
        let fired = select! {
            recv(a) -> v => { assert_eq!(v, Some(1)); 0 }
            recv(b) -> v => { assert_eq!(v, Some(2)); 1 }
        };
        if fired == 0 {
            assert_eq!(b.recv(), Some(2));
        } else {
            assert_eq!(a.recv(), Some(1));
        }
        sa.join().unwrap();
        sb.join().unwrap();
    });
}

/// A pending `recv_async` is dropped while another thread tries to hand it a value: if the
/// hand-off happened, the value comes back to the channel; if not, the channel stays empty.
/// Nothing is lost and nothing appears twice.
#[test]
fn async_recv_cancel_races_a_send() {
    loom::model(|| {
        let ch: Chan<u64> = Chan::new(0);
        let mut f = Box::pin(ch.recv_async());
        assert!(poll_once(f.as_mut()).is_pending());
        let t = {
            let ch = ch.clone();
            thread::spawn(move || ch.try_send(7))
        };
        drop(f);
        match t.join().unwrap() {
            Ok(()) => assert_eq!(ch.try_recv(), Ok(7), "a handed value was lost"),
            Err(TrySendError::Full(7)) => assert_eq!(ch.try_recv(), Err(TryRecvError::Empty)),
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    });
}

/// A pending `send_async` is dropped while another thread tries to take its value: the value
/// is received once or withdrawn, never both.
#[test]
fn async_send_cancel_races_a_recv() {
    loom::model(|| {
        let ch: Chan<u64> = Chan::new(0);
        let mut f = Box::pin(ch.send_async(7));
        assert!(poll_once(f.as_mut()).is_pending());
        let t = {
            let ch = ch.clone();
            thread::spawn(move || ch.try_recv())
        };
        drop(f);
        let got = t.join().unwrap();
        assert!(matches!(got, Ok(7) | Err(TryRecvError::Empty)), "{got:?}");
        assert_eq!(
            ch.try_recv(),
            Err(TryRecvError::Empty),
            "a withdrawn value stayed"
        );
    });
}

/// A pending one-arm `select_async!` is dropped while a sender tries to hand a value to its
/// arm: the value is back in the channel or was never taken. (One arm, so the select's random
/// poll order plays no part and the model is deterministic.)
#[test]
fn async_select_cancel_races_a_send() {
    loom::model(|| {
        let a: Chan<u64> = Chan::new(0);
        {
            let mut f = Box::pin(async {
                select_async! {
                    recv(a) -> v => v,
                }
            });
            assert!(poll_once(f.as_mut()).is_pending());
            let t = {
                let a = a.clone();
                thread::spawn(move || a.try_send(2))
            };
            drop(f);
            match t.join().unwrap() {
                Ok(()) => assert_eq!(a.try_recv(), Ok(2), "a handed value was lost"),
                Err(TrySendError::Full(2)) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
    });
}

/// The same with the dynamic `Select`, whose future's drop collects the fired arm itself.
#[test]
fn dynamic_select_cancel_races_a_send() {
    loom::model(|| {
        let a: Chan<u64> = Chan::new(0);
        let mut sel = Select::new();
        sel.recv(&a);
        {
            let mut f = Box::pin(sel.select_async());
            assert!(poll_once(f.as_mut()).is_pending());
            let t = {
                let a = a.clone();
                thread::spawn(move || a.try_send(2))
            };
            drop(f);
            match t.join().unwrap() {
                Ok(()) => assert_eq!(a.try_recv(), Ok(2), "a handed value was lost"),
                Err(TrySendError::Full(2)) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
    });
}

/// A pending one-arm `select_async!` send is dropped while a receiver tries to take the value:
/// it is received once or withdrawn, never both.
#[test]
fn async_select_send_cancel_races_a_recv() {
    loom::model(|| {
        let a: Chan<u64> = Chan::new(0);
        {
            let mut f = Box::pin(async {
                select_async! {
                    send(a, 7) -> r => r,
                }
            });
            assert!(poll_once(f.as_mut()).is_pending());
            let t = {
                let a = a.clone();
                thread::spawn(move || a.try_recv())
            };
            drop(f);
            let got = t.join().unwrap();
            assert!(matches!(got, Ok(7) | Err(TryRecvError::Empty)), "{got:?}");
        }
        assert_eq!(
            a.try_recv(),
            Err(TryRecvError::Empty),
            "a withdrawn value stayed"
        );
    });
}

/// A value handed to a pending `recv_async` that is then dropped goes on to a thread blocked
/// in `recv` behind it: the thread gets it whichever way the three parties interleave.
#[test]
fn async_recv_cancel_passes_the_value_to_a_blocked_receiver() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(b.preemption_bound.map_or(2, |p| p.min(2)));
    b.check(|| {
        let ch: Chan<u64> = Chan::new(0);
        let mut f = Box::pin(ch.recv_async());
        assert!(poll_once(f.as_mut()).is_pending());
        let receiver = {
            let ch = ch.clone();
            thread::spawn(move || ch.recv())
        };
        let sender = {
            let ch = ch.clone();
            thread::spawn(move || ch.send(7))
        };
        drop(f);
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(receiver.join().unwrap(), Some(7));
        assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    });
}
