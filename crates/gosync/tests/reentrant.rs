//! Re-entrant mutex tests.
//!
//! `RawReentrantMutex` / `ReentrantMutex<T>`: hold counting (re-lock depth, release only at the
//! last unlock), `try_lock` and `lock_ctx` re-entry, misuse panics (unlock by a thread that
//! does not own it names both threads; unlock of an unlocked mutex), a mutual-exclusion stress
//! with nested holds and a non-atomic counter, no poisoning, blocked lockers visible to
//! `diag::blocked`, and a thread that ends while owning the mutex leaving it locked (no later
//! thread inherits it).
//!
//! `TokenMutex`: the same for tokens (the wrong token's unlock names both tokens), `lock_async`
//! on tokio and `futures::executor`, a task keeping its ownership while it moves between
//! worker threads, cancel safety (a dropped queued future, and a dropped future that had been
//! woken, pass the lock or the wake-up on), a stress mixing threads and tasks, and flows
//! sharing one token (they share the ownership, and a re-entry racing the end of the
//! ownership never slips into another token's).

#[cfg(not(loom))]
mod support;

#[cfg(not(loom))]
mod std_tests {
    use std::cell::{Cell, RefCell};
    use std::pin::pin;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::task::Poll;
    use std::thread;
    use std::time::Duration;

    use gosync::context::{self, ContextError};
    use gosync::diag;
    use gosync::reentrant::{new_token, RawReentrantMutex, ReentrantMutex, TokenMutex};

    use crate::support::{self, counting_waker, eventually, poll_noop, poll_with, LIVENESS};

    const UNLOCKED: &str = "reentrant: unlock of unlocked mutex";

    /// Runs `f`, expecting a panic; returns its message.
    fn panic_message(f: impl FnOnce()) -> String {
        support::expect_panic(f)
    }

    /// Returns `Pending` once, waking itself: lets the executor run (or move) the task.
    async fn yield_now() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if std::mem::replace(&mut yielded, true) {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    fn try_lock_elsewhere(m: &Arc<RawReentrantMutex>) -> bool {
        let m = m.clone();
        thread::spawn(move || {
            let got = m.try_lock();
            if got {
                m.unlock();
            }
            got
        })
        .join()
        .unwrap()
    }

    // ---------------------------------------------------------------------------------------
    // RawReentrantMutex / ReentrantMutex<T>
    // ---------------------------------------------------------------------------------------

    /// Re-lock depth: every lock adds a hold, every unlock takes one; the mutex stays locked
    /// against other threads until the last.
    #[test]
    fn relock_depth_is_counted() {
        let m = Arc::new(RawReentrantMutex::new());
        for depth in 1..=5 {
            m.lock();
            assert_eq!(m.holds(), depth);
        }
        assert!(m.try_lock(), "the owner's try_lock re-enters");
        assert_eq!(m.holds(), 6);
        for depth in (1..=6).rev() {
            assert!(m.is_locked());
            assert!(
                !try_lock_elsewhere(&m),
                "taken by another thread at depth {depth}"
            );
            m.unlock();
            assert_eq!(m.holds(), depth - 1);
        }
        assert!(!m.is_locked());
        assert!(!m.is_owned_by_current_thread());
        assert!(try_lock_elsewhere(&m), "free after the last unlock");
        // And this thread may own it again, from zero.
        m.lock();
        assert_eq!(m.holds(), 1);
        m.unlock();
    }

    /// Introspection from another thread: it sees the lock held, owned by us, and holds no
    /// holds itself.
    #[test]
    fn introspection_from_another_thread() {
        let m = Arc::new(RawReentrantMutex::new());
        assert_eq!(m.owner(), None);
        m.lock();
        m.lock();
        let me = thread::current().id();
        let m2 = m.clone();
        let (holds, owner, mine, locked) = thread::spawn(move || {
            (
                m2.holds(),
                m2.owner(),
                m2.is_owned_by_current_thread(),
                m2.is_locked(),
            )
        })
        .join()
        .unwrap();
        assert_eq!((holds, owner, mine, locked), (0, Some(me), false, true));
        assert!(format!("{m:?}").contains("locked: true"));
        m.unlock();
        m.unlock();
        assert_eq!(m.owner(), None);
    }

    /// Unlock by a thread that does not own the mutex panics naming both threads (by name
    /// and std id), and leaves the owner's holds as they were.
    #[test]
    fn unlock_by_another_thread_panics_naming_both() {
        let m = Arc::new(RawReentrantMutex::new());
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let owner = {
            let m = m.clone();
            thread::Builder::new()
                .name("owner".into())
                .spawn(move || {
                    m.lock();
                    m.lock();
                    locked_tx.send(thread::current().id()).unwrap();
                    go_rx.recv().unwrap();
                    // Still ours, both holds.
                    assert_eq!(m.holds(), 2);
                    m.unlock();
                    m.unlock();
                })
                .unwrap()
        };
        let owner_id = locked_rx.recv().unwrap();
        let m2 = m.clone();
        let (msg, intruder_id) = thread::Builder::new()
            .name("intruder".into())
            .spawn(move || (panic_message(|| m2.unlock()), thread::current().id()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(
            msg,
            format!(
                "reentrant: unlock by thread 'intruder' ({intruder_id:?}) of a lock owned by \
                 thread 'owner' ({owner_id:?})"
            )
        );
        go_tx.send(()).unwrap();
        owner.join().unwrap();
        assert!(!m.is_locked());
    }

    /// The same from an unnamed thread: it is named by its id.
    #[test]
    fn unlock_by_unnamed_thread_names_it_by_id() {
        let m = Arc::new(RawReentrantMutex::new());
        m.lock();
        let m2 = m.clone();
        let (msg, id) =
            thread::spawn(move || (panic_message(|| m2.unlock()), thread::current().id()))
                .join()
                .unwrap();
        assert!(
            msg.starts_with(&format!(
                "reentrant: unlock by thread {id:?} of a lock owned by thread "
            )),
            "{msg}"
        );
        m.unlock();
    }

    #[test]
    #[should_panic(expected = "reentrant: unlock of unlocked mutex")]
    fn unlock_of_unlocked_panics() {
        RawReentrantMutex::new().unlock();
    }

    /// One unlock too many panics once the holds are gone, and the mutex stays usable.
    #[test]
    fn unlock_once_too_often_panics() {
        let m = RawReentrantMutex::new();
        m.lock();
        m.lock();
        m.unlock();
        m.unlock();
        assert_eq!(panic_message(|| m.unlock()), UNLOCKED);
        assert!(m.try_lock());
        m.unlock();
    }

    /// `lock_ctx`: the owner re-enters; another thread's wait ends with the context's error
    /// (deadline or cancel) and takes nothing; a done context fails at once, even for the owner.
    #[test]
    fn lock_ctx_reenters_and_times_out_elsewhere() {
        let m = Arc::new(RawReentrantMutex::new());
        m.lock();
        assert_eq!(m.lock_ctx(&context::background()), Ok(()));
        assert_eq!(m.holds(), 2);
        let m2 = m.clone();
        let r = support::within(LIVENESS, "lock_ctx with a deadline", move || {
            let ctx = context::with_timeout(&context::background(), Duration::from_millis(20)).0;
            m2.lock_ctx(&ctx)
        });
        assert_eq!(r, Err(ContextError::DeadlineExceeded));
        let (ctx, cancel) = context::with_cancel(&context::background());
        cancel.cancel();
        assert_eq!(m.lock_ctx(&ctx), Err(ContextError::Canceled));
        assert_eq!(m.holds(), 2, "a failed lock_ctx adds no hold");
        m.unlock();
        m.unlock();
        assert_eq!(m.waiters(), 0);
        assert!(try_lock_elsewhere(&m));
    }

    /// A thread blocked on a re-entrant mutex waits in the waiter core: `diag::blocked` lists
    /// it as a mutex wait, at its call site in this file.
    #[test]
    fn blocked_locker_shows_in_diag() {
        let m = Arc::new(RawReentrantMutex::new());
        m.lock();
        let t = {
            let m = m.clone();
            thread::Builder::new()
                .name("reentrant-blocked".into())
                .spawn(move || {
                    m.lock();
                    m.unlock();
                })
                .unwrap()
        };
        eventually(LIVENESS, "the locker shows as blocked", || {
            diag::blocked().iter().any(|b| {
                b.op == gosync::WaitKind::Mutex
                    && b.site.file().ends_with("reentrant.rs")
                    && matches!(&b.waiter, diag::Waiter::Thread { name: Some(n), .. } if n == "reentrant-blocked")
            })
        });
        // Recorded as waiting a moment before it is in the queue: wait for both.
        eventually(LIVENESS, "the locker queues", || m.waiters() == 1);
        m.unlock();
        t.join().unwrap();
    }

    /// A thread that ends while owning the mutex leaves it locked; no thread started later
    /// re-enters it (thread numbers are never reused), and `owner` reports no live owner.
    #[test]
    fn ended_owner_leaves_it_locked_for_good() {
        let m = Arc::new(RawReentrantMutex::new());
        {
            let m = m.clone();
            thread::spawn(move || m.lock()).join().unwrap();
        }
        assert!(m.is_locked());
        assert_eq!(m.owner(), None, "the owner has ended");
        for _ in 0..32 {
            assert!(
                !try_lock_elsewhere(&m),
                "a new thread inherited the ownership"
            );
        }
        let msg = panic_message(|| m.unlock());
        assert!(
            msg.contains("of a lock owned by thread #") && msg.ends_with("(ended)"),
            "{msg}"
        );
    }

    /// Mutual exclusion under contention: threads take the mutex with nested holds (lock,
    /// try_lock, lock again) and update a counter inside without atomics; an "inside" flag
    /// catches two owners at once.
    #[test]
    fn stress_nested_holds_exclude_each_other() {
        const THREADS: usize = 6;
        const ROUNDS: usize = 1_500;
        struct Shared {
            m: ReentrantMutex<Cell<u64>>,
            inside: AtomicU64,
        }
        let s = Arc::new(Shared {
            m: ReentrantMutex::new(Cell::new(0)),
            inside: AtomicU64::new(0),
        });
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let (s, start) = (s.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..ROUNDS {
                        let outer = s.m.lock();
                        let was = s.inside.swap(t + 1, Ordering::Relaxed);
                        assert_eq!(was, 0, "thread {t} entered while {} was inside", was - 1);
                        let inner = s.m.try_lock().expect("the owner's try_lock re-enters");
                        let v = inner.get();
                        if i % 32 == 0 {
                            thread::yield_now();
                        }
                        {
                            let innermost = s.m.lock();
                            assert_eq!(s.m.holds(), 3);
                            innermost.set(v + 1);
                        }
                        drop(inner);
                        assert_eq!(s.inside.load(Ordering::Relaxed), t + 1);
                        s.inside.store(0, Ordering::Relaxed);
                        drop(outer);
                    }
                })
            })
            .collect();
        support::within(LIVENESS, "reentrant stress", move || {
            for t in threads {
                t.join().unwrap();
            }
        });
        assert_eq!(s.m.lock().get(), (THREADS * ROUNDS) as u64);
        assert!(!s.m.is_locked());
    }

    /// Guards: nested guards give `&T`, the last one releases, and a panic that unwinds
    /// through several guards releases all their holds (no poisoning).
    #[test]
    fn guards_nest_and_unwind() {
        let m = Arc::new(ReentrantMutex::new(RefCell::new(Vec::new())));
        {
            let a = m.lock();
            let b = m.lock();
            a.borrow_mut().push(1);
            b.borrow_mut().push(2);
            drop(a);
            assert!(m.is_locked(), "b still holds it");
            assert_eq!(m.holds(), 1);
        }
        assert!(!m.is_locked());
        let m2 = m.clone();
        let r = thread::spawn(move || {
            let _a = m2.lock();
            let _b = m2.lock();
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        assert!(!m.is_locked(), "the unwinding released both holds");
        assert_eq!(*m.try_lock().unwrap().borrow(), [1, 2]);
        assert_eq!(
            format!("{m:?}"),
            "ReentrantMutex { data: RefCell { value: [1, 2] } }"
        );
        let m = Arc::try_unwrap(m).unwrap();
        assert_eq!(m.into_inner().into_inner(), [1, 2]);
    }

    /// `Debug` of a mutex another thread holds shows `<locked>`; `lock_ctx` and `get_mut`.
    #[test]
    fn guard_form_extras() {
        let mut m = ReentrantMutex::new(1);
        *m.get_mut() = 2;
        let m = Arc::new(m);
        let g = m.lock_ctx(&context::background()).unwrap();
        assert_eq!(*g, 2);
        assert_eq!(m.owner(), Some(thread::current().id()));
        let m2 = m.clone();
        let shown = thread::spawn(move || format!("{m2:?}")).join().unwrap();
        assert_eq!(shown, "ReentrantMutex { data: <locked> }");
        drop(g);
        let d: ReentrantMutex<u8> = ReentrantMutex::default();
        assert_eq!(*d.lock(), 0);
    }

    /// A recursive function re-entering deeply: the count goes up and back down.
    #[test]
    fn deep_recursion() {
        fn walk(m: &ReentrantMutex<Cell<usize>>, depth: usize) {
            let g = m.lock();
            g.set(g.get() + 1);
            assert_eq!(m.holds(), g.get());
            if depth > 0 {
                walk(m, depth - 1);
            }
        }
        let m = ReentrantMutex::new(Cell::new(0));
        walk(&m, 999);
        assert_eq!(m.lock().get(), 1000);
        assert_eq!(m.holds(), 0);
        assert!(!m.is_locked());
    }

    // ---------------------------------------------------------------------------------------
    // TokenMutex
    // ---------------------------------------------------------------------------------------

    /// Holds are counted per token; another token waits until the last unlock.
    #[test]
    fn token_relock_depth_is_counted() {
        let m = TokenMutex::new();
        for depth in 1..=4 {
            m.lock(1);
            assert_eq!(m.holds(), depth);
        }
        assert!(m.try_lock(1));
        assert!(!m.try_lock(2));
        assert_eq!(m.owner(), Some(1));
        for depth in (1..=5).rev() {
            assert!(!m.try_lock(2), "taken by token 2 at depth {depth}");
            m.unlock(1);
        }
        assert_eq!((m.holds(), m.owner(), m.is_locked()), (0, None, false));
        // Token 0 is a token like any other.
        m.lock(0);
        m.lock(0);
        assert!(!m.try_lock(1));
        m.unlock(0);
        m.unlock(0);
        assert!(!m.is_locked());
    }

    /// The token, not the thread, is the owner: a thread that locked with a token may be
    /// unlocked on another thread with that token, and another thread with the token
    /// re-enters.
    #[test]
    fn token_ownership_crosses_threads() {
        let m = Arc::new(TokenMutex::new());
        m.lock(9);
        let m2 = m.clone();
        thread::spawn(move || {
            m2.lock(9);
            assert_eq!(m2.holds(), 2);
            m2.unlock(9);
            m2.unlock(9);
        })
        .join()
        .unwrap();
        assert!(!m.is_locked());
    }

    /// Unlock with a token that does not own the mutex names both tokens and changes nothing.
    #[test]
    fn unlock_with_wrong_token_panics_naming_both() {
        let m = TokenMutex::new();
        m.lock(1);
        m.lock(1);
        assert_eq!(
            panic_message(|| m.unlock(2)),
            "reentrant: unlock with token 2 of a lock owned by token 1"
        );
        assert_eq!((m.owner(), m.holds()), (Some(1), 2));
        m.unlock(1);
        m.unlock(1);
        assert_eq!(panic_message(|| m.unlock(1)), UNLOCKED);
        assert!(m.try_lock(3));
        m.unlock(3);
    }

    #[test]
    #[should_panic(expected = "reentrant: unlock of unlocked mutex")]
    fn token_unlock_of_unlocked_panics() {
        TokenMutex::new().unlock(5);
    }

    /// `lock_async` re-enters at once for the owner's token, waits for another token, and
    /// `lock_ctx` bounds a thread's wait.
    #[test]
    fn lock_async_and_lock_ctx() {
        let m = TokenMutex::new();
        futures::executor::block_on(async {
            m.lock_async(1).await;
            m.lock_async(1).await;
            assert_eq!(m.holds(), 2);
        });
        let mut other = pin!(m.lock_async(2));
        assert!(poll_noop(other.as_mut()).is_pending());
        assert_eq!(m.waiters(), 1);
        let ctx = context::with_timeout(&context::background(), Duration::from_millis(10)).0;
        assert_eq!(m.lock_ctx(&ctx, 3), Err(ContextError::DeadlineExceeded));
        assert_eq!(m.lock_ctx(&context::background(), 1), Ok(()));
        m.unlock(1);
        m.unlock(1);
        m.unlock(1);
        assert!(poll_noop(other.as_mut()).is_ready());
        assert_eq!(m.owner(), Some(2));
        m.unlock(2);
    }

    /// Cancel safety (1): dropping a queued future leaves the queue; the lock goes to the
    /// next waiter and nothing stays held.
    #[test]
    fn dropped_queued_future_leaves_the_queue() {
        let m = TokenMutex::new();
        m.lock(1);
        let mut f2 = Box::pin(m.lock_async(2));
        let (w3, c3) = counting_waker();
        let mut f3 = Box::pin(m.lock_async(3));
        assert!(poll_noop(f2.as_mut()).is_pending());
        assert!(poll_with(f3.as_mut(), &w3).is_pending());
        assert_eq!(m.waiters(), 2);
        drop(f2);
        assert_eq!(m.waiters(), 1);
        m.unlock(1);
        assert!(c3.count() > 0, "the remaining waiter was woken");
        assert!(poll_with(f3.as_mut(), &w3).is_ready());
        assert_eq!(m.owner(), Some(3));
        m.unlock(3);
        assert!(!m.is_locked());
    }

    /// Cancel safety (2): a future that has been woken to take the lock, then dropped before
    /// it runs, passes the wake-up on: the next waiter is woken and gets the lock.
    #[test]
    fn dropped_woken_future_passes_the_wakeup_on() {
        let m = TokenMutex::new();
        m.lock(1);
        let (w2, c2) = counting_waker();
        let (w3, c3) = counting_waker();
        let mut f2 = Box::pin(m.lock_async(2));
        let mut f3 = Box::pin(m.lock_async(3));
        assert!(poll_with(f2.as_mut(), &w2).is_pending());
        assert!(poll_with(f3.as_mut(), &w3).is_pending());
        m.unlock(1);
        assert_eq!(c2.count(), 1, "the head was woken");
        drop(f2);
        assert!(c3.count() > 0, "the wake-up was passed on");
        assert!(poll_with(f3.as_mut(), &w3).is_ready());
        assert_eq!((m.owner(), m.holds()), (Some(3), 1));
        m.unlock(3);
        assert!(!m.is_locked());
    }

    /// Cancel safety (3): a future dropped before its first poll, or after it re-entered,
    /// leaves the holds as they should be.
    #[test]
    fn unpolled_and_completed_futures() {
        let m = TokenMutex::new();
        drop(m.lock_async(1));
        assert!(!m.is_locked());
        m.lock(1);
        let mut f = Box::pin(m.lock_async(1));
        assert!(poll_noop(f.as_mut()).is_ready());
        drop(f);
        assert_eq!(m.holds(), 2, "the completed re-entry holds");
        m.unlock(1);
        m.unlock(1);
        assert!(!m.is_locked());
    }

    /// Cancel safety (4), under load: tasks whose lock futures time out mid-wait (dropped by
    /// `tokio::time::timeout`), beside tasks that lock for real; at the end the mutex is free
    /// and every real lock happened.
    #[test]
    fn cancelled_waits_under_load_lose_nothing() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let m = Arc::new(TokenMutex::new());
        let done = Arc::new(AtomicUsize::new(0));
        let cancelled = Arc::new(AtomicUsize::new(0));
        support::within(LIVENESS, "timeouts under load", {
            let (m, done, cancelled) = (m.clone(), done.clone(), cancelled.clone());
            move || {
                rt.block_on(async move {
                    let mut tasks = Vec::new();
                    for t in 0..8u64 {
                        let (m, done, cancelled) = (m.clone(), done.clone(), cancelled.clone());
                        tasks.push(tokio::spawn(async move {
                            let token = t + 1;
                            for _ in 0..200 {
                                if t % 2 == 0 {
                                    let f = m.lock_async(token);
                                    match tokio::time::timeout(Duration::from_micros(50), f).await {
                                        Ok(()) => {
                                            yield_now().await;
                                            m.unlock(token);
                                        }
                                        Err(_) => {
                                            cancelled.fetch_add(1, Ordering::Relaxed);
                                        }
                                    }
                                } else {
                                    m.lock_async(token).await;
                                    yield_now().await;
                                    m.unlock(token);
                                    done.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            }
        });
        assert_eq!(done.load(Ordering::Relaxed), 4 * 200);
        assert!(!m.is_locked(), "a cancelled future kept the lock");
        assert_eq!(m.waiters(), 0);
        assert!(m.try_lock(99));
        m.unlock(99);
    }

    /// A task keeps its ownership across awaits while tokio moves it between worker threads:
    /// re-entry works on whichever thread it runs, and other tasks stay out meanwhile.
    #[test]
    fn task_keeps_ownership_across_threads() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let m = Arc::new(TokenMutex::new());
        let inside = Arc::new(AtomicU64::new(0));
        support::within(LIVENESS, "tasks moving between threads", {
            let (m, inside) = (m.clone(), inside.clone());
            move || {
                rt.block_on(async move {
                    let tasks: Vec<_> = (0..4)
                        .map(|_| {
                            let (m, inside) = (m.clone(), inside.clone());
                            tokio::spawn(async move {
                                let me = new_token();
                                for _ in 0..100 {
                                    m.lock_async(me).await;
                                    assert_eq!(inside.swap(me, Ordering::SeqCst), 0);
                                    for _ in 0..3 {
                                        yield_now().await; // may resume on another worker
                                        m.lock_async(me).await; // re-enters
                                        assert!(m.try_lock(me));
                                        m.lock(me);
                                        assert_eq!(inside.load(Ordering::SeqCst), me);
                                        m.unlock(me);
                                        m.unlock(me);
                                        m.unlock(me);
                                    }
                                    inside.store(0, Ordering::SeqCst);
                                    m.unlock(me);
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            }
        });
        assert!(!m.is_locked());
    }

    /// Mutual exclusion with threads and tasks mixed on one TokenMutex, each with its own
    /// token, on tokio and on a `futures` thread pool at once; nested holds and a non-atomic
    /// counter. Every flow also re-enters with `lock`/`try_lock`.
    #[test]
    fn stress_threads_and_tasks_mixed() {
        const ROUNDS: u64 = 400;
        struct Shared {
            m: TokenMutex,
            inside: AtomicU64,
            value: std::cell::UnsafeCell<u64>,
        }
        // SAFETY: `value` is touched only by the token that holds `m` (what is tested).
        unsafe impl Sync for Shared {}
        impl Shared {
            /// Call with the mutex held by `token`.
            fn bump(&self, token: u64) {
                let was = self.inside.swap(token, Ordering::Relaxed);
                assert!(
                    was == 0 || was == token,
                    "token {token} entered while {was} held it"
                );
                // SAFETY: held by `token`, which is one flow's alone.
                unsafe { *self.value.get() += 1 };
            }
            fn leave(&self, token: u64) {
                assert_eq!(self.inside.swap(0, Ordering::Relaxed), token);
            }
        }
        let s = Arc::new(Shared {
            m: TokenMutex::new(),
            inside: AtomicU64::new(0),
            value: std::cell::UnsafeCell::new(0),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let finished = Arc::new(gosync::sync::WaitGroup::new());

        // Threads.
        for t in 0..3u64 {
            let (s, finished) = (s.clone(), finished.clone());
            finished.add(1);
            thread::spawn(move || {
                let token = 1000 + t;
                for i in 0..ROUNDS {
                    s.m.lock(token);
                    s.bump(token);
                    if i % 16 == 0 {
                        thread::yield_now();
                    }
                    assert!(s.m.try_lock(token));
                    s.m.unlock(token);
                    s.leave(token);
                    s.m.unlock(token);
                }
                finished.done();
            });
        }
        // Tasks on both executors.
        let task = |token: u64, s: Arc<Shared>, finished: Arc<gosync::sync::WaitGroup>| async move {
            for _ in 0..ROUNDS {
                s.m.lock_async(token).await;
                s.bump(token);
                yield_now().await;
                s.m.lock_async(token).await;
                s.m.lock(token);
                s.m.unlock(token);
                s.m.unlock(token);
                s.leave(token);
                s.m.unlock(token);
            }
            finished.done();
        };
        for t in 0..3u64 {
            finished.add(2);
            rt.spawn(task(2000 + t, s.clone(), finished.clone()));
            pool.spawn_ok(task(3000 + t, s.clone(), finished.clone()));
        }
        support::within(LIVENESS, "mixed stress", move || finished.wait());
        // SAFETY: every flow has finished.
        assert_eq!(unsafe { *s.value.get() }, 9 * ROUNDS);
        assert!(!s.m.is_locked());
        assert_eq!(s.m.holds(), 0);
    }

    /// Flows sharing a token share the ownership; and a re-entry that races the end of its
    /// token's ownership never slips into another token's. Two tokens, three flows of token A
    /// (locking, re-entering with `try_lock`, both at once on several threads) and two of
    /// token B: holders of A and B are never inside together, and the mutex ends free.
    #[test]
    fn shared_token_reentry_never_slips_into_another_token() {
        const ROUNDS: usize = 20_000;
        const A: u64 = 7;
        const B: u64 = 9;
        let m = Arc::new(TokenMutex::new());
        let in_a = Arc::new(AtomicUsize::new(0));
        let in_b = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(5));
        let flow = |token: u64, try_only: bool| {
            let (m, in_a, in_b, start) = (m.clone(), in_a.clone(), in_b.clone(), start.clone());
            thread::spawn(move || {
                let (mine, theirs) = if token == A {
                    (&in_a, &in_b)
                } else {
                    (&in_b, &in_a)
                };
                start.wait();
                let mut entered = 0;
                for _ in 0..ROUNDS {
                    let got = if try_only {
                        m.try_lock(token)
                    } else {
                        m.lock(token);
                        true
                    };
                    if got {
                        mine.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(
                            theirs.load(Ordering::SeqCst),
                            0,
                            "tokens {A} and {B} inside at once"
                        );
                        entered += 1;
                        mine.fetch_sub(1, Ordering::SeqCst);
                        m.unlock(token);
                    }
                }
                entered
            })
        };
        let flows = vec![
            flow(A, false),
            flow(A, true),
            flow(A, true),
            flow(B, false),
            flow(B, true),
        ];
        let counts = support::within(LIVENESS, "shared-token stress", move || {
            flows
                .into_iter()
                .map(|f| f.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert!(counts[0] == ROUNDS && counts[3] == ROUNDS, "{counts:?}");
        assert!(!m.is_locked(), "a hold was lost or gained: {m:?}");
        assert_eq!(m.holds(), 0);
    }

    /// Bounds: the mutexes are `Send + Sync`; `ReentrantMutex<T>` is `Sync` for `T: Send`
    /// even when `T` is not `Sync`; the token future is `Send` (it may go to `tokio::spawn`);
    /// statics work (`const fn new`).
    #[test]
    fn bounds() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<RawReentrantMutex>();
        send_sync::<TokenMutex>();
        send_sync::<ReentrantMutex<Cell<u8>>>();
        let m = TokenMutex::new();
        let f = m.lock_async(1);
        send(&f);
        drop(f);
        static R: RawReentrantMutex = RawReentrantMutex::new();
        static T: TokenMutex = TokenMutex::new();
        static D: ReentrantMutex<u8> = ReentrantMutex::new(0);
        R.lock();
        R.unlock();
        T.lock(1);
        T.unlock(1);
        assert_eq!(*D.lock(), 0);
    }
}
