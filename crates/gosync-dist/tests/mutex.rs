//! Distributed `Mutex`: mutual exclusion with fencing, FIFO hand-off, expiry, cancellation,
//! `try_lock`, and etcd's own concurrency test cases written afresh.
//!
//! Every case is `async fn case(client: Client)` and runs twice: on the embedded backend
//! (`embedded::*`) and on a real etcd started for the test (`etcd::*`, killed when the test
//! ends; set `GOSYNC_SKIP_ETCD=1` to skip those). Durations appear only as generous failure
//! bounds on waits, never as assertions.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gosync_dist::backend::*;
use gosync_dist::testing::EtcdServer;
use gosync_dist::{Client, Error, Mutex, Session};

#[macro_use]
mod support;
use support::{connect, session, within, SOON};

cases!(
    ten_sessions_fifty_cycles_with_fencing,
    uncontended_lock_unlock_is_two_round_trips,
    holder_expiry_hands_over,
    cancelled_lock_leaves_no_key,
    cancel_at_any_point_leaves_no_key,
    waits_on_current_holder,
    session_closed_while_waiting,
    waiter_lease_revoked_fails_the_wait,
    try_lock_semantics,
    unlock_semantics,
    relock_through_same_session,
    bad_prefix_is_rejected,
    contended_hand_off_rate,
);

async fn keys_under(client: &Client, prefix: &str) -> Vec<String> {
    let resp = client
        .range(RangeRequest::prefix(format!("{prefix}/")))
        .await
        .expect("range");
    resp.kvs
        .iter()
        .map(|kv| kv.key_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------

/// A storage service that rejects writes carrying a fencing token older than one it has seen,
/// and a counter updated non-atomically across an await (lost updates if two hold at once).
#[derive(Default)]
struct Store {
    max_token: StdMutex<i64>,
    stale: AtomicUsize,
    counter: AtomicU64,
    inside: AtomicBool,
}

impl Store {
    async fn write(&self, token: i64) {
        assert!(
            !self.inside.swap(true, Ordering::SeqCst),
            "two holders inside the critical section"
        );
        {
            let mut max = self.max_token.lock().unwrap();
            if token <= *max {
                self.stale.fetch_add(1, Ordering::SeqCst);
            } else {
                *max = token;
            }
        }
        let seen = self.counter.load(Ordering::SeqCst);
        tokio::task::yield_now().await;
        self.counter.store(seen + 1, Ordering::SeqCst);
        self.inside.store(false, Ordering::SeqCst);
    }
}

async fn ten_sessions_fifty_cycles_with_fencing(client: Client) {
    const SESSIONS: usize = 10;
    const CYCLES: usize = 50;
    let store = Arc::new(Store::default());
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        let client = client.clone();
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = session(&client).await;
            let m = Mutex::new(&s, "/locks/fenced");
            for _ in 0..CYCLES {
                m.lock().await.expect("lock");
                let token = m.fencing_token().expect("held");
                store.write(token).await;
                m.unlock().await.expect("unlock");
            }
            s.close().await.expect("close");
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("all cycles finish")
            .expect("task");
    }
    assert_eq!(
        store.counter.load(Ordering::SeqCst),
        (SESSIONS * CYCLES) as u64,
        "lost updates: mutual exclusion broken"
    );
    assert_eq!(
        store.stale.load(Ordering::SeqCst),
        0,
        "a stale fencing token was used"
    );
    assert!(keys_under(&client, "/locks/fenced").await.is_empty());
}

/// Counts the key-value round trips (leases excluded: the keep-alive runs on its own).
struct Counting {
    inner: Arc<dyn Backend>,
    calls: AtomicUsize,
}

#[async_trait]
impl Backend for Counting {
    async fn range(&self, req: RangeRequest) -> gosync_dist::Result<RangeResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.range(req).await
    }
    async fn put(&self, req: PutRequest) -> gosync_dist::Result<PutResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.put(req).await
    }
    async fn delete(&self, req: DeleteRequest) -> gosync_dist::Result<DeleteResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(req).await
    }
    async fn txn(&self, txn: Txn) -> gosync_dist::Result<TxnResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.txn(txn).await
    }
    async fn lease_grant(&self, ttl: i64) -> gosync_dist::Result<LeaseGrantResponse> {
        self.inner.lease_grant(ttl).await
    }
    async fn lease_revoke(&self, id: LeaseId) -> gosync_dist::Result<LeaseRevokeResponse> {
        self.inner.lease_revoke(id).await
    }
    async fn lease_keep_alive_once(
        &self,
        id: LeaseId,
    ) -> gosync_dist::Result<LeaseKeepAliveResponse> {
        self.inner.lease_keep_alive_once(id).await
    }
    async fn lease_time_to_live(
        &self,
        id: LeaseId,
        keys: bool,
    ) -> gosync_dist::Result<LeaseTimeToLiveResponse> {
        self.inner.lease_time_to_live(id, keys).await
    }
    async fn watch(&self, req: WatchRequest) -> gosync_dist::Result<WatchStream> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.watch(req).await
    }
}

async fn uncontended_lock_unlock_is_two_round_trips(client: Client) {
    let counting = Arc::new(Counting {
        inner: client.backend().clone(),
        calls: AtomicUsize::new(0),
    });
    let client = Client::from_backend(counting.clone());
    let s = session(&client).await;
    let m = Mutex::new(&s, "/locks/rtt");
    // The first lock on a session and prefix also opens the session's watch (once).
    m.lock().await.unwrap();
    m.unlock().await.unwrap();
    let before = counting.calls.load(Ordering::SeqCst);
    assert!(before <= 3, "first cycle took {before} round trips");
    for _ in 0..5 {
        let start = counting.calls.load(Ordering::SeqCst);
        m.lock().await.unwrap();
        m.unlock().await.unwrap();
        let took = counting.calls.load(Ordering::SeqCst) - start;
        assert_eq!(took, 2, "lock + unlock took {took} round trips");
    }
    // A second handle on the same session and prefix shares the watch.
    let start = counting.calls.load(Ordering::SeqCst);
    let m2 = Mutex::new(&s, "/locks/rtt");
    m2.lock().await.unwrap();
    m2.unlock().await.unwrap();
    assert_eq!(counting.calls.load(Ordering::SeqCst) - start, 2);
}

async fn holder_expiry_hands_over(client: Client) {
    let ttl = Duration::from_secs(2);
    let s1 = Session::builder(&client).ttl(ttl).build().await.unwrap();
    let s2 = session(&client).await;
    let m1 = Mutex::new(&s1, "/locks/expiry");
    m1.lock().await.unwrap();
    let t1 = m1.fencing_token().unwrap();
    let waiter = tokio::spawn(async move {
        let m2 = Mutex::new(&s2, "/locks/expiry");
        m2.lock().await.map(|_| (m2.fencing_token().unwrap(), m2))
    });
    // Let the waiter queue (its key appears), then lose the holder's lease.
    within("the waiter queueing", async {
        while keys_under(&client, "/locks/expiry").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    match client.embedded_faults() {
        Some(faults) => faults.expire_lease(s1.lease()).unwrap(),
        None => s1.orphan(), // stops the keep-alive: the lease runs out within the TTL
    }
    let bound = ttl + SOON;
    let (t2, m2) = tokio::time::timeout(bound, waiter)
        .await
        .expect("the waiter gets the lock after the holder's lease ends")
        .unwrap()
        .expect("lock");
    assert!(t2 > t1, "fencing token must grow: {t2} after {t1}");
    // The old holder's guard compare no longer holds; the new one's does.
    let guarded = |cmp: Compare| {
        Txn::new()
            .when([cmp])
            .and_then([TxnOp::Put(PutRequest::new("/data/x", "v"))])
    };
    assert!(!client.txn(guarded(m1.is_owner())).await.unwrap().succeeded);
    assert!(client.txn(guarded(m2.is_owner())).await.unwrap().succeeded);
    // The old holder learns it lost the lock.
    assert!(matches!(
        m1.unlock().await,
        Err(Error::SessionExpired { .. })
    ));
    tokio::time::timeout(bound, s1.done())
        .await
        .expect("the holder's session ends");
    m2.unlock().await.unwrap();
}

async fn cancelled_lock_leaves_no_key(client: Client) {
    let s1 = session(&client).await;
    let s2 = session(&client).await;
    let m1 = Mutex::new(&s1, "/locks/cancel");
    let m2 = Mutex::new(&s2, "/locks/cancel");
    m1.lock().await.unwrap();
    // m2 queues, then gives up (the future is dropped).
    let r = tokio::time::timeout(Duration::from_millis(200), m2.lock()).await;
    assert!(r.is_err(), "m2 must still be waiting");
    within("the cancelled key's removal", async {
        loop {
            let keys = keys_under(&client, "/locks/cancel").await;
            if keys == vec![m1.key().to_owned()] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Nothing stale blocks the next round.
    m1.unlock().await.unwrap();
    within("m2 locking", m2.lock()).await.unwrap();
    m2.unlock().await.unwrap();
    assert!(keys_under(&client, "/locks/cancel").await.is_empty());
}

/// Dropping `lock` at any point — before, during or after its transaction, or while
/// waiting — leaves no key behind.
async fn cancel_at_any_point_leaves_no_key(client: Client) {
    let s1 = session(&client).await;
    let s2 = session(&client).await;
    let m1 = Mutex::new(&s1, "/locks/anypoint");
    m1.lock().await.unwrap();
    let m2 = Mutex::new(&s2, "/locks/anypoint");
    let delays = [
        0, 0, 10, 50, 100, 200, 300, 400, 600, 800, 1000, 1500, 2000, 3000, 5000,
    ];
    for micros in delays {
        let r = tokio::time::timeout(Duration::from_micros(micros), m2.lock()).await;
        assert!(r.is_err(), "m2 cannot get the lock while m1 holds it");
        within("the cancelled key's removal", async {
            loop {
                if keys_under(&client, "/locks/anypoint").await == vec![m1.key().to_owned()] {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
    m1.unlock().await.unwrap();
    within("m2 locking", m2.lock()).await.unwrap();
    m2.unlock().await.unwrap();
}

/// etcd's TestMutexWaitsOnCurrentHolder: the waiter right behind the holder vanishes; the
/// next one must keep waiting for the holder, then get the lock.
async fn waits_on_current_holder(client: Client) {
    let owner_s = session(&client).await;
    let victim_s = session(&client).await;
    let new_s = session(&client).await;
    let owner = Mutex::new(&owner_s, "/locks/current");
    owner.lock().await.unwrap();

    let victim = {
        let s = victim_s.clone();
        tokio::spawn(async move { Mutex::new(&s, "/locks/current").lock().await })
    };
    within("the victim queueing", async {
        while keys_under(&client, "/locks/current").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let new_owner = {
        let s = new_s.clone();
        tokio::spawn(async move {
            let m = Mutex::new(&s, "/locks/current");
            m.lock().await.map(|_| m)
        })
    };
    within("the new owner queueing", async {
        while keys_under(&client, "/locks/current").await.len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    victim_s.close().await.unwrap();
    let victim_result = within("the victim's lock failing", victim).await.unwrap();
    assert!(matches!(victim_result, Err(Error::SessionExpired { .. })));
    // Give a wrong implementation the chance to hand the lock over early.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !new_owner.is_finished(),
        "new owner got the lock while it was held"
    );

    owner.unlock().await.unwrap();
    let m = within("the new owner locking", new_owner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        keys_under(&client, "/locks/current").await,
        vec![m.key().to_owned()]
    );
}

/// etcd's TestMutexLockSessionExpired: a waiter whose session is closed fails.
async fn session_closed_while_waiting(client: Client) {
    let s1 = session(&client).await;
    let s2 = session(&client).await;
    let m1 = Mutex::new(&s1, "/locks/closed");
    m1.lock().await.unwrap();
    let waiter = {
        let s2 = s2.clone();
        tokio::spawn(async move { Mutex::new(&s2, "/locks/closed").lock().await })
    };
    within("the waiter queueing", async {
        while keys_under(&client, "/locks/closed").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    s2.close().await.unwrap();
    m1.unlock().await.unwrap();
    let r = within("the waiter failing", waiter).await.unwrap();
    assert!(matches!(r, Err(Error::SessionExpired { .. })), "{r:?}");
    // A lock on a closed session fails at once.
    let r = Mutex::new(&s2, "/locks/closed").lock().await;
    assert!(matches!(r, Err(Error::SessionExpired { .. })));
}

/// The waiter's lease is revoked behind its back: its key goes, and the wait fails at once
/// (not when the holder eventually unlocks).
async fn waiter_lease_revoked_fails_the_wait(client: Client) {
    let s1 = session(&client).await;
    let s2 = session(&client).await;
    let m1 = Mutex::new(&s1, "/locks/revoked");
    m1.lock().await.unwrap();
    let waiter = {
        let s2 = s2.clone();
        tokio::spawn(async move { Mutex::new(&s2, "/locks/revoked").lock().await })
    };
    within("the waiter queueing", async {
        while keys_under(&client, "/locks/revoked").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    client.lease_revoke(s2.lease()).await.unwrap();
    let r = within("the waiter failing", waiter).await.unwrap();
    assert!(matches!(r, Err(Error::SessionExpired { .. })), "{r:?}");
    within("the session noticing", s2.done()).await;
    m1.unlock().await.unwrap();
}

/// etcd's TestMutexTryLock: of five concurrent try_locks exactly one wins; the others get
/// `Locked` and leave no key.
async fn try_lock_semantics(client: Client) {
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let s = session(&client).await;
            let m = Mutex::new(&s, "/locks/try");
            let r = m.try_lock().await;
            (r, m)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (r, m) = within("try_lock", t).await.unwrap();
        match r {
            Ok(()) => winners.push(m),
            Err(Error::Locked { key }) => assert_eq!(key, "/locks/try"),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one try_lock wins");
    assert_eq!(
        keys_under(&client, "/locks/try").await,
        vec![winners[0].key().to_owned()],
        "losers must remove their keys"
    );
    // Once released, try_lock succeeds.
    winners[0].unlock().await.unwrap();
    let s = session(&client).await;
    let m = Mutex::new(&s, "/locks/try");
    m.try_lock().await.unwrap();
    assert!(m.fencing_token().is_some());
    // The same handle cannot try_lock twice.
    assert!(matches!(m.try_lock().await, Err(Error::Locked { .. })));
}

/// etcd's TestMutexUnlock: unlocking what is not held is an error.
async fn unlock_semantics(client: Client) {
    let s = session(&client).await;
    let m = Mutex::new(&s, "/locks/unlock");
    assert!(matches!(
        m.unlock().await,
        Err(Error::InvalidArgument { .. })
    ));
    m.lock().await.unwrap();
    assert!(m.header().is_some());
    m.unlock().await.unwrap();
    assert!(matches!(
        m.unlock().await,
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(m.fencing_token(), None);
    assert_eq!(m.header(), None);
}

/// etcd's TestMutexSessionRelock: two handles on one session both get the lock (the lock
/// excludes sessions, not handles) — no deadlock.
async fn relock_through_same_session(client: Client) {
    let s = session(&client).await;
    let a = Mutex::new(&s, "/locks/relock");
    let b = Mutex::new(&s, "/locks/relock");
    within("first lock", a.lock()).await.unwrap();
    within("second lock", b.lock()).await.unwrap();
    assert_eq!(a.fencing_token(), b.fencing_token());
    // A single handle, on the other hand, waits for its own unlock.
    let r = tokio::time::timeout(Duration::from_millis(100), a.lock()).await;
    assert!(
        r.is_err(),
        "a second lock through the same handle must wait"
    );
}

async fn bad_prefix_is_rejected(client: Client) {
    let s = session(&client).await;
    for bad in ["", "/locks/x/", "/locks/\0x", "/locks/\nx"] {
        let m = Mutex::new(&s, bad);
        for r in [m.lock().await, m.try_lock().await] {
            assert!(
                matches!(r, Err(Error::InvalidArgument { name: "prefix", .. })),
                "{bad:?}: {r:?}"
            );
        }
    }
    assert!(keys_under(&client, "/locks").await.is_empty());
}

/// Measures contended hand-offs: 4 sessions lock and unlock in turn. A hand-off is timed
/// from the holder's unlock call to the next owner's lock returning, counted only when the
/// next owner is another session that was already waiting. Prints, never asserts a speed.
async fn contended_hand_off_rate(client: Client) {
    const CONTENDERS: usize = 4;
    const CYCLES: usize = 100;
    // (who released, when)
    let released: Arc<StdMutex<Option<(usize, Instant)>>> = Arc::default();
    let hand_offs: Arc<StdMutex<Vec<Duration>>> = Arc::default();
    let mut sessions = Vec::new();
    for _ in 0..CONTENDERS {
        let s = session(&client).await;
        // Open each session's watch before the clock starts.
        let m = Mutex::new(&s, "/locks/rate");
        m.lock().await.unwrap();
        m.unlock().await.unwrap();
        sessions.push(s);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (me, s) in sessions.into_iter().enumerate() {
        let released = released.clone();
        let hand_offs = hand_offs.clone();
        tasks.push(tokio::spawn(async move {
            let m = Mutex::new(&s, "/locks/rate");
            for _ in 0..CYCLES {
                let called = Instant::now();
                m.lock().await.unwrap();
                let got = Instant::now();
                if let Some((from, at)) = released.lock().unwrap().take() {
                    if from != me && called < at {
                        hand_offs.lock().unwrap().push(got - at);
                    }
                }
                tokio::task::yield_now().await;
                *released.lock().unwrap() = Some((me, Instant::now()));
                m.unlock().await.unwrap();
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("cycles finish")
            .unwrap();
    }
    let elapsed = start.elapsed();
    let mut d = hand_offs.lock().unwrap().clone();
    d.sort();
    assert!(
        !d.is_empty(),
        "no hand-off between waiting sessions was seen"
    );
    let pct = |p: usize| d[(d.len() * p / 100).min(d.len() - 1)];
    println!(
        "{}: {CONTENDERS} contenders, {} acquisitions in {elapsed:?} = {:.0}/s; {} hand-offs to a waiting session: p50 {:?}, p90 {:?}, max {:?}",
        client.backend().describe(),
        CONTENDERS * CYCLES,
        (CONTENDERS * CYCLES) as f64 / elapsed.as_secs_f64(),
        d.len(),
        pct(50),
        pct(90),
        d[d.len() - 1],
    );
}

// ---------------------------------------------------------------------------------------
// embedded only (fault injection)
// ---------------------------------------------------------------------------------------

/// Watch streams are severed while a lock waits and between cycles: the session's watch
/// reopens from where it was and no hand-off is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_severed_watch_still_hands_over() {
    let client = Client::embedded();
    let faults = client.embedded_faults().unwrap();
    let s1 = session(&client).await;
    let s2 = session(&client).await;
    let m1 = Mutex::new(&s1, "/locks/severed");
    let m2 = Arc::new(Mutex::new(&s2, "/locks/severed"));
    for _ in 0..5 {
        m1.lock().await.unwrap();
        let waiter = {
            let m2 = m2.clone();
            tokio::spawn(async move { m2.lock().await })
        };
        within("the waiter queueing", async {
            while keys_under(&client, "/locks/severed").await.len() < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        faults.sever_watches();
        m1.unlock().await.unwrap();
        within("the hand-off", waiter).await.unwrap().unwrap();
        faults.sever_watches();
        m2.unlock().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// etcd only
// ---------------------------------------------------------------------------------------

/// etcd dies while a lock waits: the wait ends with an error well within the caller's
/// deadline instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_stopped_mid_wait_fails_clearly() {
    let Some(server) = EtcdServer::start_or_skip() else {
        return;
    };
    let client = connect(&server).await;
    let s1 = session(&client).await;
    let s2 = session(&client).await;
    let m1 = Mutex::new(&s1, "/locks/dying");
    m1.lock().await.unwrap();
    let waiter = tokio::spawn(async move { Mutex::new(&s2, "/locks/dying").lock().await });
    within("the waiter queueing", async {
        while keys_under(&client, "/locks/dying").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    server.stop();
    let deadline = Duration::from_secs(30);
    let r = tokio::time::timeout(deadline, waiter)
        .await
        .expect("the wait must end with an error before the caller's deadline")
        .unwrap();
    let err = r.expect_err("the lock cannot be acquired with etcd gone");
    println!("lock with etcd stopped: {err}");
}
