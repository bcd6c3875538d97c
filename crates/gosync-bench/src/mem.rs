//! Family `mem`: the memory-reuse and shared-map primitives — gosync's `sync::Pool` and
//! `sharded::Map` — against the Rust crates that do the same job (`lockfree-object-pool`;
//! `dashmap`, `scc`, `papaya`) and against Go's `sync.Pool` and `sync.Map`
//! (`bench/go/mem/main.go`, which measures the same cases the same way).
//!
//! * `pool_uncontended`: get + put of a `Vec<u8>` of capacity 4096 on one thread, ns/op. The
//!   pool's `new` allocates such a vector, so only the first get of a measurement allocates.
//! * `pool_contended`: 4 threads each looping get + put on one shared pool, Mops/s and fairness.
//! * `sharded_map_90`, `sharded_map_99`: a `u64 -> u64` map over the keys `0..100_000`,
//!   prefilled with the 50,000 even keys; N threads each loop random operations drawn from a
//!   per-thread xorshift — 90% get / 5% insert / 5% remove, and 99% / 0.5% / 0.5% — Mops/s and
//!   fairness. Inserts and removes are equally likely, so the map stays about half full.
//!
//! Threads are OS threads (Go: goroutines, GOMAXPROCS = CPUs, shown under the thread columns
//! as in family `sync`). There are no async rows: none of these primitives waits, so a task
//! calls them as a thread does.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::go::GoProgram;
use crate::measure::{ns_per_op, threads_contended, Contender};
use crate::stats::{Better, Sample};
use crate::{Config, Table};

/// One line for `--list`.
pub const ABOUT: &str = "sync::Pool and sharded::Map against lockfree-object-pool, dashmap, scc, papaya and Go's sync.Pool / sync.Map";

/// Case keys and what they measure, for `--list` and `--case`.
pub const CASES: &[(&str, &str)] = &[
    (
        "pool_uncontended",
        "get + put of a Vec<u8> (capacity 4096) on one thread, ns/op",
    ),
    (
        "pool_contended",
        "4 threads looping get + put on one pool, Mops/s and fairness",
    ),
    (
        "sharded_map_90",
        "u64 map, 100k keys half full, 90% get / 5% insert / 5% remove, 1, 2, 4, 8 threads, Mops/s",
    ),
    (
        "sharded_map_99",
        "u64 map, 100k keys half full, 99% get / 0.5% insert / 0.5% remove, 1, 2, 4, 8 threads, Mops/s",
    ),
];

const FAMILY: &str = "mem";

/// Capacity of the pooled buffers.
const BUF_CAP: usize = 4096;
/// Threads (goroutines) of the contended pool case.
const POOL_THREADS: usize = 4;
/// Key space of the map cases: keys are `0..KEYS`.
const KEYS: u64 = 100_000;
/// Thread counts of the map cases.
const MAP_THREADS: [usize; 4] = [1, 2, 4, 8];
/// Thread counts of the map cases in quick mode.
const MAP_THREADS_QUICK: [usize; 2] = [1, 4];
/// The map mixes: table key, share of gets in per mille (inserts and removes split the rest
/// equally), and the mix in words.
const MIXES: [(&str, u64, &str); 2] = [
    ("sharded_map_90", 900, "90% get / 5% insert / 5% remove"),
    ("sharded_map_99", 990, "99% get / 0.5% insert / 0.5% remove"),
];

/// Runs the selected `mem` cases.
pub fn run(cfg: &Config) -> Vec<Table> {
    let go_cases = [
        "pool_uncontended",
        "pool_contended",
        "sharded_map_90",
        "sharded_map_99",
    ];
    let (go, go_note) = if go_cases.iter().any(|c| cfg.wants(c)) {
        match GoProgram::build(cfg, FAMILY) {
            Ok(g) => (Some(g), None),
            Err(note) => (None, Some(note)),
        }
    } else {
        (None, None)
    };
    let go = go.as_ref();

    let mut tables = Vec::new();
    if cfg.wants("pool_uncontended") {
        tables.push(pool_uncontended(cfg, go));
    }
    if cfg.wants("pool_contended") {
        tables.push(pool_contended(cfg, go));
    }
    for (key, get_permille, mix) in MIXES {
        if cfg.wants(key) {
            tables.push(sharded_map(cfg, go, key, get_permille, mix));
        }
    }
    if let Some(note) = go_note {
        for t in tables.iter_mut().filter(|t| go_cases.contains(&t.key)) {
            t.note(note.clone());
        }
    }
    tables
}

/// The settings these cases run with. In quick mode their measurements are shortened (a
/// third of the ns/op time, half of the contended time) and the map cases run 1 and 4 threads
/// only, so that the four cases together stay within about 8 s; quick numbers are only a
/// check that the cases run.
fn budget(cfg: &Config) -> Config {
    let mut c = cfg.clone();
    if c.quick {
        c.op_duration /= 3;
        c.duration /= 2;
    }
    c
}

/// The note of a table measured with [`budget`] in quick mode.
fn quick_note(t: &mut Table, cfg: &Config) {
    if cfg.quick {
        t.note(format!(
            "quick: these cases run shorter measurements than the header says ({} ms per contended measurement, >= {} ms per ns/op measurement)",
            cfg.duration.as_millis(),
            cfg.op_duration.as_millis()
        ));
    }
}

fn go_row<'a>(
    go: Option<&'a GoProgram>,
    cfg: &Config,
    name: &str,
    args: &[&str],
) -> Option<Contender<'a>> {
    go.map(|g| g.contender(name, args, cfg))
}

// ---------------------------------------------------------------------------------------
// Object pools, behind a small trait so that one generic loop measures them all. `cycle` is
// the operation: take a buffer, let the optimiser believe it was used, give it back empty.

/// A pool of `Vec<u8>` buffers.
trait BufPool: Sync {
    fn create() -> Self;
    fn cycle(&self);
}

impl BufPool for gosync::sync::Pool<Vec<u8>> {
    fn create() -> Self {
        gosync::sync::Pool::new(|| Vec::with_capacity(BUF_CAP))
    }
    #[inline]
    fn cycle(&self) {
        let mut buf = self.get();
        black_box(&mut buf);
        buf.clear();
        self.put(buf);
    }
}

impl BufPool for lockfree_object_pool::LinearObjectPool<Vec<u8>> {
    fn create() -> Self {
        // The reset closure runs when the guard returns the buffer: the same `clear` as above.
        lockfree_object_pool::LinearObjectPool::new(|| Vec::with_capacity(BUF_CAP), Vec::clear)
    }
    #[inline]
    fn cycle(&self) {
        let mut buf = self.pull();
        black_box(&mut *buf);
    }
}

fn pool_ns<P: BufPool>(cfg: &Config) -> Option<Sample> {
    let pool = P::create();
    Some(ns_per_op(cfg.op_duration, |n| {
        for _ in 0..n {
            black_box(&pool).cycle();
        }
    }))
}

fn pool_threads<P: BufPool>(cfg: &Config, threads: usize) -> Option<Sample> {
    let pool = P::create();
    Some(threads_contended(threads, cfg.duration, |_, stop| {
        let mut ops = 0u64;
        while !stop.load(Ordering::Relaxed) {
            pool.cycle();
            ops += 1;
        }
        ops
    }))
}

/// How each pool row does get + put, for the notes.
const POOL_NOTE: &str = "gosync: get(), clear(), put(buf); lockfree-object-pool: LinearObjectPool (the crate's fastest, per its README) pull() and drop the guard, whose reset closure clears the buffer; go: Get().(*[]byte), truncate to length 0, Put — a *[]byte, so that Put does not allocate";

fn pool_uncontended(cfg: &Config, go: Option<&GoProgram>) -> Table {
    let cfg = &budget(cfg);
    let mut t = Table::new(
        FAMILY,
        "pool_uncontended",
        format!("Pool, one thread: get + put of a Vec<u8> of capacity {BUF_CAP} (the pool's new allocates one)"),
        "ns/op",
        Better::Lower,
        &["1 thread"],
    );
    let mut rows = vec![
        Contender::subject("gosync::sync::Pool", || {
            pool_ns::<gosync::sync::Pool<Vec<u8>>>(cfg)
        }),
        Contender::anchor("lockfree_object_pool::LinearObjectPool", || {
            pool_ns::<lockfree_object_pool::LinearObjectPool<Vec<u8>>>(cfg)
        }),
    ];
    rows.extend(go_row(go, cfg, "go sync.Pool", &["-case=pool_uncontended"]));
    t.measure(cfg, 0, "pool uncontended", rows);
    t.note(POOL_NOTE);
    quick_note(&mut t, cfg);
    t
}

fn pool_contended(cfg: &Config, go: Option<&GoProgram>) -> Table {
    let cfg = &budget(cfg);
    let mut t = Table::new(
        FAMILY,
        "pool_contended",
        format!(
            "Pool, {POOL_THREADS} threads each looping get + put of a Vec<u8> of capacity {BUF_CAP} on one pool for {} ms",
            cfg.duration.as_millis()
        ),
        "Mops/s",
        Better::Higher,
        &[&format!("{POOL_THREADS} threads")],
    );
    let threads = format!("-threads={POOL_THREADS}");
    let mut rows = vec![
        Contender::subject("gosync::sync::Pool", || {
            pool_threads::<gosync::sync::Pool<Vec<u8>>>(cfg, POOL_THREADS)
        }),
        Contender::anchor("lockfree_object_pool::LinearObjectPool", || {
            pool_threads::<lockfree_object_pool::LinearObjectPool<Vec<u8>>>(cfg, POOL_THREADS)
        }),
    ];
    rows.extend(go_row(
        go,
        cfg,
        "go sync.Pool",
        &["-case=pool_contended", &threads],
    ));
    t.measure(cfg, 0, "pool contended", rows);
    t.note(POOL_NOTE);
    t.note("go: goroutines, GOMAXPROCS = number of CPUs, under the thread column");
    quick_note(&mut t, cfg);
    t
}

// ---------------------------------------------------------------------------------------
// Concurrent maps, behind a small trait so that one generic loop measures them all.

/// A concurrent `u64 -> u64` map.
trait ConcMap: Sync {
    fn create() -> Self;
    /// Whether `key` is present (the value is read, not only the presence).
    fn get(&self, key: u64) -> bool;
    /// Inserts or overwrites.
    fn insert(&self, key: u64, value: u64);
    fn remove(&self, key: u64);
}

impl ConcMap for gosync::sharded::Map<u64, u64> {
    fn create() -> Self {
        gosync::sharded::Map::new()
    }
    #[inline]
    fn get(&self, key: u64) -> bool {
        black_box(gosync::sharded::Map::get(self, &key)).is_some()
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        black_box(self.set(key, value));
    }
    #[inline]
    fn remove(&self, key: u64) {
        black_box(gosync::sharded::Map::remove(self, &key));
    }
}

impl ConcMap for dashmap::DashMap<u64, u64> {
    fn create() -> Self {
        dashmap::DashMap::new()
    }
    #[inline]
    fn get(&self, key: u64) -> bool {
        black_box(dashmap::DashMap::get(self, &key).map(|v| *v)).is_some()
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        black_box(dashmap::DashMap::insert(self, key, value));
    }
    #[inline]
    fn remove(&self, key: u64) {
        black_box(dashmap::DashMap::remove(self, &key));
    }
}

impl ConcMap for scc::HashMap<u64, u64> {
    fn create() -> Self {
        scc::HashMap::new()
    }
    #[inline]
    fn get(&self, key: u64) -> bool {
        black_box(self.read_sync(&key, |_, v| *v)).is_some()
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        // `upsert`, not `insert_sync`, which leaves a present key alone: every row overwrites.
        black_box(self.upsert_sync(key, value));
    }
    #[inline]
    fn remove(&self, key: u64) {
        black_box(self.remove_sync(&key));
    }
}

impl ConcMap for papaya::HashMap<u64, u64> {
    fn create() -> Self {
        papaya::HashMap::new()
    }
    #[inline]
    fn get(&self, key: u64) -> bool {
        black_box(self.pin().get(&key).copied()).is_some()
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        black_box(self.pin().insert(key, value).copied());
    }
    #[inline]
    fn remove(&self, key: u64) {
        black_box(self.pin().remove(&key).copied());
    }
}

/// A per-thread xorshift64 generator (Marsaglia), seeded from the thread id; Go's side uses
/// the same generator and seeds.
struct XorShift(u64);

impl XorShift {
    fn new(id: usize) -> Self {
        // Distinct, never zero (the generator's one fixed point).
        XorShift((id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    #[inline]
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A map of type `M` holding the even keys of `0..KEYS`.
fn prefilled<M: ConcMap>() -> M {
    let m = M::create();
    for k in (0..KEYS).step_by(2) {
        m.insert(k, k);
    }
    m
}

/// One thread's loop: each operation draws a key (high half of one draw) and an operation
/// (low half, per mille) until `stop` is set; returns the operation count.
fn map_worker<M: ConcMap>(m: &M, id: usize, stop: &AtomicBool, get_permille: u64) -> u64 {
    let insert_below = get_permille + (1000 - get_permille) / 2;
    let mut rng = XorShift::new(id);
    let (mut ops, mut hits) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let r = rng.next();
        let key = (r >> 32) % KEYS;
        let op = (r & 0xffff_ffff) % 1000;
        if op < get_permille {
            hits += u64::from(m.get(key));
        } else if op < insert_below {
            m.insert(key, r);
        } else {
            m.remove(key);
        }
        ops += 1;
    }
    black_box(hits);
    ops
}

fn map_threads<M: ConcMap>(cfg: &Config, threads: usize, get_permille: u64) -> Option<Sample> {
    let m = prefilled::<M>();
    let sample = threads_contended(threads, cfg.duration, |id, stop| {
        map_worker(&m, id, stop, get_permille)
    });
    // Dropping 50,000 entries is not part of the measurement either.
    drop(m);
    Some(sample)
}

fn sharded_map(
    cfg: &Config,
    go: Option<&GoProgram>,
    key: &'static str,
    get_permille: u64,
    mix: &str,
) -> Table {
    let quick = cfg.quick;
    let cfg = &budget(cfg);
    let counts: &[usize] = if quick {
        &MAP_THREADS_QUICK
    } else {
        &MAP_THREADS
    };
    let columns: Vec<String> = counts
        .iter()
        .map(|&n| format!("{n} thread{}", if n == 1 { "" } else { "s" }))
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut t = Table::new(
        FAMILY,
        key,
        format!(
            "Concurrent u64 -> u64 map, {mix}: N threads each looping random operations on keys 0..{KEYS} (prefilled with the {} even keys) for {} ms",
            KEYS / 2,
            cfg.duration.as_millis()
        ),
        "Mops/s",
        Better::Higher,
        &columns,
    );
    let label = format!("sharded map {mix}");
    let get_arg = format!("-get={get_permille}");
    for (col, &n) in counts.iter().enumerate() {
        let threads = format!("-threads={n}");
        let mut rows = vec![
            Contender::subject("gosync::sharded::Map", move || {
                map_threads::<gosync::sharded::Map<u64, u64>>(cfg, n, get_permille)
            }),
            Contender::anchor("dashmap::DashMap", move || {
                map_threads::<dashmap::DashMap<u64, u64>>(cfg, n, get_permille)
            }),
            Contender::anchor("scc::HashMap", move || {
                map_threads::<scc::HashMap<u64, u64>>(cfg, n, get_permille)
            }),
            Contender::anchor("papaya::HashMap", move || {
                map_threads::<papaya::HashMap<u64, u64>>(cfg, n, get_permille)
            }),
        ];
        rows.extend(go_row(
            go,
            cfg,
            "go sync.Map",
            &["-case=sharded_map", &threads, &get_arg],
        ));
        t.measure(cfg, col, &label, rows);
    }
    t.note("gosync: get(&k) (a copy of the value), set(k, v), remove(&k), 32 shards behind gosync RwMutexes; dashmap 6: get (guard, value copied), insert, remove, default shard count (4 x CPUs, power of two); scc: read_sync, upsert_sync (overwrites, as every row does), remove_sync; papaya: pin() per operation, then get / insert / remove; go: sync.Map Load / Store / Delete (uint64 keys and values boxed in interfaces: values above 255 allocate)");
    t.note("hashers: every Rust row uses std's RandomState (SipHash-1-3), each map's default; Go's sync.Map uses the runtime's own hash (no choice)");
    t.note("operations: one xorshift64 draw each, key = high 32 bits mod 100000, operation = low 32 bits mod 1000 against the get share; the same generator and seeds (per thread id) in Go. Prefill and drop of the map are outside the timed window");
    t.note("versions: dashmap 6 (the current stable line; 7.0 is still a release candidate), scc 3, papaya 0.2: all three build and run. go: the sync.Map of the `go` on PATH — before Go 1.24 a read-only map plus a mutex-guarded dirty map that takes every store of a new key, from 1.24 a concurrent hash-trie");
    t.note("go: goroutines, GOMAXPROCS = number of CPUs, under the thread columns");
    if quick {
        t.note(format!(
            "quick: {} threads only (full run: {})",
            counts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" and "),
            MAP_THREADS
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    quick_note(&mut t, cfg);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_map<M: ConcMap>() {
        let m = prefilled::<M>();
        assert!(m.get(0));
        assert!(!m.get(1));
        m.insert(1, 7);
        assert!(m.get(1));
        m.remove(1);
        assert!(!m.get(1));
        m.remove(0);
        assert!(!m.get(0));
        assert!(m.get(KEYS - 2));
    }

    #[test]
    fn maps_behave_alike() {
        check_map::<gosync::sharded::Map<u64, u64>>();
        check_map::<dashmap::DashMap<u64, u64>>();
        check_map::<scc::HashMap<u64, u64>>();
        check_map::<papaya::HashMap<u64, u64>>();
    }

    #[test]
    fn xorshift_is_seeded_per_thread() {
        let (mut a, mut b) = (XorShift::new(0), XorShift::new(1));
        let (x, y) = (a.next(), b.next());
        assert_ne!(x, 0);
        assert_ne!(x, y);
        assert_ne!(a.next(), x);
    }

    #[test]
    fn pools_cycle() {
        let p = <gosync::sync::Pool<Vec<u8>> as BufPool>::create();
        p.cycle();
        p.cycle();
        assert_eq!(p.len(), 1);
        let l = <lockfree_object_pool::LinearObjectPool<Vec<u8>> as BufPool>::create();
        l.cycle();
        assert!(l.pull().capacity() >= BUF_CAP);
    }
}
