//! The course's extended synchronization primitives (chapter 01, "扩展同步原语"): the weighted
//! semaphore, singleflight, errgroup, the recursive locks, the spin lock and the file lock.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Instant;

use futures::FutureExt;
use gosync::chan::Chan;
use gosync::context::{self, ContextError};
use gosync::errgroup::{Group as ErrGroup, TaskGroup};
use gosync::filelock::FileLock;
use gosync::reentrant::{RawReentrantMutex, TokenMutex};
use gosync::select;
use gosync::semaphore::Weighted;
use gosync::sharded::Map as ShardedMap;
use gosync::singleflight::Group as FlightGroup;
use gosync::spin::{RawSpinLock, SpinLock};
use gosync::time;

use crate::out::{
    block_on, catch, conclude, message, ms, nap, nap_async, quiet_panics, runtime, say, step,
    wait_until,
};
use crate::Scenario;

/// The scenarios of this family, in the course's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "semaphore",
        title: "Weighted semaphore: a worker pool of GOMAXPROCS, FIFO, a large request, a deadline",
        go: "golang.org/x/sync/semaphore: NewWeighted, Acquire(ctx, n), TryAcquire, Release",
        watch: "never more than 2 workers at once, threads and tasks alike; a large request at \
                the head holds back the small ones behind it; a request whose deadline passes \
                leaves and lets the others go",
        run: semaphore,
    },
    Scenario {
        name: "singleflight",
        title: "Singleflight: a cache stampede collapsed into one load; forget, panics, call_chan",
        go: "golang.org/x/sync/singleflight: Do (groupcache's loadGroup), Forget, DoChan",
        watch: "10 callers, threads and tasks, ask for one missing key at once: the database is \
                queried once and all 10 get its value with shared = true; after forget a new \
                caller loads afresh; a loader's panic reaches every caller waiting for it and \
                frees the key; a call_chan caller can stop waiting while the load goes on",
        run: singleflight,
    },
    Scenario {
        name: "errgroup",
        title: "Errgroup: the first error cancels the others; a TaskGroup with a limit of 2",
        go: "golang.org/x/sync/errgroup: WithContext, Go, Wait, SetLimit, TryGo",
        watch: "when /orders fails, the two other fetches stop at once instead of taking their \
                500 ms; wait returns that first error, which is also the context's cause; six \
                futures run without a runtime, never more than 2 at a time, and try_go says no \
                while the group is full",
        run: errgroup,
    },
    Scenario {
        name: "reentrant",
        title: "Recursive mutexes: re-entry by the owner thread, or by a token for tasks",
        go: "the course's RecursiveMutex (goroutine id) and TokenRecursiveMutex (token)",
        watch: "holds() climbs 1, 2, 3 down the recursion and back; the other thread gets the \
                lock only after the outermost unlock; an unlock from a thread that does not own \
                it panics naming both threads; a task's token re-enters even from another thread",
        run: reentrant,
    },
    Scenario {
        name: "spinlock",
        title: "Spin lock: Locked/Unlocked, try_lock, busy-waiting, and no fairness",
        go: "the course's SpinLock: CAS in TryLock, `for !TryLock() { runtime.Gosched() }`, String",
        watch: "Display flips between Unlocked and Locked; a waiter spins through thousands of \
                failed try_locks instead of sleeping; 4 threads lose no increment, but the \
                lock does not share fairly: their counts differ",
        run: spinlock,
    },
    Scenario {
        name: "concurrent-map",
        title: "Sharded map: orcaman's concurrent-map, 32 RwMutex shards, threads and tasks",
        go: "github.com/orcaman/concurrent-map: New, Set, Get, Upsert, SetIfAbsent, RemoveCb, \
             IterBuffered, Count",
        watch: "word counts from threads and tasks add up exactly; of four threads racing \
                SetIfAbsent on one key exactly one wins; a buffered iterator is a snapshot: \
                entries set after it was made are not in it",
        run: concurrent_map,
    },
    Scenario {
        name: "filelock",
        title: "File lock: a mutex across processes, released when its holder is killed",
        go: "github.com/juju/fslock: New, Lock, TryLock, LockWithTimeout, Unlock",
        watch: "while the child process holds the file, TryLock fails and LockWithTimeout times \
                out; killing the child (SIGKILL) frees the lock at once; two FileLocks in one \
                process exclude each other like two processes",
        run: filelock,
    },
];

/// The environment variable that makes the tour binary a file-lock holder (the child process
/// of the `filelock` scenario): it locks the file it names, says so on stdout, and waits to
/// be killed.
pub const FILELOCK_CHILD_ENV: &str = "GOSYNC_TOUR_FILELOCK_CHILD";

/// The child process of the `filelock` scenario (see [`FILELOCK_CHILD_ENV`]).
pub fn filelock_child(path: &str) -> ! {
    let mut lock = FileLock::new(path).expect("the child opens the lock file");
    lock.lock().expect("the child locks the file");
    println!("locked");
    loop {
        thread::sleep(std::time::Duration::from_secs(3600));
    }
}

// ----- 1. Weighted semaphore ------------------------------------------------------------------

/// The number of Collatz steps from `n` down to 1 (the course's example workload).
fn collatz_steps(mut n: u64) -> u64 {
    let mut steps = 0;
    while n != 1 {
        n = if n.is_multiple_of(2) {
            n / 2
        } else {
            3 * n + 1
        };
        steps += 1;
    }
    steps
}

fn semaphore() {
    let rt = runtime();
    let ctx = context::todo();

    step("the course's worker pool: 32 jobs, at most maxWorkers = 2 at a time");
    let sem = Arc::new(Weighted::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(std::sync::Mutex::new(vec![0u64; 32]));
    let mut workers = Vec::new();
    for i in 0..32 {
        // When two workers are in flight, acquire blocks until one finishes.
        sem.acquire(&ctx, 1).expect("todo() never ends");
        let (sem, inside, most, out) = (sem.clone(), inside.clone(), most.clone(), out.clone());
        let job = move || {
            let now = inside.fetch_add(1, Relaxed) + 1;
            most.fetch_max(now, Relaxed);
            out.lock().unwrap()[i] = collatz_steps(i as u64 + 1);
            thread::sleep(ms(2)); // a job that takes a while, so workers overlap
            inside.fetch_sub(1, Relaxed);
            sem.release(1);
        };
        // Every other job is an async task: the same semaphore serves both.
        if i % 2 == 0 {
            workers.push(Some(thread::spawn(job)));
        } else {
            rt.spawn(async move { job() });
            workers.push(None);
        }
    }
    sem.acquire(&ctx, 2).expect("todo() never ends"); // wait for the last two
    for w in workers.into_iter().flatten() {
        w.join().unwrap();
    }
    let out = out.lock().unwrap();
    say(
        "main",
        format!("steps for 1..=8: {:?} ... 27 -> {}", &out[..8], out[26]),
    );
    say(
        "main",
        format!("at most {} of 32 jobs ever ran at once", most.load(Relaxed)),
    );
    sem.release(2);

    step("FIFO with head-of-line blocking: a request for 3 of 3 units queues first");
    let sem = Arc::new(Weighted::new(3));
    sem.acquire(&ctx, 2).unwrap();
    say("main", "holds 2 of 3 units");
    let (tx, rx) = mpsc::channel();
    let big = {
        let (sem, tx) = (sem.clone(), tx.clone());
        thread::spawn(move || {
            say("big", "acquire(3) ...");
            sem.acquire(&context::todo(), 3).unwrap();
            say("big", "got 3 units");
            tx.send("big").unwrap();
            nap(10);
            sem.release(3);
        })
    };
    wait_until(|| sem.waiters() == 1);
    let small = {
        let (sem, tx) = (sem.clone(), tx.clone());
        rt.spawn(async move {
            say(
                "small-task",
                "acquire_async(1) ... (1 unit is free, but big is ahead)",
            );
            sem.acquire_async(&context::todo(), 1).await.unwrap();
            say("small-task", "got 1 unit");
            tx.send("small").unwrap();
            sem.release(1);
        })
    };
    wait_until(|| sem.waiters() == 2);
    say(
        "main",
        format!(
            "free units: {}; try_acquire(1) = {} (someone is queued)",
            sem.available(),
            sem.try_acquire(1)
        ),
    );
    nap(20);
    say("main", "releases its 2 units");
    sem.release(2);
    big.join().unwrap();
    block_on(&rt, small).unwrap();
    let order: Vec<_> = rx.try_iter().collect();
    say("main", format!("served in order: {order:?}"));

    step("a request whose deadline passes while it waits at the head");
    let sem = Arc::new(Weighted::new(2));
    sem.acquire(&ctx, 1).unwrap();
    let (short, _cancel) = context::with_timeout(&ctx, ms(30));
    let hasty = {
        let sem = sem.clone();
        thread::spawn(move || {
            say("hasty", "acquire(2) with a 30 ms deadline ...");
            let r = sem.acquire(&short, 2);
            say("hasty", format!("-> {r:?}"));
            r
        })
    };
    wait_until(|| sem.waiters() == 1);
    let patient = {
        let sem = sem.clone();
        rt.spawn(async move {
            say("patient-task", "acquire_async(1): queued behind hasty");
            sem.acquire_async(&context::todo(), 1).await.unwrap();
            say("patient-task", "got 1 unit the moment hasty left");
            nap_async(1).await;
            sem.release(1);
        })
    };
    let r = hasty.join().unwrap();
    block_on(&rt, patient).unwrap();
    sem.release(1);
    assert_eq!(r, Err(ContextError::DeadlineExceeded));
    say(
        "main",
        format!("all units back: {} of {}", sem.available(), sem.size()),
    );
    conclude(
        "the semaphore bounds concurrency for threads and tasks at once; FIFO order means a \
         large request is never starved, and a waiter that gives up passes its turn on",
    );
}

// ----- 2. Singleflight ------------------------------------------------------------------------

/// The key every caller of the singleflight scenario asks for.
const KEY: &str = "user:42";

/// A cache's loads, merged per key: the value is Go's `(val, err)`.
type Loads = FlightGroup<&'static str, Result<String, String>>;

/// The slow database query behind the cache: the one load the stampede should cause. It
/// answers once the 9 other callers are waiting for it (or after five seconds), so the
/// stampede is complete whatever the machine's load.
fn query(g: &Loads, queries: &AtomicUsize) -> Result<String, String> {
    let n = queries.fetch_add(1, Relaxed) + 1;
    say(
        "database",
        format!("cache miss: SELECT name FROM users WHERE id = 42 (query #{n}) ..."),
    );
    wait_until(|| g.waiting(KEY).len() >= 9);
    let w = g.waiting(KEY);
    let tasks = w.iter().filter(|r| r.is_async).count();
    say(
        "database",
        format!(
            "meanwhile {} callers wait for this query: {} threads parked, {tasks} tasks \
             suspended",
            w.len(),
            w.len() - tasks
        ),
    );
    nap(20);
    Ok("Ann".to_string())
}

fn singleflight() {
    let rt = runtime();
    let g = Loads::new();
    let queries = Arc::new(AtomicUsize::new(0));

    step("the cache stampede: 10 callers (5 threads, 5 tasks) miss the cache for user:42 at once");
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (mine, queries) = (g.clone(), queries.clone());
        threads.push(thread::spawn(move || {
            let (v, shared) = mine.call(KEY, || query(&mine, &queries));
            say(
                &format!("thread-{i}"),
                format!("call(\"{KEY}\") = {v:?}, shared = {shared}"),
            );
            shared
        }));
        if i == 0 {
            // thread-0 is first: its query is the one in flight when the others come.
            wait_until(|| g.callers(KEY) == 1);
        }
    }
    for i in 0..5 {
        let (g, queries) = (g.clone(), queries.clone());
        tasks.push(rt.spawn(async move {
            // A load of its own, in case no call were in flight: it is dropped unpolled.
            let load = {
                let (g, queries) = (g.clone(), queries.clone());
                async move { query(&g, &queries) }
            };
            let (v, shared) = g.call_async(KEY, load).await;
            say(
                &format!("task-{i}"),
                format!("call_async(\"{KEY}\") = {v:?}, shared = {shared}"),
            );
            shared
        }));
    }
    let mut shared = 0;
    for t in threads {
        shared += usize::from(t.join().unwrap());
    }
    for t in tasks {
        shared += usize::from(block_on(&rt, t).unwrap());
    }
    say(
        "main",
        format!(
            "the database was queried {} time(s) for 10 callers; {shared} of 10 got shared = \
             true (as in Go, the caller whose function ran is told too); callers() = {} now",
            queries.load(Relaxed),
            g.callers(KEY)
        ),
    );

    step("forget: user:42 is renamed while a load is in flight; the next caller loads afresh");
    let gate = Chan::<()>::new(0);
    let stale = {
        let (g, gate) = (g.clone(), gate.clone());
        thread::spawn(move || {
            let (v, shared) = g.call(KEY, || {
                say("old-load", "reading user:42 (before the rename) ...");
                gate.recv();
                Ok("Ann".to_string())
            });
            say(
                "old-load",
                format!("done, for its own caller only: {v:?}, shared = {shared}"),
            );
        })
    };
    wait_until(|| g.callers(KEY) == 1);
    say("main", "renames user:42 to Annie, then forget(\"user:42\")");
    g.forget(KEY);
    say("main", format!("callers(\"{KEY}\") = {}", g.callers(KEY)));
    let (v, shared) = g.call(KEY, || Ok("Annie".to_string()));
    say(
        "main",
        format!("call ran its own load, not waiting for the old one: {v:?}, shared = {shared}"),
    );
    gate.send(()).unwrap();
    stale.join().unwrap();

    step("a loader that panics: every caller waiting for it panics too; the key is free again");
    let quiet = quiet_panics();
    let loader = {
        let g = g.clone();
        thread::spawn(move || {
            let r = catch(|| {
                g.call(KEY, || {
                    say("loader", "querying ...");
                    wait_until(|| g.waiting(KEY).len() >= 2);
                    panic!("database connection lost");
                })
            });
            match r {
                Err(msg) => say("loader", format!("call panicked: \"{msg}\"")),
                Ok(v) => say("loader", format!("call returned {v:?} (unexpected)")),
            }
        })
    };
    wait_until(|| g.callers(KEY) == 1);
    let joiner = {
        let g = g.clone();
        thread::spawn(
            move || match catch(|| g.call(KEY, || Err("not run".to_string()))) {
                Err(msg) => say("thread-1", format!("call panicked: \"{msg}\"")),
                Ok(v) => say("thread-1", format!("call returned {v:?} (unexpected)")),
            },
        )
    };
    let task = {
        let g = g.clone();
        rt.spawn(async move {
            let call = g.call_async(KEY, async { Err("not run".to_string()) });
            match AssertUnwindSafe(call).catch_unwind().await {
                Err(p) => say(
                    "task-1",
                    format!("call_async panicked: \"{}\"", message(&*p)),
                ),
                Ok(v) => say("task-1", format!("call_async returned {v:?} (unexpected)")),
            }
        })
    };
    loader.join().unwrap();
    joiner.join().unwrap();
    block_on(&rt, task).unwrap();
    drop(quiet);
    let free = g.callers(KEY);
    let (v, shared) = g.call(KEY, || Ok("Annie".to_string()));
    say(
        "main",
        format!("callers() = {free}; the next call runs its own load: {v:?}, shared = {shared}"),
    );

    step("call_chan (Go's DoChan): the result comes on a channel, so a caller can stop waiting");
    let gate = Chan::<()>::new(0);
    let rx = {
        let gate = gate.clone();
        g.call_chan(KEY, move || {
            say("chan-load", "querying, on a thread of its own ...");
            gate.recv();
            Ok("Annie".to_string())
        })
    };
    let rx2 = g.call_chan(KEY, || Err("not run".to_string()));
    say(
        "main",
        format!("two call_chan()s: callers(\"{KEY}\") = {}", g.callers(KEY)),
    );
    let listener = rt.spawn(async move {
        let got = rx2.recv_async().await;
        say("task", format!("rx2.recv_async() = {got:?}"));
    });
    select! {
        recv(rx) -> got => say("main", format!("rx.recv() = {got:?} (unexpected: it was held back)")),
        recv(time::after(ms(20))) -> _ => say(
            "main",
            "no answer within 20 ms: select's timeout arm fired; the load goes on",
        ),
    }
    gate.send(()).unwrap();
    say("main", format!("later, rx.recv() = {:?}", rx.recv()));
    block_on(&rt, listener).unwrap();
    conclude(
        "one load per key however many callers, threads and tasks alike, each told it shared \
         the value; forget starts afresh, a panic reaches every waiter and frees the key",
    );
}

// ----- 3. Errgroup ----------------------------------------------------------------------------

/// Why a fetch of the errgroup scenario failed.
#[derive(Clone, Debug, PartialEq)]
enum FetchError {
    /// The server answered with this status.
    Status(&'static str, u16),
    /// The fetch stopped because its context was done.
    Stopped(&'static str, ContextError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status(url, code) => write!(f, "GET {url}: status {code}"),
            FetchError::Stopped(url, e) => write!(f, "GET {url}: stopped: {e}"),
        }
    }
}

impl std::error::Error for FetchError {}

fn errgroup() {
    step("with_context: three fetches, each on a thread; /orders fails after 20 ms");
    let (g, ctx) = ErrGroup::<FetchError>::with_context(&context::background());
    for (url, fails_after) in [("/users", None), ("/orders", Some(20)), ("/prices", None)] {
        let ctx = ctx.clone();
        g.go(move || {
            let who = format!("fetch {url}");
            if let Some(n) = fails_after {
                say(&who, "started");
                nap(n);
                say(&who, "the server answers 503");
                return Err(FetchError::Status(url, 503));
            }
            say(&who, "started: takes 500 ms, unless ctx is done first");
            match ctx.wait_timeout(ms(500)) {
                None => {
                    say(&who, "done");
                    Ok(())
                }
                Some(e) => {
                    say(&who, format!("stopped early: ctx.err() = {e:?}"));
                    Err(FetchError::Stopped(url, e))
                }
            }
        });
    }
    say("main", format!("go() x 3; active() = {}", g.active()));
    let started = Instant::now();
    let r = g.wait();
    say(
        "main",
        format!(
            "wait() = {r:?}, after {:.0} ms (the first error, not the stopped ones)",
            started.elapsed().as_secs_f64() * 1e3
        ),
    );
    let cause = ctx.cause();
    say(
        "main",
        format!(
            "ctx.err() = {:?}; ctx.cause() = \"{}\", the very error: downcast = {:?}",
            ctx.err(),
            cause.as_ref().map_or("none".to_string(), |c| c.to_string()),
            cause.as_ref().and_then(|c| c.downcast_ref::<FetchError>())
        ),
    );

    step("a TaskGroup with set_limit(2): six downloads as futures, on no runtime at all");
    let in_flight = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    // The futures borrow the counters: a TaskGroup spawns nothing, so they need not be 'static.
    let download = |i: u32| {
        let (in_flight, peak) = (&in_flight, &peak);
        async move {
            let now = in_flight.fetch_add(1, Relaxed) + 1;
            peak.fetch_max(now, Relaxed);
            say(
                &format!("download-{i}"),
                format!("started ({now} in flight)"),
            );
            time::sleep_async(ms(20)).await;
            in_flight.fetch_sub(1, Relaxed);
            say(&format!("download-{i}"), "done");
            Ok::<(), String>(())
        }
    };
    let g = TaskGroup::<String>::new();
    g.set_limit(Some(2));
    say(
        "main",
        format!("try_go(download-1) = {}", g.try_go(download(1))),
    );
    say(
        "main",
        format!("try_go(download-2) = {}", g.try_go(download(2))),
    );
    let refused = g.try_go(download(3));
    say(
        "main",
        format!(
            "try_go(download-3) = {refused}: the group is full (active() = {})",
            g.active()
        ),
    );
    // futures' own executor on this thread: the group polls its futures itself.
    let r = futures::executor::block_on(async {
        for i in 3..=6 {
            let how = if g.active() == 2 {
                "waited for a slot, driving the group meanwhile"
            } else {
                "a slot was free"
            };
            g.go(download(i)).await;
            say("main", format!("go(download-{i}) returned: {how}"));
        }
        g.wait_async().await
    });
    say(
        "main",
        format!(
            "wait_async() = {r:?}; at most {} downloads were ever in flight",
            peak.load(Relaxed)
        ),
    );
    conclude(
        "the first error comes back from wait and, as the context's cause, stops the siblings \
         early; a limit bounds how many run, and a TaskGroup needs no runtime",
    );
}

// ----- 4. Recursive mutexes -------------------------------------------------------------------

/// The course's recursive function: locks the mutex at every level, down to depth 3.
fn descend(m: &RawReentrantMutex, depth: usize) {
    let pad = "  ".repeat(depth - 1);
    m.lock();
    say(
        "main",
        format!("{pad}depth {depth}: lock(), holds() = {}", m.holds()),
    );
    if depth == 1 {
        wait_until(|| m.waiters() == 1);
        say(
            "main",
            format!("{pad}other is blocked: waiters() = {}", m.waiters()),
        );
    }
    if depth < 3 {
        descend(m, depth + 1);
    }
    if depth == 1 {
        say(
            "main",
            format!(
                "{pad}depth 1: the outermost unlock() (waiters() = {})",
                m.waiters()
            ),
        );
        m.unlock();
    } else {
        m.unlock();
        say(
            "main",
            format!(
                "{pad}depth {depth}: unlock(), holds() = {}, is_locked() = {}",
                m.holds(),
                m.is_locked()
            ),
        );
    }
}

fn reentrant() {
    step("the course's RecursiveMutex: a recursive function locks again at every level");
    let m = Arc::new(RawReentrantMutex::new());
    let other = {
        let m = m.clone();
        thread::Builder::new()
            .name("other".into())
            .spawn(move || {
                wait_until(|| m.is_locked());
                say("other", "lock() ... (main owns it)");
                m.lock();
                say("other", format!("got the lock: holds() = {}", m.holds()));
                m.unlock();
            })
            .expect("spawn a thread")
    };
    descend(&m, 1);
    other.join().unwrap();

    step("misuse: an unlock from a thread that does not own the mutex");
    let quiet = quiet_panics();
    m.lock();
    say("main", format!("lock(): holds() = {}", m.holds()));
    let r = {
        let m = m.clone();
        thread::Builder::new()
            .name("intruder".into())
            .spawn(move || catch(|| m.unlock()))
            .expect("spawn a thread")
            .join()
            .unwrap()
    };
    match r {
        Err(msg) => say("intruder", format!("unlock() panicked: \"{msg}\"")),
        Ok(()) => say("intruder", "unlock() returned (unexpected)"),
    }
    say(
        "main",
        format!(
            "the mutex is as it was: is_locked() = {}, holds() = {}",
            m.is_locked(),
            m.holds()
        ),
    );
    m.unlock();
    match catch(|| m.unlock()) {
        Err(msg) => say(
            "main",
            format!("unlock() once too often panicked: \"{msg}\""),
        ),
        Ok(()) => say("main", "unlock() once too often returned (unexpected)"),
    }
    let t = TokenMutex::new();
    t.lock(1);
    match catch(|| t.unlock(2)) {
        Err(msg) => say("main", format!("TokenMutex: unlock(2) panicked: \"{msg}\"")),
        Ok(()) => say("main", "TokenMutex: unlock(2) returned (unexpected)"),
    }
    t.unlock(1);
    drop(quiet);

    step("TokenMutex (the course's TokenRecursiveMutex): tasks hold it by token, not by thread");
    let rt = runtime();
    let m = Arc::new(TokenMutex::new());
    let task_a = {
        let m = m.clone();
        rt.spawn(async move {
            m.lock_async(1).await;
            let first = thread::current().id();
            say(
                "task-a",
                format!("lock_async(1) on {first:?}: holds() = {}", m.holds()),
            );
            nap_async(20).await;
            // Re-entry from another thread entirely: the token is the owner.
            let helper = {
                let m = m.clone();
                tokio::task::spawn_blocking(move || {
                    m.lock(1);
                    say(
                        "helper",
                        format!(
                            "lock(1) on {:?}, a blocking-pool thread: re-entered at once, \
                             holds() = {}",
                            thread::current().id(),
                            m.holds()
                        ),
                    );
                    m.unlock(1);
                })
            };
            helper.await.unwrap();
            let now = thread::current().id();
            let moved = if now == first {
                "the same worker as before"
            } else {
                "another worker: the task moved"
            };
            say(
                "task-a",
                format!(
                    "resumed on {now:?}, {moved}; holds() = {}, the last unlock(1)",
                    m.holds()
                ),
            );
            m.unlock(1);
        })
    };
    wait_until(|| m.owner() == Some(1));
    let task_b = {
        let m = m.clone();
        rt.spawn(async move {
            say("task-b", "lock_async(2) ... (token 1 owns it)");
            m.lock_async(2).await;
            say(
                "task-b",
                format!(
                    "got it on {:?}: owner() = {:?}",
                    thread::current().id(),
                    m.owner()
                ),
            );
            m.unlock(2);
        })
    };
    wait_until(|| m.waiters() == 1);
    let got = m.try_lock(3);
    say(
        "main",
        format!(
            "try_lock(3) = {got}: owner() = {:?}, waiters() = {}",
            m.owner(),
            m.waiters()
        ),
    );
    if got {
        m.unlock(3);
    }
    block_on(&rt, task_a).unwrap();
    block_on(&rt, task_b).unwrap();
    conclude(
        "a recursive mutex counts its owner's holds and frees on the last unlock; only the owner \
         may unlock it; for tasks, which change threads, the owner is a token",
    );
}

// ----- 5. Spin lock ---------------------------------------------------------------------------

fn spinlock() {
    step("the course's SpinLock: Display, lock, try_lock from another thread, unlock");
    let sl = Arc::new(RawSpinLock::new());
    say("main", format!("sl = {sl}"));
    sl.lock();
    say("main", format!("lock(): sl = {sl}"));
    let theirs = {
        let sl = sl.clone();
        thread::spawn(move || sl.try_lock()).join().unwrap()
    };
    say("main", format!("another thread's try_lock() = {theirs}"));
    sl.unlock();
    say("main", format!("unlock(): sl = {sl}"));
    let quiet = quiet_panics();
    match catch(|| sl.unlock()) {
        Err(msg) => say("main", format!("unlock() again panicked: \"{msg}\"")),
        Ok(()) => say("main", "unlock() again returned (unexpected)"),
    }
    drop(quiet);

    step("a waiter busy-waits: the course's `for !sl.TryLock() { runtime.Gosched() }`");
    sl.lock();
    let spinning = Arc::new(AtomicBool::new(false));
    let spinner = {
        let (sl, spinning) = (sl.clone(), spinning.clone());
        thread::spawn(move || {
            let t = Instant::now();
            let mut failed = 0u64;
            spinning.store(true, Relaxed);
            while !sl.try_lock() {
                failed += 1;
                thread::yield_now();
            }
            say(
                "spinner",
                format!(
                    "got it after {failed} failed try_lock()s in {:.1} ms: awake all along",
                    t.elapsed().as_secs_f64() * 1e3
                ),
            );
            sl.unlock();
        })
    };
    wait_until(|| spinning.load(Relaxed));
    nap(20);
    say("main", "unlock() after holding it 20 ms");
    sl.unlock();
    spinner.join().unwrap();

    step("4 threads add 1 under one SpinLock<u64> for 30 ms, as fast as they can");
    let counter = Arc::new(SpinLock::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(5));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (counter, stop, start) = (counter.clone(), stop.clone(), start.clone());
            thread::spawn(move || {
                let mut mine = 0u64;
                start.wait();
                while !stop.load(Relaxed) {
                    *counter.lock() += 1;
                    mine += 1;
                }
                say(&format!("thread-{i}"), format!("{mine} increments"));
                mine
            })
        })
        .collect();
    start.wait();
    nap(30);
    stop.store(true, Relaxed);
    let counts: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total = *counter.lock();
    let sum: u64 = counts.iter().sum();
    let (min, max) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    say(
        "main",
        format!(
            "counter = {total}, the sum of the threads' counts = {sum}: {}",
            if total == sum {
                "no increment lost"
            } else {
                "INCREMENTS WERE LOST"
            }
        ),
    );
    say(
        "main",
        format!(
            "the busiest thread got the lock {:.1} times as often as the least busy: nothing \
             queues the spinners",
            max as f64 / min.max(1) as f64
        ),
    );
    conclude(if total == sum {
        "a spin lock excludes with one CAS and never sleeps: cheap for a few instructions, but \
         its waiters burn CPU and it is not fair"
    } else {
        "INCREMENTS WERE LOST: the spin lock did not exclude"
    });
}

// ----- 6. Sharded map ------------------------------------------------------------------------

const TEXT: &str =
    "the quick brown fox jumps over the lazy dog the fox is quick and the dog is lazy";

fn concurrent_map() {
    let rt = runtime();
    step("word counts: 3 threads and 3 tasks each count the text into one map with upsert");
    let counts: Arc<ShardedMap<&'static str, u32>> = Arc::new(ShardedMap::new());
    let count_text = |counts: &ShardedMap<&'static str, u32>| {
        for word in TEXT.split_whitespace() {
            counts.upsert(
                word,
                1,
                |exists, old, new| if exists { old.unwrap() + new } else { new },
            );
        }
    };
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let counts = counts.clone();
            thread::spawn(move || count_text(&counts))
        })
        .collect();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let counts = counts.clone();
            rt.spawn(async move { count_text(&counts) })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for t in tasks {
        block_on(&rt, t).unwrap();
    }
    let mut words = counts.keys();
    words.sort_unstable();
    say(
        "main",
        format!(
            "{} distinct words over {} shards; the = {:?}, fox = {:?}, lazy = {:?} (6 counters x 4, 2, 2)",
            counts.count(),
            counts.shard_count(),
            counts.get("the"),
            counts.get("fox"),
            counts.get("lazy"),
        ),
    );

    step("SetIfAbsent from 4 threads at once: exactly one wins");
    let owners: Arc<ShardedMap<&'static str, String>> = Arc::new(ShardedMap::new());
    let start = Arc::new(Barrier::new(4));
    let racers: Vec<_> = (0..4)
        .map(|i| {
            let (owners, start) = (owners.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                owners.set_if_absent("leader", format!("thread-{i}"))
            })
        })
        .collect();
    let wins = racers
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|won| *won)
        .count();
    say(
        "main",
        format!("{wins} winner: leader = {:?}", owners.get("leader")),
    );

    step("RemoveCb: remove a key only if the callback agrees, under the shard's lock");
    let removed_small =
        counts.remove_cb("fox", |_, v, exists| exists && v.is_some_and(|n| *n < 100));
    let removed_big = counts.remove_cb("the", |_, v, _| v.is_some_and(|n| *n > 100));
    say(
        "main",
        format!("remove fox if < 100: {removed_small}; remove the if > 100: {removed_big}"),
    );

    step("IterBuffered: a snapshot, shard by shard; writes after it are not in it");
    let snapshot = counts.iter();
    counts.set("gopher", 1);
    let seen: Vec<_> = snapshot.map(|(k, _)| k).collect();
    say(
        "main",
        format!(
            "the snapshot has {} entries, gopher in it: {}; the map now has {}",
            seen.len(),
            seen.contains(&"gopher"),
            counts.count()
        ),
    );
    conclude(
        "a sharded map spreads its keys over many RwMutexes so writers of different shards never \
         wait for each other; one key's operations are atomic, whole-map views are per shard",
    );
}

// ----- 7. File lock ---------------------------------------------------------------------------

fn filelock() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let path = std::env::temp_dir().join(format!("gosync-tour-{}.lock", std::process::id()));
    step("a child process (this binary, re-run) locks the file and keeps it");
    let mut child = Command::new(std::env::current_exe().expect("the tour binary's path"))
        .env(FILELOCK_CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("read the child's answer");
    say(&format!("child {}", child.id()), line.trim());

    let mut mine = FileLock::new(&path).expect("open the lock file");
    say(
        "main",
        format!(
            "try_lock() = {:?}",
            mine.try_lock().map_err(|e| e.to_string())
        ),
    );
    match mine.lock_timeout(ms(50)) {
        Ok(()) => say("main", "lock_timeout: got it?! (unexpected)"),
        Err(e) => say("main", format!("lock_timeout(50 ms): {e}")),
    }

    step("kill the holder with SIGKILL: the kernel drops its lock with its last descriptor");
    let rt = runtime();
    let waiter = {
        let path = path.clone();
        rt.spawn(async move {
            let mut lock = FileLock::new(&path).expect("open the lock file");
            say(
                "task",
                "lock_async() ... (polls, sleeping on gosync's timer)",
            );
            lock.lock_async().await.expect("lock");
            say("task", "got the lock");
            lock.unlock().expect("unlock");
        })
    };
    nap(30);
    child.kill().expect("kill the child");
    let status = child.wait().expect("reap the child");
    say("main", format!("child ended: {status}"));
    block_on(&rt, waiter).unwrap();

    step("two FileLocks in one process exclude each other, like two processes");
    let mut other = FileLock::new(&path).expect("open the lock file");
    mine.lock().expect("lock");
    say(
        "main",
        format!(
            "mine holds it; other.try_lock() = {:?}",
            other.try_lock().ok()
        ),
    );
    mine.unlock().expect("unlock");
    say(
        "main",
        format!(
            "mine let go; other.try_lock() = {:?}",
            other.try_lock().ok()
        ),
    );
    other.unlock().expect("unlock");
    match mine.unlock() {
        Ok(()) => say("main", "a second unlock succeeded?! (unexpected)"),
        Err(e) => say("main", format!("unlock again: {e}")),
    }
    drop((mine, other));
    std::fs::remove_file(&path).ok();
    conclude(
        "a file lock is a mutex across processes that cannot go stale: the kernel releases it \
         when its holder dies; waits with a timeout, a context or a future poll and leave \
         nothing behind",
    );
}
