//! Channel operations bounded by a context, for threads.
//!
//! A goroutine bounds a channel operation with `select { case ch <- v: case <-ctx.Done(): }`;
//! a thread can do the same with [`select!`](crate::select), and these are the one-channel
//! shorthand: one waiter sits in the channel's queue and in the context's at once, and
//! whichever completes it first decides the outcome — nothing is lost either way. They live
//! here rather than in [`chan`](crate::chan) because contexts are built on channels (a
//! context's done channel), not the other way round.

use std::fmt;

use super::{Context, ContextError};
use crate::chan::{Chan, Receiver, SendError, Sender};
use crate::loom::Arc;
use crate::sema::{Origin, WaitKind, Waiter};

/// Why [`Chan::send_ctx`] did not send: the value comes back either way.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::context::{self, ContextError, SendCtxError};
///
/// let ch = Chan::new(0);
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// cancel.cancel();
/// assert_eq!(ch.send_ctx(&ctx, 7), Err(SendCtxError::Done(ContextError::Canceled, 7)));
/// ch.close();
/// let ctx = context::background();
/// assert_eq!(ch.send_ctx(&ctx, 8), Err(SendCtxError::Closed(8)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendCtxError<T> {
    /// The channel is closed (or was closed while the sender waited).
    Closed(T),
    /// The context ended before a receiver took the value.
    Done(ContextError, T),
}

impl<T> SendCtxError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// use gosync::context::{ContextError, SendCtxError};
    /// assert_eq!(SendCtxError::Done(ContextError::Canceled, 3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendCtxError::Closed(v) | SendCtxError::Done(_, v) => v,
        }
    }
}

impl<T> fmt::Debug for SendCtxError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendCtxError::Closed(_) => f.write_str("Closed(..)"),
            SendCtxError::Done(e, _) => write!(f, "Done({e:?}, ..)"),
        }
    }
}

impl<T> fmt::Display for SendCtxError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendCtxError::Closed(_) => f.write_str("send on closed channel"),
            SendCtxError::Done(e, _) => write!(f, "send abandoned: {e}"),
        }
    }
}

impl<T> std::error::Error for SendCtxError<T> {}

/// Registers a channel waiter with `ctx` (see [`Context::watch`]).
fn watch(ctx: &Context, waiter: &Arc<Waiter>) -> Result<Option<super::done::Watch>, ()> {
    ctx.watch(waiter).map_err(|_| ())
}

fn done_err(ctx: &Context) -> ContextError {
    ctx.err().expect("a context ends a wait only once done")
}

impl<T> Chan<T> {
    /// Sends `value`, blocking the thread until a receiver takes it (or there is room in the
    /// buffer) or until `ctx` is done, whichever comes first — Go's
    /// `select { case ch <- v: case <-ctx.Done(): }`. The value comes back in the error if it
    /// was not sent. If `ctx` is done already, it fails at once, even if the send could
    /// proceed.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::context::{self, ContextError};
    /// use std::time::Duration;
    ///
    /// let ch = Chan::new(0); // nobody receives
    /// let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    /// let err = ch.send_ctx(&ctx, "job").unwrap_err();
    /// assert_eq!(err.into_inner(), "job");
    /// ```
    #[track_caller]
    pub fn send_ctx(&self, ctx: &Context, value: T) -> Result<(), SendCtxError<T>> {
        send_ctx(self, ctx, value, Origin::here(WaitKind::ChanSend))
    }

    /// Receives a value, blocking the thread until one is available or until `ctx` is done,
    /// whichever comes first — Go's `select { case v, ok := <-ch: case <-ctx.Done(): }`.
    /// `Ok(None)` means the channel is closed and drained. If `ctx` is done already, it fails
    /// at once.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::context::{self, ContextError};
    /// use std::time::Duration;
    ///
    /// let ch: Chan<u32> = Chan::new(1);
    /// let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    /// assert_eq!(ch.recv_ctx(&ctx), Err(ContextError::DeadlineExceeded));
    /// ch.send(5).unwrap();
    /// assert_eq!(ch.recv_ctx(&context::background()), Ok(Some(5)));
    /// ```
    #[track_caller]
    pub fn recv_ctx(&self, ctx: &Context) -> Result<Option<T>, ContextError> {
        recv_ctx(self, ctx, Origin::here(WaitKind::ChanRecv))
    }
}

impl<T> Sender<T> {
    /// [`Chan::send_ctx`] on the send-only view.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// let ch = Chan::new(1);
    /// ch.sender().send_ctx(&gosync::context::background(), 1).unwrap();
    /// assert_eq!(ch.recv(), Some(1));
    /// ```
    #[track_caller]
    pub fn send_ctx(&self, ctx: &Context, value: T) -> Result<(), SendCtxError<T>> {
        send_ctx(self.as_chan(), ctx, value, Origin::here(WaitKind::ChanSend))
    }
}

impl<T> Receiver<T> {
    /// [`Chan::recv_ctx`] on the receive-only view.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// let ch = Chan::new(1);
    /// ch.send(2).unwrap();
    /// assert_eq!(ch.receiver().recv_ctx(&gosync::context::background()), Ok(Some(2)));
    /// ```
    #[track_caller]
    pub fn recv_ctx(&self, ctx: &Context) -> Result<Option<T>, ContextError> {
        recv_ctx(self.as_chan(), ctx, Origin::here(WaitKind::ChanRecv))
    }
}

fn send_ctx<T>(
    ch: &Chan<T>,
    ctx: &Context,
    value: T,
    origin: Origin,
) -> Result<(), SendCtxError<T>> {
    if let Some(err) = ctx.err() {
        return Err(SendCtxError::Done(err, value));
    }
    let Some(inner) = ch.inner() else {
        crate::chan::block_nil_bounded(origin, |w| watch(ctx, w));
        return Err(SendCtxError::Done(done_err(ctx), value));
    };
    match inner.send_bounded(value, origin, |w| watch(ctx, w)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(SendError(v))) => Err(SendCtxError::Closed(v)),
        Err(v) => Err(SendCtxError::Done(done_err(ctx), v)),
    }
}

fn recv_ctx<T>(ch: &Chan<T>, ctx: &Context, origin: Origin) -> Result<Option<T>, ContextError> {
    if let Some(err) = ctx.err() {
        return Err(err);
    }
    let Some(inner) = ch.inner() else {
        crate::chan::block_nil_bounded(origin, |w| watch(ctx, w));
        return Err(done_err(ctx));
    };
    inner
        .recv_bounded(origin, |w| watch(ctx, w))
        .map_err(|()| done_err(ctx))
}
