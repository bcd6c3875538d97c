//! Reader/writer mutual exclusion, writer-preferring as Go's `sync.RWMutex`.
//!
//! [`RawRwMutex`] is Go's `sync.RWMutex`: no data; `lock`/`unlock` for the writer,
//! `rlock`/`runlock` for readers, from any thread or task. [`RwMutex<T>`] wraps a value and hands
//! out RAII guards ([`read`](RwMutex::read), [`write`](RwMutex::write)), as
//! `std::sync::RwLock` does.
//!
//! # Writer preference, and why recursive read locking deadlocks
//!
//! The lock can be held by any number of readers or by one writer. A writer that calls `lock`
//! while readers hold the lock *announces* itself: from then on new `rlock` calls block until
//! that writer has had its turn, so a steady stream of readers can never starve a writer. The
//! price is Go's: a reader that already holds the lock and calls `rlock` again while a writer
//! waits blocks behind the writer, which waits for the first read lock to be released — a
//! deadlock. Do not take a read lock recursively.
//!
//! ```no_run
//! use gosync::sync::RawRwMutex;
//! # let rw = std::sync::Arc::new(RawRwMutex::new());
//! rw.rlock();
//! // ... another thread calls rw.lock() here and waits for us ...
//! rw.rlock(); // blocks behind that writer forever
//! ```
//!
//! # Design
//!
//! Go counts readers with one `atomic.Add` and parks pending readers and the writer on two
//! runtime semaphores. Its bookkeeping cannot be taken back — a reader counted as pending and
//! a writer that subtracted `rwmutexMaxReaders` are committed — so a dropped future could not
//! leave the queue without corrupting the counts. Here every piece of waiter bookkeeping lives
//! in one state word or under a queue lock, where a cancelled waiter can undo it exactly:
//!
//! * **Readers** take the lock with one `fetch_add` on the state word. If the word says a writer
//!   has announced itself, the reader takes its increment back at once (it was never counted as
//!   waiting), spins a little on the word (threads only), then parks in the readers' queue —
//!   after re-checking the writer bit under the queue lock. `runlock` is one `fetch_sub`.
//! * **Writers** are serialized by a [`RawMutex`] (Go's `w`). The one holding it sets `WRITER`
//!   and waits until the reader count is zero; since no new reader can come in, the count only
//!   falls. Whoever brings it to zero — the last reader leaving, or a reader taking back its
//!   increment — wakes the writer, deciding under the writer queue's lock.
//! * **Unlock** clears `WRITER` and *grants* the lock to every queued reader at once: their
//!   count is added to the state word in the same atomic step, before they wake, so nobody can
//!   overtake them — not even the next writer, which has to wait for them to leave.
//!
//! # Spinning
//!
//! A thread held up by a writer, and a writer waiting for the readers to leave, spin briefly on
//! the state word before parking: those waits usually last about one critical section. A writer
//! waiting for *another writer* parks at once, as Go's goroutines do: `w` stays held for a whole
//! write, the readers' departure included, and a thread spinning for it only takes a core from
//! the threads that would end that write — with more threads than cores, spinning there costs
//! about half the throughput of a read-mostly load. Async tasks never spin.
//!
//! # State word
//!
//! | field        | meaning                                   | set by                         | cleared by                     |
//! |--------------|-------------------------------------------|--------------------------------|--------------------------------|
//! | `readers`    | readers holding the lock (plus, for an instant, readers that met `WRITER` and are about to take their increment back) | `rlock` (`fetch_add` or CAS); `unlock` granting queued readers | `runlock`; a reader backing off |
//! | `WRITER`     | a writer is pending or holding; new readers back off | the writer holding `w`           | `unlock`; a cancelled writer withdrawing |
//! | `HELD`       | the writer holds the lock (`readers` reached zero) | the writer seeing zero readers, or the reader that woke it (under the writer queue lock) | `unlock` |
//! | `PARKED`     | readers are queued                        | a reader, under the readers' queue lock, only while `WRITER` is set | `unlock` (under that lock); the last queued reader cancelling |
//!
//! Invariants: `HELD` and `PARKED` imply `WRITER`; `WRITER` implies `w` is locked; while `HELD`
//! is set, `readers` counts only backing-off readers, never a holder.
//!
//! # Cancel safety
//!
//! A dropped [`ReadLockFuture`] leaves the readers' queue; if `unlock` had already granted it the
//! read lock, it releases it. A dropped [`WriteLockFuture`] that was still waiting for `w` leaves
//! that queue (see [`RawMutex::lock_async`]); one that had announced itself withdraws: it clears
//! `WRITER`, grants the lock to the readers it had held up and unlocks `w` — or, if the last reader
//! had already handed it the lock, unlocks as a writer. No lock and no wake-up is lost.
//!
//! # Happens-before
//!
//! In the terminology of the Go memory model, the n'th call to `unlock` synchronizes before the
//! m'th call to `lock` returns, for any n < m, as for [`RawMutex`]. For any call to `rlock` there
//! is an n such that the n'th `unlock` synchronizes before that `rlock` returns, and the matching
//! `runlock` synchronizes before the (n+1)'th `lock` returns. The async forms and successful
//! `try_` forms count as the calls they stand for; a failed `try_` synchronizes with nothing.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::mutex::{LockFuture, RawMutex};
use crate::context::{Context as GoContext, ContextError};
use crate::loom::{Arc, AtomicUsize, Ordering};
use crate::sema::{
    self, Backoff, Origin, Queue, ThreadWait, Ticket, WaitKind, WaitRecord, Waiter, CTX_DONE,
};

/// The error of the context that completed a waiter with `CTX_DONE`.
fn ctx_err(ctx: Option<&GoContext>) -> ContextError {
    ctx.and_then(GoContext::err)
        .expect("only a context that is done completes with CTX_DONE")
}

/// The writer holds the lock: no reader remains.
const HELD: usize = 1;
/// A writer has announced itself (pending or holding).
const WRITER: usize = 2;
/// Readers are parked in the readers' queue.
const PARKED: usize = 4;
/// One reader in the `readers` field (the bits above the flags).
const ONE: usize = 8;

/// Token for a reader: `unlock` counted it in, it holds the read lock.
/// Token for the writer: the last reader left, it holds the write lock.
const GRANT: u32 = 1;

#[inline]
fn readers(s: usize) -> usize {
    s / ONE
}

/// A reader/writer mutual exclusion lock without data, as Go's `sync.RWMutex`.
///
/// The lock can be held by any number of readers or by one writer. The zero value
/// (`RawRwMutex::new()`) is unlocked. A held lock is not tied to a thread or task: one may lock
/// it and another unlock it.
///
/// It is **writer-preferring**: once a writer waits in [`lock`](Self::lock), new
/// [`rlock`](Self::rlock) calls block until it has locked and unlocked. So a reader must not
/// take a read lock it already holds: if a writer arrives in between, the second `rlock` waits
/// for the writer and the writer for the first read lock — a deadlock, as in Go.
///
/// In the terminology of the Go memory model, the n'th call to `unlock` synchronizes before the
/// m'th call to `lock` returns, for any n < m. For any call to `rlock`, there is an n such that
/// the n'th call to `unlock` synchronizes before that `rlock` returns, and the matching call to
/// `runlock` synchronizes before the (n+1)'th call to `lock` returns.
///
/// Misuse panics with Go's messages: [`runlock`](Self::runlock) without a read lock held,
/// `"sync: RUnlock of unlocked RWMutex"`; [`unlock`](Self::unlock) without the write lock held,
/// `"sync: Unlock of unlocked RWMutex"`.
///
/// ```
/// use gosync::sync::RawRwMutex;
///
/// let rw = RawRwMutex::new();
/// rw.rlock();
/// rw.rlock(); // readers share the lock (no writer waits here)
/// assert_eq!(rw.reader_count(), 2);
/// assert!(!rw.try_lock());
/// rw.runlock();
/// rw.runlock();
/// rw.lock();
/// assert!(!rw.try_rlock());
/// rw.unlock();
/// ```
// `repr(C)` keeps `state` away from `w`'s word (writers waiting for `w` must not take the
// readers' cache line) and puts it right before the data of an `RwMutex`, so that a reader
// usually finds its count and the data in one cache line.
#[repr(C)]
pub struct RawRwMutex {
    /// Serializes writers (Go's `w`).
    w: RawMutex,
    /// Readers waiting for the writer to unlock.
    readers_q: Queue,
    /// The writer (at most one, the holder of `w`) waiting for the readers to leave.
    writer_q: Queue,
    /// `readers * ONE | PARKED | WRITER | HELD`; see the module docs.
    state: AtomicUsize,
}

impl Default for RawRwMutex {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RawRwMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("RawRwMutex")
            .field("readers", &readers(s))
            .field("writer_pending", &(s & (WRITER | HELD) == WRITER))
            .field("locked", &(s & HELD != 0))
            .field("writers", &self.writer_count())
            .field("waiters", &self.waiters())
            .finish()
    }
}

impl RawRwMutex {
    /// A new, unlocked read-write mutex.
    ///
    /// ```
    /// static RW: gosync::sync::RawRwMutex = gosync::sync::RawRwMutex::new();
    /// RW.rlock();
    /// RW.runlock();
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new() -> Self {
        RawRwMutex {
            w: RawMutex::new(),
            readers_q: Queue::new(),
            writer_q: Queue::new(),
            state: AtomicUsize::new(0),
        }
    }

    /// A new, unlocked read-write mutex.
    #[cfg(loom)]
    #[track_caller]
    pub fn new() -> Self {
        RawRwMutex {
            w: RawMutex::new(),
            readers_q: Queue::new(),
            writer_q: Queue::new(),
            state: AtomicUsize::new(0),
        }
    }

    // ----- readers -------------------------------------------------------------------------

    /// Locks for reading, parking the calling thread while a writer holds the lock or waits
    /// for it.
    ///
    /// Do not call it while already holding a read lock: if a writer is waiting, that deadlocks
    /// (see the type docs).
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// rw.rlock();
    /// assert_eq!(rw.reader_count(), 1);
    /// rw.runlock();
    /// ```
    #[inline]
    #[track_caller]
    pub fn rlock(&self) {
        let prev = self.state.fetch_add(ONE, Ordering::Acquire);
        if prev & WRITER != 0 {
            self.rlock_slow(Origin::here(WaitKind::RwMutexRead));
        }
    }

    /// Locks for reading, parking the calling thread until no writer holds or awaits the lock,
    /// or until `ctx` is done, whichever comes first (see [`RawMutex::lock_ctx`] for why a
    /// thread needs this and what happens when both come at once).
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::sync::RawRwMutex;
    /// use std::time::Duration;
    ///
    /// let rw = RawRwMutex::new();
    /// rw.lock();
    /// let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    /// assert_eq!(rw.rlock_ctx(&ctx), Err(context::ContextError::DeadlineExceeded));
    /// rw.unlock();
    /// assert_eq!(rw.rlock_ctx(&context::background()), Ok(()));
    /// rw.runlock();
    /// ```
    #[track_caller]
    pub fn rlock_ctx(&self, ctx: &GoContext) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        let prev = self.state.fetch_add(ONE, Ordering::Acquire);
        if prev & WRITER != 0 {
            return self.rlock_slow_ctx(Origin::here(WaitKind::RwMutexRead), Some(ctx));
        }
        Ok(())
    }

    /// Tries to lock for reading without waiting; `true` on success.
    ///
    /// Fails while a writer holds the lock or waits for it (as Go's `TryRLock`).
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// assert!(rw.try_rlock());
    /// rw.runlock();
    /// rw.lock();
    /// assert!(!rw.try_rlock());
    /// rw.unlock();
    /// ```
    #[inline]
    pub fn try_rlock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & WRITER != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s + ONE, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Locks for reading from an async task; the future completes once the read lock is held.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses its place in the queue but no lock: if
    /// `unlock` had already granted it the read lock, the drop releases it.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let rw = gosync::sync::RawRwMutex::new();
    /// rw.rlock_async().await;
    /// rw.rlock_async().await;
    /// assert_eq!(rw.reader_count(), 2);
    /// rw.runlock();
    /// rw.runlock();
    /// # });
    /// ```
    #[track_caller]
    pub fn rlock_async(&self) -> ReadLockFuture<'_> {
        ReadLockFuture {
            rw: self,
            origin: Origin::here(WaitKind::RwMutexRead),
            ticket: None,
            done: false,
        }
    }

    /// Releases one read lock; the last reader to leave wakes a waiting writer.
    ///
    /// # Panics
    ///
    /// With `"sync: RUnlock of unlocked RWMutex"` if no read lock is held.
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// rw.rlock();
    /// rw.runlock();
    /// assert!(rw.try_lock());
    /// rw.unlock();
    /// ```
    #[inline]
    pub fn runlock(&self) {
        let prev = self.state.fetch_sub(ONE, Ordering::Release);
        if prev & WRITER != 0 || prev < ONE {
            self.runlock_slow(prev);
        }
    }

    #[cold]
    fn runlock_slow(&self, prev: usize) {
        if prev < ONE {
            // No reader was counted: put the count back and report the misuse.
            let now = self
                .state
                .fetch_add(ONE, Ordering::Relaxed)
                .wrapping_add(ONE);
            if now & (WRITER | HELD) == WRITER && readers(now) == 0 {
                self.wake_writer();
            }
            panic!("sync: RUnlock of unlocked RWMutex");
        }
        self.left(prev);
    }

    /// A reader's count was taken out of the state word, which held `prev` before: if that was
    /// the last reader a pending writer waited for, wake the writer.
    #[inline]
    fn left(&self, prev: usize) {
        if prev & (WRITER | HELD) == WRITER && readers(prev) == 1 {
            self.wake_writer();
        }
    }

    /// The reader count reached zero while a writer was pending: hand it the lock if it is
    /// parked and nothing changed meanwhile. A writer that is not parked sees the zero itself.
    #[cold]
    fn wake_writer(&self) {
        let mut q = self.writer_q.lock();
        // Reserve the writer first: its context may be racing to end its wait.
        if q.claim_front().is_none() {
            return;
        }
        let s = self.state.load(Ordering::Acquire);
        if s & (WRITER | HELD) != WRITER || readers(s) != 0 {
            q.unclaim_front();
            return;
        }
        self.state.fetch_or(HELD, Ordering::Relaxed);
        let n = q.complete_front(GRANT);
        drop(q);
        n.wake();
    }

    /// The reader's `fetch_add` met a writer: take the increment back (it wakes the writer if
    /// it was the last count), then wait on the queue.
    #[cold]
    fn rlock_slow(&self, origin: Origin) {
        let done = self.rlock_slow_ctx(origin, None);
        debug_assert!(done.is_ok());
    }

    /// A thread's read lock that met a writer, bounded by `ctx` when there is one.
    fn rlock_slow_ctx(&self, origin: Origin, ctx: Option<&GoContext>) -> Result<(), ContextError> {
        let origin = origin.on(self.w.ident());
        let _wait = ThreadWait::enter(&origin, None);
        self.back_off();
        let mut backoff = Backoff::new();
        loop {
            if self.try_rlock() {
                return Ok(());
            }
            if backoff.snooze() {
                continue;
            }
            let waiter = Waiter::new(origin, None, None);
            let watch = ctx.map(|c| c.watch(&waiter)).transpose()?.flatten();
            if let Some(ticket) = self.enqueue_reader(&waiter) {
                let token = ticket.waiter().park(None);
                drop(watch);
                if token == Some(CTX_DONE) {
                    self.leave_read(&ticket);
                    return Err(ctx_err(ctx));
                }
                drop(ticket);
                Waiter::recycle(waiter);
                // GRANT: `unlock` counted us in; we hold the read lock.
                return Ok(());
            }
            drop(watch);
            Waiter::recycle(waiter);
        }
    }

    /// Takes back the increment of a reader that met `WRITER`.
    #[inline]
    fn back_off(&self) {
        let prev = self.state.fetch_sub(ONE, Ordering::Relaxed);
        self.left(prev);
    }

    /// Queues a reader if a writer is still pending or holding; `None` if the writer has gone
    /// (the caller retries).
    fn enqueue_reader(&self, waiter: &Arc<Waiter>) -> Option<Ticket> {
        let mut q = self.readers_q.lock();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & WRITER == 0 {
                return None;
            }
            match self.state.compare_exchange_weak(
                s,
                s | PARKED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(q.push(waiter, false)),
                Err(now) => s = now,
            }
        }
    }

    /// A queued reader gave up: leave the queue, or release the read lock it was granted.
    fn cancel_read(&self, ticket: &Ticket) {
        let mut q = self.readers_q.lock();
        if q.withdraw(ticket).is_none() {
            if q.is_empty() {
                self.state.fetch_and(!PARKED, Ordering::Relaxed);
            }
            return;
        }
        drop(q);
        // GRANT: `unlock` counted us in.
        self.runlock();
    }

    /// A queued reader that its context completed leaves the queue, if still there.
    fn leave_read(&self, ticket: &Ticket) {
        let mut q = self.readers_q.lock();
        q.remove(ticket);
        if q.is_empty() {
            self.state.fetch_and(!PARKED, Ordering::Relaxed);
        }
    }

    // ----- writers -------------------------------------------------------------------------

    /// Locks for writing, parking the calling thread until no reader or other writer holds the
    /// lock. From the moment it waits, new readers wait behind it.
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// rw.lock();
    /// assert!(rw.is_locked());
    /// rw.unlock();
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) {
        // Wait for `w` without spinning (see "Spinning" in the module docs).
        self.w.lock_as(Origin::here(WaitKind::RwMutexWrite), false);
        if self
            .state
            .compare_exchange(0, WRITER | HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(Origin::here(WaitKind::RwMutexWrite));
        }
    }

    /// Locks for writing, parking the calling thread until no reader or other writer holds the
    /// lock, or until `ctx` is done, whichever comes first. A writer that gives up after it
    /// announced itself withdraws and lets in the readers it had held up.
    ///
    /// ```
    /// use gosync::context;
    /// use gosync::sync::RawRwMutex;
    /// use std::time::Duration;
    ///
    /// let rw = RawRwMutex::new();
    /// rw.rlock();
    /// let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
    /// assert_eq!(rw.lock_ctx(&ctx), Err(context::ContextError::DeadlineExceeded));
    /// assert!(rw.try_rlock(), "the writer withdrew");
    /// rw.runlock();
    /// rw.runlock();
    /// ```
    #[track_caller]
    pub fn lock_ctx(&self, ctx: &GoContext) -> Result<(), ContextError> {
        let origin = Origin::here(WaitKind::RwMutexWrite);
        self.w.lock_ctx_as(ctx, origin, false)?;
        if self
            .state
            .compare_exchange(0, WRITER | HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        self.lock_slow_ctx(origin, Some(ctx))
    }

    #[cold]
    fn lock_slow(&self, origin: Origin) {
        let done = self.lock_slow_ctx(origin, None);
        debug_assert!(done.is_ok());
    }

    /// With `w` held, a thread waits for the readers to leave, bounded by `ctx` if there is
    /// one; on `Err` it has withdrawn (and unlocked `w`).
    fn lock_slow_ctx(&self, origin: Origin, ctx: Option<&GoContext>) -> Result<(), ContextError> {
        let origin = origin.on(self.w.ident());
        let _wait = ThreadWait::enter(&origin, None);
        if self.announce() {
            return Ok(());
        }
        let mut backoff = Backoff::new();
        while backoff.snooze() {
            if self.drained() {
                return Ok(());
            }
        }
        let waiter = Waiter::new(origin, None, None);
        let watch = match ctx.map(|c| c.watch(&waiter)).transpose() {
            Ok(w) => w.flatten(),
            Err(e) => {
                self.release(false);
                return Err(e);
            }
        };
        let Some(ticket) = self.enqueue_writer(&waiter) else {
            return Ok(());
        };
        let token = ticket.waiter().park(None);
        drop(watch);
        if token == Some(CTX_DONE) {
            // Withdraw: let in the readers we held up, and the next writer.
            self.writer_q.lock().remove(&ticket);
            self.release(false);
            return Err(ctx_err(ctx));
        }
        drop(ticket);
        Waiter::recycle(waiter);
        // GRANT: the last reader handed us the lock.
        Ok(())
    }

    /// With `w` held: sets `WRITER`; `true` if no reader holds the lock (then we hold it).
    #[inline]
    fn announce(&self) -> bool {
        let prev = self.state.fetch_or(WRITER, Ordering::Acquire);
        debug_assert_eq!(prev & (WRITER | HELD | PARKED), 0);
        if readers(prev) == 0 {
            self.state.fetch_or(HELD, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// The announced writer, not queued, checks whether the readers have left; if so it holds.
    #[inline]
    fn drained(&self) -> bool {
        if readers(self.state.load(Ordering::Acquire)) == 0 {
            self.state.fetch_or(HELD, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Queues the announced writer unless the readers have left meanwhile (`None`: it holds).
    fn enqueue_writer(&self, waiter: &Arc<Waiter>) -> Option<Ticket> {
        let mut q = self.writer_q.lock();
        if self.drained() {
            return None;
        }
        Some(q.push(waiter, false))
    }

    /// Tries to lock for writing without waiting; `true` on success.
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// assert!(rw.try_lock());
    /// assert!(!rw.try_lock());
    /// assert!(!rw.try_rlock());
    /// rw.unlock();
    /// ```
    #[inline]
    pub fn try_lock(&self) -> bool {
        if !self.w.try_lock() {
            return false;
        }
        if self
            .state
            .compare_exchange(0, WRITER | HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
        self.w.unlock();
        false
    }

    /// Locks for writing from an async task; the future completes once the write lock is held.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses no lock and blocks no reader: a writer
    /// still waiting for other writers leaves their queue; one already waiting for readers to
    /// leave withdraws and lets in the readers it had held up; one that had just been handed the
    /// lock unlocks it.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let rw = gosync::sync::RawRwMutex::new();
    /// rw.lock_async().await;
    /// assert!(rw.is_locked());
    /// rw.unlock();
    /// # });
    /// ```
    #[track_caller]
    pub fn lock_async(&self) -> WriteLockFuture<'_> {
        let origin = Origin::here(WaitKind::RwMutexWrite);
        WriteLockFuture {
            rw: self,
            origin,
            stage: WriteStage::Writers(self.w.lock_async_as(origin)),
        }
    }

    /// Unlocks for writing: lets in every reader that waited, then the next writer.
    ///
    /// # Panics
    ///
    /// With `"sync: Unlock of unlocked RWMutex"` if the write lock is not held.
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// rw.lock();
    /// rw.unlock();
    /// assert!(rw.try_rlock());
    /// rw.runlock();
    /// ```
    #[inline]
    pub fn unlock(&self) {
        self.release(true);
    }

    /// Clears `WRITER` (and `HELD`), granting the lock to queued readers, then unlocks `w`.
    /// `held`: a holder unlocking (panics if not held); otherwise a pending writer withdrawing.
    fn release(&self, held: bool) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if held && s & HELD == 0 {
                panic!("sync: Unlock of unlocked RWMutex");
            }
            debug_assert!(s & WRITER != 0);
            if s & PARKED != 0 {
                break;
            }
            match self.state.compare_exchange_weak(
                s,
                s & !(WRITER | HELD),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.w.unlock();
                    return;
                }
                Err(now) => s = now,
            }
        }
        self.release_slow(held);
    }

    #[cold]
    fn release_slow(&self, held: bool) {
        let mut q = self.readers_q.lock();
        // Reserve the readers first: only those that no context ended get the lock.
        let granted = q.reserve_all() * ONE;
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if held && s & HELD == 0 {
                q.unclaim_all();
                drop(q);
                panic!("sync: Unlock of unlocked RWMutex");
            }
            let new = (s & !(WRITER | HELD | PARKED)) + granted;
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        let woken = q.complete_all(GRANT);
        drop(q);
        self.w.unlock();
        sema::wake_all(woken).resume();
    }

    /// A queued writer gave up: withdraw, or unlock if the last reader had handed it the lock.
    fn cancel_write(&self, ticket: &Ticket) {
        let granted = self.writer_q.lock().withdraw(ticket).is_some();
        self.release(granted);
    }

    // ----- introspection -------------------------------------------------------------------

    /// The number of readers holding the lock (the seed's `ReaderCount`). While a writer waits,
    /// these are the readers it waits for.
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// rw.rlock();
    /// assert_eq!(rw.reader_count(), 1);
    /// rw.runlock();
    /// ```
    pub fn reader_count(&self) -> usize {
        let s = self.state.load(Ordering::Relaxed);
        if s & HELD != 0 {
            0
        } else {
            readers(s)
        }
    }

    /// The number of writers holding the lock or waiting for it (the seed's `WriterCount`).
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// rw.lock();
    /// assert_eq!(rw.writer_count(), 1);
    /// rw.unlock();
    /// assert_eq!(rw.writer_count(), 0);
    /// ```
    pub fn writer_count(&self) -> usize {
        self.w.count()
    }

    /// Whether a writer holds the lock right now.
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// assert!(!rw.is_locked());
    /// rw.lock();
    /// assert!(rw.is_locked());
    /// rw.unlock();
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & HELD != 0
    }

    /// Whether a writer has announced itself and waits for readers to leave (new readers are
    /// held up meanwhile).
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// assert!(!rw.is_writer_pending());
    /// ```
    pub fn is_writer_pending(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (WRITER | HELD) == WRITER
    }

    /// The number of parked waiters: readers, the writer waiting for readers to leave, and
    /// writers waiting for that writer.
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// assert_eq!(rw.waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.readers_q.len() + self.writer_q.len() + self.w.waiters()
    }

    /// Who waits for this lock, where, and for how long: the writer waiting for readers first,
    /// then writers waiting for it, then readers.
    ///
    /// ```
    /// let rw = gosync::sync::RawRwMutex::new();
    /// assert!(rw.waiting().is_empty());
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        let mut v = self.writer_q.records();
        v.extend(self.w.waiting());
        v.extend(self.readers_q.records());
        v
    }
}

/// The future returned by [`RawRwMutex::rlock_async`].
#[must_use = "futures do nothing unless polled"]
pub struct ReadLockFuture<'a> {
    rw: &'a RawRwMutex,
    origin: Origin,
    ticket: Option<Ticket>,
    done: bool,
}

impl fmt::Debug for ReadLockFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadLockFuture")
            .field("queued", &self.ticket.is_some())
            .field("done", &self.done)
            .finish()
    }
}

impl Future for ReadLockFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        assert!(!this.done, "ReadLockFuture polled after completion");
        let rw = this.rw;
        if let Some(ticket) = &this.ticket {
            // The only token a reader gets is GRANT: it holds the read lock.
            return match ticket.waiter().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(_) => {
                    this.ticket = None;
                    this.done = true;
                    Poll::Ready(())
                }
            };
        }
        let prev = rw.state.fetch_add(ONE, Ordering::Acquire);
        if prev & WRITER == 0 {
            this.done = true;
            return Poll::Ready(());
        }
        rw.back_off();
        // A task does not spin: it would hold up its executor.
        loop {
            if rw.try_rlock() {
                this.done = true;
                return Poll::Ready(());
            }
            let waiter = Waiter::new(this.origin.on(rw.w.ident()), None, Some(cx));
            if let Some(ticket) = rw.enqueue_reader(&waiter) {
                this.ticket = Some(ticket);
                return Poll::Pending;
            }
        }
    }
}

impl Drop for ReadLockFuture<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.rw.cancel_read(&ticket);
        }
    }
}

enum WriteStage<'a> {
    /// Waiting for `w`, behind other writers.
    Writers(LockFuture<'a>),
    /// Announced, queued until the readers leave.
    Readers(Ticket),
    /// Completed.
    Done,
}

/// The future returned by [`RawRwMutex::lock_async`].
#[must_use = "futures do nothing unless polled"]
pub struct WriteLockFuture<'a> {
    rw: &'a RawRwMutex,
    origin: Origin,
    stage: WriteStage<'a>,
}

impl fmt::Debug for WriteLockFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            WriteStage::Writers(_) => "waiting for writers",
            WriteStage::Readers(_) => "waiting for readers",
            WriteStage::Done => "done",
        };
        f.debug_struct("WriteLockFuture")
            .field("stage", &stage)
            .finish()
    }
}

impl Future for WriteLockFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let rw = this.rw;
        match &mut this.stage {
            WriteStage::Writers(w) => {
                if Pin::new(w).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // `w` is ours; the completed `LockFuture` has nothing left to cancel.
                this.stage = WriteStage::Done;
                if rw.announce() {
                    return Poll::Ready(());
                }
                let waiter = Waiter::new(this.origin.on(rw.w.ident()), None, Some(cx));
                match rw.enqueue_writer(&waiter) {
                    None => Poll::Ready(()),
                    Some(ticket) => {
                        this.stage = WriteStage::Readers(ticket);
                        Poll::Pending
                    }
                }
            }
            WriteStage::Readers(ticket) => match ticket.waiter().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(_) => {
                    // GRANT: the last reader handed us the lock.
                    this.stage = WriteStage::Done;
                    Poll::Ready(())
                }
            },
            WriteStage::Done => panic!("WriteLockFuture polled after completion"),
        }
    }
}

impl Drop for WriteLockFuture<'_> {
    fn drop(&mut self) {
        // A `Writers` stage cancels itself through `LockFuture`'s drop.
        if let WriteStage::Readers(ticket) = std::mem::replace(&mut self.stage, WriteStage::Done) {
            self.rw.cancel_write(&ticket);
        }
    }
}

/// A reader/writer lock protecting a `T`, over a [`RawRwMutex`].
///
/// Any number of readers ([`read`](Self::read), [`read_async`](Self::read_async)) or one writer
/// ([`write`](Self::write), [`write_async`](Self::write_async)) hold it at a time; threads and
/// tasks may share one `RwMutex`. It is writer-preferring: a waiting writer holds up new
/// readers, so never take a read guard while holding one (see [`RawRwMutex`]).
///
/// The guards may be sent to another thread (unlike std's), since a Go `RWMutex` may be unlocked
/// anywhere; that is what lets a task hold one across `.await`. There is no poisoning: a panic
/// while a guard is held releases the lock, as Go's deferred `Unlock` would.
///
/// Happens-before, as for [`RawRwMutex`]: write unlock n synchronizes before write lock n + 1
/// returns, and every read lock sees the writes of the write lock before it.
///
/// ```
/// use gosync::sync::RwMutex;
/// use std::sync::Arc;
///
/// let config = Arc::new(RwMutex::new(String::from("v1")));
/// let readers: Vec<_> = (0..4)
///     .map(|_| {
///         let config = config.clone();
///         std::thread::spawn(move || config.read().len())
///     })
///     .collect();
/// config.write().push_str(".1");
/// for r in readers {
///     let n = r.join().unwrap();
///     assert!(n == 2 || n == 4);
/// }
/// assert_eq!(*config.read(), "v1.1");
/// ```
#[repr(C)]
pub struct RwMutex<T: ?Sized> {
    raw: RawRwMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one holder at a time and `&T` to any number of readers
// at once, possibly on different threads: sending it needs `T: Send`, sharing it needs
// `T: Send + Sync` (as for `std::sync::RwLock`).
unsafe impl<T: ?Sized + Send> Send for RwMutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwMutex<T> {}

impl<T: Default> Default for RwMutex<T> {
    fn default() -> Self {
        RwMutex::new(T::default())
    }
}

impl<T> From<T> for RwMutex<T> {
    fn from(value: T) -> Self {
        RwMutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwMutex");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T> RwMutex<T> {
    /// A new, unlocked lock holding `value`.
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(5);
    /// assert_eq!(*rw.read(), 5);
    /// ```
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new(value: T) -> Self {
        RwMutex {
            raw: RawRwMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// A new, unlocked lock holding `value`.
    #[cfg(loom)]
    #[track_caller]
    pub fn new(value: T) -> Self {
        RwMutex {
            raw: RawRwMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning the value.
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(vec![1]);
    /// rw.write().push(2);
    /// assert_eq!(rw.into_inner(), [1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwMutex<T> {
    /// Locks for reading, parking the calling thread while a writer holds the lock or waits.
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(1);
    /// let a = rw.read();
    /// let b = rw.read(); // fine here; with a writer waiting it would deadlock
    /// assert_eq!(*a + *b, 2);
    /// ```
    #[inline]
    #[track_caller]
    pub fn read(&self) -> RwMutexReadGuard<'_, T> {
        self.raw.rlock();
        RwMutexReadGuard { rw: self }
    }

    /// Locks for writing, parking the calling thread until the lock is free.
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(1);
    /// *rw.write() += 1;
    /// assert_eq!(*rw.read(), 2);
    /// ```
    #[inline]
    #[track_caller]
    pub fn write(&self) -> RwMutexWriteGuard<'_, T> {
        self.raw.lock();
        RwMutexWriteGuard { rw: self }
    }

    /// Locks for reading, parking the calling thread until it can or until `ctx` is done (see
    /// [`RawRwMutex::rlock_ctx`]).
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(1);
    /// assert_eq!(*rw.read_ctx(&gosync::context::background()).unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn read_ctx(&self, ctx: &GoContext) -> Result<RwMutexReadGuard<'_, T>, ContextError> {
        self.raw.rlock_ctx(ctx)?;
        Ok(RwMutexReadGuard { rw: self })
    }

    /// Locks for writing, parking the calling thread until it can or until `ctx` is done (see
    /// [`RawRwMutex::lock_ctx`]).
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(1);
    /// *rw.write_ctx(&gosync::context::background()).unwrap() += 1;
    /// assert_eq!(*rw.read(), 2);
    /// ```
    #[track_caller]
    pub fn write_ctx(&self, ctx: &GoContext) -> Result<RwMutexWriteGuard<'_, T>, ContextError> {
        self.raw.lock_ctx(ctx)?;
        Ok(RwMutexWriteGuard { rw: self })
    }

    /// Locks for reading if no writer holds the lock or waits for it.
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(1);
    /// let w = rw.write();
    /// assert!(rw.try_read().is_none());
    /// drop(w);
    /// assert_eq!(*rw.try_read().unwrap(), 1);
    /// ```
    #[inline]
    pub fn try_read(&self) -> Option<RwMutexReadGuard<'_, T>> {
        self.raw.try_rlock().then(|| RwMutexReadGuard { rw: self })
    }

    /// Locks for writing if the lock is free.
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(1);
    /// let r = rw.read();
    /// assert!(rw.try_write().is_none());
    /// drop(r);
    /// *rw.try_write().unwrap() = 2;
    /// ```
    #[inline]
    pub fn try_write(&self) -> Option<RwMutexWriteGuard<'_, T>> {
        self.raw.try_lock().then(|| RwMutexWriteGuard { rw: self })
    }

    /// Locks for reading from an async task.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses no lock (see
    /// [`RawRwMutex::rlock_async`]).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let rw = gosync::sync::RwMutex::new(7);
    /// assert_eq!(*rw.read_async().await, 7);
    /// # });
    /// ```
    #[track_caller]
    pub fn read_async(&self) -> RwMutexReadFuture<'_, T> {
        RwMutexReadFuture {
            rw: self,
            inner: self.raw.rlock_async(),
        }
    }

    /// Locks for writing from an async task.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes loses no lock and releases the readers it held
    /// up (see [`RawRwMutex::lock_async`]).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let rw = gosync::sync::RwMutex::new(7);
    /// *rw.write_async().await += 1;
    /// assert_eq!(*rw.read_async().await, 8);
    /// # });
    /// ```
    #[track_caller]
    pub fn write_async(&self) -> RwMutexWriteFuture<'_, T> {
        RwMutexWriteFuture {
            rw: self,
            inner: self.raw.lock_async(),
        }
    }

    /// A mutable reference to the value; no locking is needed, since `&mut self` is unique.
    ///
    /// ```
    /// let mut rw = gosync::sync::RwMutex::new(1);
    /// *rw.get_mut() = 3;
    /// assert_eq!(*rw.read(), 3);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The number of readers holding the lock or waiting for it (the seed's `ReaderCount`);
    /// see [`RawRwMutex::reader_count`].
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(());
    /// let _r = rw.read();
    /// assert_eq!(rw.reader_count(), 1);
    /// ```
    pub fn reader_count(&self) -> usize {
        self.raw.reader_count()
    }

    /// The number of writers holding the lock or waiting for it (the seed's `WriterCount`).
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(());
    /// let _w = rw.write();
    /// assert_eq!(rw.writer_count(), 1);
    /// ```
    pub fn writer_count(&self) -> usize {
        self.raw.writer_count()
    }

    /// Whether a writer holds the lock right now.
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(());
    /// let w = rw.write();
    /// assert!(rw.is_locked());
    /// drop(w);
    /// assert!(!rw.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Whether a writer has announced itself and waits for readers to leave.
    ///
    /// ```
    /// assert!(!gosync::sync::RwMutex::new(()).is_writer_pending());
    /// ```
    pub fn is_writer_pending(&self) -> bool {
        self.raw.is_writer_pending()
    }

    /// The number of parked waiters, readers and writers.
    ///
    /// ```
    /// assert_eq!(gosync::sync::RwMutex::new(()).waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.raw.waiters()
    }

    /// Who waits for this lock, where, and for how long.
    ///
    /// ```
    /// assert!(gosync::sync::RwMutex::new(()).waiting().is_empty());
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.raw.waiting()
    }

    /// The underlying raw lock, for code that must lock and unlock it in its own way. For
    /// introspection, the methods above need no `unsafe`.
    ///
    /// # Safety
    ///
    /// The raw lock must not be unlocked (`unlock`, `runlock`) while a guard of this
    /// `RwMutex` is alive, nor locked through it and then used as if a guard were held:
    /// either would let safe code reach the value from two places at once, one of them
    /// mutably. Safe code cannot do it through `&RwMutex`:
    ///
    /// ```compile_fail,E0133
    /// let rw = gosync::sync::RwMutex::new(0);
    /// let mut w = rw.write();
    /// rw.raw().unlock(); // would free the lock under a live guard
    /// let r = rw.read();
    /// *w += 1;
    /// ```
    ///
    /// ```
    /// let rw = gosync::sync::RwMutex::new(0);
    /// // SAFETY: no guard is alive, and the read lock is given back before one is taken.
    /// let raw = unsafe { rw.raw() };
    /// raw.rlock();
    /// raw.runlock();
    /// *rw.write() += 1;
    /// ```
    pub unsafe fn raw(&self) -> &RawRwMutex {
        &self.raw
    }
}

/// The future returned by [`RwMutex::read_async`].
#[must_use = "futures do nothing unless polled"]
pub struct RwMutexReadFuture<'a, T: ?Sized> {
    rw: &'a RwMutex<T>,
    inner: ReadLockFuture<'a>,
}

impl<T: ?Sized> fmt::Debug for RwMutexReadFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'a, T: ?Sized> Future for RwMutexReadFuture<'a, T> {
    type Output = RwMutexReadGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.inner)
            .poll(cx)
            .map(|()| RwMutexReadGuard { rw: this.rw })
    }
}

/// The future returned by [`RwMutex::write_async`].
#[must_use = "futures do nothing unless polled"]
pub struct RwMutexWriteFuture<'a, T: ?Sized> {
    rw: &'a RwMutex<T>,
    inner: WriteLockFuture<'a>,
}

impl<T: ?Sized> fmt::Debug for RwMutexWriteFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'a, T: ?Sized> Future for RwMutexWriteFuture<'a, T> {
    type Output = RwMutexWriteGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.inner)
            .poll(cx)
            .map(|()| RwMutexWriteGuard { rw: this.rw })
    }
}

/// Holds an [`RwMutex`] locked for reading; releases the read lock when dropped.
///
/// ```
/// let rw = gosync::sync::RwMutex::new(String::from("go"));
/// let g = rw.read();
/// assert_eq!(g.len(), 2);
/// ```
#[must_use = "if unused the RwMutex will immediately unlock"]
pub struct RwMutexReadGuard<'a, T: ?Sized> {
    rw: &'a RwMutex<T>,
}

// SAFETY: a read guard only gives `&T`; holding it on, or moving it to, another thread shares
// `&T` with that thread, which `T: Sync` allows. Any thread may release a read lock.
unsafe impl<T: ?Sized + Sync> Sync for RwMutexReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Send for RwMutexReadGuard<'_, T> {}

impl<'a, T: ?Sized> RwMutexReadGuard<'a, T> {
    /// The lock this guard holds.
    ///
    /// ```
    /// use gosync::sync::{RwMutex, RwMutexReadGuard};
    /// let rw = RwMutex::new(0);
    /// let g = rw.read();
    /// assert!(std::ptr::eq(RwMutexReadGuard::rwmutex(&g), &rw));
    /// ```
    pub fn rwmutex(guard: &Self) -> &'a RwMutex<T> {
        guard.rw
    }
}

impl<T: ?Sized> Deref for RwMutexReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds a read lock, so no writer accesses `data`.
        unsafe { &*self.rw.data.get() }
    }
}

impl<T: ?Sized> Drop for RwMutexReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.rw.raw.runlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Holds an [`RwMutex`] locked for writing; unlocks it when dropped.
///
/// ```
/// let rw = gosync::sync::RwMutex::new(Vec::new());
/// let mut g = rw.write();
/// g.push(1);
/// drop(g);
/// assert_eq!(*rw.read(), [1]);
/// ```
#[must_use = "if unused the RwMutex will immediately unlock"]
pub struct RwMutexWriteGuard<'a, T: ?Sized> {
    rw: &'a RwMutex<T>,
}

// SAFETY: the guard gives `&T` to whoever holds a `&RwMutexWriteGuard`, so it is `Sync` when `T`
// is.
unsafe impl<T: ?Sized + Sync> Sync for RwMutexWriteGuard<'_, T> {}
// SAFETY: a gosync lock may be unlocked from any thread, and the guard is the only access to
// `T` while it lives, so it may move with `T`.
unsafe impl<T: ?Sized + Send> Send for RwMutexWriteGuard<'_, T> {}

impl<'a, T: ?Sized> RwMutexWriteGuard<'a, T> {
    /// The lock this guard holds.
    ///
    /// ```
    /// use gosync::sync::{RwMutex, RwMutexWriteGuard};
    /// let rw = RwMutex::new(0);
    /// let g = rw.write();
    /// assert!(std::ptr::eq(RwMutexWriteGuard::rwmutex(&g), &rw));
    /// ```
    pub fn rwmutex(guard: &Self) -> &'a RwMutex<T> {
        guard.rw
    }
}

impl<T: ?Sized> Deref for RwMutexWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the write lock, so no one else accesses `data`.
        unsafe { &*self.rw.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwMutexWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the write lock, and `&mut self` makes this access unique.
        unsafe { &mut *self.rw.data.get() }
    }
}

impl<T: ?Sized> Drop for RwMutexWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.rw.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
