//! The course's basic synchronization primitives (chapter 01, "基本同步原语"): Mutex, its
//! misuse, RWMutex, Cond, WaitGroup and Once, each used by threads and async tasks at once.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use gosync::context;
use gosync::sync::{Cond, Mutex, Once, OnceValue, Pool, RawMutex, RawRwMutex, RwMutex, WaitGroup};

use crate::out::{
    block_on, catch, conclude, ms, nap, nap_async, quiet_panics, random, runtime, say, step,
    wait_until,
};
use crate::Scenario;

/// The scenarios of this family, in the course's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "mutex",
        title: "Mutex: mutual exclusion, try_lock, normal and starvation modes",
        go: "sync.Mutex Lock/Unlock/TryLock, and the course's extended Mutex (Count, IsWoken, IsStarving)",
        watch: "no increment lost; in normal mode the running unlocker barges ahead of a woken \
                waiter; a waiter starved for over 1 ms gets the lock handed to it, in FIFO order",
        run: mutex,
    },
    Scenario {
        name: "misuse",
        title: "Unlock of an unlocked mutex, and other misuse, with Go's messages",
        go: "fatal error: sync: unlock of unlocked mutex (and its RWMutex cousins)",
        watch: "the panic message is Go's, word for word; a lock is not tied to who locked it",
        run: misuse,
    },
    Scenario {
        name: "rwmutex",
        title: "RWMutex: readers in parallel, a writer excludes, recursive read locks deadlock",
        go: "sync.RWMutex (writer-preferring), the course's rr example, ReaderCount/WriterCount",
        watch: "six readers inside at once; a pending writer holds back new readers; the second \
                RLock of rr cannot succeed while a writer waits",
        run: rwmutex,
    },
    Scenario {
        name: "cond",
        title: "Cond: ten runners wait for the referee's starting shot",
        go: "sync.Cond Wait/Broadcast, `for !isReady { c.Wait() }`",
        watch: "a broadcast with nobody waiting is lost; every runner is in Wait when the referee \
                broadcasts, threads and tasks alike; each restarts holding the lock, one at a time",
        run: cond,
    },
    Scenario {
        name: "waitgroup",
        title: "WaitGroup: Add before you start, reuse, and the misuse Go panics on",
        go: "sync.WaitGroup Add/Done/Wait; \"sync: negative WaitGroup counter\"",
        watch: "Add inside the goroutine lets Wait return early; reuse works once Wait has \
                returned; Go's panic messages",
        run: waitgroup,
    },
    Scenario {
        name: "once",
        title: "Once: f runs once even if it panics; OnceValue as a singleton",
        go: "sync.Once Do (a panicking f counts as done), sync.OnceValue",
        watch: "\"exec here\" is never printed; concurrent callers wait for the one running f; \
                every caller gets the same singleton",
        run: once,
    },
    Scenario {
        name: "pool",
        title: "Pool: reuse buffers, and the go#23199 lesson about keeping huge ones",
        go: "sync.Pool Get/Put; the fmt/json fix: `if cap(b) > 64<<10 { return }` before Put",
        watch: "without a keep predicate, a few huge requests leave 1 MiB buffers in the pool for \
                ever; with one, the pool keeps only small buffers; a bound caps the count",
        run: pool,
    },
];

// ----- 1. Mutex -------------------------------------------------------------------------------

fn mutex() {
    let rt = runtime();

    step("10 threads and 4 async tasks each add 1000 to one Mutex<u64>");
    const N: u64 = 1000;
    let counter = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let counter = counter.clone();
            thread::spawn(move || {
                for _ in 0..N {
                    *counter.lock() += 1;
                }
                say(&format!("thread-{i}"), format!("did its {N} increments"));
            })
        })
        .collect();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let counter = counter.clone();
            rt.spawn(async move {
                for _ in 0..N {
                    *counter.lock_async().await += 1;
                    if random(8) == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                say(&format!("task-{i}"), format!("did its {N} increments"));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for t in tasks {
        block_on(&rt, t).unwrap();
    }
    let total = *counter.lock();
    say(
        "main",
        format!("counter = {total} (14 workers x {N} = {})", 14 * N),
    );

    step("try_lock while another thread holds the lock, and after it lets go");
    let m = Arc::new(RawMutex::new());
    let holder = {
        let m = m.clone();
        thread::spawn(move || {
            m.lock();
            say("holder", "locked; holds it for 30 ms");
            nap(30);
            m.unlock();
            say("holder", "unlocked");
        })
    };
    wait_until(|| m.is_locked());
    say(
        "main",
        format!("try_lock() = {} (count() = {})", m.try_lock(), m.count()),
    );
    holder.join().unwrap();
    let got = m.try_lock();
    say("main", format!("try_lock() = {got}"));
    if got {
        m.unlock();
    }

    step("normal mode: the running unlocker barges ahead of the waiter it has just woken");
    let m = Arc::new(RawMutex::new());
    m.lock();
    say("main", "locked; a waiter thread comes and parks");
    let waiter_got_it = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (m, got) = (m.clone(), waiter_got_it.clone());
        thread::spawn(move || {
            m.lock();
            got.store(true, Relaxed);
            say("waiter", "got the lock at last");
            m.unlock();
        })
    };
    // Spin rather than sleep: the waiter must not have waited 1 ms yet when we unlock.
    while m.waiters() == 0 {
        thread::yield_now();
    }
    let queued = Instant::now();
    // Give it a moment to fall asleep (still well under 1 ms).
    while queued.elapsed() < Duration::from_micros(200) {
        std::hint::spin_loop();
    }
    for round in 1..=100 {
        let parked = m.waiters() == 1;
        m.unlock();
        let barged = m.try_lock();
        if waiter_got_it.load(Relaxed) {
            // Awake and spinning, the waiter took the lock between our unlock and try_lock.
            if barged {
                m.unlock();
            }
            say(
                "main",
                format!(
                    "round {round}: the waiter, awake and spinning, slipped in between unlock() \
                     and try_lock(), after waiting {:.1} ms",
                    queued.elapsed().as_secs_f64() * 1e3
                ),
            );
            break;
        }
        if barged {
            say(
                "main",
                format!(
                    "round {round}: unlock(), then at once try_lock() = true: barged in ahead of \
                     the waiter (is_woken() = {})",
                    m.is_woken()
                ),
            );
            // Hold the lock a little while, busy, as a lock hog does.
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(300) {
                std::hint::spin_loop();
            }
        } else {
            let waited = queued.elapsed().as_secs_f64() * 1e3;
            let why = if !parked {
                "it was awake, spinning, and took the lock first"
            } else if waited >= 1.0 {
                "over the 1 ms threshold, so unlock handed the lock straight to it"
            } else {
                "it won the race this time"
            };
            say(
                "main",
                format!(
                    "round {round}: unlock(), then at once try_lock() = false: the waiter has \
                     it, after waiting {waited:.1} ms: {why}"
                ),
            );
            break;
        }
    }
    waiter.join().unwrap();

    step("starvation mode: a thread and a task wait over 1 ms behind a lock hog");
    let m = Arc::new(RawMutex::new());
    m.lock();
    say("hog", "locked");
    let thread_waiter = {
        let m = m.clone();
        thread::spawn(move || {
            m.lock();
            say(
                "waiter-thread",
                format!("got the lock; is_starving() = {}", m.is_starving()),
            );
            nap(10);
            m.unlock();
        })
    };
    wait_until(|| m.waiters() == 1);
    let task_waiter = {
        let m = m.clone();
        rt.spawn(async move {
            m.lock_async().await;
            say(
                "waiter-task",
                format!("got the lock; is_starving() = {}", m.is_starving()),
            );
            nap_async(10).await;
            m.unlock();
        })
    };
    wait_until(|| m.waiters() == 2);
    thread::sleep(Duration::from_millis(5)); // over the 1 ms threshold, even under --fast
    say(
        "hog",
        format!(
            "still holding: count() = {}, waiters() = {}, is_starving() = {}, is_woken() = {}",
            m.count(),
            m.waiters(),
            m.is_starving(),
            m.is_woken()
        ),
    );
    m.unlock();
    let got = m.try_lock();
    let starving = m.is_starving();
    say(
        "hog",
        format!(
            "unlock() and at once try_lock() = {got}: the lock went to the starved head \
             waiter; is_starving() = {starving}"
        ),
    );
    if got {
        m.unlock(); // not expected; keep the demo going
    }
    say(
        "hog",
        "lock() again: a newcomer in starvation mode queues at the tail",
    );
    let t = Instant::now();
    m.lock();
    say(
        "hog",
        format!(
            "got the lock back after {:.1} ms; is_starving() = {} (the last waiter switched it off)",
            t.elapsed().as_secs_f64() * 1e3,
            m.is_starving()
        ),
    );
    m.unlock();
    thread_waiter.join().unwrap();
    block_on(&rt, task_waiter).unwrap();

    conclude(if total == 14 * N {
        "one Mutex served threads and tasks with no update lost; a starved waiter is handed the \
         lock and newcomers wait their turn"
    } else {
        "UPDATES WERE LOST: the mutex did not exclude"
    });
}

// ----- 2. Misuse ------------------------------------------------------------------------------

fn misuse() {
    let quiet = quiet_panics();

    step("unlock of a mutex nobody locked");
    let m = RawMutex::new();
    report("main", "m.unlock()", catch(|| m.unlock()));

    step("the same for a RWMutex, read side and write side");
    let rw = RawRwMutex::new();
    report("main", "rw.runlock()", catch(|| rw.runlock()));
    report("main", "rw.unlock()", catch(|| rw.unlock()));

    step("Cond.Wait without holding its lock: the wait's unlock is the misuse");
    let c = Cond::new(RawMutex::new());
    report("main", "c.wait()", catch(|| c.wait()));
    drop(quiet);

    step("not misuse: a locked mutex is not tied to the thread that locked it");
    let m = Arc::new(RawMutex::new());
    {
        let m = m.clone();
        thread::spawn(move || {
            m.lock();
            say("thread-1", "m.lock()");
        })
        .join()
        .unwrap();
    }
    m.unlock();
    say(
        "main",
        format!(
            "m.unlock() of thread-1's lock: fine, is_locked() = {}",
            m.is_locked()
        ),
    );

    step("not reentrant: a second lock from the holder would wait for itself");
    m.lock();
    say(
        "main",
        format!(
            "m.lock(), then m.try_lock() = {}: a second m.lock() here would never return",
            m.try_lock()
        ),
    );
    m.unlock();

    step("in Rust the guard rules the first misuse out");
    let data = Mutex::new(vec![1]);
    data.lock().push(2);
    say(
        "main",
        format!(
            "Mutex<T>: unlock is dropping the guard, so it cannot happen twice: {:?}",
            *data.lock()
        ),
    );

    conclude(
        "misuse panics with Go's own message (a fatal error in Go, a catchable panic here); \
         the guard API makes it unwritable",
    );
}

/// Prints what a call that should have panicked did.
fn report(who: &str, call: &str, result: Result<(), String>) {
    match result {
        Err(msg) => say(who, format!("{call} panicked: \"{msg}\"")),
        Ok(()) => say(who, format!("{call} returned without a panic (unexpected)")),
    }
}

// ----- 3. RWMutex -----------------------------------------------------------------------------

fn rwmutex() {
    let rt = runtime();

    step("4 reader threads and 2 reader tasks hold the read lock at once; then a writer comes");
    let rw = Arc::new(RwMutex::new(String::from("v1")));
    let gate = WaitGroup::new();
    gate.add(1);
    let mut readers = Vec::new();
    for i in 0..4 {
        let (rw, gate) = (rw.clone(), gate.clone());
        readers.push(thread::spawn(move || {
            let g = rw.read();
            say(
                &format!("reader-{i}"),
                format!("reads {:?}; reader_count() = {}", *g, rw.reader_count()),
            );
            gate.wait();
            drop(g);
        }));
    }
    let tasks: Vec<_> = (4..6)
        .map(|i| {
            let (rw, gate) = (rw.clone(), gate.clone());
            rt.spawn(async move {
                let g = rw.read_async().await;
                say(
                    &format!("reader-{i}"),
                    format!(
                        "(a task) reads {:?}; reader_count() = {}",
                        *g,
                        rw.reader_count()
                    ),
                );
                gate.wait_async().await;
                drop(g);
            })
        })
        .collect();
    wait_until(|| rw.reader_count() == 6);
    say("main", "6 readers inside at once");
    let writer = {
        let rw = rw.clone();
        thread::spawn(move || {
            say("writer", "write(): waits for the readers to leave");
            let mut g = rw.write();
            say(
                "writer",
                format!("in alone: reader_count() = {}", rw.reader_count()),
            );
            *g = String::from("v2");
            nap(10);
            drop(g);
            say("writer", "wrote \"v2\" and left");
        })
    };
    wait_until(|| rw.is_writer_pending());
    say(
        "main",
        format!(
            "writer pending: reader_count() = {}, writer_count() = {}, try_read() is {}",
            rw.reader_count(),
            rw.writer_count(),
            if rw.try_read().is_some() {
                "Some"
            } else {
                "None"
            }
        ),
    );
    let late = {
        let rw = rw.clone();
        thread::spawn(move || {
            say("late-reader", "read(): held back behind the pending writer");
            let g = rw.read();
            say("late-reader", format!("reads {:?}", *g));
        })
    };
    wait_until(|| rw.waiters() >= 2);
    nap(20);
    say("main", "lets the 6 readers go");
    gate.done();
    for r in readers {
        r.join().unwrap();
    }
    for t in tasks {
        block_on(&rt, t).unwrap();
    }
    writer.join().unwrap();
    late.join().unwrap();

    step("the course's rr(m, 3) with no writer around: recursive read locks succeed");
    let rw = Arc::new(RawRwMutex::new());
    let sum = rr(&rw, 3, 0, false);
    say("main", format!("rr(m, 3) = {sum:?}"));

    step("rr(m, 3) again, and a writer calls Lock() between the first RLock and the second");
    let rr_thread = {
        let rw = rw.clone();
        thread::spawn(move || rr(&rw, 3, 0, true))
    };
    wait_until(|| rw.reader_count() == 1);
    let writer = {
        let rw = rw.clone();
        thread::spawn(move || {
            say("writer", "Lock(): waits for rr's read lock");
            rw.lock();
            say("writer", "locked, once rr gave up and let go");
            rw.unlock();
        })
    };
    wait_until(|| rw.is_writer_pending());
    say(
        "main",
        format!(
            "reader_count() = {}, writer_count() = {}, is_writer_pending() = {}",
            rw.reader_count(),
            rw.writer_count(),
            rw.is_writer_pending()
        ),
    );
    let sum = rr_thread.join().unwrap();
    writer.join().unwrap();
    say("main", format!("rr(m, 3) = {sum:?}"));

    conclude(
        "readers share, a pending writer excludes newcomers, so a read lock taken twice with a \
         writer in between can never be granted: never lock recursively",
    );
}

/// The course's `rr`: takes a read lock, sleeps, recurses. The outermost call locks with
/// `rlock`; inner ones use `try_rlock` and, when it fails, a bounded real attempt, instead of the
/// `RLock` that would hang.
fn rr(rw: &RawRwMutex, n: u32, depth: usize, slow: bool) -> Option<u32> {
    if n < 1 {
        return Some(0);
    }
    let pad = "  ".repeat(depth);
    say("rr", format!("{pad}RLock (n = {n})"));
    if depth == 0 {
        rw.rlock();
    } else if !rw.try_rlock() {
        say(
            "rr",
            format!(
                "{pad}try_rlock() = false: a writer is pending, and it waits for our outer read \
                 lock"
            ),
        );
        let (ctx, _cancel) = context::with_timeout(&context::background(), ms(150));
        let attempt = futures::executor::block_on(ctx.run(rw.rlock_async()));
        match attempt {
            Err(err) => say(
                "rr",
                format!(
                    "{pad}a real RLock, bounded by a context: {err} after {:?} \
                     (Go: fatal error: all goroutines are asleep - deadlock!)",
                    ms(150)
                ),
            ),
            Ok(()) => {
                say(
                    "rr",
                    format!("{pad}the real RLock got through (unexpected)"),
                );
                rw.runlock();
            }
        }
        return None;
    }
    if slow {
        nap(100);
    }
    let sum = rr(rw, n - 1, depth + 1, slow).map(|s| s + n);
    say("rr", format!("{pad}RUnlock (n = {n})"));
    rw.runlock();
    sum
}

// ----- 4. Cond --------------------------------------------------------------------------------

/// The shared state of the race: the Cond with its lock (Go's `c.L`), and `isReady`, which is
/// only read or written with the lock held.
struct Race {
    c: Cond<RawMutex>,
    is_ready: AtomicBool,
}

fn cond() {
    let rt = runtime();
    let race = Arc::new(Race {
        c: Cond::new(RawMutex::new()),
        is_ready: AtomicBool::new(false),
    });
    let (ready_tx, ready_rx) = mpsc::channel::<usize>();

    step("the referee broadcasts before anyone waits (the course's \"false broadcast\")");
    race.c.broadcast();
    say(
        "referee",
        format!(
            "c.broadcast() with c.waiters() = {}: nobody to wake, nothing is remembered",
            race.c.waiters()
        ),
    );

    step("runners 0-5 are threads, 6-9 async tasks; each gets ready holding the lock, then waits");
    let mut threads = Vec::new();
    for i in 0..6 {
        let (race, ready) = (race.clone(), ready_tx.clone());
        threads.push(thread::spawn(move || {
            race.c.locker().lock();
            let prep = ms(10 + random(110));
            thread::sleep(prep);
            say(
                &format!("runner-{i}"),
                format!("ready after {prep:?}; c.wait()"),
            );
            ready.send(i).unwrap();
            while !race.is_ready.load(Relaxed) {
                race.c.wait();
            }
            say(&format!("runner-{i}"), "started!");
            race.c.locker().unlock();
        }));
    }
    let tasks: Vec<_> = (6..10)
        .map(|i| {
            let (race, ready) = (race.clone(), ready_tx.clone());
            rt.spawn(async move {
                race.c.locker().lock_async().await;
                let prep = ms(10 + random(110));
                tokio::time::sleep(prep).await;
                say(
                    &format!("runner-{i}"),
                    format!("(a task) ready after {prep:?}; c.wait_async()"),
                );
                ready.send(i).unwrap();
                while !race.is_ready.load(Relaxed) {
                    race.c.wait_async().await;
                }
                say(&format!("runner-{i}"), "(a task) started!");
                race.c.locker().unlock();
            })
        })
        .collect();
    drop(ready_tx);

    let readies: Vec<usize> = ready_rx.iter().take(10).collect();
    say(
        "referee",
        format!("all 10 ready, in this order: {readies:?}"),
    );
    race.c.locker().lock();
    say(
        "referee",
        format!(
            "holds the lock: c.waiters() = {} (a runner releases the lock only inside Wait)",
            race.c.waiters()
        ),
    );
    race.is_ready.store(true, Relaxed);
    race.c.broadcast();
    say("referee", "isReady = true; c.broadcast(); bang!");
    race.c.locker().unlock();
    for t in threads {
        t.join().unwrap();
    }
    for t in tasks {
        block_on(&rt, t).unwrap();
    }

    conclude(
        "Wait releases the lock while it sleeps and takes it back before returning, so the \
         condition is always checked under the lock; threads and tasks waited in one queue",
    );
}

// ----- 5. WaitGroup ---------------------------------------------------------------------------

fn waitgroup() {
    let rt = runtime();

    step("Add before starting each job: 500 threads and 500 tasks (the course's 10000, scaled)");
    let count = Arc::new(AtomicU64::new(0));
    let wg = WaitGroup::new();
    wg.add(1000);
    let watcher = {
        let (wg, count) = (wg.clone(), count.clone());
        rt.spawn(async move {
            wg.wait_async().await;
            say(
                "task-waiter",
                format!("wg.wait_async() returned: count = {}", count.load(Relaxed)),
            );
        })
    };
    let mut threads = Vec::new();
    for _ in 0..500 {
        let (job_wg, job_count) = (wg.clone(), count.clone());
        threads.push(thread::spawn(move || {
            job_count.fetch_add(1, Relaxed);
            job_wg.done();
        }));
        let (job_wg, job_count) = (wg.clone(), count.clone());
        rt.spawn(async move {
            job_count.fetch_add(1, Relaxed);
            job_wg.done();
        });
    }
    wg.wait();
    say(
        "main",
        format!("wg.wait() returned: count = {}", count.load(Relaxed)),
    );
    block_on(&rt, watcher).unwrap();
    for t in threads {
        t.join().unwrap();
    }

    step("the course's mistake: Add inside the goroutine, which may not have run yet");
    let count = Arc::new(AtomicU64::new(0));
    let wg = WaitGroup::new();
    let late: Vec<_> = (0..10)
        .map(|_| {
            let (wg, count) = (wg.clone(), count.clone());
            thread::spawn(move || {
                nap(20); // not scheduled yet
                wg.add(1);
                count.fetch_add(1, Relaxed);
                wg.done();
            })
        })
        .collect();
    wg.wait();
    say(
        "main",
        format!(
            "wg.wait() returned at once: count = {} of 10 (the counter was still zero)",
            count.load(Relaxed)
        ),
    );
    for t in late {
        t.join().unwrap();
    }
    say(
        "main",
        format!("...the jobs finish later: count = {}", count.load(Relaxed)),
    );

    step("reuse: Add(10) ... Wait, then Add(20) ... Wait on the same group");
    let count = Arc::new(AtomicU64::new(0));
    let wg = WaitGroup::new();
    for round in [10, 20] {
        wg.add(round);
        for j in 0..round {
            let (wg, count) = (wg.clone(), count.clone());
            if j % 2 == 0 {
                thread::spawn(move || {
                    count.fetch_add(1, Relaxed);
                    wg.done();
                });
            } else {
                rt.spawn(async move {
                    count.fetch_add(1, Relaxed);
                    wg.done();
                });
            }
        }
        wg.wait();
        say(
            "main",
            format!(
                "round of {round}: wg.wait() returned, count = {}",
                count.load(Relaxed)
            ),
        );
    }
    wg.wait();
    say(
        "main",
        "a second wg.wait() on a zero counter returns at once",
    );

    let quiet = quiet_panics();
    step("an extra Done: Wait returns early, and the last job's Done panics");
    let wg = WaitGroup::new();
    let finished = Arc::new(AtomicUsize::new(0));
    wg.add(10);
    let jobs: Vec<_> = (0..10)
        .map(|i| {
            let (wg, finished) = (wg.clone(), finished.clone());
            thread::spawn(move || {
                // The last job comes well after the others: by then Wait has returned.
                nap(if i == 9 { 100 } else { 20 + 2 * i });
                finished.fetch_add(1, Relaxed);
                if let Err(msg) = catch(|| wg.done()) {
                    say(
                        &format!("job-{i}"),
                        format!("wg.done() panicked: \"{msg}\""),
                    );
                }
            })
        })
        .collect();
    wg.done();
    say("main", "wg.done() once too often, then wg.wait()");
    match catch(|| wg.wait()) {
        Ok(()) => say(
            "main",
            format!(
                "wg.wait() returned with {} of 10 jobs finished",
                finished.load(Relaxed)
            ),
        ),
        // The last job's Done came while this Wait was still on its way out.
        Err(msg) => say("main", format!("wg.wait() panicked: \"{msg}\"")),
    }
    for j in jobs {
        j.join().unwrap();
    }

    step("the course's reuse before Wait returned: Done then Add(1) while Wait is waking up");
    let wg = WaitGroup::new();
    wg.add(1);
    let reuser = {
        let wg = wg.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(1));
            let r = catch(|| {
                wg.done();
                wg.add(1);
            });
            if let Err(msg) = r {
                say(
                    "goroutine",
                    format!("wg.done(); wg.add(1) panicked: \"{msg}\""),
                );
            }
        })
    };
    match catch(|| wg.wait()) {
        Err(msg) => say("main", format!("wg.wait() panicked: \"{msg}\"")),
        Ok(()) => say(
            "main",
            "wg.wait() returned: this time the race was not caught (the check is opportunistic, \
             as in Go)",
        ),
    }
    reuser.join().unwrap();
    drop(quiet);

    conclude(
        "Add before you start the job, reuse only after Wait has returned; misuse panics with \
         Go's messages, from threads and tasks alike",
    );
}

// ----- 6. Once --------------------------------------------------------------------------------

/// The singleton of the scenario.
#[derive(Debug)]
struct Config {
    name: &'static str,
}

fn load_config() -> Config {
    say("load_config", "loading the configuration (runs once)...");
    thread::sleep(ms(30));
    Config { name: "prod" }
}

static CONFIG: OnceValue<Config> = OnceValue::new(load_config);

fn once() {
    let rt = runtime();

    step("the course's example: the first f panics (1 / count with count = 0)");
    let quiet = quiet_panics();
    let once = Arc::new(Once::new());
    let count = Arc::new(AtomicI32::new(0));
    {
        let (once, count) = (once.clone(), count.clone());
        thread::spawn(move || {
            let r = catch(|| {
                once.call_once(|| {
                    say("goroutine", "exec Do");
                    let c = count.load(Relaxed);
                    count.store(1 / std::hint::black_box(c), Relaxed);
                })
            });
            count.fetch_add(1, Relaxed); // the course's deferred count++
            if let Err(msg) = r {
                say("goroutine", format!("recovered: \"{msg}\""));
            }
        })
        .join()
        .unwrap();
    }
    let ran = AtomicBool::new(false);
    let r = catch(|| {
        once.call_once(|| {
            ran.store(true, Relaxed);
            say("main", "exec here");
            let c = count.load(Relaxed);
            count.store(1 / c, Relaxed);
        })
    });
    if ran.load(Relaxed) || r.is_err() {
        say("main", "the second call_once ran its f (unexpected)");
    } else {
        say(
            "main",
            format!(
                "the second call_once returned without running its f; is_done() = {}",
                once.is_done()
            ),
        );
    }
    say("main", "end");

    step("don't call the Once from its own f (in Go a deadlock)");
    let once = Once::new();
    let r = catch(|| once.call_once(|| once.call_once(|| {})));
    match r {
        Err(msg) => say("main", format!("panicked: \"{msg}\"")),
        Ok(()) => say("main", "returned (unexpected)"),
    }
    drop(quiet);

    step("3 threads and 3 tasks call one Once at the same time");
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let start = WaitGroup::new();
    start.add(1);
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (once, runs, start) = (once.clone(), runs.clone(), start.clone());
            thread::spawn(move || {
                let who = format!("thread-{i}");
                start.wait();
                once.call_once(|| {
                    runs.fetch_add(1, Relaxed);
                    say(&who, "runs f (50 ms)");
                    nap(50);
                });
                say(&who, "call_once returned");
            })
        })
        .collect();
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let (once, runs, start) = (once.clone(), runs.clone(), start.clone());
            rt.spawn(async move {
                let who = format!("task-{i}");
                start.wait_async().await;
                once.call_once_async(|| async {
                    runs.fetch_add(1, Relaxed);
                    say(&who, "runs f (50 ms, async)");
                    nap_async(50).await;
                })
                .await;
                say(&who, "call_once_async returned");
            })
        })
        .collect();
    start.done();
    wait_until(|| once.waiters() >= 5 || once.is_done());
    say(
        "main",
        format!("while f runs: once.waiters() = {}", once.waiters()),
    );
    for t in threads {
        t.join().unwrap();
    }
    for t in tasks {
        block_on(&rt, t).unwrap();
    }
    say("main", format!("f ran {} time(s)", runs.load(Relaxed)));

    step("OnceValue as a lazy singleton, asked for by 3 threads and 2 tasks");
    let mut addrs: Vec<usize> = Vec::new();
    let threads: Vec<_> = (0..3)
        .map(|i| {
            thread::spawn(move || {
                let cfg = CONFIG.get();
                say(&format!("thread-{i}"), format!("got {cfg:?} at {cfg:p}"));
                cfg as *const Config as usize
            })
        })
        .collect();
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            rt.spawn(async move {
                let cfg = CONFIG.get_async().await;
                say(&format!("task-{i}"), format!("got {cfg:?} at {cfg:p}"));
                cfg as *const Config as usize
            })
        })
        .collect();
    for t in threads {
        addrs.push(t.join().unwrap());
    }
    for t in tasks {
        addrs.push(block_on(&rt, t).unwrap());
    }
    addrs.dedup();
    say(
        "main",
        format!(
            "{} distinct address(es); CONFIG.try_get() = {:?}",
            addrs.len(),
            CONFIG.try_get().map(|c| c.name)
        ),
    );

    conclude(
        "f runs exactly once, a panicking f counts as done, and everyone else waits for it, \
         threads and tasks in the same queue",
    );
}

// ----- 7. Pool --------------------------------------------------------------------------------

/// Serves 400 requests on 4 threads with buffers from `pool`: one request in 50 needs 1 MiB,
/// the rest 2 KiB. Returns how many buffers the pool then retains, how many of them hold
/// over 64 KiB, and their total capacity.
fn serve(pool: &Arc<Pool<Vec<u8>>>) -> (usize, usize, usize) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    let mut buf = pool.get_guard();
                    let size = if (t * 100 + i) % 50 == 7 {
                        1 << 20
                    } else {
                        2 << 10
                    };
                    buf.clear();
                    buf.resize(size, b'x'); // the request's response is written here
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut kept = Vec::new();
    while let Some(buf) = pool.try_get() {
        kept.push(buf);
    }
    let bytes = kept.iter().map(Vec::capacity).sum();
    let huge = kept.iter().filter(|b| b.capacity() > 64 << 10).count();
    let n = kept.len();
    for buf in kept {
        pool.put(buf);
    }
    (n, huge, bytes)
}

fn pool() {
    step("a pool of response buffers, 400 requests on 4 threads, 1 in 50 needs 1 MiB");
    let plain = Arc::new(Pool::new(|| Vec::with_capacity(2 << 10)));
    let (n, huge, bytes) = serve(&plain);
    say(
        "no keep",
        format!(
            "the pool retains {n} buffer(s), {huge} of them over 64 KiB: {} KiB in all",
            bytes >> 10
        ),
    );

    step("the same with go#23199's fix: keep only buffers up to 64 KiB");
    let keep = Arc::new(
        Pool::new(|| Vec::with_capacity(2 << 10)).with_keep(|b: &Vec<u8>| b.capacity() <= 64 << 10),
    );
    let (n, huge, bytes) = serve(&keep);
    say(
        "keep <= 64K",
        format!(
            "the pool retains {n} buffer(s), {huge} of them over 64 KiB: {} KiB in all",
            bytes >> 10
        ),
    );

    step("a bound: with_max_retained(2) keeps at most two, whatever is put back");
    let bounded = Pool::new(Vec::<u8>::new).with_max_retained(2);
    for _ in 0..5 {
        bounded.put(Vec::with_capacity(16));
    }
    say("bounded", format!("put 5, len() = {}", bounded.len()));
    let a = bounded.get();
    let b = bounded.get();
    let c = bounded.get(); // the pool is empty: `new` makes this one
    say(
        "bounded",
        format!(
            "get x3: capacities {}, {}, {} (the last one is new)",
            a.capacity(),
            b.capacity(),
            c.capacity()
        ),
    );
    conclude(
        "a pool saves allocations, but it keeps what it is given: a keep predicate and a bound \
         decide what may stay, since no garbage collector empties it here",
    );
}
