//! Tests for `gosync::sharded::Map`.
//!
//! * orcaman/concurrent-map's `concurrent_map_test.go`, written afresh for the Rust API: each
//!   operation's semantics (missing keys, `RemoveCb` on present / refused / missing keys, `Pop`
//!   twice, `Upsert` on present and absent keys, buffered iteration as a snapshot that later
//!   writes do not change, `Keys` while removing, two writers each reading back what they set);
//! * sharding: the shard-count rounding, keys of different shards never waiting for each other
//!   while keys of one shard do (and that wait showing in `diag::blocked` at the caller's line),
//!   one shard and an all-colliding hasher still giving a correct map;
//! * atomicity under contention: `upsert` increments never lost, exactly one `set_if_absent`
//!   winner and one `pop` / `remove_cb` taker per key, conservation of inserts minus removals
//!   over overlapping keys, disjoint writers ending with exact contents, `count` never going
//!   backwards while only inserts happen;
//! * a model check: random operations from one thread applied to the map and to a
//!   `std::sync::Mutex<HashMap>`, every result compared, for several shard counts and hashers;
//! * no poisoning: a panicking callback leaves the entry as it was and the map usable;
//! * threads and async tasks (tokio and `futures` pools) on one map.

#[cfg(not(loom))]
mod support;

#[cfg(not(loom))]
mod std_tests {
    use std::cell::RefCell;
    use std::collections::hash_map::RandomState;
    use std::collections::{HashMap, HashSet};
    use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Barrier, Mutex};
    use std::thread;

    use gosync::sharded::{Map, DEFAULT_SHARDS, MAX_SHARDS};
    use gosync::WaitKind;

    use super::support::{eventually, within, LIVENESS};

    #[derive(Clone, Debug, PartialEq, Eq, Default)]
    struct Animal {
        name: String,
    }

    fn animal(name: &str) -> Animal {
        Animal {
            name: name.to_string(),
        }
    }

    /// A map of `"0"..="{n-1}"` to animals of the same name, as Go's tests build.
    fn hundred(n: usize) -> Map<String, Animal> {
        let m = Map::new();
        for i in 0..n {
            m.set(i.to_string(), animal(&i.to_string()));
        }
        m
    }

    /// A hasher whose hash of an integer key is the integer itself, so a test can choose the
    /// shard of a key: with `2^b` shards, key `i << (57 - b)` lands in shard `i`.
    #[derive(Default)]
    struct Identity(u64);

    impl Hasher for Identity {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(b);
            }
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }

    type IdentityState = BuildHasherDefault<Identity>;

    /// A hasher that gives every key the same hash: one shard, one probe chain.
    #[derive(Default)]
    struct Constant;

    impl Hasher for Constant {
        fn finish(&self) -> u64 {
            0x5eed
        }
        fn write(&mut self, _: &[u8]) {}
    }

    /// Quiets the expected panics of the callback tests; any other panic still prints.
    fn quiet(f: impl FnOnce()) -> Result<(), Box<dyn std::any::Any + Send>> {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let default = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                let expected = info
                    .payload()
                    .downcast_ref::<&str>()
                    .is_some_and(|s| s.starts_with("callback boom"));
                if !expected {
                    default(info);
                }
            }));
        });
        panic::catch_unwind(AssertUnwindSafe(f))
    }

    /// A small deterministic PRNG (xorshift64*), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    // ----- orcaman/concurrent-map's tests ---------------------------------------------------

    /// TestMapCreation.
    #[test]
    fn creation() {
        let m: Map<String, String> = Map::new();
        assert_eq!(m.count(), 0);
        assert!(m.is_empty());
        assert_eq!(m.shard_count(), DEFAULT_SHARDS);
        assert_eq!(DEFAULT_SHARDS, 32);
    }

    /// TestInsert.
    #[test]
    fn insert() {
        let m = Map::new();
        assert_eq!(m.set("elephant", animal("elephant")), None);
        assert_eq!(m.set("monkey", animal("monkey")), None);
        assert_eq!(m.count(), 2);
        // Setting again replaces, and hands back the old value.
        assert_eq!(m.set("monkey", animal("gorilla")), Some(animal("monkey")));
        assert_eq!(m.count(), 2);
        assert_eq!(m.get("monkey"), Some(animal("gorilla")));
    }

    /// TestInsertAbsent.
    #[test]
    fn insert_absent() {
        let m = Map::new();
        assert!(m.set_if_absent("elephant", animal("elephant")));
        assert!(!m.set_if_absent("elephant", animal("monkey")));
        assert_eq!(m.get("elephant"), Some(animal("elephant")));
    }

    /// TestGet.
    #[test]
    fn get() {
        let m: Map<String, Animal> = Map::new();
        assert_eq!(m.get("Money"), None);
        m.set("elephant".to_string(), animal("elephant"));
        assert_eq!(m.get("elephant"), Some(animal("elephant")));
        assert_eq!(m.get_with("elephant", |a| a.name.len()), Some(8));
        assert_eq!(m.get_with("Money", |a| a.name.len()), None);
    }

    /// TestHas.
    #[test]
    fn has() {
        let m = Map::new();
        assert!(!m.has("Money"));
        m.set("elephant", animal("elephant"));
        assert!(m.has("elephant"));
    }

    /// TestRemove.
    #[test]
    fn remove() {
        let m = Map::new();
        m.set("monkey", animal("monkey"));
        assert!(m.remove("monkey"));
        assert_eq!(m.count(), 0);
        assert_eq!(m.get("monkey"), None);
        // Removing a key that is not there is fine.
        assert!(!m.remove("noone"));
    }

    /// TestRemoveCb: the callback sees the key, the current value and whether it exists; the
    /// entry goes only if the callback says so; the callback's answer is returned even for a
    /// missing key, and a missing key is not created.
    #[test]
    fn remove_cb() {
        let m = Map::new();
        m.set("monkey".to_string(), animal("monkey"));
        m.set("elephant".to_string(), animal("elephant"));

        let seen: RefCell<Option<(String, Option<Animal>, bool)>> = RefCell::new(None);
        let cb = |key: &str, val: Option<&Animal>, exists: bool| {
            *seen.borrow_mut() = Some((key.to_string(), val.cloned(), exists));
            val.is_some_and(|a| a.name == "monkey")
        };

        assert!(m.remove_cb("monkey", cb));
        assert_eq!(
            seen.take(),
            Some(("monkey".into(), Some(animal("monkey")), true))
        );
        assert!(!m.has("monkey"));

        assert!(!m.remove_cb("elephant", cb));
        assert_eq!(
            seen.take(),
            Some(("elephant".into(), Some(animal("elephant")), true))
        );
        assert!(m.has("elephant"));

        assert!(!m.remove_cb("horse", cb));
        assert_eq!(seen.take(), Some(("horse".into(), None, false)));
        assert!(!m.has("horse"));

        // Go returns the callback's answer even when there was nothing to remove.
        assert!(m.remove_cb("horse", |_, _, _| true));
        assert!(!m.has("horse"));
        assert_eq!(m.count(), 1);
    }

    /// TestPop.
    #[test]
    fn pop() {
        let m = Map::new();
        m.set("monkey", animal("monkey"));
        assert_eq!(m.pop("monkey"), Some(animal("monkey")));
        assert_eq!(m.pop("monkey"), None);
        assert_eq!(m.count(), 0);
        assert_eq!(m.get("monkey"), None);
    }

    /// TestCount.
    #[test]
    fn count() {
        assert_eq!(hundred(100).count(), 100);
    }

    /// TestIsEmpty.
    #[test]
    fn is_empty() {
        let m = Map::new();
        assert!(m.is_empty());
        m.set("elephant", animal("elephant"));
        assert!(!m.is_empty());
    }

    /// TestIterator and TestBufferedIterator: every entry once, with its value.
    #[test]
    fn iterator() {
        let m = hundred(100);
        let mut seen = HashSet::new();
        for (k, v) in m.iter() {
            assert_eq!(k, v.name);
            assert!(seen.insert(k));
        }
        assert_eq!(seen.len(), 100);
        assert_eq!(m.iter().len(), 100);
    }

    /// TestClear.
    #[test]
    fn clear() {
        let m = hundred(100);
        m.clear();
        assert_eq!(m.count(), 0);
        assert!(m.iter().next().is_none());
        // Usable afterwards.
        m.set("1".into(), animal("1"));
        assert_eq!(m.count(), 1);
    }

    /// TestIterCb.
    #[test]
    fn for_each() {
        let m = hundred(100);
        let mut n = 0;
        m.for_each(|k, v| {
            assert_eq!(*k, v.name);
            n += 1;
        });
        assert_eq!(n, 100);
    }

    /// TestItems.
    #[test]
    fn items() {
        let m = hundred(100);
        let items = m.items();
        assert_eq!(items.len(), 100);
        assert_eq!(items["42"], animal("42"));
    }

    /// TestConcurrent: two writers each set half of 1000 keys and read back what they set; every
    /// value comes back exactly once, and the map holds all 1000.
    #[test]
    fn concurrent_set_get() {
        const N: usize = 1000;
        let m: Arc<Map<String, usize>> = Arc::new(Map::new());
        let (tx, rx) = mpsc::channel();
        for range in [0..N / 2, N / 2..N] {
            let (m, tx) = (m.clone(), tx.clone());
            thread::spawn(move || {
                for i in range {
                    m.set(i.to_string(), i);
                    tx.send(m.get(&i.to_string())).unwrap();
                }
            });
        }
        drop(tx);
        let mut got: Vec<usize> = rx
            .iter()
            .map(|v| v.expect("a set value is found"))
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..N).collect::<Vec<_>>());
        assert_eq!(m.count(), N);
    }

    /// TestKeys.
    #[test]
    fn keys() {
        let m = hundred(100);
        let mut keys = m.keys();
        keys.sort_unstable_by_key(|k| k.parse::<usize>().unwrap());
        assert_eq!(keys, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    /// TestMInsert.
    #[test]
    fn set_many() {
        let m = Map::new();
        m.set_many([
            ("elephant", animal("elephant")),
            ("monkey", animal("monkey")),
        ]);
        assert_eq!(m.count(), 2);
        assert_eq!(m.get("monkey"), Some(animal("monkey")));
    }

    /// TestUpsert: the callback sees whether the key exists and its value, and what it returns
    /// is stored.
    #[test]
    fn upsert() {
        let cb = |exists: bool, in_map: Option<&Animal>, new: Animal| {
            assert_eq!(exists, in_map.is_some());
            match in_map {
                None => new,
                Some(old) => animal(&(old.name.clone() + &new.name)),
            }
        };
        let m = Map::new();
        m.set("marine", animal("dolphin"));
        assert_eq!(
            m.upsert("marine", animal("whale"), cb),
            Some(animal("dolphin"))
        );
        assert_eq!(m.upsert("predator", animal("tiger"), cb), None);
        assert_eq!(
            m.upsert("predator", animal("lion"), cb),
            Some(animal("tiger"))
        );
        assert_eq!(m.count(), 2);
        assert_eq!(m.get("marine"), Some(animal("dolphinwhale")));
        assert_eq!(m.get("predator"), Some(animal("tigerlion")));
    }

    /// TestKeysWhenRemoving: `keys` while other threads remove returns only real keys, each
    /// at most once, and every key nobody removes.
    #[test]
    fn keys_when_removing() {
        let m = Arc::new(hundred(100));
        let removers: Vec<_> = (0..10)
            .map(|i| {
                let m = m.clone();
                thread::spawn(move || assert!(m.remove(&i.to_string())))
            })
            .collect();
        let keys = m.keys();
        let unique: HashSet<_> = keys.iter().cloned().collect();
        assert_eq!(unique.len(), keys.len(), "a key listed twice");
        for k in &keys {
            let i: usize = k.parse().expect("a real key");
            assert!(i < 100);
        }
        for i in 10..100 {
            assert!(unique.contains(&i.to_string()), "key {i} missing");
        }
        for r in removers {
            r.join().unwrap();
        }
        assert_eq!(m.count(), 90);
    }

    /// TestUnDrainedIterBuffered (and TestUnDrainedIter): an iterator drained halfway, then the
    /// map grown, yields exactly the entries of its snapshot; a new one sees everything.
    #[test]
    fn undrained_iter_is_a_snapshot() {
        let m = hundred(100);
        let mut it = m.iter();
        let mut n = 0;
        for (k, v) in it.by_ref().take(42) {
            assert_eq!(k, v.name);
            n += 1;
        }
        for i in 100..200 {
            m.set(i.to_string(), animal(&i.to_string()));
        }
        for (k, v) in it {
            assert_eq!(k, v.name);
            let i: usize = k.parse().unwrap();
            assert!(i < 100, "an entry set after the snapshot: {k}");
            n += 1;
        }
        assert_eq!(n, 100);
        assert_eq!(m.iter().count(), 200);
    }

    // ----- the Rust-side API ------------------------------------------------------------------

    #[test]
    fn modify_retain_and_conversions() {
        let m: Map<u32, Vec<u32>> = (0..10).map(|i| (i, vec![i])).collect();
        assert_eq!(m.modify(&3, |v| v.push(30)), Some(()));
        assert_eq!(m.modify(&99, |v| v.push(30)), None);
        assert!(!m.has(&99));
        assert_eq!(m.get(&3), Some(vec![3, 30]));

        m.retain(|k, v| {
            v.push(0);
            k % 2 == 0
        });
        assert_eq!(m.count(), 5);
        assert_eq!(m.get(&4), Some(vec![4, 0]));
        assert_eq!(m.get(&3), None);

        let c = m.clone();
        m.clear();
        assert_eq!(c.count(), 5);
        assert_eq!(c.shard_count(), m.shard_count());

        let mut c = c;
        c.extend([(100, vec![]), (4, vec![44])]);
        let mut all: Vec<_> = c.into_iter().collect();
        all.sort();
        assert_eq!(
            all,
            [
                (0, vec![0, 0]),
                (2, vec![2, 0]),
                (4, vec![44]),
                (6, vec![6, 0]),
                (8, vec![8, 0]),
                (100, vec![]),
            ]
        );
    }

    /// Lookups by a borrowed form (`&str` for `String`, `&[u8]` for `Vec<u8>`) and keys that
    /// borrow local data.
    #[test]
    fn borrowed_lookups_and_borrowing_keys() {
        let m: Map<Vec<u8>, u8> = Map::new();
        m.set(b"abc".to_vec(), 1);
        assert_eq!(m.get(&b"abc"[..]), Some(1));
        assert!(m.has(&b"abc"[..]));
        assert!(!m.has(&b"ab"[..]));
        assert_eq!(m.pop(&b"abc"[..]), Some(1));

        let (a, b) = (String::from("local"), String::from("local"));
        let m: Map<&str, usize> = Map::with_shards(2);
        m.set(a.as_str(), 7);
        // A different `&str` with equal contents finds it.
        assert_eq!(m.get(b.as_str()), Some(7));
        assert!(m.remove(b.as_str()));
        assert!(m.is_empty());
    }

    #[test]
    fn debug_never_waits() {
        let m = Map::with_shards(1);
        m.set(1, "one");
        assert_eq!(format!("{m:?}"), r#"{1: "one"}"#);
        // Inside a callback its shard is write-locked: `{:?}` skips it instead of deadlocking.
        let mut inside = String::new();
        m.upsert(2, "two", |_, _, v| {
            inside = format!("{m:?}");
            v
        });
        assert_eq!(inside, "{..}");
        assert!(format!("{m:?}").contains(r#"2: "two""#));
    }

    #[test]
    fn map_and_iter_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Map<String, Vec<u8>>>();
        send_sync::<gosync::sharded::Iter<String, Vec<u8>>>();
    }

    // ----- sharding ---------------------------------------------------------------------------

    #[test]
    fn shard_count_rounds_up_to_a_power_of_two() {
        for (asked, got) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 4),
            (31, 32),
            (32, 32),
            (33, 64),
            (MAX_SHARDS - 1, MAX_SHARDS),
            (MAX_SHARDS, MAX_SHARDS),
            (MAX_SHARDS + 1, MAX_SHARDS),
            (usize::MAX, MAX_SHARDS),
        ] {
            let m: Map<u64, u64> = Map::with_shards(asked);
            assert_eq!(m.shard_count(), got, "with_shards({asked})");
            // Every shard count gives a working map.
            if got <= 1024 {
                for k in 0..200 {
                    m.set(k, k);
                }
                assert_eq!(m.count(), 200);
                assert!((0..200).all(|k| m.get(&k) == Some(k)));
            }
        }
    }

    #[test]
    fn colliding_hasher_and_one_shard_still_correct() {
        let m: Map<u32, u32, BuildHasherDefault<Constant>> =
            Map::with_shards_and_hasher(8, BuildHasherDefault::default());
        for k in 0..300 {
            assert_eq!(m.set(k, k + 1), None);
        }
        for k in (0..300).step_by(3) {
            assert_eq!(m.pop(&k), Some(k + 1));
        }
        assert_eq!(m.count(), 200);
        assert!((0..300).all(|k| m.has(&k) == (k % 3 != 0)));
    }

    /// Keys of different shards never wait for each other; a key of a locked shard waits, and
    /// that wait shows in `diag::blocked` as a read of an RwMutex at this file's line (the map's
    /// methods are `#[track_caller]`).
    #[test]
    fn shards_are_independent_and_waits_show_in_diag() {
        // 4 shards: the shard bits are hash bits 55 and 56.
        let shard_key = |shard: u64, n: u64| (shard << 55) | n;
        let m: Arc<Map<u64, u64, IdentityState>> =
            Arc::new(Map::with_shards_and_hasher(4, IdentityState::default()));
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let holder = {
            let m = m.clone();
            thread::spawn(move || {
                m.upsert(shard_key(0, 1), 1, |_, _, v| {
                    entered_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    v
                });
            })
        };
        entered.recv().unwrap();

        // Shards 1, 2, 3 are free while shard 0 is write-locked.
        let m2 = m.clone();
        within(LIVENESS, "writes to other shards", move || {
            for shard in 1..4 {
                for n in 0..50 {
                    m2.set(shard_key(shard, n), n);
                    assert_eq!(m2.get(&shard_key(shard, n)), Some(n));
                }
            }
        });

        // A reader of shard 0 (a different key, same shard) waits — and is seen waiting.
        let reader = {
            let m = m.clone();
            thread::Builder::new()
                .name("sharded-reader".into())
                .spawn(move || m.get(&shard_key(0, 2)).is_some())
                .unwrap()
        };
        let here = line!() - 3; // the `m.get` line above
        eventually(LIVENESS, "the reader shows in diag::blocked", || {
            gosync::diag::blocked().iter().any(|b| {
                b.op == WaitKind::RwMutexRead
                    && b.site.file().ends_with("sharded.rs")
                    && b.site.line() == here
            })
        });
        assert!(!reader.is_finished());
        release.send(()).unwrap();
        holder.join().unwrap();
        assert!(!reader.join().unwrap());
        assert_eq!(m.get(&shard_key(0, 1)), Some(1));
        assert_eq!(m.count(), 151);
    }

    // ----- atomicity under contention ---------------------------------------------------------

    const THREADS: usize = 4;

    #[test]
    fn upsert_loses_no_increment() {
        const ROUNDS: u64 = 2000;
        const HOT: u64 = 8;
        let m: Arc<Map<u64, u64>> = Arc::new(Map::with_shards(4));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || {
                    for r in 0..ROUNDS {
                        m.upsert(r % HOT, 1, |_, old, one| old.map_or(one, |n| n + one));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        for k in 0..HOT {
            assert_eq!(m.get(&k), Some(THREADS as u64 * ROUNDS / HOT));
        }
    }

    /// For every key, exactly one `set_if_absent` wins and its value is the one stored; then
    /// exactly one `pop` and (after re-filling) one claiming `remove_cb` gets each entry.
    #[test]
    fn one_winner_per_key() {
        const KEYS: usize = 2000;
        let m: Arc<Map<usize, usize>> = Arc::new(Map::new());
        let barrier = Arc::new(Barrier::new(THREADS));
        let run = |op: fn(&Map<usize, usize>, usize, usize) -> bool| -> Vec<Vec<usize>> {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (m, barrier) = (m.clone(), barrier.clone());
                    thread::spawn(move || {
                        barrier.wait();
                        (0..KEYS).filter(|&k| op(&m, k, t)).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        };
        let check_one_each = |wins: &[Vec<usize>]| {
            let mut per_key = vec![0; KEYS];
            for &k in wins.iter().flatten() {
                per_key[k] += 1;
            }
            let wrong: Vec<(usize, i32)> = (0..KEYS)
                .filter(|&k| per_key[k] != 1)
                .map(|k| (k, per_key[k]))
                .take(10)
                .collect();
            assert!(wrong.is_empty(), "(key, winners) not 1: {wrong:?}");
        };

        let wins = run(|m, k, t| m.set_if_absent(k, t));
        check_one_each(&wins);
        for (t, won) in wins.iter().enumerate() {
            assert!(won.iter().all(|k| m.get(k) == Some(t)));
        }

        let wins = run(|m, k, _| m.pop(&k).is_some());
        check_one_each(&wins);
        assert!(m.is_empty());

        for k in 0..KEYS {
            m.set(k, k);
        }
        // A claim succeeds only on an entry still there: one taker per key.
        let wins = run(|m, k, _| m.remove_cb(&k, |_, v, exists| exists && v == Some(&k)));
        check_one_each(&wins);
        assert!(m.is_empty());
    }

    /// Disjoint key ranges: each writer inserts its range, removes the even keys, and rewrites
    /// the odd ones; the end state is exact.
    #[test]
    fn disjoint_writers_end_exact() {
        const PER: usize = 3000;
        let m: Arc<Map<usize, usize>> = Arc::new(Map::with_shards(8));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let m = m.clone();
                thread::spawn(move || {
                    let keys = t * PER..(t + 1) * PER;
                    for k in keys.clone() {
                        assert_eq!(m.set(k, k), None);
                    }
                    for k in keys.clone().step_by(2) {
                        assert!(m.remove(&k));
                    }
                    for k in keys.skip(1).step_by(2) {
                        assert_eq!(m.set(k, k * 10), Some(k));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let expect: HashMap<usize, usize> = (0..THREADS * PER)
            .filter(|k| k % 2 == 1)
            .map(|k| (k, k * 10))
            .collect();
        assert_eq!(m.count(), expect.len());
        assert_eq!(m.items().into_iter().collect::<HashMap<_, _>>(), expect);
        assert_eq!(m.keys().len(), expect.len());
        assert_eq!(m.iter().count(), expect.len());
    }

    /// Overlapping keys: writers race `set_if_absent` (+1 on success) against `pop` (-1 on
    /// success) over a few keys while readers check every value they see; at the end, per key,
    /// the successes balance to exactly whether the key is present, and all the whole-map views
    /// agree.
    #[test]
    fn overlapping_writers_conserve_entries() {
        const KEYS: u64 = 64;
        const OPS: usize = 20_000;
        let m: Arc<Map<u64, u64>> = Arc::new(Map::with_shards(4));
        let writers: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let m = m.clone();
                thread::spawn(move || {
                    let mut rng = Rng(0x9e37_79b9 + t);
                    let mut net = vec![0i64; KEYS as usize];
                    for _ in 0..OPS {
                        let k = rng.below(KEYS);
                        match rng.below(3) {
                            0 | 1 => {
                                if m.set_if_absent(k, k * 1000 + t) {
                                    net[k as usize] += 1;
                                }
                            }
                            _ => {
                                if let Some(v) = m.pop(&k) {
                                    assert_eq!(v / 1000, k, "a value of another key");
                                    net[k as usize] -= 1;
                                }
                            }
                        }
                    }
                    net
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let m = m.clone();
                thread::spawn(move || {
                    let mut rng = Rng(77 + r);
                    for _ in 0..OPS {
                        let k = rng.below(KEYS);
                        if let Some(v) = m.get(&k) {
                            assert_eq!(v / 1000, k, "a value of another key");
                        }
                        assert!(m.count() <= KEYS as usize);
                        if rng.below(64) == 0 {
                            for (k, v) in m.iter() {
                                assert_eq!(v / 1000, k);
                            }
                        }
                    }
                })
            })
            .collect();
        let mut net = vec![0i64; KEYS as usize];
        for w in writers {
            for (total, n) in net.iter_mut().zip(w.join().unwrap()) {
                *total += n;
            }
        }
        for r in readers {
            r.join().unwrap();
        }
        for k in 0..KEYS {
            assert_eq!(net[k as usize], m.has(&k) as i64, "key {k}");
        }
        let present = net.iter().sum::<i64>() as usize;
        assert_eq!(m.count(), present);
        assert_eq!(m.keys().len(), present);
        assert_eq!(m.items().len(), present);
        assert_eq!(m.iter().len(), present);
    }

    /// While only inserts happen, each shard only grows, so successive `count`s (and snapshot
    /// sizes) never go down, even though none of them is a snapshot of the whole map.
    #[test]
    fn count_never_goes_backwards_under_inserts() {
        const PER: usize = 5000;
        let m: Arc<Map<usize, ()>> = Arc::new(Map::with_shards(16));
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let m = m.clone();
                thread::spawn(move || {
                    for k in t * PER..(t + 1) * PER {
                        m.set(k, ());
                    }
                })
            })
            .collect();
        let mut last = 0;
        while !writers.iter().all(|w| w.is_finished()) {
            let n = m.count();
            assert!(n >= last, "count went from {last} to {n}");
            last = n;
            let n = m.iter().len();
            assert!(n >= last, "iter went from {last} to {n}");
            last = n;
        }
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(m.count(), 2 * PER);
    }

    // ----- model check ------------------------------------------------------------------------

    /// Drives the map and a `Mutex<HashMap>` with the same random operations from one thread
    /// and compares every result. Few keys, so hits, misses, replacements and empty shards all
    /// happen often.
    fn model_check<S: BuildHasher + Clone>(m: Map<u16, u32, S>, seed: u64) {
        const KEYS: u64 = 48;
        const OPS: usize = 20_000;
        let model: Mutex<HashMap<u16, u32>> = Mutex::new(HashMap::new());
        let mut rng = Rng(seed);
        for step in 0..OPS {
            let k = rng.below(KEYS) as u16;
            let v = rng.next() as u32;
            let op = rng.below(100);
            let mut model = model.lock().unwrap();
            let ctx = || format!("step {step}, op {op}, key {k}");
            match op {
                0..=14 => assert_eq!(m.set(k, v), model.insert(k, v), "{}", ctx()),
                15..=29 => assert_eq!(m.get(&k), model.get(&k).copied(), "{}", ctx()),
                30..=34 => assert_eq!(
                    m.get_with(&k, |x| x ^ 1),
                    model.get(&k).map(|x| x ^ 1),
                    "{}",
                    ctx()
                ),
                35..=39 => assert_eq!(m.has(&k), model.contains_key(&k), "{}", ctx()),
                40..=46 => assert_eq!(m.remove(&k), model.remove(&k).is_some(), "{}", ctx()),
                47..=53 => assert_eq!(m.pop(&k), model.remove(&k), "{}", ctx()),
                54..=62 => {
                    let mut seen = None;
                    let got = m.upsert(k, v, |exists, old, new| {
                        seen = Some((exists, old.copied()));
                        old.map_or(new, |o| o.wrapping_add(new))
                    });
                    let old = model.get(&k).copied();
                    let want = model.insert(k, old.map_or(v, |o| o.wrapping_add(v)));
                    assert_eq!(got, want, "{}", ctx());
                    assert_eq!(seen, Some((old.is_some(), old)), "{}", ctx());
                }
                63..=71 => {
                    let absent = !model.contains_key(&k);
                    if absent {
                        model.insert(k, v);
                    }
                    assert_eq!(m.set_if_absent(k, v), absent, "{}", ctx());
                }
                72..=79 => {
                    // Remove only odd values; the answer is returned whether or not it existed.
                    let decide =
                        |x: Option<&u32>| x.map_or(v.is_multiple_of(2), |x| !x.is_multiple_of(2));
                    let old = model.get(&k).copied();
                    let want = decide(old.as_ref());
                    if want && old.is_some() {
                        model.remove(&k);
                    }
                    let mut seen = None;
                    let got = m.remove_cb(&k, |key, x, exists| {
                        seen = Some((*key, x.copied(), exists));
                        decide(x)
                    });
                    assert_eq!(got, want, "{}", ctx());
                    assert_eq!(seen, Some((k, old, old.is_some())), "{}", ctx());
                }
                80..=84 => assert_eq!(
                    m.modify(&k, |x| {
                        *x = x.wrapping_mul(3);
                        *x
                    }),
                    model.get_mut(&k).map(|x| {
                        *x = x.wrapping_mul(3);
                        *x
                    }),
                    "{}",
                    ctx()
                ),
                85..=89 => {
                    assert_eq!(m.count(), model.len(), "{}", ctx());
                    assert_eq!(m.is_empty(), model.is_empty(), "{}", ctx());
                }
                90..=92 => {
                    let mut keys = m.keys();
                    keys.sort_unstable();
                    let mut want: Vec<u16> = model.keys().copied().collect();
                    want.sort_unstable();
                    assert_eq!(keys, want, "{}", ctx());
                }
                93..=95 => {
                    let items: HashMap<u16, u32> = m.items().into_iter().collect();
                    assert_eq!(items, *model, "{}", ctx());
                    let iterated: HashMap<u16, u32> = m.iter().collect();
                    assert_eq!(iterated, *model, "{}", ctx());
                    let mut each = HashMap::new();
                    m.for_each(|k, v| assert!(each.insert(*k, *v).is_none()));
                    assert_eq!(each, *model, "{}", ctx());
                }
                96..=98 => {
                    let keep = |k: &u16, v: &mut u32| {
                        *v = v.wrapping_add(1);
                        !u32::from(*k).wrapping_add(*v).is_multiple_of(3)
                    };
                    m.retain(keep);
                    model.retain(keep);
                }
                _ => {
                    if rng.below(4) == 0 {
                        m.clear();
                        model.clear();
                    }
                }
            }
        }
        let items: HashMap<u16, u32> = m.into_iter().collect();
        assert_eq!(items, *model.lock().unwrap());
    }

    #[test]
    fn model_default_shards() {
        model_check(Map::new(), 1);
    }

    #[test]
    fn model_one_shard() {
        model_check(Map::with_shards(1), 2);
    }

    #[test]
    fn model_many_shards() {
        model_check(Map::with_shards(1024), 3);
    }

    #[test]
    fn model_other_hashers() {
        model_check(
            Map::with_shards_and_hasher(8, BuildHasherDefault::<Constant>::default()),
            4,
        );
        model_check(
            Map::with_shards_and_hasher(4, BuildHasherDefault::<Identity>::default()),
            5,
        );
        model_check(Map::with_shards_and_hasher(2, RandomState::new()), 6);
    }

    // ----- no poisoning -----------------------------------------------------------------------

    #[test]
    fn panicking_callbacks_leave_the_entry_and_the_map_usable() {
        let m: Map<&str, Vec<i32>> = Map::with_shards(1);
        m.set("kept", vec![1]);

        assert!(quiet(|| {
            m.upsert("kept", vec![2], |_, _, _| {
                panic!("callback boom: upsert present")
            });
        })
        .is_err());
        assert_eq!(m.get("kept"), Some(vec![1]));

        assert!(quiet(|| {
            m.upsert("new", vec![2], |_, _, _| {
                panic!("callback boom: upsert absent")
            });
        })
        .is_err());
        assert!(!m.has("new"));

        assert!(quiet(|| {
            m.remove_cb("kept", |_, _, _| panic!("callback boom: remove_cb"));
        })
        .is_err());
        assert!(m.has("kept"));

        assert!(quiet(|| {
            m.modify("kept", |v| {
                v.push(3);
                panic!("callback boom: modify");
            });
        })
        .is_err());
        // `modify` changes in place: what it did before panicking stays, as in Go.
        assert_eq!(m.get("kept"), Some(vec![1, 3]));

        assert!(quiet(|| {
            m.get_with("kept", |_| panic!("callback boom: get_with"));
        })
        .is_err());
        assert!(quiet(|| m.for_each(|_, _| panic!("callback boom: for_each"))).is_err());

        // The one shard is neither locked nor poisoned: reads and writes work from any thread.
        let m = Arc::new(m);
        let m2 = m.clone();
        within(LIVENESS, "the map after panics", move || {
            m2.set("other", vec![]);
            assert_eq!(m2.count(), 2);
        });
        assert_eq!(m.pop("kept"), Some(vec![1, 3]));
    }

    // ----- threads and tasks ------------------------------------------------------------------

    fn tasks_and_threads_share_one_map(spawn: impl Fn(Box<dyn FnOnce() + Send>)) {
        const PER: u64 = 512; // a multiple of the 16 hot keys
        let m: Arc<Map<u64, u64>> = Arc::new(Map::with_shards(4));
        let done = Arc::new(AtomicUsize::new(0));
        let work = |id: u64| {
            let (m, done) = (m.clone(), done.clone());
            move || {
                for i in 0..PER {
                    m.upsert(i % 16, 1, |_, old, one| old.map_or(one, |n| n + one));
                    m.set(1000 + id * PER + i, id);
                }
                done.fetch_add(1, Ordering::Release);
            }
        };
        for id in 0..2 {
            spawn(Box::new(work(id)));
        }
        let threads: Vec<_> = (2..4).map(|id| thread::spawn(work(id))).collect();
        for t in threads {
            t.join().unwrap();
        }
        eventually(LIVENESS, "all workers finished", || {
            done.load(Ordering::Acquire) == 4
        });
        for k in 0..16 {
            assert_eq!(m.get(&k), Some(4 * PER / 16));
        }
        assert_eq!(m.count(), 16 + 4 * PER as usize);
    }

    #[test]
    fn tokio_tasks_and_threads() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        tasks_and_threads_share_one_map(|f| {
            rt.spawn(async move { f() });
        });
    }

    #[test]
    fn futures_pool_tasks_and_threads() {
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        tasks_and_threads_share_one_map(|f| pool.spawn_ok(async move { f() }));
    }
}
