//! The thread flavour: [`Group`], each function on an OS thread of a process-wide pool
//! (`pool.rs`), and [`scope`], each function on a scoped thread of its own.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use super::{lock, modify_limit_panic, Outcome};
use crate::chan::Chan;
use crate::context::{self, Context};
use crate::sync::{WaitGroup, WaitGroupFuture};

/// A group of OS threads working on parts of one job, as Go's `errgroup.Group`: [`go`]
/// runs a function on a thread of its own, [`wait`] waits for all of them and returns the
/// first error.
///
/// `Group` is a handle: clones share one group, so a function can start more functions in its
/// own group (move a clone into it). Threads and tasks may both wait for it
/// ([`wait`] / [`wait_async`]).
///
/// See the [module docs](super) for errors, panics, limits and the happens-before edges.
///
/// # Why threads
///
/// Go starts a goroutine; the nearest thing without a runtime is an OS thread, so each
/// function gets one, for as long as it runs. A function may block as long as it likes, as a
/// goroutine may. The functions are `'static`, as a goroutine's closure outlives its caller;
/// for functions that borrow from the caller, use [`scope`](super::scope). To run futures,
/// use a [`TaskGroup`](super::TaskGroup).
///
/// # Pooled threads
///
/// Spawning a thread costs far more than a goroutine, so [`go`] does not spawn one each time:
/// it hands the function to an idle thread of a process-wide pool, shared by every `Group`,
/// and spawns a new thread only when none is idle. So the pool grows to the number of
/// functions that run at once, and a function that blocks forever ties up its own thread
/// only. A thread that has been idle for 10 seconds exits (as Go's runtime lets its idle
/// threads go), so a process that is done with its groups has no pool threads left.
///
/// As on any thread pool:
///
/// * a function runs on a thread that may have run others before it, and the thread-locals it
///   sets may be seen by the functions after it (their destructors run when the thread exits,
///   not when the function returns): do not rely on a fresh thread;
/// * every pool thread is named `gosync-errgroup` (as panic messages show);
/// * a panic in a function does not end its thread: the group keeps it for [`wait`] to
///   re-raise, as always, and the thread goes back to the pool.
///
/// Idle pool threads are not waits of the program, so
/// [`diag::blocked`](crate::diag::blocked) does not list them; a `go` blocked on the limit,
/// or a `wait`, it does.
///
/// ```
/// use gosync::errgroup::Group;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let sum = Arc::new(AtomicUsize::new(0));
/// let g = Group::<String>::new();
/// for i in 1..=4 {
///     let sum = sum.clone();
///     g.go(move || {
///         sum.fetch_add(i, Ordering::Relaxed);
///         Ok(())
///     });
/// }
/// assert_eq!(g.wait(), Ok(()));
/// assert_eq!(sum.load(Ordering::Relaxed), 10);
/// ```
///
/// [`go`]: Self::go
/// [`wait`]: Self::wait
/// [`wait_async`]: Self::wait_async
pub struct Group<E> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    /// Counts the running functions.
    wg: WaitGroup,
    outcome: Outcome<E>,
    /// The limit, as Go's: a channel whose buffer holds one token per running function.
    sem: Mutex<Option<Chan<()>>>,
}

impl<E> Clone for Group<E> {
    fn clone(&self) -> Self {
        Group {
            inner: self.inner.clone(),
        }
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = lock(&self.inner.sem).as_ref().map(Chan::cap);
        f.debug_struct("Group")
            .field("active", &self.inner.wg.count())
            .field("limit", &limit)
            .field("failed", &self.inner.outcome.has_failed())
            .finish()
    }
}

impl<E: Send + Sync + 'static> Default for Group<E> {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

/// Ends a running function's turn when dropped: gives back its token and counts it done.
/// Made before the thread is spawned, so a failed spawn undoes itself as well.
struct Running<E> {
    inner: Arc<Inner<E>>,
    token: Option<Chan<()>>,
}

impl<E> Drop for Running<E> {
    fn drop(&mut self) {
        if let Some(sem) = &self.token {
            let _ = sem.try_recv();
        }
        self.inner.wg.done();
    }
}

impl<E: Send + Sync + 'static> Group<E> {
    /// A group with no limit and no context (Go's zero `errgroup.Group`).
    ///
    /// ```
    /// let g = gosync::errgroup::Group::<std::fmt::Error>::new();
    /// assert_eq!(g.wait(), Ok(())); // nothing to wait for
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        Group::build(Outcome::new(None))
    }

    /// A group and a context derived from `ctx` that is cancelled — with the error as its
    /// cause — the first time a function fails (or panics), or else when [`wait`](Self::wait)
    /// returns (Go's `errgroup.WithContext`).
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    /// use gosync::errgroup::Group;
    ///
    /// let (g, ctx) = Group::<&'static str>::with_context(&context::background());
    /// g.go(|| Err("no route"));
    /// assert_eq!(ctx.wait(), ContextError::Canceled);
    /// assert_eq!(ctx.cause().unwrap().to_string(), "no route");
    /// assert_eq!(g.wait(), Err("no route"));
    /// ```
    #[must_use]
    #[track_caller]
    pub fn with_context(ctx: &Context) -> (Self, Context)
    where
        E: Clone + Into<Box<dyn Error + Send + Sync>>,
    {
        let (ctx, cancel) = context::with_cancel_cause(ctx);
        (Group::build(Outcome::with_cancel(cancel)), ctx)
    }

    #[track_caller]
    fn build(outcome: Outcome<E>) -> Self {
        Group {
            inner: Arc::new(Inner {
                wg: WaitGroup::new(),
                outcome,
                sem: Mutex::new(None),
            }),
        }
    }

    /// Runs `f` on a thread of its own (Go's `Go`): an idle one of the pool, or a new one (see
    /// [pooled threads](Self#pooled-threads)). With a limit set, first blocks until fewer than
    /// the limit are running — forever with a limit of 0, as in Go.
    ///
    /// The first function to fail cancels the derived context, if any; [`wait`](Self::wait)
    /// returns its error.
    ///
    /// # Panics
    ///
    /// If no pool thread is idle and a new one cannot be spawned (the system is out of
    /// threads or memory), with `"errgroup: failed to spawn a thread: ..."`; the group is left
    /// as if `go` had not been called. A panic in `f` itself does not surface here:
    /// [`wait`](Self::wait) re-raises it.
    ///
    /// ```
    /// use gosync::errgroup::Group;
    ///
    /// let g = Group::<String>::new();
    /// let inner = g.clone();
    /// g.go(move || {
    ///     // a function may start more functions in its own group
    ///     inner.go(|| Err("nested failure".to_string()));
    ///     Ok(())
    /// });
    /// assert_eq!(g.wait(), Err("nested failure".to_string()));
    /// ```
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let token = self.sem();
        if let Some(sem) = &token {
            // Never closed, so this only returns once there is room.
            let _ = sem.send(());
        }
        self.spawn(token, f);
    }

    /// Runs `f` on a thread of its own, as [`go`](Self::go), only if fewer than the limit are
    /// running now; whether it did (Go's `TryGo`). Always `true` without a limit, always
    /// `false` with a limit of 0.
    ///
    /// # Panics
    ///
    /// As [`go`](Self::go), if no thread is idle and none can be spawned.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::errgroup::Group;
    ///
    /// let g = Group::<String>::new();
    /// g.set_limit(Some(1));
    /// let release = Chan::new(0);
    /// let r = release.clone();
    /// assert!(g.try_go(move || {
    ///     r.recv();
    ///     Ok(())
    /// }));
    /// assert!(!g.try_go(|| Ok(()))); // the one slot is taken
    /// release.send(()).unwrap();
    /// g.wait().unwrap();
    /// assert!(g.try_go(|| Ok(()))); // free again
    /// g.wait().unwrap();
    /// ```
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let token = self.sem();
        if let Some(sem) = &token {
            if sem.try_send(()).is_err() {
                return false;
            }
        }
        self.spawn(token, f);
        true
    }

    /// Limits the number of functions running at once to `n`; `None` removes the limit (Go's
    /// `SetLimit`, where a negative `n` means no limit). `Some(0)` refuses every new function.
    ///
    /// # Panics
    ///
    /// With Go's message, `"errgroup: modify limit while N goroutines in the group are still
    /// active"`, when setting `Some(n)` while `N > 0` functions started under the current limit
    /// are still running. (Functions started without a limit do not count, and removing the
    /// limit never panics, as in Go.)
    ///
    /// ```
    /// use gosync::errgroup::Group;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let g = Group::<String>::new();
    /// g.set_limit(Some(2));
    /// let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// for _ in 0..8 {
    ///     let (running, peak) = (running.clone(), peak.clone());
    ///     g.go(move || {
    ///         let now = running.fetch_add(1, Ordering::SeqCst) + 1;
    ///         peak.fetch_max(now, Ordering::SeqCst);
    ///         running.fetch_sub(1, Ordering::SeqCst);
    ///         Ok(())
    ///     });
    /// }
    /// g.wait().unwrap();
    /// assert!(peak.load(Ordering::SeqCst) <= 2);
    /// ```
    #[track_caller]
    pub fn set_limit(&self, n: Option<usize>) {
        let mut sem = lock(&self.inner.sem);
        let Some(n) = n else {
            *sem = None;
            return;
        };
        let active = sem.as_ref().map_or(0, Chan::len);
        if active != 0 {
            drop(sem);
            modify_limit_panic(active);
        }
        *sem = Some(Chan::new(n));
    }

    /// Blocks until every function started with [`go`](Self::go) or
    /// [`try_go`](Self::try_go) has returned, then returns the first error (Go's `Wait`),
    /// cancelling the derived context if it is not cancelled yet.
    ///
    /// The first error stays in the group: a later `wait` returns it again, as in Go.
    ///
    /// # Panics
    ///
    /// If a function panicked: once every function has returned, with the first panic's
    /// original payload (later `wait`s do not panic again). Also as
    /// [`WaitGroup::wait`](crate::sync::WaitGroup::wait) on misuse.
    ///
    /// ```
    /// use gosync::errgroup::Group;
    ///
    /// let g = Group::<String>::new();
    /// g.go(|| Err("first".into()));
    /// assert_eq!(g.wait(), Err("first".to_string()));
    /// g.go(|| Err("second".into()));
    /// assert_eq!(g.wait(), Err("first".to_string())); // the first error is kept
    /// ```
    #[track_caller]
    pub fn wait(&self) -> Result<(), E>
    where
        E: Clone,
    {
        self.inner.wg.wait();
        self.inner.outcome.finish()
    }

    /// The async form of [`wait`](Self::wait): a task waits for the group's threads without
    /// blocking its own.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves the group unchanged: the functions run
    /// on, and a later `wait` reports their outcome.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::errgroup::Group;
    ///
    /// let g = Group::<String>::new();
    /// g.go(|| Ok(()));
    /// assert_eq!(g.wait_async().await, Ok(()));
    /// # });
    /// ```
    #[track_caller]
    pub fn wait_async(&self) -> WaitFuture<'_, E>
    where
        E: Clone,
    {
        WaitFuture {
            group: self,
            wait: self.inner.wg.wait_async(),
        }
    }

    /// The number of functions running now (a snapshot).
    ///
    /// ```
    /// let g = gosync::errgroup::Group::<String>::new();
    /// assert_eq!(g.active(), 0);
    /// ```
    pub fn active(&self) -> usize {
        self.inner.wg.count()
    }

    fn sem(&self) -> Option<Chan<()>> {
        lock(&self.inner.sem).clone()
    }

    fn spawn<F>(&self, token: Option<Chan<()>>, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        self.inner.wg.add(1);
        let running = Running {
            inner: self.inner.clone(),
            token,
        };
        // On failure the job, and with it `running`, was dropped: the group is as before.
        if let Err(e) = start(PoolJob {
            running,
            f: Some(f),
        }) {
            panic!("errgroup: failed to spawn a thread: {e}");
        }
    }
}

/// A function of a [`Group`] on its way to a thread: `run` calls it, and dropping the job (its
/// `running`) counts it done — which the pool does only once the thread is idle again.
struct PoolJob<E, F> {
    running: Running<E>,
    f: Option<F>,
}

impl<E, F> PoolJob<E, F>
where
    E: Send + Sync + 'static,
    F: FnOnce() -> Result<(), E> + Send + 'static,
{
    fn run_once(&mut self) {
        if let Some(f) = self.f.take() {
            self.running.inner.outcome.run(f);
        }
    }
}

#[cfg(not(loom))]
impl<E, F> super::pool::Job for PoolJob<E, F>
where
    E: Send + Sync + 'static,
    F: FnOnce() -> Result<(), E> + Send + 'static,
{
    fn run(&mut self) {
        self.run_once();
    }
}

/// Hands `job` to an idle thread of the pool, or a new one.
#[cfg(not(loom))]
fn start<E, F>(job: PoolJob<E, F>) -> std::io::Result<()>
where
    E: Send + Sync + 'static,
    F: FnOnce() -> Result<(), E> + Send + 'static,
{
    super::pool::execute(Box::new(job))
}

/// Under loom there is no pool (its threads would outlive a model run): a thread per job.
#[cfg(loom)]
fn start<E, F>(mut job: PoolJob<E, F>) -> std::io::Result<()>
where
    E: Send + Sync + 'static,
    F: FnOnce() -> Result<(), E> + Send + 'static,
{
    std::thread::Builder::new()
        .spawn(move || job.run_once())
        .map(drop)
}

/// The future returned by [`Group::wait_async`].
///
/// # Panics
///
/// When polled to completion, as [`Group::wait`].
///
/// # Cancel safety
///
/// Dropping it before it completes takes it out of the group's wait queue; the group is
/// unchanged.
///
/// ```
/// # futures::executor::block_on(async {
/// let g = gosync::errgroup::Group::<String>::new();
/// g.go(|| Err("late".to_string()));
/// let wait: gosync::errgroup::WaitFuture<'_, String> = g.wait_async();
/// assert_eq!(wait.await, Err("late".to_string()));
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct WaitFuture<'a, E> {
    group: &'a Group<E>,
    wait: WaitGroupFuture<'a>,
}

impl<E> fmt::Debug for WaitFuture<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitFuture")
            .field("wait", &self.wait)
            .finish()
    }
}

impl<E: Clone> Future for WaitFuture<'_, E> {
    type Output = Result<(), E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<(), E>> {
        match Pin::new(&mut self.wait).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(self.group.inner.outcome.finish()),
        }
    }
}

/// Runs `f` with a [`Scope`] in which functions that borrow from the caller can be started on
/// threads, then waits for all of them and returns `f`'s value, or the first error — as
/// [`Group`] with [`std::thread::scope`]'s borrowing.
///
/// Every thread started in the scope is joined before `scope` returns, so the functions may
/// borrow anything that outlives the call (`'env`). Limits, errors and panics behave as in a
/// [`Group`]: a panic in a function is re-raised (with its payload) once every thread has been
/// joined; a panic in `f` itself propagates as `std::thread::scope` propagates it, also after
/// every thread has been joined.
///
/// ```
/// use gosync::errgroup;
///
/// let data = vec![1, 2, 3, 4, 5, 6];
/// let mut sums = [0; 3];
/// let r = errgroup::scope(|s| {
///     for (chunk, sum) in data.chunks(2).zip(sums.iter_mut()) {
///         s.go(move || {
///             *sum = chunk.iter().sum();
///             if *sum > 100 { Err("too big") } else { Ok(()) }
///         });
///     }
/// });
/// assert_eq!(r, Ok(()));
/// assert_eq!(sums, [3, 7, 11]);
/// ```
#[track_caller]
pub fn scope<'env, E, F, R>(f: F) -> Result<R, E>
where
    E: Clone + Send + Sync + 'env,
    F: for<'scope> FnOnce(&Scope<'scope, 'env, E>) -> R,
{
    run_scope(Outcome::new(None), f)
}

/// [`scope`] with a context derived from `ctx`, cancelled with the first error as its cause
/// (or when the scope ends), as [`Group::with_context`]. `f` gets the scope and the context
/// (a handle: clone it into the functions that need it).
///
/// ```
/// use gosync::context::{self, ContextError};
/// use gosync::errgroup;
///
/// let limit = 3;
/// let r: Result<(), String> = errgroup::scope_with_context(&context::background(), |s, ctx| {
///     s.go(move || {
///         assert_eq!(ctx.wait(), ContextError::Canceled); // stops when the other fails
///         Ok(())
///     });
///     s.go(|| Err(format!("over the limit of {limit}"))); // borrows `limit`
/// });
/// assert_eq!(r, Err("over the limit of 3".to_string()));
/// ```
#[track_caller]
pub fn scope_with_context<'env, E, F, R>(ctx: &Context, f: F) -> Result<R, E>
where
    E: Clone + Send + Sync + Into<Box<dyn Error + Send + Sync>> + 'env,
    F: for<'scope> FnOnce(&Scope<'scope, 'env, E>, Context) -> R,
{
    let (ctx, cancel) = context::with_cancel_cause(ctx);
    run_scope(Outcome::with_cancel(cancel), move |s| f(s, ctx))
}

#[track_caller]
fn run_scope<'env, E, F, R>(outcome: Outcome<E>, f: F) -> Result<R, E>
where
    E: Clone + Send + Sync + 'env,
    F: for<'scope> FnOnce(&Scope<'scope, 'env, E>) -> R,
{
    let state = Arc::new(ScopeState {
        outcome,
        sem: Mutex::new(None),
    });
    let r = std::thread::scope(|s| {
        f(&Scope {
            threads: s,
            state: state.clone(),
        })
    });
    state.outcome.finish().map(|()| r)
}

struct ScopeState<E> {
    outcome: Outcome<E>,
    sem: Mutex<Option<Chan<()>>>,
}

/// A scope to start borrowing functions in: see [`scope`]. A cheap handle: a function can
/// take a clone and start more functions in the same scope.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let count = AtomicUsize::new(0);
/// let r = gosync::errgroup::scope(|s| {
///     let inner = s.clone();
///     let count = &count;
///     s.go(move || {
///         inner.go(move || {
///             count.fetch_add(1, Ordering::Relaxed);
///             Ok::<(), String>(())
///         });
///         Ok(())
///     });
/// });
/// assert_eq!(r, Ok(()));
/// assert_eq!(count.into_inner(), 1);
/// ```
pub struct Scope<'scope, 'env: 'scope, E> {
    threads: &'scope std::thread::Scope<'scope, 'env>,
    state: Arc<ScopeState<E>>,
}

impl<E> Clone for Scope<'_, '_, E> {
    fn clone(&self) -> Self {
        Scope {
            threads: self.threads,
            state: self.state.clone(),
        }
    }
}

impl<E> fmt::Debug for Scope<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = lock(&self.state.sem).as_ref().map(Chan::cap);
        f.debug_struct("Scope")
            .field("limit", &limit)
            .field("failed", &self.state.outcome.has_failed())
            .finish()
    }
}

/// Gives back a scoped function's token when dropped.
struct Token(Option<Chan<()>>);

impl Drop for Token {
    fn drop(&mut self) {
        if let Some(sem) = &self.0 {
            let _ = sem.try_recv();
        }
    }
}

impl<'scope, E: Send + Sync + 'scope> Scope<'scope, '_, E> {
    /// Runs `f` on a new scoped thread, as [`Group::go`]: blocks first while the limit is
    /// reached.
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned.
    ///
    /// ```
    /// let mut hits = 0;
    /// let r = gosync::errgroup::scope(|s| {
    ///     s.go(|| {
    ///         hits += 1;
    ///         Ok::<(), String>(())
    ///     });
    /// });
    /// assert_eq!((r, hits), (Ok(()), 1));
    /// ```
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        let token = lock(&self.state.sem).clone();
        if let Some(sem) = &token {
            let _ = sem.send(());
        }
        self.spawn(Token(token), f);
    }

    /// Runs `f` on a new scoped thread only if fewer than the limit are running, as
    /// [`Group::try_go`]; whether it did.
    ///
    /// ```
    /// let r = gosync::errgroup::scope(|s| {
    ///     s.set_limit(Some(0));
    ///     assert!(!s.try_go(|| Ok::<(), String>(())));
    /// });
    /// assert_eq!(r, Ok(()));
    /// ```
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        let token = lock(&self.state.sem).clone();
        if let Some(sem) = &token {
            if sem.try_send(()).is_err() {
                return false;
            }
        }
        self.spawn(Token(token), f);
        true
    }

    /// Limits the number of functions running at once in this scope, as
    /// [`Group::set_limit`] (with its misuse panic).
    ///
    /// ```
    /// let r = gosync::errgroup::scope(|s| {
    ///     s.set_limit(Some(1));
    ///     for _ in 0..3 {
    ///         s.go(|| Ok::<(), String>(())); // one at a time
    ///     }
    /// });
    /// assert_eq!(r, Ok(()));
    /// ```
    #[track_caller]
    pub fn set_limit(&self, n: Option<usize>) {
        let mut sem = lock(&self.state.sem);
        let Some(n) = n else {
            *sem = None;
            return;
        };
        let active = sem.as_ref().map_or(0, Chan::len);
        if active != 0 {
            drop(sem);
            modify_limit_panic(active);
        }
        *sem = Some(Chan::new(n));
    }

    fn spawn<F>(&self, token: Token, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        let state = self.state.clone();
        let spawned = std::thread::Builder::new().spawn_scoped(self.threads, move || {
            let _token = token;
            state.outcome.run(f);
        });
        if let Err(e) = spawned {
            panic!("errgroup: failed to spawn a thread: {e}");
        }
    }
}
