//! Measurement loops shared by the families, and the round-robin that runs them.
//!
//! Two kinds of measurement:
//!
//! * **ns/op** ([`ns_per_op`], [`ns_per_op_async`]): one thread (or task) runs the body in
//!   batches of doubling size until the batches together took at least the target time; the
//!   result is total time / total iterations.
//! * **contended** ([`threads_contended`], [`tasks_contended`]): N threads (or tasks) are
//!   released together, run until a stop flag is set after a fixed duration, and report how
//!   many operations each did. The result is total Mops/s plus the min and max per-thread
//!   share (see [`Sample`]).
//!
//! [`run_rounds`] runs every implementation of one case once per round, rotating the order
//! each round, so that a slow spell of the (noisy) machine hits all implementations alike.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex as StdMutex};
use std::time::{Duration, Instant};

use crate::stats::Sample;
use crate::Config;

/// Largest batch of the ns/op loops.
const MAX_BATCH: u64 = 1 << 24;

/// Runs `body(n)` (which must perform n operations) with growing n until at least `target`
/// has passed in total; returns ns per operation.
pub fn ns_per_op(target: Duration, mut body: impl FnMut(u64)) -> Sample {
    let mut n = 1000;
    let mut iters = 0u64;
    let mut elapsed = Duration::ZERO;
    while elapsed < target {
        let t0 = Instant::now();
        body(n);
        elapsed += t0.elapsed();
        iters += n;
        n = (n * 2).min(MAX_BATCH);
    }
    Sample::value(elapsed.as_nanos() as f64 / iters as f64)
}

/// As [`ns_per_op`], but inside a task spawned on `rt`: `body(n)` returns a future that
/// performs n operations.
pub fn ns_per_op_async<F, Fut>(
    rt: &tokio::runtime::Runtime,
    target: Duration,
    mut body: F,
) -> Sample
where
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let mut n = 1000;
            let mut iters = 0u64;
            let mut elapsed = Duration::ZERO;
            while elapsed < target {
                let t0 = Instant::now();
                body(n).await;
                elapsed += t0.elapsed();
                iters += n;
                n = (n * 2).min(MAX_BATCH);
            }
            Sample::value(elapsed.as_nanos() as f64 / iters as f64)
        })
        .await
        .expect("benchmark task panicked")
    })
}

/// Runs `worker(id, stop)` on `threads` threads released together, sets `stop` after `dur`,
/// and turns the operation counts the workers return into Mops/s and shares.
pub fn threads_contended<W>(threads: usize, dur: Duration, worker: W) -> Sample
where
    W: Fn(usize, &AtomicBool) -> u64 + Sync,
{
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1);
    let (counts, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|id| {
                let (stop, barrier, worker) = (&stop, &barrier, &worker);
                s.spawn(move || {
                    barrier.wait();
                    worker(id, stop)
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let elapsed = t0.elapsed();
        let counts: Vec<u64> = handles
            .into_iter()
            .map(|h| h.join().expect("benchmark thread panicked"))
            .collect();
        (counts, elapsed)
    });
    Sample::from_counts(&counts, elapsed)
}

/// As [`threads_contended`] for async tasks spawned on `rt`: `worker(id, stop)` returns the
/// future a task runs; it must loop until `stop` is set and return its operation count.
pub fn tasks_contended<W, Fut>(
    rt: &tokio::runtime::Runtime,
    tasks: usize,
    dur: Duration,
    worker: W,
) -> Sample
where
    W: Fn(usize, Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|id| {
                let barrier = barrier.clone();
                let work = worker(id, stop.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    work.await
                })
            })
            .collect();
        barrier.wait().await;
        let t0 = Instant::now();
        // This future runs on the calling thread, not on a worker: sleeping here blocks no task.
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let elapsed = t0.elapsed();
        let mut counts = Vec::with_capacity(tasks);
        for h in handles {
            counts.push(h.await.expect("benchmark task panicked"));
        }
        Sample::from_counts(&counts, elapsed)
    })
}

/// One implementation in one case: its row name, whether it is an anchor (every row except
/// gosync's), and the function measuring it once. `None` means "could not measure" (e.g. the
/// Go program failed); that round is left out.
pub struct Contender<'a> {
    /// Row name, e.g. `parking_lot::Mutex`.
    pub name: String,
    /// Anchors are what gosync is compared against.
    pub anchor: bool,
    /// Measures once.
    pub run: Box<dyn FnMut() -> Option<Sample> + 'a>,
}

impl<'a> Contender<'a> {
    /// gosync's own row (not an anchor).
    pub fn subject(name: &str, run: impl FnMut() -> Option<Sample> + 'a) -> Self {
        Contender {
            name: name.to_string(),
            anchor: false,
            run: Box::new(run),
        }
    }

    /// An anchor row.
    pub fn anchor(name: &str, run: impl FnMut() -> Option<Sample> + 'a) -> Self {
        Contender {
            name: name.to_string(),
            anchor: true,
            run: Box::new(run),
        }
    }
}

/// Runs each contender `cfg.rounds` times, alternating: round r runs every contender once,
/// starting at contender r (mod n), so no implementation always goes first. Returns the
/// samples per contender, in the order given.
pub fn run_rounds(
    cfg: &Config,
    family: &str,
    case: &str,
    contenders: &mut [Contender<'_>],
) -> Vec<Vec<Sample>> {
    let n = contenders.len();
    let mut samples = vec![Vec::with_capacity(cfg.rounds); n];
    for round in 0..cfg.rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let c = &mut contenders[i];
            progress(
                cfg,
                &format!(
                    "[{family}] {case}: {} round {}/{}",
                    c.name,
                    round + 1,
                    cfg.rounds
                ),
            );
            if let Some(s) = (c.run)() {
                samples[i].push(s);
            }
        }
    }
    samples
}

/// What the run is doing and since when, for the watchdog.
static CURRENT: StdMutex<Option<(Instant, String)>> = StdMutex::new(None);

/// Starts a thread that ends the process (exit code 3) with a message naming the measurement
/// when no measurement has started for `limit`: a primitive that deadlocks must not hang
/// the run (or CI) forever.
pub fn start_watchdog(limit: Duration) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), "start".into()));
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((since, what)) = &*cur {
                if since.elapsed() > limit {
                    eprintln!(
                        "\nerror: no progress for {} s in \"{what}\": probable deadlock or lost wake-up; aborting",
                        limit.as_secs()
                    );
                    std::process::exit(3);
                }
            }
        })
        .expect("cannot start the watchdog thread");
}

/// Shows a progress line on stderr: overwritten in place on a terminal, one line each otherwise.
pub fn progress(cfg: &Config, line: &str) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), line.to_string()));
    if cfg.quiet {
        return;
    }
    let mut err = std::io::stderr().lock();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[K{line}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

/// Clears the in-place progress line (if any) before a table is printed.
pub fn progress_done(cfg: &Config) {
    if cfg.quiet {
        return;
    }
    let mut err = std::io::stderr().lock();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_per_op_counts_iterations() {
        let mut total = 0u64;
        let s = ns_per_op(Duration::from_millis(5), |n| {
            for _ in 0..n {
                total = std::hint::black_box(total + 1);
            }
        });
        assert!(total >= 1000);
        assert!(s.value > 0.0 && s.value.is_finite());
    }

    #[test]
    fn contended_reports_every_thread() {
        let s = threads_contended(3, Duration::from_millis(20), |_, stop| {
            let mut ops = 0;
            while !stop.load(Ordering::Relaxed) {
                ops += 1;
                std::hint::spin_loop();
            }
            ops
        });
        let shares = s.shares.expect("three threads did work");
        assert!(shares.min <= 1.0 && shares.max >= 1.0);
        assert!(s.value > 0.0);
    }

    #[test]
    fn tasks_contended_reports_every_task() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let s = tasks_contended(&rt, 4, Duration::from_millis(20), |_, stop| async move {
            let mut ops = 0;
            while !stop.load(Ordering::Relaxed) {
                ops += 1;
                tokio::task::yield_now().await;
            }
            ops
        });
        assert!(s.shares.is_some());
    }
}
