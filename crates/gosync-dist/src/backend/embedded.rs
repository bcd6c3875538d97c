//! In-process MVCC store with etcd's semantics.
//!
//! One mutex guards the whole state: a map from key to its history of versions, a log of
//! the events of recent revisions (for watches that start in the past), the leases, and the
//! open watches. Every write commits under that mutex and hands its events to each
//! matching watch's channel before the lock is released, so watches see every revision in
//! order and without delay. Leases expire lazily on every operation and by a timer task,
//! so expiry happens without traffic too.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures_core::Stream;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use super::{
    Backend, DeleteRequest, DeleteResponse, Event, EventKind, Header, KeyRange, KeyValue,
    LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse, LeaseRevokeResponse,
    LeaseTimeToLiveResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, SortOrder,
    SortTarget, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchControl, WatchRequest, WatchResponse,
    WatchStream,
};
use crate::error::{Error, Result};

/// Settings of an [`EmbeddedBackend`].
///
/// ```
/// use std::time::Duration;
/// use gosync_dist::backend::{EmbeddedBackend, EmbeddedOptions};
/// let backend = EmbeddedBackend::with_options(
///     EmbeddedOptions::new()
///         .with_history(1_000)
///         .with_progress_interval(Duration::from_secs(1)),
/// );
/// # let _ = backend;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// How many past revisions stay readable (range at a revision, watch from a revision).
    /// Older history is compacted away from time to time; asking for it gives
    /// [`Error::Compacted`]. Default 10 000.
    pub history: i64,
    /// How often an idle watch that asked for progress notifications gets one. Default
    /// 10 minutes, as etcd.
    pub progress_interval: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            history: 10_000,
            progress_interval: Duration::from_secs(600),
        }
    }
}

impl EmbeddedOptions {
    /// The defaults.
    ///
    /// ```
    /// assert_eq!(gosync_dist::backend::EmbeddedOptions::new().history, 10_000);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps at least `revisions` past revisions (minimum 1).
    ///
    /// ```
    /// let opts = gosync_dist::backend::EmbeddedOptions::new().with_history(50);
    /// assert_eq!(opts.history, 50);
    /// ```
    pub fn with_history(mut self, revisions: i64) -> Self {
        self.history = revisions.max(1);
        self
    }

    /// Sets the progress-notification interval.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let opts = gosync_dist::backend::EmbeddedOptions::new().with_progress_interval(Duration::from_millis(100));
    /// assert_eq!(opts.progress_interval, Duration::from_millis(100));
    /// ```
    pub fn with_progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }
}

/// An in-process key-value store with etcd's semantics: one global revision, per-key
/// create / mod revision and version, leases with TTL expiry, transactions with compares,
/// and watches from any retained revision.
///
/// Leases expire on time with no traffic when the store is used from a tokio runtime (a
/// timer task is started by the first lease grant); on other executors they expire at the
/// next operation. Watches are pushed their events as each write commits, with no polling;
/// a watch stream that is never read buffers its events in memory until it is dropped.
///
/// ```
/// use std::sync::Arc;
/// use gosync_dist::backend::{Backend, EmbeddedBackend, PutRequest};
/// use gosync_dist::Client;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let backend = EmbeddedBackend::new();
/// let faults = backend.faults();
/// let client = Client::from_backend(Arc::new(backend));
/// client.put(PutRequest::new("k", "v")).await?;
/// faults.sever_watches();
/// # Ok(())
/// # }
/// ```
pub struct EmbeddedBackend {
    shared: Arc<Shared>,
}

impl Default for EmbeddedBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("EmbeddedBackend")
            .field("revision", &st.rev)
            .field("compact_revision", &st.compact_rev)
            .field("leases", &st.leases.len())
            .field("watches", &st.watchers.len())
            .finish()
    }
}

/// Fault injection for an [`EmbeddedBackend`], for tests of what happens when things go
/// wrong. Cheap to clone; does not keep the store alive.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use gosync_dist::backend::{PutRequest, WatchRequest};
/// let client = gosync_dist::Client::embedded();
/// let faults = client.embedded_faults().unwrap();
///
/// let lease = client.lease_grant(60).await?.id;
/// client.put(PutRequest::new("/svc/a", "up").with_lease(lease)).await?;
/// faults.expire_lease(lease)?; // as if the TTL ran out now
/// assert!(client.get("/svc/a").await?.is_none());
///
/// let mut watch = client.watch(WatchRequest::prefix("/svc/")).await?;
/// faults.sever_watches();
/// assert!(watch.next().await.unwrap().is_err());
/// assert!(watch.next().await.is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Faults {
    shared: Weak<Shared>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl EmbeddedBackend {
    /// A fresh, empty store at revision 1, with default [`EmbeddedOptions`].
    ///
    /// ```
    /// let backend = gosync_dist::backend::EmbeddedBackend::new();
    /// # let _ = backend;
    /// ```
    pub fn new() -> Self {
        Self::with_options(EmbeddedOptions::default())
    }

    /// A fresh, empty store with the given options.
    ///
    /// ```
    /// use gosync_dist::backend::{EmbeddedBackend, EmbeddedOptions};
    /// let backend = EmbeddedBackend::with_options(EmbeddedOptions::new().with_history(100));
    /// # let _ = backend;
    /// ```
    pub fn with_options(opts: EmbeddedOptions) -> Self {
        EmbeddedBackend {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    rev: 1,
                    compact_rev: 0,
                    keys: BTreeMap::new(),
                    log: VecDeque::new(),
                    leases: HashMap::new(),
                    watchers: HashMap::new(),
                    next_watch_id: 0,
                }),
                opts,
                lease_notify: Arc::new(Notify::new()),
                expiry_task: Mutex::new(None),
                lease_seq: AtomicU64::new(0),
            }),
        }
    }

    /// A fault-injection handle for this store.
    ///
    /// ```
    /// let backend = gosync_dist::backend::EmbeddedBackend::new();
    /// let faults = backend.faults();
    /// faults.sever_watches(); // no watches open: nothing happens
    /// ```
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The store's current revision.
    ///
    /// ```
    /// assert_eq!(gosync_dist::backend::EmbeddedBackend::new().revision(), 1);
    /// ```
    pub fn revision(&self) -> i64 {
        let mut st = self.shared.lock();
        st.expire_due(Instant::now());
        st.rev
    }
}

impl Faults {
    fn shared(&self) -> Result<Arc<Shared>> {
        self.shared.upgrade().ok_or_else(|| {
            Error::Backend("the embedded store this fault handle belongs to was dropped".into())
        })
    }

    /// Expires a lease now, deleting its keys in one revision exactly as if its TTL had run
    /// out. [`Error::LeaseNotFound`] if there is no such lease.
    ///
    /// ```
    /// let faults = gosync_dist::backend::EmbeddedBackend::new().faults();
    /// assert!(faults.expire_lease(42).is_err());
    /// ```
    pub fn expire_lease(&self, id: LeaseId) -> Result<()> {
        let shared = self.shared()?;
        let mut st = shared.lock();
        st.expire_due(Instant::now());
        if st.revoke_lease(id) {
            Ok(())
        } else {
            Err(Error::LeaseNotFound { lease: id })
        }
    }

    /// Ends every open watch stream: each yields one [`Error::WatchClosed`] and then ends.
    /// Watches opened afterwards work normally.
    ///
    /// ```
    /// gosync_dist::backend::EmbeddedBackend::new().faults().sever_watches();
    /// ```
    pub fn sever_watches(&self) {
        if let Ok(shared) = self.shared() {
            let mut st = shared.lock();
            for (_, w) in st.watchers.drain() {
                let _ = w.tx.send(Err(Error::WatchClosed {
                    reason: "the connection to the store was severed".into(),
                }));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------

struct Shared {
    state: Mutex<State>,
    opts: EmbeddedOptions,
    /// Wakes the expiry task when a lease with a possibly earlier deadline appears, or when
    /// the store is dropped.
    lease_notify: Arc<Notify>,
    expiry_task: Mutex<Option<JoinHandle<()>>>,
    lease_seq: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A locked state with expired leases already processed.
    fn lock_fresh(&self) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        st.expire_due(Instant::now());
        st
    }

    fn new_lease_id(&self, taken: &HashMap<LeaseId, Lease>) -> LeaseId {
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        loop {
            let n = self.lease_seq.fetch_add(1, AtomicOrdering::Relaxed);
            let id = (splitmix64(salt ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 1) as i64;
            if id != 0 && !taken.contains_key(&id) {
                return id;
            }
        }
    }

    /// Makes sure the expiry timer task runs (when inside a tokio runtime).
    fn ensure_expiry_task(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut task = self.expiry_task.lock().unwrap_or_else(|e| e.into_inner());
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(self);
        let notify = self.lease_notify.clone();
        *task = Some(handle.spawn(expiry_loop(weak, notify)));
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Let the expiry task notice the store is gone.
        self.lease_notify.notify_one();
    }
}

async fn expiry_loop(weak: Weak<Shared>, notify: Arc<Notify>) {
    loop {
        let next = {
            let Some(shared) = weak.upgrade() else { return };
            let mut st = shared.lock();
            st.expire_due(Instant::now());
            st.leases.values().map(|l| l.expiry).min()
        };
        match next {
            Some(deadline) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = notify.notified() => {}
                }
            }
            None => notify.notified().await,
        }
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One version of a key: the pair written at `rev`, or `None` for a deletion.
struct Version {
    rev: i64,
    kv: Option<KeyValue>,
}

struct Lease {
    granted_ttl: i64,
    expiry: Instant,
    keys: BTreeSet<Vec<u8>>,
}

struct Watcher {
    range: KeyRange,
    start_rev: i64,
    filter_put: bool,
    filter_delete: bool,
    prev_kv: bool,
    tx: mpsc::UnboundedSender<Result<WatchResponse>>,
}

impl Watcher {
    fn select(&self, events: &[Event]) -> Vec<Event> {
        events
            .iter()
            .filter(|e| e.kv.mod_revision >= self.start_rev)
            .filter(|e| self.range.contains(&e.kv.key))
            .filter(|e| match e.kind {
                EventKind::Put => !self.filter_put,
                EventKind::Delete => !self.filter_delete,
            })
            .map(|e| Event {
                kind: e.kind,
                kv: e.kv.clone(),
                prev_kv: if self.prev_kv {
                    e.prev_kv.clone()
                } else {
                    None
                },
            })
            .collect()
    }
}

struct State {
    /// The last committed revision.
    rev: i64,
    /// History before this revision is gone.
    compact_rev: i64,
    /// Each key's versions, oldest first; the last one is the current state.
    keys: BTreeMap<Vec<u8>, Vec<Version>>,
    /// Events of each retained revision, oldest first.
    log: VecDeque<(i64, Vec<Event>)>,
    leases: HashMap<LeaseId, Lease>,
    watchers: HashMap<u64, Watcher>,
    next_watch_id: u64,
}

fn key_bounds(range: &KeyRange) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let start = Bound::Included(range.start().to_vec());
    match range {
        KeyRange::Key(k) => (start, Bound::Included(k.clone())),
        _ => match range.range_end() {
            Some(end) => (start, Bound::Excluded(end)),
            None => (start, Bound::Unbounded),
        },
    }
}

fn version_at(versions: &[Version], rev: i64) -> Option<&KeyValue> {
    let idx = versions.partition_point(|v| v.rev <= rev);
    versions[..idx].last().and_then(|v| v.kv.as_ref())
}

impl State {
    fn header(&self) -> Header {
        Header { revision: self.rev }
    }

    fn current(&self, key: &[u8]) -> Option<&KeyValue> {
        self.keys
            .get(key)
            .and_then(|vs| vs.last())
            .and_then(|v| v.kv.as_ref())
    }

    // ----- leases -----------------------------------------------------------------------

    /// Revokes every lease whose deadline has passed, each in its own revision.
    fn expire_due(&mut self, now: Instant) {
        if self.leases.values().all(|l| l.expiry > now) {
            return;
        }
        let mut due: Vec<(Instant, LeaseId)> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expiry <= now)
            .map(|(&id, l)| (l.expiry, id))
            .collect();
        due.sort();
        for (_, id) in due {
            self.revoke_lease(id);
        }
    }

    /// Removes a lease and deletes its keys in one revision. False if there is no such
    /// lease.
    fn revoke_lease(&mut self, id: LeaseId) -> bool {
        let Some(lease) = self.leases.remove(&id) else {
            return false;
        };
        let next = self.rev + 1;
        let mut events = Vec::new();
        for key in lease.keys {
            self.delete_key(next, key, &mut events);
        }
        self.commit(events);
        true
    }

    fn check_lease(&self, lease: Option<LeaseId>) -> Result<()> {
        match lease {
            Some(id) if !self.leases.contains_key(&id) => Err(Error::LeaseNotFound { lease: id }),
            _ => Ok(()),
        }
    }

    // ----- reads ------------------------------------------------------------------------

    /// Serves a range at `req.revision`, or at the latest state (including writes pending
    /// in the current transaction) when it is `None`.
    fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let at = match req.revision {
            Some(r) => {
                self.check_read_revision(r)?;
                r
            }
            None => i64::MAX,
        };
        let mut kvs: Vec<KeyValue> = self
            .keys
            .range(key_bounds(&req.range))
            .filter_map(|(_, vs)| version_at(vs, at).cloned())
            .collect();
        let count = kvs.len() as i64;
        let mut more = false;
        // As etcd: with the default order (the raw request's) and no revision filters, the
        // limit applies in key order before any sorting.
        let has_filters = req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        let default_order = req.sort_order == SortOrder::None
            || (req.sort_target == SortTarget::Key && req.sort_order == SortOrder::Ascend);
        if default_order && !has_filters && req.limit > 0 && count > req.limit {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        let bound = |v: i64, min: i64, max: i64| (min == 0 || v >= min) && (max == 0 || v <= max);
        kvs.retain(|kv| {
            bound(kv.mod_revision, req.min_mod_revision, req.max_mod_revision)
                && bound(
                    kv.create_revision,
                    req.min_create_revision,
                    req.max_create_revision,
                )
        });
        let order = match (req.sort_target, req.sort_order) {
            (SortTarget::Key, SortOrder::None) => SortOrder::None,
            (_, SortOrder::None) => SortOrder::Ascend,
            (_, o) => o,
        };
        if order != SortOrder::None {
            match req.sort_target {
                SortTarget::Key => {} // already in key order
                SortTarget::Version => kvs.sort_by_key(|kv| kv.version),
                SortTarget::Create => kvs.sort_by_key(|kv| kv.create_revision),
                SortTarget::Mod => kvs.sort_by_key(|kv| kv.mod_revision),
                SortTarget::Value => kvs.sort_by(|a, b| a.value.cmp(&b.value)),
            }
            if order == SortOrder::Descend {
                kvs.reverse();
            }
        }
        if req.limit > 0 && kvs.len() as i64 > req.limit {
            kvs.truncate(req.limit as usize);
            more = true;
        }
        if req.count_only {
            kvs.clear();
        } else if req.keys_only {
            for kv in &mut kvs {
                kv.value.clear();
            }
        }
        Ok(RangeResponse {
            header: self.header(),
            kvs,
            count,
            more,
        })
    }

    fn check_read_revision(&self, rev: i64) -> Result<()> {
        if rev > self.rev {
            return Err(Error::invalid(
                "revision",
                format!("{rev} is a future revision (the store is at {})", self.rev),
            ));
        }
        if rev < self.compact_rev {
            return Err(Error::Compacted {
                revision: rev,
                compact_revision: self.compact_rev,
            });
        }
        Ok(())
    }

    // ----- writes -----------------------------------------------------------------------

    /// Writes a key at revision `next` (not yet committed). Returns the previous pair.
    fn put_key(
        &mut self,
        next: i64,
        req: &PutRequest,
        events: &mut Vec<Event>,
    ) -> Option<KeyValue> {
        let lease = req.lease_id().unwrap_or(0);
        let prev = self.current(&req.key).cloned();
        let kv = KeyValue {
            key: req.key.clone(),
            value: req.value.clone(),
            create_revision: prev.as_ref().map_or(next, |p| p.create_revision),
            mod_revision: next,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            lease,
        };
        if let Some(old) = prev
            .as_ref()
            .map(|p| p.lease)
            .filter(|&l| l != 0 && l != lease)
        {
            if let Some(l) = self.leases.get_mut(&old) {
                l.keys.remove(&req.key);
            }
        }
        if lease != 0 {
            if let Some(l) = self.leases.get_mut(&lease) {
                l.keys.insert(req.key.clone());
            }
        }
        self.keys.entry(req.key.clone()).or_default().push(Version {
            rev: next,
            kv: Some(kv.clone()),
        });
        events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
        });
        prev
    }

    /// Deletes one live key at revision `next`. Returns the deleted pair.
    fn delete_key(&mut self, next: i64, key: Vec<u8>, events: &mut Vec<Event>) -> Option<KeyValue> {
        let prev = self.current(&key).cloned()?;
        if prev.lease != 0 {
            if let Some(l) = self.leases.get_mut(&prev.lease) {
                l.keys.remove(&key);
            }
        }
        if let Some(vs) = self.keys.get_mut(&key) {
            vs.push(Version {
                rev: next,
                kv: None,
            });
        }
        events.push(Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key,
                mod_revision: next,
                ..KeyValue::default()
            },
            prev_kv: Some(prev.clone()),
        });
        Some(prev)
    }

    fn delete_range(
        &mut self,
        next: i64,
        range: &KeyRange,
        events: &mut Vec<Event>,
    ) -> Vec<KeyValue> {
        let live: Vec<Vec<u8>> = self
            .keys
            .range(key_bounds(range))
            .filter(|(_, vs)| vs.last().is_some_and(|v| v.kv.is_some()))
            .map(|(k, _)| k.clone())
            .collect();
        live.into_iter()
            .filter_map(|k| self.delete_key(next, k, events))
            .collect()
    }

    /// Commits the pending writes: bumps the revision if anything changed, logs the events
    /// and hands them to the watches. Returns the header revision.
    fn commit(&mut self, events: Vec<Event>) -> i64 {
        if events.is_empty() {
            return self.rev;
        }
        self.rev += 1;
        let rev = self.rev;
        self.watchers.retain(|_, w| {
            let selected = w.select(&events);
            if selected.is_empty() {
                return !w.tx.is_closed();
            }
            w.tx.send(Ok(WatchResponse {
                header: Header { revision: rev },
                events: selected,
            }))
            .is_ok()
        });
        self.log.push_back((rev, events));
        rev
    }

    /// Drops history older than `history` revisions, once twice that much has piled up.
    fn maybe_compact(&mut self, history: i64) {
        if self.rev - self.compact_rev < 2 * history {
            return;
        }
        let c = self.rev - history;
        self.keys.retain(|_, vs| {
            let idx = vs.partition_point(|v| v.rev <= c);
            if idx > 1 {
                vs.drain(..idx - 1);
            }
            if vs.first().is_some_and(|v| v.rev <= c && v.kv.is_none()) {
                vs.remove(0);
            }
            !vs.is_empty()
        });
        while self.log.front().is_some_and(|(r, _)| *r < c) {
            self.log.pop_front();
        }
        self.compact_rev = c;
    }

    fn check_branch(&self, ops: &[TxnOp]) -> Result<()> {
        for op in ops {
            match op {
                TxnOp::Put(p) => self.check_lease(p.lease_id())?,
                TxnOp::Range(r) => {
                    if let Some(rev) = r.revision {
                        self.check_read_revision(rev)?;
                    }
                }
                TxnOp::Delete(_) => {}
            }
        }
        Ok(())
    }

    fn txn(&mut self, txn: &Txn) -> Result<TxnResponse> {
        let succeeded = txn.compare.iter().all(|c| c.evaluate(self.current(&c.key)));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        self.check_branch(ops)?;
        let next = self.rev + 1;
        let mut events = Vec::new();
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(match op {
                TxnOp::Put(p) => {
                    let prev = self.put_key(next, p, &mut events);
                    TxnOpResponse::Put(PutResponse {
                        header: Header::default(),
                        prev_kv: if p.prev_kv { prev } else { None },
                    })
                }
                TxnOp::Delete(d) => {
                    let deleted = self.delete_range(next, &d.range, &mut events);
                    TxnOpResponse::Delete(DeleteResponse {
                        header: Header::default(),
                        deleted: deleted.len() as i64,
                        prev_kvs: if d.prev_kv { deleted } else { Vec::new() },
                    })
                }
                TxnOp::Range(r) => TxnOpResponse::Range(self.range(r)?),
            });
        }
        let header = Header {
            revision: self.commit(events),
        };
        for r in &mut responses {
            match r {
                TxnOpResponse::Put(p) => p.header = header,
                TxnOpResponse::Delete(d) => d.header = header,
                TxnOpResponse::Range(r) => r.header = header,
            }
        }
        Ok(TxnResponse {
            header,
            succeeded,
            responses,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Watch streams
// ---------------------------------------------------------------------------------------

/// Sends a progress notification to watch `id` through its channel, behind every event
/// already queued for it.
fn send_progress(shared: &Weak<Shared>, id: u64) -> Result<()> {
    let closed = || Error::WatchClosed {
        reason: "the watch is no longer open".into(),
    };
    let shared = shared.upgrade().ok_or_else(closed)?;
    let st = shared.lock_fresh();
    let header = st.header();
    let w = st.watchers.get(&id).ok_or_else(closed)?;
    w.tx.send(Ok(WatchResponse {
        header,
        events: Vec::new(),
    }))
    .map_err(|_| closed())
}

struct EmbeddedWatch {
    rx: mpsc::UnboundedReceiver<Result<WatchResponse>>,
    shared: Weak<Shared>,
    id: u64,
    ended: bool,
    progress: Option<(Duration, Pin<Box<Sleep>>)>,
}

impl Stream for EmbeddedWatch {
    type Item = Result<WatchResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(resp))) => {
                    if let Some((every, sleep)) = &mut this.progress {
                        sleep.as_mut().reset(Instant::now() + *every);
                    }
                    return Poll::Ready(Some(Ok(resp)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(Error::WatchClosed {
                        reason: "the embedded store was dropped".into(),
                    })));
                }
                Poll::Pending => {}
            }
            let Some((every, sleep)) = &mut this.progress else {
                return Poll::Pending;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            sleep.as_mut().reset(Instant::now() + *every);
            // Queue the notification behind pending events, then poll the channel again.
            let _ = send_progress(&this.shared, this.id);
        }
    }
}

impl Drop for EmbeddedWatch {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.lock().watchers.remove(&self.id);
        }
    }
}

struct EmbeddedWatchControl {
    shared: Weak<Shared>,
    id: u64,
}

#[async_trait]
impl WatchControl for EmbeddedWatchControl {
    async fn request_progress(&mut self) -> Result<()> {
        send_progress(&self.shared, self.id)
    }
}

// ---------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        req.validate()?;
        self.shared.lock_fresh().range(&req)
    }

    async fn put(&self, req: PutRequest) -> Result<PutResponse> {
        req.validate()?;
        let mut st = self.shared.lock_fresh();
        st.check_lease(req.lease_id())?;
        let next = st.rev + 1;
        let mut events = Vec::with_capacity(1);
        let prev = st.put_key(next, &req, &mut events);
        let revision = st.commit(events);
        st.maybe_compact(self.shared.opts.history);
        Ok(PutResponse {
            header: Header { revision },
            prev_kv: if req.prev_kv { prev } else { None },
        })
    }

    async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        req.validate()?;
        let mut st = self.shared.lock_fresh();
        let next = st.rev + 1;
        let mut events = Vec::new();
        let deleted = st.delete_range(next, &req.range, &mut events);
        let revision = st.commit(events);
        st.maybe_compact(self.shared.opts.history);
        Ok(DeleteResponse {
            header: Header { revision },
            deleted: deleted.len() as i64,
            prev_kvs: if req.prev_kv { deleted } else { Vec::new() },
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        txn.validate()?;
        let mut st = self.shared.lock_fresh();
        let resp = st.txn(&txn)?;
        st.maybe_compact(self.shared.opts.history);
        Ok(resp)
    }

    async fn lease_grant(&self, ttl_secs: i64) -> Result<LeaseGrantResponse> {
        if ttl_secs <= 0 {
            return Err(Error::invalid(
                "ttl",
                format!("must be at least 1 second, got {ttl_secs}"),
            ));
        }
        let resp = {
            let mut st = self.shared.lock_fresh();
            let id = self.shared.new_lease_id(&st.leases);
            let expiry = Instant::now()
                .checked_add(Duration::from_secs(ttl_secs as u64))
                .ok_or_else(|| Error::invalid("ttl", format!("{ttl_secs} s is too large")))?;
            st.leases.insert(
                id,
                Lease {
                    granted_ttl: ttl_secs,
                    expiry,
                    keys: BTreeSet::new(),
                },
            );
            LeaseGrantResponse {
                header: st.header(),
                id,
                ttl: ttl_secs,
            }
        };
        self.shared.ensure_expiry_task();
        self.shared.lease_notify.notify_one();
        Ok(resp)
    }

    async fn lease_revoke(&self, id: LeaseId) -> Result<LeaseRevokeResponse> {
        let mut st = self.shared.lock_fresh();
        if !st.revoke_lease(id) {
            return Err(Error::LeaseNotFound { lease: id });
        }
        st.maybe_compact(self.shared.opts.history);
        Ok(LeaseRevokeResponse {
            header: st.header(),
        })
    }

    async fn lease_keep_alive_once(&self, id: LeaseId) -> Result<LeaseKeepAliveResponse> {
        let mut st = self.shared.lock_fresh();
        let header = st.header();
        let lease = st
            .leases
            .get_mut(&id)
            .ok_or(Error::LeaseNotFound { lease: id })?;
        lease.expiry = Instant::now() + Duration::from_secs(lease.granted_ttl as u64);
        Ok(LeaseKeepAliveResponse {
            header,
            id,
            ttl: lease.granted_ttl,
        })
    }

    async fn lease_time_to_live(&self, id: LeaseId, keys: bool) -> Result<LeaseTimeToLiveResponse> {
        let st = self.shared.lock_fresh();
        let lease = st
            .leases
            .get(&id)
            .ok_or(Error::LeaseNotFound { lease: id })?;
        let remaining = lease.expiry.saturating_duration_since(Instant::now());
        Ok(LeaseTimeToLiveResponse {
            header: st.header(),
            id,
            ttl: remaining.as_secs() as i64, // whole seconds, truncated, as etcd
            granted_ttl: lease.granted_ttl,
            keys: if keys {
                lease.keys.iter().cloned().collect()
            } else {
                Vec::new()
            },
        })
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        req.validate()?;
        let mut st = self.shared.lock_fresh();
        let start_rev = req.start_revision.unwrap_or(st.rev + 1);
        if start_rev < st.compact_rev {
            return Err(Error::Compacted {
                revision: start_rev,
                compact_revision: st.compact_rev,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = Watcher {
            range: req.range,
            start_rev,
            filter_put: req.filter_put,
            filter_delete: req.filter_delete,
            prev_kv: req.prev_kv,
            tx,
        };
        if start_rev <= st.rev {
            let replay: Vec<Event> = st
                .log
                .iter()
                .filter(|(rev, _)| *rev >= start_rev)
                .flat_map(|(_, events)| watcher.select(events))
                .collect();
            if !replay.is_empty() {
                let _ = watcher.tx.send(Ok(WatchResponse {
                    header: st.header(),
                    events: replay,
                }));
            }
        }
        let id = st.next_watch_id;
        st.next_watch_id += 1;
        st.watchers.insert(id, watcher);
        drop(st);

        let shared = Arc::downgrade(&self.shared);
        let has_timer = tokio::runtime::Handle::try_current().is_ok();
        let progress = (req.progress_notify && has_timer).then(|| {
            let every = self.shared.opts.progress_interval;
            (every, Box::pin(tokio::time::sleep(every)))
        });
        let stream = EmbeddedWatch {
            rx,
            shared: shared.clone(),
            id,
            ended: false,
            progress,
        };
        Ok(WatchStream::new(Box::pin(stream))
            .with_control(Box::new(EmbeddedWatchControl { shared, id })))
    }

    fn describe(&self) -> String {
        "embedded".to_owned()
    }
}
