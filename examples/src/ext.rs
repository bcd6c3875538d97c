//! The course's extended synchronization primitives (chapter 01, "扩展同步原语"): the weighted
//! semaphore, singleflight, errgroup, the recursive locks, the spin lock and the file lock.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread;

use gosync::context::{self, ContextError};
use gosync::filelock::FileLock;
use gosync::semaphore::Weighted;

use crate::out::{block_on, conclude, ms, nap, nap_async, runtime, say, step, wait_until};
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
        n = if n.is_multiple_of(2) { n / 2 } else { 3 * n + 1 };
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

// ----- 6. File lock ---------------------------------------------------------------------------

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
