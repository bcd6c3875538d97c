//! Go's `time` package, the channel half: [`after`], [`tick`], [`Timer`], [`Ticker`], and
//! [`sleep`] / [`sleep_async`].
//!
//! Timers deliver on a channel, as in Go, so a timeout is one more arm of a
//! [`select!`](crate::select):
//!
//! ```
//! use gosync::chan::Chan;
//! use gosync::{select, time};
//! use std::time::Duration;
//!
//! let replies: Chan<u32> = Chan::new(0); // nobody answers
//! let answer = select! {
//!     recv(replies) -> v => v,
//!     recv(time::after(Duration::from_millis(10))) -> _ => None, // gave up waiting
//! };
//! assert_eq!(answer, None);
//! ```
//!
//! | Go                                   | gosync                                         |
//! |--------------------------------------|------------------------------------------------|
//! | `time.After(d)`                      | [`after`], [`after_deadline`]                  |
//! | `time.Tick(d)`                       | [`tick`]                                       |
//! | `time.NewTimer(d)`, `t.C`            | [`Timer::new`], [`Timer::c`]                   |
//! | `t.Stop()`, `t.Reset(d)`             | [`Timer::stop`], [`Timer::reset`]              |
//! | `time.NewTicker(d)`, `t.C`           | [`Ticker::new`], [`Ticker::c`]                 |
//! | `t.Stop()`, `t.Reset(d)`             | [`Ticker::stop`], [`Ticker::reset`]            |
//! | `time.Sleep(d)`                      | [`sleep`] (thread), [`sleep_async`] (task)     |
//!
//! Times are [`std::time::Instant`]s and durations [`std::time::Duration`]s.
//!
//! # How timers run
//!
//! There is no thread per timer: every timer, ticker, `after` and `sleep_async` — and every
//! context deadline — is an entry in the one timer heap of the process, served by a single
//! thread started on first use. When an entry comes due, the timer thread sends the current
//! time on the channel with a non-blocking send, and a ticker re-arms itself. A timer fires at
//! or after the instant asked for, as soon as the system wakes the timer thread; nothing here
//! promises how soon.
//!
//! # Go 1.23 semantics
//!
//! gosync follows the timer semantics Go adopted in 1.23:
//!
//! * **No stale values.** Once [`Timer::stop`], [`Timer::reset`], [`Ticker::stop`] or
//!   [`Ticker::reset`] returns, no value sent before the call can be received: a value the
//!   timer had sent but nobody had received yet is discarded. (Before Go 1.23 one had to drain
//!   `t.C` by hand after a `Stop` that returned false; that idiom is unnecessary here — and
//!   would block.)
//! * **`Timer::stop` and `Timer::reset` return `true` unless the value was received** (or the
//!   timer was already stopped): a timer whose value still sits unreceived in the channel has,
//!   from the program's point of view, not fired yet.
//! * **Slow receivers lose ticks.** The channel holds one value. A ticker whose receiver has
//!   not taken the last tick drops the new one, and a ticker that falls behind by more than a
//!   period (a suspended machine) skips the ticks it missed rather than sending a burst. Ticks
//!   stay on the grid the ticker started on: it re-arms from the instant each tick was due, not
//!   from when it ran, so it does not drift.
//! * **Unused timers are reclaimed.** Dropping a [`Timer`] or [`Ticker`] stops it and frees
//!   its entry in the timer heap.
//!
//! Unlike Go 1.23, the channel reports its one buffered value: `len()` may be 1 and `cap()` is
//! 1 (Go reports 0 for both).
//!
//! # Happens-before
//!
//! A timer's send is an ordinary channel send: it happens before the receive that gets its
//! value completes. A `stop` or `reset` that returns happens before any value the timer sends
//! afterwards (for `reset`, the new value).
//!
//! # Resources
//!
//! [`after`] and [`after_deadline`] return only a channel, so nothing can stop them: their
//! heap entry (and the channel) lives until the deadline passes, however early the receiver
//! gives up. That is harmless for short timeouts; a loop that waits with a long timeout and is
//! usually woken by something else should keep one [`Timer`] and [`reset`](Timer::reset) it,
//! or let a dropped `Timer` reclaim its entry. [`tick`] is never stopped at all (see there).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::chan::{Chan, Receiver};
use crate::timer::{self, TimerHandle};

/// A channel that receives the current time once `d` has passed (Go's `time.After`).
///
/// The channel holds one value and is never closed. Nothing can stop the timer: its entry in
/// the timer heap lives until it fires (see [Resources](self#resources)); use a [`Timer`] to
/// be able to stop it.
///
/// ```
/// use gosync::time;
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// let at = time::after(Duration::from_millis(5)).recv().unwrap();
/// assert!(at >= start + Duration::from_millis(5));
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    match Instant::now().checked_add(d) {
        Some(deadline) => after_deadline(deadline),
        None => Chan::new(1).into(), // beyond the end of time: never fires
    }
}

/// A channel that receives the current time once `deadline` has passed — at once if it has
/// already. Like [`after`], with an instant instead of a duration.
///
/// ```
/// use gosync::time;
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(5);
/// assert!(time::after_deadline(deadline).recv().unwrap() >= deadline);
/// ```
pub fn after_deadline(deadline: Instant) -> Receiver<Instant> {
    let chan = Chan::new(1);
    let now = Instant::now();
    if deadline <= now {
        let _ = chan.try_send(now);
    } else {
        let tx = chan.clone();
        // Nothing cancels this timer; dropping the handle leaves it scheduled.
        timer::schedule(
            deadline,
            Box::new(move || {
                let _ = tx.try_send(Instant::now());
            }),
        );
    }
    chan.into()
}

/// A channel that receives the current time every `d` (Go's `time.Tick`); the nil channel,
/// which never receives, if `d` is zero (as Go's `Tick` returns nil for `d <= 0`).
///
/// Ticks that the receiver is not ready for are dropped, as for a [`Ticker`].
///
/// # The ticker is never stopped
///
/// Only the channel is returned, so nothing can stop the ticker behind it: it keeps its
/// entry in the timer heap, and keeps waking the timer thread every `d`, for the rest of the
/// process, even once every receiver is gone. (Go before 1.23 documented the same leak; Go
/// 1.23's collector can reclaim an unreferenced ticker, which gosync cannot detect.) Use it
/// for tickers that live as long as the program; anywhere else, use [`Ticker`], which stops
/// when dropped.
///
/// ```
/// use gosync::time;
/// use std::time::Duration;
///
/// let ticks = time::tick(Duration::from_millis(2));
/// let (a, b) = (ticks.recv().unwrap(), ticks.recv().unwrap());
/// assert!(b > a);
/// assert!(time::tick(Duration::ZERO).is_nil());
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    if d.is_zero() {
        return Chan::nil().into();
    }
    let shared = Shared::new(Some(d));
    let chan = shared.chan.clone();
    {
        let mut st = shared.lock();
        // The callback holds the ticker strongly: it runs for the rest of the process.
        arm(
            Link::Strong(shared.clone()),
            &shared,
            &mut st,
            Instant::now().checked_add(d),
        );
    }
    chan.into()
}

/// A single event on a channel: receives the current time once its duration has passed
/// (Go's `time.Timer`).
///
/// Receive from [`c`](Timer::c) — with `recv`, `recv_async`, or `recv(timer.c())` in a
/// [`select!`](crate::select). [`stop`](Timer::stop) and [`reset`](Timer::reset) follow Go
/// 1.23: once they return, no stale value can be received (see
/// [Go 1.23 semantics](self#go-123-semantics)). Dropping the timer stops it.
///
/// A `Timer` is `Send + Sync`: one thread may wait on its channel while another stops or
/// resets it.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::{select, time::Timer};
/// use std::time::Duration;
///
/// // A watchdog: each event pushes the deadline back; silence for 20 ms ends the loop.
/// let events = Chan::new(8);
/// for i in 0..3 {
///     events.send(i).unwrap();
/// }
/// let watchdog = Timer::new(Duration::from_millis(20));
/// let mut seen = 0;
/// loop {
///     select! {
///         recv(events) -> _ => {
///             seen += 1;
///             watchdog.reset(Duration::from_millis(20));
///         },
///         recv(watchdog.c()) -> _ => break,
///     }
/// }
/// assert_eq!(seen, 3);
/// ```
pub struct Timer {
    c: Receiver<Instant>,
    shared: Arc<Shared>,
}

impl Timer {
    /// A timer that sends the current time on its channel once `d` has passed (Go's
    /// `time.NewTimer`). A zero `d` sends at once.
    ///
    /// ```
    /// use gosync::time::Timer;
    /// use std::time::Duration;
    ///
    /// let t = Timer::new(Duration::from_millis(1));
    /// assert!(t.c().recv().is_some());
    /// ```
    pub fn new(d: Duration) -> Timer {
        Timer::at(Instant::now().checked_add(d))
    }

    /// A timer that fires at `deadline` (at once if it has passed).
    ///
    /// ```
    /// use gosync::time::Timer;
    /// use std::time::{Duration, Instant};
    ///
    /// let deadline = Instant::now() + Duration::from_millis(1);
    /// let t = Timer::new_deadline(deadline);
    /// assert!(t.c().recv().unwrap() >= deadline);
    /// ```
    pub fn new_deadline(deadline: Instant) -> Timer {
        Timer::at(Some(deadline))
    }

    fn at(deadline: Option<Instant>) -> Timer {
        let shared = Shared::new(None);
        {
            let mut st = shared.lock();
            arm(
                Link::Weak(Arc::downgrade(&shared)),
                &shared,
                &mut st,
                deadline,
            );
        }
        Timer {
            c: shared.chan.clone().into(),
            shared,
        }
    }

    /// The channel the timer sends on (Go's `t.C`): one value, the time it fired. It is never
    /// closed.
    ///
    /// ```
    /// use gosync::time::Timer;
    /// use std::time::Duration;
    ///
    /// let t = Timer::new(Duration::from_millis(1));
    /// let rx = t.c().clone(); // a handle to keep or pass on
    /// assert!(rx.recv().is_some());
    /// ```
    pub fn c(&self) -> &Receiver<Instant> {
        &self.c
    }

    /// The same channel as [`c`](Timer::c), under the name the channel module uses.
    ///
    /// ```
    /// use gosync::time::Timer;
    /// use std::time::Duration;
    ///
    /// let t = Timer::new(Duration::ZERO);
    /// assert!(t.receiver().recv().is_some());
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.c
    }

    /// Stops the timer (Go's `Stop`): `true` if this call stopped it before its value was
    /// received, `false` if the value was already received or the timer already stopped.
    ///
    /// Once `stop` returns, a receive from the channel blocks (until a later
    /// [`reset`](Timer::reset)): a value sent but not yet received is discarded, as in Go 1.23.
    /// A receiver already blocked on the channel stays blocked.
    ///
    /// ```
    /// use gosync::chan::TryRecvError;
    /// use gosync::time::Timer;
    /// use std::time::Duration;
    ///
    /// let t = Timer::new(Duration::from_secs(60));
    /// assert!(t.stop());
    /// assert!(!t.stop()); // already stopped
    ///
    /// let fired = Timer::new(Duration::ZERO); // its value waits in the channel
    /// assert!(fired.stop()); // not received yet: the stop wins, the value is gone
    /// assert_eq!(fired.c().try_recv(), Err(TryRecvError::Empty));
    /// ```
    pub fn stop(&self) -> bool {
        let mut st = self.shared.lock();
        disarm(&self.shared, &mut st)
    }

    /// Makes the timer fire once `d` has passed from now (Go's `Reset`), whether it was
    /// running, fired or stopped. Returns what [`stop`](Timer::stop) would have: `true` if the
    /// timer was running and its value not received.
    ///
    /// As in Go 1.23, no value from before the reset can be received after it returns.
    ///
    /// ```
    /// use gosync::time::Timer;
    /// use std::time::Duration;
    ///
    /// let t = Timer::new(Duration::ZERO);
    /// assert!(t.c().recv().is_some());
    /// assert!(!t.reset(Duration::from_millis(1))); // had fired and been received
    /// assert!(t.c().recv().is_some()); // fires again
    /// ```
    pub fn reset(&self, d: Duration) -> bool {
        self.reset_deadline_opt(Instant::now().checked_add(d))
    }

    /// Makes the timer fire at `deadline` (at once if it has passed); otherwise as
    /// [`reset`](Timer::reset).
    ///
    /// ```
    /// use gosync::time::Timer;
    /// use std::time::{Duration, Instant};
    ///
    /// let t = Timer::new(Duration::from_secs(60));
    /// assert!(t.reset_deadline(Instant::now()));
    /// assert!(t.c().recv().is_some());
    /// ```
    pub fn reset_deadline(&self, deadline: Instant) -> bool {
        self.reset_deadline_opt(Some(deadline))
    }

    fn reset_deadline_opt(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.shared.lock();
        let was_active = disarm(&self.shared, &mut st);
        arm(
            Link::Weak(Arc::downgrade(&self.shared)),
            &self.shared,
            &mut st,
            deadline,
        );
        was_active
    }
}

impl Drop for Timer {
    /// Stops the timer and frees its entry in the timer heap. Clones of its channel stay valid
    /// and never receive.
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Timer")
            .field("active", &st.active)
            .field("pending", &self.c.len())
            .finish()
    }
}

/// A channel that receives the current time at every period (Go's `time.Ticker`).
///
/// Ticks the receiver is not ready for are dropped (the channel holds one); the ticks stay on
/// the grid the ticker started on and do not drift. [`stop`](Ticker::stop) and
/// [`reset`](Ticker::reset) discard a tick sent but not received, as in Go 1.23. Dropping the
/// ticker stops it.
///
/// ```
/// use gosync::time::Ticker;
/// use std::time::Duration;
///
/// let ticker = Ticker::new(Duration::from_millis(2));
/// let mut last = None;
/// for _ in 0..3 {
///     let t = ticker.c().recv().unwrap();
///     assert!(last.map_or(true, |l| t > l));
///     last = Some(t);
/// }
/// ticker.stop();
/// ```
pub struct Ticker {
    c: Receiver<Instant>,
    shared: Arc<Shared>,
}

impl Ticker {
    /// A ticker that sends the current time every `d`, the first time `d` from now (Go's
    /// `time.NewTicker`).
    ///
    /// # Panics
    ///
    /// "non-positive interval for NewTicker" if `d` is zero, as Go.
    ///
    /// ```
    /// use gosync::time::Ticker;
    /// use std::time::Duration;
    ///
    /// let ticker = Ticker::new(Duration::from_millis(1));
    /// assert!(ticker.c().recv().is_some());
    /// ```
    #[track_caller]
    pub fn new(d: Duration) -> Ticker {
        if d.is_zero() {
            panic!("non-positive interval for NewTicker");
        }
        let shared = Shared::new(Some(d));
        {
            let mut st = shared.lock();
            let first = Instant::now().checked_add(d);
            arm(Link::Weak(Arc::downgrade(&shared)), &shared, &mut st, first);
        }
        Ticker {
            c: shared.chan.clone().into(),
            shared,
        }
    }

    /// The channel the ticker sends on (Go's `t.C`). It is never closed.
    ///
    /// ```
    /// use gosync::time::Ticker;
    /// use std::time::Duration;
    ///
    /// let ticker = Ticker::new(Duration::from_millis(1));
    /// let rx = ticker.c().clone();
    /// assert!(rx.recv().is_some());
    /// ```
    pub fn c(&self) -> &Receiver<Instant> {
        &self.c
    }

    /// The same channel as [`c`](Ticker::c).
    ///
    /// ```
    /// use gosync::time::Ticker;
    /// use std::time::Duration;
    ///
    /// let ticker = Ticker::new(Duration::from_millis(1));
    /// assert!(ticker.receiver().recv().is_some());
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.c
    }

    /// Turns the ticker off (Go's `Stop`): no tick is received after `stop` returns — a tick
    /// sent but not yet received is discarded — until a [`reset`](Ticker::reset). The
    /// channel is not closed.
    ///
    /// ```
    /// use gosync::chan::TryRecvError;
    /// use gosync::time::Ticker;
    /// use std::time::Duration;
    ///
    /// let ticker = Ticker::new(Duration::from_millis(1));
    /// ticker.c().recv().unwrap();
    /// ticker.stop();
    /// std::thread::sleep(Duration::from_millis(5));
    /// assert_eq!(ticker.c().try_recv(), Err(TryRecvError::Empty));
    /// ```
    pub fn stop(&self) {
        let mut st = self.shared.lock();
        disarm(&self.shared, &mut st);
    }

    /// Stops the ticker and restarts it with period `d`, the next tick `d` from now (Go's
    /// `Reset`); works on a stopped ticker too. A tick sent but not received is discarded.
    ///
    /// # Panics
    ///
    /// "non-positive interval for Ticker.Reset" if `d` is zero, as Go.
    ///
    /// ```
    /// use gosync::time::Ticker;
    /// use std::time::Duration;
    ///
    /// let ticker = Ticker::new(Duration::from_secs(60));
    /// ticker.reset(Duration::from_millis(1));
    /// assert!(ticker.c().recv().is_some());
    /// ```
    #[track_caller]
    pub fn reset(&self, d: Duration) {
        if d.is_zero() {
            panic!("non-positive interval for Ticker.Reset");
        }
        let mut st = self.shared.lock();
        disarm(&self.shared, &mut st);
        st.period = Some(d);
        let first = Instant::now().checked_add(d);
        arm(
            Link::Weak(Arc::downgrade(&self.shared)),
            &self.shared,
            &mut st,
            first,
        );
    }
}

impl Drop for Ticker {
    /// Stops the ticker and frees its entry in the timer heap. Clones of its channel stay
    /// valid and receive nothing more.
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Ticker")
            .field("period", &st.period)
            .field("active", &st.active)
            .field("pending", &self.c.len())
            .finish()
    }
}

/// What a [`Timer`] or [`Ticker`] shares with its pending callback.
struct Shared {
    /// Capacity 1: the timer's one value, or the latest tick not yet received.
    chan: Chan<Instant>,
    state: Mutex<State>,
}

struct State {
    /// Bumped by every stop and reset: a callback armed under an older generation does
    /// nothing, even if it was already running when the stop came.
    generation: u64,
    /// Armed and not yet delivered (for a ticker: running).
    active: bool,
    /// The scheduled callback, while there is one.
    handle: Option<TimerHandle>,
    /// `Some` for a ticker.
    period: Option<Duration>,
}

impl Shared {
    fn new(period: Option<Duration>) -> Arc<Shared> {
        Arc::new(Shared {
            chan: Chan::new(1),
            state: Mutex::new(State {
                generation: 0,
                active: false,
                handle: None,
                period,
            }),
        })
    }

    /// The state lock. Nothing under it panics but an allocation failure; carry on regardless.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a scheduled callback reaches its timer: weakly for a [`Timer`] or [`Ticker`], which
/// stop when dropped; strongly for [`tick`], which nothing stops.
#[derive(Clone)]
enum Link {
    Weak(Weak<Shared>),
    Strong(Arc<Shared>),
}

impl Link {
    fn get(&self) -> Option<Arc<Shared>> {
        match self {
            Link::Weak(w) => w.upgrade(),
            Link::Strong(s) => Some(s.clone()),
        }
    }
}

/// Arms the timer to deliver at `at` (`None`: never), under the current generation. Called
/// with the state lock held; a deadline already passed delivers at once.
fn arm(link: Link, shared: &Shared, st: &mut State, at: Option<Instant>) {
    st.active = true;
    let Some(at) = at else {
        return; // beyond the end of time
    };
    if at <= Instant::now() {
        deliver(link, shared, st, at);
        return;
    }
    let generation = st.generation;
    st.handle = Some(timer::schedule(
        at,
        Box::new(move || fire(link, generation, at)),
    ));
}

/// Stops the timer and discards a value sent but not received; `true` if it was armed and
/// not delivered, or delivered and not received — Go 1.23's answer for `Stop`. Called with the
/// state lock held, so a callback of the old generation cannot send after the drain.
fn disarm(shared: &Shared, st: &mut State) -> bool {
    st.generation += 1;
    let was_active = std::mem::replace(&mut st.active, false);
    if let Some(handle) = st.handle.take() {
        // `false` if the callback is running now: it will find the generation changed.
        handle.cancel();
    }
    let drained = shared.chan.try_recv().is_ok();
    was_active || drained
}

/// The timer thread's callback for the timer armed under `generation` to deliver at `at`.
fn fire(link: Link, generation: u64, at: Instant) {
    let Some(shared) = link.get() else {
        return; // the timer was dropped
    };
    let mut st = shared.lock();
    if st.generation == generation {
        st.handle = None;
        deliver(link, &shared, &mut st, at);
    }
}

/// Sends the current time, dropping it if the last value was not received, and re-arms a
/// ticker on its grid. Called with the state lock held.
fn deliver(link: Link, shared: &Shared, st: &mut State, at: Instant) {
    let now = Instant::now();
    // Full: the receiver has not taken the last tick; drop this one, as Go does.
    let _ = shared.chan.try_send(now);
    match st.period {
        None => st.active = false,
        Some(period) => arm(link, shared, st, next_tick(at, period, now)),
    }
}

/// The tick after the one due at `at`: a period later, or — when that has passed already —
/// the first instant on the same grid after `now`, skipping the ticks that were missed.
fn next_tick(at: Instant, period: Duration, now: Instant) -> Option<Instant> {
    let next = at.checked_add(period)?;
    if next > now {
        return Some(next);
    }
    let p = period.as_nanos();
    let behind = now.saturating_duration_since(at).as_nanos();
    let skip = u64::try_from((behind / p + 1) * p).ok()?;
    at.checked_add(Duration::from_nanos(skip))
}

/// Blocks the calling thread for `d` (Go's `time.Sleep`).
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// gosync::time::sleep(Duration::from_millis(2));
/// assert!(start.elapsed() >= Duration::from_millis(2));
/// ```
#[track_caller]
pub fn sleep(d: Duration) {
    let _wait = crate::sema::ThreadWait::enter(
        &crate::sema::Origin::here(crate::WaitKind::Sleep),
        Some(Instant::now()),
    );
    std::thread::sleep(d);
}

/// Blocks the calling thread until `deadline` (returns at once if it has passed).
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(2);
/// gosync::time::sleep_until(deadline);
/// assert!(Instant::now() >= deadline);
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        let _wait = crate::sema::ThreadWait::enter(
            &crate::sema::Origin::here(crate::WaitKind::Sleep),
            Some(now),
        );
        std::thread::sleep(deadline - now);
    }
}

/// A future that completes once `d` has passed: Go's `time.Sleep` for async tasks, on any
/// executor (the timer thread wakes the task).
///
/// # Cancel safety
///
/// Dropping the future cancels its timer; nothing else is held.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// # futures::executor::block_on(async {
/// let start = Instant::now();
/// gosync::time::sleep_async(Duration::from_millis(2)).await;
/// assert!(start.elapsed() >= Duration::from_millis(2));
/// # });
/// ```
pub fn sleep_async(d: Duration) -> Sleep {
    Sleep::new(Instant::now().checked_add(d))
}

/// A future that completes once `deadline` has passed (at its first poll if it has already).
///
/// # Cancel safety
///
/// Dropping the future cancels its timer; nothing else is held.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// # futures::executor::block_on(async {
/// let deadline = Instant::now() + Duration::from_millis(2);
/// gosync::time::sleep_until_async(deadline).await;
/// assert!(Instant::now() >= deadline);
/// # });
/// ```
pub fn sleep_until_async(deadline: Instant) -> Sleep {
    Sleep::new(Some(deadline))
}

/// The future of [`sleep_async`] and [`sleep_until_async`].
///
/// The timer is scheduled at the first poll that finds the deadline still ahead, not when the
/// future is made; it is `Send` and `Unpin`.
///
/// # Cancel safety
///
/// Dropping a pending `Sleep` cancels its timer and frees its entry in the timer heap.
///
/// ```
/// use gosync::time::sleep_async;
/// use std::time::Duration;
///
/// # futures::executor::block_on(async {
/// let nap = sleep_async(Duration::from_millis(1));
/// assert!(nap.deadline().is_some());
/// nap.await;
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    /// `None`: beyond the end of time, never completes.
    deadline: Option<Instant>,
    /// The scheduled wake-up, once the future has waited.
    pending: Option<(Arc<Wake>, TimerHandle)>,
}

/// What a sleeping task shares with its timer callback.
struct Wake {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Wake {
    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        self.waker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The timer callback: marks the sleep over, then wakes the task outside the lock.
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let waker = self.waker().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Sleep {
    fn new(deadline: Option<Instant>) -> Sleep {
        Sleep {
            deadline,
            pending: None,
        }
    }

    /// When the future completes; `None` if never (a duration past the end of `Instant`).
    ///
    /// ```
    /// use gosync::time::sleep_until_async;
    /// use std::time::Instant;
    ///
    /// let at = Instant::now();
    /// assert_eq!(sleep_until_async(at).deadline(), Some(at));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the deadline has passed.
    ///
    /// ```
    /// use gosync::time::{sleep_async, sleep_until_async};
    /// use std::time::{Duration, Instant};
    ///
    /// assert!(sleep_until_async(Instant::now()).is_elapsed());
    /// assert!(!sleep_async(Duration::from_secs(60)).is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.deadline.is_some_and(|d| d <= Instant::now())
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some((wake, _)) = &this.pending {
            if wake.fired.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            {
                let mut slot = wake.waker();
                match &*slot {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
            }
            // The callback sets `fired` before it takes the waker: either it takes ours, or we
            // see `fired` now.
            return if wake.fired.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        }
        let Some(deadline) = this.deadline else {
            return Poll::Pending; // never
        };
        if deadline <= Instant::now() {
            return Poll::Ready(());
        }
        let wake = Arc::new(Wake {
            fired: AtomicBool::new(false),
            waker: Mutex::new(Some(cx.waker().clone())),
        });
        let w = wake.clone();
        let handle = timer::schedule(deadline, Box::new(move || w.fire()));
        this.pending = Some((wake, handle));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((_, handle)) = self.pending.take() {
            handle.cancel();
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("scheduled", &self.pending.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn next_tick_stays_on_the_grid() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        assert_eq!(next_tick(t0, p, t0), Some(t0 + p));
        // Ran late but within the period: the next tick is still one period after the last.
        assert_eq!(
            next_tick(t0, p, t0 + Duration::from_millis(7)),
            Some(t0 + p)
        );
        // Fell behind by several periods: skip the missed ticks, stay on the grid.
        assert_eq!(
            next_tick(t0, p, t0 + Duration::from_millis(35)),
            Some(t0 + Duration::from_millis(40))
        );
        assert_eq!(
            next_tick(t0, p, t0 + Duration::from_millis(40)),
            Some(t0 + Duration::from_millis(50))
        );
    }

    #[test]
    fn stopped_timers_leave_the_heap_bounded() {
        for _ in 0..10_000 {
            let t = Timer::new(Duration::from_secs(3600));
            assert!(t.stop());
        }
        for _ in 0..10_000 {
            drop(Timer::new(Duration::from_secs(3600)));
            drop(Ticker::new(Duration::from_secs(3600)));
        }
        for _ in 0..10_000 {
            let t = Timer::new(Duration::from_secs(3600));
            t.reset(Duration::from_secs(7200));
        }
        // Other tests may hold live timers; the stopped ones must not pile up beyond them.
        let (live, heap) = timer::counts();
        assert!(
            heap <= 64.max(2 * live) + 1,
            "heap kept {heap} entries for {live} live timers"
        );
    }

    #[test]
    fn dropped_sleep_cancels_its_timer() {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let before = timer::counts().0;
        let mut sleeps: Vec<Sleep> = (0..1000)
            .map(|_| sleep_async(Duration::from_secs(3600)))
            .collect();
        for s in &mut sleeps {
            assert!(Pin::new(s).poll(&mut cx).is_pending());
        }
        drop(sleeps);
        let (live, heap) = timer::counts();
        assert!(live < before + 1000, "{live} live timers remain");
        assert!(heap <= 64.max(2 * live) + 1);
    }
}
