//! A weighted semaphore, as Go's `golang.org/x/sync/semaphore`.
//!
//! [`Weighted`] holds `size` units. [`acquire`](Weighted::acquire) takes `n` of them, waiting
//! until they are free or the given [`Context`] ends; [`release`](Weighted::release) gives them
//! back. Threads ([`acquire`](Weighted::acquire)) and async tasks
//! ([`acquire_async`](Weighted::acquire_async)) wait in one FIFO queue.
//!
//! | Go (`x/sync/semaphore`)        | gosync                                     |
//! |--------------------------------|--------------------------------------------|
//! | `semaphore.NewWeighted(n)`     | [`Weighted::new(n)`](Weighted::new)        |
//! | `s.Acquire(ctx, n)`            | [`acquire(&ctx, n)`](Weighted::acquire), [`acquire_async(&ctx, n)`](Weighted::acquire_async) |
//! | `s.TryAcquire(n)`              | [`try_acquire(n)`](Weighted::try_acquire)  |
//! | `s.Release(n)`                 | [`release(n)`](Weighted::release)          |
//!
//! # Semantics, exactly Go's
//!
//! * **FIFO with head-of-line blocking.** Waiters are served in arrival order, and a request
//!   that does not fit holds back every later one, even small ones that would fit: a large
//!   request is never starved by a stream of small ones.
//! * **A request larger than the size** can never be served; it waits until its context ends
//!   (and does not hold back anyone meanwhile).
//! * **A context that is already done** fails the call, even when the units are free (Go
//!   prefers to fail: the context's end happened before the call).
//! * **A cancelled waiter lets the others go.** When a waiter at the head leaves (its context
//!   ended, or its future was dropped), the requests behind it that now fit are served at once
//!   (Go fixed this late; x/sync's `TestAllocCancelDoesntStarve`).
//! * **Exactly one outcome.** A waiter is served or its context ends, never both: whichever
//!   claims the waiter first (see the waiter core) decides, so no unit is ever lost or given
//!   twice. (Go's implementation checks the context again after being served and gives the
//!   units back; here a waiter served before its context ended keeps them.)
//!
//! Extensions over Go, none of which change the above: `acquire(ctx, 0)` returns at once
//! (Go would queue a zero request behind the others), sizes and weights are `usize` up to
//! `2^63 - 1`, and [`available`](Weighted::available) / [`waiters`](Weighted::waiters)
//! introspect it.
//!
//! # Happens-before
//!
//! In the terminology of the Go memory model, a `release` synchronizes before the return of
//! every `acquire` that takes any of the units it gave back.
//!
//! # Misuse
//!
//! Releasing more than is held panics with Go's message, `"semaphore: released more than
//! held"`, and leaves the semaphore as it was.
//!
//! # How it works
//!
//! One atomic word holds the free units and a flag saying "waiters are queued". While no one
//! waits, `acquire` and `release` are one CAS each and never touch the queue. Once a waiter has
//! queued, every release takes the queue lock and hands units to the head waiters that fit, in
//! order, directly (the units never become free for a late-comer to take): that is what makes
//! the order FIFO. The flag is set and cleared only under the queue lock, together with the
//! queue it describes. A thread spins briefly, retrying the free path, before it queues, since
//! parking a thread costs far more than a short critical section; a task queues at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::context::{Context, ContextError, Watch};
use crate::loom::{Arc, AtomicU64, Ordering};
use crate::sema::{
    coop, wake_all, Backoff, Locked, Notified, Origin, Queue, ThreadWait, Ticket, WaitKind,
    WaitRecord, Waiter, CTX_DONE,
};

/// Set in the state word while waiters are queued (set and cleared under the queue lock).
const QUEUED: u64 = 1 << 63;
/// The largest size a semaphore can have.
const MAX: u64 = QUEUED - 1;
/// Time slices a thread yields, after its spin, before it queues (see `spin_free`).
#[cfg(not(loom))]
const SPIN_YIELDS: u32 = 30;
#[cfg(loom)]
const SPIN_YIELDS: u32 = 0;
/// The token of a waiter handed its units.
const GRANTED: u32 = 1;

const RELEASED_MORE: &str = "semaphore: released more than held";

#[inline]
fn free(state: u64) -> u64 {
    state & MAX
}

/// A weighted semaphore: `size` units, acquired and released in any amounts, with Go's
/// `x/sync/semaphore` semantics (FIFO, head-of-line blocking, context-bounded waits). See the
/// [module docs](self).
///
/// Share it by reference or in an `Arc`; threads and tasks may use the same
/// semaphore.
///
/// ```
/// use gosync::context;
/// use gosync::semaphore::Weighted;
/// use std::sync::Arc;
///
/// // At most 2 jobs at a time.
/// let sem = Arc::new(Weighted::new(2));
/// let ctx = context::background();
/// let workers: Vec<_> = (0..6)
///     .map(|_| {
///         let (sem, ctx) = (sem.clone(), ctx.clone());
///         std::thread::spawn(move || {
///             sem.acquire(&ctx, 1).unwrap();
///             // ... at most two threads are here at once ...
///             sem.release(1);
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(sem.available(), 2);
/// ```
pub struct Weighted {
    /// Free units, plus [`QUEUED`].
    state: AtomicU64,
    size: u64,
    queue: Queue,
}

impl fmt::Debug for Weighted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Weighted")
            .field("size", &self.size)
            .field("available", &self.available())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// What [`Weighted::enqueue`] did.
enum Enqueue {
    /// The units were free and nobody was queued: they are taken.
    Acquired,
    /// The request is larger than the semaphore: it can only wait for its context.
    TooBig,
    /// Queued.
    Queued(Ticket),
}

impl Weighted {
    /// A semaphore with `size` units, all free (Go's `NewWeighted`). A size of zero is allowed:
    /// every non-zero request then waits for its context.
    ///
    /// # Panics
    ///
    /// If `size` exceeds `2^63 - 1`.
    ///
    /// ```
    /// let sem = gosync::semaphore::Weighted::new(10);
    /// assert_eq!(sem.available(), 10);
    /// ```
    #[track_caller]
    pub fn new(size: usize) -> Self {
        let size = size as u64;
        assert!(size <= MAX, "semaphore: size {size} exceeds 2^63 - 1");
        Weighted {
            state: AtomicU64::new(size),
            size,
            queue: Queue::new(),
        }
    }

    /// Acquires `n` units, blocking the calling thread until they are free or `ctx` is done
    /// (Go's `Acquire`). On success all `n` units are held; on failure none are, and the error
    /// is the context's.
    ///
    /// Fails at once if `ctx` is done already, even when the units are free. A request larger
    /// than the semaphore waits until `ctx` is done (forever with
    /// [`background`](crate::context::background)). `n == 0` returns at once.
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::semaphore::Weighted;
    /// use std::time::Duration;
    ///
    /// let sem = Weighted::new(3);
    /// let ctx = context::background();
    /// sem.acquire(&ctx, 3).unwrap();
    /// let (short, _cancel) = context::with_timeout(&ctx, Duration::from_millis(10));
    /// assert_eq!(sem.acquire(&short, 1), Err(context::ContextError::DeadlineExceeded));
    /// sem.release(3);
    /// ```
    #[track_caller]
    pub fn acquire(&self, ctx: &Context, n: usize) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        let n = n as u64;
        if n == 0 || self.take_free(n) {
            return Ok(());
        }
        self.acquire_slow(Origin::here(WaitKind::Semaphore), ctx, n)
    }

    /// Acquires `n` units from an async task, waiting until they are free or `ctx` is done:
    /// the same as [`acquire`](Self::acquire), as a future. Threads and tasks wait in the same
    /// queue.
    ///
    /// A task that loops on a semaphore that is always free would never give its executor the
    /// thread back; so once in 128 times an acquire that could complete at once yields first
    /// (its task is woken and polled again after the executor's other tasks had a turn).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes takes its request out of the queue: if it was
    /// holding back the requests behind it, those that now fit are served at once; if units had
    /// just been handed to it, they are given back to the semaphore (and on to the next
    /// waiters). Nothing is lost.
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::semaphore::Weighted;
    ///
    /// # futures::executor::block_on(async {
    /// let sem = Weighted::new(2);
    /// let ctx = context::background();
    /// sem.acquire_async(&ctx, 2).await.unwrap();
    /// assert!(!sem.try_acquire(1));
    /// sem.release(2);
    /// # });
    /// ```
    #[track_caller]
    pub fn acquire_async<'a>(&'a self, ctx: &'a Context, n: usize) -> AcquireFuture<'a> {
        AcquireFuture {
            sem: self,
            ctx,
            n: n as u64,
            origin: Origin::here(WaitKind::Semaphore),
            wait: None,
        }
    }

    /// Acquires `n` units if they are free and nobody is waiting, without blocking (Go's
    /// `TryAcquire`); `true` on success. `try_acquire(0)` is `true`.
    ///
    /// ```
    /// let sem = gosync::semaphore::Weighted::new(2);
    /// assert!(sem.try_acquire(2));
    /// assert!(!sem.try_acquire(1));
    /// sem.release(2);
    /// ```
    #[inline]
    pub fn try_acquire(&self, n: usize) -> bool {
        n == 0 || self.take_free(n as u64)
    }

    /// Gives back `n` units (Go's `Release`), serving the waiters at the head of the queue that
    /// now fit. `release(0)` does nothing.
    ///
    /// # Panics
    ///
    /// With `"semaphore: released more than held"` if more units would be free than the
    /// semaphore has; nothing is changed then.
    ///
    /// ```
    /// let sem = gosync::semaphore::Weighted::new(1);
    /// assert!(sem.try_acquire(1));
    /// sem.release(1);
    /// assert_eq!(sem.available(), 1);
    /// ```
    #[inline]
    pub fn release(&self, n: usize) {
        let n = n as u64;
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & QUEUED != 0 {
                return self.release_slow(n);
            }
            if n > self.size - s {
                panic!("{RELEASED_MORE}");
            }
            match self
                .state
                .compare_exchange_weak(s, s + n, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => s = now,
            }
        }
    }

    /// The number of units the semaphore has (Go's `n` in `NewWeighted(n)`).
    ///
    /// ```
    /// assert_eq!(gosync::semaphore::Weighted::new(5).size(), 5);
    /// ```
    pub fn size(&self) -> usize {
        self.size as usize
    }

    /// The number of free units right now (a snapshot, for introspection). Units handed to a
    /// waiter are not free, even before it wakes.
    ///
    /// ```
    /// let sem = gosync::semaphore::Weighted::new(5);
    /// assert!(sem.try_acquire(2));
    /// assert_eq!(sem.available(), 3);
    /// # sem.release(2);
    /// ```
    pub fn available(&self) -> usize {
        free(self.state.load(Ordering::Relaxed)) as usize
    }

    /// The number of queued requests right now (a snapshot; a request whose context just ended
    /// may still be counted for a moment). Requests larger than the semaphore do not queue and
    /// are not counted.
    ///
    /// ```
    /// let sem = gosync::semaphore::Weighted::new(1);
    /// assert_eq!(sem.waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.queue.len()
    }

    /// Who waits in the queue, where, and for how long, in arrival order.
    ///
    /// ```
    /// assert!(gosync::semaphore::Weighted::new(1).waiting().is_empty());
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.queue.records()
    }

    /// Whether `n` units are free and nobody is queued (a request of `n` would not wait).
    #[inline]
    fn would_take(&self, n: u64) -> bool {
        let s = self.state.load(Ordering::Relaxed);
        s & QUEUED == 0 && s >= n
    }

    /// Takes `n` free units if nobody is queued.
    #[inline]
    fn take_free(&self, n: u64) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & QUEUED != 0 || s < n {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s - n, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    #[cold]
    fn acquire_slow(&self, origin: Origin, ctx: &Context, n: u64) -> Result<(), ContextError> {
        if n <= self.size && self.spin_free(n) {
            return Ok(());
        }
        let origin = origin.on(self.queue.ident());
        let waiter = Waiter::new(origin, None, None);
        waiter.set_payload(n);
        let watch = ctx.watch(&waiter)?;
        let ticket = match self.enqueue(&waiter, n) {
            Enqueue::Acquired => {
                drop(watch);
                Waiter::recycle(waiter);
                return Ok(());
            }
            Enqueue::TooBig => None,
            Enqueue::Queued(ticket) => Some(ticket),
        };
        let wait = ThreadWait::enter(&origin, Some(waiter.since()));
        let token = waiter.park(None);
        drop(wait);
        drop(watch);
        let outcome = match token {
            Some(GRANTED) => Ok(()),
            t => {
                debug_assert_eq!(t, Some(CTX_DONE));
                if let Some(ticket) = &ticket {
                    self.leave(ticket);
                }
                Err(ctx
                    .err()
                    .expect("a context completes its waiters when done"))
            }
        };
        drop(ticket);
        Waiter::recycle(waiter);
        outcome
    }

    /// Retries the free path for a while before a thread queues: a thread's park costs far
    /// more than most holds. Spins with growing pauses, then yields its time slice a number of
    /// times (with more threads than cores, that lets the holders run and release), but only
    /// while nobody is queued: once someone is, FIFO order says queue behind them.
    fn spin_free(&self, n: u64) -> bool {
        let mut backoff = Backoff::new();
        let mut yields = 0;
        while self.state.load(Ordering::Relaxed) & QUEUED == 0 {
            if self.take_free(n) {
                return true;
            }
            if !backoff.snooze() {
                if yields == SPIN_YIELDS {
                    return false;
                }
                yields += 1;
                crate::loom::thread::yield_now();
            }
        }
        false
    }

    /// Under the queue lock: takes the units if they are free and nobody is queued, else queues
    /// `waiter` (whose payload is `n`) — unless `n` can never fit.
    fn enqueue(&self, waiter: &Arc<Waiter>, n: u64) -> Enqueue {
        let mut q = self.queue.lock();
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & QUEUED == 0 && s >= n {
                match self.state.compare_exchange_weak(
                    s,
                    s - n,
                    Ordering::Acquire,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Enqueue::Acquired,
                    Err(now) => s = now,
                }
                continue;
            }
            if n > self.size {
                return Enqueue::TooBig;
            }
            if s & QUEUED != 0 {
                break;
            }
            // Raise the flag in the same step as reading the free units: a release that comes
            // after this sees it and takes the lock; one that came before left units we saw.
            match self.state.compare_exchange_weak(
                s,
                s | QUEUED,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        let ticket = q.push(waiter, false);
        // Waiters ahead may all be stale (their contexts ended a moment ago, their owners not
        // yet gone): serve whoever fits now, this waiter included, rather than wait for a
        // release.
        let woken = self.serve(&mut q);
        drop(q);
        woken.wake();
        Enqueue::Queued(ticket)
    }

    #[cold]
    fn release_slow(&self, n: u64) {
        let mut q = self.queue.lock();
        // The flag may have been cleared since we looked, letting the free path run again: add
        // with a CAS either way.
        let added = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (n <= self.size - free(s)).then_some(s + n)
            });
        if added.is_err() {
            drop(q);
            panic!("{RELEASED_MORE}");
        }
        let woken = self.serve(&mut q);
        drop(q);
        woken.wake();
    }

    /// The owner of `ticket` gives up its wait (its context ended, or its future was dropped):
    /// it leaves the queue, gives back units handed to it meanwhile, and the waiters it held
    /// back are served.
    fn leave(&self, ticket: &Ticket) {
        let mut q = self.queue.lock();
        if q.withdraw(ticket) == Some(GRANTED) {
            // Handed its units before it could leave: they go back, and on to the next waiters.
            self.state
                .fetch_add(ticket.waiter().payload(), Ordering::AcqRel);
        }
        let woken = self.serve(&mut q);
        drop(q);
        woken.wake();
    }

    /// Under the queue lock: hands units to the waiters at the head, in order, while the head
    /// fits (Go's `notifyWaiters`); clears the flag when the queue runs empty. While the flag is
    /// set the state changes only under this lock, so a read and a later subtraction agree.
    fn serve(&self, q: &mut Locked<'_>) -> Woken {
        let mut woken = Woken::default();
        loop {
            let Some(head) = q.claim_front() else {
                self.state.fetch_and(!QUEUED, Ordering::AcqRel);
                return woken;
            };
            let need = head.payload();
            if free(self.state.load(Ordering::Acquire)) < need {
                // Head-of-line blocking: nobody behind it goes first.
                q.unclaim_front();
                return woken;
            }
            self.state.fetch_sub(need, Ordering::AcqRel);
            woken.push(q.complete_front(GRANTED));
        }
    }
}

/// The waiters a serve completed, to wake once the queue lock is released. The first is kept
/// inline: most releases serve one waiter, and then nothing is allocated.
#[derive(Default)]
struct Woken {
    first: Option<Notified>,
    rest: Vec<Notified>,
}

impl Woken {
    fn push(&mut self, n: Notified) {
        if self.first.is_none() {
            self.first = Some(n);
        } else {
            self.rest.push(n);
        }
    }

    /// Wakes every waiter, all of them even if a waker panics; then re-raises the panic.
    fn wake(self) {
        if self.first.is_none() {
            return;
        }
        wake_all(self.first.into_iter().chain(self.rest)).resume();
    }
}

/// The future returned by [`Weighted::acquire_async`].
///
/// # Cancel safety
///
/// Dropping it before it completes withdraws its request: requests it held back are served,
/// and units handed to it meanwhile go back to the semaphore. Nothing is lost.
#[must_use = "futures do nothing unless polled"]
pub struct AcquireFuture<'a> {
    sem: &'a Weighted,
    ctx: &'a Context,
    n: u64,
    origin: Origin,
    wait: Option<Wait>,
}

/// A pending request: its waiter, its place in the queue (none for a request too large to
/// queue) and its registration with the context.
struct Wait {
    waiter: Arc<Waiter>,
    ticket: Option<Ticket>,
    watch: Option<Watch>,
}

impl fmt::Debug for AcquireFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireFuture")
            .field("n", &self.n)
            .field("waiting", &self.wait.is_some())
            .finish()
    }
}

impl Future for AcquireFuture<'_> {
    type Output = Result<(), ContextError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let sem = this.sem;
        if this.wait.is_none() {
            if let Some(err) = this.ctx.err() {
                return Poll::Ready(Err(err));
            }
            if sem.would_take(this.n) && !coop::proceed(cx) {
                return Poll::Pending;
            }
            if this.n == 0 || sem.take_free(this.n) {
                return Poll::Ready(Ok(()));
            }
            let waiter = Waiter::new(this.origin.on(sem.queue.ident()), None, Some(cx));
            waiter.set_payload(this.n);
            let watch = match this.ctx.watch(&waiter) {
                Ok(watch) => watch,
                Err(err) => return Poll::Ready(Err(err)),
            };
            let ticket = match sem.enqueue(&waiter, this.n) {
                Enqueue::Acquired => {
                    drop(watch);
                    Waiter::recycle(waiter);
                    return Poll::Ready(Ok(()));
                }
                Enqueue::TooBig => None,
                Enqueue::Queued(ticket) => Some(ticket),
            };
            this.wait = Some(Wait {
                waiter,
                ticket,
                watch,
            });
        }
        let wait = this.wait.as_ref().expect("a pending request");
        let token = match wait.waiter.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(t) => t,
        };
        let wait = this.wait.take().expect("a pending request");
        drop(wait.watch);
        let outcome = if token == GRANTED {
            Ok(())
        } else {
            debug_assert_eq!(token, CTX_DONE);
            if let Some(ticket) = &wait.ticket {
                sem.leave(ticket);
            }
            Err(this
                .ctx
                .err()
                .expect("a context completes its waiters when done"))
        };
        drop(wait.ticket);
        Waiter::recycle(wait.waiter);
        Poll::Ready(outcome)
    }
}

impl Drop for AcquireFuture<'_> {
    fn drop(&mut self) {
        if let Some(wait) = self.wait.take() {
            if let Some(ticket) = &wait.ticket {
                self.sem.leave(ticket);
            }
        }
    }
}
