//! The shared handle of a channel waiter's slot, allocated from a per-thread pool.
//!
//! A blocked channel operation shares its [`Slot`] between its owner and the channel's queue,
//! which `Arc` would do with one allocation per wait. `SlotRef` is the same reference count
//! over a block that comes from a small per-thread pool of freed blocks, keyed by layout —
//! one pool for every `Slot<T>` whatever `T`, which a typed cache could not be — so a thread
//! (or an executor's worker) that keeps waiting reuses the same few blocks. Under loom it is
//! `Arc` itself (see `core.rs`), so the models see every access to the count.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

use super::core::Slot;

struct Block<T> {
    refs: AtomicUsize,
    slot: Slot<T>,
}

/// A counted reference to a [`Slot`], as `Arc<Slot<T>>`.
pub(crate) struct SlotRef<T> {
    ptr: NonNull<Block<T>>,
    _owns: PhantomData<Block<T>>,
}

// SAFETY: a `SlotRef` shares a `Slot<T>` across threads exactly as `Arc<Slot<T>>` would, and
// `Slot<T>` is `Send + Sync` when `T: Send`.
unsafe impl<T: Send> Send for SlotRef<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SlotRef<T> {}

impl<T> SlotRef<T> {
    /// A slot in a block from the calling thread's pool, or a fresh one.
    pub(crate) fn new(slot: Slot<T>) -> Self {
        let layout = Layout::new::<Block<T>>();
        let mem = pool_take(layout).unwrap_or_else(|| {
            // SAFETY: `Block<T>` holds an `AtomicUsize`, so its layout is not zero-sized.
            let p = unsafe { alloc(layout) };
            NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout))
        });
        let ptr = mem.cast::<Block<T>>();
        // SAFETY: `mem` is a block of `layout`, unused (fresh or taken from the pool).
        unsafe {
            ptr.as_ptr().write(Block {
                refs: AtomicUsize::new(1),
                slot,
            })
        };
        SlotRef {
            ptr,
            _owns: PhantomData,
        }
    }

    /// Whether `a` and `b` are the same slot.
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// The slot itself, if `this` is its last reference; `this` back otherwise.
    pub(crate) fn try_unwrap(this: Self) -> Result<Slot<T>, Self> {
        // SAFETY: the block lives while `this` counts in it.
        let block = unsafe { this.ptr.as_ref() };
        if block
            .refs
            .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(this);
        }
        let ptr = this.ptr;
        std::mem::forget(this);
        // SAFETY: the count was 1 and is now 0: nobody else can reach the block; the slot is
        // moved out once and the block goes back to the pool without dropping it again.
        unsafe {
            let slot = std::ptr::read(&(*ptr.as_ptr()).slot);
            pool_put(ptr.cast(), Layout::new::<Block<T>>());
            Ok(slot)
        }
    }
}

impl<T> Clone for SlotRef<T> {
    fn clone(&self) -> Self {
        // SAFETY: the block lives while `self` counts in it. Relaxed, as `Arc`: a new reference
        // is made from an existing one, which orders everything it needs.
        unsafe { self.ptr.as_ref() }
            .refs
            .fetch_add(1, Ordering::Relaxed);
        SlotRef {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for SlotRef<T> {
    fn drop(&mut self) {
        // SAFETY: the block lives while `self` counts in it.
        if unsafe { self.ptr.as_ref() }
            .refs
            .fetch_sub(1, Ordering::Release)
            != 1
        {
            return;
        }
        // As `Arc`: every other reference's uses happen before the slot is dropped.
        fence(Ordering::Acquire);
        // SAFETY: the last reference: drop the slot once, then recycle the block.
        unsafe {
            std::ptr::drop_in_place(&mut (*self.ptr.as_ptr()).slot);
            pool_put(self.ptr.cast(), Layout::new::<Block<T>>());
        }
    }
}

impl<T> Deref for SlotRef<T> {
    type Target = Slot<T>;

    fn deref(&self) -> &Slot<T> {
        // SAFETY: the block lives while `self` counts in it.
        unsafe { &self.ptr.as_ref().slot }
    }
}

/// How many freed blocks a thread keeps.
const POOL: usize = 8;

/// Freed blocks, with their layouts; deallocated when the thread exits.
struct Pool(Vec<(Layout, NonNull<u8>)>);

impl Drop for Pool {
    fn drop(&mut self) {
        for (layout, p) in self.0.drain(..) {
            // SAFETY: every block in the pool came from `alloc` with this layout.
            unsafe { dealloc(p.as_ptr(), layout) };
        }
    }
}

thread_local! {
    static BLOCKS: RefCell<Pool> = const { RefCell::new(Pool(Vec::new())) };
}

fn pool_take(layout: Layout) -> Option<NonNull<u8>> {
    BLOCKS
        .try_with(|b| {
            let mut b = b.borrow_mut();
            let i = b.0.iter().position(|(l, _)| *l == layout)?;
            Some(b.0.swap_remove(i).1)
        })
        .ok()
        .flatten()
}

/// Gives back a block of `layout` (from `alloc`), keeping it for reuse if there is room.
///
/// # Safety
/// `p` came from `alloc(layout)` (directly or through the pool) and nothing uses it any more.
unsafe fn pool_put(p: NonNull<u8>, layout: Layout) {
    let kept = BLOCKS
        .try_with(|b| {
            let mut b = b.borrow_mut();
            if b.0.len() < POOL {
                b.0.push((layout, p));
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: per this function's contract.
        unsafe { dealloc(p.as_ptr(), layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sema::{Origin, WaitKind, Waiter};

    fn slot(v: Option<String>) -> Slot<String> {
        Slot::bare(
            Waiter::untimed(Origin::here(WaitKind::ChanRecv), None),
            0,
            v,
        )
    }

    #[test]
    fn the_last_reference_drops_the_value_and_a_block_is_reused() {
        let a = SlotRef::new(slot(Some("x".into())));
        let b = a.clone();
        assert!(SlotRef::ptr_eq(&a, &b));
        let addr = a.ptr;
        let Err(a) = SlotRef::try_unwrap(a) else {
            panic!("unwrapped a shared slot");
        };
        drop(b);
        assert!(SlotRef::try_unwrap(a).is_ok(), "the last reference");
        let c = SlotRef::new(slot(None));
        assert_eq!(c.ptr, addr, "the freed block was not reused");
    }
}
