//! `RwMutex`: readers share, a writer excludes everyone, FIFO between readers and writers,
//! cancellation, misuse; etcd's testRWMutex written afresh.
//!
//! Every case is `async fn case(client: Client)` and runs on the embedded backend
//! (`embedded::*`) and on a real etcd started for the test (`etcd::*`; `GOSYNC_SKIP_ETCD=1`
//! skips those). Durations appear only as generous failure bounds.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gosync_dist::backend::RangeRequest;
use gosync_dist::{Client, Error, RwMutex};

#[macro_use]
mod support;
use support::{session, within};

cases!(
    readers_share_writer_excludes,
    reader_queues_behind_waiting_writer,
    mixed_readers_and_writers_keep_the_invariant,
    cancelled_waits_leave_no_key,
    unlock_in_wrong_mode_is_an_error,
    bad_prefix_is_rejected,
);

async fn keys(client: &Client, prefix: &str) -> usize {
    client
        .range(RangeRequest::prefix(format!("{prefix}/")))
        .await
        .unwrap()
        .kvs
        .len()
}

async fn wait_for_keys(client: &Client, prefix: &str, n: usize) {
    within("keys to appear", async {
        while keys(client, prefix).await < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

async fn readers_share_writer_excludes(client: Client) {
    let s = session(&client).await;
    let readers: Vec<_> = (0..3).map(|_| RwMutex::new(&s, "/rw/share")).collect();
    for r in &readers {
        within("a reader", r.read_lock()).await.unwrap();
    }
    let ws = session(&client).await;
    let writer = tokio::spawn(async move {
        let w = RwMutex::new(&ws, "/rw/share");
        w.lock().await.map(|_| w)
    });
    wait_for_keys(&client, "/rw/share", 4).await;
    for r in &readers[..2] {
        r.read_unlock().await.unwrap();
    }
    // One reader still holds: the writer must still wait.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!writer.is_finished(), "writer got in while a reader held");
    readers[2].read_unlock().await.unwrap();
    let w = within("the writer", writer).await.unwrap().unwrap();
    // With the writer in, a new reader waits.
    let rs = session(&client).await;
    let reader = tokio::spawn(async move { RwMutex::new(&rs, "/rw/share").read_lock().await });
    wait_for_keys(&client, "/rw/share", 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!reader.is_finished(), "reader got in while the writer held");
    w.unlock().await.unwrap();
    within("the reader", reader).await.unwrap().unwrap();
}

/// FIFO: a reader arriving while a writer waits queues behind the writer (writers are not
/// starved by a stream of readers).
async fn reader_queues_behind_waiting_writer(client: Client) {
    let s1 = session(&client).await;
    let first = RwMutex::new(&s1, "/rw/fifo");
    first.read_lock().await.unwrap();
    let (ws, rs) = (session(&client).await, session(&client).await);
    let order = Arc::new(AtomicUsize::new(0));
    let writer = {
        let order = order.clone();
        tokio::spawn(async move {
            let w = RwMutex::new(&ws, "/rw/fifo");
            w.lock().await.unwrap();
            let at = order.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            w.unlock().await.unwrap();
            at
        })
    };
    wait_for_keys(&client, "/rw/fifo", 2).await;
    let reader = {
        let order = order.clone();
        tokio::spawn(async move {
            let r = RwMutex::new(&rs, "/rw/fifo");
            r.read_lock().await.unwrap();
            let at = order.fetch_add(1, Ordering::SeqCst);
            r.read_unlock().await.unwrap();
            at
        })
    };
    wait_for_keys(&client, "/rw/fifo", 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!reader.is_finished(), "a reader overtook a waiting writer");
    first.read_unlock().await.unwrap();
    assert_eq!(within("writer", writer).await.unwrap(), 0);
    assert_eq!(within("reader", reader).await.unwrap(), 1);
}

/// etcd's testRWMutex, checked throughout: random readers and writers on their own sessions;
/// while a writer holds nobody else does, while readers hold no writer does.
async fn mixed_readers_and_writers_keep_the_invariant(client: Client) {
    const WORKERS: usize = 8;
    const ROUNDS: usize = 10;
    // Positive: number of readers inside; -1: a writer inside.
    let inside = Arc::new(AtomicI64::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let client = client.clone();
        let inside = inside.clone();
        let reads = reads.clone();
        tasks.push(tokio::spawn(async move {
            let s = session(&client).await;
            let rw = RwMutex::new(&s, "/rw/mixed");
            for round in 0..ROUNDS {
                if (w + round) % 3 == 0 {
                    rw.lock().await.unwrap();
                    let before = inside.swap(-1, Ordering::SeqCst);
                    assert_eq!(before, 0, "writer entered while {before} held");
                    tokio::task::yield_now().await;
                    assert_eq!(inside.swap(0, Ordering::SeqCst), -1);
                    rw.unlock().await.unwrap();
                } else {
                    rw.read_lock().await.unwrap();
                    let before = inside.fetch_add(1, Ordering::SeqCst);
                    assert!(before >= 0, "reader entered while a writer held");
                    reads.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    rw.read_unlock().await.unwrap();
                }
            }
            s.close().await.unwrap();
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("workers finish")
            .unwrap();
    }
    assert_eq!(inside.load(Ordering::SeqCst), 0);
    assert!(reads.load(Ordering::SeqCst) > 0);
    assert_eq!(keys(&client, "/rw/mixed").await, 0);
}

async fn cancelled_waits_leave_no_key(client: Client) {
    let s1 = session(&client).await;
    let w = RwMutex::new(&s1, "/rw/cancel");
    w.lock().await.unwrap();
    let s2 = session(&client).await;
    let other = RwMutex::new(&s2, "/rw/cancel");
    let r = tokio::time::timeout(Duration::from_millis(200), other.read_lock()).await;
    assert!(r.is_err(), "the reader must still be waiting");
    let r = tokio::time::timeout(Duration::from_millis(200), other.lock()).await;
    assert!(r.is_err(), "the writer must still be waiting");
    within("the cancelled keys' removal", async {
        while keys(&client, "/rw/cancel").await != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    w.unlock().await.unwrap();
    within("a fresh read lock", other.read_lock())
        .await
        .unwrap();
    other.read_unlock().await.unwrap();
    assert_eq!(keys(&client, "/rw/cancel").await, 0);
}

async fn unlock_in_wrong_mode_is_an_error(client: Client) {
    let s = session(&client).await;
    let rw = RwMutex::new(&s, "/rw/misuse");
    assert!(matches!(
        rw.unlock().await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        rw.read_unlock().await,
        Err(Error::InvalidArgument { .. })
    ));
    rw.read_lock().await.unwrap();
    assert!(matches!(
        rw.unlock().await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(rw.key().unwrap().starts_with("/rw/misuse/read/"));
    rw.read_unlock().await.unwrap();
    rw.lock().await.unwrap();
    assert!(matches!(
        rw.read_unlock().await,
        Err(Error::InvalidArgument { .. })
    ));
    rw.unlock().await.unwrap();
    assert_eq!(rw.key(), None);
}

async fn bad_prefix_is_rejected(client: Client) {
    let s = session(&client).await;
    for bad in ["", "/rw/", "/r\tw"] {
        let rw = RwMutex::new(&s, bad);
        assert!(matches!(
            rw.read_lock().await,
            Err(Error::InvalidArgument { name: "prefix", .. })
        ));
        assert!(matches!(
            rw.lock().await,
            Err(Error::InvalidArgument { name: "prefix", .. })
        ));
    }
}
