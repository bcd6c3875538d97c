//! Family `ext`, the lock cases: gosync's re-entrant mutexes, spin lock and file lock against
//! the Rust crates the issue names as their anchors (parking_lot's `ReentrantMutex`, the `spin`
//! crate, `fs4`), with parking_lot's `Mutex` and std's `File` locks as references.
//!
//! * `reentrant`: lock + unlock of one more level while the thread already holds the mutex,
//!   and the outermost lock + unlock of a free one, ns/op.
//! * `spin_uncontended`: lock, counter += 1, unlock on one thread, ns/op.
//! * `spin_contended`: 2 and 4 threads each looping lock, counter += 1, unlock, Mops/s and
//!   fairness.
//! * `filelock`: exclusive lock + unlock of a free lock file, and a `try_lock` that fails
//!   because another open file of the same path holds the lock, ns/op.
//!
//! Go has none of these (neither the standard library nor x/sync: the seed builds its own,
//! and the issue anchors them on Rust crates), so these tables have no Go rows.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::measure::{ns_per_op, threads_contended, Contender};
use crate::stats::{self, Better, Sample};
use crate::{Config, Table};

use super::FAMILY;

/// Thread counts of the contended spin case.
const SPIN_THREADS: [usize; 2] = [2, 4];

/// The note every table of this module carries.
const NO_GO: &str = "no Go rows: Go's standard library and x/sync have no such lock (the seed builds its own), and the issue anchors this case on Rust crates";

/// The settings these cases run with. In quick mode their measurements are shortened (a
/// third of the ns/op time, half of the contended time) so that the three cases together
/// stay within about 3 s; the numbers are only a check that the cases run, as every quick
/// number is.
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

/// The median of row `row` in column `column`, if measured.
fn median(t: &Table, row: &str, column: usize) -> Option<f64> {
    let r = t.rows.iter().find(|r| r.name == row)?;
    stats::summarise(&r.cells[column]).map(|s| s.value)
}

/// "`subject` vs `anchor` (speed): col 1.02x, ..." over the columns both were measured in:
/// the ratio column compares with the best anchor, which for these tables may be a reference
/// row (parking_lot's mutex, std's file locks) rather than the crate the issue names.
fn vs_note(t: &mut Table, subject: &str, anchor: &str) {
    let cells: Vec<String> = (0..t.columns.len())
        .filter_map(|c| {
            let r = stats::ratio(median(t, subject, c)?, median(t, anchor, c)?, t.better)?;
            Some(format!("{} {r:.2}x", t.columns[c]))
        })
        .collect();
    if !cells.is_empty() {
        t.note(format!(
            "{subject} vs {anchor} (speed): {}",
            cells.join(", ")
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Re-entrant mutexes, behind a small trait so that one loop measures them all.

/// A re-entrant mutex used from one thread.
trait Reentrant: Sync {
    fn create() -> Self;
    /// Locks one level and unlocks it again.
    fn cycle(&self);
    /// Runs `f` while the calling thread holds one level.
    fn held(&self, f: impl FnOnce());
}

impl Reentrant for gosync::reentrant::ReentrantMutex<u64> {
    fn create() -> Self {
        gosync::reentrant::ReentrantMutex::new(0)
    }
    #[inline]
    fn cycle(&self) {
        black_box(*self.lock());
    }
    fn held(&self, f: impl FnOnce()) {
        let _outer = self.lock();
        f();
    }
}

impl Reentrant for gosync::reentrant::RawReentrantMutex {
    fn create() -> Self {
        gosync::reentrant::RawReentrantMutex::new()
    }
    #[inline]
    fn cycle(&self) {
        self.lock();
        self.unlock();
    }
    fn held(&self, f: impl FnOnce()) {
        self.lock();
        f();
        self.unlock();
    }
}

/// gosync's token-owned mutex with the token its caller presents, taken once (as a task
/// would take one when it starts).
struct TokenMutex {
    mutex: gosync::reentrant::TokenMutex,
    token: u64,
}

impl Reentrant for TokenMutex {
    fn create() -> Self {
        TokenMutex {
            mutex: gosync::reentrant::TokenMutex::new(),
            token: gosync::reentrant::new_token(),
        }
    }
    #[inline]
    fn cycle(&self) {
        self.mutex.lock(self.token);
        self.mutex.unlock(self.token);
    }
    fn held(&self, f: impl FnOnce()) {
        self.mutex.lock(self.token);
        f();
        self.mutex.unlock(self.token);
    }
}

impl Reentrant for parking_lot::ReentrantMutex<u64> {
    fn create() -> Self {
        parking_lot::ReentrantMutex::new(0)
    }
    #[inline]
    fn cycle(&self) {
        black_box(*self.lock());
    }
    fn held(&self, f: impl FnOnce()) {
        let _outer = self.lock();
        f();
    }
}

/// Lock + unlock of one more level while the thread holds the mutex.
fn relock<R: Reentrant>(cfg: &Config) -> Option<Sample> {
    let m = R::create();
    let mut sample = None;
    m.held(|| {
        sample = Some(ns_per_op(cfg.op_duration, |n| {
            for _ in 0..n {
                black_box(&m).cycle();
            }
        }));
    });
    sample
}

/// The outermost lock + unlock of a free mutex.
fn lock_free<R: Reentrant>(cfg: &Config) -> Option<Sample> {
    let m = R::create();
    Some(ns_per_op(cfg.op_duration, |n| {
        for _ in 0..n {
            black_box(&m).cycle();
        }
    }))
}

pub(super) fn reentrant(cfg: &Config) -> Table {
    let cfg = &budget(cfg);
    let mut t = Table::new(
        FAMILY,
        "reentrant",
        "Re-entrant mutex, one thread: lock + unlock of one more level while the thread holds it (re-lock), and the outermost lock + unlock of a free one",
        "ns/op",
        Better::Lower,
        &["re-lock (held)", "lock+unlock (free)"],
    );
    for (col, relocking) in [(0, true), (1, false)] {
        let rows = vec![
            Contender::subject("gosync::ReentrantMutex", move || {
                type M = gosync::reentrant::ReentrantMutex<u64>;
                if relocking {
                    relock::<M>(cfg)
                } else {
                    lock_free::<M>(cfg)
                }
            }),
            Contender::subject("gosync::RawReentrantMutex", move || {
                type M = gosync::reentrant::RawReentrantMutex;
                if relocking {
                    relock::<M>(cfg)
                } else {
                    lock_free::<M>(cfg)
                }
            }),
            Contender::subject("gosync::TokenMutex", move || {
                if relocking {
                    relock::<TokenMutex>(cfg)
                } else {
                    lock_free::<TokenMutex>(cfg)
                }
            }),
            Contender::anchor("parking_lot::ReentrantMutex", move || {
                type M = parking_lot::ReentrantMutex<u64>;
                if relocking {
                    relock::<M>(cfg)
                } else {
                    lock_free::<M>(cfg)
                }
            }),
        ];
        t.measure(cfg, col, "reentrant", rows);
    }
    t.note("ReentrantMutex<u64> (gosync, parking_lot): lock() and drop the guard, reading the value; RawReentrantMutex: lock(), unlock(); TokenMutex: lock(token), unlock(token) with a token from new_token() taken once");
    let target: Vec<String> = ["gosync::ReentrantMutex", "gosync::RawReentrantMutex"]
        .into_iter()
        .filter_map(|row| {
            let ours = median(&t, row, 0)?;
            let theirs = median(&t, "parking_lot::ReentrantMutex", 0)?;
            let mark = if ours <= theirs { "met" } else { "MISSED" };
            Some(format!("{row} {ours:.2} ns ({mark})"))
        })
        .collect();
    if let Some(theirs) = median(&t, "parking_lot::ReentrantMutex", 0) {
        if !target.is_empty() {
            t.note(format!(
                "target: re-lock at most parking_lot::ReentrantMutex's {theirs:.2} ns: {}",
                target.join(", ")
            ));
        }
    }
    t.note(NO_GO);
    quick_note(&mut t, cfg);
    t
}

// ---------------------------------------------------------------------------------------
// Spin locks (and parking_lot's mutex as a reference), each around a `u64` counter.

/// A lock around a `u64` counter.
trait Counter: Default + Sync {
    fn inc(&self);
}

impl Counter for gosync::spin::SpinLock<u64> {
    #[inline]
    fn inc(&self) {
        *self.lock() += 1;
    }
}

impl Counter for spin::Mutex<u64> {
    #[inline]
    fn inc(&self) {
        *self.lock() += 1;
    }
}

impl Counter for parking_lot::Mutex<u64> {
    #[inline]
    fn inc(&self) {
        *self.lock() += 1;
    }
}

fn spin_one<L: Counter>(cfg: &Config) -> Option<Sample> {
    let lock = L::default();
    Some(ns_per_op(cfg.op_duration, |n| {
        for _ in 0..n {
            black_box(&lock).inc();
        }
    }))
}

fn spin_many<L: Counter>(cfg: &Config, threads: usize) -> Option<Sample> {
    let lock = L::default();
    Some(threads_contended(threads, cfg.duration, |_, stop| {
        let mut ops = 0u64;
        while !stop.load(Ordering::Relaxed) {
            lock.inc();
            ops += 1;
        }
        ops
    }))
}

/// The rows of both spin tables; `threads == 0` measures one thread's ns/op.
fn spin_rows(cfg: &Config, threads: usize) -> Vec<Contender<'_>> {
    fn run<L: Counter>(cfg: &Config, threads: usize) -> Option<Sample> {
        if threads == 0 {
            spin_one::<L>(cfg)
        } else {
            spin_many::<L>(cfg, threads)
        }
    }
    vec![
        Contender::subject("gosync::SpinLock", move || {
            run::<gosync::spin::SpinLock<u64>>(cfg, threads)
        }),
        Contender::anchor("spin::Mutex", move || run::<spin::Mutex<u64>>(cfg, threads)),
        Contender::anchor("parking_lot::Mutex", move || {
            run::<parking_lot::Mutex<u64>>(cfg, threads)
        }),
    ]
}

/// How each spin lock waits, for the notes.
const SPIN_NOTE: &str = "gosync::SpinLock: test-and-test-and-set, exponential spin_loop pauses and then yield_now; spin::Mutex (spin crate, its default SpinMutex with the Spin relax strategy): spins on the lock word with spin_loop and never yields; parking_lot::Mutex (a reference, not a spin lock): spins a little, then parks";

pub(super) fn spin_uncontended(cfg: &Config) -> Table {
    let cfg = &budget(cfg);
    let mut t = Table::new(
        FAMILY,
        "spin_uncontended",
        "Spin lock, uncontended: lock, counter += 1, unlock in a loop on one thread",
        "ns/op",
        Better::Lower,
        &["thread"],
    );
    t.measure(cfg, 0, "spin uncontended", spin_rows(cfg, 0));
    vs_note(&mut t, "gosync::SpinLock", "spin::Mutex");
    t.note(SPIN_NOTE);
    t.note(NO_GO);
    quick_note(&mut t, cfg);
    t
}

pub(super) fn spin_contended(cfg: &Config) -> Table {
    let cfg = &budget(cfg);
    let columns: Vec<String> = SPIN_THREADS
        .iter()
        .map(|n| format!("{n} threads"))
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut t = Table::new(
        FAMILY,
        "spin_contended",
        format!(
            "Spin lock, N threads each looping lock, counter += 1, unlock for {} ms",
            cfg.duration.as_millis()
        ),
        "Mops/s",
        Better::Higher,
        &columns,
    );
    for (col, &n) in SPIN_THREADS.iter().enumerate() {
        t.measure(cfg, col, "spin contended", spin_rows(cfg, n));
    }
    vs_note(&mut t, "gosync::SpinLock", "spin::Mutex");
    t.note(SPIN_NOTE);
    t.note(format!(
        "with more threads than CPUs ({} here) a preempted holder keeps every spinner waiting for a time slice",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    t.note(NO_GO);
    quick_note(&mut t, cfg);
    t
}

// ---------------------------------------------------------------------------------------
// File locks: one lock file, opened once per measurement by each implementation.

/// An exclusive lock on an open file.
trait LockFile: Sized {
    fn open(path: &Path) -> io::Result<Self>;
    fn lock(&mut self) -> io::Result<()>;
    fn unlock(&mut self) -> io::Result<()>;
    /// `Ok(true)` if it now holds the lock, `Ok(false)` if someone else does.
    fn try_lock(&mut self) -> io::Result<bool>;
}

/// Opens `path` as gosync's [`FileLock`](gosync::filelock::FileLock) does: for reading and
/// writing, created if missing, never truncated.
fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

impl LockFile for gosync::filelock::FileLock {
    fn open(path: &Path) -> io::Result<Self> {
        gosync::filelock::FileLock::new(path)
    }
    #[inline]
    fn lock(&mut self) -> io::Result<()> {
        gosync::filelock::FileLock::lock(self)
    }
    #[inline]
    fn unlock(&mut self) -> io::Result<()> {
        gosync::filelock::FileLock::unlock(self)
    }
    #[inline]
    fn try_lock(&mut self) -> io::Result<bool> {
        gosync::filelock::FileLock::try_lock(self)
    }
}

/// A file locked through the `fs4` crate's `FileExt` (whose method names are std's, so they
/// are called through the trait: a method call would pick `File`'s own).
struct Fs4(File);

impl LockFile for Fs4 {
    fn open(path: &Path) -> io::Result<Self> {
        open_rw(path).map(Fs4)
    }
    #[inline]
    fn lock(&mut self) -> io::Result<()> {
        fs4::FileExt::lock(&self.0)
    }
    #[inline]
    fn unlock(&mut self) -> io::Result<()> {
        fs4::FileExt::unlock(&self.0)
    }
    #[inline]
    fn try_lock(&mut self) -> io::Result<bool> {
        match fs4::FileExt::try_lock(&self.0) {
            Ok(()) => Ok(true),
            Err(fs4::TryLockError::WouldBlock) => Ok(false),
            Err(fs4::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// A file locked with std's own `File::lock`, `File::try_lock`, `File::unlock`.
struct StdFile(File);

impl LockFile for StdFile {
    fn open(path: &Path) -> io::Result<Self> {
        open_rw(path).map(StdFile)
    }
    #[inline]
    fn lock(&mut self) -> io::Result<()> {
        self.0.lock()
    }
    #[inline]
    fn unlock(&mut self) -> io::Result<()> {
        self.0.unlock()
    }
    #[inline]
    fn try_lock(&mut self) -> io::Result<bool> {
        match self.0.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// A lock file in the temporary directory with a name no other run uses, removed on drop.
struct TempLockFile(PathBuf);

impl TempLockFile {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        TempLockFile(
            std::env::temp_dir().join(format!("gosync-bench-{}-{nanos}.lock", std::process::id())),
        )
    }
}

impl Drop for TempLockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Opens `path` with `L`, or warns and gives `None` (a temporary directory that cannot be
/// written leaves the row out rather than ending the run).
fn open_or_warn<L: LockFile>(path: &Path) -> Option<L> {
    match L::open(path) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("warning: cannot open the lock file {}: {e}", path.display());
            None
        }
    }
}

/// Exclusive lock + unlock of a free lock file.
fn file_free<L: LockFile>(cfg: &Config, path: &Path) -> Option<Sample> {
    let mut l = open_or_warn::<L>(path)?;
    Some(ns_per_op(cfg.op_duration, |n| {
        for _ in 0..n {
            l.lock().expect("locking a free lock file");
            l.unlock().expect("unlocking a held lock file");
        }
    }))
}

/// A `try_lock` that fails: another open file of the same path holds the lock.
fn file_held<L: LockFile>(cfg: &Config, path: &Path) -> Option<Sample> {
    let mut holder = open_or_warn::<L>(path)?;
    let mut other = open_or_warn::<L>(path)?;
    holder.lock().expect("locking a free lock file");
    let sample = ns_per_op(cfg.op_duration, |n| {
        for _ in 0..n {
            let got = black_box(&mut other)
                .try_lock()
                .expect("try_lock of a held lock file");
            assert!(!got, "try_lock took a lock file that another file holds");
        }
    });
    holder.unlock().expect("unlocking a held lock file");
    Some(sample)
}

pub(super) fn filelock(cfg: &Config) -> Table {
    let cfg = &budget(cfg);
    let mut t = Table::new(
        FAMILY,
        "filelock",
        "File lock (exclusive, whole file): lock + unlock of a free lock file, and try_lock of one that another open file holds (it fails)",
        "ns/op",
        Better::Lower,
        &["lock+unlock (free)", "try_lock (held)"],
    );
    let file = TempLockFile::new();
    let path = file.0.as_path();
    for (col, free) in [(0, true), (1, false)] {
        fn run<L: LockFile>(cfg: &Config, path: &Path, free: bool) -> Option<Sample> {
            if free {
                file_free::<L>(cfg, path)
            } else {
                file_held::<L>(cfg, path)
            }
        }
        let rows = vec![
            Contender::subject("gosync::FileLock", move || {
                run::<gosync::filelock::FileLock>(cfg, path, free)
            }),
            Contender::anchor("fs4::FileExt", move || run::<Fs4>(cfg, path, free)),
            Contender::anchor("std::fs::File (floor)", move || {
                run::<StdFile>(cfg, path, free)
            }),
        ];
        t.measure(cfg, col, "filelock", rows);
    }
    drop(file);
    vs_note(&mut t, "gosync::FileLock", "fs4::FileExt");
    vs_note(&mut t, "gosync::FileLock", "std::fs::File (floor)");
    t.note("every row opens the lock file (in std::env::temp_dir(), removed afterwards) once per measurement: gosync FileLock::new, the others OpenOptions read + write + create; held: a second open file of the same path holds the lock");
    t.note("gosync: lock() (a try first, one system call when free), unlock(), try_lock() on &mut self; fs4 (crate, v1): FileExt::lock / unlock / try_lock on &File; std: File::lock / unlock / try_lock, the floor both build on (flock on Unix)");
    t.note(NO_GO);
    quick_note(&mut t, cfg);
    t
}
