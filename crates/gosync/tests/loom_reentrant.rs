//! loom models of the re-entrant mutexes: mutual exclusion between owners with re-entry, the
//! last unlock → next lock happens-before edge (loom reports a race on the guarded cell if
//! either is missing), and `TokenMutex`'s re-entry racing the end of its token's ownership and
//! the start of another's (the re-entry must re-check the owner after counting itself in).
//! Run with `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p gosync --release
//! --test loom_reentrant`.
#![cfg(loom)]

use gosync::reentrant::{RawReentrantMutex, TokenMutex};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// A cell guarded by whichever mutex the model uses.
struct Cell(UnsafeCell<usize>);

// SAFETY: touched only under the mutex under test; loom checks exactly that.
unsafe impl Sync for Cell {}
// SAFETY: as above.
unsafe impl Send for Cell {}

impl Cell {
    fn new() -> Self {
        Cell(UnsafeCell::new(0))
    }

    /// Call with the mutex held.
    fn incr(&self) {
        // SAFETY: the mutex is held (loom checks it).
        self.0.with_mut(|p| unsafe { *p += 1 });
    }

    /// Call after every other thread has joined.
    fn get(&self) -> usize {
        // SAFETY: as above.
        self.0.with(|p| unsafe { *p })
    }
}

/// Two threads each lock twice (the second a re-entry), touch the cell between the two
/// holds and inside both, and unlock twice; the main thread does it twice over, so that a
/// thread that owned the mutex before must not find itself the owner again while the other
/// thread holds it.
#[test]
fn thread_owned_reentry_excludes() {
    loom::model(|| {
        let m = Arc::new((RawReentrantMutex::new(), Cell::new()));
        let body = |m: &(RawReentrantMutex, Cell)| {
            m.0.lock();
            m.1.incr();
            assert!(m.0.try_lock(), "the owner re-enters");
            assert_eq!(m.0.holds(), 2);
            m.1.incr();
            m.0.unlock();
            m.1.incr();
            m.0.unlock();
        };
        let other = {
            let m = m.clone();
            thread::spawn(move || body(&m))
        };
        body(&m);
        body(&m);
        other.join().unwrap();
        assert_eq!(m.1.get(), 9);
        assert!(!m.0.is_locked());
    });
}

/// Token 7 holds the mutex and lets go while another flow of token 7 tries to re-enter and
/// token 9 tries to lock. The re-entry may succeed only inside token 7's ownership, never
/// inside token 9's (which its count would otherwise join), and every hold comes out even.
/// Only `try_lock`s, so that the model explores the counting race exhaustively rather than
/// the waiter queue (`token_reentry_races_a_blocked_locker` covers that, bounded).
#[test]
fn token_reentry_races_the_end_of_its_ownership() {
    loom::model(|| token_race(false));
}

/// The same with token 9 blocking in `lock`, so the hand-over goes through the queue; with
/// bounded preemptions (three threads and the queue are too many for an exhaustive run).
#[test]
fn token_reentry_races_a_blocked_locker() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| token_race(true));
}

fn token_race(block: bool) {
    let m = Arc::new((TokenMutex::new(), Cell::new()));
    m.0.lock(7);
    let reenter = {
        let m = m.clone();
        thread::spawn(move || {
            if m.0.try_lock(7) {
                m.1.incr();
                m.0.unlock(7);
                1
            } else {
                0
            }
        })
    };
    let other = {
        let m = m.clone();
        thread::spawn(move || {
            if block {
                m.0.lock(9);
            } else if !m.0.try_lock(9) {
                return 0;
            }
            m.1.incr();
            m.0.unlock(9);
            1
        })
    };
    m.0.unlock(7);
    let reentered = reenter.join().unwrap();
    let locked = other.join().unwrap();
    assert_eq!(m.1.get(), reentered + locked);
    assert!(!m.0.is_locked());
    assert_eq!(m.0.holds(), 0);
}

/// Two tokens on two threads with re-entry on each: exclusion and the hand-over edge.
#[test]
fn two_tokens_reentering() {
    loom::model(|| {
        let m = Arc::new((TokenMutex::new(), Cell::new()));
        let body = |m: &(TokenMutex, Cell), token: u64| {
            m.0.lock(token);
            m.0.lock(token);
            m.1.incr();
            m.0.unlock(token);
            m.1.incr();
            m.0.unlock(token);
        };
        let other = {
            let m = m.clone();
            thread::spawn(move || body(&m, 2))
        };
        body(&m, 1);
        other.join().unwrap();
        assert_eq!(m.1.get(), 4);
    });
}
