//! `Session`: TTL and lease options, keep-alive, `done`, `orphan`, `close`, and the error
//! every primitive reports once its session is lost.
//!
//! Every case is `async fn case(client: Client)` and runs on the embedded backend
//! (`embedded::*`) and on a real etcd started for the test (`etcd::*`; `GOSYNC_SKIP_ETCD=1`
//! skips those). Durations appear only as generous failure bounds.

use std::time::Duration;

use gosync_dist::backend::{PutRequest, RangeRequest};
use gosync_dist::{Client, Election, Error, Mutex, RwMutex, Session, SessionEnd};

#[macro_use]
mod support;
use support::SOON;

cases!(
    ttl_zero_is_rejected,
    bad_keep_alive_interval_is_rejected,
    custom_ttl_is_granted,
    resume_existing_lease,
    resume_missing_lease_fails,
    keep_alive_outlives_the_ttl,
    close_revokes_the_lease,
    orphan_keeps_the_lease,
    done_wakes_every_waiter,
    lease_revoked_elsewhere_ends_the_session,
    lost_session_fails_every_primitive,
    revoked_lease_fails_new_keys_at_once,
);

async fn ttl_zero_is_rejected(client: Client) {
    let err = Session::builder(&client)
        .ttl(Duration::ZERO)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { name: "ttl", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ttl"));
}

async fn bad_keep_alive_interval_is_rejected(client: Client) {
    for interval in [
        Duration::ZERO,
        Duration::from_secs(5),
        Duration::from_secs(9),
    ] {
        let err = Session::builder(&client)
            .ttl(Duration::from_secs(5))
            .keep_alive_interval(interval)
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    name: "keep_alive_interval",
                    ..
                }
            ),
            "{interval:?}: {err}"
        );
    }
}

/// etcd's TestSessionTTLOptions.
async fn custom_ttl_is_granted(client: Client) {
    let s = Session::builder(&client)
        .ttl(Duration::from_secs(90))
        .build()
        .await
        .unwrap();
    assert_eq!(s.ttl(), Duration::from_secs(90));
    let info = client.lease_time_to_live(s.lease(), false).await.unwrap();
    assert_eq!(info.granted_ttl, 90);
    assert!(info.ttl > 60 && info.ttl <= 90, "remaining {}", info.ttl);
    let default = Session::new(&client).await.unwrap();
    assert_eq!(default.ttl(), Duration::from_secs(60));
    s.close().await.unwrap();
    default.close().await.unwrap();
}

/// etcd's TestSessionOptions: a session on an existing lease, orphaned promptly.
async fn resume_existing_lease(client: Client) {
    let lease = client.lease_grant(100).await.unwrap().id;
    let s = Session::builder(&client)
        .lease(lease)
        .build()
        .await
        .unwrap();
    assert_eq!(s.lease(), lease);
    assert_eq!(s.ttl(), Duration::from_secs(100));
    let done = tokio::spawn(s.done());
    s.orphan();
    let why = tokio::time::timeout(SOON, done).await.unwrap().unwrap();
    assert_eq!(why, SessionEnd::Orphaned);
    // The lease itself lives on.
    assert!(client.lease_time_to_live(lease, false).await.is_ok());
    client.lease_revoke(lease).await.unwrap();
}

async fn resume_missing_lease_fails(client: Client) {
    let lease = client.lease_grant(10).await.unwrap().id;
    client.lease_revoke(lease).await.unwrap();
    let err = Session::builder(&client)
        .lease(lease)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseNotFound { .. }), "{err}");
}

async fn keep_alive_outlives_the_ttl(client: Client) {
    let s = Session::builder(&client)
        .ttl(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    client
        .put(PutRequest::new("/alive", "yes").with_lease(s.lease()))
        .await
        .unwrap();
    // Well past the TTL: only the keep-alive loop keeps the lease (and key) alive.
    tokio::time::sleep(s.ttl() * 2).await;
    assert!(!s.is_done(), "session ended: {:?}", s.end_reason());
    assert!(client.get("/alive").await.unwrap().is_some());
    s.close().await.unwrap();
    assert!(client.get("/alive").await.unwrap().is_none());
}

async fn close_revokes_the_lease(client: Client) {
    let s = Session::new(&client).await.unwrap();
    let m = Mutex::new(&s, "/locks/close");
    m.lock().await.unwrap();
    s.close().await.unwrap();
    assert_eq!(s.end_reason(), Some(SessionEnd::Closed));
    assert!(matches!(
        client.lease_time_to_live(s.lease(), false).await,
        Err(Error::LeaseNotFound { .. })
    ));
    let left = client
        .range(RangeRequest::prefix("/locks/close/"))
        .await
        .unwrap();
    assert_eq!(left.count, 0, "the lock's key goes with the lease");
    // Closing again is fine; the end reason stays.
    s.close().await.unwrap();
    assert_eq!(s.done().await, SessionEnd::Closed);
}

async fn orphan_keeps_the_lease(client: Client) {
    let s = Session::new(&client).await.unwrap();
    let m = Mutex::new(&s, "/locks/orphan");
    m.lock().await.unwrap();
    s.orphan();
    assert_eq!(s.done().await, SessionEnd::Orphaned);
    // The key and lease stay until the TTL runs out; another process may resume it.
    let key = client.get(m.key()).await.unwrap().expect("key kept");
    assert_eq!(key.lease, s.lease());
    let resumed = Session::builder(&client)
        .lease(s.lease())
        .build()
        .await
        .unwrap();
    let again = Mutex::new(&resumed, "/locks/orphan");
    tokio::time::timeout(SOON, again.lock())
        .await
        .expect("the resumed session re-enters its own lock")
        .unwrap();
    assert_eq!(again.fencing_token(), Some(key.create_revision));
    resumed.close().await.unwrap();
}

async fn done_wakes_every_waiter(client: Client) {
    let s = Session::new(&client).await.unwrap();
    let waiters: Vec<_> = (0..5).map(|_| tokio::spawn(s.done())).collect();
    tokio::task::yield_now().await;
    s.close().await.unwrap();
    for w in waiters {
        let why = tokio::time::timeout(SOON, w).await.unwrap().unwrap();
        assert_eq!(why, SessionEnd::Closed);
    }
    // And after the end, at once.
    assert_eq!(
        tokio::time::timeout(SOON, s.done()).await.unwrap(),
        SessionEnd::Closed
    );
}

/// The lease disappears behind the session's back (revoked by someone else, or expired):
/// the keep-alive loop notices and the session ends as expired.
async fn lease_revoked_elsewhere_ends_the_session(client: Client) {
    let s = Session::builder(&client)
        .ttl(Duration::from_secs(3))
        .build()
        .await
        .unwrap();
    match client.embedded_faults() {
        Some(faults) => faults.expire_lease(s.lease()).unwrap(),
        None => {
            client.lease_revoke(s.lease()).await.unwrap();
        }
    }
    let why = tokio::time::timeout(s.ttl() + SOON, s.done())
        .await
        .expect("the session notices within its TTL");
    assert_eq!(why, SessionEnd::Expired);
}

async fn lost_session_fails_every_primitive(client: Client) {
    let s = Session::builder(&client)
        .ttl(Duration::from_secs(3))
        .build()
        .await
        .unwrap();
    let m = Mutex::new(&s, "/lost/mutex");
    m.lock().await.unwrap();
    let e = Election::new(&s, "/lost/election");
    e.campaign("me").await.unwrap();
    let mut observed = e.observe();
    let first = tokio::time::timeout(SOON, observed.next()).await.unwrap();
    assert!(matches!(first, Some(Ok(Some(_)))), "{first:?}");
    client.lease_revoke(s.lease()).await.unwrap();
    tokio::time::timeout(s.ttl() + SOON, s.done())
        .await
        .expect("the session notices");

    let expired = |r: gosync_dist::Result<()>| matches!(r, Err(Error::SessionExpired { .. }));
    assert!(expired(m.unlock().await), "unlock reports the lost lock");
    assert!(expired(m.lock().await));
    assert!(expired(m.try_lock().await));
    let rw = RwMutex::new(&s, "/lost/rw");
    assert!(expired(rw.read_lock().await));
    assert!(expired(rw.lock().await));
    assert!(expired(e.campaign("again").await));
    assert!(expired(e.proclaim("new").await));
    assert!(matches!(
        e.leader().await,
        Err(Error::SessionExpired { .. })
    ));
    // The observer saw the leader vanish or the session end, and ends with the error.
    let mut last = None;
    while let Some(item) = tokio::time::timeout(SOON, observed.next())
        .await
        .expect("observe never goes quiet")
    {
        last = Some(item);
    }
    assert!(
        matches!(last, Some(Err(Error::SessionExpired { .. }))),
        "{last:?}"
    );
    let mut fresh = e.observe();
    assert!(matches!(
        tokio::time::timeout(SOON, fresh.next()).await.unwrap(),
        Some(Err(Error::SessionExpired { .. }))
    ));
}

/// Right after the lease is revoked elsewhere (before the keep-alive loop notices), writing a
/// new key with it already reports the session as expired.
async fn revoked_lease_fails_new_keys_at_once(client: Client) {
    let s = Session::new(&client).await.unwrap();
    client.lease_revoke(s.lease()).await.unwrap();
    let expired = |r: gosync_dist::Result<()>| matches!(r, Err(Error::SessionExpired { .. }));
    let r = Mutex::new(&s, "/revoked/m").lock().await;
    assert!(expired(r.clone()), "{r:?}");
    assert!(expired(Mutex::new(&s, "/revoked/t").try_lock().await));
    assert!(expired(RwMutex::new(&s, "/revoked/rw").read_lock().await));
    assert!(expired(Election::new(&s, "/revoked/e").campaign("x").await));
    let why = tokio::time::timeout(SOON, s.done())
        .await
        .expect("the session learns it at once");
    assert_eq!(why, SessionEnd::Expired);
}
