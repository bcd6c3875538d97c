//! loom models of the waiter core as the mutex uses it: mutual exclusion with its
//! happens-before edge, thread/task sharing, and cancellation of a queued future racing an
//! unlock. Run with `RUSTFLAGS="--cfg loom" cargo test -p gosync --release --test loom_mutex`.
#![cfg(loom)]

mod loom_support;

use loom_support::mutex_models;

#[test]
fn normal_mode() {
    gosync::__loom_force_starvation(false);
    mutex_models();
}

#[test]
fn cancel_after_poll_races_unlock() {
    gosync::__loom_force_starvation(false);
    loom_support::cancel_model();
}

#[test]
fn three_parties() {
    gosync::__loom_force_starvation(false);
    loom_support::three_party_model();
}
