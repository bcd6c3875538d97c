//! Tests of `gosync::context`, after the semantics of Go's `context_test.go`, plus the parts
//! gosync adds: waiting from threads and tasks alike, cancel-safe futures, typed keys, and
//! children that leave nothing behind when dropped.
//!
//! No test asserts an elapsed time: deadlines are short and the tests wait for them to fire.

#![cfg(not(loom))]

use futures::task::SpawnExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use gosync::context::{
    self, background, todo, with_cancel, with_cancel_cause, with_deadline, with_timeout,
    with_value, CancelCauseFunc, CancelFunc, Context, ContextError, Done, Key,
};

const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(3600);

/// Polls until `cond` holds, giving other threads time to reach a blocking point.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn assert_live(ctx: &Context) {
    assert_eq!(ctx.err(), None, "{ctx:?} should not be done");
    assert!(ctx.cause().is_none());
    assert_eq!(ctx.wait_timeout(Duration::ZERO), None);
}

/// Waits for `ctx` to be done (a deadline cancels descendants one after another, so a sibling
/// may end a moment later), then checks every way of observing it.
fn assert_done(ctx: &Context, err: ContextError) {
    assert_eq!(ctx.wait(), err, "{ctx:?}");
    assert_eq!(ctx.err(), Some(err), "{ctx:?}");
    assert_eq!(ctx.wait_timeout(Duration::ZERO), Some(err));
    assert_eq!(ctx.done().wait(), err);
    assert_eq!(futures::executor::block_on(ctx.done()), err);
}

struct CountWaker(AtomicUsize);

impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountWaker>, Waker) {
    let w = Arc::new(CountWaker(AtomicUsize::new(0)));
    (w.clone(), Waker::from(w))
}

#[test]
fn bounds() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    fn send_static<T: Send + 'static>() {}
    send_sync_static::<Context>();
    send_sync_static::<CancelFunc>();
    send_sync_static::<CancelCauseFunc>();
    send_sync_static::<ContextError>();
    send_sync_static::<Key<String>>();
    send_static::<Done>();
    fn run_is_send(ctx: &Context) -> impl Send + 'static {
        ctx.run(async { 1 })
    }
    let _ = run_is_send(&background());
}

#[test]
fn background_and_todo_are_never_done() {
    for ctx in [background(), todo()] {
        assert_live(&ctx);
        assert_eq!(ctx.deadline(), None);
        assert_eq!(ctx.wait_timeout(Duration::from_millis(5)), None);
        assert_eq!(ctx.waiters(), 0);
        assert_eq!(ctx.child_count(), 0);
        let (_, waker) = counting_waker();
        let mut done = ctx.done();
        assert!(Pin::new(&mut done)
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending());
        drop(done);
        assert_eq!(ctx.waiters(), 0);
    }
    assert_eq!(format!("{:?}", background()), "context.Background");
    assert_eq!(format!("{:?}", todo()), "context.TODO");
}

#[test]
fn error_messages_are_go_s() {
    assert_eq!(ContextError::Canceled.to_string(), "context canceled");
    assert_eq!(
        ContextError::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
    assert!(ContextError::DeadlineExceeded.is_timeout());
    assert!(!ContextError::Canceled.is_timeout());
}

#[test]
fn with_cancel_cancels_once() {
    let (ctx, cancel) = with_cancel(&background());
    assert_live(&ctx);
    assert_eq!(ctx.deadline(), None);
    cancel.cancel();
    assert_done(&ctx, ContextError::Canceled);
    cancel.cancel();
    cancel.clone().into_fn()();
    assert_done(&ctx, ContextError::Canceled);
    assert_eq!(ctx.cause().unwrap().to_string(), "context canceled");
    assert_eq!(format!("{ctx:?}"), "context.Background.WithCancel");
}

#[test]
fn parent_cancel_reaches_every_descendant() {
    static K: Key<u8> = Key::new("k");
    let (parent, cancel) = with_cancel_cause(&background());
    let (child, _c1) = with_cancel(&parent);
    let valued = with_value(&child, &K, 1);
    let (grandchild, _c2) = with_cancel(&valued);
    let (timed, _c3) = with_timeout(&grandchild, LONG);
    let (sibling, _c4) = context::with_cancel_cause(&parent);
    assert_eq!(parent.child_count(), 2);
    assert_eq!(child.child_count(), 1);
    assert_eq!(
        valued.child_count(),
        1,
        "with_value shares its parent's cancellation"
    );

    // A thread and a task wait on the deepest one.
    let t = {
        let timed = timed.clone();
        thread::spawn(move || timed.wait())
    };
    let pool = futures::executor::ThreadPool::new().unwrap();
    let task = pool.spawn_with_handle(timed.done()).unwrap();
    eventually("two waiters", || timed.waiters() == 2);

    cancel.cancel("root cause");
    for ctx in [&parent, &child, &valued, &grandchild, &timed, &sibling] {
        assert_done(ctx, ContextError::Canceled);
        assert_eq!(context::cause(ctx).unwrap().to_string(), "root cause");
    }
    assert_eq!(t.join().unwrap(), ContextError::Canceled);
    assert_eq!(futures::executor::block_on(task), ContextError::Canceled);
    assert_eq!(parent.child_count(), 0);
    assert_eq!(child.child_count(), 0);
}

#[test]
fn child_cancel_leaves_parent_alone() {
    let (parent, cancel_parent) = with_cancel(&background());
    let (child, cancel_child) = with_cancel(&parent);
    let (grandchild, _g) = with_cancel(&child);
    assert_eq!(parent.child_count(), 1);
    cancel_child.cancel();
    assert_done(&child, ContextError::Canceled);
    assert_done(&grandchild, ContextError::Canceled);
    assert_live(&parent);
    // The cancelled child left its parent's map although it is still alive.
    assert_eq!(parent.child_count(), 0);
    cancel_parent.cancel();
    assert_done(&parent, ContextError::Canceled);
}

#[test]
fn child_of_done_parent_is_born_done() {
    let (parent, cancel) = with_cancel_cause(&background());
    cancel.cancel("gone");
    let (a, cancel_a) = with_cancel(&parent);
    let (b, _) = with_timeout(&parent, LONG);
    let (c, cancel_c) = with_cancel_cause(&parent);
    for ctx in [&a, &b, &c] {
        assert_done(ctx, ContextError::Canceled);
        assert_eq!(ctx.cause().unwrap().to_string(), "gone");
    }
    cancel_a.cancel();
    cancel_c.cancel("ignored");
    assert_eq!(c.cause().unwrap().to_string(), "gone");
    assert_eq!(parent.child_count(), 0);

    let (expired, _) = with_timeout(&background(), SHORT);
    expired.wait();
    let (d, _) = with_cancel(&expired);
    assert_done(&d, ContextError::DeadlineExceeded);
}

#[test]
fn with_timeout_fires_deadline_exceeded() {
    let start = Instant::now();
    let (ctx, cancel) = with_timeout(&background(), SHORT);
    let deadline = ctx.deadline().expect("has a deadline");
    assert!(deadline >= start + SHORT);
    let (child, _) = with_cancel(&ctx);
    assert_eq!(child.deadline(), Some(deadline));
    assert_eq!(ctx.wait(), ContextError::DeadlineExceeded);
    assert!(Instant::now() >= deadline, "fired before its deadline");
    assert_done(&ctx, ContextError::DeadlineExceeded);
    assert_done(&child, ContextError::DeadlineExceeded);
    assert_eq!(
        ctx.cause().unwrap().to_string(),
        "context deadline exceeded"
    );
    cancel.cancel();
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn cancel_before_deadline_wins() {
    let (ctx, cancel) = with_timeout(&background(), SHORT);
    cancel.cancel();
    assert_done(&ctx, ContextError::Canceled);
    thread::sleep(SHORT * 2);
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
}

#[test]
fn deadline_in_the_past_is_born_done() {
    let (ctx, _) = with_deadline(&background(), Instant::now() - Duration::from_millis(1));
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    let (ctx, _) = context::with_deadline_cause(&background(), Instant::now(), "late");
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    assert_eq!(ctx.cause().unwrap().to_string(), "late");
}

#[test]
fn earlier_deadline_wins() {
    // The parent's deadline is earlier: the child keeps it and ends with it.
    let (parent, _p) = with_timeout(&background(), SHORT);
    let (child, _c) = with_timeout(&parent, LONG);
    let (child2, _c2) = with_deadline(&parent, Instant::now() + LONG);
    assert_eq!(child.deadline(), parent.deadline());
    assert_eq!(child2.deadline(), parent.deadline());
    // Siblings are cancelled one after another: wait for each rather than assume.
    assert_eq!(child.wait(), ContextError::DeadlineExceeded);
    assert_eq!(parent.err(), Some(ContextError::DeadlineExceeded));
    assert_eq!(child2.wait(), ContextError::DeadlineExceeded);

    // The child's own deadline is earlier: it ends alone.
    let (parent, _p) = with_timeout(&background(), LONG);
    let (child, _c) = context::with_timeout_cause(&parent, SHORT, "child too slow");
    assert!(child.deadline().unwrap() < parent.deadline().unwrap());
    assert_eq!(child.wait(), ContextError::DeadlineExceeded);
    assert_eq!(child.cause().unwrap().to_string(), "child too slow");
    assert_live(&parent);
    assert_eq!(parent.child_count(), 0, "a fired child leaves its parent");

    // A timeout too large for an Instant means no deadline.
    let (ctx, _) = with_timeout(&background(), Duration::MAX);
    assert_eq!(ctx.deadline(), None);
}

#[test]
fn values_chain_shadow_and_stay_typed() {
    static A: Key<u32> = Key::new("a");
    static B: Key<String> = Key::new("b");
    // Same name and type as A, yet a different key.
    static A2: Key<u32> = Key::new("a");

    let bg = background();
    assert_eq!(bg.value(&A), None);
    let c1 = with_value(&bg, &A, 1);
    let (c2, cancel) = with_cancel(&c1);
    let c3 = with_value(&c2, &B, "b".to_string());
    let c4 = with_value(&c3, &A, 4);
    let detached = context::without_cancel(&c4);

    assert_eq!(c1.value(&A), Some(&1));
    assert_eq!(c1.value(&B), None);
    assert_eq!(c2.value(&A), Some(&1), "lookup passes through with_cancel");
    assert_eq!(c3.value(&A), Some(&1));
    assert_eq!(c3.value(&B).map(String::as_str), Some("b"));
    assert_eq!(c4.value(&A), Some(&4), "the nearest value shadows");
    assert_eq!(c4.value(&B).map(String::as_str), Some("b"));
    assert_eq!(c4.value(&A2), None);
    assert_eq!(detached.value(&A), Some(&4));

    cancel.cancel();
    assert_eq!(c4.err(), Some(ContextError::Canceled));
    assert_eq!(c4.value(&A), Some(&4), "values outlive cancellation");
    assert_live(&detached);
    assert_eq!(detached.deadline(), None);

    assert_eq!(
        format!("{c4:?}"),
        "context.Background.WithValue(a).WithCancel.WithValue(b).WithValue(a)"
    );
    assert_eq!(format!("{A:?}"), r#"Key { name: "a", type: "u32" }"#);
}

#[test]
fn values_are_shared_across_threads() {
    static NAME: Key<Arc<str>> = Key::new("name");
    let ctx = with_value(&background(), &NAME, Arc::from("gopher"));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let ctx = ctx.clone();
            thread::spawn(move || ctx.value(&NAME).cloned())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().as_deref(), Some("gopher"));
    }
}

#[test]
fn cause_rules() {
    // The first cause wins; a plain cancel's cause is the error itself.
    let (ctx, cancel) = with_cancel_cause(&background());
    assert!(context::cause(&ctx).is_none());
    cancel.cancel(std::io::Error::other("first"));
    cancel.cancel("second");
    assert_eq!(context::cause(&ctx).unwrap().to_string(), "first");
    assert!(context::cause(&ctx)
        .unwrap()
        .downcast_ref::<std::io::Error>()
        .is_some());

    // A child cancelled on its own keeps its cause; the parent has none.
    let (parent, _p) = with_cancel_cause(&background());
    let (child, cancel_child) = with_cancel_cause(&parent);
    cancel_child.cancel("child only");
    assert_eq!(child.cause().unwrap().to_string(), "child only");
    assert!(parent.cause().is_none());

    // A deadline exceeded under a cancelled-with-cause parent reports the parent's cause.
    let (parent, cancel_parent) = with_cancel_cause(&background());
    let (child, _c) = context::with_timeout_cause(&parent, LONG, "child deadline");
    cancel_parent.cancel("parent cause");
    assert_eq!(child.err(), Some(ContextError::Canceled));
    assert_eq!(child.cause().unwrap().to_string(), "parent cause");
}

#[test]
fn threads_waiting_are_released_by_cancel() {
    let (ctx, cancel) = with_cancel(&background());
    let valued = with_value(&ctx, &Key::<u8>::new("unused"), 0);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let ctx = if i % 2 == 0 {
                ctx.clone()
            } else {
                valued.clone()
            };
            thread::spawn(move || {
                let err = ctx.wait();
                // The cancel happened before the wait returned: the canceller's write is seen.
                (err, ctx.err())
            })
        })
        .collect();
    eventually("four waiting threads", || ctx.waiters() == 4);
    let records = ctx.waiting();
    assert_eq!(records.len(), 4);
    assert!(records
        .iter()
        .all(|r| r.kind == gosync::WaitKind::Context && !r.is_async));
    thread::spawn(move || cancel.cancel()).join().unwrap();
    for h in handles {
        assert_eq!(
            h.join().unwrap(),
            (ContextError::Canceled, Some(ContextError::Canceled))
        );
    }
    assert_eq!(ctx.waiters(), 0);
}

#[test]
fn cancel_happens_before_wait_returns() {
    for _ in 0..100 {
        let (ctx, cancel) = with_cancel(&background());
        let flag = Arc::new(AtomicBool::new(false));
        let t = {
            let flag = flag.clone();
            thread::spawn(move || {
                flag.store(true, Ordering::Relaxed);
                cancel.cancel();
            })
        };
        ctx.wait();
        assert!(flag.load(Ordering::Relaxed));
        t.join().unwrap();
    }
}

#[test]
fn timed_out_thread_wait_leaves_the_queue() {
    let (ctx, cancel) = with_cancel(&background());
    assert_eq!(ctx.wait_timeout(Duration::from_millis(5)), None);
    assert_eq!(ctx.wait_deadline(Instant::now()), None);
    assert_eq!(ctx.waiters(), 0);
    cancel.cancel();
    assert_eq!(
        ctx.wait_deadline(Instant::now() + LONG),
        Some(ContextError::Canceled)
    );
}

#[test]
fn dropped_done_future_deregisters() {
    let (ctx, cancel) = with_cancel(&background());
    let (wakes, waker) = counting_waker();
    let mut cx = TaskContext::from_waker(&waker);
    let mut first = ctx.done();
    let mut second = ctx.done();
    assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
    assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
    assert!(Pin::new(&mut second).poll(&mut cx).is_pending(), "re-poll");
    assert_eq!(ctx.waiters(), 2);
    assert!(ctx.waiting().iter().all(|r| r.is_async));
    drop(first);
    assert_eq!(ctx.waiters(), 1);
    cancel.cancel();
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        1,
        "only the live future is woken"
    );
    assert_eq!(
        Pin::new(&mut second).poll(&mut cx),
        Poll::Ready(ContextError::Canceled)
    );
    assert_eq!(ctx.waiters(), 0);

    // Dropping a future that was notified but not polled again is fine too.
    let (ctx, cancel) = with_cancel(&background());
    let mut fut = ctx.done();
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    cancel.cancel();
    drop(fut);
    assert_eq!(ctx.waiters(), 0);
}

#[test]
fn done_future_on_tokio() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let (ctx, cancel) = with_cancel(&background());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let ctx = ctx.clone();
                tokio::spawn(async move { ctx.done().await })
            })
            .collect();
        while ctx.waiters() < 8 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Cancelled from a plain thread.
        thread::spawn(move || cancel.cancel());
        for t in tasks {
            assert_eq!(t.await.unwrap(), ContextError::Canceled);
        }

        let (ctx, _c) = with_timeout(&background(), SHORT);
        assert_eq!(ctx.wait_async().await, ContextError::DeadlineExceeded);

        // A dropped done future in a select leaves the queue.
        let (ctx, cancel) = with_cancel(&background());
        tokio::select! {
            _ = ctx.done() => unreachable!("not cancelled"),
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        assert_eq!(ctx.waiters(), 0);
        cancel.cancel();
    });

    // Current-thread runtime: the timer thread wakes the task.
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let (ctx, _c) = with_timeout(&background(), SHORT);
            assert_eq!(ctx.done().await, ContextError::DeadlineExceeded);
        });
}

#[test]
fn done_future_on_futures_executor() {
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .unwrap();
    let (ctx, cancel) = with_cancel(&background());
    let handles: Vec<_> = (0..4)
        .map(|_| pool.spawn_with_handle(ctx.done()).unwrap())
        .collect();
    eventually("four waiting tasks", || ctx.waiters() == 4);
    cancel.cancel();
    for h in handles {
        assert_eq!(futures::executor::block_on(h), ContextError::Canceled);
    }

    let (ctx, _c) = with_timeout(&background(), SHORT);
    assert_eq!(
        futures::executor::block_on(ctx.done()),
        ContextError::DeadlineExceeded
    );
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn run_ok_when_the_future_finishes_first() {
    futures::executor::block_on(async {
        let (ctx, _cancel) = with_timeout(&background(), LONG);
        assert_eq!(ctx.run(async { 42 }).await, Ok(42));
        // A future that yields a few times still wins.
        let mut n = 0;
        let yielding = std::future::poll_fn(|cx| {
            n += 1;
            if n == 3 {
                Poll::Ready("done")
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        });
        assert_eq!(ctx.run(yielding).await, Ok("done"));
        assert_eq!(ctx.waiters(), 0);
    });
}

#[test]
fn run_err_when_the_context_ends_first() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        // Cancelled while the future is pending: the future is dropped.
        let (ctx, cancel) = with_cancel(&background());
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(dropped.clone());
        let work = async move {
            let _guard = guard;
            std::future::pending::<u32>().await
        };
        let task = tokio::spawn(ctx.run(work));
        while ctx.waiters() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!dropped.load(Ordering::SeqCst));
        cancel.cancel();
        assert_eq!(task.await.unwrap(), Err(ContextError::Canceled));
        assert!(dropped.load(Ordering::SeqCst), "run drops the inner future");

        // A deadline ends a sleep that is longer.
        let (ctx, _c) = with_timeout(&background(), SHORT);
        let res = ctx.run(tokio::time::sleep(LONG)).await;
        assert_eq!(res, Err(ContextError::DeadlineExceeded));

        // Already done: the future is not polled at all.
        let polled = Arc::new(AtomicBool::new(false));
        let p = polled.clone();
        let res = ctx
            .run(async move {
                p.store(true, Ordering::SeqCst);
            })
            .await;
        assert_eq!(res, Err(ContextError::DeadlineExceeded));
        assert!(!polled.load(Ordering::SeqCst));
    });
}

#[test]
fn dropped_run_future_drops_its_work_and_leaves_the_queue() {
    let (ctx, _cancel) = with_cancel(&background());
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = DropFlag(dropped.clone());
    let mut fut = Box::pin(ctx.run(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    }));
    let (_, waker) = counting_waker();
    assert!(fut
        .as_mut()
        .poll(&mut TaskContext::from_waker(&waker))
        .is_pending());
    assert_eq!(ctx.waiters(), 1);
    drop(fut);
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(ctx.waiters(), 0);
}

#[test]
fn dropped_children_leave_nothing_behind() {
    let (parent, cancel) = with_cancel(&background());
    // The cancel function does not keep its context alive.
    let (child, child_cancel) = with_cancel(&parent);
    assert_eq!(parent.child_count(), 1);
    drop(child);
    assert_eq!(parent.child_count(), 0);
    child_cancel.cancel(); // a no-op on a dropped context

    // A grandchild keeps its parent alive, and with it the registration.
    let (child, _c) = with_cancel(&parent);
    let (grandchild, _g) = with_timeout(&with_value(&child, &Key::<()>::new("x"), ()), LONG);
    drop(child);
    assert_eq!(parent.child_count(), 1);
    cancel.cancel();
    assert_eq!(grandchild.err(), Some(ContextError::Canceled));
    drop(grandchild);
    assert_eq!(parent.child_count(), 0);
}

#[test]
fn deep_chains_cancel_and_drop_without_recursion() {
    let (root, cancel) = with_cancel(&background());
    let mut ctx = root.clone();
    for i in 0..100_000 {
        ctx = if i % 2 == 0 {
            with_cancel(&ctx).0
        } else {
            with_value(&ctx, &Key::<u32>::new("depth"), i)
        };
    }
    let leaf = ctx;
    // Run on a thread with a small stack, so that recursion would show.
    let t = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            cancel.cancel();
            assert_eq!(leaf.err(), Some(ContextError::Canceled));
            drop(leaf);
        })
        .unwrap();
    t.join().unwrap();
    assert_eq!(root.child_count(), 0);
}

/// A million children created and dropped, never cancelled, leave their parent's bookkeeping
/// empty (in Go each would stay in the parent's map until the parent is cancelled).
#[test]
fn a_million_dropped_children_leave_no_trace() {
    let (parent, _cancel) = with_cancel(&background());
    for _ in 0..1_000_000 {
        let (child, cancel) = with_cancel(&parent);
        drop(child);
        drop(cancel);
    }
    assert_eq!(parent.child_count(), 0);
    for i in 0..100_000 {
        // Contexts with timers, and cancel funcs dropped before or after their contexts.
        let (child, cancel) = with_timeout(&parent, LONG);
        if i % 2 == 0 {
            drop(cancel);
            drop(child);
        } else {
            drop(child);
            drop(cancel);
        }
    }
    assert_eq!(parent.child_count(), 0);
}

#[test]
fn concurrent_cancel_and_derive() {
    for _ in 0..50 {
        let (root, cancel) = with_cancel(&background());
        let makers: Vec<_> = (0..2)
            .map(|_| {
                let root = root.clone();
                thread::spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..200 {
                        let (c, _) = with_cancel(&root);
                        if i % 3 == 0 {
                            kept.push(c);
                        }
                    }
                    kept
                })
            })
            .collect();
        thread::spawn(move || cancel.cancel());
        for m in makers {
            for c in m.join().unwrap() {
                assert_eq!(c.wait(), ContextError::Canceled);
            }
        }
        assert_eq!(root.child_count(), 0);
    }
}

/// After Go's `TestSimultaneousCancels`: a tree cancelled from several threads at once, at the
/// root and at inner nodes, ends entirely cancelled with nothing left registered.
#[test]
fn simultaneous_cancels() {
    for round in 0..20 {
        let (root, cancel_root) = with_cancel(&background());
        let mut contexts = Vec::new();
        let mut cancels = Vec::new();
        for i in 0..10 {
            let (child, c) = with_cancel(&root);
            for j in 0..10 {
                let (grandchild, gc) = if (i + j) % 2 == 0 {
                    with_cancel(&child)
                } else {
                    with_timeout(&child, LONG)
                };
                contexts.push(grandchild);
                cancels.push(gc);
            }
            contexts.push(child);
            cancels.push(c);
        }
        cancels.insert(round * 5 % cancels.len(), cancel_root);
        let waiters: Vec<_> = contexts
            .iter()
            .step_by(7)
            .cloned()
            .map(|ctx| thread::spawn(move || ctx.wait()))
            .collect();
        let cancellers: Vec<_> = (0..4)
            .map(|k| {
                let mine: Vec<CancelFunc> = cancels.iter().skip(k).step_by(4).cloned().collect();
                thread::spawn(move || mine.iter().for_each(CancelFunc::cancel))
            })
            .collect();
        for t in cancellers {
            t.join().unwrap();
        }
        for t in waiters {
            assert_eq!(t.join().unwrap(), ContextError::Canceled);
        }
        for ctx in &contexts {
            assert_eq!(ctx.err(), Some(ContextError::Canceled));
            assert_eq!(ctx.child_count(), 0);
        }
        assert_eq!(root.err(), Some(ContextError::Canceled));
        assert_eq!(root.child_count(), 0);
    }
}

/// After Go's `TestInterlockedCancels`: a thread that waits for one context and then cancels
/// another passes the cancellation on.
#[test]
fn interlocked_cancels() {
    let (parent, cancel_parent) = with_cancel(&background());
    let (other, cancel_other) = with_timeout(&background(), LONG);
    let relay = {
        let parent = parent.clone();
        thread::spawn(move || {
            parent.wait();
            cancel_other.cancel();
        })
    };
    cancel_parent.cancel();
    assert_eq!(other.wait(), ContextError::Canceled);
    relay.join().unwrap();
}

/// Every cancel call returns with the whole subtree done, including one that lost the race to
/// another thread or to the deadline (Go holds each context's lock while cancelling its
/// children; gosync makes the losers wait for the winner).
#[test]
fn every_cancel_returns_with_the_subtree_done() {
    for round in 0..200 {
        let (root, cancel) = with_timeout(&background(), Duration::from_micros(round % 5 * 100));
        let mut all = Vec::new();
        for _ in 0..5 {
            let (child, _) = with_cancel(&root);
            for _ in 0..5 {
                all.push(with_cancel(&child).0);
            }
            all.push(child);
        }
        let all = Arc::new(all);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (cancel, all) = (cancel.clone(), all.clone());
                thread::spawn(move || {
                    cancel.cancel();
                    all.iter().all(|c| c.err().is_some())
                })
            })
            .collect();
        cancel.cancel();
        assert!(all.iter().all(|c| c.err().is_some()));
        for r in racers {
            assert!(
                r.join().unwrap(),
                "a cancel returned before the subtree was done"
            );
        }
    }
}
