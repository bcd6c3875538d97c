//! The cancellation tree.
//!
//! A [`Scope`] is what `with_cancel` and `with_deadline` create and what `with_value` shares with
//! its parent: a done flag, the waiters for it, and the scopes that must be cancelled with it.
//!
//! # Ownership
//!
//! A child holds its parent strongly; a parent holds its children **weakly**, in a map keyed by
//! a unique id, and a cancel function holds its scope weakly too. So a scope lives exactly as
//! long as some context handle reaches it, and when the last one goes, its `Drop` takes it out
//! of its parent's map and cancels its timer: creating and dropping contexts without ever
//! cancelling them leaves nothing behind. (Go keeps an uncancelled child in its parent's map
//! until the parent is cancelled, which is why `go vet` insists that every cancel function be
//! called.)
//!
//! # Locking
//!
//! Each scope has one lock over its cause, children and timer, and the waiter-core queue lock
//! for its waiters. No code holds two of these at once: cancelling takes the map of children
//! out under the lock, lets go, then cancels them one by one (iteratively, so a deep chain does
//! not exhaust the stack); a child's `Drop`, which may run on the thread cancelling it, then
//! finds its parent's lock free. The done channel is closed with no lock held, since closing
//! wakes its receivers.
//!
//! # State word
//!
//! | value                    | meaning                                                        |
//! |--------------------------|----------------------------------------------------------------|
//! | [`LIVE`]                 | not done                                                       |
//! | code \| [`PROPAGATING`]  | done (code: `CANCELED` or `DEADLINE_EXCEEDED`); its canceller is still cancelling the scopes below |
//! | code                     | done, and so is every scope below it                           |
//!
//! One more bit, `HAS_CHAN`, is set beside these once the scope's done channel exists (Go's
//! lazily made `Done()` channel); see [`Scope::done_chan`].
//!
//! The code is written once, under the scope lock, after the cause, and never changes; it is
//! read without the lock (with acquire ordering) by `err`. The waiters are notified when
//! `PROPAGATING` is cleared, under the queue lock; a waiter checks the state under that lock
//! before queueing, so it either sees the scope done or is in the queue when `notify_all` runs.
//! So a wait returns once the scope and everything below it are done, and the scope has left
//! its parent's map.
//!
//! # A cancel returns when the whole subtree is done
//!
//! As in Go, once a call of a cancel function returns, its context and every context below it
//! are done — even when another thread (or the timer) got there first and is still cancelling
//! the descendants. Go gets that from holding each context's lock while cancelling its
//! children; here a canceller that finds a scope `PROPAGATING` waits in the scope's queue until
//! the winner clears the bit. The winner, finding a descendant being cancelled by a third party,
//! waits for that one before clearing its own bits; and a scope cancelled on its own leaves its
//! parent's map only when its subtree is done, so a parent's canceller that does not find it
//! there has nothing to wait for. Waits only ever point down the tree, so they cannot form a
//! cycle.
//!
//! `std::sync::Arc` (not the loom facade's) holds the tree, for its `Weak`; the state word, the
//! lock and the queue — what cancellation's correctness rests on — go through the facade.

use std::collections::HashMap;
use std::mem;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::Instant;

use super::{Cause, ContextError};
use crate::chan::Chan;
use crate::loom::{AtomicU32, Mutex, MutexGuard, Ordering};
use crate::sema::{self, Origin, Queue, ThreadWait, WaitKind, Waiter};
use crate::timer::{self, TimerHandle};

/// `state` of a scope that is not done.
pub(super) const LIVE: u32 = 0;
const CANCELED: u32 = 1;
const DEADLINE_EXCEEDED: u32 = 2;
/// The bits of `state` that hold the code.
const CODE: u32 = 3;
/// Set with the code while the scope's canceller is still cancelling the scopes below it.
pub(super) const PROPAGATING: u32 = 4;
/// Set, at any time, once the scope's done channel exists (see [`Scope::done_chan`]).
const HAS_CHAN: u32 = 8;

/// The token a done waiter is notified with: the one every queue reserves for contexts, so a
/// waiter registered here and with a primitive at once can tell who completed it.
pub(super) const DONE: u32 = sema::CTX_DONE;

fn code(err: ContextError) -> u32 {
    match err {
        ContextError::Canceled => CANCELED,
        ContextError::DeadlineExceeded => DEADLINE_EXCEEDED,
    }
}

fn next_id() -> u64 {
    // An identity, not a synchronization: relaxed is enough and loom need not see it.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One node of the cancellation tree.
pub(super) struct Scope {
    id: u64,
    /// The scope this one is registered with (its nearest cancellable ancestor), if any.
    parent: Option<Arc<Scope>>,
    /// The effective deadline: the earlier of this scope's own and its parent's.
    deadline: Option<Instant>,
    /// `false` for the scopes of `background`, `todo` and `without_cancel`, which never end.
    pub(super) cancellable: bool,
    state: AtomicU32,
    inner: Mutex<Inner>,
    /// Threads and tasks waiting for the scope to be done.
    pub(super) queue: Queue,
}

struct Inner {
    cause: Option<Cause>,
    children: HashMap<u64, Weak<Scope>>,
    timer: Option<TimerHandle>,
    /// The done channel, made on first request.
    done_chan: Option<Chan<()>>,
}

impl Scope {
    #[track_caller]
    fn new(parent: Option<Arc<Scope>>, deadline: Option<Instant>, cancellable: bool) -> Self {
        Scope {
            id: next_id(),
            parent,
            deadline,
            cancellable,
            state: AtomicU32::new(LIVE),
            inner: Mutex::new(Inner {
                cause: None,
                children: HashMap::new(),
                timer: None,
                done_chan: None,
            }),
            queue: Queue::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics under this lock; a poisoned lock can only follow an allocation failure.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A scope that is never done and has no deadline.
    pub(super) fn root() -> Arc<Scope> {
        Arc::new(Scope::new(None, None, false))
    }

    /// A cancellable child of `parent`, with its own deadline if `deadline` is earlier than the
    /// parent's. A child of a done parent is born done, with the parent's error and cause.
    #[track_caller]
    pub(super) fn child(parent: &Arc<Scope>, deadline: Option<Instant>) -> Arc<Scope> {
        let effective = match (parent.deadline, deadline) {
            (Some(p), Some(d)) => Some(p.min(d)),
            (p, d) => p.or(d),
        };
        let registered = parent.cancellable.then(|| parent.clone());
        let scope = Arc::new(Scope::new(registered, effective, true));
        if parent.cancellable {
            let mut inner = parent.lock();
            match parent.err() {
                None => {
                    inner.children.insert(scope.id, Arc::downgrade(&scope));
                }
                Some(err) => {
                    let cause = inner.cause.clone();
                    drop(inner);
                    scope.cancel_tree(err, &cause, false);
                }
            }
        }
        scope
    }

    /// Arms the scope's own deadline: cancels it with `DeadlineExceeded` (and `cause`) when
    /// `deadline` passes, at once if it has.
    pub(super) fn arm(self: &Arc<Self>, deadline: Instant, cause: Option<Cause>) {
        if self.err().is_some() {
            return;
        }
        if deadline <= Instant::now() {
            self.cancel(ContextError::DeadlineExceeded, cause);
            return;
        }
        let weak = Arc::downgrade(self);
        let handle = timer::schedule(
            deadline,
            Box::new(move || {
                if let Some(scope) = weak.upgrade() {
                    scope.cancel(ContextError::DeadlineExceeded, cause);
                }
            }),
        );
        let mut inner = self.lock();
        if self.err().is_none() {
            inner.timer = Some(handle);
        } else {
            drop(inner);
            handle.cancel();
        }
    }

    /// The scope's effective deadline.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Why the scope is done, or `None` while it is not (acquire: everything the canceller did
    /// before cancelling happens before this returns `Some`).
    #[inline]
    pub(super) fn err(&self) -> Option<ContextError> {
        match self.state.load(Ordering::Acquire) & CODE {
            LIVE => None,
            CANCELED => Some(ContextError::Canceled),
            _ => Some(ContextError::DeadlineExceeded),
        }
    }

    /// The cause given when the scope was cancelled, if any and if done.
    pub(super) fn cause(&self) -> Option<Cause> {
        self.err()?;
        self.lock().cause.clone()
    }

    /// The number of live children registered with this scope.
    pub(super) fn child_count(&self) -> usize {
        self.lock().children.len()
    }

    /// Cancels the scope and every scope below it with `err` and `cause`. Idempotent: only the
    /// first call has an effect, but every call returns only once the whole subtree is done.
    #[track_caller]
    pub(super) fn cancel(self: &Arc<Self>, err: ContextError, cause: Option<Cause>) {
        if !self.cancellable {
            return;
        }
        if self.err().is_some() {
            self.wait_propagated();
            return;
        }
        self.cancel_tree(err, &cause, true);
    }

    /// Marks this scope and its descendants done; returns once they all are, whoever cancels
    /// them. `leave_parent`: this scope was cancelled by itself, not by its parent, and must
    /// leave its parent's map (a parent that cancels takes the whole map).
    #[track_caller]
    fn cancel_tree(&self, err: ContextError, cause: &Option<Cause>, leave_parent: bool) {
        let mut work = Vec::new();
        if !self.finish(err, cause, &mut work) {
            self.wait_propagated();
            return;
        }
        let mut finished = Vec::new();
        let mut others = Vec::new();
        while let Some(child) = work.pop() {
            if child.finish(err, cause, &mut work) {
                finished.push(child);
            } else {
                // Cancelled on its own meanwhile, maybe still cancelling its own children.
                others.push(child);
            }
        }
        for scope in &others {
            scope.wait_propagated();
        }
        // A waker that panics must not stop the cancellation of the rest of the tree: its
        // panic is resumed once everything below is done.
        let mut panic = sema::WakePanic::none();
        for scope in &finished {
            panic.merge(scope.end_propagation());
        }
        // Leave the parent only now: a parent's canceller that no longer finds this scope in
        // its map may take it that the whole subtree is done. And before waking the waiters,
        // so that they find the bookkeeping settled.
        if leave_parent {
            if let Some(parent) = &self.parent {
                parent.lock().children.remove(&self.id);
            }
        }
        panic.merge(self.end_propagation());
        // Dropping `finished` and `others` may drop last handles; their `Drop`s find every lock
        // free.
        drop((finished, others));
        panic.resume();
    }

    /// Marks this one scope done and `PROPAGATING`, cancels its timer, and pushes its live
    /// children onto `work`. `false` if it was done already.
    fn finish(&self, err: ContextError, cause: &Option<Cause>, work: &mut Vec<Arc<Scope>>) -> bool {
        let (children, timer) = {
            let mut inner = self.lock();
            if self.state.load(Ordering::Relaxed) & CODE != LIVE {
                return false;
            }
            inner.cause = cause.clone();
            // An or, not a store: `done_chan` may have set `HAS_CHAN` (under this lock too).
            self.state
                .fetch_or(code(err) | PROPAGATING, Ordering::Release);
            (mem::take(&mut inner.children), inner.timer.take())
        };
        if let Some(timer) = timer {
            timer.cancel();
        }
        work.extend(children.into_values().filter_map(|w| w.upgrade()));
        true
    }

    /// Clears `PROPAGATING` and wakes every waiter: those waiting for the scope to be done and
    /// the cancellers waiting for its subtree. The state was set before this takes the queue
    /// lock, so a waiter either queued before (and is woken here) or sees the state and does
    /// not queue.
    ///
    /// Then closes the done channel if one was made before the bit was cleared; one made after
    /// is closed by `done_chan` itself. Both sides decide on the same atomic word (this
    /// `fetch_and` and `done_chan`'s `fetch_or`), so exactly one of them closes it — with no
    /// lock held, since closing wakes the channel's receivers.
    fn end_propagation(&self) -> sema::WakePanic {
        let (woken, before) = {
            let mut q = self.queue.lock();
            let before = self.state.fetch_and(!PROPAGATING, Ordering::AcqRel);
            (q.notify_all(DONE), before)
        };
        let mut panic = sema::wake_all(woken);
        if before & HAS_CHAN != 0 {
            let chan = self.lock().done_chan.clone();
            if let Some(chan) = chan {
                panic.catch(|| {
                    chan.close();
                });
            }
        }
        panic
    }

    /// The scope's done channel (Go's `Done()`): made on first call, closed once the scope and
    /// every scope below it are done. The nil channel for a scope that never ends.
    pub(super) fn done_chan(&self) -> Chan<()> {
        if !self.cancellable {
            return Chan::nil();
        }
        let (chan, propagated) = {
            let mut inner = self.lock();
            if let Some(chan) = &inner.done_chan {
                return chan.clone();
            }
            let chan = Chan::new(0);
            inner.done_chan = Some(chan.clone());
            let before = self.state.fetch_or(HAS_CHAN, Ordering::AcqRel);
            (chan, before & CODE != LIVE && before & PROPAGATING == 0)
        };
        // Done and propagated before the channel existed: nobody else will close it. Otherwise
        // `end_propagation` has yet to clear `PROPAGATING`, will see `HAS_CHAN`, and closes it.
        if propagated {
            chan.close();
        }
        chan
    }

    /// Waits until the canceller of this (done) scope has cancelled every scope below it.
    #[track_caller]
    fn wait_propagated(&self) {
        let origin = Origin::here(WaitKind::Context);
        loop {
            if self.state.load(Ordering::Acquire) & PROPAGATING == 0 {
                return;
            }
            let ticket = {
                let mut q = self.queue.lock();
                if self.state.load(Ordering::Acquire) & PROPAGATING == 0 {
                    return;
                }
                q.push(
                    &Waiter::new(origin.on(self.queue.ident()), None, None),
                    false,
                )
            };
            let _wait = ThreadWait::enter(&origin.on(self.queue.ident()), None);
            // Only `end_propagation` notifies, after clearing the bit; check again all the same.
            ticket.waiter().park(None);
        }
    }
}

impl Scope {
    /// What dropping a scope does, short of dropping its parent: cancels its timer, leaves its
    /// parent's map, and hands back its handle on the parent.
    fn detach(&mut self) -> Option<Arc<Scope>> {
        let timer = self.lock().timer.take();
        if let Some(timer) = timer {
            timer.cancel();
        }
        let parent = self.parent.take()?;
        // A done scope is no longer in its parent's map: whoever cancelled it took it out.
        if self.state.load(Ordering::Relaxed) & CODE == LIVE {
            parent.lock().children.remove(&self.id);
        }
        Some(parent)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // Drop the chain of ancestors this was the last handle on in a loop, not by recursion,
        // so that a chain of any depth can be dropped on any stack.
        let mut next = self.detach();
        while let Some(parent) = next {
            next = match Arc::try_unwrap(parent) {
                Ok(mut scope) => scope.detach(),
                Err(_) => None,
            };
        }
    }
}

/// Models of the cancellation protocol: run with `RUSTFLAGS="--cfg loom" cargo test --lib`.
#[cfg(all(test, loom))]
mod loom_models {
    use crate::context::{background, with_cancel, ContextError};
    use crate::loom::thread;

    /// A thread waiting for `done` is released by a cancel on another thread, whatever the
    /// interleaving of its check, its queueing and the cancel.
    #[test]
    fn cancel_releases_waiter() {
        loom::model(|| {
            let (ctx, cancel) = with_cancel(&background());
            let t = thread::spawn(move || cancel.cancel());
            assert_eq!(ctx.wait(), ContextError::Canceled);
            t.join().unwrap();
        });
    }

    /// A child created while its parent is being cancelled ends cancelled: either it is
    /// registered before the parent takes its children, or it sees the parent done.
    #[test]
    fn child_created_during_cancel_ends_cancelled() {
        loom::model(|| {
            let (parent, cancel) = with_cancel(&background());
            let t = thread::spawn(move || cancel.cancel());
            let (child, _c) = with_cancel(&parent);
            t.join().unwrap();
            assert_eq!(child.err(), Some(ContextError::Canceled));
        });
    }

    /// A cancel that loses the race to another canceller still returns only once the whole
    /// subtree is done.
    #[test]
    fn losing_cancel_waits_for_the_subtree() {
        loom::model(|| {
            let (parent, cancel) = with_cancel(&background());
            let (child, _c) = with_cancel(&parent);
            let other = cancel.clone();
            let t = thread::spawn(move || other.cancel());
            cancel.cancel();
            assert_eq!(child.err(), Some(ContextError::Canceled));
            t.join().unwrap();
        });
    }

    /// A done channel asked for while another thread cancels ends closed — by the canceller
    /// or by `done_chan` itself, never both (a second close would panic) — and only once the
    /// child is done too.
    #[test]
    fn done_chan_made_during_cancel_closes_once() {
        loom::model(|| {
            let (ctx, cancel) = with_cancel(&background());
            let (child, _c) = with_cancel(&ctx);
            let t = thread::spawn(move || cancel.cancel());
            let done = ctx.done_chan();
            assert_eq!(done.recv(), None);
            assert_eq!(child.err(), Some(ContextError::Canceled));
            t.join().unwrap();
        });
    }

    /// A parent's cancel that finds a child being cancelled by another thread waits for that
    /// thread to finish the child's subtree.
    #[test]
    fn parent_cancel_waits_for_a_child_cancelled_elsewhere() {
        loom::model(|| {
            let (parent, cancel_parent) = with_cancel(&background());
            let (child, cancel_child) = with_cancel(&parent);
            let (grandchild, _g) = with_cancel(&child);
            let t = thread::spawn(move || cancel_child.cancel());
            cancel_parent.cancel();
            assert!(grandchild.err().is_some());
            t.join().unwrap();
            assert_eq!(parent.child_count(), 0);
        });
    }
}
