//! WaitGroup tests, written afresh after the semantics of Go's `sync/waitgroup_test.go`
//! (<https://go.dev/src/sync/waitgroup_test.go>): release exactly at zero, reuse, and the three
//! misuse panics with Go's messages. Go's racy misuse tests loop until the race shows; here
//! the "reused before Wait returned" case is also made deterministic with a hand-polled
//! future. Additions: async waiters on two executors, threads and tasks on one group, cancel
//! safety.

#[cfg(not(loom))]
mod support;

#[cfg(not(loom))]
mod std_tests {
    use super::support;
    use super::support::payload_message as message;
    use std::future::Future;
    use std::panic::{self, AssertUnwindSafe};
    use std::pin::pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::thread;
    use std::time::Duration;

    use futures::task::noop_waker_ref;
    use gosync::sync::WaitGroup;

    const NEGATIVE: &str = "sync: negative WaitGroup counter";
    const CONCURRENT_ADD: &str = "sync: WaitGroup misuse: Add called concurrently with Wait";
    const REUSED: &str = "sync: WaitGroup is reused before previous Wait has returned";

    /// Keeps the expected misuse panics of these tests off stderr; any other panic still prints.
    fn quiet_misuse_panics() {
        support::quiet_panics(|msg| [NEGATIVE, CONCURRENT_ADD, REUSED].contains(&msg));
    }

    /// Runs `f`, expecting a panic; returns its message.
    fn panic_message(f: impl FnOnce()) -> String {
        quiet_misuse_panics();
        support::expect_panic(f)
    }

    /// Spins (yielding) until `cond` holds; fails the test after a generous bound.
    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..20_000 {
            if cond() {
                return;
            }
            thread::sleep(Duration::from_micros(500));
        }
        panic!("timed out waiting until {what}");
    }

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(noop_waker_ref()))
    }

    /// Go's TestWaitGroup: waiters are released exactly when the counter reaches zero — not after
    /// n-1 dones — and every job's writes are visible to them when they return.
    #[test]
    fn waiters_released_exactly_at_zero() {
        const JOBS: usize = 8;
        const WAITERS: usize = 3;
        for _round in 0..20 {
            let wg = WaitGroup::new();
            let slots: Arc<Vec<AtomicUsize>> =
                Arc::new((0..JOBS).map(|_| AtomicUsize::new(0)).collect());
            let released = Arc::new(AtomicUsize::new(0));
            wg.add(JOBS as isize);
            let waiters: Vec<_> = (0..WAITERS)
                .map(|_| {
                    let (wg, slots, released) = (wg.clone(), slots.clone(), released.clone());
                    thread::spawn(move || {
                        wg.wait();
                        // Every `done` synchronizes before this return.
                        for s in slots.iter() {
                            assert_eq!(
                                s.load(Ordering::Relaxed),
                                1,
                                "a job's write is not visible"
                            );
                        }
                        released.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            wait_until("all waiters are parked", || wg.waiters() == WAITERS);
            let jobs: Vec<_> = (0..JOBS - 1)
                .map(|i| {
                    let (wg, slots) = (wg.clone(), slots.clone());
                    thread::spawn(move || {
                        slots[i].store(1, Ordering::Relaxed);
                        wg.done();
                    })
                })
                .collect();
            for j in jobs {
                j.join().unwrap();
            }
            assert_eq!(wg.count(), 1);
            assert_eq!(
                released.load(Ordering::SeqCst),
                0,
                "released before the last done"
            );
            assert_eq!(wg.waiters(), WAITERS);
            slots[JOBS - 1].store(1, Ordering::Relaxed);
            wg.done();
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(released.load(Ordering::SeqCst), WAITERS);
            assert_eq!(wg.waiters(), 0);
            assert_eq!(wg.count(), 0);
        }
    }

    /// `wait` and `wait_async` on a zero counter return at once.
    #[test]
    fn wait_on_zero_returns_at_once() {
        let wg = WaitGroup::default();
        wg.wait();
        assert_eq!(poll_once(pin!(wg.wait_async())), Poll::Ready(()));
        wg.add(1);
        wg.done();
        wg.wait();
        assert_eq!(poll_once(pin!(wg.wait_async())), Poll::Ready(()));
    }

    /// The Go course's reuse example: Add(10) … Wait … Add(20) … Wait, counting on the side;
    /// and many more rounds with a waiter thread that must see each round complete.
    #[test]
    fn reusable_after_wait_returns() {
        let count = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for (round, jobs) in [10usize, 20].into_iter().enumerate() {
            wg.add(jobs as isize);
            for _ in 0..jobs {
                let (wg, count) = (wg.clone(), count.clone());
                thread::spawn(move || {
                    count.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                });
            }
            wg.wait();
            assert_eq!(count.load(Ordering::Relaxed), [10, 30][round]);
        }

        // Many short rounds; the waiter's return is confirmed before the next round's add.
        for _ in 0..200 {
            wg.add(2);
            let w = {
                let wg = wg.clone();
                thread::spawn(move || wg.wait())
            };
            let d = {
                let wg = wg.clone();
                thread::spawn(move || wg.done())
            };
            wg.done();
            d.join().unwrap();
            w.join().unwrap();
        }
        assert_eq!(wg.count(), 0);
    }

    /// The Go course's "many waits and many dones": a second wait after release returns at once,
    /// and one job's done may come from anywhere.
    #[test]
    fn several_waits_after_release() {
        let wg = WaitGroup::new();
        wg.add(3);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let wg = wg.clone();
                thread::spawn(move || wg.done())
            })
            .collect();
        wg.done();
        wg.wait();
        wg.wait();
        for h in handles {
            h.join().unwrap();
        }
    }

    /// Go's TestWaitGroupMisuse: the counter below zero panics with Go's message.
    #[test]
    fn negative_counter_panics() {
        let wg = WaitGroup::new();
        assert_eq!(panic_message(|| wg.done()), NEGATIVE);

        let wg = WaitGroup::new();
        wg.add(1);
        assert_eq!(panic_message(|| wg.add(-2)), NEGATIVE);

        let wg = WaitGroup::new();
        assert_eq!(panic_message(|| wg.add(isize::MIN)), NEGATIVE);
        // The counter is 32 bits, as in Go; a delta that does not fit is refused.
        if isize::BITS > 32 {
            let msg = panic_message(|| wg.add(i32::MAX as isize + 1));
            assert_eq!(msg, "sync: WaitGroup counter overflow");
        }
    }

    /// The Go course's second reuse example: a job does `Done` then `Add(1)` right away, while the
    /// waiter has been released but has not yet returned. Made deterministic with a task waiter
    /// polled by hand: the release happens, the counter is raised, then the waiter looks.
    #[test]
    fn reuse_before_wait_returned_panics_deterministically() {
        let wg = WaitGroup::new();
        wg.add(1);
        let mut fut = Box::pin(wg.wait_async());
        assert_eq!(poll_once(fut.as_mut()), Poll::Pending);
        assert_eq!(wg.waiters(), 1);
        wg.done(); // releases the waiter
        wg.add(1); // a new round, before the waiter returned
        assert_eq!(
            panic_message(|| {
                let _ = poll_once(fut.as_mut());
            }),
            REUSED
        );
        drop(fut);
        wg.done();
        wg.wait();
    }

    /// The same with a parked thread, as in the Go course: Done then Add(1) at once, while the
    /// waiter is being woken. The detection is opportunistic; a woken thread takes far longer to
    /// run than the two calls, so it must trigger within a few tries.
    #[test]
    fn reuse_before_wait_returned_panics_thread() {
        quiet_misuse_panics();
        for _try in 0..100 {
            let wg = WaitGroup::new();
            wg.add(1);
            let waiter = {
                let wg = wg.clone();
                thread::spawn(move || panic::catch_unwind(AssertUnwindSafe(|| wg.wait())))
            };
            wait_until("the waiter is parked", || wg.waiters() == 1);
            wg.done();
            wg.add(1);
            match waiter.join().unwrap() {
                Err(p) => {
                    assert_eq!(message(&*p), REUSED);
                    return;
                }
                Ok(()) => wg.done(),
            }
        }
        panic!("reuse before Wait returned was never detected");
    }

    /// The Go course's "Add called concurrently with Wait": threads loop `add(1); done()` while
    /// others loop `wait()`. As in Go's TestWaitGroupMisuse2, one of the two racy misuse panics
    /// must show up (within a generous bound), and no other panic may.
    #[test]
    fn add_concurrent_with_wait_is_detected() {
        quiet_misuse_panics();
        const ITERATIONS: usize = 5_000_000;
        let wg = WaitGroup::new();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let mut handles = Vec::new();
        for _ in 0..2 {
            let (wg, stop, seen) = (wg.clone(), stop.clone(), seen.clone());
            handles.push(thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < ITERATIONS {
                    i += 1;
                    // The add counts even when it panics: always pair it with its done.
                    for r in [
                        panic::catch_unwind(AssertUnwindSafe(|| wg.add(1))),
                        panic::catch_unwind(AssertUnwindSafe(|| wg.done())),
                    ] {
                        if let Err(p) = r {
                            seen.lock().unwrap().push(message(&*p));
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        let adders_done = Arc::new(AtomicUsize::new(0));
        let adders = std::mem::take(&mut handles);
        for _ in 0..2 {
            let (wg, stop, seen, adders_done) =
                (wg.clone(), stop.clone(), seen.clone(), adders_done.clone());
            handles.push(thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) && adders_done.load(Ordering::Relaxed) < 2 {
                    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| wg.wait())) {
                        seen.lock().unwrap().push(message(&*p));
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }));
        }
        for a in adders {
            a.join().unwrap();
            adders_done.fetch_add(1, Ordering::Relaxed);
        }
        // The adders are gone and the counter is back at zero: every waiter is released.
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(wg.count(), 0);
        assert_eq!(wg.waiters(), 0);
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty(), "misuse never detected");
        for m in seen.iter() {
            assert!(
                [CONCURRENT_ADD, REUSED].contains(&m.as_str()),
                "unexpected panic: {m}"
            );
        }
    }

    /// "Add called concurrently with Wait" on its own: adders loop `add(1); done()` while a third
    /// thread keeps registering task waiters that it never polls again (so no waiter ever checks
    /// for reuse). An `add` that raises the counter from zero while the `done` before it is still
    /// releasing waiters must be caught, as in Go.
    #[test]
    fn add_raising_zero_during_release_panics() {
        quiet_misuse_panics();
        const ITERATIONS: usize = 5_000_000;
        let wg = WaitGroup::new();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let adders: Vec<_> = (0..2)
            .map(|_| {
                let (wg, stop, seen) = (wg.clone(), stop.clone(), seen.clone());
                thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) && i < ITERATIONS {
                        i += 1;
                        for r in [
                            panic::catch_unwind(AssertUnwindSafe(|| wg.add(1))),
                            panic::catch_unwind(AssertUnwindSafe(|| wg.done())),
                        ] {
                            if let Err(p) = r {
                                seen.lock().unwrap().push(message(&*p));
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    stop.store(true, Ordering::Relaxed);
                })
            })
            .collect();
        let registrar = {
            let (wg, stop) = (wg.clone(), stop.clone());
            thread::spawn(move || {
                let mut parked = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let mut f = Box::pin(wg.wait_async());
                    if poll_once(f.as_mut()).is_pending() {
                        parked.push(f);
                    }
                    if parked.len() > 10_000 {
                        parked.clear(); // dropping released futures, or cancelling queued ones
                    }
                }
            })
        };
        for a in adders {
            a.join().unwrap();
        }
        registrar.join().unwrap();
        assert_eq!(wg.count(), 0);
        assert_eq!(wg.waiters(), 0);
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty(), "misuse never detected");
        for m in seen.iter() {
            assert_eq!(m, CONCURRENT_ADD);
        }
    }

    /// Task waiters on tokio's multi-thread runtime: released at zero, with the jobs' writes
    /// visible.
    #[test]
    fn async_waiters_on_tokio() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..20 {
                let wg = WaitGroup::new();
                let written = Arc::new(AtomicUsize::new(0));
                wg.add(8);
                let waiters: Vec<_> = (0..8)
                    .map(|_| {
                        let (wg, written) = (wg.clone(), written.clone());
                        tokio::spawn(async move {
                            wg.wait_async().await;
                            assert_eq!(written.load(Ordering::Relaxed), 8);
                        })
                    })
                    .collect();
                for _ in 0..8 {
                    let (wg, written) = (wg.clone(), written.clone());
                    tokio::spawn(async move {
                        tokio::task::yield_now().await;
                        written.fetch_add(1, Ordering::Relaxed);
                        wg.done();
                    });
                }
                for w in waiters {
                    w.await.unwrap();
                }
                assert_eq!(wg.waiters(), 0);
            }
        });
    }

    /// Task waiters on `futures`' thread pool, jobs on plain threads.
    #[test]
    fn async_waiters_on_futures_thread_pool() {
        use futures::task::SpawnExt;
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        for _ in 0..20 {
            let wg = WaitGroup::new();
            let written = Arc::new(AtomicUsize::new(0));
            wg.add(4);
            let waiters: Vec<_> = (0..6)
                .map(|_| {
                    let (wg, written) = (wg.clone(), written.clone());
                    pool.spawn_with_handle(async move {
                        wg.wait_async().await;
                        written.load(Ordering::Relaxed)
                    })
                    .unwrap()
                })
                .collect();
            for _ in 0..4 {
                let (wg, written) = (wg.clone(), written.clone());
                thread::spawn(move || {
                    written.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                });
            }
            for w in waiters {
                assert_eq!(futures::executor::block_on(w), 4);
            }
        }
    }

    /// One group, waited on by parked threads, tokio tasks and a `block_on` task at the same
    /// time: all are queued together and released together by the last done.
    #[test]
    fn threads_and_tasks_wait_on_one_group() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let wg = WaitGroup::new();
        let released = Arc::new(AtomicUsize::new(0));
        wg.add(2);
        let mut threads = Vec::new();
        for _ in 0..2 {
            let (wg, released) = (wg.clone(), released.clone());
            threads.push(thread::spawn(move || {
                wg.wait();
                released.fetch_add(1, Ordering::SeqCst);
            }));
        }
        {
            let (wg, released) = (wg.clone(), released.clone());
            threads.push(thread::spawn(move || {
                futures::executor::block_on(wg.wait_async());
                released.fetch_add(1, Ordering::SeqCst);
            }));
        }
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (wg, released) = (wg.clone(), released.clone());
                rt.spawn(async move {
                    wg.wait_async().await;
                    released.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        wait_until("six waiters are queued", || wg.waiters() == 6);
        let kinds = wg.waiting();
        assert_eq!(kinds.iter().filter(|r| r.is_async).count(), 4);
        assert!(kinds.iter().all(|r| r.kind == gosync::WaitKind::WaitGroup));
        wg.done();
        assert_eq!(released.load(Ordering::SeqCst), 0);
        wg.done();
        for t in threads {
            t.join().unwrap();
        }
        for t in tasks {
            rt.block_on(t).unwrap();
        }
        assert_eq!(released.load(Ordering::SeqCst), 6);
    }

    /// A dropped waiting future leaves the queue and takes back its registration; the others are
    /// still released, and the group is reusable with no false misuse panic.
    #[test]
    fn dropped_wait_future_deregisters() {
        let wg = WaitGroup::new();
        wg.add(1);
        let mut a = Box::pin(wg.wait_async());
        let mut b = Box::pin(wg.wait_async());
        let mut c = Box::pin(wg.wait_async());
        for f in [&mut a, &mut b, &mut c] {
            assert_eq!(poll_once(f.as_mut()), Poll::Pending);
        }
        let t = {
            let wg = wg.clone();
            thread::spawn(move || wg.wait())
        };
        wait_until("four waiters are queued", || wg.waiters() == 4);
        drop(a);
        assert_eq!(wg.waiters(), 3);
        assert!(format!("{wg:?}").contains("waiters: 3"), "{wg:?}");
        drop(c);
        assert_eq!(wg.waiters(), 2);
        assert!(format!("{wg:?}").contains("waiters: 2"), "{wg:?}");

        wg.done();
        t.join().unwrap();
        assert_eq!(poll_once(b.as_mut()), Poll::Ready(()));
        drop(b);
        assert!(format!("{wg:?}").contains("waiters: 0"), "{wg:?}");

        // Reuse: a round with only cancelled waiters, then an ordinary round.
        wg.add(1);
        let mut d = Box::pin(wg.wait_async());
        assert_eq!(poll_once(d.as_mut()), Poll::Pending);
        drop(d);
        assert!(format!("{wg:?}").contains("waiters: 0"), "{wg:?}");
        wg.done();
        wg.add(2); // no waiter is left counted, so this starts a round cleanly
        let t = {
            let wg = wg.clone();
            thread::spawn(move || wg.wait())
        };
        wg.done();
        wg.done();
        t.join().unwrap();
    }

    /// A future dropped after its release (released but never polled again) passes nothing on and
    /// leaves the group clean.
    #[test]
    fn dropped_after_release_is_harmless() {
        let wg = WaitGroup::new();
        wg.add(1);
        let mut a = Box::pin(wg.wait_async());
        assert_eq!(poll_once(a.as_mut()), Poll::Pending);
        wg.done();
        drop(a);
        assert_eq!(wg.waiters(), 0);
        wg.add(1);
        wg.done();
        wg.wait();
    }

    /// Cancelling through a timeout on tokio: the timed-out waiter is gone, a later one is
    /// released.
    #[test]
    fn timed_out_wait_async_on_tokio() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let wg = WaitGroup::new();
            wg.add(1);
            let r = tokio::time::timeout(Duration::from_millis(5), wg.wait_async()).await;
            assert!(r.is_err());
            assert_eq!(wg.waiters(), 0);
            let w = {
                let wg = wg.clone();
                tokio::spawn(async move { wg.wait_async().await })
            };
            while wg.waiters() == 0 {
                tokio::task::yield_now().await;
            }
            wg.done();
            w.await.unwrap();
        });
    }

    /// The futures are `Send`, so they can be spawned; the group is `Send + Sync + Clone`.
    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync + Clone>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<WaitGroup>();
        let wg = WaitGroup::new();
        send(&wg.wait_async());
    }
}

/// Loom models of the release protocol: run with
/// `RUSTFLAGS="--cfg loom" cargo test -p gosync --release --test waitgroup`.
#[cfg(loom)]
mod loom_models {
    use std::future::Future;
    use std::task::Context;

    use futures::task::noop_waker_ref;
    use gosync::sync::WaitGroup;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;

    /// Two dones race a parked waiter: it is never left asleep, and both jobs' relaxed writes
    /// are visible when it returns (done synchronizes before wait returns).
    #[test]
    fn dones_release_a_thread_waiter() {
        loom::model(|| {
            let wg = WaitGroup::new();
            let data = Arc::new(AtomicUsize::new(0));
            wg.add(2);
            let jobs: Vec<_> = (0..2)
                .map(|_| {
                    let (wg, data) = (wg.clone(), data.clone());
                    loom::thread::spawn(move || {
                        data.fetch_add(1, Ordering::Relaxed);
                        wg.done();
                    })
                })
                .collect();
            wg.wait();
            assert_eq!(data.load(Ordering::Relaxed), 2);
            for j in jobs {
                j.join().unwrap();
            }
        });
    }

    /// A task waiter is dropped while the last done runs and a thread waits: the thread is
    /// released, nothing stays counted, and the group starts a new round without a false
    /// misuse panic.
    #[test]
    fn cancelled_waiter_races_the_release() {
        loom::model(|| {
            let wg = WaitGroup::new();
            wg.add(1);
            let waiter = {
                let wg = wg.clone();
                loom::thread::spawn(move || wg.wait())
            };
            let mut fut = Box::pin(wg.wait_async());
            let first = fut
                .as_mut()
                .poll(&mut Context::from_waker(noop_waker_ref()));
            let job = {
                let wg = wg.clone();
                loom::thread::spawn(move || wg.done())
            };
            drop(fut);
            job.join().unwrap();
            waiter.join().unwrap();
            let _ = first;
            assert_eq!(wg.waiters(), 0);
            assert!(format!("{wg:?}").contains("waiters: 0"), "{wg:?}");
            wg.add(1);
            wg.done();
        });
    }
}
