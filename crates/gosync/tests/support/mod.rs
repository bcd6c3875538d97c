//! Helpers shared by the integration tests: wakers that count or panic, a one-shot poll, and
//! a bound on how long a test may wait for something that must happen.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// A waker that counts its wakes.
pub struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A counting waker and a handle to read its count.
pub fn counting_waker() -> (Waker, Arc<Counter>) {
    let c = Arc::new(Counter(AtomicUsize::new(0)));
    (Waker::from(c.clone()), c)
}

impl Counter {
    /// How many times the waker was woken.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A waker whose `wake` panics (a buggy executor); it counts its wakes before panicking.
pub struct Panicking(AtomicUsize);

impl Wake for Panicking {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("this waker panics");
    }
}

/// A waker that panics when woken.
pub fn panicking_waker() -> Waker {
    Waker::from(Arc::new(Panicking(AtomicUsize::new(0))))
}

/// Polls `f` once with `waker`.
pub fn poll_with<F: Future + ?Sized>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

/// Polls `f` once with a waker that does nothing.
pub fn poll_noop<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    poll_with(f, futures::task::noop_waker_ref())
}

/// Runs `f` on a thread and returns its result, failing the test if it has not returned
/// within `limit` — the sign of a lost wake-up (a liveness bound, not a timing assertion:
/// the limit is far above what the operation needs).
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => panic!("{what}: still blocked after {limit:?}"),
    }
}

/// Waits until `cond` holds (polling), failing the test after `limit`.
pub fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not so after {limit:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A generous bound for something that must happen (see [`within`]).
pub const LIVENESS: Duration = Duration::from_secs(20);

/// The message of a panic payload: the `&str` or `String` that `panic!` made, or a placeholder.
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

/// Installs, once per test binary, a panic hook that keeps the panics a test provokes on
/// purpose (those whose message `expected` accepts) off stderr; any other panic still prints.
pub fn quiet_panics(expected: fn(&str) -> bool) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !expected(&payload_message(info.payload())) {
                default(info);
            }
        }));
    });
}

/// Runs `f`, which must panic; returns the panic's message.
pub fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(p) => payload_message(&*p),
    }
}
