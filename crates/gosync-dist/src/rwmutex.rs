//! A distributed readers-writer mutex: the read-write lock recipe of etcd's `recipes`
//! package, with the waits of [`Mutex`](crate::Mutex).
//!
//! Each acquisition writes a fresh key attached to the session's lease:
//! `prefix/read/<lease>-<n>` for a reader, `prefix/write/<lease>-<n>` for a writer (unique
//! per acquisition, so several handles on one session can read at once). Order is by create
//! revision:
//!
//! * a **reader** waits until no *writer* key created before its own is left — readers share;
//! * a **writer** waits until no key at all created before its own is left.
//!
//! So the lock is FIFO and writers are not starved: a reader arriving after a waiting writer
//! queues behind it. Each waiter follows the deletes of the blocking keys before its own
//! (learned when it queued) through the session's synced long-lived prefix watch, so
//! hand-offs are not delayed by etcd's 100 ms catch-up tick. (etcd's recipe orders by mod
//! revision; create revision is the same for these write-once keys and matches the mutex.) The fast path is one transaction to lock and one
//! delete to unlock. A lock future dropped while waiting removes its key in the background;
//! waits fail with [`Error::SessionExpired`] if the session ends or the key vanishes.
//!
//! One handle holds at most one lock (read or write) at a time; a second acquisition through
//! the same handle waits until it is released. Use one handle per concurrent holder — they
//! are cheap and share the session's watch.
//!
//! **Happens-before:** an `unlock` that returned `Ok` happens before any later `lock` or
//! `read_lock` returns; a `read_unlock` happens before the next writer's `lock` returns.
//!
//! ```
//! use gosync_dist::{Client, RwMutex, Session};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gosync_dist::Result<()> {
//! let client = Client::embedded();
//! let (s1, s2) = (Session::new(&client).await?, Session::new(&client).await?);
//! let (r1, r2) = (RwMutex::new(&s1, "/locks/cfg"), RwMutex::new(&s2, "/locks/cfg"));
//! r1.read_lock().await?;
//! r2.read_lock().await?; // readers share
//! r1.read_unlock().await?;
//! r2.read_unlock().await?;
//! r1.lock().await?;
//! r1.unlock().await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::OwnedMutexGuard;

use crate::backend::{Compare, CompareOp, Header, PutRequest, Txn, TxnOp};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::wait::{self, Ahead, Cleanup, Turn};

/// Source of the per-acquisition part of key names.
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Read,
    Write,
}

/// A distributed readers-writer mutex on a key prefix. See the [module docs](self).
///
/// ```
/// use gosync_dist::{Client, RwMutex, Session};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = Client::embedded();
/// let (s1, s2) = (Session::new(&client).await?, Session::new(&client).await?);
/// let writer = RwMutex::new(&s1, "/locks/db");
/// writer.lock().await?;
/// let reader = tokio::spawn(async move {
///     let r = RwMutex::new(&s2, "/locks/db");
///     r.read_lock().await.map(|_| r)
/// });
/// writer.unlock().await?; // the reader gets in after this
/// let r = reader.await.unwrap()?;
/// r.read_unlock().await?;
/// # Ok(())
/// # }
/// ```
pub struct RwMutex {
    session: Session,
    prefix: String,
    pfx: Result<String>,
    local: Arc<tokio::sync::Mutex<()>>,
    held: StdMutex<Option<Held>>,
}

struct Held {
    mode: Mode,
    key: String,
    rev: i64,
    header: Header,
    _local: OwnedMutexGuard<()>,
}

impl fmt::Debug for RwMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = lock(&self.held);
        f.debug_struct("RwMutex")
            .field("prefix", &self.prefix)
            .field("held", &held.as_ref().map(|h| (h.mode, &h.key, h.rev)))
            .finish()
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RwMutex {
    /// A readers-writer mutex on `prefix` for this session. Nothing is sent until used.
    /// The prefix rules are those of [`Mutex`](crate::Mutex).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let rw = RwMutex::new(&session, "/locks/rw");
    /// assert_eq!(rw.key(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(session: &Session, prefix: impl Into<String>) -> RwMutex {
        let prefix = prefix.into();
        let pfx = wait::key_prefix(&prefix);
        RwMutex {
            session: session.clone(),
            prefix,
            pfx,
            local: Arc::new(tokio::sync::Mutex::new(())),
            held: StdMutex::new(None),
        }
    }

    /// Acquires a shared (read) lock: waits until no writer that queued earlier is left.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let (a, b) = (RwMutex::new(&session, "/locks/r"), RwMutex::new(&session, "/locks/r"));
    /// a.read_lock().await?;
    /// b.read_lock().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_lock(&self) -> Result<()> {
        self.acquire(Mode::Read).await
    }

    /// Releases a read lock held by this handle (one round trip). Fails with
    /// [`Error::InvalidArgument`] if this handle holds no read lock, and with
    /// [`Error::SessionExpired`] if the key was already gone.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let rw = RwMutex::new(&session, "/locks/ru");
    /// rw.read_lock().await?;
    /// rw.read_unlock().await?;
    /// assert!(rw.read_unlock().await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_unlock(&self) -> Result<()> {
        self.release(Mode::Read).await
    }

    /// Acquires the exclusive (write) lock: waits until every key that queued earlier —
    /// readers and writers — is gone.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let rw = RwMutex::new(&session, "/locks/w");
    /// rw.lock().await?;
    /// assert!(rw.key().unwrap().starts_with("/locks/w/write/"));
    /// rw.unlock().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lock(&self) -> Result<()> {
        self.acquire(Mode::Write).await
    }

    /// Releases the write lock held by this handle (one round trip). Fails with
    /// [`Error::InvalidArgument`] if this handle holds no write lock, and with
    /// [`Error::SessionExpired`] if the key was already gone.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let rw = RwMutex::new(&session, "/locks/wu");
    /// rw.lock().await?;
    /// assert!(rw.read_unlock().await.is_err()); // wrong mode
    /// rw.unlock().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn unlock(&self) -> Result<()> {
        self.release(Mode::Write).await
    }

    /// The key of the lock this handle holds, if any.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let rw = RwMutex::new(&session, "/locks/k");
    /// rw.read_lock().await?;
    /// assert!(rw.key().unwrap().starts_with("/locks/k/read/"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn key(&self) -> Option<String> {
        lock(&self.held).as_ref().map(|h| h.key.clone())
    }

    /// The create revision of the held lock's key (a fencing token: it grows with every
    /// acquisition), or `None`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let rw = RwMutex::new(&session, "/locks/ft");
    /// rw.lock().await?;
    /// assert!(rw.fencing_token().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn fencing_token(&self) -> Option<i64> {
        lock(&self.held).as_ref().map(|h| h.rev)
    }

    /// The header of the acquisition (its revision is where the lock was obtained), or
    /// `None` when nothing is held.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let rw = RwMutex::new(&session, "/locks/hd");
    /// rw.read_lock().await?;
    /// assert!(rw.header().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn header(&self) -> Option<Header> {
        lock(&self.held).as_ref().map(|h| h.header)
    }

    /// A compare that holds only while this handle holds its lock (read or write), for
    /// guarding transactions.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::backend::{PutRequest, Txn, TxnOp};
    /// use gosync_dist::{Client, RwMutex, Session};
    /// let client = Client::embedded();
    /// let session = Session::new(&client).await?;
    /// let rw = RwMutex::new(&session, "/locks/own");
    /// rw.lock().await?;
    /// let txn = Txn::new().when([rw.is_owner()]).and_then([TxnOp::Put(PutRequest::new("/x", "1"))]);
    /// assert!(client.txn(txn).await?.succeeded);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_owner(&self) -> Compare {
        match &*lock(&self.held) {
            Some(h) => Compare::create_revision(h.key.as_bytes(), CompareOp::Equal, h.rev),
            None => Compare::create_revision(
                format!("{}/write/none", self.prefix),
                CompareOp::Equal,
                -1,
            ),
        }
    }

    async fn acquire(&self, mode: Mode) -> Result<()> {
        let pfx = self.pfx.as_deref().map_err(Clone::clone)?;
        self.session.ensure_live()?;
        let local = self.local.clone().lock_owned().await;
        let mut rx = self.session.subscribe(pfx.as_bytes()).await?;
        let write_scope = format!("{pfx}write/");
        let (kind, scope) = match mode {
            Mode::Read => ("read", write_scope.as_str()),
            Mode::Write => ("write", pfx),
        };
        let lease = self.session.lease();
        let mut local = local;
        let (key, resp) = loop {
            let n = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
            let key = format!("{pfx}{kind}/{lease:x}-{n:x}");
            let txn = Txn::new()
                .when([Compare::create_revision(
                    key.as_bytes(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then([
                    TxnOp::Put(PutRequest::new(key.as_bytes(), Vec::new()).with_lease(lease)),
                    wait::newest_in(scope),
                ]);
            let (resp, hold) = wait::create_key(&self.session, key.as_bytes(), txn, local).await?;
            local = hold;
            if resp.succeeded {
                break (key, resp);
            }
            // Another process with the same lease used this name: pick the next one.
        };
        let rev = resp.header.revision;
        let ahead = Ahead::from_newest(wait::range_kvs(&resp, 1), key.as_bytes(), rev, rev);
        let cleanup = Cleanup::new(&self.session, key.as_bytes(), rev, local);
        let turn = Turn {
            session: &self.session,
            scope,
            my_key: key.as_bytes(),
            my_rev: rev,
        };
        let header = wait::wait_turn(&turn, &mut rx, Some(ahead)).await?;
        let local = cleanup.disarm();
        *lock(&self.held) = Some(Held {
            mode,
            key,
            rev,
            header,
            _local: local,
        });
        Ok(())
    }

    async fn release(&self, mode: Mode) -> Result<()> {
        let (key, rev) = match &*lock(&self.held) {
            Some(h) if h.mode == mode => (h.key.clone(), h.rev),
            other => {
                let (what, fix) = match (mode, other) {
                    (Mode::Read, Some(_)) => {
                        ("read_unlock while holding the write lock", "call unlock()")
                    }
                    (Mode::Write, Some(_)) => {
                        ("unlock while holding a read lock", "call read_unlock()")
                    }
                    (Mode::Read, None) => {
                        ("read_unlock of unlocked RwMutex", "call read_lock() first")
                    }
                    (Mode::Write, None) => ("unlock of unlocked RwMutex", "call lock() first"),
                };
                return Err(Error::invalid(
                    "rwmutex",
                    format!("{what} {}; {fix}", self.prefix),
                ));
            }
        };
        let resp = self
            .session
            .client()
            .txn(wait::delete_if_created_at(key.as_bytes(), rev))
            .await?;
        lock(&self.held).take();
        if !resp.succeeded {
            self.session.check_now();
            return Err(self.session.expired());
        }
        Ok(())
    }
}
