//! How long to spin before parking.
//!
//! Parking a thread and waking it again costs tens of microseconds when the waker runs on
//! another core (about 19 µs on a 2-vCPU VM; 4 µs on the same one), while a critical section
//! guarded by a mutex is usually far shorter. So a contended locker first spins on the lock
//! word with exponentially growing pauses, then yields its time slice a few times (which lets
//! the holder run when there are more threads than cores), and only then parks. Go's runtime
//! spins 4 × 30 pauses before parking a goroutine, because parking a goroutine is cheap; a
//! thread's park is not, so gosync spins longer, in the manner of parking_lot.

use crate::loom;

/// Spin-then-yield counter for one contended acquisition.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

/// Steps that spin with `2^step` pauses.
#[cfg(not(loom))]
const SPIN_LIMIT: u32 = 6;
/// Steps after which the caller should park.
#[cfg(not(loom))]
const YIELD_LIMIT: u32 = 10;
// Under loom one spin step is enough to explore "spun and found it free" and "gave up".
#[cfg(loom)]
const SPIN_LIMIT: u32 = 1;
#[cfg(loom)]
const YIELD_LIMIT: u32 = 1;

impl Backoff {
    /// A fresh backoff.
    pub(crate) const fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Waits a little; returns `false` once the caller should park instead.
    #[inline]
    pub(crate) fn snooze(&mut self) -> bool {
        if self.step >= YIELD_LIMIT {
            return false;
        }
        if self.step < SPIN_LIMIT {
            for _ in 0..(1u32 << self.step) {
                loom::spin_loop();
            }
        } else {
            loom::thread::yield_now();
        }
        self.step += 1;
        true
    }
}
