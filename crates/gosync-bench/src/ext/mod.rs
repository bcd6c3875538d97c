//! Family `ext`: the extended primitives (Go's `golang.org/x/sync`) against the Rust crates
//! that do the same job — async-lock and tokio::sync semaphores, `async_singleflight` and
//! `singleflight`, `std::thread::scope`, `futures`' `FuturesUnordered` and tokio's `JoinSet` —
//! and against x/sync itself (`bench/go/ext/main.go`, which measures the same cases the same
//! way).
//!
//! * `semaphore_uncontended`: acquire(1) + release(1) in a loop on one thread or task.
//! * `semaphore_contended`: N workers on a semaphore of 2 permits, each looping acquire(1),
//!   add 1 to its own counter, release(1), until a stop flag is set after a fixed duration.
//! * `singleflight_hit`: the hit path. N callers run in lockstep rounds on one key: in each
//!   round all of them call, the first leads, and its function returns only once all N have
//!   called, so the other N-1 find the call in flight and join it (see [`FlightState`]).
//!   The value is the rate of joining calls; a note gives the share of calls that joined.
//! * `errgroup`: one round = a new group, 4 `go` of a function that returns at once, wait.
//!
//! Threads are OS threads (Go: goroutines, GOMAXPROCS = CPUs, shown under the thread columns
//! as in family `sync`); tasks run on a tokio multi-thread runtime with 2 worker threads.
//!
//! The lock cases — `reentrant`, `spin_uncontended`, `spin_contended`, `filelock` — are in
//! [`locks`]; they have no Go rows.

use std::cell::RefCell;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::runtime::Runtime;

use crate::go::{go_duration, GoProgram, Record};
use crate::measure::{ns_per_op, ns_per_op_async, tasks_contended, threads_contended, Contender};
use crate::stats::{Better, Sample};
use crate::{Config, Table};

mod locks;

/// One line for `--list`.
pub const ABOUT: &str =
    "semaphore::Weighted, singleflight::Group, errgroup (x/sync), threads and async tasks; re-entrant, spin and file locks";

/// Case keys and what they measure, for `--list` and `--case`.
pub const CASES: &[(&str, &str)] = &[
    (
        "semaphore_uncontended",
        "acquire(1) + release(1) on one thread / one task, ns/op",
    ),
    (
        "semaphore_contended",
        "4 and 8 threads (and tasks) on 2 permits looping acquire(1) + count + release(1), Mops/s and fairness",
    ),
    (
        "singleflight_hit",
        "4 threads (and tasks) calling one key in lockstep, 3 of 4 calls join the flight: joining calls, Mops/s",
    ),
    (
        "errgroup",
        "new group + 4 go() of a no-op + wait, threads and tasks, ns per round",
    ),
    (
        "reentrant",
        "re-entrant mutex on one thread: re-lock + unlock while held, and lock + unlock of a free one, ns/op",
    ),
    (
        "spin_uncontended",
        "spin lock: lock + increment + unlock on one thread, ns/op",
    ),
    (
        "spin_contended",
        "spin lock: 2 and 4 threads looping lock + increment + unlock, Mops/s and fairness",
    ),
    (
        "filelock",
        "exclusive lock + unlock of a free lock file, and try_lock failing on a held one, ns/op",
    ),
];

const FAMILY: &str = "ext";

/// Worker threads of the tokio runtime the async cases run on (as in family `sync`).
const WORKERS: usize = 2;
/// Workers (threads, tasks, goroutines) of the contended semaphore case.
const SEM_WORKERS: [usize; 2] = [4, 8];
/// Permits of the contended semaphore.
const PERMITS: usize = 2;
/// Callers per round of the singleflight case.
const CALLERS: usize = 4;
/// The one key of the singleflight case.
const KEY: &str = "key";
/// `go` calls per errgroup round.
const GOS: usize = 4;

/// Runs the selected `ext` cases.
pub fn run(cfg: &Config) -> Vec<Table> {
    let go_cases = [
        "semaphore_uncontended",
        "semaphore_contended",
        "singleflight_hit",
        "errgroup",
    ];
    let (go, go_note) = if go_cases.iter().any(|c| cfg.wants(c)) {
        match GoProgram::build(cfg, FAMILY) {
            Ok(g) => (Some(g), None),
            Err(note) => (None, Some(note)),
        }
    } else {
        (None, None)
    };
    let go = go.as_ref();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .build()
        .expect("cannot start a tokio runtime");

    let mut tables = Vec::new();
    if cfg.wants("semaphore_uncontended") {
        tables.push(semaphore_uncontended(cfg, &rt, go));
    }
    if cfg.wants("semaphore_contended") {
        tables.push(semaphore_contended(cfg, &rt, go));
    }
    if cfg.wants("singleflight_hit") {
        tables.push(singleflight_hit(cfg, &rt, go));
    }
    if cfg.wants("errgroup") {
        tables.push(errgroup(cfg, &rt, go));
    }
    if cfg.wants("reentrant") {
        tables.push(locks::reentrant(cfg));
    }
    if cfg.wants("spin_uncontended") {
        tables.push(locks::spin_uncontended(cfg));
    }
    if cfg.wants("spin_contended") {
        tables.push(locks::spin_contended(cfg));
    }
    if cfg.wants("filelock") {
        tables.push(locks::filelock(cfg));
    }
    if let Some(note) = go_note {
        for t in tables.iter_mut().filter(|t| go_cases.contains(&t.key)) {
            t.note(note.clone());
        }
    }
    tables
}

fn go_row<'a>(
    go: Option<&'a GoProgram>,
    cfg: &Config,
    name: &str,
    args: &[&str],
) -> Option<Contender<'a>> {
    go.map(|g| g.contender(name, args, cfg))
}

// ---------------------------------------------------------------------------------------
// Semaphores, behind small traits so that one generic loop measures them all. `cycle` is
// the operation: acquire one permit, add 1 to the caller's counter, release the permit.

/// A semaphore used from threads.
trait Sem: Sync {
    fn with_permits(n: usize) -> Self;
    fn cycle(&self, count: &mut u64);
}

/// A semaphore used from async tasks.
trait AsyncSem: Send + Sync + 'static {
    fn with_permits(n: usize) -> Self;
    fn cycle(&self, count: &mut u64) -> impl Future<Output = ()> + Send;
}

/// gosync's semaphore with the context every call takes, made once (a background context,
/// which is never done), as a Go caller would hold `ctx` outside its loop.
struct Weighted {
    sem: gosync::semaphore::Weighted,
    ctx: gosync::context::Context,
}

impl Sem for Weighted {
    fn with_permits(n: usize) -> Self {
        Weighted {
            sem: gosync::semaphore::Weighted::new(n),
            ctx: gosync::context::background(),
        }
    }
    #[inline]
    fn cycle(&self, count: &mut u64) {
        self.sem
            .acquire(&self.ctx, 1)
            .expect("background context is never done");
        *count = black_box(*count + 1);
        self.sem.release(1);
    }
}

impl AsyncSem for Weighted {
    fn with_permits(n: usize) -> Self {
        <Weighted as Sem>::with_permits(n)
    }
    async fn cycle(&self, count: &mut u64) {
        self.sem
            .acquire_async(&self.ctx, 1)
            .await
            .expect("background context is never done");
        *count = black_box(*count + 1);
        self.sem.release(1);
    }
}

impl Sem for async_lock::Semaphore {
    fn with_permits(n: usize) -> Self {
        async_lock::Semaphore::new(n)
    }
    #[inline]
    fn cycle(&self, count: &mut u64) {
        let _permit = self.acquire_blocking();
        *count = black_box(*count + 1);
    }
}

impl AsyncSem for async_lock::Semaphore {
    fn with_permits(n: usize) -> Self {
        async_lock::Semaphore::new(n)
    }
    async fn cycle(&self, count: &mut u64) {
        let _permit = self.acquire().await;
        *count = black_box(*count + 1);
    }
}

impl AsyncSem for tokio::sync::Semaphore {
    fn with_permits(n: usize) -> Self {
        tokio::sync::Semaphore::new(n)
    }
    async fn cycle(&self, count: &mut u64) {
        let _permit = self.acquire().await.expect("semaphore is never closed");
        *count = black_box(*count + 1);
    }
}

fn sem_uncontended<S: Sem>(cfg: &Config) -> Option<Sample> {
    let sem = S::with_permits(1);
    let mut count = 0u64;
    let s = ns_per_op(cfg.op_duration, |n| {
        for _ in 0..n {
            black_box(&sem).cycle(&mut count);
        }
    });
    black_box(count);
    Some(s)
}

fn sem_uncontended_async<S: AsyncSem>(cfg: &Config, rt: &Runtime) -> Option<Sample> {
    let sem = Arc::new(S::with_permits(1));
    Some(ns_per_op_async(rt, cfg.op_duration, move |n| {
        let sem = sem.clone();
        async move {
            let mut count = 0u64;
            for _ in 0..n {
                black_box(&*sem).cycle(&mut count).await;
            }
            black_box(count);
        }
    }))
}

fn sem_contended<S: Sem>(cfg: &Config, threads: usize) -> Option<Sample> {
    let sem = S::with_permits(PERMITS);
    Some(threads_contended(threads, cfg.duration, |_, stop| {
        let mut count = 0u64;
        while !stop.load(Ordering::Relaxed) {
            sem.cycle(&mut count);
        }
        count
    }))
}

fn sem_contended_async<S: AsyncSem>(cfg: &Config, rt: &Runtime, tasks: usize) -> Option<Sample> {
    let sem = Arc::new(S::with_permits(PERMITS));
    Some(tasks_contended(rt, tasks, cfg.duration, |_, stop| {
        let sem = sem.clone();
        async move {
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sem.cycle(&mut count).await;
            }
            count
        }
    }))
}

fn semaphore_uncontended(cfg: &Config, rt: &Runtime, go: Option<&GoProgram>) -> Table {
    let mut t = Table::new(
        FAMILY,
        "semaphore_uncontended",
        "Semaphore, uncontended: acquire(1), release(1) in a loop",
        "ns/op",
        Better::Lower,
        &["thread", "async task"],
    );
    let label = "semaphore uncontended";
    let mut rows = vec![
        Contender::subject("gosync::semaphore::Weighted", || {
            sem_uncontended::<Weighted>(cfg)
        }),
        Contender::anchor("async_lock::Semaphore", || {
            sem_uncontended::<async_lock::Semaphore>(cfg)
        }),
    ];
    rows.extend(go_row(
        go,
        cfg,
        "go semaphore.Weighted",
        &["-case=semaphore_uncontended"],
    ));
    t.measure(cfg, 0, label, rows);

    let rows = vec![
        Contender::subject("gosync::semaphore::Weighted", || {
            sem_uncontended_async::<Weighted>(cfg, rt)
        }),
        Contender::anchor("async_lock::Semaphore", || {
            sem_uncontended_async::<async_lock::Semaphore>(cfg, rt)
        }),
        Contender::anchor("tokio::sync::Semaphore", || {
            sem_uncontended_async::<tokio::sync::Semaphore>(cfg, rt)
        }),
    ];
    t.measure(cfg, 1, label, rows);
    t.note("gosync: acquire(&ctx, 1) / acquire_async(&ctx, 1).await with a background context made once, then release(1); async-lock: acquire_blocking() / acquire().await and drop the guard; tokio: acquire().await and drop the permit (it has no blocking acquire); go: Acquire(ctx, 1), Release(1)");
    t.note(format!(
        "async task: one task on a {WORKERS}-worker tokio runtime"
    ));
    t
}

fn semaphore_contended(cfg: &Config, rt: &Runtime, go: Option<&GoProgram>) -> Table {
    let columns: Vec<String> = SEM_WORKERS
        .iter()
        .map(|n| format!("{n} threads"))
        .chain(SEM_WORKERS.iter().map(|n| format!("{n} tasks")))
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut t = Table::new(
        FAMILY,
        "semaphore_contended",
        format!(
            "Semaphore of {PERMITS} permits, N threads (or tasks) each looping acquire(1), own counter += 1, release(1) for {} ms",
            cfg.duration.as_millis()
        ),
        "Mops/s",
        Better::Higher,
        &columns,
    );
    let label = "semaphore contended";
    for (col, &n) in SEM_WORKERS.iter().enumerate() {
        let threads = format!("-threads={n}");
        let permits = format!("-permits={PERMITS}");
        let mut rows = vec![
            Contender::subject("gosync::semaphore::Weighted", move || {
                sem_contended::<Weighted>(cfg, n)
            }),
            Contender::anchor("async_lock::Semaphore", move || {
                sem_contended::<async_lock::Semaphore>(cfg, n)
            }),
        ];
        rows.extend(go_row(
            go,
            cfg,
            "go semaphore.Weighted",
            &["-case=semaphore_contended", &threads, &permits],
        ));
        t.measure(cfg, col, label, rows);
    }
    for (i, &n) in SEM_WORKERS.iter().enumerate() {
        let rows = vec![
            Contender::subject("gosync::semaphore::Weighted", move || {
                sem_contended_async::<Weighted>(cfg, rt, n)
            }),
            Contender::anchor("async_lock::Semaphore", move || {
                sem_contended_async::<async_lock::Semaphore>(cfg, rt, n)
            }),
            Contender::anchor("tokio::sync::Semaphore", move || {
                sem_contended_async::<tokio::sync::Semaphore>(cfg, rt, n)
            }),
        ];
        t.measure(cfg, SEM_WORKERS.len() + i, label, rows);
    }
    t.note("threads: gosync acquire(&ctx, 1), async-lock acquire_blocking(); tasks: acquire_async(&ctx, 1).await (gosync) or acquire().await");
    t.note(format!(
        "tasks run on a {WORKERS}-worker tokio runtime; go: N goroutines, GOMAXPROCS = number of CPUs, under the thread columns"
    ));
    t
}

// ---------------------------------------------------------------------------------------
// Singleflight. A group is asked for one key; the function (or future) a caller passes
// returns that caller's id, so a caller that gets another id back joined someone's flight.

/// A singleflight group used from threads.
trait Flight: Sync {
    fn create() -> Self;
    fn call(&self, f: impl Fn() -> usize) -> usize;
}

/// A singleflight group used from async tasks.
trait AsyncFlight: Send + Sync + 'static {
    fn create() -> Self;
    fn call<F>(&self, fut: F) -> impl Future<Output = usize> + Send
    where
        F: Future<Output = usize> + Send + 'static;
}

impl Flight for gosync::singleflight::Group<&'static str, usize> {
    fn create() -> Self {
        gosync::singleflight::Group::new()
    }
    #[inline]
    fn call(&self, f: impl Fn() -> usize) -> usize {
        gosync::singleflight::Group::call(self, KEY, f).0
    }
}

impl AsyncFlight for gosync::singleflight::Group<&'static str, usize> {
    fn create() -> Self {
        gosync::singleflight::Group::new()
    }
    async fn call<F>(&self, fut: F) -> usize
    where
        F: Future<Output = usize> + Send + 'static,
    {
        self.call_async(KEY, fut).await.0
    }
}

impl Flight for singleflight::Group<usize> {
    fn create() -> Self {
        singleflight::Group::new()
    }
    #[inline]
    fn call(&self, f: impl Fn() -> usize) -> usize {
        self.work(KEY, f)
    }
}

impl AsyncFlight for async_singleflight::UnaryGroup<String, usize> {
    fn create() -> Self {
        async_singleflight::UnaryGroup::new()
    }
    async fn call<F>(&self, fut: F) -> usize
    where
        F: Future<Output = usize> + Send + 'static,
    {
        self.work(KEY, fut).await
    }
}

/// The counters the callers of one singleflight measurement share.
///
/// Callers go in lockstep rounds 1, 2, ...: in round `r` of `n` callers, a caller counts
/// itself in (`entered`) and calls; whoever reaches the group first leads, and its function
/// waits until `entered` is `n * r` (all callers of the round are in) before it returns, so the
/// others find the flight in progress and join it. Then each counts itself out (`returned`)
/// and waits until `returned` is `n * r`, so that nobody can join (or start) a flight of
/// another round. A caller that counted itself in but reached the group after the flight had
/// ended leads a flight of its own that returns at once: a miss, which shows in the share of
/// hits. Waiting yields (the thread or the task), as Go's side yields with `runtime.Gosched`,
/// because there may be more callers than CPUs. Every wait also ends when the measurement's
/// stop flag is set, so the last round cannot hang.
#[derive(Default)]
struct FlightState {
    /// Callers that have started their call, over all rounds so far.
    entered: AtomicUsize,
    /// Callers that have finished their call, over all rounds so far.
    returned: AtomicUsize,
    /// Calls made, summed when the callers stop.
    calls: AtomicU64,
    /// Calls that joined another caller's flight, summed when the callers stop.
    hits: AtomicU64,
}

/// `n` threads calling `G` in lockstep rounds; the count of each thread is its joining calls.
fn flight_threads<G: Flight>(cfg: &Config, n: usize, tally: &Tally, row: &str) -> Option<Sample> {
    let group = G::create();
    let state = FlightState::default();
    let sample = threads_contended(n, cfg.duration, |id, stop| {
        let (mut calls, mut hits) = (0u64, 0u64);
        let mut round = 1;
        while !stop.load(Ordering::Relaxed) {
            let target = n * round;
            state.entered.fetch_add(1, Ordering::SeqCst);
            let got = group.call(|| {
                while state.entered.load(Ordering::SeqCst) < target && !stop.load(Ordering::Relaxed)
                {
                    std::thread::yield_now();
                }
                id
            });
            calls += 1;
            hits += u64::from(got != id);
            state.returned.fetch_add(1, Ordering::SeqCst);
            while state.returned.load(Ordering::SeqCst) < target && !stop.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            round += 1;
        }
        state.calls.fetch_add(calls, Ordering::Relaxed);
        state.hits.fetch_add(hits, Ordering::Relaxed);
        hits
    });
    tally.add(row, 0, &state);
    Some(sample)
}

/// As [`flight_threads`] with `n` tasks on `rt`.
fn flight_tasks<G: AsyncFlight>(
    cfg: &Config,
    rt: &Runtime,
    n: usize,
    tally: &Tally,
    row: &str,
) -> Option<Sample> {
    let group = Arc::new(G::create());
    let state = Arc::new(FlightState::default());
    let sample = tasks_contended(rt, n, cfg.duration, |id, stop| {
        let (group, state) = (group.clone(), state.clone());
        async move {
            let (mut calls, mut hits) = (0u64, 0u64);
            let mut round = 1;
            while !stop.load(Ordering::Relaxed) {
                let target = n * round;
                state.entered.fetch_add(1, Ordering::SeqCst);
                let leader = {
                    let (state, stop) = (state.clone(), stop.clone());
                    async move {
                        while state.entered.load(Ordering::SeqCst) < target
                            && !stop.load(Ordering::Relaxed)
                        {
                            tokio::task::yield_now().await;
                        }
                        id
                    }
                };
                let got = group.call(leader).await;
                calls += 1;
                hits += u64::from(got != id);
                state.returned.fetch_add(1, Ordering::SeqCst);
                while state.returned.load(Ordering::SeqCst) < target
                    && !stop.load(Ordering::Relaxed)
                {
                    tokio::task::yield_now().await;
                }
                round += 1;
            }
            state.calls.fetch_add(calls, Ordering::Relaxed);
            state.hits.fetch_add(hits, Ordering::Relaxed);
            hits
        }
    });
    tally.add(row, 1, &state);
    Some(sample)
}

/// Calls and hits per (row, column) over all rounds, for the note under the table.
#[derive(Default)]
struct Tally(RefCell<Vec<(String, usize, u64, u64)>>);

impl Tally {
    fn add(&self, row: &str, column: usize, state: &FlightState) {
        self.record(
            row,
            column,
            state.calls.load(Ordering::Relaxed),
            state.hits.load(Ordering::Relaxed),
        );
    }

    fn record(&self, row: &str, column: usize, calls: u64, hits: u64) {
        let mut v = self.0.borrow_mut();
        match v.iter_mut().find(|(r, c, ..)| r == row && *c == column) {
            Some(e) => {
                e.2 += calls;
                e.3 += hits;
            }
            None => v.push((row.to_string(), column, calls, hits)),
        }
    }

    /// "row 75.0%, row 74.9%" for `column`.
    fn shares(&self, column: usize) -> String {
        self.0
            .borrow()
            .iter()
            .filter(|(_, c, ..)| *c == column)
            .map(|(r, _, calls, hits)| {
                if *calls == 0 {
                    format!("{r} -")
                } else {
                    format!("{r} {:.1}%", 100.0 * *hits as f64 / *calls as f64)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Go's singleflight row: as [`GoProgram::contender`], and it also tallies the calls and
/// hits Go reports (`calls=`; `ops=` counts the hits).
fn go_flight_row<'a>(
    go: Option<&'a GoProgram>,
    cfg: &Config,
    tally: &'a Tally,
    name: &'static str,
) -> Option<Contender<'a>> {
    let go = go?;
    let args = vec![
        "-case=singleflight_hit".to_string(),
        format!("-threads={CALLERS}"),
        format!("-dur={}", go_duration(cfg.duration)),
        format!("-opdur={}", go_duration(cfg.op_duration)),
    ];
    Some(Contender::anchor(name, move || match go.run(&args) {
        Ok(records) => {
            let r = records.first()?;
            if let (Some(calls), Some(hits)) = (r.f64("calls"), r.f64("ops")) {
                tally.record(name, 0, calls as u64, hits as u64);
            }
            Record::sample(r)
        }
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    }))
}

fn singleflight_hit(cfg: &Config, rt: &Runtime, go: Option<&GoProgram>) -> Table {
    let mut t = Table::new(
        FAMILY,
        "singleflight_hit",
        format!(
            "Singleflight, hit path: {CALLERS} threads (or tasks) call one key in lockstep rounds for {} ms; each round's first caller leads and its function returns once all {CALLERS} have called, so the other {} join its flight; value = rate of the calls that joined",
            cfg.duration.as_millis(),
            CALLERS - 1
        ),
        "Mops/s",
        Better::Higher,
        &[&format!("{CALLERS} threads"), &format!("{CALLERS} tasks")],
    );
    let label = "singleflight hit";
    let tally = Tally::default();
    let tally = &tally;

    let mut rows = vec![
        Contender::subject("gosync::singleflight::Group", move || {
            flight_threads::<gosync::singleflight::Group<&'static str, usize>>(
                cfg,
                CALLERS,
                tally,
                "gosync::singleflight::Group",
            )
        }),
        Contender::anchor("singleflight::Group", move || {
            flight_threads::<singleflight::Group<usize>>(cfg, CALLERS, tally, "singleflight::Group")
        }),
    ];
    rows.extend(go_flight_row(go, cfg, tally, "go singleflight.Group"));
    t.measure(cfg, 0, label, rows);

    let rows = vec![
        Contender::subject("gosync::singleflight::Group", move || {
            flight_tasks::<gosync::singleflight::Group<&'static str, usize>>(
                cfg,
                rt,
                CALLERS,
                tally,
                "gosync::singleflight::Group",
            )
        }),
        Contender::anchor("async_singleflight::UnaryGroup", move || {
            flight_tasks::<async_singleflight::UnaryGroup<String, usize>>(
                cfg,
                rt,
                CALLERS,
                tally,
                "async_singleflight::UnaryGroup",
            )
        }),
    ];
    t.measure(cfg, 1, label, rows);

    t.note(format!(
        "share of calls that joined a flight (ideal {:.1}%): threads: {}; tasks: {}",
        100.0 * (CALLERS - 1) as f64 / CALLERS as f64,
        tally.shares(0),
        tally.shares(1)
    ));
    t.note("gosync: call(key, f) / call_async(key, fut).await; singleflight (crate): work(key, f), which runs f while holding its map lock, so callers that come meanwhile wait for the lock instead of joining and mostly find the flight gone; async_singleflight: work(key, fut).await; go: Do(key, f)");
    t.note(format!(
        "every call includes the round's lockstep (two shared counters, waiting with yield); tasks run on a {WORKERS}-worker tokio runtime; go: goroutines, GOMAXPROCS = number of CPUs"
    ));
    t
}

// ---------------------------------------------------------------------------------------
// Errgroup.

/// The function of the task rows: returns at once.
async fn no_op() -> Result<(), ()> {
    Ok(())
}

fn errgroup(cfg: &Config, rt: &Runtime, go: Option<&GoProgram>) -> Table {
    let mut t = Table::new(
        FAMILY,
        "errgroup",
        format!("Errgroup: a new group, {GOS} go() of a function that returns Ok at once, wait(); time per round"),
        "ns/round",
        Better::Lower,
        &["threads", "async tasks"],
    );
    let label = "errgroup";
    let gos = format!("-threads={GOS}");
    let mut rows = vec![
        Contender::subject("gosync::errgroup::Group", || {
            Some(ns_per_op(cfg.op_duration, |n| {
                for _ in 0..n {
                    let g = gosync::errgroup::Group::<()>::new();
                    for _ in 0..GOS {
                        g.go(|| Ok(()));
                    }
                    black_box(g.wait()).expect("no function fails");
                }
            }))
        }),
        Contender::anchor("std::thread::scope", || {
            Some(ns_per_op(cfg.op_duration, |n| {
                for _ in 0..n {
                    std::thread::scope(|s| {
                        for _ in 0..GOS {
                            s.spawn(|| black_box(Ok::<(), ()>(())));
                        }
                    });
                }
            }))
        }),
    ];
    rows.extend(go_row(
        go,
        cfg,
        "go errgroup.Group",
        &["-case=errgroup", &gos],
    ));
    t.measure(cfg, 0, label, rows);

    let rows = vec![
        Contender::subject("gosync::errgroup::TaskGroup", || {
            Some(ns_per_op_async(rt, cfg.op_duration, |n| async move {
                for _ in 0..n {
                    let g = gosync::errgroup::TaskGroup::<()>::new();
                    for _ in 0..GOS {
                        g.go(no_op()).await;
                    }
                    black_box(g.wait_async().await).expect("no future fails");
                }
            }))
        }),
        Contender::anchor("futures::FuturesUnordered", || {
            Some(ns_per_op_async(rt, cfg.op_duration, |n| async move {
                for _ in 0..n {
                    let mut set = FuturesUnordered::<BoxFuture<'_, Result<(), ()>>>::new();
                    for _ in 0..GOS {
                        set.push(Box::pin(no_op()));
                    }
                    while let Some(r) = set.next().await {
                        black_box(r).expect("no future fails");
                    }
                }
            }))
        }),
        Contender::anchor("tokio::task::JoinSet", || {
            Some(ns_per_op_async(rt, cfg.op_duration, |n| async move {
                for _ in 0..n {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..GOS {
                        set.spawn(no_op());
                    }
                    for r in black_box(set.join_all().await) {
                        r.expect("no task fails");
                    }
                }
            }))
        }),
    ];
    t.measure(cfg, 1, label, rows);
    t.note("threads: gosync's Group hands each function to a pooled thread (spawned once, reused), std::thread::scope starts an OS thread per function and joins them; go: goroutines (GOMAXPROCS = number of CPUs), shown under threads");
    t.note("async tasks: gosync's TaskGroup go(fut).await + wait_async().await polls its futures inside the awaiting task (no spawn), as FuturesUnordered does (here of boxed futures, so that it can hold different futures as a group can: push + drain); tokio::task::JoinSet spawns each future as a task, join_all().await collects them");
    t.note(format!(
        "async tasks: in one task on a {WORKERS}-worker tokio runtime"
    ));
    t
}
