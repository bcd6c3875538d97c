//! Conformance suite for the `Backend` trait.
//!
//! Every check in `checks` is written once and runs twice: against the embedded backend
//! (`embedded::*`) and against a real etcd started for the test (`etcd::*`, on free loopback
//! ports in a temporary directory, killed when the test ends). Each test gets a fresh store,
//! so revision arithmetic is exact; checks still compute revisions relative to what they
//! read, never from fixed numbers, except where a fresh store's revision 1 is the point.
//!
//! The etcd tests need the `etcd` binary (Debian/Ubuntu: `apt-get install etcd-server`); they
//! fail with that advice when it is missing, unless `GOSYNC_SKIP_ETCD=1` is set.
//!
//! `etcd_only::*` holds etcd-specific checks: connecting to nothing, etcd dying under a
//! watch, and the connection's housekeeping.

use std::time::Duration;

use gosync_dist::testing::EtcdServer;
use gosync_dist::Client;

/// A backend under test, with the etcd server behind it (if any) kept alive until the end.
struct Fixture {
    client: Client,
    // Declared after `client`, so the client is dropped before the server is killed.
    _etcd: Option<EtcdServer>,
}

fn embedded_fixture() -> Fixture {
    Fixture {
        client: Client::embedded(),
        _etcd: None,
    }
}

/// A fresh etcd and a client connected to it; `None` when etcd tests are skipped.
async fn etcd_fixture() -> Option<Fixture> {
    let etcd = EtcdServer::start_or_skip()?;
    let client = Client::etcd(&[etcd.endpoint()])
        .await
        .unwrap_or_else(|e| panic!("connecting to the test etcd failed: {e}"));
    Some(Fixture {
        client,
        _etcd: Some(etcd),
    })
}

/// Generates one test per check and backend.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $check() {
                    let fixture = super::embedded_fixture();
                    super::checks::$check(&fixture.client).await;
                }
            )*
        }

        mod etcd {
            $(
                #[tokio::test]
                async fn $check() {
                    let Some(fixture) = super::etcd_fixture().await else { return };
                    super::checks::$check(&fixture.client).await;
                }
            )*
        }
    };
}

conformance!(
    fresh_store_starts_at_revision_1,
    put_and_range_track_revisions_and_versions,
    put_with_prev_kv_and_lease,
    delete_counts_and_uses_one_revision,
    delete_of_nothing_changes_nothing,
    range_prefix_excludes_neighbours,
    range_sorts_by_key_create_and_mod,
    range_limit_count_and_more,
    range_keys_only_and_count_only,
    range_revision_filters,
    range_at_past_revision,
    range_at_future_revision_is_invalid,
    range_key_ranges,
    txn_compare_table_on_existing_key,
    txn_compare_table_on_missing_key,
    txn_branches_responses_and_revisions,
    txn_rejects_duplicate_keys,
    invalid_arguments_are_named,
    lease_grant_ttl_keep_alive_revoke,
    lease_revoke_deletes_keys_in_one_revision,
    unknown_lease_is_not_found,
    watch_replays_from_past_revision,
    watch_prefix_sees_puts_and_deletes,
    watch_without_start_begins_after_current_revision,
    watch_from_future_revision_waits_for_it,
    watch_key_ignores_other_keys,
    watch_filters_drop_puts_or_deletes,
    watch_progress_request,
    lease_expiry_deletes_keys_and_watch_sees_it,
);

/// Generous bound on waiting for something that should happen promptly.
const PROMPT: Duration = Duration::from_secs(10);

mod checks {
    use super::PROMPT;
    use gosync_dist::backend::{
        Compare, CompareOp, DeleteRequest, Event, EventKind, KeyRange, KeyValue, PutRequest,
        RangeRequest, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchRequest, WatchStream,
    };
    use gosync_dist::{Client, Error};

    // ----------------------------------------------------------------------------------
    // helpers
    // ----------------------------------------------------------------------------------

    /// The store's current revision.
    async fn revision(c: &Client) -> i64 {
        c.range(RangeRequest::key("/conformance/no-such-key"))
            .await
            .expect("range")
            .header
            .revision
    }

    async fn put(c: &Client, key: &str, value: &str) -> i64 {
        c.put(PutRequest::new(key, value))
            .await
            .expect("put")
            .header
            .revision
    }

    async fn get(c: &Client, key: &str) -> Option<KeyValue> {
        c.get(key).await.expect("get")
    }

    fn keys(kvs: &[KeyValue]) -> Vec<String> {
        kvs.iter()
            .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
            .collect()
    }

    /// Reads events until `n` have arrived, skipping progress notifications; panics on an
    /// error item, an ended stream, or when they do not arrive promptly.
    async fn next_events(w: &mut WatchStream, n: usize) -> Vec<Event> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + PROMPT;
        while events.len() < n {
            let item = tokio::time::timeout_at(deadline, w.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "only {} of {n} watch events arrived within {PROMPT:?}: {events:?}",
                        events.len()
                    )
                });
            match item {
                Some(Ok(resp)) => {
                    for e in &resp.events {
                        assert!(
                            resp.header.revision >= e.kv.mod_revision,
                            "response header {} is older than its event {e:?}",
                            resp.header.revision
                        );
                    }
                    events.extend(resp.events);
                }
                Some(Err(e)) => panic!("watch failed after {events:?}: {e}"),
                None => panic!("watch ended after {events:?}"),
            }
        }
        assert_eq!(events.len(), n, "more events than expected: {events:?}");
        events
    }

    /// `(kind, key, mod_revision)` of each event, for compact comparisons.
    fn summary(events: &[Event]) -> Vec<(EventKind, String, i64)> {
        events
            .iter()
            .map(|e| {
                (
                    e.kind,
                    String::from_utf8_lossy(&e.kv.key).into_owned(),
                    e.kv.mod_revision,
                )
            })
            .collect()
    }

    use EventKind::{Delete as D, Put as P};

    // ----------------------------------------------------------------------------------
    // KV: put / range / delete
    // ----------------------------------------------------------------------------------

    pub async fn fresh_store_starts_at_revision_1(c: &Client) {
        assert_eq!(revision(c).await, 1);
        assert_eq!(put(c, "/a", "1").await, 2);
    }

    pub async fn put_and_range_track_revisions_and_versions(c: &Client) {
        let r0 = revision(c).await;
        let r1 = put(c, "/k", "v1").await;
        assert_eq!(r1, r0 + 1, "a put takes the next revision");
        let kv = get(c, "/k").await.expect("just written");
        assert_eq!(kv.key, b"/k");
        assert_eq!(kv.value, b"v1");
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.version, kv.lease),
            (r1, r1, 1, 0)
        );

        let r2 = put(c, "/k", "v2").await;
        assert_eq!(r2, r1 + 1);
        let kv = get(c, "/k").await.unwrap();
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.version),
            (r1, r2, 2),
            "an overwrite keeps the create revision and bumps the version"
        );
        assert_eq!(kv.value, b"v2");

        // Reads do not change the revision; every answer carries the current one.
        let resp = c.range(RangeRequest::key("/missing")).await.unwrap();
        assert_eq!((resp.header.revision, resp.count), (r2, 0));
        assert!(resp.kvs.is_empty() && !resp.more);

        // Delete and re-create: a new life for the key.
        let rd = c
            .delete(DeleteRequest::key("/k"))
            .await
            .unwrap()
            .header
            .revision;
        assert_eq!(rd, r2 + 1);
        let r3 = put(c, "/k", "v3").await;
        let kv = get(c, "/k").await.unwrap();
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.version),
            (r3, r3, 1)
        );
    }

    pub async fn put_with_prev_kv_and_lease(c: &Client) {
        let first = c
            .put(PutRequest::new("/p", "1").with_prev_kv())
            .await
            .unwrap();
        assert_eq!(first.prev_kv, None, "no previous pair for a new key");
        let second = c
            .put(PutRequest::new("/p", "2").with_prev_kv())
            .await
            .unwrap();
        let prev = second.prev_kv.expect("previous pair");
        assert_eq!(prev.value, b"1");
        assert_eq!(prev.mod_revision, first.header.revision);
        let plain = c.put(PutRequest::new("/p", "3")).await.unwrap();
        assert_eq!(plain.prev_kv, None, "not asked for");

        let lease = c.lease_grant(60).await.unwrap().id;
        c.put(PutRequest::new("/p", "4").with_lease(lease))
            .await
            .unwrap();
        assert_eq!(get(c, "/p").await.unwrap().lease, lease);
        // A put without a lease detaches the key.
        c.put(PutRequest::new("/p", "5")).await.unwrap();
        assert_eq!(get(c, "/p").await.unwrap().lease, 0);
        c.lease_revoke(lease).await.unwrap();
        assert!(
            get(c, "/p").await.is_some(),
            "detached key outlives the lease"
        );
    }

    pub async fn delete_counts_and_uses_one_revision(c: &Client) {
        for k in ["/d/a", "/d/b", "/d/c", "/e"] {
            put(c, k, k).await;
        }
        let r0 = revision(c).await;
        let resp = c
            .delete(DeleteRequest::prefix("/d/").with_prev_kv())
            .await
            .unwrap();
        assert_eq!(resp.deleted, 3);
        assert_eq!(
            resp.header.revision,
            r0 + 1,
            "one revision for the whole delete"
        );
        let mut prev = keys(&resp.prev_kvs);
        prev.sort();
        assert_eq!(prev, ["/d/a", "/d/b", "/d/c"]);
        assert_eq!(resp.prev_kvs[0].value, resp.prev_kvs[0].key);

        let left = c.range(RangeRequest::prefix("/")).await.unwrap();
        assert_eq!(keys(&left.kvs), ["/e"]);

        let one = c.delete(DeleteRequest::key("/e")).await.unwrap();
        assert_eq!((one.deleted, one.header.revision), (1, r0 + 2));
        assert!(one.prev_kvs.is_empty(), "not asked for");
    }

    pub async fn delete_of_nothing_changes_nothing(c: &Client) {
        put(c, "/x", "1").await;
        let r0 = revision(c).await;
        let resp = c.delete(DeleteRequest::key("/nothing")).await.unwrap();
        assert_eq!((resp.deleted, resp.header.revision), (0, r0));
        let resp = c.delete(DeleteRequest::prefix("/nothing/")).await.unwrap();
        assert_eq!((resp.deleted, resp.header.revision), (0, r0));
        assert_eq!(revision(c).await, r0);
    }

    pub async fn range_prefix_excludes_neighbours(c: &Client) {
        for k in ["/p", "/p/", "/p/a", "/p/b/c", "/p0", "/o", "/q"] {
            put(c, k, "v").await;
        }
        let resp = c.range(RangeRequest::prefix("/p/")).await.unwrap();
        assert_eq!(keys(&resp.kvs), ["/p/", "/p/a", "/p/b/c"]);
        assert_eq!(resp.count, 3);
        let resp = c.range(RangeRequest::prefix("/p")).await.unwrap();
        assert_eq!(keys(&resp.kvs), ["/p", "/p/", "/p/a", "/p/b/c", "/p0"]);
    }

    pub async fn range_sorts_by_key_create_and_mod(c: &Client) {
        // Created in the order c, a, b; then a is modified last.
        put(c, "/s/c", "3").await;
        put(c, "/s/a", "1").await;
        put(c, "/s/b", "2").await;
        put(c, "/s/a", "1'").await;
        let sorted = |target, order| async move {
            let resp = c
                .range(RangeRequest::prefix("/s/").sort(target, order))
                .await
                .unwrap();
            keys(&resp.kvs)
        };
        use SortOrder::{Ascend, Descend};
        use SortTarget::{Create, Key, Mod};
        assert_eq!(sorted(Key, SortOrder::None).await, ["/s/a", "/s/b", "/s/c"]);
        assert_eq!(sorted(Key, Ascend).await, ["/s/a", "/s/b", "/s/c"]);
        assert_eq!(sorted(Key, Descend).await, ["/s/c", "/s/b", "/s/a"]);
        assert_eq!(sorted(Create, Ascend).await, ["/s/c", "/s/a", "/s/b"]);
        assert_eq!(sorted(Create, Descend).await, ["/s/b", "/s/a", "/s/c"]);
        assert_eq!(sorted(Mod, Ascend).await, ["/s/c", "/s/b", "/s/a"]);
        assert_eq!(sorted(Mod, Descend).await, ["/s/a", "/s/b", "/s/c"]);
        // A non-key target without an order sorts ascending (etcd's rule).
        assert_eq!(
            sorted(Create, SortOrder::None).await,
            ["/s/c", "/s/a", "/s/b"]
        );
        assert_eq!(
            sorted(SortTarget::Version, Descend).await[0],
            "/s/a",
            "the only key at version 2"
        );
        assert_eq!(
            sorted(SortTarget::Value, Ascend).await,
            ["/s/a", "/s/b", "/s/c"],
            "values 1', 2, 3"
        );
    }

    pub async fn range_limit_count_and_more(c: &Client) {
        for k in ["/l/1", "/l/2", "/l/3"] {
            put(c, k, "v").await;
        }
        let resp = c.range(RangeRequest::prefix("/l/").limit(2)).await.unwrap();
        assert_eq!(keys(&resp.kvs), ["/l/1", "/l/2"]);
        assert_eq!((resp.count, resp.more), (3, true));

        let resp = c.range(RangeRequest::prefix("/l/").limit(3)).await.unwrap();
        assert_eq!((resp.kvs.len(), resp.count, resp.more), (3, 3, false));

        // Limit applies after sorting: the newest one (etcd's "last key" query).
        let resp = c
            .range(
                RangeRequest::prefix("/l/")
                    .sort(SortTarget::Create, SortOrder::Descend)
                    .limit(1),
            )
            .await
            .unwrap();
        assert_eq!(keys(&resp.kvs), ["/l/3"]);
        assert_eq!((resp.count, resp.more), (3, true));

        let resp = c.range(RangeRequest::key("/l/2").limit(1)).await.unwrap();
        assert_eq!((resp.kvs.len(), resp.count, resp.more), (1, 1, false));
    }

    pub async fn range_keys_only_and_count_only(c: &Client) {
        put(c, "/v/a", "value-a").await;
        put(c, "/v/b", "value-b").await;
        let resp = c
            .range(RangeRequest::prefix("/v/").keys_only())
            .await
            .unwrap();
        assert_eq!(keys(&resp.kvs), ["/v/a", "/v/b"]);
        assert!(resp.kvs.iter().all(|kv| kv.value.is_empty()));
        assert!(
            resp.kvs
                .iter()
                .all(|kv| kv.version == 1 && kv.mod_revision > 0),
            "metadata is kept: {:?}",
            resp.kvs
        );
        let resp = c
            .range(RangeRequest::prefix("/v/").count_only())
            .await
            .unwrap();
        assert!(resp.kvs.is_empty());
        assert_eq!(resp.count, 2);
    }

    pub async fn range_revision_filters(c: &Client) {
        let ra = put(c, "/f/a", "1").await;
        let rb = put(c, "/f/b", "1").await;
        let rc = put(c, "/f/c", "1").await;
        let ra2 = put(c, "/f/a", "2").await; // a: create ra, mod ra2
        let q = || RangeRequest::prefix("/f/");

        let r = c.range(q().min_create_revision(rb)).await.unwrap();
        assert_eq!(keys(&r.kvs), ["/f/b", "/f/c"]);
        assert_eq!(r.count, 3, "count is taken before the revision filters");
        let r = c.range(q().max_create_revision(rb)).await.unwrap();
        assert_eq!(keys(&r.kvs), ["/f/a", "/f/b"]);
        let r = c.range(q().min_mod_revision(rc)).await.unwrap();
        assert_eq!(keys(&r.kvs), ["/f/a", "/f/c"]);
        let r = c.range(q().max_mod_revision(rc)).await.unwrap();
        assert_eq!(keys(&r.kvs), ["/f/b", "/f/c"]);
        let r = c
            .range(q().min_mod_revision(ra2).max_mod_revision(ra2))
            .await
            .unwrap();
        assert_eq!(keys(&r.kvs), ["/f/a"]);
        let r = c
            .range(q().min_create_revision(ra).max_create_revision(ra))
            .await
            .unwrap();
        assert_eq!(keys(&r.kvs), ["/f/a"]);

        // The wait-for-predecessor query of etcd's mutex: the newest key created before rc.
        let r = c
            .range(
                q().max_create_revision(rc - 1)
                    .sort(SortTarget::Create, SortOrder::Descend)
                    .limit(1),
            )
            .await
            .unwrap();
        assert_eq!(keys(&r.kvs), ["/f/b"]);

        // Filters and limit: `more` counts what the filters let through.
        let r = c.range(q().min_create_revision(rb).limit(1)).await.unwrap();
        assert_eq!(keys(&r.kvs), ["/f/b"]);
        assert!(r.more);
        let r = c.range(q().min_create_revision(rc).limit(1)).await.unwrap();
        assert_eq!(keys(&r.kvs), ["/f/c"]);
        assert!(!r.more, "only one key passes the filter");
    }

    pub async fn range_at_past_revision(c: &Client) {
        let r1 = put(c, "/h", "v1").await;
        let r2 = put(c, "/h", "v2").await;
        put(c, "/h2", "other").await;
        let r3 = c
            .delete(DeleteRequest::key("/h"))
            .await
            .unwrap()
            .header
            .revision;
        let now = revision(c).await;

        let at = |rev| async move {
            c.range(RangeRequest::key("/h").at_revision(rev))
                .await
                .unwrap()
        };
        let old = at(r1).await;
        assert_eq!(old.kvs[0].value, b"v1");
        assert_eq!(
            (
                old.kvs[0].create_revision,
                old.kvs[0].mod_revision,
                old.kvs[0].version
            ),
            (r1, r1, 1)
        );
        assert_eq!(
            old.header.revision, now,
            "the header says the current revision"
        );
        let mid = at(r2).await;
        assert_eq!(
            (mid.kvs[0].value.as_slice(), mid.kvs[0].version),
            (&b"v2"[..], 2)
        );
        assert!(at(r3).await.kvs.is_empty(), "deleted at r3");
        assert!(at(r1 - 1).await.kvs.is_empty(), "not yet written");

        // A prefix read at a past revision.
        let resp = c
            .range(RangeRequest::prefix("/h").at_revision(r2))
            .await
            .unwrap();
        assert_eq!(keys(&resp.kvs), ["/h"]);
        assert_eq!(resp.count, 1);
    }

    pub async fn range_at_future_revision_is_invalid(c: &Client) {
        let now = revision(c).await;
        let err = c
            .range(RangeRequest::key("/k").at_revision(now + 10))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    name: "revision",
                    ..
                }
            ),
            "{err:?}"
        );
        // The current revision itself is fine.
        c.range(RangeRequest::key("/k").at_revision(now))
            .await
            .unwrap();
    }

    pub async fn range_key_ranges(c: &Client) {
        for k in ["a", "b", "c", "d", "\u{7f}x"] {
            put(c, k, "v").await;
        }
        put(c, "\u{7f}", "v").await;
        let r = c
            .range(RangeRequest::new(KeyRange::range("b", "d")))
            .await
            .unwrap();
        assert_eq!(keys(&r.kvs), ["b", "c"]);
        let r = c
            .range(RangeRequest::new(KeyRange::FromKey(b"c".to_vec())))
            .await
            .unwrap();
        assert_eq!(keys(&r.kvs), ["c", "d", "\u{7f}", "\u{7f}x"]);
        // Keys with 0xff bytes: the prefix [0xff] has no end key and reads to the end.
        c.put(PutRequest::new(vec![0xff, 1], "v")).await.unwrap();
        c.put(PutRequest::new(vec![0xff, 0xff], "v")).await.unwrap();
        let r = c.range(RangeRequest::prefix(vec![0xff])).await.unwrap();
        assert_eq!(r.count, 2);
        let r = c.range(RangeRequest::prefix(vec![b'\x7f'])).await.unwrap();
        assert_eq!(keys(&r.kvs), ["\u{7f}", "\u{7f}x"]);
        let d = c
            .delete(DeleteRequest::new(KeyRange::range("a", "c")))
            .await
            .unwrap();
        assert_eq!(d.deleted, 2);
        let d = c
            .delete(DeleteRequest::new(KeyRange::FromKey(b"d".to_vec())))
            .await
            .unwrap();
        assert_eq!(d.deleted, 5, "d, \\x7f, \\x7fx, \\xff\\x01, \\xff\\xff");
        assert_eq!(
            keys(&c.range(RangeRequest::prefix("c")).await.unwrap().kvs),
            ["c"]
        );
    }

    // ----------------------------------------------------------------------------------
    // Txn
    // ----------------------------------------------------------------------------------

    /// Whether a transaction with just this compare takes its success branch; also checks
    /// that a read-only transaction changes no revision.
    async fn holds(c: &Client, compare: Compare) -> bool {
        let before = revision(c).await;
        let resp = c.txn(Txn::new().when([compare])).await.unwrap();
        assert_eq!(
            resp.header.revision, before,
            "a read-only txn uses no revision"
        );
        assert!(resp.responses.is_empty());
        resp.succeeded
    }

    pub async fn txn_compare_table_on_existing_key(c: &Client) {
        let create = put(c, "/t", "m").await;
        let lease = c.lease_grant(60).await.unwrap().id;
        let modr = c
            .put(PutRequest::new("/t", "m").with_lease(lease))
            .await
            .unwrap()
            .header
            .revision;
        // "/t": value "m", version 2, create `create`, mod `modr`, lease `lease`.
        use CompareOp::{Equal as Eq, Greater as Gt, Less as Lt, NotEqual as Ne};
        let table: Vec<(Compare, bool)> = vec![
            (Compare::value("/t", Eq, "m"), true),
            (Compare::value("/t", Ne, "m"), false),
            (Compare::value("/t", Lt, "n"), true),
            (Compare::value("/t", Lt, "m"), false),
            (Compare::value("/t", Gt, "l"), true),
            (Compare::value("/t", Gt, "mm"), false),
            (Compare::value("/t", Eq, ""), false),
            (Compare::version("/t", Eq, 2), true),
            (Compare::version("/t", Ne, 2), false),
            (Compare::version("/t", Gt, 1), true),
            (Compare::version("/t", Lt, 2), false),
            (Compare::version("/t", Lt, 3), true),
            (Compare::create_revision("/t", Eq, create), true),
            (Compare::create_revision("/t", Eq, 0), false),
            (Compare::create_revision("/t", Gt, 0), true),
            (Compare::create_revision("/t", Lt, create), false),
            (Compare::create_revision("/t", Lt, create + 1), true),
            (Compare::mod_revision("/t", Eq, modr), true),
            (Compare::mod_revision("/t", Ne, modr), false),
            (Compare::mod_revision("/t", Gt, create), true),
            (Compare::mod_revision("/t", Lt, modr), false),
            (Compare::lease("/t", Eq, lease), true),
            (Compare::lease("/t", Ne, 0), true),
            (Compare::lease("/t", Eq, 0), false),
        ];
        let mut wrong = Vec::new();
        for (compare, expected) in table {
            if holds(c, compare.clone()).await != expected {
                wrong.push((compare, expected));
            }
        }
        assert!(
            wrong.is_empty(),
            "compares evaluated wrongly (expected shown): {wrong:#?}"
        );

        // Several compares: all must hold.
        let all = Txn::new().when([Compare::value("/t", Eq, "m"), Compare::version("/t", Eq, 2)]);
        assert!(c.txn(all).await.unwrap().succeeded);
        let one_fails =
            Txn::new().when([Compare::value("/t", Eq, "m"), Compare::version("/t", Eq, 1)]);
        assert!(!c.txn(one_fails).await.unwrap().succeeded);
    }

    pub async fn txn_compare_table_on_missing_key(c: &Client) {
        put(c, "/other", "x").await;
        use CompareOp::{Equal as Eq, Greater as Gt, Less as Lt, NotEqual as Ne};
        // A missing key: numbers compare as 0; every value compare is false.
        let table: Vec<(Compare, bool)> = vec![
            (Compare::value("/m", Eq, ""), false),
            (Compare::value("/m", Ne, "x"), false),
            (Compare::value("/m", Lt, "x"), false),
            (Compare::value("/m", Gt, ""), false),
            (Compare::version("/m", Eq, 0), true),
            (Compare::version("/m", Gt, 0), false),
            (Compare::version("/m", Lt, 1), true),
            (Compare::create_revision("/m", Eq, 0), true),
            (Compare::create_revision("/m", Ne, 0), false),
            (Compare::create_revision("/m", Lt, 5), true),
            (Compare::mod_revision("/m", Eq, 0), true),
            (Compare::mod_revision("/m", Gt, 0), false),
            (Compare::lease("/m", Eq, 0), true),
        ];
        let mut wrong = Vec::new();
        for (compare, expected) in table {
            if holds(c, compare.clone()).await != expected {
                wrong.push((compare, expected));
            }
        }
        assert!(
            wrong.is_empty(),
            "compares evaluated wrongly (expected shown): {wrong:#?}"
        );

        // A deleted key is missing too.
        put(c, "/gone", "x").await;
        c.delete(DeleteRequest::key("/gone")).await.unwrap();
        assert!(holds(c, Compare::create_revision("/gone", Eq, 0)).await);
        assert!(!holds(c, Compare::value("/gone", Eq, "x")).await);
    }

    pub async fn txn_branches_responses_and_revisions(c: &Client) {
        put(c, "/x/old", "1").await;
        let r0 = revision(c).await;

        // Success branch: several writes, one revision; a read sees the branch's own writes.
        let txn = Txn::new()
            .when([Compare::create_revision("/x/new", CompareOp::Equal, 0)])
            .and_then([
                TxnOp::Put(PutRequest::new("/x/new", "n")),
                TxnOp::Put(PutRequest::new("/x/old", "2").with_prev_kv()),
                TxnOp::Delete(DeleteRequest::key("/x/absent")),
                TxnOp::Range(RangeRequest::prefix("/x/")),
            ])
            .or_else([TxnOp::Range(RangeRequest::key("/x/new"))]);
        let resp = c.txn(txn.clone()).await.unwrap();
        assert!(resp.succeeded);
        assert_eq!(
            resp.header.revision,
            r0 + 1,
            "all writes share one revision"
        );
        assert_eq!(resp.responses.len(), 4);
        match &resp.responses[0] {
            TxnOpResponse::Put(p) => assert_eq!(p.prev_kv, None),
            other => panic!("expected a put response, got {other:?}"),
        }
        match &resp.responses[1] {
            TxnOpResponse::Put(p) => {
                assert_eq!(
                    p.prev_kv.as_ref().map(|kv| kv.value.clone()),
                    Some(b"1".to_vec())
                )
            }
            other => panic!("expected a put response, got {other:?}"),
        }
        match &resp.responses[2] {
            TxnOpResponse::Delete(d) => assert_eq!(d.deleted, 0),
            other => panic!("expected a delete response, got {other:?}"),
        }
        match &resp.responses[3] {
            TxnOpResponse::Range(r) => {
                assert_eq!(keys(&r.kvs), ["/x/new", "/x/old"]);
                assert_eq!(r.kvs[1].value, b"2", "reads see the branch's own writes");
                assert!(r.kvs.iter().all(|kv| kv.mod_revision == r0 + 1));
            }
            other => panic!("expected a range response, got {other:?}"),
        }
        let new = get(c, "/x/new").await.unwrap();
        assert_eq!((new.create_revision, new.mod_revision), (r0 + 1, r0 + 1));

        // Same txn again: the compare fails, the read-only else branch runs, no revision.
        let resp = c.txn(txn).await.unwrap();
        assert!(!resp.succeeded);
        assert_eq!(resp.header.revision, r0 + 1);
        match &resp.responses[..] {
            [TxnOpResponse::Range(r)] => assert_eq!(keys(&r.kvs), ["/x/new"]),
            other => panic!("expected one range response, got {other:?}"),
        }

        // A failing compare with writes in the else branch: they run, in one revision.
        let resp = c
            .txn(
                Txn::new()
                    .when([Compare::value("/x/old", CompareOp::Equal, "nope")])
                    .and_then([TxnOp::Put(PutRequest::new("/x/then", "t"))])
                    .or_else([
                        TxnOp::Delete(DeleteRequest::prefix("/x/")),
                        TxnOp::Put(PutRequest::new("/y/else", "e")),
                    ]),
            )
            .await
            .unwrap();
        assert!(!resp.succeeded);
        assert_eq!(resp.header.revision, r0 + 2);
        match &resp.responses[0] {
            TxnOpResponse::Delete(d) => assert_eq!(d.deleted, 2),
            other => panic!("expected a delete response, got {other:?}"),
        }
        assert!(get(c, "/x/then").await.is_none());
        assert_eq!(get(c, "/y/else").await.unwrap().mod_revision, r0 + 2);

        // An empty transaction succeeds and changes nothing.
        let resp = c.txn(Txn::new()).await.unwrap();
        assert!(resp.succeeded);
        assert_eq!(resp.header.revision, r0 + 2);
    }

    pub async fn txn_rejects_duplicate_keys(c: &Client) {
        let twice = Txn::new().and_then([
            TxnOp::Put(PutRequest::new("/dup", "1")),
            TxnOp::Put(PutRequest::new("/dup", "2")),
        ]);
        let err = c.txn(twice.clone()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        let err = c.backend().txn(twice).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        let put_and_delete = Txn::new().and_then([
            TxnOp::Put(PutRequest::new("/dup/a", "1")),
            TxnOp::Delete(DeleteRequest::prefix("/dup/")),
        ]);
        let err = c.txn(put_and_delete).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        assert!(get(c, "/dup").await.is_none(), "nothing was written");
        // The same key in different branches is fine.
        let branches = Txn::new()
            .and_then([TxnOp::Put(PutRequest::new("/dup", "1"))])
            .or_else([TxnOp::Put(PutRequest::new("/dup", "2"))]);
        assert!(c.txn(branches).await.unwrap().succeeded);
    }

    /// The argument an `InvalidArgument` error names.
    fn name<T>(r: Result<T, Error>) -> &'static str {
        match r {
            Err(Error::InvalidArgument { name, .. }) => name,
            Err(other) => panic!("expected InvalidArgument, got {other:?}"),
            Ok(_) => panic!("expected InvalidArgument, got Ok"),
        }
    }

    pub async fn invalid_arguments_are_named(c: &Client) {
        let b = c.backend();
        assert_eq!(name(b.range(RangeRequest::prefix("")).await), "prefix");
        assert_eq!(name(b.range(RangeRequest::key("")).await), "key");
        assert_eq!(name(b.put(PutRequest::new("", "v")).await), "key");
        assert_eq!(name(b.delete(DeleteRequest::prefix("")).await), "prefix");
        assert_eq!(name(b.lease_grant(0).await), "ttl");
        assert_eq!(name(b.lease_grant(-5).await), "ttl");
        assert_eq!(
            name(b.watch(WatchRequest::prefix("")).await.map(|_| ())),
            "prefix"
        );
        assert_eq!(
            name(b.range(RangeRequest::key("k").limit(-1)).await),
            "limit"
        );
        assert_eq!(name(c.lease_grant(0).await), "ttl");
        assert_eq!(name(c.range(RangeRequest::prefix("")).await), "prefix");
        assert_eq!(revision(c).await, 1, "nothing was written");
    }

    // ----------------------------------------------------------------------------------
    // Leases
    // ----------------------------------------------------------------------------------

    pub async fn lease_grant_ttl_keep_alive_revoke(c: &Client) {
        let r0 = revision(c).await;
        let grant = c.lease_grant(30).await.unwrap();
        assert!(grant.id > 0);
        assert_eq!(grant.ttl, 30);
        assert_eq!(
            grant.header.revision, r0,
            "a grant is not a key-value change"
        );
        let other = c.lease_grant(30).await.unwrap();
        assert_ne!(other.id, grant.id);

        c.put(PutRequest::new("/l/a", "1").with_lease(grant.id))
            .await
            .unwrap();
        c.put(PutRequest::new("/l/b", "1").with_lease(grant.id))
            .await
            .unwrap();

        let info = c.lease_time_to_live(grant.id, true).await.unwrap();
        assert_eq!((info.id, info.granted_ttl), (grant.id, 30));
        assert!(info.ttl > 0 && info.ttl <= 30, "{info:?}");
        let mut attached: Vec<String> = info
            .keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        attached.sort();
        assert_eq!(attached, ["/l/a", "/l/b"]);
        let info = c.lease_time_to_live(grant.id, false).await.unwrap();
        assert!(info.keys.is_empty(), "keys not asked for");

        for _ in 0..3 {
            let ka = c.lease_keep_alive_once(grant.id).await.unwrap();
            assert_eq!((ka.id, ka.ttl), (grant.id, 30));
        }

        let before = revision(c).await;
        let revoke = c.lease_revoke(grant.id).await.unwrap();
        assert_eq!(
            revoke.header.revision,
            before + 1,
            "both keys are deleted in one revision"
        );
        assert_eq!(c.range(RangeRequest::prefix("/l/")).await.unwrap().count, 0);

        // A lease without keys: revoking it changes nothing.
        let revoke = c.lease_revoke(other.id).await.unwrap();
        assert_eq!(revoke.header.revision, before + 1);
    }

    pub async fn lease_revoke_deletes_keys_in_one_revision(c: &Client) {
        let lease = c.lease_grant(60).await.unwrap().id;
        for k in ["/r/a", "/r/b", "/r/c"] {
            c.put(PutRequest::new(k, "v").with_lease(lease))
                .await
                .unwrap();
        }
        put(c, "/r/keep", "v").await;
        let mut w = c.watch(WatchRequest::prefix("/r/")).await.unwrap();
        let rev = c.lease_revoke(lease).await.unwrap().header.revision;
        let events = next_events(&mut w, 3).await;
        let mut got = summary(&events);
        got.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
        assert_eq!(
            got,
            [
                (D, "/r/a".to_owned(), rev),
                (D, "/r/b".to_owned(), rev),
                (D, "/r/c".to_owned(), rev)
            ]
        );
        assert_eq!(
            keys(&c.range(RangeRequest::prefix("/r/")).await.unwrap().kvs),
            ["/r/keep"]
        );
    }

    pub async fn unknown_lease_is_not_found(c: &Client) {
        let lease = c.lease_grant(60).await.unwrap().id;
        c.lease_revoke(lease).await.unwrap();
        let not_found = |r: Result<(), Error>, what: &str| match r {
            Err(Error::LeaseNotFound { lease: l }) => assert_eq!(l, lease, "{what}"),
            other => panic!("{what}: expected LeaseNotFound, got {other:?}"),
        };
        not_found(
            c.lease_keep_alive_once(lease).await.map(|_| ()),
            "keep-alive",
        );
        not_found(
            c.lease_time_to_live(lease, false).await.map(|_| ()),
            "time-to-live",
        );
        not_found(c.lease_revoke(lease).await.map(|_| ()), "revoke");
        not_found(
            c.put(PutRequest::new("/u", "v").with_lease(lease))
                .await
                .map(|_| ()),
            "put",
        );
        not_found(
            c.txn(Txn::new().and_then([TxnOp::Put(PutRequest::new("/u", "v").with_lease(lease))]))
                .await
                .map(|_| ()),
            "txn put",
        );
        assert!(get(c, "/u").await.is_none());
        // Never granted at all.
        let never = lease + 1_000_000;
        match c.lease_keep_alive_once(never).await {
            Err(Error::LeaseNotFound { lease: l }) => assert_eq!(l, never),
            other => panic!("expected LeaseNotFound, got {other:?}"),
        }
    }

    pub async fn lease_expiry_deletes_keys_and_watch_sees_it(c: &Client) {
        // etcd's minimum TTL depends on its election timeout; the test server allows 1 s.
        let grant = c.lease_grant(1).await.unwrap();
        assert!(grant.ttl >= 1);
        c.put(PutRequest::new("/exp/a", "v").with_lease(grant.id))
            .await
            .unwrap();
        c.put(PutRequest::new("/exp/b", "v").with_lease(grant.id))
            .await
            .unwrap();
        put(c, "/exp/keep", "v").await;
        let mut w = c.watch(WatchRequest::prefix("/exp/")).await.unwrap();
        // Expiry takes the TTL plus the backend's check interval; PROMPT is far above it.
        let events = next_events(&mut w, 2).await;
        let mut got = summary(&events);
        got.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
        let rev = got[0].2;
        assert_eq!(
            got,
            [(D, "/exp/a".to_owned(), rev), (D, "/exp/b".to_owned(), rev)],
            "both keys go in one revision"
        );
        assert_eq!(
            keys(&c.range(RangeRequest::prefix("/exp/")).await.unwrap().kvs),
            ["/exp/keep"]
        );
        match c.lease_time_to_live(grant.id, false).await {
            Err(Error::LeaseNotFound { .. }) => {}
            other => panic!("expected LeaseNotFound after expiry, got {other:?}"),
        }
        match c.lease_keep_alive_once(grant.id).await {
            Err(Error::LeaseNotFound { .. }) => {}
            other => panic!("expected LeaseNotFound after expiry, got {other:?}"),
        }
    }

    // ----------------------------------------------------------------------------------
    // Watch
    // ----------------------------------------------------------------------------------

    pub async fn watch_replays_from_past_revision(c: &Client) {
        let r1 = put(c, "/w/a", "1").await;
        let r2 = put(c, "/w/b", "1").await;
        let r3 = put(c, "/w/a", "2").await;
        put(c, "/elsewhere", "x").await;
        let r4 = c
            .delete(DeleteRequest::key("/w/b"))
            .await
            .unwrap()
            .header
            .revision;

        let mut w = c
            .watch(WatchRequest::prefix("/w/").start_revision(r1))
            .await
            .unwrap();
        let events = next_events(&mut w, 4).await;
        assert_eq!(
            summary(&events),
            [
                (P, "/w/a".to_owned(), r1),
                (P, "/w/b".to_owned(), r2),
                (P, "/w/a".to_owned(), r3),
                (D, "/w/b".to_owned(), r4),
            ]
        );
        assert_eq!(events[2].kv.value, b"2");
        assert_eq!(
            (events[2].kv.create_revision, events[2].kv.version),
            (r1, 2)
        );
        // Then live events follow.
        let r5 = put(c, "/w/c", "1").await;
        assert_eq!(
            summary(&next_events(&mut w, 1).await),
            [(P, "/w/c".to_owned(), r5)]
        );

        // Starting in the middle skips what came before.
        let mut w = c
            .watch(WatchRequest::prefix("/w/").start_revision(r3))
            .await
            .unwrap();
        let events = next_events(&mut w, 3).await;
        assert_eq!(
            summary(&events),
            [
                (P, "/w/a".to_owned(), r3),
                (D, "/w/b".to_owned(), r4),
                (P, "/w/c".to_owned(), r5),
            ]
        );
    }

    pub async fn watch_prefix_sees_puts_and_deletes(c: &Client) {
        put(c, "/q/a", "0").await;
        let mut w = c
            .watch(WatchRequest::prefix("/q/").with_prev_kv())
            .await
            .unwrap();
        let r1 = put(c, "/q/a", "1").await;
        put(c, "/qq", "not in the prefix").await;
        let r2 = put(c, "/q/b", "1").await;
        let r3 = c
            .delete(DeleteRequest::key("/q/a"))
            .await
            .unwrap()
            .header
            .revision;
        put(c, "/q/c", "1").await;
        let r5 = c
            .delete(DeleteRequest::prefix("/q/"))
            .await
            .unwrap()
            .header
            .revision;
        let events = next_events(&mut w, 6).await;
        let mut got = summary(&events);
        // The two deletes of r5 may come in either order.
        got[4..].sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
        assert_eq!(
            got,
            [
                (P, "/q/a".to_owned(), r1),
                (P, "/q/b".to_owned(), r2),
                (D, "/q/a".to_owned(), r3),
                (P, "/q/c".to_owned(), r3 + 1),
                (D, "/q/b".to_owned(), r5),
                (D, "/q/c".to_owned(), r5),
            ]
        );
        // prev_kv: the put of r1 overwrote "0"; the first put of /q/b had nothing before.
        assert_eq!(
            events[0].prev_kv.as_ref().map(|kv| kv.value.clone()),
            Some(b"0".to_vec())
        );
        assert_eq!(events[1].prev_kv, None);
        // A delete event: the key, mod_revision = the delete's revision, nothing else.
        let del = &events[2];
        assert_eq!(
            del.kv,
            KeyValue {
                key: b"/q/a".to_vec(),
                mod_revision: r3,
                ..KeyValue::default()
            }
        );
        assert_eq!(
            del.prev_kv
                .as_ref()
                .map(|kv| (kv.value.clone(), kv.mod_revision)),
            Some((b"1".to_vec(), r1))
        );
        // A put event carries the full pair.
        assert_eq!(
            (
                events[1].kv.value.as_slice(),
                events[1].kv.create_revision,
                events[1].kv.version
            ),
            (&b"1"[..], r2, 1)
        );
    }

    pub async fn watch_without_start_begins_after_current_revision(c: &Client) {
        let r1 = put(c, "/n", "1").await;
        let mut w = c.watch(WatchRequest::key("/n")).await.unwrap();
        let r2 = put(c, "/n", "2").await;
        assert_eq!(r2, r1 + 1);
        let events = next_events(&mut w, 1).await;
        assert_eq!(
            summary(&events),
            [(P, "/n".to_owned(), r2)],
            "the put of r1 happened before the watch and is not replayed"
        );
    }

    pub async fn watch_from_future_revision_waits_for_it(c: &Client) {
        let now = revision(c).await;
        let mut w = c
            .watch(WatchRequest::prefix("/fut/").start_revision(now + 2))
            .await
            .unwrap();
        let r1 = put(c, "/fut/a", "1").await;
        let r2 = put(c, "/fut/a", "2").await;
        assert_eq!((r1, r2), (now + 1, now + 2));
        assert_eq!(
            summary(&next_events(&mut w, 1).await),
            [(P, "/fut/a".to_owned(), r2)],
            "events before the start revision are not delivered"
        );
    }

    pub async fn watch_key_ignores_other_keys(c: &Client) {
        let mut w = c.watch(WatchRequest::key("/one")).await.unwrap();
        put(c, "/one/child", "x").await;
        put(c, "/on", "x").await;
        put(c, "/one0", "x").await;
        let r = put(c, "/one", "x").await;
        assert_eq!(
            summary(&next_events(&mut w, 1).await),
            [(P, "/one".to_owned(), r)]
        );
    }

    pub async fn watch_filters_drop_puts_or_deletes(c: &Client) {
        let mut deletes_only = c.watch(WatchRequest::prefix("/g/").no_put()).await.unwrap();
        let mut puts_only = c
            .watch(WatchRequest::prefix("/g/").no_delete())
            .await
            .unwrap();
        let p1 = put(c, "/g/a", "1").await;
        let d1 = c
            .delete(DeleteRequest::key("/g/a"))
            .await
            .unwrap()
            .header
            .revision;
        let p2 = put(c, "/g/b", "1").await;
        let d2 = c
            .delete(DeleteRequest::key("/g/b"))
            .await
            .unwrap()
            .header
            .revision;
        // Each stream's first events are the ones its filter lets through, in order.
        assert_eq!(
            summary(&next_events(&mut deletes_only, 2).await),
            [(D, "/g/a".to_owned(), d1), (D, "/g/b".to_owned(), d2)]
        );
        assert_eq!(
            summary(&next_events(&mut puts_only, 2).await),
            [(P, "/g/a".to_owned(), p1), (P, "/g/b".to_owned(), p2)]
        );
    }

    pub async fn watch_progress_request(c: &Client) {
        let r = put(c, "/pr", "1").await;
        let mut w = c.watch(WatchRequest::key("/quiet")).await.unwrap();
        w.request_progress().await.unwrap();
        let resp = tokio::time::timeout(PROMPT, w.next())
            .await
            .expect("progress notification arrives")
            .expect("stream open")
            .expect("no error");
        assert!(resp.is_progress_notify(), "{resp:?}");
        assert_eq!(resp.header.revision, r);
        // The watch still works afterwards.
        let r2 = put(c, "/quiet", "1").await;
        assert_eq!(
            summary(&next_events(&mut w, 1).await),
            [(P, "/quiet".to_owned(), r2)]
        );
    }
}

/// Checks that only make sense against a real etcd.
mod etcd_only {
    use super::PROMPT;
    use gosync_dist::backend::{PutRequest, WatchRequest};
    use gosync_dist::testing::EtcdServer;
    use gosync_dist::{Client, ConnectOptions, Error};
    use std::time::Duration;

    /// Awaits `f`, failing the test if it does not finish promptly.
    async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(PROMPT, f)
            .await
            .expect("finishes by itself")
    }

    /// A loopback port with nothing listening on it.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn unreachable_etcd_is_an_error_naming_the_endpoints() {
        let endpoint = format!("http://127.0.0.1:{}", closed_port());
        let opts = ConnectOptions::new().with_connect_timeout(Duration::from_secs(1));
        let result = tokio::time::timeout(PROMPT, Client::etcd_with(&[&endpoint], opts))
            .await
            .expect("connect gives up by itself");
        match result {
            Err(err @ Error::Unreachable { .. }) => {
                assert!(err.to_string().contains(&endpoint), "{err}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn silent_server_is_unreachable_within_the_connect_timeout() {
        // Accepts TCP connections (the kernel does, from the backlog) but never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let opts = ConnectOptions::new().with_connect_timeout(Duration::from_millis(500));
        let result = tokio::time::timeout(PROMPT, Client::etcd_with(&[&endpoint], opts))
            .await
            .expect("connect gives up by itself");
        match result {
            Err(err @ Error::Unreachable { .. }) => {
                assert!(err.to_string().contains(&endpoint), "{err}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        drop(listener);
    }

    #[tokio::test]
    async fn malformed_endpoint_is_an_invalid_argument() {
        let result = Client::etcd(&["http://[not a url"]).await;
        match result {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "endpoints"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
        match Client::etcd(&[]).await {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "endpoints"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn etcd_stopped_under_a_watch_ends_it_with_an_error() {
        let Some(etcd) = EtcdServer::start_or_skip() else {
            return;
        };
        let client = Client::etcd(&[etcd.endpoint()]).await.unwrap();
        let mut w = client.watch(WatchRequest::prefix("/w/")).await.unwrap();
        let lease = client.lease_grant(60).await.unwrap().id;
        client.lease_keep_alive_once(lease).await.unwrap();
        etcd.stop();
        let item = tokio::time::timeout(PROMPT, w.next())
            .await
            .expect("the watch notices promptly");
        match item {
            Some(Err(Error::WatchClosed { .. })) => {}
            other => panic!("expected a WatchClosed item, got {other:?}"),
        }
        let end = tokio::time::timeout(PROMPT, w.next()).await.unwrap();
        assert!(end.is_none(), "the stream ends after its error: {end:?}");

        let err = tokio::time::timeout(PROMPT, client.put(PutRequest::new("/k", "v")))
            .await
            .expect("a request to a dead server fails promptly")
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains(etcd.endpoint()), "{err}");
        let err = tokio::time::timeout(PROMPT, client.lease_keep_alive_once(lease))
            .await
            .expect("a keep-alive to a dead server fails promptly")
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        let err = tokio::time::timeout(PROMPT, client.watch(WatchRequest::key("/k")))
            .await
            .expect("a watch on a dead server fails promptly")
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn frozen_etcd_hits_the_request_and_connect_timeouts() {
        let Some(etcd) = EtcdServer::start_or_skip() else {
            return;
        };
        let after = Duration::from_millis(300);
        let opts = ConnectOptions::new().with_request_timeout(after);
        let client = Client::etcd_with(&[etcd.endpoint()], opts).await.unwrap();
        let lease = client.lease_grant(60).await.unwrap().id;
        client.lease_keep_alive_once(lease).await.unwrap();
        etcd.pause().unwrap();
        assert!(etcd.is_running(), "paused, not stopped");

        let timed_out = |r: Result<(), Error>, what: &'static str| match r {
            Err(Error::Timeout {
                operation,
                after: a,
            }) => {
                assert_eq!((operation, a), (what, after));
            }
            other => panic!("{what}: expected Timeout, got {other:?}"),
        };
        timed_out(
            bounded(async { client.put(PutRequest::new("/k", "v")).await.map(|_| ()) }).await,
            "put",
        );
        timed_out(
            bounded(async { client.lease_keep_alive_once(lease).await.map(|_| ()) }).await,
            "lease keep-alive",
        );
        timed_out(
            bounded(async { client.watch(WatchRequest::key("/k")).await.map(|_| ()) }).await,
            "watch",
        );

        // A new connection to the frozen server gives up within its connect timeout.
        let opts = ConnectOptions::new().with_connect_timeout(Duration::from_millis(300));
        let result = tokio::time::timeout(PROMPT, Client::etcd_with(&[etcd.endpoint()], opts))
            .await
            .expect("connect gives up by itself");
        assert!(
            matches!(result, Err(Error::Unreachable { .. })),
            "{result:?}"
        );

        // Thawed, the same client works again, keep-alives included.
        etcd.resume().unwrap();
        client.put(PutRequest::new("/k", "v")).await.unwrap();
        let ka = client.lease_keep_alive_once(lease).await.unwrap();
        assert_eq!(ka.ttl, 60);
    }

    #[tokio::test]
    async fn credentials_are_used_and_wrong_ones_rejected() {
        let Some(etcd) = EtcdServer::start_or_skip() else {
            return;
        };
        // Enable authentication with a root user, through etcd's own client.
        let mut admin = etcd_client::Client::connect(etcd.endpoints(), None)
            .await
            .unwrap();
        admin.user_add("root", "secret", None).await.unwrap();
        admin.user_grant_role("root", "root").await.unwrap();
        admin.auth_enable().await.unwrap();

        let opts = ConnectOptions::new().with_user("root", "secret");
        let client = Client::etcd_with(&[etcd.endpoint()], opts).await.unwrap();
        client.put(PutRequest::new("/auth", "ok")).await.unwrap();
        assert_eq!(client.get("/auth").await.unwrap().unwrap().value, b"ok");

        let opts = ConnectOptions::new().with_user("root", "wrong");
        match bounded(Client::etcd_with(&[etcd.endpoint()], opts)).await {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "credentials"),
            other => panic!("expected InvalidArgument(credentials), got {other:?}"),
        }
        match bounded(Client::etcd(&[etcd.endpoint()])).await {
            Err(
                err @ Error::InvalidArgument {
                    name: "credentials",
                    ..
                },
            ) => {
                assert!(err.to_string().contains("with_user"), "{err}");
            }
            other => panic!("expected InvalidArgument(credentials), got {other:?}"),
        }
    }

    #[test]
    fn fixture_stop_and_drop_leave_nothing_behind() {
        let Some(etcd) = EtcdServer::start_or_skip() else {
            return;
        };
        let dir = etcd.dir().to_path_buf();
        let pid = std::fs::read_to_string(dir.join("etcd.pid")).unwrap();
        let proc_dir = std::path::Path::new("/proc").join(pid.trim());
        assert!(etcd.is_running() && proc_dir.exists());
        let addr: std::net::SocketAddr = etcd
            .endpoint()
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        assert!(std::net::TcpStream::connect(addr).is_ok());

        etcd.stop();
        assert!(!etcd.is_running());
        assert!(!proc_dir.exists(), "etcd (pid {}) is gone", pid.trim());
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "nothing listens any more"
        );
        assert!(dir.exists(), "the directory stays until drop");
        etcd.stop(); // again: nothing happens
        drop(etcd);
        assert!(!dir.exists(), "the directory is removed on drop");
    }

    #[test]
    fn fixture_kills_etcd_when_the_test_panics() {
        let mut pid_and_dir = None;
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Some(etcd) = EtcdServer::start_or_skip() else {
                return;
            };
            let pid = std::fs::read_to_string(etcd.dir().join("etcd.pid")).unwrap();
            pid_and_dir = Some((pid.trim().to_owned(), etcd.dir().to_path_buf()));
            panic!("a failing test");
        }));
        let Some((pid, dir)) = pid_and_dir else {
            return; // skipped
        };
        assert!(panicked.is_err());
        assert!(
            !std::path::Path::new("/proc").join(&pid).exists(),
            "etcd {pid} was killed"
        );
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn client_debug_names_the_endpoint() {
        let Some(etcd) = EtcdServer::start_or_skip() else {
            return;
        };
        let client = Client::etcd(&[etcd.endpoint()]).await.unwrap();
        assert!(format!("{client:?}").contains(etcd.endpoint()));
    }

    #[tokio::test]
    async fn many_keep_alives_and_watches_on_one_connection() {
        let Some(etcd) = EtcdServer::start_or_skip() else {
            return;
        };
        let client = Client::etcd(&[etcd.endpoint()]).await.unwrap();
        let lease = client.lease_grant(60).await.unwrap().id;
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let ka = client.lease_keep_alive_once(lease).await.unwrap();
                    assert_eq!((ka.id, ka.ttl), (lease, 60));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Opening and dropping many watches leaves none behind on the server.
        for i in 0..50 {
            let w = client
                .watch(WatchRequest::key(format!("/w/{i}")))
                .await
                .unwrap();
            drop(w);
        }
        let deadline = tokio::time::Instant::now() + PROMPT;
        loop {
            let watchers = etcd.metric("etcd_debugging_mvcc_watcher_total");
            if watchers == Some(0.0) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "watchers left on the server: {watchers:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
