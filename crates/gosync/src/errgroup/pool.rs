//! The process-wide pool of idle OS threads that [`Group::go`](super::Group::go) hands its
//! functions to, so that a `go` costs a hand-off rather than a thread spawn.
//!
//! # What it does
//!
//! * [`execute`] gives a job to the worker that went idle **last** (a stack, as Go's runtime
//!   keeps its idle Ms): the hottest thread, with its stack in cache, does the work, and the
//!   workers at the bottom of the stack stay idle long enough to leave. If no worker is idle, it
//!   spawns a new one, so the pool grows to whatever number of functions run at once — a
//!   function that blocks forever ties up its own worker and nothing else.
//! * A worker that has been idle for the keep-alive (10 s; tests change it with [`set_keep_alive`])
//!   exits, so a process that stops using groups is left with no pool threads.
//! * A worker puts itself back on the idle stack **before** it drops the finished job, and a
//!   job signals its completion from its `Drop` (the group counts the function done there). So
//!   by the time `wait` returns, every worker of the round is idle again: the next round's `go`s
//!   find them, instead of racing them and spawning extra threads.
//! * A panic escaping a job (the group catches the function's own panics; this is a second
//!   line) is caught and dropped — the panic hook has reported it — and the worker carries on.
//!
//! # Why `std::sync::Mutex` + `Condvar`, not the library's own waiting
//!
//! Everything that blocks in gosync is visible to [`diag::blocked`](crate::diag::blocked),
//! because those are the user's waits: a thread stuck in `recv` is what a deadlock report must
//! show. An idle pool worker is not a user wait — it is a spare thread, like the idle Ms that a
//! Go goroutine dump does not list — and it would sit in the report for up to the keep-alive
//! after every use of a group, as noise in every "what is blocked?" look. And a hand-off never
//! waits (a `go` either finds an idle worker or spawns one), so there is no blocked hand-off to
//! report either. What *is* a user wait — `go` blocking on the limit, `wait` on the
//! [`WaitGroup`](crate::sync::WaitGroup) — still uses the library's primitives and shows. The
//! pool also needs a timed park (the keep-alive), which `Condvar::wait_timeout` is.
//!
//! # What a job may see of earlier ones
//!
//! As on any thread pool: the thread-locals a job sets stay on its worker and may be seen by
//! the next job that runs there (their destructors run when the worker exits, after its
//! keep-alive, not when the job ends); the thread is named [`NAME`] for every job; a pending
//! `unpark` token may be left for the next job (`park` allows spurious returns anyway).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use std::{io, thread};

use super::lock;

/// The name of every pool thread (seen in panic messages and debuggers).
pub(crate) const NAME: &str = "gosync-errgroup";

/// How long an idle worker waits for a job before it exits, unless changed.
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Work for a pool thread.
///
/// [`run`](Job::run) does the work; the job is dropped after its worker is back on the idle
/// stack, so a `Drop` that signals completion (as the group's does) never finds the worker
/// still busy.
pub(crate) trait Job: Send + 'static {
    /// Does the work (once).
    fn run(&mut self);
}

/// One worker's mailbox: the job handed to it while it is idle.
struct Mailbox {
    job: Mutex<Option<Box<dyn Job>>>,
    ready: Condvar,
}

/// The idle workers, the most recently idle last.
static IDLE: Mutex<Vec<Arc<Mailbox>>> = Mutex::new(Vec::new());

/// The keep-alive, in nanoseconds.
static KEEP_ALIVE: AtomicU64 = AtomicU64::new(DEFAULT_KEEP_ALIVE.as_nanos() as u64);

fn keep_alive() -> Duration {
    Duration::from_nanos(KEEP_ALIVE.load(Ordering::Relaxed))
}

/// Sets how long an idle pool thread of [`Group`](super::Group) lingers before it exits
/// (10 s unless set; at most ~584 years); returns the previous value. Process-wide; idle
/// threads re-check their deadline at once.
///
/// **Not part of the API** (hidden from the docs, may change or go): it is there for tests,
/// which set it short to see the pool shrink.
///
/// ```
/// use std::time::Duration;
///
/// let old = gosync::errgroup::__set_pool_keep_alive(Duration::from_millis(50));
/// assert_eq!(old, Duration::from_secs(10));
/// gosync::errgroup::__set_pool_keep_alive(old);
/// ```
#[doc(hidden)]
pub fn set_keep_alive(d: Duration) -> Duration {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let old = Duration::from_nanos(KEEP_ALIVE.swap(nanos, Ordering::Relaxed));
    for mb in lock(&IDLE).iter() {
        // Under its lock, so a worker between its check and its wait does not miss this.
        let _slot = lock(&mb.job);
        mb.ready.notify_one();
    }
    old
}

/// Runs `job` on an idle pool thread, or on a new one if none is idle.
///
/// # Errors
///
/// If a thread had to be spawned and could not be; `job` has been dropped then (so its `Drop`
/// has undone whatever it stands for).
pub(crate) fn execute(job: Box<dyn Job>) -> io::Result<()> {
    let idle = lock(&IDLE).pop();
    match idle {
        Some(mb) => {
            // Popped, so this worker is ours: it waits for this very job (see `next_job`).
            *lock(&mb.job) = Some(job);
            mb.ready.notify_one();
            Ok(())
        }
        None => {
            let mb = Arc::new(Mailbox {
                job: Mutex::new(None),
                ready: Condvar::new(),
            });
            // On failure the closure, and the job in it, is dropped.
            thread::Builder::new()
                .name(NAME.to_string())
                .spawn(move || work(mb, job))
                .map(drop)
        }
    }
}

/// A worker's life: run a job, go idle, take the next, until idle for the keep-alive.
fn work(mb: Arc<Mailbox>, mut job: Box<dyn Job>) {
    loop {
        // A panic's payload is dropped: the hook has reported it, and the group keeps the
        // function's own panics itself.
        let _ = catch_unwind(AssertUnwindSafe(|| job.run()));
        lock(&IDLE).push(mb.clone());
        // Now the completion: the group may see the round finished, and its next `go` finds
        // this worker idle.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(job)));
        match next_job(&mb) {
            Some(next) => job = next,
            None => return,
        }
    }
}

/// Waits for a job in `mb`; `None` once idle for the keep-alive and off the idle stack.
fn next_job(mb: &Mailbox) -> Option<Box<dyn Job>> {
    let since = Instant::now();
    let mut slot = lock(&mb.job);
    loop {
        if let Some(job) = slot.take() {
            return Some(job);
        }
        let keep = keep_alive();
        let idle = since.elapsed();
        if idle < keep {
            slot = mb
                .ready
                .wait_timeout(slot, keep - idle)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        drop(slot);
        if leave(mb) {
            return None;
        }
        // A `go` popped this worker before it could leave: its job is on the way, and must
        // be run, so wait for it with no deadline.
        slot = lock(&mb.job);
        while slot.is_none() {
            slot = mb.ready.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Takes `mb` off the idle stack; `false` if it is not there (a `go` has claimed it).
fn leave(mb: &Mailbox) -> bool {
    let mut idle = lock(&IDLE);
    match idle.iter().position(|m| std::ptr::eq(&**m, mb)) {
        Some(i) => {
            // `remove`, not `swap_remove`: the stack's order is the order of idleness.
            idle.remove(i);
            true
        }
        None => false,
    }
}
