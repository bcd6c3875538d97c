//! Duplicate call suppression, as Go's `golang.org/x/sync/singleflight`: of all the callers
//! that ask for the same key at the same time, one runs the function and every one gets its
//! result.
//!
//! [`Group::call`] runs `f` for a key unless a call for that key is in flight, in which case it
//! waits for that call and returns a clone of its value; the `bool` says whether the value was
//! shared (Go's `shared`). Threads ([`call`](Group::call)), tasks
//! ([`call_async`](Group::call_async)) and channel receivers ([`call_chan`](Group::call_chan))
//! share one group and one in-flight call per key: a task may wait for a thread's `f`, a thread
//! for a task's future.
//!
//! | Go (`singleflight`)       | gosync                                            |
//! |---------------------------|---------------------------------------------------|
//! | `var g singleflight.Group`| [`Group::new`] (any `K: Hash + Eq + Clone`, any `V: Clone`) |
//! | `g.Do(key, fn)`           | [`Group::call`] → `(V, shared)`                   |
//! | —                         | [`Group::call_async`] `(key, future).await` → `(V, shared)` |
//! | `g.DoChan(key, fn)`       | [`Group::call_chan`] → [`Receiver<(V, bool)>`](crate::chan::Receiver) |
//! | `g.Forget(key)`           | [`Group::forget`]                                 |
//! | `(v, err)`                | `V` is the whole result: use `V = Result<T, E>` for Go's `(val, err)` |
//!
//! # How it works
//!
//! A `std::sync::Mutex<HashMap<K, Arc<Call>>>` holds the calls in flight (the lock is held only
//! to look up, insert or remove, never while `f` runs, as in Go). A call holds its result slot
//! (written once, read by every caller), Go's `dups` count, the channels of `call_chan`
//! callers, and a queue of the library's waiter core, where every caller that waits for it
//! sleeps — threads parked, tasks suspended — so [`diag::blocked`](crate::diag::blocked) lists
//! them (as waits of kind [`WaitKind::Singleflight`]: a caller waiting for
//! another caller's function). The caller whose function completes removes the key, stores
//! the value and wakes them all. The joining path — the cost of a duplicate call — is one lock,
//! one hash lookup, a counter increment and the wait.
//!
//! # Async calls: driven by every caller
//!
//! gosync has no executor to spawn the future of a [`call_async`](Group::call_async) on, so
//! the future lives in the shared call and **whoever waits for it drives it**: at any moment
//! one of the waiting callers — the one that started it, or any task or thread that joined —
//! polls it, with a waker of the call's own; the others sleep in the queue. When the future's
//! waker fires, every waiting caller is woken and the first to run polls for everyone; the
//! others queue again (a caller that joins does not poll the future again: it is polled once
//! per wake). So a caller that is dropped does not cancel the call for the others: any other
//! caller polls instead. A thread that calls
//! [`call`](Group::call) while the key's call is an async one drives the future too (parking
//! between polls), so it cannot hang when every task gives up. A future that wakes itself is
//! re-polled from its caller's executor, not in a loop, as it would be if it were spawned. The
//! machinery is shared with [`errgroup::TaskGroup`](crate::errgroup::TaskGroup).
//!
//! When every caller of an async call is gone — dropped before it completed — the call is
//! **abandoned**: its future is dropped and the key is free, so the next caller starts afresh.
//! (A sync `f` cannot be abandoned: it runs to completion on its caller's thread.)
//!
//! # Panics
//!
//! If `f` (or the future) panics, the key is freed, the caller that ran it — the thread that
//! called `f`, or the caller whose poll panicked — panics with the original payload
//! ([`resume_unwind`]), and every other waiting caller panics with
//! `"singleflight: the shared call panicked: <message>"`, where `<message>` is the original
//! panic's message (a payload cannot be cloned). The next call for the key runs its own `f`
//! (Go's `TestPanicDo`). The channels of `call_chan` callers are closed without a value (their
//! `recv` returns `None`): Go crashes the whole program instead, so that those receivers are
//! not left blocked; gosync lets the panic unwind the thread that ran `f` (the panic hook
//! reports it) and wakes the receivers with the closed channel.
//!
//! # Happens-before
//!
//! In the words of the Go memory model: the return of the `f` (or the completion of the
//! future) of a call synchronizes before the return of every `call`, `call_async` and
//! `call_chan` receive that gets its result.
//!
//! # Misuse
//!
//! As in Go, an `f` that calls the group for its own key waits for itself forever. Go panics
//! on no misuse of a group, and neither does gosync.
//!
//! ```
//! use gosync::singleflight::Group;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let lookups = Arc::new(AtomicUsize::new(0));
//! let g = Group::<String, Result<u32, String>>::new();
//! let threads: Vec<_> = (0..4)
//!     .map(|_| {
//!         let (g, lookups) = (g.clone(), lookups.clone());
//!         std::thread::spawn(move || {
//!             g.call("config".to_string(), || {
//!                 lookups.fetch_add(1, Ordering::Relaxed);
//!                 Ok(42)
//!             })
//!         })
//!     })
//!     .collect();
//! for t in threads {
//!     let (value, _shared) = t.join().unwrap();
//!     assert_eq!(value, Ok(42));
//! }
//! // Usually 1: callers that arrived while a lookup was in flight shared it.
//! assert!(lookups.load(Ordering::Relaxed) >= 1);
//! ```

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::mem;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use crate::chan::{Chan, Receiver, Sender};
use crate::sema::drive::Drive;
use crate::sema::{
    lock_unpoisoned as lock, panic_message, Origin, Payload, Ticket, WaitKind, WaitRecord,
};

type BoxFuture<V> = Pin<Box<dyn Future<Output = V> + Send + 'static>>;
/// The calls in flight, by key.
type Calls<K, V, S> = Mutex<HashMap<K, Arc<Call<V>>, S>>;
/// Polls an async call's future once.
type PollFn<V> = fn(&Arc<Call<V>>) -> Option<Polled<V>>;

/// A namespace of keys whose concurrent calls are merged, as Go's `singleflight.Group`.
///
/// `Group` is a handle: [`Clone`] is cheap and every clone is the same group, so a clone can be
/// moved into each thread (where Go shares a `*Group`). `S` is the map's hasher
/// ([`with_hasher`](Self::with_hasher)).
///
/// See the [module docs](self) for how async calls are driven, panics, and the
/// happens-before edge.
///
/// ```
/// use gosync::singleflight::Group;
///
/// let g = Group::new();
/// let (v, shared) = g.call("key", || "bar");
/// assert_eq!((v, shared), ("bar", false)); // nobody else asked
/// ```
pub struct Group<K, V, S = RandomState> {
    shared: Arc<Calls<K, V, S>>,
}

/// How one call ended.
enum Outcome<V> {
    /// The value, for the callers that shared the call.
    Value(V),
    /// The value went to the only caller (nobody shared the call, so nobody reads this).
    Moved,
    /// `f` panicked with this message.
    Panicked(String),
}

/// What a poll of an async call's future produced: its value or panic, and the spent future,
/// to be dropped once the call is settled (its destructor may use the group).
struct Polled<V> {
    result: Result<V, Payload>,
    spent: Option<BoxFuture<V>>,
}

/// One in-flight (or completed) call.
struct Call<V> {
    /// Every caller waiting for the call sleeps in its queue.
    drive: Drive,
    /// Written once, by the caller that completes the call, before it wakes the others.
    outcome: OnceLock<Outcome<V>>,
    /// Go's `dups`: callers that joined (changed under the group lock, final once the call is
    /// out of the map).
    dups: AtomicUsize,
    /// For an async call: callers still interested (changed under the group lock); the call
    /// is abandoned when it drops to zero before it completes.
    live: AtomicUsize,
    /// For an async call: the future, until it completes or is abandoned.
    fut: Option<Mutex<Option<BoxFuture<V>>>>,
    /// For an async call: polls the future once (monomorphised where `V: Send + Sync +
    /// 'static`, which the call's own waker needs).
    poll: Option<PollFn<V>>,
    /// `call_chan` callers waiting for the value.
    chans: Mutex<Vec<Sender<(V, bool)>>>,
}

impl<V> Call<V> {
    #[track_caller]
    fn new(
        fut: Option<BoxFuture<V>>,
        poll: Option<PollFn<V>>,
        chans: Vec<Sender<(V, bool)>>,
    ) -> Self {
        Call {
            // An async call's future is yet to be polled.
            drive: Drive::new(fut.is_some()),
            outcome: OnceLock::new(),
            dups: AtomicUsize::new(0),
            live: AtomicUsize::new(1),
            fut: fut.map(|f| Mutex::new(Some(f))),
            poll,
            chans: Mutex::new(chans),
        }
    }

    fn is_done(&self) -> bool {
        self.outcome.get().is_some()
    }

    fn is_async(&self) -> bool {
        self.poll.is_some()
    }

    /// A joining caller's result, once the call is done.
    #[track_caller]
    fn shared_result(&self) -> (V, bool)
    where
        V: Clone,
    {
        match self.outcome.get() {
            Some(Outcome::Value(v)) => (v.clone(), true),
            Some(Outcome::Panicked(msg)) => panic!("singleflight: the shared call panicked: {msg}"),
            Some(Outcome::Moved) | None => unreachable!("a joined call is shared and done"),
        }
    }
}

/// The call's own waker (for its future): wakes the callers waiting for it, to poll it.
impl<V: Send + Sync + 'static> Wake for Call<V> {
    fn wake(self: Arc<Self>) {
        self.drive.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.drive.wake();
    }
}

/// Polls an async call's future once; `None` if it is pending (or already taken: completed or
/// abandoned).
fn poll_call<V: Send + Sync + 'static>(call: &Arc<Call<V>>) -> Option<Polled<V>> {
    let slot = call.fut.as_ref()?;
    let mut guard = lock(slot);
    let fut = guard.as_mut()?;
    let waker = Waker::from(call.clone());
    let polled = catch_unwind(AssertUnwindSafe(|| {
        fut.as_mut().poll(&mut Context::from_waker(&waker))
    }));
    let result = match polled {
        Ok(Poll::Pending) => return None,
        Ok(Poll::Ready(v)) => Ok(v),
        Err(p) => Err(p),
    };
    Some(Polled {
        result,
        spent: guard.take(),
    })
}

impl<K, V, S> Clone for Group<K, V, S> {
    fn clone(&self) -> Self {
        Group {
            shared: self.shared.clone(),
        }
    }
}

impl<K, V, S> fmt::Debug for Group<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("in_flight", &lock(&self.shared).len())
            .finish()
    }
}

impl<K, V> Default for Group<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Group<K, V> {
    /// An empty group (Go's zero `singleflight.Group`).
    ///
    /// ```
    /// let g = gosync::singleflight::Group::<u64, String>::new();
    /// assert_eq!(g.callers(&1), 0);
    /// ```
    pub fn new() -> Self {
        Group::with_hasher(RandomState::new())
    }
}

impl<K, V, S> Group<K, V, S> {
    /// An empty group whose map hashes keys with `hasher`.
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    ///
    /// let g = gosync::singleflight::Group::<u64, u64>::with_hasher(RandomState::new());
    /// assert_eq!(g.call(7, || 49).0, 49);
    /// ```
    pub fn with_hasher(hasher: S) -> Self {
        Group {
            shared: Arc::new(Mutex::new(HashMap::with_hasher(hasher))),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<K, Arc<Call<V>>, S>> {
        lock(&self.shared)
    }
}

impl<K, V, S> Group<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// Runs `f` and returns its value, unless a call for `key` is in flight: then waits for
    /// that one and returns a clone of its value (Go's `Do`). The `bool` (Go's `shared`) says
    /// whether the value was given to more than one caller.
    ///
    /// `f` runs on the calling thread. If the call in flight is an async one
    /// ([`call_async`](Self::call_async)), this thread helps poll its future while it waits.
    ///
    /// # Panics
    ///
    /// If `f` panics, with its payload, after freeing the key; if the shared call's function
    /// panicked, with `"singleflight: the shared call panicked: <message>"`.
    ///
    /// ```
    /// use gosync::singleflight::Group;
    ///
    /// let g = Group::<&str, Result<String, String>>::new();
    /// let (v, _) = g.call("user:1", || Ok("ann".to_string()));
    /// assert_eq!(v, Ok("ann".to_string()));
    /// let (v, _) = g.call("user:2", || Err("not found".to_string()));
    /// assert_eq!(v, Err("not found".to_string()));
    /// ```
    #[track_caller]
    pub fn call<F: FnOnce() -> V>(&self, key: K, f: F) -> (V, bool) {
        let origin = Origin::here(WaitKind::Singleflight);
        let call = {
            let mut map = self.map();
            if let Some(c) = map.get(&key) {
                let c = join(c);
                drop(map);
                return self.join_wait(&c, &key, origin);
            }
            let c = Arc::new(Call::new(None, None, Vec::new()));
            map.insert(key.clone(), c.clone());
            c
        };
        let r = catch_unwind(AssertUnwindSafe(f));
        self.finish(&call, &key, r, false)
    }

    /// Tells the group to forget `key` (Go's `Forget`): later calls for it run their own
    /// function instead of waiting for the one in flight, which completes for the callers
    /// already waiting for it.
    ///
    /// ```
    /// use gosync::singleflight::Group;
    ///
    /// let g = Group::new();
    /// let inner = g.clone();
    /// let (v, _) = g.call("k", || {
    ///     inner.forget("k");
    ///     // a new call for "k" does not wait for this one
    ///     inner.call("k", || 2).0 + 1
    /// });
    /// assert_eq!(v, 3);
    /// ```
    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let gone = self.map().remove(key);
        drop(gone);
    }

    /// How many callers share the call in flight for `key` — the one that started it included,
    /// callers that have given up too — or 0 if none is in flight (a snapshot).
    ///
    /// ```
    /// use gosync::singleflight::Group;
    ///
    /// let g = Group::new();
    /// let inner = g.clone();
    /// assert_eq!(g.call("k", || inner.callers("k")).0, 1);
    /// assert_eq!(g.callers("k"), 0);
    /// ```
    pub fn callers<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map()
            .get(key)
            .map_or(0, |c| c.dups.load(Ordering::Relaxed) + 1)
    }

    /// Who is waiting for the call in flight for `key`, where, and since when (empty if none is
    /// in flight).
    ///
    /// ```
    /// let g = gosync::singleflight::Group::<&str, u8>::new();
    /// assert!(g.waiting("k").is_empty());
    /// ```
    pub fn waiting<Q>(&self, key: &Q) -> Vec<WaitRecord>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let call = self.map().get(key).cloned();
        call.map_or_else(Vec::new, |c| c.drive.waiting())
    }

    /// A joining thread waits for `call` to complete, driving it if it is an async one.
    fn join_wait(&self, call: &Arc<Call<V>>, key: &K, origin: Origin) -> (V, bool) {
        let polled = match call.poll {
            Some(poll) => call
                .drive
                .block(origin, true, || call.is_done(), || poll(call)),
            None => call
                .drive
                .block(origin, false, || call.is_done(), || None::<Polled<V>>),
        };
        match polled {
            Some(p) => self.complete(call, key, p, true),
            None => call.shared_result(),
        }
    }

    /// The caller that has the result of an async call's future completes the call.
    fn complete(&self, call: &Arc<Call<V>>, key: &K, polled: Polled<V>, dup: bool) -> (V, bool) {
        let settled = self.settle(call, key, polled.result, dup);
        // After the call is settled: a destructor that panics cannot undo it (its panic is
        // dropped), and one that calls the group finds the key free.
        let spent = polled.spent;
        let _ = catch_unwind(AssertUnwindSafe(move || drop(spent)));
        settled.unwrap_or_else(|payload| resume_unwind(payload))
    }

    /// [`settle`](Self::settle)s `call`, then re-raises `f`'s panic if it panicked.
    fn finish(
        &self,
        call: &Arc<Call<V>>,
        key: &K,
        result: Result<V, Payload>,
        dup: bool,
    ) -> (V, bool) {
        self.settle(call, key, result, dup)
            .unwrap_or_else(|payload| resume_unwind(payload))
    }

    /// Completes `call` with `f`'s result: frees the key, hands the value to every caller
    /// waiting, and returns this caller's result (`dup`: it joined rather than started the
    /// call) — or `f`'s panic, for the caller to re-raise.
    fn settle(
        &self,
        call: &Arc<Call<V>>,
        key: &K,
        result: Result<V, Payload>,
        dup: bool,
    ) -> Result<(V, bool), Payload> {
        let dups = {
            let mut map = self.map();
            if map.get(key).is_some_and(|c| Arc::ptr_eq(c, call)) {
                map.remove(key);
            }
            // Out of the map, nobody can join: the count is final.
            call.dups.load(Ordering::Relaxed)
        };
        let chans = mem::take(&mut *lock(&call.chans));
        match result {
            Ok(v) => {
                let shared = dups > 0;
                for ch in &chans {
                    // Capacity 1 and one value per channel: never full.
                    let _ = ch.try_send((v.clone(), shared));
                }
                let outcome = if shared {
                    Outcome::Value(v.clone())
                } else {
                    Outcome::Moved
                };
                let _ = call.outcome.set(outcome);
                call.drive.notify();
                Ok((v, shared || dup))
            }
            Err(payload) => {
                let _ = call
                    .outcome
                    .set(Outcome::Panicked(panic_message(&*payload)));
                for ch in &chans {
                    ch.close();
                }
                call.drive.notify();
                Err(payload)
            }
        }
    }
}

impl<K, V, S> Group<K, V, S>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + 'static,
{
    /// The async form of [`call`](Self::call), from a task: awaits `fut` unless a call for
    /// `key` is in flight — a thread's or a task's — and then awaits that one instead (`fut`
    /// is dropped unpolled). Returns the value and whether it was shared.
    ///
    /// The key is looked up when the returned future is first polled. The shared future is
    /// driven by whichever of its callers is polling (see the [module docs](self)), so it
    /// must be `Send + 'static`.
    ///
    /// # Panics
    ///
    /// When polled: if the shared future panics, in the caller whose poll it panicked in
    /// (with its payload) and in every other caller (with
    /// `"singleflight: the shared call panicked: <message>"`); the key is freed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not cancel the call for the others: another caller drives the
    /// shared future on. If it was the last caller, the call is abandoned — the shared future
    /// is dropped and the key freed — and the next caller starts afresh.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use gosync::chan::Chan;
    /// use gosync::singleflight::Group;
    ///
    /// let g = Group::<u32, String>::new();
    /// let ch = Chan::new(0);
    /// let rx = ch.clone();
    /// let (a, b, ()) = futures::join!(
    ///     g.call_async(1, async move { rx.recv_async().await.unwrap() }),
    ///     // in flight: joins the first call instead of running its own future
    ///     g.call_async(1, async { unreachable!() }),
    ///     async { ch.send_async("one".to_string()).await.unwrap() },
    /// );
    /// assert_eq!(a, ("one".to_string(), true));
    /// assert_eq!(b, ("one".to_string(), true));
    /// # });
    /// ```
    #[track_caller]
    pub fn call_async<Fut>(&self, key: K, fut: Fut) -> CallFuture<'_, K, V, Fut, S>
    where
        Fut: Future<Output = V> + Send + 'static,
    {
        CallFuture {
            group: self,
            key,
            fut: Some(fut),
            step: Step::Start,
            origin: Origin::here(WaitKind::Singleflight),
        }
    }

    /// Like [`call`](Self::call), but returns at once with a channel that will receive the
    /// value and whether it was shared (Go's `DoChan`). `f` runs on a new thread (as Go's
    /// `DoChan` runs it in a new goroutine), unless a call for `key` is in flight, which the
    /// channel then receives the result of. The channel has room for the one value, so
    /// nobody blocks on it; it is not closed after the value (as in Go).
    ///
    /// # Panics
    ///
    /// If a thread cannot be spawned. If `f` panics, the panic unwinds the thread that runs it
    /// (the panic hook reports it) and every channel waiting for the call is closed without a
    /// value, so its `recv` returns `None` (Go crashes the program instead).
    ///
    /// ```
    /// use gosync::singleflight::Group;
    ///
    /// let g = Group::<&str, u32>::new();
    /// let rx = g.call_chan("answer", || 42);
    /// assert_eq!(rx.recv(), Some((42, false)));
    /// ```
    #[track_caller]
    pub fn call_chan<F>(&self, key: K, f: F) -> Receiver<(V, bool)>
    where
        F: FnOnce() -> V + Send + 'static,
    {
        let origin = Origin::here(WaitKind::Singleflight);
        let ch = Chan::new(1);
        let mut map = self.map();
        if let Some(c) = map.get(&key) {
            let c = join(c);
            if !c.is_async() {
                lock(&c.chans).push(ch.sender());
                return ch.receiver();
            }
            // An async call needs drivers: a thread waits (and drives) for this receiver.
            drop(map);
            let (g, tx, c2, k2) = (self.clone(), ch.sender(), c.clone(), key.clone());
            let spawned = std::thread::Builder::new().spawn(move || {
                let closer = CloseOnUnwind(tx);
                let r = g.join_wait(&c2, &k2, origin);
                let _ = closer.0.try_send(r);
            });
            if let Err(e) = spawned {
                self.leave(&c, &key);
                ch.close();
                panic!("singleflight: failed to spawn a thread: {e}");
            }
            return ch.receiver();
        }
        let c = Arc::new(Call::new(None, None, vec![ch.sender()]));
        map.insert(key.clone(), c.clone());
        drop(map);
        let (g, c2, k2) = (self.clone(), c.clone(), key.clone());
        let spawned = std::thread::Builder::new().spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            let _ = g.finish(&c2, &k2, r, false);
        });
        if let Err(e) = spawned {
            let msg = format!("singleflight: failed to spawn a thread: {e}");
            let _ = self.finish(&c, &key, Err(Box::new(msg)), false);
        }
        ch.receiver()
    }
}

/// A caller joins `c`, under the group lock.
fn join<V>(c: &Arc<Call<V>>) -> Arc<Call<V>> {
    c.dups.fetch_add(1, Ordering::Relaxed);
    if c.is_async() {
        c.live.fetch_add(1, Ordering::Relaxed);
    }
    c.clone()
}

/// Closes a `call_chan` caller's channel if its waiting thread unwinds (the call panicked).
struct CloseOnUnwind<T>(Sender<T>);

impl<T> Drop for CloseOnUnwind<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.close();
        }
    }
}

/// Where a [`CallFuture`] is.
enum Step<V> {
    /// Not yet polled: the key has not been looked up.
    Start,
    /// In the call (`dup`: joined rather than started it).
    Joined {
        call: Arc<Call<V>>,
        dup: bool,
        ticket: Option<Ticket>,
    },
    /// Returned its result (or panicked).
    Done,
}

/// The future returned by [`Group::call_async`].
///
/// # Cancel safety
///
/// Dropping it does not cancel the call for its other callers; if it was the last one, the
/// call is abandoned and its key freed.
///
/// ```
/// use gosync::singleflight::Group;
/// use std::future::Future;
/// use std::task::Context;
///
/// let g = Group::<&str, u32>::new();
/// let mut cx = Context::from_waker(std::task::Waker::noop());
/// {
///     let mut call = std::pin::pin!(g.call_async("k", std::future::pending()));
///     assert!(call.as_mut().poll(&mut cx).is_pending());
///     assert_eq!(g.callers("k"), 1);
/// } // the only caller is gone: the call is abandoned
/// assert_eq!(g.callers("k"), 0);
/// assert_eq!(g.call("k", || 1), (1, false));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct CallFuture<'a, K, V, Fut, S = RandomState>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    group: &'a Group<K, V, S>,
    key: K,
    fut: Option<Fut>,
    step: Step<V>,
    origin: Origin,
}

// `Fut` is moved into a box when the call starts, never pinned in place.
impl<K: Hash + Eq, V, Fut, S: BuildHasher> Unpin for CallFuture<'_, K, V, Fut, S> {}

impl<K: Hash + Eq, V, Fut, S: BuildHasher> fmt::Debug for CallFuture<'_, K, V, Fut, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match &self.step {
            Step::Start => "start",
            Step::Joined { dup: false, .. } => "started",
            Step::Joined { dup: true, .. } => "joined",
            Step::Done => "done",
        };
        f.debug_struct("CallFuture").field("step", &step).finish()
    }
}

impl<K, V, Fut, S> Future for CallFuture<'_, K, V, Fut, S>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Send + 'static,
    Fut: Future<Output = V> + Send + 'static,
{
    type Output = (V, bool);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(V, bool)> {
        let this = self.get_mut();
        let group = this.group;
        if let Step::Start = this.step {
            let mut map = group.map();
            let unused = match map.get(&this.key) {
                Some(c) => {
                    this.step = Step::Joined {
                        call: join(c),
                        dup: true,
                        ticket: None,
                    };
                    this.fut.take()
                }
                None => {
                    let fut: BoxFuture<V> = Box::pin(this.fut.take().expect("a fresh future"));
                    let c = Arc::new(Call::new(Some(fut), Some(poll_call::<V>), Vec::new()));
                    map.insert(this.key.clone(), c.clone());
                    this.step = Step::Joined {
                        call: c,
                        dup: false,
                        ticket: None,
                    };
                    None
                }
            };
            drop(map);
            drop(unused);
        }
        let Step::Joined { call, dup, ticket } = &mut this.step else {
            panic!("`CallFuture` polled after completion");
        };
        let (call, dup) = (call.clone(), *dup);
        let polled = call.drive.poll(
            cx,
            ticket,
            this.origin,
            call.is_async(),
            || call.is_done(),
            || call.poll.and_then(|poll| poll(&call)),
        );
        let polled = match polled {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(p) => p,
        };
        // Done before anything below can panic: the drop has nothing left to undo.
        this.step = Step::Done;
        Poll::Ready(match polled {
            Some(p) => group.complete(&call, &this.key, p, dup),
            // Completed by another caller, so the value was shared (also for the caller that
            // started the call).
            None => call.shared_result(),
        })
    }
}

impl<K: Hash + Eq, V, Fut, S: BuildHasher> Drop for CallFuture<'_, K, V, Fut, S> {
    fn drop(&mut self) {
        let Step::Joined { call, ticket, .. } = mem::replace(&mut self.step, Step::Done) else {
            return;
        };
        if let Some(t) = ticket {
            call.drive.cancel(&t);
        }
        if call.is_async() && !call.is_done() {
            self.group.leave(&call, &self.key);
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Group<K, V, S> {
    /// A caller of an async call gives up before it completed: the call is abandoned if it
    /// was the last one (its future dropped, its key freed).
    fn leave(&self, call: &Arc<Call<V>>, key: &K) {
        let abandoned = {
            let mut map = self.map();
            let left = call.live.fetch_sub(1, Ordering::Relaxed) - 1;
            // With no caller left, nobody is completing it either.
            let abandoned = left == 0 && !call.is_done();
            if abandoned && map.get(key).is_some_and(|c| Arc::ptr_eq(c, call)) {
                map.remove(key);
            }
            abandoned
        };
        if abandoned {
            let fut = call.fut.as_ref().and_then(|f| lock(f).take());
            drop(fut);
        } else {
            call.drive.pass_on();
        }
    }
}
