//! SpinLock tests: mutual exclusion under real contention (threads, and tasks that lock
//! between awaits), the happens-before edge (a non-atomic counter loses no update), the seed's
//! `String` (`Display`), the misuse panic, no poisoning, and the guard's bounds. The spin lock
//! has no async form, so there is no cancel safety to test; the loom model is in
//! `loom_spin.rs`.

#[cfg(not(loom))]
mod support;

#[cfg(not(loom))]
mod std_tests {
    use crate::support;

    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::thread;

    use gosync::spin::{RawSpinLock, SpinLock};

    const UNLOCK_OF_UNLOCKED: &str = "spin: unlock of unlocked SpinLock";

    /// Runs `f`, expecting a panic; returns its message.
    fn panic_message(f: impl FnOnce()) -> String {
        support::expect_panic(f)
    }

    /// A counter updated without atomics, plus an "inside" flag that catches two holders at
    /// once: a read, a yield (to widen the window a broken lock would leave), and a write.
    struct Racy {
        inside: AtomicBool,
        value: UnsafeCell<u64>,
    }

    // SAFETY: `value` is touched only under the lock under test (that is what is tested).
    unsafe impl Sync for Racy {}

    impl Racy {
        fn new() -> Self {
            Racy {
                inside: AtomicBool::new(false),
                value: UnsafeCell::new(0),
            }
        }

        /// Call with the lock held.
        fn bump(&self, yield_inside: bool) {
            assert!(
                !self.inside.swap(true, Ordering::Relaxed),
                "two holders inside at once"
            );
            // SAFETY: the lock under test is held.
            let v = unsafe { *self.value.get() };
            if yield_inside {
                thread::yield_now();
            }
            // SAFETY: as above.
            unsafe { *self.value.get() = v + 1 };
            self.inside.store(false, Ordering::Relaxed);
        }

        fn get(&self) -> u64 {
            // SAFETY: called after every thread has been joined.
            unsafe { *self.value.get() }
        }
    }

    /// Eight threads hammer one raw spin lock (more threads than the machine's cores, so
    /// holders get preempted and spinners must yield); `try_lock` is mixed in. No update is
    /// lost and no two holders are ever inside at once.
    #[test]
    fn raw_lock_excludes_under_contention() {
        const THREADS: usize = 8;
        const ROUNDS: usize = 2_000;
        let lock = Arc::new(RawSpinLock::new());
        let racy = Arc::new(Racy::new());
        let tried = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (lock, racy, tried, start) =
                    (lock.clone(), racy.clone(), tried.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..ROUNDS {
                        if t % 2 == 0 && i % 3 == 0 {
                            // try_lock until it succeeds: counted once.
                            while !lock.try_lock() {
                                std::hint::spin_loop();
                            }
                            tried.fetch_add(1, Ordering::Relaxed);
                        } else {
                            lock.lock();
                        }
                        racy.bump(i % 16 == 0);
                        lock.unlock();
                    }
                })
            })
            .collect();
        support::within(support::LIVENESS, "spin lock stress", move || {
            for t in threads {
                t.join().unwrap();
            }
        });
        assert_eq!(racy.get(), (THREADS * ROUNDS) as u64);
        assert!(tried.load(Ordering::Relaxed) > 0);
        assert!(!lock.is_locked());
    }

    /// The guard form under the same contention, with a plain `u64` inside.
    #[test]
    fn guarded_counter_loses_no_increment() {
        const THREADS: u64 = 6;
        const ROUNDS: u64 = 5_000;
        let lock = Arc::new(SpinLock::new(0u64));
        let start = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (lock, start) = (lock.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..ROUNDS {
                        let mut g = lock.lock();
                        let v = *g;
                        if i % 64 == 0 {
                            thread::yield_now();
                        }
                        *g = v + 1;
                    }
                })
            })
            .collect();
        support::within(support::LIVENESS, "guarded spin stress", move || {
            for t in threads {
                t.join().unwrap();
            }
        });
        assert_eq!(*lock.lock(), THREADS * ROUNDS);
    }

    /// Threads and async tasks on a multi-threaded runtime share one lock: tasks lock for a
    /// section with no await in it and yield to the executor between sections.
    #[test]
    fn threads_and_tasks_share_one_lock() {
        const ROUNDS: u64 = 2_000;
        let lock = Arc::new(SpinLock::new(0u64));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                rt.spawn(async move {
                    for _ in 0..ROUNDS {
                        *lock.lock() += 1;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        support::within(support::LIVENESS, "threads and tasks", move || {
            rt.block_on(async {
                for t in tasks {
                    t.await.unwrap();
                }
            });
            for t in threads {
                t.join().unwrap();
            }
        });
        assert_eq!(*lock.lock(), 6 * ROUNDS);
    }

    /// The same from `futures::executor`'s thread pool.
    #[test]
    fn tasks_on_a_futures_thread_pool() {
        const ROUNDS: u64 = 1_000;
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let lock = Arc::new(SpinLock::new(0u64));
        let done = Arc::new(gosync::sync::WaitGroup::new());
        for _ in 0..4 {
            done.add(1);
            let (lock, done) = (lock.clone(), done.clone());
            pool.spawn_ok(async move {
                for _ in 0..ROUNDS {
                    *lock.lock() += 1;
                    yield_now().await;
                }
                done.done();
            });
        }
        support::within(support::LIVENESS, "futures pool", move || done.wait());
        assert_eq!(*lock.lock(), 4 * ROUNDS);
    }

    /// Returns `Pending` once, waking itself: lets the executor run another task.
    async fn yield_now() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if std::mem::replace(&mut yielded, true) {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await
    }

    /// A lock held by one thread makes `try_lock` fail elsewhere and `lock` wait; the waiter
    /// sees the holder's write once it gets the lock.
    #[test]
    fn lock_waits_for_the_holder_and_sees_its_writes() {
        let lock = Arc::new(SpinLock::new(Vec::new()));
        let mut g = lock.lock();
        // 0: not started; 1: tried and is about to spin in `lock`; 2: got the lock.
        let stage = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (lock, stage) = (lock.clone(), stage.clone());
            thread::spawn(move || {
                assert!(lock.try_lock().is_none(), "try_lock while held");
                stage.store(1, Ordering::SeqCst);
                let v = lock.lock();
                stage.store(2, Ordering::SeqCst);
                v.clone()
            })
        };
        support::eventually(support::LIVENESS, "the waiter starts", || {
            stage.load(Ordering::SeqCst) >= 1
        });
        // Let the waiter spin a while; it must not get in.
        for _ in 0..100 {
            thread::yield_now();
        }
        assert_eq!(
            stage.load(Ordering::SeqCst),
            1,
            "entered while the lock was held"
        );
        g.push(42);
        drop(g);
        let seen = support::within(support::LIVENESS, "waiter", move || waiter.join().unwrap());
        assert_eq!(seen, [42]);
        assert_eq!(stage.load(Ordering::SeqCst), 2);
    }

    /// The seed's `String`: `Locked` / `Unlocked`, for both forms; `Debug` shows the data
    /// when the lock is free, as std's Mutex does.
    #[test]
    fn display_and_debug() {
        let raw = RawSpinLock::new();
        assert_eq!(raw.to_string(), "Unlocked");
        raw.lock();
        assert_eq!(raw.to_string(), "Locked");
        assert_eq!(format!("{raw:?}"), "RawSpinLock { locked: true }");
        raw.unlock();
        assert_eq!(format!("{raw:?}"), "RawSpinLock { locked: false }");

        let l = SpinLock::new(7);
        assert_eq!(l.to_string(), "Unlocked");
        assert_eq!(format!("{l:?}"), "SpinLock { data: 7 }");
        let g = l.lock();
        assert_eq!(l.to_string(), "Locked");
        assert_eq!(format!("{l:?}"), "SpinLock { data: <locked> }");
        assert_eq!(format!("{g:?} {g}"), "7 7");
        drop(g);
        assert_eq!(l.to_string(), "Unlocked");
    }

    #[test]
    #[should_panic(expected = "spin: unlock of unlocked SpinLock")]
    fn unlock_of_unlocked_panics() {
        RawSpinLock::new().unlock();
    }

    /// A double unlock panics with the message and leaves the lock usable.
    #[test]
    fn double_unlock_panics_and_leaves_the_lock_usable() {
        let l = RawSpinLock::new();
        l.lock();
        l.unlock();
        assert_eq!(panic_message(|| l.unlock()), UNLOCK_OF_UNLOCKED);
        assert!(!l.is_locked());
        assert!(l.try_lock());
        l.unlock();
    }

    /// `force_unlock` of an unlocked `SpinLock<T>` panics too.
    #[test]
    fn force_unlock_of_unlocked_panics() {
        let l = SpinLock::new(());
        // SAFETY: no guard is alive (the call is expected to panic: the lock is not held).
        let msg = panic_message(|| unsafe { l.force_unlock() });
        assert_eq!(msg, UNLOCK_OF_UNLOCKED);
    }

    /// A raw lock may be unlocked by a thread other than the one that locked it (it has no
    /// owner, as in Go).
    #[test]
    fn raw_unlock_from_another_thread() {
        let l = Arc::new(RawSpinLock::new());
        l.lock();
        let l2 = l.clone();
        thread::spawn(move || l2.unlock()).join().unwrap();
        assert!(l.try_lock());
        l.unlock();
    }

    /// No poisoning: a panic while holding the guard unlocks the lock.
    #[test]
    fn panic_while_holding_releases() {
        let l = Arc::new(SpinLock::new(1));
        let l2 = l.clone();
        let r = thread::spawn(move || {
            let mut g = l2.lock();
            *g = 2;
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        assert!(!l.is_locked());
        assert_eq!(*l.try_lock().expect("not poisoned, not held"), 2);
    }

    /// `get_mut`, `into_inner` (which must drop the value exactly once), `Default`, `From`,
    /// and `force_unlock` after a forgotten guard.
    #[test]
    fn value_access() {
        let mut l = SpinLock::from(vec![1]);
        l.get_mut().push(2);
        assert_eq!(*l.lock(), [1, 2]);
        assert_eq!(l.into_inner(), [1, 2]);

        let d: SpinLock<String> = SpinLock::default();
        assert!(d.lock().is_empty());

        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let inner = SpinLock::new(Counted(drops.clone())).into_inner();
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(inner);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(SpinLock::new(Counted(drops.clone())));
        assert_eq!(drops.load(Ordering::SeqCst), 2);

        let f = SpinLock::new(3);
        std::mem::forget(f.lock());
        assert!(f.is_locked());
        // SAFETY: locked, and its only guard was forgotten.
        unsafe { f.force_unlock() };
        assert_eq!(*f.lock(), 3);
    }

    /// Static bounds: the lock is `Send + Sync` for `T: Send` (even `!Sync` data, as a
    /// `Cell`), the guard is `Sync` for `T: Sync` (and not `Send`: see the `compile_fail`
    /// doctest on `SpinGuard`).
    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync>() {}
        fn sync<T: Sync>() {}
        send_sync::<RawSpinLock>();
        send_sync::<SpinLock<std::cell::Cell<u8>>>();
        sync::<gosync::spin::SpinGuard<'static, u8>>();
        static S: SpinLock<u8> = SpinLock::new(0);
        static R: RawSpinLock = RawSpinLock::new();
        *S.lock() += 1;
        R.lock();
        R.unlock();
    }
}
