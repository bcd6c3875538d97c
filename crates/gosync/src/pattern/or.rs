//! Or-done (a channel read that stops when done fires) and or (the first of N done channels).

use super::{
    go, recv_or_done, recv_or_done_async, send_or_done, send_or_done_async, CloseOnDrop, Driver,
};
use crate::chan::{Chan, Receiver, Select, Sender};

/// The driver of [`or_done`]: forwards `input` to `output` until `input` is drained or `done`
/// fires, then closes `output` — the course's `orDone(done, c)`.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, OrDone};
///
/// let input = Chan::new(2);
/// input.send("a").unwrap();
/// input.send("b").unwrap();
/// input.close();
/// let output = Chan::new(2);
/// OrDone::new(Chan::nil().receiver(), input.receiver(), output.sender()).run();
/// assert_eq!(output.iter().collect::<Vec<_>>(), ["a", "b"]);
/// ```
#[derive(Debug)]
pub struct OrDone<T> {
    done: Receiver<()>,
    input: Receiver<T>,
    output: Sender<T>,
}

impl<T> OrDone<T> {
    /// A driver forwarding `input` to `output` until `done` fires.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::OrDone;
    ///
    /// let (done, input, output) = (Chan::<()>::new(0), Chan::<u8>::new(0), Chan::new(0));
    /// let _driver = OrDone::new(done.receiver(), input.receiver(), output.sender());
    /// ```
    pub fn new(done: Receiver<()>, input: Receiver<T>, output: Sender<T>) -> Self {
        OrDone {
            done,
            input,
            output,
        }
    }
}

impl<T: Send> Driver for OrDone<T> {
    fn run(self) {
        let _close = CloseOnDrop(&self.output);
        while let Some(v) = recv_or_done(&self.done, &self.input) {
            if !send_or_done(&self.done, &self.output, v) {
                return;
            }
        }
    }

    async fn run_async(self) {
        let _close = CloseOnDrop(&self.output);
        while let Some(v) = recv_or_done_async(&self.done, &self.input).await {
            if !send_or_done_async(&self.done, &self.output, v).await {
                return;
            }
        }
    }
}

/// Go's `orDone(done, c)`: a channel that carries `input`'s values until `input` is drained or
/// `done` fires, then closes. It lets a consumer write a plain `for v in &out` loop that still
/// stops on `done`. Runs an [`OrDone`] driver on a new thread.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::new(0);
/// let endless = pattern::repeat(Chan::nil().receiver(), vec![1, 2, 3]);
/// let values = pattern::or_done(done.receiver(), endless);
/// let mut seen = 0;
/// for v in &values {
///     seen += 1;
///     if v == 3 {
///         done.close(); // stop: the loop ends once `values` closes
///     }
/// }
/// assert!(seen >= 3);
/// ```
pub fn or_done<T: Send + 'static>(done: Receiver<()>, input: Receiver<T>) -> Receiver<T> {
    let out = Chan::new(0);
    let driver = OrDone::new(done, input, out.sender());
    go("gosync-or-done", move || driver.run());
    out.receiver()
}

/// The driver of [`or()`]: waits for the first of its done channels to fire (a value or a
/// close), then closes `output`.
///
/// One thread or task waits in one dynamic select over every channel (see the
/// [module docs](super#or-one-waiter-on-n-channels) for why). With no channels it returns at
/// once and leaves `output` open: the `or` of nothing never fires.
///
/// A done channel that receives a value (rather than being closed) has that value consumed
/// by the `Or`; its other listeners do not see it. Close done channels to signal.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, Or};
///
/// let dones: Vec<Chan<()>> = (0..3).map(|_| Chan::new(0)).collect();
/// let any = Chan::new(0);
/// let waiter = Or::new(dones.iter().map(Chan::receiver).collect(), any.sender()).spawn();
/// dones[1].close();
/// assert_eq!(any.recv(), None); // closed: one of them fired
/// waiter.join().unwrap();
/// ```
#[derive(Debug)]
pub struct Or {
    dones: Vec<Receiver<()>>,
    output: Sender<()>,
}

impl Or {
    /// A driver that closes `output` once any of `dones` fires.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::Or;
    ///
    /// let (a, b, out) = (Chan::<()>::new(0), Chan::<()>::new(0), Chan::new(0));
    /// let _driver = Or::new(vec![a.receiver(), b.receiver()], out.sender());
    /// ```
    pub fn new(dones: Vec<Receiver<()>>, output: Sender<()>) -> Self {
        Or { dones, output }
    }
}

impl Driver for Or {
    fn run(self) {
        if self.dones.is_empty() {
            return;
        }
        let _close = CloseOnDrop(&self.output);
        let mut sel = Select::new();
        for d in &self.dones {
            sel.recv(d);
        }
        sel.select();
    }

    async fn run_async(self) {
        if self.dones.is_empty() {
            return;
        }
        let _close = CloseOnDrop(&self.output);
        let mut sel = Select::new();
        for d in &self.dones {
            sel.recv(d);
        }
        sel.select_async().await;
    }
}

/// Go's `or(channels...)`: a channel that closes as soon as any of `dones` fires (receives a
/// value or is closed).
///
/// As in Go, no channels give the nil channel (never fires) and one channel is returned
/// itself; for two or more, an [`Or`] driver waits on all of them on a new thread.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let user_cancel: Chan<()> = Chan::new(0);
/// let shutdown: Chan<()> = Chan::new(0);
/// let stop = pattern::or(&[user_cancel.receiver(), shutdown.receiver()]);
/// std::thread::spawn(move || shutdown.close());
/// assert_eq!(stop.recv(), None); // closed once `shutdown` closed
/// ```
pub fn or(dones: &[Receiver<()>]) -> Receiver<()> {
    match dones {
        [] => Chan::nil().receiver(),
        [one] => one.clone(),
        many => {
            let out = Chan::new(0);
            let driver = Or::new(many.to_vec(), out.sender());
            go("gosync-or", move || driver.run());
            out.receiver()
        }
    }
}
