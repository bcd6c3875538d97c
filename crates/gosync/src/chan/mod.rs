//! Go's channels, for threads and async tasks alike, with `select`.
//!
//! A [`Chan<T>`] is a Go channel value: cheap to clone, every clone the same channel, usable
//! for sending and receiving; [`Chan::sender`] and [`Chan::receiver`] give the send-only and
//! receive-only views (Go's `chan<- T` and `<-chan T`). Capacity 0 is a true rendezvous: a
//! send returns only once a receiver has taken the value. Channels do not close when handles
//! are dropped; they close when someone calls [`close`](Chan::close), as in Go.
//!
//! Every operation has a blocking form for threads (`send`, `recv`), a non-blocking form
//! (`try_send`, `try_recv`) and an async form for tasks on any executor (`send_async`,
//! `recv_async`); threads and tasks can share one channel and rendezvous with each other.
//!
//! # The seed's table
//!
//! | operation | nil            | empty     | not empty / not full | full      | closed                           |
//! |-----------|----------------|-----------|----------------------|-----------|----------------------------------|
//! | receive   | blocks forever | blocks    | receives             | receives  | drains the buffer, then `None`   |
//! | send      | blocks forever | sends     | sends                | blocks    | `Err(SendError(v))` (Go panics)  |
//! | close     | panics         | closes    | closes (values stay) | closes    | panics                           |
//!
//! Go panics on a send to a closed channel; gosync returns the value in a [`SendError`]
//! instead, and senders blocked when the channel closes are woken with that error. Closing a
//! closed channel panics with Go's message, `"close of closed channel"`, and closing a nil
//! channel with `"close of nil channel"`.
//!
//! # Happens-before (Go memory model)
//!
//! * A send happens before the corresponding receive completes.
//! * The close of a channel happens before a receive that returns `None` because of it.
//! * On an unbuffered channel, a receive happens before the corresponding send completes.
//! * On a channel of capacity C, the k-th receive happens before the (k+C)-th send completes
//!   (which is what makes a buffered channel a counting semaphore).
//!
//! # Cancel safety
//!
//! Dropping a pending `recv_async` future loses no value: a value handed to it as it was
//! dropped goes back to the head of the channel (or straight to the next waiting receiver), so
//! the next receive gets it. Dropping a pending `send_async` future either withdraws the value
//! (dropping it) or finds that a receiver already took it — then the send happened.
//!
//! # How it works
//!
//! Built after Go's `runtime/chan.go`: one lock per channel guards a ring buffer and two FIFO
//! queues of waiters; a send hands its value directly to a waiting receiver; a waiter is
//! claimed by one compare-and-swap, so a `select` waiting on many channels fires exactly one
//! arm. Waiters are the library's common waiter core, so diagnostics see blocked channel
//! operations as they see blocked locks. A thread spins briefly before it parks, because on a
//! machine with few cores the peer usually comes within a few hundred nanoseconds.
//!
//! ```
//! use gosync::chan::Chan;
//!
//! let ch = Chan::new(0);
//! let tx = ch.sender();
//! let producer = std::thread::spawn(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//!     tx.close();
//! });
//! let got: Vec<i32> = ch.receiver().iter().collect();
//! assert_eq!(got, [0, 1, 2]);
//! producer.join().unwrap();
//! ```

mod core;
mod error;
mod lock;
mod op;
mod rand;
mod select;
#[cfg(not(loom))]
mod slot_ref;

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll};

use self::core::Inner;
use self::op::{RecvOp, SendOp};
use crate::loom::Arc;
use crate::sema::{Origin, WaitKind};

pub use error::{CapacityError, SendError, TryRecvError, TrySendError};
#[doc(hidden)]
pub use select::__private;

#[cfg(loom)]
pub(crate) fn __loom_set_reverse(on: bool) {
    rand::REVERSE.store(on, std::sync::atomic::Ordering::Relaxed);
}
pub use select::{Select, SelectAsync, Selected};

/// A Go channel: cloneable, two-way, closed explicitly.
///
/// ```
/// use gosync::chan::Chan;
///
/// let ch = Chan::new(2);
/// ch.send("a").unwrap();
/// ch.send("b").unwrap();
/// ch.close();
/// assert_eq!(ch.recv(), Some("a"));
/// assert_eq!(ch.recv(), Some("b"));
/// assert_eq!(ch.recv(), None); // closed and drained: Go's `v, ok := <-ch` with ok == false
/// ```
pub struct Chan<T> {
    inner: Option<Arc<Inner<T>>>,
}

/// The send-only view of a channel (Go's `chan<- T`).
///
/// ```
/// use gosync::chan::{Chan, Sender};
///
/// fn produce(tx: Sender<u32>) {
///     for i in 0..3 {
///         tx.send(i).unwrap();
///     }
///     tx.close();
/// }
/// let ch = Chan::new(3);
/// produce(ch.sender());
/// assert_eq!(ch.iter().sum::<u32>(), 3);
/// ```
pub struct Sender<T> {
    chan: Chan<T>,
}

/// The receive-only view of a channel (Go's `<-chan T`).
///
/// ```
/// use gosync::chan::{Chan, Receiver};
///
/// fn consume(rx: Receiver<u32>) -> u32 {
///     rx.iter().sum()
/// }
/// let ch = Chan::new(3);
/// for i in 1..=3 {
///     ch.send(i).unwrap();
/// }
/// ch.close();
/// assert_eq!(consume(ch.receiver()), 6);
/// ```
pub struct Receiver<T> {
    chan: Chan<T>,
}

impl<T> Chan<T> {
    /// A channel with room for `capacity` buffered values; 0 makes a rendezvous channel.
    ///
    /// # Panics
    ///
    /// If the buffer cannot be allocated; [`Chan::try_new`] returns the error instead.
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// let ch: Chan<String> = Chan::new(16);
    /// assert_eq!(ch.cap(), 16);
    /// ```
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        match Self::try_new(capacity) {
            Ok(ch) => ch,
            Err(e) => panic!("{e}"),
        }
    }

    /// A channel with room for `capacity` values, or an error if the buffer cannot be
    /// allocated.
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// assert!(Chan::<u8>::try_new(1024).is_ok());
    /// assert!(Chan::<u64>::try_new(usize::MAX / 2).is_err());
    /// ```
    pub fn try_new(capacity: usize) -> Result<Self, CapacityError> {
        match Inner::new(capacity) {
            Ok(inner) => Ok(Chan {
                inner: Some(Arc::new(inner)),
            }),
            Err(_) => Err(CapacityError {
                capacity,
                elem_size: std::mem::size_of::<T>(),
            }),
        }
    }

    /// The nil channel (Go's zero value): sends and receives block forever, its select arms
    /// never fire, and closing it panics.
    ///
    /// ```
    /// use gosync::chan::{Chan, TryRecvError};
    ///
    /// let nil: Chan<i32> = Chan::nil();
    /// assert!(nil.is_nil());
    /// assert_eq!(nil.try_recv(), Err(TryRecvError::Empty));
    /// ```
    pub const fn nil() -> Self {
        Chan { inner: None }
    }

    /// Whether this is the nil channel.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert!(!Chan::<()>::new(0).is_nil());
    /// ```
    pub fn is_nil(&self) -> bool {
        self.inner.is_none()
    }

    /// The send-only view of this channel.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(1);
    /// ch.sender().send(5).unwrap();
    /// assert_eq!(ch.recv(), Some(5));
    /// ```
    pub fn sender(&self) -> Sender<T> {
        Sender { chan: self.clone() }
    }

    /// The receive-only view of this channel.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(1);
    /// ch.send(5).unwrap();
    /// assert_eq!(ch.receiver().recv(), Some(5));
    /// ```
    pub fn receiver(&self) -> Receiver<T> {
        Receiver { chan: self.clone() }
    }

    /// Sends `value`, blocking the thread until a receiver takes it (capacity 0) or there is
    /// room in the buffer. On a closed channel — or when the channel is closed while waiting —
    /// returns the value in `Err(SendError(value))` (Go panics instead).
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// let ch = Chan::new(0);
    /// let rx = ch.receiver();
    /// let t = std::thread::spawn(move || rx.recv());
    /// ch.send(42).unwrap(); // returns once the receiver has the value
    /// assert_eq!(t.join().unwrap(), Some(42));
    /// ```
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let origin = Origin::here(WaitKind::ChanSend);
        match &self.inner {
            Some(inner) => inner.send(value, origin),
            None => block_forever(origin),
        }
    }

    /// Sends without blocking: `Err(TrySendError::Full(v))` when no receiver waits and the
    /// buffer is full, `Err(TrySendError::Closed(v))` on a closed channel.
    ///
    /// ```
    /// use gosync::chan::{Chan, TrySendError};
    ///
    /// let ch = Chan::new(0);
    /// assert_eq!(ch.try_send(1), Err(TrySendError::Full(1))); // nobody receiving
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match &self.inner {
            Some(inner) => inner.try_send(value),
            None => Err(TrySendError::Full(value)),
        }
    }

    /// Sends `value` from an async task; resolves as [`send`](Chan::send) returns.
    ///
    /// # Cancel safety
    ///
    /// Dropping the pending future withdraws the value, unless a receiver already took it (then
    /// the send happened).
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// # futures::executor::block_on(async {
    /// let ch = Chan::new(1);
    /// ch.send_async(1).await.unwrap();
    /// assert_eq!(ch.recv_async().await, Some(1));
    /// # });
    /// ```
    #[track_caller]
    pub fn send_async(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            inner: self.inner.as_deref(),
            op: SendOp::new(value),
            origin: Origin::here(WaitKind::ChanSend),
        }
    }

    /// Receives a value, blocking the thread until one is available. `None` means the channel
    /// is closed and drained (Go's `v, ok := <-ch` with `ok == false`).
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// let ch = Chan::new(1);
    /// ch.send(1).unwrap();
    /// ch.close();
    /// assert_eq!(ch.recv(), Some(1)); // buffered values survive close
    /// assert_eq!(ch.recv(), None);
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Option<T> {
        let origin = Origin::here(WaitKind::ChanRecv);
        match &self.inner {
            Some(inner) => inner.recv(origin),
            None => block_forever(origin),
        }
    }

    /// Receives without blocking.
    ///
    /// ```
    /// use gosync::chan::{Chan, TryRecvError};
    ///
    /// let ch = Chan::new(1);
    /// assert_eq!(ch.try_recv(), Err(TryRecvError::Empty));
    /// ch.send(3).unwrap();
    /// assert_eq!(ch.try_recv(), Ok(3));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match &self.inner {
            Some(inner) => inner.try_recv(),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Receives from an async task; resolves as [`recv`](Chan::recv) returns.
    ///
    /// # Cancel safety
    ///
    /// Dropping the pending future loses no value: one handed to it as it is dropped goes back
    /// to the head of the channel.
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// # futures::executor::block_on(async {
    /// let ch = Chan::new(1);
    /// ch.send(8).unwrap();
    /// assert_eq!(ch.recv_async().await, Some(8));
    /// # });
    /// ```
    #[track_caller]
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            inner: self.inner.as_deref(),
            op: RecvOp::new(),
            origin: Origin::here(WaitKind::ChanRecv),
        }
    }

    /// Closes the channel: receivers drain the buffer and then get `None`; blocked and later
    /// senders get their value back in a [`SendError`].
    ///
    /// # Panics
    ///
    /// "close of closed channel" if already closed, "close of nil channel" on a nil channel
    /// (Go's messages).
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// let ch: Chan<()> = Chan::new(0);
    /// ch.close();
    /// assert_eq!(ch.recv(), None);
    /// ```
    #[track_caller]
    pub fn close(&self) {
        match &self.inner {
            None => panic!("close of nil channel"),
            Some(inner) => {
                if !inner.close() {
                    panic!("close of closed channel");
                }
            }
        }
    }

    /// The number of values in the buffer (Go's `len(ch)`); 0 for a nil channel.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(4);
    /// ch.send(1).unwrap();
    /// assert_eq!(ch.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.len())
    }

    /// Whether the buffer is empty.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert!(Chan::<u8>::new(4).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (Go's `cap(ch)`); 0 for unbuffered and nil channels.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert_eq!(Chan::<u8>::new(0).cap(), 0);
    /// ```
    pub fn cap(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.cap())
    }

    /// Whether [`close`](Chan::close) has been called. Go has no such query, because the
    /// answer can be stale at once; it is here for diagnostics and tests.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch: Chan<u8> = Chan::new(0);
    /// ch.close();
    /// assert!(ch.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.is_closed())
    }

    /// A blocking iterator over received values, ending when the channel is closed and drained
    /// (Go's `for v := range ch`).
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(3);
    /// for i in 0..3 { ch.send(i).unwrap(); }
    /// ch.close();
    /// assert_eq!(ch.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { chan: self }
    }

    /// A [`Stream`](futures_core::Stream) of received values, ending when the channel is
    /// closed and drained.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use gosync::chan::Chan;
    ///
    /// # futures::executor::block_on(async {
    /// let ch = Chan::new(2);
    /// ch.send(1).unwrap();
    /// ch.send(2).unwrap();
    /// ch.close();
    /// assert_eq!(ch.stream().collect::<Vec<_>>().await, [1, 2]);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the stream (or the future of a pending `next`) loses no value: one handed to
    /// it as it is dropped goes back to the head of the channel, as for
    /// [`recv_async`](Chan::recv_async).
    #[track_caller]
    pub fn stream(&self) -> RecvStream<T> {
        RecvStream {
            chan: self.clone(),
            op: RecvOp::new(),
            origin: Origin::here(WaitKind::ChanRecv),
        }
    }

    pub(crate) fn inner(&self) -> Option<&Inner<T>> {
        self.inner.as_deref()
    }
}

/// Blocks the calling thread on a nil channel until the outside canceller that `watch`
/// registers the waiter with ends the wait (forever if `watch` gives no guard that can end).
pub(crate) fn block_nil_bounded<G>(
    origin: Origin,
    watch: impl FnOnce(&Arc<crate::sema::Waiter>) -> Result<Option<G>, ()>,
) {
    let waiter = crate::sema::Waiter::new(
        Origin {
            kind: WaitKind::NilChan,
            ..origin
        },
        None,
        None,
    );
    let Ok(guard) = watch(&waiter) else {
        return;
    };
    if guard.is_none() {
        block_forever(origin);
    }
    let _wait = crate::sema::ThreadWait::enter(
        &Origin {
            kind: WaitKind::NilChan,
            ..origin
        },
        None,
    );
    waiter.park(None);
}

/// Blocks the calling thread forever (an operation on a nil channel).
fn block_forever(origin: Origin) -> ! {
    let waiter = crate::sema::Waiter::new(
        Origin {
            kind: WaitKind::NilChan,
            ..origin
        },
        None,
        None,
    );
    let _wait = crate::sema::ThreadWait::enter(
        &Origin {
            kind: WaitKind::NilChan,
            ..origin
        },
        None,
    );
    loop {
        waiter.park(None);
    }
}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Self {
        Chan {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Chan<T> {
    /// The nil channel, Go's zero value.
    fn default() -> Self {
        Chan::nil()
    }
}

impl<T> PartialEq for Chan<T> {
    /// Channels compare equal when they are the same channel (both nil, or clones), as in Go.
    fn eq(&self, other: &Self) -> bool {
        match (&self.inner, &other.inner) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl<T> Eq for Chan<T> {}

impl<T> Hash for Chan<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner
            .as_ref()
            .map(|i| Arc::as_ptr(i) as usize)
            .hash(state);
    }
}

impl<T> fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Chan(nil)"),
            Some(i) => f
                .debug_struct("Chan")
                .field("len", &i.len())
                .field("cap", &i.cap())
                .field("closed", &i.is_closed())
                .finish(),
        }
    }
}

impl<T> Sender<T> {
    pub(crate) fn as_chan(&self) -> &Chan<T> {
        &self.chan
    }

    /// See [`Chan::send`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(1);
    /// ch.sender().send(1).unwrap();
    /// ```
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value)
    }

    /// See [`Chan::try_send`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(1);
    /// assert!(ch.sender().try_send(1).is_ok());
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// See [`Chan::send_async`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the pending future withdraws the value, unless a receiver already took it (then
    /// the send happened); [`SendFuture::withdraw`] says which.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// # futures::executor::block_on(async {
    /// let ch = Chan::new(1);
    /// ch.sender().send_async(1).await.unwrap();
    /// # });
    /// ```
    #[track_caller]
    pub fn send_async(&self, value: T) -> SendFuture<'_, T> {
        self.chan.send_async(value)
    }

    /// See [`Chan::close`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch: Chan<u8> = Chan::new(0);
    /// ch.sender().close();
    /// assert_eq!(ch.recv(), None);
    /// ```
    #[track_caller]
    pub fn close(&self) {
        self.chan.close()
    }

    /// See [`Chan::len`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert_eq!(Chan::<u8>::new(1).sender().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// See [`Chan::is_empty`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert!(Chan::<u8>::new(1).sender().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.chan.is_empty()
    }

    /// See [`Chan::cap`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert_eq!(Chan::<u8>::new(1).sender().cap(), 1);
    /// ```
    pub fn cap(&self) -> usize {
        self.chan.cap()
    }

    /// Whether this is a view of the nil channel.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert!(Chan::<u8>::nil().sender().is_nil());
    /// ```
    pub fn is_nil(&self) -> bool {
        self.chan.is_nil()
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

impl<T> Receiver<T> {
    pub(crate) fn as_chan(&self) -> &Chan<T> {
        &self.chan
    }

    /// See [`Chan::recv`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(1);
    /// ch.send(1).unwrap();
    /// assert_eq!(ch.receiver().recv(), Some(1));
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Option<T> {
        self.chan.recv()
    }

    /// See [`Chan::try_recv`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert!(Chan::<u8>::new(1).receiver().try_recv().is_err());
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// See [`Chan::recv_async`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// # futures::executor::block_on(async {
    /// let ch = Chan::new(1);
    /// ch.send(2).unwrap();
    /// assert_eq!(ch.receiver().recv_async().await, Some(2));
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the pending future loses no value: one handed to it as it is dropped goes back
    /// to the head of the channel.
    #[track_caller]
    pub fn recv_async(&self) -> RecvFuture<'_, T> {
        self.chan.recv_async()
    }

    /// See [`Chan::len`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert_eq!(Chan::<u8>::new(1).receiver().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// See [`Chan::is_empty`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert!(Chan::<u8>::new(1).receiver().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.chan.is_empty()
    }

    /// See [`Chan::cap`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert_eq!(Chan::<u8>::new(1).receiver().cap(), 1);
    /// ```
    pub fn cap(&self) -> usize {
        self.chan.cap()
    }

    /// Whether this is a view of the nil channel.
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert!(Chan::<u8>::nil().receiver().is_nil());
    /// ```
    pub fn is_nil(&self) -> bool {
        self.chan.is_nil()
    }

    /// See [`Chan::is_closed`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// assert!(!Chan::<u8>::new(1).receiver().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// See [`Chan::iter`].
    ///
    /// ```
    /// # use gosync::chan::Chan;
    /// let ch = Chan::new(1);
    /// ch.send(1).unwrap();
    /// ch.close();
    /// assert_eq!(ch.receiver().iter().count(), 1);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        self.chan.iter()
    }

    /// See [`Chan::stream`].
    ///
    /// ```
    /// use futures::StreamExt;
    /// # use gosync::chan::Chan;
    /// # futures::executor::block_on(async {
    /// let ch: Chan<u8> = Chan::new(1);
    /// ch.close();
    /// assert_eq!(ch.receiver().stream().next().await, None);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As for [`Chan::stream`]: dropping the stream while a `next` is pending loses no value.
    #[track_caller]
    pub fn stream(&self) -> RecvStream<T> {
        self.chan.stream()
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

macro_rules! view_traits {
    ($view:ident) => {
        impl<T> Clone for $view<T> {
            fn clone(&self) -> Self {
                $view {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> PartialEq for $view<T> {
            fn eq(&self, other: &Self) -> bool {
                self.chan == other.chan
            }
        }

        impl<T> Eq for $view<T> {}

        impl<T> Hash for $view<T> {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.chan.hash(state)
            }
        }

        impl<T> fmt::Debug for $view<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($view)).field(&self.chan).finish()
            }
        }

        impl<T> From<Chan<T>> for $view<T> {
            fn from(chan: Chan<T>) -> Self {
                $view { chan }
            }
        }
    };
}
view_traits!(Sender);
view_traits!(Receiver);

/// The future of [`Chan::send_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    inner: Option<&'a Inner<T>>,
    op: SendOp<T>,
    origin: Origin,
}

// The value is never pinned in place: it is moved in and out by value.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.inner {
            Some(inner) => this.op.poll(inner, this.origin, cx),
            None => Poll::Pending,
        }
    }
}

impl<T> SendFuture<'_, T> {
    /// Gives up the send and says whether it happened: `Some(value)` if it was not sent (the
    /// future was never polled, is still waiting, or the channel closed), `None` if a receiver
    /// took the value — also if that happened just now, as the future was being given up. Use
    /// it where dropping the future would leave you unsure, e.g. when the send stands for
    /// acquiring something. `None` too after the future has completed.
    ///
    /// ```
    /// use std::future::Future;
    /// use std::task::{Context, Poll};
    /// use gosync::chan::Chan;
    ///
    /// let ch = Chan::new(0);
    /// let mut send = ch.send_async(5);
    /// let waker = futures::task::noop_waker();
    /// assert!(std::pin::Pin::new(&mut send).poll(&mut Context::from_waker(&waker)).is_pending());
    /// assert_eq!(send.withdraw(), Some(5)); // nobody received it
    /// assert!(ch.try_recv().is_err());
    /// ```
    pub fn withdraw(mut self) -> Option<T> {
        match self.inner {
            Some(inner) => self.op.withdraw(inner),
            None => self.op.withdraw_nil(),
        }
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner {
            self.op.cancel(inner);
        }
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture").finish_non_exhaustive()
    }
}

/// The future of [`Chan::recv_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a, T> {
    inner: Option<&'a Inner<T>>,
    op: RecvOp<T>,
    origin: Origin,
}

impl<T> Unpin for RecvFuture<'_, T> {}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        match this.inner {
            Some(inner) => this.op.poll(inner, this.origin, cx),
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner {
            self.op.cancel(inner);
        }
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture").finish_non_exhaustive()
    }
}

/// A [`Stream`](futures_core::Stream) of the values received from a channel; see
/// [`Chan::stream`]. Cancel-safe as [`Chan::recv_async`]: dropping the stream while a value
/// is being handed to it puts the value back.
#[must_use = "streams do nothing unless polled"]
pub struct RecvStream<T> {
    chan: Chan<T>,
    op: RecvOp<T>,
    origin: Origin,
}

impl<T> Unpin for RecvStream<T> {}

impl<T> futures_core::Stream for RecvStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        match this.chan.inner() {
            Some(inner) => this.op.poll(inner, this.origin, cx),
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for RecvStream<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.chan.inner() {
            self.op.cancel(inner);
        }
    }
}

impl<T> fmt::Debug for RecvStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvStream")
            .field("chan", &self.chan)
            .finish()
    }
}

/// A blocking iterator over a channel's values; see [`Chan::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    chan: &'a Chan<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.chan.recv()
    }
}

/// An owning blocking iterator over a channel's values (`for v in rx`).
#[derive(Debug)]
pub struct IntoIter<T> {
    chan: Chan<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.chan.recv()
    }
}

impl<'a, T> IntoIterator for &'a Chan<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Chan<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { chan: self }
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { chan: self.chan }
    }
}
