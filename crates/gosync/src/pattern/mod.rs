//! Go's channel patterns — or-done, or, fan-in, fan-out, tee, pipeline stages, bridge and the
//! stream operators — generic, stoppable, for threads and async tasks alike.
//!
//! Each pattern is the Go code of the course, written once over gosync's channels: it reads
//! from input channels, writes to output channels, and stops when its input is drained, when
//! its **done** channel fires, or when its consumers have closed its outputs. The channel-backed
//! mutex of the same chapter is here too, as [`ChanMutex`].
//!
//! # Go → gosync
//!
//! | the course's Go code                    | gosync                                                   |
//! |-----------------------------------------|----------------------------------------------------------|
//! | `Mutex{ch}` with `<-m.ch` as `Lock`     | [`ChanMutex::new`] ([`LockBy::Recv`])                    |
//! | `Mutex{ch}` with `m.ch <- struct{}{}` as `Lock` | [`ChanMutex::with_lock_by`]`(`[`LockBy::Send`]`)` |
//! | `TryLock`, `TryLock(timeout)`, `IsLocked` | [`ChanMutex::try_lock`], [`ChanMutex::lock_timeout`], [`ChanMutex::is_locked`] |
//! | `orDone(done, c)`                       | [`or_done`], driver [`OrDone`]                           |
//! | `or(chans...)` (goroutine, recursive, `reflect.Select` variants) | [`or()`], driver [`Or`]         |
//! | `fanIn`, `fanInRec`, `fanInReflect`     | [`fan_in`], driver [`FanIn`]                             |
//! | `fanOut(ch, out, false)`, `fanOutReflect` (every output gets every value) | [`fan_out`], driver [`Broadcast::new`] |
//! | `fanOut(ch, out, true)` (no waiting for slow outputs) | [`fan_out_lossy`], driver [`Broadcast::lossy`] |
//! | `fanOut` round-robin                    | [`fan_out_round_robin`], driver [`RoundRobin`]           |
//! | `tee(done, in)`                         | [`tee`], driver [`Tee`]                                  |
//! | `sq(in)`, a pipeline stage              | [`stage`], [`stage_n`], driver [`Stage`]                 |
//! | `gen(nums...)`                          | [`from_iter`], driver [`Generator`]                      |
//! | `bridge(done, chanStream)`, channels over channel | [`bridge`], driver [`Bridge`]                  |
//! | `take`, `takeWhile`                     | [`take`], [`take_while`] (steps [`Take`], [`TakeWhile`]) |
//! | `skipN`, `skipWhile`                    | [`skip`], [`skip_while`] (steps [`Skip`], [`SkipWhile`]) |
//! | `mapChan`, filter                       | [`map`], [`filter`] (steps [`Map`], [`Filter`])          |
//! | reduce                                  | [`reduce`], [`reduce_async`]                             |
//! | `repeat(done, values...)`, `repeatFn(done, fn)` | [`repeat`], [`generator`]                        |
//!
//! # Drivers: one loop, run on a thread or as a task
//!
//! A Go pattern is a function that starts a goroutine and returns its output channel. gosync
//! depends on no async runtime, so it cannot start a task for you, and an OS thread costs far
//! more than a goroutine. So every pattern that needs a running loop is a **driver**: a value
//! that owns its channels and implements [`Driver`], which runs the loop
//!
//! * on the calling thread, blocking: [`Driver::run`] (it selects with [`select!`](crate::select));
//! * as a future for any executor: [`Driver::run_async`] (it selects with
//!   [`select_async!`](crate::select_async)) — `tokio::spawn(driver.run_async())`;
//! * on a new thread: [`Driver::spawn`], which returns the thread's `JoinHandle`.
//!
//! The functions named after the Go code ([`or_done`], [`fan_in`], [`tee`], ...) build the
//! driver with unbuffered output channels, as Go's `make(chan T)`, spawn it on a thread and
//! return its outputs — the Go shape. For a buffered output, an output you already have, or
//! a task instead of a thread, build the driver (`OrDone::new(done, input, output)`) and run
//! it yourself.
//!
//! Consumers ([`reduce`]) run on the caller and have a blocking and an `_async` form.
//!
//! # Done: stopping a pattern
//!
//! Every driver takes a `done: Receiver<()>` and stops when a receive from it completes —
//! normally because someone closed it, which stops every pattern listening at once (Go's
//! `close(done)`). Every place a driver can block selects on `done` as well, so a driver
//! stopped by `done` ends promptly: its thread returns and its future completes. The nil
//! channel (`Chan::nil().receiver()`) never fires: a pattern with a nil `done` stops only when
//! its input is drained.
//!
//! A [`Context`](crate::context::Context) plugs in through its done channel:
//!
//! ```
//! use gosync::context;
//! use gosync::pattern;
//!
//! let (ctx, cancel) = context::with_cancel(&context::background());
//! let naturals = pattern::generator(ctx.done_chan(), {
//!     let mut n = 0u64;
//!     move || {
//!         n += 1;
//!         Some(n)
//!     }
//! });
//! let first: Vec<u64> = naturals.iter().take(3).collect();
//! assert_eq!(first, [1, 2, 3]);
//! cancel.cancel(); // the generator's thread ends, and `naturals` is closed
//! let rest: Vec<u64> = naturals.iter().collect(); // ends: what was in flight, if anything
//! assert!(rest.iter().zip(4..).all(|(v, n)| *v == n)); // nothing lost or repeated
//! ```
//!
//! # What every pattern guarantees
//!
//! * **Its outputs are closed when it ends** — input drained, `done` fired, or a panic in a
//!   user function — so `for v in &out` ends, as Go's `defer close(out)`.
//! * **No value is duplicated or reordered** on its way through: each output receives a
//!   subsequence of what the pattern was given, in order. A value the pattern has received
//!   but not yet delivered when `done` fires is dropped, as in Go.
//! * **A closed output means the consumer left.** Go panics on a send to a closed channel;
//!   a gosync driver stops writing to an output its consumer closed (the value comes back
//!   and is dropped, or, for fan-out, goes to the other outputs) and ends when no output is
//!   left.
//! * **Happens-before**: each delivered value passes through channel sends and receives, so
//!   what a producer did before sending happens before the consumer receives the value.
//!
//! # `or`: one waiter on N channels
//!
//! The course shows three ways to wait for the first of N done channels: a goroutine per
//! channel, a recursive tree of two-way selects, and `reflect.Select`. gosync keeps one: a
//! single thread (or task) waiting in one dynamic select over all N channels. The select
//! registers one waiter on every channel and sleeps once; the first channel to fire wakes it
//! and the others' entries are withdrawn. That is the `reflect.Select` shape, without
//! reflection: one thread instead of N (goroutine version) or about N (recursive version),
//! which matters when the waiter is an OS thread. [`fan_in`] waits the same way.
//!
//! # Choosing threads or tasks
//!
//! A spawned pattern holds an OS thread for as long as it runs, and a pattern whose input
//! never closes and whose `done` never fires holds it for ever — Go's goroutine leak, made
//! costlier. Close `done` when the consumer gives up. Where many patterns run at once, run
//! their drivers as tasks.

use std::future::Future;
use std::thread::{self, JoinHandle};

use crate::chan::{Receiver, Sender};
use crate::{select, select_async};

mod fan;
mod mutex;
mod or;
mod pipeline;
mod stream;
mod tee;

pub use fan::{fan_in, fan_out, fan_out_lossy, fan_out_round_robin, Broadcast, FanIn, RoundRobin};
pub use mutex::{ChanMutex, LockBy, LockFuture};
pub use or::{or, or_done, Or, OrDone};
pub use pipeline::{bridge, stage, stage_n, Bridge, Flow, Stage, Step};
pub use stream::{
    filter, from_iter, generator, map, reduce, reduce_async, repeat, skip, skip_while, take,
    take_while, Filter, Generator, Map, Skip, SkipWhile, Take, TakeWhile,
};
pub use tee::{tee, Tee};

/// A pattern's loop, ready to run: blocking on a thread, as a future on any executor, or on a
/// thread of its own.
///
/// Every driver owns its channels; running it consumes it. It ends when its input is drained,
/// when its done channel fires, or when its consumers have closed its outputs, and it closes
/// its outputs as it ends.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, OrDone};
///
/// let input = Chan::new(3);
/// for i in 0..3 {
///     input.send(i).unwrap();
/// }
/// input.close();
/// let done = Chan::new(0);
/// let output = Chan::new(3);
/// // Run the loop on this thread: the output is buffered, so it can hold every value.
/// OrDone::new(done.receiver(), input.receiver(), output.sender()).run();
/// assert_eq!(output.iter().collect::<Vec<_>>(), [0, 1, 2]);
/// ```
pub trait Driver: Sized {
    /// Runs the loop on the calling thread until it ends.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::{Driver, Generator};
    ///
    /// let out = Chan::new(4);
    /// Generator::new(Chan::nil().receiver(), 1..=4, out.sender()).run();
    /// assert_eq!(out.iter().sum::<i32>(), 10);
    /// ```
    fn run(self);

    /// The loop as a future: spawn it on any executor, or await it.
    ///
    /// Dropping the future ends the loop where it waits, as if done had fired: the outputs
    /// are closed, a value taken from the input but not yet delivered is dropped, and no
    /// value still in an input channel is lost (channel futures are cancel-safe).
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::{Driver, Generator};
    ///
    /// # futures::executor::block_on(async {
    /// let out = Chan::new(0);
    /// let driver = Generator::new(Chan::nil().receiver(), 1..=4, out.sender());
    /// let consumer = async {
    ///     let mut sum = 0;
    ///     while let Some(v) = out.recv_async().await {
    ///         sum += v;
    ///     }
    ///     sum
    /// };
    /// let ((), sum) = futures::join!(driver.run_async(), consumer);
    /// assert_eq!(sum, 10);
    /// # });
    /// ```
    fn run_async(self) -> impl Future<Output = ()> + Send;

    /// Runs the loop on a new thread; join the handle to wait until it has ended.
    ///
    /// # Panics
    ///
    /// If the thread cannot be created.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::{Driver, Generator};
    ///
    /// let out = Chan::new(0);
    /// let worker = Generator::new(Chan::nil().receiver(), 0..3, out.sender()).spawn();
    /// assert_eq!(out.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// worker.join().unwrap();
    /// ```
    fn spawn(self) -> JoinHandle<()>
    where
        Self: Send + 'static,
    {
        thread::Builder::new()
            .name("gosync-pattern".into())
            .spawn(move || self.run())
            .expect("gosync: cannot spawn a pattern thread")
    }
}

/// Closes an output when dropped — on every way out of a driver's loop, panics included —
/// unless it is nil or already closed (by its consumer).
pub(crate) struct CloseOnDrop<'a, T>(pub(crate) &'a Sender<T>);

impl<T> Drop for CloseOnDrop<'_, T> {
    fn drop(&mut self) {
        close_quietly(self.0);
    }
}

/// Closes `tx` unless it is nil or already closed.
pub(crate) fn close_quietly<T>(tx: &Sender<T>) {
    let chan = tx.chan();
    if !chan.is_nil() && !chan.is_closed() {
        chan.close();
    }
}

/// Receives from `input` unless `done` fires first: `None` when `done` fired or `input` is
/// closed and drained.
pub(crate) fn recv_or_done<T>(done: &Receiver<()>, input: &Receiver<T>) -> Option<T> {
    select! {
        recv(done) -> _ => None,
        recv(input) -> v => v,
    }
}

/// [`recv_or_done`] for tasks.
pub(crate) async fn recv_or_done_async<T>(done: &Receiver<()>, input: &Receiver<T>) -> Option<T> {
    select_async! {
        recv(done) -> _ => None,
        recv(input) -> v => v,
    }
}

/// Sends `value` on `out` unless `done` fires first: `false` when `done` fired or `out` is
/// closed (the value is dropped).
pub(crate) fn send_or_done<T>(done: &Receiver<()>, out: &Sender<T>, value: T) -> bool {
    select! {
        send(out, value) -> r => r.is_ok(),
        recv(done) -> _ => false,
    }
}

/// [`send_or_done`] for tasks.
pub(crate) async fn send_or_done_async<T>(done: &Receiver<()>, out: &Sender<T>, value: T) -> bool {
    select_async! {
        send(out, value) -> r => r.is_ok(),
        recv(done) -> _ => false,
    }
}

/// Spawns `f` on a named thread (the convenience functions' goroutine).
pub(crate) fn go(name: &str, f: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("gosync: cannot spawn a pattern thread");
}
