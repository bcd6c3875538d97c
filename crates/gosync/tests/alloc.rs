//! No allocation per blocking wait in the steady state: a thread's waiter, a task's waiter and
//! a channel operation's slot come from per-thread caches once the first waits have made them.
//! Checked with a counting allocator, per thread, over many waits that really block.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use gosync::chan::Chan;
use gosync::sync::RawMutex;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialized thread-local,
// which needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

const WARM_UP: usize = 200;
const WAITS: usize = 2_000;
/// Allowed: a rare miss of a cache (a notifier still holding a waiter for a moment when the
/// next wait begins) — far below one per wait.
const SLACK: usize = WAITS / 100;

/// Runs `round` WARM_UP times, then WAITS times, counting the calling thread's allocations
/// in the second phase.
fn steady(mut round: impl FnMut()) -> usize {
    for _ in 0..WARM_UP {
        round();
    }
    let before = allocs();
    for _ in 0..WAITS {
        round();
    }
    allocs() - before
}

#[test]
fn blocking_channel_operations_allocate_nothing() {
    // A rendezvous: each receive here blocks until the peer's send.
    let ch: Chan<u64> = Chan::new(0);
    let tx = ch.clone();
    let peer = thread::spawn(move || {
        for i in 0..(WARM_UP + WAITS) as u64 {
            tx.send(i).unwrap();
        }
    });
    let n = steady(|| {
        ch.recv().unwrap();
    });
    peer.join().unwrap();
    eprintln!("{n} allocations over {WAITS} blocking receives");
    assert!(n <= SLACK, "{n} allocations over {WAITS} blocking receives");

    let back = ch.clone();
    let peer = thread::spawn(move || {
        for _ in 0..WARM_UP + WAITS {
            back.recv().unwrap();
        }
    });
    let n = steady(|| ch.send(7).unwrap());
    peer.join().unwrap();
    eprintln!("{n} allocations over {WAITS} blocking sends");
    assert!(n <= SLACK, "{n} allocations over {WAITS} blocking sends");
}

#[test]
fn blocking_mutex_locks_allocate_nothing() {
    let m = Arc::new(RawMutex::new());
    let go = Arc::new(AtomicBool::new(false));
    let holder = {
        let (m, go) = (m.clone(), go.clone());
        thread::spawn(move || {
            for _ in 0..WARM_UP + WAITS {
                m.lock();
                go.store(true, Ordering::Release);
                // Hold the lock until the other thread has queued behind it.
                while m.waiters() == 0 {
                    thread::yield_now();
                }
                m.unlock();
                while go.load(Ordering::Acquire) {
                    thread::yield_now();
                }
            }
        })
    };
    let n = steady(|| {
        while !go.load(Ordering::Acquire) {
            thread::yield_now();
        }
        m.lock(); // blocks: the holder waits for us to queue
        m.unlock();
        go.store(false, Ordering::Release);
    });
    holder.join().unwrap();
    eprintln!("{n} allocations over {WAITS} blocking locks");
    assert!(n <= SLACK, "{n} allocations over {WAITS} blocking locks");
}

#[test]
fn a_task_waiting_on_a_channel_allocates_nothing() {
    let ch: Chan<u64> = Chan::new(0);
    let tx = ch.clone();
    let peer = thread::spawn(move || {
        for i in 0..(WARM_UP + WAITS) as u64 {
            tx.send(i).unwrap();
        }
    });
    let n = futures::executor::block_on(async {
        for _ in 0..WARM_UP {
            ch.recv_async().await.unwrap();
        }
        let before = allocs();
        for _ in 0..WAITS {
            ch.recv_async().await.unwrap();
        }
        allocs() - before
    });
    peer.join().unwrap();
    eprintln!("{n} allocations over {WAITS} async receives");
    assert!(n <= SLACK, "{n} allocations over {WAITS} async receives");
}
