//! Groups of threads or tasks working on parts of one job, with the first error reported and
//! the others told to stop, as Go's `golang.org/x/sync/errgroup`.
//!
//! A group runs functions that return `Result<(), E>` and waits for all of them; `wait`
//! returns the first error. A group made with `with_context` also derives a
//! [`Context`](crate::context::Context) that is cancelled, with that error as its
//! [cause](crate::context::Context::cause), the moment the first function fails, so the others
//! can stop early. A limit caps how many functions run at once.
//!
//! There are two flavours with one API:
//!
//! * [`Group`] runs each function on an OS thread of its own, as Go's `Go` starts a
//!   goroutine: an idle thread of a process-wide pool, or a new one if none is idle (see
//!   [pooled threads](Group#pooled-threads): reused threads keep their thread-locals, idle
//!   ones exit after 10 s).
//! * [`scope`] (and [`scope_with_context`]) is the thread flavour with
//!   [`std::thread::scope`]'s borrowing: the functions may borrow from the caller, since every
//!   thread is joined before `scope` returns (so these are new scoped threads, not pooled
//!   ones).
//! * [`TaskGroup`] runs futures **without a runtime**: the futures live in the group, and
//!   whoever awaits [`TaskGroup::wait_async`] (or blocks in [`TaskGroup::wait`]) polls them,
//!   each woken future alone, as `FuturesUnordered` would. Nothing is spawned, so it works on
//!   any executor, and its futures may borrow from the caller's stack: a `TaskGroup<'a, E>`
//!   holds futures that live for `'a`.
//!
//! | Go (`errgroup`)                 | gosync                                                       |
//! |---------------------------------|--------------------------------------------------------------|
//! | `var g errgroup.Group`          | [`Group::new`], [`TaskGroup::new`]                           |
//! | `errgroup.WithContext(ctx)`     | [`Group::with_context`], [`TaskGroup::with_context`] → `(group, ctx)` |
//! | `g.Go(f)`                       | [`Group::go`] (blocks for a free slot), `TaskGroup::go(fut).await` |
//! | `g.TryGo(f)`                    | [`Group::try_go`], [`TaskGroup::try_go`]                     |
//! | `g.SetLimit(n)`, `SetLimit(-1)` | `set_limit(Some(n))`, `set_limit(None)`                      |
//! | `g.Wait()`                      | [`Group::wait`], [`Group::wait_async`], [`TaskGroup::wait_async`], [`TaskGroup::wait`] |
//! | — (borrowing functions)         | [`scope`]`(\|s\| { s.go(..); })`, [`scope_with_context`] → `Result<R, E>` |
//!
//! # Errors
//!
//! A group is generic over its error type `E`: no boxing. `wait` returns a clone of the first
//! error (so `E: Clone`) and keeps it, as Go's `Wait` returns the same first error every time it
//! is called. For a derived context the error must also convert into a
//! `Box<dyn Error + Send + Sync>` (every `Error + Send + Sync + 'static` type does, and so do
//! `String` and `&'static str`): the context's cause is then the error itself, so
//! `ctx.cause().unwrap().downcast_ref::<E>()` gets it back. For an error type that is not
//! `Clone` (`std::io::Error`), use `Arc<E>` or [`Cause`](crate::context::Cause)
//! (`Arc<dyn Error + Send + Sync>`).
//!
//! When every function has succeeded, `wait` still cancels the derived context, with
//! [`ContextError::Canceled`] as its cause, as Go does.
//!
//! # Panics
//!
//! Go's errgroup lets a panicking goroutine crash the program. In Rust a panicking thread does
//! not take the program down, so a panic would otherwise be lost; instead, as
//! `std::thread::scope` does, the group catches it, lets the other functions run to
//! completion, and `wait` re-raises it with its original payload
//! ([`std::panic::resume_unwind`]) once they have. The first panic wins; later ones are
//! dropped (each is still reported by the panic hook when it happens). A panic also cancels
//! the derived context, with a [`PanicError`] as the cause, so the others can stop early.
//! A panic is re-raised by one `wait` only; a later `wait` returns the first error as usual.
//!
//! # Limits
//!
//! `set_limit(Some(n))` lets at most `n` functions run at once: [`Group::go`] then blocks (and
//! [`TaskGroup::go`] waits) until one finishes, and `try_go` returns `false` instead.
//! `set_limit(Some(0))` refuses everything: `try_go` always returns `false` and `go` waits
//! forever, as in Go. `set_limit(None)` removes the limit (Go's negative `n`). Changing the
//! limit to `Some(n)` while functions started under the previous limit still run is a misuse,
//! and panics with Go's message, `"errgroup: modify limit while N goroutines in the group are
//! still active"`. As in Go, functions started while there was no limit do not count.
//!
//! # Happens-before
//!
//! In the words of the Go memory model: the return of every function (or the completion of
//! every future) passed to `go` or `try_go` synchronizes before the return of the `wait` that
//! waits for it, and the return of the first failing function synchronizes before the derived
//! context is seen done.
//!
//! # Misuse
//!
//! As in Go, the first `go` of a round must happen before its `wait` (a [`Group`] counts with
//! a [`WaitGroup`](crate::sync::WaitGroup), whose misuse panics apply), and a group may be
//! reused after `wait` returns, but it keeps its first error and its cancelled context: make a
//! new group for a new job. Calling `wait` from inside one of the group's own functions waits
//! for itself forever, as in Go.
//!
//! ```
//! use gosync::context;
//! use gosync::errgroup::Group;
//!
//! let (g, ctx) = Group::<String>::with_context(&context::background());
//! for i in 0..4 {
//!     let ctx = ctx.clone();
//!     g.go(move || {
//!         if i == 2 {
//!             return Err(format!("part {i} failed"));
//!         }
//!         ctx.wait(); // the others stop when one fails
//!         Ok(())
//!     });
//! }
//! assert_eq!(g.wait(), Err("part 2 failed".to_string()));
//! assert_eq!(ctx.cause().unwrap().to_string(), "part 2 failed");
//! ```

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::context::{CancelCauseFunc, ContextError};
use crate::sema::{lock_unpoisoned as lock, panic_message, Payload};

mod group;
#[cfg(not(loom))]
mod pool;
mod task;

pub use group::{scope, scope_with_context, Group, Scope, WaitFuture};
#[cfg(not(loom))]
#[doc(hidden)]
pub use pool::set_keep_alive as __set_pool_keep_alive;
pub use task::{GoFuture, TaskGroup, TaskWaitFuture};

/// The cause a group's derived context is cancelled with when one of its functions panics.
///
/// ```
/// use gosync::context;
/// use gosync::errgroup::{Group, PanicError};
///
/// let (g, ctx) = Group::<String>::with_context(&context::background());
/// g.go(|| panic!("boom"));
/// # let hook = std::panic::take_hook();
/// # std::panic::set_hook(Box::new(|_| {}));
/// let waited = std::panic::catch_unwind(|| g.wait());
/// # std::panic::set_hook(hook);
/// assert!(waited.is_err()); // `wait` re-raised the panic
/// let cause = ctx.cause().unwrap();
/// assert_eq!(cause.downcast_ref::<PanicError>().unwrap().message(), "boom");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicError {
    message: String,
}

impl PanicError {
    /// The panic's message (its payload, if that was a string).
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::errgroup::{PanicError, TaskGroup};
    ///
    /// let (g, ctx) = TaskGroup::<String>::with_context(&context::background());
    /// assert!(g.try_go(async { panic!("disk on fire") }));
    /// # let hook = std::panic::take_hook();
    /// # std::panic::set_hook(Box::new(|_| {}));
    /// assert!(std::panic::catch_unwind(|| g.wait()).is_err());
    /// # std::panic::set_hook(hook);
    /// let cause = ctx.cause().unwrap();
    /// let panic = cause.downcast_ref::<PanicError>().unwrap();
    /// assert_eq!(panic.message(), "disk on fire");
    /// assert_eq!(panic.to_string(), "errgroup: a function panicked: disk on fire");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errgroup: a function panicked: {}", self.message)
    }
}

impl Error for PanicError {}

/// Go's panic message for changing the limit while functions run.
#[cold]
#[inline(never)]
#[track_caller]
fn modify_limit_panic(active: usize) -> ! {
    panic!("errgroup: modify limit while {active} goroutines in the group are still active")
}

/// How the derived context is cancelled: its cancel function, and how to make a cause of `E`
/// (monomorphised where the bounds are known, so the group itself needs none).
struct Canceller<E> {
    cancel: CancelCauseFunc,
    cause: fn(&E) -> Box<dyn Error + Send + Sync>,
}

fn cause_of<E: Clone + Into<Box<dyn Error + Send + Sync>>>(e: &E) -> Box<dyn Error + Send + Sync> {
    e.clone().into()
}

/// What a group's functions produced: the first error, the first panic, and the derived
/// context to cancel.
struct Outcome<E> {
    err: OnceLock<E>,
    panic: Mutex<Option<Payload>>,
    /// Whether `panic` may hold a payload (spares `finish` the lock when none does).
    panicked: AtomicBool,
    cancel: Option<Canceller<E>>,
}

impl<E> Outcome<E> {
    fn new(cancel: Option<Canceller<E>>) -> Self {
        Outcome {
            err: OnceLock::new(),
            panic: Mutex::new(None),
            panicked: AtomicBool::new(false),
            cancel,
        }
    }

    fn with_cancel(cancel: CancelCauseFunc) -> Self
    where
        E: Clone + Into<Box<dyn Error + Send + Sync>>,
    {
        Outcome::new(Some(Canceller {
            cancel,
            cause: cause_of::<E>,
        }))
    }

    /// Records what one function returned: the first error is kept and cancels the context.
    fn record(&self, result: Result<(), E>) {
        if let Err(e) = result {
            if self.err.set(e).is_ok() {
                if let (Some(c), Some(e)) = (&self.cancel, self.err.get()) {
                    c.cancel.cancel((c.cause)(e));
                }
            }
        }
    }

    /// Records a function's panic: the first one is kept (for `wait` to re-raise) and cancels
    /// the context.
    fn record_panic(&self, payload: Payload) {
        let message = panic_message(&*payload);
        let first = {
            let mut p = lock(&self.panic);
            let first = p.is_none();
            if first {
                *p = Some(payload);
                self.panicked.store(true, Ordering::Relaxed);
            }
            first
        };
        if first {
            if let Some(c) = &self.cancel {
                c.cancel.cancel(PanicError { message });
            }
        }
    }

    /// Runs `f`, recording its error or panic.
    fn run(&self, f: impl FnOnce() -> Result<(), E>) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => self.record(r),
            Err(p) => self.record_panic(p),
        }
    }

    /// Every function has returned: cancel the context (Go's `Wait`), re-raise a panic, or
    /// report the first error.
    fn finish(&self) -> Result<(), E>
    where
        E: Clone,
    {
        if let Some(c) = &self.cancel {
            // A no-op if the first error (or a panic) cancelled it already.
            c.cancel.cancel(ContextError::Canceled);
        }
        // Relaxed: every function's end happens before this call (the wait's edge).
        if self.panicked.load(Ordering::Relaxed) {
            let panic = lock(&self.panic).take();
            if let Some(p) = panic {
                std::panic::resume_unwind(p);
            }
        }
        match self.err.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn has_failed(&self) -> bool {
        self.err.get().is_some()
    }
}
