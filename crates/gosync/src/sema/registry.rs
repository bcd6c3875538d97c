//! The registry of every wait: what each blocked thread and task waits for, read by
//! [`diag::blocked`](crate::diag::blocked).
//!
//! # Cost
//!
//! The registry is touched only when a caller really waits, never on a fast path, and then
//! without a lock or an allocation in the steady state: each thread owns one [`Record`] (made
//! and registered on its first wait, unregistered when the thread exits) that its blocking
//! operations fill in and clear, and each async task's waiter carries its own (registered when
//! the waiter is allocated, which the per-thread waiter cache makes rare). Filling a record is
//! a handful of relaxed stores inside a sequence lock; no clock is read — the time a wait began
//! is recorded only where the primitive reads the clock anyway (the mutex, for starvation), and
//! otherwise stamped by the first snapshot that sees the wait.
//!
//! # Consistency
//!
//! A record has one writer at a time (its thread, or whoever polls its task) and any number of
//! readers; a reader retries while the sequence number is odd or changed under it, so a
//! snapshot never mixes two waits. Registered task waiters are reached through raw pointers
//! that stay valid because a waiter unregisters itself (under the registry lock) before its
//! memory goes.

use std::panic::Location;
use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Origin, WaitKind, Waiter};

/// The identity of a primitive, for the registry: a number unique in the process, given on
/// first use, and where the primitive was created.
pub(crate) struct Ident {
    id: AtomicU64,
    created: &'static Location<'static>,
}

impl Ident {
    /// The identity of a primitive created at `created`.
    pub(crate) const fn new(created: &'static Location<'static>) -> Self {
        Ident {
            id: AtomicU64::new(0),
            created,
        }
    }

    /// The primitive's number, given on first call.
    pub(crate) fn prim(&self) -> Prim {
        let mut id = self.id.load(Ordering::Relaxed);
        if id == 0 {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
            id = match self
                .id
                .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => fresh,
                Err(won) => won,
            };
        }
        Prim {
            id,
            created: Some(self.created),
        }
    }
}

impl std::fmt::Debug for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "created at {}", self.created)
    }
}

/// Which primitive a wait is on: its number (0 when there is no single one, as for a
/// `select`), and where it was created, when known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Prim {
    pub(crate) id: u64,
    pub(crate) created: Option<&'static Location<'static>>,
}

/// The instant the `since` stamps count from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn stamp(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64 + 1
}

/// What one wait is, in atomics a snapshot may read while the owner rewrites them.
pub(crate) struct Record {
    /// Even while stable, odd while the owner writes; bumped twice per change.
    seq: AtomicU32,
    /// `WaitKind as u32 + 1`; 0 while not waiting.
    kind: AtomicU32,
    site: AtomicPtr<Location<'static>>,
    prim: AtomicU64,
    created: AtomicPtr<Location<'static>>,
    /// `stamp` of when the wait began; 0 until known (see the module docs).
    since: AtomicU64,
}

/// A consistent read of a [`Record`] that is waiting.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seen {
    pub(crate) kind: WaitKind,
    pub(crate) site: &'static Location<'static>,
    pub(crate) prim: Prim,
    pub(crate) since: Instant,
    /// `false` when `since` is when a snapshot first saw the wait, not when it began.
    pub(crate) since_exact: bool,
}

impl Record {
    pub(crate) const fn new() -> Self {
        Record {
            seq: AtomicU32::new(0),
            kind: AtomicU32::new(0),
            site: AtomicPtr::new(std::ptr::null_mut()),
            prim: AtomicU64::new(0),
            created: AtomicPtr::new(std::ptr::null_mut()),
            since: AtomicU64::new(0),
        }
    }

    fn write(&self, f: impl FnOnce()) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        f();
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The owner begins a wait.
    pub(crate) fn enter(&self, origin: &Origin, since: Option<Instant>) {
        self.write(|| {
            self.kind.store(origin.kind as u32 + 1, Ordering::Relaxed);
            self.site
                .store(origin.location as *const _ as *mut _, Ordering::Relaxed);
            self.prim.store(origin.prim.id, Ordering::Relaxed);
            let created = origin
                .prim
                .created
                .map_or(std::ptr::null_mut(), |l| l as *const _ as *mut _);
            self.created.store(created, Ordering::Relaxed);
            self.since.store(since.map_or(0, stamp), Ordering::Relaxed);
        });
    }

    /// The owner learned when its wait began (it read the clock for its own reasons).
    pub(crate) fn set_since(&self, since: Instant) {
        let _ = self
            .since
            .compare_exchange(0, stamp(since), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The owner's wait is over.
    pub(crate) fn leave(&self) {
        if self.kind.load(Ordering::Relaxed) != 0 {
            self.write(|| self.kind.store(0, Ordering::Relaxed));
        }
    }

    /// What the record says now, if it is waiting; stamps an unknown start with `now`.
    pub(crate) fn read(&self, now: Instant) -> Option<Seen> {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let kind = self.kind.load(Ordering::Relaxed);
            let site = self.site.load(Ordering::Relaxed);
            let prim = self.prim.load(Ordering::Relaxed);
            let created = self.created.load(Ordering::Relaxed);
            let since = self.since.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != s1 {
                continue;
            }
            if kind == 0 || site.is_null() {
                return None;
            }
            let (since, exact) = if since == 0 {
                // Stamp it, unless the owner moved on meanwhile (then the stamp is harmless:
                // the next `enter` overwrites it).
                let _ = self.since.compare_exchange(
                    0,
                    stamp(now),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                (now, false)
            } else {
                (epoch() + Duration::from_nanos(since - 1), true)
            };
            // SAFETY: the pointers were stored from `&'static Location`s (or are null).
            let site: &'static Location<'static> = unsafe { &*site };
            let created = (!created.is_null()).then(|| {
                // SAFETY: as above.
                unsafe { &*created }
            });
            return Some(Seen {
                kind: kind_from(kind - 1),
                site,
                prim: Prim { id: prim, created },
                since,
                since_exact: exact,
            });
        }
    }
}

fn kind_from(k: u32) -> WaitKind {
    WaitKind::ALL
        .iter()
        .copied()
        .find(|w| *w as u32 == k)
        .expect("a stored wait kind")
}

/// A thread's record, shared with the registry.
pub(crate) struct ThreadRecord {
    pub(crate) record: Record,
    pub(crate) thread: std::thread::Thread,
}

/// One registered source of waits.
enum Entry {
    Thread(Arc<ThreadRecord>),
    Task(TaskPtr),
}

/// A registered task waiter; valid while registered (see the module docs).
#[derive(Clone, Copy)]
struct TaskPtr(*const Waiter);

// SAFETY: the pointer is only dereferenced under the registry lock, while the waiter it points
// to is alive (it unregisters under that lock before it is freed), and `Waiter` is `Sync`.
unsafe impl Send for TaskPtr {}

struct Slab {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
}

static REGISTRY: Mutex<Slab> = Mutex::new(Slab {
    entries: Vec::new(),
    free: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Slab> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn insert(entry: Entry) -> usize {
    let mut reg = registry();
    match reg.free.pop() {
        Some(i) => {
            reg.entries[i] = Some(entry);
            i
        }
        None => {
            reg.entries.push(Some(entry));
            reg.entries.len() - 1
        }
    }
}

fn remove(index: usize) {
    let mut reg = registry();
    reg.entries[index] = None;
    reg.free.push(index);
}

/// Registers a task waiter; returns its index, for [`unregister_task`].
pub(crate) fn register_task(waiter: *const Waiter) -> usize {
    insert(Entry::Task(TaskPtr(waiter)))
}

/// Unregisters a task waiter; call before its memory goes.
pub(crate) fn unregister_task(index: usize) {
    remove(index);
}

/// The calling thread's registration: dropped (unregistered) when the thread exits.
struct ThreadSlot {
    rec: Arc<ThreadRecord>,
    index: usize,
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        remove(self.index);
    }
}

thread_local! {
    static THREAD: ThreadSlot = {
        let rec = Arc::new(ThreadRecord {
            record: Record::new(),
            thread: std::thread::current(),
        });
        let index = insert(Entry::Thread(rec.clone()));
        ThreadSlot { rec, index }
    };
}

/// The calling thread's wait, recorded until dropped.
#[must_use = "the wait is recorded until this is dropped"]
pub(crate) struct ThreadWait {
    /// The calling thread's record, owned by its thread-local (no reference count is taken:
    /// this handle is used and dropped on the same thread, inside one operation, so the
    /// thread-local outlives it); null when the thread-local is gone (a wait in a
    /// thread-local's destructor).
    rec: *const ThreadRecord,
}

impl ThreadWait {
    /// Records that the calling thread waits on `origin` (since `since`, if known).
    #[inline]
    pub(crate) fn enter(origin: &Origin, since: Option<Instant>) -> Self {
        let rec = THREAD
            .try_with(|t| Arc::as_ptr(&t.rec))
            .unwrap_or(std::ptr::null());
        let wait = ThreadWait { rec };
        if let Some(r) = wait.record() {
            r.enter(origin, since);
        }
        wait
    }

    fn record(&self) -> Option<&Record> {
        // SAFETY: non-null only while the thread-local that owns the record lives, which is
        // for as long as this handle (see `rec`).
        unsafe { self.rec.as_ref() }.map(|r| &r.record)
    }

    /// The wait began at `since` (known only once the primitive read the clock).
    pub(crate) fn set_since(&self, since: Instant) {
        if let Some(r) = self.record() {
            r.set_since(since);
        }
    }
}

impl Drop for ThreadWait {
    #[inline]
    fn drop(&mut self) {
        if let Some(r) = self.record() {
            r.leave();
        }
    }
}

/// Who waits.
#[derive(Clone, Debug)]
pub(crate) enum Owner {
    Thread(std::thread::Thread),
    /// An async task, identified by its waker's data pointer (the same task gives the same
    /// number wherever it waits, on the executors that share one waker per task).
    Task(usize),
}

/// Every wait going on now.
pub(crate) fn snapshot() -> Vec<(Seen, Owner)> {
    let now = Instant::now();
    let reg = registry();
    let mut out = Vec::new();
    for e in reg.entries.iter().flatten() {
        match e {
            Entry::Thread(t) => {
                if let Some(seen) = t.record.read(now) {
                    out.push((seen, Owner::Thread(t.thread.clone())));
                }
            }
            Entry::Task(p) => {
                // SAFETY: registered, hence alive (see `TaskPtr`).
                let w = unsafe { &*p.0 };
                if let Some(seen) = w.diag.read(now) {
                    out.push((seen, Owner::Task(w.task_id())));
                }
            }
        }
    }
    out
}
