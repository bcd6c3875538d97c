//! The handle every primitive is built on.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{
    self, Backend, DeleteRequest, DeleteResponse, EmbeddedBackend, Faults, KeyValue,
    LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse, LeaseRevokeResponse,
    LeaseTimeToLiveResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, Txn,
    TxnResponse, WatchRequest, WatchStream,
};
use crate::error::{Error, Result};

/// How to connect to an etcd cluster.
///
/// ```
/// use std::time::Duration;
/// use gosync_dist::ConnectOptions;
/// let opts = ConnectOptions::new()
///     .with_connect_timeout(Duration::from_secs(2))
///     .with_request_timeout(Duration::from_secs(5));
/// assert_eq!(opts.connect_timeout, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long connecting may take before [`Error::Unreachable`] (default 5 s).
    pub connect_timeout: Duration,
    /// Deadline for each request, `None` for none (the default).
    pub request_timeout: Option<Duration>,
    /// Interval of the transport's keep-alive pings, `None` for none (the default).
    pub keep_alive_interval: Option<Duration>,
    /// User name and password for etcd's authentication, if enabled.
    pub credentials: Option<(String, String)>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: None,
            keep_alive_interval: None,
            credentials: None,
        }
    }
}

impl ConnectOptions {
    /// The defaults: 5 s connect timeout, no request timeout, no authentication.
    ///
    /// ```
    /// let opts = gosync_dist::ConnectOptions::new();
    /// assert_eq!(opts.request_timeout, None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the connect timeout.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let opts = gosync_dist::ConnectOptions::new().with_connect_timeout(Duration::from_millis(500));
    /// assert_eq!(opts.connect_timeout, Duration::from_millis(500));
    /// ```
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets a per-request deadline.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let opts = gosync_dist::ConnectOptions::new().with_request_timeout(Duration::from_secs(3));
    /// assert_eq!(opts.request_timeout, Some(Duration::from_secs(3)));
    /// ```
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Sets the transport keep-alive interval.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let opts = gosync_dist::ConnectOptions::new().with_keep_alive_interval(Duration::from_secs(10));
    /// assert_eq!(opts.keep_alive_interval, Some(Duration::from_secs(10)));
    /// ```
    pub fn with_keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = Some(interval);
        self
    }

    /// Authenticates with a user name and password.
    ///
    /// ```
    /// let opts = gosync_dist::ConnectOptions::new().with_user("root", "secret");
    /// assert!(opts.credentials.is_some());
    /// ```
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((name.into(), password.into()));
        self
    }
}

/// A connection to a key-value backend: a real etcd cluster or the in-process embedded
/// store. Cheap to clone; clones share the connection.
///
/// Every method checks its arguments first ([`Error::InvalidArgument`] names the bad one)
/// and then makes one round trip to the backend. See [`Backend`] for the semantics.
///
/// ```
/// use gosync_dist::backend::PutRequest;
/// use gosync_dist::Client;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = Client::embedded(); // or Client::etcd(&["http://127.0.0.1:2379"]).await?
/// client.put(PutRequest::new("/greeting", "hello")).await?;
/// let kv = client.get("/greeting").await?.expect("just written");
/// assert_eq!(kv.value_str(), Some("hello"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn Backend>,
    faults: Option<Faults>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("backend", &self.backend.describe())
            .finish()
    }
}

impl Client {
    /// A client over a fresh in-process store with etcd's semantics. Each call creates a new,
    /// empty store; clone the client to share one.
    ///
    /// ```
    /// let client = gosync_dist::Client::embedded();
    /// assert!(client.embedded_faults().is_some());
    /// ```
    pub fn embedded() -> Self {
        let backend = EmbeddedBackend::new();
        let faults = backend.faults();
        Client {
            backend: Arc::new(backend),
            faults: Some(faults),
        }
    }

    /// Connects to an etcd cluster with default [`ConnectOptions`].
    ///
    /// Fails with [`Error::Unreachable`], naming the endpoints, when no endpoint answers
    /// within the connect timeout.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::etcd(&["http://127.0.0.1:2379"]).await?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn etcd(endpoints: &[&str]) -> Result<Self> {
        Self::etcd_with(endpoints, ConnectOptions::default()).await
    }

    /// Connects to an etcd cluster with the given options.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let opts = gosync_dist::ConnectOptions::new().with_connect_timeout(Duration::from_secs(1));
    /// let client = gosync_dist::Client::etcd_with(&["http://127.0.0.1:2379"], opts).await?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn etcd_with(endpoints: &[&str], opts: ConnectOptions) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(Error::invalid("endpoints", "give at least one endpoint"));
        }
        if let Some(bad) = endpoints.iter().find(|e| e.trim().is_empty()) {
            return Err(Error::invalid(
                "endpoints",
                format!("empty endpoint {bad:?} in the list"),
            ));
        }
        let backend = backend::etcd::connect(endpoints, opts).await?;
        Ok(Self::from_backend(backend))
    }

    /// A client over any [`Backend`] implementation.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gosync_dist::backend::EmbeddedBackend;
    /// let client = gosync_dist::Client::from_backend(Arc::new(EmbeddedBackend::new()));
    /// # let _ = client;
    /// ```
    pub fn from_backend(backend: Arc<dyn Backend>) -> Self {
        Client {
            backend,
            faults: None,
        }
    }

    /// The backend this client talks to.
    ///
    /// ```
    /// let client = gosync_dist::Client::embedded();
    /// assert_eq!(client.backend().describe(), "embedded");
    /// ```
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Fault injection for a client made by [`Client::embedded`]; `None` for other
    /// backends.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::embedded();
    /// let lease = client.lease_grant(60).await?.id;
    /// client.embedded_faults().unwrap().expire_lease(lease)?;
    /// assert!(client.lease_keep_alive_once(lease).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn embedded_faults(&self) -> Option<Faults> {
        self.faults.clone()
    }

    /// Reads one key; `None` if it does not exist.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::embedded();
    /// assert!(client.get("nothing").await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<KeyValue>> {
        let resp = self.range(RangeRequest::key(key)).await?;
        Ok(resp.kvs.into_iter().next())
    }

    /// See [`Backend::range`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::backend::RangeRequest;
    /// let client = gosync_dist::Client::embedded();
    /// assert_eq!(client.range(RangeRequest::prefix("/a/")).await?.count, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        req.validate()?;
        self.backend.range(req).await
    }

    /// See [`Backend::put`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::backend::PutRequest;
    /// let client = gosync_dist::Client::embedded();
    /// assert_eq!(client.put(PutRequest::new("k", "v")).await?.header.revision, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn put(&self, req: PutRequest) -> Result<PutResponse> {
        req.validate()?;
        self.backend.put(req).await
    }

    /// See [`Backend::delete`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::backend::DeleteRequest;
    /// let client = gosync_dist::Client::embedded();
    /// assert_eq!(client.delete(DeleteRequest::key("k")).await?.deleted, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        req.validate()?;
        self.backend.delete(req).await
    }

    /// See [`Backend::txn`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::backend::{Compare, CompareOp, Txn};
    /// let client = gosync_dist::Client::embedded();
    /// let resp = client.txn(Txn::new().when([Compare::value("k", CompareOp::Equal, "")])).await?;
    /// assert!(!resp.succeeded); // value compares on a missing key are false
    /// # Ok(())
    /// # }
    /// ```
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        txn.validate()?;
        self.backend.txn(txn).await
    }

    /// See [`Backend::lease_grant`]. `ttl_secs` must be at least 1.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::embedded();
    /// assert!(client.lease_grant(0).await.is_err());
    /// assert_eq!(client.lease_grant(5).await?.ttl, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lease_grant(&self, ttl_secs: i64) -> Result<LeaseGrantResponse> {
        validate_ttl(ttl_secs)?;
        self.backend.lease_grant(ttl_secs).await
    }

    /// See [`Backend::lease_revoke`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::embedded();
    /// let id = client.lease_grant(5).await?.id;
    /// client.lease_revoke(id).await?;
    /// assert!(client.lease_revoke(id).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lease_revoke(&self, id: LeaseId) -> Result<LeaseRevokeResponse> {
        validate_lease(id)?;
        self.backend.lease_revoke(id).await
    }

    /// See [`Backend::lease_keep_alive_once`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::embedded();
    /// let id = client.lease_grant(5).await?.id;
    /// assert_eq!(client.lease_keep_alive_once(id).await?.ttl, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lease_keep_alive_once(&self, id: LeaseId) -> Result<LeaseKeepAliveResponse> {
        validate_lease(id)?;
        self.backend.lease_keep_alive_once(id).await
    }

    /// See [`Backend::lease_time_to_live`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let client = gosync_dist::Client::embedded();
    /// let id = client.lease_grant(5).await?.id;
    /// assert_eq!(client.lease_time_to_live(id, false).await?.granted_ttl, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lease_time_to_live(
        &self,
        id: LeaseId,
        keys: bool,
    ) -> Result<LeaseTimeToLiveResponse> {
        validate_lease(id)?;
        self.backend.lease_time_to_live(id, keys).await
    }

    /// See [`Backend::watch`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::backend::{DeleteRequest, EventKind, PutRequest, WatchRequest};
    /// let client = gosync_dist::Client::embedded();
    /// client.put(PutRequest::new("k", "v")).await?;
    /// let mut watch = client.watch(WatchRequest::key("k").no_put()).await?;
    /// client.delete(DeleteRequest::key("k")).await?;
    /// let resp = watch.next().await.unwrap()?;
    /// assert_eq!(resp.events[0].kind, EventKind::Delete);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        req.validate()?;
        self.backend.watch(req).await
    }
}

fn validate_ttl(ttl_secs: i64) -> Result<()> {
    if ttl_secs <= 0 {
        return Err(Error::invalid(
            "ttl",
            format!("must be at least 1 second, got {ttl_secs}"),
        ));
    }
    Ok(())
}

fn validate_lease(id: LeaseId) -> Result<()> {
    if id <= 0 {
        return Err(Error::invalid(
            "lease",
            format!("must be a granted lease id (positive), got {id}"),
        ));
    }
    Ok(())
}
