//! The channel lock: one per channel, held only for a few dozen instructions.
//!
//! Go's runtime guards each channel with a runtime mutex that spins before it sleeps. gosync
//! does the same with a test-and-test-and-set spin lock: every critical section is bounded
//! (a buffer push or pop, a queue push or pop, a few stores), so a waiter spins briefly and
//! then yields its time slice, which lets a preempted holder run again when there are more
//! threads than cores. A sleeping mutex would cost a system call per contended hand-over,
//! more than the critical section itself. Under loom the lock is loom's mutex, so models
//! explore every interleaving of the sections.

#[cfg(not(loom))]
mod imp {
    use std::cell::UnsafeCell;
    use std::ops::{Deref, DerefMut};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A spin lock with yielding backoff.
    pub(crate) struct Lock<T> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: the lock hands out access to `value` to one holder at a time, as a mutex does.
    unsafe impl<T: Send> Send for Lock<T> {}
    // SAFETY: as above; `&Lock<T>` only gives access through the lock.
    unsafe impl<T: Send> Sync for Lock<T> {}

    impl<T> Lock<T> {
        pub(crate) const fn new(value: T) -> Self {
            Lock {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }

        #[inline]
        pub(crate) fn lock(&self) -> Guard<'_, T> {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_slow();
            }
            Guard { lock: self }
        }

        #[cold]
        fn lock_slow(&self) {
            let mut spins = 0u32;
            loop {
                // Test before test-and-set: spin on a shared cache line, not an exclusive one.
                while self.locked.load(Ordering::Relaxed) {
                    if spins < 64 {
                        for _ in 0..(1u32 << (spins / 8).min(5)) {
                            std::hint::spin_loop();
                        }
                        spins += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
                if self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
    }

    /// Holds the lock; releases it when dropped.
    pub(crate) struct Guard<'a, T> {
        lock: &'a Lock<T>,
    }

    impl<T> Deref for Guard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            // SAFETY: the guard exists only while this thread holds the lock.
            unsafe { &*self.lock.value.get() }
        }
    }

    impl<T> DerefMut for Guard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard exists only while this thread holds the lock, and `&mut self`
            // makes this the only reference handed out through it.
            unsafe { &mut *self.lock.value.get() }
        }
    }

    impl<T> Drop for Guard<'_, T> {
        #[inline]
        fn drop(&mut self) {
            self.lock.locked.store(false, Ordering::Release);
        }
    }
}

#[cfg(loom)]
mod imp {
    /// Under loom, loom's mutex: the model explores every order of the critical sections.
    pub(crate) struct Lock<T>(loom::sync::Mutex<T>);

    pub(crate) type Guard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Lock<T> {
        pub(crate) fn new(value: T) -> Self {
            Lock(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> Guard<'_, T> {
            self.0.lock().unwrap()
        }
    }
}

pub(crate) use imp::{Guard, Lock};
