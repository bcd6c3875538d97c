//! loom models of the mutex in starvation mode, where `unlock` hands the lock directly to the
//! head waiter: every waiter counts as starved in this binary (time does not pass under loom).
#![cfg(loom)]

mod loom_support;

#[test]
fn handoff_mode() {
    gosync::__loom_force_starvation(true);
    loom_support::mutex_models();
}

#[test]
fn cancel_after_handoff() {
    gosync::__loom_force_starvation(true);
    loom_support::cancel_model();
}

#[test]
fn three_parties() {
    gosync::__loom_force_starvation(true);
    loom_support::three_party_model();
}
