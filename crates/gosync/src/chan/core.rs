//! The channel core: a buffer and two queues of waiters behind one lock, as in Go's
//! `runtime/chan.go`.
//!
//! * A waiter is a [`Slot`]: the [`Waiter`] of a blocked thread or task (shared by every arm of
//!   a `select`), the arm's index, and room for the value — the value to give for a sender, the
//!   value received for a receiver.
//! * Whoever completes a waiter first **claims** it (one CAS on the waiter, so of all the
//!   channels a select waits on exactly one wins), then moves the value into or out of the
//!   slot, then **completes** it with a token saying which arm fired and whether the channel
//!   was closed, all under this channel's lock; the wake-up happens after the lock is released.
//! * A send that finds a waiting receiver hands the value straight to it; a receive that finds
//!   a waiting sender on a full buffer takes the oldest buffered value and moves the sender's
//!   value to the back, so FIFO order holds and the sender completes at once.
//! * A queued slot whose waiter was claimed elsewhere (a select that fired on another channel,
//!   a future that was dropped) is stale: it is dropped when met, and removed by its owner.

use std::collections::VecDeque;

use super::lock::{Dirty, Guard, Lock};
use crate::loom::{self, Arc, UnsafeCell};
use crate::sema::{Notified, Waiter};

/// The token a completed waiter receives: which arm fired and whether the channel was closed.
#[inline]
pub(crate) fn token(arm: u32, closed: bool) -> u32 {
    // Well below the tokens the waiter core reserves (`sema::CTX_DONE` and above).
    debug_assert!(arm < (1 << 29));
    1 + ((arm << 1) | closed as u32)
}

/// The arm and the closed flag of a token.
#[inline]
pub(crate) fn decode(token: u32) -> (u32, bool) {
    let x = token - 1;
    (x >> 1, x & 1 == 1)
}

/// One waiting operation in a channel's queue.
pub(crate) struct Slot<T> {
    pub(crate) waiter: Arc<Waiter>,
    pub(crate) arm: u32,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value moves between threads only through the claim protocol (see `take`/`put`),
// so a `Slot<T>` is as thread-safe as `T` is sendable.
unsafe impl<T: Send> Send for Slot<T> {}
// SAFETY: as above: `value` is touched by one party at a time, ordered by the waiter's token.
unsafe impl<T: Send> Sync for Slot<T> {}

/// The shared handle of a slot: [`super::slot_ref::SlotRef`], or `Arc` under loom.
#[cfg(not(loom))]
pub(crate) use super::slot_ref::SlotRef;
/// The shared handle of a slot: `Arc` under loom, so models see its count.
#[cfg(loom)]
pub(crate) type SlotRef<T> = Arc<Slot<T>>;

impl<T> Slot<T> {
    /// A slot, shared between its owner and a queue.
    pub(crate) fn shared(waiter: Arc<Waiter>, arm: u32, value: Option<T>) -> SlotRef<T> {
        SlotRef::new(Slot::bare(waiter, arm, value))
    }

    /// A slot by value.
    pub(crate) fn bare(waiter: Arc<Waiter>, arm: u32, value: Option<T>) -> Self {
        Slot {
            waiter,
            arm,
            value: UnsafeCell::new(value),
        }
    }

    /// Recycles the slot and the waiter of a finished single-channel operation (see
    /// [`Waiter::recycle`]).
    pub(crate) fn recycle(this: SlotRef<T>) {
        #[cfg(not(loom))]
        if let Ok(slot) = SlotRef::try_unwrap(this) {
            Waiter::recycle(slot.waiter);
        }
        #[cfg(loom)]
        drop(this);
    }

    /// Takes the value out.
    ///
    /// # Safety
    /// The caller has exclusive access to the value: it claimed the waiter (and has not
    /// completed it yet), or it owns the waiter and the slot is in no queue, or it owns the
    /// waiter and has seen its completion token.
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: exclusive access per this function's contract.
        self.value.with_mut(|p| unsafe { (*p).take() })
    }

    /// Puts a value in.
    ///
    /// # Safety
    /// As for [`Slot::take`].
    unsafe fn put(&self, value: T) {
        // SAFETY: exclusive access per this function's contract.
        self.value.with_mut(|p| unsafe { *p = Some(value) })
    }
}

/// What a send found.
pub(crate) enum SendNow<T> {
    /// Handed to a receiver (wake it after unlocking) or buffered.
    Sent(Option<Notified>),
    /// The channel is closed; the value comes back.
    Closed(T),
    /// No receiver and no room; the value comes back.
    Full(T),
}

/// What a receive found.
pub(crate) enum RecvNow<T> {
    /// A value, and perhaps a sender to wake after unlocking.
    Got(T, Option<Notified>),
    /// Closed and drained.
    Closed,
    /// Nothing to receive yet.
    Empty,
}

/// Everything the channel lock guards.
pub(crate) struct State<T> {
    buf: VecDeque<T>,
    recvq: VecDeque<SlotRef<T>>,
    sendq: VecDeque<SlotRef<T>>,
    /// The capacity, with [`CLOSED`] set once the channel is closed: one word instead of two
    /// keeps an idle channel within 128 bytes.
    meta: usize,
}

/// The bit of `State::meta` that says the channel is closed.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The bit of `State::meta` that says the current critical section changed the state (see
/// [`Dirty`]).
const DIRTY: usize = 1 << (usize::BITS - 2);

/// The largest capacity a channel can have.
pub(crate) const MAX_CAP: usize = DIRTY - 1;

impl<T> Dirty for State<T> {
    #[inline]
    fn take_dirty(&mut self) -> bool {
        let dirty = self.meta & DIRTY != 0;
        self.meta &= !DIRTY;
        dirty
    }
}

/// Takes the first waiter of `q` that is not `skip` and can be claimed; drops stale ones.
fn claim_peer<T>(q: &mut VecDeque<SlotRef<T>>, skip: Option<&Waiter>) -> Option<SlotRef<T>> {
    if skip.is_none() {
        while let Some(slot) = q.pop_front() {
            if slot.waiter.claim() {
                return Some(slot);
            }
        }
        return None;
    }
    let mut i = 0;
    while i < q.len() {
        if skip.is_some_and(|own| std::ptr::eq(own, &*q[i].waiter)) {
            i += 1;
            continue;
        }
        let slot = q.remove(i).expect("index in range");
        if slot.waiter.claim() {
            return Some(slot);
        }
    }
    None
}

/// Whether `q` holds a waiter other than `skip` that nobody has claimed.
fn has_peer<T>(q: &VecDeque<SlotRef<T>>, skip: Option<&Waiter>) -> bool {
    q.iter()
        .any(|s| s.waiter.is_waiting() && !skip.is_some_and(|own| std::ptr::eq(own, &*s.waiter)))
}

fn remove_from<T>(q: &mut VecDeque<SlotRef<T>>, slot: &SlotRef<T>) -> bool {
    match q.iter().position(|s| SlotRef::ptr_eq(s, slot)) {
        Some(i) => {
            q.remove(i);
            true
        }
        None => false,
    }
}

impl<T> State<T> {
    #[inline]
    fn cap(&self) -> usize {
        self.meta & MAX_CAP
    }

    /// Marks the state changed: a `select` polling this channel must look again.
    #[inline]
    fn touch(&mut self) {
        self.meta |= DIRTY;
    }

    #[inline]
    fn closed(&self) -> bool {
        self.meta & CLOSED != 0
    }

    /// Sends `value` if a receiver waits or the buffer has room. `skip` is a select's own
    /// waiter, which must not rendezvous with itself.
    pub(crate) fn send_now(&mut self, value: T, skip: Option<&Waiter>) -> SendNow<T> {
        if self.closed() {
            return SendNow::Closed(value);
        }
        if let Some(r) = claim_peer(&mut self.recvq, skip) {
            // SAFETY: we hold the claim on `r`'s waiter.
            unsafe { r.put(value) };
            self.touch();
            return SendNow::Sent(Some(Waiter::complete(&r.waiter, token(r.arm, false))));
        }
        if self.buf.len() < self.cap() {
            self.buf.push_back(value);
            self.touch();
            return SendNow::Sent(None);
        }
        SendNow::Full(value)
    }

    /// Receives from the buffer or from a waiting sender.
    pub(crate) fn recv_now(&mut self, skip: Option<&Waiter>) -> RecvNow<T> {
        if let Some(v) = self.buf.pop_front() {
            self.touch();
            // The buffer had been full if a sender waits: its value takes the freed place.
            let mut woken = None;
            if self.buf.len() < self.cap() {
                if let Some(s) = claim_peer(&mut self.sendq, skip) {
                    // SAFETY: we hold the claim on `s`'s waiter.
                    let sv = unsafe { s.take() }.expect("a queued sender holds its value");
                    self.buf.push_back(sv);
                    woken = Some(Waiter::complete(&s.waiter, token(s.arm, false)));
                }
            }
            return RecvNow::Got(v, woken);
        }
        if let Some(s) = claim_peer(&mut self.sendq, skip) {
            // SAFETY: we hold the claim on `s`'s waiter.
            let v = unsafe { s.take() }.expect("a queued sender holds its value");
            self.touch();
            return RecvNow::Got(v, Some(Waiter::complete(&s.waiter, token(s.arm, false))));
        }
        if self.closed() {
            RecvNow::Closed
        } else {
            RecvNow::Empty
        }
    }

    /// Whether a send would complete now (including by failing on a closed channel).
    pub(crate) fn send_ready(&self, skip: Option<&Waiter>) -> bool {
        self.closed() || self.buf.len() < self.cap() || has_peer(&self.recvq, skip)
    }

    /// Whether a receive would complete now (including by reporting closed).
    pub(crate) fn recv_ready(&self, skip: Option<&Waiter>) -> bool {
        !self.buf.is_empty() || self.closed() || has_peer(&self.sendq, skip)
    }

    pub(crate) fn push_send(&mut self, slot: SlotRef<T>) {
        self.sendq.push_back(slot);
        self.touch();
    }

    pub(crate) fn push_recv(&mut self, slot: SlotRef<T>) {
        self.recvq.push_back(slot);
        self.touch();
    }

    /// Removes `slot` from whichever queue holds it.
    pub(crate) fn remove(&mut self, slot: &SlotRef<T>) -> bool {
        let removed = remove_from(&mut self.recvq, slot) || remove_from(&mut self.sendq, slot);
        if removed {
            self.touch();
        }
        removed
    }

    /// Returns a value that was handed to a receiver which then went away (a dropped future):
    /// to the next waiting receiver, else to the head of the buffer (even past capacity), so
    /// that it is the next value received and nothing is lost.
    pub(crate) fn put_back(&mut self, value: T) -> Option<Notified> {
        self.touch();
        if let Some(r) = claim_peer(&mut self.recvq, None) {
            // SAFETY: we hold the claim on `r`'s waiter.
            unsafe { r.put(value) };
            return Some(Waiter::complete(&r.waiter, token(r.arm, false)));
        }
        self.buf.push_front(value);
        None
    }

    /// Closes the channel: every waiting receiver and sender is completed as closed (senders
    /// keep their value in their slot, to return it). `false` if it was closed already.
    pub(crate) fn close(&mut self, woken: &mut Vec<Notified>) -> bool {
        if self.closed() {
            return false;
        }
        self.meta |= CLOSED;
        self.touch();
        for q in [&mut self.recvq, &mut self.sendq] {
            for slot in q.drain(..) {
                if slot.waiter.claim() {
                    woken.push(Waiter::complete(&slot.waiter, token(slot.arm, true)));
                }
            }
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed()
    }
}

/// A channel: its state behind its lock.
pub(crate) struct Inner<T> {
    state: Lock<State<T>>,
}

/// The buffer could not be allocated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NoMemory;

impl<T> Inner<T> {
    pub(crate) fn new(cap: usize) -> Result<Self, NoMemory> {
        if cap > MAX_CAP {
            return Err(NoMemory);
        }
        let mut buf = VecDeque::new();
        buf.try_reserve_exact(cap).map_err(|_| NoMemory)?;
        Ok(Inner {
            state: Lock::new(State {
                buf,
                recvq: VecDeque::new(),
                sendq: VecDeque::new(),
                meta: cap,
            }),
        })
    }

    /// The channel's number for the registry of waits: its address, fixed while any handle
    /// lives.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self as *const Self as usize as u64
    }

    #[inline]
    pub(crate) fn lock(&self) -> Guard<'_, State<T>> {
        self.state.lock()
    }

    /// The channel's change count, `None` while it is locked (see [`super::lock`]).
    #[inline]
    pub(crate) fn version(&self) -> Option<u64> {
        self.state.version()
    }

    pub(crate) fn cap(&self) -> usize {
        self.lock().cap()
    }
}

/// Wakes `n` if there is someone to wake.
#[inline]
pub(crate) fn wake(n: Option<Notified>) {
    if let Some(n) = n {
        n.wake();
    }
}

/// How long a blocked thread waits for a completion before it parks: a short spin, then up to
/// this many yields of its time slice. On a machine with few cores the peer usually acts
/// within microseconds, and it often needs this thread's core to do so — which a yield gives
/// and a spin does not; a park and unpark cost tens of microseconds across cores.
#[cfg(not(loom))]
const YIELDS: u32 = 256;
#[cfg(not(loom))]
const SPINS: u32 = 16;

/// Blocks the calling thread until its waiter is completed; returns the token.
pub(crate) fn wait_thread(waiter: &Waiter) -> u32 {
    // Under loom both counts are zero: the model parks at once.
    #[cfg(not(loom))]
    for _ in 0..SPINS {
        if let Some(t) = waiter.token() {
            return t;
        }
        loom::spin_loop();
    }
    #[cfg(not(loom))]
    for _ in 0..YIELDS {
        if let Some(t) = waiter.token() {
            return t;
        }
        loom::thread::yield_now();
    }
    waiter.park(None).expect("no deadline")
}

/// Waits out the short window between a peer's claim and its completion (both happen under a
/// channel lock the peer holds right now).
pub(crate) fn wait_completion(waiter: &Waiter) -> u32 {
    loop {
        if let Some(t) = waiter.token() {
            return t;
        }
        loom::thread::yield_now();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Inner;

    /// The budget: an idle channel costs at most 128 bytes plus its buffer (the `Arc`
    /// header of two counters included).
    #[test]
    fn idle_channel_fits_in_128_bytes() {
        let arc_header = 2 * std::mem::size_of::<usize>();
        assert!(arc_header + std::mem::size_of::<Inner<u64>>() <= 128);
        assert!(arc_header + std::mem::size_of::<Inner<[u8; 4096]>>() <= 128);
    }
}
