//! What every scenario shares: the way it prints, the clock it prints against, sleeps that
//! `--fast` shortens, an async runtime, and catching the panics that misuse scenarios provoke.
//!
//! Every line goes out in one write under the stdout lock, so events printed by many threads
//! and tasks never interleave within a line.

use std::any::Any;
use std::future::Future;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static FAST: AtomicBool = AtomicBool::new(false);
static START: Mutex<Option<Instant>> = Mutex::new(None);

/// Turns `--fast` on: sleeps shrink to a fifth.
pub fn set_fast(on: bool) {
    FAST.store(on, Relaxed);
}

/// `ms` milliseconds, shortened under `--fast` (to a fifth, at least one millisecond).
pub fn ms(ms: u64) -> Duration {
    if FAST.load(Relaxed) {
        Duration::from_millis((ms / 5).max(1))
    } else {
        Duration::from_millis(ms)
    }
}

/// Sleeps the calling thread for [`ms`]`(n)`.
pub fn nap(n: u64) {
    std::thread::sleep(ms(n));
}

/// Sleeps the calling task for [`ms`]`(n)`.
pub async fn nap_async(n: u64) {
    tokio::time::sleep(ms(n)).await;
}

/// The time since the current scenario began.
pub fn elapsed() -> Duration {
    START
        .lock()
        .unwrap()
        .map_or(Duration::ZERO, |t| t.elapsed())
}

/// Prints a scenario's header and starts its clock.
pub fn header(n: usize, of: usize, id: &str, title: &str, go: &str, watch: &str) {
    println!();
    println!("=== [{n}/{of}] {id} === {title}");
    println!("    Go:    {go}");
    println!("    watch: {watch}");
    *START.lock().unwrap() = Some(Instant::now());
}

/// Prints a step within a scenario.
pub fn step(what: &str) {
    println!("  -- {what}");
}

/// Prints an event: when (since the scenario began), who, what.
pub fn say(who: &str, what: impl AsRef<str>) {
    // Read the clock under the stdout lock, so that the printed times never go backwards.
    let mut out = std::io::stdout().lock();
    let t = elapsed().as_secs_f64() * 1000.0;
    writeln!(out, "  {t:>8.1}ms  {who:<13} {}", what.as_ref()).expect("stdout is writable");
}

/// Prints a scenario's one-line conclusion.
pub fn conclude(what: &str) {
    println!("  => {what}");
}

/// Polls `cond` every millisecond until it holds; `false` if it still does not after five
/// seconds (the scenario then goes on and prints what it sees).
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + Duration::from_secs(5);
    while !cond() {
        if Instant::now() > give_up {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// A multi-threaded tokio runtime with two workers, for the async side of a scenario.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `fut` to completion on `rt` from the calling thread.
pub fn block_on<F: Future>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output {
    rt.block_on(fut)
}

type Hook = Box<dyn Fn(&panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Panics that happened while the hook was silenced, for the failure report.
static SILENCED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// While alive, panics print nothing (the scenario prints what it caught); the previous panic
/// hook comes back on drop. If the scenario itself fails meanwhile, the drop prints every
/// panic that was silenced, so the failure is not lost.
pub struct QuietPanics {
    previous: Option<Hook>,
}

/// Silences the panic hook until the returned value is dropped.
pub fn quiet_panics() -> QuietPanics {
    let previous = panic::take_hook();
    SILENCED.lock().unwrap_or_else(|e| e.into_inner()).clear();
    panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let line = format!(
            "thread '{}' panicked at {}: {}",
            thread.name().unwrap_or("<unnamed>"),
            info.location().map_or("?".to_string(), |l| l.to_string()),
            message(info.payload())
        );
        SILENCED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }));
    QuietPanics {
        previous: Some(previous),
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // `set_hook` may not be called while this thread unwinds: the tour is failing.
            eprintln!("the tour failed; panics while the panic hook was silenced:");
            for line in SILENCED.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                eprintln!("  {line}");
            }
            return;
        }
        if let Some(previous) = self.previous.take() {
            panic::set_hook(previous);
        }
    }
}

/// Runs `f`, catching a panic: `Err` holds the panic message.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| message(&*p))
}

/// The message of a panic payload.
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// A pseudo-random number in `0..n` (xorshift, seeded from the clock): enough for jitter.
pub fn random(n: u64) -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Relaxed);
    x % n.max(1)
}
