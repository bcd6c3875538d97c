//! `select` over channel operations: the [`select!`](crate::select) and
//! [`select_async!`](crate::select_async) macros and the dynamic [`Select`] builder.
//!
//! The algorithm follows Go's `runtime/select.go`, with one difference in how channels are
//! locked:
//!
//! 1. Poll every arm once, in a fresh uniformly random order (Go's `pollorder`), and take the
//!    first that can proceed; with a `default` arm, stop there.
//! 2. Otherwise make one waiter for the whole select and register an entry for it on every
//!    arm's channel, each under that channel's lock. An arm found ready at this point is taken
//!    only after the select claims its own waiter, so no other channel can complete it
//!    meanwhile.
//! 3. Park (thread) or return `Pending` (task). The first channel to claim the waiter — one
//!    compare-and-swap — completes it for its arm; the select then removes its other entries.
//!
//! Go locks all the channels at once, in address order, for steps 1–2; gosync never holds two
//! channel locks at once, because the claim on the waiter already makes "exactly one arm
//! fires" hold, and each channel's readiness check and registration happen atomically under
//! its own lock. A stale entry (a select that fired elsewhere) is skipped and dropped by the
//! next peer that meets it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::core::{decode, wait_thread, wake, Inner, RecvNow, SendNow, Slot, SlotRef};
use super::error::SendError;
use super::rand::shuffle;
use super::{Chan, Receiver, Sender};
use crate::loom::Arc;
use crate::sema::{Abandon, Origin, ThreadWait, WaitKind, Waiter};

/// What registering an arm found.
#[doc(hidden)]
pub enum Reg {
    /// The entry is queued; wait.
    Queued,
    /// The arm could proceed and did (the select claimed its own waiter first).
    Won,
    /// A peer claimed the waiter first: wait for its completion.
    Lost,
    /// The select claimed its own waiter but the peer it counted on was gone: start over.
    Retry,
}

/// One arm of a select, type-erased.
#[doc(hidden)]
pub trait Arm {
    /// Tries the operation without waiting; `true` when it completed (result stored).
    fn try_now(&mut self) -> bool;
    /// Registers `waiter` for this arm (see [`Reg`]).
    fn register(&mut self, waiter: &Arc<Waiter>, index: u32) -> Reg;
    /// Removes this arm's entry, if any (the select's waiter is claimed or completed).
    fn unregister(&mut self);
    /// This arm fired through a peer: collects the result from the entry.
    fn fired(&mut self, closed: bool);
    /// Whether the channel is unchanged since the last [`Arm::try_now`] that failed.
    fn unchanged(&self) -> bool;
}

/// Channels an arm may receive from: [`Chan`] and [`Receiver`] (and references to them).
#[doc(hidden)]
pub trait RecvTarget<T> {
    fn recv_chan(&self) -> &Chan<T>;
}

/// Channels an arm may send to: [`Chan`] and [`Sender`] (and references to them).
#[doc(hidden)]
pub trait SendTarget<T> {
    fn send_chan(&self) -> &Chan<T>;
}

impl<T> RecvTarget<T> for Chan<T> {
    fn recv_chan(&self) -> &Chan<T> {
        self
    }
}
impl<T> RecvTarget<T> for Receiver<T> {
    fn recv_chan(&self) -> &Chan<T> {
        self.chan()
    }
}
impl<T, C: RecvTarget<T> + ?Sized> RecvTarget<T> for &C {
    fn recv_chan(&self) -> &Chan<T> {
        (**self).recv_chan()
    }
}
impl<T> SendTarget<T> for Chan<T> {
    fn send_chan(&self) -> &Chan<T> {
        self
    }
}
impl<T> SendTarget<T> for Sender<T> {
    fn send_chan(&self) -> &Chan<T> {
        self.chan()
    }
}
impl<T, C: SendTarget<T> + ?Sized> SendTarget<T> for &C {
    fn send_chan(&self) -> &Chan<T> {
        (**self).send_chan()
    }
}

/// A receive arm.
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    inner: Option<&'a Inner<T>>,
    slot: Option<SlotRef<T>>,
    result: Option<Option<T>>,
    seen: u64,
}

impl<'a, T> RecvArm<'a, T> {
    pub fn new<C: RecvTarget<T> + ?Sized>(target: &'a C) -> Self {
        RecvArm {
            inner: target.recv_chan().inner(),
            slot: None,
            result: None,
            seen: 0,
        }
    }

    /// The received value of the arm that fired (`None`: closed).
    pub fn take(&mut self) -> Option<T> {
        self.result
            .take()
            .expect("select arm taken before it fired")
    }
}

impl<T> Arm for RecvArm<'_, T> {
    fn try_now(&mut self) -> bool {
        let Some(inner) = self.inner else {
            return false;
        };
        let mut st = inner.lock();
        match st.recv_now(None) {
            RecvNow::Got(v, n) => {
                drop(st);
                wake(n);
                self.result = Some(Some(v));
                true
            }
            RecvNow::Closed => {
                self.result = Some(None);
                true
            }
            RecvNow::Empty => {
                self.seen = st.version();
                false
            }
        }
    }

    fn unchanged(&self) -> bool {
        match self.inner {
            None => true,
            Some(i) => i.version() == Some(self.seen),
        }
    }

    fn register(&mut self, waiter: &Arc<Waiter>, index: u32) -> Reg {
        let Some(inner) = self.inner else {
            return Reg::Queued; // a nil channel's arm never fires
        };
        let mut st = inner.lock();
        if !st.recv_ready(Some(waiter)) {
            let slot = Slot::shared(waiter.clone(), index, None);
            st.push_recv(slot.clone());
            self.slot = Some(slot);
            return Reg::Queued;
        }
        if !waiter.claim() {
            return Reg::Lost;
        }
        match st.recv_now(Some(waiter)) {
            RecvNow::Got(v, n) => {
                drop(st);
                wake(n);
                self.result = Some(Some(v));
                Reg::Won
            }
            RecvNow::Closed => {
                self.result = Some(None);
                Reg::Won
            }
            RecvNow::Empty => Reg::Retry,
        }
    }

    fn unregister(&mut self) {
        if let (Some(inner), Some(slot)) = (self.inner, self.slot.take()) {
            inner.lock().remove(&slot);
        }
    }

    fn fired(&mut self, closed: bool) {
        let slot = self.slot.take().expect("the fired arm has an entry");
        self.result = Some(if closed {
            None
        } else {
            // SAFETY: the select owns the waiter and saw its completion token for this arm.
            Some(unsafe { slot.take() }.expect("a completed receiver holds its value"))
        });
    }
}

impl<T> Drop for RecvArm<'_, T> {
    /// A select dropped while waiting (an async select that lost a race): the first arm to drop
    /// abandons the shared waiter; if a peer completed it for this arm, the value goes back.
    fn drop(&mut self) {
        let (Some(inner), Some(slot)) = (self.inner, self.slot.take()) else {
            return;
        };
        match slot.waiter.abandon() {
            Abandon::Completed(t) if decode(t) == (slot.arm, false) => {
                // SAFETY: the owner saw the completion token for this arm.
                if let Some(v) = unsafe { slot.take() } {
                    let n = inner.lock().put_back(v);
                    wake(n);
                }
            }
            _ => {
                inner.lock().remove(&slot);
            }
        }
    }
}

/// A send arm.
#[doc(hidden)]
pub struct SendArm<'a, T> {
    inner: Option<&'a Inner<T>>,
    value: Option<T>,
    slot: Option<SlotRef<T>>,
    result: Option<Result<(), SendError<T>>>,
    seen: u64,
}

impl<'a, T> SendArm<'a, T> {
    pub fn new<C: SendTarget<T> + ?Sized>(target: &'a C, value: T) -> Self {
        SendArm {
            inner: target.send_chan().inner(),
            value: Some(value),
            slot: None,
            result: None,
            seen: 0,
        }
    }

    /// The outcome of the arm that fired.
    pub fn take(&mut self) -> Result<(), SendError<T>> {
        self.result
            .take()
            .expect("select arm taken before it fired")
    }
}

impl<T> Arm for SendArm<'_, T> {
    fn try_now(&mut self) -> bool {
        let (Some(inner), Some(value)) = (self.inner, self.value.take()) else {
            return false;
        };
        let mut st = inner.lock();
        match st.send_now(value, None) {
            SendNow::Sent(n) => {
                drop(st);
                wake(n);
                self.result = Some(Ok(()));
                true
            }
            SendNow::Closed(v) => {
                self.result = Some(Err(SendError(v)));
                true
            }
            SendNow::Full(v) => {
                self.value = Some(v);
                self.seen = st.version();
                false
            }
        }
    }

    fn unchanged(&self) -> bool {
        match (self.inner, &self.value) {
            (Some(i), Some(_)) => i.version() == Some(self.seen),
            _ => true, // nil, or spent: never polled
        }
    }

    fn register(&mut self, waiter: &Arc<Waiter>, index: u32) -> Reg {
        let (Some(inner), Some(value)) = (self.inner, self.value.take()) else {
            return Reg::Queued; // nil channel, or no value to send: never fires
        };
        let mut st = inner.lock();
        if !st.send_ready(Some(waiter)) {
            let slot = Slot::shared(waiter.clone(), index, Some(value));
            st.push_send(slot.clone());
            self.slot = Some(slot);
            return Reg::Queued;
        }
        if !waiter.claim() {
            self.value = Some(value);
            return Reg::Lost;
        }
        match st.send_now(value, Some(waiter)) {
            SendNow::Sent(n) => {
                drop(st);
                wake(n);
                self.result = Some(Ok(()));
                Reg::Won
            }
            SendNow::Closed(v) => {
                self.result = Some(Err(SendError(v)));
                Reg::Won
            }
            SendNow::Full(v) => {
                self.value = Some(v);
                Reg::Retry
            }
        }
    }

    fn unregister(&mut self) {
        if let (Some(inner), Some(slot)) = (self.inner, self.slot.take()) {
            inner.lock().remove(&slot);
            // SAFETY: the waiter is claimed or completed for another arm, and the entry is out
            // of the queue: nobody else touches it. The value is kept for a later select.
            self.value = unsafe { slot.take() };
        }
    }

    fn fired(&mut self, closed: bool) {
        let slot = self.slot.take().expect("the fired arm has an entry");
        self.result = Some(if closed {
            // SAFETY: the select owns the waiter and saw its completion token for this arm.
            let v = unsafe { slot.take() }.expect("a sender woken by close keeps its value");
            Err(SendError(v))
        } else {
            Ok(())
        });
    }
}

impl<T> Drop for SendArm<'_, T> {
    fn drop(&mut self) {
        let (Some(inner), Some(slot)) = (self.inner, self.slot.take()) else {
            return;
        };
        match slot.waiter.abandon() {
            // Sent, or refused by close: either way the entry is out of the queue.
            Abandon::Completed(t) if decode(t).0 == slot.arm => {}
            _ => {
                inner.lock().remove(&slot);
            }
        }
    }
}

/// How the registration pass ended.
enum Outcome {
    Won(usize),
    Retry,
    Wait,
}

/// Random poll order, on the stack for up to 16 arms.
enum Order {
    Small([u32; 16], usize),
    Large(Vec<u32>),
}

impl Order {
    fn new(n: usize) -> Self {
        let mut o = if n <= 16 {
            Order::Small([0; 16], n)
        } else {
            Order::Large(vec![0; n])
        };
        shuffle(o.as_mut());
        o
    }

    fn as_mut(&mut self) -> &mut [u32] {
        match self {
            Order::Small(a, n) => &mut a[..*n],
            Order::Large(v) => v,
        }
    }

    fn get(&self) -> &[u32] {
        match self {
            Order::Small(a, n) => &a[..*n],
            Order::Large(v) => v,
        }
    }
}

fn try_all(arms: &mut [&mut dyn Arm], order: &Order) -> Option<usize> {
    order
        .get()
        .iter()
        .map(|&i| i as usize)
        .find(|&i| arms[i].try_now())
}

/// The polling pass: `Some(Some(i))` when arm `i` proceeded, `Some(None)` when nothing could
/// and there is a `default` — decided only once a second look at every channel's change count
/// shows that nothing changed since it was polled, so that at one instant no arm was ready, as
/// Go's select (which locks all its channels at once) guarantees — and `None` to go on and wait.
fn poll_all(arms: &mut [&mut dyn Arm], order: &Order, has_default: bool) -> Option<Option<usize>> {
    loop {
        if let Some(i) = try_all(arms, order) {
            return Some(Some(i));
        }
        if !has_default {
            return None;
        }
        if arms.iter().all(|a| a.unchanged()) {
            return Some(None);
        }
    }
}

fn register_all(arms: &mut [&mut dyn Arm], order: &Order, waiter: &Arc<Waiter>) -> Outcome {
    let order = order.get();
    for (k, &i) in order.iter().enumerate() {
        let i = i as usize;
        match arms[i].register(waiter, i as u32) {
            Reg::Queued => {}
            Reg::Lost => return Outcome::Wait,
            r @ (Reg::Won | Reg::Retry) => {
                for &j in &order[..k] {
                    arms[j as usize].unregister();
                }
                return match r {
                    Reg::Won => Outcome::Won(i),
                    _ => Outcome::Retry,
                };
            }
        }
    }
    Outcome::Wait
}

/// The waiter was completed with `token`: collect the fired arm, remove the others' entries.
fn finish(arms: &mut [&mut dyn Arm], token: u32) -> usize {
    let (fired, closed) = decode(token);
    let fired = fired as usize;
    for (j, arm) in arms.iter_mut().enumerate() {
        if j != fired {
            arm.unregister();
        }
    }
    arms[fired].fired(closed);
    fired
}

/// Runs a select from a thread: the index of the arm that fired, or `None` for `default`.
#[doc(hidden)]
pub fn select_blocking(
    arms: &mut [&mut dyn Arm],
    has_default: bool,
    origin: Origin,
) -> Option<usize> {
    let order = Order::new(arms.len());
    if let Some(i) = poll_all(arms, &order, has_default) {
        return i;
    }
    let _wait = ThreadWait::enter(&origin, None);
    loop {
        let waiter = Waiter::untimed(origin, None);
        match register_all(arms, &order, &waiter) {
            Outcome::Won(i) => return Some(i),
            Outcome::Retry => continue,
            Outcome::Wait => return Some(finish(arms, wait_thread(&waiter))),
        }
    }
}

/// The state of an async select between polls.
#[doc(hidden)]
pub struct SelectState {
    waiter: Option<Arc<Waiter>>,
    has_default: bool,
    origin: Origin,
}

impl SelectState {
    pub fn new(has_default: bool, origin: Origin) -> Self {
        SelectState {
            waiter: None,
            has_default,
            origin,
        }
    }

    /// Polls the select: `Ready(Some(i))` when arm `i` fired, `Ready(None)` for `default`.
    pub fn poll(&mut self, arms: &mut [&mut dyn Arm], cx: &mut Context<'_>) -> Poll<Option<usize>> {
        if let Some(w) = &self.waiter {
            return match w.poll(cx) {
                Poll::Ready(t) => {
                    self.waiter = None;
                    Poll::Ready(Some(finish(arms, t)))
                }
                Poll::Pending => Poll::Pending,
            };
        }
        let order = Order::new(arms.len());
        if let Some(i) = poll_all(arms, &order, self.has_default) {
            return Poll::Ready(i);
        }
        loop {
            let waiter = Waiter::untimed(self.origin, Some(cx));
            match register_all(arms, &order, &waiter) {
                Outcome::Won(i) => return Poll::Ready(Some(i)),
                Outcome::Retry => continue,
                Outcome::Wait => {
                    self.waiter = Some(waiter);
                    return self.poll(arms, cx);
                }
            }
        }
    }
}

/// The origin of a select, for diagnostics (called from the macros).
#[doc(hidden)]
#[track_caller]
pub fn origin() -> Origin {
    Origin::here(WaitKind::Select)
}

/// Items the macros use; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use super::{
        origin, select_blocking, Arm, RecvArm, RecvTarget, SelectState, SendArm, SendTarget,
    };
    pub use std::future::poll_fn;
}

/// Which arm of a dynamic [`Select`] fired, with its outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Selected<T> {
    /// Receive arm `index` fired: `Some(v)`, or `None` because the channel is closed.
    Recv {
        /// The arm's index (the order arms were added in).
        index: usize,
        /// The value received, `None` when the channel is closed and drained.
        value: Option<T>,
    },
    /// Send arm `index` fired: sent, or refused by a closed channel.
    Send {
        /// The arm's index.
        index: usize,
        /// `Err` gives the value back when the channel is closed.
        result: Result<(), SendError<T>>,
    },
    /// Nothing was ready ([`Select::try_select`] only).
    Default,
}

enum DynArm<'a, T> {
    Recv(RecvArm<'a, T>),
    Send(SendArm<'a, T>),
}

impl<T> DynArm<'_, T> {
    fn as_arm(&mut self) -> &mut dyn Arm {
        match self {
            DynArm::Recv(a) => a,
            DynArm::Send(a) => a,
        }
    }
}

/// A select over a number of channel operations known only at run time — Go's
/// `reflect.Select`. Every arm carries the same element type; for arms of different types use
/// [`select!`](crate::select).
///
/// A `Select` can be run again and again: a receive arm stays armed; a send arm that fired is
/// spent (it has no value left) until [`Select::set_value`] gives it a new one. Disable an arm
/// for good — Go's trick of setting a closed channel variable to nil — with
/// [`Select::disable`].
///
/// ```
/// use gosync::chan::{Chan, Select, Selected};
///
/// // Fan-in over N channels.
/// let inputs: Vec<Chan<u32>> = (0..4).map(|_| Chan::new(1)).collect();
/// for (i, ch) in inputs.iter().enumerate() {
///     ch.send(i as u32).unwrap();
///     ch.close();
/// }
/// let mut sel = Select::new();
/// for ch in &inputs {
///     sel.recv(ch);
/// }
/// let (mut sum, mut open) = (0, inputs.len());
/// while open > 0 {
///     match sel.select() {
///         Selected::Recv { value: Some(v), .. } => sum += v,
///         Selected::Recv { index, value: None } => {
///             sel.disable(index);
///             open -= 1;
///         }
///         _ => unreachable!(),
///     }
/// }
/// assert_eq!(sum, 0 + 1 + 2 + 3);
/// ```
pub struct Select<'a, T> {
    arms: Vec<DynArm<'a, T>>,
}

impl<'a, T> Select<'a, T> {
    /// An empty select (which, run, blocks forever, as Go's `select {}`).
    ///
    /// ```
    /// # use gosync::chan::Select;
    /// let sel: Select<'_, i32> = Select::new();
    /// assert_eq!(sel.len(), 0);
    /// ```
    pub fn new() -> Self {
        Select { arms: Vec::new() }
    }

    /// Adds a receive arm on `rx` (a [`Chan`] or [`Receiver`]); returns its index.
    ///
    /// ```
    /// # use gosync::chan::{Chan, Select};
    /// let ch: Chan<u8> = Chan::new(1);
    /// let mut sel = Select::new();
    /// assert_eq!(sel.recv(&ch), 0);
    /// ```
    pub fn recv<C: RecvTarget<T> + ?Sized>(&mut self, rx: &'a C) -> usize {
        self.arms.push(DynArm::Recv(RecvArm::new(rx)));
        self.arms.len() - 1
    }

    /// Adds a send arm of `value` on `tx` (a [`Chan`] or [`Sender`]); returns its index.
    ///
    /// ```
    /// # use gosync::chan::{Chan, Select, Selected};
    /// let ch = Chan::new(1);
    /// let mut sel = Select::new();
    /// let i = sel.send(&ch, 7);
    /// assert_eq!(sel.select(), Selected::Send { index: i, result: Ok(()) });
    /// assert_eq!(ch.recv(), Some(7));
    /// ```
    pub fn send<C: SendTarget<T> + ?Sized>(&mut self, tx: &'a C, value: T) -> usize {
        self.arms.push(DynArm::Send(SendArm::new(tx, value)));
        self.arms.len() - 1
    }

    /// Gives send arm `index` a new value to send (after it fired, or to replace the old one).
    ///
    /// # Panics
    ///
    /// If `index` is not a send arm.
    ///
    /// ```
    /// # use gosync::chan::{Chan, Select, Selected};
    /// let ch = Chan::new(2);
    /// let mut sel = Select::new();
    /// let i = sel.send(&ch, 1);
    /// sel.select();
    /// sel.set_value(i, 2);
    /// sel.select();
    /// assert_eq!(ch.iter().take(2).collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn set_value(&mut self, index: usize, value: T) {
        match &mut self.arms[index] {
            DynArm::Send(a) => a.value = Some(value),
            DynArm::Recv(_) => panic!("select arm {index} is a receive arm"),
        }
    }

    /// Disables arm `index`: it never fires again (as if its channel were nil).
    ///
    /// ```
    /// # use gosync::chan::{Chan, Select, Selected};
    /// let a: Chan<u8> = Chan::new(0);
    /// let b = Chan::new(1);
    /// a.close();
    /// b.send(5).unwrap();
    /// let mut sel = Select::new();
    /// let ia = sel.recv(&a);
    /// sel.recv(&b);
    /// sel.disable(ia);
    /// assert_eq!(sel.select(), Selected::Recv { index: 1, value: Some(5) });
    /// ```
    pub fn disable(&mut self, index: usize) {
        let arm = &mut self.arms[index];
        *arm = match arm {
            DynArm::Recv(_) => DynArm::Recv(RecvArm {
                inner: None,
                slot: None,
                result: None,
                seen: 0,
            }),
            DynArm::Send(_) => DynArm::Send(SendArm {
                inner: None,
                value: None,
                slot: None,
                result: None,
                seen: 0,
            }),
        };
    }

    /// The number of arms.
    ///
    /// ```
    /// # use gosync::chan::{Chan, Select};
    /// let ch: Chan<u8> = Chan::new(0);
    /// let mut sel = Select::new();
    /// sel.recv(&ch);
    /// assert_eq!(sel.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.arms.len()
    }

    /// Whether there are no arms.
    ///
    /// ```
    /// # use gosync::chan::Select;
    /// assert!(Select::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.arms.is_empty()
    }

    fn outcome(&mut self, index: Option<usize>) -> Selected<T> {
        match index {
            None => Selected::Default,
            Some(index) => match &mut self.arms[index] {
                DynArm::Recv(a) => Selected::Recv {
                    index,
                    value: a.take(),
                },
                DynArm::Send(a) => Selected::Send {
                    index,
                    result: a.take(),
                },
            },
        }
    }

    fn dyn_arms(&mut self) -> Vec<&mut dyn Arm> {
        self.arms.iter_mut().map(DynArm::as_arm).collect()
    }

    /// Blocks the thread until one arm can proceed, runs it, and says which (chosen uniformly
    /// at random among ready arms).
    ///
    /// ```
    /// # use gosync::chan::{Chan, Select, Selected};
    /// let ch = Chan::new(1);
    /// ch.send(3).unwrap();
    /// let mut sel = Select::new();
    /// sel.recv(&ch);
    /// assert_eq!(sel.select(), Selected::Recv { index: 0, value: Some(3) });
    /// ```
    #[track_caller]
    pub fn select(&mut self) -> Selected<T> {
        let origin = Origin::here(WaitKind::Select);
        let i = select_blocking(&mut self.dyn_arms(), false, origin);
        self.outcome(i)
    }

    /// Runs an arm that can proceed now, or returns [`Selected::Default`] (a select with a
    /// `default` case).
    ///
    /// ```
    /// # use gosync::chan::{Chan, Select, Selected};
    /// let ch: Chan<u8> = Chan::new(1);
    /// let mut sel = Select::new();
    /// sel.recv(&ch);
    /// assert_eq!(sel.try_select(), Selected::Default);
    /// ```
    #[track_caller]
    pub fn try_select(&mut self) -> Selected<T> {
        let origin = Origin::here(WaitKind::Select);
        let i = select_blocking(&mut self.dyn_arms(), true, origin);
        self.outcome(i)
    }

    /// The async form of [`Select::select`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the pending future loses no value: a value handed to a receive arm as it is
    /// dropped goes back to its channel.
    ///
    /// ```
    /// # use gosync::chan::{Chan, Select, Selected};
    /// # futures::executor::block_on(async {
    /// let ch = Chan::new(1);
    /// ch.send(3).unwrap();
    /// let mut sel = Select::new();
    /// sel.recv(&ch);
    /// assert_eq!(sel.select_async().await, Selected::Recv { index: 0, value: Some(3) });
    /// # });
    /// ```
    #[track_caller]
    pub fn select_async(&mut self) -> SelectAsync<'_, 'a, T> {
        SelectAsync {
            state: SelectState::new(false, Origin::here(WaitKind::Select)),
            select: self,
        }
    }
}

impl<T> Default for Select<'_, T> {
    fn default() -> Self {
        Select::new()
    }
}

impl<T> fmt::Debug for Select<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("arms", &self.arms.len())
            .finish()
    }
}

/// The future of [`Select::select_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct SelectAsync<'s, 'a, T> {
    state: SelectState,
    select: &'s mut Select<'a, T>,
}

impl<T> Future for SelectAsync<'_, '_, T> {
    type Output = Selected<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Selected<T>> {
        let this = self.get_mut();
        let mut arms = this.select.dyn_arms();
        match this.state.poll(&mut arms, cx) {
            Poll::Ready(i) => {
                drop(arms);
                Poll::Ready(this.select.outcome(i))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for SelectAsync<'_, '_, T> {
    fn drop(&mut self) {
        // Abandon the waiter before any arm is dismantled, then clean each arm up as its own
        // drop would (keeping the arms usable for the next select).
        if let Some(w) = self.state.waiter.take() {
            let fired = match w.abandon() {
                Abandon::Abandoned => None,
                Abandon::Completed(t) => Some(decode(t)),
            };
            for (j, arm) in self.select.arms.iter_mut().enumerate() {
                match fired {
                    Some((i, closed)) if i as usize == j => {
                        arm.as_arm().fired(closed);
                        if let DynArm::Recv(a) = arm {
                            if let (Some(inner), Some(Some(v))) = (a.inner, a.result.take()) {
                                let n = inner.lock().put_back(v);
                                wake(n);
                            }
                        } else if let DynArm::Send(a) = arm {
                            a.result = None;
                        }
                    }
                    _ => arm.as_arm().unregister(),
                }
            }
        }
    }
}

impl<T> fmt::Debug for SelectAsync<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectAsync").finish_non_exhaustive()
    }
}
