//! Family `dist`: gosync-dist's distributed `Mutex` and `Election` against etcd's own lock and
//! election RPCs (through `etcd-client`) and etcd's Go client (`clientv3/concurrency`,
//! `bench/go/dist/main.go`), all on one etcd server on loopback that the harness starts for
//! the run (the test fixture `gosync_dist::testing::EtcdServer`: free ports, a temporary
//! directory, `--unsafe-no-fsync`, killed at the end).
//!
//! Cases:
//!
//! * `lock_uncontended`: one session, `lock` + `unlock` in a loop (ops/s);
//! * `campaign`: one session, `campaign` + `resign` in a loop (ops/s);
//! * `handoff`: 2, 4 and 8 sessions, each looping lock → tiny critical section → unlock:
//!   hand-offs per second and the per-session shares of the acquisitions; `handoff_p50`,
//!   `handoff_p90`, `handoff_p99`: the hand-off latency, from the holder's unlock call to
//!   the next owner's lock returning, counted only for owners that were already waiting.
//!
//! Every contended run checks mutual exclusion, FIFO order (gosync: each owner's fencing
//! token above the previous owner's; the etcd RPC and Go: the acquisition revision) and a
//! counter protected only by the lock; a broken check aborts the case with an error on
//! stderr and a note under its tables.
//!
//! gosync-dist also runs on its embedded backend: an in-process store, no network and no
//! disk. Its row is labelled so; it is not comparable with the rows over etcd and is not an
//! anchor.

mod work;

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use gosync_dist::testing::EtcdServer;
use gosync_dist::Client;
use tokio::runtime::Runtime;

use crate::go::{go_duration, GoProgram, Record};
use crate::measure::progress;
use crate::stats::{self, Better, Sample, Shares};
use crate::{Config, Table};

use work::{Fault, Latency, Outcome, Run};

/// One line for `--list`.
pub const ABOUT: &str =
    "distributed Mutex and Election on one etcd over loopback: ops/s, hand-offs/s, hand-off latency";

/// Case keys and what they measure, for `--list` and `--case`.
pub const CASES: &[(&str, &str)] = &[
    (
        "lock_uncontended",
        "one session: Mutex lock + unlock in a loop, ops/s",
    ),
    (
        "campaign",
        "one session: Election campaign + resign in a loop, ops/s",
    ),
    (
        "handoff",
        "2, 4, 8 sessions looping lock, tiny critical section, unlock: hand-offs/s, shares",
    ),
    (
        "handoff_p50",
        "hand-off latency (unlock call to a waiting owner's lock returning), median, ms",
    ),
    ("handoff_p90", "hand-off latency, 90th percentile, ms"),
    ("handoff_p99", "hand-off latency, 99th percentile, ms"),
];

const FAMILY: &str = "dist";
/// Session counts of the hand-off case.
const SESSIONS: [usize; 3] = [2, 4, 8];
/// The hand-off window is this many contended durations (`--duration-ms`) long: Go's
/// client hands over only ~40 times a second.
const HANDOFF_SCALE: u32 = 2;
/// A measurement that has not finished this long after its window is reported as a hang.
const HANG_LIMIT: Duration = Duration::from_secs(20);
/// The target for the hand-off rate against Go's client.
const TARGET_HANDOFF_RATIO: f64 = 30.0;
/// The target for the 90th percentile hand-off latency, ms.
const TARGET_P90_MS: f64 = 1.0;
/// Fair share tolerance: each session within this fraction of the mean.
const FAIR_TOLERANCE: f64 = 0.10;
/// Tables of the hand-off case.
const HANDOFF_KEYS: [&str; 4] = ["handoff", "handoff_p50", "handoff_p90", "handoff_p99"];

/// An implementation, i.e. a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Imp {
    /// gosync-dist over etcd (the subject).
    Etcd,
    /// gosync-dist on its in-process store.
    Embedded,
    /// etcd's server-side v3lock / v3election RPC, through etcd-client.
    Rpc,
    /// etcd's Go client.
    Go,
}

/// What a measurement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Lock,
    Campaign,
    Handoff(usize),
}

impl Shape {
    fn key(self) -> &'static str {
        match self {
            Shape::Lock => "lock_uncontended",
            Shape::Campaign => "campaign",
            Shape::Handoff(_) => "handoff",
        }
    }

    fn sessions(self) -> usize {
        match self {
            Shape::Handoff(n) => n,
            _ => 1,
        }
    }
}

impl Imp {
    /// The row name in the tables of `shape`.
    fn row(self, shape: Shape) -> &'static str {
        let election = shape == Shape::Campaign;
        match (self, election) {
            (Imp::Etcd, false) => "gosync-dist Mutex, etcd",
            (Imp::Etcd, true) => "gosync-dist Election, etcd",
            (Imp::Embedded, false) => "gosync-dist Mutex, embedded (in-process)",
            (Imp::Embedded, true) => "gosync-dist Election, embedded (in-process)",
            (Imp::Rpc, false) => "etcd v3lock RPC (etcd-client)",
            (Imp::Rpc, true) => "etcd v3election RPC (etcd-client)",
            (Imp::Go, false) => "go concurrency.Mutex",
            (Imp::Go, true) => "go concurrency.Election",
        }
    }

    /// Anchors are what gosync-dist over etcd is compared against.
    fn anchor(self) -> bool {
        matches!(self, Imp::Rpc | Imp::Go)
    }
}

/// Everything a run of the family shares. Field order is drop order: the clients go while
/// the runtime still runs, the server last.
struct Bench<'a> {
    cfg: &'a Config,
    gosync: Option<Client>,
    rpc: Option<etcd_client::Client>,
    go: Option<GoProgram>,
    rt: Runtime,
    etcd: Option<EtcdServer>,
    /// Why some rows are missing, for the notes.
    skipped: Vec<String>,
    /// Source of unique key prefixes.
    seq: Cell<u64>,
}

/// Runs the selected `dist` cases.
pub fn run(cfg: &Config) -> Vec<Table> {
    let lock = cfg.wants("lock_uncontended");
    let campaign = cfg.wants("campaign");
    let handoff = HANDOFF_KEYS.iter().any(|k| cfg.wants(k));
    if !(lock || campaign || handoff) {
        return Vec::new();
    }
    let b = Bench::start(cfg);
    let mut tables = Vec::new();
    if lock {
        tables.push(b.single(Shape::Lock));
    }
    if campaign {
        tables.push(b.single(Shape::Campaign));
    }
    if handoff {
        tables.extend(b.handoff());
    }
    tables
}

/// Whether Go's etcd client package (`go.etcd.io/etcd/clientv3/concurrency`) is in the
/// GOPATH the Go program is built with.
fn go_etcd_client_installed() -> bool {
    let gopath = std::env::var("GOPATH").unwrap_or_else(|_| "/usr/share/gocode".into());
    std::env::split_paths(&gopath).any(|root| {
        Path::new(&root)
            .join("src/go.etcd.io/etcd/clientv3/concurrency")
            .is_dir()
    })
}

/// The version of the etcd binary the fixture runs, e.g. `etcd 3.4.23`.
fn etcd_version() -> String {
    let bin = std::env::var(gosync_dist::testing::ETCD_BIN_ENV).unwrap_or_else(|_| "etcd".into());
    std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let first = text.lines().next()?.trim().to_string();
            // "etcd Version: 3.4.23" -> "etcd 3.4.23"
            Some(match first.strip_prefix("etcd Version:") {
                Some(v) => format!("etcd {}", v.trim()),
                None => first,
            })
        })
        .unwrap_or_else(|| "etcd (version unknown)".into())
}

impl<'a> Bench<'a> {
    fn start(cfg: &'a Config) -> Bench<'a> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("cannot start a tokio runtime");
        let mut b = Bench {
            cfg,
            gosync: None,
            rpc: None,
            go: None,
            rt,
            etcd: None,
            skipped: Vec::new(),
            seq: Cell::new(0),
        };
        progress(cfg, "[dist] starting etcd");
        let etcd = match EtcdServer::start() {
            Ok(s) => s,
            Err(e) => {
                b.skipped.push(format!(
                    "only the embedded rows: etcd could not be started: {e}"
                ));
                return b;
            }
        };
        let endpoint = etcd.endpoint().to_string();
        b.etcd = Some(etcd);
        match b.rt.block_on(Client::etcd(&[endpoint.as_str()])) {
            Ok(c) => b.gosync = Some(c),
            Err(e) => b
                .skipped
                .push(format!("gosync-dist over etcd skipped: {e}")),
        }
        match b
            .rt
            .block_on(etcd_client::Client::connect([endpoint.as_str()], None))
        {
            Ok(c) => b.rpc = Some(c),
            Err(e) => b.skipped.push(format!(
                "etcd RPC rows skipped: etcd-client could not connect: {e}"
            )),
        }
        let go =
            if cfg.go && !go_etcd_client_installed() {
                Err("Go rows skipped: Go's etcd client (go.etcd.io/etcd/clientv3) is not installed \
                 in the GOPATH (Debian/Ubuntu: apt-get install golang-etcd-server-dev)"
                .to_string())
            } else {
                GoProgram::build(cfg, FAMILY)
            };
        match go {
            Ok(g) => b.go = Some(g),
            Err(note) => b.skipped.push(note),
        }
        b
    }

    fn endpoint(&self) -> Option<&str> {
        self.etcd.as_ref().map(EtcdServer::endpoint)
    }

    /// The implementations that can run, in row order.
    fn imps(&self) -> Vec<Imp> {
        let mut v = Vec::new();
        if self.gosync.is_some() {
            v.push(Imp::Etcd);
        }
        v.push(Imp::Embedded);
        if self.rpc.is_some() {
            v.push(Imp::Rpc);
        }
        if self.go.is_some() && self.endpoint().is_some() {
            v.push(Imp::Go);
        }
        v
    }

    /// A key prefix no earlier measurement used.
    fn prefix(&self, shape: Shape) -> String {
        let n = self.seq.get();
        self.seq.set(n + 1);
        format!("/bench/{}/{n}", shape.key())
    }

    /// Length of one measurement of `shape`.
    fn window(&self, shape: Shape) -> Duration {
        match shape {
            Shape::Handoff(_) => self.cfg.duration * HANDOFF_SCALE,
            _ => self.cfg.duration,
        }
    }

    /// Measures `imp` once.
    fn measure(&self, imp: Imp, shape: Shape) -> Outcome {
        let dur = self.window(shape);
        let pfx = self.prefix(shape);
        let n = shape.sessions();
        if imp == Imp::Go {
            return self.go_measure(shape, &pfx, dur);
        }
        let client = match imp {
            Imp::Etcd => self.gosync.clone(),
            _ => Some(Client::embedded()),
        };
        let fut = async {
            match (imp, shape) {
                (Imp::Rpc, _) => {
                    let c = self.rpc.clone().expect("only listed when connected");
                    match shape {
                        Shape::Lock => work::rpc_lock(c, pfx, dur).await,
                        Shape::Campaign => work::rpc_campaign(c, pfx, dur).await,
                        Shape::Handoff(_) => work::rpc_handoff(c, pfx, n, dur).await,
                    }
                }
                (_, _) => {
                    let c = client.expect("only listed when connected");
                    match shape {
                        Shape::Lock => work::gosync_lock(c, pfx, dur).await,
                        Shape::Campaign => work::gosync_campaign(c, pfx, dur).await,
                        Shape::Handoff(_) => work::gosync_handoff(c, pfx, n, dur).await,
                    }
                }
            }
        };
        let limit = dur + HANG_LIMIT;
        self.rt
            .block_on(async { tokio::time::timeout(limit, fut).await })
            .unwrap_or_else(|_| {
                Err(Fault::Violation(format!(
                    "no result within {} s of a {} ms window: a wait hung (lost wake-up?)",
                    limit.as_secs(),
                    dur.as_millis()
                )))
            })
    }

    /// Runs the Go program once for `shape`.
    fn go_measure(&self, shape: Shape, pfx: &str, dur: Duration) -> Outcome {
        let go = self.go.as_ref().expect("only listed when built");
        let endpoint = self.endpoint().expect("only listed with etcd");
        let args = vec![
            format!("-endpoint={endpoint}"),
            format!("-case={}", shape.key()),
            format!("-sessions={}", shape.sessions()),
            format!("-dur={}", go_duration(dur)),
            format!("-prefix={pfx}"),
        ];
        let records = go.run(&args).map_err(|e| {
            if e.contains("VIOLATION") {
                Fault::Violation(format!("Go program: {e}"))
            } else {
                Fault::Failed(e)
            }
        })?;
        let rec = records
            .first()
            .ok_or_else(|| Fault::Failed("the Go program printed no result".into()))?;
        go_run(rec)
    }

    /// Every round of `shape` for every implementation, alternating; stops at the first
    /// violation, which it returns.
    fn rounds(&self, shape: Shape, label: &str) -> (Vec<Imp>, Vec<Vec<Run>>, Option<String>) {
        let imps = self.imps();
        let n = imps.len();
        let mut runs = vec![Vec::new(); n];
        for round in 0..self.cfg.rounds {
            for k in 0..n {
                let i = (round + k) % n;
                let imp = imps[i];
                progress(
                    self.cfg,
                    &format!(
                        "[{FAMILY}] {label}: {} round {}/{}",
                        imp.row(shape),
                        round + 1,
                        self.cfg.rounds
                    ),
                );
                match self.measure(imp, shape) {
                    Ok(run) => runs[i].push(run),
                    Err(Fault::Failed(e)) => {
                        eprintln!("warning: [{FAMILY}] {label}, {}: {e}", imp.row(shape))
                    }
                    Err(Fault::Violation(e)) => {
                        let msg = format!("{}: {e}", imp.row(shape));
                        eprintln!("error: [{FAMILY}] {label}: {msg}; case aborted");
                        return (imps, runs, Some(msg));
                    }
                }
            }
        }
        (imps, runs, None)
    }

    /// Notes every table gets.
    fn common_notes(&self, t: &mut Table) {
        if let Some(etcd) = &self.etcd {
            t.note(format!(
                "one {} server on loopback ({}), started for this run with --unsafe-no-fsync; \
                 each implementation talks to it over one client connection",
                etcd_version(),
                etcd.endpoint()
            ));
        }
        t.note(
            "the embedded row runs gosync-dist's in-process store (no network, no disk): \
             not comparable with the rows over etcd, and not an anchor",
        );
        for s in &self.skipped {
            t.note(s.clone());
        }
    }

    /// A one-session case: lock + unlock, or campaign + resign.
    fn single(&self, shape: Shape) -> Table {
        let (title, label) = match shape {
            Shape::Lock => (
                format!(
                    "Mutex, one session: lock + unlock in a loop for {} ms",
                    self.window(shape).as_millis()
                ),
                "lock + unlock",
            ),
            _ => (
                format!(
                    "Election, one session: campaign + resign in a loop for {} ms",
                    self.window(shape).as_millis()
                ),
                "campaign + resign",
            ),
        };
        let mut t = Table::new(
            FAMILY,
            shape.key(),
            title,
            "ops/s",
            Better::Higher,
            &["1 session"],
        );
        let (imps, runs, violation) = self.rounds(shape, label);
        for (imp, runs) in imps.iter().zip(&runs) {
            let samples = runs
                .iter()
                .map(|r| Sample::value(r.ops as f64 / r.secs.max(1e-9)))
                .collect();
            t.record(0, imp.row(shape), imp.anchor(), samples);
        }
        if let Some(v) = violation {
            t.note(format!("ABORTED: {v}"));
        }
        if let Some(r) = ratio_note(&t, shape, 0) {
            t.note(format!(
                "{} vs {}: {r} (target: at least 1.00x)",
                Imp::Etcd.row(shape),
                Imp::Go.row(shape)
            ));
        }
        self.common_notes(&mut t);
        t
    }

    /// The hand-off case: a rate table with shares, and three latency tables.
    fn handoff(&self) -> Vec<Table> {
        let shape0 = Shape::Handoff(SESSIONS[0]);
        let ms = self.window(shape0).as_millis();
        let columns: Vec<String> = SESSIONS.iter().map(|n| format!("{n} sessions")).collect();
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut rate = Table::new(
            FAMILY,
            "handoff",
            format!(
                "Mutex, N sessions each looping lock, tiny critical section, unlock for {ms} ms: \
                 acquisitions (hand-offs) per second"
            ),
            "hand-offs/s",
            Better::Higher,
            &columns,
        );
        let mut lat: Vec<Table> = [
            ("handoff_p50", "median"),
            ("handoff_p90", "90th percentile"),
            ("handoff_p99", "99th percentile"),
        ]
        .iter()
        .map(|(key, what)| {
            Table::new(
                FAMILY,
                key,
                format!(
                    "Mutex hand-off latency, {what}: from the holder's unlock call to the next \
                         owner's lock returning (owners already waiting only)"
                ),
                "ms",
                Better::Lower,
                &columns,
            )
        })
        .collect();
        let mut aborted = None;
        for (col, &n) in SESSIONS.iter().enumerate() {
            let shape = Shape::Handoff(n);
            let (imps, runs, violation) = self.rounds(shape, &format!("hand-offs, {n} sessions"));
            for (imp, runs) in imps.iter().zip(&runs) {
                let name = imp.row(shape);
                let samples = runs
                    .iter()
                    .map(|r| Sample {
                        value: r.ops as f64 / r.secs.max(1e-9),
                        shares: r.shares,
                    })
                    .collect();
                rate.record(col, name, imp.anchor(), samples);
                for (k, t) in lat.iter_mut().enumerate() {
                    let samples: Vec<Sample> = runs
                        .iter()
                        .filter_map(|r| r.latency)
                        .map(|l| Sample::value([l.p50, l.p90, l.p99][k]))
                        .collect();
                    t.record(col, name, imp.anchor(), samples);
                }
            }
            if let Some(v) = violation {
                aborted = Some(format!("ABORTED at {n} sessions: {v}"));
                break;
            }
        }
        let shape = shape0;
        let (subject, go) = (Imp::Etcd.row(shape), Imp::Go.row(shape));
        if let Some(a) = &aborted {
            rate.note(a.clone());
        }
        rate.note(format!(
            "a hand-off is counted when an owner's lock returns within the window; fairness \
             below = each session's share of the acquisitions (the issue's target: every \
             session within ±{:.0}% of its fair share)",
            FAIR_TOLERANCE * 100.0
        ));
        rate.note(
            "every critical section checks mutual exclusion, FIFO order (gosync-dist: each \
             owner's fencing token above the previous owner's; the etcd RPC and Go: the \
             acquisition revision) and a counter protected only by the lock; a broken check \
             aborts the case",
        );
        let ratios: Vec<String> = (0..SESSIONS.len())
            .filter_map(|c| ratio_note(&rate, shape, c).map(|r| format!("{} {r}", columns[c])))
            .collect();
        if !ratios.is_empty() {
            rate.note(format!(
                "{subject} vs {go}: {} (target: at least {TARGET_HANDOFF_RATIO:.0}x)",
                ratios.join(", ")
            ));
        }
        if let Some(f) = fairness_note(&rate, subject) {
            rate.note(f);
        }
        for t in &mut lat {
            if let Some(a) = &aborted {
                t.note(a.clone());
            }
            let ratios: Vec<String> = (0..SESSIONS.len())
                .filter_map(|c| ratio_note(t, shape, c).map(|r| format!("{} {r}", columns[c])))
                .collect();
            if !ratios.is_empty() {
                t.note(format!("{subject} vs {go} (speed): {}", ratios.join(", ")));
            }
        }
        if let Some(p90) = lat.get_mut(1) {
            let cells: Vec<String> = (0..SESSIONS.len())
                .filter_map(|c| {
                    let v = median(p90, subject, c)?;
                    let mark = if v < TARGET_P90_MS { "" } else { " (MISSED)" };
                    Some(format!("{} {v:.3} ms{mark}", columns[c]))
                })
                .collect();
            if !cells.is_empty() {
                p90.note(format!(
                    "{subject}: {} (target: below {TARGET_P90_MS:.0} ms)",
                    cells.join(", ")
                ));
            }
        }
        let mut tables = Vec::new();
        if self.cfg.wants("handoff") {
            tables.push(rate);
        }
        tables.extend(lat.into_iter().filter(|t| self.cfg.wants(t.key)));
        for t in &mut tables {
            self.common_notes(t);
        }
        tables
    }
}

/// A measurement of the Go program, from its output line.
fn go_run(rec: &Record) -> Outcome {
    let missing = |k: &str| Fault::Failed(format!("the Go program's output lacks {k}="));
    let ops = rec.f64("ops").ok_or_else(|| missing("ops"))?;
    let secs = rec.f64("secs").ok_or_else(|| missing("secs"))?;
    let shares = match (rec.f64("min_share"), rec.f64("max_share")) {
        (Some(min), Some(max)) => Some(Shares { min, max }),
        _ => None,
    };
    let latency = match (
        rec.f64("handoffs"),
        rec.f64("p50_ms"),
        rec.f64("p90_ms"),
        rec.f64("p99_ms"),
    ) {
        (Some(n), Some(p50), Some(p90), Some(p99)) if n >= 1.0 => Some(Latency {
            n: n as usize,
            p50,
            p90,
            p99,
        }),
        _ => None,
    };
    Ok(Run {
        ops: ops as u64,
        secs,
        shares,
        latency,
    })
}

/// The median of row `name` in column `col`.
fn median(t: &Table, name: &str, col: usize) -> Option<f64> {
    let row = t.rows.iter().find(|r| r.name == name)?;
    stats::summarise(&row.cells[col]).map(|s| s.value)
}

/// gosync-dist over etcd against Go's client in column `col`, as "12.3x" (speed: above 1 is
/// faster, whatever the direction of the table).
fn ratio_note(t: &Table, shape: Shape, col: usize) -> Option<String> {
    let ours = median(t, Imp::Etcd.row(shape), col)?;
    let go = median(t, Imp::Go.row(shape), col)?;
    stats::ratio(ours, go, t.better).map(|r| format!("{r:.2}x"))
}

/// Whether every column's median shares of row `name` are within the fair-share tolerance.
fn fairness_note(t: &Table, name: &str) -> Option<String> {
    let row = t.rows.iter().find(|r| r.name == name)?;
    let mut out = String::new();
    let mut all_fair = true;
    for (c, cells) in row.cells.iter().enumerate() {
        let Some(sh) = stats::summarise(cells).and_then(|s| s.shares) else {
            continue;
        };
        let fair = sh.min >= 1.0 - FAIR_TOLERANCE && sh.max <= 1.0 + FAIR_TOLERANCE;
        all_fair &= fair;
        let _ = write!(
            out,
            "{}{}: {:.2}/{:.2}{}",
            if out.is_empty() { "" } else { ", " },
            t.columns[c],
            sh.min,
            sh.max,
            if fair { "" } else { " (outside)" }
        );
    }
    if out.is_empty() {
        return None;
    }
    Some(format!(
        "{name}, per-session shares min/max: {out}; within ±{:.0}% of the fair share: {}",
        FAIR_TOLERANCE * 100.0,
        if all_fair { "yes" } else { "NO" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_output_is_parsed() {
        let rec = Record::parse(
            "case=handoff sessions=4 ops=40 secs=1.0000 rate=40.00 min_share=0.9 max_share=1.1 handoffs=39 p50_ms=1.5 p90_ms=98.0 p99_ms=99.2",
        );
        let run = go_run(&rec).unwrap();
        assert_eq!(run.ops, 40);
        assert_eq!(run.shares, Some(Shares { min: 0.9, max: 1.1 }));
        let l = run.latency.unwrap();
        assert_eq!((l.n, l.p50, l.p90, l.p99), (39, 1.5, 98.0, 99.2));

        let rec = Record::parse("case=lock_uncontended sessions=1 ops=800 secs=0.4 rate=2000");
        let run = go_run(&rec).unwrap();
        assert_eq!((run.ops, run.shares, run.latency), (800, None, None));
        assert!(go_run(&Record::parse("case=x")).is_err());
    }

    #[test]
    fn notes_compare_with_go() {
        let shape = Shape::Handoff(2);
        let mut t = Table::new(
            FAMILY,
            "handoff",
            "t",
            "hand-offs/s",
            Better::Higher,
            &["2"],
        );
        let fair = Sample {
            value: 1200.0,
            shares: Some(Shares {
                min: 0.95,
                max: 1.05,
            }),
        };
        t.record(0, Imp::Etcd.row(shape), false, vec![fair]);
        t.record(0, Imp::Go.row(shape), true, vec![Sample::value(40.0)]);
        assert_eq!(ratio_note(&t, shape, 0).as_deref(), Some("30.00x"));
        let f = fairness_note(&t, Imp::Etcd.row(shape)).unwrap();
        assert!(f.ends_with("yes"), "{f}");
    }
}
