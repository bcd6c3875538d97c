//! A concurrent hash map split into shards, each behind its own read-write lock, as Go's
//! [orcaman/concurrent-map](https://github.com/orcaman/concurrent-map).
//!
//! [`Map<K, V, S>`] keeps `N` ordinary [`HashMap`]s (the *shards*, 32 by default), each inside a
//! gosync [`RwMutex`]. Every key belongs to one shard, chosen from its hash, so operations on keys
//! of different shards never wait for each other, and reads of one shard share its lock.
//!
//! | Go (`cmap`)                          | gosync                                       |
//! |--------------------------------------|----------------------------------------------|
//! | `cmap.New[V]()`, `SHARD_COUNT`       | [`Map::new`], [`Map::with_shards`]           |
//! | `NewWithCustomShardingFunction`      | [`Map::with_hasher`], [`Map::with_shards_and_hasher`] |
//! | `m.Set(k, v)`                        | [`m.set(k, v)`](Map::set) (returns the value it replaced) |
//! | `m.MSet(data)`                       | [`m.set_many(data)`](Map::set_many)          |
//! | `v, ok := m.Get(k)`                  | [`m.get(&k)`](Map::get) → `Option<V>` (a clone), [`m.get_with(&k, f)`](Map::get_with) |
//! | `m.Has(k)`                           | [`m.has(&k)`](Map::has)                      |
//! | `m.Remove(k)`                        | [`m.remove(&k)`](Map::remove) (returns whether it was there) |
//! | `v, ok := m.Pop(k)`                  | [`m.pop(&k)`](Map::pop) → `Option<V>`        |
//! | `m.Upsert(k, v, cb)`                 | [`m.upsert(k, v, cb)`](Map::upsert)          |
//! | `m.SetIfAbsent(k, v)`                | [`m.set_if_absent(k, v)`](Map::set_if_absent) |
//! | `m.RemoveCb(k, cb)`                  | [`m.remove_cb(&k, cb)`](Map::remove_cb)      |
//! | `m.Count()`, `m.IsEmpty()`           | [`m.count()`](Map::count), [`m.is_empty()`](Map::is_empty) |
//! | `m.Keys()`, `m.Items()`              | [`m.keys()`](Map::keys), [`m.items()`](Map::items) |
//! | `for t := range m.IterBuffered()`    | [`for (k, v) in m.iter()`](Map::iter)        |
//! | `m.IterCb(fn)`                       | [`m.for_each(f)`](Map::for_each)             |
//! | `m.Clear()`                          | [`m.clear()`](Map::clear)                    |
//!
//! # Guarantees
//!
//! * Every single-key operation (`set`, `get`, `upsert`, `remove_cb`, ...) is **atomic**: it
//!   runs entirely under its shard's lock, the callback of `upsert` and `remove_cb` included, so
//!   `upsert` is a real read-modify-write and `set_if_absent` has exactly one winner.
//! * Whole-map operations (`count`, `keys`, `items`, `iter`, `for_each`, `retain`, `clear`) visit
//!   the shards **one at a time**, each under its lock: what they see of one shard is a consistent
//!   snapshot of it, but not of the map as a whole — a key moved between shards by a remove and a
//!   set during the walk may be seen twice or not at all, and `count` may be a total that never
//!   existed at any single instant. Go's `cmap` behaves the same way.
//! * `get` returns a clone of the value, because a reference could not outlive the shard lock;
//!   use [`get_with`](Map::get_with) to read in place, or store `Arc<T>` to make clones cheap.
//! * No poisoning: a callback that panics releases the shard lock as it unwinds and leaves the
//!   entry as it was (see each method), as a Go panic would.
//!
//! # Misuse
//!
//! Go's one panic here, using a zero `ConcurrentMap` that `New` did not make ("cmap.ConcurrentMap
//! is not initialized"), cannot happen: there is no uninitialised `Map`. The other misuse, using
//! the map inside one of its own callbacks, deadlocks as in Go (next section).
//!
//! # Callbacks run under the shard lock
//!
//! The callbacks of [`upsert`](Map::upsert), [`remove_cb`](Map::remove_cb),
//! [`get_with`](Map::get_with), [`modify`](Map::modify), [`for_each`](Map::for_each) and
//! [`retain`](Map::retain) run while their shard is locked. **Do not use the same map inside
//! them**: touching a key of the locked shard — which any key may be — deadlocks, exactly as in
//! Go (its `sync.RWMutex` is not reentrant either). gosync's lock is writer-preferring, so even a
//! nested *read* from a read-locked callback can deadlock once a writer queues. Such a wait shows
//! in [`diag::blocked`](crate::diag::blocked) with the call site of the map method: every locking
//! method is `#[track_caller]`.
//!
//! # Threads and tasks
//!
//! Each method takes a shard lock for the duration of one call and never across an `.await`, so
//! there are no `_async` forms: call the methods from async tasks as you would a
//! `std::sync::Mutex` with short critical sections. A task waits only for another call's critical
//! section (keep callbacks short for that reason).
//!
//! # Happens-before
//!
//! In the terminology of the Go memory model, a call that writes a key (`set`, `upsert`,
//! `set_if_absent`, `remove`, `pop`, `remove_cb`, `modify`, `clear`, `retain`) synchronizes before
//! every later call that observes its effect on that key — a `get` that returns the value written,
//! a `has` that reports it, an `iter` that yields it — through the shard's lock: the write unlocks
//! it, the read locks it afterwards. Calls on keys of different shards are not ordered by the map.
//!
//! # Sharding and hashing
//!
//! The shard count is a power of two; [`with_shards`](Map::with_shards) rounds a request up to
//! one (0 counts as 1) and caps it at [`MAX_SHARDS`]. Each shard is aligned to 128 bytes, so two
//! shards never share a cache line (nor an adjacent-line prefetch pair) and a lock taken in one
//! does not slow down readers of its neighbour.
//!
//! A key is **hashed once** per operation, with the map's [`BuildHasher`]; that one hash picks
//! the shard and indexes the shard's table. The shard is taken from the bits just below the top
//! seven. The table (std's `HashMap`, a SwissTable) takes its bucket from the low bits and its
//! per-slot tag from the top seven, so all three come from different bits, and keys that share a
//! shard still spread over the whole table with distinct tags (taking the shard from the very top
//! bits would give every key of a shard nearly the same tag, and turn each probe into a string of
//! false matches).
//!
//! std's `HashMap` has no API to look up by a precomputed hash, so the tables store each key with
//! its hash and hash with a pass-through hasher that just hands that number on. A lookup by `&Q`
//! goes through `Borrow<dyn Lookup<Q>>`: the stored key and a probe holding the caller's hash and
//! `&Q` both answer "my hash, my key as `&Q`", so the table compares them without hashing again.
//! In optimized builds the trait-object calls are resolved statically (the generated code of a
//! `get` on `u64` and `String` keys has no indirect call but `memcmp`). The price is 8 bytes per
//! entry, which also makes a table's growth cheap: it never re-hashes a key. The alternative,
//! hashing once for the shard and again inside it, costs a second full hash per call — most of
//! the time of a `get` with std's default SipHash on small keys.
//!
//! # When to use it
//!
//! Use a `Map` when many threads or tasks read and write *different* keys at once: with `N`
//! shards, `N` writers can proceed in parallel, and readers of a shard share its lock. A
//! `std::sync::Mutex<HashMap>` is simpler and as fast or faster when contention is low, when one
//! key is hot (all its traffic meets in one shard anyway), or when you need operations that are
//! atomic across several keys or a consistent view of the whole map — a single lock gives that,
//! a sharded map cannot.
//!
//! ```
//! use gosync::sharded::Map;
//! use std::sync::Arc;
//!
//! let hits: Arc<Map<String, u64>> = Arc::new(Map::new());
//! let workers: Vec<_> = (0..4)
//!     .map(|w| {
//!         let hits = hits.clone();
//!         std::thread::spawn(move || {
//!             for page in ["/", "/about", &format!("/user/{w}")] {
//!                 hits.upsert(page.to_string(), 1, |_, old, one| old.map_or(one, |n| n + one));
//!             }
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(hits.get("/"), Some(4));
//! assert_eq!(hits.get("/user/2"), Some(1));
//! assert_eq!(hits.count(), 6);
//! ```

use std::borrow::Borrow;
use std::collections::hash_map::{self, RandomState};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::iter::FusedIterator;

use crate::sync::RwMutex;

/// The default number of shards, Go's `cmap.SHARD_COUNT`.
///
/// ```
/// let m: gosync::sharded::Map<u32, u32> = gosync::sharded::Map::new();
/// assert_eq!(m.shard_count(), gosync::sharded::DEFAULT_SHARDS);
/// ```
pub const DEFAULT_SHARDS: usize = 32;

/// The most shards a map can have; larger requests are capped to it.
///
/// ```
/// let m: gosync::sharded::Map<u32, u32> = gosync::sharded::Map::with_shards(usize::MAX);
/// assert_eq!(m.shard_count(), gosync::sharded::MAX_SHARDS);
/// ```
pub const MAX_SHARDS: usize = 1 << 16;

/// The hash bits above the shard bits, left to the shard's table for its slot tags.
const TAG_BITS: u32 = 7;

/// One shard, alone on its cache lines: 128 bytes covers the 64-byte line and the pair of lines
/// that x86 prefetches together, and the 128-byte lines of some ARM cores.
#[repr(align(128))]
struct Shard<K, V>(RwMutex<Table<K, V>>);

/// A shard's table: keys stored with their hash, hashed by passing that hash on.
type Table<K, V> = HashMap<Hashed<K>, V, PassThrough>;

/// A stored key and the hash the map computed for it once, on the way in.
#[derive(Clone)]
struct Hashed<K> {
    hash: u64,
    key: K,
}

impl<K> Hash for Hashed<K> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K: Eq> PartialEq for Hashed<K> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Hashed<K> {}

/// What a table lookup compares: a hash and a key seen as `&Q`. A stored [`Hashed<K>`] answers it
/// through `K: Borrow<Q>`, and so does a [`Probe`] of the caller's `&Q`, so a table of
/// `Hashed<K>` can be searched for a `&Q` with the hash computed once (the trait object is the
/// one type both can borrow as).
trait Lookup<Q: ?Sized> {
    fn hash(&self) -> u64;
    fn key(&self) -> &Q;
}

impl<K: Borrow<Q>, Q: ?Sized> Lookup<Q> for Hashed<K> {
    #[inline]
    fn hash(&self) -> u64 {
        self.hash
    }
    #[inline]
    fn key(&self) -> &Q {
        self.key.borrow()
    }
}

/// The caller's key and its hash, for a lookup.
struct Probe<'q, Q: ?Sized> {
    hash: u64,
    key: &'q Q,
}

impl<Q: ?Sized> Lookup<Q> for Probe<'_, Q> {
    #[inline]
    fn hash(&self) -> u64 {
        self.hash
    }
    #[inline]
    fn key(&self) -> &Q {
        self.key
    }
}

impl<'a, K: Borrow<Q> + 'a, Q: ?Sized + 'a> Borrow<dyn Lookup<Q> + 'a> for Hashed<K> {
    #[inline]
    fn borrow(&self) -> &(dyn Lookup<Q> + 'a) {
        self
    }
}

// Hashes and compares exactly as `Hashed<K>` does, as `Borrow` requires.
impl<Q: ?Sized> Hash for dyn Lookup<Q> + '_ {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(Lookup::hash(self));
    }
}

impl<Q: ?Sized + Eq> PartialEq for dyn Lookup<Q> + '_ {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        Lookup::hash(self) == Lookup::hash(other) && self.key() == other.key()
    }
}

impl<Q: ?Sized + Eq> Eq for dyn Lookup<Q> + '_ {}

/// The tables' hasher: the only thing ever hashed is a stored hash (`write_u64`), handed on as is.
#[derive(Clone, Copy, Default)]
struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    #[inline]
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    // Never called (only `write_u64` is); mixing the bytes keeps it a correct hasher anyway.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

/// A concurrent hash map of `N` shards, each a `HashMap` behind an [`RwMutex`]: Go's
/// `cmap.ConcurrentMap`. See the [module docs](self) for its guarantees, the happens-before
/// edge it provides, and the rule for callbacks (never use the map inside one).
///
/// Share it between threads with an `Arc` (or a `static`, or scoped threads); all methods take
/// `&self`.
///
/// ```
/// use gosync::sharded::Map;
///
/// let m = Map::new();
/// assert_eq!(m.set("elephant", 1), None);
/// assert_eq!(m.set("elephant", 2), Some(1));
/// assert!(m.set_if_absent("monkey", 3));
/// assert!(!m.set_if_absent("monkey", 4));
/// assert_eq!(m.get(&"monkey"), Some(3));
/// assert_eq!(m.pop(&"elephant"), Some(2));
/// assert_eq!(m.count(), 1);
/// ```
pub struct Map<K, V, S = RandomState> {
    shards: Box<[Shard<K, V>]>,
    hasher: S,
    /// Right shift that brings the shard bits (just below the top `TAG_BITS`) to the bottom,
    /// after the tag bits have been shifted out to the left.
    shift: u32,
}

impl<K, V> Map<K, V, RandomState> {
    /// An empty map with [`DEFAULT_SHARDS`] shards and std's default hasher.
    ///
    /// ```
    /// let m: gosync::sharded::Map<String, i32> = gosync::sharded::Map::new();
    /// assert!(m.is_empty());
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        Self::with_shards_and_hasher(DEFAULT_SHARDS, RandomState::new())
    }

    /// An empty map with `n` shards, rounded up to a power of two (0 counts as 1, and more than
    /// [`MAX_SHARDS`] is capped to it).
    ///
    /// More shards mean fewer threads meeting on one lock, at 128 bytes plus an empty `HashMap`
    /// per shard and a longer walk for whole-map operations; a few times the number of threads
    /// that use the map at once is plenty.
    ///
    /// ```
    /// use gosync::sharded::Map;
    ///
    /// assert_eq!(Map::<u8, u8>::with_shards(0).shard_count(), 1);
    /// assert_eq!(Map::<u8, u8>::with_shards(5).shard_count(), 8);
    /// assert_eq!(Map::<u8, u8>::with_shards(64).shard_count(), 64);
    /// ```
    #[track_caller]
    pub fn with_shards(n: usize) -> Self {
        Self::with_shards_and_hasher(n, RandomState::new())
    }
}

impl<K, V, S> Map<K, V, S> {
    /// An empty map with [`DEFAULT_SHARDS`] shards hashing with `hasher` (Go's
    /// `NewWithCustomShardingFunction`, except that the one hash both picks the shard and
    /// indexes the shard's table).
    ///
    /// ```
    /// use gosync::sharded::Map;
    /// use std::hash::{BuildHasherDefault, DefaultHasher};
    ///
    /// let m: Map<u64, &str, BuildHasherDefault<DefaultHasher>> =
    ///     Map::with_hasher(BuildHasherDefault::default());
    /// m.set(7, "seven");
    /// assert_eq!(m.get(&7), Some("seven"));
    /// ```
    #[track_caller]
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_shards_and_hasher(DEFAULT_SHARDS, hasher)
    }

    /// An empty map with `n` shards (rounded as in [`with_shards`](Map::with_shards)) hashing
    /// with `hasher`.
    ///
    /// ```
    /// use gosync::sharded::Map;
    /// use std::collections::hash_map::RandomState;
    ///
    /// let m: Map<u64, u64> = Map::with_shards_and_hasher(3, RandomState::new());
    /// assert_eq!(m.shard_count(), 4);
    /// ```
    #[track_caller]
    pub fn with_shards_and_hasher(n: usize, hasher: S) -> Self {
        let n = n.clamp(1, MAX_SHARDS).next_power_of_two();
        let mut shards = Vec::with_capacity(n);
        // A plain loop, not an iterator closure: `RwMutex::new` records its caller, and
        // `#[track_caller]` reaches through this function but not through a closure, so
        // diagnostics name the line that created the map.
        for _ in 0..n {
            shards.push(Shard(RwMutex::new(Table::default())));
        }
        Map {
            shards: shards.into_boxed_slice(),
            hasher,
            shift: u64::BITS - n.trailing_zeros(),
        }
    }

    /// Removes every entry, one shard at a time (Go's `Clear`): an entry set into an already
    /// cleared shard during the call survives it.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set(1, "one");
    /// m.clear();
    /// assert_eq!(m.count(), 0);
    /// ```
    #[track_caller]
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            // Swap the table out under the lock, drop it after: dropping the values may be
            // slow, or may even use this map. (The shard starts again with no capacity.)
            let old = std::mem::take(&mut *shard.0.write());
            drop(old);
        }
    }

    /// The number of shards (a power of two).
    ///
    /// ```
    /// let m: gosync::sharded::Map<u8, u8> = gosync::sharded::Map::with_shards(16);
    /// assert_eq!(m.shard_count(), 16);
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The map's hasher.
    ///
    /// ```
    /// use std::hash::BuildHasher;
    ///
    /// let m: gosync::sharded::Map<u8, u8> = gosync::sharded::Map::new();
    /// let _ = m.hasher().hash_one(1u8);
    /// ```
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The number of entries, counted shard by shard (Go's `Count`): under concurrent writes,
    /// a total that may never have existed at one instant (see the module docs).
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// for i in 0..100 {
    ///     m.set(i, i * i);
    /// }
    /// assert_eq!(m.count(), 100);
    /// ```
    #[doc(alias = "len")]
    #[track_caller]
    pub fn count(&self) -> usize {
        let mut n = 0;
        for shard in self.shards.iter() {
            n += shard.0.read().len();
        }
        n
    }

    /// Whether the map has no entries, checked shard by shard (Go's `IsEmpty`).
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// assert!(m.is_empty());
    /// m.set("k", ());
    /// assert!(!m.is_empty());
    /// ```
    #[track_caller]
    pub fn is_empty(&self) -> bool {
        for shard in self.shards.iter() {
            if !shard.0.read().is_empty() {
                return false;
            }
        }
        true
    }

    /// Calls `f` on every entry, holding each shard's read lock while it visits that shard
    /// (Go's `IterCb`): the cheapest way to look at everything, with no clone. `f` sees each
    /// shard consistently, but not the map as a whole, and must not use the map.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// for i in 1..=10 {
    ///     m.set(i, i);
    /// }
    /// let mut sum = 0;
    /// m.for_each(|_, v| sum += v);
    /// assert_eq!(sum, 55);
    /// ```
    #[doc(alias = "IterCb")]
    #[track_caller]
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for shard in self.shards.iter() {
            for (k, v) in shard.0.read().iter() {
                f(&k.key, v);
            }
        }
    }

    /// Keeps only the entries for which `f` returns `true`, holding each shard's write lock
    /// while it visits that shard. `f` may change the values it keeps; it must not use the map.
    /// If `f` panics, the entries of the current shard not yet visited stay, as do the other
    /// shards'.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// for i in 0..10 {
    ///     m.set(i, i);
    /// }
    /// m.retain(|_, v| {
    ///     *v *= 10;
    ///     *v < 50
    /// });
    /// assert_eq!(m.count(), 5);
    /// assert_eq!(m.get(&4), Some(40));
    /// ```
    #[track_caller]
    pub fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
        for shard in self.shards.iter() {
            shard.0.write().retain(|k, v| f(&k.key, v));
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Map<K, V, S> {
    /// The shard of a key with this hash: the bits just below the top `TAG_BITS` (see the
    /// module docs for why not the top ones).
    #[inline]
    fn shard(&self, hash: u64) -> &RwMutex<Table<K, V>> {
        // The index has `log2(len)` bits, so it is always in bounds; the bound check is one
        // well-predicted comparison and keeps this free of `unsafe`.
        &self.shards[self.index_of(hash)].0
    }

    /// The index of the shard of a key with this hash.
    #[inline]
    fn index_of(&self, hash: u64) -> usize {
        // `checked_shr`: with one shard the shift is the full 64 bits, and the index is 0.
        (hash << TAG_BITS).checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// `key` with its hash, ready to be stored.
    #[inline]
    fn hashed(&self, key: K) -> Hashed<K> {
        Hashed {
            hash: self.hasher.hash_one(&key),
            key,
        }
    }

    /// Sets the value of `key` (Go's `Set`), returning the value it replaced, if any.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// assert_eq!(m.set("a", 1), None);
    /// assert_eq!(m.set("a", 2), Some(1));
    /// assert_eq!(m.get("a"), Some(2));
    /// ```
    #[track_caller]
    pub fn set(&self, key: K, value: V) -> Option<V> {
        let key = self.hashed(key);
        self.shard(key.hash).write().insert(key, value)
    }

    /// Sets every pair of `items`, each under its own shard's lock (Go's `MSet`): the pairs do
    /// not appear all at once.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set_many([("elephant", 1), ("monkey", 2)]);
    /// assert_eq!(m.count(), 2);
    /// ```
    #[doc(alias = "MSet")]
    #[track_caller]
    pub fn set_many(&self, items: impl IntoIterator<Item = (K, V)>) {
        for (k, v) in items {
            let k = self.hashed(k);
            self.shard(k.hash).write().insert(k, v);
        }
    }

    /// Sets `key` to `value` only if it has no value yet (Go's `SetIfAbsent`); `true` if it did.
    /// Among racing callers for one absent key exactly one gets `true`.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// assert!(m.set_if_absent("k", 1));
    /// assert!(!m.set_if_absent("k", 2));
    /// assert_eq!(m.get("k"), Some(1));
    /// ```
    #[track_caller]
    pub fn set_if_absent(&self, key: K, value: V) -> bool {
        let key = self.hashed(key);
        match self.shard(key.hash).write().entry(key) {
            hash_map::Entry::Occupied(_) => false,
            hash_map::Entry::Vacant(e) => {
                e.insert(value);
                true
            }
        }
    }

    /// Inserts or updates `key` atomically (Go's `Upsert`): calls `f(exists, old, value)` under
    /// the shard's write lock — `old` is the current value, `None` (and `exists` false) if there
    /// is none — and stores what `f` returns. Returns the value it replaced.
    ///
    /// Go's `Upsert` returns the value stored; here it has moved into the map, and handing back a
    /// copy would cost a clone on every call. To learn the new value atomically, copy it out
    /// from inside `f`, as the example does.
    ///
    /// `f` must not use the map (see the module docs). If it panics, the entry stays as it was.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// let mut now = 0;
    /// for _ in 0..3 {
    ///     m.upsert("visits", 1, |exists, old, one| {
    ///         now = if exists { old.unwrap() + one } else { one };
    ///         now
    ///     });
    /// }
    /// assert_eq!(now, 3);
    /// assert_eq!(m.get("visits"), Some(3));
    /// ```
    #[track_caller]
    pub fn upsert(&self, key: K, value: V, f: impl FnOnce(bool, Option<&V>, V) -> V) -> Option<V> {
        let key = self.hashed(key);
        match self.shard(key.hash).write().entry(key) {
            hash_map::Entry::Occupied(mut e) => {
                let new = f(true, Some(e.get()), value);
                Some(e.insert(new))
            }
            hash_map::Entry::Vacant(e) => {
                let new = f(false, None, value);
                e.insert(new);
                None
            }
        }
    }

    /// The probe for a lookup of `key`, and its shard.
    #[inline]
    fn probe<'q, Q: Hash + ?Sized>(&self, key: &'q Q) -> (Probe<'q, Q>, &RwMutex<Table<K, V>>) {
        let hash = self.hasher.hash_one(key);
        (Probe { hash, key }, self.shard(hash))
    }

    /// A clone of the value of `key` (Go's `Get`), or `None`.
    ///
    /// The value is cloned under the shard's read lock; for values that are costly to clone, read
    /// them in place with [`get_with`](Self::get_with) or store them as `Arc<T>`.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set(String::from("elephant"), vec![1, 2]);
    /// assert_eq!(m.get("elephant"), Some(vec![1, 2])); // a `&str` finds a `String` key
    /// assert_eq!(m.get("money"), None);
    /// ```
    #[track_caller]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let (probe, shard) = self.probe(key);
        shard.read().get(&probe as &dyn Lookup<Q>).cloned()
    }

    /// Calls `f` on the value of `key` under the shard's read lock and returns its result, or
    /// `None` if the key has no value. `f` must not use the map.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set(1, String::from("a long text"));
    /// assert_eq!(m.get_with(&1, |s| s.len()), Some(11));
    /// assert_eq!(m.get_with(&2, |s| s.len()), None);
    /// ```
    #[track_caller]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (probe, shard) = self.probe(key);
        shard.read().get(&probe as &dyn Lookup<Q>).map(f)
    }

    /// Calls `f` on the value of `key` under the shard's write lock, letting it change the value
    /// in place, and returns its result; `None` (and `f` is not called) if the key has no value.
    /// `f` must not use the map.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set("list", vec![1]);
    /// assert_eq!(m.modify("list", |v| { v.push(2); v.len() }), Some(2));
    /// assert_eq!(m.get("list"), Some(vec![1, 2]));
    /// ```
    #[track_caller]
    pub fn modify<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (probe, shard) = self.probe(key);
        shard.write().get_mut(&probe as &dyn Lookup<Q>).map(f)
    }

    /// Whether `key` has a value (Go's `Has`).
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// assert!(!m.has("elephant"));
    /// m.set("elephant", ());
    /// assert!(m.has("elephant"));
    /// ```
    #[doc(alias = "contains_key")]
    #[track_caller]
    pub fn has<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (probe, shard) = self.probe(key);
        shard.read().contains_key(&probe as &dyn Lookup<Q>)
    }

    /// Removes `key` (Go's `Remove`); `true` if it had a value. The removed value is dropped
    /// after the shard lock is released.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set("monkey", 1);
    /// assert!(m.remove("monkey"));
    /// assert!(!m.remove("monkey")); // removing a missing key is fine
    /// ```
    #[track_caller]
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (probe, shard) = self.probe(key);
        let old = shard.write().remove_entry(&probe as &dyn Lookup<Q>);
        old.is_some()
    }

    /// Removes `key` and returns its value (Go's `Pop`), or `None` if it had none. Among racing
    /// callers for one key, at most one gets the value.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set("monkey", 1);
    /// assert_eq!(m.pop("monkey"), Some(1));
    /// assert_eq!(m.pop("monkey"), None);
    /// ```
    #[track_caller]
    pub fn pop<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (probe, shard) = self.probe(key);
        shard.write().remove(&probe as &dyn Lookup<Q>)
    }

    /// Decides under the shard's write lock whether to remove `key` (Go's `RemoveCb`): calls
    /// `f(key, value, exists)` with the current value (`None`, `exists` false, if there is none),
    /// removes the entry if `f` returns `true` and it exists, and returns what `f` returned —
    /// even for a missing key, as Go does.
    ///
    /// `f` must not use the map (see the module docs). If it panics, the entry stays.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set("monkey", 1);
    /// m.set("elephant", 2);
    /// let small = |_: &str, v: Option<&i32>, _exists: bool| v.is_some_and(|&v| v < 2);
    /// assert!(m.remove_cb("monkey", small));
    /// assert!(!m.remove_cb("elephant", small));
    /// assert!(!m.remove_cb("horse", small));
    /// assert_eq!(m.keys(), ["elephant"]);
    /// ```
    #[track_caller]
    pub fn remove_cb<Q>(&self, key: &Q, f: impl FnOnce(&Q, Option<&V>, bool) -> bool) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (probe, shard) = self.probe(key);
        let probe = &probe as &dyn Lookup<Q>;
        let mut shard = shard.write();
        let value = shard.get(probe);
        let exists = value.is_some();
        let remove = f(key, value, exists);
        // A second probe (no second hash): std's `HashMap` reaches an entry through an owned
        // key only.
        let old = if remove && exists {
            shard.remove_entry(probe)
        } else {
            None
        };
        drop(shard);
        drop(old);
        remove
    }
}

impl<K: Clone, V, S> Map<K, V, S> {
    /// A copy of every key, gathered shard by shard (Go's `Keys`).
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// for i in 0..100 {
    ///     m.set(i, ());
    /// }
    /// let mut keys = m.keys();
    /// keys.sort();
    /// assert_eq!(keys, (0..100).collect::<Vec<_>>());
    /// ```
    #[track_caller]
    pub fn keys(&self) -> Vec<K> {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.0.read();
            keys.extend(shard.keys().map(|k| k.key.clone()));
        }
        keys
    }
}

impl<K: Clone, V: Clone, S> Map<K, V, S> {
    /// A buffered snapshot of the entries to iterate over (Go's `IterBuffered`): every entry is
    /// copied out now, shard by shard, each shard under its read lock, and the iterator then
    /// yields the copies without touching the map. Writes made after `iter` returns are not seen,
    /// however slowly the iterator is drained.
    ///
    /// Each shard's part is a consistent snapshot of that shard; the whole is not a snapshot of
    /// the map at one instant (see the module docs). Use [`for_each`](Self::for_each) to look at
    /// the entries without copying them.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// for i in 0..10 {
    ///     m.set(i, i * 2);
    /// }
    /// let it = m.iter();
    /// m.set(10, 20); // after the snapshot: not seen
    /// assert_eq!(it.len(), 10);
    /// let mut copied: Vec<(i32, i32)> = it.collect();
    /// copied.sort();
    /// assert_eq!(copied, (0..10).map(|i| (i, i * 2)).collect::<Vec<_>>());
    /// ```
    #[doc(alias = "IterBuffered")]
    #[track_caller]
    pub fn iter(&self) -> Iter<K, V> {
        let mut items = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.0.read();
            items.reserve(shard.len());
            items.extend(shard.iter().map(|(k, v)| (k.key.clone(), v.clone())));
        }
        Iter {
            inner: items.into_iter(),
        }
    }
}

impl<K: Clone + Hash + Eq, V: Clone, S: Clone + BuildHasher> Map<K, V, S> {
    /// A copy of every entry as a `HashMap` with the map's hasher (Go's `Items`), gathered
    /// shard by shard like [`iter`](Self::iter).
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set("a", 1);
    /// m.set("b", 2);
    /// let items = m.items();
    /// assert_eq!(items.len(), 2);
    /// assert_eq!(items["b"], 2);
    /// ```
    #[track_caller]
    pub fn items(&self) -> HashMap<K, V, S> {
        let mut items = HashMap::with_hasher(self.hasher.clone());
        for shard in self.shards.iter() {
            let shard = shard.0.read();
            items.reserve(shard.len());
            items.extend(shard.iter().map(|(k, v)| (k.key.clone(), v.clone())));
        }
        items
    }
}

impl<K, V> Default for Map<K, V, RandomState> {
    /// Same as [`Map::new`].
    ///
    /// ```
    /// let m: gosync::sharded::Map<u8, u8> = Default::default();
    /// assert_eq!(m.shard_count(), 32);
    /// ```
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for Map<K, V, S> {
    /// Prints the entries as a map, shard by shard. A shard that is locked for writing at that
    /// moment is skipped and the output marked `..` (formatting never waits, so a `{:?}` of the
    /// map inside one of its own callbacks cannot deadlock).
    ///
    /// ```
    /// let m = gosync::sharded::Map::with_shards(1);
    /// m.set(1, "one");
    /// assert_eq!(format!("{m:?}"), r#"{1: "one"}"#);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_map();
        let mut skipped = false;
        for shard in self.shards.iter() {
            match shard.0.try_read() {
                Some(shard) => {
                    d.entries(shard.iter().map(|(k, v)| (&k.key, v)));
                }
                None => skipped = true,
            }
        }
        if skipped {
            d.finish_non_exhaustive()
        } else {
            d.finish()
        }
    }
}

impl<K: Clone, V: Clone, S: Clone> Clone for Map<K, V, S> {
    /// A new map with the same shard count, hasher and entries, copied shard by shard.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set(1, 1);
    /// let c = m.clone();
    /// m.set(2, 2);
    /// assert_eq!(c.count(), 1);
    /// ```
    #[track_caller]
    fn clone(&self) -> Self {
        let mut shards = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            let copy = shard.0.read().clone();
            shards.push(Shard(RwMutex::new(copy)));
        }
        Map {
            shards: shards.into_boxed_slice(),
            hasher: self.hasher.clone(),
            shift: self.shift,
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> FromIterator<(K, V)> for Map<K, V, S> {
    /// A map with [`DEFAULT_SHARDS`] shards holding the pairs (a later pair for the same key
    /// wins).
    ///
    /// ```
    /// let m: gosync::sharded::Map<_, _> = (0..5).map(|i| (i, i + 1)).collect();
    /// assert_eq!(m.get(&4), Some(5));
    /// ```
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let m = Map::with_hasher(S::default());
        m.set_many(iter);
        m
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for Map<K, V, S> {
    /// Sets every pair, as [`set_many`](Map::set_many).
    ///
    /// ```
    /// let mut m = gosync::sharded::Map::new();
    /// m.extend([(1, 'a'), (2, 'b')]);
    /// assert_eq!(m.count(), 2);
    /// ```
    #[track_caller]
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        // `&mut self`: no other thread can hold a shard lock, so go straight to the tables.
        for (k, v) in iter {
            let k = self.hashed(k);
            let i = self.index_of(k.hash);
            self.shards[i].0.get_mut().insert(k, v);
        }
    }
}

impl<K, V, S> IntoIterator for Map<K, V, S> {
    type Item = (K, V);
    type IntoIter = Iter<K, V>;

    /// Consumes the map, yielding its entries without cloning them.
    ///
    /// ```
    /// let m = gosync::sharded::Map::new();
    /// m.set("a", String::from("x"));
    /// let all: Vec<(&str, String)> = m.into_iter().collect();
    /// assert_eq!(all, [("a", String::from("x"))]);
    /// ```
    fn into_iter(self) -> Iter<K, V> {
        let mut items = Vec::new();
        for shard in self.shards.into_vec() {
            items.extend(shard.0.into_inner().into_iter().map(|(k, v)| (k.key, v)));
        }
        Iter {
            inner: items.into_iter(),
        }
    }
}

/// The iterator of [`Map::iter`] and [`Map::into_iter`]: the entries copied out of the map
/// (or moved out of it), yielded without touching the map again.
///
/// ```
/// let m = gosync::sharded::Map::new();
/// m.set(1, 'a');
/// let mut it: gosync::sharded::Iter<i32, char> = m.iter();
/// assert_eq!(it.next(), Some((1, 'a')));
/// assert_eq!(it.next(), None);
/// ```
pub struct Iter<K, V> {
    inner: std::vec::IntoIter<(K, V)>,
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Iter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.inner.as_slice()).finish()
    }
}

impl<K, V> Iterator for Iter<K, V> {
    type Item = (K, V);

    #[inline]
    fn next(&mut self) -> Option<(K, V)> {
        self.inner.next()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> ExactSizeIterator for Iter<K, V> {}
impl<K, V> FusedIterator for Iter<K, V> {}
