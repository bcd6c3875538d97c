//! A small per-thread random number generator for `select`'s uniform choice (wyrand).
//! Statistical quality is all that is needed here, not unpredictability.

#[cfg(not(loom))]
use std::cell::Cell;

#[cfg(not(loom))]
thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

#[cfg(not(loom))]
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS once per process and varied per instance.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(&h as *const _ as usize);
    h.finish() | 1
}

/// A random number below `n` (`n > 0`).
#[cfg(not(loom))]
pub(crate) fn below(n: usize) -> usize {
    let r = STATE.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = (x as u128).wrapping_mul((x ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) as u64) ^ (t as u64)
    });
    // Multiply-shift reduction: unbiased enough for small n.
    ((r as u128 * n as u128) >> 64) as usize
}

/// Under loom the order must be deterministic: models choose it with
/// [`crate::__loom_select_reverse`] (arms in order, or in reverse).
#[cfg(loom)]
pub(crate) static REVERSE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Fills `order` with a uniformly random permutation of `0..order.len()` (Fisher–Yates).
#[cfg(loom)]
pub(crate) fn shuffle(order: &mut [u32]) {
    let n = order.len() as u32;
    let rev = REVERSE.load(std::sync::atomic::Ordering::Relaxed);
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = if rev { n - 1 - i as u32 } else { i as u32 };
    }
}

/// Fills `order` with a uniformly random permutation of `0..order.len()` (Fisher–Yates).
#[cfg(not(loom))]
pub(crate) fn shuffle(order: &mut [u32]) {
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = i as u32;
    }
    for i in (1..order.len()).rev() {
        let j = below(i + 1);
        order.swap(i, j);
    }
}
