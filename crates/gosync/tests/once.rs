//! Once tests, written afresh after the semantics of Go's `sync/once_test.go`
//! (<https://go.dev/src/sync/once_test.go>) and `oncefunc_test.go`: the function runs once,
//! callers wait for it and see its effects, a panicking function counts as done. Additions:
//! recursion detection, the async form on two executors, threads and tasks on one `Once`,
//! cancel safety of the initialiser and of waiters, `OnceValue` and `OnceFunc`.

#[cfg(not(loom))]
mod support;

#[cfg(not(loom))]
mod std_tests {
    use super::support;
    use std::future::Future;
    use std::pin::{pin, Pin};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::task::{Context, Poll};
    use std::thread;
    use std::time::Duration;

    use futures::task::noop_waker_ref;
    use gosync::sync::{Once, OnceFunc, OnceValue};

    const RECURSIVE: &str = "sync: Once.Do called recursively from its own f";
    const BOOM: &str = "boom: initialiser failed";

    /// Keeps the expected panics of these tests off stderr; any other panic still prints.
    fn quiet_expected_panics() {
        support::quiet_panics(|msg| msg.starts_with("sync: ") || msg == BOOM);
    }

    /// Runs `f`, expecting a panic; returns its message.
    fn panic_message<R>(f: impl FnOnce() -> R) -> String {
        quiet_expected_panics();
        support::expect_panic(f)
    }

    /// Spins (sleeping briefly) until `cond` holds; fails the test after a generous bound.
    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..20_000 {
            if cond() {
                return;
            }
            thread::sleep(Duration::from_micros(500));
        }
        panic!("timed out waiting until {what}");
    }

    /// Suspends once, asking to be polled again at once.
    async fn yield_now() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(noop_waker_ref()))
    }

    /// Go's TestOnce: eight threads call `call_once`; the function runs once, and each caller,
    /// when it returns, sees what the function did (it sleeps first, so most callers wait).
    #[test]
    fn runs_once_across_threads() {
        for _ in 0..20 {
            let once = Arc::new(Once::new());
            let runs = Arc::new(AtomicUsize::new(0));
            let effect = Arc::new(AtomicUsize::new(0));
            let start = Arc::new(Barrier::new(8));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (once, runs, effect, start) =
                        (once.clone(), runs.clone(), effect.clone(), start.clone());
                    thread::spawn(move || {
                        start.wait();
                        once.call_once(|| {
                            runs.fetch_add(1, Ordering::Relaxed);
                            thread::sleep(Duration::from_millis(1));
                            effect.store(42, Ordering::Relaxed);
                        });
                        // The function's return synchronizes before this return.
                        assert_eq!(effect.load(Ordering::Relaxed), 42);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(runs.load(Ordering::Relaxed), 1);
            assert!(once.is_done());
            assert_eq!(once.waiters(), 0);
        }
    }

    /// Callers that arrive while the function runs are queued in the waiter core (threads and
    /// tasks alike) and return only after it finished — checked without timing: the function does
    /// not return until it has seen both callers queued.
    #[test]
    fn callers_wait_in_the_queue_until_f_returns() {
        let once = Arc::new(Once::new());
        let finished = Arc::new(AtomicBool::new(false));
        let runner = {
            let (once, finished) = (once.clone(), finished.clone());
            thread::spawn(move || {
                let o = once.clone();
                once.call_once(move || {
                    wait_until("two callers are queued", || o.waiters() == 2);
                    let records = o.waiting();
                    assert!(records.iter().all(|r| r.kind == gosync::WaitKind::Once));
                    assert_eq!(records.iter().filter(|r| r.is_async).count(), 1);
                    finished.store(true, Ordering::Relaxed);
                });
            })
        };
        wait_until("the function runs", || {
            !once.is_done() && runner_started(&once)
        });
        let thread_caller = {
            let (once, finished) = (once.clone(), finished.clone());
            thread::spawn(move || {
                once.call_once(|| panic!("a second function ran"));
                assert!(finished.load(Ordering::Relaxed));
            })
        };
        let task_caller = {
            let (once, finished) = (once.clone(), finished.clone());
            thread::spawn(move || {
                futures::executor::block_on(
                    once.call_once_async(|| async { panic!("a second initialiser ran") }),
                );
                assert!(finished.load(Ordering::Relaxed));
            })
        };
        runner.join().unwrap();
        thread_caller.join().unwrap();
        task_caller.join().unwrap();
        assert!(once.is_done());
    }

    /// Whether someone is running the `Once`'s function (its Debug output says "running").
    fn runner_started(once: &Once) -> bool {
        format!("{once:?}").contains("running")
    }

    /// The Go course's example: a function that panics counts as done; the panic reaches its
    /// caller, and a second call does not run its function.
    #[test]
    fn panicking_f_counts_as_done() {
        let once = Once::new();
        let msg = panic_message(|| once.call_once(|| panic!("{BOOM}")));
        assert_eq!(msg, BOOM);
        assert!(once.is_done());
        let mut ran = false;
        once.call_once(|| ran = true);
        assert!(!ran, "the second function ran");
    }

    /// A function that calls its own `Once` panics with a clear message instead of hanging, and
    /// the `Once` is done afterwards (the panic unwound through the function).
    #[test]
    fn recursive_call_panics() {
        let once = Once::new();
        let msg = panic_message(|| once.call_once(|| once.call_once(|| {})));
        assert_eq!(msg, RECURSIVE);
        assert!(once.is_done());

        // The same from an async initialiser, awaiting its own Once.
        let once = Once::new();
        let msg = panic_message(|| {
            futures::executor::block_on(once.call_once_async(|| async {
                once.call_once_async(|| async {}).await;
            }))
        });
        assert_eq!(msg, RECURSIVE);
        assert!(once.is_done());

        // And a blocking call from an async initialiser.
        let once = Once::new();
        let msg = panic_message(|| {
            futures::executor::block_on(once.call_once_async(|| async { once.call_once(|| {}) }))
        });
        assert_eq!(msg, RECURSIVE);
        assert!(once.is_done());
    }

    /// A different thread calling while the function runs is not recursion: it just waits.
    #[test]
    fn other_thread_during_f_is_not_recursion() {
        let once = Arc::new(Once::new());
        let other = std::sync::Mutex::new(None);
        let returned = Arc::new(AtomicBool::new(false));
        once.call_once(|| {
            let (o, r) = (once.clone(), returned.clone());
            *other.lock().unwrap() = Some(thread::spawn(move || {
                o.call_once(|| panic!("a second function ran"));
                r.store(true, Ordering::Relaxed);
            }));
            wait_until("the other thread waits", || once.waiters() == 1);
            assert!(!returned.load(Ordering::Relaxed));
        });
        other.into_inner().unwrap().unwrap().join().unwrap();
        assert!(returned.load(Ordering::Relaxed));
    }

    /// The async form on tokio's multi-thread runtime: eight tasks, one initialiser (which
    /// suspends), every task sees its effect.
    #[test]
    fn async_once_on_tokio() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..20 {
                let once = Arc::new(Once::new());
                let runs = Arc::new(AtomicUsize::new(0));
                let effect = Arc::new(AtomicUsize::new(0));
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let (once, runs, effect) = (once.clone(), runs.clone(), effect.clone());
                        tokio::spawn(async move {
                            once.call_once_async(|| async {
                                runs.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(1)).await;
                                effect.store(7, Ordering::Relaxed);
                            })
                            .await;
                            assert_eq!(effect.load(Ordering::Relaxed), 7);
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                assert_eq!(runs.load(Ordering::Relaxed), 1);
                assert_eq!(once.waiters(), 0);
            }
        });
    }

    /// The async form on `futures`' thread pool, with threads calling the blocking form on the
    /// same `Once` at the same time.
    #[test]
    fn async_once_on_futures_thread_pool_with_threads() {
        use futures::task::SpawnExt;
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        for _ in 0..20 {
            let once = Arc::new(Once::new());
            let runs = Arc::new(AtomicUsize::new(0));
            let effect = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let (once, runs, effect) = (once.clone(), runs.clone(), effect.clone());
                    pool.spawn_with_handle(async move {
                        once.call_once_async(|| async {
                            runs.fetch_add(1, Ordering::Relaxed);
                            yield_now().await;
                            effect.store(9, Ordering::Relaxed);
                        })
                        .await;
                        effect.load(Ordering::Relaxed)
                    })
                    .unwrap()
                })
                .collect();
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (once, runs, effect) = (once.clone(), runs.clone(), effect.clone());
                    thread::spawn(move || {
                        once.call_once(|| {
                            runs.fetch_add(1, Ordering::Relaxed);
                            effect.store(9, Ordering::Relaxed);
                        });
                        effect.load(Ordering::Relaxed)
                    })
                })
                .collect();
            for t in threads {
                assert_eq!(t.join().unwrap(), 9);
            }
            for t in tasks {
                assert_eq!(futures::executor::block_on(t), 9);
            }
            assert_eq!(runs.load(Ordering::Relaxed), 1);
        }
    }

    /// Dropping the future that runs the initialiser, mid-way, returns the `Once` to "not done":
    /// a waiting task, then a waiting thread, then a new caller get to initialise.
    #[test]
    fn dropped_initialiser_lets_the_next_caller_run() {
        let once = Arc::new(Once::new());
        let which = Arc::new(AtomicUsize::new(0));

        // A starts and suspends forever.
        let mut a = Box::pin(once.call_once_async(|| async {
            std::future::pending::<()>().await;
            unreachable!()
        }));
        assert_eq!(poll_once(a.as_mut()), Poll::Pending);
        assert!(!once.is_done());

        // B (a task) waits behind it.
        let w = which.clone();
        let mut b = Box::pin(once.call_once_async(move || async move {
            w.store(2, Ordering::Relaxed);
        }));
        assert_eq!(poll_once(b.as_mut()), Poll::Pending);
        assert_eq!(once.waiters(), 1);

        // Dropping A lets B run its own initialiser.
        drop(a);
        assert!(!once.is_done());
        assert_eq!(poll_once(b.as_mut()), Poll::Ready(()));
        assert_eq!(which.load(Ordering::Relaxed), 2);
        assert!(once.is_done());

        // The same with a parked thread behind a dropped initialiser.
        let once = Arc::new(Once::new());
        let mut a = Box::pin(once.call_once_async(std::future::pending::<()>));
        assert_eq!(poll_once(a.as_mut()), Poll::Pending);
        let t = {
            let (once, which) = (once.clone(), which.clone());
            thread::spawn(move || once.call_once(|| which.store(3, Ordering::Relaxed)))
        };
        wait_until("the thread waits", || once.waiters() == 1);
        drop(a);
        t.join().unwrap();
        assert_eq!(which.load(Ordering::Relaxed), 3);
        assert!(once.is_done());

        // And with nobody waiting: the next caller initialises.
        let once = Once::new();
        let mut a = Box::pin(once.call_once_async(std::future::pending::<()>));
        assert_eq!(poll_once(a.as_mut()), Poll::Pending);
        drop(a);
        let mut ran = false;
        once.call_once(|| ran = true);
        assert!(ran);
    }

    /// A dropped waiting future leaves the queue; the runner finishes normally and later callers
    /// see it done.
    #[test]
    fn dropped_waiter_deregisters() {
        let once = Once::new();
        let mut a = Box::pin(once.call_once_async(|| async {
            futures::pending!();
        }));
        assert_eq!(poll_once(a.as_mut()), Poll::Pending);
        let mut b = Box::pin(once.call_once_async(|| async { unreachable!() }));
        let mut c = Box::pin(once.call_once_async(|| async { unreachable!() }));
        assert_eq!(poll_once(b.as_mut()), Poll::Pending);
        assert_eq!(poll_once(c.as_mut()), Poll::Pending);
        assert_eq!(once.waiters(), 2);
        drop(b);
        assert_eq!(once.waiters(), 1);
        assert_eq!(poll_once(a.as_mut()), Poll::Ready(()));
        assert!(once.is_done());
        assert_eq!(poll_once(c.as_mut()), Poll::Ready(()));
        let mut later = pin!(once.call_once_async(|| async { unreachable!() }));
        assert_eq!(poll_once(later.as_mut()), Poll::Ready(()));
    }

    /// An async initialiser that panics counts as done, as a blocking one does; waiters are
    /// released.
    #[test]
    fn panicking_async_initialiser_counts_as_done() {
        let once = Arc::new(Once::new());
        let mut a = Box::pin(once.call_once_async(|| async {
            futures::pending!();
            panic!("{BOOM}");
        }));
        assert_eq!(poll_once(a.as_mut()), Poll::Pending);
        let mut b = Box::pin(once.call_once_async(|| async { unreachable!() }));
        assert_eq!(poll_once(b.as_mut()), Poll::Pending);
        assert_eq!(panic_message(|| poll_once(a.as_mut())), BOOM);
        drop(a); // dropping the panicked future does not undo "done"
        assert!(once.is_done());
        assert_eq!(poll_once(b.as_mut()), Poll::Ready(()));

        // A panic in `f` itself, before it returns its future.
        let once = Once::new();
        let msg = panic_message(|| {
            futures::executor::block_on(
                once.call_once_async(|| -> std::future::Ready<()> { panic!("{BOOM}") }),
            )
        });
        assert_eq!(msg, BOOM);
        assert!(once.is_done());
    }

    /// `Once::new` is const: usable in a static.
    #[test]
    fn static_once() {
        static ONCE: Once = Once::new();
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                thread::spawn(|| {
                    ONCE.call_once(|| {
                        RUNS.fetch_add(1, Ordering::Relaxed);
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(RUNS.load(Ordering::Relaxed), 1);
    }

    /// Go's TestOnceValue: computed once, shared by every caller (threads and tasks).
    #[test]
    fn once_value_computes_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let v = Arc::new(OnceValue::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(1));
            String::from("value")
        }));
        assert_eq!(v.try_get(), None);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let v = v.clone();
                thread::spawn(move || v.get().clone())
            })
            .collect();
        let from_task = futures::executor::block_on(v.get_async()).clone();
        for h in handles {
            assert_eq!(h.join().unwrap(), "value");
        }
        assert_eq!(from_task, "value");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(v.try_get().map(String::as_str), Some("value"));
    }

    /// Go's TestOnceValuePanic (adapted): the first caller gets the function's panic, later callers
    /// a fixed message, and the function is not run again.
    #[test]
    fn once_value_panic() {
        let calls = AtomicUsize::new(0);
        let v: OnceValue<u32, _> = OnceValue::new(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            panic!("{BOOM}")
        });
        assert_eq!(panic_message(|| *v.get()), BOOM);
        assert_eq!(
            panic_message(|| *v.get()),
            "sync: OnceValue function panicked"
        );
        assert_eq!(
            panic_message(|| futures::executor::block_on(v.get_async()).to_owned()),
            "sync: OnceValue function panicked"
        );
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    /// Go's TestOnceFunc: runs once; after a panic, later calls panic with a fixed message.
    #[test]
    fn once_func() {
        let calls = AtomicUsize::new(0);
        let f = OnceFunc::new(|| {
            calls.fetch_add(1, Ordering::Relaxed);
        });
        f.call();
        f.call();
        assert!(f.is_done());
        assert_eq!(calls.load(Ordering::Relaxed), 1);

        let f = OnceFunc::new(|| panic!("{BOOM}"));
        assert_eq!(panic_message(|| f.call()), BOOM);
        assert_eq!(
            panic_message(|| f.call()),
            "sync: OnceFunc function panicked"
        );
    }

    /// The futures are `Send` when the initialiser is, so they can be spawned.
    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<Once>();
        send_sync::<OnceValue<String>>();
        let once = Once::new();
        send(&once.call_once_async(|| async {}));
        let v = OnceValue::new(|| 1u8);
        send(&v.get_async());
    }
}

/// Loom models of the hand-over between runner and waiters: run with
/// `RUSTFLAGS="--cfg loom" cargo test -p gosync --release --test once`.
#[cfg(loom)]
mod loom_models {
    use std::future::Future;
    use std::task::{Context, Poll};

    use futures::task::noop_waker_ref;
    use gosync::sync::Once;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;

    /// Two threads race to run the function: it runs once, no caller sleeps forever, and
    /// each caller sees its relaxed write when it returns.
    #[test]
    fn one_runner_and_visible_effect() {
        loom::model(|| {
            let once = Arc::new(Once::new());
            let runs = Arc::new(AtomicUsize::new(0));
            let other = {
                let (once, runs) = (once.clone(), runs.clone());
                loom::thread::spawn(move || {
                    once.call_once(|| {
                        runs.fetch_add(1, Ordering::Relaxed);
                    });
                    assert_eq!(runs.load(Ordering::Relaxed), 1);
                })
            };
            once.call_once(|| {
                runs.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(runs.load(Ordering::Relaxed), 1);
            other.join().unwrap();
        });
    }

    /// The future running the initialiser is dropped while a thread arrives: the thread runs
    /// its own function (it never sleeps forever, and the `Once` ends done).
    #[test]
    fn dropped_initialiser_hands_over() {
        loom::model(|| {
            let once = Arc::new(Once::new());
            let mut fut = Box::pin(once.call_once_async(std::future::pending::<()>));
            let first = fut
                .as_mut()
                .poll(&mut Context::from_waker(noop_waker_ref()));
            assert_eq!(first, Poll::Pending);
            let ran = Arc::new(AtomicUsize::new(0));
            let t = {
                let (once, ran) = (once.clone(), ran.clone());
                loom::thread::spawn(move || {
                    once.call_once(|| {
                        ran.store(1, Ordering::Relaxed);
                    })
                })
            };
            drop(fut);
            t.join().unwrap();
            assert_eq!(ran.load(Ordering::Relaxed), 1);
            assert!(once.is_done());
        });
    }
}
