//! The one place that names the synchronization building blocks.
//!
//! Every atomic, lock, `Arc` and thread operation in gosync goes through this module, so that
//! the cores can be model-checked with [loom](https://docs.rs/loom) by building with
//! `RUSTFLAGS="--cfg loom"`. Under loom, time does not pass by itself: waits with a deadline
//! never time out, and the starvation clock moves only when a model moves it.

#[cfg(not(loom))]
mod imp {
    #[allow(unused_imports)]
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
    pub(crate) use std::thread;

    /// An `UnsafeCell` with loom's closure-based access API, so loom can check every access.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    #[allow(dead_code)]
    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        #[inline]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// A hint that we are spinning on a shared word.
    #[inline]
    pub(crate) fn spin_loop() {
        std::hint::spin_loop();
    }

    /// Parks the current thread until unparked or `deadline` passes.
    pub(crate) fn park_until(deadline: Option<std::time::Instant>) {
        match deadline {
            None => thread::park(),
            Some(d) => {
                let now = std::time::Instant::now();
                if d > now {
                    thread::park_timeout(d - now);
                }
            }
        }
    }

    /// The clock used to measure how long a waiter has waited.
    #[inline]
    pub(crate) fn now() -> std::time::Instant {
        std::time::Instant::now()
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    #[allow(unused_imports)]
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
    pub(crate) use loom::thread;

    pub(crate) fn spin_loop() {
        loom::thread::yield_now();
    }

    pub(crate) fn park_until(_deadline: Option<std::time::Instant>) {
        loom::thread::park();
    }

    /// Set by a model to make every waiter count as starved (time does not pass under loom).
    pub(crate) static FORCE_STARVED: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);

    /// How far a model has moved the clock (see [`now`]), in nanoseconds.
    pub(crate) static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// Under loom time does not pass by itself: every read of the clock returns the same
    /// instant, moved only by a model (`__loom_clock_advance`), so runs stay deterministic and
    /// a model decides which waiter has starved.
    pub(crate) fn now() -> std::time::Instant {
        use std::sync::OnceLock;
        static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
        let base = *EPOCH.get_or_init(std::time::Instant::now);
        base + std::time::Duration::from_nanos(CLOCK.load(std::sync::atomic::Ordering::Relaxed))
    }
}

pub(crate) use imp::*;
pub(crate) use std::sync::atomic::Ordering;
