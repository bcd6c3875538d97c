//! The one error type of this crate.

use std::time::Duration;

use crate::backend::LeaseId;

/// Result alias used throughout `gosync_dist`.
///
/// ```
/// fn check(ttl: i64) -> gosync_dist::Result<i64> {
///     if ttl <= 0 {
///         return Err(gosync_dist::Error::InvalidArgument {
///             name: "ttl",
///             reason: "must be at least 1 second".into(),
///         });
///     }
///     Ok(ttl)
/// }
/// assert!(check(0).is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a backend or using a primitive built on one.
///
/// Every message says what happened and what to do about it. The enum is `Clone` so one
/// failure (a lost session, say) can be reported to every primitive that depends on it.
///
/// ```
/// use gosync_dist::{Client, Error};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = Client::embedded();
/// let err = client.lease_grant(0).await.unwrap_err();
/// assert!(matches!(err, Error::InvalidArgument { name: "ttl", .. }));
/// println!("{err}");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No endpoint of the backend answered.
    ///
    /// ```
    /// let err = gosync_dist::Error::Unreachable {
    ///     endpoints: vec!["http://127.0.0.1:1".into()],
    ///     reason: "connection refused".into(),
    /// };
    /// assert!(err.to_string().contains("127.0.0.1:1"));
    /// ```
    #[error(
        "cannot reach the backend at {}: {reason}; check that the server runs and the endpoints are right",
        endpoints.join(", ")
    )]
    Unreachable {
        /// The endpoints that were tried.
        endpoints: Vec<String>,
        /// Why the last attempt failed.
        reason: String,
    },

    /// An operation did not finish in the time allowed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = gosync_dist::Error::Timeout { operation: "lease revoke", after: Duration::from_secs(1) };
    /// assert!(err.to_string().contains("lease revoke"));
    /// ```
    #[error(
        "{operation} did not finish within {after:?}; the backend may be overloaded or unreachable — retry, or allow more time"
    )]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// How long it was allowed to take.
        after: Duration,
    },

    /// The session's lease is gone (expired, revoked, or its keep-alives stopped being
    /// answered), so every lock or leadership held through it is lost.
    ///
    /// ```
    /// let err = gosync_dist::Error::SessionExpired { lease: 0x1234 };
    /// assert!(err.to_string().contains("1234"));
    /// ```
    #[error(
        "session with lease {lease:x} expired; locks and leadership held through it are lost — create a new session and start over"
    )]
    SessionExpired {
        /// The session's lease.
        lease: LeaseId,
    },

    /// The backend does not know this lease: it never existed, expired, or was revoked.
    ///
    /// ```
    /// let err = gosync_dist::Error::LeaseNotFound { lease: 7 };
    /// assert!(err.to_string().contains("lease 7"));
    /// ```
    #[error("lease {lease:x} not found (expired or revoked); grant a new lease")]
    LeaseNotFound {
        /// The lease that was asked for.
        lease: LeaseId,
    },

    /// An argument was rejected before anything was sent.
    ///
    /// ```
    /// let err = gosync_dist::Error::InvalidArgument { name: "prefix", reason: "must not be empty".into() };
    /// assert_eq!(err.to_string(), "invalid argument `prefix`: must not be empty");
    /// ```
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The requested revision was compacted away; its history is gone.
    ///
    /// ```
    /// let err = gosync_dist::Error::Compacted { revision: 3, compact_revision: 10 };
    /// assert!(err.to_string().contains("10"));
    /// ```
    #[error(
        "revision {revision} is compacted (history starts after {compact_revision}); read at a newer revision or re-read the current state"
    )]
    Compacted {
        /// The revision that was asked for.
        revision: i64,
        /// The backend's compaction revision.
        compact_revision: i64,
    },

    /// A watch stream ended: the backend closed it, the connection dropped, or it was
    /// severed on purpose. Events after the last delivered revision were not seen.
    ///
    /// ```
    /// let err = gosync_dist::Error::WatchClosed { reason: "severed".into() };
    /// assert!(err.to_string().contains("severed"));
    /// ```
    #[error("watch closed: {reason}; open a new watch starting after the last revision you saw")]
    WatchClosed {
        /// Why the stream ended.
        reason: String,
    },

    /// `try_lock` found the mutex held by another session.
    ///
    /// ```
    /// let err = gosync_dist::Error::Locked { key: "/locks/jobs".into() };
    /// assert!(err.to_string().contains("/locks/jobs"));
    /// ```
    #[error("mutex {key} is locked by another session; retry later or wait with lock()")]
    Locked {
        /// The mutex's prefix.
        key: String,
    },

    /// The election has no leader at the moment.
    ///
    /// ```
    /// let err = gosync_dist::Error::NoLeader { prefix: "/elections/a".into() };
    /// assert!(err.to_string().contains("/elections/a"));
    /// ```
    #[error("election {prefix} has no leader; campaign, or observe to learn when one is elected")]
    NoLeader {
        /// The election's prefix.
        prefix: String,
    },

    /// The caller is not (or no longer) the election's leader.
    ///
    /// ```
    /// let err = gosync_dist::Error::NotLeader { prefix: "/elections/a".into() };
    /// assert!(err.to_string().contains("not the leader"));
    /// ```
    #[error("not the leader of election {prefix}; campaign first")]
    NotLeader {
        /// The election's prefix.
        prefix: String,
    },

    /// The operation was cancelled before it completed.
    ///
    /// ```
    /// assert!(gosync_dist::Error::Cancelled.to_string().contains("cancelled"));
    /// ```
    #[error("operation cancelled before it completed; nothing is held")]
    Cancelled,

    /// Any other error reported by the backend.
    ///
    /// ```
    /// let err = gosync_dist::Error::Backend("etcdserver: too many requests".into());
    /// assert!(err.to_string().contains("too many requests"));
    /// ```
    #[error("backend error: {0}; check the server's health and logs, then retry")]
    Backend(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    ///
    /// ```
    /// let err = gosync_dist::Error::invalid("key", "must not be empty");
    /// assert!(matches!(err, gosync_dist::Error::InvalidArgument { name: "key", .. }));
    /// ```
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            name,
            reason: reason.into(),
        }
    }
}
