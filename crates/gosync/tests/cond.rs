//! Cond tests, written afresh after the semantics of Go's `sync/cond_test.go`
//! (<https://go.dev/src/sync/cond_test.go>): signal wakes exactly one waiter, signals wake
//! waiters by generation, broadcast wakes all, a signal is not stolen by a later waiter.
//! Deviations: where Go infers "all goroutines are asleep" from a channel handshake, these tests
//! also read the exact number of queued waiters (`Cond::waiters`), which makes the checks
//! exact. Additions: the seed's ten runners, threads and tasks of two executors on one `Cond`,
//! the guard form over `Mutex<T>`, the read side of `RawRwMutex`, cancel safety, misuse; and
//! loom models of the two claims the rest rests on (run with
//! `RUSTFLAGS="--cfg loom" cargo test -p gosync --release --test cond`).
/// The tests proper: threads and tasks on real executors.
#[cfg(not(loom))]
mod threads_and_tasks {
    use std::collections::VecDeque;
    use std::future::Future;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    use std::sync::{mpsc, Arc};
    use std::task::{Context, Poll};
    use std::thread;
    use std::time::{Duration, Instant};

    use futures::task::noop_waker_ref;
    use gosync::sync::{
        Cond, Mutex, MutexGuard, RLocker, RawMutex, RawRwMutex, RwMutex, WaitFuture,
        WaitGuardFuture,
    };
    use gosync::WaitKind;

    /// How long a test may wait for something that must happen before calling it a hang.
    const HANG: Duration = Duration::from_secs(30);

    /// Waits (sleeping briefly) until `f` holds; fails the test if it does not within [`HANG`].
    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + HANG;
        while !f() {
            assert!(Instant::now() < deadline, "hung waiting until {what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Polls `f` once with a waker that does nothing.
    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(noop_waker_ref()))
    }

    fn recv<T>(rx: &mpsc::Receiver<T>) -> T {
        rx.recv_timeout(HANG).expect("hung waiting for a message")
    }

    type Shared = Arc<(Cond<RawMutex>, AtomicUsize)>;

    fn shared() -> Shared {
        Arc::new((Cond::new(RawMutex::new()), AtomicUsize::new(0)))
    }

    /// Go's TestCondSignal: with n waiters asleep, each signal wakes exactly one.
    #[test]
    fn signal_wakes_exactly_one() {
        const N: usize = 5;
        let s = shared();
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || {
                    let (c, awake) = &*s;
                    c.locker().lock();
                    c.wait();
                    assert!(c.locker().is_locked(), "wait returns with the lock held");
                    awake.fetch_add(1, Relaxed);
                    c.locker().unlock();
                })
            })
            .collect();
        let (c, awake) = &*s;
        wait_until("all are asleep", || c.waiters() == N);
        for k in 0..N {
            assert_eq!(awake.load(Relaxed), k, "a waiter woke without a signal");
            c.locker().lock();
            c.signal();
            assert_eq!(c.waiters(), N - k - 1, "a signal takes exactly one waiter");
            c.locker().unlock();
            wait_until("the signalled waiter wakes", || {
                awake.load(Relaxed) == k + 1
            });
            assert_eq!(c.waiters(), N - k - 1);
        }
        c.signal(); // nobody left: a no-op
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(awake.load(Relaxed), N);
        assert!(!c.locker().is_locked());
    }

    /// Signals wake waiters in the order they began to wait, longest first.
    #[test]
    fn signals_wake_in_wait_order() {
        const N: usize = 8;
        let c = Arc::new(Cond::new(RawMutex::new()));
        let (tx, rx) = mpsc::channel();
        let mut handles = Vec::new();
        for i in 0..N {
            let (c2, tx) = (c.clone(), tx.clone());
            handles.push(thread::spawn(move || {
                c2.locker().lock();
                c2.wait();
                tx.send(i).unwrap();
                c2.locker().unlock();
            }));
            // Waiter i is queued before waiter i + 1 starts.
            wait_until("the waiter is queued", || c.waiters() == i + 1);
        }
        for i in 0..N {
            c.signal();
            assert_eq!(recv(&rx), i, "signal woke out of order");
        }
        for h in handles {
            h.join().unwrap();
        }
    }

    /// Go's TestCondSignalGenerations: each waiter is signalled right after it starts to wait, and
    /// the one woken is always the one that has waited longest.
    #[test]
    fn signal_generations() {
        const N: usize = 50;
        let c = Arc::new(Cond::new(RawMutex::new()));
        let (running_tx, running) = mpsc::channel();
        let (awake_tx, awake) = mpsc::channel();
        let mut handles = Vec::new();
        for i in 0..N {
            let (c2, running_tx, awake_tx) = (c.clone(), running_tx.clone(), awake_tx.clone());
            handles.push(thread::spawn(move || {
                c2.locker().lock();
                running_tx.send(()).unwrap();
                c2.wait();
                awake_tx.send(i).unwrap();
                c2.locker().unlock();
            }));
            if i > 0 {
                assert_eq!(recv(&awake), i - 1, "woke the wrong generation");
            }
            recv(&running);
            // Waiter i held the lock when it said it was running; taking the lock now means it
            // is in `wait`.
            c.locker().lock();
            c.signal();
            c.locker().unlock();
        }
        assert_eq!(recv(&awake), N - 1);
        for h in handles {
            h.join().unwrap();
        }
    }

    /// Go's TestCondBroadcast: round after round, every waiter wakes on one broadcast.
    #[test]
    fn broadcast_wakes_everyone_each_round() {
        const N: usize = 8;
        const ROUNDS: usize = 5;
        let round = Arc::new(AtomicUsize::new(0));
        let s = shared();
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let (s, round) = (s.clone(), round.clone());
                thread::spawn(move || {
                    let (c, woke) = &*s;
                    for r in 0..ROUNDS {
                        c.locker().lock();
                        while round.load(Relaxed) == r {
                            c.wait();
                        }
                        woke.fetch_add(1, Relaxed);
                        c.locker().unlock();
                    }
                })
            })
            .collect();
        let (c, woke) = &*s;
        for r in 0..ROUNDS {
            wait_until("everyone waits", || c.waiters() == N);
            c.locker().lock();
            round.store(r + 1, Relaxed);
            c.broadcast();
            assert_eq!(c.waiters(), 0, "broadcast takes every waiter");
            c.locker().unlock();
            wait_until("everyone wakes", || woke.load(Relaxed) == N * (r + 1));
        }
        for h in handles {
            h.join().unwrap();
        }
    }

    /// Go's TestCondSignalStealing: a waiter that arrives while a broadcast is under way may or may
    /// not be woken, but the waiter that was already asleep must be.
    #[test]
    fn broadcast_is_not_stolen_by_a_later_waiter() {
        for _ in 0..200 {
            let s = Arc::new((Cond::new(RawMutex::new()), AtomicBool::new(false)));
            let (tx, rx) = mpsc::channel();
            let first = {
                let (s, tx) = (s.clone(), tx.clone());
                thread::spawn(move || {
                    s.0.locker().lock();
                    tx.send(()).unwrap();
                    s.0.wait();
                    s.0.locker().unlock();
                    tx.send(()).unwrap();
                })
            };
            recv(&rx);
            // The first waiter held the lock when it sent; once we get the lock, it is asleep.
            s.0.locker().lock();
            s.0.locker().unlock();
            let broadcaster = {
                let s = s.clone();
                thread::spawn(move || s.0.broadcast())
            };
            let second = {
                let s = s.clone();
                thread::spawn(move || {
                    s.0.locker().lock();
                    while !s.1.load(Relaxed) {
                        s.0.wait();
                    }
                    s.0.locker().unlock();
                })
            };
            recv(&rx); // the first waiter got the broadcast
            s.0.locker().lock();
            s.1.store(true, Relaxed);
            s.0.locker().unlock();
            s.0.broadcast();
            for h in [first, broadcaster, second] {
                h.join().unwrap();
            }
        }
    }

    /// The seed's example: ten runners each take the lock, report ready, and wait for the start;
    /// the referee waits for all ten, then sets `is_ready` and broadcasts. A broadcast before
    /// anyone waits (the seed's "false broadcast") wakes nobody and is not remembered.
    #[test]
    fn ten_runners_start_on_one_broadcast() {
        let s = Arc::new((Cond::new(RawMutex::new()), AtomicBool::new(false)));
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (ready_tx, ready) = mpsc::channel();
        let runners: Vec<_> = (0..10)
            .map(|i| {
                let (s, started, ready_tx) = (s.clone(), started.clone(), ready_tx.clone());
                thread::spawn(move || {
                    let (c, is_ready) = &*s;
                    c.locker().lock();
                    thread::sleep(Duration::from_millis(i % 3)); // getting ready
                    ready_tx.send(i).unwrap(); // runner i is ready
                    while !is_ready.load(Relaxed) {
                        c.wait();
                    }
                    started.lock().unwrap().push(i);
                    c.locker().unlock();
                })
            })
            .collect();
        let (c, is_ready) = &*s;
        c.broadcast(); // false broadcast
        for _ in 0..10 {
            recv(&ready);
        }
        assert!(started.lock().unwrap().is_empty(), "a runner started early");
        // All ready; the starting gun.
        c.locker().lock();
        is_ready.store(true, Relaxed);
        c.broadcast();
        c.locker().unlock();
        for r in runners {
            r.join().unwrap();
        }
        let mut started = started.lock().unwrap().clone();
        started.sort_unstable();
        assert_eq!(started, (0..10).collect::<Vec<_>>());
    }

    /// The same race in the guard form, with the flag inside a `Mutex<bool>`.
    #[test]
    fn ten_runners_with_a_mutex_guard() {
        let s = Arc::new((Mutex::new(false), Cond::new(())));
        let started = Arc::new(AtomicUsize::new(0));
        let (ready_tx, ready) = mpsc::channel();
        let runners: Vec<_> = (0..10)
            .map(|i| {
                let (s, started, ready_tx) = (s.clone(), started.clone(), ready_tx.clone());
                thread::spawn(move || {
                    let (m, c) = &*s;
                    let mut is_ready = m.lock();
                    ready_tx.send(i).unwrap();
                    while !*is_ready {
                        is_ready = c.wait_guard(is_ready);
                    }
                    started.fetch_add(1, Relaxed);
                })
            })
            .collect();
        for _ in 0..10 {
            recv(&ready);
        }
        let (m, c) = &*s;
        *m.lock() = true;
        c.broadcast();
        for r in runners {
            r.join().unwrap();
        }
        assert_eq!(started.load(Relaxed), 10);
        assert!(!m.is_locked());
    }

    /// A waiter that takes one permit per wake-up, in whichever world it runs.
    fn take_permit_blocking(c: &Cond<RawMutex>, permits: &AtomicUsize) {
        c.locker().lock();
        while permits.load(Relaxed) == 0 {
            c.wait();
        }
        assert!(c.locker().is_locked());
        permits.fetch_sub(1, Relaxed);
        c.locker().unlock();
    }

    async fn take_permit_async(c: &Cond<RawMutex>, permits: &AtomicUsize) {
        c.locker().lock_async().await;
        while permits.load(Relaxed) == 0 {
            c.wait_async().await;
        }
        assert!(c.locker().is_locked());
        permits.fetch_sub(1, Relaxed);
        c.locker().unlock();
    }

    /// Threads, tokio tasks on a multi-thread runtime, and tasks of `futures`' executors wait on
    /// one `Cond`; each signal wakes exactly one of them, then a broadcast wakes the rest.
    #[test]
    fn threads_and_tasks_of_two_executors_share_one_cond() {
        const EACH: usize = 3;
        let tokio_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let s = shared();
        let done = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        let mut tokio_tasks = Vec::new();
        let mut pool_tasks = Vec::new();
        for _ in 0..EACH {
            let (s1, d1) = (s.clone(), done.clone());
            threads.push(thread::spawn(move || {
                take_permit_blocking(&s1.0, &s1.1);
                d1.fetch_add(1, Relaxed);
            }));
            let (s2, d2) = (s.clone(), done.clone());
            tokio_tasks.push(tokio_rt.spawn(async move {
                take_permit_async(&s2.0, &s2.1).await;
                d2.fetch_add(1, Relaxed);
            }));
            let (s3, d3) = (s.clone(), done.clone());
            pool_tasks.push(
                futures::task::SpawnExt::spawn_with_handle(&pool, async move {
                    take_permit_async(&s3.0, &s3.1).await;
                    d3.fetch_add(1, Relaxed);
                })
                .unwrap(),
            );
        }
        // One more, on `futures::executor::block_on` in a plain thread.
        let (s4, d4) = (s.clone(), done.clone());
        threads.push(thread::spawn(move || {
            futures::executor::block_on(take_permit_async(&s4.0, &s4.1));
            d4.fetch_add(1, Relaxed);
        }));
        let total = 3 * EACH + 1;
        let (c, permits) = &*s;
        wait_until("everyone waits", || c.waiters() == total);
        let waiting = c.waiting();
        assert_eq!(waiting.len(), total);
        assert!(waiting.iter().all(|w| w.kind == WaitKind::Cond));
        assert_eq!(waiting.iter().filter(|w| w.is_async).count(), 2 * EACH + 1);
        assert!(waiting.iter().all(|w| w.location.file() == file!()));

        let signalled = total - 2;
        for k in 0..signalled {
            c.locker().lock();
            permits.fetch_add(1, Relaxed);
            c.signal();
            assert_eq!(c.waiters(), total - k - 1);
            c.locker().unlock();
            wait_until("one waiter takes the permit", || {
                done.load(Relaxed) == k + 1
            });
        }
        c.locker().lock();
        permits.fetch_add(2, Relaxed);
        c.broadcast();
        c.locker().unlock();
        for t in threads {
            t.join().unwrap();
        }
        tokio_rt.block_on(async {
            for t in tokio_tasks {
                t.await.unwrap();
            }
        });
        futures::executor::block_on(futures::future::join_all(pool_tasks));
        assert_eq!(done.load(Relaxed), total);
        assert_eq!(permits.load(Relaxed), 0);
        assert!(!c.locker().is_locked());
    }

    /// Threads and tasks are woken in the order they began to wait (a task begins when first
    /// polled).
    #[test]
    fn threads_and_tasks_wake_in_wait_order() {
        const N: usize = 8;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let c = Arc::new(Cond::new(RawMutex::new()));
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..N {
            let (c2, tx) = (c.clone(), tx.clone());
            if i % 2 == 0 {
                threads.push(thread::spawn(move || {
                    c2.locker().lock();
                    c2.wait();
                    tx.send(i).unwrap();
                    c2.locker().unlock();
                }));
            } else {
                tasks.push(rt.spawn(async move {
                    c2.locker().lock_async().await;
                    c2.wait_async().await;
                    tx.send(i).unwrap();
                    c2.locker().unlock();
                }));
            }
            wait_until("the waiter is queued", || c.waiters() == i + 1);
        }
        for i in 0..N {
            c.signal();
            assert_eq!(recv(&rx), i);
        }
        for t in threads {
            t.join().unwrap();
        }
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
    }

    /// Each wait is recorded at its caller's location, and so is its re-lock: a woken waiter
    /// queued on the mutex again is reported where it called `wait`, not inside gosync.
    #[test]
    fn waits_and_relocks_are_recorded_at_the_caller() {
        let c = Arc::new(Cond::new(RawMutex::new()));
        let t = {
            let c = c.clone();
            thread::spawn(move || {
                c.locker().lock();
                c.wait();
                c.locker().unlock();
            })
        };
        wait_until("the thread waits", || c.waiters() == 1);
        let rec = c.waiting();
        assert_eq!(rec[0].kind, WaitKind::Cond);
        assert_eq!(rec[0].location.file(), file!());
        assert!(!rec[0].is_async);

        c.locker().lock();
        let mut f = c.wait_async();
        let line = line!() - 1;
        assert!(poll_once(&mut f).is_pending()); // queued, the lock released
        c.locker().lock();
        c.broadcast(); // both woken; both need the lock we hold
        assert!(poll_once(&mut f).is_pending());
        wait_until("both re-lock", || c.locker().waiters() == 2);
        let rec = c.locker().waiting();
        assert!(rec.iter().all(|w| w.kind == WaitKind::Mutex));
        assert!(rec.iter().all(|w| w.location.file() == file!()));
        assert!(rec.iter().any(|w| w.is_async && w.location.line() == line));
        c.locker().unlock();
        wait_until("the task re-locks", || poll_once(&mut f).is_ready());
        c.locker().unlock();
        t.join().unwrap();
        assert!(!c.locker().is_locked());
    }

    /// Spawns a thread that waits once on `c` and sets `woke` when it returns.
    fn spawn_thread_waiter(
        c: &Arc<Cond<RawMutex>>,
        woke: &Arc<AtomicBool>,
    ) -> thread::JoinHandle<()> {
        let (c, woke) = (c.clone(), woke.clone());
        thread::spawn(move || {
            c.locker().lock();
            c.wait();
            woke.store(true, Relaxed);
            c.locker().unlock();
        })
    }

    /// A task that was signalled and then dropped, before it could re-lock, passes the signal on:
    /// the next waiter wakes.
    #[test]
    fn dropped_after_signal_while_queued_passes_the_signal_on() {
        let c = Arc::new(Cond::new(RawMutex::new()));
        let woke = Arc::new(AtomicBool::new(false));
        c.locker().lock();
        let mut f = c.wait_async();
        assert!(poll_once(&mut f).is_pending());
        assert!(!c.locker().is_locked(), "the first poll released the lock");
        let t = spawn_thread_waiter(&c, &woke);
        wait_until("the thread waits too", || c.waiters() == 2);
        c.signal(); // wakes the task, the longest waiter
        assert_eq!(c.waiters(), 1);
        drop(f);
        assert_eq!(c.waiters(), 0, "the signal went on to the thread");
        wait_until("the thread wakes", || woke.load(Relaxed));
        t.join().unwrap();
        assert!(!c.locker().is_locked());
    }

    /// The same when the dropped task had already seen the signal and was waiting for the lock.
    #[test]
    fn dropped_after_signal_while_relocking_passes_the_signal_on() {
        let c = Arc::new(Cond::new(RawMutex::new()));
        let woke = Arc::new(AtomicBool::new(false));
        c.locker().lock();
        let mut f = c.wait_async();
        assert!(poll_once(&mut f).is_pending());
        let t = spawn_thread_waiter(&c, &woke);
        wait_until("the thread waits too", || c.waiters() == 2);
        c.locker().lock();
        c.signal();
        assert!(
            poll_once(&mut f).is_pending(),
            "the lock is still held here"
        );
        assert!(format!("{f:?}").contains("relocking"));
        drop(f);
        assert_eq!(c.waiters(), 0, "the signal went on to the thread");
        assert!(c.locker().is_locked(), "still ours");
        c.locker().unlock();
        wait_until("the thread wakes", || woke.load(Relaxed));
        t.join().unwrap();
        assert!(!c.locker().is_locked());
    }

    /// A task dropped while still queued just leaves: a later signal goes to a live waiter.
    #[test]
    fn dropped_while_queued_leaves_the_queue() {
        let c = Arc::new(Cond::new(RawMutex::new()));
        let woke = Arc::new(AtomicBool::new(false));
        c.locker().lock();
        let mut f = c.wait_async();
        assert!(poll_once(&mut f).is_pending());
        assert_eq!(c.waiters(), 1);
        drop(f);
        assert_eq!(c.waiters(), 0);
        assert!(
            !c.locker().is_locked(),
            "a dropped wait does not hold the lock"
        );
        let t = spawn_thread_waiter(&c, &woke);
        wait_until("the thread waits", || c.waiters() == 1);
        c.signal();
        wait_until("the thread wakes", || woke.load(Relaxed));
        t.join().unwrap();
    }

    /// A broadcast wake-up is not passed on: the waiter that came after the broadcast sleeps on.
    #[test]
    fn dropped_after_broadcast_passes_nothing_on() {
        let c = Arc::new(Cond::new(RawMutex::new()));
        let woke = Arc::new(AtomicBool::new(false));
        c.locker().lock();
        let mut f = c.wait_async();
        assert!(poll_once(&mut f).is_pending());
        c.broadcast();
        let t = spawn_thread_waiter(&c, &woke);
        wait_until("the thread waits", || c.waiters() == 1);
        drop(f);
        assert_eq!(c.waiters(), 1, "the later waiter was not woken");
        assert!(!woke.load(Relaxed));
        c.signal();
        wait_until("the thread wakes", || woke.load(Relaxed));
        t.join().unwrap();
    }

    /// A wait future owns the caller's hold on the lock from its creation: dropped unpolled, it
    /// releases the lock; completed, the lock is held.
    #[test]
    fn wait_future_releases_the_lock_when_dropped_unpolled() {
        let c = Cond::new(RawMutex::new());
        c.locker().lock();
        let f = c.wait_async();
        assert!(c.locker().is_locked());
        assert!(format!("{f:?}").contains("not polled"));
        drop(f);
        assert!(!c.locker().is_locked());
        assert_eq!(c.waiters(), 0);

        c.locker().lock();
        let mut f = c.wait_async();
        assert!(poll_once(&mut f).is_pending());
        c.signal();
        assert!(poll_once(&mut f).is_ready());
        assert!(c.locker().is_locked(), "a completed wait holds the lock");
        drop(f);
        assert!(
            c.locker().is_locked(),
            "dropping a completed wait changes nothing"
        );
        c.locker().unlock();
    }

    /// A wait abandoned on a timeout does not hold the lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timed_out_wait_does_not_hold_the_lock() {
        let c = Cond::new(RawMutex::new());
        c.locker().lock_async().await;
        let r = tokio::time::timeout(Duration::from_millis(5), c.wait_async()).await;
        assert!(r.is_err());
        assert!(!c.locker().is_locked());
        assert_eq!(c.waiters(), 0);
    }

    /// A tiny deterministic generator for the stress test.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// How a flaky task gives up a wait.
    #[derive(Clone, Copy)]
    enum Quit {
        /// Busy-polls (rescheduling itself) and gives up after this many polls, woken or not.
        AfterPolls(u64),
        /// Waits normally and gives up as soon as it is woken, before it has re-locked.
        WhenWoken,
    }

    /// Polls the wait `f` until it completes (`Ok`) or `quit` says to give up; then drops it and
    /// returns `Err(woken)`, telling whether it had been woken and was re-locking.
    async fn poll_until_abandoned<F: Future + Unpin + std::fmt::Debug>(
        mut f: F,
        quit: Quit,
    ) -> Result<(), bool> {
        let mut polls = 0;
        std::future::poll_fn(|cx| {
            polls += 1;
            match Pin::new(&mut f).poll(cx) {
                Poll::Ready(_) => Poll::Ready(Ok(())),
                Poll::Pending => {
                    let woken = format!("{f:?}").contains("relocking");
                    match quit {
                        Quit::AfterPolls(budget) if polls > budget => Poll::Ready(Err(woken)),
                        Quit::AfterPolls(_) => {
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                        Quit::WhenWoken if woken => Poll::Ready(Err(true)),
                        Quit::WhenWoken => Poll::Pending,
                    }
                }
            }
        })
        .await
    }

    /// Cancel-safety stress: tasks that give up their waits at random moments — queued, or
    /// woken and re-locking — race with signals meant for steady waiters, which take one permit
    /// per wake-up, round after round. Permits come one at a time, each with one signal: a
    /// signal lost by a quitter leaves the permit untaken and the steady waiters asleep, and
    /// the test fails.
    #[test]
    fn abandoned_waits_lose_no_signal() {
        const STEADY: usize = 4;
        const ROUNDS: usize = 50;
        const FLAKY: usize = 4;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let s = shared();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let mut steady = Vec::new();
        for i in 0..STEADY {
            let (s, done) = (s.clone(), done.clone());
            if i % 2 == 0 {
                steady.push(rt.spawn_blocking(move || {
                    for _ in 0..ROUNDS {
                        take_permit_blocking(&s.0, &s.1);
                        done.fetch_add(1, Relaxed);
                    }
                }));
            } else {
                steady.push(rt.spawn(async move {
                    for _ in 0..ROUNDS {
                        take_permit_async(&s.0, &s.1).await;
                        done.fetch_add(1, Relaxed);
                    }
                }));
            }
        }
        let mut flaky = Vec::new();
        for i in 0..FLAKY {
            let (s, stop) = (s.clone(), stop.clone());
            flaky.push(rt.spawn(async move {
                let (c, _) = &*s;
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
                let (mut gave_up, mut gave_up_woken) = (0u64, 0u64);
                while !stop.load(Relaxed) {
                    let quit = match rng.below(3) {
                        0 => Quit::AfterPolls(rng.below(200)),
                        _ => Quit::WhenWoken,
                    };
                    c.locker().lock_async().await;
                    match poll_until_abandoned(c.wait_async(), quit).await {
                        Ok(()) => {
                            // Woken and re-locked, but this task takes no permit: it hands the
                            // wake-up on by hand, as a Go waiter not interested in it would.
                            c.signal();
                            c.locker().unlock();
                        }
                        Err(woken) => {
                            gave_up += 1;
                            gave_up_woken += u64::from(woken);
                        }
                    }
                    tokio::task::yield_now().await;
                }
                (gave_up, gave_up_woken)
            }));
        }
        let (c, permits) = &*s;
        // One permit at a time, with one signal: if that signal is lost, nobody takes it.
        for k in 0..STEADY * ROUNDS {
            c.locker().lock();
            permits.fetch_add(1, Relaxed);
            c.signal();
            thread::yield_now(); // let the woken waiter find the lock still held
            c.locker().unlock();
            wait_until("a steady waiter takes the permit", || {
                done.load(Relaxed) == k + 1
            });
        }
        stop.store(true, Relaxed);
        let (gave_up, gave_up_woken) = rt.block_on(async {
            for t in steady {
                t.await.unwrap();
            }
            let mut n = (0, 0);
            for t in flaky {
                // Flaky tasks waiting for a wake-up need one more to see `stop`.
                while !t.is_finished() {
                    c.broadcast();
                    tokio::task::yield_now().await;
                }
                let (a, b) = t.await.unwrap();
                n = (n.0 + a, n.1 + b);
            }
            n
        });
        eprintln!("abandoned waits: {gave_up}, of which woken by a signal: {gave_up_woken}");
        assert!(gave_up > 0, "the flaky tasks never abandoned a wait");
        assert_eq!(permits.load(Relaxed), 0);
        assert_eq!(c.waiters(), 0);
        assert!(!c.locker().is_locked());
    }

    /// The guard form: a queue in a `Mutex<VecDeque>`, consumers on threads and tasks.
    #[test]
    fn guard_form_queue_with_threads_and_tasks() {
        const ITEMS: usize = 200;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let s = Arc::new((Mutex::new((VecDeque::new(), false)), Cond::new(())));
        let taken = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (s1, taken1) = (s.clone(), taken.clone());
            threads.push(thread::spawn(move || {
                let (m, c) = &*s1;
                let mut g = m.lock();
                loop {
                    if g.0.pop_front().is_some() {
                        taken1.fetch_add(1, Relaxed);
                    } else if g.1 {
                        return;
                    } else {
                        g = c.wait_guard(g);
                    }
                }
            }));
            let (s2, taken2) = (s.clone(), taken.clone());
            tasks.push(rt.spawn(async move {
                let (m, c) = &*s2;
                let mut g = m.lock_async().await;
                loop {
                    if g.0.pop_front().is_some() {
                        taken2.fetch_add(1, Relaxed);
                    } else if g.1 {
                        return;
                    } else {
                        g = c.wait_guard_async(g).await;
                    }
                }
            }));
        }
        let (m, c) = &*s;
        for i in 0..ITEMS {
            m.lock().0.push_back(i);
            c.signal();
        }
        m.lock().1 = true;
        c.broadcast();
        for t in threads {
            t.join().unwrap();
        }
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert_eq!(taken.load(Relaxed), ITEMS);
        assert!(!m.is_locked());
    }

    /// A guard-form wait future dropped before completing has given up the guard, and passes a
    /// signal on.
    #[test]
    fn guard_wait_future_dropped_gives_up_the_guard() {
        let m = Mutex::new(0);
        let c = Cond::new(());
        let g = m.lock();
        let f = c.wait_guard_async(g);
        drop(f);
        assert!(!m.is_locked(), "dropped unpolled, the guard is released");

        let g = m.lock();
        let mut f = c.wait_guard_async(g);
        assert!(poll_once(&mut f).is_pending());
        assert!(!m.is_locked());
        let g = m.lock();
        let mut f2 = c.wait_guard_async(g);
        assert!(poll_once(&mut f2).is_pending());
        assert_eq!(c.waiters(), 2);
        c.signal();
        drop(f); // signalled, never re-locked: the signal goes to f2
        assert_eq!(c.waiters(), 0);
        let mut g = match poll_once(&mut f2) {
            Poll::Ready(g) => g,
            Poll::Pending => panic!("the passed-on signal did not wake the second waiter"),
        };
        *g += 1;
        drop(g);
        assert_eq!(*m.lock(), 1);
    }

    /// `&L` and `Arc<L>` are lockers too.
    #[test]
    fn borrowed_and_shared_lockers() {
        let m = RawMutex::new();
        let flag = AtomicBool::new(false);
        let c = Cond::new(&m);
        thread::scope(|sc| {
            sc.spawn(|| {
                c.locker().lock();
                while !flag.load(Relaxed) {
                    c.wait();
                }
                c.locker().unlock();
            });
            wait_until("the waiter waits", || c.waiters() == 1);
            m.lock();
            flag.store(true, Relaxed);
            c.signal();
            m.unlock();
        });

        let m = Arc::new(RawMutex::new());
        let c = Cond::new(m.clone());
        m.lock();
        let mut f = c.wait_async();
        assert!(poll_once(&mut f).is_pending());
        assert!(!m.is_locked());
        c.broadcast();
        assert!(poll_once(&mut f).is_ready());
        assert!(m.is_locked());
        m.unlock();
    }

    /// A `Cond` over the read side of a `RawRwMutex` (Go's `NewCond(rw.RLocker())`): readers on
    /// threads and tasks wait for a writer's change, wake on one broadcast, and then hold the read
    /// lock all at the same time.
    #[test]
    fn cond_over_the_read_side_of_a_rwmutex() {
        const THREADS: usize = 3;
        const TASKS: usize = 2;
        const N: usize = THREADS + TASKS;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let rw = Arc::new(RawRwMutex::new());
        let s = Arc::new((
            Cond::new(RLocker::new(rw.clone())),
            AtomicBool::new(false),
            AtomicUsize::new(0),
        ));
        let mut threads = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..THREADS {
            let s = s.clone();
            threads.push(thread::spawn(move || {
                let (c, published, inside) = &*s;
                c.locker().lock();
                while !published.load(Relaxed) {
                    c.wait();
                }
                inside.fetch_add(1, Relaxed);
                // Readers share the lock: every one of them gets in while this one holds it.
                wait_until("all readers are inside", || inside.load(Relaxed) == N);
                c.locker().unlock();
            }));
        }
        for _ in 0..TASKS {
            let s = s.clone();
            tasks.push(rt.spawn(async move {
                let (c, published, inside) = &*s;
                c.locker().lock_async().await;
                while !published.load(Relaxed) {
                    c.wait_async().await;
                }
                inside.fetch_add(1, Relaxed);
                let deadline = Instant::now() + HANG;
                while inside.load(Relaxed) != N {
                    assert!(
                        Instant::now() < deadline,
                        "hung waiting for the other readers"
                    );
                    tokio::task::yield_now().await;
                }
                c.locker().unlock();
            }));
        }
        let (c, published, _) = &*s;
        wait_until("every reader waits", || c.waiters() == N);
        assert_eq!(
            rw.reader_count(),
            0,
            "waiting readers released their read locks"
        );
        rw.lock(); // the writer: no reader holds the lock
        published.store(true, Relaxed);
        rw.unlock();
        c.broadcast();
        for t in threads {
            t.join().unwrap();
        }
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert_eq!(rw.reader_count(), 0);
        assert!(!rw.is_locked());
    }

    /// The guard form with both guards of an `RwMutex<T>`: readers wait with read guards, a
    /// waiter with a write guard changes the value in turn.
    #[test]
    fn guard_form_with_rwmutex_guards() {
        let s = Arc::new((RwMutex::new(0u32), Cond::new(())));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || {
                    let (rw, c) = &*s;
                    let mut g = rw.read();
                    while *g < 2 {
                        g = c.wait_guard(g);
                    }
                    *g
                })
            })
            .collect();
        let writer = {
            let s = s.clone();
            thread::spawn(move || {
                let (rw, c) = &*s;
                let mut g = rw.write();
                while *g != 1 {
                    g = c.wait_guard(g);
                }
                *g = 2;
                drop(g);
                c.broadcast();
            })
        };
        let (rw, c) = &*s;
        wait_until("everyone waits", || c.waiters() == 4);
        rt.block_on(async {
            let mut g = rw.write_async().await;
            *g = 1;
            drop(g);
            c.broadcast();
            let mut g = rw.read_async().await;
            while *g < 2 {
                g = c.wait_guard_async(g).await;
            }
            assert_eq!(*g, 2);
        });
        writer.join().unwrap();
        for r in readers {
            assert_eq!(r.join().unwrap(), 2);
        }
        assert!(!rw.is_locked());
    }

    /// The write side of a `RawRwMutex` is a locker too (Go's `*RWMutex` is a `sync.Locker`).
    #[test]
    fn cond_over_the_write_side_of_a_rwmutex() {
        let c = Cond::new(RawRwMutex::new());
        c.locker().lock();
        let mut f = c.wait_async();
        assert!(poll_once(&mut f).is_pending());
        assert!(!c.locker().is_locked());
        c.signal();
        assert!(poll_once(&mut f).is_ready());
        assert!(c.locker().is_locked());
        c.locker().unlock();
    }

    /// Waiting without holding the lock is a bug; with a `RawMutex` it surfaces as Go's unlock
    /// panic, and leaves nobody queued.
    #[test]
    #[should_panic(expected = "sync: unlock of unlocked mutex")]
    fn wait_without_the_lock_panics() {
        Cond::new(RawMutex::new()).wait();
    }

    #[test]
    fn a_panicking_wait_leaves_the_queue_clean() {
        let c = Cond::new(RawMutex::new());
        let r = catch_unwind(AssertUnwindSafe(|| c.wait()));
        let payload = r.unwrap_err();
        assert_eq!(
            payload.downcast_ref::<&str>().copied(),
            Some("sync: unlock of unlocked mutex")
        );
        assert_eq!(c.waiters(), 0);

        let mut f = c.wait_async();
        let r = catch_unwind(AssertUnwindSafe(|| poll_once(&mut f)));
        assert!(r.is_err());
        drop(f);
        assert_eq!(c.waiters(), 0);
        assert!(!c.locker().is_locked());

        // The read side reports its own misuse.
        let rw = RawRwMutex::new();
        let c = Cond::new(RLocker::new(&rw));
        let r = catch_unwind(AssertUnwindSafe(|| c.wait()));
        assert_eq!(
            r.unwrap_err().downcast_ref::<&str>().copied(),
            Some("sync: RUnlock of unlocked RWMutex")
        );
        assert_eq!(c.waiters(), 0);
    }

    /// The futures can go into `tokio::spawn`; the `Cond` can be shared.
    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        fn unpin<T: Unpin>() {}
        send_sync::<Cond<RawMutex>>();
        send_sync::<Cond<Arc<RawMutex>>>();
        send_sync::<Cond>();
        send_sync::<Cond<RLocker<Arc<RawRwMutex>>>>();
        send::<WaitFuture<'static, RLocker<&'static RawRwMutex>>>();
        send::<WaitFuture<'static, RawMutex>>();
        send::<WaitGuardFuture<'static, MutexGuard<'static, Vec<u8>>>>();
        unpin::<WaitFuture<'static, RawMutex>>();
        unpin::<WaitGuardFuture<'static, MutexGuard<'static, Vec<u8>>>>();
    }
}

/// loom models: a waiter queued before it unlocks misses no signal, whatever the interleaving;
/// a signalled future dropped before it re-locks passes the signal on.
#[cfg(loom)]
mod loom_models {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use gosync::sync::{Cond, RawMutex};
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// A flag guarded by the cond's mutex; loom reports a data race if the lock edges are
    /// missing.
    struct State {
        c: Cond<RawMutex>,
        ready: UnsafeCell<bool>,
    }

    // SAFETY: `ready` is only touched with the mutex held; loom checks exactly that.
    unsafe impl Sync for State {}

    impl State {
        fn new() -> Arc<Self> {
            Arc::new(State {
                c: Cond::new(RawMutex::new()),
                ready: UnsafeCell::new(false),
            })
        }

        /// Called with the lock held.
        fn ready(&self) -> bool {
            // SAFETY: the mutex is held.
            self.ready.with(|p| unsafe { *p })
        }

        /// Called with the lock held.
        fn set_ready(&self) {
            // SAFETY: the mutex is held.
            self.ready.with_mut(|p| unsafe { *p = true });
        }

        /// Go's loop: lock; for !ready { Wait() }; unlock.
        fn wait_ready(&self) {
            self.c.locker().lock();
            while !self.ready() {
                self.c.wait();
            }
            self.c.locker().unlock();
        }
    }

    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
    }

    /// One thread waits, one sets the flag and signals — under the lock, or after unlocking.
    /// A lost wake-up leaves the waiter parked: loom reports the deadlock.
    #[test]
    fn no_lost_signal() {
        for signal_under_lock in [true, false] {
            loom::model(move || {
                let s = State::new();
                let s2 = s.clone();
                let waiter = thread::spawn(move || s2.wait_ready());
                s.c.locker().lock();
                s.set_ready();
                if signal_under_lock {
                    s.c.signal();
                    s.c.locker().unlock();
                } else {
                    s.c.locker().unlock();
                    s.c.signal();
                }
                waiter.join().unwrap();
            });
        }
    }

    /// A task's wait is dropped while a signal races the drop, and a thread waits behind it:
    /// whether the signal reached the task before or after it left, the thread wakes.
    #[test]
    fn dropped_future_passes_the_signal_on() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(|| {
            let s = State::new();
            s.c.locker().lock();
            let mut f = s.c.wait_async();
            assert!(poll_once(&mut f).is_pending());
            let s2 = s.clone();
            let waiter = thread::spawn(move || s2.wait_ready());
            let s3 = s.clone();
            let signaller = thread::spawn(move || {
                s3.c.locker().lock();
                s3.set_ready();
                s3.c.locker().unlock();
                s3.c.signal();
            });
            drop(f);
            waiter.join().unwrap();
            signaller.join().unwrap();
            assert!(s.c.locker().try_lock());
            s.c.locker().unlock();
        });
    }
}
