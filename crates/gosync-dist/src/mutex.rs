//! A distributed mutex: etcd's lock algorithm, with a fencing token and fast hand-offs.
//!
//! Every contender writes one key, `prefix/<lease in hex>`, attached to its session's lease.
//! The key with the lowest create revision holds the lock; every other contender waits until
//! the keys created before its own are gone — its turn comes with the delete of the one
//! created just before it — so the lock passes in FIFO order, to one waiter per release.
//!
//! * **Fast path, 2 round trips.** `lock` is one transaction — "if my key does not exist,
//!   create it, and read the newest keys of the prefix; else read my key and the oldest key"
//!   — and `unlock` is one delete. (The first `lock` through a session on a given prefix also
//!   opens that session's watch on the prefix: one more round trip, once.) A contended hand-off
//!   costs the holder's delete and one watch event; the new owner needs no further read as
//!   long as at most 16 contenders were ahead of it when it queued.
//! * **Fast hand-off.** The wait consumes a watch that was established before the
//!   transaction, so it is synced on the server and the predecessor's delete arrives at
//!   once — no 100 ms catch-up tick as with Go's client (see the crate's `wait` module).
//! * **Safety.** The watch covers every revision after the transaction, so no delete is
//!   missed; if this handle's key is deleted while waiting (the lease expired), `lock` fails
//!   with [`Error::SessionExpired`] instead of "acquiring" a lock it no longer queues for.
//!   Waits race the session's end. A `lock` future dropped while waiting deletes its key in
//!   the background (bounded by the session's close timeout).
//! * **Fencing.** [`Mutex::fencing_token`] is the key's create revision: it grows with every
//!   acquisition, so a storage service can reject writes carrying an older token.
//!   [`Mutex::is_owner`] is a [`Compare`] that holds only while this handle owns the lock,
//!   for guarding transactions.
//!
//! **Happens-before:** an `unlock` that returned `Ok` happens before the `lock` of the next
//! owner returns (the next owner acts on the revision of the delete, or later). Mutual
//! exclusion is between *sessions*: two handles on the same session and prefix share one key
//! and both hold the lock (as in etcd). One handle holds the lock at most once: a second
//! `lock` through the same handle waits until it is unlocked.
//!
//! **Misuse and loss:** `unlock` of a mutex this handle does not hold returns
//! [`Error::InvalidArgument`]. `lock` and `try_lock` on a session that has ended return
//! [`Error::SessionExpired`]; `unlock` returns it when the key was already gone (the lock was
//! lost while held — whatever the critical section did was not protected to the end), and
//! succeeds when the key was still there. The prefix must be non-empty, without a trailing `/`
//! and without control characters, else operations fail with [`Error::InvalidArgument`]
//! naming `prefix`.
//!
//! ```
//! use gosync_dist::{Client, Mutex, Session};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gosync_dist::Result<()> {
//! let client = Client::embedded();
//! let session = Session::new(&client).await?;
//! let m = Mutex::new(&session, "/locks/jobs");
//! m.lock().await?;
//! let token = m.fencing_token().expect("held");
//! // ... write to storage, passing `token` along ...
//! # let _ = token;
//! m.unlock().await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::OwnedMutexGuard;

use crate::backend::{Compare, CompareOp, Header, PutRequest, RangeRequest, Txn, TxnOp};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::wait::{self, Ahead, Cleanup, Turn};

/// A distributed mutex on a key prefix, held through a [`Session`]. See the
/// [module docs](self) for the algorithm and its guarantees.
///
/// ```
/// use gosync_dist::{Client, Error, Mutex, Session};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gosync_dist::Result<()> {
/// let client = Client::embedded();
/// let (s1, s2) = (Session::new(&client).await?, Session::new(&client).await?);
/// let (a, b) = (Mutex::new(&s1, "/locks/x"), Mutex::new(&s2, "/locks/x"));
/// a.lock().await?;
/// assert!(matches!(b.try_lock().await, Err(Error::Locked { .. })));
/// a.unlock().await?;
/// b.try_lock().await?;
/// # Ok(())
/// # }
/// ```
pub struct Mutex {
    session: Session,
    prefix: String,
    /// `prefix + "/"`, or the reason the prefix is invalid.
    pfx: Result<String>,
    key: String,
    local: Arc<tokio::sync::Mutex<()>>,
    held: StdMutex<Option<Held>>,
}

struct Held {
    rev: i64,
    header: Header,
    _local: OwnedMutexGuard<()>,
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("key", &self.key)
            .field("fencing_token", &self.fencing_token())
            .finish()
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mutex {
    /// A mutex on `prefix` for this session. Nothing is sent until [`lock`](Self::lock) or
    /// [`try_lock`](Self::try_lock).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Mutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let m = Mutex::new(&session, "/locks/jobs");
    /// assert!(m.key().starts_with("/locks/jobs/"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(session: &Session, prefix: impl Into<String>) -> Mutex {
        let prefix = prefix.into();
        let pfx = wait::key_prefix(&prefix);
        let key = format!(
            "{}{:x}",
            pfx.as_deref().unwrap_or(prefix.as_str()),
            session.lease()
        );
        Mutex {
            session: session.clone(),
            prefix,
            pfx,
            key,
            local: Arc::new(tokio::sync::Mutex::new(())),
            held: StdMutex::new(None),
        }
    }

    fn pfx(&self) -> Result<&str> {
        self.pfx.as_deref().map_err(Clone::clone)
    }

    /// Acquires the lock, waiting (in FIFO order) for the sessions ahead. Fails with
    /// [`Error::SessionExpired`] if the session ends or its key vanishes while waiting.
    /// Cancel-safe: dropping the future while it waits removes this handle's key in the
    /// background.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Mutex, Session};
    /// let client = Client::embedded();
    /// let (s1, s2) = (Session::new(&client).await?, Session::new(&client).await?);
    /// let first = Mutex::new(&s1, "/locks/a");
    /// first.lock().await?;
    /// let first_token = first.fencing_token().unwrap();
    /// let waiter = tokio::spawn(async move {
    ///     let second = Mutex::new(&s2, "/locks/a");
    ///     second.lock().await.map(|_| second.fencing_token().unwrap())
    /// });
    /// first.unlock().await?;
    /// let second_token = waiter.await.unwrap()?;
    /// assert!(second_token > first_token);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lock(&self) -> Result<()> {
        let pfx = self.pfx()?;
        self.session.ensure_live()?;
        let local = self.local.clone().lock_owned().await;
        let mut rx = self.session.subscribe(pfx.as_bytes()).await?;
        let key = self.key.as_bytes();
        let (resp, local) =
            wait::create_key(&self.session, key, self.acquire_txn(pfx), local).await?;
        let (rev, known) = self.read_acquire(&resp);
        let cleanup = Cleanup::new(&self.session, self.key.as_bytes(), rev, local);
        let turn = Turn {
            session: &self.session,
            scope: pfx,
            my_key: self.key.as_bytes(),
            my_rev: rev,
        };
        let header = wait::wait_turn(&turn, &mut rx, known).await?;
        let local = cleanup.disarm();
        *lock(&self.held) = Some(Held {
            rev,
            header,
            _local: local,
        });
        Ok(())
    }

    /// Tries once to acquire the lock: `Ok` if this session now holds it, else
    /// [`Error::Locked`] (having removed the key it queued with). One round trip when free,
    /// two when locked.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Error, Mutex, Session};
    /// let client = Client::embedded();
    /// let (s1, s2) = (Session::new(&client).await?, Session::new(&client).await?);
    /// Mutex::new(&s1, "/locks/t").try_lock().await?;
    /// let err = Mutex::new(&s2, "/locks/t").try_lock().await.unwrap_err();
    /// assert!(matches!(err, Error::Locked { .. }));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn try_lock(&self) -> Result<()> {
        let pfx = self.pfx()?;
        self.session.ensure_live()?;
        let Ok(local) = self.local.clone().try_lock_owned() else {
            return Err(self.locked());
        };
        let key = self.key.as_bytes();
        let (resp, local) =
            wait::create_key(&self.session, key, self.acquire_txn(pfx), local).await?;
        let (rev, known) = self.read_acquire(&resp);
        let free = known.as_ref().is_some_and(Ahead::is_clear);
        if free {
            *lock(&self.held) = Some(Held {
                rev,
                header: resp.header,
                _local: local,
            });
            return Ok(());
        }
        if resp.succeeded {
            // We created the key only to queue: take it back (as Go's TryLock does). If this
            // fails or is cancelled, the guard deletes it in the background.
            let cleanup = Cleanup::new(&self.session, self.key.as_bytes(), rev, local);
            let del = wait::delete_if_created_at(self.key.as_bytes(), rev);
            self.session.client().txn(del).await?;
            drop(cleanup.disarm());
        }
        Err(self.locked())
    }

    fn locked(&self) -> Error {
        Error::Locked {
            key: self.prefix.clone(),
        }
    }

    /// The fast-path transaction: create my key and read the newest keys (mine and up to
    /// two before it), or, if my key exists (same session), read it and the oldest key.
    fn acquire_txn(&self, pfx: &str) -> Txn {
        let key = self.key.as_bytes();
        Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([
                TxnOp::Put(PutRequest::new(key, Vec::new()).with_lease(self.session.lease())),
                wait::newest_in(pfx),
            ])
            .or_else([TxnOp::Range(RangeRequest::key(key)), wait::oldest_in(pfx)])
    }

    /// My key's create revision and what the fast path learned about the keys ahead of it
    /// (`None`: my key existed already and someone else is ahead — read before waiting).
    fn read_acquire(&self, resp: &crate::backend::TxnResponse) -> (i64, Option<Ahead>) {
        let key = self.key.as_bytes();
        let at = resp.header.revision;
        if resp.succeeded {
            let rev = resp.header.revision;
            let ahead = Ahead::from_newest(wait::range_kvs(resp, 1), key, rev, at);
            (rev, Some(ahead))
        } else {
            let rev = wait::range_kvs(resp, 0)
                .first()
                .map_or(0, |kv| kv.create_revision);
            let owner_is_me = wait::range_kvs(resp, 1)
                .first()
                .is_some_and(|kv| kv.create_revision == rev);
            (rev, owner_is_me.then(|| Ahead::none(at)))
        }
    }

    /// Releases the lock by deleting this handle's key (one round trip). Fails with
    /// [`Error::InvalidArgument`] if this handle does not hold the lock, and with
    /// [`Error::SessionExpired`] if the key was already gone (the session's lease ended, so
    /// the lock was lost while held). Either way the handle no longer holds the lock
    /// afterwards, except when the delete itself failed (then retry).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Error, Mutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let m = Mutex::new(&session, "/locks/u");
    /// assert!(matches!(m.unlock().await, Err(Error::InvalidArgument { .. })));
    /// m.lock().await?;
    /// m.unlock().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn unlock(&self) -> Result<()> {
        let rev = match &*lock(&self.held) {
            Some(h) => h.rev,
            None => {
                return Err(Error::invalid(
                    "mutex",
                    format!(
                    "unlock of unlocked mutex {}: this handle does not hold it; call lock() first",
                    self.prefix
                ),
                ))
            }
        };
        let resp = self
            .session
            .client()
            .txn(wait::delete_if_created_at(self.key.as_bytes(), rev))
            .await?;
        lock(&self.held).take();
        if !resp.succeeded {
            // The key was already gone: the lease ended while the lock was held.
            self.session.check_now();
            return Err(self.session.expired());
        }
        Ok(())
    }

    /// A compare that holds only while this handle owns the lock (its key exists with the
    /// create revision it acquired with) — add it to a transaction so the transaction only
    /// applies while the lock is held. When not held it never holds.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::backend::{PutRequest, Txn, TxnOp};
    /// use gosync_dist::{Client, Mutex, Session};
    /// let client = Client::embedded();
    /// let session = Session::new(&client).await?;
    /// let m = Mutex::new(&session, "/locks/cfg");
    /// m.lock().await?;
    /// let txn = Txn::new()
    ///     .when([m.is_owner()])
    ///     .and_then([TxnOp::Put(PutRequest::new("/cfg", "v2"))]);
    /// assert!(client.txn(txn).await?.succeeded);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_owner(&self) -> Compare {
        let rev = self.fencing_token().unwrap_or(-1);
        Compare::create_revision(self.key.as_bytes(), CompareOp::Equal, rev)
    }

    /// The key this handle queues with: `prefix/<lease in hex>`. It exists in the store
    /// only while this handle holds or waits for the lock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Mutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let m = Mutex::new(&session, "/locks/k");
    /// assert_eq!(m.key(), format!("/locks/k/{:x}", session.lease()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The response header of the acquisition (its revision is where this handle became the
    /// owner), or `None` when not held.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Mutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let m = Mutex::new(&session, "/locks/h");
    /// assert!(m.header().is_none());
    /// m.lock().await?;
    /// assert!(m.header().unwrap().revision >= m.fencing_token().unwrap());
    /// # Ok(())
    /// # }
    /// ```
    pub fn header(&self) -> Option<Header> {
        lock(&self.held).as_ref().map(|h| h.header)
    }

    /// The fencing token of the current hold — the create revision of this handle's key —
    /// or `None` when not held. Tokens of successive owners strictly increase.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Mutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let m = Mutex::new(&session, "/locks/f");
    /// m.lock().await?;
    /// let first = m.fencing_token().unwrap();
    /// m.unlock().await?;
    /// m.lock().await?;
    /// assert!(m.fencing_token().unwrap() > first);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fencing_token(&self) -> Option<i64> {
        lock(&self.held).as_ref().map(|h| h.rev)
    }

    /// The session this mutex is held through.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> gosync_dist::Result<()> {
    /// use gosync_dist::{Client, Mutex, Session};
    /// let session = Session::new(&Client::embedded()).await?;
    /// let m = Mutex::new(&session, "/locks/s");
    /// assert_eq!(m.session().lease(), session.lease());
    /// # Ok(())
    /// # }
    /// ```
    pub fn session(&self) -> &Session {
        &self.session
    }
}
