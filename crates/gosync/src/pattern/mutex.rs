//! A mutex made of a channel, both ways the course builds it.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::chan::{Chan, Receiver, RecvFuture, SendFuture};
use crate::time::Timer;
use crate::{select, select_async};

/// Which channel operation takes a [`ChanMutex`].
///
/// ```
/// use gosync::pattern::{ChanMutex, LockBy};
///
/// assert_eq!(ChanMutex::new().lock_by(), LockBy::Recv);
/// assert_eq!(ChanMutex::with_lock_by(LockBy::Send).lock_by(), LockBy::Send);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LockBy {
    /// The channel starts full, holding one token: `lock` receives the token, `unlock` sends
    /// it back (the course's first version, `<-m.ch` to lock).
    #[default]
    Recv,
    /// The channel starts empty, with room for one value: `lock` fills it, `unlock` empties it
    /// (the course's second version, `m.ch <- struct{}{}` to lock).
    Send,
}

/// A mutex made of a channel of capacity 1 — the course's "channel as a lock" — in both of its
/// forms (see [`LockBy`]).
///
/// It is a teaching piece and a select-friendly lock: taking it is a channel operation, so
/// [`lock_timeout`](Self::lock_timeout) and [`lock_or_done`](Self::lock_or_done) are
/// one `select` each. Waiters queue in FIFO order on the channel and `unlock` hands the lock
/// to the first; there is no starvation mode and no spinning, so under contention it is slower
/// than [`sync::RawMutex`](crate::sync::RawMutex), which should be the default choice.
///
/// Like `RawMutex` it guards no data, and is not tied to a thread or task: one may lock it and
/// another unlock it. It is not reentrant.
///
/// # Happens-before
///
/// For [`LockBy::Recv`], the n-th `unlock` is the n-th send on the channel and the (n+1)-th
/// `lock` the (n+1)-th receive, which gets the n-th send's token (the first receive gets the
/// token put in at creation): a send happens before the receive that completes it. For
/// [`LockBy::Send`], the n-th `unlock` is the n-th receive and the (n+1)-th `lock` the
/// (n+1)-th send: on a channel of capacity 1 the k-th receive happens before the (k+1)-th send
/// completes. Either way, the n-th `unlock` happens before the (n+1)-th `lock` returns, as for
/// Go's `sync.Mutex`.
///
/// # Misuse
///
/// Unlocking an unlocked mutex panics with `"sync: unlock of unlocked mutex"` (the course's
/// version panics with `"unlock of unlocked mutex"`; gosync uses the message of Go's
/// `sync.Mutex`, like [`RawMutex`](crate::sync::RawMutex)).
///
/// ```
/// use gosync::pattern::ChanMutex;
/// use std::sync::Arc;
///
/// let m = Arc::new(ChanMutex::new());
/// let hits = Arc::new(std::sync::atomic::AtomicU32::new(0));
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let (m, hits) = (m.clone(), hits.clone());
///         std::thread::spawn(move || {
///             m.lock();
///             hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///             m.unlock();
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 4);
/// assert!(!m.is_locked());
/// ```
pub struct ChanMutex {
    ch: Chan<()>,
    by: LockBy,
}

const UNLOCK_OF_UNLOCKED: &str = "sync: unlock of unlocked mutex";

impl Default for ChanMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ChanMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChanMutex")
            .field("lock_by", &self.by)
            .field("locked", &self.is_locked())
            .finish()
    }
}

impl ChanMutex {
    /// An unlocked mutex of the course's first form ([`LockBy::Recv`]): a channel holding
    /// one token.
    ///
    /// ```
    /// let m = gosync::pattern::ChanMutex::new();
    /// assert!(!m.is_locked());
    /// ```
    pub fn new() -> Self {
        Self::with_lock_by(LockBy::Recv)
    }

    /// An unlocked mutex of the given form.
    ///
    /// ```
    /// use gosync::pattern::{ChanMutex, LockBy};
    ///
    /// let m = ChanMutex::with_lock_by(LockBy::Send);
    /// m.lock();
    /// assert!(m.is_locked());
    /// m.unlock();
    /// ```
    pub fn with_lock_by(by: LockBy) -> Self {
        let ch = Chan::new(1);
        if by == LockBy::Recv {
            ch.try_send(())
                .expect("a new channel of capacity 1 has room");
        }
        ChanMutex { ch, by }
    }

    /// Which form this mutex has.
    ///
    /// ```
    /// use gosync::pattern::{ChanMutex, LockBy};
    ///
    /// assert_eq!(ChanMutex::default().lock_by(), LockBy::Recv);
    /// ```
    pub fn lock_by(&self) -> LockBy {
        self.by
    }

    /// Locks, blocking the thread until the mutex is free.
    ///
    /// ```
    /// let m = gosync::pattern::ChanMutex::new();
    /// m.lock();
    /// assert!(m.is_locked());
    /// m.unlock();
    /// ```
    #[track_caller]
    pub fn lock(&self) {
        match self.by {
            LockBy::Recv => {
                self.ch.recv();
            }
            LockBy::Send => {
                let _ = self.ch.send(());
            }
        }
    }

    /// Unlocks. The mutex need not have been locked by this thread or task.
    ///
    /// # Panics
    ///
    /// With `"sync: unlock of unlocked mutex"` if the mutex is not locked.
    ///
    /// ```
    /// let m = gosync::pattern::ChanMutex::new();
    /// m.lock();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| m.unlock()); // another thread may unlock
    /// });
    /// assert!(!m.is_locked());
    /// ```
    #[track_caller]
    pub fn unlock(&self) {
        let released = match self.by {
            LockBy::Recv => self.ch.try_send(()).is_ok(),
            LockBy::Send => self.ch.try_recv().is_ok(),
        };
        if !released {
            panic!("{UNLOCK_OF_UNLOCKED}");
        }
    }

    /// Locks if the mutex is free, without waiting; `true` if it did.
    ///
    /// ```
    /// let m = gosync::pattern::ChanMutex::new();
    /// assert!(m.try_lock());
    /// assert!(!m.try_lock());
    /// m.unlock();
    /// ```
    pub fn try_lock(&self) -> bool {
        match self.by {
            LockBy::Recv => self.ch.try_recv().is_ok(),
            LockBy::Send => self.ch.try_send(()).is_ok(),
        }
    }

    /// Locks, waiting at most `timeout`; `true` if it locked — the course's
    /// `TryLock(timeout)`, a select between the lock and a [`Timer`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let m = gosync::pattern::ChanMutex::new();
    /// assert!(m.lock_timeout(Duration::from_millis(10)));
    /// assert!(!m.lock_timeout(Duration::from_millis(10))); // held: gives up
    /// m.unlock();
    /// ```
    #[track_caller]
    pub fn lock_timeout(&self, timeout: Duration) -> bool {
        if self.try_lock() {
            return true;
        }
        let timer = Timer::new(timeout);
        let locked = match self.by {
            LockBy::Recv => select! {
                recv(self.ch) -> _ => true,
                recv(timer.c()) -> _ => false,
            },
            LockBy::Send => select! {
                send(self.ch, ()) -> _ => true,
                recv(timer.c()) -> _ => false,
            },
        };
        timer.stop();
        locked
    }

    /// Locks unless `done` fires first; `true` if it locked. Pass a context's
    /// [`done_chan`](crate::context::Context::done_chan) to lock until the context ends.
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// let m = gosync::pattern::ChanMutex::new();
    /// let done = Chan::new(0);
    /// assert!(m.lock_or_done(&done.receiver()));
    /// done.close();
    /// assert!(!m.lock_or_done(&done.receiver())); // held, and done has fired
    /// m.unlock();
    /// ```
    #[track_caller]
    pub fn lock_or_done(&self, done: &Receiver<()>) -> bool {
        match self.by {
            LockBy::Recv => select! {
                recv(self.ch) -> _ => true,
                recv(done) -> _ => false,
            },
            LockBy::Send => select! {
                send(self.ch, ()) -> _ => true,
                recv(done) -> _ => false,
            },
        }
    }

    /// The async form of [`lock_or_done`](Self::lock_or_done).
    ///
    /// # Cancel safety
    ///
    /// As [`lock_async`](Self::lock_async).
    ///
    /// ```
    /// use gosync::chan::Chan;
    ///
    /// # futures::executor::block_on(async {
    /// let m = gosync::pattern::ChanMutex::new();
    /// let done = Chan::new(0);
    /// assert!(m.lock_or_done_async(&done.receiver()).await);
    /// done.close();
    /// assert!(!m.lock_or_done_async(&done.receiver()).await);
    /// # });
    /// ```
    pub async fn lock_or_done_async(&self, done: &Receiver<()>) -> bool {
        match self.by {
            LockBy::Recv => select_async! {
                recv(self.ch) -> _ => true,
                recv(done) -> _ => false,
            },
            LockBy::Send => {
                // The lock future rather than a send arm, for its cancel safety.
                let mut lock = pin!(self.lock_async());
                let mut done = pin!(done.recv_async());
                poll_fn(|cx| {
                    if lock.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(true);
                    }
                    done.as_mut().poll(cx).map(|_| false)
                })
                .await
            }
        }
    }

    /// Whether the mutex is locked — the course's `IsLocked`, `len(m.ch) == 0` for the first
    /// form. The answer may be stale by the time it is read.
    ///
    /// ```
    /// let m = gosync::pattern::ChanMutex::new();
    /// assert!(!m.is_locked());
    /// m.lock();
    /// assert!(m.is_locked());
    /// m.unlock();
    /// ```
    pub fn is_locked(&self) -> bool {
        match self.by {
            LockBy::Recv => self.ch.is_empty(),
            LockBy::Send => !self.ch.is_empty(),
        }
    }

    /// Locks from an async task; the future resolves once the mutex is locked.
    ///
    /// # Cancel safety
    ///
    /// Dropping the pending future loses no lock. For [`LockBy::Recv`], a token handed to it
    /// as it is dropped goes back to the channel, to the next waiter. For [`LockBy::Send`], the
    /// future withdraws its send ([`SendFuture::withdraw`](crate::chan::SendFuture::withdraw));
    /// if `unlock` completed the send first — even in the instant of the drop — the future held
    /// the lock, and unlocks it again.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let m = gosync::pattern::ChanMutex::new();
    /// m.lock_async().await;
    /// assert!(m.is_locked());
    /// m.unlock();
    /// # });
    /// ```
    #[track_caller]
    pub fn lock_async(&self) -> LockFuture<'_> {
        LockFuture {
            state: match self.by {
                LockBy::Recv => State::Recv(self.ch.recv_async()),
                LockBy::Send => State::Send {
                    fut: Some(self.ch.send_async(())),
                    mutex: self,
                },
            },
        }
    }
}

/// The future of [`ChanMutex::lock_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct LockFuture<'a> {
    state: State<'a>,
}

enum State<'a> {
    Recv(RecvFuture<'a, ()>),
    Send {
        fut: Option<SendFuture<'a, ()>>,
        mutex: &'a ChanMutex,
    },
}

impl Future for LockFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.get_mut().state {
            State::Recv(fut) => Pin::new(fut).poll(cx).map(|_| ()),
            State::Send { fut, .. } => {
                let f = fut.as_mut().expect("LockFuture polled after completion");
                match Pin::new(f).poll(cx) {
                    Poll::Ready(_) => {
                        *fut = None;
                        Poll::Ready(())
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl Drop for LockFuture<'_> {
    fn drop(&mut self) {
        if let State::Send { fut, mutex, .. } = &mut self.state {
            // A send that happened — even just now, as the future is dropped — holds the lock:
            // pass it on.
            if let Some(fut) = fut.take() {
                if fut.withdraw().is_none() {
                    mutex.unlock();
                }
            }
        }
    }
}

impl fmt::Debug for LockFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFuture").finish_non_exhaustive()
    }
}
