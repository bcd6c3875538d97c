//! Family `chan`: gosync's channels and `select` against crossbeam-channel, flume, kanal and
//! `std::sync::mpsc` (threads), async-channel, tokio, kanal and flume (async tasks), and Go's
//! channels (`bench/go/chan/main.go`, which measures the same cases the same way).
//!
//! The cases follow crossbeam-channel's benchmark suite: a fixed number of messages N (1M;
//! fewer with `--quick`) goes through bounded channels of capacity 0, 1 and 1000, and the
//! result is the time it took, scaled to seconds per 1M messages (lower is better):
//!
//! * `seq`: one thread sends `cap` messages, then receives them, until N went through
//!   (capacities 1 and 1000; crossbeam's `seq` uses one buffer of N);
//! * `spsc`: one thread sends N, another receives them;
//! * `mpsc`: 4 threads send N/4 each, one receives all;
//! * `mpmc`: 4 threads send N/4 each, 4 others receive N/4 each;
//! * `select_rx`: 4 threads send N/4 each on a channel of their own, one thread receives all
//!   by selecting over the 4 channels;
//! * `select_both`: 4 threads send N/4 each by selecting over 4 channels, 4 others receive N/4
//!   each by selecting over them;
//! * `pingpong`: two threads bounce one message over two unbuffered channels; every round
//!   trip is timed (median and 99th percentile, ns).
//!
//! Each case has a thread table (`spsc`) and an async-task table (`spsc_async`, tasks on a
//! 2-worker tokio runtime). Thread tables compare gosync with the best Rust crate; task tables
//! with the best of async-channel and tokio, and a note compares gosync with Go's time × 1.5.
//! Go's row (goroutines) is shown in both but is not an anchor.
//!
//! `or_n` compares `gosync::pattern::or` with the course's goroutine-per-channel and recursive
//! versions of `or`, written here with gosync channels (see [`or`]).
//!
//! Every measurement runs under a time limit: one that does not finish is reported as a hang
//! in a note under its table and left out of the remaining rounds (with `--quick`, also of the
//! table's remaining capacities) instead of stopping the run.

mod imp;
mod or;
mod work;

use std::cell::RefCell;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::go::{GoProgram, Record};
use crate::measure::Contender;
use crate::stats::{self, Better, Sample};
use crate::{Config, Table};

use imp::{AsyncChannel, Crossbeam, Flume, Gosync, Kanal, Std, Tokio};
use work::{Hung, Sel, Task, THREADS};

/// One line for `--list`.
pub const ABOUT: &str =
    "channels and select after crossbeam-channel's suite, threads and async tasks (s per 1M messages)";

/// Case keys and what they measure, for `--list` and `--case`.
pub const CASES: &[(&str, &str)] = &[
    (
        "seq",
        "one thread sends cap messages then receives them, until N; caps 1, 1000",
    ),
    (
        "spsc",
        "one thread sends N, another receives; caps 0, 1, 1000",
    ),
    ("mpsc", "4 threads send N/4 each, one receives all"),
    ("mpmc", "4 threads send N/4 each, 4 others receive N/4 each"),
    (
        "select_rx",
        "4 senders on 4 channels, one receiver selecting over them",
    ),
    (
        "select_both",
        "4 senders and 4 receivers, each selecting over 4 channels",
    ),
    (
        "pingpong",
        "round trip over two unbuffered channels, ns median and p99",
    ),
    (
        "*_async",
        "each case above with async tasks on a 2-worker tokio runtime",
    ),
    (
        "or_n",
        "first of 16 done channels: gosync::pattern::or vs thread-per-channel and recursive",
    ),
];

const FAMILY: &str = "chan";
/// Messages per measurement.
const MESSAGES: usize = 1_000_000;
/// Messages per measurement with `--quick`.
const QUICK_MESSAGES: usize = 12_000;
/// Round trips per ping-pong measurement.
const TRIPS: usize = 100_000;
/// Round trips per ping-pong measurement with `--quick`.
const QUICK_TRIPS: usize = 5_000;
/// Time limit of one measurement (a hang is reported after it). The slowest anchors take
/// about 16 s for 1M messages at capacity 0 or 1 on a 2-core VM; the harness's watchdog
/// ends the run after 60 s without progress.
const LIMIT: Duration = Duration::from_secs(50);
/// Time limit of one measurement with `--quick`.
const QUICK_LIMIT: Duration = Duration::from_secs(2);
/// `or_n`: iterations timed whole, and iterations timed from close to observed.
const OR_ITERS: (usize, usize) = (500, 200);
/// `or_n` with `--quick`.
const QUICK_OR_ITERS: (usize, usize) = (40, 15);
/// Worker threads of the tokio runtime the async cases run on.
const WORKERS: usize = 2;
/// gosync's row in the plain cases.
const SUBJECT: &str = "gosync::chan";
/// Go's row.
const GO_ROW: &str = "go chan";
/// Unit of the throughput tables.
const UNIT: &str = "s/1M msgs";

/// The throughput cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Seq,
    Spsc,
    Mpsc,
    Mpmc,
    SelectRx,
    SelectBoth,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Seq,
        Kind::Spsc,
        Kind::Mpsc,
        Kind::Mpmc,
        Kind::SelectRx,
        Kind::SelectBoth,
    ];

    fn key(self) -> &'static str {
        match self {
            Kind::Seq => "seq",
            Kind::Spsc => "spsc",
            Kind::Mpsc => "mpsc",
            Kind::Mpmc => "mpmc",
            Kind::SelectRx => "select_rx",
            Kind::SelectBoth => "select_both",
        }
    }

    fn async_key(self) -> &'static str {
        match self {
            Kind::Seq => "seq_async",
            Kind::Spsc => "spsc_async",
            Kind::Mpsc => "mpsc_async",
            Kind::Mpmc => "mpmc_async",
            Kind::SelectRx => "select_rx_async",
            Kind::SelectBoth => "select_both_async",
        }
    }

    fn caps(self) -> &'static [usize] {
        match self {
            Kind::Seq => &[1, 1000],
            _ => &[0, 1, 1000],
        }
    }

    /// What one measurement does, with `who` = "thread" or "task".
    fn describe(self, who: &str) -> String {
        let t = THREADS;
        match self {
            Kind::Seq => format!("one {who} sends cap messages, then receives them, until N"),
            Kind::Spsc => format!("one {who} sends N messages, another receives them"),
            Kind::Mpsc => format!("{t} {who}s send N/{t} each, one receives all"),
            Kind::Mpmc => format!("{t} {who}s send N/{t} each, {t} others receive N/{t} each"),
            Kind::SelectRx => format!(
                "{t} {who}s send N/{t} each on a channel of their own, one receives all by selecting over the {t} channels"
            ),
            Kind::SelectBoth => format!(
                "{t} {who}s send N/{t} each by selecting over {t} channels, {t} others receive N/{t} each by selecting over them"
            ),
        }
    }
}

/// A thread workload: `(cap, n) -> elapsed`.
type ThreadWork = fn(usize, usize) -> Duration;
/// An async workload: `(cap, n) -> tasks`.
type TaskWork = fn(usize, usize) -> Vec<Task>;
/// Measurements that did not finish in time, collected while a table is measured.
struct Hangs {
    /// With `--quick`, a row that hung is not run again in the table's other columns.
    quick: bool,
    limit: Duration,
    notes: RefCell<Vec<String>>,
    rows: RefCell<Vec<String>>,
}

impl Hangs {
    fn new(b: &Bench<'_>) -> Self {
        Hangs {
            quick: b.cfg.quick,
            limit: b.limit,
            notes: RefCell::default(),
            rows: RefCell::default(),
        }
    }

    /// Records that `row` did not finish in `key`, capacity `cap`.
    fn report(&self, row: &str, key: &str, cap: usize) {
        let rest = if self.quick {
            "the remaining rounds and capacities"
        } else {
            "the remaining rounds"
        };
        let left = if row == GO_ROW {
            ""
        } else {
            " (its threads stay blocked; tasks are aborted)"
        };
        self.notes.borrow_mut().push(format!(
            "HANG: {row} in {key}, cap {cap}: no result within {} s (hang or pathologically slow); left out of {rest}{left}",
            self.limit.as_secs()
        ));
        self.rows.borrow_mut().push(row.to_string());
    }

    /// Whether `row` is not to be run any more in this table.
    fn skips(&self, row: &str) -> bool {
        self.quick && self.rows.borrow().iter().any(|r| r == row)
    }

    /// The notes, for the table.
    fn take(&self) -> Vec<String> {
        self.notes.take()
    }
}

/// A row of the plain tables: name, anchor, workload.
fn thread_impl(
    name: &'static str,
    anchor: bool,
    f: ThreadWork,
) -> (&'static str, bool, ThreadWork) {
    (name, anchor, f)
}

fn task_impl(name: &'static str, anchor: bool, f: TaskWork) -> (&'static str, bool, TaskWork) {
    (name, anchor, f)
}

/// Samples in seconds per 1M messages.
fn per_million(d: Duration, msgs: usize) -> Sample {
    Sample::value(d.as_secs_f64() * 1e6 / msgs as f64)
}

/// State shared by the family's cases.
struct Bench<'a> {
    cfg: &'a Config,
    rt: Runtime,
    go: Option<GoProgram>,
    msgs: usize,
    trips: usize,
    limit: Duration,
}

/// Runs the selected `chan` cases.
pub fn run(cfg: &Config) -> Vec<Table> {
    let wanted: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| cfg.wants(k.key()) || cfg.wants(k.async_key()))
        .collect();
    let pingpong = cfg.wants("pingpong") || cfg.wants("pingpong_async");
    let or_n = cfg.wants("or_n");
    if wanted.is_empty() && !pingpong && !or_n {
        return Vec::new();
    }
    let (go, go_note) = match GoProgram::build(cfg, FAMILY) {
        Ok(g) => (Some(g), None),
        Err(note) => (None, Some(note)),
    };
    let b = Bench {
        cfg,
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .build()
            .expect("cannot start a tokio runtime"),
        go,
        msgs: if cfg.quick { QUICK_MESSAGES } else { MESSAGES },
        trips: if cfg.quick { QUICK_TRIPS } else { TRIPS },
        limit: if cfg.quick { QUICK_LIMIT } else { LIMIT },
    };
    debug_assert_eq!(b.msgs % THREADS, 0);

    let mut tables = Vec::new();
    for kind in wanted {
        tables.extend(b.case(kind));
    }
    if pingpong {
        tables.push(b.pingpong());
    }
    if or_n {
        tables.push(b.or_n());
    }
    if let Some(note) = go_note {
        for t in tables.iter_mut().filter(|t| t.key != "or_n") {
            t.note(note.clone());
        }
    }
    tables
}

impl Bench<'_> {
    /// The thread table and the task table of one case (each if selected).
    fn case(&self, kind: Kind) -> Vec<Table> {
        let cfg = self.cfg;
        let caps = kind.caps();
        let columns: Vec<String> = caps.iter().map(|c| format!("cap {c}")).collect();
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        // Go's samples per column, measured with the thread rows and shown in both tables.
        let mut go_samples: Vec<Option<Vec<Sample>>> = vec![None; caps.len()];

        if cfg.wants(kind.key()) {
            let hangs = Hangs::new(self);
            let mut t = Table::new(
                FAMILY,
                kind.key(),
                format!(
                    "{} (threads; N = {} per measurement)",
                    kind.describe("thread"),
                    self.msgs
                ),
                UNIT,
                Better::Lower,
                &columns,
            );
            for (col, &cap) in caps.iter().enumerate() {
                let mut rows: Vec<Contender<'_>> = thread_impls(kind)
                    .into_iter()
                    .map(|(name, anchor, f)| self.thread_row(name, anchor, &hangs, kind, cap, f))
                    .collect();
                rows.extend(self.go_row(kind, cap, &hangs));
                t.measure(cfg, col, &format!("{} threads", kind.key()), rows);
                go_samples[col] = t
                    .rows
                    .iter()
                    .find(|r| r.name == GO_ROW)
                    .map(|r| r.cells[col].clone());
            }
            match kind {
                Kind::Seq => t.note("seq works through a buffer of cap messages (crossbeam's seq uses one buffer of N); capacity 0 cannot be used from one thread"),
                Kind::Mpmc => t.note("std::sync::mpsc has a single consumer: no mpmc row"),
                Kind::SelectRx | Kind::SelectBoth => t.note("std::sync::mpsc and kanal have no select"),
                _ => {}
            }
            if kind == Kind::SelectBoth {
                t.note("as crossbeam-channel's suite defines it: the senders select too (crossbeam's go.go has plain senders; bench/go/chan selects on both sides)");
            }
            t.note("ratio: against the best Rust crate in the column; go: goroutines, GOMAXPROCS = number of CPUs");
            t.notes
                .extend(go_ratio_note(&t, subject_row(kind, false), 1.0));
            t.notes.extend(hangs.take());
            out.push(t);
        }

        if cfg.wants(kind.async_key()) {
            let hangs = Hangs::new(self);
            let mut t = Table::new(
                FAMILY,
                kind.async_key(),
                format!(
                    "{} (async tasks on a {WORKERS}-worker tokio runtime; N = {} per measurement)",
                    kind.describe("task"),
                    self.msgs
                ),
                UNIT,
                Better::Lower,
                &columns,
            );
            for (col, &cap) in caps.iter().enumerate() {
                let mut rows: Vec<Contender<'_>> = task_impls(kind)
                    .into_iter()
                    .map(|(name, anchor, f)| self.task_row(name, anchor, &hangs, kind, cap, f))
                    .collect();
                if go_samples[col].is_none() {
                    rows.extend(self.go_row(kind, cap, &hangs));
                }
                t.measure(cfg, col, &format!("{} tasks", kind.key()), rows);
                if let Some(s) = go_samples[col].take() {
                    t.record(col, GO_ROW, false, s);
                }
            }
            if caps.contains(&0) {
                t.note("*: the crate has no capacity 0 (rendezvous); its cap 0 cells are measured at capacity 1");
            }
            match kind {
                Kind::Mpmc => t.note("tokio::sync::mpsc has a single consumer: no mpmc row"),
                Kind::SelectBoth => t.note("tokio::sync::mpsc has a single consumer: no select_both row; kanal and flume have no async select"),
                Kind::SelectRx => t.note("kanal and flume have no async select"),
                _ => {}
            }
            t.note("ratio: against the best of async-channel and tokio (kanal and flume rows are for reference)");
            t.notes
                .extend(go_ratio_note(&t, subject_row(kind, true), 1.5));
            t.notes.extend(hangs.take());
            out.push(t);
        }
        out
    }

    /// A thread row: runs `f(cap, n)` under the time limit each round.
    fn thread_row<'a>(
        &'a self,
        name: &'static str,
        anchor: bool,
        hangs: &'a Hangs,
        kind: Kind,
        cap: usize,
        f: ThreadWork,
    ) -> Contender<'a> {
        let (limit, n) = (self.limit, self.msgs);
        let mut hung = false;
        Contender {
            name: name.to_string(),
            anchor,
            run: Box::new(move || {
                if hung || hangs.skips(name) {
                    return None;
                }
                match work::on_thread(limit, move || f(cap, n)) {
                    Ok(d) => Some(per_million(d, n)),
                    Err(Hung) => {
                        hung = true;
                        hangs.report(name, kind.key(), cap);
                        None
                    }
                }
            }),
        }
    }

    /// An async row: runs the tasks of `f(cap, n)` under the time limit each round.
    fn task_row<'a>(
        &'a self,
        name: &'static str,
        anchor: bool,
        hangs: &'a Hangs,
        kind: Kind,
        cap: usize,
        f: TaskWork,
    ) -> Contender<'a> {
        let (limit, n) = (self.limit, self.msgs);
        let mut hung = false;
        Contender {
            name: name.to_string(),
            anchor,
            run: Box::new(move || {
                if hung || hangs.skips(name) {
                    return None;
                }
                match work::on_tasks(&self.rt, limit, f(cap, n)) {
                    Ok(d) => Some(per_million(d, n)),
                    Err(Hung) => {
                        hung = true;
                        hangs.report(name, kind.async_key(), cap);
                        None
                    }
                }
            }),
        }
    }

    /// Go's row of a throughput case (not an anchor), if the Go program was built.
    fn go_row<'a>(&'a self, kind: Kind, cap: usize, hangs: &'a Hangs) -> Option<Contender<'a>> {
        let go = self.go.as_ref()?;
        let args = vec![
            format!("-case={}", kind.key()),
            format!("-cap={cap}"),
            format!("-n={}", self.msgs),
            format!("-limit={}", crate::go::go_duration(self.limit)),
        ];
        Some(Contender {
            name: GO_ROW.to_string(),
            anchor: false,
            run: Box::new(move || {
                let rec = go_record(go, &args)?;
                if rec.0.contains_key("hang") {
                    hangs.report(GO_ROW, kind.key(), cap);
                    return None;
                }
                let secs = rec.f64("secs")?;
                let msgs = rec.f64("msgs")?;
                Some(Sample::value(secs * 1e6 / msgs))
            }),
        })
    }

    /// The `or_n` table: the first of 16 done channels, three ways.
    fn or_n(&self) -> Table {
        let mut t = Table::new(
            FAMILY,
            "or_n",
            format!(
                "or of {} done channels: build it, close one, wait for its output to close (threads)",
                or::N
            ),
            "µs",
            Better::Lower,
            &["build + close + observe", "close -> observe"],
        );
        let hangs = Hangs::new(self);
        let (iters, parked) = if self.cfg.quick {
            QUICK_OR_ITERS
        } else {
            OR_ITERS
        };
        let fired: RefCell<Vec<(String, bool, Sample)>> = RefCell::default();
        let impls: [(&'static str, bool, or::OrFn); 3] = [
            ("gosync::pattern::or", false, or::library),
            ("thread per channel", true, or::thread_per_channel),
            ("recursive halves", true, or::recursive),
        ];
        let rows: Vec<Contender<'_>> = impls
            .into_iter()
            .map(|(name, anchor, f)| {
                let (limit, hangs, fired) = (self.limit, &hangs, &fired);
                let mut hung = false;
                Contender {
                    name: name.to_string(),
                    anchor,
                    run: Box::new(move || {
                        if hung {
                            return None;
                        }
                        match work::on_thread(limit, move || or::measure(f, iters, parked)) {
                            Ok((whole, observe)) => {
                                fired.borrow_mut().push((
                                    name.into(),
                                    anchor,
                                    Sample::value(observe),
                                ));
                                Some(Sample::value(whole))
                            }
                            Err(Hung) => {
                                hung = true;
                                hangs.report(name, "or_n", 0);
                                None
                            }
                        }
                    }),
                }
            })
            .collect();
        t.measure(self.cfg, 0, "or_n", rows);
        for (name, anchor, s) in fired.take() {
            t.record(1, &name, anchor, vec![s]);
        }
        t.note(format!(
            "median over {iters} iterations (build + close + observe) and {parked} iterations (close -> observe, after a 2 ms pause so that the waiters are parked) per round"
        ));
        t.note("gosync::pattern::or: one thread in one dynamic select over all channels; thread per channel: the course's goroutine version (1 + N threads, the first to fire closes the output once); recursive halves: the course's recursive version (about N threads); all with gosync channels");
        t.notes.extend(hangs.take());
        t
    }

    /// The ping-pong latency table.
    fn pingpong(&self) -> Table {
        let cfg = self.cfg;
        let mut t = Table::new(
            FAMILY,
            "pingpong",
            format!(
                "two threads (tasks) bounce a message over two unbuffered channels, {} round trips per measurement, each timed",
                self.trips
            ),
            "ns/round trip",
            Better::Lower,
            &["threads median", "threads p99", "tasks median", "tasks p99"],
        );
        let hangs = Hangs::new(self);
        // p99 samples collected while the medians are measured: (row, anchor, sample).
        let p99s: RefCell<Vec<(String, bool, Sample)>> = RefCell::default();

        if cfg.wants("pingpong") {
            type Ping = fn(usize, usize) -> Vec<u64>;
            let rows: Vec<(&'static str, bool, Ping)> = vec![
                (SUBJECT, false, work::pingpong::<Gosync>),
                ("crossbeam-channel", true, work::pingpong::<Crossbeam>),
                ("flume", true, work::pingpong::<Flume>),
                ("kanal", true, work::pingpong::<Kanal>),
                ("std::sync::mpsc", true, work::pingpong::<Std>),
            ];
            let mut rows: Vec<Contender<'_>> = rows
                .into_iter()
                .map(|(name, anchor, f)| {
                    let (limit, n) = (self.limit, self.trips);
                    let (hangs, p99s) = (&hangs, &p99s);
                    let mut hung = false;
                    Contender {
                        name: name.to_string(),
                        anchor,
                        run: Box::new(move || {
                            if hung || hangs.skips(name) {
                                return None;
                            }
                            match work::on_thread(limit, move || f(0, n)) {
                                Ok(lat) => {
                                    let (med, p99) = work::percentiles(lat)?;
                                    p99s.borrow_mut().push((
                                        name.into(),
                                        anchor,
                                        Sample::value(p99),
                                    ));
                                    Some(Sample::value(med))
                                }
                                Err(Hung) => {
                                    hung = true;
                                    hangs.report(name, "pingpong", 0);
                                    None
                                }
                            }
                        }),
                    }
                })
                .collect();
            if let Some(go) = &self.go {
                let args = vec![
                    "-case=pingpong".to_string(),
                    format!("-n={}", self.trips),
                    format!("-limit={}", crate::go::go_duration(self.limit)),
                ];
                let p99s = &p99s;
                rows.push(Contender {
                    name: GO_ROW.to_string(),
                    anchor: false,
                    run: Box::new(move || {
                        let rec = go_record(go, &args)?;
                        let med = rec.f64("median_ns")?;
                        let p99 = rec.f64("p99_ns")?;
                        p99s.borrow_mut()
                            .push((GO_ROW.into(), false, Sample::value(p99)));
                        Some(Sample::value(med))
                    }),
                });
            }
            t.measure(cfg, 0, "pingpong threads", rows);
            for (name, anchor, s) in p99s.take() {
                t.record(1, &name, anchor, vec![s]);
            }
        }

        if cfg.wants("pingpong") || cfg.wants("pingpong_async") {
            type AsyncPing = fn(usize, usize, std::sync::mpsc::Sender<Vec<u64>>) -> Vec<Task>;
            let rows: Vec<(&'static str, bool, AsyncPing)> = vec![
                (SUBJECT, false, work::pingpong_async::<Gosync>),
                ("async-channel*", true, work::pingpong_async::<AsyncChannel>),
                ("tokio::sync::mpsc*", true, work::pingpong_async::<Tokio>),
                ("kanal (async)", false, work::pingpong_async::<Kanal>),
                ("flume (async)", false, work::pingpong_async::<Flume>),
            ];
            let rows: Vec<Contender<'_>> = rows
                .into_iter()
                .map(|(name, anchor, f)| {
                    let (limit, n) = (self.limit, self.trips);
                    let (hangs, p99s) = (&hangs, &p99s);
                    let mut hung = false;
                    Contender {
                        name: name.to_string(),
                        anchor,
                        run: Box::new(move || {
                            if hung || hangs.skips(name) {
                                return None;
                            }
                            let (tx, rx) = std::sync::mpsc::channel();
                            match work::on_tasks(&self.rt, limit, f(0, n, tx)) {
                                Ok(_) => {
                                    let (med, p99) = work::percentiles(rx.try_recv().ok()?)?;
                                    p99s.borrow_mut().push((
                                        name.into(),
                                        anchor,
                                        Sample::value(p99),
                                    ));
                                    Some(Sample::value(med))
                                }
                                Err(Hung) => {
                                    hung = true;
                                    hangs.report(name, "pingpong_async", 0);
                                    None
                                }
                            }
                        }),
                    }
                })
                .collect();
            t.measure(cfg, 2, "pingpong tasks", rows);
            for (name, anchor, s) in p99s.take() {
                t.record(3, &name, anchor, vec![s]);
            }
        }

        t.note(format!(
            "tasks run on a {WORKERS}-worker tokio runtime; * no capacity 0: async-channel and tokio run at capacity 1"
        ));
        t.note("ratio: threads against the best Rust crate, tasks against the best of async-channel and tokio (kanal and flume async rows are for reference); go: goroutines, GOMAXPROCS = number of CPUs");
        if let Some(go) = t.rows.iter().find(|r| r.name == GO_ROW) {
            let med = |c: usize| stats::summarise(&go.cells[c]).map(|s| s.value);
            let subj = t.rows.iter().find(|r| r.name == SUBJECT);
            let ratio = |c: usize, go: Option<f64>, factor: f64| {
                let s = stats::summarise(&subj?.cells[c])?.value;
                stats::ratio(s, go? * factor, Better::Lower)
            };
            let fmt = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}x"));
            t.note(format!(
                "gosync vs go: threads median {}, p99 {}; tasks vs go x1.5 (the target: >= 1.00x): median {}, p99 {}",
                fmt(ratio(0, med(0), 1.0)),
                fmt(ratio(1, med(1), 1.0)),
                fmt(ratio(2, med(0), 1.5)),
                fmt(ratio(3, med(1), 1.5)),
            ));
        }
        t.notes.extend(hangs.take());
        t
    }
}

/// gosync's row name in a case's thread (or task) table.
fn subject_row(kind: Kind, is_async: bool) -> &'static str {
    match (kind, is_async) {
        (Kind::SelectRx | Kind::SelectBoth, false) => "gosync select!",
        (Kind::SelectRx | Kind::SelectBoth, true) => "gosync select_async!",
        _ => SUBJECT,
    }
}

/// The thread implementations of a case.
fn thread_impls(kind: Kind) -> Vec<(&'static str, bool, ThreadWork)> {
    match kind {
        Kind::Seq => vec![
            thread_impl(SUBJECT, false, work::seq::<Gosync>),
            thread_impl("crossbeam-channel", true, work::seq::<Crossbeam>),
            thread_impl("flume", true, work::seq::<Flume>),
            thread_impl("kanal", true, work::seq::<Kanal>),
            thread_impl("std::sync::mpsc", true, work::seq::<Std>),
        ],
        Kind::Spsc => vec![
            thread_impl(SUBJECT, false, work::spsc::<Gosync>),
            thread_impl("crossbeam-channel", true, work::spsc::<Crossbeam>),
            thread_impl("flume", true, work::spsc::<Flume>),
            thread_impl("kanal", true, work::spsc::<Kanal>),
            thread_impl("std::sync::mpsc", true, work::spsc::<Std>),
        ],
        Kind::Mpsc => vec![
            thread_impl(SUBJECT, false, work::mpsc::<Gosync>),
            thread_impl("crossbeam-channel", true, work::mpsc::<Crossbeam>),
            thread_impl("flume", true, work::mpsc::<Flume>),
            thread_impl("kanal", true, work::mpsc::<Kanal>),
            thread_impl("std::sync::mpsc", true, work::mpsc::<Std>),
        ],
        Kind::Mpmc => vec![
            thread_impl(SUBJECT, false, work::mpmc::<Gosync>),
            thread_impl("crossbeam-channel", true, work::mpmc::<Crossbeam>),
            thread_impl("flume", true, work::mpmc::<Flume>),
            thread_impl("kanal", true, work::mpmc::<Kanal>),
        ],
        Kind::SelectRx => vec![
            thread_impl(subject_row(kind, false), false, |c, n| {
                work::select_gosync(Sel::Rx, c, n)
            }),
            thread_impl("crossbeam select!", true, |c, n| {
                work::select_crossbeam(Sel::Rx, c, n)
            }),
            thread_impl("flume Selector", true, |c, n| {
                work::select_flume(Sel::Rx, c, n)
            }),
        ],
        Kind::SelectBoth => vec![
            thread_impl(subject_row(kind, false), false, |c, n| {
                work::select_gosync(Sel::Both, c, n)
            }),
            thread_impl("crossbeam select!", true, |c, n| {
                work::select_crossbeam(Sel::Both, c, n)
            }),
            thread_impl("flume Selector", true, |c, n| {
                work::select_flume(Sel::Both, c, n)
            }),
        ],
    }
}

/// The async implementations of a case.
fn task_impls(kind: Kind) -> Vec<(&'static str, bool, TaskWork)> {
    // Row names of the crates without capacity 0 carry a `*` where the table has a cap 0
    // column.
    let (ac, tk) = if kind.caps().contains(&0) {
        ("async-channel*", "tokio::sync::mpsc*")
    } else {
        ("async-channel", "tokio::sync::mpsc")
    };
    match kind {
        Kind::Seq => vec![
            task_impl(SUBJECT, false, work::seq_async::<Gosync>),
            task_impl(ac, true, work::seq_async::<AsyncChannel>),
            task_impl(tk, true, work::seq_async::<Tokio>),
            task_impl("kanal (async)", false, work::seq_async::<Kanal>),
            task_impl("flume (async)", false, work::seq_async::<Flume>),
        ],
        Kind::Spsc => vec![
            task_impl(SUBJECT, false, work::spsc_async::<Gosync>),
            task_impl(ac, true, work::spsc_async::<AsyncChannel>),
            task_impl(tk, true, work::spsc_async::<Tokio>),
            task_impl("kanal (async)", false, work::spsc_async::<Kanal>),
            task_impl("flume (async)", false, work::spsc_async::<Flume>),
        ],
        Kind::Mpsc => vec![
            task_impl(SUBJECT, false, work::mpsc_async::<Gosync>),
            task_impl(ac, true, work::mpsc_async::<AsyncChannel>),
            task_impl(tk, true, work::mpsc_async::<Tokio>),
            task_impl("kanal (async)", false, work::mpsc_async::<Kanal>),
            task_impl("flume (async)", false, work::mpsc_async::<Flume>),
        ],
        Kind::Mpmc => vec![
            task_impl(SUBJECT, false, work::mpmc_async::<Gosync>),
            task_impl(ac, true, work::mpmc_async::<AsyncChannel>),
            task_impl("kanal (async)", false, work::mpmc_async::<Kanal>),
            task_impl("flume (async)", false, work::mpmc_async::<Flume>),
        ],
        Kind::SelectRx => vec![
            task_impl(subject_row(kind, true), false, |c, n| {
                work::select_gosync_async(Sel::Rx, c, n)
            }),
            task_impl("async-channel* + tokio::select!", true, |c, n| {
                work::select_async_channel(Sel::Rx, c, n)
            }),
            task_impl(
                "tokio::sync::mpsc* + tokio::select!",
                true,
                work::select_rx_tokio,
            ),
        ],
        Kind::SelectBoth => vec![
            task_impl(subject_row(kind, true), false, |c, n| {
                work::select_gosync_async(Sel::Both, c, n)
            }),
            task_impl("async-channel* + tokio::select!", true, |c, n| {
                work::select_async_channel(Sel::Both, c, n)
            }),
        ],
    }
}

/// Runs the Go program once and returns its first record (a failure is reported on stderr).
fn go_record(go: &GoProgram, args: &[String]) -> Option<Record> {
    match go.run(args) {
        Ok(records) => records.into_iter().next(),
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    }
}

/// "gosync vs go [x factor]: cap 0 0.85x, ..." for the columns where both have a median.
fn go_ratio_note(t: &Table, subject: &str, factor: f64) -> Option<String> {
    let go = t.rows.iter().find(|r| r.name == GO_ROW)?;
    let subj = t.rows.iter().find(|r| r.name == subject)?;
    let parts: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .filter_map(|(c, col)| {
            let s = stats::summarise(&subj.cells[c])?.value;
            let g = stats::summarise(&go.cells[c])?.value;
            let r = stats::ratio(s, g * factor, t.better)?;
            Some(format!("{col} {r:.2}x"))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(if factor == 1.0 {
        format!("gosync vs go: {}", parts.join(", "))
    } else {
        format!(
            "gosync vs go x{factor} (the target: >= 1.00x): {}",
            parts.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_ratio_note_uses_the_factor() {
        let mut t = Table::new(FAMILY, "k", "t", UNIT, Better::Lower, &["cap 0", "cap 1"]);
        t.record(0, SUBJECT, false, vec![Sample::value(3.0)]);
        t.record(0, GO_ROW, false, vec![Sample::value(2.0)]);
        t.record(1, GO_ROW, false, vec![Sample::value(2.0)]);
        assert_eq!(
            go_ratio_note(&t, SUBJECT, 1.5).as_deref(),
            Some("gosync vs go x1.5 (the target: >= 1.00x): cap 0 1.00x")
        );
        assert_eq!(
            go_ratio_note(&t, SUBJECT, 1.0).as_deref(),
            Some("gosync vs go: cap 0 0.67x")
        );
    }

    #[test]
    fn every_kind_has_rows_and_keys() {
        for kind in Kind::ALL {
            assert!(thread_impls(kind).iter().any(|r| !r.1));
            assert!(task_impls(kind).iter().any(|r| r.1));
            assert!(kind.async_key().starts_with(kind.key()));
        }
    }
}
