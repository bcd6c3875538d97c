//! Family `sync`: Mutex, RwMutex, WaitGroup and Once against std, parking_lot, async-lock,
//! tokio::sync, crossbeam-utils and Go's `sync` (`bench/go/sync/main.go`, which measures the
//! same cases the same way).
//!
//! Every critical section is the same tiny one: add 1 to (or, for readers, read) a `u64`
//! behind the lock. Contended cases run N threads (Go: N goroutines, GOMAXPROCS = CPUs) that
//! loop until a stop flag is set after a fixed duration; async cases run N tasks on a tokio
//! multi-thread runtime with 2 worker threads.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::go::GoProgram;
use crate::measure::{ns_per_op, ns_per_op_async, tasks_contended, threads_contended, Contender};
use crate::stats::{Better, Sample};
use crate::{Config, Table};

/// One line for `--list`.
pub const ABOUT: &str = "Mutex, RwMutex, WaitGroup, Once (threads and async tasks)";

/// Case keys and what they measure, for `--list` and `--case`.
pub const CASES: &[(&str, &str)] = &[
    (
        "mutex_uncontended",
        "lock + increment + unlock on one thread / one task, ns/op",
    ),
    (
        "mutex_contended",
        "1, 2, 4, 8 threads looping lock + increment + unlock, Mops/s and fairness",
    ),
    (
        "mutex_async",
        "4 and 8 tasks looping lock_async + increment + unlock, Mops/s and fairness",
    ),
    (
        "rwmutex",
        "4 threads (and 4 tasks) mixing reads and writes 90/10 and 99/1, Mops/s",
    ),
    (
        "waitgroup",
        "add(1) + done() + wait() on one thread / one task, ns/op",
    ),
    ("once", "call_once on a done Once (the fast path), ns/op"),
];

const FAMILY: &str = "sync";

/// Thread counts of the contended mutex case.
const THREADS: [usize; 4] = [1, 2, 4, 8];
/// Task counts of the async contended mutex case.
const TASKS: [usize; 2] = [4, 8];
/// Threads (and tasks) of the read-write case.
const RW_THREADS: usize = 4;
/// Worker threads of the tokio runtime the async cases run on.
const WORKERS: usize = 2;

/// Runs the selected `sync` cases.
pub fn run(cfg: &Config) -> Vec<Table> {
    let go_cases = [
        "mutex_uncontended",
        "mutex_contended",
        "rwmutex",
        "waitgroup",
        "once",
    ];
    let (go, go_note) = if go_cases.iter().any(|c| cfg.wants(c)) {
        match GoProgram::build(cfg, "sync") {
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
    if cfg.wants("mutex_uncontended") {
        tables.push(mutex_uncontended(cfg, &rt, go));
    }
    if cfg.wants("mutex_contended") {
        tables.push(mutex_contended(cfg, go));
    }
    if cfg.wants("mutex_async") {
        tables.push(mutex_async(cfg, &rt));
    }
    if cfg.wants("rwmutex") {
        tables.push(rwmutex(cfg, &rt, go));
    }
    if cfg.wants("waitgroup") {
        tables.push(waitgroup(cfg, &rt, go));
    }
    if cfg.wants("once") {
        tables.push(once(cfg, go));
    }
    if let Some(note) = go_note {
        for t in tables.iter_mut().filter(|t| go_cases.contains(&t.key)) {
            t.note(note.clone());
        }
    }
    tables
}

// ---------------------------------------------------------------------------------------
// The locks under test, behind small traits so that one generic loop measures them all.

/// A mutex around a `u64` counter, used from threads.
trait Lock: Default + Sync {
    fn inc(&self);
}

impl Lock for gosync::sync::Mutex<u64> {
    #[inline]
    fn inc(&self) {
        *self.lock() += 1;
    }
}

impl Lock for std::sync::Mutex<u64> {
    #[inline]
    fn inc(&self) {
        *self.lock().unwrap() += 1;
    }
}

impl Lock for parking_lot::Mutex<u64> {
    #[inline]
    fn inc(&self) {
        *self.lock() += 1;
    }
}

impl Lock for parking_lot::FairMutex<u64> {
    #[inline]
    fn inc(&self) {
        *self.lock() += 1;
    }
}

/// A mutex around a `u64` counter, used from async tasks.
trait AsyncLock: Default + Send + Sync + 'static {
    fn inc(&self) -> impl Future<Output = ()> + Send + '_;
}

impl AsyncLock for gosync::sync::Mutex<u64> {
    async fn inc(&self) {
        *self.lock_async().await += 1
    }
}

impl AsyncLock for async_lock::Mutex<u64> {
    async fn inc(&self) {
        *self.lock().await += 1
    }
}

impl AsyncLock for tokio::sync::Mutex<u64> {
    async fn inc(&self) {
        *self.lock().await += 1
    }
}

/// A read-write lock around a `u64` counter, used from threads.
trait RwLock: Default + Sync {
    fn read(&self) -> u64;
    fn write(&self);
}

impl RwLock for gosync::sync::RwMutex<u64> {
    #[inline]
    fn read(&self) -> u64 {
        *self.read()
    }
    #[inline]
    fn write(&self) {
        *self.write() += 1;
    }
}

impl RwLock for std::sync::RwLock<u64> {
    #[inline]
    fn read(&self) -> u64 {
        *self.read().unwrap()
    }
    #[inline]
    fn write(&self) {
        *self.write().unwrap() += 1;
    }
}

impl RwLock for parking_lot::RwLock<u64> {
    #[inline]
    fn read(&self) -> u64 {
        *self.read()
    }
    #[inline]
    fn write(&self) {
        *self.write() += 1;
    }
}

/// A read-write lock around a `u64` counter, used from async tasks.
trait AsyncRwLock: Default + Send + Sync + 'static {
    fn read(&self) -> impl Future<Output = u64> + Send + '_;
    fn write(&self) -> impl Future<Output = ()> + Send + '_;
}

impl AsyncRwLock for gosync::sync::RwMutex<u64> {
    async fn read(&self) -> u64 {
        *self.read_async().await
    }
    async fn write(&self) {
        *self.write_async().await += 1
    }
}

impl AsyncRwLock for async_lock::RwLock<u64> {
    async fn read(&self) -> u64 {
        *self.read().await
    }
    async fn write(&self) {
        *self.write().await += 1
    }
}

impl AsyncRwLock for tokio::sync::RwLock<u64> {
    async fn read(&self) -> u64 {
        *self.read().await
    }
    async fn write(&self) {
        *self.write().await += 1
    }
}

// ---------------------------------------------------------------------------------------
// Generic measurements.

fn uncontended<L: Lock>(cfg: &Config) -> Option<Sample> {
    let lock = L::default();
    Some(ns_per_op(cfg.op_duration, |n| {
        for _ in 0..n {
            black_box(&lock).inc();
        }
    }))
}

fn contended<L: Lock>(cfg: &Config, threads: usize) -> Option<Sample> {
    let lock = L::default();
    Some(threads_contended(threads, cfg.duration, |_, stop| {
        let mut ops = 0u64;
        while !stop.load(Ordering::Relaxed) {
            lock.inc();
            ops += 1;
        }
        ops
    }))
}

fn uncontended_async<L: AsyncLock>(cfg: &Config, rt: &Runtime) -> Option<Sample> {
    let lock = Arc::new(L::default());
    Some(ns_per_op_async(rt, cfg.op_duration, move |n| {
        let lock = lock.clone();
        async move {
            for _ in 0..n {
                black_box(&*lock).inc().await;
            }
        }
    }))
}

fn contended_async<L: AsyncLock>(cfg: &Config, rt: &Runtime, tasks: usize) -> Option<Sample> {
    let lock = Arc::new(L::default());
    Some(tasks_contended(rt, tasks, cfg.duration, |_, stop| {
        let lock = lock.clone();
        async move {
            let mut ops = 0u64;
            while !stop.load(Ordering::Relaxed) {
                lock.inc().await;
                ops += 1;
            }
            ops
        }
    }))
}

/// One write every `period` operations: a countdown rather than a division per operation
/// (Go's side does the same).
fn write_period(reads_pct: u32) -> u64 {
    100 / u64::from(100 - reads_pct.min(99))
}

fn rw_loop<L: RwLock>(lock: &L, stop: &AtomicBool, period: u64) -> u64 {
    let (mut ops, mut sum, mut left) = (0u64, 0u64, period);
    while !stop.load(Ordering::Relaxed) {
        left -= 1;
        if left == 0 {
            left = period;
            lock.write();
        } else {
            sum = sum.wrapping_add(lock.read());
        }
        ops += 1;
    }
    black_box(sum);
    ops
}

fn rw<L: RwLock>(cfg: &Config, threads: usize, reads_pct: u32) -> Option<Sample> {
    let lock = L::default();
    let period = write_period(reads_pct);
    Some(threads_contended(threads, cfg.duration, |_, stop| {
        rw_loop(&lock, stop, period)
    }))
}

fn rw_async<L: AsyncRwLock>(
    cfg: &Config,
    rt: &Runtime,
    tasks: usize,
    reads_pct: u32,
) -> Option<Sample> {
    let lock = Arc::new(L::default());
    let period = write_period(reads_pct);
    Some(tasks_contended(rt, tasks, cfg.duration, |_, stop| {
        let lock = lock.clone();
        async move {
            let (mut ops, mut sum, mut left) = (0u64, 0u64, period);
            while !stop.load(Ordering::Relaxed) {
                left -= 1;
                if left == 0 {
                    left = period;
                    lock.write().await;
                } else {
                    sum = sum.wrapping_add(lock.read().await);
                }
                ops += 1;
            }
            black_box(sum);
            ops
        }
    }))
}

// ---------------------------------------------------------------------------------------
// The cases.

fn go_row<'a>(
    go: Option<&'a GoProgram>,
    cfg: &Config,
    name: &str,
    args: &[&str],
) -> Option<Contender<'a>> {
    go.map(|g| g.contender(name, args, cfg))
}

fn mutex_uncontended(cfg: &Config, rt: &Runtime, go: Option<&GoProgram>) -> Table {
    let mut t = Table::new(
        FAMILY,
        "mutex_uncontended",
        "Mutex, uncontended: lock, counter += 1, unlock in a loop",
        "ns/op",
        Better::Lower,
        &["thread", "async task"],
    );
    let label = "mutex uncontended";
    let mut rows = vec![
        Contender::subject("gosync::Mutex", || {
            uncontended::<gosync::sync::Mutex<u64>>(cfg)
        }),
        Contender::anchor("std::sync::Mutex", || {
            uncontended::<std::sync::Mutex<u64>>(cfg)
        }),
        Contender::anchor("parking_lot::Mutex", || {
            uncontended::<parking_lot::Mutex<u64>>(cfg)
        }),
        Contender::anchor("parking_lot::FairMutex", || {
            uncontended::<parking_lot::FairMutex<u64>>(cfg)
        }),
    ];
    rows.extend(go_row(
        go,
        cfg,
        "go sync.Mutex",
        &["-case=mutex_uncontended"],
    ));
    t.measure(cfg, 0, label, rows);

    let rows = vec![
        Contender::subject("gosync::Mutex", || {
            uncontended_async::<gosync::sync::Mutex<u64>>(cfg, rt)
        }),
        Contender::anchor("async_lock::Mutex", || {
            uncontended_async::<async_lock::Mutex<u64>>(cfg, rt)
        }),
        Contender::anchor("tokio::sync::Mutex", || {
            uncontended_async::<tokio::sync::Mutex<u64>>(cfg, rt)
        }),
    ];
    t.measure(cfg, 1, label, rows);
    t.note("async task: `lock_async().await` (gosync) or `lock().await` in one task on a 2-worker tokio runtime");
    t
}

fn mutex_contended(cfg: &Config, go: Option<&GoProgram>) -> Table {
    let columns: Vec<String> = THREADS
        .iter()
        .map(|&n| format!("{n} thread{}", if n == 1 { "" } else { "s" }))
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut t = Table::new(
        FAMILY,
        "mutex_contended",
        format!(
            "Mutex, N threads each looping lock, counter += 1, unlock for {} ms",
            cfg.duration.as_millis()
        ),
        "Mops/s",
        Better::Higher,
        &columns,
    );
    for (col, &n) in THREADS.iter().enumerate() {
        let threads = format!("-threads={n}");
        let mut rows = vec![
            Contender::subject("gosync::Mutex", move || {
                contended::<gosync::sync::Mutex<u64>>(cfg, n)
            }),
            Contender::anchor("std::sync::Mutex", move || {
                contended::<std::sync::Mutex<u64>>(cfg, n)
            }),
            Contender::anchor("parking_lot::Mutex", move || {
                contended::<parking_lot::Mutex<u64>>(cfg, n)
            }),
            Contender::anchor("parking_lot::FairMutex", move || {
                contended::<parking_lot::FairMutex<u64>>(cfg, n)
            }),
        ];
        rows.extend(go_row(
            go,
            cfg,
            "go sync.Mutex",
            &["-case=mutex_contended", &threads],
        ));
        t.measure(cfg, col, "mutex contended", rows);
    }
    t.note("go: N goroutines, GOMAXPROCS = number of CPUs");
    t
}

fn mutex_async(cfg: &Config, rt: &Runtime) -> Table {
    let columns: Vec<String> = TASKS.iter().map(|n| format!("{n} tasks")).collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut t = Table::new(
        FAMILY,
        "mutex_async",
        format!(
            "Mutex, N async tasks on a {WORKERS}-worker tokio runtime each looping lock (gosync: lock_async).await, counter += 1, unlock for {} ms",
            cfg.duration.as_millis()
        ),
        "Mops/s",
        Better::Higher,
        &columns,
    );
    for (col, &n) in TASKS.iter().enumerate() {
        let rows = vec![
            Contender::subject("gosync::Mutex", move || {
                contended_async::<gosync::sync::Mutex<u64>>(cfg, rt, n)
            }),
            Contender::anchor("async_lock::Mutex", move || {
                contended_async::<async_lock::Mutex<u64>>(cfg, rt, n)
            }),
            Contender::anchor("tokio::sync::Mutex", move || {
                contended_async::<tokio::sync::Mutex<u64>>(cfg, rt, n)
            }),
        ];
        t.measure(cfg, col, "mutex async", rows);
    }
    t.note("fairness is per task: a task that finds the lock free never yields to the executor, so shares depend on the executor's scheduling as much as on the lock");
    t
}

fn rwmutex(cfg: &Config, rt: &Runtime, go: Option<&GoProgram>) -> Table {
    let mut t = Table::new(
        FAMILY,
        "rwmutex",
        format!(
            "RwMutex, {RW_THREADS} threads (or tasks) each looping a read (read the counter) or a write (counter += 1) for {} ms",
            cfg.duration.as_millis()
        ),
        "Mops/s",
        Better::Higher,
        &["90% reads", "99% reads", "90% reads, 4 tasks"],
    );
    for (col, reads) in [(0usize, 90u32), (1, 99)] {
        let go_reads = format!("-reads={reads}");
        let go_threads = format!("-threads={RW_THREADS}");
        let mut rows = gosync_rwmutex_rows(cfg, rt, reads, false);
        rows.push(Contender::anchor("std::sync::RwLock", move || {
            rw::<std::sync::RwLock<u64>>(cfg, RW_THREADS, reads)
        }));
        rows.push(Contender::anchor("parking_lot::RwLock", move || {
            rw::<parking_lot::RwLock<u64>>(cfg, RW_THREADS, reads)
        }));
        rows.extend(go_row(
            go,
            cfg,
            "go sync.RWMutex",
            &["-case=rwmutex", &go_threads, &go_reads],
        ));
        t.measure(cfg, col, "rwmutex", rows);
    }
    let mut rows = gosync_rwmutex_rows(cfg, rt, 90, true);
    rows.push(Contender::anchor("async_lock::RwLock", || {
        rw_async::<async_lock::RwLock<u64>>(cfg, rt, RW_THREADS, 90)
    }));
    rows.push(Contender::anchor("tokio::sync::RwLock", || {
        rw_async::<tokio::sync::RwLock<u64>>(cfg, rt, RW_THREADS, 90)
    }));
    t.measure(cfg, 2, "rwmutex", rows);
    t.note(format!(
        "tasks run on a {WORKERS}-worker tokio runtime; go: goroutines, GOMAXPROCS = number of CPUs"
    ));
    t
}

fn waitgroup(cfg: &Config, rt: &Runtime, go: Option<&GoProgram>) -> Table {
    let mut t = Table::new(
        FAMILY,
        "waitgroup",
        "WaitGroup: add(1), done(), wait() in a loop",
        "ns/op",
        Better::Lower,
        &["thread", "async task"],
    );
    let label = "waitgroup";
    let mut rows = gosync_waitgroup_rows(cfg, rt, false);
    rows.push(Contender::anchor("crossbeam_utils::WaitGroup", || {
        Some(ns_per_op(cfg.op_duration, |n| {
            for _ in 0..n {
                let wg = crossbeam_utils::sync::WaitGroup::new();
                drop(black_box(wg.clone()));
                wg.wait();
            }
        }))
    }));
    rows.extend(go_row(go, cfg, "go sync.WaitGroup", &["-case=waitgroup"]));
    t.measure(cfg, 0, label, rows);
    t.measure(cfg, 1, label, gosync_waitgroup_rows(cfg, rt, true));
    t.note("crossbeam's wait() consumes the group: its row is new() + clone() + drop + wait()");
    t.note("async task: wait_async().await in one task on a 2-worker tokio runtime (no anchor has one)");
    t
}

fn once(cfg: &Config, go: Option<&GoProgram>) -> Table {
    let mut t = Table::new(
        FAMILY,
        "once",
        "Once, fast path: call_once on a Once that is already done",
        "ns/op",
        Better::Lower,
        &["done"],
    );
    let mut rows = gosync_once_rows(cfg);
    rows.push(Contender::anchor("std::sync::Once", || {
        let once = std::sync::Once::new();
        once.call_once(|| {});
        Some(ns_per_op(cfg.op_duration, |n| {
            for _ in 0..n {
                black_box(&once).call_once(|| {});
            }
        }))
    }));
    rows.push(Contender::anchor("std::sync::OnceLock", || {
        let cell = std::sync::OnceLock::new();
        cell.get_or_init(|| 1u64);
        Some(ns_per_op(cfg.op_duration, |n| {
            for _ in 0..n {
                black_box(black_box(&cell).get_or_init(|| 2));
            }
        }))
    }));
    rows.extend(go_row(go, cfg, "go sync.Once", &["-case=once"]));
    t.measure(cfg, 0, "once", rows);
    t
}

// ---------------------------------------------------------------------------------------
// gosync rows of RwMutex, WaitGroup and Once.

/// gosync::RwMutex row: threads (`is_async == false`) or tasks.
fn gosync_rwmutex_rows<'a>(
    cfg: &'a Config,
    rt: &'a Runtime,
    reads_pct: u32,
    is_async: bool,
) -> Vec<Contender<'a>> {
    let row = if is_async {
        Contender::subject("gosync::RwMutex", move || {
            rw_async::<gosync::sync::RwMutex<u64>>(cfg, rt, RW_THREADS, reads_pct)
        })
    } else {
        Contender::subject("gosync::RwMutex", move || {
            rw::<gosync::sync::RwMutex<u64>>(cfg, RW_THREADS, reads_pct)
        })
    };
    vec![row]
}

/// gosync::WaitGroup row: add(1) + done() + wait() (`is_async == false`) or wait_async().
fn gosync_waitgroup_rows<'a>(
    cfg: &'a Config,
    rt: &'a Runtime,
    is_async: bool,
) -> Vec<Contender<'a>> {
    let row = if is_async {
        Contender::subject("gosync::WaitGroup", move || {
            let wg = gosync::sync::WaitGroup::new();
            Some(ns_per_op_async(rt, cfg.op_duration, move |n| {
                let wg = wg.clone();
                async move {
                    for _ in 0..n {
                        wg.add(1);
                        wg.done();
                        wg.wait_async().await;
                    }
                }
            }))
        })
    } else {
        Contender::subject("gosync::WaitGroup", || {
            let wg = gosync::sync::WaitGroup::new();
            Some(ns_per_op(cfg.op_duration, |n| {
                for _ in 0..n {
                    let wg = black_box(&wg);
                    wg.add(1);
                    wg.done();
                    wg.wait();
                }
            }))
        })
    };
    vec![row]
}

/// gosync::Once row: call_once on a done Once.
fn gosync_once_rows(cfg: &Config) -> Vec<Contender<'_>> {
    vec![Contender::subject("gosync::Once", || {
        let once = gosync::sync::Once::new();
        once.call_once(|| {});
        Some(ns_per_op(cfg.op_duration, |n| {
            for _ in 0..n {
                black_box(&once).call_once(|| {});
            }
        }))
    })]
}
