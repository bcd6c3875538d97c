//! One-time initialisation, as Go's `sync.Once`, for threads and async tasks alike.
//!
//! [`Once::call_once`] runs its function the first time it is called on a given `Once`, and
//! never again; callers that arrive while the function runs wait for it to finish, then return
//! without running theirs. [`Once::call_once_async`] does the same with an async initialiser,
//! from a task. Both forms share one `Once`: a thread may wait for a task's initialiser and the
//! other way round, and every such wait goes through the library's waiter queue, where
//! diagnostics can see it.
//!
//! [`OnceValue`] (Go's `sync.OnceValue`) and [`OnceFunc`] (Go's `sync.OnceFunc`) are built on
//! it.
//!
//! # Happens-before
//!
//! In the terminology of the Go memory model, the return of the function run by `call_once`
//! (or the completion of the initialiser future) synchronizes before the return of any
//! `call_once` / `call_once_async` on the same `Once`.
//!
//! # Panics and poisoning
//!
//! As in Go, a function that panics still counts as done: the panic propagates to the caller
//! whose function it was, and every later call returns at once. There is no poisoning (unlike
//! `std::sync::Once`): a `Once` whose function panicked is simply done. Use [`OnceValue`] to
//! learn whether a value was produced.
//!
//! A function that calls `call_once` on its own `Once` from the thread that runs it would wait
//! for itself forever (Go deadlocks); here it panics with
//! `"sync: Once.Do called recursively from its own f"`. That panic unwinds through the function,
//! so the `Once` counts as done.
//!
//! # States
//!
//! * `INCOMPLETE`: no function has completed. A caller's CAS moves it to `RUNNING`.
//! * `RUNNING`: one caller runs its function. The runner moves it to `DONE` when the function
//!   returns or panics, or back to `INCOMPLETE` when its async initialiser is dropped unfinished.
//! * `DONE`: final.
//!
//! A caller that finds `RUNNING` queues, re-checking the state under the queue lock; the runner
//! changes the state *before* it takes the queue lock to wake everyone, so no waiter can queue
//! after the wake-up and sleep forever. The done fast path is one acquire load.
//!
//! # Cancel safety
//!
//! Dropping a [`CallOnceFuture`] that waits for another caller takes it out of the queue.
//! Dropping one whose initialiser is running (it started but has not completed) cancels the
//! initialisation: the initialiser future is dropped, the `Once` goes back to *not done*, and
//! one of the waiting callers (or the next to arrive) runs its own initialiser instead. A
//! `Once` therefore never stays stuck "running" because a future was dropped.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use crate::loom::thread::{self, ThreadId};
use crate::loom::{AtomicBool, AtomicU32, Mutex, Ordering};
use crate::sema::{wake_all, Origin, Queue, ThreadWait, Ticket, WaitKind, WaitRecord, Waiter};

const INCOMPLETE: u32 = 0;
const RUNNING: u32 = 1;
const DONE: u32 = 2;

/// Token for waiters when the function has completed.
const FINISHED: u32 = 1;
/// Token for waiters when the runner gave up (its future was dropped): try again.
const RETRY: u32 = 2;

const RECURSIVE: &str = "sync: Once.Do called recursively from its own f";

/// Runs a function exactly once, as Go's `sync.Once`.
///
/// The first [`call_once`](Self::call_once) (or [`call_once_async`](Self::call_once_async))
/// runs its function; concurrent callers wait until it returns; later callers return at once.
/// A panicking function counts as done (no poisoning).
///
/// In the terminology of the Go memory model, the return of the function synchronizes before
/// the return of any `call_once` on the same `Once`.
///
/// # Panics, poisoning and recursion
///
/// As in Go, a function that panics still counts as done: the panic propagates to the caller
/// whose function it was, and every later call returns at once. There is no poisoning (unlike
/// `std::sync::Once`). A function that calls `call_once` on its own `Once` from the thread that
/// runs it would wait for itself forever (Go deadlocks); here it panics with
/// `"sync: Once.Do called recursively from its own f"`.
///
/// # Threads and tasks
///
/// Callers that arrive while the function runs wait in the library's waiter queue, threads
/// parked and tasks suspended, whichever form started the function. If the future of a
/// [`call_once_async`](Self::call_once_async) whose initialiser is running is dropped, the
/// initialisation is cancelled and the `Once` is not done: the next caller runs its own
/// function. The done fast path is one acquire load.
///
/// ```
/// use gosync::sync::Once;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static INIT: Once = Once::new();
/// static CALLS: AtomicUsize = AtomicUsize::new(0);
///
/// let handles: Vec<_> = (0..4)
///     .map(|_| std::thread::spawn(|| INIT.call_once(|| {
///         CALLS.fetch_add(1, Ordering::Relaxed);
///     })))
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(CALLS.load(Ordering::Relaxed), 1);
/// assert!(INIT.is_done());
/// ```
pub struct Once {
    state: AtomicU32,
    /// The thread running the function (for a sync call) or polling the initialiser (for an
    /// async one, only while a poll is in progress); for recursion detection.
    runner: Mutex<Option<ThreadId>>,
    queue: Queue,
}

impl Default for Once {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.load(Ordering::Relaxed) {
            INCOMPLETE => "incomplete",
            RUNNING => "running",
            _ => "done",
        };
        f.debug_struct("Once")
            .field("state", &state)
            .field("waiters", &self.queue.len())
            .finish()
    }
}

impl Once {
    /// A new `Once` whose function has not run.
    ///
    /// ```
    /// static ONCE: gosync::sync::Once = gosync::sync::Once::new();
    /// assert!(!ONCE.is_done());
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new() -> Self {
        Once {
            state: AtomicU32::new(INCOMPLETE),
            runner: Mutex::new(None),
            queue: Queue::new(),
        }
    }

    /// A new `Once` whose function has not run.
    #[cfg(loom)]
    #[track_caller]
    pub fn new() -> Self {
        Once {
            state: AtomicU32::new(INCOMPLETE),
            runner: Mutex::new(None),
            queue: Queue::new(),
        }
    }

    /// Runs `f` if no function has completed on this `Once` and none is running; waits for the
    /// running one otherwise. When this returns, a function has completed (or panicked).
    ///
    /// # Panics
    ///
    /// * If `f` panics, the panic propagates to this caller; the `Once` counts as done.
    /// * With `"sync: Once.Do called recursively from its own f"` if called from inside the
    ///   function this `Once` is running, on the same thread.
    ///
    /// ```
    /// use gosync::sync::Once;
    ///
    /// let once = Once::new();
    /// let mut runs = 0;
    /// once.call_once(|| runs += 1);
    /// once.call_once(|| runs += 1);
    /// assert_eq!(runs, 1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.state.load(Ordering::Acquire) == DONE {
            return;
        }
        self.call_once_slow(Origin::here(WaitKind::Once), f);
    }

    /// The async form of [`call_once`](Self::call_once): if no initialiser has completed and
    /// none is running, calls `f` and awaits the future it returns; otherwise waits for the
    /// running one.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::sync::Once;
    ///
    /// let once = Once::new();
    /// once.call_once_async(|| async {
    ///     // e.g. open a connection
    /// })
    /// .await;
    /// assert!(once.is_done());
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// When polled: if the initialiser (`f` or its future) panics, the panic propagates and the
    /// `Once` counts as done. A recursive call is detected, and panics as in `call_once`, when
    /// it is made on the thread that is polling the initialiser, during that poll — that is,
    /// when the initialiser itself awaits `call_once_async` on its own `Once` or calls
    /// `call_once`. A wait on the `Once` from elsewhere that the initialiser needs to finish
    /// (e.g. it awaits a task that awaits the same `Once`) is not detected.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits for another caller's initialiser takes it out of the
    /// queue. Dropping it while its own initialiser runs drops the initialiser future and
    /// returns the `Once` to *not done*: the next caller (a waiting one, or a later one) runs
    /// its own initialiser. Whatever the dropped initialiser did before it was dropped stays
    /// done, so initialisers that may be cancelled should be safe to restart.
    #[track_caller]
    pub fn call_once_async<F, Fut>(&self, f: F) -> CallOnceFuture<'_, F, Fut>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        CallOnceFuture {
            once: self,
            origin: Origin::here(WaitKind::Once),
            f: Some(f),
            state: Step::Start,
        }
    }

    /// Whether a function has completed (returned or panicked) on this `Once`. One acquire load:
    /// when it returns `true`, the function's effects are visible.
    ///
    /// ```
    /// let once = gosync::sync::Once::new();
    /// assert!(!once.is_done());
    /// once.call_once(|| {});
    /// assert!(once.is_done());
    /// ```
    #[inline]
    pub fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// The number of callers waiting for the running function (a snapshot).
    ///
    /// ```
    /// let once = gosync::sync::Once::new();
    /// assert_eq!(once.waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.queue.len()
    }

    /// Who waits for the running function, where, and for how long, in arrival order.
    ///
    /// ```
    /// let once = gosync::sync::Once::new();
    /// assert!(once.waiting().is_empty());
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.queue.records()
    }

    #[cold]
    fn call_once_slow<F: FnOnce()>(&self, origin: Origin, f: F) {
        loop {
            match self.state.compare_exchange(
                INCOMPLETE,
                RUNNING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // Finishes DONE when dropped: after `f` returns, and if it panics.
                    let runner = Runner::enter(self, DONE);
                    f();
                    drop(runner);
                    return;
                }
                Err(DONE) => return,
                Err(_) => {
                    self.check_recursion();
                    let origin = origin.on(self.queue.ident());
                    let waiter = Waiter::new(origin, None, None);
                    let Some(ticket) = self.enqueue(&waiter) else {
                        continue;
                    };
                    let wait = ThreadWait::enter(&origin, Some(waiter.since()));
                    let token = ticket.waiter().park(None);
                    drop(wait);
                    drop(ticket);
                    Waiter::recycle(waiter);
                    if token == Some(FINISHED) {
                        return;
                    }
                }
            }
        }
    }

    /// Panics if the calling thread is the one running this `Once`'s function.
    fn check_recursion(&self) {
        let me = thread::current().id();
        if *lock(&self.runner) == Some(me) {
            panic!("{RECURSIVE}");
        }
    }

    fn set_runner(&self, runner: Option<ThreadId>) {
        *lock(&self.runner) = runner;
    }

    /// Queues `waiter` if a function is running; `None` if not (the caller looks again).
    fn enqueue(&self, waiter: &crate::loom::Arc<Waiter>) -> Option<Ticket> {
        let mut q = self.queue.lock();
        if self.state.load(Ordering::Relaxed) != RUNNING {
            return None;
        }
        Some(q.push(waiter, false))
    }

    /// The runner is finished: `DONE`, or `INCOMPLETE` if it gave up. Wakes every waiter.
    fn finish(&self, outcome: u32) {
        self.set_runner(None);
        // Release: the function's effects happen before anyone sees DONE.
        self.state.store(outcome, Ordering::Release);
        let token = if outcome == DONE { FINISHED } else { RETRY };
        let list = self.queue.lock().notify_all(token);
        // Resumed only if this thread is not unwinding already (a panicking `f`).
        wake_all(list).resume();
    }

    /// A queued async waiter gave up. If it had been notified there is nothing to pass on:
    /// every waiter is notified together.
    fn cancel(&self, ticket: &Ticket) {
        self.queue.lock().remove(ticket);
    }
}

fn lock<T>(m: &Mutex<T>) -> crate::loom::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks the calling thread as the runner while it lives; when dropped, finishes the `Once`
/// with `outcome` — including when dropped by a panic unwinding through the function.
/// [`Runner::leave`] ends the scope without finishing.
struct Runner<'a> {
    once: &'a Once,
    outcome: u32,
}

impl<'a> Runner<'a> {
    fn enter(once: &'a Once, outcome: u32) -> Self {
        once.set_runner(Some(thread::current().id()));
        Runner { once, outcome }
    }

    /// The initialiser is suspended, not finished: just forget the runner thread.
    fn leave(self) {
        self.once.set_runner(None);
        mem::forget(self);
    }
}

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        self.once.finish(self.outcome);
    }
}

/// Where a [`CallOnceFuture`] is.
enum Step<Fut> {
    /// Not yet looked at the `Once`, or told to look again.
    Start,
    /// Queued behind another caller's initialiser.
    Waiting(Ticket),
    /// Running its own initialiser.
    Running(Pin<Box<Fut>>),
    /// Completed (or its initialiser panicked).
    Done,
}

/// The future returned by [`Once::call_once_async`].
///
/// # Cancel safety
///
/// Dropping it while it waits takes it out of the queue; dropping it while its initialiser runs
/// drops the initialiser and lets the next caller initialise.
#[must_use = "futures do nothing unless polled"]
pub struct CallOnceFuture<'a, F, Fut> {
    once: &'a Once,
    origin: Origin,
    f: Option<F>,
    state: Step<Fut>,
}

// `F` is only ever moved out of its `Option`, never pinned, and the initialiser future is
// boxed, so nothing in the future is structurally pinned.
impl<F, Fut> Unpin for CallOnceFuture<'_, F, Fut> {}

impl<F, Fut> fmt::Debug for CallOnceFuture<'_, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match self.state {
            Step::Start => "start",
            Step::Waiting(_) => "waiting",
            Step::Running(_) => "running",
            Step::Done => "done",
        };
        f.debug_struct("CallOnceFuture")
            .field("step", &step)
            .finish()
    }
}

impl<F, Fut> Future for CallOnceFuture<'_, F, Fut>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let once = this.once;
        loop {
            // While we hold the step, `this.state` is `Done`: if anything below panics, the
            // future's drop has nothing to undo (a panicking initialiser counts as done).
            match mem::replace(&mut this.state, Step::Done) {
                Step::Done => return Poll::Ready(()),
                Step::Running(mut fut) => {
                    let runner = Runner::enter(once, DONE);
                    match fut.as_mut().poll(cx) {
                        Poll::Ready(()) => {
                            drop(runner); // finishes DONE
                            return Poll::Ready(());
                        }
                        Poll::Pending => {
                            runner.leave();
                            this.state = Step::Running(fut);
                            return Poll::Pending;
                        }
                    }
                }
                Step::Waiting(ticket) => match ticket.waiter().poll(cx) {
                    Poll::Pending => {
                        this.state = Step::Waiting(ticket);
                        return Poll::Pending;
                    }
                    Poll::Ready(FINISHED) => return Poll::Ready(()),
                    Poll::Ready(_) => this.state = Step::Start,
                },
                Step::Start => {
                    match once.state.compare_exchange(
                        INCOMPLETE,
                        RUNNING,
                        Ordering::Acquire,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            let f = this.f.take().expect("CallOnceFuture polled after start");
                            let runner = Runner::enter(once, DONE);
                            let fut = f();
                            runner.leave();
                            this.state = Step::Running(Box::pin(fut));
                        }
                        Err(DONE) => return Poll::Ready(()),
                        Err(_) => {
                            this.state = Step::Start;
                            once.check_recursion();
                            let origin = this.origin.on(once.queue.ident());
                            let waiter = Waiter::new(origin, None, Some(cx));
                            if let Some(ticket) = once.enqueue(&waiter) {
                                this.state = Step::Waiting(ticket);
                                return Poll::Pending;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<F, Fut> Drop for CallOnceFuture<'_, F, Fut> {
    fn drop(&mut self) {
        match mem::replace(&mut self.state, Step::Done) {
            Step::Waiting(ticket) => self.once.cancel(&ticket),
            Step::Running(fut) => {
                // Cancelled mid-way: not done. Drop the initialiser first (as its runner, so a
                // recursive call from its drop is caught), then let the next caller run.
                let runner = Runner::enter(self.once, INCOMPLETE);
                drop(fut);
                drop(runner);
            }
            Step::Start | Step::Done => {}
        }
    }
}

/// A value computed once, on first use, as Go's `sync.OnceValue`.
///
/// [`get`](Self::get) runs the function the first time and returns a reference to its value
/// then and ever after; concurrent callers wait for the first (threads with `get`, tasks with
/// [`get_async`](Self::get_async)). The function's return synchronizes before the return of
/// every `get`.
///
/// If the function panics, the panic propagates to the caller that ran it, and every later
/// `get` panics with `"sync: OnceValue function panicked"` (Go re-panics with the original
/// value; a Rust panic payload cannot be replayed).
///
/// ```
/// use gosync::sync::OnceValue;
///
/// static CONFIG: OnceValue<String> = OnceValue::new(|| "loaded".to_string());
///
/// assert_eq!(CONFIG.get(), "loaded");
/// assert_eq!(CONFIG.get(), "loaded"); // computed once
/// ```
pub struct OnceValue<T, F = fn() -> T> {
    once: Once,
    init: Mutex<Option<F>>,
    value: OnceLock<T>,
}

impl<T: fmt::Debug, F> fmt::Debug for OnceValue<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OnceValue");
        match self.value.get() {
            Some(v) => d.field("value", v),
            None => d.field("value", &format_args!("<uninit>")),
        };
        d.finish()
    }
}

impl<T, F> OnceValue<T, F> {
    /// A value that `f` will compute on first use.
    ///
    /// ```
    /// let v = gosync::sync::OnceValue::new(|| 6 * 7);
    /// assert_eq!(*v.get(), 42);
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new(f: F) -> Self {
        OnceValue {
            once: Once::new(),
            init: Mutex::new(Some(f)),
            value: OnceLock::new(),
        }
    }

    /// A value that `f` will compute on first use.
    #[cfg(loom)]
    #[track_caller]
    pub fn new(f: F) -> Self {
        OnceValue {
            once: Once::new(),
            init: Mutex::new(Some(f)),
            value: OnceLock::new(),
        }
    }

    /// The value if it has been computed, without waiting or computing it.
    ///
    /// ```
    /// let v = gosync::sync::OnceValue::new(|| 1);
    /// assert_eq!(v.try_get(), None);
    /// v.get();
    /// assert_eq!(v.try_get(), Some(&1));
    /// ```
    pub fn try_get(&self) -> Option<&T> {
        self.value.get()
    }
}

impl<T, F: FnOnce() -> T> OnceValue<T, F> {
    /// The value, computed by this call if no call has computed it yet; waits (parks the thread)
    /// while another caller computes it.
    ///
    /// # Panics
    ///
    /// If the function panics: in the caller that ran it, with the function's panic; in every
    /// other and later caller with `"sync: OnceValue function panicked"`.
    ///
    /// ```
    /// use gosync::sync::OnceValue;
    /// use std::sync::Arc;
    ///
    /// let v = Arc::new(OnceValue::new(|| vec![1, 2, 3]));
    /// let v2 = v.clone();
    /// let t = std::thread::spawn(move || v2.get().len());
    /// assert_eq!(v.get().len(), 3);
    /// assert_eq!(t.join().unwrap(), 3);
    /// ```
    #[inline]
    #[track_caller]
    pub fn get(&self) -> &T {
        if let Some(v) = self.value.get() {
            return v;
        }
        self.once
            .call_once_slow(Origin::here(WaitKind::Once), || self.compute());
        self.computed()
    }

    /// The async form of [`get`](Self::get): a task waits without blocking its thread while
    /// another caller computes the value. The function itself is synchronous and runs inside
    /// the poll of whichever caller gets to run it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits takes it out of the queue. (Once the function runs
    /// it runs to completion within one poll, so it cannot be cancelled mid-way.)
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let v = gosync::sync::OnceValue::new(|| "ready");
    /// assert_eq!(*v.get_async().await, "ready");
    /// # });
    /// ```
    #[track_caller]
    pub fn get_async(&self) -> impl Future<Output = &T> + '_ {
        let call = self.once.call_once_async(move || {
            self.compute();
            std::future::ready(())
        });
        async move {
            if let Some(v) = self.value.get() {
                return v;
            }
            call.await;
            self.computed()
        }
    }

    fn compute(&self) {
        let f = lock(&self.init).take();
        if let Some(f) = f {
            let _ = self.value.set(f());
        }
    }

    fn computed(&self) -> &T {
        match self.value.get() {
            Some(v) => v,
            None => panic!("sync: OnceValue function panicked"),
        }
    }
}

/// A function that runs at most once, however often it is called, as Go's `sync.OnceFunc`.
///
/// [`call`](Self::call) runs the function the first time; concurrent callers wait for it, and
/// later calls return at once. The function's return synchronizes before the return of every
/// `call`.
///
/// If the function panics, the panic propagates to the caller that ran it, and every later
/// `call` panics with `"sync: OnceFunc function panicked"` (Go re-panics with the original
/// value; a Rust panic payload cannot be replayed).
///
/// ```
/// use gosync::sync::OnceFunc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let closes = AtomicUsize::new(0);
/// let close = OnceFunc::new(|| {
///     closes.fetch_add(1, Ordering::Relaxed);
/// });
/// close.call();
/// close.call();
/// assert_eq!(closes.load(Ordering::Relaxed), 1);
/// ```
pub struct OnceFunc<F> {
    once: Once,
    f: Mutex<Option<F>>,
    panicked: AtomicBool,
}

impl<F> fmt::Debug for OnceFunc<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceFunc")
            .field("done", &self.once.is_done())
            .finish()
    }
}

impl<F: FnOnce()> OnceFunc<F> {
    /// Wraps `f` so that it runs at most once.
    ///
    /// ```
    /// let f = gosync::sync::OnceFunc::new(|| println!("hello, once"));
    /// f.call();
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new(f: F) -> Self {
        OnceFunc {
            once: Once::new(),
            f: Mutex::new(Some(f)),
            panicked: AtomicBool::new(false),
        }
    }

    /// Wraps `f` so that it runs at most once.
    #[cfg(loom)]
    #[track_caller]
    pub fn new(f: F) -> Self {
        OnceFunc {
            once: Once::new(),
            f: Mutex::new(Some(f)),
            panicked: AtomicBool::new(false),
        }
    }

    /// Runs the function if it has not run yet; waits while another caller runs it.
    ///
    /// # Panics
    ///
    /// If the function panics: in the caller that ran it, with the function's panic; in every
    /// later caller with `"sync: OnceFunc function panicked"`.
    ///
    /// ```
    /// let f = gosync::sync::OnceFunc::new(|| {});
    /// f.call();
    /// assert!(f.is_done());
    /// ```
    #[track_caller]
    pub fn call(&self) {
        if !self.once.is_done() {
            self.once.call_once_slow(Origin::here(WaitKind::Once), || {
                let f = lock(&self.f).take();
                if let Some(f) = f {
                    // Cleared when `f` returns; stays set if it unwinds.
                    self.panicked.store(true, Ordering::Relaxed);
                    f();
                    self.panicked.store(false, Ordering::Relaxed);
                }
            });
        }
        // The Once's DONE (acquire) orders this load after the function's stores.
        if self.panicked.load(Ordering::Relaxed) {
            panic!("sync: OnceFunc function panicked");
        }
    }

    /// Whether the function has run (returned or panicked).
    ///
    /// ```
    /// let f = gosync::sync::OnceFunc::new(|| {});
    /// assert!(!f.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.once.is_done()
    }
}
