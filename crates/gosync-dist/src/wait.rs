//! Waiting for one's turn, shared by [`Mutex`](crate::Mutex), [`RwMutex`](crate::RwMutex)
//! and [`Election`](crate::Election).
//!
//! # Why waits are fast here
//!
//! etcd keeps a watch whose start revision is not in the future on an "unsynced" list that
//! it catches up every 100 ms. Go's `waitDeletes` opens a watch at the revision it has just
//! read, which is always in the past by the time it reaches the server, so every hand-off
//! waits for that tick (~40 hand-offs/s with four contenders).
//!
//! Instead, each [`Session`] keeps **one long-lived watch per prefix** ([`PrefixWatch`]),
//! opened without a start revision (so it is synced from the start) and *before* the first
//! transaction that could make a caller wait. A task drains it and broadcasts every response
//! to the subscribed waiters. A waiter subscribes before its transaction, so every event after
//! the transaction's revision reaches it: no delete can be missed, and no watch is opened per
//! wait. Opening the watch is one round trip, paid once per session and prefix (a watch no
//! one has used for 30 s is closed when the session next opens one).
//!
//! # The wait
//!
//! [`wait_turn`] waits, as etcd's algorithm does, until no key of the blocking scope created
//! before mine (by create revision) is left, and the turn comes with the delete of the key
//! created just before mine, so the order is FIFO. The transaction that queues a caller also
//! returns the newest keys ahead of it (up to [`AHEAD`]); since keys ahead can only go away,
//! the waiter follows their deletes on the watch and owns the turn at the last one, with no
//! further read (Go's client reads again after each delete; here that happens only when
//! more than [`AHEAD`] keys were ahead). One shared watch per session and prefix means no
//! herd of watches either. A delete of my own key while waiting means the lease is gone:
//! [`Error::SessionExpired`]. Because the event stream is continuous from the read revision
//! on, "my key still exists" is known from the stream itself at the revision where the turn
//! came; after any gap (resync, lag) the state is read again, my key included.
//!
//! If the watch breaks, its task reopens it from the revision after the last event it saw
//! (etcd's own behaviour, possibly unsynced and so slower, but correct); if that revision is
//! compacted or unknown it reopens after the current revision and tells waiters to re-read.
//! A watch that keeps breaking is retried with a growing pause. If it cannot be reopened
//! within a few seconds, waiters get the error — a wait never hangs on a dead watch.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::backend::{
    Compare, CompareOp, EventKind, Header, KeyValue, RangeRequest, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, TxnResponse, WatchRequest, WatchResponse, WatchStream,
};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::session::{Session, SessionEnd};

/// Responses kept for a slow subscriber before it lags (and re-reads).
const CHANNEL_CAPACITY: usize = 1024;

/// How long the watch task keeps trying to reopen a broken watch before giving up.
const REOPEN_BUDGET: Duration = Duration::from_secs(3);

/// A break this soon after the previous one is retried after a pause...
const QUICK_BREAK: Duration = Duration::from_secs(1);

/// ...starting at this...
const MIN_PAUSE: Duration = Duration::from_millis(25);

/// ...and doubling up to this.
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// What a [`PrefixWatch`] broadcasts.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// A watch response with at least one event.
    Events(Arc<WatchResponse>),
    /// Continuity was lost (the watch was reopened at "now"): re-read the state.
    Resync,
    /// The watch broke and could not be reopened.
    Failed(Error),
}

/// One long-lived watch on a prefix, drained by a task that broadcasts its responses.
pub(crate) struct PrefixWatch {
    tx: broadcast::Sender<Item>,
    failed: Arc<StdMutex<Option<Error>>>,
    task: AbortHandle,
}

impl Drop for PrefixWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PrefixWatch {
    /// Opens the watch (established when this returns) and starts its task, which ends
    /// when the session ends or the watch is dropped.
    pub(crate) async fn open(
        client: Client,
        prefix: Vec<u8>,
        session_state: watch::Receiver<Option<SessionEnd>>,
    ) -> Result<Arc<Self>> {
        let stream = client.watch(WatchRequest::prefix(prefix.clone())).await?;
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        let failed = Arc::new(StdMutex::new(None));
        let task = tokio::spawn(run_watch(
            client,
            prefix,
            stream,
            tx.clone(),
            failed.clone(),
            session_state,
        ));
        Ok(Arc::new(PrefixWatch {
            tx,
            failed,
            task: task.abort_handle(),
        }))
    }

    /// How many subscriptions are live (waiters and observers using the watch now).
    pub(crate) fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A new subscription, or `None` if the watch has failed (open a new one).
    pub(crate) fn subscribe(&self) -> Option<broadcast::Receiver<Item>> {
        let failed = lock(&self.failed);
        if failed.is_some() {
            return None;
        }
        Some(self.tx.subscribe())
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run_watch(
    client: Client,
    prefix: Vec<u8>,
    mut stream: WatchStream,
    tx: broadcast::Sender<Item>,
    failed: Arc<StdMutex<Option<Error>>>,
    mut session_state: watch::Receiver<Option<SessionEnd>>,
) {
    // The next revision to deliver if the stream breaks (None: unknown).
    let mut resume: Option<i64> = None;
    let mut last_break: Option<Instant> = None;
    let mut pause = MIN_PAUSE;
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = session_state.wait_for(Option::is_some) => return,
        };
        let err = match next {
            Some(Ok(resp)) => {
                if let Some(last) = resp.events.last() {
                    resume = Some(last.kv.mod_revision + 1);
                } else if resp.header.revision > 0 {
                    // A progress notification: everything up to here has been delivered.
                    resume = Some(resume.unwrap_or(0).max(resp.header.revision + 1));
                }
                if !resp.events.is_empty() {
                    let _ = tx.send(Item::Events(Arc::new(resp)));
                }
                continue;
            }
            Some(Err(e)) => e,
            None => Error::WatchClosed {
                reason: "the backend ended the watch stream".into(),
            },
        };
        if matches!(err, Error::Compacted { .. }) {
            resume = None;
        }
        // A watch that breaks again right after being reopened is retried with a growing
        // pause, so it cannot spin.
        let now = Instant::now();
        if last_break.is_some_and(|t| now.duration_since(t) < QUICK_BREAK) {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = session_state.wait_for(Option::is_some) => return,
            }
            pause = (pause * 2).min(MAX_PAUSE);
        } else {
            pause = MIN_PAUSE;
        }
        last_break = Some(now);
        match reopen(&client, &prefix, resume, err).await {
            Ok((s, from, resynced)) => {
                stream = s;
                resume = Some(from);
                if resynced {
                    let _ = tx.send(Item::Resync);
                }
            }
            Err(e) => {
                let mut f = lock(&failed);
                *f = Some(e.clone());
                let _ = tx.send(Item::Failed(e));
                return;
            }
        }
    }
}

/// Reopens a broken watch from `resume` if known and not compacted (nothing missed), else
/// from just after the current revision (events in between may be missed: resync needed).
/// Returns the stream, its start revision and whether a resync is needed. Gives up with the
/// last error after [`REOPEN_BUDGET`].
async fn reopen(
    client: &Client,
    prefix: &[u8],
    mut resume: Option<i64>,
    mut last_err: Error,
) -> Result<(WatchStream, i64, bool)> {
    let give_up = Instant::now() + REOPEN_BUDGET;
    let mut resync = false;
    let mut delay = MIN_PAUSE;
    loop {
        let now = Instant::now();
        if now >= give_up {
            return Err(last_err);
        }
        let attempt = async {
            let from = match resume {
                Some(r) => r,
                None => {
                    let at = client
                        .range(RangeRequest::prefix(prefix).count_only())
                        .await?;
                    at.header.revision + 1
                }
            };
            let req = WatchRequest::prefix(prefix.to_vec()).start_revision(from);
            client.watch(req).await.map(|s| (s, from))
        };
        match tokio::time::timeout(give_up - now, attempt).await {
            Ok(Ok((s, from))) => return Ok((s, from, resync || resume.is_none())),
            Ok(Err(e @ Error::Compacted { .. })) => {
                resume = None;
                resync = true;
                last_err = e;
                continue;
            }
            Ok(Err(e)) => last_err = e,
            Err(_) => return Err(last_err),
        }
        tokio::time::sleep(delay.min(give_up.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(MAX_PAUSE);
    }
}

// ---------------------------------------------------------------------------------------
// Prefix checks and key helpers
// ---------------------------------------------------------------------------------------

/// Checks a user-given prefix: not empty, not ending in `/` (the primitives add one), no
/// control characters. Returns `prefix + "/"`.
pub(crate) fn key_prefix(prefix: &str) -> Result<String> {
    if prefix.is_empty() {
        return Err(Error::invalid("prefix", "must not be empty"));
    }
    if prefix.ends_with('/') {
        return Err(Error::invalid(
            "prefix",
            format!("{prefix:?} must not end with '/' (a '/' is appended to it); drop the trailing slash"),
        ));
    }
    if let Some(c) = prefix.chars().find(|c| c.is_control()) {
        return Err(Error::invalid(
            "prefix",
            format!("{prefix:?} contains the control character {c:?}"),
        ));
    }
    Ok(format!("{prefix}/"))
}

/// How many of the keys ahead a waiter learns per read. With fewer ahead, it never reads
/// again while waiting.
pub(crate) const AHEAD: i64 = 16;

/// The range op used by fast paths, run right after creating my key: the newest keys of
/// `scope`, newest first — mine (if in scope) and up to [`AHEAD`] before it.
pub(crate) fn newest_in(scope: &str) -> TxnOp {
    TxnOp::Range(
        RangeRequest::prefix(scope)
            .sort(SortTarget::Create, SortOrder::Descend)
            .limit(AHEAD + 1)
            .keys_only(),
    )
}

/// The range op that finds the oldest key of `scope`.
pub(crate) fn oldest_in(scope: &str) -> TxnOp {
    TxnOp::Range(
        RangeRequest::prefix(scope)
            .sort(SortTarget::Create, SortOrder::Ascend)
            .limit(1)
            .keys_only(),
    )
}

/// The keys of a range answer at index `i` of a transaction answer.
pub(crate) fn range_kvs(resp: &TxnResponse, i: usize) -> &[KeyValue] {
    match resp.responses.get(i) {
        Some(TxnOpResponse::Range(r)) => &r.kvs,
        _ => &[],
    }
}

/// What is known about the keys ahead of mine (same scope, lower create revision) at a
/// revision: the newest of them, and whether that is all of them.
pub(crate) struct Ahead {
    /// The revision the keys were read at.
    pub rev: i64,
    /// Keys ahead of mine, newest first (at most [`AHEAD`]).
    pub keys: Vec<Vec<u8>>,
    /// Whether `keys` are all the keys ahead of mine.
    pub complete: bool,
}

impl Ahead {
    /// From a range answer sorted newest first (limit `AHEAD + 1` when it may include my
    /// key, `AHEAD` otherwise), read at `rev`.
    pub(crate) fn from_newest(kvs: &[KeyValue], my_key: &[u8], my_rev: i64, rev: i64) -> Self {
        let keys: Vec<Vec<u8>> = kvs
            .iter()
            .filter(|kv| kv.key != my_key && kv.create_revision < my_rev)
            .take(AHEAD as usize)
            .map(|kv| kv.key.clone())
            .collect();
        Ahead {
            rev,
            complete: (keys.len() as i64) < AHEAD,
            keys,
        }
    }

    /// Nothing ahead: the turn is mine.
    pub(crate) fn none(rev: i64) -> Self {
        Ahead {
            rev,
            keys: Vec::new(),
            complete: true,
        }
    }

    /// Whether nothing is ahead any more.
    pub(crate) fn is_clear(&self) -> bool {
        self.keys.is_empty() && self.complete
    }
}

// ---------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------

/// Who waits, on what.
pub(crate) struct Turn<'a> {
    pub session: &'a Session,
    /// Keys under this prefix created before mine block me.
    pub scope: &'a str,
    pub my_key: &'a [u8],
    pub my_rev: i64,
}

/// Waits until no key of `turn.scope` created before mine is left, while my key stays.
/// `rx` must have been subscribed before the read that produced `ahead` (`None`: read
/// first). Returns the header at the revision where the turn came. Fails with
/// `SessionExpired` when my key goes or the session ends, or with the watch's error if it
/// broke for good.
///
/// The keys ahead can only go away (any key created later has a higher create revision
/// than mine), so following their deletes on the continuous watch from the read revision
/// on is exact. The turn comes at the delete of the last of them — in FIFO order, since
/// that is the key created just before mine (etcd's "predecessor"). Only when more than
/// [`AHEAD`] keys were ahead is the state read again once the known ones are gone.
pub(crate) async fn wait_turn(
    turn: &Turn<'_>,
    rx: &mut broadcast::Receiver<Item>,
    ahead: Option<Ahead>,
) -> Result<Header> {
    let done = turn.session.done();
    tokio::pin!(done);
    let mut ahead = match ahead {
        Some(a) => a,
        None => read_ahead(turn).await?,
    };
    loop {
        if ahead.is_clear() {
            return Ok(Header {
                revision: ahead.rev,
            });
        }
        if ahead.keys.is_empty() {
            ahead = read_ahead(turn).await?;
            continue;
        }
        let item = tokio::select! {
            biased;
            _ = &mut done => return Err(turn.session.expired()),
            item = rx.recv() => item,
        };
        match item {
            Ok(Item::Events(resp)) => {
                for ev in resp.events.iter() {
                    let rev = ev.kv.mod_revision;
                    if rev <= ahead.rev || ev.kind != EventKind::Delete {
                        continue;
                    }
                    if ev.kv.key == turn.my_key {
                        turn.session.check_now();
                        return Err(turn.session.expired());
                    }
                    if let Some(i) = ahead.keys.iter().position(|k| *k == ev.kv.key) {
                        ahead.keys.remove(i);
                        if ahead.keys.is_empty() {
                            // The turn (or the next read) is at this revision; a delete of
                            // my key later in this response still counts (checked above in
                            // the following iterations).
                            ahead.rev = rev;
                        }
                    }
                }
            }
            Ok(Item::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                ahead = read_ahead(turn).await?;
            }
            Ok(Item::Failed(e)) => return Err(e),
            Err(broadcast::error::RecvError::Closed) => {
                return Err(if turn.session.is_done() {
                    turn.session.expired()
                } else {
                    Error::WatchClosed {
                        reason: "the session's watch stopped".into(),
                    }
                })
            }
        }
    }
}

/// Reads my key and the newest keys of the scope created before mine, in one round trip.
/// My key missing means the session's lease is gone.
async fn read_ahead(turn: &Turn<'_>) -> Result<Ahead> {
    let txn = Txn::new().and_then([
        TxnOp::Range(RangeRequest::key(turn.my_key).keys_only()),
        TxnOp::Range(
            RangeRequest::prefix(turn.scope)
                .max_create_revision(turn.my_rev - 1)
                .sort(SortTarget::Create, SortOrder::Descend)
                .limit(AHEAD)
                .keys_only(),
        ),
    ]);
    let resp = turn.session.client().txn(txn).await?;
    let mine = range_kvs(&resp, 0);
    if !mine.iter().any(|kv| kv.create_revision == turn.my_rev) {
        turn.session.check_now();
        return Err(turn.session.expired());
    }
    Ok(Ahead::from_newest(
        range_kvs(&resp, 1),
        turn.my_key,
        turn.my_rev,
        resp.header.revision,
    ))
}

// ---------------------------------------------------------------------------------------
// Cleanup of abandoned keys
// ---------------------------------------------------------------------------------------

/// Runs a transaction that may create `key` (success branch = created, at the answer's
/// revision) on its own task, and waits for it. If the caller is cancelled while the
/// transaction is in flight, the task still finishes it and, if it created the key, deletes
/// it again (bounded by the session's cleanup timeout) — so a cancelled acquisition never
/// leaves a key behind that others would queue after. `hold` is handed back with the answer,
/// or released after that cleanup.
pub(crate) async fn create_key<H: Send + 'static>(
    session: &Session,
    key: &[u8],
    txn: Txn,
    hold: H,
) -> Result<(TxnResponse, H)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let session = session.clone();
    let key = key.to_vec();
    tokio::spawn(async move {
        let answer = session.txn_with_lease(txn).await;
        if let Err((Ok(resp), hold)) = tx.send((answer, hold)) {
            // The caller is gone.
            if resp.succeeded {
                let undo = delete_if_created_at(&key, resp.header.revision);
                let _ = tokio::time::timeout(session.cleanup_timeout(), session.client().txn(undo))
                    .await;
            }
            drop(hold);
        }
    });
    let (answer, hold) = rx.await.map_err(|_| Error::Cancelled)?;
    answer.map(|resp| (resp, hold))
}

/// Deletes a key (if it is still the incarnation created at `rev`) when dropped while
/// armed: the lock or campaign that created it was cancelled or failed. The delete runs on
/// a spawned task bounded by the session's cleanup timeout, and holds `hold` (the handle's
/// local lock) until it is done, so the next attempt through the same handle starts after it.
pub(crate) struct Cleanup<H: Send + 'static> {
    client: Client,
    key: Vec<u8>,
    rev: i64,
    timeout: Duration,
    hold: Option<H>,
    armed: bool,
}

impl<H: Send + 'static> Cleanup<H> {
    pub(crate) fn new(session: &Session, key: &[u8], rev: i64, hold: H) -> Self {
        Cleanup {
            client: session.client().clone(),
            key: key.to_vec(),
            rev,
            timeout: session.cleanup_timeout(),
            hold: Some(hold),
            armed: true,
        }
    }

    /// Success: keep the key, give back the held value.
    pub(crate) fn disarm(mut self) -> H {
        self.armed = false;
        self.hold.take().expect("hold taken once")
    }
}

impl<H: Send + 'static> Drop for Cleanup<H> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let hold = self.hold.take();
        let txn = delete_if_created_at(&self.key, self.rev);
        let client = self.client.clone();
        let timeout = self.timeout;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(timeout, client.txn(txn)).await;
                drop(hold);
            });
        }
        // Without a runtime the key stays until the session's lease ends.
    }
}

/// Deletes `key` if its create revision is `rev` (i.e. it is still the same incarnation).
pub(crate) fn delete_if_created_at(key: &[u8], rev: i64) -> Txn {
    Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, rev)])
        .and_then([TxnOp::Delete(crate::backend::DeleteRequest::key(key))])
}
