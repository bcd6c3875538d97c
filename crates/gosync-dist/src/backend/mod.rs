//! The key-value surface the distributed primitives are built on.
//!
//! [`Backend`] is the part of etcd's v3 API that sessions, mutexes and elections need:
//! ranges, puts and deletes, transactions with compares, leases, and watches. Its types
//! follow etcd's protobuf messages closely, so the etcd backend is a thin mapping and the
//! [`EmbeddedBackend`] reproduces the same semantics in process:
//!
//! * Every change bumps one global **revision**; a response's [`Header::revision`] is the
//!   store's revision when the answer was produced. A fresh store is at revision 1.
//! * A key carries its `create_revision`, `mod_revision`, `version` (puts since creation)
//!   and attached `lease` ([`KeyValue`]).
//! * A delete or a transaction touching several keys uses one revision; an operation that
//!   changes nothing uses none.
//! * Keys must not be empty ([`Error::InvalidArgument`] names the argument).
//!
//! Error conventions every backend follows: an unknown or expired lease is
//! [`Error::LeaseNotFound`] (also from keep-alive and time-to-live); a revision older than
//! the compaction point is [`Error::Compacted`]; a future revision in a range is
//! [`Error::InvalidArgument`] naming `revision`; a broken watch yields one
//! [`Error::WatchClosed`] (or `Compacted`) item and then ends.
//!
//! ```
//! use gosync_dist::backend::{Compare, CompareOp, PutRequest, RangeRequest, Txn, TxnOp};
//! use gosync_dist::Client;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gosync_dist::Result<()> {
//! let client = Client::embedded();
//! // Create "/config" only if it does not exist yet.
//! let txn = Txn::new()
//!     .when([Compare::create_revision("/config", CompareOp::Equal, 0)])
//!     .and_then([TxnOp::Put(PutRequest::new("/config", "v1"))])
//!     .or_else([TxnOp::Range(RangeRequest::key("/config"))]);
//! let resp = client.txn(txn).await?;
//! assert!(resp.succeeded);
//! let got = client.range(RangeRequest::key("/config")).await?;
//! assert_eq!(got.kvs[0].value, b"v1");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_core::Stream;

use crate::error::{Error, Result};

mod embedded;
pub(crate) mod etcd;

pub use embedded::{EmbeddedBackend, EmbeddedOptions, Faults};

/// A lease's id. `0` means "no lease", as in etcd.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = gosync_dist::Client::embedded();
/// let id: gosync_dist::backend::LeaseId = client.lease_grant(10).await?.id;
/// assert_ne!(id, 0);
/// # Ok(())
/// # }
/// ```
pub type LeaseId = i64;

/// The operations a backend provides. Implemented by the etcd backend and by
/// [`EmbeddedBackend`]; the conformance suite checks that both behave alike.
///
/// Implementations must be cheap to call concurrently from many tasks. Every method is one
/// round trip (a watch: one to establish it).
///
/// ```
/// use std::sync::Arc;
/// use gosync_dist::backend::{Backend, EmbeddedBackend, PutRequest};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let backend: Arc<dyn Backend> = Arc::new(EmbeddedBackend::new());
/// let resp = backend.put(PutRequest::new("k", "v")).await?;
/// assert_eq!(resp.header.revision, 2);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Reads a key or a range of keys, optionally at a past revision, sorted, limited and
    /// filtered by create / mod revision.
    ///
    /// ```
    /// # use gosync_dist::backend::{Backend, EmbeddedBackend, PutRequest, RangeRequest};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// b.put(PutRequest::new("/a/1", "x")).await?;
    /// let resp = b.range(RangeRequest::prefix("/a/")).await?;
    /// assert_eq!(resp.count, 1);
    /// # Ok(())
    /// # }
    /// ```
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// Writes a key, optionally attached to a lease, optionally returning the previous pair.
    ///
    /// ```
    /// # use gosync_dist::backend::{Backend, EmbeddedBackend, PutRequest};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// b.put(PutRequest::new("k", "1")).await?;
    /// let resp = b.put(PutRequest::new("k", "2").with_prev_kv()).await?;
    /// assert_eq!(resp.prev_kv.unwrap().value, b"1");
    /// # Ok(())
    /// # }
    /// ```
    async fn put(&self, req: PutRequest) -> Result<PutResponse>;

    /// Deletes a key or a range of keys, all in one revision.
    ///
    /// ```
    /// # use gosync_dist::backend::{Backend, DeleteRequest, EmbeddedBackend, PutRequest};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// b.put(PutRequest::new("/a/1", "x")).await?;
    /// b.put(PutRequest::new("/a/2", "y")).await?;
    /// assert_eq!(b.delete(DeleteRequest::prefix("/a/")).await?.deleted, 2);
    /// # Ok(())
    /// # }
    /// ```
    async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse>;

    /// Runs a transaction: if every compare holds, the `success` ops, else the `failure`
    /// ops, atomically and in one revision.
    ///
    /// ```
    /// # use gosync_dist::backend::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// let txn = Txn::new()
    ///     .when([Compare::version("k", CompareOp::Equal, 0)])
    ///     .and_then([TxnOp::Put(PutRequest::new("k", "first"))]);
    /// assert!(b.txn(txn.clone()).await?.succeeded);
    /// assert!(!b.txn(txn).await?.succeeded);
    /// # Ok(())
    /// # }
    /// ```
    async fn txn(&self, txn: Txn) -> Result<TxnResponse>;

    /// Grants a lease that expires `ttl_secs` seconds from now unless kept alive.
    ///
    /// ```
    /// # use gosync_dist::backend::{Backend, EmbeddedBackend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// let lease = b.lease_grant(5).await?;
    /// assert_eq!(lease.ttl, 5);
    /// # Ok(())
    /// # }
    /// ```
    async fn lease_grant(&self, ttl_secs: i64) -> Result<LeaseGrantResponse>;

    /// Revokes a lease, deleting every key attached to it in one revision.
    ///
    /// ```
    /// # use gosync_dist::backend::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// let lease = b.lease_grant(60).await?.id;
    /// b.put(PutRequest::new("k", "v").with_lease(lease)).await?;
    /// b.lease_revoke(lease).await?;
    /// assert_eq!(b.range(RangeRequest::key("k")).await?.count, 0);
    /// # Ok(())
    /// # }
    /// ```
    async fn lease_revoke(&self, id: LeaseId) -> Result<LeaseRevokeResponse>;

    /// Sends one keep-alive for a lease and returns its renewed TTL. An expired or unknown
    /// lease is [`Error::LeaseNotFound`]. Callers run their own refresh loop.
    ///
    /// ```
    /// # use gosync_dist::backend::{Backend, EmbeddedBackend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// let lease = b.lease_grant(30).await?.id;
    /// assert_eq!(b.lease_keep_alive_once(lease).await?.ttl, 30);
    /// # Ok(())
    /// # }
    /// ```
    async fn lease_keep_alive_once(&self, id: LeaseId) -> Result<LeaseKeepAliveResponse>;

    /// Reports a lease's remaining and granted TTL and, if `keys` is set, its keys. An
    /// expired or unknown lease is [`Error::LeaseNotFound`].
    ///
    /// ```
    /// # use gosync_dist::backend::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// let lease = b.lease_grant(30).await?.id;
    /// b.put(PutRequest::new("k", "v").with_lease(lease)).await?;
    /// let info = b.lease_time_to_live(lease, true).await?;
    /// assert_eq!(info.granted_ttl, 30);
    /// assert_eq!(info.keys, vec![b"k".to_vec()]);
    /// # Ok(())
    /// # }
    /// ```
    async fn lease_time_to_live(&self, id: LeaseId, keys: bool) -> Result<LeaseTimeToLiveResponse>;

    /// Opens a watch on a key or range. When this returns `Ok`, the watch is established:
    /// every event at a revision at or after the start revision will be delivered, in
    /// revision order, and nothing before it.
    ///
    /// ```
    /// # use gosync_dist::backend::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let b = EmbeddedBackend::new();
    /// let mut watch = b.watch(WatchRequest::prefix("/jobs/")).await?;
    /// b.put(PutRequest::new("/jobs/1", "run")).await?;
    /// let resp = watch.next().await.unwrap()?;
    /// assert_eq!(resp.events[0].kind, EventKind::Put);
    /// # Ok(())
    /// # }
    /// ```
    async fn watch(&self, req: WatchRequest) -> Result<WatchStream>;

    /// A short description for logs and `Debug` output, such as `"embedded"`.
    ///
    /// ```
    /// # use gosync_dist::backend::{Backend, EmbeddedBackend};
    /// assert_eq!(EmbeddedBackend::new().describe(), "embedded");
    /// ```
    fn describe(&self) -> String {
        "custom backend".to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Common pieces
// ---------------------------------------------------------------------------------------

/// Information every response carries.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = gosync_dist::Client::embedded();
/// let resp = client.range(gosync_dist::backend::RangeRequest::key("missing")).await?;
/// assert_eq!(resp.header.revision, 1); // a fresh store is at revision 1
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// The store's revision when the response was produced.
    pub revision: i64,
}

/// A key with its value and MVCC metadata.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use gosync_dist::backend::{PutRequest, RangeRequest};
/// let client = gosync_dist::Client::embedded();
/// client.put(PutRequest::new("k", "v")).await?;
/// let kv = &client.range(RangeRequest::key("k")).await?.kvs[0];
/// assert_eq!((kv.key_str(), kv.value_str()), (Some("k"), Some("v")));
/// assert_eq!((kv.create_revision, kv.mod_revision, kv.version, kv.lease), (2, 2, 1, 0));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty for a delete event's tombstone).
    pub value: Vec<u8>,
    /// Revision at which the key was last created.
    pub create_revision: i64,
    /// Revision of the key's last change.
    pub mod_revision: i64,
    /// Number of puts since the key was created (0 for a tombstone).
    pub version: i64,
    /// The attached lease, 0 if none.
    pub lease: LeaseId,
}

impl KeyValue {
    /// The key as UTF-8, if it is.
    ///
    /// ```
    /// let kv = gosync_dist::backend::KeyValue { key: b"k".to_vec(), ..Default::default() };
    /// assert_eq!(kv.key_str(), Some("k"));
    /// ```
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }

    /// The value as UTF-8, if it is.
    ///
    /// ```
    /// let kv = gosync_dist::backend::KeyValue { value: b"v".to_vec(), ..Default::default() };
    /// assert_eq!(kv.value_str(), Some("v"));
    /// ```
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value", &String::from_utf8_lossy(&self.value))
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .field("version", &self.version)
            .field("lease", &self.lease)
            .finish()
    }
}

/// Which keys an operation addresses.
///
/// ```
/// use gosync_dist::backend::KeyRange;
/// let r = KeyRange::prefix("/locks/");
/// assert!(r.contains(b"/locks/a"));
/// assert!(!r.contains(b"/lockz"));
/// assert_eq!(r.range_end(), Some(b"/locks0".to_vec()));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum KeyRange {
    /// Exactly this key.
    Key(Vec<u8>),
    /// Every key starting with this (non-empty) prefix.
    Prefix(Vec<u8>),
    /// Every key `k` with `start <= k < end`.
    Range {
        /// First key, inclusive.
        start: Vec<u8>,
        /// End key, exclusive.
        end: Vec<u8>,
    },
    /// Every key greater than or equal to this one.
    FromKey(Vec<u8>),
}

impl KeyRange {
    /// Exactly `key`.
    ///
    /// ```
    /// assert!(gosync_dist::backend::KeyRange::key("a").contains(b"a"));
    /// ```
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        KeyRange::Key(key.into())
    }

    /// Every key starting with `prefix`.
    ///
    /// ```
    /// assert!(gosync_dist::backend::KeyRange::prefix("a").contains(b"ab"));
    /// ```
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        KeyRange::Prefix(prefix.into())
    }

    /// Every key in `[start, end)`.
    ///
    /// ```
    /// let r = gosync_dist::backend::KeyRange::range("a", "c");
    /// assert!(r.contains(b"b") && !r.contains(b"c"));
    /// ```
    pub fn range(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange::Range {
            start: start.into(),
            end: end.into(),
        }
    }

    /// The first key of the range (etcd's `key` field).
    ///
    /// ```
    /// assert_eq!(gosync_dist::backend::KeyRange::prefix("p/").start(), b"p/");
    /// ```
    pub fn start(&self) -> &[u8] {
        match self {
            KeyRange::Key(k) | KeyRange::Prefix(k) | KeyRange::FromKey(k) => k,
            KeyRange::Range { start, .. } => start,
        }
    }

    /// The exclusive end key (etcd's `range_end`): `None` for a single key or an unbounded
    /// end.
    ///
    /// ```
    /// use gosync_dist::backend::KeyRange;
    /// assert_eq!(KeyRange::prefix("a").range_end(), Some(b"b".to_vec()));
    /// assert_eq!(KeyRange::prefix(vec![b'a', 0xff]).range_end(), Some(b"b".to_vec()));
    /// assert_eq!(KeyRange::prefix(vec![0xff]).range_end(), None);
    /// assert_eq!(KeyRange::key("a").range_end(), None);
    /// ```
    pub fn range_end(&self) -> Option<Vec<u8>> {
        match self {
            KeyRange::Key(_) | KeyRange::FromKey(_) => None,
            KeyRange::Range { end, .. } => Some(end.clone()),
            KeyRange::Prefix(p) => prefix_end(p),
        }
    }

    /// Whether `key` lies in the range.
    ///
    /// ```
    /// assert!(gosync_dist::backend::KeyRange::FromKey(b"m".to_vec()).contains(b"z"));
    /// ```
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Key(k) => k.as_slice() == key,
            KeyRange::Prefix(p) => key.starts_with(p),
            KeyRange::Range { start, end } => start.as_slice() <= key && key < end.as_slice(),
            KeyRange::FromKey(k) => k.as_slice() <= key,
        }
    }

    /// Checks the range is well formed: keys and prefixes non-empty, `end > start`.
    ///
    /// ```
    /// use gosync_dist::backend::KeyRange;
    /// assert!(KeyRange::prefix("").validate().is_err());
    /// assert!(KeyRange::range("b", "a").validate().is_err());
    /// assert!(KeyRange::key("a").validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<()> {
        match self {
            KeyRange::Key(k) | KeyRange::FromKey(k) if k.is_empty() => {
                Err(Error::invalid("key", "must not be empty"))
            }
            KeyRange::Prefix(p) if p.is_empty() => {
                Err(Error::invalid("prefix", "must not be empty"))
            }
            KeyRange::Range { start, .. } if start.is_empty() => {
                Err(Error::invalid("key", "must not be empty"))
            }
            KeyRange::Range { start, end } if end <= start => Err(Error::invalid(
                "range_end",
                "must be greater than the start key",
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            KeyRange::Key(k) => write!(f, "Key({:?})", s(k)),
            KeyRange::Prefix(p) => write!(f, "Prefix({:?})", s(p)),
            KeyRange::Range { start, end } => write!(f, "Range({:?}..{:?})", s(start), s(end)),
            KeyRange::FromKey(k) => write!(f, "FromKey({:?})", s(k)),
        }
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None` if there is
/// none (the prefix is all `0xff` bytes).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Range
// ---------------------------------------------------------------------------------------

/// What to sort a range's results by.
///
/// ```
/// use gosync_dist::backend::{RangeRequest, SortOrder, SortTarget};
/// let req = RangeRequest::prefix("/q/").sort(SortTarget::Create, SortOrder::Ascend).limit(1);
/// # let _ = req;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortTarget {
    /// By key (the natural order).
    #[default]
    Key,
    /// By version.
    Version,
    /// By create revision.
    Create,
    /// By mod revision.
    Mod,
    /// By value.
    Value,
}

/// Sort direction.
///
/// ```
/// use gosync_dist::backend::{RangeRequest, SortOrder, SortTarget};
/// let newest = RangeRequest::prefix("/q/").sort(SortTarget::Mod, SortOrder::Descend).limit(1);
/// # let _ = newest;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// No sorting: key order. As in etcd, a non-key target with `None` sorts ascending,
    /// but a limit then applies in key order before the sort; give an explicit order when
    /// combining a sort target with a limit.
    #[default]
    None,
    /// Ascending.
    Ascend,
    /// Descending.
    Descend,
}

/// A read of a key or range. Build with [`RangeRequest::key`] or [`RangeRequest::prefix`]
/// and the chained setters.
///
/// ```
/// use gosync_dist::backend::{RangeRequest, SortOrder, SortTarget};
/// // The newest key under /lock/ created before revision 42 (etcd's "wait for predecessor").
/// let req = RangeRequest::prefix("/lock/")
///     .max_create_revision(41)
///     .sort(SortTarget::Create, SortOrder::Descend)
///     .limit(1);
/// assert_eq!(req.limit, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    /// The keys to read.
    pub range: KeyRange,
    /// Read at this past revision; `None` reads the current state.
    pub revision: Option<i64>,
    /// At most this many pairs; 0 means no limit.
    pub limit: i64,
    /// Sort key.
    pub sort_target: SortTarget,
    /// Sort direction.
    pub sort_order: SortOrder,
    /// Return keys and metadata without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
    /// Only pairs with `mod_revision >= this` (0 = no bound).
    pub min_mod_revision: i64,
    /// Only pairs with `mod_revision <= this` (0 = no bound).
    pub max_mod_revision: i64,
    /// Only pairs with `create_revision >= this` (0 = no bound).
    pub min_create_revision: i64,
    /// Only pairs with `create_revision <= this` (0 = no bound).
    pub max_create_revision: i64,
}

impl RangeRequest {
    /// Reads `range` with no options.
    ///
    /// ```
    /// use gosync_dist::backend::{KeyRange, RangeRequest};
    /// let req = RangeRequest::new(KeyRange::range("a", "m"));
    /// # let _ = req;
    /// ```
    pub fn new(range: KeyRange) -> Self {
        RangeRequest {
            range,
            revision: None,
            limit: 0,
            sort_target: SortTarget::Key,
            sort_order: SortOrder::None,
            keys_only: false,
            count_only: false,
            min_mod_revision: 0,
            max_mod_revision: 0,
            min_create_revision: 0,
            max_create_revision: 0,
        }
    }

    /// Reads one key.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::key("/config");
    /// # let _ = req;
    /// ```
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        Self::new(KeyRange::key(key))
    }

    /// Reads every key under `prefix`.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::prefix("/jobs/");
    /// # let _ = req;
    /// ```
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        Self::new(KeyRange::prefix(prefix))
    }

    /// Reads at a past revision.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::key("k").at_revision(5);
    /// assert_eq!(req.revision, Some(5));
    /// ```
    pub fn at_revision(mut self, revision: i64) -> Self {
        self.revision = Some(revision);
        self
    }

    /// Returns at most `limit` pairs.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::prefix("p").limit(1);
    /// assert_eq!(req.limit, 1);
    /// ```
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }

    /// Sorts the result.
    ///
    /// ```
    /// use gosync_dist::backend::{RangeRequest, SortOrder, SortTarget};
    /// let req = RangeRequest::prefix("p").sort(SortTarget::Create, SortOrder::Ascend);
    /// # let _ = req;
    /// ```
    pub fn sort(mut self, target: SortTarget, order: SortOrder) -> Self {
        self.sort_target = target;
        self.sort_order = order;
        self
    }

    /// Omits values.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::prefix("p").keys_only();
    /// assert!(req.keys_only);
    /// ```
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }

    /// Returns only the count.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::prefix("p").count_only();
    /// assert!(req.count_only);
    /// ```
    pub fn count_only(mut self) -> Self {
        self.count_only = true;
        self
    }

    /// Only pairs modified at or after `rev`.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::prefix("p").min_mod_revision(3);
    /// # let _ = req;
    /// ```
    pub fn min_mod_revision(mut self, rev: i64) -> Self {
        self.min_mod_revision = rev;
        self
    }

    /// Only pairs modified at or before `rev`.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::prefix("p").max_mod_revision(3);
    /// # let _ = req;
    /// ```
    pub fn max_mod_revision(mut self, rev: i64) -> Self {
        self.max_mod_revision = rev;
        self
    }

    /// Only pairs created at or after `rev`.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::prefix("p").min_create_revision(3);
    /// # let _ = req;
    /// ```
    pub fn min_create_revision(mut self, rev: i64) -> Self {
        self.min_create_revision = rev;
        self
    }

    /// Only pairs created at or before `rev`.
    ///
    /// ```
    /// let req = gosync_dist::backend::RangeRequest::prefix("p").max_create_revision(3);
    /// # let _ = req;
    /// ```
    pub fn max_create_revision(mut self, rev: i64) -> Self {
        self.max_create_revision = rev;
        self
    }

    /// Checks the request before it is sent.
    ///
    /// ```
    /// let bad = gosync_dist::backend::RangeRequest::key("k").limit(-1);
    /// assert!(bad.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.range.validate()?;
        if self.limit < 0 {
            return Err(Error::invalid("limit", "must not be negative"));
        }
        if matches!(self.revision, Some(r) if r <= 0) {
            return Err(Error::invalid("revision", "must be positive"));
        }
        for (name, v) in [
            ("min_mod_revision", self.min_mod_revision),
            ("max_mod_revision", self.max_mod_revision),
            ("min_create_revision", self.min_create_revision),
            ("max_create_revision", self.max_create_revision),
        ] {
            if v < 0 {
                return Err(Error::invalid(name, "must not be negative"));
            }
        }
        Ok(())
    }
}

/// The answer to a [`RangeRequest`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use gosync_dist::backend::{PutRequest, RangeRequest};
/// let client = gosync_dist::Client::embedded();
/// for k in ["/p/a", "/p/b", "/p/c"] {
///     client.put(PutRequest::new(k, "x")).await?;
/// }
/// let resp = client.range(RangeRequest::prefix("/p/").limit(2)).await?;
/// assert_eq!((resp.kvs.len(), resp.count, resp.more), (2, 3, true));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResponse {
    /// Response header.
    pub header: Header,
    /// The pairs (empty with `count_only`).
    pub kvs: Vec<KeyValue>,
    /// Number of keys in the range at the read revision, before limit and revision filters.
    pub count: i64,
    /// Whether the limit cut off further pairs.
    pub more: bool,
}

// ---------------------------------------------------------------------------------------
// Put / delete
// ---------------------------------------------------------------------------------------

/// A write of one key.
///
/// ```
/// use gosync_dist::backend::PutRequest;
/// let req = PutRequest::new("/svc/a", "10.0.0.1").with_lease(0x55).with_prev_kv();
/// assert_eq!(req.lease, Some(0x55));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PutRequest {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Attach the key to this lease (`None` or `Some(0)`: no lease; a put without a lease
    /// detaches the key from any lease it had).
    pub lease: Option<LeaseId>,
    /// Return the previous pair.
    pub prev_kv: bool,
}

impl PutRequest {
    /// Puts `value` at `key`.
    ///
    /// ```
    /// let req = gosync_dist::backend::PutRequest::new("k", "v");
    /// assert_eq!(req.value, b"v");
    /// ```
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        PutRequest {
            key: key.into(),
            value: value.into(),
            lease: None,
            prev_kv: false,
        }
    }

    /// Attaches the key to a lease.
    ///
    /// ```
    /// let req = gosync_dist::backend::PutRequest::new("k", "v").with_lease(7);
    /// assert_eq!(req.lease, Some(7));
    /// ```
    pub fn with_lease(mut self, lease: LeaseId) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Asks for the previous pair in the response.
    ///
    /// ```
    /// let req = gosync_dist::backend::PutRequest::new("k", "v").with_prev_kv();
    /// assert!(req.prev_kv);
    /// ```
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    /// The lease to attach, with `Some(0)` normalised to `None`.
    ///
    /// ```
    /// let req = gosync_dist::backend::PutRequest::new("k", "v").with_lease(0);
    /// assert_eq!(req.lease_id(), None);
    /// ```
    pub fn lease_id(&self) -> Option<LeaseId> {
        self.lease.filter(|&l| l != 0)
    }

    /// Checks the request before it is sent.
    ///
    /// ```
    /// assert!(gosync_dist::backend::PutRequest::new("", "v").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.key.is_empty() {
            return Err(Error::invalid("key", "must not be empty"));
        }
        if matches!(self.lease, Some(l) if l < 0) {
            return Err(Error::invalid("lease", "must not be negative"));
        }
        Ok(())
    }
}

impl fmt::Debug for PutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutRequest")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("value", &String::from_utf8_lossy(&self.value))
            .field("lease", &self.lease)
            .field("prev_kv", &self.prev_kv)
            .finish()
    }
}

/// The answer to a [`PutRequest`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = gosync_dist::Client::embedded();
/// let resp = client.put(gosync_dist::backend::PutRequest::new("k", "v")).await?;
/// assert_eq!((resp.header.revision, resp.prev_kv), (2, None));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutResponse {
    /// Response header; its revision is the put's revision.
    pub header: Header,
    /// The previous pair, if asked for and the key existed.
    pub prev_kv: Option<KeyValue>,
}

/// A delete of a key or range.
///
/// ```
/// use gosync_dist::backend::DeleteRequest;
/// let req = DeleteRequest::prefix("/tmp/").with_prev_kv();
/// assert!(req.prev_kv);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    /// The keys to delete.
    pub range: KeyRange,
    /// Return the deleted pairs.
    pub prev_kv: bool,
}

impl DeleteRequest {
    /// Deletes `range`.
    ///
    /// ```
    /// use gosync_dist::backend::{DeleteRequest, KeyRange};
    /// let req = DeleteRequest::new(KeyRange::range("a", "b"));
    /// # let _ = req;
    /// ```
    pub fn new(range: KeyRange) -> Self {
        DeleteRequest {
            range,
            prev_kv: false,
        }
    }

    /// Deletes one key.
    ///
    /// ```
    /// let req = gosync_dist::backend::DeleteRequest::key("k");
    /// # let _ = req;
    /// ```
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        Self::new(KeyRange::key(key))
    }

    /// Deletes every key under `prefix`.
    ///
    /// ```
    /// let req = gosync_dist::backend::DeleteRequest::prefix("/tmp/");
    /// # let _ = req;
    /// ```
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        Self::new(KeyRange::prefix(prefix))
    }

    /// Asks for the deleted pairs in the response.
    ///
    /// ```
    /// let req = gosync_dist::backend::DeleteRequest::key("k").with_prev_kv();
    /// assert!(req.prev_kv);
    /// ```
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    /// Checks the request before it is sent.
    ///
    /// ```
    /// assert!(gosync_dist::backend::DeleteRequest::prefix("").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.range.validate()
    }
}

/// The answer to a [`DeleteRequest`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use gosync_dist::backend::{DeleteRequest, PutRequest};
/// let client = gosync_dist::Client::embedded();
/// client.put(PutRequest::new("k", "v")).await?;
/// let resp = client.delete(DeleteRequest::key("k").with_prev_kv()).await?;
/// assert_eq!((resp.deleted, resp.prev_kvs.len(), resp.header.revision), (1, 1, 3));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteResponse {
    /// Response header.
    pub header: Header,
    /// Number of keys deleted.
    pub deleted: i64,
    /// The deleted pairs, if asked for.
    pub prev_kvs: Vec<KeyValue>,
}

// ---------------------------------------------------------------------------------------
// Txn
// ---------------------------------------------------------------------------------------

/// How a [`Compare`] relates the key's field to the target.
///
/// ```
/// use gosync_dist::backend::{Compare, CompareOp};
/// let c = Compare::mod_revision("k", CompareOp::Less, 10);
/// assert_eq!(c.op, CompareOp::Less);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `field == target`.
    Equal,
    /// `field != target`.
    NotEqual,
    /// `field < target`.
    Less,
    /// `field > target`.
    Greater,
}

/// The field a [`Compare`] looks at, with the value to compare against.
///
/// ```
/// use gosync_dist::backend::CompareTarget;
/// let t = CompareTarget::CreateRevision(0); // "the key does not exist"
/// # let _ = t;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum CompareTarget {
    /// The value, compared bytewise. On a missing key every value compare is false.
    Value(Vec<u8>),
    /// The version (0 for a missing key).
    Version(i64),
    /// The create revision (0 for a missing key).
    CreateRevision(i64),
    /// The mod revision (0 for a missing key).
    ModRevision(i64),
    /// The attached lease (0 for none or a missing key).
    Lease(LeaseId),
}

impl fmt::Debug for CompareTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompareTarget::Value(v) => write!(f, "Value({:?})", String::from_utf8_lossy(v)),
            CompareTarget::Version(v) => write!(f, "Version({v})"),
            CompareTarget::CreateRevision(v) => write!(f, "CreateRevision({v})"),
            CompareTarget::ModRevision(v) => write!(f, "ModRevision({v})"),
            CompareTarget::Lease(v) => write!(f, "Lease({v})"),
        }
    }
}

/// One condition of a transaction: `key's field <op> target`, with etcd's semantics for a
/// missing key (numbers compare as 0, value compares are false).
///
/// ```
/// use gosync_dist::backend::{Compare, CompareOp};
/// let unchanged = Compare::mod_revision("/config", CompareOp::Equal, 17);
/// let absent = Compare::create_revision("/config", CompareOp::Equal, 0);
/// # let _ = (unchanged, absent);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Compare {
    /// The key whose field is compared.
    pub key: Vec<u8>,
    /// The field and the value to compare it with.
    pub target: CompareTarget,
    /// The relation.
    pub op: CompareOp,
}

impl Compare {
    /// A compare from its parts.
    ///
    /// ```
    /// use gosync_dist::backend::{Compare, CompareOp, CompareTarget};
    /// let c = Compare::new("k", CompareOp::Greater, CompareTarget::Version(2));
    /// # let _ = c;
    /// ```
    pub fn new(key: impl Into<Vec<u8>>, op: CompareOp, target: CompareTarget) -> Self {
        Compare {
            key: key.into(),
            target,
            op,
        }
    }

    /// Compares the value.
    ///
    /// ```
    /// use gosync_dist::backend::{Compare, CompareOp};
    /// let c = Compare::value("k", CompareOp::Equal, "v");
    /// # let _ = c;
    /// ```
    pub fn value(key: impl Into<Vec<u8>>, op: CompareOp, value: impl Into<Vec<u8>>) -> Self {
        Self::new(key, op, CompareTarget::Value(value.into()))
    }

    /// Compares the version.
    ///
    /// ```
    /// use gosync_dist::backend::{Compare, CompareOp};
    /// let c = Compare::version("k", CompareOp::Equal, 0);
    /// # let _ = c;
    /// ```
    pub fn version(key: impl Into<Vec<u8>>, op: CompareOp, version: i64) -> Self {
        Self::new(key, op, CompareTarget::Version(version))
    }

    /// Compares the create revision.
    ///
    /// ```
    /// use gosync_dist::backend::{Compare, CompareOp};
    /// let c = Compare::create_revision("k", CompareOp::Equal, 0);
    /// # let _ = c;
    /// ```
    pub fn create_revision(key: impl Into<Vec<u8>>, op: CompareOp, rev: i64) -> Self {
        Self::new(key, op, CompareTarget::CreateRevision(rev))
    }

    /// Compares the mod revision.
    ///
    /// ```
    /// use gosync_dist::backend::{Compare, CompareOp};
    /// let c = Compare::mod_revision("k", CompareOp::Less, 9);
    /// # let _ = c;
    /// ```
    pub fn mod_revision(key: impl Into<Vec<u8>>, op: CompareOp, rev: i64) -> Self {
        Self::new(key, op, CompareTarget::ModRevision(rev))
    }

    /// Compares the attached lease.
    ///
    /// ```
    /// use gosync_dist::backend::{Compare, CompareOp};
    /// let c = Compare::lease("k", CompareOp::Equal, 0x1f);
    /// # let _ = c;
    /// ```
    pub fn lease(key: impl Into<Vec<u8>>, op: CompareOp, lease: LeaseId) -> Self {
        Self::new(key, op, CompareTarget::Lease(lease))
    }

    /// Evaluates the compare against a key's current pair (`None`: the key does not exist),
    /// with etcd's rules.
    ///
    /// ```
    /// use gosync_dist::backend::{Compare, CompareOp};
    /// assert!(Compare::version("k", CompareOp::Equal, 0).evaluate(None));
    /// assert!(!Compare::value("k", CompareOp::NotEqual, "x").evaluate(None));
    /// ```
    pub fn evaluate(&self, kv: Option<&KeyValue>) -> bool {
        use std::cmp::Ordering;
        let ord: Ordering = match (&self.target, kv) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.as_slice().cmp(v.as_slice()),
            (CompareTarget::Version(t), kv) => kv.map_or(0, |kv| kv.version).cmp(t),
            (CompareTarget::CreateRevision(t), kv) => kv.map_or(0, |kv| kv.create_revision).cmp(t),
            (CompareTarget::ModRevision(t), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(t),
            (CompareTarget::Lease(t), kv) => kv.map_or(0, |kv| kv.lease).cmp(t),
        };
        match self.op {
            CompareOp::Equal => ord == Ordering::Equal,
            CompareOp::NotEqual => ord != Ordering::Equal,
            CompareOp::Less => ord == Ordering::Less,
            CompareOp::Greater => ord == Ordering::Greater,
        }
    }
}

impl fmt::Debug for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compare")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("target", &self.target)
            .field("op", &self.op)
            .finish()
    }
}

/// One operation in a transaction branch.
///
/// ```
/// use gosync_dist::backend::{DeleteRequest, PutRequest, RangeRequest, TxnOp};
/// let ops = vec![
///     TxnOp::Put(PutRequest::new("a", "1")),
///     TxnOp::Delete(DeleteRequest::key("b")),
///     TxnOp::Range(RangeRequest::key("a")),
/// ];
/// # let _ = ops;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// A put.
    Put(PutRequest),
    /// A delete.
    Delete(DeleteRequest),
    /// A read; it sees the writes of earlier ops in the same branch.
    Range(RangeRequest),
}

/// A transaction: compares, then the `success` or the `failure` ops. Puts in one branch
/// must not touch the same key twice, nor a key a delete in the branch covers
/// ([`Error::InvalidArgument`], as etcd's "duplicate key given in txn request").
///
/// ```
/// use gosync_dist::backend::{Compare, CompareOp, PutRequest, Txn, TxnOp};
/// let txn = Txn::new()
///     .when([Compare::value("k", CompareOp::Equal, "old")])
///     .and_then([TxnOp::Put(PutRequest::new("k", "new"))]);
/// assert_eq!(txn.compare.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Txn {
    /// All must hold for the success branch.
    pub compare: Vec<Compare>,
    /// Ops run when every compare holds.
    pub success: Vec<TxnOp>,
    /// Ops run otherwise.
    pub failure: Vec<TxnOp>,
}

impl Txn {
    /// An empty transaction (no compares: the success branch runs).
    ///
    /// ```
    /// let txn = gosync_dist::backend::Txn::new();
    /// assert!(txn.compare.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds compares.
    ///
    /// ```
    /// use gosync_dist::backend::{Compare, CompareOp, Txn};
    /// let txn = Txn::new().when([Compare::version("k", CompareOp::Greater, 0)]);
    /// # let _ = txn;
    /// ```
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compare.extend(compares);
        self
    }

    /// Adds ops to the success branch.
    ///
    /// ```
    /// use gosync_dist::backend::{PutRequest, Txn, TxnOp};
    /// let txn = Txn::new().and_then([TxnOp::Put(PutRequest::new("k", "v"))]);
    /// # let _ = txn;
    /// ```
    pub fn and_then(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Self {
        self.success.extend(ops);
        self
    }

    /// Adds ops to the failure branch.
    ///
    /// ```
    /// use gosync_dist::backend::{RangeRequest, Txn, TxnOp};
    /// let txn = Txn::new().or_else([TxnOp::Range(RangeRequest::key("k"))]);
    /// # let _ = txn;
    /// ```
    pub fn or_else(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Self {
        self.failure.extend(ops);
        self
    }

    /// Checks every compare and op, and that no branch writes a key twice.
    ///
    /// ```
    /// use gosync_dist::backend::{PutRequest, Txn, TxnOp};
    /// let twice = Txn::new().and_then([
    ///     TxnOp::Put(PutRequest::new("k", "1")),
    ///     TxnOp::Put(PutRequest::new("k", "2")),
    /// ]);
    /// assert!(twice.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        for c in &self.compare {
            if c.key.is_empty() {
                return Err(Error::invalid("compare.key", "must not be empty"));
            }
        }
        for branch in [&self.success, &self.failure] {
            let mut puts: Vec<&[u8]> = Vec::new();
            for op in branch.iter() {
                match op {
                    TxnOp::Put(p) => {
                        p.validate()?;
                        if puts.contains(&p.key.as_slice()) {
                            return Err(Error::invalid(
                                "txn",
                                "duplicate key given in txn request",
                            ));
                        }
                        puts.push(&p.key);
                    }
                    TxnOp::Delete(d) => d.validate()?,
                    TxnOp::Range(r) => r.validate()?,
                }
            }
            for op in branch.iter() {
                if let TxnOp::Delete(d) = op {
                    if puts.iter().any(|k| d.range.contains(k)) {
                        return Err(Error::invalid("txn", "duplicate key given in txn request"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The answer to one [`TxnOp`].
///
/// ```
/// use gosync_dist::backend::{PutResponse, TxnOpResponse};
/// let r = TxnOpResponse::Put(PutResponse::default());
/// assert!(matches!(r, TxnOpResponse::Put(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOpResponse {
    /// Answer to a put.
    Put(PutResponse),
    /// Answer to a delete.
    Delete(DeleteResponse),
    /// Answer to a range.
    Range(RangeResponse),
}

/// The answer to a [`Txn`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use gosync_dist::backend::*;
/// let client = gosync_dist::Client::embedded();
/// let resp = client
///     .txn(Txn::new()
///         .when([Compare::create_revision("k", CompareOp::Equal, 0)])
///         .and_then([TxnOp::Put(PutRequest::new("k", "v"))]))
///     .await?;
/// assert!(resp.succeeded);
/// assert_eq!(resp.header.revision, 2);
/// assert!(matches!(resp.responses[0], TxnOpResponse::Put(_)));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnResponse {
    /// Response header; the transaction's revision if it wrote anything.
    pub header: Header,
    /// Whether every compare held (the success branch ran).
    pub succeeded: bool,
    /// One answer per op of the branch that ran, in order.
    pub responses: Vec<TxnOpResponse>,
}

// ---------------------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------------------

/// The answer to a lease grant.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let lease = gosync_dist::Client::embedded().lease_grant(15).await?;
/// assert_eq!(lease.ttl, 15);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseGrantResponse {
    /// Response header.
    pub header: Header,
    /// The new lease.
    pub id: LeaseId,
    /// Its TTL in seconds (the server may raise a too-small request).
    pub ttl: i64,
}

/// The answer to a lease revoke.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = gosync_dist::Client::embedded();
/// let id = client.lease_grant(15).await?.id;
/// let resp = client.lease_revoke(id).await?;
/// assert_eq!(resp.header.revision, 1); // no keys were attached: nothing changed
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseRevokeResponse {
    /// Response header.
    pub header: Header,
}

/// The answer to one keep-alive.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = gosync_dist::Client::embedded();
/// let id = client.lease_grant(15).await?.id;
/// assert_eq!(client.lease_keep_alive_once(id).await?.ttl, 15);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseKeepAliveResponse {
    /// Response header.
    pub header: Header,
    /// The lease.
    pub id: LeaseId,
    /// Its renewed TTL in seconds (always positive; an expired lease is an error).
    pub ttl: i64,
}

/// The answer to a time-to-live query.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = gosync_dist::Client::embedded();
/// let id = client.lease_grant(15).await?.id;
/// let info = client.lease_time_to_live(id, false).await?;
/// assert!(info.ttl <= 15 && info.granted_ttl == 15);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseTimeToLiveResponse {
    /// Response header.
    pub header: Header,
    /// The lease.
    pub id: LeaseId,
    /// Remaining seconds.
    pub ttl: i64,
    /// TTL granted at creation (or last keep-alive), in seconds.
    pub granted_ttl: i64,
    /// Attached keys, if asked for.
    pub keys: Vec<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------

/// What to watch and from when.
///
/// ```
/// use gosync_dist::backend::WatchRequest;
/// // Everything under /jobs/ from revision 10 on, deletes only.
/// let req = WatchRequest::prefix("/jobs/").start_revision(10).no_put();
/// assert!(req.filter_put);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRequest {
    /// The keys to watch.
    pub range: KeyRange,
    /// First revision to report; `None` means "after now" (current revision + 1).
    pub start_revision: Option<i64>,
    /// Drop put events.
    pub filter_put: bool,
    /// Drop delete events.
    pub filter_delete: bool,
    /// Include the previous pair in each event.
    pub prev_kv: bool,
    /// Ask the backend to send periodic progress responses (no events, current revision)
    /// while the watch is idle.
    pub progress_notify: bool,
}

impl WatchRequest {
    /// Watches `range` from the next revision on.
    ///
    /// ```
    /// use gosync_dist::backend::{KeyRange, WatchRequest};
    /// let req = WatchRequest::new(KeyRange::range("a", "b"));
    /// # let _ = req;
    /// ```
    pub fn new(range: KeyRange) -> Self {
        WatchRequest {
            range,
            start_revision: None,
            filter_put: false,
            filter_delete: false,
            prev_kv: false,
            progress_notify: false,
        }
    }

    /// Watches one key.
    ///
    /// ```
    /// let req = gosync_dist::backend::WatchRequest::key("/leader");
    /// # let _ = req;
    /// ```
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        Self::new(KeyRange::key(key))
    }

    /// Watches every key under `prefix`.
    ///
    /// ```
    /// let req = gosync_dist::backend::WatchRequest::prefix("/jobs/");
    /// # let _ = req;
    /// ```
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        Self::new(KeyRange::prefix(prefix))
    }

    /// Starts at `revision` (replaying history from there).
    ///
    /// ```
    /// let req = gosync_dist::backend::WatchRequest::key("k").start_revision(3);
    /// assert_eq!(req.start_revision, Some(3));
    /// ```
    pub fn start_revision(mut self, revision: i64) -> Self {
        self.start_revision = Some(revision);
        self
    }

    /// Drops put events.
    ///
    /// ```
    /// assert!(gosync_dist::backend::WatchRequest::key("k").no_put().filter_put);
    /// ```
    pub fn no_put(mut self) -> Self {
        self.filter_put = true;
        self
    }

    /// Drops delete events.
    ///
    /// ```
    /// assert!(gosync_dist::backend::WatchRequest::key("k").no_delete().filter_delete);
    /// ```
    pub fn no_delete(mut self) -> Self {
        self.filter_delete = true;
        self
    }

    /// Includes previous pairs.
    ///
    /// ```
    /// assert!(gosync_dist::backend::WatchRequest::key("k").with_prev_kv().prev_kv);
    /// ```
    pub fn with_prev_kv(mut self) -> Self {
        self.prev_kv = true;
        self
    }

    /// Asks for periodic progress responses.
    ///
    /// ```
    /// assert!(gosync_dist::backend::WatchRequest::key("k").with_progress_notify().progress_notify);
    /// ```
    pub fn with_progress_notify(mut self) -> Self {
        self.progress_notify = true;
        self
    }

    /// Checks the request before it is sent.
    ///
    /// ```
    /// assert!(gosync_dist::backend::WatchRequest::key("k").start_revision(0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.range.validate()?;
        if matches!(self.start_revision, Some(r) if r <= 0) {
            return Err(Error::invalid(
                "start_revision",
                "must be positive (leave it unset to start after the current revision)",
            ));
        }
        Ok(())
    }
}

/// Whether an event is a put or a delete.
///
/// ```
/// use gosync_dist::backend::EventKind;
/// assert_ne!(EventKind::Put, EventKind::Delete);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted (also by lease expiry or revoke).
    Delete,
}

/// One change seen by a watch.
///
/// ```
/// use gosync_dist::backend::{Event, EventKind, KeyValue};
/// let e = Event { kind: EventKind::Delete, kv: KeyValue::default(), prev_kv: None };
/// assert_eq!(e.kind, EventKind::Delete);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The new pair; for a delete, the key with `mod_revision` = the delete's revision and
    /// every other field zero.
    pub kv: KeyValue,
    /// The pair before the change, if the watch asked for it and it existed.
    pub prev_kv: Option<KeyValue>,
}

/// One message on a watch stream: events in revision order, or (with no events) a progress
/// notification saying the watch has seen everything up to `header.revision`.
///
/// ```
/// use gosync_dist::backend::{Header, WatchResponse};
/// let progress = WatchResponse { header: Header { revision: 9 }, events: vec![] };
/// assert!(progress.is_progress_notify());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchResponse {
    /// Response header: the store's revision when sent (at least every event's revision).
    pub header: Header,
    /// The events, in revision order.
    pub events: Vec<Event>,
}

impl WatchResponse {
    /// Whether this is a progress notification (no events).
    ///
    /// ```
    /// assert!(gosync_dist::backend::WatchResponse::default().is_progress_notify());
    /// ```
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
    }
}

/// Control side of a watch, for backends that support out-of-band requests on it.
///
/// ```
/// use gosync_dist::backend::WatchControl;
/// struct Nothing;
/// #[async_trait::async_trait]
/// impl WatchControl for Nothing {
///     async fn request_progress(&mut self) -> gosync_dist::Result<()> { Ok(()) }
/// }
/// ```
#[async_trait]
pub trait WatchControl: Send {
    /// Asks for a progress notification: a response with no events whose header revision
    /// says how far the watch has caught up.
    async fn request_progress(&mut self) -> Result<()>;
}

/// The boxed stream type a [`WatchStream`] wraps.
pub type BoxWatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse>> + Send>>;

/// The receiving end of a watch. Yields responses in revision order; if the watch breaks
/// (connection lost, severed, backend dropped, history compacted) it yields one error
/// ([`Error::WatchClosed`] or [`Error::Compacted`]) and then ends: it never ends silently.
/// Dropping the stream cancels the watch.
///
/// ```
/// # use gosync_dist::backend::*;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = gosync_dist::Client::embedded();
/// let mut watch = client.watch(WatchRequest::key("k")).await?;
/// client.put(PutRequest::new("k", "v")).await?;
/// let resp = watch.next().await.expect("stream open")?;
/// assert_eq!(resp.events[0].kv.value, b"v");
/// # Ok(())
/// # }
/// ```
pub struct WatchStream {
    inner: BoxWatchStream,
    control: Option<Box<dyn WatchControl>>,
}

impl WatchStream {
    /// Wraps a stream of responses (for backend implementations).
    ///
    /// ```
    /// use gosync_dist::backend::{WatchResponse, WatchStream};
    /// let s = WatchStream::new(Box::pin(futures_util::stream::empty::<gosync_dist::Result<WatchResponse>>()));
    /// # let _ = s;
    /// ```
    pub fn new(inner: BoxWatchStream) -> Self {
        WatchStream {
            inner,
            control: None,
        }
    }

    /// Adds a control handle (for backend implementations).
    ///
    /// ```
    /// # use gosync_dist::backend::{WatchControl, WatchResponse, WatchStream};
    /// # struct Nothing;
    /// # #[async_trait::async_trait]
    /// # impl WatchControl for Nothing {
    /// #     async fn request_progress(&mut self) -> gosync_dist::Result<()> { Ok(()) }
    /// # }
    /// let s = WatchStream::new(Box::pin(futures_util::stream::empty::<gosync_dist::Result<WatchResponse>>()))
    ///     .with_control(Box::new(Nothing));
    /// # let _ = s;
    /// ```
    pub fn with_control(mut self, control: Box<dyn WatchControl>) -> Self {
        self.control = Some(control);
        self
    }

    /// The next response; `None` once the stream has ended.
    ///
    /// ```
    /// # use gosync_dist::backend::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::embedded();
    /// client.put(PutRequest::new("k", "1")).await?;
    /// let mut watch = client.watch(WatchRequest::key("k").start_revision(1)).await?;
    /// let replay = watch.next().await.unwrap()?;
    /// assert_eq!(replay.events[0].kv.mod_revision, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<Result<WatchResponse>> {
        futures_util::StreamExt::next(&mut self.inner).await
    }

    /// Asks for a progress notification on this stream (a response with no events).
    ///
    /// ```
    /// # use gosync_dist::backend::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::embedded();
    /// let mut watch = client.watch(WatchRequest::key("k")).await?;
    /// watch.request_progress().await?;
    /// let resp = watch.next().await.unwrap()?;
    /// assert!(resp.is_progress_notify());
    /// assert_eq!(resp.header.revision, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn request_progress(&mut self) -> Result<()> {
        match &mut self.control {
            Some(c) => c.request_progress().await,
            None => Err(Error::Backend(
                "this backend does not support progress requests".into(),
            )),
        }
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}
