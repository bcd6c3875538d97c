//! Tests of `gosync::pattern`: every channel pattern from threads and from async tasks (on
//! tokio and on `futures`' thread pool), stopped by `done` mid-stream, and the channel-backed
//! mutex in both of its forms.
//!
//! * `*_basic`: what each pattern delivers when its input simply ends.
//! * `on_threads::*`, `on_tokio::*`, `on_pool::*`: the scenarios on each runtime, among them `stop_*`: `done` closes while values flow; the pattern must
//!   deliver a gap-free, duplicate-free prefix (per output, in the pattern's own order), close
//!   its outputs, and its driver must end — the thread returns, the future completes.
//! * `consumer_closed_*`: an output closed by its consumer stops or reroutes the pattern.
//! * `mutex_*`: mutual exclusion under 8 threads (a non-atomic read-modify-write through the
//!   lock), try_lock / lock_timeout / is_locked / lock_or_done, misuse, cancel safety.
//!
//! Every wait is bounded by a watchdog; nothing asserts a duration.
#![cfg(not(loom))]

use std::collections::HashSet;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, OnceLock};
use std::task::{Context, Poll};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use futures::task::noop_waker_ref;
use gosync::chan::{Chan, Receiver, TryRecvError};
use gosync::context;
use gosync::pattern::{
    self, Bridge, Broadcast, ChanMutex, Driver, FanIn, Filter, Flow, Generator, LockBy, Map, Or,
    OrDone, RoundRobin, Skip, SkipWhile, Stage, Take, TakeWhile, Tee,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// How long anything may take before the test counts it as hung.
const WATCHDOG: Duration = Duration::from_secs(25);

/// Runs `f` on its own thread; fails the test if it panics or runs past [`WATCHDOG`].
fn bounded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let h = thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .unwrap();
    match rx.recv_timeout(WATCHDOG) {
        Ok(Ok(r)) => {
            h.join().unwrap();
            r
        }
        Ok(Err(p)) => resume_unwind(p),
        Err(_) => panic!("{what}: still running after {WATCHDOG:?}"),
    }
}

/// Retries `f` (sleeping 1 ms between tries) until it returns `Some`, for at most [`WATCHDOG`].
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

/// Joins a thread, failing the test if it has not ended within [`WATCHDOG`].
fn join<R>(what: &str, h: JoinHandle<R>) -> R {
    until(what, || h.is_finished().then_some(()));
    match h.join() {
        Ok(r) => r,
        Err(p) => resume_unwind(p),
    }
}

fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(noop_waker_ref()))
}

/// Where a driver runs.
#[derive(Clone, Copy, Debug)]
enum Rt {
    /// `Driver::run` on a thread of its own.
    Thread,
    /// `Driver::run_async` spawned on a tokio multi-thread runtime.
    Tokio,
    /// `Driver::run_async` spawned on `futures`' thread pool.
    Pool,
}

fn tokio_rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn pool() -> &'static futures::executor::ThreadPool {
    static POOL: OnceLock<futures::executor::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap()
    })
}

/// Runs `driver` on `rt`; the flag is set when its loop has ended.
fn launch<D: Driver + Send + 'static>(rt: Rt, driver: D) -> Arc<AtomicBool> {
    let ended = Arc::new(AtomicBool::new(false));
    let flag = ended.clone();
    match rt {
        Rt::Thread => {
            thread::spawn(move || {
                driver.run();
                flag.store(true, SeqCst);
            });
        }
        Rt::Tokio => {
            tokio_rt().spawn(async move {
                driver.run_async().await;
                flag.store(true, SeqCst);
            });
        }
        Rt::Pool => pool().spawn_ok(async move {
            driver.run_async().await;
            flag.store(true, SeqCst);
        }),
    }
    ended
}

fn wait_ended(what: &str, ended: &AtomicBool) {
    until(what, || ended.load(SeqCst).then_some(()));
}

/// Runs `driver` on `rt` to its end (bounded).
fn run_on<D: Driver + Send + 'static>(rt: Rt, driver: D) {
    let ended = launch(rt, driver);
    wait_ended("driver ends", &ended);
}

/// A thread reading `rx` until it closes; the counter shows progress.
struct Reader {
    count: Arc<AtomicUsize>,
    handle: JoinHandle<Vec<u64>>,
}

fn reader(rx: Receiver<u64>) -> Reader {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let handle = thread::spawn(move || {
        let mut got = Vec::new();
        for v in &rx {
            got.push(v);
            c.fetch_add(1, SeqCst);
        }
        got
    });
    Reader { count, handle }
}

/// A reader that stops after `k` values until `resume` is set, then reads on until `rx` closes.
fn pausing_reader(rx: Receiver<u64>, k: usize, resume: Arc<AtomicBool>) -> Reader {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let handle = thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < k {
            match rx.recv() {
                Some(v) => got.push(v),
                None => break,
            }
            c.fetch_add(1, SeqCst);
        }
        until("resume", || resume.load(SeqCst).then_some(()));
        got.extend(rx.iter());
        got
    });
    Reader { count, handle }
}

/// Endless sources for a test, stopped (and their threads ended) when the `Sources` drops.
struct Sources(Chan<()>);

impl Sources {
    fn new() -> Self {
        Sources(Chan::new(0))
    }

    /// `start, start + 1, start + 2, ...`
    fn naturals(&self, start: u64) -> Receiver<u64> {
        let mut n = start;
        pattern::generator(self.0.receiver(), move || {
            n += 1;
            Some(n - 1)
        })
    }
}

impl Drop for Sources {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Runs the pattern `build` makes on `rt` with endless input, lets `k` values reach every
/// output, and closes `done` while the consumers have stopped reading — so the driver is
/// blocked on a send, or on its input, when done fires. Checks that the driver ends without
/// any consumer's help, then that every output closes. Returns what each output received.
fn stops_mid_stream<D: Driver + Send + 'static>(
    rt: Rt,
    k: usize,
    build: impl FnOnce(Receiver<()>, &Sources) -> (D, Vec<Receiver<u64>>),
) -> Vec<Vec<u64>> {
    let sources = Sources::new();
    let done = Chan::new(0);
    let (driver, outs) = build(done.receiver(), &sources);
    let ended = launch(rt, driver);
    let resume = Arc::new(AtomicBool::new(false));
    let readers: Vec<Reader> = outs
        .into_iter()
        .map(|rx| pausing_reader(rx, k, resume.clone()))
        .collect();
    until("every output gets k values", || {
        readers
            .iter()
            .all(|r| r.count.load(SeqCst) >= k)
            .then_some(())
    });
    done.close();
    wait_ended("the driver ends after done", &ended);
    resume.store(true, SeqCst);
    let got = readers
        .into_iter()
        .map(|r| join("output closes", r.handle))
        .collect();
    drop(sources);
    got
}

/// `got` is `f(0), f(1), ..., f(got.len() - 1)`: nothing lost, duplicated or reordered.
fn assert_prefix(got: &[u64], f: impl Fn(u64) -> u64) {
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, f(i as u64), "value {i} of {got:?}");
    }
}

fn unbuffered() -> Chan<u64> {
    Chan::new(0)
}

fn nil_done() -> Receiver<()> {
    Chan::nil().receiver()
}

// ---------------------------------------------------------------------------------------------
// Each pattern with a plain ending input
// ---------------------------------------------------------------------------------------------

#[test]
fn or_done_basic() {
    bounded("or_done", || {
        let out = pattern::or_done(nil_done(), pattern::from_iter(nil_done(), 0..100u64));
        assert_eq!(out.iter().collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
        assert_eq!(out.recv(), None);
    });
}

#[test]
fn or_basic() {
    bounded("or", || {
        // None: the nil channel, which never fires.
        assert!(pattern::or(&[]).is_nil());
        // One: the channel itself.
        let one: Chan<()> = Chan::new(0);
        assert_eq!(pattern::or(&[one.receiver()]), one.receiver());
        // Many: closes when any one closes.
        let dones: Vec<Chan<()>> = (0..10).map(|_| Chan::new(0)).collect();
        let any = pattern::or(&dones.iter().map(Chan::receiver).collect::<Vec<_>>());
        thread::sleep(Duration::from_millis(5));
        assert_eq!(any.try_recv(), Err(TryRecvError::Empty));
        dones[7].close();
        assert_eq!(any.recv(), None);
        assert!(any.is_closed());
    });
}

#[test]
fn or_fires_on_a_value_too() {
    bounded("or on a value", || {
        let dones: Vec<Chan<()>> = (0..3).map(|_| Chan::new(1)).collect();
        let out = Chan::new(0);
        let waiter = Or::new(dones.iter().map(Chan::receiver).collect(), out.sender()).spawn();
        dones[2].send(()).unwrap();
        assert_eq!(out.recv(), None);
        join("or driver", waiter);
        assert!(dones[2].is_empty(), "the value was consumed");
    });
}

fn or_many(rt: Rt) {
    // More arms than the select! macro takes: the dynamic select waits on all of them.
    let dones: Vec<Chan<()>> = (0..100).map(|_| Chan::new(0)).collect();
    let out = Chan::new(0);
    let ended = launch(
        rt,
        Or::new(dones.iter().map(Chan::receiver).collect(), out.sender()),
    );
    thread::sleep(Duration::from_millis(5));
    assert!(!out.is_closed());
    dones[63].close();
    wait_ended("or ends", &ended);
    assert!(out.is_closed());
}

#[test]
fn or_without_inputs_returns_and_never_fires() {
    for rt in [Rt::Thread, Rt::Tokio, Rt::Pool] {
        let out: Chan<()> = Chan::new(0);
        run_on(rt, Or::new(Vec::new(), out.sender()));
        assert!(!out.is_closed());
    }
}

#[test]
fn fan_in_basic() {
    bounded("fan_in", || {
        let inputs: Vec<Receiver<u64>> = (0..4u64)
            .map(|i| pattern::from_iter(nil_done(), (0..500).map(move |n| i * 1_000_000 + n)))
            .collect();
        let got: Vec<u64> = pattern::fan_in(nil_done(), inputs).iter().collect();
        assert_eq!(got.len(), 2000);
        for i in 0..4 {
            let from_i: Vec<u64> = got.iter().copied().filter(|v| v / 1_000_000 == i).collect();
            assert_prefix(&from_i, |n| i * 1_000_000 + n); // per-input order kept, none lost
        }
    });
}

#[test]
fn fan_in_of_nothing_closes() {
    bounded("fan_in of nothing", || {
        let out: Receiver<u8> = pattern::fan_in(nil_done(), Vec::new());
        assert_eq!(out.recv(), None);
    });
}

#[test]
fn fan_out_broadcast_basic() {
    bounded("fan_out", || {
        let outs = pattern::fan_out(nil_done(), pattern::from_iter(nil_done(), 0..300u64), 3);
        let readers: Vec<Reader> = outs.into_iter().map(reader).collect();
        for r in readers {
            assert_eq!(join("reader", r.handle), (0..300).collect::<Vec<_>>());
        }
    });
}

#[test]
fn fan_out_lossy_skips_a_full_output() {
    bounded("fan_out_lossy", || {
        let input = Chan::new(0);
        let outs = pattern::fan_out_lossy(nil_done(), input.receiver(), 2, 4);
        // Nobody reads output 1 yet: it fills after 4 values and misses the rest, while
        // output 0, read as we go, gets everything.
        for i in 0..10u64 {
            input.send(i).unwrap();
            assert_eq!(outs[0].recv(), Some(i));
        }
        input.close();
        assert_eq!(outs[0].recv(), None);
        assert_eq!(outs[1].iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    });
}

fn round_robin_distribution(rt: Rt) {
    let input = Chan::new(0);
    let outs: Vec<Chan<u64>> = (0..3).map(|_| Chan::new(0)).collect();
    let ended = launch(
        rt,
        RoundRobin::new(
            nil_done(),
            input.receiver(),
            outs.iter().map(Chan::sender).collect(),
        ),
    );
    let readers: Vec<Reader> = outs.iter().map(|o| reader(o.receiver())).collect();
    for v in 0..300u64 {
        input.send(v).unwrap();
    }
    input.close();
    wait_ended("round robin ends", &ended);
    for (i, r) in readers.into_iter().enumerate() {
        let got = join("reader", r.handle);
        assert_eq!(got.len(), 100);
        assert_prefix(&got, |k| 3 * k + i as u64); // value k goes to output k mod 3
    }
}

#[test]
fn round_robin_convenience() {
    bounded("fan_out_round_robin", || {
        let outs =
            pattern::fan_out_round_robin(nil_done(), pattern::from_iter(nil_done(), 0..8u64), 2);
        let readers: Vec<Reader> = outs.into_iter().map(reader).collect();
        let got: Vec<Vec<u64>> = readers
            .into_iter()
            .map(|r| join("reader", r.handle))
            .collect();
        assert_eq!(got, [vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
    });
}

fn tee_identical(rt: Rt) {
    let (a, b) = (unbuffered(), unbuffered());
    let input = pattern::from_iter(nil_done(), 0..2000u64);
    let ended = launch(rt, Tee::new(nil_done(), input, a.sender(), b.sender()));
    // One fast reader and one that dawdles now and then: both get everything, in order.
    let fast = reader(a.receiver());
    let brx = b.receiver();
    let slow = thread::spawn(move || {
        let mut got = Vec::new();
        for v in &brx {
            if v % 500 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
            got.push(v);
        }
        got
    });
    let (fa, sb) = (join("fast", fast.handle), join("slow", slow));
    wait_ended("tee ends", &ended);
    assert_eq!(fa, (0..2000).collect::<Vec<_>>());
    assert_eq!(fa, sb);
}

#[test]
fn tee_convenience() {
    bounded("tee", || {
        let (a, b) = pattern::tee(nil_done(), pattern::from_iter(nil_done(), ["x", "y", "z"]));
        let other = thread::spawn(move || b.iter().collect::<Vec<_>>());
        assert_eq!(a.iter().collect::<Vec<_>>(), ["x", "y", "z"]);
        assert_eq!(other.join().unwrap(), ["x", "y", "z"]);
    });
}

fn bridge_order(rt: Rt) {
    let streams: Chan<Receiver<u64>> = Chan::new(0);
    let out = unbuffered();
    let ended = launch(
        rt,
        Bridge::new(nil_done(), streams.receiver(), out.sender()),
    );
    let r = reader(out.receiver());
    // Streams of various lengths, some empty, each filled by its own thread and arriving in
    // order: the bridge drains each in turn.
    let mut next = 0u64;
    for len in [3u64, 0, 5, 1, 0, 0, 7, 2] {
        let s = pattern::from_iter(nil_done(), next..next + len);
        next += len;
        streams.send(s).unwrap();
    }
    streams.close();
    let got = join("reader", r.handle);
    wait_ended("bridge ends", &ended);
    assert_eq!(got, (0..next).collect::<Vec<_>>());
}

#[test]
fn bridge_convenience() {
    bounded("bridge", || {
        let streams = pattern::from_iter(
            nil_done(),
            (0..4u64).map(|i| pattern::from_iter(nil_done(), [i * 2, i * 2 + 1])),
        );
        let flat = pattern::bridge(nil_done(), streams);
        assert_eq!(flat.iter().collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    });
}

#[test]
fn stream_ops_basic() {
    bounded("stream ops", || {
        let src = || pattern::from_iter(nil_done(), 0..20u64);
        let d = nil_done;
        assert_eq!(
            pattern::take(d(), src(), 3).iter().collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(pattern::take(d(), src(), 100).iter().count(), 20);
        assert_eq!(
            pattern::take_while(d(), src(), |v| *v < 4)
                .iter()
                .collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(
            pattern::skip(d(), src(), 17).iter().collect::<Vec<_>>(),
            [17, 18, 19]
        );
        assert_eq!(pattern::skip(d(), src(), 100).iter().count(), 0);
        assert_eq!(
            pattern::skip_while(d(), pattern::from_iter(d(), [1, 2, 9, 1, 2]), |v| *v < 5)
                .iter()
                .collect::<Vec<_>>(),
            [9, 1, 2]
        );
        assert_eq!(
            pattern::map(d(), src(), |v| v.to_string())
                .iter()
                .take(3)
                .collect::<Vec<_>>(),
            ["0", "1", "2"]
        );
        assert_eq!(
            pattern::filter(d(), src(), |v| v % 7 == 0)
                .iter()
                .collect::<Vec<_>>(),
            [0, 7, 14]
        );
        assert_eq!(pattern::reduce(d(), src(), 0, |a, v| a + v), Some(190));
        assert_eq!(
            pattern::repeat(d(), vec![1, 2])
                .iter()
                .take(5)
                .collect::<Vec<_>>(),
            [1, 2, 1, 2, 1]
        );
        assert_eq!(pattern::repeat(d(), Vec::<u8>::new()).recv(), None);
        let mut n = 0;
        let g = pattern::generator(d(), move || {
            n += 1;
            (n <= 3).then_some(n)
        });
        assert_eq!(g.iter().collect::<Vec<_>>(), [1, 2, 3]);
    });
}

#[test]
fn take_reads_exactly_n() {
    bounded("take reads exactly n", || {
        let input = Chan::new(10);
        for i in 0..10 {
            input.send(i).unwrap();
        }
        let first = pattern::take(nil_done(), input.receiver(), 4);
        assert_eq!(first.iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(input.len(), 6, "the rest stays in the input");
        let none = pattern::take(nil_done(), input.receiver(), 0);
        assert_eq!(none.recv(), None);
        assert_eq!(input.len(), 6, "take(0) reads nothing");
    });
}

#[test]
fn stage_with_closure_steps_and_stop() {
    bounded("stage", || {
        // A closure step: doubles, skips multiples of 3, stops at the first value over 10.
        let out = pattern::stage(
            nil_done(),
            pattern::from_iter(nil_done(), 0..100u64),
            |v: u64| {
                if v > 10 {
                    Flow::Stop
                } else if v.is_multiple_of(3) {
                    Flow::Skip
                } else {
                    Flow::Emit(v * 2)
                }
            },
        );
        assert_eq!(out.iter().collect::<Vec<_>>(), [2, 4, 8, 10, 14, 16, 20]);
    });
}

#[test]
fn stage_n_runs_every_value_once() {
    bounded("stage_n", || {
        let out = pattern::stage_n(
            nil_done(),
            pattern::from_iter(nil_done(), 0..2000u64),
            4,
            Map::new(|v: u64| v * 3),
        );
        let mut got: Vec<u64> = out.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (0..2000).map(|v| v * 3).collect::<Vec<_>>());
    });
}

#[test]
fn stage_split_workers_share_the_close() {
    for rt in [Rt::Thread, Rt::Tokio, Rt::Pool] {
        let input = Chan::new(0);
        let out = Chan::new(0);
        let stage = Stage::new(
            nil_done(),
            input.receiver(),
            out.sender(),
            Map::new(|v: u64| v),
        );
        let workers = stage.split(3);
        let ended: Vec<_> = workers.into_iter().map(|w| launch(rt, w)).collect();
        let r = reader(out.receiver());
        for v in 0..300 {
            input.send(v).unwrap();
        }
        input.close();
        let mut got = join("reader", r.handle);
        for e in &ended {
            wait_ended("worker ends", e);
        }
        got.sort_unstable();
        assert_eq!(got, (0..300).collect::<Vec<_>>(), "{rt:?}");
    }
}

#[test]
#[should_panic(expected = "at least one worker")]
fn stage_split_zero_panics() {
    let (input, out) = (Chan::<u8>::new(0), Chan::<u8>::new(0));
    let _ = Stage::new(
        nil_done(),
        input.receiver(),
        out.sender(),
        Map::new(|v: u8| v),
    )
    .split(0);
}

#[test]
fn drivers_on_every_runtime() {
    for rt in [Rt::Thread, Rt::Tokio, Rt::Pool] {
        // Stream steps as drivers: buffered outputs, so each can run to its end alone.
        let out = Chan::new(64);
        let src = || pattern::from_iter(nil_done(), 0..20u64);
        run_on(
            rt,
            Stage::new(nil_done(), src(), out.sender(), Take::new(2)),
        );
        assert_eq!(out.iter().collect::<Vec<_>>(), [0, 1], "{rt:?}");
        let out = Chan::new(64);
        run_on(
            rt,
            Stage::new(
                nil_done(),
                src(),
                out.sender(),
                TakeWhile::new(|v: &u64| *v < 3),
            ),
        );
        assert_eq!(out.iter().collect::<Vec<_>>(), [0, 1, 2], "{rt:?}");
        let out = Chan::new(64);
        run_on(
            rt,
            Stage::new(nil_done(), src(), out.sender(), Skip::new(18)),
        );
        assert_eq!(out.iter().collect::<Vec<_>>(), [18, 19], "{rt:?}");
        let out = Chan::new(64);
        run_on(
            rt,
            Stage::new(
                nil_done(),
                src(),
                out.sender(),
                SkipWhile::new(|v: &u64| *v < 17),
            ),
        );
        assert_eq!(out.iter().collect::<Vec<_>>(), [17, 18, 19], "{rt:?}");
        let out = Chan::new(64);
        run_on(
            rt,
            Stage::new(
                nil_done(),
                src(),
                out.sender(),
                Filter::new(|v: &u64| v.is_multiple_of(9)),
            ),
        );
        assert_eq!(out.iter().collect::<Vec<_>>(), [0, 9, 18], "{rt:?}");
        let out = Chan::new(64);
        run_on(rt, Generator::new(nil_done(), 5..8u64, out.sender()));
        assert_eq!(out.iter().collect::<Vec<_>>(), [5, 6, 7], "{rt:?}");
        let out = Chan::new(64);
        run_on(rt, OrDone::new(nil_done(), src(), out.sender()));
        assert_eq!(out.iter().count(), 20, "{rt:?}");
        let out = Chan::new(64);
        let ins = vec![src(), src()];
        run_on(rt, FanIn::new(nil_done(), ins, out.sender()));
        assert_eq!(out.iter().sum::<u64>(), 2 * 190, "{rt:?}");
        let outs: Vec<Chan<u64>> = (0..2).map(|_| Chan::new(64)).collect();
        run_on(
            rt,
            Broadcast::new(nil_done(), src(), outs.iter().map(Chan::sender).collect()),
        );
        for o in &outs {
            assert_eq!(o.iter().count(), 20, "{rt:?}");
        }
    }
}

#[test]
fn reduce_async_on_tokio() {
    let total = tokio_rt().block_on(async {
        let src = pattern::from_iter(nil_done(), 1..=100u64);
        pattern::reduce_async(nil_done(), src, 0, |a, v| a + v).await
    });
    assert_eq!(total, Some(5050));
}

#[test]
fn reduce_stopped_by_done() {
    bounded("reduce stopped", || {
        let sources = Sources::new();
        let done = Chan::new(0);
        let d = done.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            d.close();
        });
        // An endless input: only done can end the fold.
        assert_eq!(
            pattern::reduce(done.receiver(), sources.naturals(0), 0u64, |a, v| a + v),
            None
        );
        let done2 = done.receiver();
        let r = futures::executor::block_on(pattern::reduce_async(
            done2,
            sources.naturals(0),
            0u64,
            |a, v| a + v,
        ));
        assert_eq!(r, None);
    });
}

#[test]
fn driver_spawn_joins() {
    bounded("spawn", || {
        let out = Chan::new(0);
        let h = Generator::new(nil_done(), 0..3u64, out.sender()).spawn();
        assert_eq!(out.iter().collect::<Vec<_>>(), [0, 1, 2]);
        join("spawned driver", h);
    });
}

#[test]
fn panic_in_a_step_closes_the_output() {
    bounded("panicking step", || {
        let out = Chan::new(0);
        let h = Stage::new(
            nil_done(),
            pattern::from_iter(nil_done(), 0..10u64),
            out.sender(),
            Map::new(|v: u64| {
                assert!(v != 3, "step failed on purpose");
                v
            }),
        )
        .spawn();
        assert_eq!(out.iter().collect::<Vec<_>>(), [0, 1, 2]); // ends: the output closed
        assert!(h.join().is_err());
    });
}

#[test]
fn context_stops_a_pattern() {
    bounded("context", || {
        let sources = Sources::new();
        let (ctx, cancel) = context::with_cancel(&context::background());
        let out = pattern::or_done(ctx.done_chan(), sources.naturals(0));
        assert_eq!(
            out.iter().take(10).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        cancel.cancel();
        let rest: Vec<u64> = out.iter().collect(); // ends: the pattern closed its output
        assert_prefix(&rest, |i| 10 + i);

        // A deadline does the same, with the driver as a task.
        let (ctx, _cancel) =
            context::with_timeout(&context::background(), Duration::from_millis(20));
        let out = Chan::new(0);
        let ended = launch(
            Rt::Tokio,
            OrDone::new(ctx.done_chan(), sources.naturals(0), out.sender()),
        );
        let got: Vec<u64> = out.iter().collect();
        assert_prefix(&got, |i| i);
        wait_ended("or_done ends at the deadline", &ended);
    });
}

// ---------------------------------------------------------------------------------------------
// Done stops every pattern mid-stream, on every runtime
// ---------------------------------------------------------------------------------------------

const K: usize = 30;

fn stop_or_done(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        let out = unbuffered();
        (
            OrDone::new(done, src.naturals(0), out.sender()),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i);
}

fn stop_or(rt: Rt) {
    // `or` over [done, a never-firing channel] ends when done fires.
    let never: Chan<()> = Chan::new(0);
    let done = Chan::new(0);
    let out = Chan::new(0);
    let ended = launch(
        rt,
        Or::new(vec![never.receiver(), done.receiver()], out.sender()),
    );
    done.close();
    wait_ended("or ends", &ended);
    assert_eq!(out.recv(), None);
}

fn stop_fan_in(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        let out = unbuffered();
        let inputs = (0..3).map(|i| src.naturals(i * 1_000_000)).collect();
        (FanIn::new(done, inputs, out.sender()), vec![out.receiver()])
    });
    for i in 0..3 {
        let from_i: Vec<u64> = got[0]
            .iter()
            .copied()
            .filter(|v| v / 1_000_000 == i)
            .collect();
        assert_prefix(&from_i, |n| i * 1_000_000 + n);
    }
}

fn stop_broadcast(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        let outs: Vec<Chan<u64>> = (0..3).map(|_| unbuffered()).collect();
        let d = Broadcast::new(
            done,
            src.naturals(0),
            outs.iter().map(Chan::sender).collect(),
        );
        (d, outs.iter().map(Chan::receiver).collect())
    });
    let lens: Vec<usize> = got.iter().map(Vec::len).collect();
    for g in &got {
        assert_prefix(g, |i| i);
    }
    // A value reaches every output before the next is read.
    let (min, max) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
    assert!(max - min <= 1, "lengths {lens:?}");
}

fn stop_lossy(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        let outs: Vec<Chan<u64>> = (0..3).map(|_| Chan::new(16)).collect();
        let d = Broadcast::lossy(
            done,
            src.naturals(0),
            outs.iter().map(Chan::sender).collect(),
        );
        (d, outs.iter().map(Chan::receiver).collect())
    });
    for g in &got {
        // Values may be missed, never duplicated or reordered.
        assert!(g.windows(2).all(|w| w[0] < w[1]), "{g:?}");
    }
}

fn stop_round_robin(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        let outs: Vec<Chan<u64>> = (0..3).map(|_| unbuffered()).collect();
        let d = RoundRobin::new(
            done,
            src.naturals(0),
            outs.iter().map(Chan::sender).collect(),
        );
        (d, outs.iter().map(Chan::receiver).collect())
    });
    for (i, g) in got.iter().enumerate() {
        assert_prefix(g, |k| 3 * k + i as u64);
    }
}

fn stop_tee(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        let (a, b) = (unbuffered(), unbuffered());
        (
            Tee::new(done, src.naturals(0), a.sender(), b.sender()),
            vec![a.receiver(), b.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i);
    assert_prefix(&got[1], |i| i);
    assert!(got[0].len().abs_diff(got[1].len()) <= 1);
}

fn stop_bridge(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        // Endless streams of 7 values each: 0..7, 7..14, ...
        let inner_done = src.0.receiver();
        let mut start = 0u64;
        let streams = pattern::generator(src.0.receiver(), move || {
            let s = pattern::from_iter(inner_done.clone(), start..start + 7);
            start += 7;
            Some(s)
        });
        let out = unbuffered();
        (
            Bridge::new(done, streams, out.sender()),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i);
}

fn stop_stage(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        let out = unbuffered();
        (
            Stage::new(
                done,
                src.naturals(0),
                out.sender(),
                Map::new(|v: u64| v * 10),
            ),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i * 10);
}

fn stop_stream_steps(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, src| {
        let out = unbuffered();
        (
            Stage::new(
                done,
                src.naturals(0),
                out.sender(),
                Filter::new(|v: &u64| v.is_multiple_of(2)),
            ),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| 2 * i);
    let got = stops_mid_stream(rt, K, |done, src| {
        let out = unbuffered();
        (
            Stage::new(done, src.naturals(0), out.sender(), Take::new(usize::MAX)),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i);
    let got = stops_mid_stream(rt, K, |done, src| {
        let out = unbuffered();
        (
            Stage::new(
                done,
                src.naturals(0),
                out.sender(),
                TakeWhile::new(|_: &u64| true),
            ),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i);
    let got = stops_mid_stream(rt, K, |done, src| {
        let out = unbuffered();
        (
            Stage::new(done, src.naturals(0), out.sender(), Skip::new(5)),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i + 5);
    let got = stops_mid_stream(rt, K, |done, src| {
        let out = unbuffered();
        (
            Stage::new(
                done,
                src.naturals(0),
                out.sender(),
                SkipWhile::new(|v: &u64| *v < 9),
            ),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i + 9);
}

fn stop_generator(rt: Rt) {
    let got = stops_mid_stream(rt, K, |done, _| {
        let out = unbuffered();
        (
            Generator::new(done, 0.., out.sender()),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| i);
    let got = stops_mid_stream(rt, K, |done, _| {
        let out = unbuffered();
        (
            Generator::new(done, [4u64, 5, 6].into_iter().cycle(), out.sender()),
            vec![out.receiver()],
        )
    });
    assert_prefix(&got[0], |i| 4 + i % 3);
}

fn stop_stage_workers(rt: Rt) {
    // Workers of a split stage stop one by one; the last closes the output.
    let sources = Sources::new();
    let done = Chan::new(0);
    let out = unbuffered();
    let stage = Stage::new(
        done.receiver(),
        sources.naturals(0),
        out.sender(),
        Map::new(|v: u64| v),
    );
    let ended: Vec<_> = stage.split(3).into_iter().map(|w| launch(rt, w)).collect();
    let r = reader(out.receiver());
    until("values flow", || (r.count.load(SeqCst) >= K).then_some(()));
    done.close();
    for e in &ended {
        wait_ended("worker ends", e);
    }
    let got = join("reader", r.handle);
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "no value twice");
}

/// One `#[test]` per (scenario, runtime).
macro_rules! on_every_runtime {
    ($($scenario:ident),* $(,)?) => {
        mod on_threads {
            $( #[test] fn $scenario() { super::bounded(stringify!($scenario), || super::$scenario(super::Rt::Thread)) } )*
        }
        mod on_tokio {
            $( #[test] fn $scenario() { super::bounded(stringify!($scenario), || super::$scenario(super::Rt::Tokio)) } )*
        }
        mod on_pool {
            $( #[test] fn $scenario() { super::bounded(stringify!($scenario), || super::$scenario(super::Rt::Pool)) } )*
        }
    };
}

on_every_runtime!(
    stop_or_done,
    stop_or,
    stop_fan_in,
    stop_broadcast,
    stop_lossy,
    stop_round_robin,
    stop_tee,
    stop_bridge,
    stop_stage,
    stop_stream_steps,
    stop_generator,
    stop_stage_workers,
    or_many,
    round_robin_distribution,
    tee_identical,
    bridge_order,
);

// ---------------------------------------------------------------------------------------------
// Outputs closed by their consumers
// ---------------------------------------------------------------------------------------------

#[test]
fn consumer_closed_output_stops_the_driver() {
    for rt in [Rt::Thread, Rt::Tokio, Rt::Pool] {
        let sources = Sources::new();
        let out = unbuffered();
        let ended = launch(
            rt,
            OrDone::new(nil_done(), sources.naturals(0), out.sender()),
        );
        assert_eq!(out.recv(), Some(0));
        out.close(); // the consumer leaves: no done channel needed
        wait_ended("driver ends", &ended);
    }
}

#[test]
fn consumer_closed_output_leaves_the_fan_out() {
    bounded("fan-out with a closed output", || {
        // Broadcast: the others still get everything.
        let outs: Vec<Chan<u64>> = (0..3).map(|_| unbuffered()).collect();
        outs[1].close();
        let input = pattern::from_iter(nil_done(), 0..50u64);
        let h = Broadcast::new(nil_done(), input, outs.iter().map(Chan::sender).collect()).spawn();
        let readers: Vec<Reader> = [0, 2].iter().map(|&i| reader(outs[i].receiver())).collect();
        for r in readers {
            assert_eq!(join("reader", r.handle), (0..50).collect::<Vec<_>>());
        }
        join("broadcast", h);

        // Round robin: the closed output's turns go to the next ones.
        let outs: Vec<Chan<u64>> = (0..3).map(|_| unbuffered()).collect();
        outs[0].close();
        let input = pattern::from_iter(nil_done(), 0..50u64);
        let h = RoundRobin::new(nil_done(), input, outs.iter().map(Chan::sender).collect()).spawn();
        let readers: Vec<Reader> = [1, 2].iter().map(|&i| reader(outs[i].receiver())).collect();
        let got: Vec<Vec<u64>> = readers
            .into_iter()
            .map(|r| join("reader", r.handle))
            .collect();
        join("round robin", h);
        let mut all: Vec<u64> = got.concat();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());

        // Tee: with one side closed, the other still gets every value.
        let (a, b) = (unbuffered(), unbuffered());
        b.close();
        let h = Tee::new(
            nil_done(),
            pattern::from_iter(nil_done(), 0..20u64),
            a.sender(),
            b.sender(),
        )
        .spawn();
        assert_eq!(a.iter().collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
        join("tee", h);
    });
}

// ---------------------------------------------------------------------------------------------
// The channel-backed mutex
// ---------------------------------------------------------------------------------------------

const FORMS: [LockBy; 2] = [LockBy::Recv, LockBy::Send];

/// 8 threads each add 1 to a counter `ROUNDS` times with a non-atomic read-modify-write (load,
/// then store) under the lock; `inside` catches two holders at once.
#[test]
fn mutex_mutual_exclusion_8_threads() {
    const THREADS: u64 = 8;
    const ROUNDS: u64 = 500;
    for by in FORMS {
        bounded("mutual exclusion", move || {
            let m = Arc::new(ChanMutex::with_lock_by(by));
            let counter = Arc::new(AtomicU64::new(0));
            let inside = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (m, counter, inside) = (m.clone(), counter.clone(), inside.clone());
                    thread::spawn(move || {
                        for _ in 0..ROUNDS {
                            m.lock();
                            assert_eq!(inside.fetch_add(1, SeqCst), 0, "two holders");
                            let v = counter.load(SeqCst);
                            thread::yield_now();
                            counter.store(v + 1, SeqCst);
                            inside.fetch_sub(1, SeqCst);
                            m.unlock();
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            assert_eq!(counter.load(SeqCst), THREADS * ROUNDS, "{by:?}");
            assert!(!m.is_locked());
        });
    }
}

/// Threads and tokio tasks share one mutex.
#[test]
fn mutex_threads_and_tasks() {
    for by in FORMS {
        bounded("threads and tasks", move || {
            let m = Arc::new(ChanMutex::with_lock_by(by));
            let counter = Arc::new(AtomicU64::new(0));
            let mut threads = Vec::new();
            for _ in 0..2 {
                let (m, counter) = (m.clone(), counter.clone());
                threads.push(thread::spawn(move || {
                    for _ in 0..300 {
                        m.lock();
                        let v = counter.load(SeqCst);
                        counter.store(v + 1, SeqCst);
                        m.unlock();
                    }
                }));
            }
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let (m, counter) = (m.clone(), counter.clone());
                    tokio_rt().spawn(async move {
                        for _ in 0..300 {
                            m.lock_async().await;
                            let v = counter.load(SeqCst);
                            tokio::task::yield_now().await;
                            counter.store(v + 1, SeqCst);
                            m.unlock();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            tokio_rt().block_on(async {
                for t in tasks {
                    t.await.unwrap();
                }
            });
            assert_eq!(counter.load(SeqCst), 6 * 300, "{by:?}");
        });
    }
}

#[test]
fn mutex_try_lock_and_is_locked() {
    for by in FORMS {
        let m = ChanMutex::with_lock_by(by);
        assert_eq!(m.lock_by(), by);
        assert!(!m.is_locked());
        assert!(m.try_lock());
        assert!(m.is_locked());
        assert!(!m.try_lock());
        m.unlock();
        assert!(!m.is_locked());
        m.lock();
        assert!(!m.try_lock());
        m.unlock();
        assert!(m.try_lock());
        m.unlock();
    }
}

#[test]
fn mutex_lock_timeout() {
    for by in FORMS {
        bounded("lock_timeout", move || {
            let m = Arc::new(ChanMutex::with_lock_by(by));
            assert!(m.lock_timeout(Duration::from_millis(1))); // free: locks at once
            assert!(!m.lock_timeout(Duration::from_millis(10))); // held: times out
            assert!(m.is_locked());
            // Released by another thread while waiting: locks.
            let m2 = m.clone();
            let releaser = thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                m2.unlock();
            });
            assert!(m.lock_timeout(WATCHDOG));
            releaser.join().unwrap();
            assert!(m.is_locked());
            m.unlock();
            assert!(!m.is_locked(), "a timed-out wait left nothing behind");
        });
    }
}

#[test]
fn mutex_lock_or_done() {
    for by in FORMS {
        bounded("lock_or_done", move || {
            let m = ChanMutex::with_lock_by(by);
            let (ctx, cancel) = context::with_cancel(&context::background());
            assert!(m.lock_or_done(&ctx.done_chan()));
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(5));
                cancel.cancel();
            });
            assert!(
                !m.lock_or_done(&ctx.done_chan()),
                "held: the context ends the wait"
            );
            m.unlock();
            // Free, and done has fired: either may win, and the answer says which.
            let locked = futures::executor::block_on(m.lock_or_done_async(&ctx.done_chan()));
            assert_eq!(locked, m.is_locked());
            if locked {
                m.unlock();
            }
            m.lock();
            assert!(!futures::executor::block_on(
                m.lock_or_done_async(&ctx.done_chan())
            ));
            m.unlock();
            assert!(!m.is_locked());
        });
    }
}

#[test]
#[should_panic(expected = "sync: unlock of unlocked mutex")]
fn mutex_unlock_of_unlocked_panics_recv() {
    ChanMutex::new().unlock();
}

#[test]
#[should_panic(expected = "sync: unlock of unlocked mutex")]
fn mutex_unlock_of_unlocked_panics_send() {
    ChanMutex::with_lock_by(LockBy::Send).unlock();
}

#[test]
fn mutex_double_unlock_panics() {
    for by in FORMS {
        let m = ChanMutex::with_lock_by(by);
        m.lock();
        m.unlock();
        let r = catch_unwind(AssertUnwindSafe(|| m.unlock()));
        let msg = r.unwrap_err();
        assert_eq!(
            msg.downcast_ref::<String>().map(String::as_str),
            Some("sync: unlock of unlocked mutex")
        );
        assert!(!m.is_locked());
    }
}

/// A lock future handed the lock and dropped before it is polled again passes the lock on.
#[test]
fn mutex_lock_async_cancel_after_handoff() {
    for by in FORMS {
        let m = ChanMutex::with_lock_by(by);
        m.lock();
        let mut fut = Box::pin(m.lock_async());
        assert!(poll_once(fut.as_mut()).is_pending());
        m.unlock(); // hands the lock to the queued future
        drop(fut);
        assert!(!m.is_locked(), "{by:?}: the dropped future kept the lock");
        assert!(m.try_lock());
        m.unlock();
    }
}

/// A lock future dropped while still waiting takes nothing.
#[test]
fn mutex_lock_async_cancel_while_waiting() {
    for by in FORMS {
        let m = ChanMutex::with_lock_by(by);
        m.lock();
        let mut fut = Box::pin(m.lock_async());
        assert!(poll_once(fut.as_mut()).is_pending());
        drop(fut);
        assert!(m.is_locked());
        m.unlock();
        assert!(!m.is_locked(), "{by:?}");
        // And a waiter queued after the dropped one still gets the lock.
        m.lock();
        let mut fut = Box::pin(m.lock_async());
        assert!(poll_once(fut.as_mut()).is_pending());
        let mut second = Box::pin(m.lock_async());
        assert!(poll_once(second.as_mut()).is_pending());
        drop(fut);
        m.unlock();
        assert!(poll_once(second.as_mut()).is_ready(), "{by:?}");
        drop(second);
        assert!(m.is_locked());
        m.unlock();
    }
}

#[test]
fn mutex_unlock_from_another_thread() {
    bounded("unlock elsewhere", || {
        let m = Arc::new(ChanMutex::new());
        m.lock();
        let m2 = m.clone();
        thread::spawn(move || m2.unlock()).join().unwrap();
        assert!(!m.is_locked());
    });
}

#[test]
fn mutex_debug() {
    let m = ChanMutex::new();
    m.lock();
    let s = format!("{m:?}");
    assert!(s.contains("locked: true"), "{s}");
    m.unlock();
}
