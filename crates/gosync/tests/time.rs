//! Tests of `gosync::time` (Go's `time.After`, `Tick`, `Timer`, `Ticker`, `Sleep`) with Go 1.23
//! semantics, and of contexts as select cases (`recv(ctx.done())`, `Context::done_chan`).
//!
//! No test asserts an elapsed time beyond "did not fire before its deadline": deadlines are
//! short, and a test that checks that something did *not* happen waits well past the instant
//! it would have.

#![cfg(not(loom))]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures::task::SpawnExt;
use gosync::chan::{Chan, Receiver, TryRecvError};
use gosync::context::{self, background, todo, with_cancel, with_timeout, with_value, Key};
use gosync::time::{after, after_deadline, sleep, sleep_async, sleep_until_async, tick};
use gosync::time::{Sleep, Ticker, Timer};
use gosync::{select, select_async};

const SHORT: Duration = Duration::from_millis(5);
const LONG: Duration = Duration::from_secs(3600);
/// Long enough past a short deadline that a timer that should not fire would have.
const MARGIN: Duration = Duration::from_millis(60);

/// Polls until `cond` holds, giving other threads time to reach a blocking point.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Asserts that a done channel is closed or closes soon; fails instead of hanging.
#[track_caller]
fn assert_closes(done: &Receiver<()>) {
    let closed = select! {
        recv(done) -> v => v.is_none(),
        recv(after(Duration::from_secs(10))) -> _ => false,
    };
    assert!(closed, "the done channel did not close");
}

struct CountWaker(AtomicUsize);

impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountWaker>, Waker) {
    let w = Arc::new(CountWaker(AtomicUsize::new(0)));
    (w.clone(), Waker::from(w))
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

#[test]
fn bounds() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send_unpin<T: Send + Unpin + 'static>() {}
    send_sync::<Timer>();
    send_sync::<Ticker>();
    send_unpin::<Sleep>();
}

// ---------------------------------------------------------------------------------------------
// after

#[test]
fn after_fires_once_not_before_its_deadline() {
    let start = Instant::now();
    let rx = after(SHORT);
    let at = rx.recv().expect("a timer channel is never closed");
    assert!(at >= start + SHORT, "fired before its deadline");
    assert!(Instant::now() >= start + SHORT);
    thread::sleep(MARGIN);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "fired twice");
    assert!(!rx.is_closed());
}

#[test]
fn after_zero_and_past_deadline_are_ready_at_once() {
    assert!(after(Duration::ZERO).try_recv().is_ok());
    assert!(after_deadline(Instant::now()).try_recv().is_ok());
    let past = Instant::now();
    thread::sleep(Duration::from_millis(1));
    assert!(after_deadline(past).recv().is_some());
}

#[test]
fn after_is_a_timeout_arm_in_select() {
    let quiet: Chan<u32> = Chan::new(0);
    let got = select! {
        recv(quiet) -> v => Some(v),
        recv(after(SHORT)) -> t => {
            assert!(t.is_some());
            None
        }
    };
    assert_eq!(got, None, "the timeout fired");

    // A ready channel wins over a timeout that is far away.
    let ready = Chan::new(1);
    ready.send(7).unwrap();
    let got = select! {
        recv(ready) -> v => v,
        recv(after(LONG)) -> _ => None,
    };
    assert_eq!(got, Some(7));
}

#[test]
fn after_wakes_a_select_from_a_task() {
    let quiet: Chan<u32> = Chan::new(0);
    let go = |quiet: Chan<u32>| async move {
        select_async! {
            recv(quiet) -> _ => "data",
            recv(after(SHORT)) -> _ => "timeout",
        }
    };
    assert_eq!(futures::executor::block_on(go(quiet.clone())), "timeout");
    assert_eq!(tokio_rt().block_on(go(quiet)), "timeout");
}

#[test]
fn after_in_a_loop_with_a_ticker_as_heartbeat() {
    // Go's `for { select { case <-done: return; case <-time.After(d): ... } }` shape: the loop
    // ends when `done` closes, whatever the timeouts did meanwhile.
    let done: Chan<()> = Chan::new(0);
    let d = done.clone();
    let closer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        d.close();
    });
    let mut timeouts = 0;
    loop {
        select! {
            recv(done) -> v => {
                assert_eq!(v, None);
                break;
            }
            recv(after(Duration::from_millis(1))) -> _ => timeouts += 1,
        }
    }
    closer.join().unwrap();
    let _ = timeouts;
}

// ---------------------------------------------------------------------------------------------
// Timer

#[test]
fn timer_fires_once() {
    let start = Instant::now();
    let t = Timer::new(SHORT);
    let at = t.c().recv().unwrap();
    assert!(at >= start + SHORT);
    thread::sleep(MARGIN);
    assert_eq!(t.c().try_recv(), Err(TryRecvError::Empty));
    assert!(!t.stop(), "received already: stop reports false");
}

#[test]
fn timer_stop_before_fire_returns_true_and_nothing_arrives() {
    let t = Timer::new(Duration::from_millis(10));
    let rx = t.receiver().clone();
    assert!(t.stop());
    assert!(!t.stop(), "a second stop reports false");
    thread::sleep(MARGIN);
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "a stopped timer fired"
    );
}

#[test]
fn timer_stop_discards_an_unreceived_value() {
    // Go 1.23: a value sent but not received counts as not fired; stop wins and discards it.
    let t = Timer::new(Duration::from_millis(1));
    eventually("the timer to fire", || t.c().len() == 1);
    assert!(t.stop());
    assert_eq!(t.c().try_recv(), Err(TryRecvError::Empty));
    assert!(!t.stop());
}

#[test]
fn timer_reset() {
    // Reset of a running timer: true, and it fires once, at the new time.
    let t = Timer::new(LONG);
    let start = Instant::now();
    assert!(t.reset(SHORT));
    assert!(t.c().recv().unwrap() >= start + SHORT);
    // Reset after the value was received: false, and it fires again.
    assert!(!t.reset(Duration::from_millis(1)));
    assert!(t.c().recv().is_some());
    assert!(!t.reset(LONG), "received: reset reports false");
    // Reset of a stopped timer: false, and it runs again.
    assert!(t.stop());
    assert!(!t.reset(Duration::ZERO));
    assert!(t.c().try_recv().is_ok(), "a zero reset delivers at once");
}

#[test]
fn timer_reset_discards_a_stale_value() {
    let t = Timer::new(Duration::from_millis(1));
    eventually("the timer to fire", || t.c().len() == 1);
    assert!(
        t.reset(LONG),
        "the value was not received: reset reports true"
    );
    assert_eq!(
        t.c().try_recv(),
        Err(TryRecvError::Empty),
        "stale value after reset"
    );
}

#[test]
fn timer_stop_and_reset_racing_the_timer_thread_never_leave_a_stale_value() {
    // Stop and reset at about the moment the timer fires, many times: whichever wins, nothing
    // from before the call may be received after it.
    for i in 0..2_000u64 {
        let t = Timer::new(Duration::from_micros(i % 64));
        for _ in 0..(i % 7) * 50 {
            std::hint::spin_loop();
        }
        if i % 2 == 0 {
            let stopped = t.stop();
            assert_eq!(t.c().try_recv(), Err(TryRecvError::Empty), "iteration {i}");
            assert!(!t.stop());
            let _ = stopped;
        } else {
            t.reset(LONG);
            assert_eq!(t.c().try_recv(), Err(TryRecvError::Empty), "iteration {i}");
            assert!(t.stop(), "reset armed it again");
        }
    }
}

#[test]
fn timer_stop_reports_true_exactly_when_the_value_is_not_received() {
    // Whatever the race with the timer thread, `stop` returns true iff the program never gets
    // the value.
    for i in 0..2_000u64 {
        let t = Timer::new(Duration::from_micros(i % 32));
        let received_first = i % 3 == 0 && t.c().try_recv().is_ok();
        let stopped = t.stop();
        let received_after = t.c().try_recv().is_ok();
        assert!(!received_after, "iteration {i}");
        assert_eq!(stopped, !received_first, "iteration {i}");
    }
}

#[test]
fn timer_drop_stops_it() {
    let t = Timer::new(Duration::from_millis(10));
    let rx = t.c().clone();
    drop(t);
    thread::sleep(MARGIN);
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "a dropped timer fired"
    );
}

#[test]
fn timer_wakes_a_blocked_thread_and_a_stop_from_another_thread() {
    let t = Arc::new(Timer::new(LONG));
    let t2 = t.clone();
    let waiter = thread::spawn(move || {
        select! {
            recv(t2.c()) -> _ => "fired",
            recv(after(Duration::from_millis(30))) -> _ => "gave up",
        }
    });
    // Another thread stops it while the first waits: the first never gets a value.
    let t3 = t.clone();
    thread::spawn(move || assert!(t3.stop())).join().unwrap();
    assert_eq!(waiter.join().unwrap(), "gave up");

    // Reset from another thread wakes a waiter.
    let t4 = t.clone();
    let waiter = thread::spawn(move || t4.c().recv());
    thread::sleep(Duration::from_millis(5));
    t.reset(Duration::from_millis(1));
    assert!(waiter.join().unwrap().is_some());
}

#[test]
fn timer_in_select_async_on_two_executors() {
    async fn race(quiet: Chan<u8>) -> &'static str {
        let t = Timer::new(SHORT);
        select_async! {
            recv(quiet) -> _ => "data",
            recv(t.c()) -> _ => "timer",
        }
    }
    let quiet = Chan::new(0);
    assert_eq!(futures::executor::block_on(race(quiet.clone())), "timer");
    let rt = tokio_rt();
    let h = rt.spawn(race(quiet));
    assert_eq!(rt.block_on(h).unwrap(), "timer");
}

#[test]
fn many_timers_created_and_stopped() {
    let timers: Vec<Timer> = (0..10_000).map(|_| Timer::new(LONG)).collect();
    assert!(timers.iter().all(Timer::stop));
    drop(timers);
    for _ in 0..10_000 {
        drop(Timer::new(LONG));
    }
    // The timer thread still serves new timers promptly.
    assert!(Timer::new(Duration::from_millis(1)).c().recv().is_some());
    // Many short timers all fire, once each.
    let timers: Vec<Timer> = (0..1_000)
        .map(|_| Timer::new(Duration::from_millis(2)))
        .collect();
    for t in &timers {
        assert!(t.c().recv().is_some());
    }
    thread::sleep(Duration::from_millis(10));
    assert!(timers.iter().all(|t| t.c().try_recv().is_err()));
}

// ---------------------------------------------------------------------------------------------
// Ticker and tick

#[test]
fn ticker_delivers_ticks_in_order() {
    let period = Duration::from_millis(2);
    let start = Instant::now();
    let ticker = Ticker::new(period);
    let mut last = start;
    for _ in 0..5 {
        let t = ticker.c().recv().unwrap();
        assert!(t > last);
        last = t;
    }
    assert!(
        last >= start + period,
        "the first tick came a period after the start"
    );
    ticker.stop();
}

#[test]
fn ticker_drops_ticks_for_a_slow_reader() {
    let ticker = Ticker::new(Duration::from_millis(1));
    thread::sleep(Duration::from_millis(50)); // about 50 ticks are due
    assert_eq!(ticker.c().cap(), 1);
    assert!(ticker.c().len() <= 1);
    let mut buffered = 0;
    while ticker.c().try_recv().is_ok() {
        buffered += 1;
    }
    // The one buffered tick, and maybe one or two that came while draining — not the fifty
    // that were due.
    assert!((1..10).contains(&buffered), "got {buffered} ticks at once");
    // And it keeps ticking afterwards.
    assert!(ticker.c().recv().is_some());
}

#[test]
fn ticker_stop_ends_the_ticks_and_discards_a_pending_one() {
    let ticker = Ticker::new(Duration::from_millis(1));
    assert!(ticker.c().recv().is_some());
    eventually("a pending tick", || ticker.c().len() == 1);
    ticker.stop();
    assert_eq!(ticker.c().try_recv(), Err(TryRecvError::Empty));
    thread::sleep(MARGIN);
    assert_eq!(
        ticker.c().try_recv(),
        Err(TryRecvError::Empty),
        "ticked after stop"
    );
    ticker.stop(); // idempotent
}

#[test]
fn ticker_reset_restarts_with_a_new_period() {
    let ticker = Ticker::new(LONG);
    ticker.reset(Duration::from_millis(1));
    assert!(ticker.c().recv().is_some());
    ticker.stop();
    ticker.reset(Duration::from_millis(1));
    assert!(
        ticker.c().recv().is_some(),
        "reset restarts a stopped ticker"
    );
    ticker.reset(LONG);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(ticker.c().try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn ticker_drop_stops_it() {
    let ticker = Ticker::new(Duration::from_millis(1));
    let rx = ticker.c().clone();
    assert!(rx.recv().is_some());
    drop(ticker);
    let _ = rx.try_recv(); // a tick may have arrived before the drop
    thread::sleep(MARGIN);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "ticked after drop");
}

#[test]
#[should_panic(expected = "non-positive interval for NewTicker")]
fn ticker_zero_period_panics() {
    let _ = Ticker::new(Duration::ZERO);
}

#[test]
#[should_panic(expected = "non-positive interval for Ticker.Reset")]
fn ticker_reset_zero_panics() {
    Ticker::new(LONG).reset(Duration::ZERO);
}

#[test]
fn ticker_from_tasks() {
    async fn three_ticks() -> usize {
        let ticker = Ticker::new(Duration::from_millis(1));
        let mut n = 0;
        while n < 3 {
            ticker.c().recv_async().await.unwrap();
            n += 1;
        }
        n
    }
    assert_eq!(futures::executor::block_on(three_ticks()), 3);
    assert_eq!(tokio_rt().block_on(three_ticks()), 3);
}

#[test]
fn tick_delivers_and_zero_is_nil() {
    let ticks = tick(Duration::from_millis(1));
    let a = ticks.recv().unwrap();
    let b = ticks.recv().unwrap();
    assert!(b > a);
    let nil = tick(Duration::ZERO);
    assert!(nil.is_nil());
    let fired = select! {
        recv(nil) -> _ => true,
        default => false,
    };
    assert!(!fired);
}

// ---------------------------------------------------------------------------------------------
// sleep

#[test]
fn sleep_blocks_at_least_d() {
    let start = Instant::now();
    sleep(SHORT);
    assert!(start.elapsed() >= SHORT);
}

#[test]
fn sleep_async_on_futures_executors() {
    let start = Instant::now();
    futures::executor::block_on(sleep_async(SHORT));
    assert!(start.elapsed() >= SHORT);

    let pool = futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .unwrap();
    let handles: Vec<_> = (0..20u64)
        .map(|i| {
            pool.spawn_with_handle(async move {
                let start = Instant::now();
                let d = Duration::from_millis(i % 5);
                sleep_async(d).await;
                start.elapsed() >= d
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        assert!(futures::executor::block_on(h));
    }
}

#[test]
fn sleep_async_on_tokio() {
    for rt in [
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
        tokio_rt(),
    ] {
        rt.block_on(async {
            let start = Instant::now();
            sleep_async(SHORT).await;
            assert!(start.elapsed() >= SHORT);
            let tasks: Vec<_> = (0..20u64)
                .map(|i| {
                    tokio::spawn(async move {
                        let d = Duration::from_millis(i % 5);
                        let start = Instant::now();
                        sleep_async(d).await;
                        start.elapsed() >= d
                    })
                })
                .collect();
            for t in tasks {
                assert!(t.await.unwrap());
            }
        });
    }
}

#[test]
fn sleep_async_past_deadline_is_ready_at_first_poll() {
    let (count, waker) = counting_waker();
    let mut cx = TaskContext::from_waker(&waker);
    let mut s = sleep_until_async(Instant::now());
    assert!(s.is_elapsed());
    assert_eq!(Pin::new(&mut s).poll(&mut cx), Poll::Ready(()));
    let mut s = sleep_async(Duration::ZERO);
    assert_eq!(Pin::new(&mut s).poll(&mut cx), Poll::Ready(()));
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
}

#[test]
fn sleep_async_wakes_once_and_a_dropped_one_never() {
    let (count, waker) = counting_waker();
    let mut cx = TaskContext::from_waker(&waker);
    let mut s = sleep_async(Duration::from_millis(2));
    assert_eq!(Pin::new(&mut s).poll(&mut cx), Poll::Pending);
    eventually("the wake-up", || count.0.load(Ordering::SeqCst) == 1);
    assert_eq!(Pin::new(&mut s).poll(&mut cx), Poll::Ready(()));

    // Cancel safety: a pending sleep dropped before its deadline never wakes its task.
    let (count, waker) = counting_waker();
    let mut cx = TaskContext::from_waker(&waker);
    let mut s = sleep_async(Duration::from_millis(10));
    assert_eq!(Pin::new(&mut s).poll(&mut cx), Poll::Pending);
    drop(s);
    thread::sleep(MARGIN);
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        0,
        "a dropped sleep woke its task"
    );
}

#[test]
fn sleep_async_follows_the_latest_waker() {
    let (first, w1) = counting_waker();
    let (second, w2) = counting_waker();
    let mut s = sleep_async(Duration::from_millis(50));
    assert!(Pin::new(&mut s)
        .poll(&mut TaskContext::from_waker(&w1))
        .is_pending());
    if Pin::new(&mut s)
        .poll(&mut TaskContext::from_waker(&w2))
        .is_ready()
    {
        return; // this thread was held up past the deadline: nothing left to check
    }
    eventually("the wake-up", || second.0.load(Ordering::SeqCst) == 1);
    assert_eq!(first.0.load(Ordering::SeqCst), 0, "woke the stale waker");
    assert_eq!(
        Pin::new(&mut s).poll(&mut TaskContext::from_waker(&w2)),
        Poll::Ready(())
    );
}

#[test]
fn sleep_async_as_a_select_timeout_in_tokio() {
    let rt = tokio_rt();
    let quiet: Chan<u8> = Chan::new(0);
    let got = rt.block_on(async {
        tokio::select! {
            v = quiet.recv_async() => Some(v),
            _ = sleep_async(SHORT) => None,
        }
    });
    assert_eq!(got, None);
}

// ---------------------------------------------------------------------------------------------
// Contexts as select cases

#[test]
fn done_chan_of_a_cancelled_context_is_closed() {
    let (ctx, cancel) = with_cancel(&background());
    let before = ctx.done_chan();
    assert_eq!(before.try_recv(), Err(TryRecvError::Empty));
    assert!(!before.is_closed());
    cancel.cancel();
    assert_closes(&before);
    assert_eq!(before.recv(), None);
    let later = ctx.done_chan();
    assert_closes(&later);
    assert!(before == later, "one channel per context");
}

#[test]
fn done_chan_made_after_cancel_is_closed() {
    let (ctx, cancel) = with_cancel(&background());
    cancel.cancel();
    assert_closes(&ctx.done_chan());
    let (child, _c) = with_cancel(&ctx); // born cancelled
    assert_closes(&child.done_chan());
}

#[test]
fn done_chan_is_shared_by_value_contexts_and_closed_by_a_deadline() {
    static K: Key<u8> = Key::new("k");
    let (ctx, _cancel) = with_timeout(&background(), SHORT);
    let v = with_value(&ctx, &K, 1);
    assert!(v.done_chan() == ctx.done_chan());
    assert_closes(&v.done_chan());
    assert_eq!(ctx.err(), Some(context::ContextError::DeadlineExceeded));
}

#[test]
fn done_chan_of_roots_is_nil() {
    for ctx in [
        background(),
        todo(),
        context::without_cancel(&with_cancel(&background()).0),
    ] {
        let done = ctx.done_chan();
        assert!(done.is_nil(), "{ctx:?}");
        let fired = select! {
            recv(ctx.done()) -> _ => true,
            default => false,
        };
        assert!(!fired);
    }
}

#[test]
fn done_chan_closes_after_the_whole_subtree_is_done() {
    for _ in 0..200 {
        let (parent, cancel) = with_cancel(&background());
        let (child, _c) = with_cancel(&parent);
        let (grandchild, _g) = with_cancel(&child);
        let done = parent.done_chan();
        let t = thread::spawn(move || cancel.cancel());
        assert_closes(&done);
        assert!(child.err().is_some());
        assert!(grandchild.err().is_some());
        t.join().unwrap();
    }
}

#[test]
fn done_chan_made_during_a_cancel_is_closed() {
    // A done channel asked for while another thread cancels must end closed, whoever wins.
    // Grandchildren make the cancel take long enough that the channel is often asked for while
    // the cancel is still propagating; it must close once, and only after the subtree is done.
    for i in 0..2_000 {
        let (ctx, cancel) = with_cancel(&background());
        let (child, _c) = with_cancel(&ctx);
        let grandchildren: Vec<_> = (0..16).map(|_| with_cancel(&child)).collect();
        let t = thread::spawn(move || cancel.cancel());
        if i % 3 != 0 {
            // Ask just as the cancel starts.
            while ctx.err().is_none() {
                std::hint::spin_loop();
            }
        }
        let done = if i % 2 == 0 {
            ctx.done_chan()
        } else {
            child.done_chan()
        };
        assert_closes(&done);
        assert!(grandchildren.iter().all(|(g, _)| g.err().is_some()));
        t.join().unwrap();
    }
}

#[test]
fn select_on_ctx_done_from_threads() {
    // The context wins.
    let (ctx, cancel) = with_cancel(&background());
    let jobs: Chan<u32> = Chan::new(0);
    let (c2, j2) = (ctx.clone(), jobs.clone());
    let worker = thread::spawn(move || {
        let mut handled = 0;
        loop {
            select! {
                recv(j2) -> j => handled += j.unwrap(),
                recv(c2.done()) -> v => {
                    assert_eq!(v, None);
                    return (handled, c2.err());
                }
            }
        }
    });
    jobs.send(1).unwrap();
    jobs.send(2).unwrap();
    cancel.cancel();
    assert_eq!(
        worker.join().unwrap(),
        (3, Some(context::ContextError::Canceled))
    );

    // The channel wins over a live context.
    let (ctx, _cancel) = with_cancel(&background());
    let ready = Chan::new(1);
    ready.send("job").unwrap();
    let got = select! {
        recv(ready) -> v => v,
        recv(ctx.done()) -> _ => None,
    };
    assert_eq!(got, Some("job"));

    // A deadline fires the arm.
    let (ctx, _cancel) = with_timeout(&background(), SHORT);
    let quiet: Chan<u8> = Chan::new(0);
    let why = select! {
        recv(quiet) -> _ => None,
        recv(ctx.done()) -> _ => ctx.err(),
    };
    assert_eq!(why, Some(context::ContextError::DeadlineExceeded));
}

#[test]
fn select_on_ctx_done_from_tasks() {
    async fn worker(ctx: context::Context, jobs: Chan<u32>) -> u32 {
        let mut handled = 0;
        loop {
            select_async! {
                recv(jobs) -> j => handled += j.unwrap(),
                recv(ctx.done()) -> _ => return handled,
            }
        }
    }
    // On tokio, cancelled from a thread.
    let rt = tokio_rt();
    let (ctx, cancel) = with_cancel(&background());
    let jobs = Chan::new(0);
    let h = rt.spawn(worker(ctx, jobs.clone()));
    jobs.send(4).unwrap();
    jobs.send(5).unwrap();
    cancel.cancel();
    assert_eq!(rt.block_on(h).unwrap(), 9);

    // On a futures thread pool, cancelled from another task.
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .unwrap();
    let (ctx, cancel) = with_cancel(&background());
    let jobs = Chan::new(0);
    let h = pool.spawn_with_handle(worker(ctx, jobs.clone())).unwrap();
    let j = jobs.clone();
    let canceller = pool
        .spawn_with_handle(async move {
            j.send_async(6).await.unwrap();
            cancel.cancel();
        })
        .unwrap();
    futures::executor::block_on(canceller);
    assert_eq!(futures::executor::block_on(h), 6);
}

#[test]
fn select_on_ctx_done_and_a_timer() {
    // Go's classic: stop on cancellation or on a timeout, whichever first.
    let (ctx, cancel) = with_cancel(&background());
    let t = Timer::new(LONG);
    cancel.cancel();
    let why = select! {
        recv(ctx.done()) -> _ => "cancelled",
        recv(t.c()) -> _ => "timeout",
    };
    assert_eq!(why, "cancelled");

    let (ctx, _cancel) = with_cancel(&background());
    let t = Timer::new(SHORT);
    let why = select! {
        recv(ctx.done()) -> _ => "cancelled",
        recv(t.c()) -> _ => "timeout",
    };
    assert_eq!(why, "timeout");
}

#[test]
fn a_dropped_select_on_ctx_done_leaves_the_done_future_usable() {
    // The `Done` used as a select case is still a future afterwards.
    let (ctx, cancel) = with_cancel(&background());
    let done = ctx.done();
    let fired = select! {
        recv(&done) -> _ => true,
        default => false,
    };
    assert!(!fired);
    cancel.cancel();
    let fired = select! {
        recv(&done) -> _ => true,
        default => false,
    };
    assert!(fired);
    assert_eq!(
        futures::executor::block_on(done),
        context::ContextError::Canceled
    );
}
