//! The task flavour: [`TaskGroup`], futures driven by whoever waits for them.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};

use super::{lock, modify_limit_panic, Outcome};
use crate::context::{self, Context};
use crate::sema::drive::Drive;
use crate::sema::{Origin, Ticket, WaitKind, WaitRecord};

type TaskFuture<'a, E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send + 'a>>;

/// A group of futures working on parts of one job, as Go's `errgroup.Group` for goroutines —
/// with no runtime: the group polls its futures itself, inside [`wait_async`] (or the
/// blocking [`wait`]) and inside a [`go`] that waits for a free slot.
///
/// [`go`] / [`try_go`] add a future; [`wait_async`] drives them all to completion and returns
/// the first error. A future is polled only when its own waker fires (each has its own slot,
/// as in `FuturesUnordered`), and a future that keeps waking itself is polled once per round,
/// so the group yields to its executor between rounds.
///
/// `TaskGroup` is a handle: clones share one group, so a future can add more futures to its
/// own group (move a clone into it). Several tasks, or threads, may wait at once: one of them
/// polls at a time and the others wait in the library's waiter queue (visible to
/// [`diag::blocked`](crate::diag::blocked)); whoever is awake polls, so no future depends on
/// any one waiter staying alive.
///
/// # Borrowing
///
/// Since nothing is spawned, the futures need not be `'static`: a `TaskGroup<'a, E>` holds
/// futures that live for `'a`, so they may borrow from the caller (they must be `Send`, so
/// that the group can be shared). The futures are dropped when the last handle to the group
/// is — a future that holds a handle to its own group keeps the group, and itself, alive
/// until it completes.
///
/// See the [module docs](super) for errors, panics, limits and the happens-before edges.
///
/// # Cancel safety
///
/// The futures belong to the group, not to the future that polls them: dropping a
/// [`wait_async`] future (or a waiting [`go`]) mid-way loses nothing — every future stays in
/// the group where it was, its wake-ups recorded, and the next `wait_async` carries on.
///
/// ```
/// # futures::executor::block_on(async {
/// use gosync::errgroup::TaskGroup;
///
/// let words = vec!["alpha", "beta", "gamma"];
/// let lengths = std::sync::Mutex::new(Vec::new());
/// let g = TaskGroup::<String>::new();
/// for w in &words {
///     let lengths = &lengths;
///     // borrows `words` and `lengths`: nothing is spawned
///     g.go(async move {
///         lengths.lock().unwrap().push(w.len());
///         Ok(())
///     })
///     .await;
/// }
/// assert_eq!(g.wait_async().await, Ok(()));
/// drop(g); // the group holds the borrows until it is dropped
/// let mut got = lengths.into_inner().unwrap();
/// got.sort();
/// assert_eq!(got, [4, 5, 5]);
/// # });
/// ```
///
/// [`go`]: Self::go
/// [`try_go`]: Self::try_go
/// [`wait_async`]: Self::wait_async
/// [`wait`]: Self::wait
pub struct TaskGroup<'a, E> {
    inner: Arc<Inner<'a, E>>,
}

struct Inner<'a, E> {
    /// What the wakers touch: `'static`, and never the futures.
    shared: Arc<Shared>,
    tasks: Mutex<Tasks<'a, E>>,
    /// Futures added and not yet finished (changed under the `tasks` lock).
    active: AtomicUsize,
    outcome: Outcome<E>,
}

/// The part of a group its wakers reach.
struct Shared {
    /// Everyone waiting: drivers in `wait_async` / `wait`, and `go`s waiting for room.
    drive: Drive,
    /// Slots whose future was woken, in order, each at most once.
    ready: Mutex<Vec<usize>>,
}

/// The waker of one slot.
struct SlotWaker {
    index: usize,
    /// Whether `index` is in the ready list (or about to be).
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Whoever queues the slot also wakes the drivers; a slot queued already has had (or
        // is about to have) its wake.
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.shared.ready).push(self.index);
            self.shared.drive.wake();
        }
    }
}

struct Slot<'a, E> {
    /// The future, while it is in the group and not being polled.
    fut: Option<TaskFuture<'a, E>>,
    /// The id of the limit it was started under (0: none).
    token: u64,
    flag: Arc<SlotWaker>,
    waker: Waker,
}

/// A limit: `used` of `limit` slots are taken by futures started under it.
struct Sem {
    id: u64,
    limit: usize,
    used: usize,
}

struct Tasks<'a, E> {
    slots: Vec<Slot<'a, E>>,
    free: Vec<usize>,
    sem: Option<Sem>,
    /// Limit ids given so far.
    sems: u64,
    /// The ready list's spare buffer, swapped with it each round.
    spare: Vec<usize>,
}

impl<E> Clone for TaskGroup<'_, E> {
    fn clone(&self) -> Self {
        TaskGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E> fmt::Debug for TaskGroup<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = lock(&self.inner.tasks).sem.as_ref().map(|s| s.limit);
        f.debug_struct("TaskGroup")
            .field("active", &self.inner.active.load(Ordering::Relaxed))
            .field("limit", &limit)
            .field("failed", &self.inner.outcome.has_failed())
            .field("waiters", &self.inner.shared.drive.waiters())
            .finish()
    }
}

impl<'a, E: Send + 'a> Default for TaskGroup<'a, E> {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, E: Send + 'a> TaskGroup<'a, E> {
    /// An empty group with no limit and no context.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let g = gosync::errgroup::TaskGroup::<String>::new();
    /// assert_eq!(g.wait_async().await, Ok(())); // nothing to wait for
    /// # });
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        TaskGroup::build(Outcome::new(None))
    }

    /// A group and a context derived from `ctx` that is cancelled — with the error as its
    /// cause — the first time a future fails (or panics), or else when the group's wait
    /// returns (Go's `errgroup.WithContext`).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::context;
    /// use gosync::errgroup::TaskGroup;
    ///
    /// let (g, ctx) = TaskGroup::<&'static str>::with_context(&context::background());
    /// let watcher = ctx.clone();
    /// g.go(async move {
    ///     watcher.done().await; // stops when a sibling fails
    ///     Ok(())
    /// })
    /// .await;
    /// g.go(async { Err("no route") }).await;
    /// assert_eq!(g.wait_async().await, Err("no route"));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "no route");
    /// # });
    /// ```
    #[must_use]
    #[track_caller]
    pub fn with_context(ctx: &Context) -> (Self, Context)
    where
        E: Clone + Into<Box<dyn Error + Send + Sync>>,
    {
        let (ctx, cancel) = context::with_cancel_cause(ctx);
        (TaskGroup::build(Outcome::with_cancel(cancel)), ctx)
    }

    #[track_caller]
    fn build(outcome: Outcome<E>) -> Self {
        TaskGroup {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    drive: Drive::new(false),
                    ready: Mutex::new(Vec::new()),
                }),
                tasks: Mutex::new(Tasks {
                    slots: Vec::new(),
                    free: Vec::new(),
                    sem: None,
                    sems: 0,
                    spare: Vec::new(),
                }),
                active: AtomicUsize::new(0),
                outcome,
            }),
        }
    }

    /// Adds `fut` to the group (Go's `Go`): a future that completes once `fut` is in. Without
    /// a limit that is at once; with one it waits until fewer than the limit are in the group
    /// — forever with a limit of 0, as in Go — and **while it waits it drives the group's
    /// futures**, as `wait_async` does (otherwise a `go` awaited before `wait_async` could
    /// never see a slot free). `fut` itself runs only when the group is driven (by
    /// `wait_async`, `wait`, or a waiting `go`).
    ///
    /// The first future to fail cancels the derived context, if any; the group's wait returns
    /// its error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future before it completes drops `fut` unstarted and leaves the
    /// group as it was (the futures it drove stay in the group).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::errgroup::TaskGroup;
    ///
    /// let g = TaskGroup::<String>::new();
    /// g.set_limit(Some(1));
    /// g.go(async { Ok(()) }).await;
    /// // the slot is taken: this `go` drives the first future to completion to get it
    /// g.go(async { Err("second".to_string()) }).await;
    /// assert_eq!(g.wait_async().await, Err("second".to_string()));
    /// # });
    /// ```
    #[track_caller]
    pub fn go<'g, F>(&'g self, fut: F) -> GoFuture<'g, 'a, E, F>
    where
        F: Future<Output = Result<(), E>> + Send + 'a,
    {
        GoFuture {
            group: self,
            fut: Some(fut),
            ticket: None,
            origin: Origin::here(WaitKind::ErrGroup),
        }
    }

    /// Adds `fut` to the group only if fewer than the limit are in it now; whether it did
    /// (Go's `TryGo`). Always `true` without a limit, always `false` with a limit of 0. `fut`
    /// runs when the group is driven.
    ///
    /// ```
    /// use gosync::errgroup::TaskGroup;
    ///
    /// let g = TaskGroup::<String>::new();
    /// g.set_limit(Some(1));
    /// assert!(g.try_go(async { Ok(()) }));
    /// assert!(!g.try_go(async { Ok(()) })); // full
    /// assert_eq!(g.wait(), Ok(())); // a thread may drive the group too
    /// assert!(g.try_go(async { Ok(()) }));
    /// # g.wait().unwrap();
    /// ```
    pub fn try_go<F>(&self, fut: F) -> bool
    where
        F: Future<Output = Result<(), E>> + Send + 'a,
    {
        self.try_insert(fut).is_ok()
    }

    /// Limits the number of futures in the group at once to `n`; `None` removes the limit
    /// (Go's `SetLimit`, where a negative `n` means no limit). `Some(0)` refuses every new
    /// future.
    ///
    /// # Panics
    ///
    /// With Go's message, `"errgroup: modify limit while N goroutines in the group are still
    /// active"`, when setting `Some(n)` while `N > 0` futures added under the current limit are
    /// still in the group. (Futures added without a limit do not count, and removing the limit
    /// never panics, as in Go.)
    ///
    /// ```
    /// let g = gosync::errgroup::TaskGroup::<String>::new();
    /// g.set_limit(Some(0));
    /// assert!(!g.try_go(async { Ok(()) }));
    /// g.set_limit(None);
    /// assert!(g.try_go(async { Ok(()) }));
    /// # g.wait().unwrap();
    /// ```
    #[track_caller]
    pub fn set_limit(&self, n: Option<usize>) {
        {
            let mut t = lock(&self.inner.tasks);
            match n {
                None => t.sem = None,
                Some(limit) => {
                    let used = t.sem.as_ref().map_or(0, |s| s.used);
                    if used != 0 {
                        drop(t);
                        modify_limit_panic(used);
                    }
                    t.sems += 1;
                    t.sem = Some(Sem {
                        id: t.sems,
                        limit,
                        used: 0,
                    });
                }
            }
        }
        // A waiting `go` may have room now.
        self.inner.shared.drive.notify();
    }

    /// Drives every future in the group to completion, then returns the first error (Go's
    /// `Wait`), cancelling the derived context if it is not cancelled yet. The first error
    /// stays in the group: a later wait returns it again, as in Go.
    ///
    /// # Panics
    ///
    /// When polled to completion, if a future panicked: once every other future has
    /// completed, with the first panic's original payload (later waits do not panic again).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future mid-way loses nothing: the futures stay in the group, and a later
    /// `wait_async` (or another one running now) carries on.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::chan::Chan;
    /// use gosync::errgroup::TaskGroup;
    ///
    /// let ch = Chan::new(0);
    /// let g = TaskGroup::<String>::new();
    /// let (tx, rx) = (ch.clone(), ch.clone());
    /// g.go(async move { tx.send_async(7).await.map_err(|_| "closed".to_string()) }).await;
    /// g.go(async move {
    ///     assert_eq!(rx.recv_async().await, Some(7));
    ///     Ok(())
    /// })
    /// .await;
    /// assert_eq!(g.wait_async().await, Ok(()));
    /// # });
    /// ```
    #[track_caller]
    pub fn wait_async(&self) -> TaskWaitFuture<'_, 'a, E>
    where
        E: Clone,
    {
        TaskWaitFuture {
            group: self,
            ticket: None,
            origin: Origin::here(WaitKind::ErrGroup),
        }
    }

    /// The blocking form of [`wait_async`](Self::wait_async): drives the group's futures on
    /// the calling thread, parking it while none is ready, until all have completed; then
    /// returns the first error. Lets a thread run a group of futures with no executor at all.
    ///
    /// # Panics
    ///
    /// As [`wait_async`](Self::wait_async).
    ///
    /// ```
    /// use gosync::errgroup::TaskGroup;
    /// use gosync::sync::WaitGroup;
    ///
    /// let wg = WaitGroup::new();
    /// wg.add(1);
    /// let g = TaskGroup::<String>::new();
    /// let w = wg.clone();
    /// g.try_go(async move {
    ///     w.wait_async().await; // woken by the thread below
    ///     Ok(())
    /// });
    /// let t = std::thread::spawn(move || wg.done());
    /// assert_eq!(g.wait(), Ok(()));
    /// t.join().unwrap();
    /// ```
    #[track_caller]
    pub fn wait(&self) -> Result<(), E>
    where
        E: Clone,
    {
        let origin = Origin::here(WaitKind::ErrGroup);
        self.inner.shared.drive.block(
            origin,
            true,
            || self.is_idle(),
            || {
                self.round();
                None::<()>
            },
        );
        self.inner.outcome.finish()
    }

    /// The number of futures in the group that have not completed (a snapshot).
    ///
    /// ```
    /// let g = gosync::errgroup::TaskGroup::<String>::new();
    /// assert!(g.try_go(async { Ok(()) }));
    /// assert_eq!(g.active(), 1); // added, not yet driven
    /// g.wait().unwrap();
    /// assert_eq!(g.active(), 0);
    /// ```
    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Who is waiting for the group (drivers between rounds, `go`s waiting for room), where,
    /// and since when.
    ///
    /// ```
    /// let g = gosync::errgroup::TaskGroup::<String>::new();
    /// assert!(g.waiting().is_empty());
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.inner.shared.drive.waiting()
    }

    fn is_idle(&self) -> bool {
        self.inner.active.load(Ordering::Acquire) == 0
    }

    fn has_room(&self) -> bool {
        lock(&self.inner.tasks)
            .sem
            .as_ref()
            .is_none_or(|s| s.used < s.limit)
    }

    /// Puts `fut` in a slot if the limit allows, and schedules its first poll.
    fn try_insert<F>(&self, fut: F) -> Result<(), F>
    where
        F: Future<Output = Result<(), E>> + Send + 'a,
    {
        let shared = &self.inner.shared;
        let wake = {
            let mut t = lock(&self.inner.tasks);
            let token = match &mut t.sem {
                Some(s) if s.used >= s.limit => return Err(fut),
                Some(s) => {
                    s.used += 1;
                    s.id
                }
                None => 0,
            };
            let index = match t.free.pop() {
                Some(i) => i,
                None => {
                    let index = t.slots.len();
                    let flag = Arc::new(SlotWaker {
                        index,
                        queued: AtomicBool::new(false),
                        shared: shared.clone(),
                    });
                    t.slots.push(Slot {
                        fut: None,
                        token: 0,
                        waker: Waker::from(flag.clone()),
                        flag,
                    });
                    index
                }
            };
            let slot = &mut t.slots[index];
            slot.fut = Some(Box::pin(fut));
            slot.token = token;
            self.inner.active.fetch_add(1, Ordering::Release);
            // As the slot's waker would, without the queue lock (taken after this one).
            let wake = !slot.flag.queued.swap(true, Ordering::AcqRel);
            if wake {
                lock(&shared.ready).push(index);
            }
            wake
        };
        if wake {
            shared.drive.wake();
        }
        Ok(())
    }

    /// Polls every future woken since the last round, once each. Run by the one caller
    /// holding the drive's `POLLING` bit; no lock is held while a future is polled, so a future
    /// may add futures to its own group.
    fn round(&self) {
        let inner = &*self.inner;
        let mut batch = mem::take(&mut lock(&inner.tasks).spare);
        mem::swap(&mut batch, &mut *lock(&inner.shared.ready));
        let mut finished = false;
        for &index in &batch {
            let (mut fut, waker) = {
                let mut t = lock(&inner.tasks);
                let slot = &mut t.slots[index];
                // Before the poll: a wake during it queues the slot again.
                slot.flag.queued.store(false, Ordering::Release);
                match slot.fut.take() {
                    Some(f) => (f, slot.waker.clone()),
                    None => continue, // a stale wake of a free slot
                }
            };
            let polled = catch_unwind(AssertUnwindSafe(|| {
                fut.as_mut().poll(&mut TaskContext::from_waker(&waker))
            }));
            match polled {
                Ok(Poll::Pending) => {
                    lock(&inner.tasks).slots[index].fut = Some(fut);
                    continue;
                }
                Ok(Poll::Ready(result)) => {
                    self.drop_task(fut);
                    inner.outcome.record(result);
                }
                Err(payload) => {
                    self.drop_task(fut);
                    inner.outcome.record_panic(payload);
                }
            }
            self.retire(index);
            finished = true;
        }
        batch.clear();
        lock(&inner.tasks).spare = batch;
        if finished {
            // Waiters for an idle group, or for room, may be done now.
            inner.shared.drive.notify();
        }
    }

    /// Drops a finished future; a panic in its destructor counts as the task's panic.
    fn drop_task(&self, fut: TaskFuture<'a, E>) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(fut))) {
            self.inner.outcome.record_panic(payload);
        }
    }

    /// Frees a finished future's slot and its place under the limit.
    fn retire(&self, index: usize) {
        let mut t = lock(&self.inner.tasks);
        let token = mem::take(&mut t.slots[index].token);
        if let Some(s) = &mut t.sem {
            if token == s.id {
                s.used -= 1;
            }
        }
        t.free.push(index);
        self.inner.active.fetch_sub(1, Ordering::Release);
    }
}

/// The future returned by [`TaskGroup::go`].
///
/// # Cancel safety
///
/// Dropping it before it completes drops the future it was to add, unstarted; the group is
/// unchanged (the futures this one drove while it waited stay in the group).
///
/// ```
/// use gosync::errgroup::TaskGroup;
/// use std::pin::pin;
/// use std::future::Future;
/// use std::task::Context;
///
/// let g = TaskGroup::<String>::new();
/// g.set_limit(Some(1));
/// assert!(g.try_go(std::future::pending())); // takes the only slot, forever
/// let mut go = pin!(g.go(async { Ok(()) }));
/// let mut cx = Context::from_waker(std::task::Waker::noop());
/// assert!(go.as_mut().poll(&mut cx).is_pending()); // waits for a slot
/// assert_eq!(g.active(), 1);
/// ```
#[must_use = "futures do nothing unless polled: `go` adds the future when awaited"]
pub struct GoFuture<'g, 'a, E, F> {
    group: &'g TaskGroup<'a, E>,
    fut: Option<F>,
    ticket: Option<Ticket>,
    origin: Origin,
}

// `F` is moved into a box when added, never pinned in place.
impl<E, F> Unpin for GoFuture<'_, '_, E, F> {}

impl<E, F> fmt::Debug for GoFuture<'_, '_, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoFuture")
            .field("added", &self.fut.is_none())
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}

impl<'a, E: Send + 'a, F> Future for GoFuture<'_, 'a, E, F>
where
    F: Future<Output = Result<(), E>> + Send + 'a,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        let group = this.group;
        loop {
            let Some(fut) = this.fut.take() else {
                panic!("`GoFuture` polled after completion");
            };
            match group.try_insert(fut) {
                Ok(()) => return Poll::Ready(()),
                Err(fut) => this.fut = Some(fut),
            }
            let ready = group.inner.shared.drive.poll(
                cx,
                &mut this.ticket,
                this.origin,
                true,
                || group.has_room(),
                || {
                    group.round();
                    None::<()>
                },
            );
            if ready.is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl<E, F> Drop for GoFuture<'_, '_, E, F> {
    fn drop(&mut self) {
        if self.fut.is_none() {
            return;
        }
        let drive = &self.group.inner.shared.drive;
        match self.ticket.take() {
            Some(t) => drive.cancel(&t),
            None => drive.pass_on(),
        }
    }
}

/// The future returned by [`TaskGroup::wait_async`].
///
/// # Panics
///
/// When polled to completion, as [`TaskGroup::wait_async`].
///
/// # Cancel safety
///
/// Dropping it mid-way loses nothing: the futures stay in the group.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::errgroup::TaskGroup;
/// use std::future::Future;
/// use std::task::Context;
///
/// let ch = Chan::new(1);
/// let g = TaskGroup::<String>::new();
/// let rx = ch.clone();
/// assert!(g.try_go(async move {
///     rx.recv_async().await;
///     Ok(())
/// }));
/// let mut cx = Context::from_waker(std::task::Waker::noop());
/// {
///     let mut wait = std::pin::pin!(g.wait_async());
///     assert!(wait.as_mut().poll(&mut cx).is_pending()); // the future waits for a value
/// } // dropped: the future stays in the group
/// assert_eq!(g.active(), 1);
/// ch.send(()).unwrap();
/// assert_eq!(g.wait(), Ok(()));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct TaskWaitFuture<'g, 'a, E> {
    group: &'g TaskGroup<'a, E>,
    ticket: Option<Ticket>,
    origin: Origin,
}

impl<E> fmt::Debug for TaskWaitFuture<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskWaitFuture")
            .field("queued", &self.ticket.is_some())
            .finish()
    }
}

impl<'a, E: Send + Clone + 'a> Future for TaskWaitFuture<'_, 'a, E> {
    type Output = Result<(), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), E>> {
        let this = self.get_mut();
        let group = this.group;
        let ready = group.inner.shared.drive.poll(
            cx,
            &mut this.ticket,
            this.origin,
            true,
            || group.is_idle(),
            || {
                group.round();
                None::<()>
            },
        );
        match ready {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => Poll::Ready(group.inner.outcome.finish()),
        }
    }
}

impl<E> Drop for TaskWaitFuture<'_, '_, E> {
    fn drop(&mut self) {
        let drive = &self.group.inner.shared.drive;
        match self.ticket.take() {
            Some(t) => drive.cancel(&t),
            None => drive.pass_on(),
        }
    }
}
