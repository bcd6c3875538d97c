//! Tests specific to the embedded backend: exact revision accounting on a fresh store, the
//! transaction compare table, range options, lease expiry by the store's own timer, watch
//! replay and ordering, compaction, and fault injection.
//!
//! Tests that depend on time run with tokio's paused clock where they can, so they are
//! deterministic; the few on the real clock only bound their waits generously.

use std::sync::Arc;
use std::time::Duration;

use gosync_dist::backend::*;
use gosync_dist::{Client, Error};

/// Generous bound for waits on the real clock.
const PATIENCE: Duration = Duration::from_secs(10);

async fn put(c: &Client, key: &str, value: &str) -> i64 {
    c.put(PutRequest::new(key, value))
        .await
        .unwrap()
        .header
        .revision
}

async fn next(w: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(PATIENCE, w.next())
        .await
        .expect("watch delivered nothing in time")
        .expect("watch ended")
        .expect("watch failed")
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key_str().unwrap()).collect()
}

fn revs(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.kv.mod_revision).collect()
}

// ---------------------------------------------------------------------------------------
// Revisions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn revision_accounting() {
    let c = Client::embedded();
    assert_eq!(
        c.range(RangeRequest::key("a"))
            .await
            .unwrap()
            .header
            .revision,
        1
    );

    assert_eq!(put(&c, "a", "1").await, 2);
    assert_eq!(put(&c, "a", "2").await, 3);
    let a = c.get("a").await.unwrap().unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version),
        (2, 3, 2),
        "overwrite keeps the create revision and bumps the version"
    );

    // A delete that deletes nothing changes nothing.
    let d = c.delete(DeleteRequest::key("missing")).await.unwrap();
    assert_eq!((d.deleted, d.header.revision), (0, 3));

    let d = c
        .delete(DeleteRequest::key("a").with_prev_kv())
        .await
        .unwrap();
    assert_eq!((d.deleted, d.header.revision), (1, 4));
    assert_eq!(d.prev_kvs[0].value, b"2");

    // Re-creating starts a new generation.
    assert_eq!(put(&c, "a", "3").await, 5);
    let a = c.get("a").await.unwrap().unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (5, 5, 1));

    // A read-only transaction uses no revision; a writing one uses exactly one.
    let t = c
        .txn(Txn::new().and_then([TxnOp::Range(RangeRequest::key("a"))]))
        .await
        .unwrap();
    assert_eq!(t.header.revision, 5);
    let t = c
        .txn(Txn::new().and_then([
            TxnOp::Put(PutRequest::new("b", "1")),
            TxnOp::Put(PutRequest::new("c", "1")),
            TxnOp::Delete(DeleteRequest::key("a")),
        ]))
        .await
        .unwrap();
    assert_eq!(t.header.revision, 6);
    for r in &t.responses {
        let h = match r {
            TxnOpResponse::Put(p) => p.header,
            TxnOpResponse::Delete(d) => d.header,
            TxnOpResponse::Range(r) => r.header,
        };
        assert_eq!(h.revision, 6, "every op answer carries the txn's revision");
    }
    let b = c.get("b").await.unwrap().unwrap();
    let cc = c.get("c").await.unwrap().unwrap();
    assert_eq!((b.mod_revision, cc.mod_revision), (6, 6));

    // Leases: grant and revoke of an empty lease change nothing; a revoke deleting two keys
    // uses one revision.
    let empty = c.lease_grant(60).await.unwrap();
    assert_eq!(empty.header.revision, 6);
    assert_eq!(c.lease_revoke(empty.id).await.unwrap().header.revision, 6);
    let l = c.lease_grant(60).await.unwrap().id;
    c.put(PutRequest::new("l1", "x").with_lease(l))
        .await
        .unwrap();
    c.put(PutRequest::new("l2", "x").with_lease(l))
        .await
        .unwrap();
    assert_eq!(c.lease_revoke(l).await.unwrap().header.revision, 9);
    assert_eq!(c.range(RangeRequest::prefix("l")).await.unwrap().count, 0);
    let before = c
        .range(RangeRequest::prefix("l").at_revision(8))
        .await
        .unwrap();
    assert_eq!(
        before.count, 2,
        "history still shows both keys at revision 8"
    );
}

#[tokio::test]
async fn put_and_delete_details() {
    let c = Client::embedded();
    let r = c
        .put(PutRequest::new("k", "1").with_prev_kv())
        .await
        .unwrap();
    assert_eq!(r.prev_kv, None);
    let r = c
        .put(PutRequest::new("k", "2").with_prev_kv())
        .await
        .unwrap();
    assert_eq!(r.prev_kv.unwrap().value, b"1");
    let r = c.put(PutRequest::new("k", "3")).await.unwrap();
    assert_eq!(r.prev_kv, None, "no prev_kv unless asked");

    // Moving a key between leases detaches it from the first.
    let l1 = c.lease_grant(60).await.unwrap().id;
    let l2 = c.lease_grant(60).await.unwrap().id;
    c.put(PutRequest::new("k", "4").with_lease(l1))
        .await
        .unwrap();
    c.put(PutRequest::new("k", "5").with_lease(l2))
        .await
        .unwrap();
    assert!(c
        .lease_time_to_live(l1, true)
        .await
        .unwrap()
        .keys
        .is_empty());
    assert_eq!(
        c.lease_time_to_live(l2, true).await.unwrap().keys,
        vec![b"k".to_vec()]
    );
    c.lease_revoke(l1).await.unwrap();
    assert!(
        c.get("k").await.unwrap().is_some(),
        "k no longer belongs to l1"
    );
    // A put without a lease detaches it.
    c.put(PutRequest::new("k", "6")).await.unwrap();
    c.lease_revoke(l2).await.unwrap();
    let k = c.get("k").await.unwrap().unwrap();
    assert_eq!((k.lease, k.value_str()), (0, Some("6")));

    // A put with an unknown lease fails and changes nothing.
    let rev = c
        .range(RangeRequest::key("k"))
        .await
        .unwrap()
        .header
        .revision;
    let err = c
        .put(PutRequest::new("k", "7").with_lease(l2))
        .await
        .unwrap_err();
    assert_eq!(err, Error::LeaseNotFound { lease: l2 });
    assert_eq!(
        c.range(RangeRequest::key("k"))
            .await
            .unwrap()
            .header
            .revision,
        rev
    );

    // Deleting a range takes every key in it, in one revision.
    for k in ["/r/a", "/r/b", "/r/c", "/s"] {
        put(&c, k, "x").await;
    }
    let d = c
        .delete(DeleteRequest::new(KeyRange::range("/r/b", "/s")))
        .await
        .unwrap();
    assert_eq!(d.deleted, 2);
    assert_eq!(
        keys(
            &c.range(RangeRequest::new(KeyRange::range("/", "0")))
                .await
                .unwrap()
                .kvs
        ),
        vec!["/r/a", "/s"]
    );
}

// ---------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn txn_compare_table() {
    use CompareOp::*;
    let c = Client::embedded();
    let lease = c.lease_grant(60).await.unwrap().id;
    put(&c, "k", "m").await; // rev 2
    c.put(PutRequest::new("k", "m").with_lease(lease))
        .await
        .unwrap(); // rev 3, version 2
    let kv = c.get("k").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));

    let table: Vec<(Compare, bool)> = vec![
        // A missing key: numbers are 0, value compares are false whatever the op.
        (Compare::create_revision("nope", Equal, 0), true),
        (Compare::mod_revision("nope", Equal, 0), true),
        (Compare::version("nope", Equal, 0), true),
        (Compare::lease("nope", Equal, 0), true),
        (Compare::version("nope", Greater, 0), false),
        (Compare::create_revision("nope", Less, 1), true),
        (Compare::value("nope", Equal, ""), false),
        (Compare::value("nope", NotEqual, "x"), false),
        (Compare::value("nope", Less, "z"), false),
        (Compare::value("nope", Greater, ""), false),
        // An existing key.
        (Compare::value("k", Equal, "m"), true),
        (Compare::value("k", NotEqual, "m"), false),
        (Compare::value("k", Less, "n"), true),
        (Compare::value("k", Less, "m"), false),
        (Compare::value("k", Greater, "l"), true),
        (Compare::value("k", Greater, "mm"), false),
        (Compare::version("k", Equal, 2), true),
        (Compare::version("k", Greater, 1), true),
        (Compare::version("k", Less, 2), false),
        (Compare::create_revision("k", Equal, 2), true),
        (Compare::create_revision("k", Equal, 0), false),
        (Compare::create_revision("k", NotEqual, 3), true),
        (Compare::mod_revision("k", Equal, 3), true),
        (Compare::mod_revision("k", Less, 3), false),
        (Compare::mod_revision("k", Greater, 2), true),
        (Compare::lease("k", Equal, lease), true),
        (Compare::lease("k", NotEqual, lease), false),
        (Compare::lease("k", Equal, 0), false),
    ];
    for (cmp, expected) in table {
        // Both the pure function and a real transaction agree.
        let resp = c
            .txn(
                Txn::new()
                    .when([cmp.clone()])
                    .and_then([TxnOp::Range(RangeRequest::key("yes"))])
                    .or_else([
                        TxnOp::Range(RangeRequest::key("no")),
                        TxnOp::Range(RangeRequest::key("no")),
                    ]),
            )
            .await
            .unwrap();
        assert_eq!(resp.succeeded, expected, "{cmp:?}");
        assert_eq!(
            resp.responses.len(),
            if expected { 1 } else { 2 },
            "the branch that ran answered: {cmp:?}"
        );
    }

    // All compares must hold.
    let resp = c
        .txn(Txn::new().when([
            Compare::value("k", Equal, "m"),
            Compare::version("k", Equal, 99),
        ]))
        .await
        .unwrap();
    assert!(!resp.succeeded);
}

#[tokio::test]
async fn txn_reads_its_own_writes_and_rejects_bad_input() {
    let c = Client::embedded();
    put(&c, "a", "old").await;
    let resp = c
        .txn(Txn::new().and_then([
            TxnOp::Put(PutRequest::new("a", "new").with_prev_kv()),
            TxnOp::Range(RangeRequest::key("a")),
            TxnOp::Delete(DeleteRequest::key("b")),
        ]))
        .await
        .unwrap();
    match (&resp.responses[0], &resp.responses[1]) {
        (TxnOpResponse::Put(p), TxnOpResponse::Range(r)) => {
            assert_eq!(p.prev_kv.as_ref().unwrap().value, b"old");
            assert_eq!(r.kvs[0].value, b"new");
            assert_eq!(r.kvs[0].mod_revision, resp.header.revision);
        }
        other => panic!("unexpected answers {other:?}"),
    }

    // Two writes of one key in a branch are rejected, as etcd does, and change nothing.
    let rev = resp.header.revision;
    for bad in [
        Txn::new().and_then([
            TxnOp::Put(PutRequest::new("x", "1")),
            TxnOp::Put(PutRequest::new("x", "2")),
        ]),
        Txn::new().or_else([
            TxnOp::Put(PutRequest::new("/p/x", "1")),
            TxnOp::Delete(DeleteRequest::prefix("/p/")),
        ]),
    ] {
        let err = c.txn(bad.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { name: "txn", .. }),
            "{err}"
        );
        let err = c.backend().txn(bad).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { name: "txn", .. }),
            "{err}"
        );
    }
    // A put to an unknown lease fails the whole transaction before anything is applied.
    let err = c
        .txn(Txn::new().and_then([
            TxnOp::Put(PutRequest::new("y", "1")),
            TxnOp::Put(PutRequest::new("z", "1").with_lease(12345)),
        ]))
        .await
        .unwrap_err();
    assert_eq!(err, Error::LeaseNotFound { lease: 12345 });
    assert!(c.get("y").await.unwrap().is_none());
    assert_eq!(
        c.range(RangeRequest::key("a"))
            .await
            .unwrap()
            .header
            .revision,
        rev
    );
}

#[tokio::test]
async fn concurrent_compare_and_swap_counts_exactly() {
    let c = Client::embedded();
    put(&c, "n", "0").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                loop {
                    let kv = c.get("n").await.unwrap().unwrap();
                    let n: u64 = kv.value_str().unwrap().parse().unwrap();
                    let resp = c
                        .txn(
                            Txn::new()
                                .when([Compare::mod_revision(
                                    "n",
                                    CompareOp::Equal,
                                    kv.mod_revision,
                                )])
                                .and_then([TxnOp::Put(PutRequest::new("n", (n + 1).to_string()))]),
                        )
                        .await
                        .unwrap();
                    if resp.succeeded {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = c.get("n").await.unwrap().unwrap();
    assert_eq!(kv.value_str(), Some("200"));
    assert_eq!(kv.version, 201);
}

// ---------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn prefix_range_sort_limit_and_revision_filters() {
    let c = Client::embedded();
    // Create order c, a, b (revs 2, 3, 4); then modify c (5) and a (6).
    put(&c, "/p/c", "3").await;
    put(&c, "/p/a", "1").await;
    put(&c, "/p/b", "2").await;
    put(&c, "/p/c", "33").await;
    put(&c, "/p/a", "11").await;
    // Neighbours outside the prefix.
    put(&c, "/p", "outside").await;
    put(&c, "/p0", "outside").await;
    put(&c, "/o", "outside").await;

    let all = c.range(RangeRequest::prefix("/p/")).await.unwrap();
    assert_eq!(keys(&all.kvs), vec!["/p/a", "/p/b", "/p/c"]);
    assert_eq!((all.count, all.more), (3, false));

    let sorted = |t, o| c.range(RangeRequest::prefix("/p/").sort(t, o));
    use SortOrder::*;
    use SortTarget::*;
    assert_eq!(
        keys(&sorted(Key, Descend).await.unwrap().kvs),
        vec!["/p/c", "/p/b", "/p/a"]
    );
    assert_eq!(
        keys(&sorted(Create, Ascend).await.unwrap().kvs),
        vec!["/p/c", "/p/a", "/p/b"]
    );
    assert_eq!(
        keys(&sorted(Create, Descend).await.unwrap().kvs),
        vec!["/p/b", "/p/a", "/p/c"]
    );
    assert_eq!(
        keys(&sorted(Mod, Ascend).await.unwrap().kvs),
        vec!["/p/b", "/p/c", "/p/a"]
    );
    assert_eq!(
        keys(&sorted(Mod, Descend).await.unwrap().kvs),
        vec!["/p/a", "/p/c", "/p/b"]
    );
    // A non-key target with no order sorts ascending.
    assert_eq!(
        keys(&sorted(Create, None).await.unwrap().kvs),
        vec!["/p/c", "/p/a", "/p/b"]
    );
    // ... but then, as etcd, a limit applies in key order before that sort.
    let quirk = c
        .range(RangeRequest::prefix("/p/").sort(Create, None).limit(2))
        .await
        .unwrap();
    assert_eq!((keys(&quirk.kvs), quirk.more), (vec!["/p/a", "/p/b"], true));
    assert_eq!(
        keys(&sorted(Value, Descend).await.unwrap().kvs),
        vec!["/p/c", "/p/b", "/p/a"]
    );
    let by_version = sorted(Version, Ascend).await.unwrap();
    assert_eq!(by_version.kvs[0].key_str(), Some("/p/b"));

    // Limit: count is the whole range, `more` says something was cut.
    let first = c
        .range(RangeRequest::prefix("/p/").sort(Create, Ascend).limit(1))
        .await
        .unwrap();
    assert_eq!(
        (keys(&first.kvs), first.count, first.more),
        (vec!["/p/c"], 3, true)
    );
    let exact = c.range(RangeRequest::prefix("/p/").limit(3)).await.unwrap();
    assert!(!exact.more);

    // The lock recipe's query: the newest key created before revision 4.
    let pred = c
        .range(
            RangeRequest::prefix("/p/")
                .max_create_revision(3)
                .sort(Create, Descend)
                .limit(1),
        )
        .await
        .unwrap();
    assert_eq!(keys(&pred.kvs), vec!["/p/a"]);
    assert_eq!(pred.count, 3, "count ignores the revision filters, as etcd");
    assert!(pred.more, "two keys passed the filter, one was returned");

    let mid = c
        .range(
            RangeRequest::prefix("/p/")
                .min_create_revision(3)
                .max_create_revision(3),
        )
        .await
        .unwrap();
    assert_eq!(keys(&mid.kvs), vec!["/p/a"]);
    let modded = c
        .range(RangeRequest::prefix("/p/").min_mod_revision(5))
        .await
        .unwrap();
    assert_eq!(keys(&modded.kvs), vec!["/p/a", "/p/c"]);
    let unmodded = c
        .range(RangeRequest::prefix("/p/").max_mod_revision(4))
        .await
        .unwrap();
    assert_eq!(keys(&unmodded.kvs), vec!["/p/b"]);

    // keys_only / count_only.
    let ko = c
        .range(RangeRequest::prefix("/p/").keys_only())
        .await
        .unwrap();
    assert!(ko.kvs.iter().all(|kv| kv.value.is_empty()) && ko.kvs.len() == 3);
    let co = c
        .range(RangeRequest::prefix("/p/").count_only())
        .await
        .unwrap();
    assert_eq!((co.kvs.len(), co.count), (0, 3));

    // Explicit ranges and from-key.
    let r = c
        .range(RangeRequest::new(KeyRange::range("/p/a", "/p/c")))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), vec!["/p/a", "/p/b"]);
    let r = c
        .range(RangeRequest::new(KeyRange::FromKey(b"/p/b".to_vec())))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), vec!["/p/b", "/p/c", "/p0"]);
}

#[tokio::test]
async fn range_at_past_revision() {
    let c = Client::embedded();
    put(&c, "/h/a", "1").await; // 2
    put(&c, "/h/b", "1").await; // 3
    put(&c, "/h/a", "2").await; // 4
    c.delete(DeleteRequest::key("/h/b")).await.unwrap(); // 5

    let at = |rev| c.range(RangeRequest::prefix("/h/").at_revision(rev));
    assert!(at(1).await.unwrap().kvs.is_empty());
    assert_eq!(keys(&at(3).await.unwrap().kvs), vec!["/h/a", "/h/b"]);
    assert_eq!(at(3).await.unwrap().kvs[0].value, b"1");
    assert_eq!(at(4).await.unwrap().kvs[0].value, b"2");
    assert_eq!(keys(&at(5).await.unwrap().kvs), vec!["/h/a"]);
    assert_eq!(
        at(3).await.unwrap().header.revision,
        5,
        "the header is the current revision"
    );

    let err = at(6).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                name: "revision",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn compaction_bounds_history() {
    let backend = EmbeddedBackend::with_options(EmbeddedOptions::new().with_history(5));
    let c = Client::from_backend(Arc::new(backend));
    for i in 0..30 {
        put(&c, "/c/k", &i.to_string()).await;
        put(&c, &format!("/c/tmp{i}"), "x").await;
        c.delete(DeleteRequest::key(format!("/c/tmp{i}")))
            .await
            .unwrap();
    }
    let now = c
        .range(RangeRequest::key("/c/k"))
        .await
        .unwrap()
        .header
        .revision;
    let err = c
        .range(RangeRequest::key("/c/k").at_revision(2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Compacted { revision: 2, .. }), "{err}");
    let err = c
        .watch(WatchRequest::key("/c/k").start_revision(2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Compacted { .. }), "{err}");

    // The most recent revisions stay readable and replayable.
    let recent = c
        .range(RangeRequest::prefix("/c/").at_revision(now - 3))
        .await
        .unwrap();
    assert_eq!(keys(&recent.kvs), vec!["/c/k"]);
    let mut w = c
        .watch(WatchRequest::prefix("/c/").start_revision(now - 4))
        .await
        .unwrap();
    let replay = next(&mut w).await;
    assert_eq!(revs(&replay.events), (now - 4..=now).collect::<Vec<_>>());
    // The current value survives compaction.
    assert_eq!(
        c.get("/c/k").await.unwrap().unwrap().value_str(),
        Some("29")
    );
}

// ---------------------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn lease_expiry_deletes_keys_in_one_revision() {
    let c = Client::embedded();
    let lease = c.lease_grant(1).await.unwrap().id;
    c.put(PutRequest::new("/e/a", "x").with_lease(lease))
        .await
        .unwrap();
    c.put(PutRequest::new("/e/b", "x").with_lease(lease))
        .await
        .unwrap();
    put(&c, "/e/keep", "x").await;
    let written = c
        .range(RangeRequest::key("x"))
        .await
        .unwrap()
        .header
        .revision;
    // Start at the next revision, so even an early expiry is not missed.
    let mut w = c
        .watch(WatchRequest::prefix("/e/").start_revision(written + 1))
        .await
        .unwrap();

    // No traffic: the store's own timer must expire the lease.
    let resp = next(&mut w).await;
    assert_eq!(resp.events.len(), 2, "both keys deleted: {resp:?}");
    assert!(resp.events.iter().all(|e| e.kind == EventKind::Delete));
    assert_eq!(
        revs(&resp.events),
        vec![written + 1, written + 1],
        "in one revision"
    );

    let left = c.range(RangeRequest::prefix("/e/")).await.unwrap();
    assert_eq!(keys(&left.kvs), vec!["/e/keep"]);
    assert_eq!(left.header.revision, written + 1);
    assert_eq!(
        c.lease_keep_alive_once(lease).await.unwrap_err(),
        Error::LeaseNotFound { lease }
    );
    assert_eq!(
        c.lease_time_to_live(lease, false).await.unwrap_err(),
        Error::LeaseNotFound { lease }
    );
    assert_eq!(
        c.lease_revoke(lease).await.unwrap_err(),
        Error::LeaseNotFound { lease }
    );
}

#[tokio::test]
async fn watch_sees_delete_of_lease_expired_key() {
    let c = Client::embedded();
    let lease = c.lease_grant(1).await.unwrap().id;
    let created = c
        .put(PutRequest::new("/svc/node", "up").with_lease(lease))
        .await
        .unwrap()
        .header
        .revision;
    let mut w = c
        .watch(
            WatchRequest::key("/svc/node")
                .start_revision(created + 1)
                .no_put()
                .with_prev_kv(),
        )
        .await
        .unwrap();
    let resp = next(&mut w).await;
    let e = &resp.events[0];
    assert_eq!(e.kind, EventKind::Delete);
    assert_eq!(e.kv.key, b"/svc/node");
    assert_eq!(e.kv.mod_revision, created + 1);
    assert_eq!((e.kv.create_revision, e.kv.version, e.kv.lease), (0, 0, 0));
    let prev = e.prev_kv.as_ref().expect("prev_kv asked for");
    assert_eq!((prev.value_str(), prev.lease), (Some("up"), lease));
    assert!(resp.header.revision > created);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_and_time_to_live() {
    let c = Client::embedded();
    let lease = c.lease_grant(2).await.unwrap().id;
    c.put(PutRequest::new("k", "v").with_lease(lease))
        .await
        .unwrap();
    // Refresh every second for ten seconds: the lease outlives its TTL many times.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(c.lease_keep_alive_once(lease).await.unwrap().ttl, 2);
    }
    assert!(c.get("k").await.unwrap().is_some());

    tokio::time::sleep(Duration::from_millis(500)).await;
    let info = c.lease_time_to_live(lease, true).await.unwrap();
    // Remaining time in whole seconds, truncated as etcd does: 1.5 s left reads as 1.
    assert_eq!((info.id, info.ttl, info.granted_ttl), (lease, 1, 2));
    assert_eq!(info.keys, vec![b"k".to_vec()]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(c.lease_time_to_live(lease, false).await.unwrap().ttl, 0);

    // Stop refreshing: it expires once its TTL has passed since the last keep-alive.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(c.get("k").await.unwrap().is_none());
    assert!(c.lease_keep_alive_once(lease).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn leases_expire_in_deadline_order_without_traffic() {
    let backend = Arc::new(EmbeddedBackend::new());
    let c = Client::from_backend(backend.clone());
    let long = c.lease_grant(5).await.unwrap().id;
    let short = c.lease_grant(1).await.unwrap().id;
    c.put(PutRequest::new("/o/long", "x").with_lease(long))
        .await
        .unwrap();
    c.put(PutRequest::new("/o/short", "x").with_lease(short))
        .await
        .unwrap();
    let mut w = c.watch(WatchRequest::prefix("/o/")).await.unwrap();
    let first = next(&mut w).await;
    assert_eq!(first.events[0].kv.key, b"/o/short");
    assert_eq!(revs(&first.events), vec![4]);
    let second = next(&mut w).await;
    assert_eq!(second.events[0].kv.key, b"/o/long");
    assert_eq!(revs(&second.events), vec![5]);
    assert_eq!(backend.revision(), 5);
}

// ---------------------------------------------------------------------------------------
// Watches
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn watch_from_past_revision_replays_then_follows() {
    let c = Client::embedded();
    put(&c, "/w/a", "1").await; // 2
    put(&c, "/x", "1").await; // 3 (outside)
    put(&c, "/w/b", "1").await; // 4
    c.delete(DeleteRequest::key("/w/a")).await.unwrap(); // 5
    put(&c, "/w/b", "2").await; // 6

    let mut w = c
        .watch(WatchRequest::prefix("/w/").start_revision(3).with_prev_kv())
        .await
        .unwrap();
    let replay = next(&mut w).await;
    assert_eq!(revs(&replay.events), vec![4, 5, 6]);
    assert_eq!(
        replay.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![EventKind::Put, EventKind::Delete, EventKind::Put]
    );
    assert_eq!(replay.events[1].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(replay.events[2].kv.version, 2);
    assert_eq!(replay.header.revision, 6);

    // Then live events, in order, with no gap.
    put(&c, "/w/c", "1").await; // 7
    put(&c, "/x", "2").await; // 8 (outside)
    c.delete(DeleteRequest::prefix("/w/")).await.unwrap(); // 9
    let live = next(&mut w).await;
    assert_eq!((revs(&live.events), live.header.revision), (vec![7], 7));
    let live = next(&mut w).await;
    assert_eq!(revs(&live.events), vec![9, 9]);
    assert_eq!(live.header.revision, 9);

    // From the first revision: the whole history of the prefix.
    let mut all = c
        .watch(WatchRequest::prefix("/w/").start_revision(1))
        .await
        .unwrap();
    assert_eq!(
        revs(&next(&mut all).await.events),
        vec![2, 4, 5, 6, 7, 9, 9]
    );
}

#[tokio::test]
async fn watch_start_none_future_and_filters() {
    let c = Client::embedded();
    put(&c, "k", "1").await; // 2
                             // No start revision: only what happens after the watch is open.
    let mut now = c.watch(WatchRequest::key("k")).await.unwrap();
    // A start revision in the future: nothing before it.
    let mut future = c
        .watch(WatchRequest::key("k").start_revision(5))
        .await
        .unwrap();
    let mut puts = c
        .watch(WatchRequest::key("k").start_revision(1).no_delete())
        .await
        .unwrap();
    let mut deletes = c
        .watch(WatchRequest::key("k").start_revision(1).no_put())
        .await
        .unwrap();

    put(&c, "k", "2").await; // 3
    c.delete(DeleteRequest::key("k")).await.unwrap(); // 4
    put(&c, "k", "3").await; // 5

    assert_eq!(revs(&next(&mut now).await.events), vec![3]);
    assert_eq!(revs(&next(&mut now).await.events), vec![4]);
    assert_eq!(revs(&next(&mut now).await.events), vec![5]);
    assert_eq!(revs(&next(&mut future).await.events), vec![5]);
    assert_eq!(revs(&next(&mut puts).await.events), vec![2]);
    assert_eq!(revs(&next(&mut puts).await.events), vec![3]);
    assert_eq!(revs(&next(&mut puts).await.events), vec![5]);
    assert_eq!(revs(&next(&mut deletes).await.events), vec![4]);
    // Nothing else is pending on the filtered watches.
    deletes.request_progress().await.unwrap();
    let p = next(&mut deletes).await;
    assert!(p.is_progress_notify());
    assert_eq!(p.header.revision, 5);
}

#[tokio::test]
async fn progress_request_follows_pending_events() {
    let c = Client::embedded();
    let mut w = c.watch(WatchRequest::prefix("/p/")).await.unwrap();
    put(&c, "/p/a", "1").await;
    put(&c, "/other", "1").await;
    w.request_progress().await.unwrap();
    let first = next(&mut w).await;
    assert_eq!(revs(&first.events), vec![2]);
    let progress = next(&mut w).await;
    assert!(progress.is_progress_notify());
    assert_eq!(
        progress.header.revision, 3,
        "progress covers the unrelated write too"
    );
}

#[tokio::test(start_paused = true)]
async fn periodic_progress_notifications() {
    let backend = EmbeddedBackend::with_options(
        EmbeddedOptions::new().with_progress_interval(Duration::from_secs(1)),
    );
    let c = Client::from_backend(Arc::new(backend));
    let mut quiet = c.watch(WatchRequest::key("a")).await.unwrap();
    let mut notified = c
        .watch(WatchRequest::key("a").with_progress_notify())
        .await
        .unwrap();
    put(&c, "b", "1").await;
    let p = next(&mut notified).await;
    assert!(p.is_progress_notify());
    assert_eq!(p.header.revision, 2);
    // The watch without progress notifications stays silent.
    assert!(tokio::time::timeout(Duration::from_secs(5), quiet.next())
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_every_revision_in_order_under_concurrent_writers() {
    let c = Client::embedded();
    let mut w = c.watch(WatchRequest::prefix("/c/")).await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    put(&c, &format!("/c/{t}/{i}"), "x").await;
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    while seen.len() < 200 {
        let resp = next(&mut w).await;
        assert!(resp
            .events
            .iter()
            .all(|e| e.kv.mod_revision <= resp.header.revision));
        seen.extend(revs(&resp.events));
    }
    for t in writers {
        t.await.unwrap();
    }
    assert_eq!(seen, (2..202).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropped_watch_is_forgotten() {
    let backend = Arc::new(EmbeddedBackend::new());
    let c = Client::from_backend(backend.clone());
    let w = c.watch(WatchRequest::prefix("/d/")).await.unwrap();
    assert!(format!("{backend:?}").contains("watches: 1"));
    drop(w);
    assert!(format!("{backend:?}").contains("watches: 0"));
    put(&c, "/d/a", "x").await;
}

// ---------------------------------------------------------------------------------------
// Fault injection and bad input
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sever_watches_ends_streams_with_error() {
    let c = Client::embedded();
    let faults = c.embedded_faults().unwrap();
    let mut a = c.watch(WatchRequest::prefix("/a/")).await.unwrap();
    let mut b = c.watch(WatchRequest::key("b")).await.unwrap();
    put(&c, "/a/1", "x").await;
    faults.sever_watches();

    // Events committed before the cut are still delivered, then the error, then the end.
    assert_eq!(revs(&next(&mut a).await.events), vec![2]);
    for w in [&mut a, &mut b] {
        let err = tokio::time::timeout(PATIENCE, w.next())
            .await
            .unwrap()
            .expect("an error, not a silent end")
            .unwrap_err();
        assert!(matches!(err, Error::WatchClosed { .. }), "{err}");
        assert!(w.next().await.is_none());
        assert!(w.request_progress().await.is_err());
    }

    // New watches work, and can resume where the old ones stopped.
    put(&c, "/a/2", "x").await; // 3
    let mut again = c
        .watch(WatchRequest::prefix("/a/").start_revision(3))
        .await
        .unwrap();
    assert_eq!(revs(&next(&mut again).await.events), vec![3]);
}

#[tokio::test]
async fn dropping_the_store_ends_watches_with_error() {
    let backend = Arc::new(EmbeddedBackend::new());
    let c = Client::from_backend(backend.clone());
    let mut w = c.watch(WatchRequest::key("k")).await.unwrap();
    drop(c);
    drop(backend);
    let err = w.next().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::WatchClosed { .. }), "{err}");
    assert!(w.next().await.is_none());
}

#[tokio::test]
async fn expire_lease_fault() {
    let c = Client::embedded();
    let faults = c.embedded_faults().unwrap();
    let lease = c.lease_grant(3600).await.unwrap().id;
    c.put(PutRequest::new("/f/a", "x").with_lease(lease))
        .await
        .unwrap();
    c.put(PutRequest::new("/f/b", "x").with_lease(lease))
        .await
        .unwrap(); // 3
    let mut w = c.watch(WatchRequest::prefix("/f/")).await.unwrap();

    faults.expire_lease(lease).unwrap();
    let resp = next(&mut w).await;
    assert_eq!(revs(&resp.events), vec![4, 4]);
    assert_eq!(c.range(RangeRequest::prefix("/f/")).await.unwrap().count, 0);
    assert_eq!(
        c.lease_keep_alive_once(lease).await.unwrap_err(),
        Error::LeaseNotFound { lease }
    );
    assert_eq!(
        c.put(PutRequest::new("/f/c", "x").with_lease(lease))
            .await
            .unwrap_err(),
        Error::LeaseNotFound { lease }
    );
    assert_eq!(
        faults.expire_lease(lease).unwrap_err(),
        Error::LeaseNotFound { lease }
    );
    // A client over another backend has no fault handle.
    let other = Client::from_backend(Arc::new(EmbeddedBackend::new()));
    assert!(other.embedded_faults().is_none());
}

#[tokio::test]
async fn bad_input_names_the_argument() {
    let c = Client::embedded();
    let name = |e: Error| match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other}"),
    };
    assert_eq!(name(c.lease_grant(0).await.unwrap_err()), "ttl");
    assert_eq!(name(c.backend().lease_grant(-1).await.unwrap_err()), "ttl");
    assert_eq!(
        name(c.put(PutRequest::new("", "v")).await.unwrap_err()),
        "key"
    );
    assert_eq!(
        name(c.range(RangeRequest::prefix("")).await.unwrap_err()),
        "prefix"
    );
    assert_eq!(
        name(
            c.backend()
                .range(RangeRequest::prefix(""))
                .await
                .unwrap_err()
        ),
        "prefix"
    );
    assert_eq!(
        name(c.delete(DeleteRequest::prefix("")).await.unwrap_err()),
        "prefix"
    );
    assert_eq!(
        name(c.watch(WatchRequest::prefix("")).await.unwrap_err()),
        "prefix"
    );
    assert_eq!(
        name(
            c.watch(WatchRequest::key("k").start_revision(0))
                .await
                .unwrap_err()
        ),
        "start_revision"
    );
    assert_eq!(
        name(
            c.range(RangeRequest::new(KeyRange::range("b", "a")))
                .await
                .unwrap_err()
        ),
        "range_end"
    );
    assert_eq!(
        name(c.range(RangeRequest::key("k").limit(-1)).await.unwrap_err()),
        "limit"
    );
    assert_eq!(name(c.lease_keep_alive_once(0).await.unwrap_err()), "lease");
    assert_eq!(
        name(
            c.txn(Txn::new().when([Compare::version("", CompareOp::Equal, 0)]))
                .await
                .unwrap_err()
        ),
        "compare.key"
    );
    let err = Client::etcd(&[]).await.unwrap_err();
    assert_eq!(name(err), "endpoints");
    // Nothing was written by any of it.
    assert_eq!(
        c.range(RangeRequest::key("k"))
            .await
            .unwrap()
            .header
            .revision,
        1
    );
}

#[tokio::test]
async fn errors_explain_what_to_do() {
    let c = Client::embedded();
    let msg = c.lease_grant(0).await.unwrap_err().to_string();
    assert!(msg.contains("ttl") && msg.contains("at least 1"), "{msg}");
    let msg = c.lease_keep_alive_once(77).await.unwrap_err().to_string();
    assert!(msg.contains("grant a new lease"), "{msg}");
}
