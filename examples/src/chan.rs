//! The course's channel chapter (chapter 03, "Channel"): the table of channel states, the
//! channel-backed mutex, select with timeouts, and the channel patterns — pipeline, fan-in,
//! fan-out, or-done, or, tee and bridge — with threads and async tasks on the same channels.
//!
//! The patterns stop when their done channel is closed; where a scenario says how many pattern
//! threads are left, it counts the threads the patterns started, by name, in `/proc`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::chan::{Chan, Receiver, SendError, TryRecvError, TrySendError};
use gosync::context;
use gosync::pattern::{
    self, Bridge, ChanMutex, Driver, Filter, Flow, Generator, LockBy, Map, Or, Stage, Take, Tee,
};
use gosync::sync::Mutex;
use gosync::time::{self, Ticker, Timer};
use gosync::{select, select_async};

use crate::out::{
    block_on, catch, conclude, ms, nap, nap_async, quiet_panics, runtime, say, step, wait_until,
};
use crate::Scenario;

/// The scenarios of this family, in the course's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "chan-table",
        title:
            "The table of channel states: nil, empty, half full, full, closed x recv, send, close",
        go: "the course's table: what <-ch, ch <- v and close(ch) do in each state",
        watch: "nil blocks for ever; an empty or full channel blocks until a peer comes; close of \
                nil or closed panics with Go's message; send on closed gives the value back \
                (Go panics); one close wakes every blocked receiver and sender",
        run: table,
    },
    Scenario {
        name: "chan-mutex",
        title: "A mutex made of a channel, both of the course's ways",
        go: "Mutex{ch}: `<-m.ch` to lock (a token), or `m.ch <- struct{}{}` to lock (a slot); \
             TryLock, TryLock(timeout), IsLocked",
        watch: "no increment lost under 8 threads with either variant; try_lock fails at once \
                and lock_timeout after its timeout while the lock is held",
        run: chan_mutex,
    },
    Scenario {
        name: "select-timeout",
        title: "select with timeouts, default, a Ticker, a Timer and ctx.Done()",
        go: "select { case <-ch: case <-time.After(d): case <-ctx.Done(): default: }",
        watch: "a slow reply loses to time.After; ready arms are chosen evenly; a worker loop \
                mixes jobs, ticker heartbeats and the context's end; a task's watchdog Timer \
                fires after the last event",
        run: select_timeout,
    },
    Scenario {
        name: "or-done",
        title: "orDone: a plain range loop that still stops on done",
        go: "orDone(done, c), and the goroutine leak it prevents",
        watch: "the consumer's `for v in &values` ends when done closes; a producer that does \
                not listen to done is left blocked until its channel is closed; or_done on a \
                context's done channel",
        run: or_done,
    },
    Scenario {
        name: "or",
        title: "or: the first of N done channels stops everything",
        go: "or(channels...) (goroutine, recursive and reflect.Select versions)",
        watch: "closing one of five done channels stops 3 threads and 2 tasks and leaves the \
                others untouched; 1000 channels take one thread, or no thread as a task",
        run: or,
    },
    Scenario {
        name: "fan-in",
        title: "fan-in: many producers, threads and tasks, merged into one channel",
        go: "fanIn(chans...) (goroutine, recursive and reflect.Select versions)",
        watch: "every value arrives once, in its producer's order; values interleave as they \
                come; endless producers stop on done",
        run: fan_in,
    },
    Scenario {
        name: "fan-out",
        title: "fan-out: broadcast, lossy broadcast, round-robin, a worker pool",
        go: "fanOut(ch, out, async), fanOutReflect, the round-robin fanOut",
        watch: "broadcast: every subscriber gets everything; lossy: the slow one misses values; \
                round-robin: value k to worker k mod n; a pool of 4 shares 40 jobs",
        run: fan_out,
    },
    Scenario {
        name: "tee",
        title: "tee: one channel into two, each getting every value",
        go: "tee(done, in)",
        watch: "both consumers see the same values in the same order; the fast one goes at the \
                slow one's pace; a consumer that leaves does not stop the other",
        run: tee,
    },
    Scenario {
        name: "pipeline",
        title: "pipeline: generator -> map -> filter -> take, on threads, then as tokio tasks",
        go: "gen(nums...) -> sq(in), and the stream stages take, skip, map, filter",
        watch: "take(5) gets the first five odd squares; the endless generator is held back by \
                unbuffered channels and stopped by done; the task pipeline leaves no task running",
        run: pipeline,
    },
    Scenario {
        name: "bridge",
        title: "channels over a channel, and bridge: a channel of channels flattened",
        go: "the course's doStuff with `chan chan time.Duration`; bridge(done, chanStream)",
        watch: "each worker answers on the channel it was handed; the bridge drains stream after \
                stream in order, later streams waiting their turn; an endless stream of streams \
                stops on done",
        run: bridge,
    },
];

// ----- helpers --------------------------------------------------------------------------------

/// A done channel that never fires: the nil channel.
fn never() -> Receiver<()> {
    Chan::nil().receiver()
}

/// The threads the patterns started and that are still running: those named `gosync-...`
/// other than the timer thread (an unnamed thread inherits the process name, `gosync-tour`).
/// `None` where threads cannot be listed (no `/proc`).
fn pattern_threads() -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let count = tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| {
                let name = name.trim_end();
                // Not the tour's own, the timer's, nor errgroup's pooled (idle) threads.
                name.starts_with("gosync-")
                    && !matches!(name, "gosync-tour" | "gosync-timer" | "gosync-errgroup")
            })
        })
        .count();
    Some(count)
}

/// The number of pattern threads, once it has settled at `expected` (threads take a moment to
/// start and to end; after five seconds, whatever it is).
fn pattern_threads_at(expected: usize) -> String {
    if pattern_threads().is_none() {
        return "(threads cannot be counted here)".to_string();
    }
    wait_until(|| pattern_threads() == Some(expected));
    pattern_threads().map_or("?".to_string(), |n| n.to_string())
}

/// Says how many pattern threads are left, once they have had time to end.
fn threads_left(who: &str) {
    say(
        who,
        format!("pattern threads left: {}", pattern_threads_at(0)),
    );
}

/// Milliseconds, for printing.
fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

// ----- 1. The table of channel states ---------------------------------------------------------

/// The columns of the course's table.
const STATES: [&str; 5] = ["nil", "empty", "half full", "full", "closed"];

/// A fresh channel of capacity 2 in `state`.
fn in_state(state: &str) -> Chan<u32> {
    let ch = match state {
        "nil" => return Chan::nil(),
        _ => Chan::new(2),
    };
    let values: &[u32] = match state {
        "half full" | "closed" => &[1],
        "full" => &[1, 2],
        _ => &[],
    };
    for &v in values {
        ch.send(v).unwrap();
    }
    if state == "closed" {
        ch.close();
    }
    ch
}

/// What a receive does on `ch`, found out live.
fn recv_cell(ch: &Chan<u32>) -> String {
    match ch.try_recv() {
        Ok(v) if ch.is_closed() => format!(
            "try_recv() = Ok({v}), then recv() = {:?}: drains the buffer, then reports closed \
             (Go: zero value, ok == false)",
            ch.recv()
        ),
        Ok(v) => format!("try_recv() = Ok({v}): receives"),
        Err(TryRecvError::Closed) => "try_recv() = Err(Closed)".to_string(),
        Err(TryRecvError::Empty) if ch.is_nil() => {
            let waited = select! {
                recv(ch) -> v => format!("recv() returned {v:?} (unexpected)"),
                recv(time::after(ms(20))) -> _ => format!(
                    "recv() still blocked after {:?}: for ever, nothing can send on nil",
                    ms(20)
                ),
            };
            format!("try_recv() = Err(Empty); {waited}")
        }
        Err(TryRecvError::Empty) => {
            let tx = ch.sender();
            let sender = thread::spawn(move || {
                nap(20);
                tx.send(7).unwrap();
            });
            let t = Instant::now();
            let v = ch.recv();
            sender.join().unwrap();
            format!(
                "try_recv() = Err(Empty); recv() blocks until a thread sends: {v:?} after {}",
                millis(t.elapsed())
            )
        }
    }
}

/// What a send does on `ch`, found out live.
fn send_cell(ch: &Chan<u32>) -> String {
    match ch.try_send(3) {
        Ok(()) => format!("try_send(3) = Ok(()): sends, len() = {}", ch.len()),
        Err(TrySendError::Closed(v)) => match ch.send(v) {
            Err(SendError(back)) => format!(
                "try_send(3) = Err(Closed(3)); send(3) = Err(\"send on closed channel\") with \
                 {back} given back (Go panics)"
            ),
            Ok(()) => "send(3) = Ok(()) (unexpected)".to_string(),
        },
        Err(TrySendError::Full(v)) if ch.is_nil() => {
            let waited = select! {
                send(ch, v) -> r => format!("send(3) returned {r:?} (unexpected)"),
                recv(time::after(ms(20))) -> _ => format!(
                    "send(3) still blocked after {:?}: for ever, nothing can receive from nil",
                    ms(20)
                ),
            };
            format!("try_send(3) = Err(Full(3)); {waited}")
        }
        Err(TrySendError::Full(v)) => {
            let rx = ch.receiver();
            let receiver = thread::spawn(move || {
                nap(20);
                rx.recv()
            });
            let t = Instant::now();
            let r = ch.send(v);
            let took = t.elapsed();
            let taken = receiver.join().unwrap();
            format!(
                "try_send(3) = Err(Full(3)); send(3) blocks until a thread receives (it took \
                 {taken:?}): {r:?} after {}",
                millis(took)
            )
        }
    }
}

/// What a close does on `ch`, found out live.
fn close_cell(ch: &Chan<u32>) -> String {
    match catch(|| ch.close()) {
        Err(msg) => format!("close() panicked: \"{msg}\""),
        Ok(()) => {
            let rest: Vec<u32> = ch.iter().collect();
            format!(
                "closes; receivers get {rest:?}, then None; try_send(3) = {:?}",
                ch.try_send(3)
            )
        }
    }
}

fn table() {
    let rt = runtime();

    step(
        "five fresh channels of capacity 2 per row: nil, empty, half full (1), full (1, 2), \
         closed (with 1 still buffered)",
    );
    for s in STATES {
        say(s, format!("{:?}", in_state(s)));
    }

    step("receive: <-ch");
    for s in STATES {
        say(s, recv_cell(&in_state(s)));
    }

    step("send: ch <- 3");
    for s in STATES {
        say(s, send_cell(&in_state(s)));
    }

    step("close(ch)");
    let quiet = quiet_panics();
    for s in STATES {
        say(s, close_cell(&in_state(s)));
    }
    drop(quiet);

    step("one close wakes everyone blocked: 2 threads and a task in recv, a thread in send");
    let quit: Chan<()> = Chan::new(0);
    let full = in_state("full");
    let mut threads = Vec::new();
    for i in 0..2 {
        let quit = quit.clone();
        threads.push(thread::spawn(move || {
            let v = quit.recv();
            say(&format!("receiver-{i}"), format!("quit.recv() = {v:?}"));
        }));
    }
    let task = {
        let quit = quit.clone();
        rt.spawn(async move {
            let v = quit.recv_async().await;
            say("receiver-task", format!("quit.recv_async() = {v:?}"));
        })
    };
    threads.push({
        let full = full.clone();
        thread::spawn(move || {
            let r = full.send(9);
            let what = match r {
                Err(SendError(v)) => format!("Err(\"send on closed channel\"), {v} given back"),
                Ok(()) => "Ok(()) (unexpected)".to_string(),
            };
            say("sender", format!("full.send(9) = {what}"));
        })
    });
    // Three receivers wait on `quit` (the task counts once it is polled), one sender on `full`.
    nap(20);
    say("main", "quit.close(); full.close()");
    quit.close();
    full.close();
    for t in threads {
        t.join().unwrap();
    }
    block_on(&rt, task).unwrap();
    say(
        "main",
        format!(
            "full still holds {:?} for receivers",
            full.iter().collect::<Vec<_>>()
        ),
    );

    conclude(
        "the course's table holds cell for cell, with Go's panic messages for close; the one \
         change: a send on a closed channel returns the value instead of panicking",
    );
}

// ----- 2. The channel mutex -------------------------------------------------------------------

fn chan_mutex() {
    const THREADS: u64 = 8;
    const N: u64 = 250;
    let mut totals = Vec::new();
    for by in [LockBy::Recv, LockBy::Send] {
        let how = match by {
            LockBy::Recv => "a full channel holds a token: lock receives it, unlock puts it back",
            LockBy::Send => "an empty channel with one slot: lock fills it, unlock empties it",
        };
        step(&format!("LockBy::{by:?} ({how})"));
        let m = Arc::new(ChanMutex::with_lock_by(by));
        say("main", format!("{m:?}"));

        // A read-modify-write in two steps: correct only if the lock excludes.
        let counter = Arc::new(AtomicU64::new(0));
        let t = Instant::now();
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (m, counter) = (m.clone(), counter.clone());
                thread::spawn(move || {
                    for _ in 0..N {
                        m.lock();
                        let v = counter.load(Relaxed);
                        counter.store(v + 1, Relaxed);
                        m.unlock();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let total = counter.load(Relaxed);
        totals.push(total);
        say(
            "main",
            format!(
                "{THREADS} threads x {N} locked increments: counter = {total} (in {})",
                millis(t.elapsed())
            ),
        );

        let holder = {
            let m = m.clone();
            thread::spawn(move || {
                m.lock();
                say("holder", "locked; holds it for 60 ms");
                nap(60);
                say("holder", "unlock()");
                m.unlock();
            })
        };
        wait_until(|| m.is_locked());
        let (locked, got) = (m.is_locked(), m.try_lock());
        say(
            "main",
            format!("is_locked() = {locked}, try_lock() = {got}"),
        );
        if got {
            m.unlock(); // the holder was already gone: not expected
        }
        let t = Instant::now();
        let got = m.lock_timeout(ms(20));
        say(
            "main",
            format!(
                "lock_timeout({:?}) = {got} after {}",
                ms(20),
                millis(t.elapsed())
            ),
        );
        if got {
            m.unlock(); // as above
        }
        let t = Instant::now();
        let got = m.lock_timeout(ms(1000));
        say(
            "main",
            format!(
                "lock_timeout({:?}) = {got} after {}: the holder let go",
                ms(1000),
                millis(t.elapsed())
            ),
        );
        if got {
            m.unlock();
        }
        holder.join().unwrap();
    }

    step("unlock of an unlocked channel mutex");
    let quiet = quiet_panics();
    let m = ChanMutex::new();
    match catch(|| m.unlock()) {
        Err(msg) => say(
            "main",
            format!("unlock() panicked: \"{msg}\" (the course's: \"unlock of unlocked mutex\")"),
        ),
        Ok(()) => say("main", "unlock() returned (unexpected)"),
    }
    drop(quiet);

    conclude(if totals.iter().all(|&t| t == THREADS * N) {
        "a channel of capacity 1 is a lock either way round, and its timeouts are one select; \
         for a plain lock, sync::Mutex is faster"
    } else {
        "UPDATES WERE LOST: the channel mutex did not exclude"
    });
}

// ----- 3. select ------------------------------------------------------------------------------

fn select_timeout() {
    let rt = runtime();

    step("a request that takes 60 ms, asked with a 20 ms and then a 200 ms timeout");
    for timeout in [20, 200] {
        // Room for one reply, so a server answering too late does not block for ever.
        let reply: Chan<&str> = Chan::new(1);
        let server = {
            let reply = reply.clone();
            thread::spawn(move || {
                nap(60);
                reply.send("pong").unwrap();
            })
        };
        let t = Instant::now();
        select! {
            recv(reply) -> r => say("main", format!("got {r:?} after {}", millis(t.elapsed()))),
            recv(time::after(ms(timeout))) -> _ => say(
                "main",
                format!("timed out after {} (time.After({:?}))", millis(t.elapsed()), ms(timeout)),
            ),
        }
        server.join().unwrap();
    }

    step("10000 selects over two channels that are always ready (both closed)");
    let (a, b) = (Chan::<()>::new(0), Chan::<()>::new(0));
    a.close();
    b.close();
    let (mut na, mut nb) = (0, 0);
    for _ in 0..10_000 {
        select! {
            recv(a) -> _ => na += 1,
            recv(b) -> _ => nb += 1,
        }
    }
    say(
        "main",
        format!("arm a ran {na} times, arm b {nb} times: chosen at random"),
    );

    step("default: a select that does not wait");
    let jobs: Chan<u32> = Chan::new(1);
    let poll = |jobs: &Chan<u32>| {
        select! {
            recv(jobs) -> j => format!("got job {j:?}"),
            default => "nothing ready, default ran".to_string(),
        }
    };
    say("main", poll(&jobs));
    jobs.send(1).unwrap();
    say("main", format!("after jobs.send(1): {}", poll(&jobs)));

    step("a worker loop: jobs every 30 ms, a Ticker every 40 ms, a context that ends at 130 ms");
    let (ctx, cancel) = context::with_timeout(&context::background(), ms(130));
    let jobs: Chan<u32> = Chan::new(0);
    let producer = {
        let (ctx, jobs) = (ctx.clone(), jobs.clone());
        thread::spawn(move || {
            for j in 1.. {
                nap(30);
                select! {
                    send(jobs, j) -> _ => {},
                    recv(ctx.done()) -> _ => break,
                }
            }
            say("producer", "stops: ctx is done");
        })
    };
    let ticker = Ticker::new(ms(40));
    let (mut done_jobs, mut beats) = (0, 0);
    loop {
        select! {
            recv(jobs) -> j => {
                done_jobs += 1;
                say("worker", format!("job {}", j.unwrap_or_default()));
            },
            recv(ticker.c()) -> _ => {
                beats += 1;
                say("worker", "heartbeat (ticker)");
            },
            recv(ctx.done()) -> _ => {
                say("worker", format!("recv(ctx.done()) fired: {:?}", ctx.err()));
                break;
            },
        }
    }
    ticker.stop();
    cancel.cancel();
    producer.join().unwrap();
    say(
        "worker",
        format!("{done_jobs} jobs, {beats} heartbeats before the deadline"),
    );

    step("in a tokio task: select_async! with a watchdog Timer reset by each event");
    let events: Chan<u32> = Chan::new(0);
    let source = {
        let events = events.clone();
        rt.spawn(async move {
            for e in 1..=4 {
                time::sleep_async(ms(10)).await;
                if events.send_async(e).await.is_err() {
                    break; // the watcher has left
                }
            }
            // Then silence (the channel stays open).
        })
    };
    let watcher = rt.spawn(async move {
        let watchdog = Timer::new(ms(30));
        loop {
            select_async! {
                recv(events) -> e => {
                    say("watcher-task", format!("event {e:?}; watchdog.reset({:?})", ms(30)));
                    watchdog.reset(ms(30));
                },
                recv(watchdog.c()) -> _ => {
                    say("watcher-task", format!("no event for {:?}: the watchdog fired", ms(30)));
                    break;
                },
            }
        }
        // Leaving: a source still sending gets an error instead of waiting for ever.
        events.close();
    });
    block_on(&rt, source).unwrap();
    block_on(&rt, watcher).unwrap();

    conclude(
        "a timeout, a tick or a context's end is one more arm of a select, in threads \
         (select!) and tasks (select_async!) alike",
    );
}

// ----- 4. or-done -----------------------------------------------------------------------------

fn or_done() {
    step(
        "a slow endless producer; the consumer ranges over or_done(done, input); main closes done",
    );
    let done = Chan::new(0);
    let mut n = 0u64;
    let input = pattern::generator(done.receiver(), move || {
        nap(5);
        n += 1;
        Some(n)
    });
    let values = pattern::or_done(done.receiver(), input);
    say(
        "main",
        format!(
            "pattern threads running: {} (the generator, or_done)",
            pattern_threads_at(2)
        ),
    );
    let consumer = thread::spawn(move || {
        let (mut count, mut last) = (0, 0);
        for v in &values {
            count += 1;
            last = v;
        }
        say(
            "consumer",
            format!("`for v in &values` ended after {count} values (the last {last})"),
        );
    });
    nap(50);
    say("main", "done.close()");
    done.close();
    consumer.join().unwrap();
    threads_left("main");

    step("the leak or_done cannot prevent: a producer that does not listen to done");
    let src = Chan::new(0);
    let producer = Generator::new(never(), 1u64.., src.sender()).spawn();
    let done = Chan::new(0);
    let values = pattern::or_done(done.receiver(), src.receiver());
    let first: Vec<u64> = values.iter().take(3).collect();
    say("main", format!("took {first:?}; done.close()"));
    done.close();
    say(
        "main",
        format!(
            "pattern threads running: {} — the producer, blocked for ever in its send \
             (Go's goroutine leak)",
            pattern_threads_at(1)
        ),
    );
    say(
        "main",
        "src.close(): the consumer has left; the blocked send gets Err and the producer ends",
    );
    src.close();
    producer.join().unwrap();
    threads_left("main");

    step("done from a context: or_done(ctx.done_chan(), ...) with a 40 ms timeout");
    let (ctx, cancel) = context::with_timeout(&context::background(), ms(40));
    let values = pattern::or_done(
        ctx.done_chan(),
        pattern::repeat(ctx.done_chan(), vec!["tick", "tock"]),
    );
    let count = values.iter().count();
    say(
        "main",
        format!(
            "received {count} values, then the channel closed: ctx.err() = {:?}",
            ctx.err()
        ),
    );
    cancel.cancel();
    threads_left("main");

    conclude(
        "or_done turns `select { case <-done: case v := <-c: }` into a plain loop; everything \
         upstream must listen to done too, or be told by a close that its consumer left",
    );
}

// ----- 5. or ----------------------------------------------------------------------------------

fn or() {
    let rt = runtime();

    step(
        "5 done channels: 4 plain ones and a context's (1 s timeout); 3 threads and 2 tasks work \
         until or() fires",
    );
    let names = ["user-cancel", "shutdown", "sigterm", "admin"];
    let dones: Vec<Chan<()>> = names.iter().map(|_| Chan::new(0)).collect();
    let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_secs(1));
    let mut receivers: Vec<Receiver<()>> = dones.iter().map(Chan::receiver).collect();
    receivers.push(ctx.done_chan());
    let stop = pattern::or(&receivers);
    say(
        "main",
        format!(
            "pattern threads running: {} (one or() thread on all 5)",
            pattern_threads_at(1)
        ),
    );
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut steps = 0;
                loop {
                    select! {
                        recv(stop) -> _ => break,
                        recv(time::after(ms(10))) -> _ => steps += 1,
                    }
                }
                say(
                    &format!("worker-{i}"),
                    format!("stopped after {steps} steps"),
                );
            })
        })
        .collect();
    let tasks: Vec<_> = (3..5)
        .map(|i| {
            let stop = stop.clone();
            rt.spawn(async move {
                let mut steps = 0;
                loop {
                    select_async! {
                        recv(stop) -> _ => break,
                        recv(time::after(ms(10))) -> _ => steps += 1,
                    }
                }
                say(
                    &format!("worker-{i}"),
                    format!("(a task) stopped after {steps} steps"),
                );
            })
        })
        .collect();
    nap(45);
    say("main", "shutdown.close()");
    dones[1].close();
    for t in threads {
        t.join().unwrap();
    }
    for t in tasks {
        block_on(&rt, t).unwrap();
    }
    let states: Vec<String> = names
        .iter()
        .zip(&dones)
        .map(|(name, d)| format!("{name}: {}", if d.is_closed() { "closed" } else { "open" }))
        .collect();
    say(
        "main",
        format!("{}; ctx.err() = {:?}", states.join(", "), ctx.err()),
    );
    cancel.cancel();
    threads_left("main");

    step("or() over 1000 done channels: still one thread and one select");
    let dones: Vec<Chan<()>> = (0..1000).map(|_| Chan::new(0)).collect();
    let receivers: Vec<Receiver<()>> = dones.iter().map(Chan::receiver).collect();
    let stop = pattern::or(&receivers);
    say(
        "main",
        format!(
            "pattern threads running: {} (Go's goroutine version: 1001 goroutines, the \
             recursive one about 1000)",
            pattern_threads_at(1)
        ),
    );
    let t = Instant::now();
    dones[777].close();
    let v = stop.recv();
    say(
        "main",
        format!(
            "dones[777].close(): stop.recv() = {v:?} after {}",
            millis(t.elapsed())
        ),
    );
    threads_left("main");

    step("the same as a tokio task: Or::new(dones, out).run_async(), no thread at all");
    let out = Chan::new(0);
    let task = rt.spawn(Or::new(receivers, out.sender()).run_async());
    nap(5);
    say(
        "main",
        format!("pattern threads running: {}", pattern_threads_at(0)),
    );
    say(
        "main",
        format!(
            "the channels are reused, dones[777] is closed: out.recv() = {:?}",
            out.recv()
        ),
    );
    block_on(&rt, task).unwrap();

    conclude(
        "one closed done channel out of N stops every worker, thread or task; or() waits on \
         all N in one select, and leaves nothing running",
    );
}

// ----- 6. fan-in ------------------------------------------------------------------------------

fn fan_in() {
    let rt = runtime();

    step(
        "4 producers (2 threads, 2 tasks) send 6 values each, every 2, 3, 5 and 8 ms; fan_in \
         merges them",
    );
    let paces = [2, 3, 5, 8];
    let inputs: Vec<Chan<(usize, u32)>> = paces.iter().map(|_| Chan::new(0)).collect();
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for (p, (ch, pace)) in inputs.iter().zip(paces).enumerate() {
        let ch = ch.clone();
        if p < 2 {
            threads.push(thread::spawn(move || {
                for i in 0..6 {
                    nap(pace);
                    ch.send((p, i)).unwrap();
                }
                ch.close();
            }));
        } else {
            tasks.push(rt.spawn(async move {
                for i in 0..6 {
                    nap_async(pace).await;
                    ch.send_async((p, i)).await.unwrap();
                }
                ch.close();
            }));
        }
    }
    let merged = pattern::fan_in(never(), inputs.iter().map(Chan::receiver).collect());
    let (mut tally, mut next) = ([0usize; 4], [0u32; 4]);
    let mut in_order = true;
    let mut arrivals = Vec::new();
    for (p, i) in &merged {
        in_order &= i == next[p];
        next[p] = i + 1;
        tally[p] += 1;
        arrivals.push(p.to_string());
    }
    for t in threads {
        t.join().unwrap();
    }
    for t in tasks {
        block_on(&rt, t).unwrap();
    }
    say(
        "main",
        format!("arrivals by producer: {}", arrivals.join(" ")),
    );
    say(
        "main",
        format!(
            "per producer: {tally:?}, total {}; each producer's values in its order: {in_order}",
            tally.iter().sum::<usize>()
        ),
    );
    threads_left("main");

    step("3 endless producers (repeat) merged; done closes after 30 values");
    let done = Chan::new(0);
    let producers: Vec<Receiver<usize>> = (0..3)
        .map(|p| pattern::repeat(done.receiver(), vec![p]))
        .collect();
    let merged = pattern::fan_in(done.receiver(), producers);
    say(
        "main",
        format!(
            "pattern threads running: {} (3 producers, the fan-in)",
            pattern_threads_at(4)
        ),
    );
    let mut tally = [0usize; 3];
    for p in merged.iter().take(30) {
        tally[p] += 1;
    }
    say(
        "main",
        format!("the first 30 by producer: {tally:?} (ready inputs are picked at random)"),
    );
    done.close();
    threads_left("main");

    conclude(
        "fan_in waits on every input in one select: nothing lost, nothing reordered within a \
         producer, threads and tasks merged alike",
    );
}

// ----- 7. fan-out -----------------------------------------------------------------------------

fn fan_out() {
    let rt = runtime();

    step("broadcast (fan_out): 2 thread subscribers and a task subscriber, values 1..=10");
    let outs = pattern::fan_out(never(), pattern::from_iter(never(), 1..=10u32), 3);
    let mut outs = outs.into_iter();
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let rx = outs.next().unwrap();
            thread::spawn(move || {
                let got: Vec<u32> = rx.iter().collect();
                say(
                    &format!("subscriber-{i}"),
                    format!("got {} values, sum {}", got.len(), got.iter().sum::<u32>()),
                );
            })
        })
        .collect();
    let task = {
        let rx = outs.next().unwrap();
        rt.spawn(async move {
            let (mut n, mut sum) = (0, 0);
            while let Some(v) = rx.recv_async().await {
                n += 1;
                sum += v;
            }
            say(
                "subscriber-2",
                format!("(a task) got {n} values, sum {sum}"),
            );
        })
    };
    for t in threads {
        t.join().unwrap();
    }
    block_on(&rt, task).unwrap();

    step(
        "lossy broadcast (fan_out_lossy, room for 2 each): 40 values, 1 ms apart; one subscriber \
         takes 4 ms per value",
    );
    let input = Chan::new(0);
    let outs = pattern::fan_out_lossy(never(), input.receiver(), 2, 2);
    let readers: Vec<_> = outs
        .into_iter()
        .zip([Duration::ZERO, Duration::from_millis(4)])
        .map(|(rx, work)| {
            thread::spawn(move || {
                let mut got = Vec::new();
                for v in &rx {
                    thread::sleep(work);
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for v in 0..40u32 {
        input.send(v).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    input.close();
    for (who, r) in ["fast", "slow"].into_iter().zip(readers) {
        let got = r.join().unwrap();
        let head: Vec<String> = got.iter().take(12).map(u32::to_string).collect();
        say(
            who,
            format!("got {} of 40: {} ...", got.len(), head.join(" ")),
        );
    }

    step("round-robin (fan_out_round_robin): values 0..12 dealt to 3 workers");
    let outs = pattern::fan_out_round_robin(never(), pattern::from_iter(never(), 0..12u32), 3);
    let workers: Vec<_> = outs
        .into_iter()
        .map(|rx| thread::spawn(move || rx.iter().collect::<Vec<u32>>()))
        .collect();
    for (i, w) in workers.into_iter().enumerate() {
        say(
            &format!("worker-{i}"),
            format!("got {:?}", w.join().unwrap()),
        );
    }

    step(
        "a worker pool (stage_n): 4 workers share 40 jobs of 2 ms each; results merge into one \
         channel",
    );
    let by_worker: Arc<Mutex<HashMap<thread::ThreadId, usize>>> = Arc::default();
    let work = {
        let by_worker = by_worker.clone();
        move |n: u64| {
            *by_worker.lock().entry(thread::current().id()).or_default() += 1;
            thread::sleep(ms(2));
            n * n
        }
    };
    let t = Instant::now();
    let results = pattern::stage_n(
        never(),
        pattern::from_iter(never(), 0..40u64),
        4,
        Map::new(work),
    );
    let sum: u64 = results.iter().sum();
    let took = t.elapsed();
    let mut tallies: Vec<usize> = by_worker.lock().values().copied().collect();
    tallies.sort_unstable_by(|a, b| b.cmp(a));
    say(
        "main",
        format!(
            "sum of squares = {sum} (expected {}), in {}",
            (0..40u64).map(|n| n * n).sum::<u64>(),
            millis(took)
        ),
    );
    say(
        "main",
        format!(
            "jobs per worker: {tallies:?}, {} workers, {} jobs",
            tallies.len(),
            tallies.iter().sum::<usize>()
        ),
    );
    threads_left("main");

    conclude(
        "broadcast gives everyone everything at the slowest pace, lossy lets the slow one miss, \
         round-robin deals in turn, a pool shares the work",
    );
}

// ----- 8. tee ---------------------------------------------------------------------------------

fn tee() {
    let rt = runtime();

    step("tee(done, jobs): a logger thread and a worker task (20 ms per job) each get every job");
    let jobs = pattern::from_iter(never(), (1..=4).map(|i| format!("job-{i}")));
    let (log, work) = pattern::tee(never(), jobs);
    let logger = thread::spawn(move || {
        let mut seen = Vec::new();
        for j in &log {
            say("logger", format!("logs {j}"));
            seen.push(j);
        }
        seen
    });
    let worker = rt.spawn(async move {
        let mut seen = Vec::new();
        while let Some(j) = work.recv_async().await {
            say("worker-task", format!("works on {j}"));
            nap_async(20).await;
            seen.push(j);
        }
        seen
    });
    let logged = logger.join().unwrap();
    let worked = block_on(&rt, worker).unwrap();
    say(
        "main",
        format!(
            "logger saw {logged:?}, worker saw {worked:?}: the same: {}",
            logged == worked
        ),
    );

    step("tee of an endless stream (repeat), stopped by done after 20 ms");
    let done = Chan::new(0);
    let (a, b) = pattern::tee(done.receiver(), pattern::repeat(done.receiver(), vec![1u8]));
    let left = thread::spawn(move || a.iter().count());
    let right = rt.spawn(async move {
        let mut n = 0usize;
        while b.recv_async().await.is_some() {
            n += 1;
        }
        n
    });
    nap(20);
    done.close();
    let (l, r) = (left.join().unwrap(), block_on(&rt, right).unwrap());
    say(
        "main",
        format!(
            "left (a thread) got {l}, right (a task) got {r}: {}",
            if l.abs_diff(r) <= 1 {
                "equal, or one apart (the value in flight when done fired)"
            } else {
                "NOT EQUAL (unexpected)"
            }
        ),
    );
    threads_left("main");

    step("a consumer that leaves closes its channel; the tee goes on for the other");
    let (left, right) = (Chan::new(0), Chan::new(0));
    let tee = Tee::new(
        never(),
        pattern::from_iter(never(), 1..=8u32),
        left.sender(),
        right.sender(),
    )
    .spawn();
    let quitter = thread::spawn(move || {
        let got: Vec<u32> = left.iter().take(3).collect();
        left.close();
        say("quitter", format!("took {got:?}, then left.close()"));
    });
    let all: Vec<u32> = right.iter().collect();
    quitter.join().unwrap();
    tee.join().unwrap();
    say("stayer", format!("got all of them: {all:?}"));
    threads_left("main");

    conclude(
        "tee hands every value to both sides, in the same order, at the slower side's pace; \
         a side that closes its channel drops out",
    );
}

// ----- 9. pipeline ----------------------------------------------------------------------------

fn pipeline() {
    let rt = runtime();

    step("the course's example: c := gen(2, 3); out := sq(c)");
    let c = pattern::from_iter(never(), [2, 3]);
    let out = pattern::stage(never(), c, |n: i32| Flow::Emit(n * n));
    for _ in 0..3 {
        say("main", format!("out.recv() = {:?}", out.recv()));
    }

    step("an endless generator -> map(square) -> filter(odd) -> take(5), a thread per stage");
    let done = Chan::new(0);
    let produced = Arc::new(AtomicU64::new(0));
    let naturals = {
        let produced = produced.clone();
        pattern::generator(done.receiver(), move || {
            Some(produced.fetch_add(1, Relaxed) + 1)
        })
    };
    let squares = pattern::map(done.receiver(), naturals, |n: u64| n * n);
    let odd = pattern::filter(done.receiver(), squares, |v: &u64| v % 2 == 1);
    let first = pattern::take(done.receiver(), odd, 5);
    say(
        "main",
        format!("pattern threads running: {}", pattern_threads_at(4)),
    );
    let got: Vec<u64> = first.iter().collect();
    say("main", format!("take(5) = {got:?}"));
    say(
        "main",
        format!(
            "take has ended; still running: {} (generator, map, filter: blocked sending)",
            pattern_threads_at(3)
        ),
    );
    done.close();
    threads_left("main");
    say(
        "main",
        format!(
            "the generator made {} numbers in all, for the 9 needed: unbuffered channels held it \
             back",
            produced.load(Relaxed)
        ),
    );

    step("the same pipeline as 4 tokio tasks (Driver::run_async); the main thread consumes");
    let done = Chan::new(0);
    let (naturals, squares, odd, first) = (Chan::new(0), Chan::new(0), Chan::new(0), Chan::new(0));
    let tasks = [
        rt.spawn(Generator::new(done.receiver(), 1u64.., naturals.sender()).run_async()),
        rt.spawn(
            Stage::new(
                done.receiver(),
                naturals.receiver(),
                squares.sender(),
                Map::new(|n: u64| n * n),
            )
            .run_async(),
        ),
        rt.spawn(
            Stage::new(
                done.receiver(),
                squares.receiver(),
                odd.sender(),
                Filter::new(|v: &u64| v % 2 == 1),
            )
            .run_async(),
        ),
        rt.spawn(
            Stage::new(
                done.receiver(),
                odd.receiver(),
                first.sender(),
                Take::new(5),
            )
            .run_async(),
        ),
    ];
    let got: Vec<u64> = first.iter().collect();
    say("main", format!("for v in &first: {got:?}"));
    wait_until(|| tasks[3].is_finished());
    let running = || tasks.iter().filter(|t| !t.is_finished()).count();
    say("main", format!("tasks still running: {}", running()));
    done.close();
    wait_until(|| running() == 0);
    say(
        "main",
        format!("done.close(): tasks still running: {}", running()),
    );
    for t in tasks {
        block_on(&rt, t).unwrap();
    }

    step("reduce: the sum of take(100) of an endless generator, then done.close()");
    let done = Chan::new(0);
    let total = pattern::reduce(
        done.receiver(),
        pattern::take(
            done.receiver(),
            pattern::from_iter(done.receiver(), 1u64..),
            100,
        ),
        0,
        |acc, v| acc + v,
    );
    say("main", format!("reduce(...) = {total:?}"));
    done.close();
    threads_left("main");

    conclude(
        "each stage is a loop between two channels that stops on done; the same stages run as \
         threads or as tasks, and unbuffered channels pace the whole pipeline",
    );
}

// ----- 10. channels over a channel, bridge ----------------------------------------------------

fn bridge() {
    let rt = runtime();

    step(
        "the course's doStuff: 5 workers (3 threads, 2 tasks) each take a reply channel from \
         sendCh, sleep, answer on it",
    );
    let send_ch: Chan<Chan<Duration>> = Chan::new(0);
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..5u64 {
        let send_ch = send_ch.clone();
        let t = ms(10 * (i + 1));
        if i < 3 {
            threads.push(thread::spawn(move || {
                let ac = send_ch.recv().unwrap();
                thread::sleep(t);
                ac.send(t).unwrap();
            }));
        } else {
            tasks.push(rt.spawn(async move {
                let ac = send_ch.recv_async().await.unwrap();
                tokio::time::sleep(t).await;
                ac.send_async(t).await.unwrap();
            }));
        }
    }
    let recv_ch: Chan<Duration> = Chan::new(0);
    for _ in 0..5 {
        send_ch.send(recv_ch.clone()).unwrap();
    }
    say("main", "sent recvCh on sendCh 5 times");
    for _ in 0..5 {
        say(
            "main",
            format!("slept for {:?}", recv_ch.recv().unwrap_or_default()),
        );
    }
    for t in threads {
        t.join().unwrap();
    }
    for t in tasks {
        block_on(&rt, t).unwrap();
    }

    step(
        "bridge: 3 streams on one channel; stream 1 is slow (10 ms per value), 2 and 3 are ready \
         at once",
    );
    let streams: Chan<Receiver<String>> = Chan::new(3);
    let slow = Chan::new(0);
    let slow_producer = {
        let slow = slow.clone();
        thread::spawn(move || {
            for v in ["1a", "1b", "1c"] {
                nap(10);
                slow.send(v.to_string()).unwrap();
            }
            slow.close();
        })
    };
    streams.send(slow.receiver()).unwrap();
    for s in 2..=3 {
        let ready = Chan::new(3);
        for v in ["a", "b", "c"] {
            ready.send(format!("{s}{v}")).unwrap();
        }
        ready.close();
        streams.send(ready.receiver()).unwrap();
    }
    streams.close();
    let flat = pattern::bridge(never(), streams.receiver());
    let mut order = Vec::new();
    for v in &flat {
        say("main", format!("got {v}"));
        order.push(v);
    }
    slow_producer.join().unwrap();
    say("main", format!("in order: {}", order.join(" ")));

    step(
        "an endless stream of streams (a generator of from_iter channels), bridged by a tokio \
         task, stopped by done",
    );
    let done = Chan::new(0);
    let streams = {
        let inner_done = done.receiver();
        let mut k = 0u32;
        pattern::generator(done.receiver(), move || {
            k += 1;
            Some(pattern::from_iter(
                inner_done.clone(),
                [k * 10, k * 10 + 1, k * 10 + 2],
            ))
        })
    };
    let flat = Chan::new(0);
    let task = rt.spawn(Bridge::new(done.receiver(), streams, flat.sender()).run_async());
    let first: Vec<u32> = flat.iter().take(7).collect();
    say("main", format!("the first 7: {first:?}; done.close()"));
    done.close();
    block_on(&rt, task).unwrap();
    say(
        "main",
        format!(
            "the bridge task has ended; flat is closed: {}",
            flat.is_closed()
        ),
    );
    threads_left("main");

    conclude(
        "a channel can carry channels: to hand out reply channels, or to feed a bridge that \
         drains one stream after another, in order",
    );
}
