//! `Election`: one leader at a time, observed hand-overs in order, proclaim / resign /
//! leader / resume, and etcd's election test cases written afresh.
//!
//! Every case is `async fn case(client: Client)` and runs on the embedded backend
//! (`embedded::*`) and on a real etcd started for the test (`etcd::*`; `GOSYNC_SKIP_ETCD=1`
//! skips those). Durations appear only as generous failure bounds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use gosync_dist::backend::{PutRequest, RangeRequest};
use gosync_dist::{Client, Election, Error, LeaderValue, Observe, Session};

#[macro_use]
mod support;
use support::{session, within};

cases!(
    ten_candidates_one_leader_observed_in_order,
    observe_reports_no_leader,
    leader_and_proclaim,
    proclaim_after_losing_leadership_fails,
    resume_election,
    recampaign_through_same_session,
    campaign_on_prefix_of_existing_key,
    session_restart_keeps_leadership,
    observe_fresh_values_on_proclaim,
    failover_to_next_candidate,
    cancelled_campaign_withdraws,
    bad_prefix_is_rejected,
);

/// The next observed item, which must come soon and not be an error.
async fn next(observe: &mut Observe) -> Option<LeaderValue> {
    within("an observed change", observe.next())
        .await
        .expect("observe never ends without an error")
        .expect("observe error")
}

fn value(l: &Option<LeaderValue>) -> Option<&str> {
    l.as_ref().map(|l| l.value_str().unwrap())
}

async fn candidates(client: &Client, prefix: &str) -> usize {
    client
        .range(RangeRequest::prefix(format!("{prefix}/")))
        .await
        .unwrap()
        .kvs
        .len()
}

async fn ten_candidates_one_leader_observed_in_order(client: Client) {
    const N: usize = 10;
    let observer = session(&client).await;
    let mut observe = Election::new(&observer, "/elections/ten").observe();
    assert_eq!(next(&mut observe).await, None, "nobody leads at first");

    let leading = Arc::new(AtomicBool::new(false));
    let order = Arc::new(StdMutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..N {
        let client = client.clone();
        let leading = leading.clone();
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let s = session(&client).await;
            let e = Election::new(&s, "/elections/ten");
            let me = format!("candidate-{i}");
            e.campaign(me.clone()).await.expect("campaign");
            assert!(!leading.swap(true, Ordering::SeqCst), "two leaders at once");
            order.lock().unwrap().push(me.clone());
            let now = e.leader().await.expect("leader");
            assert_eq!(now.value_str(), Some(me.as_str()));
            assert_eq!(Some(now.kv.create_revision), e.rev());
            tokio::time::sleep(Duration::from_millis(5)).await;
            leading.store(false, Ordering::SeqCst);
            e.resign().await.expect("resign");
            s.close().await.expect("close");
        }));
    }
    let mut seen = Vec::new();
    while seen.len() < N {
        // `None` comes between a resign and the next campaign.
        if let Some(l) = next(&mut observe).await {
            let v = l.value_str().unwrap().to_owned();
            if seen.last() != Some(&v) {
                seen.push(v);
            }
        }
    }
    for t in tasks {
        within("a candidate", t).await.unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        seen,
        "observe saw every hand-over in order"
    );
    assert_eq!(next(&mut observe).await, None, "nobody leads at the end");
}

async fn observe_reports_no_leader(client: Client) {
    let s = session(&client).await;
    let e = Election::new(&s, "/elections/none");
    let mut observe = e.observe();
    assert_eq!(next(&mut observe).await, None);
    e.campaign("a").await.unwrap();
    assert_eq!(value(&next(&mut observe).await), Some("a"));
    e.resign().await.unwrap();
    assert_eq!(next(&mut observe).await, None);
    e.campaign("b").await.unwrap();
    assert_eq!(value(&next(&mut observe).await), Some("b"));
}

async fn leader_and_proclaim(client: Client) {
    let s1 = session(&client).await;
    let s2 = session(&client).await;
    let e1 = Election::new(&s1, "/elections/lp");
    let e2 = Election::new(&s2, "/elections/lp");
    assert!(matches!(e1.leader().await, Err(Error::NoLeader { .. })));
    assert!(matches!(
        e1.proclaim("x").await,
        Err(Error::NotLeader { .. })
    ));
    e1.campaign("one").await.unwrap();
    assert_eq!(e1.key(), Some(format!("/elections/lp/{:x}", s1.lease())));
    let waiting = tokio::spawn(async move { e2.campaign("two").await.map(|_| e2) });
    within("the second candidate queueing", async {
        while candidates(&client, "/elections/lp").await < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    e1.proclaim("one, v2").await.unwrap();
    assert_eq!(e1.leader().await.unwrap().value_str(), Some("one, v2"));
    assert!(!waiting.is_finished());
    e1.resign().await.unwrap();
    assert_eq!((e1.key(), e1.rev()), (None, None));
    let e2 = within("the hand-over", waiting).await.unwrap().unwrap();
    let leader = e2.leader().await.unwrap();
    assert_eq!(leader.value_str(), Some("two"));
    assert_eq!(leader.kv.lease, s2.lease());
    assert!(matches!(
        e1.proclaim("x").await,
        Err(Error::NotLeader { .. })
    ));
}

async fn proclaim_after_losing_leadership_fails(client: Client) {
    let s = session(&client).await;
    let e = Election::new(&s, "/elections/lost");
    e.campaign("me").await.unwrap();
    // Someone deletes the leader key behind our back.
    client
        .delete(gosync_dist::backend::DeleteRequest::key(e.key().unwrap()))
        .await
        .unwrap();
    assert!(matches!(
        e.proclaim("still me?").await,
        Err(Error::NotLeader { .. })
    ));
    assert_eq!(e.rev(), None);
}

/// etcd's TestResumeElection.
async fn resume_election(client: Client) {
    let s = session(&client).await;
    let e = Election::new(&s, "/resume-election");
    within("campaign", e.campaign("candidate1")).await.unwrap();
    let leader = e.leader().await.unwrap();
    let e = Election::resume(
        &s,
        "/resume-election",
        leader.kv.key_str().unwrap(),
        leader.kv.create_revision,
    );
    assert_eq!(e.rev(), Some(leader.kv.create_revision));
    let mut observe = e.observe();
    assert_eq!(value(&next(&mut observe).await), Some("candidate1"));
    // A put outside the prefix is not a change.
    client.put(PutRequest::new("foo", "bar")).await.unwrap();
    e.resign().await.unwrap();
    within("campaign", e.campaign("candidate2")).await.unwrap();
    loop {
        let l = next(&mut observe).await;
        if let Some(l) = &l {
            assert!(l.key().starts_with(b"/resume-election/"));
            if l.value_str() == Some("candidate2") {
                break;
            }
        }
    }
}

/// etcd's TestElectionSessionRecampaign: campaigning again through the same session
/// proclaims instead of deadlocking.
async fn recampaign_through_same_session(client: Client) {
    let s = session(&client).await;
    let e = Election::new(&s, "/elections/recampaign");
    within("campaign", e.campaign("abc")).await.unwrap();
    let e2 = Election::new(&s, "/elections/recampaign");
    within("second campaign", e2.campaign("def")).await.unwrap();
    let mut observe = e.observe();
    assert_eq!(value(&next(&mut observe).await), Some("def"));
    assert_eq!(e.rev(), e2.rev());
}

/// etcd's TestElectionOnPrefixOfExistingKey (etcd issue 6278).
async fn campaign_on_prefix_of_existing_key(client: Client) {
    client.put(PutRequest::new("testa", "value")).await.unwrap();
    let s = session(&client).await;
    let e = Election::new(&s, "test");
    within("campaign", e.campaign("abc")).await.unwrap();
}

/// etcd's TestElectionOnSessionRestart: a new session on the old lease keeps leadership
/// over a candidate that queued meanwhile.
async fn session_restart_keeps_leadership(client: Client) {
    let s = session(&client).await;
    let e = Election::new(&s, "/elections/restart");
    e.campaign("abc").await.unwrap();
    let waiter_session = session(&client).await;
    let waiter = {
        let ws = waiter_session.clone();
        tokio::spawn(async move {
            Election::new(&ws, "/elections/restart")
                .campaign("123")
                .await
        })
    };
    s.orphan(); // the "crash"
    let restarted = Session::builder(&client)
        .lease(s.lease())
        .build()
        .await
        .unwrap();
    let e = Election::new(&restarted, "/elections/restart");
    within("campaign after restart", e.campaign("def"))
        .await
        .unwrap();
    let mut observe = e.observe();
    assert_eq!(value(&next(&mut observe).await), Some("def"));
    assert!(!waiter.is_finished());
    waiter_session.close().await.unwrap();
    let r = within("the waiter", waiter).await.unwrap();
    assert!(matches!(r, Err(Error::SessionExpired { .. })), "{r:?}");
}

/// etcd's TestElectionObserveFreshResponsesOnProclaim.
async fn observe_fresh_values_on_proclaim(client: Client) {
    let s = session(&client).await;
    let e = Election::new(&s, "/elections/fresh");
    e.campaign("abc").await.unwrap();
    let mut observe = e.observe();
    let first = next(&mut observe).await.unwrap();
    e.proclaim("def").await.unwrap();
    let second = next(&mut observe).await.unwrap();
    e.proclaim("ghi").await.unwrap();
    let third = next(&mut observe).await.unwrap();
    let values: Vec<_> = [&first, &second, &third]
        .iter()
        .map(|l| (l.value_str().unwrap().to_owned(), l.kv.version))
        .collect();
    assert_eq!(
        values,
        [("abc".into(), 1), ("def".into(), 2), ("ghi".into(), 3)]
    );
    assert!(first.header.revision < second.header.revision);
    assert!(second.header.revision < third.header.revision);
}

/// etcd's TestElectionFailover: the leader's session closes; the next candidate leads and a
/// third session observes it.
async fn failover_to_next_candidate(client: Client) {
    let ss = [
        session(&client).await,
        session(&client).await,
        session(&client).await,
    ];
    let e = Election::new(&ss[0], "/elections/failover");
    e.campaign("foo").await.unwrap();
    let mut observe = e.observe();
    assert_eq!(value(&next(&mut observe).await), Some("foo"));
    let next_leader = {
        let s = ss[1].clone();
        tokio::spawn(async move {
            Election::new(&s, "/elections/failover")
                .campaign("bar")
                .await
        })
    };
    within("the candidate queueing", async {
        while candidates(&client, "/elections/failover").await < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    ss[0].close().await.unwrap();
    let mut watcher = Election::new(&ss[2], "/elections/failover").observe();
    loop {
        if value(&next(&mut watcher).await) == Some("bar") {
            break;
        }
    }
    within("the new leader's campaign", next_leader)
        .await
        .unwrap()
        .unwrap();
}

async fn cancelled_campaign_withdraws(client: Client) {
    let s1 = session(&client).await;
    let s2 = session(&client).await;
    let e1 = Election::new(&s1, "/elections/cancel");
    let e2 = Election::new(&s2, "/elections/cancel");
    e1.campaign("one").await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(200), e2.campaign("two")).await;
    assert!(r.is_err(), "the second campaign must still be waiting");
    within("the withdrawn candidacy's removal", async {
        while candidates(&client, "/elections/cancel").await != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    e1.resign().await.unwrap();
    assert!(matches!(e1.leader().await, Err(Error::NoLeader { .. })));
}

async fn bad_prefix_is_rejected(client: Client) {
    let s = session(&client).await;
    for bad in ["", "/e/", "/e\u{7f}"] {
        let e = Election::new(&s, bad);
        let r = e.campaign("x").await;
        assert!(
            matches!(r, Err(Error::InvalidArgument { name: "prefix", .. })),
            "{r:?}"
        );
        assert!(matches!(
            e.leader().await,
            Err(Error::InvalidArgument { name: "prefix", .. })
        ));
        assert!(matches!(
            within("observe", e.observe().next()).await,
            Some(Err(Error::InvalidArgument { name: "prefix", .. }))
        ));
    }
}

/// Watch streams are severed under an observer: it keeps reporting every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_observe_survives_severed_watch() {
    let client = Client::embedded();
    let faults = client.embedded_faults().unwrap();
    let s = session(&client).await;
    let e = Election::new(&s, "/elections/severed");
    let mut observe = e.observe();
    assert_eq!(next(&mut observe).await, None);
    for i in 0..5 {
        faults.sever_watches();
        let v = format!("v{i}");
        e.campaign(v.clone()).await.unwrap();
        assert_eq!(value(&next(&mut observe).await), Some(v.as_str()));
        faults.sever_watches();
        e.resign().await.unwrap();
        assert_eq!(next(&mut observe).await, None);
    }
}
