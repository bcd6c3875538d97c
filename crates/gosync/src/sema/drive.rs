//! Futures driven by whoever waits for them: the core shared by [`TaskGroup`] and the async
//! calls of [`singleflight::Group`](crate::singleflight::Group). It lives in the waiter core
//! because both sit on it and neither should import the other.
//!
//! gosync has no executor, so a future that several callers are interested in — a
//! singleflight call started by `call_async`, the futures of a [`TaskGroup`] — is not spawned
//! anywhere: it lives in the shared object, and every caller waiting for it *drives* it. At any
//! moment at most one of them polls (it holds the `POLLING` bit); the others wait in a
//! [`Queue`] of the waiter core, threads parked and tasks suspended, so diagnostics see every
//! one of them.
//!
//! The future is polled with a waker that belongs to the shared object, not to the caller that
//! happens to poll: when it fires it sets `NOTIFIED` and wakes every queued caller, so the
//! progress does not depend on any one caller staying alive, or being polled soon. The
//! protocol:
//!
//! * **wake** (the shared waker): set `NOTIFIED`, then wake every queued caller; the first to
//!   run polls, the others find it polling (or nothing left to poll for) and queue again. A
//!   caller that queues checks, *after* queueing, whether `NOTIFIED` is set with nobody
//!   polling, and if so leaves the queue and polls instead of sleeping; so a wake either finds
//!   the caller queued or is seen by it. (Both sides put a `SeqCst` fence between their write
//!   and their read, so a notifier that finds the queue empty skips its lock: the common case,
//!   nobody waiting, costs no lock.) Waking one caller would be cheaper with many callers, but
//!   then a woken caller whose task is slow to be polled would hold up all the others.
//! * **poll**: a caller may poll only while `NOTIFIED` is set (a new shared future starts
//!   so): without a wake since the last poll there is nothing to poll for, and a caller that
//!   joins does not poll a future that waits for its waker. It sets `POLLING` and clears
//!   `NOTIFIED` in one step (this poll takes care of every wake so far), polls, and clears
//!   `POLLING`. If `NOTIFIED` was set again meanwhile (the future woke itself while being
//!   polled), the poller owes a re-poll: a task wakes its own waker and returns `Pending` (so
//!   a future that keeps waking itself yields to the executor between polls, as it would if
//!   spawned), a thread yields and loops. A caller turned away because another one polls just
//!   queues: the poller sees any wake that comes meanwhile.
//! * **cancel**: a caller that goes away while `NOTIFIED` is set and nobody polls (it may be
//!   the one that owed the re-poll) wakes the queued callers in its place.
//!
//! The shared object also wakes every queued caller when the condition they wait for may
//! have changed (a call finished, a task of a group finished, a limit was raised); each one
//! re-checks its condition after queueing, with the same fences, so no such notification is
//! lost either.
//!
//! [`TaskGroup`]: crate::errgroup::TaskGroup

use std::fmt;
use std::task::{Context, Poll};

use crate::loom::{fence, Arc, AtomicU32, Ordering};
use crate::sema::{wake_all, Backoff, Origin, Queue, ThreadWait, Ticket, WaitRecord, Waiter};

/// Some caller is polling the shared future(s).
const POLLING: u32 = 1;
/// The shared future(s) were woken since the last poll began.
const NOTIFIED: u32 = 2;

/// The one token this queue gives: look again (poll, or re-check the condition).
const LOOK: u32 = 1;

/// The driver state and the queue of callers waiting to drive or for a condition.
pub(crate) struct Drive {
    state: AtomicU32,
    queue: Queue,
}

impl fmt::Debug for Drive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("Drive")
            .field("polling", &(s & POLLING != 0))
            .field("notified", &(s & NOTIFIED != 0))
            .field("waiters", &self.queue.len())
            .finish()
    }
}

impl Drive {
    /// A driver with nobody polling or waiting, for a primitive created at the caller's
    /// location; `needs_poll` when the shared future(s) have yet to be polled a first time.
    #[track_caller]
    pub(crate) fn new(needs_poll: bool) -> Self {
        Drive {
            state: AtomicU32::new(if needs_poll { NOTIFIED } else { 0 }),
            queue: Queue::new(),
        }
    }

    /// The shared future(s) were woken: make sure some caller polls again. Every queued
    /// caller is woken, and the first to run polls (the others find it polling, or nothing
    /// left to poll for, and queue again): so the progress of a shared future never depends
    /// on one caller being polled soon — any awake caller makes it.
    pub(crate) fn wake(&self) {
        // Release: what the waking party did happens before the poll it causes.
        self.state.fetch_or(NOTIFIED, Ordering::Release);
        self.notify();
    }

    /// Wakes every queued caller to look again (its condition may hold now). Call after
    /// changing what the callers wait for (or setting `NOTIFIED`).
    pub(crate) fn notify(&self) {
        // Pairs with the fence in `enqueue`: either this sees the caller's push, or the caller
        // sees the change made before this fence and does not sleep. So an empty queue can be
        // skipped without its lock (the common case: nobody waits).
        fence(Ordering::SeqCst);
        if self.queue.len() == 0 {
            return;
        }
        let list = self.queue.lock().notify_all(LOOK);
        wake_all(list).resume();
    }

    /// A caller that gives up (a dropped future) without a ticket in the queue: if a re-poll
    /// may be owed and nobody is polling, hands it to the queued callers.
    pub(crate) fn pass_on(&self) {
        let s = self.state.load(Ordering::Acquire);
        if s & NOTIFIED != 0 && s & POLLING == 0 {
            self.notify();
        }
    }

    /// A caller gives up its place in the queue (a dropped future), then
    /// [`pass_on`](Self::pass_on)s. (A wake it took with it was given to every queued caller;
    /// only a re-poll owed by a poller can be lost.)
    pub(crate) fn cancel(&self, ticket: &Ticket) {
        let _ = self.queue.lock().withdraw(ticket);
        self.pass_on();
    }

    /// Number of queued callers (a snapshot).
    pub(crate) fn waiters(&self) -> usize {
        self.queue.len()
    }

    /// Who waits, where, since when.
    pub(crate) fn waiting(&self) -> Vec<WaitRecord> {
        self.queue.records()
    }

    /// Wins the right to poll, if there is something to poll for: a wake nobody has polled
    /// for yet. (Without one, the last poll came after every wake, and polling again would be
    /// a spurious poll of a future that waits for its waker — a joining caller's first poll
    /// does not poll a future someone else already polled.)
    fn try_acquire(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & POLLING != 0 || s & NOTIFIED == 0 {
                return false;
            }
            // Clears NOTIFIED: this poll sees whatever the wakes so far announced.
            match self
                .state
                .compare_exchange_weak(s, POLLING, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Ends a poll; whether the future(s) were woken while it ran (a re-poll is owed).
    fn release(&self) -> bool {
        self.state.fetch_and(!POLLING, Ordering::AcqRel) & NOTIFIED != 0
    }

    /// Queues `waiter` unless `done()` holds, or (for a driver) a wake is pending that nobody
    /// is polling for; `None` means: look again.
    fn enqueue(
        &self,
        waiter: &Arc<Waiter>,
        drives: bool,
        done: &mut dyn FnMut() -> bool,
    ) -> Option<Ticket> {
        let mut q = self.queue.lock();
        let ticket = q.push(waiter, false);
        // Pairs with the fence in `notify` (see there). Under the queue lock, so a notifier
        // that saw the push waits for this decision before it notifies.
        fence(Ordering::SeqCst);
        let look_again = done() || {
            let s = self.state.load(Ordering::Acquire);
            drives && s & NOTIFIED != 0 && s & POLLING == 0
        };
        if look_again {
            // Nobody can have completed the waiter: that takes the queue lock.
            q.remove(&ticket);
            return None;
        }
        Some(ticket)
    }

    /// One poll of a task that waits until `done()` holds, driving with `round` (when `drives`)
    /// meanwhile. `Ready(Some(r))` when a round produced `r` (the shared work completed in this
    /// caller's hands), `Ready(None)` when `done()` holds.
    ///
    /// `ticket` is the caller's place in the queue, kept between polls; the caller's `Drop`
    /// must hand it to [`cancel`](Self::cancel) (or call [`pass_on`](Self::pass_on) without
    /// one).
    pub(crate) fn poll<R>(
        &self,
        cx: &mut Context<'_>,
        ticket: &mut Option<Ticket>,
        origin: Origin,
        drives: bool,
        mut done: impl FnMut() -> bool,
        mut round: impl FnMut() -> Option<R>,
    ) -> Poll<Option<R>> {
        if let Some(t) = ticket {
            if t.waiter().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some(t) = ticket.take() {
                Waiter::recycle(t.into_waiter());
            }
        }
        let origin = origin.on(self.queue.ident());
        loop {
            if done() {
                return Poll::Ready(None);
            }
            if drives && self.try_acquire() {
                let out = round();
                let owed = self.release();
                if out.is_some() {
                    return Poll::Ready(out);
                }
                if done() {
                    return Poll::Ready(None);
                }
                if owed {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            let waiter = Waiter::new(origin, None, Some(cx));
            match self.enqueue(&waiter, drives, &mut done) {
                Some(t) => {
                    *ticket = Some(t);
                    return Poll::Pending;
                }
                None => Waiter::recycle(waiter),
            }
        }
    }

    /// The blocking form of [`poll`](Self::poll), for a thread: parks in the queue between
    /// rounds. `Some(r)` when a round produced `r`, `None` when `done()` holds.
    pub(crate) fn block<R>(
        &self,
        origin: Origin,
        drives: bool,
        mut done: impl FnMut() -> bool,
        mut round: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        let origin = origin.on(self.queue.ident());
        // What is awaited usually comes within microseconds (a shared call's function, a
        // sibling's hand-off); a thread's park costs more: wait a little awake first.
        let mut backoff = Backoff::new();
        while !drives && !done() && backoff.snooze() {}
        loop {
            if done() {
                return None;
            }
            if drives && self.try_acquire() {
                let out = round();
                let owed = self.release();
                if out.is_some() {
                    return out;
                }
                if done() {
                    return None;
                }
                if owed {
                    crate::loom::thread::yield_now();
                    continue;
                }
            }
            let waiter = Waiter::new(origin, None, None);
            let Some(ticket) = self.enqueue(&waiter, drives, &mut done) else {
                Waiter::recycle(waiter);
                continue;
            };
            let wait = ThreadWait::enter(&origin, Some(waiter.since()));
            ticket.waiter().park(None);
            drop(wait);
            drop(ticket);
            Waiter::recycle(waiter);
        }
    }
}
