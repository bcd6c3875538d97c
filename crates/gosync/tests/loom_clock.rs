//! A loom model with the clock under its control: a starved waiter at the head of the queue
//! next to a fresh one, so the mutex enters starvation mode (the starved head is handed the
//! lock and newcomers may not barge) and leaves it (the fresh waiter, handed the lock last,
//! clears it) within one model. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p gosync --release --test loom_clock`.
#![cfg(loom)]

use std::time::Duration;

use gosync::sync::{RawMutex, STARVATION_THRESHOLD};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

fn wait_for_waiters(m: &RawMutex, n: usize) {
    while m.waiters() < n {
        thread::yield_now();
    }
}

#[test]
fn starvation_mode_is_entered_and_left() {
    gosync::__loom_force_starvation(false);
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        gosync::__loom_clock_reset();
        let m = Arc::new(RawMutex::new());
        let turn = Arc::new(AtomicUsize::new(0));
        m.lock();
        let starved = {
            let (m, turn) = (m.clone(), turn.clone());
            thread::spawn(move || {
                m.lock();
                assert!(
                    m.is_starving(),
                    "the starved head got the lock in normal mode"
                );
                assert_eq!(
                    turn.fetch_add(1, Ordering::Relaxed),
                    0,
                    "the starved waiter came second"
                );
                m.unlock();
            })
        };
        wait_for_waiters(&m, 1);
        // The first waiter has now waited past the threshold; the next one has not.
        gosync::__loom_clock_advance(STARVATION_THRESHOLD + Duration::from_micros(1));
        let fresh = {
            let (m, turn) = (m.clone(), turn.clone());
            thread::spawn(move || {
                m.lock();
                assert_eq!(turn.fetch_add(1, Ordering::Relaxed), 1);
                m.unlock();
            })
        };
        wait_for_waiters(&m, 2);
        m.unlock();
        starved.join().unwrap();
        fresh.join().unwrap();
        assert!(!m.is_starving(), "starvation mode was not left");
        assert!(!m.is_locked() && m.waiters() == 0 && !m.is_woken());
    });
}
