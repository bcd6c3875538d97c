//! errgroup tests, written afresh after the semantics of Go's
//! `golang.org/x/sync/errgroup/errgroup_test.go`: `TestZeroGroup`, `TestWithContext`,
//! `TestTryGo`, `TestGoLimit`, `TestCancelCause` — each for the thread flavour (`Group`) and the
//! task flavour (`TaskGroup`). Additions: panics re-raised by `wait` after the others finish,
//! Go's `SetLimit` misuse panic, a `go` that drives the group while it waits for a slot,
//! cancel safety of every future, several drivers at once, futures that borrow, tasks on two
//! executors, diagnostics, and the thread pool behind `Group::go` (reuse, panics, growth,
//! keep-alive — the tests that count threads run in a process of their own).

#[cfg(not(loom))]
mod support;

#[cfg(not(loom))]
mod std_tests {
    use super::support::payload_message as message;
    use std::future::Future;
    use std::panic::{self, AssertUnwindSafe};
    use std::pin::pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context as TaskContext, Poll};
    use std::thread;
    use std::time::Duration;

    use gosync::chan::Chan;
    use gosync::context::{self, ContextError};
    use gosync::errgroup::{self, Group, PanicError, TaskGroup};

    use super::support::{self, eventually, poll_noop, within, LIVENESS};

    type Err = &'static str;

    const ERR1: Err = "errgroup_test: 1";
    const ERR2: Err = "errgroup_test: 2";
    const DOOM: Err = "group_test: doomed";

    fn limit_msg(n: usize) -> String {
        format!("errgroup: modify limit while {n} goroutines in the group are still active")
    }

    /// Keeps the panics these tests provoke off stderr; any other panic still prints.
    fn quiet_expected_panics() {
        support::quiet_panics(|msg| {
            msg.contains("boom") || msg.starts_with("errgroup: modify limit")
        });
    }

    /// Runs `f`, expecting a panic; returns its message.
    fn panic_message<R>(f: impl FnOnce() -> R) -> String {
        quiet_expected_panics();
        support::expect_panic(f)
    }

    fn tokio_rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Runs `fut` on tokio, then on `futures::executor` (a fresh future from `make` each time).
    fn on_both<F: Future<Output = ()> + Send + 'static>(make: impl Fn() -> F) {
        tokio_rt().block_on(make());
        futures::executor::block_on(make());
    }

    /// A future that is pending once, waking itself: a yield point.
    fn yield_now() -> impl Future<Output = ()> {
        let mut yielded = false;
        std::future::poll_fn(move |cx: &mut TaskContext<'_>| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
    }

    fn zero_group_cases() -> Vec<Vec<Option<Err>>> {
        vec![
            vec![],
            vec![None],
            vec![Some(ERR1)],
            vec![Some(ERR1), None],
            vec![Some(ERR1), None, Some(ERR2)],
        ]
    }

    fn as_result(e: Option<Err>) -> Result<(), Err> {
        e.map_or(Ok(()), Err)
    }

    /// Go's TestZeroGroup: after each `go`, `wait` returns the first error so far (and keeps
    /// returning it).
    #[test]
    fn zero_group() {
        for errs in zero_group_cases() {
            let g = Group::<Err>::new();
            let mut first = None;
            for e in errs.iter().copied() {
                g.go(move || as_result(e));
                first = first.or(e);
                assert_eq!(g.wait(), as_result(first), "after {errs:?}");
            }
        }
    }

    #[test]
    fn zero_task_group() {
        on_both(|| async {
            for errs in zero_group_cases() {
                let g = TaskGroup::<Err>::new();
                let mut first = None;
                for e in errs.iter().copied() {
                    g.go(async move { as_result(e) }).await;
                    first = first.or(e);
                    assert_eq!(g.wait_async().await, as_result(first), "after {errs:?}");
                }
            }
        });
    }

    fn context_cases() -> Vec<(Vec<Option<Err>>, Option<Err>)> {
        vec![
            (vec![], None),
            (vec![None], None),
            (vec![Some(DOOM)], Some(DOOM)),
            (vec![Some(DOOM), None], Some(DOOM)),
        ]
    }

    /// Go's TestWithContext: `wait` returns the first error, and the context is done after
    /// `wait` whatever happened.
    #[test]
    fn with_context() {
        for (errs, want) in context_cases() {
            let (g, ctx) = Group::<Err>::with_context(&context::background());
            for e in errs.iter().copied() {
                g.go(move || as_result(e));
            }
            assert_eq!(g.wait(), as_result(want), "{errs:?}");
            assert_eq!(
                ctx.err(),
                Some(ContextError::Canceled),
                "{errs:?}: ctx not done"
            );
        }
    }

    #[test]
    fn task_with_context() {
        on_both(|| async {
            for (errs, want) in context_cases() {
                let (g, ctx) = TaskGroup::<Err>::with_context(&context::background());
                for e in errs.iter().copied() {
                    g.go(async move { as_result(e) }).await;
                }
                assert_eq!(g.wait_async().await, as_result(want), "{errs:?}");
                assert_eq!(
                    ctx.err(),
                    Some(ContextError::Canceled),
                    "{errs:?}: ctx not done"
                );
            }
        });
    }

    /// Go's TestCancelCause (with `try_go`): the cause is the first error, or `Canceled`.
    #[test]
    fn cancel_cause() {
        for (errs, want) in context_cases() {
            let (g, ctx) = Group::<Err>::with_context(&context::background());
            for e in errs.iter().copied() {
                assert!(g.try_go(move || as_result(e)));
            }
            assert_eq!(g.wait(), as_result(want));
            check_cause(&ctx, want);
        }
        for (errs, want) in context_cases() {
            let (g, ctx) = TaskGroup::<Err>::with_context(&context::background());
            for e in errs.iter().copied() {
                assert!(g.try_go(async move { as_result(e) }));
            }
            assert_eq!(g.wait(), as_result(want));
            check_cause(&ctx, want);
        }
    }

    fn check_cause(ctx: &context::Context, want: Option<Err>) {
        let cause = ctx.cause().expect("cancelled");
        match want {
            Some(e) => assert_eq!(cause.to_string(), e),
            None => assert_eq!(
                cause.downcast_ref::<ContextError>(),
                Some(&ContextError::Canceled)
            ),
        }
    }

    /// The cause is the error itself, typed: it downcasts to the group's error type, and it is
    /// set the moment the first function fails, before `wait`.
    #[test]
    fn cause_is_the_error_at_once() {
        #[derive(Clone, Debug, PartialEq)]
        struct Doom(u32);
        impl std::fmt::Display for Doom {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "doom {}", self.0)
            }
        }
        impl std::error::Error for Doom {}

        let (g, ctx) = Group::<Doom>::with_context(&context::background());
        let seen = Arc::new(AtomicBool::new(false));
        {
            let (ctx, seen) = (ctx.clone(), seen.clone());
            g.go(move || {
                ctx.wait(); // cancelled by the sibling's error, not by `wait`
                seen.store(true, Ordering::SeqCst);
                Ok(())
            });
        }
        g.go(|| Err(Doom(7)));
        assert_eq!(ctx.wait(), ContextError::Canceled);
        assert_eq!(ctx.cause().unwrap().downcast_ref::<Doom>(), Some(&Doom(7)));
        assert_eq!(g.wait(), Err(Doom(7)));
        assert!(seen.load(Ordering::SeqCst));

        let (tg, ctx) = TaskGroup::<Doom>::with_context(&context::background());
        let c2 = ctx.clone();
        assert!(tg.try_go(async move {
            c2.done().await;
            Ok(())
        }));
        assert!(tg.try_go(async { Err(Doom(8)) }));
        assert_eq!(tg.wait(), Err(Doom(8)));
        assert_eq!(ctx.cause().unwrap().downcast_ref::<Doom>(), Some(&Doom(8)));
    }

    /// Go's TestTryGo, thread flavour.
    #[test]
    fn try_go() {
        let g = Group::<Err>::new();
        const N: usize = 42;
        g.set_limit(Some(N));
        let ch: Chan<()> = Chan::new(0);
        let f = {
            let ch = ch.clone();
            move || {
                let ch = ch.clone();
                move || {
                    ch.send(()).unwrap();
                    Ok(())
                }
            }
        };
        for i in 0..N {
            assert!(g.try_go(f()), "TryGo should succeed, failed at {i}");
        }
        assert!(!g.try_go(f()), "TryGo should fail at the limit");
        let drain = |n: usize| {
            let ch = ch.clone();
            thread::spawn(move || {
                for _ in 0..n {
                    ch.recv();
                }
            })
        };
        let d = drain(N);
        g.wait().unwrap();
        d.join().unwrap();

        assert!(g.try_go(f()), "TryGo should succeed after all finished");
        let d = drain(1);
        g.wait().unwrap();
        d.join().unwrap();

        g.set_limit(Some(1));
        assert!(g.try_go(f()));
        assert!(!g.try_go(f()));
        let d = drain(1);
        g.wait().unwrap();
        d.join().unwrap();

        g.set_limit(Some(0));
        for _ in 0..1 << 10 {
            assert!(!g.try_go(f()), "TryGo should fail with limit 0");
        }
        g.wait().unwrap();
    }

    /// Go's TestTryGo, task flavour: the futures are driven by a thread's `wait` while
    /// another thread drains the channel.
    #[test]
    fn task_try_go() {
        let g = TaskGroup::<Err>::new();
        const N: usize = 42;
        g.set_limit(Some(N));
        let ch: Chan<()> = Chan::new(0);
        let f = || {
            let ch = ch.clone();
            async move {
                ch.send_async(()).await.unwrap();
                Ok(())
            }
        };
        for i in 0..N {
            assert!(g.try_go(f()), "TryGo should succeed, failed at {i}");
        }
        assert!(!g.try_go(f()), "TryGo should fail at the limit");
        let drain = |n: usize| {
            let ch = ch.clone();
            thread::spawn(move || {
                for _ in 0..n {
                    ch.recv();
                }
            })
        };
        let d = drain(N);
        g.wait().unwrap();
        d.join().unwrap();

        assert!(g.try_go(f()));
        let d = drain(1);
        g.wait().unwrap();
        d.join().unwrap();

        g.set_limit(Some(1));
        assert!(g.try_go(f()));
        assert!(!g.try_go(f()));
        let d = drain(1);
        g.wait().unwrap();
        d.join().unwrap();

        g.set_limit(Some(0));
        for _ in 0..1 << 10 {
            assert!(!g.try_go(f()));
        }
        g.wait().unwrap();
    }

    /// Go's TestGoLimit: with a limit of 10, never more than 10 functions run at once.
    #[test]
    fn go_limit() {
        const LIMIT: usize = 10;
        let g = Group::<String>::new();
        g.set_limit(Some(LIMIT));
        let active = Arc::new(AtomicUsize::new(0));
        for _ in 0..=1 << 10 {
            let active = active.clone();
            g.go(move || {
                let n = active.fetch_add(1, Ordering::SeqCst) + 1;
                if n > LIMIT {
                    return Err(format!("saw {n} active goroutines; want ≤ {LIMIT}"));
                }
                thread::sleep(Duration::from_micros(1));
                active.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            });
        }
        assert_eq!(g.wait(), Ok(()));
    }

    #[test]
    fn task_go_limit() {
        const LIMIT: usize = 10;
        on_both(|| async {
            let g = TaskGroup::<String>::new();
            g.set_limit(Some(LIMIT));
            let active = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            for _ in 0..=1 << 10 {
                let (active, peak) = (active.clone(), peak.clone());
                g.go(async move {
                    let n = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    if n > LIMIT {
                        return Err(format!("saw {n} active tasks; want ≤ {LIMIT}"));
                    }
                    yield_now().await; // let the others in
                    active.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await;
            }
            assert_eq!(g.wait_async().await, Ok(()));
            assert_eq!(
                peak.load(Ordering::SeqCst),
                LIMIT,
                "the limit is used in full"
            );
        });
    }

    /// `go` blocks while the limit is reached, and goes on as soon as a slot frees.
    #[test]
    fn go_blocks_at_the_limit() {
        let g = Group::<Err>::new();
        g.set_limit(Some(1));
        let gate: Chan<()> = Chan::new(0);
        let gate2 = gate.clone();
        g.go(move || {
            gate2.recv();
            Ok(())
        });
        let second_started = Arc::new(AtomicBool::new(false));
        let starter = {
            let (g, s) = (g.clone(), second_started.clone());
            thread::spawn(move || {
                g.go(|| Ok(()));
                s.store(true, Ordering::SeqCst);
            })
        };
        eventually(LIVENESS, "the second go blocks on the limit", || {
            gosync::diag::blocked().iter().any(|b| {
                b.op == gosync::WaitKind::ChanSend
                    && matches!(b.waiter, gosync::diag::Waiter::Thread { id, .. } if id == starter.thread().id())
            })
        });
        assert!(!second_started.load(Ordering::SeqCst));
        gate.close();
        starter.join().unwrap();
        g.wait().unwrap();
    }

    /// Go's SetLimit misuse: changing the limit while functions started under it run panics
    /// with Go's message; removing the limit does not; functions started with no limit do not
    /// count.
    #[test]
    fn set_limit_while_active_panics() {
        let g = Group::<Err>::new();
        g.set_limit(Some(3));
        let gate: Chan<()> = Chan::new(0);
        for _ in 0..2 {
            let gate = gate.clone();
            g.go(move || {
                gate.recv();
                Ok(())
            });
        }
        assert_eq!(panic_message(|| g.set_limit(Some(5))), limit_msg(2));
        g.set_limit(None); // never panics
        g.set_limit(Some(1)); // the running ones were started under another limit
        gate.close();
        g.wait().unwrap();

        let tg = TaskGroup::<Err>::new();
        tg.set_limit(Some(3));
        let gate: Chan<()> = Chan::new(0);
        for _ in 0..3 {
            let gate = gate.clone();
            assert!(tg.try_go(async move {
                gate.recv_async().await;
                Ok(())
            }));
        }
        assert_eq!(panic_message(|| tg.set_limit(Some(1))), limit_msg(3));
        tg.set_limit(None);
        tg.set_limit(Some(0));
        assert!(!tg.try_go(async { Ok(()) }));
        gate.close();
        tg.wait().unwrap();
        tg.set_limit(Some(2)); // nothing runs under the current limit any more
    }

    /// A panic in one function cancels the context, the others run to completion, and then
    /// `wait` re-raises the original payload; a later `wait` reports the error as usual.
    #[test]
    fn panic_is_reraised_after_the_others() {
        quiet_expected_panics();
        let (g, ctx) = Group::<Err>::with_context(&context::background());
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let (ctx, finished) = (ctx.clone(), finished.clone());
            g.go(move || {
                ctx.wait();
                thread::sleep(Duration::from_millis(2));
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        g.go(|| panic!("boom"));
        let payload = panic::catch_unwind(AssertUnwindSafe(|| g.wait())).unwrap_err();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"boom"),
            "the original payload"
        );
        assert_eq!(
            finished.load(Ordering::SeqCst),
            3,
            "re-raised after the others finished"
        );
        let cause = ctx.cause().unwrap();
        assert_eq!(
            cause.downcast_ref::<PanicError>().unwrap().message(),
            "boom"
        );
        assert_eq!(g.wait(), Ok(()), "raised once");
    }

    #[test]
    fn task_panic_is_reraised_after_the_others() {
        quiet_expected_panics();
        for executor in ["tokio", "futures", "thread"] {
            let (g, ctx) = TaskGroup::<Err>::with_context(&context::background());
            let finished = Arc::new(AtomicUsize::new(0));
            for _ in 0..3 {
                let (ctx, finished) = (ctx.clone(), finished.clone());
                assert!(g.try_go(async move {
                    ctx.done().await;
                    yield_now().await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }));
            }
            assert!(g.try_go(async {
                yield_now().await;
                panic!("boom")
            }));
            assert!(g.try_go(async { Err(DOOM) }));
            let waited = panic::catch_unwind(AssertUnwindSafe(|| match executor {
                "tokio" => tokio_rt().block_on(g.wait_async()),
                "futures" => futures::executor::block_on(g.wait_async()),
                _ => g.wait(),
            }));
            let payload = waited.unwrap_err();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"), "{executor}");
            assert_eq!(finished.load(Ordering::SeqCst), 3, "{executor}");
            assert_eq!(g.active(), 0);
            assert_eq!(g.wait(), Err(DOOM), "{executor}: the error stays");
        }
    }

    /// The async wait of the thread flavour, on both executors; and a function that starts
    /// another in its own group.
    #[test]
    fn wait_async_and_nested_go() {
        on_both(|| async {
            let g = Group::<Err>::new();
            let inner = g.clone();
            let done = Arc::new(AtomicUsize::new(0));
            let d = done.clone();
            g.go(move || {
                let d2 = d.clone();
                inner.go(move || {
                    thread::sleep(Duration::from_millis(2));
                    d2.fetch_add(1, Ordering::SeqCst);
                    Err(ERR2)
                });
                d.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
            assert_eq!(g.wait_async().await, Err(ERR2));
            assert_eq!(done.load(Ordering::SeqCst), 2);
        });
    }

    /// Cancel safety of `Group::wait_async`: dropped mid-way, the group is unchanged.
    #[test]
    fn dropped_group_wait_async() {
        let g = Group::<Err>::new();
        let gate: Chan<()> = Chan::new(0);
        let gate2 = gate.clone();
        g.go(move || {
            gate2.recv();
            Err(ERR1)
        });
        {
            let mut w = pin!(g.wait_async());
            assert!(poll_noop(w.as_mut()).is_pending());
        }
        gate.close();
        assert_eq!(g.wait(), Err(ERR1));
    }

    /// A task may add tasks to its own group, from inside its poll.
    #[test]
    fn task_adds_tasks_to_its_own_group() {
        on_both(|| async {
            let g = TaskGroup::<Err>::new();
            let inner = g.clone();
            let count = Arc::new(AtomicUsize::new(0));
            let c = count.clone();
            g.go(async move {
                for i in 0..5 {
                    let c = c.clone();
                    inner
                        .go(async move {
                            yield_now().await;
                            c.fetch_add(1, Ordering::SeqCst);
                            if i == 3 {
                                Err(ERR1)
                            } else {
                                Ok(())
                            }
                        })
                        .await;
                }
                Ok(())
            })
            .await;
            assert_eq!(g.wait_async().await, Err(ERR1));
            assert_eq!(count.load(Ordering::SeqCst), 5);
        });
    }

    /// With a limit, a `go` awaited before `wait_async` drives the group to free a slot.
    #[test]
    fn waiting_go_drives_the_group() {
        on_both(|| async {
            let g = TaskGroup::<Err>::new();
            g.set_limit(Some(1));
            let ch: Chan<u32> = Chan::new(0);
            let (tx, rx) = (ch.clone(), ch.clone());
            let got = Arc::new(AtomicUsize::new(0));
            let got2 = got.clone();
            // The receiver first: the only slot.
            g.go(async move {
                got2.store(rx.recv_async().await.unwrap() as usize, Ordering::SeqCst);
                Ok(())
            })
            .await;
            // Its go waits for the slot, driving the receiver, which needs this sender, which
            // is only added once the slot frees: so a thread sends.
            let sender = thread::spawn(move || tx.send(11).unwrap());
            g.go(async { Ok(()) }).await;
            assert_eq!(got.load(Ordering::SeqCst), 11);
            assert_eq!(g.wait_async().await, Ok(()));
            sender.join().unwrap();
        });
    }

    /// Cancel safety of `TaskGroup::wait_async`: dropping it mid-way loses no future; a later
    /// wait (on another executor, or a thread) carries on.
    #[test]
    fn dropped_task_wait_loses_nothing() {
        let g = TaskGroup::<Err>::new();
        let gate: Chan<()> = Chan::new(0);
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..4 {
            let (gate, done) = (gate.clone(), done.clone());
            assert!(g.try_go(async move {
                if i % 2 == 0 {
                    gate.recv_async().await;
                }
                done.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }));
        }
        {
            let mut w = pin!(g.wait_async());
            assert!(poll_noop(w.as_mut()).is_pending());
        }
        assert_eq!(done.load(Ordering::SeqCst), 2, "the ready ones ran");
        assert_eq!(g.active(), 2, "the pending ones stay in the group");
        gate.close(); // wakes them while nobody drives
        assert_eq!(futures::executor::block_on(g.wait_async()), Ok(()));
        assert_eq!(done.load(Ordering::SeqCst), 4);
    }

    /// Cancel safety of `TaskGroup::go`: a `go` dropped while it waits for a slot drops its
    /// future unstarted, and the group is unchanged.
    #[test]
    fn dropped_go_drops_its_future_unstarted() {
        let g = TaskGroup::<Err>::new();
        g.set_limit(Some(1));
        let gate: Chan<()> = Chan::new(0);
        let g2 = gate.clone();
        assert!(g.try_go(async move {
            g2.recv_async().await;
            Ok(())
        }));
        let ran = Arc::new(AtomicBool::new(false));
        {
            let ran = ran.clone();
            let mut go = pin!(g.go(async move {
                ran.store(true, Ordering::SeqCst);
                Ok(())
            }));
            assert!(poll_noop(go.as_mut()).is_pending());
            assert_eq!(g.waiting().len(), 1);
        }
        assert!(g.waiting().is_empty());
        assert_eq!(g.active(), 1);
        gate.close();
        assert_eq!(g.wait(), Ok(()));
        assert!(!ran.load(Ordering::SeqCst));
    }

    /// Several drivers at once — tasks on two executors and a thread — on one group: one polls
    /// at a time, all return when the group is idle, and no wake-up is lost when one of them
    /// is dropped.
    #[test]
    fn several_drivers_share_the_work() {
        for _ in 0..20 {
            let g = TaskGroup::<'static, Err>::new();
            let gate: Chan<()> = Chan::new(0);
            let count = Arc::new(AtomicUsize::new(0));
            for _ in 0..16 {
                let (gate, count) = (gate.clone(), count.clone());
                assert!(g.try_go(async move {
                    gate.recv_async().await;
                    for _ in 0..10 {
                        yield_now().await;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }));
            }
            let rt = tokio_rt();
            let t1 = {
                let g = g.clone();
                rt.spawn(async move { g.wait_async().await })
            };
            let t2 = {
                let g = g.clone();
                thread::spawn(move || futures::executor::block_on(g.wait_async()))
            };
            let t3 = {
                let g = g.clone();
                thread::spawn(move || g.wait())
            };
            // One more driver, dropped mid-way.
            {
                let mut w = pin!(g.wait_async());
                let _ = poll_noop(w.as_mut());
            }
            gate.close();
            let r = within(LIVENESS, "every driver returns", move || {
                (
                    t2.join().unwrap(),
                    t3.join().unwrap(),
                    rt.block_on(t1).unwrap(),
                )
            });
            assert_eq!(r, (Ok(()), Ok(()), Ok(())));
            assert_eq!(count.load(Ordering::SeqCst), 16);
        }
    }

    /// The futures of a group may borrow from the caller's stack.
    #[test]
    fn futures_may_borrow() {
        let totals = std::sync::Mutex::new(0u64);
        let numbers: Vec<u64> = (1..=100).collect();
        {
            let g = TaskGroup::<Err>::new();
            for chunk in numbers.chunks(10) {
                let totals = &totals;
                assert!(g.try_go(async move {
                    yield_now().await;
                    *totals.lock().unwrap() += chunk.iter().sum::<u64>();
                    Ok(())
                }));
            }
            assert_eq!(futures::executor::block_on(g.wait_async()), Ok(()));
        }
        assert_eq!(totals.into_inner().unwrap(), 5050);
    }

    /// Futures that wait on other executors' machinery (tokio's timer) and on gosync
    /// primitives fed by threads complete, each polled only when woken.
    #[test]
    fn tasks_wake_from_anywhere() {
        let rt = tokio_rt();
        rt.block_on(async {
            let g = TaskGroup::<Err>::new();
            let polls = Arc::new(AtomicUsize::new(0));
            let wg = gosync::sync::WaitGroup::new();
            wg.add(1);
            {
                let polls = polls.clone();
                let mut slept = Box::pin(tokio::time::sleep(Duration::from_millis(5)));
                g.go(std::future::poll_fn(move |cx| {
                    polls.fetch_add(1, Ordering::SeqCst);
                    slept.as_mut().poll(cx).map(Ok)
                }))
                .await;
            }
            {
                let wg = wg.clone();
                g.go(async move {
                    wg.wait_async().await;
                    Ok(())
                })
                .await;
            }
            let t = thread::spawn(move || {
                thread::sleep(Duration::from_millis(2));
                wg.done();
            });
            assert_eq!(g.wait_async().await, Ok(()));
            t.join().unwrap();
            // Polled when added and when its timer fired, not on the other task's wake.
            assert!(
                polls.load(Ordering::SeqCst) <= 3,
                "polls: {}",
                polls.load(Ordering::SeqCst)
            );
        });
    }

    /// The drivers between rounds are visible to diagnostics (as `WaitGroup` waits).
    #[test]
    fn waiting_drivers_are_visible() {
        let g = TaskGroup::<'static, Err>::new();
        let gate: Chan<()> = Chan::new(0);
        let g2 = gate.clone();
        assert!(g.try_go(async move {
            g2.recv_async().await;
            Ok(())
        }));
        let t = {
            let g = g.clone();
            thread::spawn(move || g.wait())
        };
        eventually(LIVENESS, "the driver waits", || g.waiting().len() == 1);
        let w = g.waiting()[0];
        assert_eq!(w.kind, gosync::WaitKind::ErrGroup);
        assert!(!w.is_async);
        gate.close();
        assert_eq!(t.join().unwrap(), Ok(()));
    }

    /// Writes made by the functions are visible after `wait` (happens-before).
    #[test]
    fn functions_happen_before_wait() {
        for _ in 0..20 {
            let g = Group::<Err>::new();
            let slots: Arc<Vec<AtomicUsize>> =
                Arc::new((0..8).map(|_| AtomicUsize::new(0)).collect());
            for i in 0..8 {
                let slots = slots.clone();
                g.go(move || {
                    slots[i].store(i + 1, Ordering::Relaxed);
                    Ok(())
                });
            }
            g.wait().unwrap();
            for (i, s) in slots.iter().enumerate() {
                assert_eq!(s.load(Ordering::Relaxed), i + 1);
            }
        }
    }

    /// The scoped thread flavour: functions borrow, the first error is returned after every
    /// thread is joined, limits hold, and a function may start more (with a clone of the
    /// scope).
    #[test]
    fn scope_borrows_and_reports_the_first_error() {
        let data: Vec<u32> = (0..64).collect();
        let mut out = vec![0u32; 64];
        let active = AtomicUsize::new(0);
        let r = errgroup::scope(|s| {
            s.set_limit(Some(4));
            for (x, o) in data.iter().zip(out.iter_mut()) {
                let active = &active;
                s.go(move || {
                    let n = active.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(n <= 4, "{n} running under a limit of 4");
                    *o = x * 2;
                    active.fetch_sub(1, Ordering::SeqCst);
                    Ok::<(), Err>(())
                });
            }
            "body"
        });
        assert_eq!(r, Ok("body"));
        assert!(out.iter().enumerate().all(|(i, &v)| v == 2 * i as u32));

        let nested = AtomicUsize::new(0);
        let r = errgroup::scope(|s| {
            let s2 = s.clone();
            let nested = &nested;
            s.go(move || {
                s2.go(move || {
                    nested.fetch_add(1, Ordering::SeqCst);
                    Err(ERR2)
                });
                Ok(())
            });
        });
        assert_eq!(r, Err(ERR2));
        assert_eq!(nested.load(Ordering::SeqCst), 1);

        let r = errgroup::scope(|s| {
            s.set_limit(Some(0));
            assert!(!s.try_go(|| Ok::<(), Err>(())));
            s.set_limit(None);
            assert!(s.try_go(|| Err(ERR1)));
        });
        assert_eq!(r, Err(ERR1));
    }

    /// A scope's panic is re-raised after every thread is joined; its context is cancelled
    /// with the first error as the cause.
    #[test]
    fn scope_panics_and_context() {
        quiet_expected_panics();
        let finished = AtomicUsize::new(0);
        let payload = panic::catch_unwind(AssertUnwindSafe(|| {
            errgroup::scope_with_context(&context::background(), |s, ctx| {
                for _ in 0..3 {
                    let (ctx, finished) = (ctx.clone(), &finished);
                    s.go(move || {
                        ctx.wait();
                        thread::sleep(Duration::from_millis(2));
                        finished.fetch_add(1, Ordering::SeqCst);
                        Ok::<(), Err>(())
                    });
                }
                s.go(|| panic!("boom"));
            })
        }))
        .unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        assert_eq!(finished.load(Ordering::SeqCst), 3);

        let mut seen = None;
        let r = errgroup::scope_with_context(&context::background(), |s, ctx| {
            s.go(|| Err(DOOM));
            let c = ctx.clone();
            s.go(move || {
                c.wait();
                Ok(())
            });
            seen = Some(ctx);
        });
        assert_eq!(r, Err(DOOM));
        assert_eq!(seen.unwrap().cause().unwrap().to_string(), DOOM);

        assert_eq!(
            panic_message(|| errgroup::scope(|s| {
                s.set_limit(Some(2));
                let gate: Chan<()> = Chan::new(0);
                let g2 = gate.clone();
                s.go(move || {
                    g2.recv();
                    Ok::<(), Err>(())
                });
                let misuse = panic::catch_unwind(AssertUnwindSafe(|| s.set_limit(Some(3))));
                gate.close();
                if let Err(p) = misuse {
                    panic::resume_unwind(p);
                }
            })),
            limit_msg(1)
        );
    }

    /// Runs `body` as the test `std_tests::{test}` alone in a child process of this test
    /// binary (which runs `body` when it finds the marker variable): the pool behind
    /// `Group::go` is process-wide, so a test that counts its threads must not share it with
    /// the tests running beside it.
    fn isolated(test: &str, body: impl FnOnce()) {
        const CHILD: &str = "GOSYNC_ERRGROUP_POOL_CHILD";
        if std::env::var_os(CHILD).is_some() {
            return body();
        }
        let name = format!("std_tests::{test}");
        let exe = std::env::current_exe().unwrap();
        let out = within(LIVENESS * 2, "the child test process", move || {
            std::process::Command::new(exe)
                .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
                .env(CHILD, "1")
                .output()
                .expect("runs the test binary")
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{test} in a process of its own:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    thread_local! {
        /// How many jobs this thread has run (set by the pool tests' jobs).
        static JOBS_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Many rounds of `go` run on a few reused pool threads, not a new thread each: over 1,000
    /// rounds of 4 `go`s the distinct thread ids stay few (4 expected: a worker is idle again
    /// before `wait` returns), the threads carry the pool's name, and a thread-local set by
    /// one job is seen by the next on the same thread.
    #[test]
    fn pool_reuses_threads() {
        isolated("pool_reuses_threads", || {
            let ids = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
            let most = Arc::new(AtomicUsize::new(0));
            for _ in 0..1000 {
                let g = Group::<Err>::new();
                for _ in 0..4 {
                    let (ids, most) = (ids.clone(), most.clone());
                    g.go(move || {
                        let me = thread::current();
                        assert_eq!(me.name(), Some("gosync-errgroup"));
                        ids.lock().unwrap().insert(me.id());
                        let n = JOBS_HERE.get() + 1;
                        JOBS_HERE.set(n);
                        most.fetch_max(n, Ordering::SeqCst);
                        Ok(())
                    });
                }
                g.wait().unwrap();
            }
            let distinct = ids.lock().unwrap().len();
            assert!(distinct <= 16, "{distinct} threads for 1,000 rounds of 4");
            assert!(
                most.load(Ordering::SeqCst) >= 1000,
                "a thread-local outlives its job: some thread ran ≥ 1,000 of the 4,000 jobs"
            );
        });
    }

    /// A panicking function leaves its thread usable: `wait` re-raises the panic, and the same
    /// thread (the only one in the pool) runs the next functions.
    #[test]
    fn pool_thread_survives_a_panic() {
        isolated("pool_thread_survives_a_panic", || {
            quiet_expected_panics();
            let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
            for round in 0..20 {
                let g = Group::<Err>::new();
                let seen = ids.clone();
                g.go(move || {
                    seen.lock().unwrap().push(thread::current().id());
                    if round % 2 == 0 {
                        panic!("boom {round}");
                    }
                    Err(ERR1)
                });
                let waited = panic::catch_unwind(AssertUnwindSafe(|| g.wait()));
                match waited {
                    Ok(r) => assert_eq!(r, Err(ERR1), "round {round}"),
                    Err(p) => assert_eq!(message(&*p), format!("boom {round}")),
                }
                assert_eq!(ids.lock().unwrap().len(), round + 1, "round {round} ran");
            }
            let ids = ids.lock().unwrap();
            assert!(
                ids.iter().all(|id| *id == ids[0]),
                "one thread ran all: {ids:?}"
            );
        });
    }

    /// Functions that block do not hold up the others: the pool grows. Eight functions that
    /// can only return together (a barrier) each need a thread at once, while a ninth, started
    /// after them, finishes while they wait.
    #[test]
    fn pool_grows_past_blocked_functions() {
        let g = Group::<Err>::new();
        let gate: Chan<()> = Chan::new(0);
        let barrier = Arc::new(std::sync::Barrier::new(8));
        for _ in 0..8 {
            let (gate, barrier) = (gate.clone(), barrier.clone());
            g.go(move || {
                gate.recv(); // blocks until the gate closes
                barrier.wait(); // all eight at once
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        g.go(move || {
            tx.send(thread::current().id()).unwrap();
            Ok(())
        });
        rx.recv_timeout(LIVENESS)
            .expect("a function started after blocked ones runs");
        // The ninth has returned (its send came just before), the eight cannot have.
        eventually(LIVENESS, "the ninth finishes", || g.active() == 8);
        gate.close();
        let g2 = g.clone();
        assert_eq!(
            within(LIVENESS, "all eight meet", move || g2.wait()),
            Ok(())
        );
    }

    thread_local! {
        /// Set by a job; its destructor counts the thread's exit.
        static EXIT_MARK: std::cell::RefCell<Option<ExitMark>> =
            const { std::cell::RefCell::new(None) };
    }

    static EXITED: AtomicUsize = AtomicUsize::new(0);

    struct ExitMark;

    impl Drop for ExitMark {
        fn drop(&mut self) {
            EXITED.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Idle pool threads exit after the keep-alive (set short here through the hidden
    /// test hook): the thread-locals of four threads that met at a barrier are destroyed,
    /// which happens as a thread exits; a later `go` then runs on a fresh thread.
    #[test]
    fn pool_idle_threads_exit() {
        isolated("pool_idle_threads_exit", || {
            let old = errgroup::__set_pool_keep_alive(Duration::from_millis(20));
            assert_eq!(old, Duration::from_secs(10), "the default keep-alive");
            let g = Group::<Err>::new();
            let barrier = Arc::new(std::sync::Barrier::new(4));
            for _ in 0..4 {
                let barrier = barrier.clone();
                g.go(move || {
                    barrier.wait(); // four threads at once
                    EXIT_MARK.with(|m| *m.borrow_mut() = Some(ExitMark));
                    Ok(())
                });
            }
            g.wait().unwrap();
            eventually(LIVENESS, "the four idle threads exit", || {
                EXITED.load(Ordering::SeqCst) == 4
            });
            let (tx, rx) = std::sync::mpsc::channel();
            g.go(move || {
                tx.send(EXIT_MARK.with(|m| m.borrow().is_none())).unwrap();
                Ok(())
            });
            g.wait().unwrap();
            assert!(
                rx.recv().unwrap(),
                "a fresh thread, without the old thread-local"
            );
            errgroup::__set_pool_keep_alive(old);
        });
    }

    /// Handles and futures are `Send + Sync` / `Send`, so they go into `tokio::spawn`.
    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<Group<String>>();
        send_sync::<TaskGroup<'static, String>>();
        let g = Group::<String>::new();
        send(&g.wait_async());
        let tg = TaskGroup::<String>::new();
        send(&tg.wait_async());
        let go = tg.go(async { Ok(()) });
        send(&go);
        drop(go);
        assert_eq!(tg.active(), 0);
    }
}
