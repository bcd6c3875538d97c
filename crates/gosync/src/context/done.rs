//! Waiting for a context to be done, from threads and from tasks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use super::scope::Scope;
use super::ContextError;
use crate::chan::{__private::RecvTarget, Chan};
use crate::sema::{Origin, ThreadWait, Ticket, Waiter};

/// A waiter registered with a context besides the primitive it waits on (a `lock_ctx`): the
/// context completes it with [`CTX_DONE`](crate::sema::CTX_DONE) when it ends, unless the
/// primitive claimed it first. Dropping the watch takes it out of the context's queue.
pub(crate) struct Watch {
    scope: Arc<Scope>,
    ticket: Ticket,
}

impl Watch {
    /// Registers `waiter` with `scope`: `Err` if the scope is done already, `Ok(None)` if it
    /// can never be done (nothing to watch).
    pub(super) fn new(
        scope: &Arc<Scope>,
        waiter: &crate::loom::Arc<Waiter>,
    ) -> Result<Option<Watch>, ContextError> {
        if !scope.cancellable {
            return Ok(None);
        }
        if let Some(err) = scope.err() {
            return Err(err);
        }
        let mut q = scope.queue.lock();
        // Re-check under the queue lock: a canceller sets the state before taking this lock.
        if let Some(err) = scope.err() {
            return Err(err);
        }
        Ok(Some(Watch {
            scope: scope.clone(),
            ticket: q.push(waiter, false),
        }))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.scope.queue.lock().remove(&self.ticket);
    }
}

/// Parks the calling thread until `scope` is done or `deadline` passes.
pub(super) fn wait_until(
    scope: &Scope,
    deadline: Option<Instant>,
    origin: Origin,
) -> Option<ContextError> {
    if let Some(err) = scope.err() {
        return Some(err);
    }
    let ticket = {
        let mut q = scope.queue.lock();
        // Re-check under the queue lock: a canceller sets the state before taking this lock.
        if let Some(err) = scope.err() {
            return Some(err);
        }
        q.push(
            &Waiter::new(origin.on(scope.queue.ident()), None, None),
            false,
        )
    };
    let _wait = ThreadWait::enter(&origin.on(scope.queue.ident()), None);
    if ticket.waiter().park(deadline).is_none() && scope.queue.lock().remove(&ticket) {
        return None;
    }
    // Notified: the token's release/acquire pair orders the state before us.
    scope.err()
}

/// A future that completes when its context is done, with the context's error; returned by
/// [`Context::done`](super::Context::done).
///
/// It owns a handle to the context's cancellation, so it is `'static` and can be sent to another
/// task or thread. It may also be waited on from a thread with [`wait`](Done::wait), and it is a
/// receive case of [`select!`](crate::select) and [`select_async!`](crate::select_async), as Go's
/// `case <-ctx.Done():` — the arm receives `None` (the context's done channel is closed) once
/// the context is done; see [`Context::done_chan`](super::Context::done_chan).
///
/// # Cancel safety
///
/// Dropping a pending `Done` takes its waiter out of the context's queue; it loses nothing,
/// since a context's end is broadcast to every waiter.
///
/// ```
/// use gosync::context::{self, ContextError};
///
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// let done = ctx.done();
/// std::thread::spawn(move || cancel.cancel());
/// assert_eq!(futures::executor::block_on(done), ContextError::Canceled);
/// ```
///
/// In a `select`:
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::context;
/// use gosync::select;
///
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// let jobs: Chan<u32> = Chan::new(0);
/// std::thread::spawn(move || cancel.cancel());
/// let stopped = select! {
///     recv(jobs) -> _ => false,
///     recv(ctx.done()) -> _ => true,
/// };
/// assert!(stopped);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Done {
    scope: Arc<Scope>,
    origin: Origin,
    ticket: Option<Ticket>,
    /// The context's done channel, fetched when the `Done` is first used as a select case.
    chan: OnceLock<Chan<()>>,
}

impl Done {
    pub(super) fn new(scope: Arc<Scope>, origin: Origin) -> Self {
        Done {
            scope,
            origin,
            ticket: None,
            chan: OnceLock::new(),
        }
    }

    /// Blocks the calling thread until the context is done; returns its error.
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// cancel.cancel();
    /// assert_eq!(ctx.done().wait(), ContextError::Canceled);
    /// ```
    pub fn wait(self) -> ContextError {
        wait_until(&self.scope, None, self.origin).expect("a wait without deadline ends done")
    }

    /// The context's error if it is done, without waiting.
    ///
    /// ```
    /// let ctx = gosync::context::background();
    /// assert_eq!(ctx.done().err(), None);
    /// ```
    pub fn err(&self) -> Option<ContextError> {
        self.scope.err()
    }
}

impl Future for Done {
    type Output = ContextError;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<ContextError> {
        let this = self.get_mut();
        if let Some(ticket) = &this.ticket {
            return match ticket.waiter().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(_) => {
                    this.ticket = None;
                    Poll::Ready(this.scope.err().expect("notified only when done"))
                }
            };
        }
        if let Some(err) = this.scope.err() {
            return Poll::Ready(err);
        }
        let mut q = this.scope.queue.lock();
        if let Some(err) = this.scope.err() {
            return Poll::Ready(err);
        }
        let origin = this.origin.on(this.scope.queue.ident());
        this.ticket = Some(q.push(&Waiter::new(origin, None, Some(cx)), false));
        Poll::Pending
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            // If it was already notified there is nothing to pass on: the end is broadcast.
            self.scope.queue.lock().remove(&ticket);
        }
    }
}

/// A `Done` is a receive case of `select!`: it receives from the context's done channel.
impl RecvTarget<()> for Done {
    fn recv_chan(&self) -> &Chan<()> {
        self.chan.get_or_init(|| self.scope.done_chan())
    }
}

impl fmt::Debug for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Done")
            .field("err", &self.scope.err())
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}
