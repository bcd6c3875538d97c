//! One timer thread for the whole process.
//!
//! gosync depends on no async runtime, yet contexts need deadlines (and channels will need
//! `after` and `tick`). Rather than a thread per timer, every timer goes into one min-heap of
//! deadlines served by a single thread, `gosync-timer`, started the first time a timer is
//! scheduled. The thread sleeps on a condition variable until the earliest deadline (or until a
//! new, earlier one arrives), runs every callback that has come due — outside the lock — and
//! sleeps again.
//!
//! A cancelled timer's callback is dropped at once; its heap entry (an instant and an id) stays
//! until it comes due or until cancelled entries make up more than half the heap, when the heap
//! is rebuilt without them. Memory is therefore bounded by about twice the number of live
//! timers, however many are scheduled and cancelled.
//!
//! Callbacks run on the timer thread, one after another: they must be short and must not block
//! (cancelling a context, waking a waiter). A callback may schedule or cancel timers. A
//! panicking callback is caught so the thread keeps serving the others.
//!
//! This module measures real time with the system clock; it is not modelled under loom.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

/// What runs when a timer comes due.
pub(crate) type Callback = Box<dyn FnOnce() + Send>;

/// The heap is rebuilt once it holds more than this many entries and more than twice as many
/// entries as live timers.
const COMPACT_MIN: usize = 64;

struct Timers {
    state: Mutex<State>,
    /// Signalled when a new earliest deadline arrives.
    cond: Condvar,
}

struct State {
    /// Deadlines, earliest on top; an entry whose id is not in `pending` was cancelled.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The callbacks of timers that have neither fired nor been cancelled.
    pending: HashMap<u64, Callback>,
    next_id: u64,
    started: bool,
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<Timers> = OnceLock::new();
    TIMERS.get_or_init(|| Timers {
        state: Mutex::new(State {
            heap: BinaryHeap::new(),
            pending: HashMap::new(),
            next_id: 1,
            started: false,
        }),
        cond: Condvar::new(),
    })
}

impl Timers {
    /// The state lock. No callback runs under it, and no code under it panics, so poisoning can
    /// only come from an allocation failure; carry on regardless.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `callback` on the timer thread once `deadline` has passed (at once if it already has).
pub(crate) fn schedule(deadline: Instant, callback: Callback) -> TimerHandle {
    let t = timers();
    let mut s = t.lock();
    let id = s.next_id;
    s.next_id += 1;
    let earliest = s.heap.peek().is_none_or(|Reverse((d, _))| deadline < *d);
    s.heap.push(Reverse((deadline, id)));
    s.pending.insert(id, callback);
    if !s.started {
        std::thread::Builder::new()
            .name("gosync-timer".into())
            .spawn(move || run(t))
            .expect("gosync: cannot spawn the timer thread");
        s.started = true;
    }
    drop(s);
    if earliest {
        t.cond.notify_one();
    }
    TimerHandle { id }
}

/// The timer thread's loop.
fn run(t: &'static Timers) {
    let mut s = t.lock();
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(&Reverse((deadline, id))) = s.heap.peek() {
            if deadline > now {
                break;
            }
            s.heap.pop();
            if let Some(cb) = s.pending.remove(&id) {
                due.push(cb);
            }
        }
        if !due.is_empty() {
            drop(s);
            for cb in due {
                // A panic in one callback must not stop the timers of everyone else.
                let _ = catch_unwind(AssertUnwindSafe(cb));
            }
            s = t.lock();
            continue;
        }
        s = match s.heap.peek() {
            Some(&Reverse((deadline, _))) => {
                t.cond
                    .wait_timeout(s, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => t.cond.wait(s).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// A scheduled timer. Dropping the handle does not cancel the timer.
pub(crate) struct TimerHandle {
    id: u64,
}

impl TimerHandle {
    /// Cancels the timer: its callback is dropped without running. `false` if the callback has
    /// already run or is running now.
    pub(crate) fn cancel(&self) -> bool {
        let mut s = timers().lock();
        let removed = s.pending.remove(&self.id);
        if removed.is_some() && s.heap.len() > COMPACT_MIN && s.heap.len() > 2 * s.pending.len() {
            let State { heap, pending, .. } = &mut *s;
            heap.retain(|Reverse((_, id))| pending.contains_key(id));
        }
        drop(s);
        // The callback may own anything; drop it outside the lock.
        removed.is_some()
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle").field("id", &self.id).finish()
    }
}

/// The number of timers not yet fired nor cancelled, and of entries in the heap.
#[cfg(all(test, not(loom)))]
pub(crate) fn counts() -> (usize, usize) {
    let s = timers().lock();
    (s.pending.len(), s.heap.len())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_and_cancel_drops() {
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        let mut handles = Vec::new();
        for (i, ms) in [30u64, 10, 20].into_iter().enumerate() {
            let tx = tx.clone();
            handles.push(schedule(
                now + Duration::from_millis(ms),
                Box::new(move || tx.send(i).unwrap()),
            ));
        }
        let tx2 = tx.clone();
        let cancelled = schedule(
            now + Duration::from_millis(5),
            Box::new(move || tx2.send(99).unwrap()),
        );
        assert!(cancelled.cancel());
        assert!(!cancelled.cancel());
        let got: Vec<usize> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, vec![1, 2, 0]);
        for h in handles {
            assert!(!h.cancel());
        }
        drop(tx);
        assert!(rx.recv_timeout(Duration::from_millis(20)).is_err());
    }

    #[test]
    fn cancelled_entries_are_compacted() {
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..10_000 {
            schedule(far, Box::new(|| {})).cancel();
        }
        // Other tests may hold live timers; the cancelled ones must not pile up beyond them.
        let (live, heap) = counts();
        assert!(
            heap <= COMPACT_MIN.max(2 * live) + 1,
            "heap kept {heap} entries for {live} live timers"
        );
    }
}
