//! The waiter core: one FIFO of parked threads and async tasks, with direct hand-off.
//!
//! Go builds every primitive of `sync` on one runtime facility (`runtime/sema.go`): a queue of
//! parked goroutines that a releaser can hand a resource to. gosync does the same. Every wait in
//! the library — a blocked `lock`, a `Cond` wait, a `WaitGroup` wait, a caller held in
//! `Once::call_once` while another runs `f`, a context's `done` — is a [`Waiter`] in a [`Queue`].
//!
//! Don't think of a queue as a semaphore or a condition variable: it keeps no count and no
//! predicate. The primitive that owns it keeps its own state (usually one atomic word) and
//! decides, *while holding the queue lock*, whom to complete and with which token.
//!
//! # One completion protocol
//!
//! A waiter is completed only by whoever wins its **claim** — one CAS on its token word — be it
//! a queue's notifier, a channel, one arm of a `select`, a [`Context`](crate::context::Context)
//! the waiter is also registered with (`lock_ctx`, `send_ctx`, ...), or the owner itself giving
//! up. So one waiter may sit in a primitive's queue and race a context at once, and exactly
//! one of them decides the outcome:
//!
//! * a token is written once, with release ordering, and read with acquire ordering: whatever
//!   the completer did before completing happens before the owner sees the token;
//! * a queue's notifier first *reserves* the head (a claim it may give back), decides under the
//!   queue lock what to give it, then completes it or gives it back; another claimer waits the
//!   moment out rather than take a reserved waiter for gone;
//! * a queued waiter that someone else completed, or whose owner abandoned it, is *stale*: a
//!   notifier drops it when met, the owner removes it otherwise;
//! * an owner that gives up (a dropped future, a context that ended) abandons its waiter; if
//!   that fails, the waiter was completed first, and the owner must pass on whatever the token
//!   gave it (the lock, a permit, a wake-up);
//! * [`CTX_DONE`] is the token every context gives, below which every primitive's own tokens
//!   lie;
//! * the wake-up itself (unparking the thread, waking the task) happens after the queue lock is
//!   released ([`Notified::wake`]), and a batch is always woken whole, even when a waker
//!   panics ([`wake_all`]).
//!
//! A waiter is either a parked thread or an async task's `Waker`; the same queue holds both, so
//! one mutex can be shared by threads and tasks. Each waiter records what it waits for, where
//! (`#[track_caller]` location) and since when, so the mutex can tell a starving waiter (over
//! 1 ms) from a fresh one, and the registry of waits ([`registry`], read by
//! [`diag::blocked`](crate::diag::blocked)) can say who waits where.

use std::fmt;
use std::panic::Location;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::loom::{self, Arc, AtomicU32, AtomicU64, Mutex, MutexGuard, Ordering};

/// Locks a waiter's waker slot; a waker whose `clone` panicked under the lock leaves it
/// poisoned but consistent (the slot holds a whole waker or none).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

mod backoff;
pub(crate) mod coop;
pub(crate) mod drive;
mod queue;
pub(crate) mod registry;
pub(crate) use backoff::Backoff;
pub(crate) use queue::{Locked, Queue, Ticket};
pub(crate) use registry::{Ident, Prim, ThreadWait};

/// What a waiter is waiting for; recorded for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitKind {
    /// `Mutex::lock` / `RawMutex::lock`.
    Mutex,
    /// `RwMutex::read` / `RawRwMutex::rlock`.
    RwMutexRead,
    /// `RwMutex::write` / `RawRwMutex::lock`.
    RwMutexWrite,
    /// `Cond::wait`.
    Cond,
    /// `WaitGroup::wait`.
    WaitGroup,
    /// A caller of `Once::call_once` waiting for another caller's `f`.
    Once,
    /// `Context::done` / `Context::wait`.
    Context,
    /// A channel send (`Chan::send`, `send_async`).
    ChanSend,
    /// A channel receive (`Chan::recv`, `recv_async`).
    ChanRecv,
    /// A `select!` / `select_async!` / `Select` waiting on several channel operations.
    Select,
    /// An operation on a nil channel, which blocks forever.
    NilChan,
    /// `time::sleep` / `time::sleep_until`.
    Sleep,
    /// `semaphore::Weighted::acquire` / `acquire_async`.
    Semaphore,
    /// A thread waiting for a `filelock::FileLock` (in the kernel, or between polls).
    FileLock,
    /// A caller of `singleflight::Group::call` / `call_async` waiting for a shared call.
    Singleflight,
    /// `errgroup::TaskGroup::wait` / `wait_async`, or its `go` waiting for a free slot.
    ErrGroup,
}

impl WaitKind {
    /// Every kind, in declaration order.
    pub(crate) const ALL: [WaitKind; 16] = [
        WaitKind::Mutex,
        WaitKind::RwMutexRead,
        WaitKind::RwMutexWrite,
        WaitKind::Cond,
        WaitKind::WaitGroup,
        WaitKind::Once,
        WaitKind::Context,
        WaitKind::ChanSend,
        WaitKind::ChanRecv,
        WaitKind::Select,
        WaitKind::NilChan,
        WaitKind::Sleep,
        WaitKind::Semaphore,
        WaitKind::FileLock,
        WaitKind::Singleflight,
        WaitKind::ErrGroup,
    ];
}

/// What a wait is for and where it was called from.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub(crate) kind: WaitKind,
    pub(crate) location: &'static Location<'static>,
    /// The primitive waited on, filled in by its slow path (see [`Origin::on`]).
    pub(crate) prim: Prim,
}

impl Origin {
    /// The origin `kind`, called at the caller's location.
    #[track_caller]
    #[inline]
    pub(crate) fn here(kind: WaitKind) -> Self {
        Origin {
            kind,
            location: Location::caller(),
            prim: Prim {
                id: 0,
                created: None,
            },
        }
    }

    /// This origin, on the primitive `ident` — unless a primitive built on that one (a
    /// read-write mutex on its writers' mutex) named itself already.
    #[inline]
    pub(crate) fn on(mut self, ident: &Ident) -> Self {
        if self.prim.id == 0 {
            self.prim = ident.prim();
        }
        self
    }

    /// This origin, on the primitive numbered `id` with no known creation site (a channel,
    /// numbered by its address).
    #[inline]
    pub(crate) fn on_id(mut self, id: u64) -> Self {
        if self.prim.id == 0 {
            self.prim = Prim { id, created: None };
        }
        self
    }
}

/// A snapshot of one waiter: what it waits for, where, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct WaitRecord {
    /// The primitive operation waited on.
    pub kind: WaitKind,
    /// Where the wait was called from.
    pub location: &'static Location<'static>,
    /// How long the waiter has waited so far; zero for channel operations and `select`, which
    /// are not timed (a clock read would be a noticeable share of a hand-off).
    pub waited: Duration,
    /// Whether the waiter is an async task (`true`) or a parked thread (`false`).
    pub is_async: bool,
}

/// Set in a waiter's token word by a thread about to park, so a notifier unparks only a thread
/// that may sleep (an unpark is a system call when it does, a cache-line transfer when it
/// does not). Flag and token share one word: the notifier's swap and the parker's fetch_or
/// are ordered, so either the notifier sees the flag or the parker sees the token.
const PARKED: u32 = 1 << 31;

/// The token of a waiter that has been claimed but not yet completed (see [`Waiter::claim`]).
pub(crate) const CLAIMED: u32 = PARKED - 1;

/// The token of a waiter whose owner gave up before anyone claimed it (see
/// [`Waiter::abandon`]).
pub(crate) const ABANDONED: u32 = PARKED - 2;

/// The token of a waiter reserved by a queue's notifier, which will complete it or give it
/// back before it lets go of the queue lock (see [`Waiter::reserve`]).
const RESERVED: u32 = PARKED - 3;

/// The completion token a [`Context`](crate::context::Context) gives the waiters it ends: the
/// same in every queue, so that a waiter registered with a primitive and a context at once
/// can tell the two apart. Every primitive's own tokens are below it.
pub(crate) const CTX_DONE: u32 = PARKED - 4;

/// The outcome of [`Waiter::abandon`].
pub(crate) enum Abandon {
    /// Nobody had claimed the waiter; now nobody can.
    Abandoned,
    /// A peer completed the waiter first, with this token.
    Completed(u32),
}

/// One blocked thread or task.
pub struct Waiter {
    /// `0` while waiting; the token it was notified with afterwards; plus the [`PARKED`] flag.
    token: AtomicU32,
    kind: WaitKind,
    location: &'static Location<'static>,
    /// When the wait began; `None` for an untimed waiter (see [`Waiter::untimed`]).
    since: Option<Instant>,
    /// The thread to unpark; `None` for a task.
    thread: Option<loom::thread::Thread>,
    /// The task's waker; always `None` for a thread.
    waker: Mutex<Option<Waker>>,
    /// What the waiter asks for, for the primitive's notifier to read under its queue lock
    /// (a semaphore's weight); set by the owner before it queues.
    payload: AtomicU64,
    /// A task waiter's entry in the registry of waits (threads have theirs per thread).
    pub(crate) diag: registry::Record,
    /// The registry index of a task waiter; `usize::MAX` for a thread's.
    reg: usize,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.reg != usize::MAX {
            registry::unregister_task(self.reg);
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// A thread's last waiter, reused by its next wait when nobody else holds it.
    static CACHED: std::cell::Cell<Option<Arc<Waiter>>> = const { std::cell::Cell::new(None) };
    /// Task waiters finished on this thread (an executor's worker), likewise: a worker may
    /// have several tasks waiting at once.
    static CACHED_TASKS: std::cell::RefCell<Vec<Arc<Waiter>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// How many finished task waiters a thread keeps for reuse.
#[cfg(not(loom))]
const TASK_CACHE: usize = 16;

/// Takes a reusable task waiter from the calling thread's cache.
#[cfg(not(loom))]
fn cached_task() -> Option<Arc<Waiter>> {
    CACHED_TASKS
        .try_with(|c| {
            let mut c = c.borrow_mut();
            let i = c.iter().position(|w| Arc::strong_count(w) == 1)?;
            Some(c.swap_remove(i))
        })
        .ok()
        .flatten()
}

impl Waiter {
    /// A waiter for the calling thread (`cx` is `None`) or for the task polled with `cx`.
    /// `since` carries over the start of an earlier wait by the same caller (a woken waiter that
    /// lost the race and queues again keeps its age, as in Go).
    pub(crate) fn new(what: Origin, since: Option<Instant>, cx: Option<&Context<'_>>) -> Arc<Self> {
        Waiter::build(what, Some(since.unwrap_or_else(loom::now)), cx)
    }

    /// A waiter that does not read the clock: for channel operations, where a hand-off takes
    /// a few hundred nanoseconds and a clock read would be a noticeable share of it. Go's
    /// runtime likewise does not time every park. Its records report no waiting time.
    pub(crate) fn untimed(what: Origin, cx: Option<&Context<'_>>) -> Arc<Self> {
        Waiter::build(what, None, cx)
    }

    fn build(what: Origin, since: Option<Instant>, cx: Option<&Context<'_>>) -> Arc<Self> {
        #[cfg(not(loom))]
        {
            let cached = match cx {
                None => CACHED.try_with(|c| c.take()).ok().flatten(),
                Some(_) => cached_task(),
            };
            if let Some(mut w) = cached {
                if let Some(m) = Arc::get_mut(&mut w) {
                    *m.token.get_mut() = 0;
                    *m.payload.get_mut() = 0;
                    m.kind = what.kind;
                    m.location = what.location;
                    m.since = since;
                    if let Some(cx) = cx {
                        *m.waker.get_mut().unwrap_or_else(|e| e.into_inner()) =
                            Some(cx.waker().clone());
                        m.diag.enter(&what, since);
                    }
                    return w;
                }
            }
        }
        let w = Arc::new(Waiter {
            token: AtomicU32::new(0),
            kind: what.kind,
            location: what.location,
            since,
            thread: cx.is_none().then(loom::thread::current),
            waker: Mutex::new(cx.map(|cx| cx.waker().clone())),
            payload: AtomicU64::new(0),
            diag: registry::Record::new(),
            reg: usize::MAX,
        });
        if cx.is_none() {
            return w;
        }
        // A task's waits are recorded in its waiter: register it once, for its whole life.
        let mut w = w;
        let ptr = Arc::as_ptr(&w);
        let reg = registry::register_task(ptr);
        Arc::get_mut(&mut w).expect("a new waiter").reg = reg;
        w.diag.enter(&what, since);
        w
    }

    /// Hands a finished waiter back for the next wait on this thread (saves an allocation per
    /// operation that waits). Does nothing if someone else still holds it.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn recycle(this: Arc<Self>) {
        this.diag.leave();
        #[cfg(not(loom))]
        {
            if this.thread.is_some() {
                // Kept even while a notifier still holds it for a moment: by the next wait it
                // has let go (`build` checks).
                let _ = CACHED.try_with(|c| c.set(Some(this)));
            } else {
                // Do not keep the task alive through its waker. (A notifier that still holds
                // the waiter for a moment takes no waker it needs: the owner has seen its
                // completion.) Kept even while shared, as for threads: `cached_task` reuses
                // only a waiter nobody else holds.
                *lock(&this.waker) = None;
                let _ = CACHED_TASKS.try_with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() < TASK_CACHE {
                        c.push(this);
                    }
                });
            }
        }
        #[cfg(loom)]
        drop(this);
    }

    /// The task's identity for diagnostics: its waker's data pointer (0 for a thread).
    pub(crate) fn task_id(&self) -> usize {
        lock(&self.waker).as_ref().map_or(0, |w| w.data() as usize)
    }

    /// Sets what the waiter asks for; call before queueing it.
    pub(crate) fn set_payload(&self, payload: u64) {
        self.payload.store(payload, Ordering::Relaxed);
    }

    /// What the waiter asks for (read under the lock of the queue it was pushed to).
    pub(crate) fn payload(&self) -> u64 {
        self.payload.load(Ordering::Relaxed)
    }

    /// Whether the waiter is an async task's (not a parked thread's).
    #[inline]
    pub(crate) fn is_task(&self) -> bool {
        self.thread.is_none()
    }

    /// When this waiter started waiting.
    pub(crate) fn since(&self) -> Instant {
        self.since.expect("since() of an untimed waiter")
    }

    /// The token this waiter was notified with, if it has been (acquire: whatever the notifier
    /// did before notifying happens before this returns `Some`).
    #[inline]
    pub(crate) fn token(&self) -> Option<u32> {
        real_token(self.token.load(Ordering::Acquire))
    }

    /// Whether nobody has claimed or notified this waiter yet.
    #[inline]
    pub(crate) fn is_waiting(&self) -> bool {
        self.token.load(Ordering::Relaxed) & !PARKED == 0
    }

    /// Claims the waiter for completion: of all parties that try (the channels a `select` waits
    /// on, and the waiter itself when it gives up), exactly one succeeds. Whoever succeeds must
    /// finish with [`Waiter::complete`], unless it is the waiter itself. A claimed waiter reads
    /// as not notified yet, so its owner keeps waiting until the completion arrives.
    #[inline]
    pub(crate) fn claim(&self) -> bool {
        loop {
            match self.transition(CLAIMED) {
                Ok(()) => return true,
                // A queue's notifier is deciding under its lock; it completes or gives back.
                Err(RESERVED) => loom::thread::yield_now(),
                Err(_) => return false,
            }
        }
    }

    /// Claims the waiter tentatively, for a queue's notifier that decides under the queue lock
    /// what to give it; it must [`complete`](Self::complete) it or [`unclaim`](Self::unclaim) it
    /// before letting go of that lock. Others who try to claim meanwhile wait the moment out.
    #[inline]
    pub(crate) fn reserve(&self) -> bool {
        self.transition(RESERVED).is_ok()
    }

    /// Gives back a reservation: the waiter waits on, claimable again.
    pub(crate) fn unclaim(&self) {
        let mut cur = self.token.load(Ordering::Relaxed);
        loop {
            debug_assert_eq!(cur & !PARKED, RESERVED);
            match self.token.compare_exchange_weak(
                cur,
                cur & PARKED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Gives the waiter up on behalf of its owner (a dropped future with several queued arms,
    /// each calling this): the first call claims it for good, so no peer can complete it; if a
    /// peer claimed it first, waits for that completion and returns its token. Idempotent.
    pub(crate) fn abandon(&self) -> Abandon {
        self.diag.leave();
        loop {
            match self.transition(ABANDONED) {
                Ok(()) | Err(ABANDONED) => return Abandon::Abandoned,
                Err(CLAIMED | RESERVED) => loom::thread::yield_now(),
                Err(t) => return Abandon::Completed(t),
            }
        }
    }

    /// Completes a waiter this caller claimed, giving it `token` (non-zero, not `CLAIMED`).
    /// Wake it with the returned [`Notified`] once locks are released.
    #[inline]
    pub(crate) fn complete(this: &Arc<Self>, token: u32) -> Notified {
        debug_assert!(token != 0 && token <= CTX_DONE);
        Waiter::notify(this.clone(), token)
    }

    /// Blocks the calling thread (which must be the one that created this waiter) until it is
    /// notified or `deadline` passes; returns the token, or `None` on timeout.
    pub(crate) fn park(&self, deadline: Option<Instant>) -> Option<u32> {
        loop {
            if let Some(t) = self.token() {
                return Some(t);
            }
            if let Some(d) = deadline {
                if loom::now() >= d {
                    return None;
                }
            }
            // Either the notifier's swap sees the flag and unparks us, or we see its token.
            if let Some(t) = real_token(self.token.fetch_or(PARKED, Ordering::Acquire)) {
                return Some(t);
            }
            loom::park_until(deadline);
        }
    }

    /// Polls for the notification; registers `cx`'s waker when not notified yet.
    pub(crate) fn poll(&self, cx: &Context<'_>) -> Poll<u32> {
        if let Some(t) = self.token() {
            self.diag.leave();
            return Poll::Ready(t);
        }
        {
            let mut slot = lock(&self.waker);
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        // The notifier writes the token before it takes the waker: either it saw our new waker,
        // or we see its token now.
        match self.token() {
            Some(t) => {
                self.diag.leave();
                Poll::Ready(t)
            }
            None => Poll::Pending,
        }
    }

    fn record(&self) -> WaitRecord {
        WaitRecord {
            kind: self.kind,
            location: self.location,
            waited: self
                .since
                .map_or(Duration::ZERO, |s| loom::now().saturating_duration_since(s)),
            is_async: self.thread.is_none(),
        }
    }

    /// Moves the waiter from a claimable state (`0`, or `PARKED` alone) to `to`, keeping the
    /// flag; the current state on failure.
    fn transition(&self, to: u32) -> Result<(), u32> {
        // Acquire on every path: a failure returns a completion token, and the caller then
        // reads what the completer wrote before it.
        let mut cur = self.token.load(Ordering::Acquire);
        loop {
            if cur & !PARKED != 0 {
                return Err(cur & !PARKED);
            }
            match self.token.compare_exchange_weak(
                cur,
                to | (cur & PARKED),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// Gives the waiter `token` (release: whatever the caller did before happens before the
    /// waiter sees it); the returned handle wakes it.
    fn notify(this: Arc<Self>, token: u32) -> Notified {
        let prev = this.token.swap(token, Ordering::Release);
        let unpark = this.thread.is_none() || prev & PARKED != 0;
        Notified {
            waiter: this,
            unpark,
        }
    }

    fn unpark(&self) {
        match &self.thread {
            Some(t) => t.unpark(),
            None => {
                let waker = lock(&self.waker).take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
    }
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("kind", &self.kind)
            .field("location", &self.location)
            .field("token", &(self.token.load(Ordering::Relaxed) & !PARKED))
            .finish()
    }
}

/// A waiter taken off the queue and given its token; call [`Notified::wake`] once the queue
/// lock is released.
#[must_use = "a notified waiter sleeps until woken"]
pub(crate) struct Notified {
    waiter: Arc<Waiter>,
    /// `false` for a thread that had not begun to park: it will see its token without help.
    unpark: bool,
}

impl Notified {
    /// Unparks the thread or wakes the task.
    pub(crate) fn wake(self) {
        if self.unpark {
            self.waiter.unpark();
        }
    }
}

/// The token in a token word, if it holds a real one (not waiting, claimed or abandoned).
#[inline]
fn real_token(word: u32) -> Option<u32> {
    match word & !PARKED {
        0 | CLAIMED | ABANDONED | RESERVED => None,
        t => Some(t),
    }
}

/// Wakes every waiter in `list` (call after the queue lock is released) — all of them, even
/// when a waker panics: a waiter that was notified and not woken would sleep forever holding
/// what it was given (a read lock, a broadcast). The first panic is handed back, to be resumed
/// once the caller's own bookkeeping is done.
pub(crate) fn wake_all(list: impl IntoIterator<Item = Notified>) -> WakePanic {
    let mut panic = WakePanic(None);
    for n in list {
        panic.catch(|| n.wake());
    }
    panic
}

/// A panic raised by a waker, held until the rest of a batch has been woken.
#[must_use = "resume the waker's panic once the batch is woken"]
pub(crate) struct WakePanic(Option<Box<dyn std::any::Any + Send>>);

impl WakePanic {
    /// No panic yet.
    pub(crate) const fn none() -> Self {
        WakePanic(None)
    }

    /// Runs `f`, keeping its panic (the first one) instead of letting it unwind.
    pub(crate) fn catch(&mut self, f: impl FnOnce()) {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            self.0.get_or_insert(p);
        }
    }

    /// Keeps `other`'s panic if this holds none.
    pub(crate) fn merge(&mut self, other: WakePanic) {
        if self.0.is_none() {
            self.0 = other.0;
        }
    }

    /// Re-raises the waker's panic, if there was one — unless the thread is already unwinding
    /// (a destructor finishing a `Once` whose function panicked), where a second panic would
    /// abort the process; that panic is dropped and the first one goes on.
    pub(crate) fn resume(self) {
        if let Some(p) = self.0 {
            if !std::thread::panicking() {
                std::panic::resume_unwind(p);
            }
        }
    }
}

/// A panic's payload, as `catch_unwind` gives it.
pub(crate) type Payload = Box<dyn std::any::Any + Send>;

/// The message of a panic payload, if it is a string (`panic!` with a message makes one).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Locks a std mutex, ignoring poisoning: no panic leaves the data of the library's std
/// mutexes half-updated.
pub(crate) fn lock_unpoisoned<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
