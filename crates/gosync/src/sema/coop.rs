//! A cooperative budget for async operations that complete at once.
//!
//! An async task that loops on an operation which is always ready — acquiring a free
//! semaphore, say — never returns `Pending`, so its executor never gets the thread back, and
//! the other tasks on that worker starve: not by the primitive's fault, but because nothing in
//! the loop yields. (Go preempts goroutines; executors cannot preempt tasks.) tokio's own
//! primitives avoid it with a per-task budget kept by tokio's scheduler; gosync runs on any
//! executor, so it keeps a budget per thread instead: every [`BUDGET`]-th operation that could
//! complete at once on a thread yields once instead (wakes its task and returns `Pending`).
//! The cost is one thread-local counter per ready completion and one extra poll in
//! `BUDGET`.

use std::task::Context;

/// Ready completions allowed on a thread between two yields (tokio's per-task budget is 128).
#[cfg(not(loom))]
pub(crate) const BUDGET: u32 = 128;

#[cfg(not(loom))]
thread_local! {
    static LEFT: std::cell::Cell<u32> = const { std::cell::Cell::new(BUDGET) };
}

/// Spends one unit of the calling thread's budget for an operation about to complete at once;
/// `false` when the budget ran out: the caller's task has been woken and must return `Pending`
/// without changing anything (it will be polled again soon, after its executor's other tasks
/// had a turn).
#[inline]
pub(crate) fn proceed(cx: &Context<'_>) -> bool {
    #[cfg(not(loom))]
    {
        let ok = LEFT
            .try_with(|left| match left.get() {
                0 => {
                    left.set(BUDGET);
                    false
                }
                n => {
                    left.set(n - 1);
                    true
                }
            })
            .unwrap_or(true);
        if !ok {
            cx.waker().wake_by_ref();
        }
        ok
    }
    #[cfg(loom)]
    {
        let _ = cx;
        true
    }
}
