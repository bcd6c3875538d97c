//! The waiter core: one FIFO of parked threads and async tasks, with direct hand-off.
//!
//! Go builds every primitive of `sync` on one runtime facility (`runtime/sema.go`): a queue of
//! parked goroutines that a releaser can hand a resource to. gosync does the same. Every wait in
//! the library — a blocked `lock`, a `Cond` wait, a `WaitGroup` wait, a caller held in
//! `Once::call_once` while another runs `f`, a context's `done` — is a [`Waiter`] in a [`Queue`].
//!
//! Don't think of a queue as a semaphore or a condition variable: it keeps no count and no
//! predicate. The primitive that owns it keeps its own state (usually one atomic word) and
//! decides, *while holding the queue lock*, whom to notify and with which token. The queue only
//! guarantees the pairing invariant:
//!
//! * a waiter is notified **at most once**, with a non-zero token, and the token is written while
//!   the queue lock is held, at the same moment the waiter leaves the queue;
//! * a waiter is either in the queue or notified, never both and never neither — so a waiter
//!   that gives up (a dropped future, a timed-out thread) and fails to remove itself *has* a
//!   token, and must pass on whatever that token gave it (the lock, a permit, a wake-up);
//! * the wake-up itself (unparking the thread, waking the task) happens after the queue lock is
//!   released ([`Notified::wake`]), so a woken thread never finds the lock still held by its
//!   waker.
//!
//! A waiter is either a parked thread or an async task's `Waker`; the same queue holds both, so
//! one mutex can be shared by threads and tasks. Each waiter records what it waits for, where
//! (`#[track_caller]` location) and since when, so diagnostics can report who waits where, and
//! so the mutex can tell a starving waiter (over 1 ms) from a fresh one.

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::loom::{self, Arc, AtomicU32, AtomicUsize, Mutex, MutexGuard, Ordering};

mod backoff;
pub(crate) use backoff::Backoff;

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
}

/// What a wait is for and where it was called from.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub(crate) kind: WaitKind,
    pub(crate) location: &'static Location<'static>,
}

impl Origin {
    /// The origin `kind`, called at the caller's location.
    #[track_caller]
    #[inline]
    pub(crate) fn here(kind: WaitKind) -> Self {
        Origin {
            kind,
            location: Location::caller(),
        }
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
}

#[cfg(not(loom))]
thread_local! {
    /// A thread's last waiter, reused by its next wait when nobody else holds it.
    static CACHED: std::cell::Cell<Option<Arc<Waiter>>> = const { std::cell::Cell::new(None) };
    /// The last task waiter finished on this thread (an executor's worker), likewise.
    static CACHED_TASK: std::cell::Cell<Option<Arc<Waiter>>> = const { std::cell::Cell::new(None) };
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
                None => CACHED.take(),
                Some(_) => CACHED_TASK.take(),
            };
            if let Some(mut w) = cached {
                if let Some(m) = Arc::get_mut(&mut w) {
                    *m.token.get_mut() = 0;
                    m.kind = what.kind;
                    m.location = what.location;
                    m.since = since;
                    if let Some(cx) = cx {
                        *m.waker.get_mut().unwrap() = Some(cx.waker().clone());
                    }
                    return w;
                }
            }
        }
        Arc::new(Waiter {
            token: AtomicU32::new(0),
            kind: what.kind,
            location: what.location,
            since,
            thread: cx.is_none().then(loom::thread::current),
            waker: Mutex::new(cx.map(|cx| cx.waker().clone())),
        })
    }

    /// Hands a finished waiter back for the next wait on this thread (saves an allocation per
    /// operation that waits). Does nothing if someone else still holds it.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn recycle(this: Arc<Self>) {
        #[cfg(not(loom))]
        {
            let mut this = this;
            if let Some(m) = Arc::get_mut(&mut this) {
                if m.thread.is_some() {
                    CACHED.set(Some(this));
                } else {
                    // Do not keep the task alive through its waker.
                    *m.waker.get_mut().unwrap() = None;
                    CACHED_TASK.set(Some(this));
                }
            }
        }
        #[cfg(loom)]
        drop(this);
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
        self.transition(CLAIMED).is_ok()
    }

    /// Gives the waiter up on behalf of its owner (a dropped future with several queued arms,
    /// each calling this): the first call claims it for good, so no peer can complete it; if a
    /// peer claimed it first, waits for that completion and returns its token. Idempotent.
    pub(crate) fn abandon(&self) -> Abandon {
        loop {
            match self.transition(ABANDONED) {
                Ok(()) | Err(ABANDONED) => return Abandon::Abandoned,
                Err(CLAIMED) => loom::thread::yield_now(),
                Err(t) => return Abandon::Completed(t),
            }
        }
    }

    /// Completes a waiter this caller claimed, giving it `token` (non-zero, not `CLAIMED`).
    /// Wake it with the returned [`Notified`] once locks are released.
    #[inline]
    pub(crate) fn complete(this: &Arc<Self>, token: u32) -> Notified {
        debug_assert!(token != 0 && token < ABANDONED);
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
            return Poll::Ready(t);
        }
        {
            let mut slot = self.waker.lock().unwrap();
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        // The notifier writes the token before it takes the waker: either it saw our new waker,
        // or we see its token now.
        match self.token() {
            Some(t) => Poll::Ready(t),
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
                let waker = self.waker.lock().unwrap().take();
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

/// A waiter's place in a queue, held by whoever waits.
pub(crate) struct Ticket {
    waiter: Arc<Waiter>,
    seq: u64,
}

impl Ticket {
    /// The waiter this ticket stands for.
    pub(crate) fn waiter(&self) -> &Waiter {
        &self.waiter
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
        0 | CLAIMED | ABANDONED => None,
        t => Some(t),
    }
}

/// A FIFO of waiters.
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    /// `inner.waiters.len()`, readable without the lock (for introspection and fast checks).
    len: AtomicUsize,
}

/// Waiters in order, each with a sequence number that increases from front to back, so that a
/// waiter can find itself by binary search. `push_front` counts down from the middle of the
/// range, `push_back` counts up; neither can wrap in 2^63 pushes.
struct Inner {
    waiters: VecDeque<(u64, Arc<Waiter>)>,
    front_seq: u64,
    back_seq: u64,
}

const MID: u64 = u64::MAX / 2;

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    /// An empty queue.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Queue {
            inner: Mutex::new(Inner {
                waiters: VecDeque::new(),
                front_seq: MID,
                back_seq: MID,
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// An empty queue.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Queue {
            inner: Mutex::new(Inner {
                waiters: VecDeque::new(),
                front_seq: MID,
                back_seq: MID,
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// Takes the queue lock. Every change to the queue, and every decision about whom to notify,
    /// is made under it.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            inner: self.inner.lock().unwrap(),
            len: &self.len,
        }
    }

    /// The number of waiters, read without the lock.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Snapshots every waiter, front first.
    pub(crate) fn records(&self) -> Vec<WaitRecord> {
        let waiters: Vec<Arc<Waiter>> = self
            .lock()
            .inner
            .waiters
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        waiters.iter().map(|w| w.record()).collect()
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").field("len", &self.len()).finish()
    }
}

/// The queue, locked.
pub(crate) struct Locked<'a> {
    inner: MutexGuard<'a, Inner>,
    len: &'a AtomicUsize,
}

impl Locked<'_> {
    /// Appends `waiter` at the back (FIFO), or at the front when `lifo` (a woken waiter that lost
    /// the race keeps its place at the head, as in Go).
    pub(crate) fn push(&mut self, waiter: Arc<Waiter>, lifo: bool) -> Ticket {
        let inner = &mut *self.inner;
        let seq = if lifo {
            inner.front_seq -= 1;
            inner.waiters.push_front((inner.front_seq, waiter.clone()));
            inner.front_seq
        } else {
            let seq = inner.back_seq;
            inner.back_seq += 1;
            inner.waiters.push_back((seq, waiter.clone()));
            seq
        };
        self.len.store(inner.waiters.len(), Ordering::Relaxed);
        Ticket { waiter, seq }
    }

    /// Removes the ticket's waiter if it is still queued. `false` means it was notified: its
    /// token is set, and whatever that token carried must be passed on.
    pub(crate) fn remove(&mut self, ticket: &Ticket) -> bool {
        let waiters = &mut self.inner.waiters;
        match waiters.binary_search_by_key(&ticket.seq, |(s, _)| *s) {
            Ok(i) if Arc::ptr_eq(&waiters[i].1, &ticket.waiter) => {
                waiters.remove(i);
                self.len.store(waiters.len(), Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// The waiter at the head of the queue.
    pub(crate) fn front(&self) -> Option<&Waiter> {
        self.inner.waiters.front().map(|(_, w)| &**w)
    }

    /// Takes the head waiter off the queue and gives it `token` (non-zero).
    pub(crate) fn notify_front(&mut self, token: u32) -> Option<Notified> {
        debug_assert_ne!(token, 0);
        let (_, w) = self.inner.waiters.pop_front()?;
        self.len.store(self.inner.waiters.len(), Ordering::Relaxed);
        Some(Waiter::notify(w, token))
    }

    /// Takes every waiter off the queue, giving each `token`.
    pub(crate) fn notify_all(&mut self, token: u32) -> Vec<Notified> {
        let drained: Vec<Notified> = self
            .inner
            .waiters
            .drain(..)
            .map(|(_, w)| Waiter::notify(w, token))
            .collect();
        self.len.store(0, Ordering::Relaxed);
        drained
    }

    /// The number of waiters.
    pub(crate) fn len(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Whether no one waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.waiters.is_empty()
    }
}

/// Wakes every waiter in `list` (call after the queue lock is released).
pub(crate) fn wake_all(list: Vec<Notified>) {
    for n in list {
        n.wake();
    }
}
