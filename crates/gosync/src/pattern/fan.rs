//! Fan-in (many channels into one) and fan-out (one channel into many: broadcast, lossy
//! broadcast, round-robin).

use super::{
    close_quietly, go, recv_or_done, recv_or_done_async, send_or_done, send_or_done_async,
    CloseOnDrop, Driver,
};
use crate::chan::__private::{
    origin, poll_fn, select_blocking, Arm, RecvArm, SelectState, SendArm,
};
use crate::chan::{Chan, Receiver, SendError, Sender, TrySendError};
use crate::{select, select_async};

/// Runs one select over `done` (arm 0) and `arms` (arms 1..) on this thread; the index of the
/// arm that fired.
fn select_with_done<'a, A: Arm + 'a>(
    done: &mut RecvArm<'_, ()>,
    arms: impl Iterator<Item = &'a mut A>,
) -> usize {
    let mut all: Vec<&mut dyn Arm> = vec![done];
    all.extend(arms.map(|a| a as &mut dyn Arm));
    select_blocking(&mut all, false, origin()).expect("a select without default fires an arm")
}

/// Closes every output when dropped (see [`CloseOnDrop`]).
struct CloseAllOnDrop<'a, T>(&'a [Sender<T>]);

impl<T> Drop for CloseAllOnDrop<'_, T> {
    fn drop(&mut self) {
        for tx in self.0 {
            close_quietly(tx);
        }
    }
}

/// The driver of [`fan_in`]: merges its inputs into one output until every input is drained
/// or `done` fires, then closes the output.
///
/// One thread (or task) waits in one select over every input and `done` — the course's
/// `fanInReflect` shape, without reflection and without a goroutine per input. Values from one
/// input keep their order; values from different inputs interleave as they arrive, and when
/// several inputs are ready each is equally likely to go first.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, FanIn};
///
/// let inputs: Vec<Chan<u32>> = (0..3).map(|_| Chan::new(1)).collect();
/// for (i, ch) in inputs.iter().enumerate() {
///     ch.send(i as u32).unwrap();
///     ch.close();
/// }
/// let out = Chan::new(3);
/// FanIn::new(Chan::nil().receiver(), inputs.iter().map(Chan::receiver).collect(), out.sender()).run();
/// let mut got: Vec<u32> = out.iter().collect();
/// got.sort();
/// assert_eq!(got, [0, 1, 2]);
/// ```
#[derive(Debug)]
pub struct FanIn<T> {
    done: Receiver<()>,
    inputs: Vec<Receiver<T>>,
    output: Sender<T>,
}

impl<T> FanIn<T> {
    /// A driver merging `inputs` into `output`.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::FanIn;
    ///
    /// let (a, b, out) = (Chan::<u8>::new(0), Chan::<u8>::new(0), Chan::new(0));
    /// let _merge = FanIn::new(Chan::nil().receiver(), vec![a.receiver(), b.receiver()], out.sender());
    /// ```
    pub fn new(done: Receiver<()>, inputs: Vec<Receiver<T>>, output: Sender<T>) -> Self {
        FanIn {
            done,
            inputs,
            output,
        }
    }
}

impl<T: Send> Driver for FanIn<T> {
    fn run(self) {
        let _close = CloseOnDrop(&self.output);
        let mut done = RecvArm::new(&self.done);
        // The arms of the inputs still open; one is removed when its input is drained.
        let mut arms: Vec<RecvArm<'_, T>> = self.inputs.iter().map(|rx| RecvArm::new(rx)).collect();
        while !arms.is_empty() {
            let i = select_with_done(&mut done, arms.iter_mut());
            if i == 0 {
                return;
            }
            match arms[i - 1].take() {
                Some(v) => {
                    if !send_or_done(&self.done, &self.output, v) {
                        return;
                    }
                }
                None => {
                    arms.swap_remove(i - 1);
                }
            }
        }
    }

    async fn run_async(self) {
        let _close = CloseOnDrop(&self.output);
        let mut done = RecvArm::new(&self.done);
        let mut arms: Vec<RecvArm<'_, T>> = self.inputs.iter().map(|rx| RecvArm::new(rx)).collect();
        while !arms.is_empty() {
            let mut state = SelectState::new(false, origin());
            let fired = poll_fn(|cx| {
                let mut all: Vec<&mut dyn Arm> = vec![&mut done];
                all.extend(arms.iter_mut().map(|a| a as &mut dyn Arm));
                state.poll(&mut all, cx)
            })
            .await;
            let i = fired.expect("a select without default fires an arm");
            if i == 0 {
                return;
            }
            match arms[i - 1].take() {
                Some(v) => {
                    if !send_or_done_async(&self.done, &self.output, v).await {
                        return;
                    }
                }
                None => {
                    arms.swap_remove(i - 1);
                }
            }
        }
    }
}

/// Go's `fanIn(chans...)`: one channel carrying the values of every input, closed once every
/// input is drained (or `done` fires). Runs a [`FanIn`] driver on a new thread.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let a = pattern::from_iter(done.clone(), [1, 2, 3]);
/// let b = pattern::from_iter(done.clone(), [10, 20]);
/// let merged = pattern::fan_in(done, vec![a, b]);
/// assert_eq!(merged.iter().sum::<i32>(), 36);
/// ```
pub fn fan_in<T: Send + 'static>(done: Receiver<()>, inputs: Vec<Receiver<T>>) -> Receiver<T> {
    let out = Chan::new(0);
    let driver = FanIn::new(done, inputs, out.sender());
    go("gosync-fan-in", move || driver.run());
    out.receiver()
}

/// The driver of [`fan_out`] and [`fan_out_lossy`]: sends every value of its input to every
/// output, then closes the outputs when the input is drained or `done` fires.
///
/// * [`Broadcast::new`] — **blocking**: a value goes to every output, in whichever order their
///   receivers are ready, before the next value is read (the course's `fanOutReflect`). The
///   slowest consumer sets the pace.
/// * [`Broadcast::lossy`] — **non-blocking per output**: each output gets the value if it has
///   room (a waiting receiver or buffer space) and misses it otherwise, so a slow consumer
///   loses values instead of holding up the others (Go's `select { case out <- v: default: }`).
///
/// An output whose consumer closed it is dropped from the broadcast; the driver ends when none
/// is left.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Broadcast, Driver};
///
/// let input = Chan::new(2);
/// input.send(1).unwrap();
/// input.send(2).unwrap();
/// input.close();
/// let outs: Vec<Chan<i32>> = (0..3).map(|_| Chan::new(2)).collect();
/// Broadcast::new(Chan::nil().receiver(), input.receiver(), outs.iter().map(Chan::sender).collect()).run();
/// for out in &outs {
///     assert_eq!(out.iter().collect::<Vec<_>>(), [1, 2]);
/// }
/// ```
#[derive(Debug)]
pub struct Broadcast<T> {
    done: Receiver<()>,
    input: Receiver<T>,
    outputs: Vec<Sender<T>>,
    lossy: bool,
}

impl<T> Broadcast<T> {
    /// A blocking broadcast: every output receives every value.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::Broadcast;
    ///
    /// let (input, a, b) = (Chan::<u8>::new(0), Chan::new(0), Chan::new(0));
    /// let _b = Broadcast::new(Chan::nil().receiver(), input.receiver(), vec![a.sender(), b.sender()]);
    /// ```
    pub fn new(done: Receiver<()>, input: Receiver<T>, outputs: Vec<Sender<T>>) -> Self {
        Broadcast {
            done,
            input,
            outputs,
            lossy: false,
        }
    }

    /// A lossy broadcast: an output that cannot take a value at once misses it.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::{Broadcast, Driver};
    ///
    /// let input = Chan::new(3);
    /// for i in 0..3 {
    ///     input.send(i).unwrap();
    /// }
    /// input.close();
    /// let (roomy, tight) = (Chan::new(3), Chan::new(1));
    /// Broadcast::lossy(Chan::nil().receiver(), input.receiver(), vec![roomy.sender(), tight.sender()]).run();
    /// assert_eq!(roomy.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// assert_eq!(tight.iter().collect::<Vec<_>>(), [0]); // full after the first
    /// ```
    pub fn lossy(done: Receiver<()>, input: Receiver<T>, outputs: Vec<Sender<T>>) -> Self {
        Broadcast {
            done,
            input,
            outputs,
            lossy: true,
        }
    }
}

/// Offers `v` to every live output without waiting; drops the outputs found closed.
fn offer_all<T: Clone>(live: &mut Vec<&Sender<T>>, v: T) {
    let mut v = Some(v);
    let mut k = 0;
    while k < live.len() {
        let value = if k + 1 == live.len() {
            v.take().expect("moved only into the last output")
        } else {
            v.clone().expect("kept until the last output")
        };
        match live[k].try_send(value) {
            Err(TrySendError::Closed(_)) => {
                live.remove(k);
            }
            Ok(()) | Err(TrySendError::Full(_)) => k += 1,
        }
    }
}

/// One send arm per live output, each with its own copy of `v` (the last takes `v` itself).
fn send_arms<'a, T: Clone>(live: &[&'a Sender<T>], v: T) -> Vec<SendArm<'a, T>> {
    let mut arms = Vec::with_capacity(live.len());
    if let Some((last, rest)) = live.split_last() {
        for tx in rest {
            arms.push(SendArm::new(*tx, v.clone()));
        }
        arms.push(SendArm::new(*last, v));
    }
    arms
}

impl<T: Clone + Send> Driver for Broadcast<T> {
    fn run(self) {
        let _close = CloseAllOnDrop(&self.outputs);
        let mut live: Vec<&Sender<T>> = self.outputs.iter().collect();
        while !live.is_empty() {
            let Some(v) = recv_or_done(&self.done, &self.input) else {
                return;
            };
            if self.lossy {
                offer_all(&mut live, v);
                continue;
            }
            let mut arms = send_arms(&live, v);
            let mut waiting: Vec<usize> = (0..arms.len()).collect();
            let mut closed = vec![false; arms.len()];
            let mut done = RecvArm::new(&self.done);
            while !waiting.is_empty() {
                let i = select_with_done(
                    &mut done,
                    arms.iter_mut()
                        .enumerate()
                        .filter(|(k, _)| waiting.contains(k))
                        .map(|(_, a)| a),
                );
                if i == 0 {
                    return;
                }
                let k = waiting.remove(i - 1);
                closed[k] = arms[k].take().is_err();
            }
            drop(arms);
            let mut k = 0;
            live.retain(|_| {
                k += 1;
                !closed[k - 1]
            });
        }
    }

    async fn run_async(self) {
        let _close = CloseAllOnDrop(&self.outputs);
        let mut live: Vec<&Sender<T>> = self.outputs.iter().collect();
        while !live.is_empty() {
            let Some(v) = recv_or_done_async(&self.done, &self.input).await else {
                return;
            };
            if self.lossy {
                offer_all(&mut live, v);
                continue;
            }
            let mut arms = send_arms(&live, v);
            let mut waiting: Vec<usize> = (0..arms.len()).collect();
            let mut closed = vec![false; arms.len()];
            let mut done = RecvArm::new(&self.done);
            while !waiting.is_empty() {
                let mut state = SelectState::new(false, origin());
                let fired = poll_fn(|cx| {
                    let mut all: Vec<&mut dyn Arm> = vec![&mut done];
                    all.extend(
                        arms.iter_mut()
                            .enumerate()
                            .filter(|(k, _)| waiting.contains(k))
                            .map(|(_, a)| a as &mut dyn Arm),
                    );
                    state.poll(&mut all, cx)
                })
                .await;
                let i = fired.expect("a select without default fires an arm");
                if i == 0 {
                    return;
                }
                let k = waiting.remove(i - 1);
                closed[k] = arms[k].take().is_err();
            }
            drop(arms);
            let mut k = 0;
            live.retain(|_| {
                k += 1;
                !closed[k - 1]
            });
        }
    }
}

/// Makes `n` output channels of capacity `cap`.
fn outputs<T>(n: usize, cap: usize) -> (Vec<Sender<T>>, Vec<Receiver<T>>) {
    (0..n)
        .map(|_| {
            let ch = Chan::new(cap);
            (ch.sender(), ch.receiver())
        })
        .unzip()
}

/// Go's `fanOut(ch, out, false)`: `n` channels, each carrying every value of `input`; a value
/// is delivered to all of them before the next is read, so every consumer must keep reading.
/// Runs a blocking [`Broadcast`] on a new thread.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let outs = pattern::fan_out(done.clone(), pattern::from_iter(done, 1..=3), 2);
/// let readers: Vec<_> = outs
///     .into_iter()
///     .map(|rx| std::thread::spawn(move || rx.iter().collect::<Vec<i32>>()))
///     .collect();
/// for r in readers {
///     assert_eq!(r.join().unwrap(), [1, 2, 3]);
/// }
/// ```
pub fn fan_out<T: Clone + Send + 'static>(
    done: Receiver<()>,
    input: Receiver<T>,
    n: usize,
) -> Vec<Receiver<T>> {
    let (txs, rxs) = outputs(n, 0);
    let driver = Broadcast::new(done, input, txs);
    go("gosync-fan-out", move || driver.run());
    rxs
}

/// `n` channels of capacity `capacity`, each carrying the values of `input` that it had room
/// for when they arrived: a consumer that falls behind misses values instead of holding up the
/// others. Runs a [`Broadcast::lossy`] driver on a new thread.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let input = Chan::new(0);
/// let outs = pattern::fan_out_lossy(Chan::nil().receiver(), input.receiver(), 2, 8);
/// for i in 0..5 {
///     input.send(i).unwrap();
/// }
/// input.close();
/// for out in outs {
///     assert_eq!(out.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]); // room enough for all
/// }
/// ```
pub fn fan_out_lossy<T: Clone + Send + 'static>(
    done: Receiver<()>,
    input: Receiver<T>,
    n: usize,
    capacity: usize,
) -> Vec<Receiver<T>> {
    let (txs, rxs) = outputs(n, capacity);
    let driver = Broadcast::lossy(done, input, txs);
    go("gosync-fan-out", move || driver.run());
    rxs
}

/// The driver of [`fan_out_round_robin`]: deals the values of its input to its outputs in
/// turn — the first value to output 0, the next to output 1, ... — waiting for each output in
/// its turn, then closes the outputs when the input is drained or `done` fires. An output
/// whose consumer closed it leaves the rotation (its value goes to the next); the driver ends
/// when none is left.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, RoundRobin};
///
/// let input = Chan::new(4);
/// for i in 0..4 {
///     input.send(i).unwrap();
/// }
/// input.close();
/// let (a, b) = (Chan::new(2), Chan::new(2));
/// RoundRobin::new(Chan::nil().receiver(), input.receiver(), vec![a.sender(), b.sender()]).run();
/// assert_eq!(a.iter().collect::<Vec<_>>(), [0, 2]);
/// assert_eq!(b.iter().collect::<Vec<_>>(), [1, 3]);
/// ```
#[derive(Debug)]
pub struct RoundRobin<T> {
    done: Receiver<()>,
    input: Receiver<T>,
    outputs: Vec<Sender<T>>,
}

impl<T> RoundRobin<T> {
    /// A driver dealing `input` to `outputs` in turn.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::RoundRobin;
    ///
    /// let (input, a, b) = (Chan::<u8>::new(0), Chan::new(0), Chan::new(0));
    /// let _rr = RoundRobin::new(Chan::nil().receiver(), input.receiver(), vec![a.sender(), b.sender()]);
    /// ```
    pub fn new(done: Receiver<()>, input: Receiver<T>, outputs: Vec<Sender<T>>) -> Self {
        RoundRobin {
            done,
            input,
            outputs,
        }
    }
}

impl<T: Send> Driver for RoundRobin<T> {
    fn run(self) {
        let _close = CloseAllOnDrop(&self.outputs);
        let mut live: Vec<&Sender<T>> = self.outputs.iter().collect();
        let mut next = 0;
        while !live.is_empty() {
            let Some(mut v) = recv_or_done(&self.done, &self.input) else {
                return;
            };
            loop {
                if live.is_empty() {
                    return;
                }
                let i = next % live.len();
                let sent = select! {
                    send(live[i], v) -> r => r,
                    recv(self.done) -> _ => return,
                };
                match sent {
                    Ok(()) => {
                        next = i + 1;
                        break;
                    }
                    Err(SendError(back)) => {
                        // Closed by its consumer: the next output takes its place and the value.
                        v = back;
                        live.remove(i);
                        next = i;
                    }
                }
            }
        }
    }

    async fn run_async(self) {
        let _close = CloseAllOnDrop(&self.outputs);
        let mut live: Vec<&Sender<T>> = self.outputs.iter().collect();
        let mut next = 0;
        while !live.is_empty() {
            let Some(mut v) = recv_or_done_async(&self.done, &self.input).await else {
                return;
            };
            loop {
                if live.is_empty() {
                    return;
                }
                let i = next % live.len();
                let sent = select_async! {
                    send(live[i], v) -> r => r,
                    recv(self.done) -> _ => return,
                };
                match sent {
                    Ok(()) => {
                        next = i + 1;
                        break;
                    }
                    Err(SendError(back)) => {
                        v = back;
                        live.remove(i);
                        next = i;
                    }
                }
            }
        }
    }
}

/// The course's round-robin `fanOut`: `n` channels taking turns — value k goes to channel
/// k mod n. Each consumer must keep reading, since the dealer waits for the channel whose
/// turn it is. Runs a [`RoundRobin`] driver on a new thread.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let outs = pattern::fan_out_round_robin(done.clone(), pattern::from_iter(done, 0..6), 3);
/// let readers: Vec<_> = outs
///     .into_iter()
///     .map(|rx| std::thread::spawn(move || rx.iter().collect::<Vec<u32>>()))
///     .collect();
/// let got: Vec<Vec<u32>> = readers.into_iter().map(|r| r.join().unwrap()).collect();
/// assert_eq!(got, [vec![0, 3], vec![1, 4], vec![2, 5]]);
/// ```
pub fn fan_out_round_robin<T: Send + 'static>(
    done: Receiver<()>,
    input: Receiver<T>,
    n: usize,
) -> Vec<Receiver<T>> {
    let (txs, rxs) = outputs(n, 0);
    let driver = RoundRobin::new(done, input, txs);
    go("gosync-fan-out", move || driver.run());
    rxs
}
