//! # gosync — Go's concurrency toolkit, for threads and async tasks alike
//!
//! gosync brings the primitives of Go's `sync` and `context` packages and Go's channels to
//! Rust with Go's semantics — a mutex with starvation mode, a writer-preferring read-write
//! mutex, condition variables over any locker, wait groups, once, cancellable contexts,
//! channels with close, rendezvous and `select` — and one promise Go gets
//! for free from its runtime: **every blocking operation works from OS threads and from async
//! tasks on any executor, on the same object**. `lock()` parks a thread; `lock_async().await`
//! suspends a task; both wait in the same FIFO queue and hand off to each other.
//!
//! Modules mirror Go's packages, so a Go user finds things where they expect them:
//!
//! | Go                     | gosync                                  |
//! |------------------------|-----------------------------------------|
//! | `sync.Mutex`           | [`sync::Mutex`], [`sync::RawMutex`]     |
//! | `sync.RWMutex`         | [`sync::RwMutex`], [`sync::RawRwMutex`] |
//! | `sync.Cond`            | [`sync::Cond`]                          |
//! | `sync.WaitGroup`       | [`sync::WaitGroup`]                     |
//! | `sync.Once`            | [`sync::Once`]                          |
//! | `sync.Pool`            | [`sync::Pool`]                          |
//! | `context.Context`      | [`context::Context`]                    |
//! | `semaphore.Weighted` (x/sync) | [`semaphore::Weighted`]          |
//! | `singleflight.Group` (x/sync) | [`singleflight::Group`]          |
//! | `errgroup.Group` (x/sync) | [`errgroup::Group`] (threads), [`errgroup::TaskGroup`] (tasks) |
//! | the course's `RecursiveMutex`, `TokenRecursiveMutex` | [`reentrant::ReentrantMutex`], [`reentrant::TokenMutex`] |
//! | the course's `SpinLock` | [`spin::SpinLock`], [`spin::RawSpinLock`] |
//! | juju/fslock's `Lock` (across processes) | [`filelock::FileLock`]   |
//! | orcaman/concurrent-map | [`sharded::Map`]                        |
//! | `chan T`, `make(chan T, n)`, `close` | [`chan::Chan`], [`chan::Sender`], [`chan::Receiver`] |
//! | `select`               | [`select!`], [`select_async!`], [`chan::Select`] (`reflect.Select`) |
//! | `time.After`, `time.NewTimer`, `time.NewTicker` | [`time::after`], [`time::Timer`], [`time::Ticker`] |
//! | the channel patterns (or-done, fan-in, tee, pipeline, ...) | [`pattern`] |
//!
//! ## Conventions
//!
//! * The blocking form has Go's name in snake case (`lock`, `wait`), the async form adds
//!   `_async` and returns a `#[must_use]` future, the non-blocking form has a `try_` prefix.
//! * Async futures are **cancel-safe**: dropping one loses no lock and no wake-up; whatever it
//!   had been handed passes to the next waiter.
//! * Misuse that Go treats as a run-time error panics with Go's message, e.g.
//!   `"sync: unlock of unlocked mutex"`. Runtime conditions are `Result`s.
//! * No poisoning: a panic while holding a lock releases it, as in Go.
//!
//! ```
//! use gosync::sync::{Mutex, WaitGroup};
//! use std::sync::Arc;
//!
//! let counter = Arc::new(Mutex::new(0));
//! let wg = WaitGroup::new();
//! for _ in 0..4 {
//!     wg.add(1);
//!     let (counter, wg) = (counter.clone(), wg.clone());
//!     std::thread::spawn(move || {
//!         *counter.lock() += 1;
//!         wg.done();
//!     });
//! }
//! wg.wait();
//! assert_eq!(*counter.lock(), 4);
//! ```

#![warn(missing_docs)]

pub(crate) mod loom;
pub(crate) mod sema;
pub(crate) mod timer;

pub use sema::{WaitKind, WaitRecord};

/// Under loom, makes every waiter count as starved, so models explore the hand-off paths.
#[cfg(loom)]
#[doc(hidden)]
pub fn __loom_force_starvation(on: bool) {
    loom::FORCE_STARVED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Under loom, moves the clock forward by `d` (time does not pass by itself under loom), so a
/// model can make one waiter starved and another not.
#[cfg(loom)]
#[doc(hidden)]
pub fn __loom_clock_advance(d: std::time::Duration) {
    loom::CLOCK.fetch_add(d.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Under loom, puts the clock back where it started (call at the start of each model run).
#[cfg(loom)]
#[doc(hidden)]
pub fn __loom_clock_reset() {
    loom::CLOCK.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// Under loom, makes `select` poll its arms in reverse order instead of in order (the random
/// order of a normal build would make models non-deterministic).
#[cfg(loom)]
#[doc(hidden)]
pub fn __loom_select_reverse(on: bool) {
    chan::__loom_set_reverse(on);
}

pub mod chan;
pub mod context;
pub mod diag;
pub mod errgroup;
#[cfg(not(loom))]
pub mod filelock;
pub mod pattern;
pub mod reentrant;
pub mod semaphore;
pub mod sharded;
pub mod singleflight;
pub mod spin;
pub mod sync;
pub mod time;

mod macros;
