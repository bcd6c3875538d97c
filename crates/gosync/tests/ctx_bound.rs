//! Thread-blocking waits bounded by a context: `RawMutex::lock_ctx` / `Mutex::lock_ctx`,
//! `RawRwMutex::rlock_ctx` / `lock_ctx` (`RwMutex::read_ctx` / `write_ctx`),
//! `WaitGroup::wait_ctx`, `Cond::wait_ctx`, and `send_ctx` / `recv_ctx` on `Chan`, `Sender`
//! and `Receiver` (nil channel included).
//!
//! What is tested, for each of them: the context ending while the caller is queued (cancelled,
//! or its deadline passing) returns the context's error, takes the waiter out of both queues and
//! serves the next waiter (a channel send gives its value back); a context already done fails at
//! once; the context ending just as the resource is handed over (stress loops racing `cancel`
//! against the release) has exactly one outcome and loses nothing; threads and tasks queue
//! together behind a cancelled waiter; the async idiom (`select` on `ctx.done()`) loses nothing
//! when the lock future is dropped; and misuse still panics as in the plain forms.
#![cfg(not(loom))]

mod support;

use std::hint::spin_loop;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use futures::future::{self, Either};
use gosync::chan::{Chan, SendError, TryRecvError};
use gosync::context::{self, CancelFunc, Context, ContextError, SendCtxError};
use gosync::diag;
use gosync::sync::{Cond, Mutex, RawMutex, RawRwMutex, RwMutex, WaitGroup};
use gosync::WaitKind;
use support::{within, LIVENESS};

/// Rounds of each stress loop.
const ROUNDS: usize = if cfg!(debug_assertions) { 2000 } else { 5000 };

// ----- helpers ------------------------------------------------------------------------------

/// A thread whose result is collected with a liveness bound; a panic in it is re-raised by
/// [`join`](Spawned::join), with its own message.
struct Spawned<T> {
    name: String,
    rx: mpsc::Receiver<thread::Result<T>>,
}

/// Runs `f` on a new thread named `name` (names are what `diag::blocked` shows).
fn spawn<T: Send + 'static>(
    name: impl Into<String>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Spawned<T> {
    let name = name.into();
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn a thread");
    Spawned { name, rx }
}

impl<T> Spawned<T> {
    fn join(self) -> T {
        self.join_within(LIVENESS)
    }

    fn join_within(self, limit: Duration) -> T {
        match self.rx.recv_timeout(limit) {
            Ok(Ok(v)) => v,
            Ok(Err(p)) => panic::resume_unwind(p),
            Err(_) => panic!("thread {}: still blocked after {limit:?}", self.name),
        }
    }
}

/// Spins (yielding) until `cond` holds; fails the test after [`LIVENESS`].
fn spin_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut n = 0u32;
    while !cond() {
        n = n.wrapping_add(1);
        if n.is_multiple_of(256) {
            assert!(
                start.elapsed() < LIVENESS,
                "{what}: not so after {LIVENESS:?}"
            );
        }
        thread::yield_now();
    }
}

/// Whether the thread named `name` is blocked in `op` right now. Channel operations record
/// their wait only once their entry is in the channel's queue, so this means "queued".
fn blocked_in(name: &str, op: WaitKind) -> bool {
    diag::blocked().iter().any(|b| {
        b.op == op && matches!(&b.waiter, diag::Waiter::Thread { name: Some(n), .. } if n == name)
    })
}

// ----- the context ending while the caller is queued ----------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Cancel,
    Deadline,
}

/// A context that ends one of the two ways once the scenario has seen its waiters queued.
struct Ending {
    /// The test's name, to name its threads.
    name: &'static str,
    end: End,
    ctx: Context,
    cancel: CancelFunc,
}

impl Ending {
    fn new(name: &'static str, end: End, timeout: Duration) -> Self {
        let bg = context::background();
        let (ctx, cancel) = match end {
            End::Cancel => context::with_cancel(&bg),
            End::Deadline => context::with_timeout(&bg, timeout),
        };
        Ending {
            name,
            end,
            ctx,
            cancel,
        }
    }

    fn ctx(&self) -> Context {
        self.ctx.clone()
    }

    /// The error the bounded call must return.
    fn err(&self) -> ContextError {
        match self.end {
            End::Cancel => ContextError::Canceled,
            End::Deadline => ContextError::DeadlineExceeded,
        }
    }

    /// A thread name unique to this test.
    fn thread(&self, role: &str) -> String {
        format!("{}/{role}", self.name)
    }

    /// Waits until `queued` holds; `false` if the deadline passed first (the attempt then
    /// proves less than it should, and is retried with a longer timeout).
    fn wait_queued(&self, what: &str, queued: impl Fn() -> bool) -> bool {
        match self.end {
            End::Cancel => {
                spin_until(what, &queued);
                true
            }
            End::Deadline => {
                spin_until(what, || queued() || self.ctx.err().is_some());
                // `queued` first: true, then the context still live, means queued in time.
                queued() && self.ctx.err().is_none()
            }
        }
    }

    /// Waits until `queued` holds, then ends the context: cancels it, or waits for its
    /// deadline. `false` if the deadline passed before `queued` was seen.
    fn end_when(&self, what: &str, queued: impl Fn() -> bool) -> bool {
        let seen = self.wait_queued(what, queued);
        match self.end {
            End::Cancel => self.cancel.cancel(),
            End::Deadline => assert_eq!(self.ctx.wait(), ContextError::DeadlineExceeded),
        }
        seen
    }
}

/// Runs `attempt` once for a cancel; for a deadline, with timeouts doubling from 50 ms until
/// an attempt saw its waiters queued before the deadline passed (a liveness loop, not a
/// timing assertion: a slow machine only costs a retry).
fn each_attempt(name: &'static str, end: End, mut attempt: impl FnMut(&Ending) -> bool) {
    let mut timeout = Duration::from_millis(50);
    loop {
        if attempt(&Ending::new(name, end, timeout)) {
            return;
        }
        assert_eq!(end, End::Deadline, "{name}: a cancel attempt always counts");
        timeout *= 2;
        assert!(
            timeout < LIVENESS / 2,
            "{name}: never saw the waiters queued before the deadline"
        );
    }
}

/// Two tests of one scenario: the context cancelled, and its deadline passing.
macro_rules! cancel_and_deadline {
    ($(#[$doc:meta])* $cancel:ident, $deadline:ident, $scenario:expr) => {
        $(#[$doc])*
        #[test]
        fn $cancel() {
            each_attempt(stringify!($cancel), End::Cancel, $scenario);
        }

        $(#[$doc])*
        #[test]
        fn $deadline() {
            each_attempt(stringify!($deadline), End::Deadline, $scenario);
        }
    };
}

/// A `lock_ctx` thread queued on a held mutex, a plain `lock` thread behind it.
fn mutex_scenario(e: &Ending) -> bool {
    let m = Arc::new(Mutex::new(0u32));
    let guard = m.lock();
    let a = spawn(e.thread("A"), {
        let (m, ctx) = (m.clone(), e.ctx());
        move || m.lock_ctx(&ctx).map(|mut g| *g += 100)
    });
    let a_seen = e.wait_queued("lock_ctx queued", || {
        m.waiters() == 1 && e.ctx.waiters() == 1
    });
    let b = spawn(e.thread("B"), {
        let m = m.clone();
        move || *m.lock() += 1
    });
    let seen = e.end_when("both queued", || m.waiters() == 2 && e.ctx.waiters() == 1) && a_seen;
    assert_eq!(a.join(), Err(e.err()));
    assert_eq!(e.ctx.waiters(), 0, "the waiter left the context's queue");
    if seen {
        assert_eq!(m.waiters(), 1, "the waiter left the mutex's queue; B waits");
    }
    assert!(m.is_locked(), "still held by the guard");
    drop(guard);
    b.join();
    assert_eq!(*m.lock(), 1, "B got the lock; A never did");
    assert_eq!(m.waiters(), 0);
    seen
}

cancel_and_deadline!(
    /// `Mutex::lock_ctx`: the context ends while queued; the thread behind gets the lock.
    mutex_lock_ctx_cancelled_while_queued,
    mutex_lock_ctx_deadline_while_queued,
    mutex_scenario
);

/// An `rlock_ctx` thread queued behind a writer, a plain reader behind it.
fn rwmutex_read_scenario(e: &Ending) -> bool {
    let rw = Arc::new(RwMutex::new(0u32));
    let w = rw.write();
    let a = spawn(e.thread("A"), {
        let (rw, ctx) = (rw.clone(), e.ctx());
        move || rw.read_ctx(&ctx).map(|g| *g)
    });
    let a_seen = e.wait_queued("read_ctx queued", || {
        rw.waiters() == 1 && e.ctx.waiters() == 1
    });
    let b = spawn(e.thread("B"), {
        let rw = rw.clone();
        move || *rw.read()
    });
    let seen = e.end_when("both queued", || rw.waiters() == 2 && e.ctx.waiters() == 1) && a_seen;
    assert_eq!(a.join(), Err(e.err()));
    assert_eq!(e.ctx.waiters(), 0);
    if seen {
        assert_eq!(rw.waiters(), 1, "only B waits");
    }
    drop(w);
    assert_eq!(b.join(), 0);
    assert_eq!(rw.reader_count(), 0, "A holds no read lock");
    assert!(rw.try_write().is_some(), "nothing is left held");
    assert_eq!(rw.waiters(), 0);
    seen
}

cancel_and_deadline!(
    /// `RwMutex::read_ctx`: the context ends while queued behind a writer; the reader behind
    /// gets in when the writer unlocks, and no read lock is left counted.
    rwmutex_read_ctx_cancelled_while_queued,
    rwmutex_read_ctx_deadline_while_queued,
    rwmutex_read_scenario
);

/// A `write_ctx` thread queued behind another writer, a plain writer behind it.
fn rwmutex_write_behind_writer_scenario(e: &Ending) -> bool {
    let rw = Arc::new(RwMutex::new(0u32));
    let w = rw.write();
    let a = spawn(e.thread("A"), {
        let (rw, ctx) = (rw.clone(), e.ctx());
        move || rw.write_ctx(&ctx).map(|mut g| *g += 100)
    });
    let a_seen = e.wait_queued("write_ctx queued", || {
        rw.waiters() == 1 && e.ctx.waiters() == 1
    });
    let b = spawn(e.thread("B"), {
        let rw = rw.clone();
        move || *rw.write() += 1
    });
    let seen = e.end_when("both queued", || rw.waiters() == 2 && e.ctx.waiters() == 1) && a_seen;
    assert_eq!(a.join(), Err(e.err()));
    assert_eq!(e.ctx.waiters(), 0);
    if seen {
        assert_eq!(rw.waiters(), 1, "only B waits");
        assert_eq!(rw.writer_count(), 2, "the holder and B");
    }
    drop(w);
    b.join();
    assert_eq!(*rw.read(), 1, "B wrote; A never did");
    assert_eq!(rw.writer_count(), 0);
    assert_eq!(rw.waiters(), 0);
    seen
}

cancel_and_deadline!(
    /// `RwMutex::write_ctx` waiting for another writer: the context ends; the writer behind
    /// gets the lock.
    rwmutex_write_ctx_cancelled_while_behind_a_writer,
    rwmutex_write_ctx_deadline_while_behind_a_writer,
    rwmutex_write_behind_writer_scenario
);

/// A `write_ctx` thread announced and waiting for a reader; a reader (C) held up behind it and
/// a writer (D) queued behind it.
fn rwmutex_write_behind_readers_scenario(e: &Ending) -> bool {
    let rw = Arc::new(RwMutex::new(0u32));
    let r = rw.read();
    let a = spawn(e.thread("A"), {
        let (rw, ctx) = (rw.clone(), e.ctx());
        move || rw.write_ctx(&ctx).map(|mut g| *g += 100)
    });
    let a_seen = e.wait_queued("write_ctx waits for the reader", || {
        rw.is_writer_pending() && rw.waiters() == 1 && e.ctx.waiters() == 1
    });
    let c = spawn(e.thread("C"), {
        let rw = rw.clone();
        move || *rw.read()
    });
    let d = spawn(e.thread("D"), {
        let rw = rw.clone();
        move || *rw.write() += 1
    });
    let seen = e.end_when("A, C and D queued", || {
        rw.waiters() == 3 && e.ctx.waiters() == 1
    }) && a_seen;
    assert_eq!(a.join(), Err(e.err()));
    assert_eq!(e.ctx.waiters(), 0);
    if seen {
        // A withdrew: the reader it held up gets in while the first reader still holds.
        assert_eq!(c.join(), 0, "the reader held up by A got in");
        drop(r);
    } else {
        // C may have come after D announced itself: then it waits for D, D for `r`.
        drop(r);
        assert_eq!(c.join(), 0);
    }
    d.join();
    assert_eq!(*rw.read(), 1, "D wrote; A never did");
    assert!(!rw.is_writer_pending());
    assert_eq!(rw.waiters(), 0);
    assert!(rw.try_write().is_some());
    seen
}

cancel_and_deadline!(
    /// `RwMutex::write_ctx` waiting for readers to leave: the context ends; the writer
    /// withdraws, the readers it held up get in, the writer behind gets the lock later.
    rwmutex_write_ctx_cancelled_while_waiting_for_readers,
    rwmutex_write_ctx_deadline_while_waiting_for_readers,
    rwmutex_write_behind_readers_scenario
);

/// A `wait_ctx` thread and a plain `wait` thread on a group with one job outstanding.
fn waitgroup_scenario(e: &Ending) -> bool {
    let wg = WaitGroup::new();
    wg.add(1);
    let a = spawn(e.thread("A"), {
        let (wg, ctx) = (wg.clone(), e.ctx());
        move || wg.wait_ctx(&ctx)
    });
    let a_seen = e.wait_queued("wait_ctx queued", || {
        wg.waiters() == 1 && e.ctx.waiters() == 1
    });
    let b = spawn(e.thread("B"), {
        let wg = wg.clone();
        move || wg.wait()
    });
    let seen = e.end_when("both queued", || wg.waiters() == 2 && e.ctx.waiters() == 1) && a_seen;
    assert_eq!(a.join(), Err(e.err()));
    assert_eq!(e.ctx.waiters(), 0);
    assert_eq!(wg.count(), 1, "the group is unchanged");
    if seen {
        assert_eq!(wg.waiters(), 1, "only B waits");
        // The registration went with the waiter (the state word's waiter field, which only
        // `Debug` shows).
        assert_eq!(format!("{wg:?}"), "WaitGroup { count: 1, waiters: 1 }");
    }
    wg.done();
    b.join();
    assert_eq!(wg.waiters(), 0);
    assert_eq!(format!("{wg:?}"), "WaitGroup { count: 0, waiters: 0 }");
    // Reusable as usual.
    wg.add(1);
    wg.done();
    wg.wait();
    seen
}

cancel_and_deadline!(
    /// `WaitGroup::wait_ctx`: the context ends while waiting; the wait is withdrawn (the
    /// group unchanged) and the other waiter is released by the last `done`.
    waitgroup_wait_ctx_cancelled_while_waiting,
    waitgroup_wait_ctx_deadline_while_waiting,
    waitgroup_scenario
);

/// A `wait_ctx` thread and a plain `wait` thread behind it on one `Cond`.
fn cond_scenario(e: &Ending) -> bool {
    let c = Arc::new(Cond::new(RawMutex::new()));
    let a = spawn(e.thread("A"), {
        let (c, ctx) = (c.clone(), e.ctx());
        move || {
            c.locker().lock();
            let r = c.wait_ctx(&ctx);
            // Nobody else can hold the lock now: B waits, the main thread never locks it.
            let held = c.locker().is_locked();
            c.locker().unlock();
            (r, held)
        }
    });
    let a_seen = e.wait_queued("wait_ctx queued, lock released", || {
        c.waiters() == 1 && e.ctx.waiters() == 1 && !c.locker().is_locked()
    });
    let b = spawn(e.thread("B"), {
        let c = c.clone();
        move || {
            c.locker().lock();
            c.wait();
            c.locker().unlock();
        }
    });
    let seen = e.end_when("both queued", || c.waiters() == 2 && e.ctx.waiters() == 1) && a_seen;
    assert_eq!(
        a.join(),
        (Err(e.err()), true),
        "Err, with the lock held again"
    );
    assert_eq!(e.ctx.waiters(), 0);
    if seen {
        assert_eq!(c.waiters(), 1, "only B waits");
    }
    // (If the deadline came first, B may not have queued yet.)
    spin_until("B waits", || c.waiters() == 1 && !c.locker().is_locked());
    c.signal();
    b.join();
    assert_eq!(c.waiters(), 0);
    assert!(!c.locker().is_locked());
    seen
}

cancel_and_deadline!(
    /// `Cond::wait_ctx`: the context ends while waiting; it returns with the lock held, and
    /// the next `signal` goes to the waiter behind.
    cond_wait_ctx_cancelled_while_waiting,
    cond_wait_ctx_deadline_while_waiting,
    cond_scenario
);

/// A `send_ctx` thread blocked on a channel of capacity `cap` (buffer full), a plain sender
/// behind it.
fn chan_send_scenario(e: &Ending, cap: usize) -> bool {
    let ch = Chan::new(cap);
    for i in 0..cap {
        ch.send(10 + i as u32).unwrap();
    }
    let a = spawn(e.thread("A"), {
        let (ch, ctx) = (ch.clone(), e.ctx());
        move || {
            if cap == 0 {
                ch.send_ctx(&ctx, 1)
            } else {
                ch.sender().send_ctx(&ctx, 1)
            }
        }
    });
    let a_seen = e.wait_queued("send_ctx queued", || e.ctx.waiters() == 1);
    let b_name = e.thread("B");
    let b = spawn(b_name.clone(), {
        let ch = ch.clone();
        move || ch.send(2)
    });
    let seen = e.end_when("both queued", || {
        e.ctx.waiters() == 1 && blocked_in(&b_name, WaitKind::ChanSend)
    }) && a_seen;
    assert_eq!(
        a.join(),
        Err(SendCtxError::Done(e.err(), 1)),
        "the value comes back"
    );
    assert_eq!(e.ctx.waiters(), 0);
    let mut want: Vec<u32> = (0..cap).map(|i| 10 + i as u32).collect();
    want.push(2);
    let got: Vec<u32> = (0..=cap).map(|_| ch.recv().unwrap()).collect();
    assert_eq!(got, want, "the buffer, then B's value; never A's");
    assert_eq!(b.join(), Ok(()));
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    seen
}

cancel_and_deadline!(
    /// `Chan::send_ctx` on an unbuffered channel: the context ends while queued; the value
    /// comes back in `SendCtxError::Done`, and a receiver gets the sender behind's value.
    chan_send_ctx_cancelled_while_queued,
    chan_send_ctx_deadline_while_queued,
    |e| chan_send_scenario(e, 0)
);

cancel_and_deadline!(
    /// `Sender::send_ctx` on a full buffered channel: as unbuffered.
    chan_send_ctx_full_buffer_cancelled_while_queued,
    chan_send_ctx_full_buffer_deadline_while_queued,
    |e| chan_send_scenario(e, 1)
);

/// A `recv_ctx` thread blocked on an empty channel of capacity `cap`, a plain receiver behind.
fn chan_recv_scenario(e: &Ending, cap: usize) -> bool {
    let ch: Chan<u32> = Chan::new(cap);
    let a = spawn(e.thread("A"), {
        let (ch, ctx) = (ch.clone(), e.ctx());
        move || {
            if cap == 0 {
                ch.recv_ctx(&ctx)
            } else {
                ch.receiver().recv_ctx(&ctx)
            }
        }
    });
    let a_seen = e.wait_queued("recv_ctx queued", || e.ctx.waiters() == 1);
    let b_name = e.thread("B");
    let b = spawn(b_name.clone(), {
        let ch = ch.clone();
        move || ch.recv()
    });
    let seen = e.end_when("both queued", || {
        e.ctx.waiters() == 1 && blocked_in(&b_name, WaitKind::ChanRecv)
    }) && a_seen;
    assert_eq!(a.join(), Err(e.err()));
    assert_eq!(e.ctx.waiters(), 0);
    ch.send(5).unwrap();
    assert_eq!(b.join(), Some(5), "the value went to the receiver behind");
    assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    seen
}

cancel_and_deadline!(
    /// `Chan::recv_ctx` on an unbuffered channel: the context ends while queued; the next
    /// value goes to the receiver behind.
    chan_recv_ctx_cancelled_while_queued,
    chan_recv_ctx_deadline_while_queued,
    |e| chan_recv_scenario(e, 0)
);

cancel_and_deadline!(
    /// `Receiver::recv_ctx` on an empty buffered channel: as unbuffered.
    chan_recv_ctx_buffered_cancelled_while_queued,
    chan_recv_ctx_buffered_deadline_while_queued,
    |e| chan_recv_scenario(e, 1)
);

/// A send and a receive on the nil channel, both bounded by one context.
fn nil_chan_scenario(e: &Ending) -> bool {
    let nil: Chan<u32> = Chan::nil();
    let (s_name, r_name) = (e.thread("send"), e.thread("recv"));
    let s = spawn(s_name.clone(), {
        let (tx, ctx) = (nil.sender(), e.ctx());
        move || tx.send_ctx(&ctx, 7)
    });
    let r = spawn(r_name.clone(), {
        let (nil, ctx) = (nil.clone(), e.ctx());
        move || nil.recv_ctx(&ctx)
    });
    let seen = e.end_when("both blocked", || {
        e.ctx.waiters() == 2
            && blocked_in(&s_name, WaitKind::NilChan)
            && blocked_in(&r_name, WaitKind::NilChan)
    });
    assert_eq!(s.join(), Err(SendCtxError::Done(e.err(), 7)));
    assert_eq!(r.join(), Err(e.err()));
    assert_eq!(e.ctx.waiters(), 0);
    seen
}

cancel_and_deadline!(
    /// `send_ctx` / `recv_ctx` on the nil channel block until the context ends, then return
    /// its error (the send's value with it).
    nil_chan_cancelled_while_blocked,
    nil_chan_deadline_while_blocked,
    nil_chan_scenario
);

/// Cancelling a parent ends a wait bounded by a child (and by a `with_value` of it, which
/// shares the child's cancellation).
#[test]
fn cancelling_the_parent_ends_a_wait_bounded_by_a_child() {
    let (parent, cancel) = context::with_cancel(&context::background());
    let child = context::with_cancel(&parent).0;
    let key = context::Key::new("test");
    let valued = context::with_value(&child, &key, 1u8);
    let m = Arc::new(RawMutex::new());
    m.lock();
    let a = spawn("parent-cancel/A", {
        let (m, ctx) = (m.clone(), valued.clone());
        move || m.lock_ctx(&ctx)
    });
    spin_until("lock_ctx queued", || {
        m.waiters() == 1 && child.waiters() == 1
    });
    cancel.cancel();
    assert_eq!(a.join(), Err(ContextError::Canceled));
    assert_eq!(m.waiters(), 0);
    m.unlock();
    assert!(m.try_lock());
    m.unlock();
}

/// A context that can never end (background, `without_cancel`) bounds nothing: the `_ctx`
/// forms wait as the plain ones.
#[test]
fn a_context_that_never_ends_waits_like_the_plain_form() {
    let (cancelled, cancel) = context::with_cancel(&context::background());
    cancel.cancel();
    for ctx in [context::background(), context::without_cancel(&cancelled)] {
        let m = Arc::new(RawMutex::new());
        m.lock();
        let a = spawn("never-ends/A", {
            let (m, ctx) = (m.clone(), ctx.clone());
            move || m.lock_ctx(&ctx)
        });
        spin_until("lock_ctx queued", || m.waiters() == 1);
        m.unlock();
        assert_eq!(a.join(), Ok(()));
        m.unlock();

        let ch = Chan::new(0);
        let r = spawn("never-ends/recv", {
            let (ch, ctx) = (ch.clone(), ctx.clone());
            move || ch.recv_ctx(&ctx)
        });
        ch.send(3u8).unwrap();
        assert_eq!(r.join(), Ok(Some(3)));
        ch.close();
        assert_eq!(ch.recv_ctx(&ctx), Ok(None));
    }
}

/// A channel closed while `send_ctx` / `recv_ctx` wait: `Closed(v)` gives the value back,
/// the receive reports the end of the channel.
#[test]
fn chan_closed_while_bounded_ops_wait() {
    let (ctx, _cancel) = context::with_cancel(&context::background());
    let ch: Chan<u32> = Chan::new(0);
    let s = spawn("closed/send", {
        let (ch, ctx) = (ch.clone(), ctx.clone());
        move || ch.send_ctx(&ctx, 9)
    });
    spin_until("send_ctx queued", || ctx.waiters() == 1);
    ch.close();
    assert_eq!(s.join(), Err(SendCtxError::Closed(9)));

    let ch: Chan<u32> = Chan::new(1);
    let r = spawn("closed/recv", {
        let (rx, ctx) = (ch.receiver(), ctx.clone());
        move || rx.recv_ctx(&ctx)
    });
    spin_until("recv_ctx queued", || ctx.waiters() == 1);
    ch.close();
    assert_eq!(r.join(), Ok(None));
    assert_eq!(ctx.waiters(), 0);
    assert_eq!(ctx.err(), None);
}

// ----- a context already done ---------------------------------------------------------------

/// A cancelled context and one whose deadline has passed, with the error each reports.
fn done_contexts() -> Vec<(Context, ContextError)> {
    let bg = context::background();
    let (cancelled, cancel) = context::with_cancel(&bg);
    cancel.cancel();
    let expired = context::with_deadline(&bg, Instant::now()).0;
    vec![
        (cancelled, ContextError::Canceled),
        (expired, ContextError::DeadlineExceeded),
    ]
}

/// Every `_ctx` form fails at once on a done context — the mutex even when free, a channel
/// operation even when it could proceed — and changes nothing; `wait_ctx` on a zero counter
/// is `Ok` (its docs).
#[test]
fn a_done_context_fails_at_once() {
    for (ctx, err) in done_contexts() {
        assert_eq!(ctx.err(), Some(err));
        within(LIVENESS, "the _ctx forms on a done context", move || {
            let m = RawMutex::new();
            assert_eq!(m.lock_ctx(&ctx), Err(err), "free, but the context is done");
            assert!(!m.is_locked());
            m.lock();
            assert_eq!(m.lock_ctx(&ctx), Err(err));
            assert_eq!(m.waiters(), 0);
            m.unlock();
            let mx = Mutex::new(1);
            assert!(mx.lock_ctx(&ctx).is_err());
            assert!(mx.try_lock().is_some());

            let rw = RwMutex::new(1);
            // SAFETY: no guard is alive, and a done context takes no lock.
            let raw = unsafe { rw.raw() };
            assert_eq!(raw.rlock_ctx(&ctx), Err(err));
            assert_eq!(rw.reader_count(), 0);
            assert_eq!(raw.lock_ctx(&ctx), Err(err));
            assert!(!rw.is_locked());
            assert_eq!(rw.writer_count(), 0);
            assert!(rw.read_ctx(&ctx).is_err());
            assert!(rw.write_ctx(&ctx).is_err());
            assert!(rw.try_write().is_some(), "nothing is left held");

            let wg = WaitGroup::new();
            assert_eq!(
                wg.wait_ctx(&ctx),
                Ok(()),
                "a zero counter: nothing to wait for"
            );
            wg.add(1);
            assert_eq!(wg.wait_ctx(&ctx), Err(err));
            assert_eq!(wg.waiters(), 0);
            assert_eq!(format!("{wg:?}"), "WaitGroup { count: 1, waiters: 0 }");
            wg.done();

            let c = Cond::new(RawMutex::new());
            c.locker().lock();
            assert_eq!(c.wait_ctx(&ctx), Err(err));
            assert!(c.locker().is_locked(), "the lock was never released");
            assert_eq!(c.waiters(), 0);
            c.locker().unlock();

            let ch = Chan::new(1);
            assert_eq!(ch.send_ctx(&ctx, 1), Err(SendCtxError::Done(err, 1)));
            assert_eq!(
                ch.sender().send_ctx(&ctx, 2),
                Err(SendCtxError::Done(err, 2))
            );
            assert!(ch.is_empty(), "room in the buffer, but nothing was sent");
            ch.send(3).unwrap();
            assert_eq!(ch.recv_ctx(&ctx), Err(err));
            assert_eq!(ch.receiver().recv_ctx(&ctx), Err(err));
            assert_eq!(ch.len(), 1, "a value waits, but nothing was received");
            assert_eq!(ch.recv(), Some(3));

            let nil: Chan<u8> = Chan::nil();
            assert_eq!(nil.send_ctx(&ctx, 4), Err(SendCtxError::Done(err, 4)));
            assert_eq!(nil.recv_ctx(&ctx), Err(err));

            assert_eq!(ctx.waiters(), 0);
        });
    }
}

// ----- the context ending just as the resource is handed over -------------------------------

type Job = Box<dyn FnOnce() + Send>;

/// Persistent threads, each running one job per round, for the stress loops.
struct Crew {
    name: String,
    workers: Vec<(mpsc::Sender<Job>, mpsc::Receiver<thread::Result<()>>)>,
}

impl Crew {
    fn new(name: &str, n: usize) -> Self {
        let workers = (0..n)
            .map(|i| {
                let (jobs, jobs_rx) = mpsc::channel::<Job>();
                let (done_tx, done) = mpsc::channel();
                thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        for job in jobs_rx {
                            let r = panic::catch_unwind(AssertUnwindSafe(job));
                            if done_tx.send(r).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("spawn a worker");
                (jobs, done)
            })
            .collect();
        Crew {
            name: name.to_owned(),
            workers,
        }
    }

    fn thread_name(&self, i: usize) -> String {
        format!("{}-{i}", self.name)
    }

    fn run(&self, i: usize, job: impl FnOnce() + Send + 'static) {
        self.workers[i].0.send(Box::new(job)).expect("worker alive");
    }

    /// Waits for worker `i`'s job; re-raises its panic.
    fn wait(&self, i: usize, what: &str) {
        match self.workers[i].1.recv_timeout(LIVENESS) {
            Ok(Ok(())) => {}
            Ok(Err(p)) => panic::resume_unwind(p),
            Err(_) => panic!(
                "{}-{i}: {what}: still blocked after {LIVENESS:?}",
                self.name
            ),
        }
    }
}

/// Where the two racers meet each round, once both have seen the waiters queued: both spin
/// (yielding only after a long while) until both have arrived, so that they leave at nearly
/// the same moment.
struct Gate(AtomicUsize);

impl Gate {
    fn meet(&self, round: usize) {
        self.0.fetch_add(1, Ordering::SeqCst);
        let all = 2 * (round + 1);
        let mut n = 0u32;
        while self.0.load(Ordering::SeqCst) < all {
            n = n.wrapping_add(1);
            if n < 1 << 12 {
                spin_loop();
            } else {
                thread::yield_now();
            }
        }
    }
}

/// The range of each racer's delay after the gate, in spin-loop hints.
const JITTER: u64 = 4000;

fn jitter(iterations: u64) {
    for _ in 0..iterations {
        spin_loop();
    }
}

/// One round's race, on workers 0 and 1 of `crew`: both wait until `ready` (the waiters are
/// queued) and meet at `gate`. Then, in five rounds of eight, after a pseudo-random jitter each,
/// worker 0 runs `end` (the cancel) and worker 1 `release` (the hand-over) at the same time; in
/// two, worker 0 runs `release` then at once `end` (the context ends while the woken waiter is
/// on its way, the window a racing pair hits least); in one, `end` then `release`.
///
/// In every 13th round the waiters are first left queued past the mutex starvation threshold,
/// so that a mutex hands the lock over directly instead of waking the head to compete.
fn race(
    crew: &Crew,
    gate: &Arc<Gate>,
    round: usize,
    ready: impl Fn() -> bool + Send + Sync + 'static,
    end: impl FnOnce() + Send + 'static,
    release: impl FnOnce() + Send + 'static,
) {
    let x = (round as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let (j0, j1) = ((x >> 16) % JITTER, (x >> 40) % JITTER);
    let starve = round % 13 == 12;
    let (mine, theirs): (Job, Job) = match round % 8 {
        0..=4 => (
            Box::new(move || {
                jitter(j0);
                end();
            }),
            Box::new(move || {
                jitter(j1);
                release();
            }),
        ),
        5 | 6 => (
            Box::new(move || {
                release();
                end();
            }),
            Box::new(|| ()),
        ),
        _ => (
            Box::new(move || {
                end();
                release();
            }),
            Box::new(|| ()),
        ),
    };
    let ready = Arc::new(ready);
    let (g, r) = (gate.clone(), ready.clone());
    crew.run(0, move || {
        spin_until("the waiters to queue", &*r);
        if starve {
            thread::sleep(gosync::sync::STARVATION_THRESHOLD * 2);
        }
        g.meet(round);
        mine();
    });
    let g = gate.clone();
    crew.run(1, move || {
        spin_until("the waiters to queue", &*ready);
        g.meet(round);
        theirs();
    });
}

fn settle(crew: &Crew) {
    crew.wait(0, "the cancel");
    crew.wait(1, "the release");
}

/// How many rounds ended each way (printed with `--nocapture`, not asserted: which side wins
/// is up to the scheduler).
fn report(what: &str, oks: usize, errs: usize) {
    eprintln!("{what}: {oks} rounds Ok, {errs} rounds Err");
}

/// Runs a stress loop on its own thread, failing the test if it hangs.
fn stress(what: &'static str, f: impl FnOnce() + Send + 'static) {
    spawn(what, f).join_within(3 * LIVENESS);
}

/// `RawMutex::lock_ctx` while `cancel` races `unlock`: `Ok` means this thread holds the lock,
/// `Err` means the lock went on — to the waiter queued behind (a thread or a task), or back to
/// free. Never both, never neither.
#[test]
fn mutex_lock_ctx_cancel_races_unlock() {
    stress("mutex-stress", || {
        let m = Arc::new(RawMutex::new());
        let crew = Crew::new("mutex-stress", 3);
        let gate = Arc::new(Gate(AtomicUsize::new(0)));
        let (mut oks, mut errs) = (0, 0);
        for round in 0..ROUNDS {
            let (ctx, cancel) = context::with_cancel(&context::background());
            m.lock();
            // Behind the bounded waiter: nobody, a thread, or a task.
            let tail = round % 3;
            if tail != 0 {
                let (m, ctx) = (m.clone(), ctx.clone());
                crew.run(2, move || {
                    spin_until("lock_ctx queued", || m.waiters() == 1 && ctx.waiters() == 1);
                    if tail == 1 {
                        m.lock();
                    } else {
                        block_on(m.lock_async());
                    }
                    m.unlock();
                });
            }
            let queued = 1 + usize::from(tail != 0);
            let ready = {
                let (m, ctx) = (m.clone(), ctx.clone());
                move || m.waiters() == queued && ctx.waiters() == 1
            };
            let holder = m.clone();
            race(
                &crew,
                &gate,
                round,
                ready,
                move || cancel.cancel(),
                move || holder.unlock(),
            );
            let r = m.lock_ctx(&ctx);
            settle(&crew);
            match r {
                Ok(()) => {
                    oks += 1;
                    assert!(
                        m.is_locked(),
                        "round {round}: Ok, so this thread holds the lock"
                    );
                    assert!(!m.try_lock(), "round {round}: Ok, so the lock is not free");
                    m.unlock();
                }
                Err(e) => {
                    errs += 1;
                    assert_eq!(e, ContextError::Canceled);
                }
            }
            if tail != 0 {
                crew.wait(2, "the waiter behind gets the lock");
            }
            assert!(
                m.try_lock(),
                "round {round}: after {r:?} the lock must be free"
            );
            m.unlock();
            assert_eq!(m.waiters(), 0, "round {round}");
            assert_eq!(ctx.waiters(), 0, "round {round}");
        }
        report("mutex", oks, errs);
    });
}

/// `RawRwMutex::rlock_ctx` while `cancel` races the writer's `unlock`: `Ok` means a read lock
/// is held (and must be released), `Err` means none is counted.
#[test]
fn rwmutex_rlock_ctx_cancel_races_unlock() {
    stress("rlock-stress", || {
        let rw = Arc::new(RawRwMutex::new());
        let crew = Crew::new("rlock-stress", 3);
        let gate = Arc::new(Gate(AtomicUsize::new(0)));
        let (mut oks, mut errs) = (0, 0);
        for round in 0..ROUNDS {
            let (ctx, cancel) = context::with_cancel(&context::background());
            rw.lock();
            let tail = round % 3;
            if tail != 0 {
                let (rw, ctx) = (rw.clone(), ctx.clone());
                crew.run(2, move || {
                    spin_until("rlock_ctx queued", || {
                        rw.waiters() == 1 && ctx.waiters() == 1
                    });
                    if tail == 1 {
                        rw.rlock();
                    } else {
                        block_on(rw.rlock_async());
                    }
                    rw.runlock();
                });
            }
            let queued = 1 + usize::from(tail != 0);
            let ready = {
                let (rw, ctx) = (rw.clone(), ctx.clone());
                move || rw.waiters() == queued && ctx.waiters() == 1
            };
            let writer = rw.clone();
            race(
                &crew,
                &gate,
                round,
                ready,
                move || cancel.cancel(),
                move || writer.unlock(),
            );
            let r = rw.rlock_ctx(&ctx);
            settle(&crew);
            match r {
                Ok(()) => {
                    oks += 1;
                    assert!(
                        rw.reader_count() >= 1,
                        "round {round}: Ok, so a reader holds"
                    );
                    assert!(!rw.try_lock(), "round {round}: Ok, so no writer may enter");
                    rw.runlock();
                }
                Err(e) => {
                    errs += 1;
                    assert_eq!(e, ContextError::Canceled);
                }
            }
            if tail != 0 {
                crew.wait(2, "the reader behind gets in");
            }
            assert_eq!(rw.reader_count(), 0, "round {round}: after {r:?}");
            assert!(
                rw.try_lock(),
                "round {round}: after {r:?} the lock must be free"
            );
            rw.unlock();
            assert_eq!(rw.waiters(), 0, "round {round}");
            assert_eq!(ctx.waiters(), 0, "round {round}");
        }
        report("rwmutex read", oks, errs);
    });
}

/// `RawRwMutex::lock_ctx` while `cancel` races the release it waits for — a reader's `runlock`
/// (even rounds) or another writer's `unlock` (odd rounds) — with a reader queued behind:
/// `Ok` means the write lock is held and no reader is inside; after `Err` the reader it held
/// up gets in and the lock is left free.
#[test]
fn rwmutex_lock_ctx_cancel_races_release() {
    stress("wlock-stress", || {
        let rw = Arc::new(RawRwMutex::new());
        let crew = Crew::new("wlock-stress", 3);
        let gate = Arc::new(Gate(AtomicUsize::new(0)));
        let inside = Arc::new(AtomicBool::new(false));
        let (mut oks, mut errs) = (0, 0);
        for round in 0..ROUNDS {
            let (ctx, cancel) = context::with_cancel(&context::background());
            let behind_readers = round % 2 == 0;
            if behind_readers {
                rw.rlock();
            } else {
                rw.lock();
            }
            // A reader behind: held up by the pending writer, or by the holding one.
            let tail = round % 4 < 2;
            if tail {
                let (rw, ctx, inside) = (rw.clone(), ctx.clone(), inside.clone());
                crew.run(2, move || {
                    spin_until("lock_ctx queued", || {
                        rw.waiters() == 1
                            && ctx.waiters() == 1
                            && (!behind_readers || rw.is_writer_pending())
                    });
                    rw.rlock();
                    inside.store(true, Ordering::SeqCst);
                    jitter(200);
                    inside.store(false, Ordering::SeqCst);
                    rw.runlock();
                });
            }
            let queued = 1 + usize::from(tail);
            let ready = {
                let (rw, ctx) = (rw.clone(), ctx.clone());
                move || rw.waiters() == queued && ctx.waiters() == 1
            };
            let holder = rw.clone();
            race(
                &crew,
                &gate,
                round,
                ready,
                move || cancel.cancel(),
                move || {
                    if behind_readers {
                        holder.runlock();
                    } else {
                        holder.unlock();
                    }
                },
            );
            let r = rw.lock_ctx(&ctx);
            settle(&crew);
            match r {
                Ok(()) => {
                    oks += 1;
                    assert!(
                        rw.is_locked(),
                        "round {round}: Ok, so the write lock is held"
                    );
                    assert!(
                        !inside.load(Ordering::SeqCst),
                        "round {round}: a reader inside"
                    );
                    assert!(!rw.try_rlock(), "round {round}: Ok, so no reader may enter");
                    rw.unlock();
                }
                Err(e) => {
                    errs += 1;
                    assert_eq!(e, ContextError::Canceled);
                }
            }
            if tail {
                crew.wait(2, "the reader held up by the writer gets in");
            }
            assert!(!rw.is_writer_pending(), "round {round}: after {r:?}");
            assert!(
                rw.try_lock(),
                "round {round}: after {r:?} the lock must be free"
            );
            rw.unlock();
            assert_eq!(rw.writer_count(), 0, "round {round}");
            assert_eq!(rw.waiters(), 0, "round {round}");
            assert_eq!(ctx.waiters(), 0, "round {round}");
        }
        report("rwmutex write", oks, errs);
    });
}

/// `WaitGroup::wait_ctx` while `cancel` races the last `done`, with another waiter (thread or
/// task) in some rounds: either outcome leaves the group at zero with no registration left
/// over — the next round's `add` would panic with "Add called concurrently with Wait" if one
/// were — and the other waiter is released.
#[test]
fn waitgroup_wait_ctx_cancel_races_done() {
    stress("wg-stress", || {
        let wg = WaitGroup::new();
        let crew = Crew::new("wg-stress", 3);
        let gate = Arc::new(Gate(AtomicUsize::new(0)));
        let (mut oks, mut errs) = (0, 0);
        for round in 0..ROUNDS {
            let (ctx, cancel) = context::with_cancel(&context::background());
            wg.add(1);
            let tail = round % 3;
            if tail != 0 {
                let (wg, ctx) = (wg.clone(), ctx.clone());
                crew.run(2, move || {
                    spin_until("wait_ctx queued", || {
                        wg.waiters() == 1 && ctx.waiters() == 1
                    });
                    if tail == 1 {
                        wg.wait();
                    } else {
                        block_on(wg.wait_async());
                    }
                });
            }
            let queued = 1 + usize::from(tail != 0);
            let ready = {
                let (wg, ctx) = (wg.clone(), ctx.clone());
                move || wg.waiters() == queued && ctx.waiters() == 1
            };
            let job = wg.clone();
            race(
                &crew,
                &gate,
                round,
                ready,
                move || cancel.cancel(),
                move || job.done(),
            );
            let r = wg.wait_ctx(&ctx);
            settle(&crew);
            match r {
                Ok(()) => oks += 1,
                Err(e) => {
                    errs += 1;
                    assert_eq!(e, ContextError::Canceled);
                }
            }
            if tail != 0 {
                crew.wait(2, "the other waiter is released");
            }
            assert_eq!(wg.count(), 0, "round {round}");
            assert_eq!(wg.waiters(), 0, "round {round}");
            assert_eq!(ctx.waiters(), 0, "round {round}");
        }
        assert_eq!(format!("{wg:?}"), "WaitGroup { count: 0, waiters: 0 }");
        report("waitgroup", oks, errs);
    });
}

/// `Cond::wait_ctx` (head of the queue) while `cancel` races a `signal`, with a second waiter
/// (thread or task) behind: `Ok` means the signal woke this waiter and the other still waits;
/// `Err` means the signal went to the other one. A signal is never lost nor doubled.
#[test]
fn cond_wait_ctx_cancel_races_signal() {
    stress("cond-stress", || {
        let c = Arc::new(Cond::new(RawMutex::new()));
        let crew = Crew::new("cond-stress", 3);
        let gate = Arc::new(Gate(AtomicUsize::new(0)));
        let (mut oks, mut errs) = (0, 0);
        for round in 0..ROUNDS {
            let (ctx, cancel) = context::with_cancel(&context::background());
            {
                let (c, ctx) = (c.clone(), ctx.clone());
                let task = round % 2 == 1;
                crew.run(2, move || {
                    spin_until("wait_ctx queued", || {
                        c.waiters() == 1 && ctx.waiters() == 1 && !c.locker().is_locked()
                    });
                    if task {
                        block_on(async {
                            c.locker().lock_async().await;
                            c.wait_async().await;
                            c.locker().unlock();
                        });
                    } else {
                        c.locker().lock();
                        c.wait();
                        c.locker().unlock();
                    }
                });
            }
            let ready = {
                let (c, ctx) = (c.clone(), ctx.clone());
                move || c.waiters() == 2 && ctx.waiters() == 1
            };
            let signaller = c.clone();
            race(
                &crew,
                &gate,
                round,
                ready,
                move || cancel.cancel(),
                move || signaller.signal(),
            );
            c.locker().lock();
            let r = c.wait_ctx(&ctx);
            assert!(
                c.locker().is_locked(),
                "round {round}: returns with the lock held"
            );
            c.locker().unlock();
            settle(&crew);
            match r {
                Ok(()) => {
                    oks += 1;
                    // The signal was ours: the other waiter still waits for one.
                    assert_eq!(c.waiters(), 1, "round {round}: Ok, yet the other was woken");
                    c.signal();
                }
                Err(e) => {
                    errs += 1;
                    assert_eq!(e, ContextError::Canceled);
                }
            }
            crew.wait(
                2,
                "the waiter behind gets the signal the cancelled one lost",
            );
            assert_eq!(c.waiters(), 0, "round {round}");
            assert_eq!(ctx.waiters(), 0, "round {round}");
            assert!(!c.locker().is_locked(), "round {round}");
        }
        report("cond", oks, errs);
    });
}

/// Values on the way in a channel stress round, by where they ended.
#[derive(Default)]
struct Ledger {
    received: std::sync::Mutex<Vec<u64>>,
    returned: std::sync::Mutex<Vec<u64>>,
}

impl Ledger {
    fn received(&self, v: u64) {
        self.received.lock().unwrap().push(v);
    }

    fn returned(&self, v: u64) {
        self.returned.lock().unwrap().push(v);
    }

    /// Every value in `sent` was received exactly once or returned exactly once, never both.
    fn check(&self, round: usize, mut sent: Vec<u64>) {
        let received = std::mem::take(&mut *self.received.lock().unwrap());
        let returned = std::mem::take(&mut *self.returned.lock().unwrap());
        let mut all: Vec<u64> = received.iter().chain(&returned).copied().collect();
        all.sort_unstable();
        sent.sort_unstable();
        assert_eq!(
            all, sent,
            "round {round}: received {received:?} + returned {returned:?} must be exactly the sent values"
        );
    }
}

/// `send_ctx` (on a `Chan` or a `Sender`, unbuffered or with a full buffer) while `cancel`
/// races a receive, with another sender queued behind in some rounds: across all rounds every
/// value sent is received exactly once or given back exactly once (in the `Err`, or by the
/// channel's close), never both, never neither.
#[test]
fn chan_send_ctx_cancel_races_recv() {
    stress("send-stress", || {
        let crew = Crew::new("send-stress", 3);
        let tail_name = crew.thread_name(2);
        let gate = Arc::new(Gate(AtomicUsize::new(0)));
        let ledger = Arc::new(Ledger::default());
        let (mut oks, mut errs) = (0, 0);
        for round in 0..ROUNDS {
            let (ctx, cancel) = context::with_cancel(&context::background());
            let cap = round % 2;
            let ch: Chan<u64> = Chan::new(cap);
            let base = 4 * round as u64;
            let mut sent = vec![base];
            if cap == 1 {
                ch.send(base + 1).unwrap();
                sent.push(base + 1);
            }
            let tail = round % 4 >= 2;
            if tail {
                sent.push(base + 2);
                let (ch, ctx, ledger) = (ch.clone(), ctx.clone(), ledger.clone());
                crew.run(2, move || {
                    spin_until("send_ctx queued", || ctx.waiters() == 1);
                    if let Err(SendError(v)) = ch.send(base + 2) {
                        ledger.returned(v);
                    }
                });
            }
            let ready = {
                let (ctx, tail_name) = (ctx.clone(), tail_name.clone());
                move || ctx.waiters() == 1 && (!tail || blocked_in(&tail_name, WaitKind::ChanSend))
            };
            let (rx, l) = (ch.receiver(), ledger.clone());
            race(
                &crew,
                &gate,
                round,
                ready,
                move || cancel.cancel(),
                move || {
                    if let Some(v) = rx.recv() {
                        l.received(v);
                    }
                },
            );
            let r = if round % 3 == 0 {
                ch.sender().send_ctx(&ctx, base)
            } else {
                ch.send_ctx(&ctx, base)
            };
            match r {
                Ok(()) => oks += 1,
                Err(SendCtxError::Done(e, v)) => {
                    errs += 1;
                    assert_eq!(e, ContextError::Canceled);
                    assert_eq!(v, base, "round {round}: the value given back is ours");
                    ledger.returned(v);
                }
                Err(SendCtxError::Closed(_)) => panic!("round {round}: not closed yet"),
            }
            // Release whoever still waits: a blocked receiver gets `None`, a blocked sender its
            // value back; buffered values stay to be drained.
            ch.close();
            settle(&crew);
            if tail {
                crew.wait(2, "the sender behind");
            }
            while let Some(v) = ch.recv() {
                ledger.received(v);
            }
            ledger.check(round, sent);
            assert_eq!(ctx.waiters(), 0, "round {round}");
        }
        report("chan send", oks, errs);
    });
}

/// `recv_ctx` (on a `Chan` or a `Receiver`, unbuffered or buffered) while `cancel` races a
/// send, with another receiver queued behind in some rounds: the value is received exactly
/// once (by the bounded receive, the one behind, or from the buffer) or given back to the
/// sender by the close — never lost by an `Err`.
#[test]
fn chan_recv_ctx_cancel_races_send() {
    stress("recv-stress", || {
        let crew = Crew::new("recv-stress", 3);
        let tail_name = crew.thread_name(2);
        let gate = Arc::new(Gate(AtomicUsize::new(0)));
        let ledger = Arc::new(Ledger::default());
        let (mut oks, mut errs) = (0, 0);
        for round in 0..ROUNDS {
            let (ctx, cancel) = context::with_cancel(&context::background());
            let cap = round % 2;
            let ch: Chan<u64> = Chan::new(cap);
            let value = round as u64;
            let tail = round % 4 >= 2;
            if tail {
                let (ch, ctx, ledger) = (ch.clone(), ctx.clone(), ledger.clone());
                crew.run(2, move || {
                    spin_until("recv_ctx queued", || ctx.waiters() == 1);
                    if let Some(v) = ch.recv() {
                        ledger.received(v);
                    }
                });
            }
            let ready = {
                let (ctx, tail_name) = (ctx.clone(), tail_name.clone());
                move || ctx.waiters() == 1 && (!tail || blocked_in(&tail_name, WaitKind::ChanRecv))
            };
            let (tx, l) = (ch.sender(), ledger.clone());
            race(
                &crew,
                &gate,
                round,
                ready,
                move || cancel.cancel(),
                move || {
                    if let Err(SendError(v)) = tx.send(value) {
                        l.returned(v);
                    }
                },
            );
            let r = if round % 3 == 0 {
                ch.receiver().recv_ctx(&ctx)
            } else {
                ch.recv_ctx(&ctx)
            };
            match r {
                Ok(Some(v)) => {
                    oks += 1;
                    ledger.received(v);
                }
                Ok(None) => panic!("round {round}: not closed yet"),
                Err(e) => {
                    errs += 1;
                    assert_eq!(e, ContextError::Canceled);
                }
            }
            ch.close();
            settle(&crew);
            if tail {
                crew.wait(2, "the receiver behind");
            }
            while let Some(v) = ch.recv() {
                ledger.received(v);
            }
            ledger.check(round, vec![value]);
            assert_eq!(ctx.waiters(), 0, "round {round}");
        }
        report("chan recv", oks, errs);
    });
}

// ----- threads and tasks --------------------------------------------------------------------

/// An async task (`lock_async` under `block_on` on its own thread) queued behind a thread
/// whose `lock_ctx` is cancelled gets the lock when it is unlocked.
#[test]
fn task_behind_a_cancelled_lock_ctx_thread_gets_the_lock() {
    let m = Arc::new(Mutex::new(0u32));
    let (ctx, cancel) = context::with_cancel(&context::background());
    let guard = m.lock();
    let a = spawn("mixed/A", {
        let (m, ctx) = (m.clone(), ctx.clone());
        move || m.lock_ctx(&ctx).map(|mut g| *g += 100)
    });
    spin_until("lock_ctx queued", || m.waiters() == 1 && ctx.waiters() == 1);
    let task = spawn("mixed/task", {
        let m = m.clone();
        move || block_on(async { *m.lock_async().await += 1 })
    });
    spin_until("the task queued", || m.waiters() == 2);
    cancel.cancel();
    assert_eq!(a.join(), Err(ContextError::Canceled));
    assert_eq!(m.waiters(), 1, "only the task waits");
    drop(guard);
    task.join();
    assert_eq!(*m.lock(), 1, "the task got the lock; the thread never did");
    assert_eq!(m.waiters(), 0);
}

/// A thread (`read_ctx`) and a task (`write_async`) on one `RwMutex`: the cancelled reader
/// leaves, the task behind gets the write lock.
#[test]
fn task_writer_behind_a_cancelled_read_ctx_thread_gets_the_lock() {
    let rw = Arc::new(RwMutex::new(0u32));
    let (ctx, cancel) = context::with_cancel(&context::background());
    let w = rw.write();
    let a = spawn("mixed-rw/A", {
        let (rw, ctx) = (rw.clone(), ctx.clone());
        move || rw.read_ctx(&ctx).map(|g| *g)
    });
    spin_until("read_ctx queued", || {
        rw.waiters() == 1 && ctx.waiters() == 1
    });
    let task = spawn("mixed-rw/task", {
        let rw = rw.clone();
        move || block_on(async { *rw.write_async().await += 1 })
    });
    spin_until("the task queued", || rw.waiters() == 2);
    cancel.cancel();
    assert_eq!(a.join(), Err(ContextError::Canceled));
    drop(w);
    task.join();
    assert_eq!(*rw.read(), 1);
    assert_eq!(rw.waiters(), 0);
}

/// Locks `m` from a task bounded by `ctx`, the idiom for tasks:
/// `select(m.lock_async(), ctx.done())`, dropping the lock future if the context wins.
async fn lock_or_done(m: &RawMutex, ctx: &Context) -> Result<(), ContextError> {
    match future::select(m.lock_async(), ctx.done()).await {
        Either::Left(((), _done)) => Ok(()),
        Either::Right((err, lock)) => {
            drop(lock); // cancel-safe: a lock it had been handed is passed on
            Err(err)
        }
    }
}

/// [`lock_or_done`] with the context polled first: when both are ready the context wins, so
/// the lock future dropped may have been handed the lock (or woken to compete) already.
async fn done_or_lock(m: &RawMutex, ctx: &Context) -> Result<(), ContextError> {
    match future::select(ctx.done(), m.lock_async()).await {
        Either::Left((err, lock)) => {
            drop(lock);
            Err(err)
        }
        Either::Right(((), _done)) => Ok(()),
    }
}

/// The async idiom: `select` on the lock future and `ctx.done()`. The context ending first
/// gives its error and, the losing lock future dropped, the mutex is usable after; the lock
/// coming first gives the lock. `Context::run` is the library's shorthand for the same.
#[test]
fn task_bounds_lock_async_with_select_on_ctx_done() {
    let m = Arc::new(RawMutex::new());
    // The context wins.
    let (ctx, cancel) = context::with_cancel(&context::background());
    m.lock();
    let t = spawn("select/cancelled", {
        let (m, ctx) = (m.clone(), ctx.clone());
        move || block_on(lock_or_done(&m, &ctx))
    });
    spin_until("the task queued", || m.waiters() == 1 && ctx.waiters() == 1);
    cancel.cancel();
    assert_eq!(t.join(), Err(ContextError::Canceled));
    assert_eq!(m.waiters(), 0, "the dropped lock future left the queue");
    assert_eq!(ctx.waiters(), 0);
    m.unlock();
    assert!(m.try_lock(), "usable after");
    m.unlock();

    // The lock wins.
    let (ctx, _cancel) = context::with_cancel(&context::background());
    m.lock();
    let t = spawn("select/locked", {
        let (m, ctx) = (m.clone(), ctx.clone());
        move || {
            let r = block_on(lock_or_done(&m, &ctx));
            let held = m.is_locked();
            m.unlock();
            (r, held)
        }
    });
    spin_until("the task queued", || m.waiters() == 1 && ctx.waiters() == 1);
    m.unlock();
    assert_eq!(t.join(), (Ok(()), true));
    assert_eq!(
        ctx.waiters(),
        0,
        "the dropped done future left the context's queue"
    );
    assert!(m.try_lock());
    m.unlock();

    // `Context::run`.
    let (ctx, cancel) = context::with_cancel(&context::background());
    m.lock();
    let t = spawn("select/run", {
        let (m, ctx) = (m.clone(), ctx.clone());
        move || block_on(ctx.run(m.lock_async()))
    });
    spin_until("the task queued", || m.waiters() == 1 && ctx.waiters() == 1);
    cancel.cancel();
    assert_eq!(t.join(), Err(ContextError::Canceled));
    assert_eq!(m.waiters(), 0);
    m.unlock();
    assert!(m.try_lock());
    m.unlock();
}

/// The task idiom under stress: `cancel` races `unlock` while the task waits in
/// `select(lock_async, ctx.done())` (or, every third round, the context polled first), with a
/// thread queued behind in some rounds. The lock arm means the task holds the lock; the
/// context's arm means the dropped lock future lost nothing — a lock or a wake-up it had been
/// handed went on.
#[test]
fn task_select_lock_or_done_cancel_races_unlock() {
    stress("select-stress", || {
        let m = Arc::new(RawMutex::new());
        let crew = Crew::new("select-stress", 3);
        let gate = Arc::new(Gate(AtomicUsize::new(0)));
        let (mut oks, mut errs) = (0, 0);
        for round in 0..ROUNDS / 2 {
            let (ctx, cancel) = context::with_cancel(&context::background());
            m.lock();
            let tail = round % 2 == 1;
            if tail {
                let (m, ctx) = (m.clone(), ctx.clone());
                crew.run(2, move || {
                    spin_until("the task queued", || m.waiters() == 1 && ctx.waiters() == 1);
                    m.lock();
                    m.unlock();
                });
            }
            let queued = 1 + usize::from(tail);
            let ready = {
                let (m, ctx) = (m.clone(), ctx.clone());
                move || m.waiters() == queued && ctx.waiters() == 1
            };
            let holder = m.clone();
            race(
                &crew,
                &gate,
                round,
                ready,
                move || cancel.cancel(),
                move || holder.unlock(),
            );
            let r = if round % 3 == 0 {
                block_on(done_or_lock(&m, &ctx))
            } else {
                block_on(lock_or_done(&m, &ctx))
            };
            settle(&crew);
            match r {
                Ok(()) => {
                    oks += 1;
                    assert!(
                        !m.try_lock(),
                        "round {round}: Left, so the task holds the lock"
                    );
                    m.unlock();
                }
                Err(e) => {
                    errs += 1;
                    assert_eq!(e, ContextError::Canceled);
                }
            }
            if tail {
                crew.wait(2, "the thread behind gets the lock");
            }
            assert!(
                m.try_lock(),
                "round {round}: after {r:?} the lock must be free"
            );
            m.unlock();
            assert_eq!(m.waiters(), 0, "round {round}");
            assert_eq!(ctx.waiters(), 0, "round {round}");
        }
        report("task select", oks, errs);
    });
}

// ----- misuse -------------------------------------------------------------------------------

/// Cancels `ctx`'s waiter once `queued` holds, and returns what the call on the thread gave.
fn cancel_queued<T: Send + 'static>(
    name: &str,
    queued: impl Fn(&Context) -> bool,
    call: impl FnOnce(&Context) -> T + Send + 'static,
) -> T {
    let (ctx, cancel) = context::with_cancel(&context::background());
    let t = spawn(name, {
        let ctx = ctx.clone();
        move || call(&ctx)
    });
    spin_until(name, || queued(&ctx));
    cancel.cancel();
    t.join()
}

/// A `lock_ctx` cancelled while queued holds nothing: unlocking twice (the holder's unlock,
/// then one for the failed call) panics as in the plain form.
#[test]
#[should_panic(expected = "sync: unlock of unlocked mutex")]
fn unlocking_after_a_failed_lock_ctx_panics() {
    let m = Arc::new(RawMutex::new());
    m.lock();
    let m2 = m.clone();
    let r = cancel_queued(
        "misuse/mutex",
        |ctx| m.waiters() == 1 && ctx.waiters() == 1,
        move |ctx| m2.lock_ctx(ctx),
    );
    assert_eq!(r, Err(ContextError::Canceled));
    m.unlock();
    m.unlock();
}

/// An `rlock_ctx` cancelled while queued holds no read lock: `runlock` panics.
#[test]
#[should_panic(expected = "sync: RUnlock of unlocked RWMutex")]
fn runlocking_after_a_failed_rlock_ctx_panics() {
    let rw = Arc::new(RawRwMutex::new());
    rw.lock();
    let rw2 = rw.clone();
    let r = cancel_queued(
        "misuse/rlock",
        |ctx| rw.waiters() == 1 && ctx.waiters() == 1,
        move |ctx| rw2.rlock_ctx(ctx),
    );
    assert_eq!(r, Err(ContextError::Canceled));
    rw.unlock();
    rw.runlock();
}

/// A `lock_ctx` (write) cancelled while waiting for readers holds no write lock: `unlock`
/// panics.
#[test]
#[should_panic(expected = "sync: Unlock of unlocked RWMutex")]
fn unlocking_after_a_failed_rwmutex_lock_ctx_panics() {
    let rw = Arc::new(RawRwMutex::new());
    rw.rlock();
    let rw2 = rw.clone();
    let r = cancel_queued(
        "misuse/wlock",
        |ctx| rw.is_writer_pending() && rw.waiters() == 1 && ctx.waiters() == 1,
        move |ctx| rw2.lock_ctx(ctx),
    );
    assert_eq!(r, Err(ContextError::Canceled));
    rw.runlock();
    rw.unlock();
}

/// `Cond::wait_ctx` without the lock held panics as `wait` does, and leaves the `Cond`'s queue
/// and the context's as they were.
#[test]
fn cond_wait_ctx_without_the_lock_panics_and_leaves_no_waiter() {
    let c = Arc::new(Cond::new(RawMutex::new()));
    let (ctx, _cancel) = context::with_cancel(&context::background());
    let err = panic::catch_unwind(AssertUnwindSafe(|| c.wait_ctx(&ctx))).unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("sync: unlock of unlocked mutex"), "{msg}");
    assert_eq!(c.waiters(), 0);
    assert_eq!(ctx.waiters(), 0);
    // Still usable: a proper wait is woken by a signal.
    let t = spawn("misuse/cond", {
        let c = c.clone();
        move || {
            spin_until("wait_ctx queued", || {
                c.waiters() == 1 && !c.locker().is_locked()
            });
            c.signal();
        }
    });
    c.locker().lock();
    assert_eq!(c.wait_ctx(&ctx), Ok(()));
    c.locker().unlock();
    t.join();
}
