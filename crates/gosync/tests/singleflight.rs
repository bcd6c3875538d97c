//! singleflight tests, written afresh after the semantics of Go's
//! `golang.org/x/sync/singleflight/singleflight_test.go`: `TestDo`, `TestDoErr`,
//! `TestDoDupSuppress`, `TestForget`, `TestDoChan`, `TestPanicDo`, and the `ExampleGroup`
//! (shared results of `DoChan`). Go's dup-suppression test counts on sleeps to let callers
//! join; here the function waits until the group reports every caller joined, so the test can
//! assert that it ran exactly once. Additions: 1,000 callers of one key, threads and tasks
//! (on two executors) sharing one call, async calls driven by whoever waits, cancel safety of
//! `call_async`, abandonment, panics of async calls, `call_chan` panics, diagnostics.

#[cfg(not(loom))]
mod support;

#[cfg(not(loom))]
mod std_tests {
    use super::support::payload_message as message;
    use std::future::Future;
    use std::panic::{self, AssertUnwindSafe};
    use std::pin::{pin, Pin};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::thread;
    use std::time::Duration;

    use gosync::chan::Chan;
    use gosync::singleflight::Group;
    use gosync::sync::WaitGroup;

    use super::support::{self, eventually, poll_noop, within, LIVENESS};

    const NIL_DEREF: &str = "invalid memory address or nil pointer dereference";
    const SHARED_PANIC: &str = "singleflight: the shared call panicked: ";

    /// Keeps the panics these tests provoke off stderr; any other panic still prints.
    fn quiet_expected_panics() {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let default = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                let msg = message(info.payload());
                let expected = [NIL_DEREF, SHARED_PANIC, "async boom", "chan boom"];
                if !expected.iter().any(|e| msg.contains(e)) {
                    default(info);
                }
            }));
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

    /// A future that is pending once, waking itself: a yield point.
    fn yield_now() -> impl Future<Output = ()> {
        let mut yielded = false;
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
    }

    /// Sets its flag when dropped (to see a future dropped).
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Go's TestDo: one call, its value, not shared.
    #[test]
    fn do_returns_the_value() {
        let g = Group::new();
        let (v, shared) = g.call("key", || "bar".to_string());
        assert_eq!(v, "bar");
        assert!(!shared);
        assert_eq!(g.callers("key"), 0, "the key is free after the call");
    }

    /// Go's TestDoErr: `V = Result<_, _>` carries the error.
    #[test]
    fn do_returns_the_error() {
        let g: Group<&str, Result<String, String>> = Group::new();
        let (v, shared) = g.call("key", || Err("Some error".to_string()));
        assert_eq!(v, Err("Some error".to_string()));
        assert!(!shared);
    }

    /// Go's TestDoDupSuppress, made deterministic: `f` holds the call open until every
    /// caller has joined it, so it runs exactly once and every caller shares its value.
    #[test]
    fn duplicate_calls_are_suppressed() {
        const N: usize = 10;
        let g: Group<String, String> = Group::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..N)
            .map(|_| {
                let (g, calls) = (g.clone(), calls.clone());
                thread::spawn(move || {
                    let g2 = g.clone();
                    g.call("key".to_string(), move || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        eventually(LIVENESS, "every caller joins", || g2.callers("key") == N);
                        "bar".to_string()
                    })
                })
            })
            .collect();
        for t in threads {
            let (v, shared) = t.join().unwrap();
            assert_eq!(v, "bar");
            assert!(shared, "every caller got a shared value");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// Go's TestDoDupSuppress as Go writes it: callers arrive while `f` is in flight (it
    /// waits for a value that comes once they are all about to call); some share it. Checks
    /// Go's bounds: `f` ran at least once and fewer times than there were callers.
    #[test]
    fn duplicate_calls_are_suppressed_go_style() {
        const N: usize = 10;
        let g: Group<&'static str, String> = Group::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c: Chan<String> = Chan::new(1);
        let (started, ready) = (WaitGroup::new(), WaitGroup::new());
        started.add(1);
        let threads: Vec<_> = (0..N)
            .map(|_| {
                ready.add(1);
                let (g, calls, c, started, ready) = (
                    g.clone(),
                    calls.clone(),
                    c.clone(),
                    started.clone(),
                    ready.clone(),
                );
                thread::spawn(move || {
                    ready.done();
                    g.call("key", || {
                        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                            started.done();
                        }
                        let v = c.recv().unwrap();
                        c.send(v.clone()).unwrap(); // pump for any later call
                                                    // Let the others reach `call` (the dup count below makes the check
                                                    // independent of this).
                        eventually(LIVENESS, "all callers arrive", || {
                            g.callers("key") == N || calls.load(Ordering::SeqCst) > 1
                        });
                        v
                    })
                })
            })
            .collect();
        started.wait();
        ready.wait();
        c.send("bar".to_string()).unwrap();
        for t in threads {
            assert_eq!(t.join().unwrap().0, "bar");
        }
        let n = calls.load(Ordering::SeqCst);
        assert!(
            n > 0 && n < N,
            "number of calls = {n}; want over 0 and less than {N}"
        );
    }

    /// Go's TestForget: after `forget`, a new call runs its own function while the forgotten
    /// one finishes; a call after that joins the new one.
    #[test]
    fn forget_starts_a_new_call() {
        let g: Group<&'static str, i32> = Group::new();
        let first_started: Chan<()> = Chan::new(0);
        let unblock_first: Chan<()> = Chan::new(0);
        let first_finished: Chan<()> = Chan::new(0);
        let first = {
            let (g, s, u, f) = (
                g.clone(),
                first_started.clone(),
                unblock_first.clone(),
                first_finished.clone(),
            );
            thread::spawn(move || {
                g.call("key", || {
                    s.close();
                    u.recv();
                    f.close();
                    1
                })
            })
        };
        first_started.recv();
        g.forget("key");

        let unblock_second: Chan<()> = Chan::new(0);
        let u2 = unblock_second.clone();
        let second = g.call_chan("key", move || {
            u2.recv();
            2
        });
        unblock_first.close();
        first_finished.recv();

        let third = g.call_chan("key", || 3);
        unblock_second.close();
        assert_eq!(second.recv(), Some((2, true)));
        assert_eq!(
            third.recv(),
            Some((2, true)),
            "the third call joins the second"
        );
        assert_eq!(first.join().unwrap(), (1, false));
    }

    /// `forget` during an async call: the next caller starts a new future, the old one
    /// completes for its own callers.
    #[test]
    fn forget_during_an_async_call() {
        futures::executor::block_on(async {
            let g: Group<u8, u32> = Group::new();
            let gate: Chan<u32> = Chan::new(0);
            let rx = gate.clone();
            let mut old = pin!(g.call_async(1, async move { rx.recv_async().await.unwrap() }));
            assert!(poll_noop(old.as_mut()).is_pending());
            g.forget(&1);
            assert_eq!(g.call_async(1, async { 20 }).await, (20, false));
            let (v, ()) = futures::join!(old, async { gate.send_async(10).await.unwrap() });
            assert_eq!(v, (10, false));
        });
    }

    /// Go's TestDoChan.
    #[test]
    fn do_chan_receives_the_value() {
        let g = Group::new();
        let ch = g.call_chan("key", || "bar".to_string());
        assert_eq!(ch.recv(), Some(("bar".to_string(), false)));
    }

    /// Go's ExampleGroup: two `call_chan` for one key share the first one's result.
    #[test]
    fn do_chan_results_are_shared() {
        let g: Group<&'static str, &'static str> = Group::new();
        let block: Chan<()> = Chan::new(0);
        let b1 = block.clone();
        let res1 = g.call_chan("key", move || {
            b1.recv();
            "func 1"
        });
        let b2 = block.clone();
        let res2 = g.call_chan("key", move || {
            b2.recv();
            "func 2"
        });
        block.close();
        let (r1, r2) = (res1.recv().unwrap(), res2.recv().unwrap());
        assert!(r2.1, "shared");
        assert_eq!(r1.0, r2.0);
        assert_eq!(r1.0, "func 1");
    }

    /// Go's TestPanicDo: every caller of a panicking function panics, none hangs, and the key
    /// is free afterwards.
    #[test]
    fn panic_reaches_every_caller() {
        quiet_expected_panics();
        const N: usize = 5;
        let g: Group<&'static str, u32> = Group::new();
        let panics = within(LIVENESS, "Do hangs", {
            let g = g.clone();
            move || {
                let threads: Vec<_> = (0..N)
                    .map(|_| {
                        let g = g.clone();
                        thread::spawn(move || {
                            panic_message(|| g.call("key", || panic!("{NIL_DEREF}")))
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .map(|t| t.join().unwrap())
                    .collect::<Vec<_>>()
            }
        });
        assert_eq!(panics.len(), N);
        for m in &panics {
            assert!(m.contains(NIL_DEREF), "unexpected panic {m:?}");
        }
        assert_eq!(g.call("key", || 7), (7, false), "the key is free again");
    }

    /// The panic of a shared call, deterministically: the caller that ran `f` panics with
    /// the original payload, the others with the shared-call message that carries it.
    #[test]
    fn panic_payload_and_message() {
        quiet_expected_panics();
        const N: usize = 5;
        let g: Group<&'static str, u32> = Group::new();
        let threads: Vec<_> = (0..N)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || {
                    let g2 = g.clone();
                    panic_message(|| {
                        g.call("key", || {
                            eventually(LIVENESS, "every caller joins", || g2.callers("key") == N);
                            panic!("{NIL_DEREF}")
                        })
                    })
                })
            })
            .collect();
        let mut msgs: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        msgs.sort();
        assert_eq!(msgs[0], NIL_DEREF, "the runner re-panics with the payload");
        for m in &msgs[1..] {
            assert_eq!(*m, format!("{SHARED_PANIC}{NIL_DEREF}"));
        }
        assert_eq!(g.callers("key"), 0);
        assert_eq!(g.call("key", || 1), (1, false));
    }

    /// An async call whose future panics: the poller panics with the payload, a waiting
    /// thread and a waiting task with the shared message; the key is free again.
    #[test]
    fn async_panic_reaches_threads_and_tasks() {
        quiet_expected_panics();
        let g: Group<u8, u32> = Group::new();
        let gate: Chan<()> = Chan::new(0);
        let rx = gate.clone();
        let mut leader = Box::pin(g.call_async(1, async move {
            rx.recv_async().await;
            panic!("async boom")
        }));
        assert!(poll_noop(leader.as_mut()).is_pending());
        let thread_waiter = {
            let g = g.clone();
            thread::spawn(move || panic_message(|| g.call(1, || 0)))
        };
        let mut task_waiter = Box::pin(g.call_async(1, async { 0 }));
        assert!(poll_noop(task_waiter.as_mut()).is_pending());
        eventually(LIVENESS, "both join", || g.callers(&1) == 3);
        gate.close();
        // The thread may drive the future and so be the one that panics with the payload.
        let by_leader = panic::catch_unwind(AssertUnwindSafe(|| {
            futures::executor::block_on(leader.as_mut())
        }));
        let by_task = panic::catch_unwind(AssertUnwindSafe(|| {
            futures::executor::block_on(task_waiter.as_mut())
        }));
        let mut msgs = [
            message(&*by_leader.unwrap_err()),
            message(&*by_task.unwrap_err()),
            thread_waiter.join().unwrap(),
        ];
        msgs.sort();
        assert_eq!(msgs[0], "async boom");
        assert_eq!(msgs[1], format!("{SHARED_PANIC}async boom"));
        assert_eq!(msgs[2], format!("{SHARED_PANIC}async boom"));
        assert_eq!(g.callers(&1), 0);
        assert_eq!(g.call(1, || 5), (5, false));
    }

    /// A panicking `call_chan` function closes the waiting channels (Go crashes instead) and
    /// frees the key.
    #[test]
    fn call_chan_panic_closes_the_channels() {
        quiet_expected_panics();
        let g: Group<&'static str, u32> = Group::new();
        let gate: Chan<()> = Chan::new(0);
        let g2 = gate.clone();
        let first = g.call_chan("k", move || {
            g2.recv();
            panic!("chan boom")
        });
        let second = g.call_chan("k", || unreachable!("joins the first"));
        let waiter = {
            let g = g.clone();
            thread::spawn(move || panic_message(|| g.call("k", || 0)))
        };
        eventually(LIVENESS, "all join", || g.callers("k") == 3);
        gate.close();
        assert_eq!(first.recv(), None);
        assert_eq!(second.recv(), None);
        assert_eq!(waiter.join().unwrap(), format!("{SHARED_PANIC}chan boom"));
        eventually(LIVENESS, "the key is freed", || g.callers("k") == 0);
        assert_eq!(g.call_chan("k", || 3).recv(), Some((3, false)));
    }

    /// 1,000 threads call one key: `f` runs once.
    #[test]
    fn thousand_threads_run_f_once() {
        const N: usize = 1000;
        let g: Group<u64, Arc<Vec<u8>>> = Group::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..N)
            .map(|_| {
                let (g, calls) = (g.clone(), calls.clone());
                thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let g2 = g.clone();
                        g.call(42, move || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            eventually(LIVENESS, "every caller joins", || g2.callers(&42) == N);
                            Arc::new(vec![1, 2, 3])
                        })
                    })
                    .unwrap()
            })
            .collect();
        let mut shared = 0;
        for t in threads {
            let (v, s) = t.join().unwrap();
            assert_eq!(*v, [1, 2, 3]);
            shared += usize::from(s);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(shared, N);
    }

    /// 1,000 tasks on tokio call one key with an async future: it runs once, and the task
    /// that started it may be long gone (dropped) by the time it completes.
    #[test]
    fn thousand_tasks_run_the_future_once() {
        const N: usize = 1000;
        let rt = tokio_rt();
        let g: Group<&'static str, u64> = Group::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let starts = Arc::new(AtomicUsize::new(0));
        let gate: Chan<u64> = Chan::new(0);
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let (g, gate, starts) = (g.clone(), gate.clone(), starts.clone());
                let polls = polls.clone();
                rt.spawn(async move {
                    g.call_async("key", async move {
                        starts.fetch_add(1, Ordering::SeqCst);
                        let v = gate.recv_async().await.unwrap();
                        polls.fetch_add(1, Ordering::SeqCst);
                        v
                    })
                    .await
                })
            })
            .collect();
        eventually(LIVENESS, "every task joins", || g.callers("key") == N);
        gate.send(99).unwrap();
        let results = rt.block_on(async {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        assert!(results.iter().all(|&(v, s)| v == 99 && s));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(polls.load(Ordering::SeqCst), 1);
    }

    /// Threads and tasks (on tokio and on a futures thread pool) and `call_chan` receivers
    /// share one call of a thread's `f`: it runs once and everyone gets its value.
    #[test]
    fn threads_and_tasks_share_a_thread_call() {
        const THREADS: usize = 4;
        const TOKIO: usize = 4;
        const POOL: usize = 4;
        const CHANS: usize = 2;
        const N: usize = 1 + THREADS + TOKIO + POOL + CHANS;
        let g: Group<String, String> = Group::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (g, runs) = (g.clone(), runs.clone());
            thread::spawn(move || {
                let g2 = g.clone();
                g.call("k".to_string(), move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    eventually(LIVENESS, "everyone joins", || g2.callers("k") == N);
                    "v".to_string()
                })
            })
        };
        eventually(LIVENESS, "the leader starts", || g.callers("k") == 1);
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || g.call("k".to_string(), || unreachable!()))
            })
            .collect();
        let rt = tokio_rt();
        let tokio_tasks: Vec<_> = (0..TOKIO)
            .map(|_| {
                let g = g.clone();
                rt.spawn(async move {
                    g.call_async("k".to_string(), async { unreachable!() })
                        .await
                })
            })
            .collect();
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let pool_tasks: Vec<_> = (0..POOL)
            .map(|_| {
                let g = g.clone();
                let (tx, rx) = futures::channel::oneshot::channel();
                pool.spawn_ok(async move {
                    let r = g
                        .call_async("k".to_string(), async { unreachable!() })
                        .await;
                    let _ = tx.send(r);
                });
                rx
            })
            .collect();
        let chans: Vec<_> = (0..CHANS)
            .map(|_| g.call_chan("k".to_string(), || unreachable!()))
            .collect();
        assert_eq!(leader.join().unwrap(), ("v".to_string(), true));
        for t in threads {
            assert_eq!(t.join().unwrap(), ("v".to_string(), true));
        }
        rt.block_on(async {
            for t in tokio_tasks {
                assert_eq!(t.await.unwrap(), ("v".to_string(), true));
            }
        });
        for rx in pool_tasks {
            assert_eq!(
                futures::executor::block_on(rx).unwrap(),
                ("v".to_string(), true)
            );
        }
        for rx in chans {
            assert_eq!(rx.recv(), Some(("v".to_string(), true)));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    /// A task's async call, joined by threads (which drive it), a `call_chan` and tasks on
    /// two executors: the future runs once, even when the task that started it is dropped.
    #[test]
    fn threads_and_tasks_share_an_async_call() {
        let g: Group<u32, u32> = Group::new();
        let starts = Arc::new(AtomicUsize::new(0));
        let gate: Chan<u32> = Chan::new(0);
        let (rx, s) = (gate.clone(), starts.clone());
        let mut leader = Box::pin(g.call_async(7, async move {
            s.fetch_add(1, Ordering::SeqCst);
            yield_now().await; // wakes itself: re-polled by whoever drives
            rx.recv_async().await.unwrap()
        }));
        assert!(poll_noop(leader.as_mut()).is_pending());
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || g.call(7, || unreachable!()))
            })
            .collect();
        let chan = g.call_chan(7, || unreachable!());
        let rt = tokio_rt();
        let task = {
            let g = g.clone();
            rt.spawn(async move { g.call_async(7, async { unreachable!() }).await })
        };
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(1)
            .create()
            .unwrap();
        let (tx, pool_rx) = futures::channel::oneshot::channel();
        {
            let g = g.clone();
            pool.spawn_ok(async move {
                let _ = tx.send(g.call_async(7, async { unreachable!() }).await);
            });
        }
        eventually(LIVENESS, "everyone joins", || g.callers(&7) == 7);
        drop(leader); // the others drive on
        gate.send(5).unwrap();
        for t in threads {
            assert_eq!(t.join().unwrap(), (5, true));
        }
        assert_eq!(chan.recv(), Some((5, true)));
        assert_eq!(rt.block_on(task).unwrap(), (5, true));
        assert_eq!(futures::executor::block_on(pool_rx).unwrap(), (5, true));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(g.callers(&7), 0);
    }

    /// The shared future is polled only when woken: callers that join it (tasks and threads)
    /// do not poll it again, and its wake is answered by one poll.
    #[test]
    fn shared_future_is_polled_only_when_woken() {
        let g: Group<u8, u32> = Group::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let gate: Chan<u32> = Chan::new(1);
        let (p, rx) = (polls.clone(), gate.clone());
        let mut recv = Box::pin(async move { rx.recv_async().await.unwrap() });
        let mut leader = Box::pin(g.call_async(
            1,
            std::future::poll_fn(move |cx: &mut Context<'_>| {
                p.fetch_add(1, Ordering::SeqCst);
                recv.as_mut().poll(cx)
            }),
        ));
        assert!(poll_noop(leader.as_mut()).is_pending());
        let mut joiners: Vec<_> = (0..5)
            .map(|_| Box::pin(g.call_async(1, async { unreachable!() })))
            .collect();
        for j in &mut joiners {
            assert!(poll_noop(j.as_mut()).is_pending());
        }
        let thread = {
            let g = g.clone();
            thread::spawn(move || g.call(1, || unreachable!()))
        };
        eventually(LIVENESS, "the thread joins", || g.waiting(&1).len() == 7);
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "joining polled the shared future"
        );
        gate.send(4).unwrap();
        assert_eq!(thread.join().unwrap(), (4, true));
        assert_eq!(polls.load(Ordering::SeqCst), 2, "one poll for the one wake");
        for j in joiners {
            assert_eq!(futures::executor::block_on(j), (4, true));
        }
        assert_eq!(futures::executor::block_on(leader), (4, true));
    }

    /// Cancel safety: a joined task dropped mid-wait leaves the queue; the others are
    /// unaffected.
    #[test]
    fn dropped_joiner_leaves_the_queue() {
        let g: Group<&'static str, u32> = Group::new();
        let gate: Chan<()> = Chan::new(0);
        let leader = {
            let (g, gate) = (g.clone(), gate.clone());
            thread::spawn(move || {
                g.call("k", || {
                    gate.recv();
                    1
                })
            })
        };
        eventually(LIVENESS, "leader runs", || g.callers("k") == 1);
        let mut a = Box::pin(g.call_async("k", async { 0 }));
        let mut b = Box::pin(g.call_async("k", async { 0 }));
        assert!(poll_noop(a.as_mut()).is_pending());
        assert!(poll_noop(b.as_mut()).is_pending());
        assert_eq!(g.waiting("k").len(), 2);
        assert!(g
            .waiting("k")
            .iter()
            .all(|w| w.is_async && w.kind == gosync::WaitKind::Singleflight));
        drop(a);
        assert_eq!(g.waiting("k").len(), 1);
        gate.close();
        assert_eq!(futures::executor::block_on(b), (1, true));
        assert_eq!(leader.join().unwrap(), (1, true));
    }

    /// Cancel safety: the leader of an async call is dropped while a joiner waits; the joiner
    /// drives the same future (not a new one) to completion.
    #[test]
    fn dropped_leader_hands_the_future_on() {
        for rt in ["tokio", "futures"] {
            let g: Group<u8, u32> = Group::new();
            let starts = Arc::new(AtomicUsize::new(0));
            let gate: Chan<u32> = Chan::new(0);
            let (rx, s) = (gate.clone(), starts.clone());
            let mut leader = Box::pin(g.call_async(1, async move {
                s.fetch_add(1, Ordering::SeqCst);
                rx.recv_async().await.unwrap()
            }));
            assert!(poll_noop(leader.as_mut()).is_pending());
            let mut joiner = Box::pin(g.call_async(1, async { unreachable!() }));
            assert!(
                poll_noop(joiner.as_mut()).is_pending(),
                "joins the leader's call"
            );
            let sender = thread::spawn(move || {
                thread::sleep(Duration::from_millis(5));
                gate.send(3).unwrap();
            });
            drop(leader);
            let got = match rt {
                "tokio" => tokio_rt().block_on(joiner),
                _ => futures::executor::block_on(joiner),
            };
            assert_eq!(got, (3, true), "{rt}");
            assert_eq!(starts.load(Ordering::SeqCst), 1, "{rt}");
            sender.join().unwrap();
        }
    }

    /// When every async caller is gone, the call is abandoned: its future is dropped, the key
    /// is free, and the next caller runs its own future.
    #[test]
    fn last_dropped_caller_abandons_the_call() {
        let g: Group<u8, u32> = Group::new();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let mut a = Box::pin(g.call_async(1, async move {
            let _flag = flag;
            std::future::pending::<u32>().await
        }));
        let mut b = Box::pin(g.call_async(1, async { unreachable!() }));
        assert!(poll_noop(a.as_mut()).is_pending());
        assert!(poll_noop(b.as_mut()).is_pending());
        drop(a);
        assert!(
            !dropped.load(Ordering::SeqCst),
            "b still waits for the call"
        );
        assert_eq!(g.callers(&1), 2);
        drop(b);
        assert!(
            dropped.load(Ordering::SeqCst),
            "the abandoned future is dropped"
        );
        assert_eq!(g.callers(&1), 0);
        assert_eq!(
            futures::executor::block_on(g.call_async(1, async { 9 })),
            (9, false)
        );
    }

    /// A future dropped before its first poll has not joined anything.
    #[test]
    fn unpolled_call_future_does_nothing() {
        let g: Group<u8, u32> = Group::new();
        let f = g.call_async(1, async { 1 });
        assert_eq!(g.callers(&1), 0);
        drop(f);
        assert_eq!(g.call(1, || 2), (2, false));
    }

    /// A thread waiting for an async call whose tasks are all dropped does not hang: it
    /// drives the future itself.
    #[test]
    fn thread_drives_an_async_call_whose_tasks_are_gone() {
        let g: Group<u8, u32> = Group::new();
        let gate: Chan<u32> = Chan::new(0);
        let rx = gate.clone();
        let mut leader = Box::pin(g.call_async(1, async move {
            yield_now().await;
            rx.recv_async().await.unwrap()
        }));
        assert!(poll_noop(leader.as_mut()).is_pending());
        let waiter = {
            let g = g.clone();
            thread::spawn(move || g.call(1, || unreachable!()))
        };
        eventually(LIVENESS, "the thread joins", || g.callers(&1) == 2);
        drop(leader);
        let got = within(LIVENESS, "the thread completes the call", move || {
            gate.send(8).unwrap();
            waiter.join().unwrap()
        });
        assert_eq!(got, (8, true));
    }

    /// A future that keeps waking itself, shared by several tasks, completes (every re-poll
    /// owed is made by some caller) on both executors.
    #[test]
    fn self_waking_future_is_driven_to_completion() {
        async fn run(g: Group<u8, u32>) -> Vec<(u32, bool)> {
            let polls = Arc::new(AtomicUsize::new(0));
            let calls = (0..4).map(|_| {
                let polls = polls.clone();
                g.call_async(1, async move {
                    for _ in 0..100 {
                        polls.fetch_add(1, Ordering::SeqCst);
                        yield_now().await;
                    }
                    17
                })
            });
            futures::future::join_all(calls).await
        }
        let g: Group<u8, u32> = Group::new();
        let out = futures::executor::block_on(run(g.clone()));
        assert!(out.iter().all(|&(v, _)| v == 17));
        let out = tokio_rt().block_on(run(g.clone()));
        assert!(out.iter().all(|&(v, _)| v == 17));
        assert_eq!(g.callers(&1), 0);
    }

    /// Cancel safety, the subtle case: a caller that polled the shared future, saw it wake
    /// itself and owes a re-poll, is dropped before it makes it — while the other caller,
    /// turned away while the first polled, sleeps in the queue. The drop must hand the re-poll
    /// on, or nobody would ever poll again.
    #[test]
    fn dropped_self_woken_driver_passes_the_poll_on() {
        type Joiner = Pin<Box<dyn Future<Output = (u32, bool)> + Send>>;
        let g: &'static Group<u8, u32> = Box::leak(Box::new(Group::new()));
        let (b_waker, b_wakes) = support::counting_waker();
        let slot: Arc<std::sync::Mutex<Option<Joiner>>> = Arc::new(std::sync::Mutex::new(None));
        let inner_slot = slot.clone();
        let mut first = true;
        let mut leader = Box::pin(g.call_async(
            1,
            std::future::poll_fn(move |cx: &mut Context<'_>| {
                if !first {
                    return Poll::Ready(5);
                }
                first = false;
                let mut b = inner_slot.lock().unwrap();
                let b = b.as_mut().unwrap();
                let mut bcx = Context::from_waker(&b_waker);
                // B joins, finds the future being polled (by us) and queues.
                assert!(b.as_mut().poll(&mut bcx).is_pending());
                // We wake ourselves: B is notified...
                cx.waker().wake_by_ref();
                // ...and polled again before we return: turned away again, it queues again.
                assert!(b.as_mut().poll(&mut bcx).is_pending());
                Poll::Pending
            }),
        ));
        *slot.lock().unwrap() = Some(Box::pin(g.call_async(1, async { unreachable!() })));
        assert!(poll_noop(leader.as_mut()).is_pending());
        let before = b_wakes.count();
        assert_eq!(g.waiting(&1).len(), 1, "B sleeps in the queue");
        drop(leader); // owed a re-poll
        assert!(b_wakes.count() > before, "the re-poll is handed to B");
        let mut b = slot.lock().unwrap().take().unwrap();
        assert_eq!(poll_noop(b.as_mut()), Poll::Ready((5, true)));
    }

    /// Polls `fut` at most `polls` times, then drops it (`None`): a caller that gives up at
    /// some point of its wait.
    fn give_up_after<F: Future + Unpin>(
        mut fut: F,
        mut polls: usize,
    ) -> impl Future<Output = Option<F::Output>> {
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            if polls == 0 {
                return Poll::Ready(None);
            }
            polls -= 1;
            Pin::new(&mut fut).poll(cx).map(Some)
        })
    }

    /// Stress: callers on several threads share a future that wakes itself many times, while
    /// some of them give up at arbitrary points; the ones that stay always complete, and the
    /// future runs once (or, if everyone gave up first, is abandoned and the key freed).
    #[test]
    fn callers_giving_up_at_random_never_strand_the_others() {
        for round in 0..200usize {
            let g: Group<u8, u32> = Group::new();
            let starts = Arc::new(AtomicUsize::new(0));
            // Each caller's shared future, built on its own thread from its own handle.
            async fn shared(s: Arc<AtomicUsize>) -> u32 {
                s.fetch_add(1, Ordering::SeqCst);
                for _ in 0..20 {
                    yield_now().await;
                }
                3
            }
            let quitters: Vec<_> = (0..2)
                .map(|i| {
                    let (g, s) = (g.clone(), starts.clone());
                    thread::spawn(move || {
                        let fut = Box::pin(g.call_async(1, shared(s)));
                        futures::executor::block_on(give_up_after(fut, 1 + (round + i) % 7))
                    })
                })
                .collect();
            let stayers: Vec<_> = (0..2)
                .map(|_| {
                    let (g, s) = (g.clone(), starts.clone());
                    thread::spawn(move || futures::executor::block_on(g.call_async(1, shared(s))))
                })
                .collect();
            let results = within(LIVENESS, "the staying callers complete", move || {
                let s: Vec<_> = stayers.into_iter().map(|t| t.join().unwrap()).collect();
                let q: Vec<_> = quitters.into_iter().map(|t| t.join().unwrap()).collect();
                (s, q)
            });
            assert!(results.0.iter().all(|&(v, _)| v == 3));
            assert!(results.1.iter().flatten().all(|&(v, _)| v == 3));
            let n = starts.load(Ordering::SeqCst);
            assert!((1..=4).contains(&n), "round {round}: {n} starts");
            assert_eq!(g.callers(&1), 0);
        }
    }

    /// Waits are visible to diagnostics: a thread waiting for another's `f` is listed as a
    /// wait of kind `Once`.
    #[test]
    fn waiting_callers_are_visible() {
        let g: Group<&'static str, u32> = Group::new();
        let gate: Chan<()> = Chan::new(0);
        let leader = {
            let (g, gate) = (g.clone(), gate.clone());
            thread::spawn(move || {
                g.call("k", || {
                    gate.recv();
                    1
                })
            })
        };
        eventually(LIVENESS, "leader runs", || g.callers("k") == 1);
        let waiter = {
            let g = g.clone();
            thread::spawn(move || g.call("k", || 0))
        };
        eventually(LIVENESS, "the waiter queues", || g.waiting("k").len() == 1);
        let w = g.waiting("k")[0];
        assert_eq!(w.kind, gosync::WaitKind::Singleflight);
        assert!(!w.is_async);
        assert!(w.location.file().ends_with("singleflight.rs"));
        let id = waiter.thread().id();
        eventually(LIVENESS, "diag lists the waiter", || {
            gosync::diag::blocked().iter().any(|b| {
                b.op == gosync::WaitKind::Singleflight
                    && matches!(b.waiter, gosync::diag::Waiter::Thread { id: t, .. } if t == id)
            })
        });
        gate.close();
        assert_eq!(waiter.join().unwrap(), (1, true));
        assert_eq!(leader.join().unwrap(), (1, true));
    }

    /// The leader's `f` happens before every caller's return: its plain writes are seen.
    #[test]
    fn f_happens_before_every_return() {
        for _ in 0..20 {
            let g: Group<u8, Arc<std::sync::Mutex<Vec<u32>>>> = Group::new();
            let data = Arc::new(std::sync::Mutex::new(Vec::new()));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (g, data) = (g.clone(), data.clone());
                    thread::spawn(move || {
                        let (v, _) = g.call(0, || {
                            data.lock().unwrap().extend([1, 2, 3]);
                            data.clone()
                        });
                        assert!(v.lock().unwrap().starts_with(&[1, 2, 3]));
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
    }

    /// A group is `Send + Sync` and its futures are `Send` (they can go into `tokio::spawn`).
    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<Group<String, String>>();
        let g: Group<u8, u8> = Group::new();
        let f = g.call_async(1, async { 1 });
        send(&f);
        assert_eq!(futures::executor::block_on(f), (1, false));
    }
}
