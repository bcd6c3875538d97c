//! Channel tests, written afresh after the semantics of Go's channel tests (`test/chan/*.go`,
//! `test/closedchan.go`, `runtime/chan_test.go`) and the Go memory model.
//!
//! * The seed's table, one test per cell (`table_*`).
//! * Ports of Go's tests (`go_*`): non-blocking operations, select in its variants, double
//!   select, FIFO order, the prime sieve, closed channels, zero-sized elements.
//! * Happens-before edges of the memory model (`mm_*`).
//! * Cancel safety of the async forms (`cancel_*`), threads and tasks on one channel (`mix_*`),
//!   misuse (`misuse_*`).
//!
//! Deviations from Go: a send on a closed channel returns `Err(SendError(v))` instead of
//! panicking, so Go's "should panic" checks become checks of that error.
//!
//! Every test is bounded: anything that could hang runs under a watchdog that fails the test
//! after [`WATCHDOG`]. "Stays blocked" is observed over a short window; it can only fail when
//! the operation wrongly completes.
#![cfg(not(loom))]

use std::cell::Cell;
use std::fmt::Debug;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use futures::task::noop_waker_ref;
use gosync::chan::{
    Chan, Receiver, Select, Selected, SendError, Sender, TryRecvError, TrySendError,
};
use gosync::{select, select_async};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// How long any one test body may run before it counts as hung.
const WATCHDOG: Duration = Duration::from_secs(25);

/// How long a blocked operation is watched to check that it stays blocked.
const BLOCK_WINDOW: Duration = Duration::from_millis(40);

/// Runs `f` on its own thread and returns its result; fails the test if `f` panics or is still
/// running after [`WATCHDOG`] (a deadlock or a lost wake-up).
fn bounded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let h = thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .unwrap();
    match rx.recv_timeout(WATCHDOG) {
        Ok(Ok(r)) => {
            h.join().unwrap();
            r
        }
        Ok(Err(p)) => resume_unwind(p),
        Err(_) => panic!("{what}: still running after {WATCHDOG:?} (deadlock or lost wake-up)"),
    }
}

/// Retries `f` (with a short sleep) until it returns `Some`, for at most [`WATCHDOG`].
fn until<R>(what: &str, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(Instant::now() < deadline, "{what}: never happened");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A thread running a blocking operation, with a flag set when the operation returns.
struct Blocked<R> {
    done: Arc<AtomicBool>,
    handle: thread::JoinHandle<R>,
}

/// Starts `f` on a thread and checks that it is still blocked after [`BLOCK_WINDOW`].
fn stays_blocked<R: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> Blocked<R> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let handle = thread::spawn(move || {
        let r = f();
        d.store(true, Relaxed);
        r
    });
    thread::sleep(BLOCK_WINDOW);
    assert!(!done.load(Relaxed), "{what}: returned, but should block");
    Blocked { done, handle }
}

impl<R> Blocked<R> {
    /// Joins the thread (which must be about to return), bounded by the watchdog.
    fn join(self) -> R {
        until("blocked operation to return", || {
            self.done.load(Relaxed).then_some(())
        });
        self.handle.join().unwrap()
    }

    fn is_done(&self) -> bool {
        self.done.load(Relaxed)
    }
}

/// The message of the panic `f` raises (which it must).
fn panic_message(f: impl FnOnce()) -> String {
    let p = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        panic!("panic payload is not a string")
    }
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(noop_waker_ref()))
}

/// A tokio runtime with two worker threads and timers.
fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// A futures thread pool of two threads.
fn pool() -> futures::executor::ThreadPool {
    futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .unwrap()
}

/// A counter per value: checks that each of `0..n` was seen exactly once.
struct Seen(Vec<AtomicU8>);

impl Seen {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Seen((0..n).map(|_| AtomicU8::new(0)).collect()))
    }

    fn mark(&self, v: u64) {
        let before = self.0[v as usize].fetch_add(1, Relaxed);
        assert_eq!(before, 0, "value {v} received twice");
    }

    fn assert_all_once(&self) {
        for (v, c) in self.0.iter().enumerate() {
            assert_eq!(
                c.load(Relaxed),
                1,
                "value {v} received {} times",
                c.load(Relaxed)
            );
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------------
// The seed's table: nil / not empty / empty / full / not full / closed × receive / send / close
// ---------------------------------------------------------------------------------------------

#[test]
fn table_receive_nil_blocks_forever() {
    let nil: Chan<u32> = Chan::nil();
    assert!(nil.is_nil());
    assert_eq!((nil.len(), nil.cap()), (0, 0));
    assert_eq!(nil.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(nil.receiver().try_recv(), Err(TryRecvError::Empty));
    // A blocking receive never returns (the thread is left parked for good).
    let n = nil.clone();
    let b = stays_blocked("recv on nil", move || n.recv());
    let r = nil.receiver();
    let b2 = stays_blocked("recv on nil view", move || r.recv());
    // The async form stays pending.
    let mut f = pin!(nil.recv_async());
    assert!(poll_once(f.as_mut()).is_pending());
    assert!(poll_once(f.as_mut()).is_pending());
    // A select arm on nil never fires: the default runs, or a ready arm wins every time.
    let ready = Chan::new(1);
    for i in 0..200 {
        let got = select! {
            recv(nil) -> _ => unreachable!("nil arm fired"),
            default => 0,
        };
        assert_eq!(got, 0);
        ready.send(i).unwrap();
        let got = select! {
            recv(nil) -> _ => unreachable!("nil arm fired"),
            recv(ready) -> v => v.unwrap(),
        };
        assert_eq!(got, i);
    }
    assert!(!b.is_done() && !b2.is_done());
}

#[test]
fn table_receive_not_empty_gives_the_oldest_value() {
    for cap in [2, 3, 10] {
        let ch = Chan::new(cap);
        ch.send("a").unwrap();
        ch.send("b").unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(ch.recv(), Some("a"));
        assert_eq!(ch.len(), 1);
        assert_eq!(ch.try_recv(), Ok("b"));
        assert!(ch.is_empty());
    }
}

#[test]
fn table_receive_empty_blocks_until_a_send() {
    for cap in [0, 1, 4] {
        let ch: Chan<u32> = Chan::new(cap);
        assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
        let rx = ch.receiver();
        let b = stays_blocked("recv on empty", move || rx.recv());
        ch.send(9).unwrap();
        assert_eq!(b.join(), Some(9), "cap {cap}");
        assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    }
}

#[test]
fn table_receive_full_gives_a_value_and_admits_a_blocked_sender() {
    // A full buffer: the oldest value comes out.
    let ch = Chan::new(2);
    ch.send(1).unwrap();
    ch.send(2).unwrap();
    assert_eq!(ch.try_send(3), Err(TrySendError::Full(3)));
    assert_eq!(ch.recv(), Some(1));
    assert_eq!(ch.len(), 1);
    // Full with a sender waiting: the sender's value moves to the back and the sender returns.
    ch.send(3).unwrap();
    let tx = ch.sender();
    let b = stays_blocked("send on full", move || tx.send(4));
    assert_eq!(ch.recv(), Some(2));
    assert_eq!(b.join(), Ok(()));
    assert_eq!(ch.len(), 2);
    assert_eq!(ch.iter().take(2).collect::<Vec<_>>(), [3, 4]);
    // Unbuffered, a waiting sender is the "full" case: its value is received.
    let ch = Chan::new(0);
    let tx = ch.clone();
    let b = stays_blocked("send on unbuffered", move || tx.send(5));
    assert_eq!(ch.recv(), Some(5));
    assert_eq!(b.join(), Ok(()));
}

#[test]
fn table_receive_not_full_gives_a_value() {
    let ch = Chan::new(4);
    ch.send(7).unwrap();
    assert_eq!(ch.recv(), Some(7));
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(ch.cap(), 4);
}

#[test]
fn table_receive_closed_drains_then_reports_closed() {
    let ch = Chan::new(3);
    ch.send(1).unwrap();
    ch.send(2).unwrap();
    ch.close();
    assert!(ch.is_closed());
    assert_eq!(ch.recv(), Some(1));
    assert_eq!(ch.try_recv(), Ok(2));
    for _ in 0..3 {
        assert_eq!(ch.recv(), None);
        assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(futures::executor::block_on(ch.recv_async()), None);
    }
    let unbuffered: Chan<u8> = Chan::new(0);
    unbuffered.close();
    assert_eq!(unbuffered.recv(), None);
    assert_eq!(unbuffered.iter().count(), 0);
    // Receivers blocked when the channel closes all wake with `None`.
    let ch: Chan<u8> = Chan::new(0);
    let blocked: Vec<_> = (0..3)
        .map(|_| {
            let rx = ch.receiver();
            stays_blocked("recv before close", move || rx.recv())
        })
        .collect();
    ch.close();
    for b in blocked {
        assert_eq!(b.join(), None);
    }
}

#[test]
fn table_send_nil_blocks_forever() {
    let nil: Chan<String> = Chan::nil();
    assert_eq!(
        nil.try_send("x".to_string()),
        Err(TrySendError::Full("x".to_string()))
    );
    assert_eq!(
        nil.sender().try_send("y".into()).unwrap_err().into_inner(),
        "y"
    );
    let n = nil.clone();
    let b = stays_blocked("send on nil", move || n.send("never".to_string()));
    let tx = nil.sender();
    let b2 = stays_blocked("send on nil view", move || tx.send("never".to_string()));
    let mut f = pin!(nil.send_async("pending".to_string()));
    assert!(poll_once(f.as_mut()).is_pending());
    let ready: Chan<String> = Chan::new(1);
    for _ in 0..200 {
        let got = select! {
            send(nil, "a".to_string()) -> _ => unreachable!("nil arm fired"),
            default => "default",
        };
        assert_eq!(got, "default");
        let got = select! {
            send(nil, "a".to_string()) -> _ => unreachable!("nil arm fired"),
            send(ready, "b".to_string()) -> r => { r.unwrap(); "ready" }
        };
        assert_eq!(got, "ready");
        assert_eq!(ready.recv().as_deref(), Some("b"));
    }
    assert!(!b.is_done() && !b2.is_done());
}

#[test]
fn table_send_not_empty_writes_the_value() {
    let ch = Chan::new(3);
    ch.send(1).unwrap();
    ch.send(2).unwrap();
    assert_eq!(ch.len(), 2);
    assert_eq!(ch.try_send(3), Ok(()));
    assert_eq!(ch.iter().take(3).collect::<Vec<_>>(), [1, 2, 3]);
}

#[test]
fn table_send_empty_writes_the_value() {
    // Buffered and empty: the send returns at once.
    let ch = Chan::new(2);
    ch.send(1).unwrap();
    assert_eq!(ch.len(), 1);
    // Unbuffered: "empty" with a receiver waiting is a rendezvous; without one the send blocks.
    let ch: Chan<u32> = Chan::new(0);
    let tx = ch.clone();
    let b = stays_blocked("unbuffered send without receiver", move || tx.send(8));
    assert_eq!(ch.recv(), Some(8));
    assert_eq!(b.join(), Ok(()));
    let rx = ch.clone();
    let r = stays_blocked("receiver", move || rx.recv());
    ch.send(9).unwrap();
    assert_eq!(r.join(), Some(9));
    assert!(ch.is_empty());
}

#[test]
fn table_send_full_blocks_until_a_receive() {
    for cap in [0, 1, 3] {
        let ch = Chan::new(cap);
        for i in 0..cap {
            ch.send(i).unwrap();
        }
        assert_eq!(ch.try_send(100), Err(TrySendError::Full(100)));
        let fired = select! {
            send(ch, 101) -> _ => true,
            default => false,
        };
        assert!(!fired, "select sent on a full channel");
        let tx = ch.sender();
        let b = stays_blocked("send on full", move || tx.send(cap));
        let got: Vec<usize> = (0..=cap).map(|_| ch.recv().unwrap()).collect();
        assert_eq!(b.join(), Ok(()));
        assert_eq!(got, (0..=cap).collect::<Vec<_>>(), "cap {cap}");
    }
}

#[test]
fn table_send_not_full_writes_the_value() {
    let ch = Chan::new(3);
    ch.send('a').unwrap();
    ch.send('b').unwrap();
    ch.send('c').unwrap();
    assert_eq!(ch.len(), 3);
    assert_eq!(ch.try_send('d'), Err(TrySendError::Full('d')));
}

#[test]
fn table_send_closed_returns_the_value() {
    let ch = Chan::new(1);
    ch.close();
    assert_eq!(ch.send(vec![1, 2]), Err(SendError(vec![1, 2])));
    assert_eq!(ch.try_send(vec![3]), Err(TrySendError::Closed(vec![3])));
    assert!(ch.try_send(vec![]).unwrap_err().is_closed());
    assert_eq!(
        futures::executor::block_on(ch.send_async(vec![4])),
        Err(SendError(vec![4]))
    );
    let r = select! { send(ch, vec![5]) -> r => r };
    assert_eq!(r, Err(SendError(vec![5])));
    assert_eq!(SendError(1).to_string(), "send on closed channel");
    // Senders blocked on a full channel when it closes get their own value back; the buffered
    // value is still received, then the channel reports closed.
    let ch = Chan::new(1);
    ch.send(0).unwrap();
    let blocked: Vec<_> = (1..=3)
        .map(|i| {
            let tx = ch.sender();
            stays_blocked("send before close", move || tx.send(i))
        })
        .collect();
    ch.close();
    for (i, b) in (1..=3).zip(blocked) {
        assert_eq!(b.join(), Err(SendError(i)));
    }
    assert_eq!(ch.recv(), Some(0));
    assert_eq!(ch.recv(), None);
    // The same for a sender on an unbuffered channel and for an async sender.
    let ch: Chan<u32> = Chan::new(0);
    let tx = ch.clone();
    let b = stays_blocked("unbuffered send before close", move || tx.send(7));
    let mut f = pin!(ch.send_async(8));
    assert!(poll_once(f.as_mut()).is_pending());
    ch.close();
    assert_eq!(b.join(), Err(SendError(7)));
    assert_eq!(poll_once(f.as_mut()), Poll::Ready(Err(SendError(8))));
}

#[test]
fn table_close_nil_panics() {
    let nil: Chan<u8> = Chan::nil();
    assert_eq!(panic_message(|| nil.close()), "close of nil channel");
    let tx: Sender<u8> = Sender::from(Chan::nil());
    assert_eq!(panic_message(|| tx.close()), "close of nil channel");
}

#[test]
fn table_close_not_empty_keeps_values_for_receivers() {
    let ch = Chan::new(3);
    ch.send(1).unwrap();
    ch.close();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch.recv(), Some(1));
    assert_eq!(ch.recv(), None);
}

#[test]
fn table_close_empty_reports_closed() {
    for cap in [0, 2] {
        let ch: Chan<u8> = Chan::new(cap);
        ch.close();
        assert_eq!(ch.recv(), None);
        assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(ch.len(), 0);
    }
}

#[test]
fn table_close_full_drains_and_fails_blocked_senders() {
    let ch = Chan::new(2);
    ch.send(1).unwrap();
    ch.send(2).unwrap();
    let tx = ch.sender();
    let b = stays_blocked("send on full", move || tx.send(3));
    ch.close();
    assert_eq!(b.join(), Err(SendError(3)));
    assert_eq!(ch.iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(ch.recv(), None);
}

#[test]
fn table_close_not_full_drains_then_closed() {
    let ch = Chan::new(5);
    ch.send(1).unwrap();
    ch.send(2).unwrap();
    ch.sender().close();
    assert_eq!(ch.receiver().iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn table_close_closed_panics() {
    let ch: Chan<u8> = Chan::new(0);
    ch.close();
    assert_eq!(panic_message(|| ch.close()), "close of closed channel");
    assert_eq!(
        panic_message(|| ch.sender().close()),
        "close of closed channel"
    );
    // Two racing closes: exactly one panics.
    for _ in 0..50 {
        let ch: Chan<u8> = Chan::new(1);
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let ch = ch.clone();
                thread::spawn(move || catch_unwind(AssertUnwindSafe(|| ch.close())).is_err())
            })
            .collect();
        let panics = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&p| p)
            .count();
        assert_eq!(panics, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Go's test/chan/nonblock.go: non-blocking operations, several element types and capacities
// ---------------------------------------------------------------------------------------------

/// A non-blocking send reaches a waiting receiver, and a non-blocking receive takes the value of
/// a waiting (unbuffered) or finished (buffered) sender.
fn nonblock_case<T>(cap: usize, to_receiver: T, from_sender: T)
where
    T: Clone + PartialEq + Debug + Send + 'static,
{
    let c: Chan<T> = Chan::new(cap);
    let strobe: Chan<()> = Chan::new(0);
    assert_eq!(c.try_recv(), Err(TryRecvError::Empty), "cap {cap}");

    // A receiver is (or will soon be) waiting: a non-blocking send gets through.
    let (c2, s2, want) = (c.clone(), strobe.clone(), to_receiver.clone());
    let receiver = thread::spawn(move || {
        assert_eq!(c2.recv(), Some(want));
        s2.send(()).unwrap();
    });
    let mut v = Some(to_receiver);
    until("non-blocking send to a waiting receiver", || {
        match c.try_send(v.take().unwrap()) {
            Ok(()) => Some(()),
            Err(TrySendError::Full(back)) => {
                v = Some(back);
                None
            }
            Err(TrySendError::Closed(_)) => unreachable!(),
        }
    });
    strobe.recv().unwrap();
    receiver.join().unwrap();

    // A sender: buffered, it finishes at once; unbuffered, it waits for us.
    let (c2, s2, val) = (c.clone(), strobe.clone(), from_sender.clone());
    let sender = thread::spawn(move || {
        c2.send(val).unwrap();
        s2.send(()).unwrap();
    });
    if cap > 0 {
        strobe.recv().unwrap();
        assert_eq!(c.try_recv(), Ok(from_sender), "cap {cap}");
    } else {
        let got = until("non-blocking receive from a waiting sender", || {
            c.try_recv().ok()
        });
        assert_eq!(got, from_sender);
        strobe.recv().unwrap();
    }
    sender.join().unwrap();
    assert_eq!(c.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn go_nonblock_every_type_and_capacity() {
    bounded("nonblock", || {
        for cap in [0, 1, 2, 16] {
            nonblock_case(cap, 123i32, 234i32);
            nonblock_case(cap, 123_456i64, 234_567i64);
            nonblock_case(cap, true, true);
            nonblock_case(cap, "hello".to_string(), "hello again".to_string());
            nonblock_case(cap, (), ());
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Go's runtime TestChan: the basic contract at every capacity from 0 to 19
// ---------------------------------------------------------------------------------------------

#[test]
fn go_runtime_chan_every_capacity() {
    bounded("TestChan", || {
        for cap in 0..20usize {
            // Receive from an empty channel blocks; a non-blocking receive does not.
            let c: Chan<usize> = Chan::new(cap);
            let r1 = {
                let c = c.clone();
                thread::spawn(move || c.recv())
            };
            let r2 = {
                let c = c.clone();
                thread::spawn(move || c.recv())
            };
            thread::sleep(ms(2));
            assert!(
                !r1.is_finished() && !r2.is_finished(),
                "cap {cap}: receive from empty"
            );
            let got = select! { recv(c) -> _ => true, default => false };
            assert!(!got, "cap {cap}: non-blocking receive from empty");
            c.send(0).unwrap();
            c.send(0).unwrap();
            assert_eq!(r1.join().unwrap(), Some(0));
            assert_eq!(r2.join().unwrap(), Some(0));

            // Send to a full channel blocks; a non-blocking send does not.
            let c: Chan<usize> = Chan::new(cap);
            for i in 0..cap {
                c.send(i).unwrap();
            }
            let sent = Arc::new(AtomicBool::new(false));
            let s = {
                let (c, sent) = (c.clone(), sent.clone());
                thread::spawn(move || {
                    c.send(0).unwrap();
                    sent.store(true, Relaxed);
                })
            };
            thread::sleep(ms(2));
            assert!(!sent.load(Relaxed), "cap {cap}: send to full");
            let fired = select! { send(c, 0) -> _ => true, default => false };
            assert!(!fired, "cap {cap}: non-blocking send to full");
            c.recv().unwrap();
            s.join().unwrap();

            // Values survive close, in order; then zero/closed.
            let c: Chan<usize> = Chan::new(cap);
            for i in 0..cap {
                c.send(i).unwrap();
            }
            c.close();
            for i in 0..cap {
                assert_eq!(c.recv(), Some(i));
            }
            assert_eq!(c.recv(), None);
            assert_eq!(c.recv(), None);

            // Close unblocks a receiver.
            let c: Chan<usize> = Chan::new(cap);
            let r = {
                let c = c.clone();
                thread::spawn(move || c.recv())
            };
            thread::sleep(ms(1));
            c.close();
            assert_eq!(r.join().unwrap(), None);

            // 100 values in FIFO order, uncorrupted.
            let c: Chan<usize> = Chan::new(cap);
            let p = {
                let c = c.clone();
                thread::spawn(move || (0..100).for_each(|i| c.send(i).unwrap()))
            };
            for i in 0..100 {
                assert_eq!(c.recv(), Some(i), "cap {cap}");
            }
            p.join().unwrap();

            // 4 senders × L values, 4 receivers × L values: each value arrives 4 times.
            const P: usize = 4;
            const L: usize = 300;
            let senders: Vec<_> = (0..P)
                .map(|_| {
                    let c = c.clone();
                    thread::spawn(move || (0..L).for_each(|i| c.send(i).unwrap()))
                })
                .collect();
            let receivers: Vec<_> = (0..P)
                .map(|_| {
                    let c = c.clone();
                    thread::spawn(move || {
                        let mut counts = vec![0usize; L];
                        for _ in 0..L {
                            counts[c.recv().unwrap()] += 1;
                        }
                        counts
                    })
                })
                .collect();
            senders.into_iter().for_each(|h| h.join().unwrap());
            let mut counts = vec![0usize; L];
            for r in receivers {
                for (t, n) in counts.iter_mut().zip(r.join().unwrap()) {
                    *t += n;
                }
            }
            assert!(counts.iter().all(|&n| n == P), "cap {cap}: {counts:?}");

            // len and cap.
            let c: Chan<usize> = Chan::new(cap);
            assert_eq!((c.len(), c.cap()), (0, cap));
            for i in 0..cap {
                c.send(i).unwrap();
            }
            assert_eq!((c.len(), c.cap()), (cap, cap));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Go's test/chan/select*.go and runtime select tests
// ---------------------------------------------------------------------------------------------

/// select.go: send arms with a `default`, a channel "set to nil" once it has been sent on; every
/// arm's value expression is evaluated once per select, nil arms included.
#[test]
fn go_select_sends_until_default() {
    fn send_all(a: &Chan<u32>, b: &Chan<u32>, counter: &Cell<u32>) -> u32 {
        let (mut a, mut b) = (a.clone(), b.clone());
        let mut shift = 0;
        let mut sent = 0;
        let value = |shift: u32| {
            counter.set(counter.get() + 1);
            1u32 << shift
        };
        loop {
            // 0: sent on a, 1: sent on b, 2: default.
            let which = select! {
                send(a, value(shift)) -> r => { r.unwrap(); 0 }
                send(b, value(shift)) -> r => { r.unwrap(); 1 }
                default => 2,
            };
            match which {
                0 => a = Chan::nil(),
                1 => b = Chan::nil(),
                _ => break,
            }
            sent += 1;
            shift += 1;
        }
        sent
    }
    let counter = Cell::new(0);
    let (a, b) = (Chan::new(1), Chan::new(1));
    assert_eq!(send_all(&a, &b, &counter), 2);
    assert_eq!(a.recv().unwrap() | b.recv().unwrap(), 3);
    assert_eq!(send_all(&a, &Chan::nil(), &counter), 1);
    assert_eq!(counter.get(), 10);
}

/// select3.go: blocking and non-blocking selects on nil, closed, ready and unready channels.
#[test]
fn go_select3_what_blocks_and_what_does_not() {
    let nil: Chan<i32> = Chan::nil();
    let closed: Chan<i32> = Chan::new(0);
    closed.close();

    // Nil channels block, in and out of select.
    let n = nil.clone();
    stays_blocked(
        "select on nil recv",
        move || select! { recv(n) -> _ => unreachable!() },
    );
    let n = nil.clone();
    stays_blocked(
        "select on nil send",
        move || select! { send(n, 7) -> _ => unreachable!() },
    );
    let n = nil.clone();
    stays_blocked("select on nil send and recv", move || {
        select! {
            recv(n) -> _ => unreachable!(),
            send(n, 7) -> _ => unreachable!(),
        }
    });
    // The empty select blocks.
    stays_blocked("empty select", || -> () {
        select! {}
    });
    stays_blocked("empty dynamic select", || Select::<i32>::new().select());
    // A non-ready channel blocks.
    stays_blocked("select on unready recv", || {
        let ch: Chan<i32> = Chan::new(0);
        select! { recv(ch) -> _ => unreachable!() }
    });

    // With a default nothing blocks, and nil arms never fire.
    select! { default => {} }
    select! { recv(nil) -> _ => unreachable!(), default => {} }
    select! { send(nil, 7) -> _ => unreachable!(), default => {} }
    // Ready channels fire.
    let ch = Chan::new(1);
    select! { send(ch, 7) -> r => r.unwrap(), default => unreachable!() }
    select! { recv(ch) -> v => assert_eq!(v, Some(7)), default => unreachable!() }
    // A buffered channel with room never blocks a send.
    Chan::new(1).send(7).unwrap();
    // Receives on a closed channel never block, in and out of select.
    for _ in 0..10 {
        assert_eq!(closed.recv(), None);
        assert_eq!(select! { recv(closed) -> v => v }, None);
        assert_eq!(
            select! { recv(closed) -> v => v, default => Some(-1) },
            None
        );
    }
    // A send on a closed channel fails (Go panics), in and out of select.
    assert_eq!(closed.send(7), Err(SendError(7)));
    assert_eq!(select! { send(closed, 8) -> r => r }, Err(SendError(8)));
}

/// select3.go, "select should not get confused if it sees itself": a send and a receive on the
/// same unbuffered channel in one select never rendezvous with each other.
#[test]
fn go_select_does_not_rendezvous_with_itself() {
    for peer_receives in [true, false] {
        let c: Chan<i32> = Chan::new(0);
        let c2 = c.clone();
        let b = stays_blocked("select with send and recv on one channel", move || {
            select! {
                send(c2, 1) -> r => { r.unwrap(); "sent" }
                recv(c2) -> v => { assert_eq!(v, Some(2)); "received" }
            }
        });
        if peer_receives {
            assert_eq!(bounded("peer recv", move || c.recv()), Some(1));
            assert_eq!(b.join(), "sent");
        } else {
            bounded("peer send", move || c.send(2).unwrap());
            assert_eq!(b.join(), "received");
        }
    }
    // The dynamic form too.
    let c: Chan<i32> = Chan::new(0);
    let c2 = c.clone();
    let b = stays_blocked("dynamic self select", move || {
        let mut sel = Select::new();
        sel.send(&c2, 1);
        sel.recv(&c2);
        sel.select()
    });
    assert_eq!(bounded("peer recv", move || c.recv()), Some(1));
    assert_eq!(
        b.join(),
        Selected::Send {
            index: 0,
            result: Ok(())
        }
    );
}

/// runtime TestSelfSelect: two threads select between sending and receiving on one channel;
/// on an unbuffered channel nobody ever receives its own value.
#[test]
fn go_self_select_never_receives_own_value() {
    bounded("TestSelfSelect", || {
        for cap in [0usize, 10] {
            let c: Chan<usize> = Chan::new(cap);
            let hs: Vec<_> = (0..2usize)
                .map(|p| {
                    let c = c.clone();
                    thread::spawn(move || {
                        for i in 0..1000 {
                            let got = if p == 0 || i % 2 == 0 {
                                select! {
                                    send(c, p) -> r => { r.unwrap(); None }
                                    recv(c) -> v => v,
                                }
                            } else {
                                select! {
                                    recv(c) -> v => v,
                                    send(c, p) -> r => { r.unwrap(); None }
                                }
                            };
                            if cap == 0 {
                                assert_ne!(got, Some(p), "self receive");
                            }
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        }
    });
}

/// select6.go (Go issue 2075): a select that fired on one channel must leave the queue of the
/// other channel, where another receiver waits, intact.
#[test]
fn go_select6_fired_select_leaves_other_queues_intact() {
    bounded("select6", || {
        for _ in 0..200 {
            let (c1, c2, c3) = (Chan::new(0), Chan::new(0), Chan::new(0));
            let a = {
                let c1 = c1.clone();
                thread::spawn(move || {
                    c1.recv().unwrap();
                })
            };
            let b = {
                let (c1, c2, c3) = (c1.clone(), c2.clone(), c3.clone());
                thread::spawn(move || {
                    select! {
                        recv(c1) -> _ => panic!("dummy"),
                        recv(c2) -> _ => c3.send(true).unwrap(),
                    }
                    c1.recv().unwrap();
                })
            };
            let c = thread::spawn(move || c2.send(true).unwrap());
            c3.recv().unwrap();
            c1.send(true).unwrap();
            c1.send(true).unwrap();
            for h in [a, b, c] {
                h.join().unwrap();
            }
        }
    });
}

/// select7.go: every pairing of a plain/select/two-arm-select sender with a plain/select/
/// two-arm-select receiver completes.
#[test]
fn go_select7_every_pairing_of_plain_and_select() {
    type Side = fn(&Chan<i32>);
    let recvs: [Side; 3] = [
        |c| {
            c.recv();
        },
        |c| select! { recv(c) -> _ => {} },
        |c| {
            let c2: Chan<i32> = Chan::new(0);
            select! { recv(c) -> _ => {} recv(c2) -> _ => unreachable!() }
        },
    ];
    let sends: [Side; 3] = [
        |c| c.send(1).unwrap(),
        |c| select! { send(c, 1) -> r => r.unwrap() },
        |c| {
            let c2: Chan<i32> = Chan::new(0);
            select! { send(c, 1) -> r => r.unwrap(), send(c2, 1) -> _ => unreachable!() }
        },
    ];
    bounded("select7", move || {
        for _ in 0..50 {
            for r in recvs {
                for s in sends {
                    let c = Chan::new(0);
                    let c2 = c.clone();
                    let h = thread::spawn(move || r(&c2));
                    thread::yield_now();
                    s(&c);
                    h.join().unwrap();
                }
            }
        }
    });
}

/// runtime TestSelectDuplicateChannel: one select queued twice on the same channel, fired by
/// another channel, must leave the channel's queue intact for the next receiver.
#[test]
fn go_select_duplicate_channel() {
    bounded("TestSelectDuplicateChannel", || {
        let (c, d, e) = (Chan::new(0), Chan::new(0), Chan::new(0));
        let a = {
            let (c, d, e) = (c.clone(), d.clone(), e.clone());
            thread::spawn(move || {
                let got = select! {
                    recv(c) -> v => v,
                    recv(c) -> v => v,
                    recv(d) -> v => v,
                };
                assert_eq!(got, Some(7));
                e.send(9).unwrap();
            })
        };
        thread::sleep(ms(5)); // let A queue on c first
        let b = {
            let c = c.clone();
            thread::spawn(move || c.recv())
        };
        thread::sleep(ms(5)); // let B queue on c behind A
        d.send(7).unwrap(); // wakes A, which leaves c's queue
        assert_eq!(e.recv(), Some(9));
        c.send(8).unwrap(); // must reach B
        assert_eq!(b.join().unwrap(), Some(8));
        a.join().unwrap();
    });
}

/// doubleselect.go: a sender selects among four unbuffered channels; four forwarders pass the
/// values on to one receiver. If two arms of one select ever both ran, a value would arrive
/// twice.
#[test]
fn go_double_select_each_value_once() {
    const N: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    bounded("doubleselect", || {
        let cs: Vec<Chan<u64>> = (0..4).map(|_| Chan::new(0)).collect();
        let mux: Chan<u64> = Chan::new(0);
        let sender = {
            let cs = cs.clone();
            thread::spawn(move || {
                for i in 0..N {
                    select! {
                        send(cs[0], i) -> r => r.unwrap(),
                        send(cs[1], i) -> r => r.unwrap(),
                        send(cs[2], i) -> r => r.unwrap(),
                        send(cs[3], i) -> r => r.unwrap(),
                    }
                }
                cs.iter().for_each(Chan::close);
            })
        };
        let running = Arc::new(AtomicUsize::new(4));
        let forwarders: Vec<_> = cs
            .iter()
            .map(|c| {
                let (c, out, running) = (c.receiver(), mux.sender(), running.clone());
                thread::spawn(move || {
                    for v in &c {
                        out.send(v).unwrap();
                    }
                    if running.fetch_sub(1, Relaxed) == 1 {
                        out.close();
                    }
                })
            })
            .collect();
        let seen = Seen::new(N as usize);
        for v in &mux {
            seen.mark(v);
        }
        seen.assert_all_once();
        sender.join().unwrap();
        forwarders.into_iter().for_each(|h| h.join().unwrap());
    });
}

/// runtime TestSelectStress: plain senders and receivers on four channels (two unbuffered, two
/// buffered) interleave with one select that sends on all four and one that receives on all
/// four, disabling each channel (nil) once its quota is done. Nothing deadlocks.
#[test]
fn go_select_stress() {
    const N: usize = if cfg!(debug_assertions) {
        3_000
    } else {
        20_000
    };
    bounded("TestSelectStress", || {
        let c: [Chan<usize>; 4] = [Chan::new(0), Chan::new(0), Chan::new(2), Chan::new(3)];
        let mut hs = Vec::new();
        for ch in &c {
            let ck = ch.clone();
            hs.push(thread::spawn(move || {
                (0..N).for_each(|_| ck.send(0).unwrap())
            }));
            let ck = ch.clone();
            hs.push(thread::spawn(move || {
                (0..N).for_each(|_| assert_eq!(ck.recv(), Some(0)))
            }));
        }
        let cs = c.clone();
        hs.push(thread::spawn(move || {
            let mut n = [0; 4];
            let mut live = cs.clone();
            for _ in 0..4 * N {
                let k = select! {
                    send(live[3], 0) -> r => { r.unwrap(); 3 }
                    send(live[2], 0) -> r => { r.unwrap(); 2 }
                    send(live[0], 0) -> r => { r.unwrap(); 0 }
                    send(live[1], 0) -> r => { r.unwrap(); 1 }
                };
                n[k] += 1;
                if n[k] == N {
                    live[k] = Chan::nil();
                }
            }
        }));
        let cs = c.clone();
        hs.push(thread::spawn(move || {
            let mut n = [0; 4];
            let mut live = cs.clone();
            for _ in 0..4 * N {
                let k = select! {
                    recv(live[0]) -> v => { v.unwrap(); 0 }
                    recv(live[1]) -> v => { v.unwrap(); 1 }
                    recv(live[2]) -> v => { v.unwrap(); 2 }
                    recv(live[3]) -> v => { v.unwrap(); 3 }
                };
                n[k] += 1;
                if n[k] == N {
                    live[k] = Chan::nil();
                }
            }
        }));
        hs.into_iter().for_each(|h| h.join().unwrap());
        for ch in &c {
            assert!(ch.is_empty());
        }
    });
}

/// runtime TestNonblockRecvRace: a value buffered before close is seen by a racing
/// non-blocking receive or by the final receive.
#[test]
fn go_nonblock_recv_race() {
    bounded("TestNonblockRecvRace", || {
        for _ in 0..500 {
            let c = Chan::new(1);
            c.send(1).unwrap();
            let c2 = c.clone();
            let h = thread::spawn(move || {
                select! {
                    recv(c2) -> _ => {}
                    default => panic!("chan is not ready"),
                }
            });
            c.close();
            c.recv();
            h.join().unwrap();
        }
    });
}

/// runtime TestPseudoRandomSend: a select with two send arms on one channel picks both.
#[test]
fn go_pseudo_random_send() {
    bounded("TestPseudoRandomSend", || {
        let n = 100;
        for cap in [0, n] {
            let c: Chan<usize> = Chan::new(cap);
            let c2 = c.clone();
            let r = thread::spawn(move || (0..n).map(|_| c2.recv().unwrap()).collect::<Vec<_>>());
            for _ in 0..n {
                select! {
                    send(c, 1) -> r => r.unwrap(),
                    send(c, 0) -> r => r.unwrap(),
                }
            }
            let l = r.join().unwrap();
            let ones = l.iter().sum::<usize>();
            let zeros = n - ones;
            assert!(
                zeros > n / 10 && ones > n / 10,
                "{zeros} zeros, {ones} ones, cap {cap}"
            );
        }
    });
}

/// runtime TestMultiConsumer: 23 workers range over a work channel and send results on; the
/// feeder closes the work channel, waits for the workers, then closes the results.
#[test]
fn go_multi_consumer() {
    const NWORK: usize = 23;
    const NITER: usize = if cfg!(debug_assertions) {
        30_000
    } else {
        271_828
    };
    const PN: [usize; 10] = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
    bounded("TestMultiConsumer", || {
        let q: Chan<usize> = Chan::new(NWORK * 3);
        let r: Chan<usize> = Chan::new(NWORK * 3);
        let wg = gosync::sync::WaitGroup::new();
        for w in 0..NWORK {
            wg.add(1);
            let (q, r, wg) = (q.receiver(), r.sender(), wg.clone());
            thread::spawn(move || {
                for v in &q {
                    if PN[w % PN.len()] == v {
                        thread::yield_now();
                    }
                    r.send(v).unwrap();
                }
                wg.done();
            });
        }
        let feeder = {
            let (q, r) = (q.clone(), r.clone());
            thread::spawn(move || {
                let mut expect = 0;
                for i in 0..NITER {
                    let v = PN[i % PN.len()];
                    expect += v;
                    q.send(v).unwrap();
                }
                q.close();
                wg.wait();
                r.close();
                expect
            })
        };
        let (mut n, mut s) = (0, 0);
        for v in &r {
            n += 1;
            s += v;
        }
        assert_eq!((n, s), (NITER, feeder.join().unwrap()));
    });
}

// ---------------------------------------------------------------------------------------------
// Uniform choice among ready arms
// ---------------------------------------------------------------------------------------------

/// Checks `counts` against a uniform distribution over `trials`: every cell within ±5% of its
/// expectation (about 6 standard deviations for 40 000 trials over 4 cells) and a chi-square
/// statistic far below what a failure rate of one in a billion would allow.
fn assert_uniform(counts: &[u64], trials: u64) {
    let k = counts.len() as f64;
    let expect = trials as f64 / k;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expect).powi(2) / expect)
        .sum();
    for &c in counts {
        assert!(
            (c as f64 - expect).abs() <= 0.05 * expect,
            "not uniform: {counts:?} (chi-square {chi2:.1})"
        );
    }
    // 3 degrees of freedom: P(chi2 > 45) < 1e-9.
    if counts.len() == 4 {
        assert!(
            chi2 < 45.0,
            "not uniform: {counts:?} (chi-square {chi2:.1})"
        );
    }
}

#[test]
fn select_chooses_uniformly_among_four_ready_receives() {
    const TRIALS: u64 = 40_000;
    let cs: Vec<Chan<u8>> = (0..4).map(|_| Chan::new(1)).collect();
    let mut counts = [0u64; 4];
    for _ in 0..TRIALS {
        for c in &cs {
            let _ = c.try_send(0);
        }
        let i = select! {
            recv(cs[0]) -> _ => 0,
            recv(cs[1]) -> _ => 1,
            recv(cs[2]) -> _ => 2,
            recv(cs[3]) -> _ => 3,
        };
        counts[i] += 1;
    }
    assert_uniform(&counts, TRIALS);
}

#[test]
fn select_chooses_uniformly_among_mixed_ready_arms() {
    const TRIALS: u64 = 40_000;
    // Two receive arms that always have a value, two send arms that always have room.
    let (r0, r1): (Chan<u8>, Chan<u8>) = (Chan::new(1), Chan::new(1));
    let (s0, s1): (Chan<u8>, Chan<u8>) = (Chan::new(1), Chan::new(1));
    let mut counts = [0u64; 4];
    for _ in 0..TRIALS {
        let _ = r0.try_send(0);
        let _ = r1.try_send(0);
        let _ = s0.try_recv();
        let _ = s1.try_recv();
        let i = select! {
            recv(r0) -> _ => 0,
            send(s0, 0) -> _ => 1,
            recv(r1) -> _ => 2,
            send(s1, 0) -> _ => 3,
            default => unreachable!("arms were ready"),
        };
        counts[i] += 1;
    }
    assert_uniform(&counts, TRIALS);
}

#[test]
fn select_async_chooses_uniformly() {
    const TRIALS: u64 = 40_000;
    let cs: Vec<Chan<u8>> = (0..4).map(|_| Chan::new(1)).collect();
    let counts = futures::executor::block_on(async {
        let mut counts = [0u64; 4];
        for _ in 0..TRIALS {
            for c in &cs {
                let _ = c.try_send(0);
            }
            let i = select_async! {
                recv(cs[0]) -> _ => 0,
                recv(cs[1]) -> _ => 1,
                recv(cs[2]) -> _ => 2,
                recv(cs[3]) -> _ => 3,
            };
            counts[i] += 1;
        }
        counts
    });
    assert_uniform(&counts, TRIALS);
}

// ---------------------------------------------------------------------------------------------
// The dynamic Select
// ---------------------------------------------------------------------------------------------

/// Fan-in over 100 channels, each fed by its own thread and closed at the end: every value
/// arrives exactly once, closed channels are disabled, and the select ends when all are.
#[test]
fn dynamic_select_fans_in_100_channels() {
    const CHANS: usize = 100;
    const PER: u64 = 50;
    bounded("dynamic select fan-in", || {
        let chans: Vec<Chan<u64>> = (0..CHANS).map(|i| Chan::new(i % 3)).collect();
        let feeders: Vec<_> = chans
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = c.sender();
                thread::spawn(move || {
                    for k in 0..PER {
                        c.send(i as u64 * PER + k).unwrap();
                    }
                    c.close();
                })
            })
            .collect();
        let seen = Seen::new(CHANS * PER as usize);
        let mut sel = Select::new();
        for c in &chans {
            sel.recv(c);
        }
        assert_eq!(sel.len(), CHANS);
        let mut open = CHANS;
        let mut last = vec![None::<u64>; CHANS];
        while open > 0 {
            match sel.select() {
                Selected::Recv {
                    index,
                    value: Some(v),
                } => {
                    assert_eq!(v / PER, index as u64, "value from the wrong channel");
                    // Per channel, values arrive in the order sent.
                    assert!(last[index] < Some(v));
                    last[index] = Some(v);
                    seen.mark(v);
                }
                Selected::Recv { index, value: None } => {
                    sel.disable(index);
                    open -= 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        seen.assert_all_once();
        feeders.into_iter().for_each(|h| h.join().unwrap());
        // All disabled: nothing is ready, and a try_select falls to its default.
        assert_eq!(sel.try_select(), Selected::Default);
    });
}

/// With all 100 channels ready, every arm gets chosen (each about 1% of the time).
#[test]
fn dynamic_select_over_100_ready_channels_reaches_every_arm() {
    const TRIALS: usize = 20_000;
    let chans: Vec<Chan<u8>> = (0..100).map(|_| Chan::new(1)).collect();
    for c in &chans {
        c.send(0).unwrap();
    }
    let mut counts = vec![0u32; chans.len()];
    let mut sel = Select::new();
    for c in &chans {
        sel.recv(c);
    }
    for _ in 0..TRIALS {
        match sel.select() {
            Selected::Recv {
                index,
                value: Some(0),
            } => {
                counts[index] += 1;
                chans[index].send(0).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Expectation 200 each, standard deviation about 14: 100 is seven deviations away.
    assert!(counts.iter().all(|&c| c > 100 && c < 300), "{counts:?}");
}

/// Send arms in a dynamic select, refilled with `set_value`, mixed with receive arms.
#[test]
fn dynamic_select_send_arms_and_set_value() {
    bounded("dynamic select send arms", || {
        let outs: Vec<Chan<u32>> = (0..8).map(|_| Chan::new(0)).collect();
        let input: Chan<u32> = Chan::new(0);
        let readers: Vec<_> = outs
            .iter()
            .map(|c| {
                let c = c.clone();
                thread::spawn(move || c.iter().collect::<Vec<_>>())
            })
            .collect();
        let feeder = {
            let input = input.clone();
            thread::spawn(move || {
                for v in 1000..1100 {
                    input.send(v).unwrap();
                }
                input.close();
            })
        };
        let mut sel = Select::new();
        let mut next = 0u32;
        for c in &outs {
            sel.send(c, next);
            next += 1;
        }
        let recv_arm = sel.recv(&input);
        let (mut sent, mut received, mut input_open) = (0, 0, true);
        while sent < 500 || input_open {
            match sel.select() {
                Selected::Send { index, result } => {
                    result.unwrap();
                    sent += 1;
                    if next < 500 {
                        sel.set_value(index, next);
                        next += 1;
                    }
                }
                Selected::Recv { value: Some(v), .. } => {
                    assert_eq!(v, 1000 + received);
                    received += 1;
                }
                Selected::Recv { index, value: None } => {
                    assert_eq!(index, recv_arm);
                    sel.disable(index);
                    input_open = false;
                }
                Selected::Default => unreachable!(),
            }
        }
        drop(sel);
        assert_eq!(received, 100);
        outs.iter().for_each(Chan::close);
        let mut all: Vec<u32> = readers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, (0..500).collect::<Vec<_>>());
        feeder.join().unwrap();
    });
}

#[test]
fn dynamic_select_set_value_on_a_receive_arm_panics() {
    let ch: Chan<u8> = Chan::new(0);
    let mut sel = Select::new();
    let i = sel.recv(&ch);
    assert_eq!(
        panic_message(|| sel.set_value(i, 1)),
        "select arm 0 is a receive arm"
    );
}

/// runtime TestNonblockSelectRace: from the moment the selecting thread starts, at least one of
/// c1 and c2 is ready, so a non-blocking select over both must never take its default. (Go
/// gets this from locking every channel of the select at once.)
fn nonblock_select_race(close_c2: bool) -> usize {
    let mut defaults = 0;
    let done: Chan<bool> = Chan::new(1);
    for _ in 0..2_000 {
        let c1: Chan<i32> = Chan::new(1);
        let c2: Chan<i32> = Chan::new(if close_c2 { 0 } else { 1 });
        c1.send(1).unwrap();
        let (a, b, d) = (c1.clone(), c2.clone(), done.clone());
        thread::spawn(move || {
            let ok = select! {
                recv(a) -> _ => true,
                recv(b) -> _ => true,
                default => false,
            };
            d.send(ok).unwrap();
        });
        if close_c2 {
            c2.close();
        } else {
            c2.send(1).unwrap();
        }
        select! { recv(c1) -> _ => {} default => {} }
        if !done.recv().unwrap() {
            defaults += 1;
        }
    }
    defaults
}

#[test]
fn go_nonblock_select_race() {
    let defaults = bounded("TestNonblockSelectRace", || nonblock_select_race(false));
    assert_eq!(
        defaults, 0,
        "a select with a ready channel took its default"
    );
}

#[test]
fn go_nonblock_select_race_with_close() {
    let defaults = bounded("TestNonblockSelectRace2", || nonblock_select_race(true));
    assert_eq!(
        defaults, 0,
        "a select with a ready channel took its default"
    );
}

/// The sharp form of TestNonblockSelectRace: a mover keeps a token in c1 or c2 at every
/// instant (it adds one to the other channel before it removes the old), and a selector that
/// takes a token puts it back before selecting again. A non-blocking select over c1 and c2
/// therefore always has a ready arm and must never take its default.
fn select_snapshot_defaults(iterations: usize) -> usize {
    let (c1, c2): (Chan<u8>, Chan<u8>) = (Chan::new(4), Chan::new(4));
    c1.send(0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mover = {
        let (c1, c2, stop) = (c1.clone(), c2.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Relaxed) {
                c2.send(0).unwrap();
                c1.recv().unwrap();
                c1.send(0).unwrap();
                c2.recv().unwrap();
            }
        })
    };
    let mut defaults = 0;
    for _ in 0..iterations {
        select! {
            recv(c1) -> v => c1.send(v.unwrap()).unwrap(),
            recv(c2) -> v => c2.send(v.unwrap()).unwrap(),
            default => defaults += 1,
        }
    }
    stop.store(true, Relaxed);
    mover.join().unwrap();
    defaults
}

#[test]
fn select_with_default_sees_one_snapshot_of_its_channels() {
    // Polling the arms one at a time without a second look took the default a few to a few
    // dozen times per million selects on two cores.
    const N: usize = if cfg!(debug_assertions) {
        500_000
    } else {
        2_000_000
    };
    let defaults = bounded("select snapshot", || select_snapshot_defaults(N));
    assert_eq!(
        defaults, 0,
        "{defaults} selects took the default although an arm was ready"
    );
}

// ---------------------------------------------------------------------------------------------
// Go's test/chan/fifo.go: channels are FIFO
// ---------------------------------------------------------------------------------------------

#[test]
fn go_fifo_asynchronous() {
    const N: usize = 10;
    let ch = Chan::new(N);
    for i in 0..N {
        ch.send(i).unwrap();
    }
    for i in 0..N {
        assert_eq!(ch.recv(), Some(i), "bad receive");
    }
}

/// A daisy chain of threads, each waiting for its turn and then receiving one value: the
/// values come out of the unbuffered channel in the order they were sent.
#[test]
fn go_fifo_synchronous_daisy_chain() {
    const N: usize = 10;
    bounded("SynchFifo", || {
        let ch: Chan<usize> = Chan::new(0);
        let start: Chan<()> = Chan::new(0);
        let mut input = start.clone();
        let mut links = Vec::new();
        for i in 0..N {
            let out: Chan<()> = Chan::new(0);
            let (ch, inp, o) = (ch.receiver(), input.receiver(), out.sender());
            links.push(thread::spawn(move || {
                inp.recv().unwrap();
                assert_eq!(ch.recv(), Some(i));
                o.send(()).unwrap();
            }));
            input = out;
        }
        start.send(()).unwrap();
        for i in 0..N {
            ch.send(i).unwrap();
        }
        input.recv().unwrap();
        links.into_iter().for_each(|h| h.join().unwrap());
    });
}

/// Several senders, each sending an increasing sequence: every receiver sees each sender's
/// values in increasing order, and nothing is lost or duplicated.
#[test]
fn fifo_per_sender_order_under_many_senders() {
    const SENDERS: u64 = 4;
    const PER: u64 = if cfg!(debug_assertions) {
        5_000
    } else {
        50_000
    };
    bounded("per-sender FIFO", || {
        for (cap, receivers) in [(0, 1), (1, 1), (7, 1), (0, 3), (16, 3)] {
            let ch: Chan<(u64, u64)> = Chan::new(cap);
            let senders: Vec<_> = (0..SENDERS)
                .map(|s| {
                    let ch = ch.sender();
                    thread::spawn(move || (0..PER).for_each(|i| ch.send((s, i)).unwrap()))
                })
                .collect();
            let seen = Seen::new((SENDERS * PER) as usize);
            let rs: Vec<_> = (0..receivers)
                .map(|_| {
                    let (ch, seen) = (ch.receiver(), seen.clone());
                    thread::spawn(move || {
                        let mut last = [None::<u64>; SENDERS as usize];
                        for (s, i) in &ch {
                            let l = &mut last[s as usize];
                            assert!(*l < Some(i), "sender {s}: {i} after {l:?} (cap {cap})");
                            *l = Some(i);
                            seen.mark(s * PER + i);
                        }
                    })
                })
                .collect();
            senders.into_iter().for_each(|h| h.join().unwrap());
            ch.close();
            rs.into_iter().for_each(|h| h.join().unwrap());
            seen.assert_all_once();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Go's test/chan/sieve1.go: the concurrent prime sieve
// ---------------------------------------------------------------------------------------------

const PRIMES_BELOW_100: [u64; 25] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];

/// The sieve on threads: a generator of 2..=100, then one filter thread per prime found, each
/// copying what its predecessor sends minus the multiples of its prime. Unlike Go's version
/// the generator stops and each stage closes its output, so every thread ends.
#[test]
fn go_sieve_on_threads() {
    bounded("sieve1", || {
        let primes: Chan<u64> = Chan::new(0);
        let sieve = {
            let primes = primes.sender();
            thread::spawn(move || {
                let ch: Chan<u64> = Chan::new(0);
                let gen = ch.sender();
                let mut stages = vec![thread::spawn(move || {
                    (2..=100).for_each(|i| gen.send(i).unwrap());
                    gen.close();
                })];
                let mut ch = ch.receiver();
                while let Some(prime) = ch.recv() {
                    primes.send(prime).unwrap();
                    let next: Chan<u64> = Chan::new(0);
                    let (input, out) = (ch, next.sender());
                    stages.push(thread::spawn(move || {
                        for i in &input {
                            if i % prime != 0 {
                                out.send(i).unwrap();
                            }
                        }
                        out.close();
                    }));
                    ch = next.receiver();
                }
                primes.close();
                stages.into_iter().for_each(|h| h.join().unwrap());
            })
        };
        assert_eq!(primes.iter().collect::<Vec<_>>(), PRIMES_BELOW_100);
        sieve.join().unwrap();
    });
}

/// The same sieve with one async task per stage, on tokio and on a futures thread pool.
async fn sieve_tasks(spawn: impl Fn(Pin<Box<dyn Future<Output = ()> + Send>>)) -> Vec<u64> {
    let first: Chan<u64> = Chan::new(0);
    let gen = first.clone();
    spawn(Box::pin(async move {
        for i in 2..=100 {
            gen.send_async(i).await.unwrap();
        }
        gen.close();
    }));
    let mut ch = first;
    let mut primes = Vec::new();
    while let Some(prime) = ch.recv_async().await {
        primes.push(prime);
        let next: Chan<u64> = Chan::new(0);
        let (input, out) = (ch, next.clone());
        spawn(Box::pin(async move {
            while let Some(i) = input.recv_async().await {
                if i % prime != 0 {
                    out.send_async(i).await.unwrap();
                }
            }
            out.close();
        }));
        ch = next;
    }
    primes
}

#[test]
fn go_sieve_on_tokio_tasks() {
    bounded("sieve on tokio", || {
        let rt = tokio_rt();
        let handle = rt.handle().clone();
        let primes = rt.block_on(sieve_tasks(move |f| drop(handle.spawn(f))));
        assert_eq!(primes, PRIMES_BELOW_100);
    });
}

#[test]
fn go_sieve_on_a_futures_thread_pool() {
    bounded("sieve on ThreadPool", || {
        let pool = pool();
        let p = pool.clone();
        let primes = futures::executor::block_on(sieve_tasks(move |f| p.spawn_ok(f)));
        assert_eq!(primes, PRIMES_BELOW_100);
    });
}

/// Go's test/chan/goroutines.go: a long chain of tasks, each passing the value on, plus one
/// of threads.
#[test]
fn go_goroutines_chain() {
    bounded("chain of tasks", || {
        let rt = tokio_rt();
        const N: usize = 10_000;
        let first: Chan<usize> = Chan::new(0);
        let mut left = first.clone();
        for _ in 0..N {
            let right: Chan<usize> = Chan::new(0);
            let (l, r) = (left.clone(), right.clone());
            rt.spawn(async move {
                let v = r.recv_async().await.unwrap();
                l.send_async(v + 1).await.unwrap();
            });
            left = right;
        }
        let l2 = left.clone();
        let feeder = thread::spawn(move || l2.send(0).unwrap());
        assert_eq!(first.recv(), Some(N));
        feeder.join().unwrap();

        const T: usize = 64;
        let first: Chan<usize> = Chan::new(0);
        let mut left = first.clone();
        let mut hs = Vec::new();
        for _ in 0..T {
            let right: Chan<usize> = Chan::new(0);
            let (l, r) = (left.clone(), right.clone());
            hs.push(thread::spawn(move || {
                l.send(r.recv().unwrap() + 1).unwrap()
            }));
            left = right;
        }
        left.send(0).unwrap();
        assert_eq!(first.recv(), Some(T));
        hs.into_iter().for_each(|h| h.join().unwrap());
    });
}

// ---------------------------------------------------------------------------------------------
// Go's test/closedchan.go: every operation on closed channels, directly and through select
// ---------------------------------------------------------------------------------------------

/// The ways an operation can be spelled.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// `recv`, `try_recv`, `send`, `try_send`.
    Direct,
    /// A one-arm `select!` (with `default` for the non-blocking forms).
    Select,
    /// A `select!` with a second arm on a channel that is never ready.
    SelectWithDummy,
    /// The dynamic [`Select`].
    Dynamic,
    /// The async forms, and `select_async!`.
    Async,
}

const VIAS: [Via; 5] = [
    Via::Direct,
    Via::Select,
    Via::SelectWithDummy,
    Via::Dynamic,
    Via::Async,
];

impl Via {
    fn recv(self, c: &Chan<i32>) -> Option<i32> {
        let dummy: Chan<i32> = Chan::new(0);
        match self {
            Via::Direct => c.recv(),
            Via::Select => select! { recv(c) -> v => v },
            Via::SelectWithDummy => select! {
                recv(dummy) -> _ => unreachable!(),
                recv(c) -> v => v,
            },
            Via::Dynamic => {
                let mut sel = Select::new();
                sel.recv(&dummy);
                sel.recv(c);
                match sel.select() {
                    Selected::Recv { index: 1, value } => value,
                    other => panic!("{other:?}"),
                }
            }
            Via::Async => futures::executor::block_on(c.recv_async()),
        }
    }

    /// `Ok(v)`: received; `Err(Closed)`: selected, closed; `Err(Empty)`: would block.
    fn try_recv(self, c: &Chan<i32>) -> Result<i32, TryRecvError> {
        let dummy: Chan<i32> = Chan::new(0);
        let closed = |v: Option<i32>| v.ok_or(TryRecvError::Closed);
        match self {
            Via::Direct => c.try_recv(),
            Via::Select => select! {
                default => Err(TryRecvError::Empty),
                recv(c) -> v => closed(v),
            },
            Via::SelectWithDummy => select! {
                recv(dummy) -> _ => unreachable!(),
                default => Err(TryRecvError::Empty),
                recv(c) -> v => closed(v),
            },
            Via::Dynamic => {
                let mut sel = Select::new();
                sel.recv(&dummy);
                sel.recv(c);
                match sel.try_select() {
                    Selected::Recv { index: 1, value } => closed(value),
                    Selected::Default => Err(TryRecvError::Empty),
                    other => panic!("{other:?}"),
                }
            }
            Via::Async => futures::executor::block_on(async {
                select_async! {
                    recv(c) -> v => closed(v),
                    default => Err(TryRecvError::Empty),
                }
            }),
        }
    }

    fn send(self, c: &Chan<i32>, v: i32) -> Result<(), SendError<i32>> {
        let dummy: Chan<i32> = Chan::new(0);
        match self {
            Via::Direct => c.send(v),
            Via::Select => select! { send(c, v) -> r => r },
            Via::SelectWithDummy => select! {
                send(c, v) -> r => r,
                recv(dummy) -> _ => unreachable!(),
            },
            Via::Dynamic => {
                let mut sel = Select::new();
                sel.send(c, v);
                sel.recv(&dummy);
                match sel.select() {
                    Selected::Send { index: 0, result } => result,
                    other => panic!("{other:?}"),
                }
            }
            Via::Async => futures::executor::block_on(c.send_async(v)),
        }
    }

    fn try_send(self, c: &Chan<i32>, v: i32) -> Result<(), TrySendError<i32>> {
        let dummy: Chan<i32> = Chan::new(0);
        match self {
            Via::Direct => c.try_send(v),
            Via::Select => select! {
                default => Err(TrySendError::Full(-1)),
                send(c, v) -> r => r.map_err(Into::into),
            },
            Via::SelectWithDummy => select! {
                default => Err(TrySendError::Full(-1)),
                recv(dummy) -> _ => unreachable!(),
                send(c, v) -> r => r.map_err(Into::into),
            },
            Via::Dynamic => {
                let mut sel = Select::new();
                sel.send(c, v);
                sel.recv(&dummy);
                match sel.try_select() {
                    Selected::Send { index: 0, result } => result.map_err(Into::into),
                    Selected::Default => Err(TrySendError::Full(-1)),
                    other => panic!("{other:?}"),
                }
            }
            Via::Async => futures::executor::block_on(async {
                select_async! {
                    send(c, v) -> r => r.map_err(Into::into),
                    default => Err(TrySendError::Full(-1)),
                }
            }),
        }
    }
}

/// closedchan.go's test1: on a closed, drained channel every receive reports closed without
/// blocking, every send fails with its value, and a failed send leaves nothing behind.
fn closed_and_drained(c: &Chan<i32>, via: Via) {
    for _ in 0..3 {
        assert_eq!(via.recv(c), None, "{via:?}");
        assert_eq!(via.try_recv(c), Err(TryRecvError::Closed), "{via:?}");
    }
    assert_eq!(via.try_send(c, 1), Err(TrySendError::Closed(1)), "{via:?}");
    assert_eq!(via.recv(c), None, "{via:?}");
    assert_eq!(via.send(c, 2), Err(SendError(2)), "{via:?}");
    assert_eq!(via.recv(c), None, "{via:?}");
}

#[test]
fn go_closedchan_every_operation_every_way() {
    bounded("closedchan", || {
        for via in VIAS {
            // Closed unbuffered.
            let c = Chan::new(0);
            c.close();
            closed_and_drained(&c, via);
            // Closed with one buffered value, taken by each kind of receive.
            for take_first in 0..2 {
                let c = Chan::new(2);
                c.send(1).unwrap();
                c.close();
                match take_first {
                    0 => assert_eq!(via.recv(&c), Some(1), "{via:?}"),
                    _ => assert_eq!(via.try_recv(&c), Ok(1), "{via:?}"),
                }
                closed_and_drained(&c, via);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Zero-sized elements (Go's `chan struct{}`)
// ---------------------------------------------------------------------------------------------

#[test]
fn zero_sized_elements() {
    #[derive(Debug, PartialEq, Clone, Copy)]
    struct Token;
    bounded("zero-sized", || {
        // Buffered: len counts the values.
        let ch: Chan<()> = Chan::new(1000);
        for _ in 0..1000 {
            ch.send(()).unwrap();
        }
        assert_eq!(ch.len(), 1000);
        assert_eq!(ch.try_send(()), Err(TrySendError::Full(())));
        assert_eq!(ch.iter().take(1000).count(), 1000);
        // Unbuffered rendezvous, select and close on a ZST channel.
        let ch: Chan<Token> = Chan::new(0);
        let tx = ch.clone();
        let h = thread::spawn(move || {
            for _ in 0..1000 {
                tx.send(Token).unwrap();
            }
            tx.close();
        });
        let mut n = 0;
        loop {
            select! {
                recv(ch) -> v => match v {
                    Some(Token) => n += 1,
                    None => break,
                },
            }
        }
        assert_eq!(n, 1000);
        h.join().unwrap();
        assert_eq!(ch.send(Token), Err(SendError(Token)));
        // A huge capacity costs nothing for a zero-sized element (Go allows it too).
        let huge = 1usize << 40;
        let big: Chan<()> = Chan::try_new(huge).expect("no buffer to allocate");
        assert_eq!(big.cap(), huge);
        for _ in 0..10_000 {
            big.send(()).unwrap();
        }
        assert_eq!(big.len(), 10_000);
    });
}

// ---------------------------------------------------------------------------------------------
// select! as an expression; control flow in arms acts on the caller
// ---------------------------------------------------------------------------------------------

#[test]
fn select_arms_break_continue_and_return_act_on_the_caller() {
    fn first_even(ch: &Receiver<u32>) -> Option<u32> {
        loop {
            select! {
                recv(ch) -> v => match v {
                    Some(v) if v % 2 == 1 => continue,
                    Some(v) => return Some(v),
                    None => break,
                },
            }
        }
        None
    }
    let ch = Chan::new(4);
    for v in [1, 3, 4, 5] {
        ch.send(v).unwrap();
    }
    assert_eq!(first_even(&ch.receiver()), Some(4));
    ch.close();
    assert_eq!(first_even(&ch.receiver()), None);
    // Views and temporaries as arm channels; the select's value is the arm's value.
    let ch: Chan<u8> = Chan::new(1);
    let (tx, rx) = (ch.sender(), ch.receiver());
    let n = select! { send(tx, 1) -> r => { r.unwrap(); 10 } recv(Chan::<u8>::nil()) -> _ => 0 };
    let m = select! { recv(&rx) -> v => v.unwrap() * 2, default => 0 };
    assert_eq!(n + m, 12);
}

/// Arm bodies may be blocks or expressions, each followed by a comma or not (as rustfmt
/// writes them), in both macros.
#[test]
fn select_arm_bodies_parse_with_and_without_commas() {
    let ch: Chan<i32> = Chan::new(1);
    let nil: Chan<i32> = Chan::nil();
    ch.send(1).unwrap();
    let a = select! {
        recv(ch) -> v => {
            v.unwrap() + 1
        },
        send(nil, 0) -> _ => { 0 }
        recv(nil) -> _ => 0,
        default => { -1 },
    };
    let b = select! {
        send(ch, 5) -> r => { r.unwrap(); 10 },
        recv(nil) -> _ => { 0 }
        default => -1
    };
    let c = futures::executor::block_on(async {
        select_async! {
            send(nil, 0) -> _ => { 0 },
            recv(ch) -> v => { v.unwrap() },
            default => { -1 }
        }
    });
    assert_eq!((a, b, c), (2, 10, 5));
}

// ---------------------------------------------------------------------------------------------
// The Go memory model
// ---------------------------------------------------------------------------------------------

const MM_N: usize = if cfg!(debug_assertions) {
    20_000
} else {
    100_000
};

fn cells(n: usize) -> Arc<Vec<AtomicU64>> {
    Arc::new((0..n).map(|_| AtomicU64::new(0)).collect())
}

/// How one side of a hand-off is spelled.
#[derive(Clone, Copy, Debug)]
enum Side {
    Plain,
    Select,
    Async,
}

fn send_via(side: Side, ch: &Chan<usize>, v: usize) {
    let dummy: Chan<usize> = Chan::new(0);
    match side {
        Side::Plain => ch.send(v).unwrap(),
        Side::Select => select! {
            send(ch, v) -> r => r.unwrap(),
            recv(dummy) -> _ => unreachable!(),
        },
        Side::Async => futures::executor::block_on(ch.send_async(v)).unwrap(),
    }
}

fn recv_via(side: Side, ch: &Chan<usize>) -> Option<usize> {
    let dummy: Chan<usize> = Chan::new(0);
    match side {
        Side::Plain => ch.recv(),
        Side::Select => select! {
            recv(dummy) -> _ => unreachable!(),
            recv(ch) -> v => v,
        },
        Side::Async => futures::executor::block_on(ch.recv_async()),
    }
}

const SIDES: [(Side, Side); 4] = [
    (Side::Plain, Side::Plain),
    (Side::Select, Side::Async),
    (Side::Async, Side::Select),
    (Side::Async, Side::Async),
];

/// The n-th send happens before the n-th receive completes: what the sender wrote (relaxed)
/// before sending is visible to the receiver after receiving.
#[test]
fn mm_send_happens_before_the_receive_completes() {
    bounded("send hb recv", || {
        for cap in [0, 1, 64] {
            for (s, r) in SIDES {
                let n = MM_N / 4;
                let ch: Chan<usize> = Chan::new(cap);
                let data = cells(n);
                let sender = {
                    let (ch, data) = (ch.clone(), data.clone());
                    thread::spawn(move || {
                        for k in 0..n {
                            data[k].store(k as u64 * 7 + 1, Relaxed);
                            send_via(s, &ch, k);
                        }
                    })
                };
                for k in 0..n {
                    assert_eq!(recv_via(r, &ch), Some(k));
                    assert_eq!(
                        data[k].load(Relaxed),
                        k as u64 * 7 + 1,
                        "cap {cap} {s:?}→{r:?}"
                    );
                }
                sender.join().unwrap();
            }
        }
    });
}

/// On an unbuffered channel the receive happens before the send completes: what the receiver
/// wrote before receiving is visible to the sender once its send returns.
#[test]
fn mm_unbuffered_receive_happens_before_the_send_completes() {
    bounded("recv hb send", || {
        for (s, r) in SIDES {
            let n = MM_N / 4;
            let ch: Chan<usize> = Chan::new(0);
            let mark = cells(n);
            let receiver = {
                let (ch, mark) = (ch.clone(), mark.clone());
                thread::spawn(move || {
                    for k in 0..n {
                        mark[k].store(1, Relaxed);
                        assert_eq!(recv_via(r, &ch), Some(k));
                    }
                })
            };
            for k in 0..n {
                send_via(s, &ch, k);
                assert_eq!(
                    mark[k].load(Relaxed),
                    1,
                    "send {k} returned before its receive ({s:?}→{r:?})"
                );
            }
            receiver.join().unwrap();
        }
    });
}

/// With capacity C, the k-th receive happens before the (k+C)-th send completes.
#[test]
fn mm_kth_receive_happens_before_send_k_plus_cap_completes() {
    bounded("recv k hb send k+C", || {
        for cap in [1usize, 2, 5] {
            for (s, r) in SIDES {
                let n = MM_N / 4;
                let ch: Chan<usize> = Chan::new(cap);
                let started = cells(n);
                let receiver = {
                    let (ch, started) = (ch.clone(), started.clone());
                    thread::spawn(move || {
                        for k in 0..n {
                            started[k].store(1, Relaxed);
                            assert_eq!(recv_via(r, &ch), Some(k));
                        }
                    })
                };
                for j in 0..n {
                    send_via(s, &ch, j);
                    if j >= cap {
                        assert_eq!(
                            started[j - cap].load(Relaxed),
                            1,
                            "send {j} completed before receive {} (cap {cap})",
                            j - cap
                        );
                    }
                }
                receiver.join().unwrap();
            }
        }
    });
}

/// A buffered channel as a counting semaphore (acquire: send, release: receive) admits at
/// most C holders at once, across threads and tasks.
#[test]
fn mm_buffered_channel_as_counting_semaphore() {
    const C: usize = 3;
    const ROUNDS: usize = 300;
    bounded("semaphore", || {
        let sem: Chan<()> = Chan::new(C);
        let active = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let critical = |active: &AtomicUsize, max: &AtomicUsize| {
            let now = active.fetch_add(1, Relaxed) + 1;
            max.fetch_max(now, Relaxed);
            thread::yield_now();
            active.fetch_sub(1, Relaxed);
        };
        let rt = tokio_rt();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (sem, active, max) = (sem.clone(), active.clone(), max.clone());
                rt.spawn(async move {
                    for _ in 0..ROUNDS {
                        sem.send_async(()).await.unwrap();
                        critical(&active, &max);
                        sem.recv_async().await.unwrap();
                    }
                })
            })
            .collect();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (sem, active, max) = (sem.clone(), active.clone(), max.clone());
                thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        if i % 2 == 0 {
                            sem.send(()).unwrap();
                        } else {
                            select! { send(sem, ()) -> r => r.unwrap() }
                        }
                        critical(&active, &max);
                        sem.recv().unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|h| h.join().unwrap());
        for t in tasks {
            rt.block_on(t).unwrap();
        }
        let max = max.load(Relaxed);
        assert!(
            (1..=C).contains(&max),
            "{max} holders at once, capacity {C}"
        );
        assert!(sem.is_empty());
    });
}

/// The close of a channel happens before a receive that reports it closed.
#[test]
fn mm_close_happens_before_the_receive_that_sees_it() {
    bounded("close hb recv", || {
        for round in 0..400 {
            let ch: Chan<u8> = Chan::new(round % 3);
            let flag = Arc::new(AtomicU64::new(0));
            let closer = {
                let (ch, flag) = (ch.clone(), flag.clone());
                thread::spawn(move || {
                    flag.store(42, Relaxed);
                    ch.close();
                })
            };
            match round % 4 {
                0 => assert_eq!(ch.recv(), None),
                1 => assert_eq!(select! { recv(ch) -> v => v }, None),
                2 => assert_eq!(futures::executor::block_on(ch.recv_async()), None),
                _ => until("try_recv to see the close", || {
                    (ch.try_recv() == Err(TryRecvError::Closed)).then_some(())
                }),
            }
            assert_eq!(flag.load(Relaxed), 42, "round {round}");
            closer.join().unwrap();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Cancel safety of the async forms
// ---------------------------------------------------------------------------------------------

/// A pending `recv_async` is handed a value (by a blocking sender, which returns) and then
/// dropped: the value goes back and the next receive gets it.
#[test]
fn cancel_recv_async_after_hand_off_returns_the_value() {
    bounded("recv_async cancel", || {
        for cap in [0, 1, 4] {
            let ch: Chan<u32> = Chan::new(cap);
            let mut f = Box::pin(ch.recv_async());
            assert!(poll_once(f.as_mut()).is_pending());
            let tx = ch.clone();
            // The sender finds the waiting receiver and hands the value over.
            thread::spawn(move || tx.send(5).unwrap()).join().unwrap();
            drop(f);
            assert_eq!(ch.try_recv(), Ok(5), "cap {cap}");
            assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
        }
    });
}

/// The value given back goes straight to the next waiting receiver.
#[test]
fn cancel_recv_async_passes_the_value_to_the_next_waiting_receiver() {
    let ch: Chan<u32> = Chan::new(0);
    let mut f1 = Box::pin(ch.recv_async());
    let mut f2 = Box::pin(ch.recv_async());
    assert!(poll_once(f1.as_mut()).is_pending());
    assert!(poll_once(f2.as_mut()).is_pending());
    ch.try_send(1).unwrap(); // to f1, the first in line
    drop(f1);
    assert_eq!(poll_once(f2.as_mut()), Poll::Ready(Some(1)));
    // And to a blocked thread.
    let mut f = Box::pin(ch.recv_async());
    assert!(poll_once(f.as_mut()).is_pending());
    let rx = ch.clone();
    let b = stays_blocked("receiver behind a future", move || rx.recv());
    ch.try_send(2).unwrap();
    drop(f);
    assert_eq!(b.join(), Some(2));
}

/// A value given back goes to the head of the buffer: FIFO order holds.
#[test]
fn cancel_recv_async_given_back_value_keeps_fifo_order() {
    let ch: Chan<u32> = Chan::new(1);
    let mut f = Box::pin(ch.recv_async());
    assert!(poll_once(f.as_mut()).is_pending());
    ch.try_send(1).unwrap(); // handed to f
    ch.try_send(2).unwrap(); // buffered
    drop(f);
    assert_eq!(ch.try_recv(), Ok(1));
    assert_eq!(ch.try_recv(), Ok(2));
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn cancel_recv_stream_drop_returns_the_value() {
    use futures::Stream;
    let ch: Chan<u32> = Chan::new(0);
    let mut s = ch.stream();
    assert!(Pin::new(&mut s)
        .poll_next(&mut Context::from_waker(noop_waker_ref()))
        .is_pending());
    ch.try_send(3).unwrap();
    drop(s);
    assert_eq!(ch.try_recv(), Ok(3));
    // A stream dropped while idle takes nothing.
    let ch: Chan<u32> = Chan::new(2);
    drop(ch.receiver().stream());
    ch.send(4).unwrap();
    assert_eq!(ch.recv(), Some(4));
}

/// A pending `select_async!` is handed a value on one arm and then dropped: the value goes
/// back; a pending send arm is withdrawn with its value.
#[test]
fn cancel_select_async_returns_handed_values_and_withdraws_sends() {
    let (a, b): (Chan<u32>, Chan<u32>) = (Chan::new(0), Chan::new(0));
    let out: Chan<u32> = Chan::new(0);
    {
        let mut f = pin!(async {
            select_async! {
                recv(a) -> v => v,
                recv(b) -> v => v,
                send(out, 99) -> _ => None,
            }
        });
        assert!(poll_once(f.as_mut()).is_pending());
        b.try_send(7).unwrap();
        assert_eq!(
            a.try_send(8),
            Err(TrySendError::Full(8)),
            "the select fired once only"
        );
    }
    assert_eq!(b.try_recv(), Ok(7));
    assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        out.try_recv(),
        Err(TryRecvError::Empty),
        "the send arm was withdrawn"
    );
    // A pending dynamic select is dropped the same way, and stays usable.
    let mut sel = Select::new();
    sel.recv(&a);
    let s = sel.send(&out, 5);
    {
        let mut f = Box::pin(sel.select_async());
        assert!(poll_once(f.as_mut()).is_pending());
        a.try_send(1).unwrap();
    }
    assert_eq!(a.try_recv(), Ok(1));
    let rx = out.clone();
    let h = thread::spawn(move || rx.recv());
    assert_eq!(
        sel.select(),
        Selected::Send {
            index: s,
            result: Ok(())
        }
    );
    assert_eq!(h.join().unwrap(), Some(5));
}

/// Stress: senders on three channels race with a receiver whose `select_async!` is cancelled
/// over and over, by a tokio timeout (senders pause now and then, so timeouts do fire) or by
/// losing a race against one scheduler round; every value sent is received exactly once.
#[test]
fn cancel_select_async_under_timeouts_loses_and_duplicates_nothing() {
    const PER: u64 = if cfg!(debug_assertions) {
        2_000
    } else {
        10_000
    };
    bounded("select_async under timeouts", || {
        let rt = tokio_rt();
        let chans: Vec<Chan<u64>> = vec![Chan::new(0), Chan::new(0), Chan::new(3)];
        let mut sender_task = None;
        for (i, c) in chans.iter().enumerate() {
            let c = c.clone();
            let base = i as u64 * PER;
            if i == 1 {
                // One sender is a task.
                sender_task = Some(rt.spawn(async move {
                    for k in 0..PER {
                        if k % 100 == 0 {
                            tokio::time::sleep(ms(3)).await;
                        }
                        c.send_async(base + k).await.unwrap();
                    }
                    c.close();
                }));
            } else {
                thread::spawn(move || {
                    for k in 0..PER {
                        if k % 100 == 0 {
                            thread::sleep(ms(3));
                        }
                        c.send(base + k).unwrap();
                    }
                    c.close();
                });
            }
        }
        let seen = Seen::new(3 * PER as usize);
        let s2 = seen.clone();
        let (timeouts, lost_races) = rt.block_on(async move {
            let mut open = [true; 3];
            let (mut timeouts, mut lost_races) = (0u64, 0u64);
            let mut turn = 0u64;
            while open.iter().any(|&o| o) {
                turn += 1;
                let live: Vec<Chan<u64>> = (0..3)
                    .map(|i| {
                        if open[i] {
                            chans[i].clone()
                        } else {
                            Chan::nil()
                        }
                    })
                    .collect();
                let sel = async {
                    select_async! {
                        recv(live[0]) -> v => (0, v),
                        recv(live[1]) -> v => (1, v),
                        recv(live[2]) -> v => (2, v),
                    }
                };
                let got = if turn.is_multiple_of(2) {
                    let r = tokio::time::timeout(Duration::from_micros(200), sel).await;
                    timeouts += r.is_err() as u64;
                    r.ok()
                } else {
                    tokio::select! {
                        biased;
                        got = sel => Some(got),
                        _ = tokio::task::yield_now() => {
                            lost_races += 1;
                            None
                        }
                    }
                };
                match got {
                    None => {}
                    Some((_, Some(v))) => s2.mark(v),
                    Some((i, None)) => open[i] = false,
                }
            }
            (timeouts, lost_races)
        });
        rt.block_on(sender_task.unwrap()).unwrap();
        seen.assert_all_once();
        // Not an assertion on timing: only a note of how much cancelling went on.
        eprintln!("select_async cancelled by {timeouts} timeouts and {lost_races} lost races");
    });
}

/// Stress, sharper: the receiver polls each `select_async!` once and drops it while still
/// pending (or, every other time, drives it to completion), with sender threads racing.
#[test]
fn cancel_select_async_poll_once_and_drop_loses_and_duplicates_nothing() {
    const PER: u64 = if cfg!(debug_assertions) {
        5_000
    } else {
        30_000
    };
    bounded("select_async poll-and-drop", || {
        let chans: Vec<Chan<u64>> = vec![Chan::new(0), Chan::new(1), Chan::new(0)];
        let senders: Vec<_> = chans
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = c.clone();
                thread::spawn(move || {
                    for k in 0..PER {
                        c.send(i as u64 * PER + k).unwrap();
                    }
                    c.close();
                })
            })
            .collect();
        let seen = Seen::new(3 * PER as usize);
        let mut open = [true; 3];
        let mut turn = 0u64;
        while open.iter().any(|&o| o) {
            turn += 1;
            let live: Vec<Chan<u64>> = (0..3)
                .map(|i| {
                    if open[i] {
                        chans[i].clone()
                    } else {
                        Chan::nil()
                    }
                })
                .collect();
            let mut f = pin!(async {
                select_async! {
                    recv(live[0]) -> v => (0, v),
                    recv(live[1]) -> v => (1, v),
                    recv(live[2]) -> v => (2, v),
                }
            });
            let got = match poll_once(f.as_mut()) {
                Poll::Ready(got) => Some(got),
                Poll::Pending if turn.is_multiple_of(2) => None, // dropped while pending
                Poll::Pending => Some(futures::executor::block_on(f.as_mut())),
            };
            match got {
                None => {}
                Some((_, Some(v))) => seen.mark(v),
                Some((i, None)) => open[i] = false,
            }
        }
        senders.into_iter().for_each(|h| h.join().unwrap());
        seen.assert_all_once();
    });
}

/// A value that counts its drops.
struct Tracked {
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Relaxed);
    }
}

/// Stress: `send_async` futures polled once and dropped while a receiver races to take their
/// value. A value is received at most once; a send that completed was received; every value
/// is dropped exactly once (none leaked in the channel, none dropped twice).
#[test]
fn cancel_send_async_never_duplicates_or_leaks() {
    const N: u64 = if cfg!(debug_assertions) {
        10_000
    } else {
        50_000
    };
    bounded("send_async poll-and-drop", || {
        for cap in [0, 2] {
            let ch: Chan<Tracked> = Chan::new(cap);
            let drops = Arc::new(AtomicUsize::new(0));
            let received = Seen::new(N as usize);
            let receiver = {
                let (ch, received) = (ch.clone(), received.clone());
                thread::spawn(move || {
                    for t in &ch {
                        received.mark(t.id);
                    }
                })
            };
            let mut completed = Vec::new();
            for id in 0..N {
                let value = Tracked {
                    id,
                    drops: drops.clone(),
                };
                let mut f = Box::pin(ch.send_async(value));
                match poll_once(f.as_mut()) {
                    Poll::Ready(r) => {
                        assert!(r.is_ok());
                        completed.push(id);
                    }
                    Poll::Pending if id % 3 == 0 => {
                        assert!(futures::executor::block_on(f).is_ok());
                        completed.push(id);
                    }
                    Poll::Pending => drop(f),
                }
            }
            ch.close();
            receiver.join().unwrap();
            for id in completed {
                assert_eq!(
                    received.0[id as usize].load(Relaxed),
                    1,
                    "sent {id} was not received"
                );
            }
            assert_eq!(
                drops.load(Relaxed),
                N as usize,
                "cap {cap}: values leaked or dropped twice"
            );
        }
    });
}

/// A dropped pending `send_async` takes its value away: no later receiver sees it.
#[test]
fn cancel_send_async_withdraws_the_value() {
    let ch: Chan<u32> = Chan::new(0);
    let mut f = Box::pin(ch.send_async(1));
    assert!(poll_once(f.as_mut()).is_pending());
    drop(f);
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    let rx = ch.clone();
    let b = stays_blocked("receiver after a withdrawn send", move || rx.recv());
    ch.send(2).unwrap();
    assert_eq!(b.join(), Some(2));
    // On a full buffered channel too.
    let ch: Chan<u32> = Chan::new(1);
    ch.send(1).unwrap();
    let mut f = Box::pin(ch.send_async(2));
    assert!(poll_once(f.as_mut()).is_pending());
    drop(f);
    assert_eq!(ch.try_recv(), Ok(1));
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
}

/// A pending `send_async` whose value a receiver took has sent, even if it is then dropped
/// without being polled again.
#[test]
fn cancel_send_async_after_the_receiver_took_it_counts_as_sent() {
    let ch: Chan<u32> = Chan::new(0);
    let mut f = Box::pin(ch.send_async(1));
    assert!(poll_once(f.as_mut()).is_pending());
    assert_eq!(ch.try_recv(), Ok(1));
    drop(f);
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    let mut f = Box::pin(ch.send_async(2));
    assert!(poll_once(f.as_mut()).is_pending());
    assert_eq!(ch.try_recv(), Ok(2));
    assert_eq!(poll_once(f.as_mut()), Poll::Ready(Ok(())));
}

// ---------------------------------------------------------------------------------------------
// Threads and tasks on one channel
// ---------------------------------------------------------------------------------------------

type Spawn<'a> = &'a dyn Fn(Pin<Box<dyn Future<Output = ()> + Send>>);

/// Producers and consumers, half threads and half tasks, each side using every form (plain,
/// select, async, stream): every value is received exactly once.
fn mpmc_mix(cap: usize, spawn: Spawn<'_>) {
    use futures::StreamExt;
    const PER: u64 = if cfg!(debug_assertions) {
        3_000
    } else {
        20_000
    };
    const PRODUCERS: u64 = 4;
    let ch: Chan<u64> = Chan::new(cap);
    let seen = Seen::new((PRODUCERS * PER) as usize);
    let producing = Arc::new(AtomicUsize::new(PRODUCERS as usize));
    let finished: Chan<()> = Chan::new(8);
    let end = |ch: &Chan<u64>, producing: &AtomicUsize| {
        if producing.fetch_sub(1, Relaxed) == 1 {
            ch.close();
        }
    };
    let mut threads = Vec::new();
    for p in 0..PRODUCERS {
        let (ch, producing, fin) = (ch.clone(), producing.clone(), finished.clone());
        let values = (p * PER)..((p + 1) * PER);
        match p {
            0 => threads.push(thread::spawn(move || {
                values.for_each(|v| ch.send(v).unwrap());
                end(&ch, &producing);
            })),
            1 => threads.push(thread::spawn(move || {
                let other: Chan<u64> = Chan::new(0);
                for v in values {
                    select! {
                        send(ch, v) -> r => r.unwrap(),
                        recv(other) -> _ => unreachable!(),
                    }
                }
                end(&ch, &producing);
            })),
            2 => spawn(Box::pin(async move {
                for v in values {
                    ch.send_async(v).await.unwrap();
                }
                end(&ch, &producing);
                fin.send_async(()).await.unwrap();
            })),
            _ => spawn(Box::pin(async move {
                let other: Chan<u64> = Chan::new(0);
                for v in values {
                    select_async! {
                        send(ch, v) -> r => r.unwrap(),
                        recv(other) -> _ => unreachable!(),
                    }
                }
                end(&ch, &producing);
                fin.send_async(()).await.unwrap();
            })),
        }
    }
    for c in 0..4 {
        let (ch, seen, fin) = (ch.clone(), seen.clone(), finished.clone());
        match c {
            0 => threads.push(thread::spawn(move || ch.iter().for_each(|v| seen.mark(v)))),
            1 => threads.push(thread::spawn(move || loop {
                select! {
                    recv(ch) -> v => match v {
                        Some(v) => seen.mark(v),
                        None => break,
                    },
                }
            })),
            2 => spawn(Box::pin(async move {
                while let Some(v) = ch.recv_async().await {
                    seen.mark(v);
                }
                fin.send_async(()).await.unwrap();
            })),
            _ => spawn(Box::pin(async move {
                let mut s = ch.stream();
                while let Some(v) = s.next().await {
                    seen.mark(v);
                }
                fin.send_async(()).await.unwrap();
            })),
        }
    }
    threads.into_iter().for_each(|h| h.join().unwrap());
    for _ in 0..4 {
        finished.recv().unwrap(); // two producer tasks, two consumer tasks
    }
    seen.assert_all_once();
}

#[test]
fn mix_threads_and_tokio_tasks_mpmc() {
    bounded("mix on tokio", || {
        let rt = tokio_rt();
        for cap in [0, 1, 16] {
            let h = rt.handle().clone();
            mpmc_mix(cap, &move |f| drop(h.spawn(f)));
        }
    });
}

#[test]
fn mix_threads_and_thread_pool_tasks_mpmc() {
    bounded("mix on ThreadPool", || {
        let pool = pool();
        for cap in [0, 1, 16] {
            let p = pool.clone();
            mpmc_mix(cap, &move |f| p.spawn_ok(f));
        }
    });
}

/// A task loops over a `select_async!` with a receive arm and a send arm while a thread sends
/// into the first channel and receives from the second: both streams complete, in order.
#[test]
fn mix_select_async_with_send_and_recv_arms_against_a_thread() {
    const N: u64 = if cfg!(debug_assertions) {
        10_000
    } else {
        50_000
    };
    bounded("select_async send+recv", || {
        let rt = tokio_rt();
        let (inbox, outbox): (Chan<u64>, Chan<u64>) = (Chan::new(0), Chan::new(0));
        let (i2, o2) = (inbox.clone(), outbox.clone());
        let task = rt.spawn(async move {
            let (mut got, mut sent, mut next_in) = (0u64, 0u64, 0u64);
            while next_in < N || sent < N {
                let live_in = if next_in < N { i2.clone() } else { Chan::nil() };
                let live_out = if sent < N { o2.clone() } else { Chan::nil() };
                select_async! {
                    recv(live_in) -> v => {
                        assert_eq!(v, Some(next_in));
                        got += v.unwrap();
                        next_in += 1;
                    }
                    send(live_out, sent) -> r => {
                        r.unwrap();
                        sent += 1;
                    }
                }
            }
            got
        });
        let feeder = thread::spawn(move || (0..N).for_each(|v| inbox.send(v).unwrap()));
        for v in 0..N {
            assert_eq!(outbox.recv(), Some(v));
        }
        feeder.join().unwrap();
        assert_eq!(rt.block_on(task).unwrap(), N * (N - 1) / 2);
    });
}

/// A task and a thread rendezvous on an unbuffered channel in both directions (ping-pong).
#[test]
fn mix_ping_pong_between_a_thread_and_a_task() {
    const N: u32 = if cfg!(debug_assertions) {
        10_000
    } else {
        50_000
    };
    bounded("ping-pong", || {
        let rt = tokio_rt();
        let (ping, pong): (Chan<u32>, Chan<u32>) = (Chan::new(0), Chan::new(0));
        let (p2, q2) = (ping.clone(), pong.clone());
        let task = rt.spawn(async move {
            while let Some(v) = p2.recv_async().await {
                q2.send_async(v + 1).await.unwrap();
            }
        });
        for i in 0..N {
            ping.send(i * 2).unwrap();
            assert_eq!(pong.recv(), Some(i * 2 + 1));
        }
        ping.close();
        rt.block_on(task).unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Misuse and bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn misuse_try_new_with_a_huge_capacity_names_it() {
    for huge in [usize::MAX / 16, usize::MAX] {
        let err = Chan::<u64>::try_new(huge).unwrap_err();
        assert_eq!(err.capacity(), huge);
        let msg = err.to_string();
        assert!(msg.contains(&huge.to_string()), "{msg}");
        assert!(msg.contains("8 bytes"), "{msg}");
    }
}

#[test]
fn misuse_new_with_a_huge_capacity_panics_with_that_message() {
    let huge = usize::MAX / 16;
    let want = Chan::<u64>::try_new(huge).unwrap_err().to_string();
    let got = panic_message(|| {
        let _ = Chan::<u64>::new(huge);
    });
    assert_eq!(got, want);
}

#[test]
fn misuse_a_panicking_close_changes_nothing() {
    let ch = Chan::new(2);
    ch.send(1).unwrap();
    ch.close();
    let _ = panic_message(|| ch.close());
    assert_eq!(ch.recv(), Some(1));
    assert_eq!(ch.recv(), None);
    assert_eq!(ch.send(2), Err(SendError(2)));
}
