//! Go's `sync` package: mutual exclusion locks, condition variables, wait groups and once.
//!
//! Every type here parks through the same waiter core, so a thread and an
//! async task can wait on the same object, and each type's docs state the happens-before edge
//! it provides in the words of the Go memory model.

mod cond;
mod mutex;
mod once;
mod pool;
mod rwmutex;
mod waitgroup;

pub use cond::{Cond, CondGuard, Locker, RLocker, WaitFuture, WaitGuardFuture};
pub use mutex::{LockFuture, Mutex, MutexGuard, MutexLockFuture, RawMutex, STARVATION_THRESHOLD};
pub use once::{CallOnceFuture, Once, OnceFunc, OnceValue};
pub use pool::{Pool, PoolGuard};
pub use rwmutex::{
    RawRwMutex, ReadLockFuture, RwMutex, RwMutexReadFuture, RwMutexReadGuard, RwMutexWriteFuture,
    RwMutexWriteGuard, WriteLockFuture,
};
pub use waitgroup::{WaitGroup, WaitGroupFuture};
