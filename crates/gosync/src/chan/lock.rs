//! The channel lock: one per channel, held only for a few dozen instructions, with a version.
//!
//! Go's runtime guards each channel with a runtime mutex that spins before it sleeps. gosync
//! does the same with a test-and-test-and-set spin lock: every critical section is bounded
//! (a buffer push or pop, a queue push or pop, a few stores), so a waiter spins briefly and
//! then yields its time slice, which lets a preempted holder run again when there are more
//! threads than cores. A sleeping mutex would cost a system call per contended hand-over,
//! more than the critical section itself.
//!
//! The lock word also counts the critical sections that changed the guarded state (the state
//! says so through [`Dirty`]): a `select` with a `default` arm polls its channels one lock at
//! a time, and re-reads the versions afterwards to prove that no channel changed in between —
//! so its "nothing was ready" holds at one instant, as Go's, which locks them all at once.
//! The word is 64 bits wide: the count cannot wrap while a poll is in progress. It fits in the
//! padding a flag would leave anyway, so it costs no space.

use std::ops::{Deref, DerefMut};

#[cfg(not(loom))]
use crate::loom;
use crate::loom::{AtomicU64, Ordering, UnsafeCell};

/// State that can say whether a critical section changed it.
pub(crate) trait Dirty {
    /// Whether the state changed since the last call; clears the mark.
    fn take_dirty(&mut self) -> bool;
}

/// A spin lock with yielding backoff and a change counter.
pub(crate) struct Lock<T> {
    /// Bit 0: locked. Bits 1..: the number of critical sections that changed the state.
    word: AtomicU64,
    /// Under loom, exclusion comes from loom's mutex (a spin loop would make models explode);
    /// the word still carries the change count.
    #[cfg(loom)]
    m: ::loom::sync::Mutex<()>,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one holder at a time, as a mutex does.
unsafe impl<T: Send> Send for Lock<T> {}
// SAFETY: as above; `&Lock<T>` only gives access through the lock.
unsafe impl<T: Send> Sync for Lock<T> {}

const LOCKED: u64 = 1;

/// Rounds of doubling pauses (1, 2, 4, ... spin hints) before a waiter starts yielding.
#[cfg(not(loom))]
const SPINS: u32 = 9;

impl<T: Dirty> Lock<T> {
    pub(crate) fn new(value: T) -> Self {
        Lock {
            word: AtomicU64::new(0),
            #[cfg(loom)]
            m: ::loom::sync::Mutex::new(()),
            value: UnsafeCell::new(value),
        }
    }

    #[cfg(loom)]
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        let g = self.m.lock().unwrap();
        let w = self.word.load(Ordering::Relaxed);
        self.word.store(w | LOCKED, Ordering::Relaxed);
        Guard {
            lock: self,
            word: w,
            _g: g,
        }
    }

    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        let mut w = self.word.load(Ordering::Relaxed);
        if w & LOCKED != 0
            || self
                .word
                .compare_exchange_weak(w, w | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            w = self.lock_slow();
        }
        Guard {
            lock: self,
            word: w,
        }
    }

    #[cfg(not(loom))]
    #[cold]
    fn lock_slow(&self) -> u64 {
        let mut spins = 0u32;
        loop {
            // Test before test-and-set: spin on a shared cache line, not an exclusive one.
            let mut w = self.word.load(Ordering::Relaxed);
            while w & LOCKED != 0 {
                // A few short pauses cover a holder running on the other core; past them the
                // holder has likely been preempted, and only yielding lets it finish.
                if spins < SPINS {
                    for _ in 0..(1u32 << spins) {
                        loom::spin_loop();
                    }
                    spins += 1;
                } else {
                    loom::thread::yield_now();
                }
                w = self.word.load(Ordering::Relaxed);
            }
            if self
                .word
                .compare_exchange_weak(w, w | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return w;
            }
        }
    }

    /// The change count, or `None` while someone holds the lock (a change may be under way).
    /// Acquire: a caller that sees the same count twice saw no change in between.
    #[inline]
    pub(crate) fn version(&self) -> Option<u64> {
        let w = self.word.load(Ordering::Acquire);
        (w & LOCKED == 0).then_some(w >> 1)
    }
}

/// Holds the lock; releases it when dropped, counting the section if it changed the state.
pub(crate) struct Guard<'a, T: Dirty> {
    lock: &'a Lock<T>,
    /// The word as it was when the lock was taken (unlocked; only the holder changes it).
    word: u64,
    #[cfg(loom)]
    _g: ::loom::sync::MutexGuard<'a, ()>,
}

impl<T: Dirty> Guard<'_, T> {
    /// The change count as of this critical section (it cannot change while held).
    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.word >> 1
    }
}

impl<T: Dirty> Deref for Guard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        self.lock.value.with(|p| unsafe { &*p })
    }
}

impl<T: Dirty> DerefMut for Guard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this thread holds the lock, and `&mut self`
        // makes this the only reference handed out through it.
        self.lock.value.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T: Dirty> Drop for Guard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        let changed = self.lock.value.with_mut(|p| {
            // SAFETY: we still hold the lock.
            unsafe { (*p).take_dirty() }
        });
        // Only the holder writes the word, so the value read at lock time is still current.
        let w = if changed { self.word + 2 } else { self.word };
        self.lock.word.store(w, Ordering::Release);
    }
}
