//! Waiting for a collection of threads or tasks to finish, as Go's `sync.WaitGroup`.
//!
//! One side calls [`WaitGroup::add`] to set how many jobs are outstanding, each job calls
//! [`WaitGroup::done`] when it finishes, and any number of threads ([`WaitGroup::wait`]) and
//! tasks ([`WaitGroup::wait_async`]) wait for the counter to reach zero. All waiters are
//! released together, the moment the counter reaches zero.
//!
//! A `WaitGroup` is a cheap handle: clones share one counter, so a clone can be moved into each
//! job. Where Go passes `&wg`, pass a clone (or a reference).
//!
//! # Happens-before
//!
//! In the terminology of the Go memory model, every call to `done` (or `add` with a negative
//! delta) that precedes the counter reaching zero synchronizes before the return of any `wait`
//! or `wait_async` that this zero releases, and before the return of any `wait` that finds the
//! counter at zero.
//!
//! # Reuse and misuse
//!
//! A `WaitGroup` may be reused for several independent rounds, but as in Go, the `add` calls of
//! a round must happen before its `wait`, and a new round's `add` must happen after every `wait`
//! of the previous round has returned. What Go detects, gosync detects too, with Go's messages:
//!
//! * the counter goes below zero: `"sync: negative WaitGroup counter"`;
//! * `add` raises the counter from zero while the waiters of the round that just ended are
//!   still being released: `"sync: WaitGroup misuse: Add called concurrently with Wait"`;
//! * the counter changes between a waiter's release and its return:
//!   `"sync: WaitGroup is reused before previous Wait has returned"`.
//!
//! The last two are opportunistic, as in Go: they catch the race when it happens, not every
//! program that could race. The panic of the second kind may also surface in the `done` that
//! releases the waiters (the waiters are released first, so no one stays blocked).
//!
//! # State word
//!
//! One 64-bit atomic word, as in Go: the high 32 bits are the counter (signed), the low 32 bits
//! the number of registered waiters.
//!
//! * the **counter** changes only by `add` / `done`: one `fetch_add`, no lock;
//! * the **waiter count** changes only under the queue lock: a waiter registers (CAS, only while
//!   the counter is above zero), a cancelled waiter leaves (CAS, only while the counter is not
//!   zero), or the releaser clears it as it wakes everyone (`fetch_and`).
//!
//! Because every change of the waiter field happens under the queue lock together with the
//! matching queue operation, the `done` that brings the counter to zero and sees waiters can
//! take the queue lock and find exactly the waiters it must release: none can slip in after the
//! counter hit zero (registration requires a counter above zero), and none registered before
//! can be missed (registration and queueing are one step under the lock).
//!
//! So `add`, `done` and a `wait` on a zero counter are each one atomic operation, with no lock
//! and no allocation when nobody waits.
//!
//! # Cancel safety
//!
//! A dropped [`WaitGroupFuture`] leaves the queue and takes back its registration. If the
//! counter had already reached zero (its release is on the way), it keeps counting as a waiter
//! until that release clears the field — exactly as a Go waiter that is still inside `Wait`
//! would — so neither the misuse checks nor the other waiters' wake-ups are disturbed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::{Context as GoContext, ContextError};
use crate::loom::{Arc, AtomicU64, Ordering};
use crate::sema::{
    wake_all, Origin, Queue, ThreadWait, Ticket, WaitKind, WaitRecord, Waiter, CTX_DONE,
};

/// The low half of the state word: the number of registered waiters.
const WAITERS: u64 = 0xFFFF_FFFF;
/// Token given to every waiter when the counter reaches zero.
const RELEASED: u32 = 1;

const NEGATIVE: &str = "sync: negative WaitGroup counter";
const CONCURRENT_ADD: &str = "sync: WaitGroup misuse: Add called concurrently with Wait";
const REUSED: &str = "sync: WaitGroup is reused before previous Wait has returned";

#[inline]
fn counter(state: u64) -> i32 {
    (state >> 32) as i32
}

#[inline]
fn waiters(state: u64) -> u32 {
    state as u32
}

/// Waits for a collection of threads or tasks to finish, as Go's `sync.WaitGroup`.
///
/// [`add`](Self::add) raises the counter by the number of jobs, each job calls
/// [`done`](Self::done), and [`wait`](Self::wait) (a thread) or [`wait_async`](Self::wait_async)
/// (a task) blocks until the counter is zero. Threads and tasks may wait on the same group.
///
/// `WaitGroup` is a handle: [`Clone`] is cheap and every clone shares the same counter.
///
/// In the terminology of the Go memory model, a call to `done` synchronizes before the return of
/// any wait call that it unblocks.
///
/// # Reuse and misuse
///
/// A group may be reused for several rounds, but as in Go, the `add` calls of a round must
/// happen before its `wait`, and a new round's `add` must happen after every `wait` of the
/// previous round has returned. Misuse that Go detects panics here with Go's messages:
///
/// * the counter goes below zero: `"sync: negative WaitGroup counter"`;
/// * `add` raises the counter from zero while the waiters of the round that just ended are
///   still being released: `"sync: WaitGroup misuse: Add called concurrently with Wait"`;
/// * the counter changes between a waiter's release and its return:
///   `"sync: WaitGroup is reused before previous Wait has returned"`.
///
/// The last two are opportunistic, as in Go: they catch the race when it happens.
///
/// # Cost
///
/// `add`, `done` and a `wait` that finds the counter at zero are one atomic operation each, with
/// no lock and no allocation when nobody waits. Waiters park in the library's waiter queue and
/// are released all at once.
///
/// ```
/// use gosync::sync::WaitGroup;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let count = Arc::new(AtomicUsize::new(0));
/// let wg = WaitGroup::new();
/// for _ in 0..10 {
///     wg.add(1);
///     let (count, wg) = (count.clone(), wg.clone());
///     std::thread::spawn(move || {
///         count.fetch_add(1, Ordering::Relaxed);
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(count.load(Ordering::Relaxed), 10);
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

struct Inner {
    /// Counter in the high 32 bits, registered waiters in the low 32 bits.
    state: AtomicU64,
    queue: Queue,
}

impl Default for WaitGroup {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.state.load(Ordering::Relaxed);
        f.debug_struct("WaitGroup")
            .field("count", &counter(s))
            .field("waiters", &waiters(s))
            .finish()
    }
}

impl WaitGroup {
    /// A new wait group with a zero counter.
    ///
    /// ```
    /// let wg = gosync::sync::WaitGroup::new();
    /// wg.wait(); // the counter is zero: returns at once
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        WaitGroup {
            inner: Arc::new(Inner {
                state: AtomicU64::new(0),
                queue: Queue::new(),
            }),
        }
    }

    /// Adds `delta`, which may be negative, to the counter. When the counter reaches zero, every
    /// waiter is released.
    ///
    /// Calls with a positive delta that start a round (raise the counter from zero) must happen
    /// before the `wait` of that round, and after every `wait` of the previous round has
    /// returned. Usually: call `add` before starting the job, not inside it.
    ///
    /// # Panics
    ///
    /// * `"sync: negative WaitGroup counter"` if the counter goes below zero (also if `delta`
    ///   is below `i32::MIN`);
    /// * `"sync: WaitGroup misuse: Add called concurrently with Wait"` if this call raises the
    ///   counter from zero while the waiters of the round that just ended are still being
    ///   released;
    /// * `"sync: WaitGroup counter overflow"` if `delta` exceeds `i32::MAX` (the counter is 32
    ///   bits, as in Go).
    ///
    /// ```
    /// let wg = gosync::sync::WaitGroup::new();
    /// wg.add(2);
    /// wg.add(-1);
    /// assert_eq!(wg.count(), 1);
    /// wg.done();
    /// wg.wait();
    /// ```
    #[inline]
    pub fn add(&self, delta: isize) {
        let Ok(delta) = i32::try_from(delta) else {
            out_of_range(delta)
        };
        let step = u64::from(delta as u32) << 32;
        let s = self
            .inner
            .state
            .fetch_add(step, Ordering::Release)
            .wrapping_add(step);
        if waiters(s) == 0 && counter(s) >= 0 {
            return;
        }
        self.add_slow(delta, s);
    }

    /// Decrements the counter by one: `add(-1)`.
    ///
    /// # Panics
    ///
    /// With `"sync: negative WaitGroup counter"` if the counter was zero.
    ///
    /// ```
    /// let wg = gosync::sync::WaitGroup::new();
    /// wg.add(1);
    /// let wg2 = wg.clone();
    /// std::thread::spawn(move || wg2.done());
    /// wg.wait();
    /// ```
    #[inline]
    pub fn done(&self) {
        self.add(-1);
    }

    /// Blocks the calling thread until the counter is zero. Returns at once if it is zero now.
    ///
    /// # Panics
    ///
    /// With `"sync: WaitGroup is reused before previous Wait has returned"` if, between the
    /// moment this call is released and the moment it returns, the counter was raised again
    /// (another round started before this wait returned).
    ///
    /// ```
    /// let wg = gosync::sync::WaitGroup::new();
    /// wg.add(3);
    /// for _ in 0..3 {
    ///     let wg = wg.clone();
    ///     std::thread::spawn(move || wg.done());
    /// }
    /// wg.wait();
    /// assert_eq!(wg.count(), 0);
    /// ```
    #[inline]
    #[track_caller]
    pub fn wait(&self) {
        if counter(self.inner.state.load(Ordering::Acquire)) == 0 {
            return;
        }
        self.wait_slow(Origin::here(WaitKind::WaitGroup));
    }

    /// Blocks until the counter is zero or `ctx` is done, whichever comes first: `Err` with the
    /// context's error in the second case (the wait is then withdrawn; the group is unchanged).
    /// If `ctx` is done already, it fails at once unless the counter is zero.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::sync::WaitGroup;
    /// use std::time::Duration;
    ///
    /// let wg = WaitGroup::new();
    /// wg.add(1);
    /// let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    /// assert_eq!(wg.wait_ctx(&ctx), Err(context::ContextError::DeadlineExceeded));
    /// wg.done();
    /// assert_eq!(wg.wait_ctx(&ctx), Ok(()));
    /// ```
    #[track_caller]
    pub fn wait_ctx(&self, ctx: &GoContext) -> Result<(), ContextError> {
        if counter(self.inner.state.load(Ordering::Acquire)) == 0 {
            return Ok(());
        }
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        self.wait_slow_ctx(Origin::here(WaitKind::WaitGroup), ctx)
    }

    /// Waits from an async task until the counter is zero; the future completes at once if it
    /// is zero when first polled.
    ///
    /// # Panics
    ///
    /// When polled, as [`wait`](Self::wait). A released future has returned, in the sense of
    /// the reuse rule, only once it has been polled to completion (or dropped): start the next
    /// round after that.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes takes it out of the queue; other waiters are
    /// released as if it had never waited, and the group can be reused as usual.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let wg = gosync::sync::WaitGroup::new();
    /// wg.add(1);
    /// let wg2 = wg.clone();
    /// std::thread::spawn(move || wg2.done());
    /// wg.wait_async().await;
    /// # });
    /// ```
    #[track_caller]
    pub fn wait_async(&self) -> WaitGroupFuture<'_> {
        WaitGroupFuture {
            wg: self,
            origin: Origin::here(WaitKind::WaitGroup),
            ticket: None,
        }
    }

    /// The counter right now: the number of jobs not yet `done`. A snapshot, for introspection
    /// only; it can change as soon as it is read.
    ///
    /// ```
    /// let wg = gosync::sync::WaitGroup::new();
    /// wg.add(5);
    /// wg.done();
    /// assert_eq!(wg.count(), 4);
    /// ```
    pub fn count(&self) -> usize {
        counter(self.inner.state.load(Ordering::Relaxed)).max(0) as usize
    }

    /// The number of threads and tasks blocked in `wait` / `wait_async` right now (a snapshot).
    ///
    /// ```
    /// let wg = gosync::sync::WaitGroup::new();
    /// assert_eq!(wg.waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.inner.queue.len()
    }

    /// Who waits for this group, where, and for how long, in arrival order.
    ///
    /// ```
    /// let wg = gosync::sync::WaitGroup::new();
    /// assert!(wg.waiting().is_empty());
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.inner.queue.records()
    }

    /// `add` found waiters registered, or a negative counter; `s` is the new state.
    #[cold]
    fn add_slow(&self, delta: i32, s: u64) {
        let v = counter(s);
        if v < 0 {
            panic!("{NEGATIVE}");
        }
        // Here waiters(s) > 0. If we raised the counter from zero, the waiters of the round that
        // just ended have not been released yet: Go's "Add called concurrently with Wait".
        if delta > 0 && v == delta {
            panic!("{CONCURRENT_ADD}");
        }
        if v > 0 {
            return;
        }
        self.release();
    }

    /// The counter reached zero while waiters were registered: release them all.
    #[cold]
    fn release(&self) {
        let mut q = self.inner.queue.lock();
        // Acquire: reads a value in the release sequence of every earlier `done`, so all of them
        // happen before the notifications below.
        let s = self.inner.state.load(Ordering::Acquire);
        if waiters(s) == 0 {
            // Another `done` (after a misuse that raised the counter again) released them.
            return;
        }
        // Under the queue lock the waiter field equals the registered waiters still queued, plus
        // cancelled ones that stayed counted because this release was on its way.
        self.inner.state.fetch_and(!WAITERS, Ordering::Relaxed);
        let list = q.notify_all(RELEASED);
        drop(q);
        let panic = wake_all(list);
        // Nothing may change the counter between its reaching zero and this release, except an
        // `add` that already panicked with the same message.
        if counter(s) != 0 {
            panic!("{CONCURRENT_ADD}");
        }
        panic.resume();
    }

    #[cold]
    fn wait_slow(&self, origin: Origin) {
        let origin = origin.on(self.inner.queue.ident());
        let waiter = Waiter::new(origin, None, None);
        let Some(ticket) = self.enqueue(&waiter) else {
            return;
        };
        let wait = ThreadWait::enter(&origin, Some(waiter.since()));
        ticket.waiter().park(None);
        drop(wait);
        drop(ticket);
        Waiter::recycle(waiter);
        self.check_reuse();
    }

    #[cold]
    fn wait_slow_ctx(&self, origin: Origin, ctx: &GoContext) -> Result<(), ContextError> {
        let origin = origin.on(self.inner.queue.ident());
        let waiter = Waiter::new(origin, None, None);
        let watch = ctx.watch(&waiter)?;
        let Some(ticket) = self.enqueue(&waiter) else {
            return Ok(());
        };
        let wait = ThreadWait::enter(&origin, Some(waiter.since()));
        let token = ticket.waiter().park(None);
        drop(wait);
        drop(watch);
        if token == Some(CTX_DONE) {
            // The context claimed us first: take back the registration, unless a release is
            // counting it already.
            self.cancel(&ticket);
            return Err(ctx
                .err()
                .expect("a context completes its waiters when done"));
        }
        self.check_reuse();
        Ok(())
    }

    /// Registers `waiter` if the counter is not zero; `None` if it is (the wait is over).
    fn enqueue(&self, waiter: &Arc<Waiter>) -> Option<Ticket> {
        let mut q = self.inner.queue.lock();
        let mut s = self.inner.state.load(Ordering::Acquire);
        loop {
            if counter(s) == 0 {
                return None;
            }
            assert!(waiters(s) != u32::MAX, "sync: too many WaitGroup waiters");
            match self.inner.state.compare_exchange_weak(
                s,
                s + 1,
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(q.push(waiter, false)),
                Err(now) => s = now,
            }
        }
    }

    /// After a release: the state must still be what the release left (zero), as in Go.
    fn check_reuse(&self) {
        if self.inner.state.load(Ordering::Acquire) != 0 {
            panic!("{REUSED}");
        }
    }

    /// A registered async waiter gave up.
    fn cancel(&self, ticket: &Ticket) {
        let mut q = self.inner.queue.lock();
        if !q.remove(ticket) {
            // Already released: a release wakes everyone, so there is nothing to pass on.
            return;
        }
        // Take back the registration, unless the counter is zero: then the `done` that brought
        // it there saw this waiter and will clear the field; until then it still counts.
        let _ = self
            .inner
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                (counter(s) != 0).then(|| s - 1)
            });
        drop(q);
    }
}

#[cold]
#[inline(never)]
fn out_of_range(delta: isize) -> ! {
    if delta < 0 {
        panic!("{NEGATIVE}");
    }
    panic!("sync: WaitGroup counter overflow");
}

/// The future returned by [`WaitGroup::wait_async`].
///
/// # Cancel safety
///
/// Dropping it before it completes takes it out of the queue without disturbing other waiters.
#[must_use = "futures do nothing unless polled"]
pub struct WaitGroupFuture<'a> {
    wg: &'a WaitGroup,
    origin: Origin,
    ticket: Option<Ticket>,
}

impl fmt::Debug for WaitGroupFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroupFuture")
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}

impl Future for WaitGroupFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let wg = this.wg;
        if let Some(ticket) = &this.ticket {
            return match ticket.waiter().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(_) => {
                    this.ticket = None;
                    wg.check_reuse();
                    Poll::Ready(())
                }
            };
        }
        if counter(wg.inner.state.load(Ordering::Acquire)) == 0 {
            return Poll::Ready(());
        }
        let waiter = Waiter::new(this.origin.on(wg.inner.queue.ident()), None, Some(cx));
        match wg.enqueue(&waiter) {
            Some(ticket) => {
                this.ticket = Some(ticket);
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    }
}

impl Drop for WaitGroupFuture<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.wg.cancel(&ticket);
        }
    }
}
