//! Re-entrant (recursive) mutexes: owned by a thread, or by a token the caller supplies.
//!
//! Go has no recursive mutex, on purpose; the seed builds two around a `sync.Mutex`, and so
//! does this module, around [`sync::RawMutex`](crate::sync::RawMutex):
//!
//! * [`RawReentrantMutex`] (and [`ReentrantMutex<T>`], which carries data) is owned by the
//!   thread that locks it, as the seed's goroutine-id `RecursiveMutex`: the owner may lock it
//!   again, and every `lock` needs its `unlock`;
//! * [`TokenMutex`] is owned by a token the caller passes, as the seed's
//!   `TokenRecursiveMutex`: whoever presents the owner's token re-enters. A task that moves
//!   between threads keeps its token, so this is the one to use from async code
//!   ([`lock_async`](TokenMutex::lock_async)).
//!
//! | Go (the seed's recipes)               | gosync                                               |
//! |---------------------------------------|------------------------------------------------------|
//! | `RecursiveMutex` (goroutine id owner) | [`RawReentrantMutex`], [`ReentrantMutex<T>`] (thread owner) |
//! | `m.Lock()` / `m.Unlock()`             | [`lock`](RawReentrantMutex::lock) / [`unlock`](RawReentrantMutex::unlock), or a [`ReentrantMutexGuard`] |
//! | `TokenRecursiveMutex`                 | [`TokenMutex`]                                       |
//! | `m.Lock(token)` / `m.Unlock(token)`   | [`lock(token)`](TokenMutex::lock), [`lock_async(token)`](TokenMutex::lock_async) / [`unlock(token)`](TokenMutex::unlock) |
//! | `m.TryLock()`                         | [`try_lock`](RawReentrantMutex::try_lock), [`try_lock(token)`](TokenMutex::try_lock) |
//! | `m.recursion`                         | [`holds`](RawReentrantMutex::holds)                  |
//!
//! # What they guarantee
//!
//! Mutual exclusion between owners: while one owner (thread, or token) holds the mutex, no
//! other does. The owner may lock it again any number of times without waiting; the mutex is
//! released when the owner has unlocked it as many times as it locked it ([`holds`] counts
//! them). A locker that waits, waits in the library's waiter core, exactly as for
//! [`sync::Mutex`](crate::sync::Mutex) — FIFO with Go's starvation mode, shared by threads and
//! tasks — and shows up in [`diag::blocked`](crate::diag::blocked) as a `Mutex` wait.
//!
//! In the terminology of the Go memory model, the unlock that releases the n'th ownership (the
//! owner's last unlock) synchronizes before the lock that begins ownership m returns, for any
//! n < m. A re-entrant lock begins no ownership and waits for nothing: it is ordered after
//! the owner's first lock by the owner's own program order.
//!
//! # Misuse
//!
//! * Unlocking a mutex owned by another thread panics naming both threads, e.g.
//!   `"reentrant: unlock by thread 'worker' (ThreadId(3)) of a lock owned by thread 'main'
//!   (ThreadId(1))"`; a [`TokenMutex`] unlocked with a token that does not own it panics
//!   naming both tokens: `"reentrant: unlock with token 2 of a lock owned by token 1"`.
//! * Unlocking an unlocked one panics with `"reentrant: unlock of unlocked mutex"`, Go's
//!   message adapted.
//! * Either panic leaves the mutex as it was, and the owner may go on and unlock it.
//! * No poisoning: a panic that drops a [`ReentrantMutexGuard`] releases that hold.
//! * A thread that ends while it owns a [`RawReentrantMutex`] leaves it locked forever, as a
//!   goroutine that returns without unlocking leaves a Go mutex: thread ids here are never
//!   reused, so no later thread can inherit the ownership by accident.
//!
//! # When to use one
//!
//! Rarely. The seed's caveat is the Go team's: a recursive lock usually hides a design problem.
//! A function that locks assumes the data's invariants hold when it gets the lock; with
//! re-entry, it may be called from the middle of a critical section where they do not. The
//! usual fix is to split each function into a locking wrapper and an unlocked body that
//! assumes the lock is held. A re-entrant mutex is for the cases where that split is not in
//! your hands: callbacks that re-enter an API, code ported as it is.
//!
//! # Design
//!
//! Each mutex is a [`RawMutex`] plus the owner and a hold count, as in the seed. Re-entry is
//! one load of the owner word and one update of the count, and never touches the `RawMutex`.
//!
//! Thread ownership needs a cheap id for the calling thread. `std::thread::current().id()`
//! clones a reference-counted handle; the address of a thread-local (parking_lot's choice) is
//! cheap but is reused by threads started later. So each thread takes a number from a global
//! counter the first time it locks a re-entrant mutex and keeps it in a thread-local: after
//! that, reading it is one thread-local load, and no number is ever given twice. The thread's
//! std `ThreadId` and name are noted then too, once, for panic messages and
//! [`owner`](RawReentrantMutex::owner).
//!
//! A token is a `u64`, not a generic `T: Eq`, because re-entry compares the token without
//! taking a lock, which takes one atomic word; any identity maps to one (a task or request
//! number, or [`new_token`]). Since a token may be shared by flows running at once on
//! several threads, [`TokenMutex`] counts holds with atomic read-modify-writes and checks the
//! owner again after counting a re-entry (see `TokenMutex::relock`).
//!
//! [`holds`]: RawReentrantMutex::holds

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::ThreadId;

use crate::context::{Context as GoContext, ContextError};
use crate::loom::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::{LockFuture, RawMutex};

/// The message of an unlock of an unlocked re-entrant mutex.
const UNLOCK_OF_UNLOCKED: &str = "reentrant: unlock of unlocked mutex";

#[cold]
#[inline(never)]
fn hold_overflow() -> ! {
    panic!("reentrant: too many holds of one mutex");
}

/// The calling thread's number for this module: given from a global counter on first use, so
/// never 0 (which means "no owner") and never given twice.
mod ident {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};

    static NEXT: AtomicU64 = AtomicU64::new(1);

    #[cfg(not(loom))]
    std::thread_local! {
        static ID: Cell<u64> = const { Cell::new(0) };
    }
    // A loom model runs its threads on one OS thread, so they need loom's thread-locals.
    #[cfg(loom)]
    loom::thread_local! {
        static ID: Cell<u64> = Cell::new(0);
    }

    /// The calling thread's number. A `const` thread-local without a destructor: reading it
    /// is one load, and it works even while the thread's other thread-locals are torn down.
    #[inline]
    pub(super) fn current() -> u64 {
        let id = ID.with(Cell::get);
        if id != 0 {
            id
        } else {
            assign()
        }
    }

    #[cold]
    #[inline(never)]
    fn assign() -> u64 {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        ID.with(|c| c.set(id));
        super::names::register(id);
        id
    }
}

/// The std identity and name of every live thread that has a number, for panic messages and
/// `owner()`: written once when a thread gets its number, removed when it ends.
#[cfg(not(loom))]
mod names {
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::sync::{Mutex, MutexGuard, PoisonError};
    use std::thread::ThreadId;

    struct Known {
        thread: ThreadId,
        name: Option<Box<str>>,
    }

    static KNOWN: Mutex<BTreeMap<u64, Known>> = Mutex::new(BTreeMap::new());

    fn known() -> MutexGuard<'static, BTreeMap<u64, Known>> {
        // Nothing here panics while holding the lock, but be safe: the map stays consistent.
        KNOWN.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes the thread's entry when the thread ends.
    struct Forget(Cell<u64>);

    impl Drop for Forget {
        fn drop(&mut self) {
            known().remove(&self.0.get());
        }
    }

    std::thread_local! {
        static FORGET: Forget = const { Forget(Cell::new(0)) };
    }

    pub(super) fn register(id: u64) {
        // A thread whose thread-locals are already being torn down cannot arrange to be
        // forgotten; it stays nameless (messages then show its number).
        let _ = FORGET.try_with(|f| {
            f.0.set(id);
            let t = std::thread::current();
            let name = t.name().map(Box::from);
            known().insert(
                id,
                Known {
                    thread: t.id(),
                    name,
                },
            );
        });
    }

    pub(super) fn thread_of(id: u64) -> Option<ThreadId> {
        known().get(&id).map(|k| k.thread)
    }

    /// `thread 'name' (ThreadId(n))`, as `diag` and std's panic messages name threads.
    pub(super) fn describe(id: u64) -> String {
        match known().get(&id) {
            Some(Known {
                thread,
                name: Some(name),
            }) => format!("thread '{name}' ({thread:?})"),
            Some(Known { thread, name: None }) => format!("thread {thread:?}"),
            None => format!("thread #{id} (ended)"),
        }
    }
}

/// Under loom, threads are not real: they have numbers only.
#[cfg(loom)]
mod names {
    pub(super) fn register(_id: u64) {}

    pub(super) fn thread_of(_id: u64) -> Option<std::thread::ThreadId> {
        None
    }

    pub(super) fn describe(id: u64) -> String {
        format!("thread #{id}")
    }
}

#[cold]
#[inline(never)]
fn unlock_by_non_owner(me: u64, owner: u64) -> ! {
    if owner == 0 {
        panic!("{UNLOCK_OF_UNLOCKED}");
    }
    panic!(
        "reentrant: unlock by {} of a lock owned by {}",
        names::describe(me),
        names::describe(owner)
    );
}

/// A fresh token for a [`TokenMutex`], never returned before.
///
/// Tokens count down from `u64::MAX`, so they do not collide with small numbers picked by
/// hand (request ids, task numbers) used as tokens alongside them.
///
/// ```
/// let (a, b) = (gosync::reentrant::new_token(), gosync::reentrant::new_token());
/// assert_ne!(a, b);
/// ```
pub fn new_token() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);
    NEXT.fetch_sub(1, std::sync::atomic::Ordering::Relaxed)
}

/// A re-entrant mutex without data, owned by the thread that locks it: the seed's
/// `RecursiveMutex`.
///
/// The owner may [`lock`](Self::lock) it again without waiting; it is released by the
/// owner's last [`unlock`](Self::unlock) (one per lock). Only the owner may unlock it. See the
/// [module docs](self) for what it guarantees and why you rarely want one.
///
/// There is no `lock_async`: a task may run on a different thread after every `.await`, so
/// thread ownership means nothing to it. Use a [`TokenMutex`] with a token per task.
///
/// ```
/// use gosync::reentrant::RawReentrantMutex;
///
/// let m = RawReentrantMutex::new();
/// m.lock();
/// m.lock(); // the owner re-enters
/// assert_eq!(m.holds(), 2);
/// m.unlock();
/// assert!(m.is_locked());
/// m.unlock();
/// assert!(!m.is_locked());
/// ```
pub struct RawReentrantMutex {
    raw: RawMutex,
    /// The owner's thread number, 0 when unowned. Written only by the holder of `raw` (set
    /// after locking it, cleared before unlocking it), so a thread that reads its own number
    /// here owns the mutex, and one that reads anything else does not: its own last write, if
    /// any, was the clearing. That is why relaxed loads suffice.
    owner: AtomicU64,
    /// The owner's hold count; read and written only by the owner (relaxed, since ownership
    /// passes through `raw`, which orders it).
    holds: AtomicUsize,
}

impl RawReentrantMutex {
    /// A new, unlocked mutex.
    ///
    /// ```
    /// static M: gosync::reentrant::RawReentrantMutex = gosync::reentrant::RawReentrantMutex::new();
    /// M.lock();
    /// M.unlock();
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new() -> Self {
        RawReentrantMutex {
            raw: RawMutex::new(),
            owner: AtomicU64::new(0),
            holds: AtomicUsize::new(0),
        }
    }

    /// A new, unlocked mutex.
    #[cfg(loom)]
    #[track_caller]
    pub fn new() -> Self {
        RawReentrantMutex {
            raw: RawMutex::new(),
            owner: AtomicU64::new(0),
            holds: AtomicUsize::new(0),
        }
    }

    /// Locks the mutex: at once if the calling thread owns it already, otherwise parking the
    /// thread until it is free.
    ///
    /// ```
    /// let m = gosync::reentrant::RawReentrantMutex::new();
    /// m.lock();
    /// m.lock();
    /// m.unlock();
    /// m.unlock();
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) {
        let me = ident::current();
        if self.owner.load(Ordering::Relaxed) == me {
            self.relock();
        } else {
            self.raw.lock();
            self.acquired(me);
        }
    }

    /// Locks the mutex, as [`lock`](Self::lock), unless `ctx` is done first.
    ///
    /// As [`RawMutex::lock_ctx`], it fails at once if `ctx` is already done — even for the
    /// owner, whose lock would not have waited — and if `ctx` ends just as the lock is handed
    /// over, exactly one of the two happens.
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::reentrant::RawReentrantMutex;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let m = Arc::new(RawReentrantMutex::new());
    /// m.lock();
    /// let other = m.clone();
    /// std::thread::spawn(move || {
    ///     let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    ///     assert_eq!(other.lock_ctx(&ctx), Err(context::ContextError::DeadlineExceeded));
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(m.lock_ctx(&context::background()), Ok(())); // re-entry
    /// m.unlock();
    /// m.unlock();
    /// ```
    #[track_caller]
    pub fn lock_ctx(&self, ctx: &GoContext) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        let me = ident::current();
        if self.owner.load(Ordering::Relaxed) == me {
            self.relock();
        } else {
            self.raw.lock_ctx(ctx)?;
            self.acquired(me);
        }
        Ok(())
    }

    /// Locks the mutex if the calling thread owns it already or it is free; `true` on
    /// success.
    ///
    /// ```
    /// use gosync::reentrant::RawReentrantMutex;
    /// use std::sync::Arc;
    ///
    /// let m = Arc::new(RawReentrantMutex::new());
    /// assert!(m.try_lock());
    /// assert!(m.try_lock()); // the owner re-enters
    /// let other = m.clone();
    /// assert!(!std::thread::spawn(move || other.try_lock()).join().unwrap());
    /// m.unlock();
    /// m.unlock();
    /// ```
    #[inline]
    pub fn try_lock(&self) -> bool {
        let me = ident::current();
        if self.owner.load(Ordering::Relaxed) == me {
            self.relock();
            true
        } else if self.raw.try_lock() {
            self.acquired(me);
            true
        } else {
            false
        }
    }

    /// Releases one hold of the calling thread; the last one unlocks the mutex, waking a
    /// waiter if there is one.
    ///
    /// # Panics
    ///
    /// If the calling thread does not own the mutex: with `"reentrant: unlock by thread ...
    /// of a lock owned by thread ..."`, naming both, or with
    /// `"reentrant: unlock of unlocked mutex"` if no one owns it. The mutex is left as it was.
    ///
    /// ```
    /// let m = gosync::reentrant::RawReentrantMutex::new();
    /// let caught = std::panic::catch_unwind(|| m.unlock());
    /// assert!(caught.is_err());
    /// ```
    #[inline]
    pub fn unlock(&self) {
        let me = ident::current();
        let owner = self.owner.load(Ordering::Relaxed);
        if owner != me {
            unlock_by_non_owner(me, owner);
        }
        self.release();
    }

    /// Whether some thread holds the mutex right now (a snapshot).
    ///
    /// ```
    /// let m = gosync::reentrant::RawReentrantMutex::new();
    /// assert!(!m.is_locked());
    /// m.lock();
    /// assert!(m.is_locked());
    /// m.unlock();
    /// ```
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// How many holds the calling thread has (the seed's `recursion`): 0 if it does not own
    /// the mutex.
    ///
    /// ```
    /// let m = gosync::reentrant::RawReentrantMutex::new();
    /// assert_eq!(m.holds(), 0);
    /// m.lock();
    /// m.lock();
    /// assert_eq!(m.holds(), 2);
    /// m.unlock();
    /// m.unlock();
    /// ```
    pub fn holds(&self) -> usize {
        if self.is_owned_by_current_thread() {
            self.holds.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Whether the calling thread owns the mutex.
    ///
    /// ```
    /// let m = gosync::reentrant::RawReentrantMutex::new();
    /// m.lock();
    /// assert!(m.is_owned_by_current_thread());
    /// m.unlock();
    /// assert!(!m.is_owned_by_current_thread());
    /// ```
    pub fn is_owned_by_current_thread(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == ident::current()
    }

    /// The owner's std thread id, if the mutex is owned (a snapshot); `None` too if the
    /// owner has ended, leaving the mutex locked forever.
    ///
    /// ```
    /// let m = gosync::reentrant::RawReentrantMutex::new();
    /// assert_eq!(m.owner(), None);
    /// m.lock();
    /// assert_eq!(m.owner(), Some(std::thread::current().id()));
    /// m.unlock();
    /// ```
    pub fn owner(&self) -> Option<ThreadId> {
        match self.owner.load(Ordering::Relaxed) {
            0 => None,
            id => names::thread_of(id),
        }
    }

    /// The number of threads waiting for the mutex.
    ///
    /// ```
    /// let m = gosync::reentrant::RawReentrantMutex::new();
    /// assert_eq!(m.waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.raw.waiters()
    }

    /// One more hold for the owner: a load and a store, no read-modify-write, since only the
    /// owner touches the count.
    #[inline]
    fn relock(&self) {
        let n = self.holds.load(Ordering::Relaxed);
        let n = n.checked_add(1).unwrap_or_else(|| hold_overflow());
        self.holds.store(n, Ordering::Relaxed);
    }

    /// The calling thread (`me`) has just locked `raw`.
    #[inline]
    fn acquired(&self, me: u64) {
        self.owner.store(me, Ordering::Relaxed);
        self.holds.store(1, Ordering::Relaxed);
    }

    /// Releases one hold; the caller is the owner.
    #[inline]
    fn release(&self) {
        let n = self.holds.load(Ordering::Relaxed);
        debug_assert!(n > 0 && self.owner.load(Ordering::Relaxed) == ident::current());
        if n > 1 {
            self.holds.store(n - 1, Ordering::Relaxed);
        } else {
            self.holds.store(0, Ordering::Relaxed);
            // Cleared before `raw` is unlocked: once someone else may own the mutex, this
            // thread must no longer find its number here (see the field's docs).
            self.owner.store(0, Ordering::Relaxed);
            self.raw.unlock();
        }
    }
}

impl Default for RawReentrantMutex {
    /// A new, unlocked mutex.
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RawReentrantMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawReentrantMutex")
            .field("locked", &self.is_locked())
            .field("owner", &self.owner())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// A re-entrant mutex protecting a `T`, owned by the thread that locks it.
///
/// [`lock`](Self::lock) returns a [`ReentrantMutexGuard`]; the owning thread may hold several
/// at once, so a guard gives `&T`, not `&mut T`: put a `Cell` or `RefCell` inside to mutate.
/// The mutex is released when the thread's last guard drops. There is no poisoning.
///
/// The mutex is `Sync` when `T` is `Send`: only one thread at a time can reach the `T`.
///
/// ```
/// use gosync::reentrant::ReentrantMutex;
/// use std::cell::RefCell;
///
/// let log = ReentrantMutex::new(RefCell::new(Vec::new()));
/// fn note(log: &ReentrantMutex<RefCell<Vec<&'static str>>>, what: &'static str) {
///     log.lock().borrow_mut().push(what); // re-enters if the caller holds it
/// }
/// let outer = log.lock();
/// note(&log, "inside");
/// outer.borrow_mut().push("outer");
/// drop(outer);
/// assert_eq!(*log.lock().borrow(), ["inside", "outer"]);
/// ```
pub struct ReentrantMutex<T: ?Sized> {
    raw: RawReentrantMutex,
    data: T,
}

// SAFETY: the `T` is reached only by the owning thread (guards are not `Send`), one thread at
// a time, with ownership passed through `raw`: as for a `Mutex`, `T: Send` suffices.
unsafe impl<T: ?Sized + Send> Sync for ReentrantMutex<T> {}

impl<T> ReentrantMutex<T> {
    /// A new, unlocked mutex holding `value`.
    ///
    /// ```
    /// let m = gosync::reentrant::ReentrantMutex::new(1);
    /// assert_eq!(*m.lock(), 1);
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new(value: T) -> Self {
        ReentrantMutex {
            raw: RawReentrantMutex::new(),
            data: value,
        }
    }

    /// A new, unlocked mutex holding `value`.
    #[cfg(loom)]
    #[track_caller]
    pub fn new(value: T) -> Self {
        ReentrantMutex {
            raw: RawReentrantMutex::new(),
            data: value,
        }
    }

    /// Consumes the mutex, returning the value.
    ///
    /// ```
    /// let m = gosync::reentrant::ReentrantMutex::new(String::from("go"));
    /// assert_eq!(m.into_inner(), "go");
    /// ```
    pub fn into_inner(self) -> T {
        self.data
    }
}

impl<T: ?Sized> ReentrantMutex<T> {
    /// Locks the mutex, re-entering at once if the calling thread owns it, otherwise parking
    /// the thread until it is free.
    ///
    /// ```
    /// let m = gosync::reentrant::ReentrantMutex::new(5);
    /// let a = m.lock();
    /// let b = m.lock();
    /// assert_eq!(*a + *b, 10);
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> ReentrantMutexGuard<'_, T> {
        self.raw.lock();
        ReentrantMutexGuard::new(self)
    }

    /// Locks the mutex unless `ctx` is done first (see [`RawReentrantMutex::lock_ctx`]).
    ///
    /// ```
    /// use gosync::context;
    ///
    /// let m = gosync::reentrant::ReentrantMutex::new(5);
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// assert_eq!(*m.lock_ctx(&ctx).unwrap(), 5);
    /// cancel.cancel();
    /// assert!(m.lock_ctx(&ctx).is_err());
    /// ```
    #[track_caller]
    pub fn lock_ctx(&self, ctx: &GoContext) -> Result<ReentrantMutexGuard<'_, T>, ContextError> {
        self.raw.lock_ctx(ctx)?;
        Ok(ReentrantMutexGuard::new(self))
    }

    /// Locks the mutex if the calling thread owns it already or it is free.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let m = Arc::new(gosync::reentrant::ReentrantMutex::new(()));
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_some());
    /// let other = m.clone();
    /// assert!(std::thread::spawn(move || other.try_lock().is_none()).join().unwrap());
    /// drop(g);
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<ReentrantMutexGuard<'_, T>> {
        // `then`, not `then_some`: a guard built eagerly would unlock when dropped.
        self.raw.try_lock().then(|| ReentrantMutexGuard::new(self))
    }

    /// Whether some thread holds the mutex right now (a snapshot).
    ///
    /// ```
    /// let m = gosync::reentrant::ReentrantMutex::new(0);
    /// let g = m.lock();
    /// assert!(m.is_locked());
    /// drop(g);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// How many guards the calling thread holds: 0 if it does not own the mutex.
    ///
    /// ```
    /// let m = gosync::reentrant::ReentrantMutex::new(0);
    /// let (a, b) = (m.lock(), m.lock());
    /// assert_eq!(m.holds(), 2);
    /// drop((a, b));
    /// assert_eq!(m.holds(), 0);
    /// ```
    pub fn holds(&self) -> usize {
        self.raw.holds()
    }

    /// Whether the calling thread owns the mutex.
    ///
    /// ```
    /// let m = gosync::reentrant::ReentrantMutex::new(0);
    /// let g = m.lock();
    /// assert!(m.is_owned_by_current_thread());
    /// drop(g);
    /// ```
    pub fn is_owned_by_current_thread(&self) -> bool {
        self.raw.is_owned_by_current_thread()
    }

    /// The owner's std thread id, if the mutex is owned (see [`RawReentrantMutex::owner`]).
    ///
    /// ```
    /// let m = gosync::reentrant::ReentrantMutex::new(0);
    /// let g = m.lock();
    /// assert_eq!(m.owner(), Some(std::thread::current().id()));
    /// drop(g);
    /// ```
    pub fn owner(&self) -> Option<ThreadId> {
        self.raw.owner()
    }

    /// A mutable reference to the value; no locking is needed, since `&mut self` is unique.
    ///
    /// ```
    /// let mut m = gosync::reentrant::ReentrantMutex::new(1);
    /// *m.get_mut() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: Default> Default for ReentrantMutex<T> {
    /// An unlocked mutex holding `T::default()`.
    #[track_caller]
    fn default() -> Self {
        ReentrantMutex::new(T::default())
    }
}

impl<T> From<T> for ReentrantMutex<T> {
    /// An unlocked mutex holding `value`.
    #[track_caller]
    fn from(value: T) -> Self {
        ReentrantMutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ReentrantMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReentrantMutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// One hold of a [`ReentrantMutex`] by the owning thread; releases the hold when dropped.
///
/// It gives `&T` only, since the owner may hold several guards at once. It is not `Send`:
/// the hold belongs to the thread that took it.
///
/// ```compile_fail,E0277
/// fn assert_send<T: Send>(_: T) {}
/// let m = gosync::reentrant::ReentrantMutex::new(0);
/// assert_send(m.lock());
/// ```
#[must_use = "if unused the ReentrantMutex will immediately unlock"]
pub struct ReentrantMutexGuard<'a, T: ?Sized> {
    mutex: &'a ReentrantMutex<T>,
    /// Ties the guard to the owning thread: neither `Send` nor (by default) `Sync`.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a `&ReentrantMutexGuard` gives `&T`, so sharing one needs `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for ReentrantMutexGuard<'_, T> {}

impl<'a, T: ?Sized> ReentrantMutexGuard<'a, T> {
    fn new(mutex: &'a ReentrantMutex<T>) -> Self {
        ReentrantMutexGuard {
            mutex,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for ReentrantMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.mutex.data
    }
}

impl<T: ?Sized> Drop for ReentrantMutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // The guard is not `Send`, so this is the owning thread: no owner check needed.
        self.mutex.raw.release();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ReentrantMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for ReentrantMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A re-entrant mutex owned by a caller-supplied token: the seed's `TokenRecursiveMutex`.
///
/// `lock(token)` takes the mutex for `token`, at once if `token` owns it already; each lock
/// needs an `unlock(token)`, and the last one releases the mutex. Threads
/// ([`lock`](Self::lock)) and tasks ([`lock_async`](Self::lock_async)) share one mutex. A
/// token is any `u64` that identifies one flow of control — a task, a request; see
/// [`new_token`] — and, unlike a thread, it stays the same when a task moves between threads.
///
/// The token *is* the owner: whoever presents it re-enters, on any thread, even while
/// another flow with the same token is inside (the mutex excludes holders of different
/// tokens only, and counts the holds of all flows of one token together). Give flows that must
/// exclude each other different tokens.
///
/// ```
/// use gosync::reentrant::TokenMutex;
///
/// let m = TokenMutex::new();
/// m.lock(7);
/// m.lock(7); // token 7 re-enters
/// assert!(!m.try_lock(8));
/// m.unlock(7);
/// m.unlock(7);
/// assert!(m.try_lock(8));
/// m.unlock(8);
/// ```
pub struct TokenMutex {
    raw: RawMutex,
    /// The owner's token; meaningful only while `holds` is non-zero (every token value is
    /// allowed, so none can mean "no owner"). Written only by the new holder of `raw`, before
    /// it publishes its first hold with a release store of `holds`.
    owner: AtomicU64,
    /// The holds of the owning token, from all its flows: changed with read-modify-writes,
    /// since flows sharing a token may run at once, and never raised from 0 except by the
    /// holder of `raw` (see `relock`).
    holds: AtomicUsize,
}

impl TokenMutex {
    /// A new, unlocked mutex.
    ///
    /// ```
    /// static M: gosync::reentrant::TokenMutex = gosync::reentrant::TokenMutex::new();
    /// M.lock(1);
    /// M.unlock(1);
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new() -> Self {
        TokenMutex {
            raw: RawMutex::new(),
            owner: AtomicU64::new(0),
            holds: AtomicUsize::new(0),
        }
    }

    /// A new, unlocked mutex.
    #[cfg(loom)]
    #[track_caller]
    pub fn new() -> Self {
        TokenMutex {
            raw: RawMutex::new(),
            owner: AtomicU64::new(0),
            holds: AtomicUsize::new(0),
        }
    }

    /// Locks the mutex for `token`: at once if `token` owns it already, otherwise parking the
    /// calling thread until it is free.
    ///
    /// ```
    /// let m = gosync::reentrant::TokenMutex::new();
    /// m.lock(1);
    /// m.lock(1);
    /// assert_eq!(m.holds(), 2);
    /// m.unlock(1);
    /// m.unlock(1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self, token: u64) {
        if !self.relock(token) {
            self.raw.lock();
            self.acquired(token);
        }
    }

    /// Locks the mutex for `token` from an async task: the future completes at once if
    /// `token` owns the mutex already, otherwise once the mutex is free.
    ///
    /// Whether `token` owns the mutex is decided when the future is first polled; after that
    /// it waits in line.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses no lock and no wake-up: it leaves the
    /// queue, and if the mutex had already been handed to it, it passes it on. A future that
    /// completed holds the lock (for its token), to be unlocked as usual.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let m = gosync::reentrant::TokenMutex::new();
    /// let me = gosync::reentrant::new_token();
    /// m.lock_async(me).await;
    /// m.lock_async(me).await; // re-enters
    /// m.unlock(me);
    /// m.unlock(me);
    /// # });
    /// ```
    #[track_caller]
    pub fn lock_async(&self, token: u64) -> TokenLockFuture<'_> {
        TokenLockFuture {
            mutex: self,
            token,
            // Made here, lazily (it does nothing until polled), so that a wait records the
            // caller's location.
            inner: self.raw.lock_async(),
            first: true,
        }
    }

    /// Locks the mutex for `token`, as [`lock`](Self::lock), unless `ctx` is done first.
    ///
    /// As [`RawMutex::lock_ctx`], it fails at once if `ctx` is already done (even for the
    /// owner's token), and if `ctx` ends just as the lock is handed over, exactly one of the
    /// two happens.
    ///
    /// ```
    /// use gosync::context;
    /// use std::time::Duration;
    ///
    /// let m = gosync::reentrant::TokenMutex::new();
    /// m.lock(1);
    /// let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    /// assert_eq!(m.lock_ctx(&ctx, 2), Err(context::ContextError::DeadlineExceeded));
    /// assert_eq!(m.lock_ctx(&context::background(), 1), Ok(()));
    /// m.unlock(1);
    /// m.unlock(1);
    /// ```
    #[track_caller]
    pub fn lock_ctx(&self, ctx: &GoContext, token: u64) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        if !self.relock(token) {
            self.raw.lock_ctx(ctx)?;
            self.acquired(token);
        }
        Ok(())
    }

    /// Locks the mutex for `token` if `token` owns it already or it is free; `true` on
    /// success.
    ///
    /// ```
    /// let m = gosync::reentrant::TokenMutex::new();
    /// assert!(m.try_lock(1));
    /// assert!(m.try_lock(1));
    /// assert!(!m.try_lock(2));
    /// m.unlock(1);
    /// m.unlock(1);
    /// ```
    #[inline]
    pub fn try_lock(&self, token: u64) -> bool {
        if self.relock(token) {
            true
        } else if self.raw.try_lock() {
            self.acquired(token);
            true
        } else {
            false
        }
    }

    /// Releases one hold of `token`; the last one unlocks the mutex, waking a waiter if there
    /// is one.
    ///
    /// # Panics
    ///
    /// With `"reentrant: unlock with token A of a lock owned by token B"` if `token` (A) does
    /// not own the mutex, or `"reentrant: unlock of unlocked mutex"` if no one holds it. The
    /// mutex is left as it was.
    ///
    /// Holds are counted per token, not per caller: unlocking once too often with the owner's
    /// token while another flow of that token still holds the mutex releases that flow's hold,
    /// which no check can tell from a correct unlock.
    ///
    /// ```
    /// let m = gosync::reentrant::TokenMutex::new();
    /// m.lock(1);
    /// let caught = std::panic::catch_unwind(|| m.unlock(2));
    /// assert!(caught.is_err());
    /// m.unlock(1);
    /// ```
    pub fn unlock(&self, token: u64) {
        // A CAS loop, not a `fetch_sub`: a count that is already 0 must never wrap around.
        let mut n = self.holds.load(Ordering::Acquire);
        loop {
            if n == 0 {
                panic!("{UNLOCK_OF_UNLOCKED}");
            }
            // Read after an acquire load of a non-zero count: at least this ownership's owner.
            let owner = self.owner.load(Ordering::Relaxed);
            if owner != token {
                unlock_with_wrong_token(token, owner);
            }
            // AcqRel: the last hold's release passes on, through `raw`, what every flow of this
            // token did under the lock, so it must first acquire their earlier releases.
            match self
                .holds
                .compare_exchange_weak(n, n - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        if n == 1 {
            self.raw.unlock();
        }
    }

    /// Whether some token holds the mutex right now (a snapshot).
    ///
    /// ```
    /// let m = gosync::reentrant::TokenMutex::new();
    /// m.lock(3);
    /// assert!(m.is_locked());
    /// m.unlock(3);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// The owning token's number of holds, 0 if unlocked (a snapshot).
    ///
    /// ```
    /// let m = gosync::reentrant::TokenMutex::new();
    /// m.lock(3);
    /// m.lock(3);
    /// assert_eq!(m.holds(), 2);
    /// m.unlock(3);
    /// m.unlock(3);
    /// assert_eq!(m.holds(), 0);
    /// ```
    pub fn holds(&self) -> usize {
        self.holds.load(Ordering::Relaxed)
    }

    /// The owning token, if the mutex is held (a snapshot).
    ///
    /// ```
    /// let m = gosync::reentrant::TokenMutex::new();
    /// assert_eq!(m.owner(), None);
    /// m.lock(3);
    /// assert_eq!(m.owner(), Some(3));
    /// m.unlock(3);
    /// ```
    pub fn owner(&self) -> Option<u64> {
        match self.holds.load(Ordering::Acquire) {
            0 => None,
            _ => Some(self.owner.load(Ordering::Relaxed)),
        }
    }

    /// The number of threads and tasks waiting for the mutex.
    ///
    /// ```
    /// let m = gosync::reentrant::TokenMutex::new();
    /// assert_eq!(m.waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.raw.waiters()
    }

    /// Adds a hold if `token` owns the mutex; `false` (and no change) otherwise.
    ///
    /// Flows of one token may run at once, so "the owner is `token`, so count one more" is
    /// not one step: between reading the owner and counting, the ownership may end and another
    /// token's begin, and a count raised then would be that token's. So the count is raised
    /// only from non-zero (which keeps the current ownership from ending), and the owner is
    /// read again afterwards: the ownership the raised count belongs to was published by a
    /// release store of the count, which the raise read from, so this second read sees its
    /// owner, and that cannot change while the count includes ours. If it is another token's,
    /// the extra hold is given back — and if that was the ownership's last hold (its owner
    /// unlocked meanwhile), giving it back unlocks the mutex on the owner's behalf.
    #[inline]
    fn relock(&self, token: u64) -> bool {
        if self.owner.load(Ordering::Relaxed) != token {
            return false;
        }
        let mut n = self.holds.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return false;
            }
            let more = n.checked_add(1).unwrap_or_else(|| hold_overflow());
            match self
                .holds
                .compare_exchange_weak(n, more, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        if self.owner.load(Ordering::Relaxed) == token {
            return true;
        }
        self.release_hold();
        false
    }

    /// `token` has just locked `raw`: publish the ownership (the owner before the count, which
    /// a re-entry reads first; see `relock`).
    #[inline]
    fn acquired(&self, token: u64) {
        self.owner.store(token, Ordering::Relaxed);
        self.holds.store(1, Ordering::Release);
    }

    /// Gives back a hold that `relock` took by mistake.
    fn release_hold(&self) {
        if self.holds.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.raw.unlock();
        }
    }
}

#[cold]
#[inline(never)]
fn unlock_with_wrong_token(token: u64, owner: u64) -> ! {
    panic!("reentrant: unlock with token {token} of a lock owned by token {owner}");
}

impl Default for TokenMutex {
    /// A new, unlocked mutex.
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TokenMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMutex")
            .field("owner", &self.owner())
            .field("holds", &self.holds())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// The future returned by [`TokenMutex::lock_async`].
#[must_use = "futures do nothing unless polled"]
pub struct TokenLockFuture<'a> {
    mutex: &'a TokenMutex,
    token: u64,
    inner: LockFuture<'a>,
    /// Not polled yet: the first poll tries re-entry.
    first: bool,
}

impl fmt::Debug for TokenLockFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenLockFuture")
            .field("token", &self.token)
            .field("inner", &self.inner)
            .finish()
    }
}

impl Future for TokenLockFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if std::mem::take(&mut this.first) && this.mutex.relock(this.token) {
            // The inner future was never polled: dropping it does nothing.
            return Poll::Ready(());
        }
        match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(()) => {
                // In the same poll as the lock was won, so a drop cannot come in between.
                this.mutex.acquired(this.token);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
