//! Go's `context` package: deadlines, cancellation trees and request-scoped values, with
//! threads and async tasks (on tokio and on the `futures` executor) waiting on the same contexts.

use std::thread;
use std::time::{Duration, Instant};

use gosync::context::{self, Context, Key};

use crate::out::{block_on, conclude, ms, nap_async, runtime, say, step, wait_until};
use crate::Scenario;

/// The scenarios of this family.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "timeout",
        title: "with_timeout stops a worker thread and an async task",
        go: "context.WithTimeout, <-ctx.Done(), ctx.Err()",
        watch: "both workers stop at the deadline with \"context deadline exceeded\"; the task's \
                work future is dropped mid-sleep; an early cancel says \"context canceled\"",
        run: timeout,
    },
    Scenario {
        name: "cancel",
        title: "cancelling a parent reaches every child; cancelling a child spares the parent",
        go: "context.WithCancel / WithCancelCause, the tree of derived contexts, context.Cause",
        watch: "the leaf's cancel touches nothing above it; the root's cancel wakes a thread, a \
                tokio task and a futures task, and returns only when the whole tree is done",
        run: cancel,
    },
    Scenario {
        name: "value",
        title: "with_value carries request-scoped data down the call tree",
        go: "context.WithValue, ctx.Value(key)",
        watch: "values are inherited and can be shadowed; keys are typed statics, so two keys \
                with the same name never collide",
        run: value,
    },
];

static REQUEST_ID: Key<u64> = Key::new("request-id");
static USER: Key<String> = Key::new("user");
static TRACE: Key<bool> = Key::new("trace");

// ----- with_timeout ---------------------------------------------------------------------------

fn timeout() {
    let rt = runtime();

    step(
        "one context with a 250 ms timeout; a thread works in 60 ms steps, a task in 100 ms chunks",
    );
    let (ctx, cancel) = context::with_timeout(&context::background(), ms(250));
    say("main", format!("ctx = {ctx:?}"));
    let worker = {
        let ctx = ctx.clone();
        thread::spawn(move || {
            let mut steps = 0;
            loop {
                // One step of work, cut short if the context ends.
                if let Some(err) = ctx.wait_timeout(ms(60)) {
                    say("worker-thread", format!("stops after {steps} steps: {err}"));
                    return;
                }
                steps += 1;
                say("worker-thread", format!("step {steps} done"));
            }
        })
    };
    let task = {
        let ctx = ctx.clone();
        rt.spawn(async move {
            let work = async {
                for chunk in 1u32.. {
                    nap_async(100).await;
                    say("worker-task", format!("chunk {chunk} done"));
                }
            };
            match ctx.run(work).await {
                Err(err) => say(
                    "worker-task",
                    format!("ctx.run(work) = Err({err}): the work future was dropped mid-sleep"),
                ),
                Ok(()) => say("worker-task", "the work finished (unexpected)"),
            }
        })
    };
    let watcher = {
        let ctx = ctx.clone();
        rt.spawn(async move {
            let err = ctx.done().await;
            say("watcher-task", format!("ctx.done().await = {err}"));
        })
    };
    let err = ctx.wait();
    let late = ctx.deadline().map_or(Duration::ZERO, |d| {
        Instant::now().saturating_duration_since(d)
    });
    say(
        "main",
        format!("ctx.wait() = {err:?} (\"{err}\"), {late:.1?} after the deadline"),
    );
    worker.join().unwrap();
    block_on(&rt, task).unwrap();
    block_on(&rt, watcher).unwrap();
    cancel.cancel();
    say(
        "main",
        "cancel() afterwards is a no-op, but call it anyway, as in Go",
    );

    step("the same with a 10 s timeout, cancelled early");
    let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_secs(10));
    let waiter = {
        let ctx = ctx.clone();
        thread::spawn(move || {
            let err = ctx.wait();
            say("worker-thread", format!("ctx.wait() = {err:?} (\"{err}\")"));
        })
    };
    wait_until(|| ctx.waiters() == 1);
    say("main", "cancel()");
    cancel.cancel();
    waiter.join().unwrap();

    conclude(
        "a deadline ends the work of threads and tasks alike; the error tells a timeout \
         (DeadlineExceeded) from a cancel (Canceled)",
    );
}

// ----- the cancellation tree ------------------------------------------------------------------

fn cancel() {
    let rt = runtime();

    step("a tree: server -> request (10 s timeout, request-id) -> db and cache calls");
    let (server, stop_server) = context::with_cancel_cause(&context::background());
    let (request, _cancel_request) = context::with_timeout(&server, Duration::from_secs(10));
    let request = context::with_value(&request, &REQUEST_ID, 42);
    let (db, _cancel_db) = context::with_cancel(&request);
    let (cache, cancel_cache) = context::with_cancel(&request);
    let tree: [(&str, &Context); 4] = [
        ("server", &server),
        ("request", &request),
        ("db", &db),
        ("cache", &cache),
    ];
    for (name, ctx) in tree {
        say("main", format!("{name:<8} = {ctx:?}"));
    }

    step("cancelling a leaf: the cache call gives up on its own");
    cancel_cache.cancel();
    for (name, ctx) in tree {
        say("main", format!("{name:<8} err() = {:?}", ctx.err()));
    }

    step("cancelling the root while a thread, a tokio task and a futures task wait below it");
    let thread_waiter = {
        let request = request.clone();
        thread::spawn(move || {
            let err = request.wait();
            say("thread", format!("request.wait() = {err}"));
        })
    };
    let tokio_waiter = {
        let db = db.clone();
        rt.spawn(async move {
            let err = db.done().await;
            say("tokio-task", format!("db.done().await = {err}"));
        })
    };
    let futures_waiter = {
        let done = request.done();
        thread::spawn(move || {
            let err = futures::executor::block_on(done);
            say("futures-task", format!("request.done().await = {err}"));
        })
    };
    wait_until(|| request.waiters() == 2 && db.waiters() == 1);
    say(
        "main",
        format!(
            "waiting: {} on request, {} on db; stop_server.cancel(\"server shutting down\")",
            request.waiters(),
            db.waiters()
        ),
    );
    stop_server.cancel("server shutting down");
    say("main", "cancel returned: the whole tree is done by now");
    for (name, ctx) in tree {
        let cause = context::cause(ctx).map(|c| c.to_string());
        say(
            "main",
            format!("{name:<8} err() = {:?}, cause = {cause:?}", ctx.err()),
        );
    }
    thread_waiter.join().unwrap();
    block_on(&rt, tokio_waiter).unwrap();
    futures_waiter.join().unwrap();

    conclude(
        "cancellation flows down the tree, never up; the cause says why, and every kind of \
         waiter hears it",
    );
}

// ----- with_value -----------------------------------------------------------------------------

fn value() {
    let rt = runtime();

    step("a request context carries its id and user; handlers read them");
    let ctx = context::with_value(&context::background(), &REQUEST_ID, 7);
    let ctx = context::with_value(&ctx, &USER, "gopher".to_string());
    say("main", format!("ctx = {ctx:?}"));
    let handler = {
        let ctx = ctx.clone();
        thread::spawn(move || describe("handler", &ctx))
    };
    handler.join().unwrap();

    step("a sub-call runs as admin: a value set lower shadows the one above");
    let admin = context::with_value(&ctx, &USER, "admin".to_string());
    let task = {
        let admin = admin.clone();
        rt.spawn(async move { describe("sub-call-task", &admin) })
    };
    block_on(&rt, task).unwrap();
    describe("handler", &ctx);

    step("another module's key, also named \"user\": a different key");
    static OTHER_USER: Key<String> = Key::new("user");
    say(
        "main",
        format!(
            "ctx.value(&OTHER_USER) = {:?}, ctx.value(&USER) = {:?}",
            ctx.value(&OTHER_USER),
            ctx.value(&USER)
        ),
    );

    step("values survive derivation: a cancellable child still sees them");
    let (child, cancel) = context::with_cancel(&admin);
    cancel.cancel();
    say(
        "main",
        format!(
            "child = {child:?}: err() = {:?}, request-id = {:?}",
            child.err(),
            child.value(&REQUEST_ID)
        ),
    );

    conclude(
        "with_value threads request data through every layer without extra parameters, typed \
         and collision-free",
    );
}

/// Prints what `ctx` carries.
fn describe(who: &str, ctx: &Context) {
    say(
        who,
        format!(
            "request-id = {:?}, user = {:?}, trace = {:?}",
            ctx.value(&REQUEST_ID),
            ctx.value(&USER),
            ctx.value(&TRACE)
        ),
    );
}
