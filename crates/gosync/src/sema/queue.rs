//! A FIFO of waiters, completed only through each waiter's claim.
//!
//! A waiter may sit in a queue and, at the same time, be registered elsewhere — with a
//! [`Context`](crate::context::Context) for a `lock_ctx`, with several channels for a `select`.
//! So the queue never assumes that a queued waiter is its own to complete: every notification
//! first *claims* the waiter (one CAS on its token word, see [`Waiter::claim`]). A waiter that
//! some other party completed, or that its owner abandoned, is *stale*: a notifier that meets
//! one at the head drops it and looks at the next, and the owner removes it otherwise.

use std::collections::VecDeque;
use std::fmt;

use super::{Ident, Notified, WaitRecord, Waiter};
use crate::loom::{Arc, AtomicUsize, Mutex, MutexGuard, Ordering};

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

    /// Gives up the ticket for its waiter (to recycle it once the wait is over).
    pub(crate) fn into_waiter(self) -> Arc<Waiter> {
        self.waiter
    }

    /// The waiter this ticket stands for, shared.
    pub(crate) fn waiter_arc(&self) -> &Arc<Waiter> {
        &self.waiter
    }
}

/// A FIFO of waiters.
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    /// `inner.waiters.len()`, readable without the lock (for introspection and fast checks).
    len: AtomicUsize,
    /// The identity of the primitive that owns the queue (created where it was).
    ident: Ident,
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

impl Queue {
    /// An empty queue, for a primitive created at the caller's location.
    #[cfg(not(loom))]
    #[track_caller]
    pub(crate) const fn new() -> Self {
        Queue {
            inner: Mutex::new(Inner {
                waiters: VecDeque::new(),
                front_seq: MID,
                back_seq: MID,
            }),
            len: AtomicUsize::new(0),
            ident: Ident::new(std::panic::Location::caller()),
        }
    }

    /// An empty queue, for a primitive created at the caller's location.
    #[cfg(loom)]
    #[track_caller]
    pub(crate) fn new() -> Self {
        Queue {
            inner: Mutex::new(Inner {
                waiters: VecDeque::new(),
                front_seq: MID,
                back_seq: MID,
            }),
            len: AtomicUsize::new(0),
            ident: Ident::new(std::panic::Location::caller()),
        }
    }

    /// Takes the queue lock. Every change to the queue, and every decision about whom to notify,
    /// is made under it.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            inner: self.inner.lock().unwrap_or_else(|e| e.into_inner()),
            len: &self.len,
        }
    }

    /// The identity of the primitive this queue belongs to, for the registry of waits.
    #[inline]
    pub(crate) fn ident(&self) -> &Ident {
        &self.ident
    }

    /// The number of queued waiters (stale ones included), read without the lock.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Snapshots every waiter still waiting, front first.
    pub(crate) fn records(&self) -> Vec<WaitRecord> {
        let waiters: Vec<Arc<Waiter>> = self
            .lock()
            .inner
            .waiters
            .iter()
            .filter(|(_, w)| w.is_waiting())
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
    fn sync_len(&mut self) {
        self.len.store(self.inner.waiters.len(), Ordering::Relaxed);
    }

    /// Appends `waiter` at the back (FIFO), or at the front when `lifo` (a woken waiter that lost
    /// the race keeps its place at the head, as in Go).
    pub(crate) fn push(&mut self, waiter: &Arc<Waiter>, lifo: bool) -> Ticket {
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
        self.sync_len();
        Ticket {
            waiter: waiter.clone(),
            seq,
        }
    }

    /// The owner of `ticket` gives up its wait: its waiter is abandoned (no one can complete it
    /// any more) and leaves the queue. `None` if that happened before anyone completed it;
    /// `Some(token)` if someone did — this queue's notifier or another party the waiter was
    /// registered with — and whatever the token carried must be passed on.
    pub(crate) fn withdraw(&mut self, ticket: &Ticket) -> Option<u32> {
        let outcome = ticket.waiter.abandon();
        self.remove(ticket);
        match outcome {
            super::Abandon::Abandoned => None,
            super::Abandon::Completed(t) => Some(t),
        }
    }

    /// Takes the ticket's entry out of the queue if it is still there (a waiter completed by
    /// another party stays queued until met or removed); `true` if it was.
    pub(crate) fn remove(&mut self, ticket: &Ticket) -> bool {
        let waiters = &mut self.inner.waiters;
        match waiters.binary_search_by_key(&ticket.seq, |(s, _)| *s) {
            Ok(i) if Arc::ptr_eq(&waiters[i].1, &ticket.waiter) => {
                waiters.remove(i);
                self.sync_len();
                true
            }
            _ => false,
        }
    }

    /// Reserves the first waiter that can be claimed, dropping stale ones before it, and leaves
    /// it at the head: the caller decides what to give it, then must
    /// [`complete_front`](Self::complete_front) or [`unclaim_front`](Self::unclaim_front) it
    /// before letting go of the lock. (A reservation is a claim that may be given back: another
    /// party racing for the waiter, such as its context, waits the moment out rather than take
    /// the waiter for gone.) `None` if no waiter is left: the queue is then empty.
    pub(crate) fn claim_front(&mut self) -> Option<&Waiter> {
        loop {
            let (_, w) = self.inner.waiters.front()?;
            if w.reserve() {
                break;
            }
            self.inner.waiters.pop_front();
            self.sync_len();
        }
        self.inner.waiters.front().map(|(_, w)| &**w)
    }

    /// Takes the head waiter, claimed by [`claim_front`](Self::claim_front), off the queue and
    /// completes it with `token`.
    pub(crate) fn complete_front(&mut self, token: u32) -> Notified {
        let (_, w) = self.inner.waiters.pop_front().expect("a claimed head");
        self.sync_len();
        Waiter::complete(&w, token)
    }

    /// Gives back the reservation [`claim_front`](Self::claim_front) took: the head waits on.
    pub(crate) fn unclaim_front(&mut self) {
        if let Some((_, w)) = self.inner.waiters.front() {
            w.unclaim();
        }
    }

    /// Claims the first waiter that can be claimed, takes it off the queue and completes it with
    /// `token` (non-zero); stale waiters before it are dropped.
    pub(crate) fn notify_front(&mut self, token: u32) -> Option<Notified> {
        self.claim_front()?;
        Some(self.complete_front(token))
    }

    /// Reserves every waiter that can be claimed, in place, dropping stale ones; returns how
    /// many. The caller may account for them, then must [`complete_all`](Self::complete_all)
    /// or [`unclaim_all`](Self::unclaim_all) before letting go of the lock.
    pub(crate) fn reserve_all(&mut self) -> usize {
        self.inner.waiters.retain(|(_, w)| w.reserve());
        self.sync_len();
        self.inner.waiters.len()
    }

    /// Takes every waiter reserved by [`reserve_all`](Self::reserve_all) off the queue and
    /// completes each with `token`.
    pub(crate) fn complete_all(&mut self, token: u32) -> Vec<Notified> {
        let done = self
            .inner
            .waiters
            .drain(..)
            .map(|(_, w)| Waiter::complete(&w, token))
            .collect();
        self.sync_len();
        done
    }

    /// Gives back every reservation [`reserve_all`](Self::reserve_all) took.
    pub(crate) fn unclaim_all(&mut self) {
        for (_, w) in &self.inner.waiters {
            w.unclaim();
        }
    }

    /// Takes every waiter off the queue, completing each one that can be claimed with `token`.
    pub(crate) fn notify_all(&mut self, token: u32) -> Vec<Notified> {
        self.reserve_all();
        self.complete_all(token)
    }

    /// The number of queued waiters, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Whether no waiter is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.waiters.is_empty()
    }
}
