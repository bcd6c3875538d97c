//! `semaphore::Weighted` tests, written afresh after the semantics of x/sync's
//! `semaphore/semaphore_test.go` (`TestWeighted`, `TestWeightedPanic`, `TestWeightedTryAcquire`,
//! `TestWeightedAcquire`, `TestWeightedDoesntBlockIfTooBig`, `TestLargeAcquireDoesntStarve`,
//! `TestAllocCancelDoesntStarve`), plus: FIFO order with head-of-line blocking, a waiter whose
//! context ends at the head letting the others go, cancel safety of the async form (dropped
//! while queued, and dropped after being handed its units), threads and tasks on two executors
//! sharing one semaphore, misuse on both paths, and the registry of waits.
#![cfg(not(loom))]

mod support;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use gosync::context::{self, ContextError};
use gosync::diag::{self, PrimitiveKind};
use gosync::semaphore::Weighted;
use gosync::WaitKind;
use support::{eventually, poll_noop, poll_with, within, LIVENESS};

fn bg() -> context::Context {
    context::background()
}

/// A context that ends after `ms` milliseconds.
fn timeout(ms: u64) -> context::Context {
    context::with_timeout(&bg(), Duration::from_millis(ms)).0
}

/// A cheap deterministic generator (xorshift), one per thread.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Acquires and releases `n` units `loops` times, checking that the units in use never exceed
/// the size (x/sync's `HammerWeighted`, with the check added).
fn hammer(sem: &Weighted, in_use: &AtomicUsize, n: usize, loops: usize) {
    let mut rng = Rng(n as u64 * 0x9E37_79B9 + 1);
    for _ in 0..loops {
        sem.acquire(&bg(), n).unwrap();
        let now = in_use.fetch_add(n, Ordering::SeqCst) + n;
        assert!(now <= sem.size(), "{now} units in use of {}", sem.size());
        for _ in 0..rng.below(50) {
            std::hint::spin_loop();
        }
        in_use.fetch_sub(n, Ordering::SeqCst);
        sem.release(n);
    }
}

// ----- x/sync's tests -----------------------------------------------------------------------

#[test]
fn weighted() {
    let n = 4;
    let loops = if cfg!(debug_assertions) {
        2_000
    } else {
        10_000
    };
    let sem = Arc::new(Weighted::new(n));
    let in_use = Arc::new(AtomicUsize::new(0));
    within(LIVENESS, "TestWeighted", move || {
        let ts: Vec<_> = (0..n)
            .map(|i| {
                let (sem, in_use) = (sem.clone(), in_use.clone());
                thread::spawn(move || hammer(&sem, &in_use, i + 1, loops))
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(sem.available(), n);
        assert_eq!(sem.waiters(), 0);
    });
}

#[test]
#[should_panic(expected = "semaphore: released more than held")]
fn weighted_panic() {
    Weighted::new(1).release(1);
}

#[test]
fn weighted_try_acquire() {
    let sem = Weighted::new(2);
    let mut tries = Vec::new();
    sem.acquire(&bg(), 1).unwrap();
    tries.push(sem.try_acquire(1));
    tries.push(sem.try_acquire(1));
    sem.release(2);
    tries.push(sem.try_acquire(1));
    sem.acquire(&bg(), 1).unwrap();
    tries.push(sem.try_acquire(1));
    assert_eq!(tries, [true, false, true, false]);
}

#[test]
fn weighted_acquire() {
    let sem = Weighted::new(2);
    let try_acquire = |n| sem.acquire(&timeout(10), n).is_ok();
    let mut tries = Vec::new();
    sem.acquire(&bg(), 1).unwrap();
    tries.push(try_acquire(1));
    tries.push(try_acquire(1));
    sem.release(2);
    tries.push(try_acquire(1));
    sem.acquire(&bg(), 1).unwrap();
    tries.push(try_acquire(1));
    assert_eq!(tries, [true, false, true, false]);
}

/// A request larger than the size waits for its context only, and holds back nobody.
#[test]
fn weighted_doesnt_block_if_too_big() {
    let sem = Arc::new(Weighted::new(1));
    let (ctx, cancel) = context::with_cancel(&bg());
    let big = {
        let (sem, ctx) = (sem.clone(), ctx.clone());
        thread::spawn(move || sem.acquire(&ctx, 2))
    };
    let sem2 = sem.clone();
    within(LIVENESS, "small requests beside a too-big one", move || {
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let sem = sem2.clone();
                thread::spawn(move || {
                    for _ in 0..200 {
                        sem.acquire(&bg(), 1).unwrap();
                        sem.release(1);
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
    });
    assert_eq!(sem.waiters(), 0, "a too-big request does not queue");
    cancel.cancel();
    assert_eq!(big.join().unwrap(), Err(ContextError::Canceled));
    assert_eq!(sem.available(), 1);
}

/// A request for every unit is served while other workers keep taking and giving back one:
/// once it queues, the workers queue behind it.
#[test]
fn large_acquire_doesnt_starve() {
    let n = 4;
    let sem = Arc::new(Weighted::new(n));
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let workers: Vec<_> = (0..n)
        .map(|_| {
            sem.acquire(&bg(), 1).unwrap();
            let (sem, running) = (sem.clone(), running.clone());
            thread::spawn(move || {
                while running.load(Ordering::Relaxed) {
                    sem.release(1);
                    sem.acquire(&bg(), 1).unwrap();
                }
                sem.release(1);
            })
        })
        .collect();
    let sem2 = sem.clone();
    within(LIVENESS, "a large acquire among small ones", move || {
        sem2.acquire(&bg(), n).unwrap()
    });
    running.store(false, Ordering::Relaxed);
    sem.release(n);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(sem.available(), n);
}

/// A large request at the head whose context is cancelled lets the small one behind it go.
#[test]
fn alloc_cancel_doesnt_starve() {
    let sem = Arc::new(Weighted::new(10));
    sem.acquire(&bg(), 1).unwrap();
    let (ctx, cancel) = context::with_cancel(&bg());
    let big = {
        let sem = sem.clone();
        thread::spawn(move || sem.acquire(&ctx, 10))
    };
    // Wait until the large request is queued (x/sync polls TryAcquire the same way).
    eventually(LIVENESS, "the large request queues", || sem.waiters() == 1);
    assert!(!sem.try_acquire(1), "a queued waiter blocks try_acquire");
    let small = {
        let sem = sem.clone();
        thread::spawn(move || sem.acquire(&bg(), 1))
    };
    eventually(LIVENESS, "the small request queues", || sem.waiters() == 2);
    cancel.cancel();
    assert_eq!(big.join().unwrap(), Err(ContextError::Canceled));
    within(LIVENESS, "the small request is served", move || {
        small.join().unwrap()
    })
    .unwrap();
    assert_eq!(sem.available(), 8);
    sem.release(2);
    assert_eq!(sem.available(), 10);
}

// ----- order, contexts, bad input -----------------------------------------------------------

/// Spawns a thread that acquires `n` and reports its `tag` once it has the units.
fn queue_thread(sem: &Arc<Weighted>, n: usize, tag: usize, tx: &mpsc::Sender<usize>) {
    let before = sem.waiters();
    let (sem2, tx) = (sem.clone(), tx.clone());
    thread::spawn(move || {
        sem2.acquire(&bg(), n).unwrap();
        tx.send(tag).unwrap();
    });
    eventually(LIVENESS, "the request queues", || {
        sem.waiters() == before + 1
    });
}

#[test]
fn fifo_with_head_of_line_blocking() {
    let sem = Arc::new(Weighted::new(3));
    sem.acquire(&bg(), 3).unwrap();
    let (tx, rx) = mpsc::channel();
    queue_thread(&sem, 2, 0, &tx);
    queue_thread(&sem, 1, 1, &tx);
    queue_thread(&sem, 1, 2, &tx);
    // One unit free: the head needs two, so nobody behind it goes first.
    sem.release(1);
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    assert_eq!(sem.available(), 1);
    // Two free: the head goes; the next needs one and none is left.
    sem.release(1);
    assert_eq!(rx.recv_timeout(LIVENESS), Ok(0));
    assert_eq!(sem.available(), 0);
    // One at a time: the small ones, in order.
    sem.release(1);
    assert_eq!(rx.recv_timeout(LIVENESS), Ok(1));
    sem.release(1);
    assert_eq!(rx.recv_timeout(LIVENESS), Ok(2));
    eventually(LIVENESS, "queue empty", || sem.waiters() == 0);
    sem.release(3);
    assert_eq!(sem.available(), 3);
    assert!(
        sem.try_acquire(3),
        "the free path works again once the queue is empty"
    );
}

#[test]
fn a_done_context_fails_even_when_units_are_free() {
    let sem = Weighted::new(5);
    let (ctx, cancel) = context::with_cancel(&bg());
    cancel.cancel();
    assert_eq!(sem.acquire(&ctx, 1), Err(ContextError::Canceled));
    assert_eq!(
        futures::executor::block_on(sem.acquire_async(&ctx, 1)),
        Err(ContextError::Canceled)
    );
    assert_eq!(sem.available(), 5);
}

#[test]
fn a_deadline_while_queued() {
    let sem = Weighted::new(1);
    sem.acquire(&bg(), 1).unwrap();
    assert_eq!(
        sem.acquire(&timeout(5), 1),
        Err(ContextError::DeadlineExceeded)
    );
    assert_eq!(
        futures::executor::block_on(sem.acquire_async(&timeout(5), 1)),
        Err(ContextError::DeadlineExceeded)
    );
    assert_eq!(sem.waiters(), 0);
    sem.release(1);
    assert_eq!(sem.available(), 1);
}

#[test]
fn bad_input() {
    // Size zero is allowed: any non-zero request waits for its context.
    let empty = Weighted::new(0);
    assert!(empty.try_acquire(0));
    assert!(!empty.try_acquire(1));
    assert_eq!(empty.acquire(&bg(), 0), Ok(()));
    assert_eq!(
        empty.acquire(&timeout(5), 1),
        Err(ContextError::DeadlineExceeded)
    );
    // Zero requests return at once, even behind a queued waiter; release(0) does nothing.
    let sem = Arc::new(Weighted::new(2));
    sem.acquire(&bg(), 2).unwrap();
    let (tx, _rx) = mpsc::channel();
    queue_thread(&sem, 1, 0, &tx);
    assert_eq!(sem.acquire(&bg(), 0), Ok(()));
    assert_eq!(
        futures::executor::block_on(sem.acquire_async(&bg(), 0)),
        Ok(())
    );
    sem.release(0);
    assert_eq!(sem.available(), 0);
    sem.release(1);
    eventually(LIVENESS, "served", || sem.waiters() == 0);
    sem.release(2);
}

#[test]
fn releasing_more_than_held_changes_nothing() {
    let sem = Arc::new(Weighted::new(2));
    sem.acquire(&bg(), 1).unwrap();
    let err = panic::catch_unwind(AssertUnwindSafe(|| sem.release(2))).unwrap_err();
    assert_eq!(
        err.downcast_ref::<&str>()
            .copied()
            .or(err.downcast_ref::<String>().map(|s| s.as_str())),
        Some("semaphore: released more than held")
    );
    assert_eq!(sem.available(), 1);
    // The same on the slow path, with a waiter queued.
    sem.acquire(&bg(), 1).unwrap();
    let (tx, rx) = mpsc::channel();
    queue_thread(&sem, 2, 7, &tx);
    let err = panic::catch_unwind(AssertUnwindSafe(|| sem.release(3)));
    assert!(err.is_err());
    assert_eq!(sem.available(), 0);
    assert_eq!(sem.waiters(), 1);
    sem.release(2);
    assert_eq!(rx.recv_timeout(LIVENESS), Ok(7));
    sem.release(2);
    assert_eq!(sem.available(), 2);
}

#[test]
#[should_panic(expected = "exceeds 2^63 - 1")]
fn size_too_large() {
    let _ = Weighted::new(usize::MAX);
}

// ----- async: cancel safety, threads and tasks together -----------------------------------

#[test]
fn dropped_while_queued_lets_the_next_go() {
    let sem = Weighted::new(2);
    sem.acquire(&bg(), 1).unwrap();
    let ctx = bg();
    let mut big = Box::pin(sem.acquire_async(&ctx, 2));
    assert!(poll_noop(big.as_mut()).is_pending());
    let mut small = pin!(sem.acquire_async(&ctx, 1));
    let (waker, woken) = support::counting_waker();
    assert!(poll_with(small.as_mut(), &waker).is_pending());
    assert_eq!(sem.waiters(), 2);
    // Dropping the head serves the small request behind it at once.
    drop(big);
    assert_eq!(woken.count(), 1);
    assert_eq!(poll_with(small.as_mut(), &waker), Poll::Ready(Ok(())));
    assert_eq!(sem.available(), 0);
    sem.release(2);
    assert_eq!(sem.available(), 2);
}

#[test]
fn dropped_after_being_handed_units_gives_them_back() {
    let sem = Weighted::new(3);
    sem.acquire(&bg(), 3).unwrap();
    let ctx = bg();
    let mut a = Box::pin(sem.acquire_async(&ctx, 2));
    assert!(poll_noop(a.as_mut()).is_pending());
    let mut b = pin!(sem.acquire_async(&ctx, 3));
    assert!(poll_noop(b.as_mut()).is_pending());
    sem.release(2); // handed to `a`
    assert_eq!(sem.available(), 0);
    drop(a); // before it saw them: they go back, and `b` still needs 3
    assert_eq!(sem.available(), 2);
    sem.release(1);
    assert_eq!(poll_noop(b.as_mut()), Poll::Ready(Ok(())));
    sem.release(3);
    assert_eq!(sem.available(), 3);
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn an_async_waiter_cancelled_by_its_context() {
    let sem = Weighted::new(1);
    sem.acquire(&bg(), 1).unwrap();
    let (ctx, cancel) = context::with_cancel(&bg());
    let mut f = pin!(sem.acquire_async(&ctx, 1));
    let (waker, woken) = support::counting_waker();
    assert!(poll_with(f.as_mut(), &waker).is_pending());
    cancel.cancel();
    assert_eq!(woken.count(), 1);
    assert_eq!(
        poll_with(f.as_mut(), &waker),
        Poll::Ready(Err(ContextError::Canceled))
    );
    assert_eq!(sem.waiters(), 0);
    sem.release(1);
    assert_eq!(sem.available(), 1);
}

#[test]
fn a_too_big_async_request_waits_for_its_context() {
    let sem = Weighted::new(1);
    let (ctx, cancel) = context::with_cancel(&bg());
    let mut f = pin!(sem.acquire_async(&ctx, 2));
    assert!(poll_noop(f.as_mut()).is_pending());
    assert_eq!(sem.waiters(), 0);
    assert!(sem.try_acquire(1));
    sem.release(1);
    cancel.cancel();
    assert_eq!(
        poll_noop(f.as_mut()),
        Poll::Ready(Err(ContextError::Canceled))
    );
}

/// Threads, tokio tasks and futures-executor tasks on one semaphore, with random weights and
/// some requests cancelled by short deadlines: the units in use never exceed the size, and
/// every unit is back at the end.
#[test]
fn threads_and_tasks_together() {
    const SIZE: usize = 4;
    let rounds = if cfg!(debug_assertions) { 300 } else { 2_000 };
    let sem = Arc::new(Weighted::new(SIZE));
    let in_use = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let work = move |sem: Arc<Weighted>, in_use: Arc<AtomicUsize>, seed: u64| async move {
        let mut rng = Rng(seed);
        for i in 0..rounds {
            let n = 1 + rng.below(SIZE as u64) as usize;
            let ctx = if i % 7 == 0 { timeout(1) } else { bg() };
            if sem.acquire_async(&ctx, n).await.is_ok() {
                let now = in_use.fetch_add(n, Ordering::SeqCst) + n;
                assert!(now <= SIZE);
                in_use.fetch_sub(n, Ordering::SeqCst);
                sem.release(n);
            }
        }
    };
    let (s, u, d) = (sem.clone(), in_use.clone(), done.clone());
    within(LIVENESS, "threads and tasks on one semaphore", move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let tokio_tasks: Vec<_> = (0..3)
            .map(|i| rt.spawn(work(s.clone(), u.clone(), 11 + i)))
            .collect();
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(1)
            .create()
            .unwrap();
        let (ptx, prx) = mpsc::channel();
        for i in 0..2 {
            let (f, ptx) = (work(s.clone(), u.clone(), 101 + i), ptx.clone());
            pool.spawn_ok(async move {
                f.await;
                ptx.send(()).unwrap();
            });
        }
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (s, u) = (s.clone(), u.clone());
                thread::spawn(move || {
                    let mut rng = Rng(1001 + i);
                    for j in 0..rounds {
                        let n = 1 + rng.below(SIZE as u64) as usize;
                        let ctx = if j % 5 == 0 { timeout(1) } else { bg() };
                        if s.acquire(&ctx, n).is_ok() {
                            assert!(u.fetch_add(n, Ordering::SeqCst) + n <= SIZE);
                            u.fetch_sub(n, Ordering::SeqCst);
                            s.release(n);
                        }
                    }
                })
            })
            .collect();
        for t in tokio_tasks {
            rt.block_on(t).unwrap();
        }
        for _ in 0..2 {
            prx.recv().unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        d.store(1, Ordering::SeqCst);
    });
    assert_eq!(done.load(Ordering::SeqCst), 1);
    assert_eq!(sem.available(), SIZE);
    assert_eq!(sem.waiters(), 0);
}

/// The async future can be spawned (it is `Send`), and a task and a thread hand units back and
/// forth.
#[test]
fn a_task_and_a_thread_hand_off() {
    let sem = Arc::new(Weighted::new(1));
    let ctx = bg();
    sem.acquire(&ctx, 1).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let task = {
        let sem = sem.clone();
        rt.spawn(async move {
            let ctx = context::background();
            sem.acquire_async(&ctx, 1).await.unwrap();
            sem.release(1);
        })
    };
    let sem2 = sem.clone();
    let t = thread::spawn(move || {
        eventually(LIVENESS, "the task queues", || sem2.waiters() == 1);
        sem2.release(1);
    });
    within(LIVENESS, "the task is served", move || rt.block_on(task)).unwrap();
    t.join().unwrap();
    assert_eq!(sem.available(), 1);
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn futures_are_send() {
    let sem = Weighted::new(1);
    let ctx = bg();
    let f = sem.acquire_async(&ctx, 1);
    assert_send(&f);
    drop(f);
    let _: &dyn Future<Output = Result<(), ContextError>> = &sem.acquire_async(&ctx, 1);
}

// ----- diagnostics --------------------------------------------------------------------------

#[test]
fn a_blocked_acquire_is_in_the_registry() {
    let created = line!() + 1;
    let sem = Arc::new(Weighted::new(1));
    sem.acquire(&bg(), 1).unwrap();
    let (tx, rx) = mpsc::channel();
    let sem2 = sem.clone();
    let t = thread::Builder::new()
        .name("sem-diag".into())
        .spawn(move || {
            tx.send(line!() + 1).unwrap();
            sem2.acquire(&bg(), 1).unwrap();
        })
        .unwrap();
    let line = rx.recv().unwrap();
    let mine = |b: &diag::Blocked| matches!(&b.waiter, diag::Waiter::Thread { name: Some(n), .. } if n == "sem-diag");
    eventually(LIVENESS, "listed", || {
        diag::blocked()
            .iter()
            .any(|b| mine(b) && b.op == WaitKind::Semaphore)
    });
    let b = diag::blocked().into_iter().find(mine).unwrap();
    assert_eq!(b.primitive.kind, PrimitiveKind::Semaphore);
    assert_eq!(b.site.line(), line);
    assert_eq!(b.primitive.created.map(|c| c.line()), Some(created));
    assert_eq!(sem.waiting().len(), 1);
    sem.release(1);
    t.join().unwrap();
    assert!(!diag::blocked().iter().any(mine));
    sem.release(1);
}
