//! Smoke tests: the tour binary runs start to end and shows every scenario.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every scenario of the tour, as `family/name`.
const SCENARIOS: &[&str] = &[
    "sync/mutex",
    "sync/misuse",
    "sync/rwmutex",
    "sync/cond",
    "sync/waitgroup",
    "sync/once",
    "sync/pool",
    "ext/semaphore",
    "ext/singleflight",
    "ext/errgroup",
    "ext/reentrant",
    "ext/spinlock",
    "ext/concurrent-map",
    "ext/filelock",
    "context/timeout",
    "context/cancel",
    "context/value",
    "chan/chan-table",
    "chan/chan-mutex",
    "chan/select-timeout",
    "chan/or-done",
    "chan/or",
    "chan/fan-in",
    "chan/fan-out",
    "chan/tee",
    "chan/pipeline",
    "chan/bridge",
    "dist/lock",
    "dist/rw-lock",
    "dist/election",
];

/// Runs the tour with `args`; fails the test if it has not finished within two minutes.
fn tour(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gosync-tour"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tour binary starts");
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let give_up = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > give_up {
            child.kill().ok();
            child.wait().ok();
            panic!("the tour {args:?} did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("the tour prints UTF-8")
}

fn header(n: usize, of: usize, id: &str) -> String {
    format!("=== [{n}/{of}] {id} ===")
}

#[test]
fn full_tour_runs_and_prints_every_header() {
    let out = tour(&["--fast"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    let mut at = 0;
    for (i, id) in SCENARIOS.iter().enumerate() {
        let h = header(i + 1, SCENARIOS.len(), id);
        let found = stdout[at..]
            .find(&h)
            .unwrap_or_else(|| panic!("missing or out of order: {h}\n{stdout}"));
        at += found + h.len();
    }
    // Each scenario ends with a conclusion.
    assert_eq!(
        stdout.matches("\n  => ").count(),
        SCENARIOS.len(),
        "{stdout}"
    );
    let over = format!("Tour over: {} scenario(s)", SCENARIOS.len());
    assert!(stdout.contains(&over), "{stdout}");
    // Misuse panics were caught and silenced: nothing went to stderr.
    assert!(out.stderr.is_empty(), "stderr:\n{}", text(&out.stderr));
}

#[test]
fn tour_shows_go_messages_and_right_results() {
    let out = tour(&["--fast", "sync"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for expected in [
        "counter = 14000",
        "\"sync: unlock of unlocked mutex\"",
        "\"sync: RUnlock of unlocked RWMutex\"",
        "\"sync: negative WaitGroup counter\"",
        "\"sync: Once.Do called recursively from its own f\"",
        "c.waiters() = 10",
        "wg.wait() returned: count = 1000",
        "f ran 1 time(s)",
        "1 distinct address(es)",
        "exec Do",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    assert!(
        !stdout.lines().any(|l| l.trim_end().ends_with("exec here")),
        "the second Once f ran:\n{stdout}"
    );
    assert!(!stdout.contains("unexpected"), "{stdout}");
}

#[test]
fn ext_tour_shows_go_messages_and_right_results() {
    let out = tour(&[
        "--fast",
        "singleflight",
        "errgroup",
        "reentrant",
        "spinlock",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for expected in [
        // singleflight
        "meanwhile 9 callers wait for this query: 4 threads parked, 5 tasks suspended",
        "the database was queried 1 time(s) for 10 callers; 10 of 10 got shared = true",
        "call ran its own load, not waiting for the old one: Ok(\"Annie\"), shared = false",
        "done, for its own caller only: Ok(\"Ann\"), shared = false",
        "call panicked: \"database connection lost\"",
        "call panicked: \"singleflight: the shared call panicked: database connection lost\"",
        "call_async panicked: \"singleflight: the shared call panicked: database connection lost\"",
        "callers() = 0; the next call runs its own load: Ok(\"Annie\"), shared = false",
        "select's timeout arm fired",
        "later, rx.recv() = Some((Ok(\"Annie\"), true))",
        "rx2.recv_async() = Some((Ok(\"Annie\"), true))",
        // errgroup
        "wait() = Err(Status(\"/orders\", 503))",
        "ctx.err() = Some(Canceled); ctx.cause() = \"GET /orders: status 503\", the very error: downcast = Some(Status(\"/orders\", 503))",
        "try_go(download-3) = false: the group is full (active() = 2)",
        "wait_async() = Ok(())",
        // reentrant
        "depth 3: lock(), holds() = 3",
        "other is blocked: waiters() = 1",
        "\"reentrant: unlock by thread 'intruder' (",
        ") of a lock owned by thread 'main' (",
        "\"reentrant: unlock of unlocked mutex\"",
        "\"reentrant: unlock with token 2 of a lock owned by token 1\"",
        "try_lock(3) = false: owner() = Some(1), waiters() = 1",
        "re-entered at once, holds() = 2",
        "owner() = Some(2)",
        // spinlock
        "sl = Unlocked",
        "lock(): sl = Locked",
        "another thread's try_lock() = false",
        "\"spin: unlock of unlocked SpinLock\"",
        "no increment lost",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    // Counted lines: every caller of the stampede, both stopped fetches, all six downloads.
    for (expected, n) in [
        ("= Ok(\"Ann\"), shared = true", 10),
        ("stopped early: ctx.err() = Canceled", 2),
        ("started (", 6),
    ] {
        assert_eq!(
            stdout.matches(expected).count(),
            n,
            "{expected:?}:\n{stdout}"
        );
    }
    for wrong in ["unexpected", "WERE LOST", "(3 in flight)"] {
        assert!(!stdout.contains(wrong), "{wrong}:\n{stdout}");
    }
    assert!(out.stderr.is_empty(), "stderr:\n{}", text(&out.stderr));
}

#[test]
fn channel_tour_shows_go_messages_and_right_results() {
    let out = tour(&["--fast", "chan"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for expected in [
        // chan-table
        "recv() still blocked after",
        "send(3) still blocked after",
        "recv() blocks until a thread sends: Some(7)",
        "send(3) blocks until a thread receives (it took Some(1)): Ok(())",
        "send(3) = Err(\"send on closed channel\") with 3 given back",
        "close() panicked: \"close of nil channel\"",
        "close() panicked: \"close of closed channel\"",
        "receivers get [1, 2], then None",
        "quit.recv_async() = None",
        "full.send(9) = Err(\"send on closed channel\"), 9 given back",
        // chan-mutex
        "unlock() panicked: \"sync: unlock of unlocked mutex\"",
        // select-timeout
        "nothing ready, default ran",
        "after jobs.send(1): got job Some(1)",
        "recv(ctx.done()) fired: Some(DeadlineExceeded)",
        "the watchdog fired",
        // or-done, or
        "took [1, 2, 3]; done.close()",
        "user-cancel: open, shutdown: closed, sigterm: open, admin: open; ctx.err() = None",
        "dones[777].close(): stop.recv() = None",
        "out.recv() = None",
        // fan-in, fan-out
        "per producer: [6, 6, 6, 6], total 24; each producer's values in its order: true",
        "got [0, 3, 6, 9]",
        "got [1, 4, 7, 10]",
        "got [2, 5, 8, 11]",
        "sum of squares = 20540 (expected 20540)",
        ", 40 jobs",
        // tee
        "the same: true",
        "equal, or one apart",
        "took [1, 2, 3], then left.close()",
        "got all of them: [1, 2, 3, 4, 5, 6, 7, 8]",
        // pipeline
        "out.recv() = Some(4)",
        "out.recv() = Some(9)",
        "take(5) = [1, 9, 25, 49, 81]",
        "for v in &first: [1, 9, 25, 49, 81]",
        "tasks still running: 3",
        "done.close(): tasks still running: 0",
        "reduce(...) = Some(5050)",
        // bridge
        "in order: 1a 1b 1c 2a 2b 2c 3a 3b 3c",
        "the first 7: [10, 11, 12, 20, 21, 22, 30]",
        "flat is closed: true",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    // Counted lines: both mutex variants, every subscriber, every worker, every answer.
    for (expected, n) in [
        ("counter = 2000", 2),
        ("quit.recv() = None", 2),
        ("got 10 values, sum 55", 3),
        ("stopped after", 5),
        ("slept for", 5),
    ] {
        assert_eq!(
            stdout.matches(expected).count(),
            n,
            "{expected:?}:\n{stdout}"
        );
    }
    if cfg!(target_os = "linux") {
        // Every pattern ended: no scenario left a pattern thread behind.
        assert_eq!(
            stdout.matches("pattern threads left:").count(),
            13,
            "{stdout}"
        );
        for line in stdout
            .lines()
            .filter(|l| l.contains("pattern threads left:"))
        {
            assert!(
                line.ends_with("pattern threads left: 0"),
                "{line}\n{stdout}"
            );
        }
    }
    for wrong in ["unexpected", "NOT EQUAL", "WERE LOST"] {
        assert!(!stdout.contains(wrong), "{wrong}:\n{stdout}");
    }
    assert!(out.stderr.is_empty(), "stderr:\n{}", text(&out.stderr));
}

/// What the `dist` family must show, on any backend.
fn check_dist(stdout: &str) {
    for expected in [
        "10 acquisitions; fencing tokens strictly increasing: true; acquired in queue order (FIFO): true; never two holders at once: true",
        "readers inside at once: 3; the writer waited for all three and was alone: true; R4 (asked after W) entered after the writer left: true",
        "observe saw: no leader -> node-1 -> node-2 -> node-2, v2 -> node-3 -> no leader; one leader at a time: true; leaders in campaign order: true",
        "leader() = node-1",
        "has no leader",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    assert_eq!(
        stdout.matches("acquired lock, fencing token").count(),
        10,
        "{stdout}"
    );
    assert!(!stdout.contains("FALSE"), "{stdout}");
}

#[test]
fn dist_tour_on_the_embedded_store() {
    let out = tour(&["--fast", "dist"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(
        stdout.matches("backend: the embedded store").count(),
        3,
        "{stdout}"
    );
    check_dist(&stdout);
    assert!(out.stderr.is_empty(), "stderr:\n{}", text(&out.stderr));
}

/// The same scenarios on a real etcd started for the test (killed when it ends; set
/// `GOSYNC_SKIP_ETCD=1` to skip).
#[test]
fn dist_tour_on_a_real_etcd() {
    let Some(etcd) = gosync_dist::testing::EtcdServer::start_or_skip() else {
        return;
    };
    let out = tour(&["--fast", "--etcd", etcd.endpoint(), "dist"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let backend = format!("backend: etcd at {}", etcd.endpoint());
    assert_eq!(stdout.matches(&backend).count(), 3, "{stdout}");
    check_dist(&stdout);
}

#[test]
fn dist_tour_says_when_etcd_is_unreachable() {
    // Port 1 on loopback: nothing listens there.
    let out = tour(&["--etcd", "http://127.0.0.1:1", "dist/lock"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("cannot use etcd"), "{stdout}");
    assert!(stdout.contains("http://127.0.0.1:1"), "{stdout}");
    assert!(stdout.contains("=> skipped: no etcd to run on"), "{stdout}");
}

#[test]
fn list_names_every_scenario() {
    let out = tour(&["--list"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for id in SCENARIOS {
        assert!(stdout.contains(id), "--list lacks {id}:\n{stdout}");
    }
    assert!(!stdout.contains("==="), "--list ran scenarios:\n{stdout}");
}

#[test]
fn selection_runs_only_what_is_named() {
    // A bare name matches exactly: `or` is chan/or, not chan/or-done.
    let out = tour(&["--fast", "once", "context/value", "or"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&header(1, 3, "sync/once")), "{stdout}");
    assert!(stdout.contains(&header(2, 3, "context/value")), "{stdout}");
    assert!(stdout.contains(&header(3, 3, "chan/or")), "{stdout}");
    assert_eq!(stdout.matches("=== [").count(), 3, "{stdout}");
}

#[test]
fn unknown_name_fails() {
    let out = tour(&["no-such-family"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no-such-family"));
}
