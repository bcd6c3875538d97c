//! Leader election: etcd's `concurrency.Election`, with an observer that never goes quiet.
//!
//! Every candidate writes one key, `prefix/<lease in hex>`, holding its proposal value and
//! attached to its session's lease. The key with the lowest create revision is the leader;
//! the others wait until every key created before their own is gone (FIFO: the turn comes
//! with the delete of the key created just before), exactly as a [`Mutex`](crate::Mutex)
//! waits — with the same synced long-lived watch, so a hand-over takes one event delivery,
//! not a 100 ms tick.
//!
//! * [`Election::campaign`] returns once this session is the leader. If its key already
//!   exists (the same session campaigned before, e.g. after a restart that resumed the
//!   lease) it keeps the key's place and updates the value. While waiting it fails with
//!   [`Error::SessionExpired`] if its key vanishes or the session ends; dropping the future
//!   withdraws the candidacy (the key is deleted in the background).
//! * [`Election::proclaim`] changes the leader's value without a new election — only while
//!   still leader (checked with a compare), else [`Error::NotLeader`].
//! * [`Election::resign`] gives leadership up; [`Election::leader`] reads the current
//!   leader or fails with [`Error::NoLeader`].
//! * [`Election::observe`] is a stream of every leadership change in revision order,
//!   `Ok(Some(leader))` for a new leader or value, `Ok(None)` when there is none; it ends only
//!   after yielding an error (for instance [`Error::SessionExpired`]). Unlike Go's `Observe`
//!   it reports "no leader" and never closes silently.
//!
//! **Happens-before:** a `resign` that returned `Ok` happens before the next leader's
//! `campaign` returns. The prefix rules are those of [`Mutex`](crate::Mutex).
//!
//! ```
//! use gosync_dist::{Client, Election, Session};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gosync_dist::Result<()> {
//! let client = Client::embedded();
//! let session = Session::new(&client).await?;
//! let e = Election::new(&session, "/elections/leader");
//! e.campaign("node-1").await?;
//! assert_eq!(e.leader().await?.value_str(), Some("node-1"));
//! e.proclaim("node-1, now at v2").await?;
//! e.resign().await?;
//! assert!(e.leader().await.is_err());
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;

use crate::backend::{
    Compare, CompareOp, EventKind, Header, KeyValue, PutRequest, RangeRequest, SortOrder,
    SortTarget, Txn, TxnOp,
};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::wait::{self, Ahead, Cleanup, Item, Turn};

/// The leader of an election: its key (with value and revisions) and the header of the
/// answer it was read from.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use gosync_dist::{Client, Election, Session};
/// let session = Session::new(&Client::embedded()).await?;
/// let e = Election::new(&session, "/elections/lv");
/// e.campaign("me").await?;
/// let leader = e.leader().await?;
/// assert_eq!(leader.value(), b"me");
/// assert_eq!(leader.kv.lease, session.lease());
/// assert_eq!(Some(leader.kv.create_revision), e.rev());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderValue {
    /// The leader's key, value and revisions.
    pub kv: KeyValue,
    /// The header of the answer (for an observed change: the revision of the change).
    pub header: Header,
}

impl LeaderValue {
    /// The leader's key.
    ///
    /// ```
    /// use gosync_dist::backend::{Header, KeyValue};
    /// let l = gosync_dist::LeaderValue {
    ///     kv: KeyValue { key: b"/e/1".to_vec(), ..Default::default() },
    ///     header: Header::default(),
    /// };
    /// assert_eq!(l.key(), b"/e/1");
    /// ```
    pub fn key(&self) -> &[u8] {
        &self.kv.key
    }

    /// The leader's proclaimed value.
    ///
    /// ```
    /// use gosync_dist::backend::{Header, KeyValue};
    /// let l = gosync_dist::LeaderValue {
    ///     kv: KeyValue { value: b"n1".to_vec(), ..Default::default() },
    ///     header: Header::default(),
    /// };
    /// assert_eq!(l.value(), b"n1");
    /// ```
    pub fn value(&self) -> &[u8] {
        &self.kv.value
    }

    /// The value as UTF-8, if it is.
    ///
    /// ```
    /// use gosync_dist::backend::{Header, KeyValue};
    /// let l = gosync_dist::LeaderValue {
    ///     kv: KeyValue { value: b"n1".to_vec(), ..Default::default() },
    ///     header: Header::default(),
    /// };
    /// assert_eq!(l.value_str(), Some("n1"));
    /// ```
    pub fn value_str(&self) -> Option<&str> {
        self.kv.value_str()
    }
}

/// A leader election on a key prefix, campaigned for through a [`Session`]. See the
/// [module docs](self).
///
/// ```
/// use gosync_dist::{Client, Election, Session};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = Client::embedded();
/// let (s1, s2) = (Session::new(&client).await?, Session::new(&client).await?);
/// let e1 = Election::new(&s1, "/elections/e");
/// e1.campaign("one").await?;
/// let waiting = tokio::spawn(async move {
///     let e2 = Election::new(&s2, "/elections/e");
///     e2.campaign("two").await.map(|_| e2)
/// });
/// e1.resign().await?;
/// let e2 = waiting.await.unwrap()?;
/// assert_eq!(e2.leader().await?.value_str(), Some("two"));
/// # Ok(())
/// # }
/// ```
pub struct Election {
    session: Session,
    prefix: String,
    pfx: Result<String>,
    key: String,
    local: Arc<tokio::sync::Mutex<()>>,
    state: StdMutex<State>,
}

#[derive(Default)]
struct State {
    /// Leader key and its create revision, while this handle leads.
    leader: Option<(String, i64)>,
    header: Option<Header>,
}

impl fmt::Debug for Election {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Election")
            .field("prefix", &self.prefix)
            .field("key", &self.key())
            .field("rev", &self.rev())
            .finish()
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Election {
    /// An election on `prefix` for this session. Nothing is sent until used.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/leader");
    /// assert_eq!(e.key(), None); // not the leader
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(session: &Session, prefix: impl Into<String>) -> Election {
        let prefix = prefix.into();
        let pfx = wait::key_prefix(&prefix);
        let key = format!(
            "{}{:x}",
            pfx.as_deref().unwrap_or(prefix.as_str()),
            session.lease()
        );
        Election {
            session: session.clone(),
            prefix,
            pfx,
            key,
            local: Arc::new(tokio::sync::Mutex::new(())),
            state: StdMutex::new(State::default()),
        }
    }

    /// An election handle that already leads with `leader_key` created at `leader_rev`
    /// (from [`Election::key`] and [`Election::rev`] or a [`LeaderValue`]) — for a process
    /// that restarted and resumed its lease. Proclaim and resign act on that key; if it is
    /// no longer the same key, they fail with [`Error::NotLeader`] / do nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/r");
    /// e.campaign("v1").await?;
    /// let leader = e.leader().await?;
    /// let resumed = Election::resume(
    ///     &session,
    ///     "/elections/r",
    ///     leader.kv.key_str().unwrap(),
    ///     leader.kv.create_revision,
    /// );
    /// resumed.proclaim("v2").await?;
    /// assert_eq!(e.leader().await?.value_str(), Some("v2"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn resume(
        session: &Session,
        prefix: impl Into<String>,
        leader_key: impl Into<String>,
        leader_rev: i64,
    ) -> Election {
        let e = Election::new(session, prefix);
        lock(&e.state).leader = Some((leader_key.into(), leader_rev));
        e
    }

    fn pfx(&self) -> Result<&str> {
        self.pfx.as_deref().map_err(Clone::clone)
    }

    /// Puts this session up as a candidate with `value` and waits until it is the leader.
    /// Re-campaigning while leading (or with a resumed lease whose key exists) keeps the
    /// place and proclaims the new value. Fails with [`Error::SessionExpired`] if the session
    /// ends or its key vanishes while waiting; dropping the future withdraws the candidacy.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/c");
    /// e.campaign("a").await?;
    /// e.campaign("b").await?; // same session: keeps leading, value changes
    /// assert_eq!(e.leader().await?.value_str(), Some("b"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn campaign(&self, value: impl Into<Vec<u8>>) -> Result<()> {
        let value = value.into();
        let pfx = self.pfx()?;
        self.session.ensure_live()?;
        let local = self.local.clone().lock_owned().await;
        let mut rx = self.session.subscribe(pfx.as_bytes()).await?;
        let key = self.key.as_bytes();
        let lease = self.session.lease();
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([
                TxnOp::Put(PutRequest::new(key, value.clone()).with_lease(lease)),
                wait::newest_in(pfx),
            ])
            .or_else([TxnOp::Range(RangeRequest::key(key)), wait::oldest_in(pfx)]);
        let (resp, local) = wait::create_key(&self.session, key, txn, local).await?;
        let (rev, ahead) = if resp.succeeded {
            let rev = resp.header.revision;
            (
                rev,
                Some(Ahead::from_newest(wait::range_kvs(&resp, 1), key, rev, rev)),
            )
        } else {
            let Some(mine) = wait::range_kvs(&resp, 0).first().cloned() else {
                return Err(self.session.expired());
            };
            let rev = mine.create_revision;
            let mut ahead = None;
            if mine.value != value {
                let put = Txn::new()
                    .when([Compare::create_revision(key, CompareOp::Equal, rev)])
                    .and_then([TxnOp::Put(PutRequest::new(key, value).with_lease(lease))]);
                if !self.session.txn_with_lease(put).await?.succeeded {
                    self.session.check_now();
                    return Err(self.session.expired());
                }
            } else if wait::range_kvs(&resp, 1)
                .first()
                .is_some_and(|kv| kv.create_revision == rev)
            {
                ahead = Some(Ahead::none(resp.header.revision));
            }
            (rev, ahead)
        };
        let cleanup = Cleanup::new(&self.session, key, rev, local);
        let turn = Turn {
            session: &self.session,
            scope: pfx,
            my_key: key,
            my_rev: rev,
        };
        let header = wait::wait_turn(&turn, &mut rx, ahead).await?;
        drop(cleanup.disarm());
        let mut st = lock(&self.state);
        st.leader = Some((self.key.clone(), rev));
        st.header = Some(header);
        Ok(())
    }

    /// Announces a new value as the leader, without a new election. Fails with
    /// [`Error::NotLeader`] if this handle is not (or no longer) the leader.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Error, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/p");
    /// assert!(matches!(e.proclaim("x").await, Err(Error::NotLeader { .. })));
    /// e.campaign("x").await?;
    /// e.proclaim("y").await?;
    /// assert_eq!(e.leader().await?.value_str(), Some("y"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn proclaim(&self, value: impl Into<Vec<u8>>) -> Result<()> {
        let value = value.into();
        self.pfx()?;
        let Some((key, rev)) = lock(&self.state).leader.clone() else {
            return Err(self.not_leader());
        };
        self.session.ensure_live()?;
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.as_bytes(),
                CompareOp::Equal,
                rev,
            )])
            .and_then([TxnOp::Put(
                PutRequest::new(key.as_bytes(), value).with_lease(self.session.lease()),
            )]);
        let resp = self.session.txn_with_lease(txn).await?;
        let mut st = lock(&self.state);
        if !resp.succeeded {
            st.leader = None;
            drop(st);
            self.session.check_now();
            return Err(self.not_leader());
        }
        st.header = Some(resp.header);
        Ok(())
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader {
            prefix: self.prefix.clone(),
        }
    }

    /// Gives up leadership (deletes the leader key if it is still this handle's), letting the
    /// next candidate lead. Does nothing if this handle does not lead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/g");
    /// e.resign().await?; // not leading: nothing to do
    /// e.campaign("x").await?;
    /// e.resign().await?;
    /// assert_eq!(e.rev(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resign(&self) -> Result<()> {
        let Some((key, rev)) = lock(&self.state).leader.clone() else {
            return Ok(());
        };
        let resp = self
            .session
            .client()
            .txn(wait::delete_if_created_at(key.as_bytes(), rev))
            .await?;
        let mut st = lock(&self.state);
        st.leader = None;
        st.header = Some(resp.header);
        Ok(())
    }

    /// The current leader, or [`Error::NoLeader`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Error, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/l");
    /// assert!(matches!(e.leader().await, Err(Error::NoLeader { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn leader(&self) -> Result<LeaderValue> {
        let pfx = self.pfx()?;
        self.session.ensure_live()?;
        let resp = self
            .session
            .client()
            .range(
                RangeRequest::prefix(pfx)
                    .sort(SortTarget::Create, SortOrder::Ascend)
                    .limit(1),
            )
            .await?;
        match resp.kvs.into_iter().next() {
            Some(kv) => Ok(LeaderValue {
                kv,
                header: resp.header,
            }),
            None => Err(Error::NoLeader {
                prefix: self.prefix.clone(),
            }),
        }
    }

    /// A stream of leadership changes, starting with the current state: `Ok(Some(leader))`
    /// for each new leader and each new value it proclaims, `Ok(None)` whenever there is no
    /// leader. Every change is reported, in revision order (a consumer more than ~1000 watch
    /// responses behind skips to the current state). The stream ends only after yielding an
    /// `Err` — [`Error::SessionExpired`] when the session ends, or the backend's error.
    /// Dropping it stops observing. Needs a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/o");
    /// let mut changes = e.observe();
    /// assert_eq!(changes.next().await.unwrap()?, None); // nobody leads yet
    /// e.campaign("n1").await?;
    /// let leader = changes.next().await.unwrap()?.unwrap();
    /// assert_eq!(leader.value_str(), Some("n1"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn observe(&self) -> Observe {
        let (tx, rx) = mpsc::channel(64);
        let session = self.session.clone();
        let pfx = self.pfx.clone();
        let task = tokio::spawn(async move {
            let result = match pfx {
                Ok(pfx) => observe_loop(&session, &pfx, &tx).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        Observe {
            rx,
            task: task.abort_handle(),
        }
    }

    /// The leader key's create revision while this handle leads, else `None`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/rev");
    /// e.campaign("x").await?;
    /// assert!(e.rev().unwrap() > 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn rev(&self) -> Option<i64> {
        lock(&self.state).leader.as_ref().map(|(_, rev)| *rev)
    }

    /// The leader key while this handle leads, else `None`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/key");
    /// e.campaign("x").await?;
    /// assert_eq!(e.key(), Some(format!("/elections/key/{:x}", session.lease())));
    /// # Ok(())
    /// # }
    /// ```
    pub fn key(&self) -> Option<String> {
        lock(&self.state).leader.as_ref().map(|(k, _)| k.clone())
    }

    /// The header of the last successful campaign, proclaim or resign.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/hdr");
    /// assert!(e.header().is_none());
    /// e.campaign("x").await?;
    /// assert!(e.header().unwrap().revision >= e.rev().unwrap());
    /// # Ok(())
    /// # }
    /// ```
    pub fn header(&self) -> Option<Header> {
        lock(&self.state).header
    }

    /// The session this election is campaigned through.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// assert_eq!(Election::new(&session, "/e").session().lease(), session.lease());
    /// # Ok(())
    /// # }
    /// ```
    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// The stream returned by [`Election::observe`]: `Result<Option<LeaderValue>>` items, ending
/// only after an `Err`. Use it as a [`Stream`] or through [`Observe::next`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use gosync_dist::{Client, Election, Error, Session};
/// let session = Session::new(&Client::embedded()).await?;
/// let e = Election::new(&session, "/elections/obs");
/// let mut changes = e.observe();
/// assert_eq!(changes.next().await.unwrap()?, None);
/// session.close().await?;
/// assert!(matches!(changes.next().await, Some(Err(Error::SessionExpired { .. }))));
/// assert!(changes.next().await.is_none());
/// # Ok(())
/// # }
/// ```
pub struct Observe {
    rx: mpsc::Receiver<Result<Option<LeaderValue>>>,
    task: AbortHandle,
}

impl Observe {
    /// The next change; `None` only after an `Err` was yielded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Election, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let e = Election::new(&session, "/elections/next");
    /// e.campaign("me").await?;
    /// let first = e.observe().next().await.unwrap()?;
    /// assert_eq!(first.unwrap().value_str(), Some("me"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<Result<Option<LeaderValue>>> {
        self.rx.recv().await
    }
}

impl Stream for Observe {
    type Item = Result<Option<LeaderValue>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Observe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Observe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observe").finish_non_exhaustive()
    }
}

/// The candidates of an election, ordered by create revision (the first one leads).
#[derive(Default)]
struct Candidates {
    by_rev: BTreeMap<(i64, Vec<u8>), KeyValue>,
    by_key: HashMap<Vec<u8>, i64>,
}

impl Candidates {
    fn put(&mut self, kv: KeyValue) {
        if let Some(old) = self.by_key.insert(kv.key.clone(), kv.create_revision) {
            self.by_rev.remove(&(old, kv.key.clone()));
        }
        self.by_rev.insert((kv.create_revision, kv.key.clone()), kv);
    }

    fn delete(&mut self, key: &[u8]) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_rev.remove(&(old, key.to_vec()));
        }
    }

    fn leader(&self) -> Option<&KeyValue> {
        self.by_rev.values().next()
    }
}

/// Identity of an observed state: leader key, create and mod revision (or none).
type Seen = Option<(Vec<u8>, i64, i64)>;

fn identity(kv: Option<&KeyValue>) -> Seen {
    kv.map(|kv| (kv.key.clone(), kv.create_revision, kv.mod_revision))
}

/// Reads all candidates, then follows the session's prefix watch, reporting the leader
/// after every revision that changes it. Returns `Ok` when the consumer went away.
async fn observe_loop(
    session: &Session,
    pfx: &str,
    tx: &mpsc::Sender<Result<Option<LeaderValue>>>,
) -> Result<()> {
    let mut rx = session.subscribe(pfx.as_bytes()).await?;
    let done = session.done();
    tokio::pin!(done);
    let mut last: Option<Seen> = None;
    loop {
        // Snapshot.
        let resp = session
            .client()
            .range(RangeRequest::prefix(pfx).sort(SortTarget::Create, SortOrder::Ascend))
            .await?;
        let mut cands = Candidates::default();
        for kv in resp.kvs {
            cands.put(kv);
        }
        let mut cursor = resp.header.revision;
        if !emit(tx, &cands, resp.header, &mut last).await {
            return Ok(());
        }
        // Follow.
        loop {
            let item = tokio::select! {
                biased;
                _ = &mut done => return Err(session.expired()),
                _ = tx.closed() => return Ok(()),
                item = rx.recv() => item,
            };
            match item {
                Ok(Item::Events(resp)) => {
                    let events = &resp.events;
                    for (i, ev) in events.iter().enumerate() {
                        let rev = ev.kv.mod_revision;
                        if rev <= cursor {
                            continue;
                        }
                        match ev.kind {
                            EventKind::Put => cands.put(ev.kv.clone()),
                            EventKind::Delete => cands.delete(&ev.kv.key),
                        }
                        let end_of_revision = !matches!(
                            events.get(i + 1),
                            Some(next) if next.kv.mod_revision == rev
                        );
                        if end_of_revision {
                            cursor = rev;
                            let header = Header { revision: rev };
                            if !emit(tx, &cands, header, &mut last).await {
                                return Ok(());
                            }
                        }
                    }
                }
                Ok(Item::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                Ok(Item::Failed(e)) => return Err(e),
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(if session.is_done() {
                        session.expired()
                    } else {
                        Error::WatchClosed {
                            reason: "the session's watch stopped".into(),
                        }
                    })
                }
            }
        }
    }
}

/// Sends the current leader if it differs from the last one sent. `false`: consumer gone.
async fn emit(
    tx: &mpsc::Sender<Result<Option<LeaderValue>>>,
    cands: &Candidates,
    header: Header,
    last: &mut Option<Seen>,
) -> bool {
    let now = identity(cands.leader());
    if last.as_ref() == Some(&now) {
        return true;
    }
    *last = Some(now);
    let item = cands.leader().map(|kv| LeaderValue {
        kv: kv.clone(),
        header,
    });
    tx.send(Ok(item)).await.is_ok()
}
