//! The errors of channel operations. Each gives back the value it could not deliver.

use std::fmt;

/// A send on a closed channel: the value comes back.
///
/// Go panics with "send on closed channel"; gosync returns this error instead, so the value is
/// not lost and the caller decides. Senders blocked when the channel closes get it too.
///
/// ```
/// use gosync::chan::{Chan, SendError};
///
/// let ch = Chan::new(1);
/// ch.close();
/// assert_eq!(ch.send(7), Err(SendError(7)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(0);
    /// ch.close();
    /// assert_eq!(ch.send("job").unwrap_err().into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError { .. }")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("send on closed channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`try_send`](crate::chan::Chan::try_send) did not send: the value comes back.
///
/// ```
/// use gosync::chan::{Chan, TrySendError};
///
/// let ch = Chan::new(1);
/// ch.try_send(1).unwrap();
/// assert_eq!(ch.try_send(2), Err(TrySendError::Full(2)));
/// ch.close();
/// assert_eq!(ch.try_send(3), Err(TrySendError::Closed(3)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// No receiver is waiting and the buffer is full (always so for a nil channel).
    Full(T),
    /// The channel is closed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch: Chan<u8> = Chan::new(0);
    /// assert_eq!(ch.try_send(9).unwrap_err().into_inner(), 9);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// Whether the send failed because the channel is closed.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch: Chan<u8> = Chan::new(0);
    /// assert!(!ch.try_send(9).unwrap_err().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("send would block: no receiver and no room"),
            TrySendError::Closed(_) => f.write_str("send on closed channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Closed(e.0)
    }
}

/// Why [`try_recv`](crate::chan::Chan::try_recv) received nothing.
///
/// ```
/// use gosync::chan::{Chan, TryRecvError};
///
/// let ch: Chan<i32> = Chan::new(1);
/// assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
/// ch.close();
/// assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// Nothing buffered and no sender waiting (always so for a nil channel).
    Empty,
    /// The channel is closed and drained.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receive would block: channel empty"),
            TryRecvError::Closed => f.write_str("receive from closed and drained channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// A channel's buffer could not be allocated.
///
/// ```
/// use gosync::chan::Chan;
///
/// let err = Chan::<u64>::try_new(usize::MAX).unwrap_err();
/// assert_eq!(err.capacity(), usize::MAX);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot allocate a channel buffer of {capacity} elements of {elem_size} bytes each; \
     choose a smaller capacity"
)]
pub struct CapacityError {
    pub(crate) capacity: usize,
    pub(crate) elem_size: usize,
}

impl CapacityError {
    /// The capacity that was asked for.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert_eq!(Chan::<u8>::try_new(usize::MAX).unwrap_err().capacity(), usize::MAX);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
