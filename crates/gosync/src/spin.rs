//! A spin lock: mutual exclusion by busy-waiting, for very short critical sections.
//!
//! [`RawSpinLock`] is the seed's Go `SpinLock` (`Lock`, `Unlock`, `TryLock`, `String`): no
//! data, lock and unlock anywhere. [`SpinLock<T>`] wraps a value and returns an RAII
//! [`SpinGuard`], as `std::sync::Mutex` does.
//!
//! | Go (the seed's `SpinLock`)          | gosync                                            |
//! |-------------------------------------|---------------------------------------------------|
//! | `var sl SpinLock`                   | [`RawSpinLock::new()`], [`SpinLock::new(v)`](SpinLock::new) |
//! | `sl.Lock()` / `sl.Unlock()`         | [`lock`](RawSpinLock::lock) / [`unlock`](RawSpinLock::unlock), or a [`SpinGuard`] |
//! | `sl.TryLock()`                      | [`try_lock`](RawSpinLock::try_lock)               |
//! | `sl.String()`                       | `Display`: `Locked` / `Unlocked`                  |
//!
//! # What it guarantees
//!
//! At most one holder at a time. In the terminology of the Go memory model, the n'th unlock
//! synchronizes before the m'th lock returns, for any n < m; a successful `try_lock` is a lock
//! in that sense, a failed one synchronizes with nothing.
//!
//! It is **not fair**: whoever's compare-and-swap lands first after an unlock gets the lock,
//! and a thread that unlocks and locks again in a loop usually wins against the spinners (its
//! cache already holds the lock word). There is no queue, so nothing records who waits:
//! spinners do not show up in [`diag::blocked`](crate::diag::blocked).
//!
//! # How it waits
//!
//! The uncontended `lock` is one compare-and-swap. A contended one is *test-and-test-and-set*:
//! it spins on a plain load, which keeps the lock word's cache line shared among the spinners
//! instead of bouncing it between them with failed swaps, and tries the swap only when the
//! load sees the lock free. Between loads it pauses (`spin_loop`) for exponentially longer —
//! 1, 2, 4, ... 64 pauses, a few microseconds in all, which covers the sections a spin lock is
//! for — and then yields its time slice on every round (`std::thread::yield_now`), like the
//! seed's `runtime.Gosched()`, so that a holder that was preempted can be scheduled again when
//! there are more threads than cores. It never parks: that is the point of a spin lock (a
//! park and wake-up costs tens of microseconds; see [`sync::Mutex`](crate::sync::Mutex), which
//! spins a little and then parks).
//!
//! # When not to use one
//!
//! The seed's warning holds: a spin lock burns a CPU for as long as it waits. Prefer
//! [`sync::Mutex`](crate::sync::Mutex) unless every critical section is a handful of
//! instructions and never blocks. In particular, do not use one
//!
//! * when a section may block, allocate much, do I/O or take another lock;
//! * when there are often more threads contending than cores (a preempted holder keeps every
//!   spinner waiting a whole time slice — `yield_now` helps but does not guarantee the holder
//!   runs), or under real-time priorities (a high-priority spinner can keep a low-priority
//!   holder from running at all);
//! * **across an `.await`**. There is no `lock_async`: a task holding a spin lock while
//!   suspended would make every other locker spin until it is polled again, which may be
//!   never, and a task spinning would hold up its executor's worker meanwhile. So the guard is
//!   not `Send`: a future holding one across an await cannot be spawned on a multi-threaded
//!   executor. Calling `lock()` from a task for a section with no await in it is fine.
//!
//! # Misuse
//!
//! [`RawSpinLock::unlock`] of an unlocked lock panics with
//! `"spin: unlock of unlocked SpinLock"` and leaves the lock unlocked. A spin lock has no
//! owner: unlocking one that another thread holds cannot be detected, as in Go. There is no
//! poisoning: a panic while a [`SpinGuard`] is alive unlocks the lock as the guard drops.
//!
//! ```
//! use gosync::spin::SpinLock;
//! use std::sync::Arc;
//!
//! let hits = Arc::new(SpinLock::new(0u64));
//! let threads: Vec<_> = (0..4)
//!     .map(|_| {
//!         let hits = hits.clone();
//!         std::thread::spawn(move || {
//!             for _ in 0..1000 {
//!                 *hits.lock() += 1;
//!             }
//!         })
//!     })
//!     .collect();
//! for t in threads {
//!     t.join().unwrap();
//! }
//! assert_eq!(*hits.lock(), 4000);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

use crate::loom::{self, AtomicBool, Ordering, UnsafeCell};

/// The message of an unlock of an unlocked spin lock.
const UNLOCK_OF_UNLOCKED: &str = "spin: unlock of unlocked SpinLock";

/// A spin lock without data, as the seed's Go `SpinLock`.
///
/// `RawSpinLock::new()` is unlocked. The lock is not associated with a thread: one thread may
/// lock it and another unlock it. It is not reentrant: a thread that locks it twice spins
/// forever. See the [module docs](self) for when (not) to use one.
///
/// `Display` shows `Locked` or `Unlocked`, as the seed's `String` method does.
///
/// ```
/// use gosync::spin::RawSpinLock;
///
/// let l = RawSpinLock::new();
/// l.lock();
/// assert_eq!(l.to_string(), "Locked");
/// assert!(!l.try_lock());
/// l.unlock();
/// assert_eq!(l.to_string(), "Unlocked");
/// ```
pub struct RawSpinLock {
    locked: AtomicBool,
}

impl RawSpinLock {
    /// A new, unlocked spin lock.
    ///
    /// ```
    /// static L: gosync::spin::RawSpinLock = gosync::spin::RawSpinLock::new();
    /// assert!(!L.is_locked());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RawSpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// A new, unlocked spin lock.
    #[cfg(loom)]
    pub fn new() -> Self {
        RawSpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// Locks, spinning (then yielding) until the lock is free.
    ///
    /// ```
    /// let l = gosync::spin::RawSpinLock::new();
    /// l.lock();
    /// assert!(l.is_locked());
    /// l.unlock();
    /// ```
    #[inline]
    pub fn lock(&self) {
        // The uncontended path: one CAS. A weak one may fail spuriously (on LL/SC machines);
        // the contended path then simply finds the lock free and swaps again.
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut backoff = SpinWait::new();
        loop {
            // Test: wait on a plain load, which leaves the cache line shared among spinners.
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            // ... and set, only when the lock looks free.
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            // Someone else got it first. Keep the backoff where it is rather than start
            // again: the lock is clearly contended.
        }
    }

    /// Locks if the lock is free, without waiting; `true` on success.
    ///
    /// ```
    /// let l = gosync::spin::RawSpinLock::new();
    /// assert!(l.try_lock());
    /// assert!(!l.try_lock());
    /// l.unlock();
    /// ```
    #[inline]
    pub fn try_lock(&self) -> bool {
        // A strong CAS: a spurious failure would report the lock held when it was not.
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Unlocks.
    ///
    /// # Panics
    ///
    /// With `"spin: unlock of unlocked SpinLock"` if the lock is not locked; the lock is left
    /// as it was (unlocked).
    ///
    /// ```
    /// let l = gosync::spin::RawSpinLock::new();
    /// l.lock();
    /// l.unlock();
    /// let caught = std::panic::catch_unwind(|| l.unlock());
    /// assert!(caught.is_err());
    /// ```
    #[inline]
    pub fn unlock(&self) {
        // A load and a store rather than one swap: a swap is a read-modify-write and costs
        // several times a store, and it would catch nothing more. If the load sees the lock
        // held and the caller holds it, no one else can change the word before the store; if
        // the caller does not hold it (it unlocks someone else's lock), neither form can tell.
        if !self.locked.load(Ordering::Relaxed) {
            panic!("{UNLOCK_OF_UNLOCKED}");
        }
        self.release();
    }

    /// Unlocks a lock the caller is known to hold (a guard's drop): one store.
    #[inline]
    fn release(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// Whether the lock is held right now (a snapshot: it may change at once).
    ///
    /// ```
    /// let l = gosync::spin::RawSpinLock::new();
    /// assert!(!l.is_locked());
    /// l.lock();
    /// assert!(l.is_locked());
    /// l.unlock();
    /// ```
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

impl Default for RawSpinLock {
    /// An unlocked spin lock.
    ///
    /// ```
    /// let l = gosync::spin::RawSpinLock::default();
    /// assert!(!l.is_locked());
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RawSpinLock {
    /// `Locked` or `Unlocked`, as the seed's `String` method.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_locked() {
            "Locked"
        } else {
            "Unlocked"
        })
    }
}

impl fmt::Debug for RawSpinLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSpinLock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

/// Steps that pause `2^step` times before the next load; after them every round yields.
#[cfg(not(loom))]
const SPIN_STEPS: u32 = 7;
/// Under loom every pause is a yield to the model's scheduler already; one step explores both
/// "spun, then found it free" and "went on to yield".
#[cfg(loom)]
const SPIN_STEPS: u32 = 1;

/// The backoff of one contended `lock`: exponentially growing pauses, then yields forever.
///
/// Not the waiter core's `Backoff`, which gives up after a few yields so its caller can park;
/// a spin lock never parks.
struct SpinWait {
    step: u32,
}

impl SpinWait {
    fn new() -> Self {
        SpinWait { step: 0 }
    }

    #[inline]
    fn snooze(&mut self) {
        if self.step < SPIN_STEPS {
            for _ in 0..(1u32 << self.step) {
                loom::spin_loop();
            }
            self.step += 1;
        } else {
            loom::thread::yield_now();
        }
    }
}

/// A spin lock protecting a `T`, over a [`RawSpinLock`].
///
/// [`lock`](Self::lock) spins until the lock is free and returns a [`SpinGuard`] that gives
/// `&mut T` and unlocks when dropped. See the [module docs](self) for what it guarantees and
/// when not to use one. There is no poisoning.
///
/// `Display` shows `Locked` or `Unlocked`; `Debug` shows the value when the lock is free (as
/// std's `Mutex` does) and `<locked>` otherwise.
///
/// ```
/// use gosync::spin::SpinLock;
///
/// let l = SpinLock::new(vec![1, 2]);
/// l.lock().push(3);
/// assert_eq!(format!("{l:?}"), "SpinLock { data: [1, 2, 3] }");
/// let g = l.lock();
/// assert_eq!(l.to_string(), "Locked");
/// assert_eq!(format!("{l:?}"), "SpinLock { data: <locked> }");
/// drop(g);
/// assert_eq!(l.to_string(), "Unlocked");
/// ```
pub struct SpinLock<T> {
    raw: RawSpinLock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `data` to one holder at a time, so sharing the lock
// between threads needs only that `T` may be sent between them, as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A new, unlocked spin lock holding `value`.
    ///
    /// ```
    /// static COUNT: gosync::spin::SpinLock<u32> = gosync::spin::SpinLock::new(0);
    /// *COUNT.lock() += 1;
    /// assert_eq!(*COUNT.lock(), 1);
    /// ```
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Self {
        SpinLock {
            raw: RawSpinLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// A new, unlocked spin lock holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        SpinLock {
            raw: RawSpinLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Locks, spinning (then yielding) until the lock is free.
    ///
    /// ```
    /// let l = gosync::spin::SpinLock::new(1);
    /// *l.lock() += 1;
    /// assert_eq!(*l.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> SpinGuard<'_, T> {
        self.raw.lock();
        SpinGuard::new(self)
    }

    /// Locks if the lock is free, without waiting.
    ///
    /// ```
    /// let l = gosync::spin::SpinLock::new(());
    /// let g = l.try_lock().unwrap();
    /// assert!(l.try_lock().is_none());
    /// drop(g);
    /// assert!(l.try_lock().is_some());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        // `then`, not `then_some`: a guard built eagerly would unlock when dropped.
        self.raw.try_lock().then(|| SpinGuard::new(self))
    }

    /// Whether the lock is held right now (a snapshot).
    ///
    /// ```
    /// let l = gosync::spin::SpinLock::new(0);
    /// let g = l.lock();
    /// assert!(l.is_locked());
    /// drop(g);
    /// assert!(!l.is_locked());
    /// ```
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Unlocks the lock without a guard: for a lock whose guard was leaked with
    /// `std::mem::forget` (say, to hold it across an FFI boundary).
    ///
    /// # Safety
    ///
    /// The lock must be held, and no guard of it may be alive: a live guard would go on giving
    /// access to the value while another thread takes the lock.
    ///
    /// # Panics
    ///
    /// With `"spin: unlock of unlocked SpinLock"` if the lock is not locked.
    ///
    /// ```
    /// let l = gosync::spin::SpinLock::new(5);
    /// std::mem::forget(l.lock());
    /// assert!(l.try_lock().is_none());
    /// // SAFETY: locked, and its only guard was forgotten.
    /// unsafe { l.force_unlock() };
    /// assert_eq!(*l.lock(), 5);
    /// ```
    pub unsafe fn force_unlock(&self) {
        self.raw.unlock();
    }

    /// A mutable reference to the value; no locking is needed, since `&mut self` is unique.
    ///
    /// ```
    /// let mut l = gosync::spin::SpinLock::new(1);
    /// *l.get_mut() = 2;
    /// assert_eq!(*l.lock(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` excludes every guard and every other access to `data`.
        self.data.with_mut(|p| unsafe { &mut *p })
    }

    /// Consumes the lock, returning the value.
    ///
    /// ```
    /// let l = gosync::spin::SpinLock::new(String::from("go"));
    /// assert_eq!(l.into_inner(), "go");
    /// ```
    pub fn into_inner(self) -> T {
        // The cell wrapper offers no `into_inner` in every build, so move the value out by
        // hand: `this` is never used or dropped again, so the value is moved out exactly once,
        // and the lock word has no drop glue to skip.
        let this = ManuallyDrop::new(self);
        // SAFETY: owned (no guard can exist), read once, never dropped in place (see above).
        this.data.with(|p| unsafe { p.read() })
    }
}

impl<T: Default> Default for SpinLock<T> {
    /// An unlocked spin lock holding `T::default()`.
    ///
    /// ```
    /// let l: gosync::spin::SpinLock<Vec<u8>> = Default::default();
    /// assert!(l.lock().is_empty());
    /// ```
    fn default() -> Self {
        SpinLock::new(T::default())
    }
}

impl<T> From<T> for SpinLock<T> {
    /// An unlocked spin lock holding `value`.
    ///
    /// ```
    /// let l = gosync::spin::SpinLock::from(3);
    /// assert_eq!(*l.lock(), 3);
    /// ```
    fn from(value: T) -> Self {
        SpinLock::new(value)
    }
}

impl<T> fmt::Display for SpinLock<T> {
    /// `Locked` or `Unlocked`, as the seed's `String` method.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.raw, f)
    }
}

impl<T: fmt::Debug> fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SpinLock");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Holds a [`SpinLock`] locked; unlocks it when dropped.
///
/// Not `Send`: a spin lock must not be held across an `.await` (see the
/// [module docs](self)), and a future holding a guard that is not `Send` cannot be spawned on
/// a multi-threaded executor:
///
/// ```compile_fail,E0277
/// fn assert_send<T: Send>(_: T) {}
/// let l = gosync::spin::SpinLock::new(0);
/// assert_send(l.lock());
/// ```
#[must_use = "if unused the SpinLock will immediately unlock"]
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    /// Makes the guard neither `Send` nor (by default) `Sync`.
    _not_send: PhantomData<*mut ()>,
}

// SAFETY: a `&SpinGuard` gives only `&T`, so sharing one between threads needs `T: Sync`.
unsafe impl<T: Sync> Sync for SpinGuard<'_, T> {}

impl<'a, T> SpinGuard<'a, T> {
    fn new(lock: &'a SpinLock<T>) -> Self {
        SpinGuard {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no one else accesses `data`. (Under loom the
        // access is recorded here, inside the critical section, so a model sees any overlap.)
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes this access unique.
        self.lock.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // The guard proves the lock is held: one release store, no check.
        self.lock.raw.release();
    }
}

impl<T: fmt::Debug> fmt::Debug for SpinGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for SpinGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
