//! Single-channel operations: blocking, non-blocking and async, on the core.

use std::task::{Context, Poll};

use super::core::{
    decode, wait_completion, wait_thread, wake, Inner, RecvNow, SendNow, Slot, SlotRef,
};
use super::error::{SendError, TryRecvError, TrySendError};
use crate::loom::Arc;
use crate::sema::{Notified, Origin, ThreadWait, Waiter, CTX_DONE};

impl<T> Inner<T> {
    /// Go's `ch <- v` for a thread: a send with no canceller.
    pub(crate) fn send(&self, value: T, origin: Origin) -> Result<(), SendError<T>> {
        let Ok(sent) = self.send_bounded(value, origin, |_| Ok(())) else {
            unreachable!("nothing ends a send that has no canceller");
        };
        sent
    }

    /// Go's `v, ok := <-ch` for a thread: a receive with no canceller.
    pub(crate) fn recv(&self, origin: Origin) -> Option<T> {
        let Ok(got) = self.recv_bounded(origin, |_| Ok(())) else {
            unreachable!("nothing ends a receive that has no canceller");
        };
        got
    }

    /// `send`, bounded by an outside canceller (a context): `watch` registers the waiter with
    /// it and returns a guard that unregisters on drop, or `Err` if the canceller is done
    /// already. `Err(value)` if the canceller ended the wait before a receiver took the value.
    pub(crate) fn send_bounded<G>(
        &self,
        value: T,
        origin: Origin,
        watch: impl FnOnce(&Arc<Waiter>) -> Result<G, ()>,
    ) -> Result<Result<(), SendError<T>>, T> {
        let mut st = self.lock();
        let value = match st.send_now(value, None) {
            SendNow::Sent(n) => {
                drop(st);
                wake(n);
                return Ok(Ok(()));
            }
            SendNow::Closed(v) => return Ok(Err(SendError(v))),
            SendNow::Full(v) => v,
        };
        let origin = origin.on_id(self.id());
        let waiter = Waiter::untimed(origin, None);
        let Ok(guard) = watch(&waiter) else {
            return Err(value);
        };
        let slot = Slot::shared(waiter, 0, Some(value));
        st.push_send(slot.clone());
        drop(st);
        let wait = ThreadWait::enter(&origin, None);
        let t = wait_thread(&slot.waiter);
        drop(wait);
        drop(guard);
        if t == CTX_DONE {
            // The canceller claimed the waiter: no receiver took the value.
            self.lock().remove(&slot);
            // SAFETY: we own the waiter, it was completed, and its slot is in no queue.
            let back = unsafe { slot.take() };
            return Err(back.expect("a cancelled sender keeps its value"));
        }
        let (_, closed) = decode(t);
        // SAFETY: we own the waiter and saw its completion token.
        let back = unsafe { slot.take() };
        Slot::recycle(slot);
        Ok(if closed {
            Err(SendError(
                back.expect("a sender woken by close keeps its value"),
            ))
        } else {
            Ok(())
        })
    }

    /// `recv`, bounded by an outside canceller (see [`Inner::send_bounded`]); `Err(())` if the
    /// canceller ended the wait first.
    pub(crate) fn recv_bounded<G>(
        &self,
        origin: Origin,
        watch: impl FnOnce(&Arc<Waiter>) -> Result<G, ()>,
    ) -> Result<Option<T>, ()> {
        let mut st = self.lock();
        match st.recv_now(None) {
            RecvNow::Got(v, n) => {
                drop(st);
                wake(n);
                return Ok(Some(v));
            }
            RecvNow::Closed => return Ok(None),
            RecvNow::Empty => {}
        }
        let origin = origin.on_id(self.id());
        let waiter = Waiter::untimed(origin, None);
        let guard = watch(&waiter)?;
        let slot = Slot::shared(waiter, 0, None);
        st.push_recv(slot.clone());
        drop(st);
        let wait = ThreadWait::enter(&origin, None);
        let t = wait_thread(&slot.waiter);
        drop(wait);
        drop(guard);
        if t == CTX_DONE {
            self.lock().remove(&slot);
            return Err(());
        }
        let (_, closed) = decode(t);
        // SAFETY: we own the waiter and saw its completion token.
        let got = unsafe { slot.take() };
        Slot::recycle(slot);
        Ok(if closed {
            None
        } else {
            Some(got.expect("a completed receiver holds its value"))
        })
    }

    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut st = self.lock();
        match st.send_now(value, None) {
            SendNow::Sent(n) => {
                drop(st);
                wake(n);
                Ok(())
            }
            SendNow::Closed(v) => Err(TrySendError::Closed(v)),
            SendNow::Full(v) => Err(TrySendError::Full(v)),
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.lock();
        match st.recv_now(None) {
            RecvNow::Got(v, n) => {
                drop(st);
                wake(n);
                Ok(v)
            }
            RecvNow::Closed => Err(TryRecvError::Closed),
            RecvNow::Empty => Err(TryRecvError::Empty),
        }
    }

    /// Closes the channel. `false` if it was closed already (the caller panics, outside the
    /// lock).
    pub(crate) fn close(&self) -> bool {
        let mut woken: Vec<Notified> = Vec::new();
        let first = self.lock().close(&mut woken);
        for n in woken {
            n.wake();
        }
        first
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().is_closed()
    }

    /// A receiver slot given up by its owner: either removed from the queue, or (if a peer
    /// claimed it first) its value, if any, goes back to the channel.
    pub(crate) fn cancel_recv(&self, slot: &SlotRef<T>) {
        if slot.waiter.claim() {
            self.lock().remove(slot);
            return;
        }
        let (_, closed) = decode(wait_completion(&slot.waiter));
        if !closed {
            // SAFETY: we own the waiter and saw its completion token.
            if let Some(v) = unsafe { slot.take() } {
                let n = self.lock().put_back(v);
                wake(n);
            }
        }
    }

    /// A sender slot given up by its owner: removed from the queue (the value is dropped with
    /// it), or already taken by a receiver (the send happened) or by close.
    pub(crate) fn cancel_send(&self, slot: &SlotRef<T>) {
        if slot.waiter.claim() {
            self.lock().remove(slot);
        } else {
            wait_completion(&slot.waiter);
        }
    }
}

/// The state of one async receive, polled against a channel.
pub(crate) struct RecvOp<T> {
    slot: Option<SlotRef<T>>,
}

impl<T> RecvOp<T> {
    pub(crate) const fn new() -> Self {
        RecvOp { slot: None }
    }

    pub(crate) fn poll(
        &mut self,
        inner: &Inner<T>,
        origin: Origin,
        cx: &mut Context<'_>,
    ) -> Poll<Option<T>> {
        if let Some(slot) = &self.slot {
            let t = match slot.waiter.poll(cx) {
                Poll::Ready(t) => t,
                Poll::Pending => return Poll::Pending,
            };
            let slot = self.slot.take().expect("checked above");
            let (_, closed) = decode(t);
            // SAFETY: we own the waiter and saw its completion token.
            let got = unsafe { slot.take() };
            Slot::recycle(slot);
            return Poll::Ready(if closed {
                None
            } else {
                Some(got.expect("a completed receiver holds its value"))
            });
        }
        let mut st = inner.lock();
        match st.recv_now(None) {
            RecvNow::Got(v, n) => {
                drop(st);
                wake(n);
                Poll::Ready(Some(v))
            }
            RecvNow::Closed => Poll::Ready(None),
            RecvNow::Empty => {
                let origin = origin.on_id(inner.id());
                let slot = Slot::shared(Waiter::untimed(origin, Some(cx)), 0, None);
                st.push_recv(slot.clone());
                self.slot = Some(slot);
                Poll::Pending
            }
        }
    }

    /// Gives up a pending receive (see [`Inner::cancel_recv`]).
    pub(crate) fn cancel(&mut self, inner: &Inner<T>) {
        if let Some(slot) = self.slot.take() {
            inner.cancel_recv(&slot);
        }
    }
}

/// The state of one async send, polled against a channel.
pub(crate) struct SendOp<T> {
    value: Option<T>,
    slot: Option<SlotRef<T>>,
}

impl<T> SendOp<T> {
    pub(crate) const fn new(value: T) -> Self {
        SendOp {
            value: Some(value),
            slot: None,
        }
    }

    pub(crate) fn poll(
        &mut self,
        inner: &Inner<T>,
        origin: Origin,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        if let Some(slot) = &self.slot {
            let t = match slot.waiter.poll(cx) {
                Poll::Ready(t) => t,
                Poll::Pending => return Poll::Pending,
            };
            let slot = self.slot.take().expect("checked above");
            let (_, closed) = decode(t);
            // SAFETY: we own the waiter and saw its completion token.
            let back = unsafe { slot.take() };
            Slot::recycle(slot);
            return Poll::Ready(if closed {
                Err(SendError(
                    back.expect("a sender woken by close keeps its value"),
                ))
            } else {
                Ok(())
            });
        }
        let value = self
            .value
            .take()
            .expect("SendFuture polled after completion");
        let mut st = inner.lock();
        match st.send_now(value, None) {
            SendNow::Sent(n) => {
                drop(st);
                wake(n);
                Poll::Ready(Ok(()))
            }
            SendNow::Closed(v) => Poll::Ready(Err(SendError(v))),
            SendNow::Full(v) => {
                let origin = origin.on_id(inner.id());
                let slot = Slot::shared(Waiter::untimed(origin, Some(cx)), 0, Some(v));
                st.push_send(slot.clone());
                self.slot = Some(slot);
                Poll::Pending
            }
        }
    }

    /// Gives up a pending send (see [`Inner::cancel_send`]).
    pub(crate) fn cancel(&mut self, inner: &Inner<T>) {
        if let Some(slot) = self.slot.take() {
            inner.cancel_send(&slot);
        }
    }

    /// Gives up the send and says whether it happened: the value back if it was not sent
    /// (never queued, still queued, or refused by close), `None` if a receiver took it or the
    /// operation had already completed.
    /// [`SendOp::withdraw`] on a nil channel: nothing is ever sent.
    pub(crate) fn withdraw_nil(&mut self) -> Option<T> {
        self.value.take()
    }

    pub(crate) fn withdraw(&mut self, inner: &Inner<T>) -> Option<T> {
        if let Some(v) = self.value.take() {
            return Some(v);
        }
        let slot = self.slot.take()?;
        if slot.waiter.claim() {
            inner.lock().remove(&slot);
        } else if !decode(wait_completion(&slot.waiter)).1 {
            return None;
        }
        // SAFETY: we own the waiter; it is out of the queue (claimed by us) or completed.
        unsafe { slot.take() }
    }
}
