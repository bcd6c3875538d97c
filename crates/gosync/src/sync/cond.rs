//! Condition variables over any locker, as Go's `sync.Cond`: see [`Cond`].
//!
//! # How it works
//!
//! A `Cond` is a [`Queue`] of the waiter core and a locker; it keeps no count and no state
//! word of its own. Go's `notifyList` (`runtime/sema.go`) gives each waiter a ticket when it
//! starts to wait (`notifyListAdd`, before `Wait` unlocks) and parks it later
//! (`notifyListWait`); a signal advances the "next to notify" ticket, so a waiter whose ticket
//! was passed while it was still on its way to park returns at once. Here the waiter is put in
//! the queue itself before the lock is released, which gives the same two properties with no
//! tickets: no signal sent after the release can miss it, and no signal sent before it queued
//! can reach it (a signal notifies whoever is at the head *at that moment*).
//!
//! `signal` notifies the head waiter with the token `SIGNAL`, `broadcast` every waiter with
//! `BROADCAST`, under the queue lock, and wakes them after releasing it. The token tells a
//! waiter that gives up what it owes: a `SIGNAL` is one wake-up someone else should get, so it
//! is passed to the (new) head; a `BROADCAST` reached everyone and is not.
//!
//! An async wait moves through four phases:
//!
//! | phase       | the lock        | in the queue | dropped here                                   |
//! |-------------|-----------------|--------------|------------------------------------------------|
//! | not polled  | held            | no           | releases the lock                              |
//! | queued      | released        | yes          | leaves the queue; if notified meanwhile, acts as below |
//! | re-locking  | being re-taken  | no (notified)| passes a `SIGNAL` on; the lock future cancels  |
//! | done        | held by caller  | no           | nothing                                        |
//!
//! The first poll queues the waiter (with the task's waker) and only then releases the lock, so
//! the blocking and async forms keep the same order. A `Cond` wait allocates one waiter record,
//! as every wait in the waiter core does.

use std::fmt;
use std::future::Future;
use std::mem;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::mutex::{LockFuture, Mutex, MutexGuard, MutexLockFuture, RawMutex};
use super::rwmutex::{
    RawRwMutex, ReadLockFuture, RwMutex, RwMutexReadFuture, RwMutexReadGuard, RwMutexWriteFuture,
    RwMutexWriteGuard, WriteLockFuture,
};
use crate::context::{Context as GoContext, ContextError};
use crate::sema::{Origin, Queue, ThreadWait, Ticket, WaitKind, WaitRecord, Waiter, CTX_DONE};

/// Token for a waiter woken by `signal`: one wake-up, to be passed on if unused.
const SIGNAL: u32 = 1;
/// Token for a waiter woken by `broadcast`: everyone was woken, nothing to pass on.
const BROADCAST: u32 = 2;

/// A lock a [`Cond`] can release and re-take around a wait: Go's `sync.Locker`, plus an async
/// lock.
///
/// Implemented by [`RawMutex`], [`RawRwMutex`] (the write lock), [`RLocker`] (the read lock of
/// a `RawRwMutex`), and by `&L` and `Arc<L>` for any locker `L`.
///
/// # Implementing
///
/// `lock_async` must return a future that does nothing until it is first polled (as every
/// Rust future written with `async` does), completes once the lock is held, and, when
/// dropped before completing, leaves the lock as if it had never been called. It must be
/// [`Unpin`]; a locker whose future is not can return it boxed (`Pin<Box<...>>`).
///
/// ```
/// use gosync::sync::{Cond, Locker, RawMutex};
///
/// /// A mutex that counts its lock calls.
/// #[derive(Default)]
/// struct Counted {
///     raw: RawMutex,
///     locks: std::sync::atomic::AtomicUsize,
/// }
///
/// impl Locker for Counted {
///     type LockFuture<'a> = gosync::sync::LockFuture<'a>;
///     fn lock(&self) {
///         self.locks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.raw.lock();
///     }
///     fn unlock(&self) {
///         self.raw.unlock();
///     }
///     fn lock_async(&self) -> Self::LockFuture<'_> {
///         self.locks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.raw.lock_async()
///     }
/// }
///
/// let c = Cond::new(Counted::default());
/// c.locker().lock();
/// c.signal();
/// c.locker().unlock();
/// assert_eq!(c.locker().locks.load(std::sync::atomic::Ordering::Relaxed), 1);
/// ```
pub trait Locker {
    /// The future returned by [`lock_async`](Self::lock_async).
    type LockFuture<'a>: Future<Output = ()> + Unpin + 'a
    where
        Self: 'a;

    /// Locks, parking the calling thread until the lock is available.
    ///
    /// ```
    /// use gosync::sync::{Locker, RawMutex};
    /// let m = RawMutex::new();
    /// Locker::lock(&m);
    /// assert!(m.is_locked());
    /// Locker::unlock(&m);
    /// ```
    #[track_caller]
    fn lock(&self);

    /// Unlocks. Unlocking a lock that is not held is the locker's misuse; [`RawMutex`] panics
    /// with `"sync: unlock of unlocked mutex"`.
    ///
    /// ```
    /// use gosync::sync::{Locker, RawMutex};
    /// let m = RawMutex::new();
    /// m.lock();
    /// Locker::unlock(&m);
    /// assert!(!m.is_locked());
    /// ```
    fn unlock(&self);

    /// Locks from an async task; the future completes once the lock is held.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::sync::{Locker, RawMutex};
    /// let m = RawMutex::new();
    /// Locker::lock_async(&m).await;
    /// assert!(m.is_locked());
    /// m.unlock();
    /// # });
    /// ```
    #[track_caller]
    fn lock_async(&self) -> Self::LockFuture<'_>;
}

impl Locker for RawMutex {
    type LockFuture<'a> = LockFuture<'a>;

    #[inline]
    fn lock(&self) {
        RawMutex::lock(self);
    }

    #[inline]
    fn unlock(&self) {
        RawMutex::unlock(self);
    }

    #[inline]
    fn lock_async(&self) -> LockFuture<'_> {
        RawMutex::lock_async(self)
    }
}

impl<L: Locker + ?Sized> Locker for &L {
    type LockFuture<'a>
        = L::LockFuture<'a>
    where
        Self: 'a;

    #[inline]
    fn lock(&self) {
        L::lock(self);
    }

    #[inline]
    fn unlock(&self) {
        L::unlock(self);
    }

    #[inline]
    fn lock_async(&self) -> Self::LockFuture<'_> {
        L::lock_async(self)
    }
}

impl<L: Locker + ?Sized> Locker for std::sync::Arc<L> {
    type LockFuture<'a>
        = L::LockFuture<'a>
    where
        Self: 'a;

    #[inline]
    fn lock(&self) {
        L::lock(self);
    }

    #[inline]
    fn unlock(&self) {
        L::unlock(self);
    }

    #[inline]
    fn lock_async(&self) -> Self::LockFuture<'_> {
        L::lock_async(self)
    }
}

impl Locker for RawRwMutex {
    type LockFuture<'a> = WriteLockFuture<'a>;

    /// Takes the write lock ([`RawRwMutex::lock`]).
    #[inline]
    fn lock(&self) {
        RawRwMutex::lock(self);
    }

    /// Releases the write lock ([`RawRwMutex::unlock`]).
    #[inline]
    fn unlock(&self) {
        RawRwMutex::unlock(self);
    }

    /// Takes the write lock from a task ([`RawRwMutex::lock_async`]).
    #[inline]
    fn lock_async(&self) -> WriteLockFuture<'_> {
        RawRwMutex::lock_async(self)
    }
}

/// The read side of a [`RawRwMutex`] as a [`Locker`]: `lock` is `rlock`, `unlock` is `runlock`
/// (Go's `rw.RLocker()`).
///
/// `R` is any pointer to the lock: `&RawRwMutex`, `Arc<RawRwMutex>`, ... A [`Cond`] over an
/// `RLocker` lets readers wait for a condition that a writer establishes; several waiters may
/// hold the read lock at once, so the state they read must only change under the write lock.
///
/// ```
/// use gosync::sync::{Cond, RLocker, RawRwMutex};
/// use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
///
/// let rw = RawRwMutex::new();
/// let published = AtomicBool::new(false);
/// let c = Cond::new(RLocker::new(&rw));
/// std::thread::scope(|s| {
///     for _ in 0..2 {
///         s.spawn(|| {
///             c.locker().lock(); // rlock
///             while !published.load(Relaxed) {
///                 c.wait();
///             }
///             c.locker().unlock(); // runlock
///         });
///     }
///     while c.waiters() < 2 {
///         std::thread::yield_now();
///     }
///     rw.lock(); // the writer changes the state
///     published.store(true, Relaxed);
///     rw.unlock();
///     c.broadcast();
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RLocker<R>(R);

impl<R: Deref<Target = RawRwMutex>> RLocker<R> {
    /// The read side of the lock `rw` points to.
    ///
    /// ```
    /// use gosync::sync::{RLocker, RawRwMutex};
    /// use std::sync::Arc;
    ///
    /// let rw = Arc::new(RawRwMutex::new());
    /// let r = RLocker::new(rw.clone());
    /// r.lock();
    /// assert_eq!(rw.reader_count(), 1);
    /// r.unlock();
    /// ```
    #[track_caller]
    pub fn new(rw: R) -> Self {
        RLocker(rw)
    }

    /// The lock whose read side this is.
    ///
    /// ```
    /// use gosync::sync::{RLocker, RawRwMutex};
    /// let rw = RawRwMutex::new();
    /// assert!(std::ptr::eq(RLocker::new(&rw).rwmutex(), &rw));
    /// ```
    pub fn rwmutex(&self) -> &RawRwMutex {
        &self.0
    }

    /// Returns the pointer to the lock.
    ///
    /// ```
    /// use gosync::sync::{RLocker, RawRwMutex};
    /// use std::sync::Arc;
    /// let rw = Arc::new(RawRwMutex::new());
    /// let back: Arc<RawRwMutex> = RLocker::new(rw.clone()).into_inner();
    /// assert!(Arc::ptr_eq(&back, &rw));
    /// ```
    pub fn into_inner(self) -> R {
        self.0
    }

    /// Takes a read lock ([`RawRwMutex::rlock`]).
    ///
    /// ```
    /// use gosync::sync::{RLocker, RawRwMutex};
    /// let rw = RawRwMutex::new();
    /// let r = RLocker::new(&rw);
    /// r.lock();
    /// r.lock(); // readers share the lock
    /// assert_eq!(rw.reader_count(), 2);
    /// r.unlock();
    /// r.unlock();
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) {
        self.0.rlock();
    }

    /// Releases a read lock ([`RawRwMutex::runlock`]).
    ///
    /// # Panics
    ///
    /// With `"sync: RUnlock of unlocked RWMutex"` if no read lock is held.
    ///
    /// ```
    /// use gosync::sync::{RLocker, RawRwMutex};
    /// let rw = RawRwMutex::new();
    /// let r = RLocker::new(&rw);
    /// r.lock();
    /// r.unlock();
    /// assert_eq!(rw.reader_count(), 0);
    /// ```
    #[inline]
    pub fn unlock(&self) {
        self.0.runlock();
    }

    /// Takes a read lock from a task ([`RawRwMutex::rlock_async`]).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::sync::{RLocker, RawRwMutex};
    /// let rw = RawRwMutex::new();
    /// let r = RLocker::new(&rw);
    /// r.lock_async().await;
    /// assert_eq!(rw.reader_count(), 1);
    /// r.unlock();
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As for [`RawRwMutex::rlock_async`]: a dropped future leaves the readers' queue, or
    /// releases the read lock it had just been granted.
    #[inline]
    #[track_caller]
    pub fn lock_async(&self) -> ReadLockFuture<'_> {
        self.0.rlock_async()
    }
}

impl<R: Deref<Target = RawRwMutex>> Locker for RLocker<R> {
    type LockFuture<'a>
        = ReadLockFuture<'a>
    where
        Self: 'a;

    /// Takes a read lock ([`RawRwMutex::rlock`]).
    #[inline]
    fn lock(&self) {
        RLocker::lock(self);
    }

    /// Releases a read lock ([`RawRwMutex::runlock`]); panics with
    /// `"sync: RUnlock of unlocked RWMutex"` if none is held.
    #[inline]
    fn unlock(&self) {
        RLocker::unlock(self);
    }

    /// Takes a read lock from a task ([`RawRwMutex::rlock_async`]).
    #[inline]
    fn lock_async(&self) -> ReadLockFuture<'_> {
        RLocker::lock_async(self)
    }
}

/// A lock guard that a [`Cond`] can give up and get back around a wait
/// ([`Cond::wait_guard`], [`Cond::wait_guard_async`]).
///
/// Dropping the guard must release the lock; [`relock`](Self::relock) and
/// [`relock_async`](Self::relock_async) take it again and return a new guard. The future must
/// follow the rules given for [`Locker::lock_async`]. Implemented by [`MutexGuard`],
/// [`RwMutexReadGuard`] and [`RwMutexWriteGuard`].
///
/// ```
/// use gosync::sync::{CondGuard, Mutex, MutexGuard};
///
/// let m = Mutex::new(1);
/// let g = m.lock();
/// let lock = MutexGuard::lock_of(&g);
/// drop(g);
/// let g = MutexGuard::relock(lock);
/// assert_eq!(*g, 1);
/// ```
pub trait CondGuard: Sized {
    /// What the guard locks, kept while the guard is given up (for a [`MutexGuard`], a
    /// reference to its [`Mutex`]).
    type Lock;
    /// The future returned by [`relock_async`](Self::relock_async).
    type LockFuture: Future<Output = Self> + Unpin;

    /// The lock `guard` holds.
    ///
    /// ```
    /// use gosync::sync::{CondGuard, Mutex, MutexGuard};
    /// let m = Mutex::new(());
    /// let g = m.lock();
    /// assert!(std::ptr::eq(MutexGuard::lock_of(&g), &m));
    /// ```
    fn lock_of(guard: &Self) -> Self::Lock;

    /// Takes the lock again, parking the calling thread until it is available.
    ///
    /// ```
    /// use gosync::sync::{CondGuard, Mutex, MutexGuard};
    /// let m = Mutex::new(5);
    /// assert_eq!(*MutexGuard::relock(&m), 5);
    /// ```
    #[track_caller]
    fn relock(lock: Self::Lock) -> Self;

    /// Takes the lock again from an async task.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::sync::{CondGuard, Mutex, MutexGuard};
    /// let m = Mutex::new(5);
    /// assert_eq!(*MutexGuard::relock_async(&m).await, 5);
    /// # });
    /// ```
    #[track_caller]
    fn relock_async(lock: Self::Lock) -> Self::LockFuture;
}

impl<'a, T: ?Sized> CondGuard for MutexGuard<'a, T> {
    type Lock = &'a Mutex<T>;
    type LockFuture = MutexLockFuture<'a, T>;

    #[inline]
    fn lock_of(guard: &Self) -> &'a Mutex<T> {
        MutexGuard::mutex(guard)
    }

    #[inline]
    fn relock(lock: &'a Mutex<T>) -> Self {
        lock.lock()
    }

    #[inline]
    fn relock_async(lock: &'a Mutex<T>) -> MutexLockFuture<'a, T> {
        lock.lock_async()
    }
}

impl<'a, T: ?Sized> CondGuard for RwMutexReadGuard<'a, T> {
    type Lock = &'a RwMutex<T>;
    type LockFuture = RwMutexReadFuture<'a, T>;

    #[inline]
    fn lock_of(guard: &Self) -> &'a RwMutex<T> {
        RwMutexReadGuard::rwmutex(guard)
    }

    #[inline]
    fn relock(lock: &'a RwMutex<T>) -> Self {
        lock.read()
    }

    #[inline]
    fn relock_async(lock: &'a RwMutex<T>) -> RwMutexReadFuture<'a, T> {
        lock.read_async()
    }
}

impl<'a, T: ?Sized> CondGuard for RwMutexWriteGuard<'a, T> {
    type Lock = &'a RwMutex<T>;
    type LockFuture = RwMutexWriteFuture<'a, T>;

    #[inline]
    fn lock_of(guard: &Self) -> &'a RwMutex<T> {
        RwMutexWriteGuard::rwmutex(guard)
    }

    #[inline]
    fn relock(lock: &'a RwMutex<T>) -> Self {
        lock.write()
    }

    #[inline]
    fn relock_async(lock: &'a RwMutex<T>) -> RwMutexWriteFuture<'a, T> {
        lock.write_async()
    }
}

/// A condition variable: Go's `sync.Cond`, for threads and async tasks alike.
///
/// A `Cond` is a place where threads and tasks wait for a condition on shared state to become
/// true, and where whoever changes that state announces it: [`signal`](Self::signal) wakes one
/// waiter, [`broadcast`](Self::broadcast) wakes them all. The state is protected by a lock, and
/// a wait releases that lock while it sleeps and takes it again before it returns, so the
/// waiter can re-check the condition with the lock held:
///
/// ```
/// use gosync::sync::{Cond, RawMutex};
/// use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
/// use std::sync::Arc;
///
/// let shared = Arc::new((Cond::new(RawMutex::new()), AtomicBool::new(false)));
/// let s = shared.clone();
/// let waiter = std::thread::spawn(move || {
///     let (c, ready) = &*s;
///     c.locker().lock();
///     while !ready.load(Relaxed) {
///         c.wait(); // unlocks, sleeps, locks again
///     }
///     c.locker().unlock();
/// });
/// let (c, ready) = &*shared;
/// c.locker().lock();
/// ready.store(true, Relaxed);
/// c.broadcast();
/// c.locker().unlock();
/// waiter.join().unwrap();
/// ```
///
/// # Two ways to name the lock
///
/// * **Go style**: the `Cond` owns its [`Locker`] `L` — Go's `c.L`, here
///   [`locker()`](Self::locker) — and [`wait`](Self::wait) unlocks and re-locks it. Lockers are
///   [`RawMutex`], [`RawRwMutex`] (its write side), [`RLocker`] (the read side of a
///   `RawRwMutex`, Go's `rw.RLocker()`), references and `Arc`s of these, and any type that
///   implements the trait.
/// * **Guard style**, as `std::sync::Condvar`: the lock comes with each wait, as a guard that
///   [`wait_guard`](Self::wait_guard) takes and gives back, so a [`Mutex<T>`](Mutex) keeps
///   protecting its data: `guard = cond.wait_guard(guard)`. Such a `Cond` needs no locker of
///   its own: `Cond::new(())` (the default type, so also `Cond::default()` where the type is
///   written `Cond`). Any guard that implements [`CondGuard`] will do: [`MutexGuard`], and
///   both guards of an [`RwMutex<T>`](RwMutex). Use one lock with one `Cond`.
///
/// ```
/// use gosync::sync::{Cond, Mutex};
/// use std::sync::Arc;
///
/// let state = Arc::new((Mutex::new(Vec::new()), Cond::new(())));
/// let consumer = {
///     let state = state.clone();
///     std::thread::spawn(move || {
///         let (queue, cond) = &*state;
///         let mut q = queue.lock();
///         while q.is_empty() {
///             q = cond.wait_guard(q);
///         }
///         q.pop().unwrap()
///     })
/// };
/// let (queue, cond) = &*state;
/// queue.lock().push(42);
/// cond.signal();
/// assert_eq!(consumer.join().unwrap(), 42);
/// ```
///
/// Every wait has a blocking form for threads and an `_async` form for tasks
/// ([`wait_async`](Self::wait_async), [`wait_guard_async`](Self::wait_guard_async)), and both
/// kinds of waiter may wait on the same `Cond`, in the same queue.
///
/// # Guarantees
///
/// * **No lost wake-up.** A waiter takes its place in the queue *before* it releases the lock,
///   so a signal sent by anyone who took the lock after it (or who changed the state under the
///   lock and signals afterwards) finds it there.
/// * **FIFO, by generation.** Waiters are woken in the order they began to wait (a task begins
///   when its future is first polled); a signal wakes the waiter that has waited longest, and
///   never one that began to wait after the signal. (A signal that a dropped wait passes on
///   goes to the longest waiter at the time of the drop.)
/// * **No spurious wake-ups** from the `Cond` itself. Still, wait in a loop that re-checks the
///   condition: between the wake-up and the re-lock, another locker may have changed the state.
/// * `signal` and `broadcast` with nobody waiting do nothing; a `Cond` stores no wake-up for a
///   later waiter. The caller may, but need not, hold the lock when signalling.
///
/// # Happens-before
///
/// In the terminology of the Go memory model, a call to `signal` or `broadcast` synchronizes
/// before the return of any wait that it unblocks. The unlock and the re-lock a wait performs
/// are ordinary calls on the locker, with the locker's own edges (for a mutex: the n'th unlock
/// synchronizes before the (n+1)'th lock returns).
///
/// # Misuse
///
/// Waiting without holding the lock is a bug (in Go, undefined behaviour). Here the wait calls
/// the locker's unlock, so with a [`RawMutex`] that nobody holds it panics with
/// `"sync: unlock of unlocked mutex"` (with an [`RLocker`], `"sync: RUnlock of unlocked
/// RWMutex"`), and the `Cond`'s queue is left as it was. If someone else holds the lock, the
/// wait releases it from under them, as Go's would, since neither lock has an owner. Go's
/// `Cond` must not be copied after first use; a Rust `Cond` cannot be moved while anyone waits
/// on it.
///
/// # Cancel safety
///
/// A [`WaitFuture`] (or [`WaitGuardFuture`]) stands for the caller's hold on the lock from the
/// moment it is created. Completed, it has re-locked; **dropped before completion, the lock is
/// not held** — the future released it on its first poll, or releases it when dropped before
/// that. A dropped wait that had already been woken by `signal` passes the wake-up on to the
/// waiter then at the head of the queue, so no signal is lost; one woken by `broadcast` has
/// nothing to pass on.
///
/// | the future is dropped            | the lock is      | its wake-up                       |
/// |----------------------------------|------------------|-----------------------------------|
/// | before its first poll            | released now     | none taken                        |
/// | while queued                     | already released | none taken; it leaves the queue   |
/// | signalled, re-locking            | not held         | passed on to the next waiter      |
/// | broadcast, re-locking            | not held         | nothing to pass on                |
/// | after completing                 | held by caller   | used                              |
///
/// So after a wait abandoned on a timeout, take the lock again before touching the state:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use gosync::sync::{Cond, RawMutex};
/// use std::time::Duration;
///
/// let c = Cond::new(RawMutex::new());
/// c.locker().lock_async().await;
/// let woken = tokio::time::timeout(Duration::from_millis(1), c.wait_async()).await;
/// if woken.is_err() {
///     assert!(!c.locker().is_locked()); // timed out: the lock is not held
///     c.locker().lock_async().await;
/// }
/// c.locker().unlock();
/// # }
/// ```
pub struct Cond<L = ()> {
    queue: Queue,
    locker: L,
}

impl<L: Default> Default for Cond<L> {
    fn default() -> Self {
        Cond::new(L::default())
    }
}

impl<L: fmt::Debug> fmt::Debug for Cond<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cond")
            .field("locker", &self.locker)
            .field("waiters", &self.waiters())
            .finish()
    }
}

impl<L> Cond<L> {
    /// A condition variable over `locker` (Go's `sync.NewCond(l)`); `()` for one used only with
    /// guards.
    ///
    /// ```
    /// use gosync::sync::{Cond, RawMutex};
    /// let c = Cond::new(RawMutex::new());
    /// let guards_only = Cond::new(());
    /// # let _ = (c, guards_only);
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new(locker: L) -> Self {
        Cond {
            queue: Queue::new(),
            locker,
        }
    }

    /// A condition variable over `locker` (Go's `sync.NewCond(l)`); `()` for one used only with
    /// guards.
    #[cfg(loom)]
    #[track_caller]
    pub fn new(locker: L) -> Self {
        Cond {
            queue: Queue::new(),
            locker,
        }
    }

    /// The locker (Go's `c.L`): hold it while changing the condition and around a wait.
    ///
    /// ```
    /// use gosync::sync::{Cond, RawMutex};
    /// let c = Cond::new(RawMutex::new());
    /// c.locker().lock();
    /// assert!(c.locker().is_locked());
    /// c.locker().unlock();
    /// ```
    pub fn locker(&self) -> &L {
        &self.locker
    }

    /// Consumes the `Cond`, returning its locker.
    ///
    /// ```
    /// use gosync::sync::{Cond, RawMutex};
    /// let m: RawMutex = Cond::new(RawMutex::new()).into_locker();
    /// assert!(!m.is_locked());
    /// ```
    pub fn into_locker(self) -> L {
        self.locker
    }

    /// Wakes the waiter that has waited longest, if any (Go's `Signal`).
    ///
    /// The caller may hold the lock but need not. A signal with nobody waiting does nothing.
    ///
    /// ```
    /// use gosync::sync::{Cond, RawMutex};
    /// let c = Cond::new(RawMutex::new());
    /// c.signal(); // nobody waits: a no-op
    /// assert_eq!(c.waiters(), 0);
    /// ```
    pub fn signal(&self) {
        // A waiter enters the queue before it releases the lock, so anyone who changed the
        // condition under the lock after that sees it counted here.
        if self.queue.len() == 0 {
            return;
        }
        signal_one(&self.queue);
    }

    /// Wakes every waiter (Go's `Broadcast`).
    ///
    /// The caller may hold the lock but need not. Waiters that begin to wait after the call are
    /// not woken.
    ///
    /// ```
    /// use gosync::sync::{Cond, RawMutex};
    /// let c = Cond::new(RawMutex::new());
    /// c.broadcast();
    /// assert_eq!(c.waiters(), 0);
    /// ```
    pub fn broadcast(&self) {
        if self.queue.len() == 0 {
            return;
        }
        let woken = self.queue.lock().notify_all(BROADCAST);
        crate::sema::wake_all(woken).resume();
    }

    /// The number of waiters not yet woken.
    ///
    /// ```
    /// use gosync::sync::{Cond, RawMutex};
    /// assert_eq!(Cond::new(RawMutex::new()).waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.queue.len()
    }

    /// Who waits on this `Cond`, where, and for how long, longest waiter first.
    ///
    /// ```
    /// use gosync::sync::{Cond, RawMutex};
    /// assert!(Cond::new(RawMutex::new()).waiting().is_empty());
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.queue.records()
    }

    /// Gives up `guard`'s lock, parks the calling thread until woken by
    /// [`signal`](Self::signal) or [`broadcast`](Self::broadcast), then takes the lock again
    /// and returns the new guard — `std::sync::Condvar::wait`, for any [`CondGuard`].
    ///
    /// Use one lock with one `Cond`: its waits and the changes of the condition they wait for
    /// must be under the same lock.
    ///
    /// ```
    /// use gosync::sync::{Cond, Mutex};
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(false), Cond::new(())));
    /// let p = pair.clone();
    /// std::thread::spawn(move || {
    ///     *p.0.lock() = true;
    ///     p.1.signal();
    /// });
    /// let (m, c) = &*pair;
    /// let mut started = m.lock();
    /// while !*started {
    ///     started = c.wait_guard(started);
    /// }
    /// ```
    #[track_caller]
    pub fn wait_guard<G: CondGuard>(&self, guard: G) -> G {
        let lock = G::lock_of(&guard);
        let registered = Registered::new(&self.queue, Origin::here(WaitKind::Cond));
        drop(guard);
        registered.park();
        G::relock(lock)
    }

    /// Gives up `guard`'s lock and waits from an async task until woken, then takes the lock
    /// again; the future's output is the new guard.
    ///
    /// # Cancel safety
    ///
    /// Dropped before it completes, the future has given up the guard (the lock is not held)
    /// and, if a `signal` had already woken it, passes that wake-up on to the next waiter.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::sync::{Cond, Mutex};
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(0), Cond::new(())));
    /// let p = pair.clone();
    /// std::thread::spawn(move || {
    ///     *p.0.lock() = 7;
    ///     p.1.broadcast();
    /// });
    /// let (m, c) = &*pair;
    /// let mut n = m.lock_async().await;
    /// while *n == 0 {
    ///     n = c.wait_guard_async(n).await;
    /// }
    /// assert_eq!(*n, 7);
    /// # });
    /// ```
    #[track_caller]
    pub fn wait_guard_async<G: CondGuard>(&self, guard: G) -> WaitGuardFuture<'_, G> {
        let relock = G::relock_async(G::lock_of(&guard));
        WaitGuardFuture {
            inner: Waiting::new(&self.queue, Origin::here(WaitKind::Cond), guard, relock),
        }
    }
}

impl<L: Locker> Cond<L> {
    /// Unlocks the locker, parks the calling thread until woken by [`signal`](Self::signal) or
    /// [`broadcast`](Self::broadcast), and locks it again before returning (Go's `Wait`).
    ///
    /// The caller must hold the lock. Since the condition may have changed again before the
    /// lock is re-taken, wait in a loop:
    ///
    /// ```
    /// use gosync::sync::{Cond, RawMutex};
    /// use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    /// use std::sync::Arc;
    ///
    /// let s = Arc::new((Cond::new(RawMutex::new()), AtomicUsize::new(0)));
    /// let t = {
    ///     let s = s.clone();
    ///     std::thread::spawn(move || {
    ///         s.0.locker().lock();
    ///         s.1.store(1, Relaxed);
    ///         s.0.signal();
    ///         s.0.locker().unlock();
    ///     })
    /// };
    /// let (c, n) = &*s;
    /// c.locker().lock();
    /// while n.load(Relaxed) == 0 {
    ///     c.wait();
    /// }
    /// c.locker().unlock();
    /// t.join().unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// If the locker's unlock panics because the lock is not held: with a [`RawMutex`],
    /// `"sync: unlock of unlocked mutex"`.
    #[track_caller]
    pub fn wait(&self) {
        let registered = Registered::new(&self.queue, Origin::here(WaitKind::Cond));
        self.locker.unlock();
        registered.park();
        self.locker.lock();
    }

    /// As [`wait`](Self::wait), but gives up waiting when `ctx` is done first: then it returns
    /// the context's error — with the lock held again either way, so the caller's unlock is
    /// the same on both paths. A `signal` meant for this waiter that loses the race to the
    /// context goes to the next waiter. If `ctx` is done already it returns at once, without
    /// releasing the lock.
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::sync::{Cond, RawMutex};
    /// use std::time::Duration;
    ///
    /// let c = Cond::new(RawMutex::new());
    /// let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    /// c.locker().lock();
    /// assert_eq!(c.wait_ctx(&ctx), Err(context::ContextError::DeadlineExceeded));
    /// assert!(c.locker().is_locked());
    /// c.locker().unlock();
    /// ```
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    #[track_caller]
    pub fn wait_ctx(&self, ctx: &GoContext) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        let registered = Registered::new(&self.queue, Origin::here(WaitKind::Cond));
        let watch = ctx.watch(registered.waiter())?;
        self.locker.unlock();
        let token = registered.park_keep();
        drop(watch);
        let result = if token == Some(CTX_DONE) {
            // Leave the queue (a signal that met us there went on to the next waiter).
            drop(registered);
            Err(ctx
                .err()
                .expect("a context completes its waiters when done"))
        } else {
            registered.disarm();
            Ok(())
        };
        self.locker.lock();
        result
    }

    /// Unlocks the locker and waits from an async task until woken, then locks it again;
    /// the future completes with the lock held (Go's `Wait`, for tasks).
    ///
    /// The lock is released when the future is first polled, after it has taken its place in
    /// the queue.
    ///
    /// # Cancel safety
    ///
    /// Dropped before it completes, the future leaves the lock **not held** (released by the
    /// first poll, or by the drop itself if it was never polled) and, if a `signal` had
    /// already woken it, passes that wake-up on to the next waiter. A dropped future that had
    /// only been queued just leaves the queue.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use gosync::sync::{Cond, RawMutex};
    /// use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    /// use std::sync::Arc;
    ///
    /// let s = Arc::new((Cond::new(RawMutex::new()), AtomicBool::new(false)));
    /// let waiter = tokio::spawn({
    ///     let s = s.clone();
    ///     async move {
    ///         let (c, ready) = &*s;
    ///         c.locker().lock_async().await;
    ///         while !ready.load(Relaxed) {
    ///             c.wait_async().await;
    ///         }
    ///         c.locker().unlock();
    ///     }
    /// });
    /// let (c, ready) = &*s;
    /// c.locker().lock_async().await;
    /// ready.store(true, Relaxed);
    /// c.broadcast();
    /// c.locker().unlock();
    /// waiter.await.unwrap();
    /// # }
    /// ```
    #[track_caller]
    pub fn wait_async(&self) -> WaitFuture<'_, L> {
        let relock = self.locker.lock_async();
        WaitFuture {
            inner: Waiting::new(
                &self.queue,
                Origin::here(WaitKind::Cond),
                Held(&self.locker),
                relock,
            ),
        }
    }
}

/// Wakes the head waiter with a `SIGNAL` token, if there is one.
fn signal_one(queue: &Queue) {
    let woken = queue.lock().notify_front(SIGNAL);
    if let Some(n) = woken {
        n.wake();
    }
}

/// A waiter's place in a `Cond`'s queue. Dropped before its wake-up has been used, it leaves
/// the queue, or passes a `signal` it had received on to the next waiter.
struct Registered<'a> {
    queue: &'a Queue,
    ticket: Option<Ticket>,
    origin: Origin,
}

impl<'a> Registered<'a> {
    /// Queues a waiter for the calling thread (`cx` is `None`) or for the task polled with
    /// `cx`.
    fn enqueue(queue: &'a Queue, origin: Origin, cx: Option<&Context<'_>>) -> Self {
        let origin = origin.on(queue.ident());
        let waiter = Waiter::new(origin, None, cx);
        let ticket = queue.lock().push(&waiter, false);
        Registered {
            queue,
            ticket: Some(ticket),
            origin,
        }
    }

    /// Queues the calling thread.
    fn new(queue: &'a Queue, origin: Origin) -> Self {
        Self::enqueue(queue, origin, None)
    }

    /// Parks the calling thread until its waiter is notified.
    fn park(mut self) {
        let ticket = self.ticket.take().expect("registered");
        let _wait = ThreadWait::enter(&self.origin, Some(ticket.waiter().since()));
        ticket.waiter().park(None);
        Waiter::recycle(ticket.into_waiter());
    }

    /// The queued waiter, to register with a context as well.
    fn waiter(&self) -> &crate::loom::Arc<Waiter> {
        self.ticket.as_ref().expect("registered").waiter_arc()
    }

    /// Parks the calling thread until its waiter is completed; returns the token and stays
    /// registered (for a context's completion, whose entry must still leave the queue).
    fn park_keep(&self) -> Option<u32> {
        let waiter = self.ticket.as_ref().expect("registered").waiter();
        let _wait = ThreadWait::enter(&self.origin, Some(waiter.since()));
        waiter.park(None)
    }

    /// The wake-up was used: nothing to pass on or take back.
    fn disarm(mut self) {
        self.ticket = None;
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let mut q = self.queue.lock();
        // Notified meanwhile, and the wake-up will not be used: a signal goes to the next
        // waiter, as if it had come a moment later.
        let passed = match q.withdraw(&ticket) {
            Some(SIGNAL) => q.notify_front(SIGNAL),
            _ => None,
        };
        drop(q);
        if let Some(n) = passed {
            n.wake();
        }
    }
}

/// Releases a [`Locker`] when dropped: the Go-style wait's stand-in for a guard.
struct Held<'a, L: Locker>(&'a L);

impl<L: Locker> Drop for Held<'_, L> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// Where an async wait is.
enum Phase<'a, H> {
    /// Not polled yet; `H` holds the lock, and dropping it releases the lock.
    Holding(H),
    /// In the queue, with the lock released.
    Queued(Registered<'a>),
    /// Woken with this token; taking the lock again.
    Relocking(u32),
    /// Completed.
    Done,
}

/// The state machine shared by [`WaitFuture`] and [`WaitGuardFuture`]: `H` holds the lock until
/// the first poll, `F` takes it again.
struct Waiting<'a, H, F> {
    queue: &'a Queue,
    origin: Origin,
    phase: Phase<'a, H>,
    relock: F,
}

impl<'a, H, F: Future + Unpin> Waiting<'a, H, F> {
    fn new(queue: &'a Queue, origin: Origin, held: H, relock: F) -> Self {
        Waiting {
            queue,
            origin,
            phase: Phase::Holding(held),
            relock,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<F::Output> {
        loop {
            match &mut self.phase {
                Phase::Holding(_) => {
                    // Queue first, then release the lock: a signal sent by whoever takes the
                    // lock next finds us in the queue.
                    let registered = Registered::enqueue(self.queue, self.origin, Some(cx));
                    let held = mem::replace(&mut self.phase, Phase::Queued(registered));
                    // If releasing panics (the lock was not held), `Drop` takes us out again.
                    drop(held);
                }
                Phase::Queued(registered) => {
                    let ticket = registered.ticket.as_ref().expect("queued");
                    match ticket.waiter().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(token) => {
                            registered.ticket = None;
                            self.phase = Phase::Relocking(token);
                        }
                    }
                }
                Phase::Relocking(_) => {
                    let out = match Pin::new(&mut self.relock).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(out) => out,
                    };
                    self.phase = Phase::Done;
                    return Poll::Ready(out);
                }
                Phase::Done => panic!("Cond wait future polled after completion"),
            }
        }
    }

    fn state(&self) -> &'static str {
        match self.phase {
            Phase::Holding(_) => "not polled",
            Phase::Queued(_) => "queued",
            Phase::Relocking(_) => "relocking",
            Phase::Done => "done",
        }
    }
}

// The held lock is never pinned (it is only moved out and dropped), so a wait can be moved
// whenever its re-lock future can.
impl<H, F: Unpin> Unpin for Waiting<'_, H, F> {}

impl<H, F> Drop for Waiting<'_, H, F> {
    fn drop(&mut self) {
        // `Holding` releases the lock and `Queued` leaves the queue (or passes its signal on) as
        // they drop; a waiter woken by a signal but gone before re-locking passes it on here.
        if let Phase::Relocking(SIGNAL) = self.phase {
            signal_one(self.queue);
        }
    }
}

/// The future returned by [`Cond::wait_async`]; completes with the locker locked.
///
/// See [`Cond::wait_async`] for cancel safety: dropped before it completes, it leaves the lock
/// not held and passes on a signal it had received.
#[must_use = "futures do nothing unless polled; dropping this one releases the lock"]
pub struct WaitFuture<'a, L: Locker + 'a> {
    inner: Waiting<'a, Held<'a, L>, L::LockFuture<'a>>,
}

impl<L: Locker> fmt::Debug for WaitFuture<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitFuture")
            .field("state", &self.inner.state())
            .finish()
    }
}

impl<L: Locker> Future for WaitFuture<'_, L> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().inner.poll(cx)
    }
}

/// The future returned by [`Cond::wait_guard_async`]; its output is the guard, locked again.
///
/// See [`Cond::wait_guard_async`] for cancel safety: dropped before it completes, it has given
/// up the guard and passes on a signal it had received.
#[must_use = "futures do nothing unless polled; dropping this one releases the lock"]
pub struct WaitGuardFuture<'a, G: CondGuard> {
    inner: Waiting<'a, G, G::LockFuture>,
}

impl<G: CondGuard> fmt::Debug for WaitGuardFuture<'_, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGuardFuture")
            .field("state", &self.inner.state())
            .finish()
    }
}

impl<G: CondGuard> Future for WaitGuardFuture<'_, G> {
    type Output = G;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<G> {
        self.get_mut().inner.poll(cx)
    }
}
