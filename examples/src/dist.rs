//! The course's distributed synchronization primitives (the chapter "分布式同步原语"): etcd's
//! lock (`concurrency.Mutex`), the recipes' `RWMutex` and leader election, in gosync-dist.
//!
//! The scenarios run on gosync-dist's embedded store (in this process, etcd's semantics) by
//! default, and on a real etcd when endpoints are given with `--etcd URL[,URL...]` or the
//! environment variable `GOSYNC_ETCD_ENDPOINTS`. Every participant has a session of its own,
//! as every process would; on etcd the keys live under a prefix of their own for each run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use gosync_dist::backend::{RangeRequest, SortOrder, SortTarget};
use gosync_dist::{Client, Election, Mutex, RwMutex, Session};

use crate::out::{block_on, conclude, elapsed, ms, nap_async, random, runtime, say, step};
use crate::Scenario;

/// The environment variable naming etcd endpoints (comma-separated) for this family.
pub const ENDPOINTS_ENV: &str = "GOSYNC_ETCD_ENDPOINTS";

/// The scenarios of this family, in the course's order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "lock",
        title: "Mutex: 10 sessions contend for one distributed lock",
        go: "concurrency.NewSession, concurrency.NewMutex / NewLocker, Lock, Unlock (the course's \
             startSession)",
        watch:
            "the sessions queue by their key's create revision and get the lock in exactly that \
                order; every owner's fencing token is above the previous owner's; never two \
                owners at once",
        run: lock,
    },
    Scenario {
        name: "rw-lock",
        title: "RwMutex: readers share, a writer excludes, a late reader queues behind the writer",
        go: "recipe.NewRWMutex, RLock / RUnlock, Lock / Unlock",
        watch: "three readers inside at once; the writer waits for all of them and is alone \
                inside; a reader arriving after the waiting writer goes in only after it",
        run: rw_lock,
    },
    Scenario {
        name: "election",
        title: "Election: candidates campaign, one leads, observe reports every hand-over",
        go: "concurrency.NewElection, Campaign, Proclaim, Resign, Leader, Observe",
        watch: "one leader at a time, in campaign order; each resign hands over to the next \
                candidate; observe reports every leader, every proclaimed value, and \"no leader\"",
        run: election,
    },
];

/// etcd endpoints chosen on the command line or in the environment; none: embedded.
static ETCD: StdMutex<Vec<String>> = StdMutex::new(Vec::new());

/// Runs the family on the etcd at `endpoints` (comma-separated) instead of the embedded
/// store; `None` or an empty list keeps the embedded store.
pub fn set_etcd(endpoints: Option<&str>) {
    let list = endpoints
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    *ETCD.lock().unwrap_or_else(|e| e.into_inner()) = list;
}

/// The backend a scenario runs on, and where its keys go.
struct Env {
    client: Client,
    /// Prefix of every key of this run: empty on the embedded store (it is fresh), unique per
    /// run on a real etcd.
    ns: String,
    /// The lease TTL of the sessions: short on a real etcd, so keys of an interrupted run
    /// go soon.
    ttl: Duration,
}

impl Env {
    /// Connects and says to what; on failure says why, concludes, and returns `None`.
    async fn connect() -> Option<Env> {
        let endpoints = ETCD.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if endpoints.is_empty() {
            step(&format!(
                "backend: the embedded store, in this process (give --etcd URL or {ENDPOINTS_ENV} \
                 for a real etcd)"
            ));
            return Some(Env {
                client: Client::embedded(),
                ns: String::new(),
                ttl: Duration::from_secs(60),
            });
        }
        let refs: Vec<&str> = endpoints.iter().map(String::as_str).collect();
        match Client::etcd(&refs).await {
            Ok(client) => {
                let ns = format!("/gosync-tour/{:x}", random(u64::MAX));
                step(&format!(
                    "backend: etcd at {}; keys under {ns}",
                    endpoints.join(",")
                ));
                Some(Env {
                    client,
                    ns,
                    ttl: Duration::from_secs(10),
                })
            }
            Err(e) => {
                say("main", format!("cannot use etcd: {e}"));
                conclude("skipped: no etcd to run on");
                None
            }
        }
    }

    async fn session(&self) -> Session {
        Session::builder(&self.client)
            .ttl(self.ttl)
            .build()
            .await
            .expect("a session")
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.ns)
    }
}

/// Closes every session (revoking its lease, so its keys go at once).
async fn close_all(sessions: &[Session]) {
    for s in sessions {
        s.close().await.expect("closing a session");
    }
}

/// Polls `cond` every millisecond until it holds, for at most five seconds (the scenario
/// then goes on and its checks show what went wrong). The scenarios order their steps with
/// these waits, not with sleeps alone, so a slow machine changes the timings, not the story.
async fn until(mut cond: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits (as [`until`]) until at least `n` keys exist under `prefix`.
async fn until_keys(client: &Client, prefix: &str, n: usize) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let resp = client
            .range(RangeRequest::prefix(prefix))
            .await
            .expect("reading keys");
        if resp.kvs.len() >= n || tokio::time::Instant::now() >= give_up {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn guard<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn yes(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "FALSE"
    }
}

// ----- 1. Mutex -------------------------------------------------------------------------------

fn lock() {
    let rt = runtime();
    block_on(&rt, async {
        let Some(env) = Env::connect().await else {
            return;
        };
        const N: usize = 10;
        let prefix = env.key("my-lock");
        step(&format!(
            "main holds the Mutex on {prefix} while {N} sessions queue for it (in random order)"
        ));
        let main_session = env.session().await;
        let gate = Mutex::new(&main_session, prefix.as_str());
        gate.lock().await.expect("main locks");
        say(
            "main",
            format!(
                "holds the lock, fencing token {}",
                gate.fencing_token().unwrap_or(0)
            ),
        );

        let mut sessions = Vec::new();
        let mut key_of_id = HashMap::new();
        let mut handles = Vec::new();
        for id in 0..N {
            let s = env.session().await;
            let m = Mutex::new(&s, prefix.as_str());
            key_of_id.insert(m.key().to_string(), id);
            handles.push(m);
            sessions.push(s);
        }
        let inside = Arc::new(AtomicBool::new(false));
        let overlap = Arc::new(AtomicBool::new(false));
        let order: Arc<StdMutex<Vec<(usize, i64)>>> = Arc::default();
        let tasks: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(id, m)| {
                let (inside, overlap, order) = (inside.clone(), overlap.clone(), order.clone());
                tokio::spawn(async move {
                    let who = format!("ID {id}");
                    nap_async(random(40)).await;
                    say(&who, "acquiring lock");
                    m.lock().await.expect("lock");
                    let token = m.fencing_token().unwrap_or(0);
                    if inside.swap(true, SeqCst) {
                        overlap.store(true, SeqCst);
                    }
                    guard(&order).push((id, token));
                    say(&who, format!("acquired lock, fencing token {token}"));
                    nap_async(10 + random(30)).await;
                    inside.store(false, SeqCst);
                    m.unlock().await.expect("unlock");
                    say(&who, "released lock");
                })
            })
            .collect();

        // Wait until all ten are queued behind main, then show the queue.
        until_keys(&env.client, &format!("{prefix}/"), N + 1).await;
        let queue = env
            .client
            .range(
                RangeRequest::prefix(format!("{prefix}/"))
                    .sort(SortTarget::Create, SortOrder::Ascend),
            )
            .await
            .expect("reading the queue")
            .kvs;
        let queued: Vec<(usize, i64)> = queue
            .iter()
            .filter_map(|kv| {
                let key = String::from_utf8_lossy(&kv.key).into_owned();
                key_of_id.get(&key).map(|&id| (id, kv.create_revision))
            })
            .collect();
        let mut line = String::new();
        for (id, rev) in &queued {
            let _ = write!(line, " {id}@{rev}");
        }
        say(
            "main",
            format!("the queue by create revision (ID@revision):{line}"),
        );
        say("main", "unlock(): the queue starts moving");
        gate.unlock().await.expect("main unlocks");

        for t in tasks {
            t.await.expect("a locking task");
        }
        let order = guard(&order).clone();
        let increasing = order.windows(2).all(|w| w[0].1 < w[1].1);
        let fifo = order == queued;
        let got: Vec<String> = order.iter().map(|(id, _)| id.to_string()).collect();
        say("main", format!("acquired in the order {}", got.join(" ")));
        sessions.push(main_session);
        close_all(&sessions).await;
        conclude(&format!(
            "{} acquisitions; fencing tokens strictly increasing: {}; acquired in queue order \
             (FIFO): {}; never two holders at once: {}",
            order.len(),
            yes(increasing),
            yes(fifo),
            yes(!overlap.load(SeqCst))
        ));
    });
}

// ----- 2. RwMutex -----------------------------------------------------------------------------

/// One participant's times (since the scenario began): called, acquired, released.
#[derive(Clone, Copy, Default)]
struct Span {
    called: Duration,
    acquired: Duration,
    released: Duration,
}

/// What the rw-lock participants share.
#[derive(Default)]
struct RwState {
    readers: AtomicUsize,
    max_readers: AtomicUsize,
    writer: AtomicBool,
    writer_not_alone: AtomicBool,
    /// All five are (or were) in the queue at once.
    all_queued: AtomicBool,
    spans: StdMutex<HashMap<&'static str, Span>>,
}

fn rw_lock() {
    let rt = runtime();
    block_on(&rt, async {
        let Some(env) = Env::connect().await else {
            return;
        };
        let prefix = env.key("my-rwlock");
        step(&format!(
            "R1..R3 read-lock {prefix} at once; W asks for the write lock at 60 ms; R4 asks for a \
             read lock at 120 ms"
        ));
        // (name, writer?, start, hold), ms
        let plan: [(&'static str, bool, u64, u64); 5] = [
            ("R1", false, 0, 250),
            ("R2", false, 0, 300),
            ("R3", false, 0, 350),
            ("W", true, 60, 150),
            ("R4", false, 120, 100),
        ];
        let state = Arc::new(RwState::default());
        let mut sessions = Vec::new();
        let mut locks = Vec::new();
        for _ in plan {
            let s = env.session().await;
            locks.push(RwMutex::new(&s, prefix.as_str()));
            sessions.push(s);
        }
        let base = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for ((name, writer, start, hold), rw) in plan.into_iter().zip(locks) {
            let state = state.clone();
            let client = env.client.clone();
            let all = format!("{prefix}/");
            let writers = format!("{prefix}/write/");
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(base + ms(start)).await;
                if writer {
                    // The writer asks once the three readers are in...
                    until(|| state.readers.load(SeqCst) == 3).await;
                } else if name == "R4" {
                    // ...and R4 once the writer is queued.
                    until_keys(&client, &writers, 1).await;
                }
                let mut span = Span {
                    called: elapsed(),
                    ..Span::default()
                };
                if writer {
                    say(name, "lock() ...");
                    rw.lock().await.expect("lock");
                    span.acquired = elapsed();
                    state.writer.store(true, SeqCst);
                    if state.readers.load(SeqCst) > 0 {
                        state.writer_not_alone.store(true, SeqCst);
                    }
                    say(name, "has the write lock, alone");
                    nap_async(hold).await;
                    state.writer.store(false, SeqCst);
                    span.released = elapsed();
                    rw.unlock().await.expect("unlock");
                    say(name, "unlock()");
                } else {
                    say(name, "read_lock() ...");
                    rw.read_lock().await.expect("read_lock");
                    span.acquired = elapsed();
                    let now = state.readers.fetch_add(1, SeqCst) + 1;
                    state.max_readers.fetch_max(now, SeqCst);
                    if state.writer.load(SeqCst) {
                        state.writer_not_alone.store(true, SeqCst);
                    }
                    say(name, format!("reading ({now} reader(s) inside)"));
                    nap_async(hold).await;
                    if name != "R4" && !state.all_queued.load(SeqCst) {
                        // The first readers stay until W and R4 are both queued.
                        until_keys(&client, &all, 5).await;
                        state.all_queued.store(true, SeqCst);
                    }
                    state.readers.fetch_sub(1, SeqCst);
                    span.released = elapsed();
                    rw.read_unlock().await.expect("read_unlock");
                    say(name, "read_unlock()");
                }
                guard(&state.spans).insert(name, span);
            }));
        }
        for t in tasks {
            t.await.expect("a participant");
        }
        close_all(&sessions).await;

        let spans = guard(&state.spans).clone();
        let names: Vec<&'static str> = plan.iter().map(|p| p.0).collect();
        timeline(&names, &spans, &plan.map(|p| p.1));
        let w = spans["W"];
        let r4 = spans["R4"];
        let first_readers_done = ["R1", "R2", "R3"]
            .iter()
            .map(|n| spans[n].released)
            .max()
            .unwrap_or_default();
        conclude(&format!(
            "readers inside at once: {}; the writer waited for all three and was alone: {}; R4 \
             (asked after W) entered after the writer left: {}",
            state.max_readers.load(SeqCst),
            yes(w.acquired >= first_readers_done && !state.writer_not_alone.load(SeqCst)),
            yes(r4.acquired >= w.released)
        ));
    });
}

/// Prints the spans as a chart: `.` waiting, `=` holding a read lock, `#` the write lock.
fn timeline(names: &[&'static str], spans: &HashMap<&'static str, Span>, writer: &[bool]) {
    const COLS: usize = 60;
    let start = spans.values().map(|s| s.called).min().unwrap_or_default();
    let end = spans.values().map(|s| s.released).max().unwrap_or_default();
    let width = (end.saturating_sub(start)).max(Duration::from_millis(1));
    let per_col = width / COLS as u32;
    println!(
        "  timeline from {:.0} ms, one column = {:.1} ms (. waiting, = read lock held, # write lock held):",
        start.as_secs_f64() * 1000.0,
        per_col.as_secs_f64() * 1000.0
    );
    for (name, &w) in names.iter().zip(writer) {
        let Some(s) = spans.get(name) else { continue };
        let mut row = String::with_capacity(COLS);
        for c in 0..COLS {
            let t = start + per_col * c as u32 + per_col / 2;
            row.push(if t >= s.acquired && t < s.released {
                if w {
                    '#'
                } else {
                    '='
                }
            } else if t >= s.called && t < s.acquired {
                '.'
            } else {
                ' '
            });
        }
        println!("    {name:<3}|{row}|");
    }
}

// ----- 3. Election ----------------------------------------------------------------------------

fn election() {
    let rt = runtime();
    block_on(&rt, async {
        let Some(env) = Env::connect().await else {
            return;
        };
        let prefix = env.key("my-election");
        step(&format!(
            "an observer watches {prefix}; node-1, node-2, node-3 campaign 50 ms apart; each \
             leads for about 150 ms and resigns"
        ));
        let observer_session = env.session().await;
        let watcher = Election::new(&observer_session, prefix.as_str());
        let seen: Arc<StdMutex<Vec<String>>> = Arc::default();
        let mut changes = watcher.observe();
        let observer = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(change) = changes.next().await {
                    let text = match change {
                        Ok(Some(leader)) => leader.value_str().unwrap_or("?").to_string(),
                        Ok(None) => "no leader".to_string(),
                        Err(e) => {
                            say("observer", format!("observe ended: {e}"));
                            break;
                        }
                    };
                    say("observer", format!("leader: {text}"));
                    guard(&seen).push(text);
                }
            })
        };

        let leading = Arc::new(AtomicBool::new(false));
        let two_leaders = Arc::new(AtomicBool::new(false));
        let order: Arc<StdMutex<Vec<&'static str>>> = Arc::default();
        // The observer's first report is the state before anyone campaigns.
        until(|| !guard(&seen).is_empty()).await;
        let names = ["node-1", "node-2", "node-3"];
        let mut sessions = Vec::new();
        let mut elections = Vec::new();
        for _ in names {
            let s = env.session().await;
            elections.push(Election::new(&s, prefix.as_str()));
            sessions.push(s);
        }
        let queried = Arc::new(AtomicBool::new(false));
        let all = format!("{prefix}/");
        let mut tasks = Vec::new();
        for (i, (name, e)) in names.into_iter().zip(elections).enumerate() {
            let (leading, two_leaders, order, queried) = (
                leading.clone(),
                two_leaders.clone(),
                order.clone(),
                queried.clone(),
            );
            let client = env.client.clone();
            let all = all.clone();
            tasks.push(tokio::spawn(async move {
                nap_async(50 * i as u64).await;
                // Candidates campaign in turn: each after the one before is a candidate.
                until_keys(&client, &all, i).await;
                say(name, format!("campaign(\"{name}\") ..."));
                let asked = elapsed();
                e.campaign(name).await.expect("campaign");
                if leading.swap(true, SeqCst) {
                    two_leaders.store(true, SeqCst);
                }
                guard(&order).push(name);
                say(
                    name,
                    format!(
                        "leads (campaigned {:.0} ms ago)",
                        (elapsed() - asked).as_secs_f64() * 1000.0
                    ),
                );
                nap_async(75).await;
                if name == "node-2" {
                    let v = "node-2, v2";
                    e.proclaim(v).await.expect("proclaim");
                    say(name, format!("proclaim(\"{v}\")"));
                }
                nap_async(75).await;
                if name == "node-1" {
                    // Resign once everyone is a candidate and main has asked who leads.
                    until_keys(&client, &all, 3).await;
                    until(|| queried.load(SeqCst)).await;
                }
                leading.store(false, SeqCst);
                say(name, "resign()");
                e.resign().await.expect("resign");
            }));
        }
        // Ask who leads while node-1 does.
        nap_async(110).await;
        until(|| !guard(&order).is_empty()).await;
        match watcher.leader().await {
            Ok(l) => say(
                "main",
                format!("leader() = {}", l.value_str().unwrap_or("?")),
            ),
            Err(e) => say("main", format!("leader() failed: {e}")),
        }
        queried.store(true, SeqCst);
        for t in tasks {
            t.await.expect("a candidate");
        }
        // The observer reports the last resign too.
        let expected = [
            "no leader",
            "node-1",
            "node-2",
            "node-2, v2",
            "node-3",
            "no leader",
        ];
        until(|| guard(&seen).len() >= expected.len()).await;
        match watcher.leader().await {
            Ok(l) => say(
                "main",
                format!("leader() = {}", l.value_str().unwrap_or("?")),
            ),
            Err(e) => say("main", format!("leader() = error: {e}")),
        }
        observer.abort();
        let _ = observer.await;
        sessions.push(observer_session);
        close_all(&sessions).await;
        let seen = guard(&seen).clone();
        let order = guard(&order).clone();
        conclude(&format!(
            "observe saw: {}; one leader at a time: {}; leaders in campaign order: {}",
            seen.join(" -> "),
            yes(!two_leaders.load(SeqCst)),
            yes(order == ["node-1", "node-2", "node-3"])
        ));
    });
}
