//! A cross-process lock on a file: juju/fslock's `Lock`, from the seed's extended primitives
//! ("跨进程的Mutex", a mutex across processes).
//!
//! A [`FileLock`] opens (creating if needed) a file once, in [`FileLock::new`], and locks and
//! unlocks it with the operating system's whole-file locks, through std's `File::lock`,
//! `File::lock_shared`, `File::try_lock` and `File::unlock` (`flock` on Unix, `LockFileEx` on
//! Windows). Every process — and every `FileLock` — that locks the same file takes part.
//!
//! | juju/fslock (Go)              | gosync                                                       |
//! |-------------------------------|--------------------------------------------------------------|
//! | `l := fslock.New(path)`       | [`FileLock::new(path)?`](FileLock::new) (opens the file now, see below) |
//! | `l.Lock()`                    | [`lock`](FileLock::lock), [`lock_async`](FileLock::lock_async), or an RAII [`guard`](FileLock::guard) |
//! | `l.TryLock()`, `ErrLocked`    | [`try_lock`](FileLock::try_lock) → `Ok(false)`               |
//! | `l.LockWithTimeout(d)`, `ErrTimeout` | [`lock_timeout(d)`](FileLock::lock_timeout) → an error of kind [`io::ErrorKind::TimedOut`] |
//! | `l.Unlock()`                  | [`unlock`](FileLock::unlock), or dropping the guard or the `FileLock` |
//! | —                             | shared (reader) locks: [`lock_shared`](FileLock::lock_shared) and its `try_`, `_timeout`, `_ctx`, `_async` forms |
//! | —                             | [`lock_ctx(&ctx)`](FileLock::lock_ctx): bounded by a [`Context`] |
//!
//! ```
//! use gosync::filelock::FileLock;
//!
//! let path = std::env::temp_dir().join(format!("gosync-doc-{}-module.lock", std::process::id()));
//! let mut mine = FileLock::new(&path)?;
//! let mut theirs = FileLock::new(&path)?; // another process would do the same
//!
//! mine.lock()?;
//! assert!(!theirs.try_lock()?); // excluded, like another process
//! mine.unlock()?;
//! assert!(theirs.try_lock()?);
//! theirs.unlock()?;
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What it guarantees
//!
//! **Mutual exclusion among processes on one machine** that lock the same file on the same
//! filesystem: at most one exclusive holder, or any number of shared holders and no exclusive
//! one. Beyond that:
//!
//! * **Advisory.** The lock binds only those who take it: a process that does not lock can
//!   still read, write, rename or delete the file. (How the lock interacts with plain reads and
//!   writes is platform-specific: on Windows other handles may be refused access to the
//!   file's bytes while it is locked.)
//! * **Per open file, so per `FileLock`.** These locks belong to an *open file description*
//!   (`flock` semantics), not to a process or a thread. Two `FileLock`s on the same path in
//!   one process therefore exclude each other exactly as two processes do, and that is how
//!   several threads or tasks of one process share a lock file: each opens its own `FileLock`
//!   (or they share one behind a [`sync::Mutex`](crate::sync::Mutex)). This is also why the
//!   methods take `&mut self`: through one open file the kernel would grant a second lock at
//!   once, so two threads locking the *same* `FileLock` would both "hold" it. With `&mut self`
//!   the borrow checker rules that out, a `FileLock` knows whether it holds its lock without
//!   an atomic, and [`lock`](FileLock::lock) and [`unlock`](FileLock::unlock) are one system
//!   call each.
//! * **Released on drop and when the process dies.** Dropping a `FileLock` (or its guard)
//!   unlocks it; and since the kernel drops a lock when the last descriptor of its open file
//!   closes, a holder that crashes or is killed (`SIGKILL` included) releases it too — there is
//!   no stale lock to clean up. The descriptor is opened close-on-exec, so child processes
//!   started with `std::process::Command` do not inherit it and cannot keep it alive.
//! * **Happens-before.** In the terminology of the Go memory model, an unlock of the file
//!   (by [`unlock`](FileLock::unlock), by a drop, or by the holder's process ending)
//!   synchronizes before the next lock of it returns, in this process or another. So whatever
//!   the holder wrote to the file (through any descriptor) before unlocking is what the next
//!   holder reads, and, within one process, its writes to memory are visible to the next
//!   holder as after a mutex. A successful `try_lock` is a lock in that sense; a failed one
//!   synchronizes with nothing.
//! * **Not fair.** The kernel keeps no queue for [`lock_timeout`](FileLock::lock_timeout),
//!   [`lock_ctx`](FileLock::lock_ctx) and [`lock_async`](FileLock::lock_async), which poll (see
//!   below): a waiter can lose to a holder that unlocks and locks again quickly, or to a
//!   blocking [`lock`](FileLock::lock) that the kernel wakes at once.
//!
//! **Network filesystems.** Whether other *machines* see these locks depends on the
//! filesystem and its mount options: Linux emulates `flock` on NFS with byte-range locks
//! through the lock manager (so there it also conflicts with `fcntl` locks on the file), a
//! `nolock` mount keeps locks local to the client, and a lock can be lost when the server
//! restarts or the client's lease expires while it is held. Treat it as a lock for processes of
//! one machine, and keep its file on a local filesystem; for locks between machines use the
//! distributed primitives (`gosync-dist`).
//!
//! # How the bounded and async forms wait
//!
//! A thread blocked in the kernel's `lock` cannot be woken early, so
//! [`lock_timeout`](FileLock::lock_timeout), [`lock_ctx`](FileLock::lock_ctx) and
//! [`lock_async`](FileLock::lock_async) never call it: they poll
//! [`try_lock`](FileLock::try_lock), sleeping between tries for 1 ms at first, doubling up to
//! 50 ms (and never past the deadline). A release is therefore noticed within at most 50 ms,
//! and a waiter costs a few system calls a second. The price buys two things:
//!
//! * **Nothing is left behind.** When one of them gives up — timed out, context done, future
//!   dropped — no lock is held and nothing keeps trying. (juju/fslock's `LockWithTimeout`
//!   leaves a goroutine blocked in `flock` that takes the lock after the timeout and then
//!   releases it, holding the lock against everyone meanwhile.)
//! * **No thread per waiter.** An async waiter sleeps on the crate's timer
//!   ([`time::sleep_async`](crate::time::sleep_async)), so `lock_async` needs no runtime and no
//!   helper thread, and dropping it cancels its timer.
//!
//! # Misuse
//!
//! juju/fslock reports misuse as errors rather than panics, and so does this module: both
//! are `io::Error`s, since every method already returns one for I/O failures.
//!
//! * [`unlock`](FileLock::unlock) of a `FileLock` that does not hold its lock is an error of
//!   kind [`io::ErrorKind::InvalidInput`], `"filelock: unlock of unlocked file lock <path>"`,
//!   and changes nothing. (A panic would crash a Go port where Go returned an error; the guard
//!   form cannot make this mistake.)
//! * Locking a `FileLock` that already holds its lock, in either mode, is an error of kind
//!   [`io::ErrorKind::Deadlock`] and changes nothing: the kernel's answer would be a silent
//!   conversion between shared and exclusive, or a deadlock (std leaves it unspecified). To
//!   change modes, unlock and lock again — not atomically, as with `flock` itself.
//!
//! Every error names the path, as Go's `*PathError` does:
//! `filelock: open /no/such/dir/app.lock: No such file or directory (os error 2)`. A missing
//! directory, a path that is a directory, or a file that cannot be opened for writing fails in
//! [`new`](FileLock::new). The original error stays reachable through
//! [`std::error::Error::source`], and the kind is kept.
//!
//! # Why the file stays
//!
//! [`new`](FileLock::new) creates the file if it is missing and never truncates it;
//! [`unlock`](FileLock::unlock) and drop never delete it. Deleting on unlock would break the
//! lock: a process B that opened the file while A held it waits on *that* file; if A unlocks
//! and deletes it, B gets the lock on the now nameless file, and a process C that arrives next
//! creates a new file under the same name and locks it at once — B and C both hold "the"
//! lock. A lock file is meant to stay where it is; its contents are the holders' business
//! (a holder may write its process id through [`file`](FileLock::file), for instance).

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use crate::context::{Context, ContextError};
use crate::sema::{Ident, Origin, ThreadWait, WaitKind};
use crate::time::{sleep_async, Sleep};

/// The first pause between two tries of a polling wait.
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The longest pause between two tries: the most a polling waiter lags behind a release.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

fn next_backoff(b: Duration) -> Duration {
    (b * 2).min(MAX_BACKOFF)
}

/// Which lock a [`FileLock`] holds.
///
/// ```
/// use gosync::filelock::{FileLock, LockMode};
///
/// let path = std::env::temp_dir().join(format!("gosync-doc-{}-mode.lock", std::process::id()));
/// let mut lock = FileLock::new(&path)?;
/// assert_eq!(lock.held(), None);
/// lock.lock_shared()?;
/// assert_eq!(lock.held(), Some(LockMode::Shared));
/// lock.unlock()?;
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// The exclusive (writer) lock: no other holder of either kind.
    Exclusive,
    /// A shared (reader) lock: other shared holders, no exclusive one.
    Shared,
}

/// A lock on a file, shared with every process that locks the same file (juju/fslock's
/// `Lock`). See the [module docs](self) for what it guarantees.
///
/// One `FileLock` is one holder: it is `Send` and `Sync`, and its locking methods take
/// `&mut self` (see [per open file](self#what-it-guarantees)). Threads or tasks of one
/// process that want the lock each open their own `FileLock` on the path; they exclude each
/// other as processes do.
///
/// Dropping a `FileLock` that holds its lock releases it.
///
/// ```
/// use gosync::filelock::FileLock;
///
/// let path = std::env::temp_dir().join(format!("gosync-doc-{}-type.lock", std::process::id()));
/// let workers: Vec<_> = (0..3)
///     .map(|_| {
///         let path = path.clone();
///         std::thread::spawn(move || -> std::io::Result<()> {
///             let mut lock = FileLock::new(&path)?; // one per thread
///             let _held = lock.guard()?;
///             // ... at most one thread (or process) is here at a time ...
///             Ok(())
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap()?;
/// }
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileLock {
    file: File,
    path: PathBuf,
    held: Option<LockMode>,
    /// Its identity in the registry of waits (numbered, and where it was opened).
    ident: Ident,
}

impl FileLock {
    /// Opens the lock file at `path` for reading and writing, creating it if it is missing
    /// (never truncating it), without locking it (juju/fslock's `New`, which defers the open
    /// to the first lock; opening once here keeps each later lock and unlock one system call).
    ///
    /// # Errors
    ///
    /// Whatever opening the file fails with — a missing directory ([`io::ErrorKind::NotFound`]),
    /// a path that is a directory, no permission to write — with a message that names the
    /// path.
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    /// use std::io::ErrorKind;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-new.lock", std::process::id()));
    /// let lock = FileLock::new(&path)?;
    /// assert!(path.exists());
    /// assert_eq!(lock.held(), None);
    ///
    /// let missing = std::env::temp_dir().join("gosync-no-such-dir").join("app.lock");
    /// let err = FileLock::new(&missing).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// assert!(err.to_string().contains(&*missing.to_string_lossy()));
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn new(path: impl AsRef<Path>) -> io::Result<FileLock> {
        let created = std::panic::Location::caller();
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| path_error("open", &path, e))?;
        Ok(FileLock {
            file,
            path,
            held: None,
            ident: Ident::new(created),
        })
    }

    /// The path the lock was opened with.
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-path.lock", std::process::id()));
    /// assert_eq!(FileLock::new(&path)?.path(), path);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open lock file, to read or write its contents (a holder's process id, say).
    ///
    /// Lock and unlock through the `FileLock`, not through this `File`, or the `FileLock`'s
    /// idea of what it holds goes wrong. A clone of it (`try_clone`) shares the lock's open
    /// file: a lock taken through the `FileLock` is released by its unlock or drop all the
    /// same.
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    /// use std::io::{Read, Seek, SeekFrom, Write};
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-file.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// let held = lock.guard()?;
    /// let mut f = held.file();
    /// f.set_len(0)?;
    /// write!(f, "{}", std::process::id())?;
    /// f.seek(SeekFrom::Start(0))?;
    /// let mut owner = String::new();
    /// f.read_to_string(&mut owner)?;
    /// assert_eq!(owner, std::process::id().to_string());
    /// # drop(held);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Which lock this `FileLock` holds, if any.
    ///
    /// ```
    /// use gosync::filelock::{FileLock, LockMode};
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-held.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// lock.lock()?;
    /// assert_eq!(lock.held(), Some(LockMode::Exclusive));
    /// lock.unlock()?;
    /// assert_eq!(lock.held(), None);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn held(&self) -> Option<LockMode> {
        self.held
    }

    /// Takes the exclusive lock, blocking the calling thread until no one else holds the
    /// file locked (juju/fslock's `Lock`).
    ///
    /// The thread waits in the kernel and nothing can wake it early: use
    /// [`lock_timeout`](Self::lock_timeout) or [`lock_ctx`](Self::lock_ctx) to bound the wait,
    /// and [`lock_async`](Self::lock_async) from an async task (this would block the
    /// executor's thread).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Deadlock`] if this `FileLock` already holds its lock (see
    /// [Misuse](self#misuse)); an I/O error from the system, naming the path.
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-lock.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// lock.lock()?;
    /// // ... exclusive: no other process, thread or FileLock holds the file ...
    /// lock.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn lock(&mut self) -> io::Result<()> {
        self.acquire(LockMode::Exclusive)
    }

    /// Takes a shared lock, blocking the calling thread while someone holds the exclusive
    /// lock. Any number of shared holders coexist; an exclusive locker waits for all of them.
    ///
    /// As [`lock`](Self::lock), the wait cannot be interrupted.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-shared.lock", std::process::id()));
    /// let (mut a, mut b, mut w) = (FileLock::new(&path)?, FileLock::new(&path)?, FileLock::new(&path)?);
    /// a.lock_shared()?;
    /// b.lock_shared()?; // readers coexist
    /// assert!(!w.try_lock()?); // and keep a writer out
    /// a.unlock()?;
    /// b.unlock()?;
    /// assert!(w.try_lock()?);
    /// # w.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn lock_shared(&mut self) -> io::Result<()> {
        self.acquire(LockMode::Shared)
    }

    /// Takes the exclusive lock if no one else holds the file locked, without waiting:
    /// `Ok(true)` if it is now held, `Ok(false)` if someone else holds it (juju/fslock's
    /// `TryLock`, whose `ErrLocked` is `Ok(false)` here).
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-try.lock", std::process::id()));
    /// let (mut a, mut b) = (FileLock::new(&path)?, FileLock::new(&path)?);
    /// assert!(a.try_lock()?);
    /// assert!(!b.try_lock()?);
    /// a.unlock()?;
    /// assert!(b.try_lock()?);
    /// # b.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_lock(&mut self) -> io::Result<bool> {
        self.try_acquire(LockMode::Exclusive)
    }

    /// Takes a shared lock if no one holds the exclusive lock, without waiting: `Ok(true)` if
    /// it is now held, `Ok(false)` if someone holds the exclusive lock.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-tryshared.lock", std::process::id()));
    /// let (mut a, mut b) = (FileLock::new(&path)?, FileLock::new(&path)?);
    /// assert!(a.try_lock_shared()?);
    /// assert!(b.try_lock_shared()?);
    /// a.unlock()?;
    /// b.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_lock_shared(&mut self) -> io::Result<bool> {
        self.try_acquire(LockMode::Shared)
    }

    /// Takes the exclusive lock, waiting at most about `timeout` (juju/fslock's
    /// `LockWithTimeout`). A zero `timeout` tries once.
    ///
    /// It polls (see [how the bounded forms wait](self#how-the-bounded-and-async-forms-wait)),
    /// so a timed-out call leaves nothing locked and nothing behind; the thread's pauses show
    /// in [`diag::blocked`](crate::diag::blocked) as waits for this lock at the caller.
    ///
    /// # Errors
    ///
    /// An error of kind [`io::ErrorKind::TimedOut`] if the lock was not free within
    /// `timeout` (juju/fslock's `ErrTimeout`), `"filelock: timed out after <timeout> waiting
    /// to lock <path>"`; otherwise as [`lock`](Self::lock).
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-timeout.lock", std::process::id()));
    /// let (mut a, mut b) = (FileLock::new(&path)?, FileLock::new(&path)?);
    /// a.lock()?;
    /// let err = b.lock_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// a.unlock()?;
    /// b.lock_timeout(Duration::from_secs(10))?;
    /// # b.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn lock_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.acquire_timeout(LockMode::Exclusive, timeout)
    }

    /// Takes a shared lock, waiting at most about `timeout`; otherwise as
    /// [`lock_timeout`](Self::lock_timeout).
    ///
    /// # Errors
    ///
    /// As [`lock_timeout`](Self::lock_timeout).
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-stimeout.lock", std::process::id()));
    /// let (mut w, mut r) = (FileLock::new(&path)?, FileLock::new(&path)?);
    /// w.lock()?;
    /// let err = r.lock_shared_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// w.unlock()?;
    /// r.lock_shared_timeout(Duration::from_secs(10))?;
    /// # r.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn lock_shared_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.acquire_timeout(LockMode::Shared, timeout)
    }

    /// Takes the exclusive lock, waiting until it is free or `ctx` is done, whichever comes
    /// first.
    ///
    /// As with [`RawMutex::lock_ctx`](crate::sync::RawMutex::lock_ctx), a context that is
    /// already done fails at once, even if the lock is free. While waiting, the thread sleeps
    /// on the context between tries (see
    /// [how the bounded forms wait](self#how-the-bounded-and-async-forms-wait)), so a
    /// cancellation ends the wait at once; when it fails, nothing is locked.
    ///
    /// From an async task, bound [`lock_async`](Self::lock_async) with
    /// [`Context::run`](crate::context::Context::run) instead.
    ///
    /// # Errors
    ///
    /// [`LockCtxError::Context`] with the context's error if it ended first;
    /// [`LockCtxError::Io`] with the errors of [`lock`](Self::lock).
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    /// use gosync::filelock::FileLock;
    /// use std::time::Duration;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-ctx.lock", std::process::id()));
    /// let (mut a, mut b) = (FileLock::new(&path)?, FileLock::new(&path)?);
    /// a.lock()?;
    /// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(10));
    /// let err = b.lock_ctx(&ctx).unwrap_err();
    /// assert_eq!(err.context(), Some(ContextError::DeadlineExceeded));
    /// a.unlock()?;
    /// b.lock_ctx(&context::background())?;
    /// # b.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn lock_ctx(&mut self, ctx: &Context) -> Result<(), LockCtxError> {
        self.acquire_ctx(LockMode::Exclusive, ctx)
    }

    /// Takes a shared lock, waiting until no one holds the exclusive lock or `ctx` is done;
    /// otherwise as [`lock_ctx`](Self::lock_ctx).
    ///
    /// # Errors
    ///
    /// As [`lock_ctx`](Self::lock_ctx).
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-sctx.lock", std::process::id()));
    /// let (mut w, mut r) = (FileLock::new(&path)?, FileLock::new(&path)?);
    /// w.lock()?;
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// std::thread::spawn(move || cancel.cancel());
    /// let err = r.lock_shared_ctx(&ctx).unwrap_err();
    /// assert_eq!(err.context(), Some(ContextError::Canceled));
    /// assert_eq!(r.held(), None);
    /// # w.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn lock_shared_ctx(&mut self, ctx: &Context) -> Result<(), LockCtxError> {
        self.acquire_ctx(LockMode::Shared, ctx)
    }

    /// Takes the exclusive lock from an async task, on any executor: the future completes
    /// once the lock is held. It polls [`try_lock`](Self::try_lock) and sleeps on the crate's
    /// timer in between (see
    /// [how the async form waits](self#how-the-bounded-and-async-forms-wait)).
    ///
    /// To bound the wait, race it with a context: `ctx.run(lock.lock_async()).await` (see
    /// [`Context::run`](crate::context::Context::run)), which drops it when `ctx` is done.
    ///
    /// # Cancel safety
    ///
    /// The lock is taken only inside the poll that returns it, so a future dropped before it
    /// completes has taken nothing, and dropping it cancels its timer: no thread, timer or
    /// lock attempt outlives it.
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-async.lock", std::process::id()));
    /// # futures::executor::block_on(async {
    /// let mut lock = FileLock::new(&path)?;
    /// lock.lock_async().await?;
    /// lock.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn lock_async(&mut self) -> LockFuture<'_> {
        LockFuture::new(self, LockMode::Exclusive)
    }

    /// Takes a shared lock from an async task; otherwise as [`lock_async`](Self::lock_async).
    ///
    /// # Cancel safety
    ///
    /// As [`lock_async`](Self::lock_async): a dropped future holds nothing and leaves nothing
    /// behind.
    ///
    /// ```
    /// use gosync::filelock::{FileLock, LockMode};
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-sasync.lock", std::process::id()));
    /// # futures::executor::block_on(async {
    /// let mut lock = FileLock::new(&path)?;
    /// lock.lock_shared_async().await?;
    /// assert_eq!(lock.held(), Some(LockMode::Shared));
    /// lock.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn lock_shared_async(&mut self) -> LockFuture<'_> {
        LockFuture::new(self, LockMode::Shared)
    }

    /// Releases the lock this `FileLock` holds, exclusive or shared (juju/fslock's `Unlock`).
    /// The file stays open, so the `FileLock` can lock again, and stays on disk (see
    /// [why the file stays](self#why-the-file-stays)).
    ///
    /// # Errors
    ///
    /// An error of kind [`io::ErrorKind::InvalidInput`] if this `FileLock` holds no lock,
    /// `"filelock: unlock of unlocked file lock <path>"` (juju/fslock also returns an error;
    /// see [Misuse](self#misuse)); an I/O error from the system, naming the path, after which
    /// the lock counts as still held (dropping the `FileLock` closes the file, which releases
    /// it).
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    /// use std::io::ErrorKind;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-unlock.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// lock.lock()?;
    /// lock.unlock()?;
    /// let err = lock.unlock().unwrap_err(); // not held
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// assert!(err.to_string().starts_with("filelock: unlock of unlocked file lock"));
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unlock(&mut self) -> io::Result<()> {
        if self.held.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "filelock: unlock of unlocked file lock {}",
                    self.path.display()
                ),
            ));
        }
        self.file
            .unlock()
            .map_err(|e| path_error("unlock", &self.path, e))?;
        self.held = None;
        Ok(())
    }

    /// Takes the exclusive lock, as [`lock`](Self::lock), and returns a guard that releases it
    /// when dropped. (To guard a lock taken otherwise — by `try_lock`, `lock_timeout`,
    /// `lock_async` — use [`FileLockGuard::adopt`].)
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-guard.lock", std::process::id()));
    /// let (mut a, mut b) = (FileLock::new(&path)?, FileLock::new(&path)?);
    /// {
    ///     let _held = a.guard()?;
    ///     assert!(!b.try_lock()?);
    /// } // released here
    /// assert!(b.try_lock()?);
    /// # b.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn guard(&mut self) -> io::Result<FileLockGuard<'_>> {
        self.lock()?;
        Ok(FileLockGuard { lock: Some(self) })
    }

    /// Takes a shared lock, as [`lock_shared`](Self::lock_shared), and returns a guard that
    /// releases it when dropped.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    ///
    /// ```
    /// use gosync::filelock::{FileLock, LockMode};
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-sguard.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// let held = lock.guard_shared()?;
    /// assert_eq!(held.mode(), LockMode::Shared);
    /// # drop(held);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn guard_shared(&mut self) -> io::Result<FileLockGuard<'_>> {
        self.lock_shared()?;
        Ok(FileLockGuard { lock: Some(self) })
    }

    // ---- the one implementation behind each family of methods ----

    /// The misuse check every lock method starts with.
    fn check_not_held(&self) -> io::Result<()> {
        match self.held {
            None => Ok(()),
            Some(mode) => Err(io::Error::new(
                io::ErrorKind::Deadlock,
                format!(
                    "filelock: lock of {} already held by this FileLock ({})",
                    self.path.display(),
                    match mode {
                        LockMode::Exclusive => "exclusive",
                        LockMode::Shared => "shared",
                    }
                ),
            )),
        }
    }

    #[track_caller]
    fn acquire(&mut self, mode: LockMode) -> io::Result<()> {
        // One system call when the lock is free; a blocking wait is recorded in the registry
        // of waits first, so `diag::blocked` shows a thread held in the kernel.
        if self.try_acquire(mode)? {
            return Ok(());
        }
        let _wait = self.record_wait();
        loop {
            let r = match mode {
                LockMode::Exclusive => self.file.lock(),
                LockMode::Shared => self.file.lock_shared(),
            };
            match r {
                Ok(()) => break,
                // A signal handler installed without SA_RESTART interrupts the wait; it is
                // not an answer, so wait again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(path_error("lock", &self.path, e)),
            }
        }
        self.held = Some(mode);
        Ok(())
    }

    /// Records that the calling thread waits for this lock, until the handle is dropped.
    #[track_caller]
    fn record_wait(&self) -> ThreadWait {
        let origin = Origin::here(WaitKind::FileLock).on(&self.ident);
        ThreadWait::enter(&origin, Some(Instant::now()))
    }

    fn try_acquire(&mut self, mode: LockMode) -> io::Result<bool> {
        self.check_not_held()?;
        let r = match mode {
            LockMode::Exclusive => self.file.try_lock(),
            LockMode::Shared => self.file.try_lock_shared(),
        };
        match r {
            Ok(()) => {
                self.held = Some(mode);
                Ok(true)
            }
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(path_error("lock", &self.path, e)),
        }
    }

    #[track_caller]
    fn acquire_timeout(&mut self, mode: LockMode, timeout: Duration) -> io::Result<()> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            // Past the end of time: a wait without a bound, which the kernel does best.
            return self.acquire(mode);
        };
        let mut backoff = FIRST_BACKOFF;
        loop {
            if self.try_acquire(mode)? {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "filelock: timed out after {timeout:?} waiting to lock {}",
                        self.path.display()
                    ),
                ));
            }
            // The last pause ends at the deadline, so the last try is made there.
            let _wait = self.record_wait();
            std::thread::sleep(backoff.min(deadline - now));
            backoff = next_backoff(backoff);
        }
    }

    #[track_caller]
    fn acquire_ctx(&mut self, mode: LockMode, ctx: &Context) -> Result<(), LockCtxError> {
        self.check_not_held()?;
        if let Some(err) = ctx.err() {
            return Err(self.ctx_error(err));
        }
        let mut backoff = FIRST_BACKOFF;
        loop {
            if self.try_acquire(mode)? {
                return Ok(());
            }
            // Sleeping on the context rather than the clock: a cancel ends the pause.
            if let Some(err) = ctx.wait_timeout(backoff) {
                return Err(self.ctx_error(err));
            }
            backoff = next_backoff(backoff);
        }
    }

    fn ctx_error(&self, err: ContextError) -> LockCtxError {
        LockCtxError::Context {
            err,
            path: self.path.clone(),
        }
    }
}

impl Drop for FileLock {
    /// Releases a held lock; closing the file would too, unless a clone of it
    /// ([`file`](FileLock::file)`.try_clone()`) kept the open file alive.
    fn drop(&mut self) {
        if self.held.is_some() {
            let _ = self.file.unlock();
        }
    }
}

impl fmt::Debug for FileLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLock")
            .field("path", &self.path)
            .field("held", &self.held)
            .finish()
    }
}

/// A held [`FileLock`], released when the guard is dropped (made by [`FileLock::guard`],
/// [`FileLock::guard_shared`] or [`FileLockGuard::adopt`]).
///
/// Dropping the guard ignores an error from the unlock (the lock is then released when the
/// `FileLock` is dropped); call [`unlock`](FileLockGuard::unlock) to see it.
///
/// ```
/// use gosync::filelock::FileLock;
///
/// let path = std::env::temp_dir().join(format!("gosync-doc-{}-guardty.lock", std::process::id()));
/// let mut lock = FileLock::new(&path)?;
/// let held = lock.guard()?;
/// assert_eq!(held.path(), path);
/// held.unlock()?;
/// assert_eq!(lock.held(), None);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct FileLockGuard<'a> {
    /// `None` once [`unlock`](FileLockGuard::unlock) has taken it, so the drop does nothing.
    lock: Option<&'a mut FileLock>,
}

impl<'a> FileLockGuard<'a> {
    /// Guards the lock that `lock` already holds, whichever way it was taken; `None` if it
    /// holds none.
    ///
    /// ```
    /// use gosync::filelock::{FileLock, FileLockGuard};
    /// use std::time::Duration;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-adopt.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// assert!(FileLockGuard::adopt(&mut lock).is_none());
    /// lock.lock_timeout(Duration::from_secs(1))?;
    /// let held = FileLockGuard::adopt(&mut lock).unwrap();
    /// drop(held);
    /// assert_eq!(lock.held(), None);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn adopt(lock: &'a mut FileLock) -> Option<FileLockGuard<'a>> {
        lock.held?;
        Some(FileLockGuard { lock: Some(lock) })
    }

    fn inner(&self) -> &FileLock {
        self.lock.as_deref().expect("a live guard has its lock")
    }

    /// Which lock the guard holds.
    ///
    /// ```
    /// use gosync::filelock::{FileLock, LockMode};
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-gmode.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// assert_eq!(lock.guard()?.mode(), LockMode::Exclusive);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn mode(&self) -> LockMode {
        self.inner().held.expect("a guarded lock is held")
    }

    /// The lock file, to read or write while holding the lock (see [`FileLock::file`]).
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    /// use std::io::Write;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-gfile.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// let held = lock.guard()?;
    /// held.file().write_all(b"busy")?;
    /// # drop(held);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file(&self) -> &File {
        &self.inner().file
    }

    /// The lock's path.
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-gpath.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// assert_eq!(lock.guard()?.path(), path);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner().path
    }

    /// Releases the lock now and reports whether the system did ([`FileLock::unlock`]).
    ///
    /// # Errors
    ///
    /// An I/O error from the system, naming the path.
    ///
    /// ```
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-gunlock.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// lock.guard()?.unlock()?;
    /// assert!(lock.try_lock()?);
    /// # lock.unlock()?;
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unlock(mut self) -> io::Result<()> {
        self.lock
            .take()
            .expect("a live guard has its lock")
            .unlock()
    }
}

impl Drop for FileLockGuard<'_> {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = lock.unlock();
        }
    }
}

impl fmt::Debug for FileLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLockGuard")
            .field("path", &self.path())
            .field("mode", &self.mode())
            .finish()
    }
}

/// The future of [`FileLock::lock_async`] and [`FileLock::lock_shared_async`]: completes with
/// `Ok(())` once the lock is held, or with the error [`FileLock::lock`] would give.
///
/// It is `Send` and `Unpin`, and borrows its `FileLock` mutably until it is done or dropped.
///
/// # Cancel safety
///
/// A pending `LockFuture` holds no lock — it takes the lock only in the poll that completes —
/// and its only other resource is a timer, which dropping it cancels. Nothing keeps trying
/// after it is dropped.
///
/// ```
/// use gosync::filelock::FileLock;
/// use std::future::Future;
/// use std::pin::pin;
/// use std::task::Context;
///
/// let path = std::env::temp_dir().join(format!("gosync-doc-{}-future.lock", std::process::id()));
/// let (mut holder, mut waiter) = (FileLock::new(&path)?, FileLock::new(&path)?);
/// holder.lock()?;
/// {
///     let mut fut = pin!(waiter.lock_async());
///     let mut cx = Context::from_waker(futures::task::noop_waker_ref());
///     assert!(fut.as_mut().poll(&mut cx).is_pending());
/// } // dropped while waiting: nothing held, nothing left trying
/// holder.unlock()?;
/// assert_eq!(waiter.held(), None);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct LockFuture<'a> {
    lock: &'a mut FileLock,
    mode: LockMode,
    /// The pause before the next try.
    backoff: Duration,
    /// The pause under way, between two tries.
    nap: Option<Sleep>,
}

impl<'a> LockFuture<'a> {
    fn new(lock: &'a mut FileLock, mode: LockMode) -> Self {
        LockFuture {
            lock,
            mode,
            backoff: FIRST_BACKOFF,
            nap: None,
        }
    }
}

impl Future for LockFuture<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(nap) = &mut this.nap {
                // A poll during the pause (another wake of the task) does not try early:
                // the backoff is what keeps a waiter cheap.
                if Pin::new(nap).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.nap = None;
            }
            match this.lock.try_acquire(this.mode) {
                Ok(true) => return Poll::Ready(Ok(())),
                Ok(false) => {
                    this.nap = Some(sleep_async(this.backoff));
                    this.backoff = next_backoff(this.backoff);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl fmt::Debug for LockFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFuture")
            .field("path", &self.lock.path)
            .field("mode", &self.mode)
            .field("waiting", &self.nap.is_some())
            .finish()
    }
}

/// Why [`FileLock::lock_ctx`] or [`FileLock::lock_shared_ctx`] did not take the lock.
///
/// It converts into an [`io::Error`] (kind [`io::ErrorKind::TimedOut`] for a deadline,
/// [`io::ErrorKind::Other`] for a cancellation), so `?` works in functions returning
/// `io::Result`.
///
/// ```
/// use gosync::context::{self, ContextError};
/// use gosync::filelock::{FileLock, LockCtxError};
///
/// let path = std::env::temp_dir().join(format!("gosync-doc-{}-ctxerr.lock", std::process::id()));
/// let mut lock = FileLock::new(&path)?;
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// cancel.cancel();
/// let err = lock.lock_ctx(&ctx).unwrap_err();
/// assert!(matches!(err, LockCtxError::Context { err: ContextError::Canceled, .. }));
/// assert!(err.to_string().contains("context canceled"));
/// assert!(err.to_string().contains(&*path.to_string_lossy()));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum LockCtxError {
    /// The context was done before the lock was free; nothing is locked.
    #[error("filelock: lock {}: {err}", .path.display())]
    Context {
        /// The context's error: cancelled, or its deadline passed.
        err: ContextError,
        /// The lock's path.
        path: PathBuf,
    },
    /// Locking failed as [`FileLock::lock`] can (the message names the path).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl LockCtxError {
    /// The context's error, if that is why the lock was not taken.
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    /// use gosync::filelock::FileLock;
    ///
    /// let path = std::env::temp_dir().join(format!("gosync-doc-{}-ctxerrc.lock", std::process::id()));
    /// let mut lock = FileLock::new(&path)?;
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// cancel.cancel();
    /// assert_eq!(lock.lock_ctx(&ctx).unwrap_err().context(), Some(ContextError::Canceled));
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn context(&self) -> Option<ContextError> {
        match self {
            LockCtxError::Context { err, .. } => Some(*err),
            LockCtxError::Io(_) => None,
        }
    }
}

impl From<LockCtxError> for io::Error {
    /// The I/O error itself, or the context's end as an error of kind
    /// [`io::ErrorKind::TimedOut`] (deadline) or [`io::ErrorKind::Other`] (cancelled), with
    /// the same message.
    fn from(e: LockCtxError) -> io::Error {
        match e {
            LockCtxError::Io(e) => e,
            LockCtxError::Context { err, .. } => {
                let kind = if err.is_timeout() {
                    io::ErrorKind::TimedOut
                } else {
                    io::ErrorKind::Other
                };
                io::Error::new(kind, e)
            }
        }
    }
}

/// An I/O error on the lock file: Go's `*PathError` (`op path: err`), keeping the kind.
#[derive(Debug)]
struct PathError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filelock: {} {}: {}",
            self.op,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn path_error(op: &'static str, path: &Path, source: io::Error) -> io::Error {
    io::Error::new(
        source.kind(),
        PathError {
            op,
            path: path.to_path_buf(),
            source,
        },
    )
}
