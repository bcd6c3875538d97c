//! The Rust workloads of the `dist` family: gosync-dist's Mutex and Election (on any
//! backend) and etcd's server-side lock and election RPCs (through `etcd-client`), each in
//! the three shapes the family measures: uncontended lock + unlock, campaign + resign, and
//! contended hand-offs between N sessions.
//!
//! Every contended run goes through a [`Referee`]: it times the hand-offs, counts each
//! session's acquisitions, and checks mutual exclusion, FIFO order and a counter protected
//! only by the lock. A broken check ends the run with [`Fault::Violation`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use etcd_client::{LockOptions, ResignOptions};
use gosync_dist::{Client, Election, Mutex, Session};

use crate::stats::{self, Shares};

/// What one measurement produced.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Operations (uncontended cases) or acquisitions (hand-off case) counted.
    pub ops: u64,
    /// Length of the measured window.
    pub secs: f64,
    /// Smallest and largest per-session share of the acquisitions (hand-off case).
    pub shares: Option<Shares>,
    /// Hand-off latencies in ms: p50, p90, p99 and how many were timed (hand-off case only).
    pub latency: Option<Latency>,
}

/// Percentiles of the timed hand-offs of one measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// How many hand-offs were timed.
    pub n: usize,
    /// Median, ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 99th percentile, ms.
    pub p99: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `d` (sorted here); `None` if empty.
    pub fn of(mut d: Vec<Duration>) -> Option<Latency> {
        if d.is_empty() {
            return None;
        }
        d.sort_unstable();
        let ms = |p: usize| {
            let rank = (p * d.len()).div_ceil(100).max(1);
            d[rank - 1].as_secs_f64() * 1000.0
        };
        Some(Latency {
            n: d.len(),
            p50: ms(50),
            p90: ms(90),
            p99: ms(99),
        })
    }
}

/// Why a measurement produced no result.
#[derive(Clone, Debug)]
pub enum Fault {
    /// An operation failed (the round is left out).
    Failed(String),
    /// Mutual exclusion, FIFO order or the fenced counter was broken (the case is aborted).
    Violation(String),
}

impl From<gosync_dist::Error> for Fault {
    fn from(e: gosync_dist::Error) -> Self {
        Fault::Failed(e.to_string())
    }
}

impl From<etcd_client::Error> for Fault {
    fn from(e: etcd_client::Error) -> Self {
        Fault::Failed(format!("etcd-client: {e}"))
    }
}

/// Result of a measurement.
pub type Outcome = Result<Run, Fault>;

/// Lease TTL of the etcd RPC rows (long enough to outlive any measurement; revoked after).
const RPC_LEASE_TTL: i64 = 60;

// ---------------------------------------------------------------------------------------
// Uncontended: one session, lock + unlock (or campaign + resign) in a loop.

/// gosync-dist `Mutex`: `lock` + `unlock` in a loop for `dur`, after one warm-up cycle.
/// Checks that every fencing token is above the previous one.
pub async fn gosync_lock(client: Client, pfx: String, dur: Duration) -> Outcome {
    let session = Session::new(&client).await?;
    let m = Mutex::new(&session, pfx);
    m.lock().await?;
    m.unlock().await?;
    let (mut ops, mut last) = (0u64, 0i64);
    let t0 = Instant::now();
    while t0.elapsed() < dur {
        m.lock().await?;
        let token = m.fencing_token().unwrap_or(0);
        if token <= last {
            return Err(Fault::Violation(format!(
                "fencing token {token} not above the previous one {last}"
            )));
        }
        last = token;
        m.unlock().await?;
        ops += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    session.close().await?;
    Ok(Run {
        ops,
        secs,
        ..Run::default()
    })
}

/// gosync-dist `Election`: `campaign` + `resign` in a loop for `dur`, after one warm-up.
pub async fn gosync_campaign(client: Client, pfx: String, dur: Duration) -> Outcome {
    let session = Session::new(&client).await?;
    let e = Election::new(&session, pfx);
    e.campaign("v").await?;
    e.resign().await?;
    let mut ops = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < dur {
        e.campaign("v").await?;
        e.resign().await?;
        ops += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    session.close().await?;
    Ok(Run {
        ops,
        secs,
        ..Run::default()
    })
}

/// etcd's v3lock RPC: `Lock` + `Unlock` with one lease in a loop for `dur`. Checks that the
/// acquisition revision (the response header's) grows.
pub async fn rpc_lock(mut c: etcd_client::Client, name: String, dur: Duration) -> Outcome {
    let lease = c.lease_grant(RPC_LEASE_TTL, None).await?.id();
    let opts = || Some(LockOptions::new().with_lease(lease));
    let resp = c.lock(name.as_str(), opts()).await?;
    c.unlock(resp.key()).await?;
    let (mut ops, mut last) = (0u64, 0i64);
    let t0 = Instant::now();
    while t0.elapsed() < dur {
        let resp = c.lock(name.as_str(), opts()).await?;
        let rev = resp.header().map_or(0, |h| h.revision());
        if rev <= last {
            return Err(Fault::Violation(format!(
                "acquisition revision {rev} not above the previous one {last}"
            )));
        }
        last = rev;
        c.unlock(resp.key()).await?;
        ops += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    c.lease_revoke(lease).await?;
    Ok(Run {
        ops,
        secs,
        ..Run::default()
    })
}

/// etcd's v3election RPC: `Campaign` + `Resign` with one lease in a loop for `dur`.
pub async fn rpc_campaign(mut c: etcd_client::Client, name: String, dur: Duration) -> Outcome {
    let lease = c.lease_grant(RPC_LEASE_TTL, None).await?.id();
    rpc_cycle(&mut c, &name, lease).await?;
    let mut ops = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < dur {
        rpc_cycle(&mut c, &name, lease).await?;
        ops += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    c.lease_revoke(lease).await?;
    Ok(Run {
        ops,
        secs,
        ..Run::default()
    })
}

/// One `Campaign` + `Resign` through etcd's election RPC.
async fn rpc_cycle(c: &mut etcd_client::Client, name: &str, lease: i64) -> Result<(), Fault> {
    let mut resp = c.campaign(name, "v", lease).await?;
    let leader = resp
        .take_leader()
        .ok_or_else(|| Fault::Failed("campaign answered without a leader key".into()))?;
    c.resign(Some(ResignOptions::new().with_leader(leader)))
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Contended hand-offs.

/// Watches the critical sections of one contended run.
///
/// An owner calls [`enter`](Self::enter) right after its lock returned and
/// [`leave`](Self::leave) right before it calls unlock. A hand-off is timed from the
/// holder's `leave` (its unlock call) to the next owner's lock returning, and only when that
/// owner is another session that was already waiting (its lock call began before the
/// unlock call). Acquisitions after the end of the window are not counted.
pub struct Referee {
    end: Instant,
    inside: AtomicBool,
    last_token: AtomicI64,
    /// Incremented with a plain load and store: only the lock protects it.
    counter: AtomicU64,
    released: StdMutex<Option<(usize, Instant)>>,
    handoffs: StdMutex<Vec<Duration>>,
    counts: Vec<AtomicU64>,
    /// What the token is, for messages.
    token_name: &'static str,
}

fn guard<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Referee {
    /// A referee for `sessions` sessions whose window ends at `end`.
    pub fn new(sessions: usize, end: Instant, token_name: &'static str) -> Self {
        Referee {
            end,
            inside: AtomicBool::new(false),
            last_token: AtomicI64::new(0),
            counter: AtomicU64::new(0),
            released: StdMutex::new(None),
            handoffs: StdMutex::new(Vec::new()),
            counts: (0..sessions).map(|_| AtomicU64::new(0)).collect(),
            token_name,
        }
    }

    /// Session `me` acquired the lock at `got` (its lock call began at `called`), with
    /// `token` (strictly increasing from owner to owner in a FIFO lock).
    pub fn enter(&self, me: usize, called: Instant, got: Instant, token: i64) -> Result<(), Fault> {
        if self.inside.swap(true, Ordering::AcqRel) {
            return Err(Fault::Violation(format!(
                "session {me} acquired the lock while another session held it: mutual exclusion broken"
            )));
        }
        let prev = self.last_token.load(Ordering::Acquire);
        if token <= prev {
            return Err(Fault::Violation(format!(
                "session {me} acquired with {} {token}, not above the previous owner's {prev}: FIFO order broken",
                self.token_name
            )));
        }
        self.last_token.store(token, Ordering::Release);
        let released = guard(&self.released).take();
        if got < self.end {
            if let Some((from, at)) = released {
                if from != me && called < at {
                    guard(&self.handoffs).push(got.saturating_duration_since(at));
                }
            }
            let c = self.counter.load(Ordering::Acquire);
            self.counter.store(c + 1, Ordering::Release);
            self.counts[me].fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Session `me` is about to call unlock.
    pub fn leave(&self, me: usize) {
        *guard(&self.released) = Some((me, Instant::now()));
        self.inside.store(false, Ordering::Release);
    }

    /// The end of the window.
    pub fn end(&self) -> Instant {
        self.end
    }

    /// The run's result once every session has stopped, with the fenced-counter check.
    pub fn finish(&self, window: Duration) -> Outcome {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let counter = self.counter.load(Ordering::Acquire);
        if counter != total {
            return Err(Fault::Violation(format!(
                "the counter protected by the lock is {counter}, but the sessions acquired {total} times: an update was lost"
            )));
        }
        Ok(Run {
            ops: total,
            secs: window.as_secs_f64(),
            shares: stats::shares(&counts),
            latency: Latency::of(std::mem::take(&mut *guard(&self.handoffs))),
        })
    }
}

/// The tiny critical section: give the other tasks a chance to run (a lock that let two
/// owners in would show it here).
async fn critical_section() {
    tokio::task::yield_now().await;
}

/// Sleeps until the end of the referee's window.
async fn window_end(r: &Referee) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(r.end())).await;
}

/// The first fault of the sessions' results, violations first.
fn first_fault(results: Vec<Result<(), Fault>>) -> Result<(), Fault> {
    let faults: Vec<Fault> = results.into_iter().filter_map(Result::err).collect();
    if let Some(v) = faults.iter().find(|f| matches!(f, Fault::Violation(_))) {
        return Err(v.clone());
    }
    faults.into_iter().next().map_or(Ok(()), Err)
}

/// gosync-dist: `sessions` sessions on `client`, each looping lock → critical section →
/// unlock on one `Mutex` for `dur`. Each session locks and unlocks once before the window
/// opens (its watch is open by then).
pub async fn gosync_handoff(
    client: Client,
    pfx: String,
    sessions: usize,
    dur: Duration,
) -> Outcome {
    let mut held = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let s = Session::new(&client).await?;
        let m = Mutex::new(&s, pfx.as_str());
        m.lock().await?;
        m.unlock().await?;
        held.push((s, m));
    }
    let start = Instant::now();
    let referee = Arc::new(Referee::new(sessions, start + dur, "fencing token"));
    let mut tasks = Vec::with_capacity(sessions);
    let mut session_handles = Vec::with_capacity(sessions);
    for (me, (s, m)) in held.into_iter().enumerate() {
        session_handles.push(s);
        let r = referee.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let called = Instant::now();
                if called >= r.end() {
                    return Ok(());
                }
                tokio::select! {
                    res = m.lock() => res?,
                    _ = window_end(&r) => return Ok(()),
                }
                let got = Instant::now();
                r.enter(me, called, got, m.fencing_token().unwrap_or(0))?;
                critical_section().await;
                r.leave(me);
                m.unlock().await?;
            }
        }));
    }
    let mut results = Vec::with_capacity(sessions);
    for t in tasks {
        results.push(
            t.await
                .unwrap_or_else(|e| Err(Fault::Failed(format!("session task: {e}")))),
        );
    }
    for s in &session_handles {
        let _ = s.close().await;
    }
    first_fault(results)?;
    referee.finish(dur)
}

/// etcd's v3lock RPC: `sessions` leases on one connection, each looping Lock → critical
/// section → Unlock on one lock name for `dur`. Each locks and unlocks once first.
pub async fn rpc_handoff(
    client: etcd_client::Client,
    name: String,
    sessions: usize,
    dur: Duration,
) -> Outcome {
    let mut leases = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let mut c = client.clone();
        let lease = c.lease_grant(RPC_LEASE_TTL, None).await?.id();
        let resp = c
            .lock(name.as_str(), Some(LockOptions::new().with_lease(lease)))
            .await?;
        c.unlock(resp.key()).await?;
        leases.push(lease);
    }
    let start = Instant::now();
    let referee = Arc::new(Referee::new(sessions, start + dur, "acquisition revision"));
    let mut tasks = Vec::with_capacity(sessions);
    for (me, &lease) in leases.iter().enumerate() {
        let r = referee.clone();
        let mut c = client.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let called = Instant::now();
                if called >= r.end() {
                    return Ok(());
                }
                let opts = Some(LockOptions::new().with_lease(lease));
                let resp = tokio::select! {
                    res = c.lock(name.as_str(), opts) => res?,
                    _ = window_end(&r) => return Ok(()),
                };
                let got = Instant::now();
                let rev = resp.header().map_or(0, |h| h.revision());
                r.enter(me, called, got, rev)?;
                critical_section().await;
                r.leave(me);
                c.unlock(resp.key()).await?;
            }
        }));
    }
    let mut results = Vec::with_capacity(sessions);
    for t in tasks {
        results.push(
            t.await
                .unwrap_or_else(|e| Err(Fault::Failed(format!("session task: {e}")))),
        );
    }
    let mut c = client.clone();
    for lease in leases {
        let _ = c.lease_revoke(lease).await;
    }
    first_fault(results)?;
    referee.finish(dur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = Latency::of(d).unwrap();
        assert_eq!((l.n, l.p50, l.p90, l.p99), (100, 50.0, 90.0, 99.0));
        let one = Latency::of(vec![Duration::from_millis(7)]).unwrap();
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert!(Latency::of(Vec::new()).is_none());
    }

    #[test]
    fn referee_catches_overlap_and_disorder() {
        let now = Instant::now();
        let r = Referee::new(2, now + Duration::from_secs(60), "token");
        r.enter(0, now, now, 5).unwrap();
        assert!(matches!(
            r.enter(1, now, now, 6),
            Err(Fault::Violation(m)) if m.contains("mutual exclusion")
        ));
        let r = Referee::new(2, now + Duration::from_secs(60), "token");
        r.enter(0, now, now, 5).unwrap();
        r.leave(0);
        assert!(matches!(
            r.enter(1, now, now, 5),
            Err(Fault::Violation(m)) if m.contains("FIFO")
        ));
    }

    #[test]
    fn referee_times_only_waiting_owners_and_counts() {
        let t0 = Instant::now();
        let r = Referee::new(2, t0 + Duration::from_secs(60), "token");
        r.enter(0, t0, t0, 1).unwrap();
        r.leave(0);
        // Session 1 called lock before the unlock: a timed hand-off.
        let got = Instant::now();
        r.enter(1, t0, got, 2).unwrap();
        r.leave(1);
        // Session 1 again, called after its own unlock: not a hand-off.
        let later = Instant::now();
        r.enter(1, later, later, 3).unwrap();
        r.leave(1);
        let run = r.finish(Duration::from_secs(1)).unwrap();
        let shares = run.shares.unwrap();
        assert!((shares.min - 2.0 / 3.0).abs() < 1e-9 && (shares.max - 4.0 / 3.0).abs() < 1e-9);
        assert_eq!(run.ops, 3);
        assert_eq!(run.latency.unwrap().n, 1);
    }
}
