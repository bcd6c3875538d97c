//! A lease kept alive for as long as a process is live: the liveness every other primitive
//! is built on.
//!
//! A [`Session`] grants a lease (or resumes an existing one) and refreshes it from its own
//! background task every TTL/3. Keys written by a [`Mutex`](crate::Mutex), an
//! [`RwMutex`](crate::RwMutex) or an [`Election`](crate::Election) are attached to the
//! session's lease, so when the process dies (or stops refreshing) its locks and leadership
//! vanish after at most one TTL.
//!
//! **Deadline.** The session counts as lost as soon as no keep-alive was answered within the
//! TTL — measured from when the last answered keep-alive was *sent*, so the session gives
//! up no later than the server does. A keep-alive answered with "lease not found" ends the
//! session at once. From then on every primitive built on the session returns
//! [`Error::SessionExpired`] instead of waiting, and [`Session::done`] resolves.
//!
//! **Ending a session.** [`Session::close`] stops the refresh and revokes the lease (deleting
//! every key attached to it) within its own timeout; [`Session::orphan`] only stops the
//! refresh and leaves the lease to expire, for handing it to another process. Dropping the
//! last handle orphans the session.
//!
//! Compared with etcd's Go client, the keep-alive loop and its deadline are the session's
//! own (one keep-alive round per refresh, never a stream that can stall silently), and a
//! zero TTL is an error rather than silently replaced by the default.
//!
//! ```
//! use gosync_dist::{Client, Session};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gosync_dist::Result<()> {
//! let client = Client::embedded();
//! let session = Session::new(&client).await?;
//! assert!(!session.is_done());
//! session.close().await?;
//! assert!(session.is_done());
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::backend::LeaseId;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::wait::{Item, PrefixWatch};

/// Default session TTL: 60 seconds, as in etcd's Go client.
const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// Default time [`Session::close`] allows for revoking the lease (and the background
/// deletes of cancelled waits are allowed).
const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest pause between retries of a keep-alive that failed (but whose deadline has not
/// passed yet).
const MAX_RETRY_DELAY: Duration = Duration::from_millis(500);

/// A prefix watch nobody waits on is closed after this long without use...
const IDLE_WATCH: Duration = Duration::from_secs(30);

/// ...or sooner, when more than this many prefixes have watches.
const MAX_WATCHES: usize = 32;

/// Why a session ended, as reported by [`Session::done`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use gosync_dist::{Client, Session, SessionEnd};
/// let session = Session::new(&Client::embedded()).await?;
/// session.orphan();
/// assert_eq!(session.done().await, SessionEnd::Orphaned);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The lease expired, was revoked by someone else, or its keep-alives went unanswered
    /// for a whole TTL.
    Expired,
    /// [`Session::orphan`] was called, or the last handle was dropped: the refresh stopped,
    /// the lease lives on until its TTL runs out.
    Orphaned,
    /// [`Session::close`] was called: the refresh stopped and the lease was revoked (or the
    /// revoke was attempted).
    Closed,
}

/// Options for a [`Session`]: TTL, an existing lease to resume, keep-alive interval, close
/// timeout. Made by [`Session::builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// use std::time::Duration;
/// use gosync_dist::{Client, Session};
/// let client = Client::embedded();
/// let session = Session::builder(&client)
///     .ttl(Duration::from_secs(10))
///     .keep_alive_interval(Duration::from_secs(2))
///     .build()
///     .await?;
/// assert_eq!(session.ttl(), Duration::from_secs(10));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build().await"]
pub struct SessionBuilder {
    client: Client,
    ttl: Duration,
    lease: Option<LeaseId>,
    keep_alive_interval: Option<Duration>,
    close_timeout: Duration,
}

impl SessionBuilder {
    /// The lease's time to live (default 60 s), rounded up to whole seconds. Zero is
    /// rejected with [`Error::InvalidArgument`] naming `ttl`. Ignored when resuming a lease
    /// (the lease keeps its own TTL).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use gosync_dist::{Client, Error, Session};
    /// let client = Client::embedded();
    /// let err = Session::builder(&client).ttl(Duration::ZERO).build().await.unwrap_err();
    /// assert!(matches!(err, Error::InvalidArgument { name: "ttl", .. }));
    /// # }
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Resumes an existing lease instead of granting a new one — for a process that
    /// restarts and wants its locks or leadership back. The lease must still be alive, else
    /// building fails with [`Error::LeaseNotFound`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Session};
    /// let client = Client::embedded();
    /// let first = Session::new(&client).await?;
    /// first.orphan(); // stop refreshing, keep the lease
    /// let again = Session::builder(&client).lease(first.lease()).build().await?;
    /// assert_eq!(again.lease(), first.lease());
    /// # Ok(())
    /// # }
    /// ```
    pub fn lease(mut self, lease: LeaseId) -> Self {
        self.lease = Some(lease);
        self
    }

    /// How often the lease is refreshed (default: TTL / 3). Must be positive and shorter
    /// than the TTL, else building fails naming `keep_alive_interval`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use std::time::Duration;
    /// use gosync_dist::{Client, Session};
    /// let session = Session::builder(&Client::embedded())
    ///     .keep_alive_interval(Duration::from_secs(5))
    ///     .build()
    ///     .await?;
    /// # let _ = session;
    /// # Ok(())
    /// # }
    /// ```
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = Some(interval);
        self
    }

    /// Time allowed for [`Session::close`]'s revoke, and for the background deletes of
    /// cancelled lock and campaign attempts (default 5 s). Must be positive.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use std::time::Duration;
    /// use gosync_dist::{Client, Session};
    /// let session = Session::builder(&Client::embedded())
    ///     .close_timeout(Duration::from_secs(1))
    ///     .build()
    ///     .await?;
    /// session.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Grants (or resumes) the lease and starts the keep-alive task. Needs a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Session};
    /// let session = Session::builder(&Client::embedded()).build().await?;
    /// assert_ne!(session.lease(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn build(self) -> Result<Session> {
        if self.close_timeout.is_zero() {
            return Err(Error::invalid("close_timeout", "must be positive"));
        }
        let requested_ttl = ttl_secs(self.ttl)?;
        if let Some(i) = self.keep_alive_interval {
            if i.is_zero() {
                return Err(Error::invalid("keep_alive_interval", "must be positive"));
            }
        }
        let too_long = |interval: Duration, ttl: Duration| {
            Error::invalid(
                "keep_alive_interval",
                format!("must be shorter than the TTL ({ttl:?}), got {interval:?}"),
            )
        };
        if let (None, Some(i)) = (self.lease, self.keep_alive_interval) {
            // Checked before granting, so a rejected builder leaves no lease behind.
            let ttl = Duration::from_secs(requested_ttl as u64);
            if i >= ttl {
                return Err(too_long(i, ttl));
            }
        }
        let sent = Instant::now();
        let (lease, ttl) = match self.lease {
            None => {
                let resp = self.client.lease_grant(requested_ttl).await?;
                (resp.id, resp.ttl)
            }
            Some(id) => {
                let resp = self.client.lease_keep_alive_once(id).await?;
                (id, resp.ttl)
            }
        };
        let ttl = Duration::from_secs(ttl.max(1) as u64);
        let interval = self.keep_alive_interval.unwrap_or(ttl / 3);
        if interval >= ttl {
            return Err(too_long(interval, ttl));
        }
        let (state_tx, state_rx) = watch::channel(None);
        let state_tx = Arc::new(state_tx);
        let poke = Arc::new(Notify::new());
        let task = tokio::spawn(keep_alive_loop(
            self.client.clone(),
            lease,
            interval,
            sent + ttl,
            state_tx.clone(),
            poke.clone(),
        ));
        Ok(Session {
            inner: Arc::new(Inner {
                client: self.client,
                lease,
                ttl,
                close_timeout: self.close_timeout,
                state_tx,
                state_rx,
                poke,
                keep_alive: task.abort_handle(),
                watches: tokio::sync::Mutex::new(HashMap::new()),
            }),
        })
    }
}

fn ttl_secs(ttl: Duration) -> Result<i64> {
    if ttl.is_zero() {
        return Err(Error::invalid("ttl", "must be at least 1 second, got 0"));
    }
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs).map_err(|_| Error::invalid("ttl", format!("too large: {ttl:?}")))
}

/// A lease kept alive by a background task; the liveness behind every lock and election.
///
/// Cheap to clone: clones share one lease and one keep-alive task. See the
/// [module docs](self) for the deadline and how a session ends.
///
/// ```
/// use gosync_dist::{Client, Mutex, Session};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = Client::embedded();
/// let session = Session::new(&client).await?;
/// let m = Mutex::new(&session, "/locks/jobs");
/// m.lock().await?;
/// session.close().await?; // revokes the lease: the lock's key is gone
/// assert!(m.unlock().await.is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

/// The session's prefix watches, each with when it was last subscribed to.
type Watches = HashMap<Vec<u8>, (Arc<PrefixWatch>, Instant)>;

struct Inner {
    client: Client,
    lease: LeaseId,
    ttl: Duration,
    close_timeout: Duration,
    state_tx: Arc<watch::Sender<Option<SessionEnd>>>,
    state_rx: watch::Receiver<Option<SessionEnd>>,
    poke: Arc<Notify>,
    keep_alive: AbortHandle,
    /// One long-lived prefix watch per prefix in use, shared by every primitive on this
    /// session (see `wait.rs`), with when it was last subscribed to.
    watches: tokio::sync::Mutex<Watches>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.keep_alive.abort();
        end(&self.state_tx, SessionEnd::Orphaned);
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("lease", &format_args!("{:x}", self.inner.lease))
            .field("ttl", &self.inner.ttl)
            .field("end", &*self.inner.state_rx.borrow())
            .finish()
    }
}

/// Records the session's end (the first reason wins).
fn end(state: &watch::Sender<Option<SessionEnd>>, why: SessionEnd) {
    state.send_if_modified(|s| {
        if s.is_none() {
            *s = Some(why);
            true
        } else {
            false
        }
    });
}

async fn keep_alive_loop(
    client: Client,
    lease: LeaseId,
    interval: Duration,
    mut deadline: Instant,
    state: Arc<watch::Sender<Option<SessionEnd>>>,
    poke: Arc<Notify>,
) {
    let retry_delay = (interval / 2).min(MAX_RETRY_DELAY);
    let mut next = Instant::now() + interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next.min(deadline)) => {}
            _ = poke.notified() => {}
        }
        let sent = Instant::now();
        if sent >= deadline {
            end(&state, SessionEnd::Expired);
            return;
        }
        match tokio::time::timeout(deadline - sent, client.lease_keep_alive_once(lease)).await {
            Ok(Ok(resp)) if resp.ttl > 0 => {
                deadline = sent + Duration::from_secs(resp.ttl as u64);
                next = sent + interval;
            }
            Ok(Ok(_)) | Ok(Err(Error::LeaseNotFound { .. })) | Err(_) => {
                end(&state, SessionEnd::Expired);
                return;
            }
            Ok(Err(_)) => next = Instant::now() + retry_delay,
        }
    }
}

impl Session {
    /// A session with the default TTL (60 s) and keep-alive interval (20 s).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use std::time::Duration;
    /// let session = gosync_dist::Session::new(&gosync_dist::Client::embedded()).await?;
    /// assert_eq!(session.ttl(), Duration::from_secs(60));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new(client: &Client) -> Result<Session> {
        Self::builder(client).build().await
    }

    /// A builder for a session with a custom TTL, an existing lease, or a custom keep-alive
    /// interval.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use std::time::Duration;
    /// let client = gosync_dist::Client::embedded();
    /// let s = gosync_dist::Session::builder(&client).ttl(Duration::from_secs(5)).build().await?;
    /// assert_eq!(s.ttl(), Duration::from_secs(5));
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(client: &Client) -> SessionBuilder {
        SessionBuilder {
            client: client.clone(),
            ttl: DEFAULT_TTL,
            lease: None,
            keep_alive_interval: None,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
        }
    }

    /// The session's lease id; every key the primitives write is attached to it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let session = gosync_dist::Session::new(&gosync_dist::Client::embedded()).await?;
    /// assert!(session.lease() > 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn lease(&self) -> LeaseId {
        self.inner.lease
    }

    /// The lease's TTL as granted by the backend (whole seconds).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let session = gosync_dist::Session::new(&gosync_dist::Client::embedded()).await?;
    /// assert_eq!(session.ttl().as_secs(), 60);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ttl(&self) -> std::time::Duration {
        self.inner.ttl
    }

    /// The client the session talks through.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let session = gosync_dist::Session::new(&gosync_dist::Client::embedded()).await?;
    /// let info = session.client().lease_time_to_live(session.lease(), false).await?;
    /// assert_eq!(info.granted_ttl, 60);
    /// # Ok(())
    /// # }
    /// ```
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// A future that resolves when the session ends — expired, orphaned, closed, or its last
    /// handle dropped — with the reason. Any number of callers may wait on it, before or after
    /// the end; it does not keep the session alive.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Session, SessionEnd};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let watcher = tokio::spawn(session.done());
    /// session.close().await?;
    /// assert_eq!(watcher.await.unwrap(), SessionEnd::Closed);
    /// assert_eq!(session.done().await, SessionEnd::Closed);
    /// # Ok(())
    /// # }
    /// ```
    pub fn done(&self) -> impl Future<Output = SessionEnd> + Send + 'static {
        let mut rx = self.inner.state_rx.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(end) => end.unwrap_or(SessionEnd::Orphaned),
                Err(_) => SessionEnd::Orphaned,
            }
        }
    }

    /// Whether the session has ended (see [`Session::done`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// let session = gosync_dist::Session::new(&gosync_dist::Client::embedded()).await?;
    /// assert!(!session.is_done());
    /// session.orphan();
    /// assert!(session.is_done());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_done(&self) -> bool {
        self.inner.state_rx.borrow().is_some()
    }

    /// Why the session ended, or `None` while it is live.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Session, SessionEnd};
    /// let session = Session::new(&Client::embedded()).await?;
    /// assert_eq!(session.end_reason(), None);
    /// session.close().await?;
    /// assert_eq!(session.end_reason(), Some(SessionEnd::Closed));
    /// # Ok(())
    /// # }
    /// ```
    pub fn end_reason(&self) -> Option<SessionEnd> {
        *self.inner.state_rx.borrow()
    }

    /// Stops refreshing the lease but leaves it alive until its TTL runs out — for when the
    /// connection is in doubt (a revoke could hang) or to hand the lease to another process,
    /// which resumes it with [`SessionBuilder::lease`]. The session counts as ended: the
    /// primitives built on it return [`Error::SessionExpired`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Session};
    /// let client = Client::embedded();
    /// let session = Session::new(&client).await?;
    /// session.orphan();
    /// // The lease is still there:
    /// assert!(client.lease_time_to_live(session.lease(), false).await.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn orphan(&self) {
        self.stop(SessionEnd::Orphaned);
    }

    fn stop(&self, why: SessionEnd) {
        self.inner.keep_alive.abort();
        end(&self.inner.state_tx, why);
        // Waiting primitives watch `done()`; the shared watches stop with it. Dropping them
        // here (when not busy) frees their streams early.
        if let Ok(mut watches) = self.inner.watches.try_lock() {
            watches.clear();
        }
    }

    /// Ends the session: stops the refresh and revokes the lease, deleting every key
    /// attached to it (locks are released, leadership resigned). The revoke is bounded by
    /// the close timeout (default 5 s, [`SessionBuilder::close_timeout`]); if it fails or
    /// times out the error is returned and the lease expires on its own within the TTL.
    /// Closing twice is fine; a session that had expired closes with `Ok`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Session};
    /// let client = Client::embedded();
    /// let session = Session::new(&client).await?;
    /// session.close().await?;
    /// assert!(client.lease_time_to_live(session.lease(), false).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) -> Result<()> {
        self.stop(SessionEnd::Closed);
        let timeout = self.inner.close_timeout;
        match tokio::time::timeout(timeout, self.inner.client.lease_revoke(self.inner.lease)).await
        {
            Ok(Ok(_)) | Ok(Err(Error::LeaseNotFound { .. })) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout {
                operation: "session close (lease revoke)",
                after: timeout,
            }),
        }
    }

    // ----- crate-internal helpers used by the primitives -----

    /// The error every primitive reports once the session is lost.
    pub(crate) fn expired(&self) -> Error {
        Error::SessionExpired {
            lease: self.inner.lease,
        }
    }

    /// Runs a transaction that writes with the session's lease: "lease not found" from the
    /// backend means the session is lost.
    pub(crate) async fn txn_with_lease(
        &self,
        txn: crate::backend::Txn,
    ) -> Result<crate::backend::TxnResponse> {
        match self.inner.client.txn(txn).await {
            Err(Error::LeaseNotFound { lease }) if lease == self.inner.lease => {
                self.check_now();
                Err(self.expired())
            }
            other => other,
        }
    }

    /// `Err(SessionExpired)` once the session has ended.
    pub(crate) fn ensure_live(&self) -> Result<()> {
        if self.is_done() {
            Err(self.expired())
        } else {
            Ok(())
        }
    }

    /// Asks the keep-alive task to refresh now, e.g. because a primitive saw one of the
    /// session's keys vanish (the lease may have expired on the server).
    pub(crate) fn check_now(&self) {
        self.inner.poke.notify_one();
    }

    /// The bound on background cleanup (deleting the key of a cancelled wait).
    pub(crate) fn cleanup_timeout(&self) -> Duration {
        self.inner.close_timeout
    }

    /// Subscribes to the session's long-lived watch on `prefix`, opening it first if needed
    /// (one round trip, once per session and prefix). Every event at a revision after any
    /// response received after this returns is delivered to the subscription.
    pub(crate) async fn subscribe(&self, prefix: &[u8]) -> Result<broadcast::Receiver<Item>> {
        self.ensure_live()?;
        let mut watches = self.inner.watches.lock().await;
        let now = Instant::now();
        evict_idle(&mut watches, prefix, now);
        if let Some((w, used)) = watches.get_mut(prefix) {
            if let Some(rx) = w.subscribe() {
                *used = now;
                return Ok(rx);
            }
        }
        let w = PrefixWatch::open(
            self.inner.client.clone(),
            prefix.to_vec(),
            self.inner.state_rx.clone(),
        )
        .await?;
        let rx = w.subscribe().ok_or_else(|| Error::WatchClosed {
            reason: "the watch broke as soon as it was opened".into(),
        })?;
        watches.insert(prefix.to_vec(), (w, now));
        drop(watches);
        self.ensure_live()?;
        Ok(rx)
    }
}

/// Closes watches nobody is subscribed to that were not used for [`IDLE_WATCH`], and the
/// least recently used idle ones beyond [`MAX_WATCHES`], so a process locking many
/// different prefixes does not keep a watch open for each.
fn evict_idle(watches: &mut Watches, keep: &[u8], now: Instant) {
    let idle = |k: &[u8], w: &PrefixWatch| k != keep && w.subscribers() == 0;
    watches.retain(|k, (w, used)| !(idle(k, w) && now.duration_since(*used) >= IDLE_WATCH));
    while watches.len() > MAX_WATCHES {
        let oldest = watches
            .iter()
            .filter(|(k, (w, _))| idle(k, w))
            .min_by_key(|(_, (_, used))| *used)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                watches.remove(&k);
            }
            None => break,
        }
    }
}
