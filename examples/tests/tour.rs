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
    "context/timeout",
    "context/cancel",
    "context/value",
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
    assert!(stdout.contains("Tour over: 9 scenario(s)"), "{stdout}");
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
    let out = tour(&["--fast", "once", "context/value"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&header(1, 2, "sync/once")), "{stdout}");
    assert!(stdout.contains(&header(2, 2, "context/value")), "{stdout}");
    assert_eq!(stdout.matches("=== [").count(), 2, "{stdout}");
}

#[test]
fn unknown_name_fails() {
    let out = tour(&["no-such-family"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no-such-family"));
}
