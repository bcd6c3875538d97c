//! Tests for `RawRwMutex` and `RwMutex<T>`, after the semantics of Go's `sync/rwmutex_test.go`:
//! concurrent readers, exclusion between readers and writers, writer preference (and the
//! recursive read lock deadlock it implies), Go's misuse panics, threads and async tasks on one
//! lock, and cancel safety of the async forms.

#[cfg(not(loom))]
mod std_tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Barrier};
    use std::task::{Context, Poll};
    use std::thread;
    use std::time::{Duration, Instant};

    use gosync::sync::{
        RawRwMutex, ReadLockFuture, RwMutex, RwMutexReadFuture, RwMutexReadGuard,
        RwMutexWriteFuture, RwMutexWriteGuard, WriteLockFuture,
    };
    use gosync::WaitKind;

    // ----- helpers ------------------------------------------------------------------------------

    /// Runs `f` on its own thread and fails the test if it has not finished within a minute (a
    /// deadlock would otherwise hang the test run).
    fn within_a_minute<F: FnOnce() + Send + 'static>(f: F) {
        let (tx, rx) = mpsc::channel();
        let h = thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => h.join().unwrap(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // `f` panicked: re-raise its panic.
                if let Err(e) = h.join() {
                    std::panic::resume_unwind(e);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish: deadlock?"),
        }
    }

    /// Waits until `cond` holds, failing the test after 10 s.
    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Polls `fut` once with a waker that does nothing.
    fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        Pin::new(fut).poll(&mut cx)
    }

    /// Asserts the lock is entirely free: no reader, no writer, nobody waiting.
    fn assert_free(rw: &RawRwMutex) {
        assert_eq!(rw.reader_count(), 0, "{rw:?}");
        assert!(!rw.is_locked(), "{rw:?}");
        assert!(!rw.is_writer_pending(), "{rw:?}");
        assert_eq!(rw.waiters(), 0, "{rw:?}");
        assert!(rw.try_lock(), "{rw:?}");
        rw.unlock();
        assert!(rw.try_rlock(), "{rw:?}");
        rw.runlock();
    }

    /// [`assert_free`] for a data-carrying lock, through its safe introspection.
    fn assert_free_data<T: std::fmt::Debug>(rw: &RwMutex<T>) {
        assert_eq!(rw.reader_count(), 0, "{rw:?}");
        assert!(!rw.is_locked(), "{rw:?}");
        assert!(!rw.is_writer_pending(), "{rw:?}");
        assert_eq!(rw.waiters(), 0, "{rw:?}");
        assert!(rw.try_write().is_some(), "{rw:?}");
        assert!(rw.try_read().is_some(), "{rw:?}");
    }

    /// Scales an iteration count down in debug builds.
    fn iters(release: usize) -> usize {
        if cfg!(debug_assertions) {
            release / 5
        } else {
            release
        }
    }

    fn spin(n: u32) {
        for _ in 0..n {
            std::hint::spin_loop();
        }
    }

    /// Go's `reader`/`writer` check: readers add 1 to `activity`, writers 10000; a reader must never
    /// see a writer inside, a writer must see nobody.
    struct Activity(AtomicI32);

    impl Activity {
        fn new() -> Self {
            Activity(AtomicI32::new(0))
        }

        fn read_section(&self) {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            assert!((1..10000).contains(&n), "reader saw activity {n}");
            spin(50);
            self.0.fetch_sub(1, Ordering::SeqCst);
        }

        fn write_section(&self) {
            let n = self.0.fetch_add(10000, Ordering::SeqCst) + 10000;
            assert_eq!(n, 10000, "writer saw activity {n}");
            spin(50);
            self.0.fetch_sub(10000, Ordering::SeqCst);
        }
    }

    // ----- basic behaviour ----------------------------------------------------------------------

    #[test]
    fn zero_value_is_unlocked() {
        let rw = RawRwMutex::default();
        assert_free(&rw);
        let rw = RwMutex::<i32>::default();
        assert_eq!(*rw.read(), 0);
        assert_free_data(&rw);
    }

    #[test]
    fn readers_share_writers_exclude() {
        let rw = RawRwMutex::new();
        rw.rlock();
        assert!(rw.try_rlock());
        assert_eq!(rw.reader_count(), 2);
        assert!(!rw.try_lock());
        rw.runlock();
        rw.runlock();
        assert!(rw.try_lock());
        assert!(rw.is_locked());
        assert_eq!(rw.writer_count(), 1);
        assert!(!rw.try_lock());
        assert!(!rw.try_rlock());
        rw.unlock();
        assert_eq!(rw.writer_count(), 0);
        assert_free(&rw);
    }

    #[test]
    fn guards_give_access() {
        let mut rw = RwMutex::new(vec![1]);
        rw.write().push(2);
        {
            let a = rw.read();
            let b = rw.try_read().unwrap();
            assert_eq!(*a, [1, 2]);
            assert_eq!(b.len(), 2);
            assert!(rw.try_write().is_none());
            assert_eq!(rw.reader_count(), 2);
            assert!(std::ptr::eq(RwMutexReadGuard::rwmutex(&a), &rw));
        }
        {
            let mut w = rw.try_write().unwrap();
            w.push(3);
            assert!(rw.try_read().is_none());
            assert!(std::ptr::eq(RwMutexWriteGuard::rwmutex(&w), &rw));
        }
        rw.get_mut().push(4);
        assert_eq!(format!("{rw:?}"), "RwMutex { data: [1, 2, 3, 4] }");
        assert_eq!(rw.into_inner(), [1, 2, 3, 4]);
    }

    #[test]
    fn debug_shows_locked() {
        let rw = RwMutex::new(1);
        let g = rw.write();
        assert_eq!(format!("{rw:?}"), "RwMutex { data: <locked> }");
        drop(g);
    }

    #[test]
    fn a_guard_may_be_released_on_another_thread() {
        let rw = Arc::new(RwMutex::new(0));
        let g = rw.write();
        thread::scope(|s| {
            s.spawn(move || drop(g));
        });
        let r = rw.read();
        thread::scope(|s| {
            s.spawn(move || drop(r));
        });
        assert_free_data(&rw);
    }

    // ----- parallel readers ---------------------------------------------------------------------

    /// Go's `TestParallelReaders`: `n` readers hold the read lock at the same time (each waits at a
    /// barrier while holding it, which only completes if all hold it together).
    #[test]
    fn parallel_readers() {
        within_a_minute(|| {
            for n in [1, 3, 4, 8] {
                let rw = Arc::new(RawRwMutex::new());
                let barrier = Arc::new(Barrier::new(n));
                let handles: Vec<_> = (0..n)
                    .map(|_| {
                        let (rw, barrier) = (rw.clone(), barrier.clone());
                        thread::spawn(move || {
                            rw.rlock();
                            barrier.wait();
                            rw.runlock();
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
                assert_free(&rw);
            }
        });
    }

    #[test]
    fn parallel_readers_threads_and_tasks() {
        within_a_minute(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            let rw = Arc::new(RwMutex::new(7));
            let barrier = Arc::new(tokio::sync::Barrier::new(4));
            let mut tasks = Vec::new();
            for _ in 0..2 {
                let (rw, barrier) = (rw.clone(), barrier.clone());
                tasks.push(rt.spawn(async move {
                    let g = rw.read_async().await;
                    barrier.wait().await;
                    *g
                }));
            }
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (rw, barrier) = (rw.clone(), barrier.clone());
                    let handle = rt.handle().clone();
                    thread::spawn(move || {
                        let g = rw.read();
                        handle.block_on(barrier.wait());
                        *g
                    })
                })
                .collect();
            for t in threads {
                assert_eq!(t.join().unwrap(), 7);
            }
            for t in tasks {
                assert_eq!(rt.block_on(t).unwrap(), 7);
            }
            assert_free_data(&rw);
        });
    }

    // ----- exclusion ----------------------------------------------------------------------------

    fn hammer_threads(writers: usize, readers: usize, iterations: usize) {
        let rw = Arc::new(RawRwMutex::new());
        let activity = Arc::new(Activity::new());
        let mut handles = Vec::new();
        for i in 0..writers + readers {
            let (rw, activity) = (rw.clone(), activity.clone());
            let is_writer = i < writers;
            handles.push(thread::spawn(move || {
                for _ in 0..iterations {
                    if is_writer {
                        rw.lock();
                        activity.write_section();
                        rw.unlock();
                    } else {
                        rw.rlock();
                        activity.read_section();
                        rw.runlock();
                    }
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_free(&rw);
    }

    /// Go's `TestRWMutex`: readers never see a writer inside, writers see nobody.
    #[test]
    fn readers_and_writers_exclude_each_other() {
        within_a_minute(|| {
            let n = iters(5000);
            hammer_threads(1, 1, n);
            hammer_threads(1, 3, n);
            hammer_threads(2, 2, n);
            hammer_threads(2, 6, n / 2);
            hammer_threads(4, 4, n / 2);
        });
    }

    /// Mixed reads and writes, 90% reads, with the read and write sections checked and a counter
    /// only writers increment.
    #[test]
    fn mixed_reads_and_writes_lose_nothing() {
        within_a_minute(|| {
            let threads = 6;
            let n = iters(20_000);
            let rw = Arc::new(RwMutex::new(0usize));
            let activity = Arc::new(Activity::new());
            let writes = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (rw, activity, writes) = (rw.clone(), activity.clone(), writes.clone());
                    thread::spawn(move || {
                        let mut x = 0x9E37_79B9u32 ^ (t as u32 + 1);
                        for _ in 0..n {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            if x.is_multiple_of(10) {
                                let mut g = rw.write();
                                activity.write_section();
                                *g += 1;
                                writes.fetch_add(1, Ordering::Relaxed);
                            } else {
                                let g = rw.read();
                                activity.read_section();
                                assert!(*g <= writes.load(Ordering::Relaxed));
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(*rw.read(), writes.load(Ordering::Relaxed));
            assert_free_data(&rw);
        });
    }

    /// 8 threads × 100k increments under the write lock lose nothing.
    #[test]
    fn write_lock_counts_every_increment() {
        within_a_minute(|| {
            let threads = 8;
            let n = iters(100_000);
            let rw = Arc::new(RwMutex::new(0usize));
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let rw = rw.clone();
                    thread::spawn(move || {
                        for _ in 0..n {
                            *rw.write() += 1;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(*rw.read(), threads * n);
            assert_free_data(&rw);
        });
    }

    // ----- writer preference --------------------------------------------------------------------

    /// The seed's `rr` bug: a reader holds the lock, a writer waits for it, and the reader's second
    /// read lock (`try_rlock` here, and a blocking `rlock` on another thread standing in for it)
    /// blocks behind the writer. Once the first read lock goes, the writer runs, then the reader.
    #[test]
    fn waiting_writer_blocks_new_readers() {
        within_a_minute(|| {
            let rw = Arc::new(RawRwMutex::new());
            let order = Arc::new(AtomicUsize::new(0));
            rw.rlock(); // "A"'s first read lock

            let writer = {
                let (rw, order) = (rw.clone(), order.clone());
                thread::spawn(move || {
                    rw.lock();
                    let at = order.fetch_add(1, Ordering::SeqCst);
                    rw.unlock();
                    at
                })
            };
            wait_until("the writer announces itself", || rw.is_writer_pending());
            assert!(
                !rw.try_rlock(),
                "a read lock must not overtake a waiting writer"
            );
            assert_eq!(rw.reader_count(), 1);
            assert_eq!(rw.writer_count(), 1);

            // "A"'s second, recursive read lock: it blocks.
            let second_read = {
                let (rw, order) = (rw.clone(), order.clone());
                thread::spawn(move || {
                    rw.rlock();
                    let at = order.fetch_add(1, Ordering::SeqCst);
                    rw.runlock();
                    at
                })
            };
            wait_until("writer and reader park", || rw.waiters() == 2);
            let kinds: Vec<WaitKind> = rw.waiting().iter().map(|r| r.kind).collect();
            assert_eq!(kinds, [WaitKind::RwMutexWrite, WaitKind::RwMutexRead]);
            // Give both a chance to get in wrongly.
            thread::sleep(Duration::from_millis(50));
            assert_eq!(order.load(Ordering::SeqCst), 0, "nobody may get in yet");
            assert!(rw.is_writer_pending());
            assert!(!rw.try_rlock());

            rw.runlock(); // the deadlock in Go is broken here by hand
            assert_eq!(writer.join().unwrap(), 0, "the writer goes first");
            assert_eq!(second_read.join().unwrap(), 1, "then the reader");
            assert_free(&rw);
        });
    }

    /// The same shape with async tasks: a pending `write_async` holds up `read_async`.
    #[test]
    fn waiting_async_writer_blocks_new_async_readers() {
        let rw = RawRwMutex::new();
        rw.rlock();
        let mut w = rw.lock_async();
        assert!(poll_once(&mut w).is_pending());
        assert!(rw.is_writer_pending());
        let mut r = rw.rlock_async();
        assert!(poll_once(&mut r).is_pending());
        assert!(poll_once(&mut r).is_pending());
        assert_eq!(rw.waiters(), 2);
        rw.runlock();
        // The last reader handed the lock to the writer.
        assert!(rw.is_locked());
        assert!(poll_once(&mut w).is_ready());
        assert!(poll_once(&mut r).is_pending());
        rw.unlock();
        // Unlock granted the queued reader the read lock.
        assert_eq!(rw.reader_count(), 1);
        assert!(poll_once(&mut r).is_ready());
        rw.runlock();
        drop((w, r));
        assert_free(&rw);
    }

    /// A writer waiting behind another writer (on the writers' mutex) does not block readers yet,
    /// as in Go; the writer holding the lock does.
    #[test]
    fn writer_count_counts_holder_and_waiters() {
        within_a_minute(|| {
            let rw = Arc::new(RawRwMutex::new());
            rw.lock();
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let rw = rw.clone();
                    thread::spawn(move || {
                        rw.lock();
                        rw.unlock();
                    })
                })
                .collect();
            wait_until("two writers park", || rw.writer_count() == 3);
            assert_eq!(rw.waiters(), 2);
            assert!(rw
                .waiting()
                .iter()
                .all(|r| r.kind == WaitKind::RwMutexWrite));
            rw.unlock();
            for h in handles {
                h.join().unwrap();
            }
            assert_free(&rw);
        });
    }

    // ----- misuse -------------------------------------------------------------------------------

    #[test]
    #[should_panic(expected = "sync: RUnlock of unlocked RWMutex")]
    fn runlock_of_unlocked_panics() {
        RawRwMutex::new().runlock();
    }

    #[test]
    #[should_panic(expected = "sync: RUnlock of unlocked RWMutex")]
    fn runlock_of_write_locked_panics() {
        let rw = RawRwMutex::new();
        rw.lock();
        rw.runlock();
    }

    #[test]
    #[should_panic(expected = "sync: Unlock of unlocked RWMutex")]
    fn unlock_of_unlocked_panics() {
        RawRwMutex::new().unlock();
    }

    #[test]
    #[should_panic(expected = "sync: Unlock of unlocked RWMutex")]
    fn unlock_of_read_locked_panics() {
        let rw = RawRwMutex::new();
        rw.rlock();
        rw.unlock();
    }

    #[test]
    #[should_panic(expected = "sync: Unlock of unlocked RWMutex")]
    fn double_unlock_panics() {
        let rw = RawRwMutex::new();
        rw.lock();
        rw.unlock();
        rw.unlock();
    }

    /// A caught misuse panic leaves the lock usable and its counts right.
    #[test]
    fn misuse_leaves_the_lock_consistent() {
        let rw = RawRwMutex::new();
        let caught = std::panic::catch_unwind(|| rw.runlock());
        assert!(caught.is_err());
        assert_free(&rw);
        rw.rlock();
        let caught = std::panic::catch_unwind(|| rw.unlock());
        assert!(caught.is_err());
        assert_eq!(rw.reader_count(), 1);
        rw.runlock();
        assert_free(&rw);
    }

    // ----- async --------------------------------------------------------------------------------

    /// Readers and writers as tokio tasks and as threads on one lock.
    #[test]
    fn tokio_tasks_and_threads_share_one_lock() {
        within_a_minute(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            let rw = Arc::new(RwMutex::new(0usize));
            let activity = Arc::new(Activity::new());
            let n = iters(2000);
            let mut tasks = Vec::new();
            for t in 0..6 {
                let (rw, activity) = (rw.clone(), activity.clone());
                tasks.push(rt.spawn(async move {
                    for i in 0..n {
                        if (i + t) % 5 == 0 {
                            let mut g = rw.write_async().await;
                            activity.write_section();
                            *g += 1;
                        } else {
                            let _g = rw.read_async().await;
                            activity.read_section();
                        }
                        if i % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                }));
            }
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let (rw, activity) = (rw.clone(), activity.clone());
                    thread::spawn(move || {
                        for i in 0..n {
                            if (i + t) % 5 == 0 {
                                let mut g = rw.write();
                                activity.write_section();
                                *g += 1;
                            } else {
                                let _g = rw.read();
                                activity.read_section();
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            for t in tasks {
                rt.block_on(t).unwrap();
            }
            assert_eq!(*rw.read(), 8 * n / 5);
            assert_free_data(&rw);
        });
    }

    /// The same on `futures`' thread pool, with a raw lock, plus `block_on` from a thread.
    #[test]
    fn futures_thread_pool_and_block_on_share_one_lock() {
        within_a_minute(|| {
            let pool = futures::executor::ThreadPool::builder()
                .pool_size(2)
                .create()
                .unwrap();
            let rw = Arc::new(RawRwMutex::new());
            let activity = Arc::new(Activity::new());
            let n = iters(2000);
            let (tx, rx) = mpsc::channel();
            for t in 0..4 {
                let (rw, activity, tx) = (rw.clone(), activity.clone(), tx.clone());
                pool.spawn_ok(async move {
                    for i in 0..n {
                        if (i + t) % 4 == 0 {
                            rw.lock_async().await;
                            activity.write_section();
                            rw.unlock();
                        } else {
                            rw.rlock_async().await;
                            activity.read_section();
                            rw.runlock();
                        }
                    }
                    tx.send(()).unwrap();
                });
            }
            drop(tx);
            let blocking = {
                let (rw, activity) = (rw.clone(), activity.clone());
                thread::spawn(move || {
                    futures::executor::block_on(async {
                        for i in 0..n {
                            if i % 3 == 0 {
                                rw.lock_async().await;
                                activity.write_section();
                                rw.unlock();
                            } else {
                                rw.rlock_async().await;
                                activity.read_section();
                                rw.runlock();
                            }
                        }
                    })
                })
            };
            for i in 0..n {
                if i % 4 == 0 {
                    rw.lock();
                    activity.write_section();
                    rw.unlock();
                } else {
                    rw.rlock();
                    activity.read_section();
                    rw.runlock();
                }
            }
            blocking.join().unwrap();
            assert_eq!(rx.iter().count(), 4);
            assert_free(&rw);
        });
    }

    /// A task may hold a guard across `.await` and move between worker threads with it.
    #[test]
    fn guards_live_across_await() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let rw = Arc::new(RwMutex::new(0));
        let rw2 = rw.clone();
        rt.block_on(async move {
            tokio::spawn(async move {
                let mut g = rw2.write_async().await;
                tokio::task::yield_now().await;
                *g += 1;
                drop(g);
                let g = rw2.read_async().await;
                tokio::task::yield_now().await;
                assert_eq!(*g, 1);
            })
            .await
            .unwrap();
        });
        assert_free_data(&rw);
    }

    // ----- cancel safety ------------------------------------------------------------------------

    /// A `write_async` future dropped while readers hold the lock withdraws: readers it held up get
    /// in, and a later writer can lock.
    #[test]
    fn dropped_pending_writer_lets_readers_in() {
        within_a_minute(|| {
            let rw = Arc::new(RawRwMutex::new());
            rw.rlock();
            let mut w = rw.lock_async();
            assert!(poll_once(&mut w).is_pending());
            assert!(rw.is_writer_pending());
            assert!(!rw.try_rlock());

            // A thread reader and a task reader wait behind the pending writer.
            let reader = {
                let rw = rw.clone();
                thread::spawn(move || {
                    rw.rlock();
                    rw.runlock();
                })
            };
            let mut r = rw.rlock_async();
            assert!(poll_once(&mut r).is_pending());
            wait_until("the thread reader parks", || rw.waiters() == 3);

            drop(w);
            assert!(!rw.is_writer_pending());
            reader.join().unwrap();
            assert!(poll_once(&mut r).is_ready());
            assert!(rw.try_rlock());
            assert_eq!(rw.reader_count(), 3);
            rw.runlock();
            rw.runlock();
            rw.runlock();
            assert_free(&rw);
            rw.lock();
            rw.unlock();
        });
    }

    /// A `write_async` future dropped while still waiting for another writer leaves that queue.
    #[test]
    fn dropped_writer_behind_a_writer() {
        let rw = RawRwMutex::new();
        rw.lock();
        let mut w = rw.lock_async();
        assert!(poll_once(&mut w).is_pending());
        assert_eq!(rw.writer_count(), 2);
        drop(w);
        assert_eq!(rw.writer_count(), 1);
        rw.unlock();
        assert_free(&rw);
    }

    /// A `read_async` future dropped while a writer holds the lock: once the writer unlocks, the
    /// lock is entirely free.
    #[test]
    fn dropped_pending_reader_leaves_no_trace() {
        let rw = RawRwMutex::new();
        rw.lock();
        let mut r1 = rw.rlock_async();
        let mut r2 = rw.rlock_async();
        assert!(poll_once(&mut r1).is_pending());
        assert!(poll_once(&mut r2).is_pending());
        assert_eq!(rw.waiters(), 2);
        drop(r1);
        assert_eq!(rw.waiters(), 1);
        drop(r2);
        assert_eq!(rw.waiters(), 0);
        rw.unlock();
        assert_free(&rw);
    }

    /// A reader future granted the read lock by `unlock` and dropped without being polled again
    /// releases it.
    #[test]
    fn dropped_granted_reader_releases_its_read_lock() {
        let rw = RwMutex::new(1);
        let w = rw.write();
        let mut r1 = rw.read_async();
        let mut r2 = rw.read_async();
        assert!(poll_once(&mut r1).is_pending());
        assert!(poll_once(&mut r2).is_pending());
        drop(w);
        assert_eq!(rw.reader_count(), 2, "unlock counts the queued readers in");
        drop(r1);
        assert_eq!(rw.reader_count(), 1);
        match poll_once(&mut r2) {
            Poll::Ready(g) => assert_eq!(*g, 1),
            Poll::Pending => panic!("a granted reader is ready"),
        }
        drop(r2);
        assert_free_data(&rw);
    }

    /// A writer future handed the lock by the last reader and dropped without being polled again
    /// unlocks it.
    #[test]
    fn dropped_granted_writer_unlocks() {
        let rw = RwMutex::new(1);
        let r = rw.read();
        let mut w = rw.write_async();
        assert!(poll_once(&mut w).is_pending());
        let mut r2 = rw.read_async();
        assert!(poll_once(&mut r2).is_pending());
        drop(r);
        assert!(
            rw.is_locked(),
            "the last reader hands the lock to the writer"
        );
        drop(w);
        assert!(!rw.is_locked());
        // The reader held up by the writer got the read lock.
        assert!(poll_once(&mut r2).is_ready());
        drop(r2);
        assert_free_data(&rw);
    }

    /// Many tasks and threads, tasks giving up at random through timeouts: no lock or wake-up may be
    /// lost, and at the end the lock is free.
    #[test]
    fn cancellation_stress() {
        within_a_minute(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_time()
                .build()
                .unwrap();
            let rw = Arc::new(RwMutex::new(0u64));
            let activity = Arc::new(Activity::new());
            let n = iters(1000);
            let stop = Arc::new(AtomicBool::new(false));
            let mut tasks = Vec::new();
            for t in 0..8u32 {
                let (rw, activity) = (rw.clone(), activity.clone());
                tasks.push(rt.spawn(async move {
                    let mut x = 0x2545_F491u32 ^ (t + 1);
                    let mut done = 0u64;
                    for _ in 0..n {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        let wait = Duration::from_micros(u64::from(x % 200));
                        if x.is_multiple_of(3) {
                            if let Ok(mut g) = tokio::time::timeout(wait, rw.write_async()).await {
                                activity.write_section();
                                *g += 1;
                                done += 1;
                                if x.is_multiple_of(7) {
                                    tokio::task::yield_now().await;
                                }
                            }
                        } else if let Ok(_g) = tokio::time::timeout(wait, rw.read_async()).await {
                            activity.read_section();
                            if x.is_multiple_of(5) {
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                    done
                }));
            }
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let (rw, activity, stop) = (rw.clone(), activity.clone(), stop.clone());
                    thread::spawn(move || {
                        let mut done = 0u64;
                        let mut i = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            i += 1;
                            if (i + t).is_multiple_of(4) {
                                let mut g = rw.write();
                                activity.write_section();
                                *g += 1;
                                done += 1;
                            } else {
                                let _g = rw.read();
                                activity.read_section();
                            }
                        }
                        done
                    })
                })
                .collect();
            let mut total = 0;
            for t in tasks {
                total += rt.block_on(t).unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                total += t.join().unwrap();
            }
            assert_eq!(*rw.read(), total);
            assert_free_data(&rw);
        });
    }

    /// Futures dropped at every point of their life — before the first poll, queued, granted —
    /// leave the lock free, whichever way the lock was held when they queued.
    #[test]
    fn futures_dropped_at_every_stage() {
        let rw = RawRwMutex::new();
        // Never polled.
        drop(rw.lock_async());
        drop(rw.rlock_async());
        assert_free(&rw);
        // Completed and the lock released.
        let mut w = rw.lock_async();
        assert!(poll_once(&mut w).is_ready());
        rw.unlock();
        drop(w);
        let mut r = rw.rlock_async();
        assert!(poll_once(&mut r).is_ready());
        rw.runlock();
        drop(r);
        assert_free(&rw);
        // Queued behind a reader, a writer, a writer with queued readers.
        for setup in 0..3 {
            match setup {
                0 => rw.rlock(),
                _ => rw.lock(),
            }
            let mut readers: Vec<ReadLockFuture<'_>> = Vec::new();
            if setup == 2 {
                for _ in 0..3 {
                    let mut r = rw.rlock_async();
                    assert!(poll_once(&mut r).is_pending());
                    readers.push(r);
                }
            }
            let mut w1: WriteLockFuture<'_> = rw.lock_async();
            let mut w2 = rw.lock_async();
            assert!(poll_once(&mut w1).is_pending());
            assert!(poll_once(&mut w2).is_pending());
            drop(w1);
            drop(readers.pop());
            match setup {
                0 => rw.runlock(),
                _ => rw.unlock(),
            }
            if setup == 2 {
                // The remaining readers were granted the read lock; w2 gets `w` and waits for them,
                // the last one hands it the write lock, and w2 is dropped holding it.
                assert_eq!(rw.reader_count(), 2);
                assert!(poll_once(&mut w2).is_pending());
                assert!(rw.is_writer_pending());
                drop(readers);
                assert!(rw.is_locked());
            } else {
                // w2 was woken to take `w`; dropped without polling, it passes the wake-up on.
                drop(readers);
            }
            drop(w2);
            assert_free(&rw);
        }
    }

    // ----- bounds -------------------------------------------------------------------------------

    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}

        send_sync::<RawRwMutex>();
        send_sync::<RwMutex<Vec<u8>>>();
        send_sync::<RwMutexReadGuard<'_, Vec<u8>>>();
        send_sync::<RwMutexWriteGuard<'_, Vec<u8>>>();
        send_sync::<ReadLockFuture<'_>>();
        send_sync::<WriteLockFuture<'_>>();
        send_sync::<RwMutexReadFuture<'_, Vec<u8>>>();
        send_sync::<RwMutexWriteFuture<'_, Vec<u8>>>();
        // A write guard may carry a `Send`-only value to another thread.
        send::<RwMutexWriteGuard<'_, std::cell::Cell<u8>>>();
        send::<RwMutex<std::cell::Cell<u8>>>();

        // Futures from `async` blocks that hold the guards across `.await` are `Send`, so they can
        // go into `tokio::spawn`.
        fn spawnable<F: Future + Send + 'static>(_: F) {}
        let rw = Arc::new(RwMutex::new(String::new()));
        spawnable(async move {
            let g = rw.read_async().await;
            futures::future::ready(()).await;
            drop(g);
            let mut g = rw.write_async().await;
            futures::future::ready(()).await;
            g.push('x');
        });
    }
}

/// Loom models of the protocol: run with
/// `RUSTFLAGS="--cfg loom" cargo test -p gosync --release --test rwmutex`.
#[cfg(loom)]
mod loom_models {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::task::noop_waker_ref;
    use gosync::sync::RawRwMutex;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(noop_waker_ref()))
    }

    struct Guarded {
        rw: RawRwMutex,
        v: UnsafeCell<usize>,
    }

    // SAFETY: `v` is read under a read lock and written under the write lock; loom checks that
    // these accesses never race.
    unsafe impl Sync for Guarded {}

    impl Guarded {
        fn new() -> Arc<Self> {
            Arc::new(Guarded {
                rw: RawRwMutex::new(),
                v: UnsafeCell::new(0),
            })
        }

        fn write(&self) {
            self.rw.lock();
            // SAFETY: the write lock is held.
            self.v.with_mut(|p| unsafe { *p += 1 });
            self.rw.unlock();
        }

        fn read(&self) -> usize {
            self.rw.rlock();
            // SAFETY: a read lock is held.
            let v = self.v.with(|p| unsafe { *p });
            self.rw.runlock();
            v
        }

        fn assert_free(&self) {
            assert!(self.rw.try_lock(), "{:?}", self.rw);
            self.rw.unlock();
            assert_eq!(self.rw.reader_count(), 0);
            assert_eq!(self.rw.waiters(), 0);
        }
    }

    /// A writer and two readers: loom reports a data race if a reader can overlap the writer
    /// (or miss its unlock → rlock edge), and a deadlock if a wake-up is lost.
    #[test]
    fn writer_and_readers_exclude() {
        loom::model(|| {
            let g = Guarded::new();
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let g = g.clone();
                    thread::spawn(move || g.read())
                })
                .collect();
            g.write();
            for r in readers {
                assert!(r.join().unwrap() <= 1);
            }
            assert_eq!(g.read(), 1);
            g.assert_free();
        });
    }

    /// Two writers, a thread and a task, with a reader: writers exclude each other, and the
    /// async writer's hand-over through the writers' mutex loses nothing.
    #[test]
    fn thread_and_task_writers() {
        loom::model(|| {
            let g = Guarded::new();
            let g2 = g.clone();
            let task = thread::spawn(move || {
                loom::future::block_on(async {
                    g2.rw.lock_async().await;
                    // SAFETY: the write lock is held.
                    g2.v.with_mut(|p| unsafe { *p += 1 });
                    g2.rw.unlock();
                })
            });
            g.write();
            task.join().unwrap();
            assert_eq!(g.read(), 2);
            g.assert_free();
        });
    }

    /// A writer future announced behind a reader is dropped while the reader leaves: whether
    /// it withdrew or had been handed the lock, the lock ends up free and a queued reader is
    /// let in.
    #[test]
    fn dropped_writer_races_the_last_reader() {
        loom::model(|| {
            let g = Guarded::new();
            g.rw.rlock();
            let mut w = Box::pin(g.rw.lock_async());
            assert!(poll_once(w.as_mut()).is_pending());
            let reader = {
                let g = g.clone();
                thread::spawn(move || g.read())
            };
            let leaver = {
                let g = g.clone();
                thread::spawn(move || g.rw.runlock())
            };
            drop(w);
            leaver.join().unwrap();
            reader.join().unwrap();
            g.assert_free();
        });
    }

    /// A reader future queued behind a writer is dropped while the writer unlocks: whether it
    /// left the queue or had been granted the read lock, nothing stays held.
    #[test]
    fn dropped_reader_races_the_unlock() {
        loom::model(|| {
            let g = Guarded::new();
            g.rw.lock();
            let mut r = Box::pin(g.rw.rlock_async());
            assert!(poll_once(r.as_mut()).is_pending());
            let unlocker = {
                let g = g.clone();
                thread::spawn(move || g.rw.unlock())
            };
            drop(r);
            unlocker.join().unwrap();
            g.assert_free();
        });
    }
}
