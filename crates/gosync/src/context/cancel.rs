//! Cancel functions.

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Weak};

use super::scope::Scope;
use super::ContextError;

/// Cancels the context made with it (Go's `context.CancelFunc`).
///
/// Calling it more than once does nothing more. Dropping it does **not** cancel; and since it
/// holds its context only weakly, keeping it does not keep a dropped context alive.
/// It is `Send + Sync + 'static` and cheap to clone.
///
/// ```
/// use gosync::context::{self, ContextError};
///
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// let other = cancel.clone();
/// std::thread::spawn(move || other.cancel()).join().unwrap();
/// cancel.cancel(); // no effect
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// ```
#[derive(Clone)]
pub struct CancelFunc {
    scope: Weak<Scope>,
}

impl CancelFunc {
    pub(super) fn new(scope: &Arc<Scope>) -> Self {
        CancelFunc {
            scope: Arc::downgrade(scope),
        }
    }

    /// Cancels the context and every context derived from it, with
    /// [`ContextError::Canceled`], unless it is done already.
    ///
    /// ```
    /// let (ctx, cancel) = gosync::context::with_cancel(&gosync::context::background());
    /// cancel.cancel();
    /// assert!(ctx.err().is_some());
    /// ```
    #[track_caller]
    pub fn cancel(&self) {
        if let Some(scope) = self.scope.upgrade() {
            scope.cancel(ContextError::Canceled, None);
        }
    }

    /// The cancel function as a closure, for APIs that take an `Fn()`.
    ///
    /// ```
    /// let (ctx, cancel) = gosync::context::with_cancel(&gosync::context::background());
    /// let f = cancel.into_fn();
    /// f();
    /// f();
    /// assert!(ctx.err().is_some());
    /// ```
    pub fn into_fn(self) -> impl Fn() + Send + Sync + 'static {
        move || self.cancel()
    }
}

impl fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelFunc")
            .field("live", &(self.scope.strong_count() > 0))
            .finish()
    }
}

/// Cancels the context made with it, recording a cause (Go's `context.CancelCauseFunc`).
///
/// Like [`CancelFunc`]: idempotent (only the first cause counts), does not cancel on drop,
/// `Send + Sync + 'static`.
///
/// ```
/// use gosync::context;
///
/// let (ctx, cancel) = context::with_cancel_cause(&context::background());
/// cancel.cancel("first");
/// cancel.cancel("second");
/// assert_eq!(ctx.cause().unwrap().to_string(), "first");
/// ```
#[derive(Clone)]
pub struct CancelCauseFunc {
    scope: Weak<Scope>,
}

impl CancelCauseFunc {
    pub(super) fn new(scope: &Arc<Scope>) -> Self {
        CancelCauseFunc {
            scope: Arc::downgrade(scope),
        }
    }

    /// Cancels the context and every context derived from it with
    /// [`ContextError::Canceled`] and `cause`, unless it is done already.
    ///
    /// ```
    /// let (ctx, cancel) = gosync::context::with_cancel_cause(&gosync::context::background());
    /// cancel.cancel(format!("worker {} failed", 3));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "worker 3 failed");
    /// ```
    #[track_caller]
    pub fn cancel(&self, cause: impl Into<Box<dyn Error + Send + Sync>>) {
        if let Some(scope) = self.scope.upgrade() {
            if scope.err().is_none() {
                scope.cancel(ContextError::Canceled, Some(Arc::from(cause.into())));
            }
        }
    }
}

impl fmt::Debug for CancelCauseFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelCauseFunc")
            .field("live", &(self.scope.strong_count() > 0))
            .finish()
    }
}
