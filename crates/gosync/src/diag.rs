//! Diagnostics: who waits for what, right now.
//!
//! Every blocking operation of gosync — a contended `lock`, a `Cond` or `WaitGroup` wait, a
//! caller held in `Once::call_once`, a context's `wait`, a channel send or receive, a
//! `select`, an operation on a nil channel, `time::sleep` — is recorded while it waits, from a
//! thread or from an async task. [`blocked`] returns a snapshot of all of them: the
//! operation, the call site (`#[track_caller]`), the primitive (a number and where it was
//! created), the waiter (a thread, or a task), and since when. It is what Go's goroutine dump
//! (`SIGQUIT`, `debug.Stack`) shows for goroutines parked in `sync` and channel operations, as
//! values a test or a watchdog can inspect.
//!
//! A wait counts from the moment the caller queues (or, for channels and the other
//! primitives, leaves the fast path) until the operation returns: a thread spinning again after
//! a wake-up, and a thread or task that has been woken but has not run yet, are listed too. A
//! contended mutex `lock` that takes the lock during its first short spin, before it ever
//! queues, is not listed: recording that spin cost about a fifth of the contended throughput. Recording costs nothing on fast paths (an uncontended lock, a
//! buffered send with room) and no lock or allocation otherwise (see `sema::registry`).
//!
//! ```
//! use gosync::diag;
//! use gosync::sync::Mutex;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let m = Arc::new(Mutex::new(0));
//! let guard = m.lock();
//! let t = {
//!     let m = m.clone();
//!     std::thread::spawn(move || *m.lock() += 1)
//! };
//! // Wait until the thread shows up as blocked on the mutex.
//! let seen = loop {
//!     let b = diag::blocked();
//!     if let Some(w) = b.into_iter().find(|w| w.primitive.kind == diag::PrimitiveKind::Mutex) {
//!         break w;
//!     }
//!     std::thread::sleep(Duration::from_millis(1));
//! };
//! assert_eq!(seen.op, gosync::WaitKind::Mutex);
//! assert!(matches!(seen.waiter, diag::Waiter::Thread { .. }));
//! drop(guard);
//! t.join().unwrap();
//! ```

use std::fmt;
use std::panic::Location;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::sema::registry::{self, Owner};
use crate::WaitKind;

/// What kind of primitive a wait is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrimitiveKind {
    /// [`sync::Mutex`](crate::sync::Mutex) / [`sync::RawMutex`](crate::sync::RawMutex).
    Mutex,
    /// [`sync::RwMutex`](crate::sync::RwMutex) / [`sync::RawRwMutex`](crate::sync::RawRwMutex).
    RwMutex,
    /// [`sync::Cond`](crate::sync::Cond).
    Cond,
    /// [`sync::WaitGroup`](crate::sync::WaitGroup).
    WaitGroup,
    /// [`sync::Once`](crate::sync::Once) (and `OnceValue`, `OnceFunc`).
    Once,
    /// A [`context::Context`](crate::context::Context).
    Context,
    /// A [`chan::Chan`](crate::chan::Chan).
    Chan,
    /// A `select` over several channels (no single primitive: `id` is 0).
    Select,
    /// A nil channel (`id` is 0).
    NilChan,
    /// The clock: `time::sleep` (`id` is 0).
    Timer,
    /// A [`semaphore::Weighted`](crate::semaphore::Weighted).
    Semaphore,
    /// A [`filelock::FileLock`](crate::filelock::FileLock).
    FileLock,
    /// A [`singleflight::Group`](crate::singleflight::Group)'s call for one key.
    Singleflight,
    /// An [`errgroup::TaskGroup`](crate::errgroup::TaskGroup).
    ErrGroup,
}

impl PrimitiveKind {
    fn of(op: WaitKind) -> Self {
        match op {
            WaitKind::Mutex => PrimitiveKind::Mutex,
            WaitKind::RwMutexRead | WaitKind::RwMutexWrite => PrimitiveKind::RwMutex,
            WaitKind::Cond => PrimitiveKind::Cond,
            WaitKind::WaitGroup => PrimitiveKind::WaitGroup,
            WaitKind::Once => PrimitiveKind::Once,
            WaitKind::Context => PrimitiveKind::Context,
            WaitKind::ChanSend | WaitKind::ChanRecv => PrimitiveKind::Chan,
            WaitKind::Select => PrimitiveKind::Select,
            WaitKind::NilChan => PrimitiveKind::NilChan,
            WaitKind::Sleep => PrimitiveKind::Timer,
            WaitKind::Semaphore => PrimitiveKind::Semaphore,
            WaitKind::FileLock => PrimitiveKind::FileLock,
            WaitKind::Singleflight => PrimitiveKind::Singleflight,
            WaitKind::ErrGroup => PrimitiveKind::ErrGroup,
        }
    }
}

/// The primitive a wait is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Primitive {
    /// A number for the primitive, the same for every wait on it while it lives: given on the
    /// first wait for sync primitives and contexts, the channel's address for channels; 0 when
    /// the wait is on no single primitive.
    pub id: u64,
    /// What it is.
    pub kind: PrimitiveKind,
    /// Where it was created (`new` is `#[track_caller]`); `None` for channels, whose 128-byte
    /// budget leaves no room to keep it, and for waits on no single primitive.
    pub created: Option<&'static Location<'static>>,
}

/// Who waits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waiter {
    /// An OS thread.
    Thread {
        /// Its id.
        id: ThreadId,
        /// Its name, if it has one.
        name: Option<String>,
    },
    /// An async task, numbered by its waker (the same number wherever the same task waits,
    /// on executors that keep one waker per task, as tokio does).
    Task {
        /// The task's number.
        id: usize,
    },
}

/// One wait going on: see [`blocked`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Blocked {
    /// The operation.
    pub op: WaitKind,
    /// Where it was called.
    pub site: &'static Location<'static>,
    /// The primitive it waits on.
    pub primitive: Primitive,
    /// Who waits.
    pub waiter: Waiter,
    /// Since when it waits — exactly where the primitive reads the clock anyway (a contended
    /// mutex), otherwise at least since the first snapshot that saw it (`since_exact` false):
    /// recording a wait reads no clock.
    pub since: Instant,
    /// Whether `since` is when the wait began.
    pub since_exact: bool,
}

impl Blocked {
    /// How long it has waited so far (at least, when `since_exact` is false).
    pub fn waited(&self) -> Duration {
        self.since.elapsed()
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.waiter {
            Waiter::Thread { id, name } => match name {
                Some(n) => write!(f, "thread '{n}' ({id:?})")?,
                None => write!(f, "thread {id:?}")?,
            },
            Waiter::Task { id } => write!(f, "task {id:#x}")?,
        }
        write!(f, " waits in {:?} at {}", self.op, self.site)?;
        if self.primitive.id != 0 {
            write!(f, " on {:?} #{}", self.primitive.kind, self.primitive.id)?;
        }
        if let Some(c) = self.primitive.created {
            write!(f, " (created at {c})")?;
        }
        let at_least = if self.since_exact { "" } else { "at least " };
        write!(f, ", for {at_least}{:?}", self.waited())
    }
}

/// Every thread and task waiting in a gosync primitive right now.
///
/// The snapshot is consistent per wait (never a mix of two waits), not across waits: taking it
/// does not stop anyone.
///
/// ```
/// assert!(gosync::diag::blocked().iter().all(|b| b.site.file().ends_with(".rs")));
/// ```
pub fn blocked() -> Vec<Blocked> {
    registry::snapshot()
        .into_iter()
        .map(|(seen, owner)| Blocked {
            op: seen.kind,
            site: seen.site,
            primitive: Primitive {
                id: seen.prim.id,
                kind: PrimitiveKind::of(seen.kind),
                created: seen.prim.created,
            },
            waiter: match owner {
                Owner::Thread(t) => Waiter::Thread {
                    id: t.id(),
                    name: t.name().map(str::to_owned),
                },
                Owner::Task(id) => Waiter::Task { id },
            },
            since: seen.since,
            since_exact: seen.since_exact,
        })
        .collect()
}
