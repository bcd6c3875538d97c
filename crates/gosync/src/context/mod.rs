//! Go's `context` package: cancellation, deadlines and request-scoped values.
//!
//! A [`Context`] carries a cancellation signal, maybe a deadline, and values down a call tree.
//! Derive one from another with [`with_cancel`], [`with_deadline`], [`with_timeout`] or
//! [`with_value`]; cancelling a context cancels every context derived from it, and a context with
//! a deadline cancels itself when the deadline passes. A function that does long work takes a
//! `&Context` and stops when it is done — from a thread with [`Context::wait`] (or by checking
//! [`Context::err`]), from a task by awaiting [`Context::done`] or wrapping its work in
//! [`Context::run`]. A thread and a task may wait on the same context.
//!
//! | Go                                   | gosync                                       |
//! |--------------------------------------|----------------------------------------------|
//! | `context.Background()`, `TODO()`     | [`background`], [`todo()`]                   |
//! | `context.WithCancel(parent)`         | [`with_cancel`] → `(Context, CancelFunc)`    |
//! | `context.WithCancelCause(parent)`    | [`with_cancel_cause`]                        |
//! | `context.WithDeadline(parent, d)`    | [`with_deadline`], [`with_deadline_cause`]   |
//! | `context.WithTimeout(parent, t)`     | [`with_timeout`], [`with_timeout_cause`]     |
//! | `context.WithValue(parent, k, v)`    | [`with_value`] with a typed [`Key`]          |
//! | `context.WithoutCancel(parent)`      | [`without_cancel`]                           |
//! | `context.Cause(ctx)`                 | [`cause`], [`Context::cause`]                |
//! | `ctx.Err()`, `ctx.Deadline()`        | [`Context::err`], [`Context::deadline`]      |
//! | `ctx.Value(k)`                       | [`Context::value`]                           |
//! | `<-ctx.Done()`                       | [`Context::wait`] (thread), `ctx.done().await` (task) |
//! | `case <-ctx.Done():` in a `select`   | `recv(ctx.done()) -> _ => ...` in [`select!`](crate::select) |
//! | `ctx.Done()` as a channel value      | [`Context::done_chan`]                       |
//! | `context.Canceled`, `DeadlineExceeded` | [`ContextError`]                           |
//! | `cancel()`                           | [`CancelFunc::cancel`]                       |
//!
//! # Happens-before
//!
//! In the words of the Go memory model: a call of a cancel function, or a deadline firing,
//! synchronizes before any wait it releases returns ([`Context::wait`], a [`Done`] future
//! completing, [`Context::run`] returning `Err`), and before any call of [`Context::err`] (or
//! [`cause`]) that observes it returns. What the canceller wrote before cancelling is visible
//! to whoever sees the context done.
//!
//! As in Go, a call of a cancel function returns only once its context and every context
//! derived from it are done — even if another thread, or the deadline, got there first.
//!
//! # Differences from Go
//!
//! * **Nothing leaks when a cancel function is not called.** A parent keeps its children only
//!   weakly: a child whose every handle (contexts derived from it included) is dropped leaves
//!   its parent's bookkeeping and cancels its timer, cancelled or not. Calling the cancel
//!   function as soon as the work is over is still good practice — it releases waiters and
//!   children at once — but forgetting it is not a leak. Dropping a [`CancelFunc`] does not
//!   cancel.
//! * **Keys are typed.** A [`Key<T>`] is a `static` identity bound to its value type, so a
//!   lookup returns `Option<&T>` and keys from different modules cannot collide.
//! * **Errors are values.** [`Context::err`] returns `Option<ContextError>`; its `Display` is
//!   Go's: `"context canceled"`, `"context deadline exceeded"`. A cause is any
//!   `Error + Send + Sync`, shared as a [`Cause`].
//! * [`Context::done`] returns a [`Done`], not a channel: a future (and a blocking
//!   [`Done::wait`]) created per wait, that is also a receive case of `select!`. The channel
//!   itself, [`Context::done_chan`], is made only when asked for, as in Go; it closes once the
//!   context and everything derived from it are done (when [`Context::wait`] returns).
//!
//! # Timers
//!
//! Deadlines are kept by one timer thread for the whole process (`gosync-timer`, started on
//! first use), not a thread per context; a context that is cancelled or dropped before its
//! deadline removes its timer. The deadline fires at or after the instant given, as soon as
//! the system wakes the timer thread.
//!
//! # Cancel safety
//!
//! A dropped [`Done`] future leaves the context's wait queue; a dropped [`Context::run`] future
//! drops the future it runs. Neither loses anything, since a context's end is broadcast.
//!
//! ```
//! use gosync::context::{self, ContextError};
//! use std::time::Duration;
//!
//! /// Works until `ctx` is done, a step at a time; says why it stopped and how far it got.
//! fn worker(ctx: &context::Context) -> (ContextError, u32) {
//!     let mut steps = 0;
//!     loop {
//!         if let Some(err) = ctx.wait_timeout(Duration::from_millis(1)) {
//!             return (err, steps);
//!         }
//!         steps += 1;
//!     }
//! }
//!
//! let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_millis(20));
//! let handle = std::thread::spawn(move || worker(&ctx));
//! let (err, _steps) = handle.join().unwrap();
//! assert_eq!(err, ContextError::DeadlineExceeded);
//! cancel.cancel(); // already done: a no-op
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod bound;
mod cancel;
mod done;
mod handle;
mod key;
mod scope;

pub use bound::SendCtxError;
pub use cancel::{CancelCauseFunc, CancelFunc};
pub use done::Done;
pub(crate) use done::Watch;
pub use handle::Context;
use handle::{Entry, Kind};
pub use key::Key;
use scope::Scope;

/// Why a context is done: Go's `context.Canceled` and `context.DeadlineExceeded`.
///
/// ```
/// use gosync::context::ContextError;
///
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// assert_eq!(ContextError::DeadlineExceeded.to_string(), "context deadline exceeded");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ContextError {
    /// The context was cancelled by its cancel function or by its parent's.
    #[error("context canceled")]
    Canceled,
    /// The context's deadline passed (its own or an ancestor's).
    #[error("context deadline exceeded")]
    DeadlineExceeded,
}

impl ContextError {
    /// Whether this is [`ContextError::DeadlineExceeded`] (Go's `Timeout()`).
    ///
    /// ```
    /// assert!(gosync::context::ContextError::DeadlineExceeded.is_timeout());
    /// ```
    pub fn is_timeout(self) -> bool {
        self == ContextError::DeadlineExceeded
    }
}

/// Why a context was cancelled, as given to [`CancelCauseFunc::cancel`],
/// [`with_deadline_cause`] or [`with_timeout_cause`], or the [`ContextError`] itself when none
/// was given. Shared, so every context cancelled with it sees the same value.
///
/// ```
/// use gosync::context::{self, Cause};
///
/// let (ctx, cancel) = context::with_cancel_cause(&context::background());
/// cancel.cancel("shutting down");
/// let cause: Cause = context::cause(&ctx).unwrap();
/// assert_eq!(cause.to_string(), "shutting down");
/// ```
pub type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// The root context: never done, no deadline, no values (Go's `context.Background()`).
/// Every call returns a handle to the same context.
///
/// ```
/// let ctx = gosync::context::background();
/// assert_eq!(ctx.err(), None);
/// assert_eq!(ctx.deadline(), None);
/// assert_eq!(format!("{ctx:?}"), "context.Background");
/// ```
pub fn background() -> Context {
    #[cfg(not(loom))]
    {
        static BACKGROUND: std::sync::OnceLock<Context> = std::sync::OnceLock::new();
        BACKGROUND
            .get_or_init(|| Context::root(Kind::Background))
            .clone()
    }
    #[cfg(loom)]
    {
        Context::root(Kind::Background)
    }
}

/// A root context like [`background`], for code not yet told which context to use (Go's
/// `context.TODO()`). It differs from `background` only in its `Debug` form.
///
/// ```
/// let ctx = gosync::context::todo();
/// assert_eq!(ctx.err(), None);
/// assert_eq!(format!("{ctx:?}"), "context.TODO");
/// ```
pub fn todo() -> Context {
    #[cfg(not(loom))]
    {
        static TODO: std::sync::OnceLock<Context> = std::sync::OnceLock::new();
        TODO.get_or_init(|| Context::root(Kind::Todo)).clone()
    }
    #[cfg(loom)]
    {
        Context::root(Kind::Todo)
    }
}

/// A child of `parent` that is done when `cancel` is called or when `parent` is done, whichever
/// happens first (Go's `context.WithCancel`). A child of a context that is already done is
/// born done, with the parent's error and cause.
///
/// ```
/// use gosync::context::{self, ContextError};
///
/// let (parent, cancel_parent) = context::with_cancel(&context::background());
/// let (child, _cancel_child) = context::with_cancel(&parent);
/// cancel_parent.cancel();
/// assert_eq!(child.err(), Some(ContextError::Canceled));
/// ```
#[must_use]
#[track_caller]
pub fn with_cancel(parent: &Context) -> (Context, CancelFunc) {
    let scope = Scope::child(parent.scope(), None);
    let cancel = CancelFunc::new(&scope);
    (parent.derive(scope, Kind::Cancel), cancel)
}

/// Like [`with_cancel`], but the cancel function takes a cause, which [`cause`] reports
/// (Go's `context.WithCancelCause`).
///
/// ```
/// use gosync::context::{self, ContextError};
///
/// let (ctx, cancel) = context::with_cancel_cause(&context::background());
/// cancel.cancel("upstream failed");
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// assert_eq!(context::cause(&ctx).unwrap().to_string(), "upstream failed");
/// ```
#[must_use]
#[track_caller]
pub fn with_cancel_cause(parent: &Context) -> (Context, CancelCauseFunc) {
    let scope = Scope::child(parent.scope(), None);
    let cancel = CancelCauseFunc::new(&scope);
    (parent.derive(scope, Kind::Cancel), cancel)
}

/// A child of `parent` that is also cancelled, with [`ContextError::DeadlineExceeded`], once
/// `deadline` passes (Go's `context.WithDeadline`). If `parent`'s deadline is earlier, the
/// child keeps the parent's (Go makes it a plain `WithCancel`); if `deadline` has already
/// passed, the child is born done.
///
/// ```
/// use gosync::context::{self, ContextError};
/// use std::time::{Duration, Instant};
///
/// let (ctx, _cancel) = context::with_deadline(&context::background(), Instant::now());
/// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// ```
#[must_use]
#[track_caller]
pub fn with_deadline(parent: &Context, deadline: Instant) -> (Context, CancelFunc) {
    deadline_inner(parent, deadline, None)
}

/// Like [`with_deadline`], with the cause [`cause`] reports when the deadline passes (Go's
/// `context.WithDeadlineCause`). The cancel function itself sets no cause.
///
/// ```
/// use gosync::context::{self, ContextError};
/// use std::time::Instant;
///
/// let (ctx, _cancel) = context::with_deadline_cause(&context::background(), Instant::now(), "too slow");
/// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// assert_eq!(ctx.cause().unwrap().to_string(), "too slow");
/// ```
#[must_use]
#[track_caller]
pub fn with_deadline_cause(
    parent: &Context,
    deadline: Instant,
    cause: impl Into<Box<dyn Error + Send + Sync>>,
) -> (Context, CancelFunc) {
    deadline_inner(parent, deadline, Some(Arc::from(cause.into())))
}

fn deadline_inner(
    parent: &Context,
    deadline: Instant,
    cause: Option<Cause>,
) -> (Context, CancelFunc) {
    let ps = &parent.scope();
    if ps.deadline().is_some_and(|p| p <= deadline) {
        // The parent's deadline comes first and will cancel the child anyway.
        return with_cancel(parent);
    }
    let scope = Scope::child(ps, Some(deadline));
    scope.arm(deadline, cause);
    let cancel = CancelFunc::new(&scope);
    (parent.derive(scope, Kind::Deadline(deadline)), cancel)
}

/// [`with_deadline`]`(parent, now + timeout)` (Go's `context.WithTimeout`). A timeout too large
/// to represent means no deadline.
///
/// ```
/// use gosync::context::{self, ContextError};
/// use std::time::Duration;
///
/// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(10));
/// assert_eq!(ctx.wait(), ContextError::DeadlineExceeded);
/// ```
#[must_use]
#[track_caller]
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelFunc) {
    match Instant::now().checked_add(timeout) {
        Some(deadline) => with_deadline(parent, deadline),
        None => with_cancel(parent),
    }
}

/// [`with_deadline_cause`]`(parent, now + timeout, cause)` (Go's `context.WithTimeoutCause`).
///
/// ```
/// use gosync::context;
/// use std::time::Duration;
///
/// let (ctx, _cancel) =
///     context::with_timeout_cause(&context::background(), Duration::from_millis(5), "too slow");
/// ctx.wait();
/// assert_eq!(ctx.cause().unwrap().to_string(), "too slow");
/// ```
#[must_use]
#[track_caller]
pub fn with_timeout_cause(
    parent: &Context,
    timeout: Duration,
    cause: impl Into<Box<dyn Error + Send + Sync>>,
) -> (Context, CancelFunc) {
    match Instant::now().checked_add(timeout) {
        Some(deadline) => with_deadline_cause(parent, deadline, cause),
        None => with_cancel(parent),
    }
}

/// A child of `parent` that carries `value` under `key` and shares everything else with
/// `parent`: its cancellation, deadline and other values (Go's `context.WithValue`).
///
/// Use values for request-scoped data that crosses API boundaries (a request id, a trace),
/// not for optional parameters.
///
/// ```
/// use gosync::context::{self, Key};
///
/// static TRACE_ID: Key<u128> = Key::new("trace-id");
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// let ctx = context::with_value(&ctx, &TRACE_ID, 0xfeed);
/// assert_eq!(ctx.value(&TRACE_ID), Some(&0xfeed));
/// cancel.cancel();
/// assert!(ctx.err().is_some());
/// ```
#[must_use]
pub fn with_value<T: Send + Sync + 'static>(parent: &Context, key: &Key<T>, value: T) -> Context {
    let entry = Entry {
        key: key.id(),
        name: key.name(),
        value: Box::new(value),
    };
    parent.derive(parent.scope().clone(), Kind::Value(entry))
}

/// A child of `parent` that keeps its values but is never cancelled and has no deadline, even
/// when `parent` is (Go's `context.WithoutCancel`): for work that must outlive the request
/// that started it.
///
/// ```
/// use gosync::context::{self, Key};
///
/// static ID: Key<u32> = Key::new("id");
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// let ctx = context::with_value(&ctx, &ID, 1);
/// let detached = context::without_cancel(&ctx);
/// cancel.cancel();
/// assert!(ctx.err().is_some());
/// assert_eq!(detached.err(), None);
/// assert_eq!(detached.value(&ID), Some(&1));
/// ```
#[must_use]
pub fn without_cancel(parent: &Context) -> Context {
    parent.derive(Scope::root(), Kind::WithoutCancel)
}

/// Why `ctx` was cancelled (Go's `context.Cause`); the same as [`Context::cause`].
///
/// ```
/// use gosync::context;
///
/// let (ctx, cancel) = context::with_cancel_cause(&context::background());
/// let (child, _c) = context::with_cancel(&ctx);
/// assert!(context::cause(&child).is_none());
/// cancel.cancel(std::io::Error::other("disk full"));
/// assert_eq!(context::cause(&child).unwrap().to_string(), "disk full");
/// ```
pub fn cause(ctx: &Context) -> Option<Cause> {
    ctx.cause()
}
