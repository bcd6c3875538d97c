//! Go's `sync.Pool`: [`Pool`] and its guard [`PoolGuard`].
//!
//! This module is private (its items are re-exported from `gosync::sync`), so the guarantees,
//! the Go mapping and the design notes live in the docs of [`Pool`], where users see them.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use crate::loom::{spin_loop, thread, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

/// The creation closure of a pool.
type NewFn<T> = dyn Fn() -> T + Send + Sync;
/// The keep predicate of a pool.
type KeepFn<T> = dyn Fn(&T) -> bool + Send + Sync;

/// A set of reusable objects that threads and tasks share, as Go's `sync.Pool`, with a bound
/// and a keep predicate.
///
/// `Pool<T>` keeps objects that are expensive to create (buffers, encoders, scratch vectors)
/// so that the next [`get`](Pool::get) can reuse one instead of allocating. `get` hands out a
/// retained object if there is one and otherwise calls the pool's `new` closure;
/// [`put`](Pool::put) gives an object back. As in Go, a pool is a cache, not a free list with
/// guarantees: `get` may call `new` while another thread is putting an object back, and `put`
/// drops its object when the pool is full or the keep predicate rejects it. Callers must not
/// rely on getting back the object they put.
///
/// | Go                                      | gosync                                          |
/// |-----------------------------------------|-------------------------------------------------|
/// | `p := sync.Pool{New: func() any {...}}` | [`Pool::new(\|\| ...)`](Pool::new), [`Pool::default`] |
/// | `x := p.Get().(*T)`                     | [`p.get()`](Pool::get) → `T` (no type assertion) |
/// | `p.Get()` on a pool without `New` (nil) | [`p.try_get()`](Pool::try_get) → `Option<T>`    |
/// | `defer p.Put(x)`                        | [`p.get_guard()`](Pool::get_guard) (puts back on drop) |
/// | `p.Put(x)`                              | [`p.put(x)`](Pool::put)                         |
/// | the GC emptying the pool                | [`p.clear()`](Pool::clear)                      |
/// | `if cap(b) > 64<<10 { return }` before `Put` | [`Pool::with_keep`]                        |
/// | —                                       | [`Pool::with_max_retained`], [`p.len()`](Pool::len) |
///
/// # No garbage collector: what a pool retains
///
/// Go's pool is emptied by the garbage collector (objects survive at most two GC cycles). Rust
/// has no GC, so here **objects stay in the pool until they are taken by `get`, dropped by
/// [`clear`](Pool::clear), or dropped with the pool**. Two knobs decide what gets in, so that
/// this does not turn into a leak:
///
/// * [`with_max_retained(n)`](Pool::with_max_retained): the pool never holds more than `n`
///   objects; a `put` beyond that drops its object. The default is unbounded, which retains at
///   most as many objects as were ever out at the same time (every retained object was once
///   handed out and given back).
/// * [`with_keep(pred)`](Pool::with_keep): `put` runs `pred(&obj)` first and drops the object
///   when it returns `false`.
///
/// The keep predicate is the lesson of [go#23199](https://github.com/golang/go/issues/23199):
/// a pool of variable-size buffers (`fmt`'s printer, `encoding/json`'s encoder state) pins
/// memory at the size of the *largest* request ever served. One huge request grows a buffer to
/// megabytes, it goes back to the pool, and from then on every small request carries it — and
/// because the pool keeps it warm, nothing ever frees it. Go's fix is a check before `Put` that
/// drops buffers whose capacity grew past 64 KiB; here that check belongs to the pool:
///
/// ```
/// use gosync::sync::Pool;
///
/// let pool = Pool::new(|| Vec::<u8>::with_capacity(4096))
///     .with_max_retained(64)
///     .with_keep(|b: &Vec<u8>| b.capacity() <= 64 << 10);
///
/// let mut big = pool.get();
/// big.resize(1 << 20, 0); // one huge request
/// big.clear();
/// pool.put(big); // dropped: it grew past 64 KiB
/// assert_eq!(pool.len(), 0);
///
/// pool.put(Vec::with_capacity(4096)); // kept
/// assert_eq!(pool.len(), 1);
/// ```
///
/// Objects are given back as they are: reset them (`clear()` a buffer) before `put`, or right
/// after `get`.
///
/// # Happens-before
///
/// In the terminology of the Go memory model, a call to `put(x)` synchronizes before a call to
/// `get` (or `try_get`) returning that same `x`: everything the putting thread wrote into `x`
/// is visible to the getting thread without further synchronization.
///
/// # Design: a sharded set of small stacks
///
/// Go gives each P (scheduler processor) a private slot and a shared list, and `Get` steals
/// from other Ps when its own is empty. gosync keeps that shape with **shards**: each pool owns
/// a power-of-two number of shards (four per available CPU, between 4 and 256; fewer when the
/// bound is small), each a LIFO stack of objects behind its own lock, on its own cache line.
/// Each thread gets a small *thread index* (reused when threads exit, so live threads have
/// distinct indices) and works on shard `index mod shards`: with no more threads than shards,
/// every thread has a shard to itself, its lock is never contended, and a `get` + `put` pair
/// on one thread touches only that shard's cache line, with no shared counter. When the home shard is empty (`get`) or full or busy (`put`), the
/// call visits the other shards, skipping those whose published length shows they cannot help,
/// so no object is stranded on a shard whose thread went away.
///
/// The alternative — a `thread_local!` cache per thread keyed by pool id — saves the lock, but
/// objects would then live outside the pool: dropping the pool could not reach objects cached
/// by other threads, and a thread that exits would need a hook to hand its cache back. Here
/// every retained object always belongs to the pool itself, so **dropping the pool drops every
/// retained object exactly once**, and a thread exiting leaves nothing behind (it never held
/// anything; its shard stays with the pool and other threads steal from it).
///
/// The bound is split across the shards exactly (shard `i` may hold `n / shards` objects, plus
/// one for the first `n % shards` shards), so the total never exceeds `n` without a global
/// counter that every `put` would have to touch. A `put` that finds its home shard full tries
/// the others before dropping its object, so the whole bound is usable from one thread.
///
/// Locks here are short, never held while user code runs (`new`, the keep predicate and `T`'s
/// `drop` all run outside them) and never poison: a panic in any of them leaves the pool usable.
/// There are no `_async` forms: nothing in a pool waits for anything but another call's few
/// instructions of critical section, so async tasks call `get` and `put` directly.
///
/// # Cost
///
/// On a thread's own shard, `get` is one CAS to lock, a `Vec` pop, a relaxed store of the
/// length and a release store to unlock; `put` is the same with a push, after the keep
/// predicate. So a `get` + `put` pair costs two atomic read-modify-writes, both on a cache line
/// no other thread uses. (Go's per-P private slot needs none, because Go can pin a goroutine to
/// its P; a thread cannot be pinned to a shard, so the lock stays, always uncontended.) Only
/// when the own shard is empty, full or busy does a call look at the other shards, reading
/// their lengths before trying their locks.
///
/// `Pool<T>` is `Send + Sync` when `T: Send`; share it by reference, in an `Arc`, or in a
/// `static` (through `std::sync::LazyLock`).
///
/// # Example
///
/// ```
/// use gosync::sync::Pool;
/// use std::sync::Arc;
///
/// let pool = Arc::new(Pool::new(|| String::with_capacity(256)));
/// let handles: Vec<_> = (0..4)
///     .map(|i| {
///         let pool = pool.clone();
///         std::thread::spawn(move || {
///             let mut s = pool.get();
///             s.clear();
///             s.push_str(&format!("worker {i}"));
///             let len = s.len();
///             pool.put(s);
///             len
///         })
///     })
///     .collect();
/// for h in handles {
///     assert_eq!(h.join().unwrap(), 8);
/// }
/// assert!(pool.len() <= 4);
/// ```
pub struct Pool<T> {
    shards: Box<[Shard<T>]>,
    /// `shards.len() - 1`; the shard count is a power of two.
    mask: usize,
    max_retained: usize,
    new: Box<NewFn<T>>,
    keep: Option<Box<KeepFn<T>>>,
}

/// One stack of retained objects behind a one-word lock, on a cache line of its own so that
/// threads working on neighbouring shards do not share a line.
///
/// The lock is a bare flag rather than a `std::sync::Mutex`: taking it is one CAS and releasing
/// it one release store (a plain store on x86), where a futex mutex pays an atomic swap to
/// release; a `get` + `put` pair is then two atomic read-modify-writes in all. Critical sections
/// are a `Vec` push or pop — no user code, no allocation but `Vec` growth — so a waiter (only on
/// the rare fallback paths) spins briefly and then yields.
#[repr(align(128))]
struct Shard<T> {
    /// Whether a thread holds this shard.
    locked: AtomicBool,
    /// The stack's length, published after every change under the lock: other threads read it
    /// without locking to skip shards that are empty (for `get`) or full (for `put`), and
    /// `Pool::len` sums it.
    len: AtomicUsize,
    /// How many objects this shard may hold: its part of the pool's bound.
    cap: usize,
    /// Touched only through a [`ShardGuard`], i.e. with `locked` held.
    items: UnsafeCell<Vec<T>>,
}

// SAFETY: `items` is only reached through a `ShardGuard`, which exists only while its thread
// holds `locked` (taken with an acquire CAS, released with a release store), so accesses from
// different threads never overlap and each sees the previous holder's writes. Objects move
// between threads through it, hence `T: Send`.
unsafe impl<T: Send> Sync for Shard<T> {}

impl<T> Shard<T> {
    fn new(cap: usize) -> Self {
        Shard {
            locked: AtomicBool::new(false),
            len: AtomicUsize::new(0),
            cap,
            items: UnsafeCell::new(Vec::new()),
        }
    }

    /// Locks the stack if nobody holds it; `None` means it is busy.
    #[inline]
    fn try_lock(&self) -> Option<ShardGuard<'_, T>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| ShardGuard { shard: self })
    }

    /// Locks the stack, waiting for the holder's few instructions if it is busy.
    fn lock(&self) -> ShardGuard<'_, T> {
        let mut spins = 0u32;
        loop {
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            // Wait on a plain load, so waiting does not bounce the line between caches.
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    spins += 1;
                    spin_loop();
                } else {
                    // The holder may have been preempted: let it run.
                    thread::yield_now();
                }
            }
        }
    }
}

/// Proof that this thread holds a shard's lock; releases it when dropped (also when unwinding,
/// although nothing that can panic runs under it: no poisoning either way).
struct ShardGuard<'a, T> {
    shard: &'a Shard<T>,
}

impl<T> ShardGuard<'_, T> {
    #[inline]
    fn with<R>(&mut self, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        // SAFETY: this guard exists only while this thread holds `locked` (see `Shard`'s `Sync`
        // impl), and `&mut self` keeps this the only reference made through the guard.
        self.shard.items.with_mut(|items| f(unsafe { &mut *items }))
    }

    /// Pops an object and publishes the new length.
    #[inline]
    fn pop(&mut self) -> Option<T> {
        let len = &self.shard.len;
        self.with(|items| {
            let t = items.pop()?;
            len.store(items.len(), Ordering::Relaxed);
            Some(t)
        })
    }

    /// Pushes `t` if the shard has room and publishes the new length; gives `t` back if not.
    #[inline]
    fn push(&mut self, t: T) -> Result<(), T> {
        let (len, cap) = (&self.shard.len, self.shard.cap);
        self.with(|items| {
            if items.len() >= cap {
                return Err(t);
            }
            items.push(t);
            len.store(items.len(), Ordering::Relaxed);
            Ok(())
        })
    }

    /// Takes every object out, for the caller to drop after releasing the lock.
    fn take_all(&mut self) -> Vec<T> {
        let len = &self.shard.len;
        self.with(|items| {
            len.store(0, Ordering::Relaxed);
            std::mem::take(items)
        })
    }
}

impl<T> Drop for ShardGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.shard.locked.store(false, Ordering::Release);
    }
}

/// How many shards a pool has when its bound does not call for fewer: four per available CPU,
/// rounded up to a power of two, between 4 and 256. Computed once: `available_parallelism` may
/// read cgroup files.
fn default_shards() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        cpus.saturating_mul(4).next_power_of_two().clamp(4, 256)
    })
}

/// Builds the shards for a bound of `max` objects: never more shards than objects (so every
/// shard can hold at least one), and the bound split exactly across them.
fn make_shards<T>(max: usize) -> Box<[Shard<T>]> {
    let mut n = default_shards();
    if max < n {
        // The largest power of two not above `max` (one shard for a bound of 0 or 1).
        n = if max <= 1 { 1 } else { 1 << max.ilog2() };
    }
    (0..n)
        .map(|i| {
            let cap = if max == usize::MAX {
                usize::MAX
            } else {
                max / n + usize::from(i < max % n)
            };
            Shard::new(cap)
        })
        .collect()
}

/// Small per-thread indices, reused after a thread exits so that the live threads keep distinct
/// indices (and so distinct shards, up to the shard count) however many threads come and go.
mod thread_index {
    use std::cell::Cell;
    // Plain std on purpose, loom or not: these are statics, and the index only spreads
    // threads over shards (any value is correct).
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

    struct Slot(usize);

    impl Drop for Slot {
        fn drop(&mut self) {
            FREE.lock().unwrap_or_else(|p| p.into_inner()).push(self.0);
        }
    }

    thread_local! {
        static SLOT: Slot = {
            let reused = FREE.lock().unwrap_or_else(|p| p.into_inner()).pop();
            Slot(reused.unwrap_or_else(|| NEXT.fetch_add(1, Ordering::Relaxed)))
        };
        /// A copy of `SLOT`'s index without the lazy-initialisation check of `SLOT` itself
        /// (`usize::MAX` until the first call on this thread).
        static CACHED: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    /// This thread's index. During thread teardown, after the slot is gone, falls back to 0:
    /// any shard is correct, the index only spreads threads out.
    #[inline]
    pub(super) fn get() -> usize {
        let cached = CACHED.try_with(Cell::get).unwrap_or(0);
        if cached != usize::MAX {
            return cached;
        }
        let index = SLOT.try_with(|s| s.0).unwrap_or(0);
        let _ = CACHED.try_with(|c| c.set(index));
        index
    }
}

impl<T> Pool<T> {
    /// Creates an empty, unbounded pool whose [`get`](Self::get) calls `new` when it has no
    /// object to hand out, as Go's `sync.Pool{New: ...}`.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| Vec::<u8>::with_capacity(1024));
    /// let buf = pool.get(); // the pool is empty: calls `new`
    /// assert!(buf.capacity() >= 1024);
    /// pool.put(buf);
    /// assert_eq!(pool.len(), 1);
    /// ```
    pub fn new<F>(new: F) -> Self
    where
        F: Fn() -> T + Send + Sync + 'static,
    {
        let shards = make_shards(usize::MAX);
        Pool {
            mask: shards.len() - 1,
            shards,
            max_retained: usize::MAX,
            new: Box::new(new),
            keep: None,
        }
    }

    /// Bounds the pool to at most `n` retained objects: a [`put`](Self::put) that finds the
    /// pool full drops its object. `0` makes a pool that retains nothing. Objects already in the
    /// pool beyond the new bound are dropped.
    ///
    /// The bound is exact for the pool as a whole: it is split across the pool's shards, and a
    /// `put` whose own shard is full tries the others before dropping its object.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| 0u64).with_max_retained(2);
    /// for i in 0..10 {
    ///     pool.put(i);
    /// }
    /// assert_eq!(pool.len(), 2);
    /// assert_eq!(pool.max_retained(), 2);
    /// ```
    #[must_use]
    pub fn with_max_retained(mut self, n: usize) -> Self {
        let old = std::mem::replace(&mut self.shards, make_shards(n));
        self.mask = self.shards.len() - 1;
        self.max_retained = n;
        let mut dropped = Vec::new();
        for shard in old.into_vec() {
            let items = shard.lock().take_all();
            for t in items {
                if let Err(t) = self.store(t) {
                    dropped.push(t);
                }
            }
        }
        drop(dropped);
        self
    }

    /// Makes [`put`](Self::put) run `keep(&obj)` before storing `obj`, and drop the object when
    /// it returns `false` — e.g. buffers whose capacity grew past 64 KiB (the lesson of
    /// [go#23199](https://github.com/golang/go/issues/23199); see the
    /// [`Pool`] docs). Objects already in the pool are not re-checked.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(Vec::<u8>::new).with_keep(|b: &Vec<u8>| b.capacity() <= 64 << 10);
    /// pool.put(Vec::with_capacity(1 << 20)); // dropped
    /// pool.put(Vec::with_capacity(1 << 10)); // kept
    /// assert_eq!(pool.len(), 1);
    /// ```
    #[must_use]
    pub fn with_keep<K>(mut self, keep: K) -> Self
    where
        K: Fn(&T) -> bool + Send + Sync + 'static,
    {
        self.keep = Some(Box::new(keep));
        self
    }

    /// The bound set by [`with_max_retained`](Self::with_max_retained) (`usize::MAX` when
    /// unbounded).
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// assert_eq!(Pool::new(|| 0).max_retained(), usize::MAX);
    /// assert_eq!(Pool::new(|| 0).with_max_retained(8).max_retained(), 8);
    /// ```
    pub fn max_retained(&self) -> usize {
        self.max_retained
    }

    /// Takes a retained object if there is one, and otherwise returns a new one from the
    /// pool's `new` closure, as Go's `Get`.
    ///
    /// Which retained object comes back is unspecified; on one thread it is usually the one
    /// this thread put last (each shard is a stack, so caches stay warm). While other threads
    /// use the pool, `get` may miss an object that is being put back at that instant and call
    /// `new`. The object is handed over as it was put: reset it if it must start clean.
    ///
    /// A `put(x)` synchronizes before the `get` that returns `x`.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| String::from("new"));
    /// assert_eq!(pool.get(), "new");
    /// pool.put(String::from("reused"));
    /// assert_eq!(pool.get(), "reused");
    /// ```
    #[inline]
    pub fn get(&self) -> T {
        match self.take() {
            Some(t) => t,
            None => (self.new)(),
        }
    }

    /// Takes a retained object if there is one, without calling `new` — Go's `Get` on a pool
    /// with no `New` function, which returns nil when empty.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| 0);
    /// assert_eq!(pool.try_get(), None);
    /// pool.put(7);
    /// assert_eq!(pool.try_get(), Some(7));
    /// ```
    #[inline]
    pub fn try_get(&self) -> Option<T> {
        self.take()
    }

    /// Like [`get`](Self::get), but wrapped in a guard that puts the object back when dropped
    /// (through [`put`](Self::put), so the bound and the keep predicate apply) — Go's
    /// `x := p.Get(); defer p.Put(x)`.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(Vec::<u8>::new);
    /// {
    ///     let mut buf = pool.get_guard();
    ///     buf.extend_from_slice(b"hello");
    ///     assert_eq!(&buf[..], b"hello");
    /// } // back in the pool
    /// assert_eq!(pool.len(), 1);
    /// assert_eq!(pool.get(), b"hello");
    /// ```
    #[inline]
    pub fn get_guard(&self) -> PoolGuard<'_, T> {
        PoolGuard {
            pool: self,
            value: Some(self.get()),
        }
    }

    /// Gives `x` back to the pool for reuse, as Go's `Put`.
    ///
    /// The keep predicate (see [`with_keep`](Self::with_keep)) runs first; `x` is dropped when
    /// it rejects `x` or when the pool already retains
    /// [`max_retained`](Self::max_retained) objects. `x` may belong to this pool or not: any
    /// `T` will do. A `put(x)` synchronizes before the `get` that returns `x`.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| 0).with_max_retained(1);
    /// pool.put(1);
    /// pool.put(2); // the pool is full: dropped
    /// assert_eq!(pool.len(), 1);
    /// ```
    #[inline]
    pub fn put(&self, x: T) {
        if let Some(keep) = &self.keep {
            if !keep(&x) {
                return; // `x` is dropped here, outside any lock
            }
        }
        // A rejected object is dropped here too, after `store` released every lock.
        let _ = self.store(x);
    }

    /// Drops every retained object — what Go's garbage collector does to a pool. Objects handed
    /// out are not affected, and the pool remains usable.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| 0);
    /// pool.put(1);
    /// pool.put(2);
    /// pool.clear();
    /// assert!(pool.is_empty());
    /// assert_eq!(pool.get(), 0); // new
    /// ```
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let items = shard.lock().take_all();
            drop(items); // outside the lock: `T::drop` is user code
        }
    }

    /// How many objects the pool retains. Approximate while other threads use the pool (the
    /// shards are counted one after another, without locking).
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| 0);
    /// assert_eq!(pool.len(), 0);
    /// pool.put(1);
    /// assert_eq!(pool.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.len.load(Ordering::Relaxed))
            .fold(0, usize::saturating_add)
    }

    /// Whether the pool retains no object (approximate, as [`len`](Self::len)).
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| 0);
    /// assert!(pool.is_empty());
    /// pool.put(1);
    /// assert!(!pool.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The home shard of the calling thread.
    #[inline]
    fn home(&self) -> usize {
        thread_index::get() & self.mask
    }

    /// Pops a retained object: from the home shard first, then from the others.
    fn take(&self) -> Option<T> {
        let home = self.home();
        let shard = &self.shards[home];
        let mut home_busy = false;
        // The fast path: an uncontended lock of this thread's own shard.
        match shard.try_lock() {
            Some(mut guard) => {
                if let Some(t) = guard.pop() {
                    return Some(t);
                }
            }
            None => home_busy = true,
        }
        self.take_slow(home, home_busy)
    }

    #[cold]
    fn take_slow(&self, home: usize, home_busy: bool) -> Option<T> {
        // Steal from the other shards, skipping those that look empty, and busy ones for now.
        let mut busy = home_busy.then_some(home);
        for i in 1..self.shards.len() {
            let index = (home + i) & self.mask;
            let shard = &self.shards[index];
            if shard.len.load(Ordering::Relaxed) == 0 {
                continue;
            }
            match shard.try_lock() {
                Some(mut guard) => {
                    if let Some(t) = guard.pop() {
                        return Some(t);
                    }
                }
                None => {
                    busy.get_or_insert(index);
                }
            }
        }
        // A shard that holds objects was busy (its holder is in a critical section of a few
        // instructions): a short wait beats creating an object the pool has. The home shard
        // comes first: a thread sharing our index is the likely holder.
        let shard = &self.shards[busy?];
        if shard.len.load(Ordering::Relaxed) != 0 {
            return shard.lock().pop();
        }
        None
    }

    /// Pushes `t` if some shard has room: the home shard first, then the others. Gives `t`
    /// back when the pool is full, so that the caller drops it outside every lock.
    fn store(&self, t: T) -> Result<(), T> {
        let home = self.home();
        let shard = &self.shards[home];
        // The fast path: an uncontended lock of this thread's own shard, with room.
        let (t, home_busy) = match shard.try_lock() {
            Some(mut guard) => match guard.push(t) {
                Ok(()) => return Ok(()),
                Err(t) => (t, false),
            },
            None => (t, true),
        };
        self.store_slow(home, home_busy, t)
    }

    #[cold]
    fn store_slow(&self, home: usize, home_busy: bool, mut t: T) -> Result<(), T> {
        // Other shards with room, skipping those that look full, and busy ones for now.
        let mut busy = home_busy.then_some(home);
        for i in 1..self.shards.len() {
            let index = (home + i) & self.mask;
            let shard = &self.shards[index];
            if shard.len.load(Ordering::Relaxed) >= shard.cap {
                continue;
            }
            match shard.try_lock() {
                Some(mut guard) => match guard.push(t) {
                    Ok(()) => return Ok(()),
                    Err(back) => t = back,
                },
                None => {
                    busy.get_or_insert(index);
                }
            }
        }
        // A shard with room was busy: wait the few instructions for it rather than drop an
        // object the pool has room for (the home shard first, as in `take_slow`).
        match busy {
            Some(index) => self.shards[index].lock().push(t),
            None => Err(t),
        }
    }
}

impl<T: Default + 'static> Default for Pool<T> {
    /// A pool whose `new` is `T::default`.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool: Pool<Vec<u8>> = Pool::default();
    /// assert!(pool.get().is_empty());
    /// ```
    fn default() -> Self {
        Pool::new(T::default)
    }
}

impl<T> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("len", &self.len())
            .field("max_retained", &self.max_retained)
            .field("shards", &self.shards.len())
            .field("keep", &self.keep.is_some())
            .finish_non_exhaustive()
    }
}

/// An object taken from a [`Pool`] that goes back to it when the guard is dropped, returned by
/// [`Pool::get_guard`]. Dereferences to the object.
///
/// Going back uses [`Pool::put`], so the pool's bound and keep predicate apply. To keep the
/// object instead, take it out with [`into_inner`](Self::into_inner).
///
/// ```
/// use gosync::sync::Pool;
///
/// let pool = Pool::new(String::new);
/// let mut s = pool.get_guard();
/// s.push_str("scratch");
/// assert_eq!(s.len(), 7);
/// drop(s);
/// assert_eq!(pool.len(), 1);
/// ```
#[must_use = "dropping the guard at once puts the object straight back"]
pub struct PoolGuard<'a, T> {
    pool: &'a Pool<T>,
    /// Always `Some` until `drop` or `into_inner` takes it.
    value: Option<T>,
}

impl<T> PoolGuard<'_, T> {
    /// Takes the object out of the guard; it will not go back to the pool.
    ///
    /// ```
    /// use gosync::sync::Pool;
    ///
    /// let pool = Pool::new(|| 5);
    /// let n = pool.get_guard().into_inner();
    /// assert_eq!(n, 5);
    /// assert!(pool.is_empty());
    /// ```
    pub fn into_inner(mut self) -> T {
        self.value
            .take()
            .expect("PoolGuard holds its object until dropped")
    }
}

impl<T> Deref for PoolGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.value
            .as_ref()
            .expect("PoolGuard holds its object until dropped")
    }
}

impl<T> DerefMut for PoolGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_mut()
            .expect("PoolGuard holds its object until dropped")
    }
}

impl<T> Drop for PoolGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(t) = self.value.take() {
            self.pool.put(t);
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for PoolGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PoolGuard").field(&self.value).finish()
    }
}
