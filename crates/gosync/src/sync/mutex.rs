//! Mutual exclusion with Go's normal and starvation modes.
//!
//! [`RawMutex`] is Go's `sync.Mutex`: no data, `lock`/`unlock` from any thread or task.
//! [`Mutex<T>`] wraps a value and returns an RAII guard, as `std::sync::Mutex` does.
//!
//! # Normal and starvation modes (after Go's `sync/mutex.go`)
//!
//! In normal mode waiters queue in FIFO order, but a woken waiter does not own the lock: it
//! competes with callers that have just arrived and are already running, and those usually
//! win. That is what makes a mutex fast under contention — the lock goes to a thread that is on
//! a CPU rather than to one that must first be scheduled — but it can starve a waiter. So when a
//! waiter has waited longer than [`STARVATION_THRESHOLD`] (1 ms), the mutex switches to
//! starvation mode: `unlock` hands the lock directly to the waiter at the head of the queue,
//! and newcomers neither take it nor spin, but queue at the tail. The mutex goes back to normal
//! mode when a waiter that receives the lock waited less than 1 ms, or was the last in line.
//!
//! # State word
//!
//! | bit        | set by                                   | cleared by                          |
//! |------------|------------------------------------------|-------------------------------------|
//! | `LOCKED`   | a locker's CAS, or `unlock` for the head on a hand-off | `unlock` (one `fetch_sub`) |
//! | `WOKEN`    | `unlock` waking a waiter, or a spinner   | that waiter, when it locks or queues again; `unlock` when a task's went stale |
//! | `WOKEN_TASK` | with `WOKEN`, when the woken one is a task | with `WOKEN` |
//! | `STARVING` | a starved waiter, or `unlock` on hand-off | `unlock` on hand-off, a cancelled last waiter |
//! | `PARKED`   | a waiter, under the queue lock           | whoever empties the queue, under the queue lock |
//!
//! While `STARVING` is set the mutex counts as held even with `LOCKED` clear: the lock is owed
//! to the head of the queue, and no one may barge.
//!
//! `WOKEN` means "someone is already awake and about to compete for the lock, don't wake
//! another": it saves a wake-up (tens of microseconds for a thread) on every unlock while
//! someone spins. A woken thread always runs soon; a woken task runs only when its executor
//! polls it, which may be never (a future pinned in a `select!` loop that awaits something
//! else). So a task's `WOKEN` carries `WOKEN_TASK`, and later unlocks honour it only for the
//! starvation threshold: past that, an unlock wakes the next waiter anyway (and a starved one
//! gets the hand-off), so a stale wake-up delays the others by at most 1 ms, as Go bounds any
//! wait for the lock. (Holding `WOKEN` while the woken task is on its way matters: without it
//! every unlock would wake one more task, which cost 2.5x in throughput with 4 tasks on 2
//! workers.)
//!
//! `LOCKED` is the top bit, so the misuse of unlocking an unlocked mutex, which `unlock`
//! detects after its one `fetch_sub`, has flipped that bit alone rather than borrowed from
//! the others: the word reads as if someone held the lock for a moment, and `unlock` releases
//! that hold the ordinary way before it panics. A waiter that queued meanwhile is woken, and
//! the mutex stays usable after the panic is caught.
//!
//! A waiter's age counts from when it first went to sleep, as Go's `waitStartTime`: a caller
//! whose first try to queue finds the mutex free again has not slept, and queues at the back
//! when it next tries, not at the front as a woken waiter that lost the race does.
//!
//! # Cancel safety
//!
//! A dropped [`LockFuture`] leaves the queue; if `unlock` had already handed it the lock it
//! unlocks again (passing the lock on), and if it had been woken to compete it wakes the next
//! waiter in its place. No lock and no wake-up is lost.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::context::{Context as GoContext, ContextError};
use crate::loom::{self, Arc, AtomicU32, Ordering};
use crate::sema::{
    Backoff, Ident, Locked, Origin, Queue, ThreadWait, Ticket, WaitKind, WaitRecord, Waiter,
    CTX_DONE,
};

/// The top bit, so that `unlock`'s one `fetch_sub` is also a bit flip: on a misused unlock
/// of an unlocked mutex it sets the bit instead of borrowing from the others (see
/// `unlock_slow`).
const LOCKED: u32 = 1 << 31;
const WOKEN: u32 = 1;
const STARVING: u32 = 2;
const PARKED: u32 = 4;
/// Set with `WOKEN` when the one woken is a task (see the module docs).
const WOKEN_TASK: u32 = 8;
/// Both bits a woken waiter gives up.
const WOKEN_ANY: u32 = WOKEN | WOKEN_TASK;

/// Token for a waiter woken to compete for the lock again.
const RETRY: u32 = 1;
/// Token for a waiter that `unlock` handed the lock to: it owns the lock.
const HANDOFF: u32 = 2;

/// How long a waiter may wait before the mutex switches to starvation mode: Go's
/// `starvationThresholdNs`, 1 ms. Long enough that the hand-off (which costs a context switch
/// per lock) is rare; short enough that no waiter waits far longer than the others.
pub const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// A mutual exclusion lock without data, as Go's `sync.Mutex`.
///
/// The zero value (`RawMutex::new()`) is unlocked. A locked `RawMutex` is not associated with a
/// particular thread or task: one may lock it and another unlock it. It is not reentrant.
///
/// In the terminology of the Go memory model, the n'th call to `unlock` synchronizes before the
/// m'th call to `lock` (or `lock_async`) returns, for any n < m; a successful `try_lock` is a
/// `lock` in that sense, a failed one synchronizes with nothing.
///
/// Calling [`unlock`](Self::unlock) on an unlocked mutex panics with
/// `"sync: unlock of unlocked mutex"`.
///
/// ```
/// use gosync::sync::RawMutex;
///
/// let m = RawMutex::new();
/// m.lock();
/// assert!(!m.try_lock());
/// m.unlock();
/// assert!(m.try_lock());
/// m.unlock();
/// ```
pub struct RawMutex {
    state: AtomicU32,
    queue: Queue,
    /// When `unlock` last woke a waiter, in nanoseconds since [`epoch`]: a hint for tasks
    /// deciding whether to barge past it (see `LockFuture::poll`). A plain std atomic, not a
    /// loom one: it orders nothing.
    woken_at: std::sync::atomic::AtomicU64,
    /// How many times a task has barged past the waiter `unlock` last woke; written only by
    /// the lock holder (and reset by the waker), so plain loads and stores suffice.
    barges: std::sync::atomic::AtomicU32,
    /// Unlocks that let a woken task's `WOKEN` stop them from waking anyone, since it was
    /// set; written by unlockers only, racily (a hint for how often to read the clock).
    skips: std::sync::atomic::AtomicU32,
}

/// A task barging past a woken waiter reads the clock only every this many times (reading the
/// clock costs as much as a lock).
const BARGE_CHECK: u32 = if cfg!(loom) { 1 } else { 64 };

impl Default for RawMutex {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMutex")
            .field("locked", &self.is_locked())
            .field("starving", &self.is_starving())
            .field("waiters", &self.waiters())
            .finish()
    }
}

impl RawMutex {
    /// A new, unlocked mutex.
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new() -> Self {
        RawMutex {
            state: AtomicU32::new(0),
            queue: Queue::new(),
            woken_at: std::sync::atomic::AtomicU64::new(0),
            barges: std::sync::atomic::AtomicU32::new(0),
            skips: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// A new, unlocked mutex.
    #[cfg(loom)]
    #[track_caller]
    pub fn new() -> Self {
        RawMutex {
            state: AtomicU32::new(0),
            queue: Queue::new(),
            woken_at: std::sync::atomic::AtomicU64::new(0),
            barges: std::sync::atomic::AtomicU32::new(0),
            skips: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Locks the mutex, parking the calling thread until it is available.
    ///
    /// ```
    /// let m = gosync::sync::RawMutex::new();
    /// m.lock();
    /// m.unlock();
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(Origin::here(WaitKind::Mutex), true);
        }
    }

    /// Locks the mutex, parking the calling thread until it is available or `ctx` is done,
    /// whichever comes first.
    ///
    /// A Go goroutine bounds a wait with `select` on `ctx.Done()`; a thread blocked in a lock
    /// has no such way out, so this is it. If `ctx` is already done, it fails at once, even if
    /// the mutex is free (as `semaphore.Weighted.Acquire` does in Go). If `ctx` ends just as
    /// the lock is handed over, exactly one of the two happens: `Ok` with the lock held, or the
    /// error with the lock passed on to the next waiter.
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::sync::RawMutex;
    /// use std::time::Duration;
    ///
    /// let m = RawMutex::new();
    /// m.lock();
    /// let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    /// assert_eq!(m.lock_ctx(&ctx), Err(context::ContextError::DeadlineExceeded));
    /// m.unlock();
    /// let ctx = context::background();
    /// assert_eq!(m.lock_ctx(&ctx), Ok(()));
    /// m.unlock();
    /// ```
    #[track_caller]
    pub fn lock_ctx(&self, ctx: &GoContext) -> Result<(), ContextError> {
        self.lock_ctx_as(ctx, Origin::here(WaitKind::Mutex), true)
    }

    /// [`lock_ctx`](Self::lock_ctx) for another primitive built on this one.
    pub(crate) fn lock_ctx_as(
        &self,
        ctx: &GoContext,
        origin: Origin,
        spin: bool,
    ) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        self.lock_slow_ctx(origin, spin, Some(ctx))
    }

    /// Locks the mutex for another primitive built on it (recorded as `origin`); with `spin`
    /// false the thread parks at once instead of spinning first (see `RawRwMutex::lock`).
    #[inline]
    pub(crate) fn lock_as(&self, origin: Origin, spin: bool) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(origin, spin);
        }
    }

    /// Tries to lock the mutex without waiting; `true` on success.
    ///
    /// Like Go's `TryLock`, it fails while the mutex is held or in starvation mode (when the
    /// lock belongs to the head of the queue).
    ///
    /// ```
    /// let m = gosync::sync::RawMutex::new();
    /// assert!(m.try_lock());
    /// assert!(!m.try_lock());
    /// m.unlock();
    /// ```
    #[inline]
    pub fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (LOCKED | STARVING) != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Locks the mutex from an async task; the future completes once the lock is held.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses its place in the queue but no lock and
    /// no wake-up: if the lock had already been handed to it, it is passed on.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let m = gosync::sync::RawMutex::new();
    /// m.lock_async().await;
    /// m.unlock();
    /// # });
    /// ```
    #[track_caller]
    pub fn lock_async(&self) -> LockFuture<'_> {
        LockFuture {
            mutex: self,
            origin: Origin::here(WaitKind::Mutex),
            ticket: None,
            since: None,
        }
    }

    /// The async lock for another primitive built on this one, recorded as `origin`.
    pub(crate) fn lock_async_as(&self, origin: Origin) -> LockFuture<'_> {
        LockFuture {
            mutex: self,
            origin,
            ticket: None,
            since: None,
        }
    }

    /// Unlocks the mutex, waking a waiter if there is one.
    ///
    /// # Panics
    ///
    /// With `"sync: unlock of unlocked mutex"` if the mutex is not locked.
    #[inline]
    pub fn unlock(&self) {
        // One atomic operation, as Go's: drop the lock bit, then look at what was there.
        let prev = self.state.fetch_sub(LOCKED, Ordering::Release);
        if prev != LOCKED {
            self.unlock_slow(prev);
        }
    }

    /// Whether the mutex is locked right now.
    pub fn is_locked(&self) -> bool {
        // While a hand-off is under way the lock bit is briefly clear, but the lock is owed.
        self.state.load(Ordering::Relaxed) & (LOCKED | STARVING) != 0
    }

    /// Whether the mutex is in starvation mode (the seed's `IsStarving`).
    pub fn is_starving(&self) -> bool {
        self.state.load(Ordering::Relaxed) & STARVING != 0
    }

    /// Whether a waiter has been woken, or a spinner is about to take the lock (`IsWoken`).
    pub fn is_woken(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WOKEN != 0
    }

    /// The identity the registry of waits knows this mutex by.
    pub(crate) fn ident(&self) -> &Ident {
        self.queue.ident()
    }

    /// The number of parked waiters.
    pub fn waiters(&self) -> usize {
        self.queue.len()
    }

    /// The seed's `Count`: parked waiters plus one if the mutex is held.
    pub fn count(&self) -> usize {
        self.waiters() + usize::from(self.is_locked())
    }

    /// Who waits for this mutex, where, and for how long, head of the queue first.
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.queue.records()
    }

    #[cold]
    fn lock_slow(&self, origin: Origin, spin: bool) {
        let done = self.lock_slow_ctx(origin, spin, None);
        debug_assert!(done.is_ok());
    }

    /// The contended lock of a thread, bounded by `ctx` when there is one.
    fn lock_slow_ctx(
        &self,
        origin: Origin,
        spin: bool,
        ctx: Option<&GoContext>,
    ) -> Result<(), ContextError> {
        // Recorded as waiting from the first time it queues until the lock is ours (spinning
        // after a wake-up included): recording the short spin of every contended acquisition
        // cost about a fifth of the contended throughput.
        let mut wait: Option<ThreadWait> = None;
        let mut backoff = Backoff::new();
        let mut awoke = false;
        // When this caller first went to sleep: set once a wait really queued it, as Go sets
        // `waitStartTime` only once the goroutine sleeps. A caller that never slept is no
        // requeued waiter and must not go to the front.
        let mut since = None;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            // In starvation mode the lock belongs to the head waiter even while unlocked.
            if s & (LOCKED | STARVING) == 0 {
                if self.try_barge(s, awoke) {
                    return Ok(());
                }
                continue;
            }
            if spin && s & STARVING == 0 && backoff.snooze() {
                // Tell `unlock` not to wake a sleeper: we are awake and will take the lock.
                if !awoke && s & (WOKEN | PARKED) == PARKED {
                    awoke = self
                        .state
                        .compare_exchange_weak(s, s | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok();
                }
                continue;
            }
            // The identity is read only now: it shares a cache line with the queue's lock,
            // which a spinning locker must not touch.
            let origin = origin.on(self.queue.ident());
            let waiter = Waiter::new(origin, since, None);
            let wait = wait.get_or_insert_with(|| ThreadWait::enter(&origin, None));
            let watch = match ctx.map(|c| c.watch(&waiter)).transpose() {
                Ok(w) => w.flatten(),
                Err(e) => {
                    if awoke {
                        self.abandon_wakeup();
                    }
                    return Err(e);
                }
            };
            // `enqueue` gives up WOKEN only when it queues us.
            hook(Hook::BeforeEnqueue);
            let Some(ticket) = self.enqueue(&waiter, awoke, since.is_some()) else {
                hook(Hook::EnqueueFailed);
                continue;
            };
            if since.is_none() {
                since = Some(waiter.since());
                wait.set_since(waiter.since());
            }
            // Queued: WOKEN was given up. A RETRY wake-up hands it back to us.
            let token = ticket.waiter().park(None);
            drop(watch);
            if token == Some(CTX_DONE) {
                // The context claimed us: the mutex gave us nothing; leave its queue.
                self.leave(&ticket);
                let ctx = ctx.expect("only a context completes with CTX_DONE");
                return Err(ctx
                    .err()
                    .expect("a context completes its waiters when done"));
            }
            drop(ticket);
            Waiter::recycle(waiter);
            if token == Some(HANDOFF) {
                return Ok(());
            }
            awoke = true;
            backoff = Backoff::new();
        }
    }

    /// Takes the unlocked mutex (state `s`), clearing `WOKEN` if we hold it.
    #[inline]
    fn try_barge(&self, s: u32, awoke: bool) -> bool {
        let new = if awoke {
            (s | LOCKED) & !WOKEN_ANY
        } else {
            s | LOCKED
        };
        self.state
            .compare_exchange_weak(s, new, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Queues `waiter` if the mutex is still locked; `None` if it was unlocked meanwhile (the
    /// caller retries). `awoke`: the caller (a thread) holds `WOKEN` and gives it up. A waiter
    /// that has slept before (`requeue`) goes back to the front, and marks the mutex starving
    /// if it has waited too long.
    fn enqueue(&self, waiter: &Arc<Waiter>, awoke: bool, requeue: bool) -> Option<Ticket> {
        let starved = requeue && starved(waiter);
        let mut q = self.queue.lock();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (LOCKED | STARVING) == 0 {
                return None;
            }
            let mut new = s | PARKED;
            if awoke {
                new &= !WOKEN_ANY;
            }
            if starved {
                new |= STARVING;
            }
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(q.push(waiter, requeue)),
                Err(now) => s = now,
            }
        }
    }

    #[cold]
    fn unlock_slow(&self, prev: u32) {
        if prev & LOCKED == 0 {
            // Misuse. The `fetch_sub` of the top bit set it rather than borrowing from the
            // others, so the word is intact, as if someone held the lock this moment: release
            // that hold the ordinary way (a waiter that queued meanwhile is woken), so the
            // mutex stays usable after the panic is caught.
            hook(Hook::MisuseWindow);
            self.unlock();
            panic!("sync: unlock of unlocked mutex");
        }
        if !needs_wake(prev & !LOCKED) && !self.task_wake_stale(prev & !LOCKED) {
            return;
        }
        self.wake_after_unlock(self.queue.lock());
    }

    /// Whether the `WOKEN` of state `s` is a task's that has not competed within the
    /// starvation threshold (read from the clock on the first and every 64th unlock it stops:
    /// the clock costs as much as the lock):
    /// then the unlock wakes the next waiter all the same.
    fn task_wake_stale(&self, s: u32) -> bool {
        if s & (LOCKED | WOKEN_TASK | PARKED) != WOKEN_TASK | PARKED {
            return false;
        }
        let n = self.skips.load(std::sync::atomic::Ordering::Relaxed);
        self.skips
            .store(n.wrapping_add(1), std::sync::atomic::Ordering::Relaxed);
        n.is_multiple_of(64) && self.woken_too_long()
    }

    /// With the queue locked, after the lock bit was cleared: in starvation mode (or if the
    /// head has starved) hand the lock to the head waiter, setting the lock bit for it;
    /// otherwise wake the head to compete, unless the lock was taken or someone is awake.
    ///
    /// The head is reserved first (its context may be racing to end its wait) and given back
    /// if nothing is to be done after all.
    fn wake_after_unlock(&self, mut q: Locked<'_>) {
        let mut s = self.state.load(Ordering::Relaxed);
        // A woken task's WOKEN that has gone stale counts as clear.
        let stale = !needs_wake(s) && self.task_wake_stale_now(s);
        let needs_wake =
            |s: u32| needs_wake(s) || (stale && s & (LOCKED | WOKEN_TASK) == WOKEN_TASK);
        if !needs_wake(s) {
            return;
        }
        let Some(head) = q.claim_front() else {
            // Only stale waiters were left, and they are gone now.
            self.state
                .fetch_and(!(PARKED | STARVING), Ordering::Relaxed);
            return;
        };
        let head_starved = starved(head);
        let head_is_task = head.is_task();
        let rest = q.len() > 1;
        loop {
            if !needs_wake(s) {
                q.unclaim_front();
                return;
            }
            let (new, token) = if s & STARVING != 0 || head_starved {
                // Hand-off. In starvation mode no one may take the unlocked mutex, so the lock
                // bit is still clear; set it for the head, which now owns the lock.
                let mut new = (s | LOCKED) & !(PARKED | STARVING);
                if rest {
                    new |= PARKED;
                    if head_starved {
                        new |= STARVING;
                    }
                }
                (new, HANDOFF)
            } else {
                // The woken waiter holds WOKEN until it takes the lock or sleeps again; a task
                // marks it as a task's, which later unlocks honour only for the starvation
                // threshold (see the module docs).
                let mut new = (s & !WOKEN_ANY) | if head_is_task { WOKEN_ANY } else { WOKEN };
                if !rest {
                    new &= !PARKED;
                }
                (new, RETRY)
            };
            // Acquire: on a hand-off we pass on the lock, so we must first acquire whatever the
            // last holder released (it may be a barger that came and went since our unlock).
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    if token == RETRY && head_is_task {
                        self.mark_woken();
                    }
                    let n = q.complete_front(token);
                    drop(q);
                    n.wake();
                    return;
                }
                Err(now) => s = now,
            }
        }
    }

    /// A waiter that was woken to compete (`RETRY`) gave up: a thread clears the `WOKEN` it
    /// held; either way, if the mutex is free and others wait, the next one is woken in its
    /// place.
    fn abandon_wakeup(&self) {
        let q = self.queue.lock();
        self.state.fetch_and(!WOKEN_ANY, Ordering::Relaxed);
        self.wake_after_unlock(q);
    }

    /// A waiter that a context completed leaves the queue (if no notifier dropped it yet).
    fn leave(&self, ticket: &Ticket) {
        let mut q = self.queue.lock();
        q.remove(ticket);
        if q.is_empty() {
            self.state
                .fetch_and(!(PARKED | STARVING), Ordering::Relaxed);
        }
    }

    /// Notes that `unlock` woke a task to compete (see `LockFuture::poll`).
    fn mark_woken(&self) {
        self.woken_at
            .store(nanos_since_epoch(), std::sync::atomic::Ordering::Relaxed);
        self.barges.store(0, std::sync::atomic::Ordering::Relaxed);
        self.skips.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// [`task_wake_stale`](Self::task_wake_stale) for a state read under the queue lock
    /// (unlocked, with `WOKEN_TASK`), without counting.
    fn task_wake_stale_now(&self, s: u32) -> bool {
        s & (LOCKED | WOKEN_TASK | PARKED) == WOKEN_TASK | PARKED && self.woken_too_long()
    }

    /// Whether a task may barge past the woken task now: yes, unless that one has been left
    /// waiting too long (checked every `BARGE_CHECK` barges).
    #[cfg_attr(loom, allow(clippy::modulo_one))] // BARGE_CHECK is 1 under loom
    fn may_barge_past_woken(&self) -> bool {
        let n = self.barges.load(std::sync::atomic::Ordering::Relaxed);
        n % BARGE_CHECK != BARGE_CHECK - 1 || !self.woken_too_long()
    }

    /// Counts a barge past the woken waiter (called by the new holder).
    fn count_barge(&self) {
        let n = self.barges.load(std::sync::atomic::Ordering::Relaxed);
        self.barges
            .store(n.wrapping_add(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the task that `unlock` last woke has been left waiting for the lock for
    /// longer than the starvation threshold.
    fn woken_too_long(&self) -> bool {
        #[cfg(loom)]
        if loom::FORCE_STARVED.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let at = self.woken_at.load(std::sync::atomic::Ordering::Relaxed);
        nanos_since_epoch().saturating_sub(at) >= STARVATION_THRESHOLD.as_nanos() as u64
    }

    /// A queued async waiter gave up: leave the queue, or pass on what it was given.
    fn cancel(&self, ticket: &Ticket) {
        let mut q = self.queue.lock();
        match q.withdraw(ticket) {
            None => {
                if q.is_empty() {
                    self.state
                        .fetch_and(!(PARKED | STARVING), Ordering::Relaxed);
                }
            }
            Some(HANDOFF) => {
                drop(q);
                self.unlock();
            }
            Some(_) => {
                drop(q);
                self.abandon_wakeup();
            }
        }
    }
}

/// Points in the slow paths where a unit test may force an interleaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    /// A thread is about to queue.
    BeforeEnqueue,
    /// A thread's queueing found the mutex free.
    EnqueueFailed,
    /// A misused `unlock` is about to repair the word.
    MisuseWindow,
}

#[cfg(all(test, not(loom)))]
type HookFn = Box<dyn FnMut(Hook)>;

#[cfg(all(test, not(loom)))]
thread_local! {
    static HOOK: std::cell::RefCell<Option<HookFn>> = const { std::cell::RefCell::new(None) };
}

/// Runs the calling thread's test hook, if any; nothing outside unit tests.
#[inline(always)]
fn hook(_at: Hook) {
    #[cfg(all(test, not(loom)))]
    HOOK.with(|h| {
        if let Some(f) = h.borrow_mut().as_mut() {
            f(_at);
        }
    });
}

/// A fixed instant the `woken_at` stamps count from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(loom::now)
}

fn nanos_since_epoch() -> u64 {
    loom::now().saturating_duration_since(epoch()).as_nanos() as u64
}

/// Whether an unlock that left state `s` must wake or hand off: only if the mutex is not held
/// again already, and either starving (the head is owed the lock) or with parked waiters and
/// no one awake to take it.
#[inline]
fn needs_wake(s: u32) -> bool {
    s & LOCKED == 0 && (s & STARVING != 0 || s & (PARKED | WOKEN) == PARKED)
}

fn starved(w: &Waiter) -> bool {
    #[cfg(loom)]
    if loom::FORCE_STARVED.load(std::sync::atomic::Ordering::Relaxed) {
        return true;
    }
    loom::now().saturating_duration_since(w.since()) >= STARVATION_THRESHOLD
}

/// The future returned by [`RawMutex::lock_async`].
#[must_use = "futures do nothing unless polled"]
pub struct LockFuture<'a> {
    mutex: &'a RawMutex,
    origin: Origin,
    ticket: Option<Ticket>,
    since: Option<Instant>,
}

impl fmt::Debug for LockFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFuture")
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}

impl Future for LockFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let m = this.mutex;
        let mut woken = false;
        if let Some(ticket) = &this.ticket {
            match ticket.waiter().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(token) => {
                    this.ticket = None;
                    if token == HANDOFF {
                        return Poll::Ready(());
                    }
                    woken = true;
                }
            }
        }
        // A task does not spin: it would hold up its executor. It tries, then queues.
        //
        // It barges past a task that `unlock` has woken, as a thread does past a woken thread,
        // but yields once for every starvation threshold it spends doing so: the woken task may
        // be queued on this very worker, which cannot run it until we yield, so a task that
        // locks in a loop would otherwise keep the lock forever.
        loop {
            let s = m.state.load(Ordering::Relaxed);
            if s & (LOCKED | STARVING) == 0 {
                let past_woken = !woken && s & WOKEN_TASK != 0;
                if past_woken && !m.may_barge_past_woken() {
                    m.mark_woken();
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                if m.try_barge(s, woken) {
                    if past_woken {
                        m.count_barge();
                    }
                    return Poll::Ready(());
                }
                continue;
            }
            let waiter = Waiter::new(this.origin.on(m.queue.ident()), this.since, Some(cx));
            match m.enqueue(&waiter, woken, this.since.is_some()) {
                Some(ticket) => {
                    this.since.get_or_insert(waiter.since());
                    this.ticket = Some(ticket);
                    return Poll::Pending;
                }
                None => continue,
            }
        }
    }
}

impl Drop for LockFuture<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.mutex.cancel(&ticket);
        }
    }
}

/// A mutual exclusion lock protecting a `T`, over a [`RawMutex`].
///
/// Threads lock it with [`lock`](Self::lock), tasks with [`lock_async`](Self::lock_async), and
/// both may share one `Mutex`. The guard may be sent to another thread (unlike std's), since a
/// Go mutex may be unlocked anywhere; that is what lets a task hold it across `.await`.
///
/// Unlock `n` synchronizes before lock `n + 1` returns. There is no poisoning: if a thread
/// panics while holding the guard, the guard's drop unlocks the mutex, as Go's deferred
/// `Unlock` would.
///
/// ```
/// use gosync::sync::Mutex;
/// use std::sync::Arc;
///
/// let m = Arc::new(Mutex::new(Vec::new()));
/// let handles: Vec<_> = (0..4)
///     .map(|i| {
///         let m = m.clone();
///         std::thread::spawn(move || m.lock().push(i))
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(m.lock().len(), 4);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `data` to one holder at a time, so sharing it across
// threads needs only that `T` can be sent between them.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above; `&Mutex<T>` gives `&mut T` to one thread at a time.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T: Default> Default for Mutex<T> {
    #[track_caller]
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new(value: T) -> Self {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// A new, unlocked mutex holding `value`.
    #[cfg(loom)]
    #[track_caller]
    pub fn new(value: T) -> Self {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the calling thread until it is available.
    ///
    /// ```
    /// let m = gosync::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { mutex: self }
    }

    /// Locks the mutex from an async task.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses no lock and no wake-up.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let m = gosync::sync::Mutex::new(1);
    /// *m.lock_async().await += 1;
    /// assert_eq!(*m.lock_async().await, 2);
    /// # });
    /// ```
    #[track_caller]
    pub fn lock_async(&self) -> MutexLockFuture<'_, T> {
        MutexLockFuture {
            mutex: self,
            inner: self.raw.lock_async(),
        }
    }

    /// Locks the mutex, parking the calling thread until it is available or `ctx` is done
    /// (see [`RawMutex::lock_ctx`]).
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::sync::Mutex;
    ///
    /// let m = Mutex::new(5);
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// assert_eq!(*m.lock_ctx(&ctx).unwrap(), 5);
    /// cancel.cancel();
    /// assert!(m.lock_ctx(&ctx).is_err());
    /// ```
    #[track_caller]
    pub fn lock_ctx(&self, ctx: &GoContext) -> Result<MutexGuard<'_, T>, ContextError> {
        self.raw.lock_ctx(ctx)?;
        Ok(MutexGuard { mutex: self })
    }

    /// Locks the mutex if it is free and not promised to a starved waiter.
    ///
    /// ```
    /// let m = gosync::sync::Mutex::new(());
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // `then`, not `then_some`: a guard built eagerly would unlock on drop.
        self.raw.try_lock().then(|| MutexGuard { mutex: self })
    }

    /// A mutable reference to the value; no locking is needed, since `&mut self` is unique.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Whether the mutex is locked right now (a snapshot, for introspection).
    ///
    /// ```
    /// let m = gosync::sync::Mutex::new(0);
    /// let g = m.lock();
    /// assert!(m.is_locked());
    /// drop(g);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Whether the mutex is in starvation mode (the seed's `IsStarving`); see
    /// [`RawMutex::is_starving`].
    ///
    /// ```
    /// assert!(!gosync::sync::Mutex::new(0).is_starving());
    /// ```
    pub fn is_starving(&self) -> bool {
        self.raw.is_starving()
    }

    /// Whether a waiter has been woken, or a spinner is about to take the lock (the seed's
    /// `IsWoken`); see [`RawMutex::is_woken`].
    ///
    /// ```
    /// assert!(!gosync::sync::Mutex::new(0).is_woken());
    /// ```
    pub fn is_woken(&self) -> bool {
        self.raw.is_woken()
    }

    /// The number of parked waiters (a snapshot).
    ///
    /// ```
    /// assert_eq!(gosync::sync::Mutex::new(0).waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.raw.waiters()
    }

    /// The seed's `Count`: parked waiters plus one if the mutex is held.
    ///
    /// ```
    /// let m = gosync::sync::Mutex::new(0);
    /// let _g = m.lock();
    /// assert_eq!(m.count(), 1);
    /// ```
    pub fn count(&self) -> usize {
        self.raw.count()
    }

    /// Who waits for this mutex, where, and for how long, head of the queue first.
    ///
    /// ```
    /// assert!(gosync::sync::Mutex::new(0).waiting().is_empty());
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.raw.waiting()
    }

    /// The underlying raw mutex (lock_api's `raw`), for code that must lock and unlock it in
    /// its own way — for example a [`Cond`](crate::sync::Cond) over the raw lock. For
    /// introspection, the methods above need no `unsafe`.
    ///
    /// # Safety
    ///
    /// The raw mutex must not be unlocked while a [`MutexGuard`] of this mutex is alive, nor
    /// locked through it and then used as if a guard were held: either would let safe code
    /// reach the value from two places at once. Safe code cannot unlock it through `&Mutex`:
    ///
    /// ```compile_fail,E0133
    /// let m = gosync::sync::Mutex::new(0);
    /// let mut g = m.lock();
    /// m.raw().unlock(); // would free the lock under a live guard
    /// *m.lock() += 1;
    /// *g += 1;
    /// ```
    ///
    /// ```
    /// let m = gosync::sync::Mutex::new(0);
    /// // SAFETY: no guard is alive, and the lock is given back before one is taken.
    /// let raw = unsafe { m.raw() };
    /// raw.lock();
    /// raw.unlock();
    /// *m.lock() += 1;
    /// ```
    pub unsafe fn raw(&self) -> &RawMutex {
        &self.raw
    }
}

/// The future returned by [`Mutex::lock_async`].
#[must_use = "futures do nothing unless polled"]
pub struct MutexLockFuture<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    inner: LockFuture<'a>,
}

impl<T: ?Sized> fmt::Debug for MutexLockFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'a, T: ?Sized> Future for MutexLockFuture<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.inner)
            .poll(cx)
            .map(|()| MutexGuard { mutex: this.mutex })
    }
}

/// Holds a [`Mutex`] locked; unlocks it when dropped.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

// SAFETY: the guard gives `&T` to whoever holds a `&MutexGuard`, so it is `Sync` when `T` is.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}
// SAFETY: a gosync mutex may be unlocked from any thread, so the guard may move with `T`.
unsafe impl<T: ?Sized + Send> Send for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard holds, e.g. to build a [`Cond`](super::Cond) wait on it.
    pub fn mutex(guard: &Self) -> &'a Mutex<T> {
        guard.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no one else accesses `data`.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes this access unique.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc as StdArc;
    use std::task::{Wake, Waker};

    fn poll_noop<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
    }

    fn set_hook(f: impl FnMut(Hook) + 'static) {
        HOOK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
    }

    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(20), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A thread whose first queueing finds the mutex just released, and whose barge then
    /// fails, has never slept: it must queue at the back, not at the front as a woken waiter
    /// that lost the race does.
    #[test]
    fn a_waiter_that_never_slept_queues_at_the_back() {
        let m = StdArc::new(RawMutex::new());
        m.lock();
        let mut f1 = Box::pin(m.lock_async());
        let mut f2 = Box::pin(m.lock_async());
        assert!(poll_noop(f1.as_mut()).is_pending());
        assert!(poll_noop(f2.as_mut()).is_pending());
        let t = {
            let m = m.clone();
            std::thread::spawn(move || {
                let hm = m.clone();
                let mut fired = false;
                set_hook(move |at| match at {
                    // Release the lock just before this thread queues: its queueing finds the
                    // mutex free (nobody is woken: the spinning thread holds WOKEN).
                    Hook::BeforeEnqueue if !fired => {
                        fired = true;
                        hm.unlock();
                    }
                    // ... and someone else takes it before this thread can barge.
                    Hook::EnqueueFailed => assert!(hm.try_lock()),
                    _ => {}
                });
                m.lock();
                m.unlock();
            })
        };
        wait_for("the thread did not queue", || {
            m.waiting().iter().any(|r| !r.is_async)
        });
        let order: Vec<bool> = m.waiting().iter().map(|r| r.is_async).collect();
        assert_eq!(
            order.last(),
            Some(&false),
            "the thread that never slept jumped ahead of the queued futures: {order:?}"
        );
        // The hook's `try_lock` holds the mutex: release it and let everyone through.
        m.unlock();
        drop(f2);
        drop(f1);
        t.join().unwrap();
        assert!(!m.is_locked() && m.waiters() == 0);
    }

    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A waiter that queues while a misused `unlock` is being caught must still be woken, and
    /// the word must hold no stray bit afterwards.
    #[test]
    fn a_caught_misuse_unlock_leaves_the_word_intact() {
        let m: &'static RawMutex = Box::leak(Box::new(RawMutex::new()));
        let count = StdArc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let f = std::rc::Rc::new(std::cell::RefCell::new(Box::pin(m.lock_async())));
        let (hf, w) = (f.clone(), waker.clone());
        set_hook(move |at| {
            if at == Hook::MisuseWindow {
                // A locker arrives in the window and, finding the mutex held, queues.
                let mut cx = Context::from_waker(&w);
                let _ = hf.borrow_mut().as_mut().poll(&mut cx);
            }
        });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.unlock()));
        HOOK.with(|h| h.borrow_mut().take());
        assert!(caught.is_err(), "the misuse panics");
        let polled_ready = poll_noop(f.borrow_mut().as_mut()).is_ready();
        assert!(
            polled_ready,
            "the future that queued during the misuse was stranded (woken {} times)",
            count.0.load(std::sync::atomic::Ordering::SeqCst)
        );
        assert!(!m.is_woken(), "a stray WOKEN bit");
        m.unlock();
        assert!(!m.is_locked() && !m.is_starving() && m.waiters() == 0);
        assert!(m.try_lock());
        m.unlock();
    }
}
