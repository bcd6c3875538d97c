//! Pipeline stages ([`Stage`], [`stage`], [`stage_n`]) and the bridge of a channel of channels.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{close_quietly, go, send_or_done, send_or_done_async, CloseOnDrop, Driver};
use crate::chan::{Chan, Receiver, Sender};
use crate::{select, select_async};

/// What a [`Step`] does with one value.
///
/// ```
/// use gosync::pattern::Flow;
///
/// let halve = |n: u32| if n % 2 == 0 { Flow::Emit(n / 2) } else { Flow::Skip };
/// assert_eq!(halve(4), Flow::Emit(2));
/// assert_eq!(halve(3), Flow::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow<U> {
    /// Send this value on the output.
    Emit(U),
    /// Send nothing for this input; go on with the next.
    Skip,
    /// End the stage now (the output is closed; the input is left as it is).
    Stop,
}

/// The work of one pipeline stage: turns each input value into an output value, nothing, or
/// the end of the stage. Any `FnMut(T) -> Flow<U>` closure is a step; [`Map`](super::Map),
/// [`Filter`](super::Filter), [`Take`](super::Take), [`Skip`](super::Skip),
/// [`TakeWhile`](super::TakeWhile) and [`SkipWhile`](super::SkipWhile) are the stream
/// operators as steps.
///
/// ```
/// use gosync::pattern::{Flow, Step};
///
/// // A step with state: running totals, ending once the total passes 10.
/// struct Totals(u32);
/// impl Step<u32> for Totals {
///     type Output = u32;
///     fn step(&mut self, v: u32) -> Flow<u32> {
///         self.0 += v;
///         Flow::Emit(self.0)
///     }
///     fn finished(&self) -> bool {
///         self.0 > 10
///     }
/// }
/// let mut t = Totals(0);
/// assert_eq!(t.step(7), Flow::Emit(7));
/// assert_eq!(t.step(7), Flow::Emit(14));
/// assert!(t.finished());
/// ```
pub trait Step<T> {
    /// The type of the values the stage sends.
    type Output;

    /// Handles one input value.
    ///
    /// ```
    /// use gosync::pattern::{Flow, Step};
    ///
    /// let mut double = |v: i32| Flow::Emit(v * 2);
    /// assert_eq!(Step::step(&mut double, 21), Flow::Emit(42));
    /// ```
    fn step(&mut self, value: T) -> Flow<Self::Output>;

    /// Whether the stage is over before reading another value (checked before every read, so
    /// a stage that has taken what it needs leaves the rest in its input). `false` unless
    /// overridden.
    ///
    /// ```
    /// use gosync::pattern::{Step, Take};
    ///
    /// let mut take = Take::new(1);
    /// assert!(!Step::<u8>::finished(&take));
    /// Step::<u8>::step(&mut take, 5);
    /// assert!(Step::<u8>::finished(&take));
    /// ```
    fn finished(&self) -> bool {
        false
    }
}

impl<T, U, F: FnMut(T) -> Flow<U>> Step<T> for F {
    type Output = U;

    fn step(&mut self, value: T) -> Flow<U> {
        self(value)
    }
}

/// A pipeline stage: reads `input`, applies a [`Step`] to each value, sends what it emits on
/// `output`, and closes `output` when the input is drained, the step says stop, or `done`
/// fires — the course's `sq(in)` with a done channel. Values keep their order.
///
/// [`Stage::split`] makes `n` workers sharing the input and output, for a stage whose work
/// should run in parallel ([`stage_n`]).
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, Flow, Stage};
///
/// let input = Chan::new(4);
/// for n in 1..=4 {
///     input.send(n).unwrap();
/// }
/// input.close();
/// let output = Chan::new(4);
/// let squares = |n: u32| Flow::Emit(n * n);
/// Stage::new(Chan::nil().receiver(), input.receiver(), output.sender(), squares).run();
/// assert_eq!(output.iter().collect::<Vec<_>>(), [1, 4, 9, 16]);
/// ```
pub struct Stage<T, S: Step<T>> {
    done: Receiver<()>,
    input: Receiver<T>,
    output: Sender<S::Output>,
    step: S,
    /// For workers made by `split`: how many have not ended; the last closes the output.
    live: Option<Arc<AtomicUsize>>,
}

impl<T, S: Step<T>> Stage<T, S> {
    /// A stage applying `step` to `input`, sending to `output`.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::{Map, Stage};
    ///
    /// let (input, output) = (Chan::<u8>::new(0), Chan::<u16>::new(0));
    /// let _stage = Stage::new(
    ///     Chan::nil().receiver(),
    ///     input.receiver(),
    ///     output.sender(),
    ///     Map::new(|v: u8| u16::from(v) * 300),
    /// );
    /// ```
    pub fn new(done: Receiver<()>, input: Receiver<T>, output: Sender<S::Output>, step: S) -> Self {
        Stage {
            done,
            input,
            output,
            step,
            live: None,
        }
    }

    /// Splits the stage into `n` workers that read the same input and send to the same output,
    /// each with its own clone of the step; the output closes when the last worker ends. Run
    /// each on its own thread or task for parallel work. Output order is then the order in
    /// which workers finish, not the input order, and a stateful step ([`Take`](super::Take))
    /// counts per worker.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::{Driver, Map, Stage};
    ///
    /// let input = Chan::new(0);
    /// let output = Chan::new(0);
    /// let stage = Stage::new(Chan::nil().receiver(), input.receiver(), output.sender(), Map::new(|v: u64| v * 2));
    /// let workers: Vec<_> = stage.split(3).into_iter().map(Driver::spawn).collect();
    /// std::thread::spawn(move || {
    ///     for v in 0..100 {
    ///         input.send(v).unwrap();
    ///     }
    ///     input.close();
    /// });
    /// assert_eq!(output.iter().sum::<u64>(), 2 * (0..100).sum::<u64>());
    /// for w in workers {
    ///     w.join().unwrap();
    /// }
    /// ```
    pub fn split(self, n: usize) -> Vec<Self>
    where
        S: Clone,
    {
        assert!(n > 0, "Stage::split: a stage needs at least one worker");
        // A stage that is itself a worker passes its share on to its n parts.
        let live = match self.live {
            Some(live) => {
                live.fetch_add(n - 1, Ordering::Relaxed);
                live
            }
            None => Arc::new(AtomicUsize::new(n)),
        };
        let mut workers = Vec::with_capacity(n);
        for _ in 1..n {
            workers.push(Stage {
                done: self.done.clone(),
                input: self.input.clone(),
                output: self.output.clone(),
                step: self.step.clone(),
                live: Some(live.clone()),
            });
        }
        workers.push(Stage {
            live: Some(live),
            ..self
        });
        workers
    }
}

/// Closes a stage's output as the stage ends — for a worker, only as the last one ends.
struct StageClose<'a, U> {
    output: &'a Sender<U>,
    live: Option<&'a AtomicUsize>,
}

impl<U> Drop for StageClose<'_, U> {
    fn drop(&mut self) {
        // AcqRel: the last worker's close comes after every other worker's last send.
        let last = self
            .live
            .is_none_or(|live| live.fetch_sub(1, Ordering::AcqRel) == 1);
        if last {
            close_quietly(self.output);
        }
    }
}

impl<T: Send, S> Driver for Stage<T, S>
where
    S: Step<T> + Send,
    S::Output: Send,
{
    fn run(mut self) {
        let _close = StageClose {
            output: &self.output,
            live: self.live.as_deref(),
        };
        while !self.step.finished() {
            let v = select! {
                recv(self.done) -> _ => return,
                recv(self.input) -> v => match v {
                    Some(v) => v,
                    None => return,
                },
            };
            match self.step.step(v) {
                Flow::Emit(u) => {
                    if !send_or_done(&self.done, &self.output, u) {
                        return;
                    }
                }
                Flow::Skip => {}
                Flow::Stop => return,
            }
        }
    }

    async fn run_async(mut self) {
        let _close = StageClose {
            output: &self.output,
            live: self.live.as_deref(),
        };
        while !self.step.finished() {
            let v = select_async! {
                recv(self.done) -> _ => return,
                recv(self.input) -> v => match v {
                    Some(v) => v,
                    None => return,
                },
            };
            match self.step.step(v) {
                Flow::Emit(u) => {
                    if !send_or_done_async(&self.done, &self.output, u).await {
                        return;
                    }
                }
                Flow::Skip => {}
                Flow::Stop => return,
            }
        }
    }
}

impl<T, S: Step<T>> std::fmt::Debug for Stage<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("input", &self.input)
            .field("output", &self.output)
            .field(
                "workers",
                &self.live.as_ref().map(|l| l.load(Ordering::Relaxed)),
            )
            .finish_non_exhaustive()
    }
}

/// A pipeline stage on a new thread: applies `step` to every value of `input` and returns the
/// channel of what it emits, closed when the input is drained, the step stops, or `done` fires.
/// A step is any `FnMut(T) -> Flow<U>`, or one of the stream operators ([`Map`](super::Map),
/// [`Filter`](super::Filter), ...).
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{self, Flow};
///
/// let done = Chan::nil().receiver();
/// let numbers = pattern::from_iter(done.clone(), 1..=10);
/// // One stage that squares the odd numbers and drops the even ones.
/// let odd_squares = pattern::stage(done, numbers, |n: u32| {
///     if n % 2 == 1 { Flow::Emit(n * n) } else { Flow::Skip }
/// });
/// assert_eq!(odd_squares.iter().collect::<Vec<_>>(), [1, 9, 25, 49, 81]);
/// ```
pub fn stage<T, S>(done: Receiver<()>, input: Receiver<T>, step: S) -> Receiver<S::Output>
where
    T: Send + 'static,
    S: Step<T> + Send + 'static,
    S::Output: Send + 'static,
{
    let out = Chan::new(0);
    let driver = Stage::new(done, input, out.sender(), step);
    go("gosync-stage", move || driver.run());
    out.receiver()
}

/// A stage run by `n` worker threads in parallel (fan-out to workers, fan-in of their
/// results): each worker has its own clone of `step`; the output closes when every worker has
/// ended. Output order follows completion, not input order. See [`Stage::split`].
///
/// # Panics
///
/// If `n` is 0.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{self, Map};
///
/// let done = Chan::nil().receiver();
/// let jobs = pattern::from_iter(done.clone(), 0..50u64);
/// let slow_square = |n: u64| {
///     std::thread::sleep(std::time::Duration::from_micros(100));
///     n * n
/// };
/// let results = pattern::stage_n(done, jobs, 4, Map::new(slow_square));
/// let mut all: Vec<u64> = results.iter().collect();
/// all.sort();
/// assert_eq!(all, (0..50).map(|n| n * n).collect::<Vec<_>>());
/// ```
pub fn stage_n<T, S>(
    done: Receiver<()>,
    input: Receiver<T>,
    n: usize,
    step: S,
) -> Receiver<S::Output>
where
    T: Send + 'static,
    S: Step<T> + Clone + Send + 'static,
    S::Output: Send + 'static,
{
    let out = Chan::new(0);
    for worker in Stage::new(done, input, out.sender(), step).split(n) {
        go("gosync-stage", move || worker.run());
    }
    out.receiver()
}

/// The driver of [`bridge`]: reads channels from a channel of channels and forwards each one's
/// values, in order, channel after channel, to one output — the course's channels over a
/// channel, flattened.
///
/// ```
/// use gosync::chan::{Chan, Receiver};
/// use gosync::pattern::{Bridge, Driver};
///
/// let streams: Chan<Receiver<u8>> = Chan::new(2);
/// for base in [10, 20] {
///     let s = Chan::new(2);
///     s.send(base).unwrap();
///     s.send(base + 1).unwrap();
///     s.close();
///     streams.send(s.receiver()).unwrap();
/// }
/// streams.close();
/// let out = Chan::new(4);
/// Bridge::new(Chan::nil().receiver(), streams.receiver(), out.sender()).run();
/// assert_eq!(out.iter().collect::<Vec<_>>(), [10, 11, 20, 21]);
/// ```
#[derive(Debug)]
pub struct Bridge<T> {
    done: Receiver<()>,
    input: Receiver<Receiver<T>>,
    output: Sender<T>,
}

impl<T> Bridge<T> {
    /// A bridge from the channels received on `input` to `output`.
    ///
    /// ```
    /// use gosync::chan::{Chan, Receiver};
    /// use gosync::pattern::Bridge;
    ///
    /// let (streams, out) = (Chan::<Receiver<u8>>::new(0), Chan::new(0));
    /// let _bridge = Bridge::new(Chan::nil().receiver(), streams.receiver(), out.sender());
    /// ```
    pub fn new(done: Receiver<()>, input: Receiver<Receiver<T>>, output: Sender<T>) -> Self {
        Bridge {
            done,
            input,
            output,
        }
    }
}

impl<T: Send> Driver for Bridge<T> {
    fn run(self) {
        let _close = CloseOnDrop(&self.output);
        loop {
            let stream = select! {
                recv(self.done) -> _ => return,
                recv(self.input) -> s => match s {
                    Some(s) => s,
                    None => return,
                },
            };
            loop {
                let v = select! {
                    recv(self.done) -> _ => return,
                    recv(stream) -> v => match v {
                        Some(v) => v,
                        None => break,
                    },
                };
                if !send_or_done(&self.done, &self.output, v) {
                    return;
                }
            }
        }
    }

    async fn run_async(self) {
        let _close = CloseOnDrop(&self.output);
        loop {
            let stream = select_async! {
                recv(self.done) -> _ => return,
                recv(self.input) -> s => match s {
                    Some(s) => s,
                    None => return,
                },
            };
            loop {
                let v = select_async! {
                    recv(self.done) -> _ => return,
                    recv(stream) -> v => match v {
                        Some(v) => v,
                        None => break,
                    },
                };
                if !send_or_done_async(&self.done, &self.output, v).await {
                    return;
                }
            }
        }
    }
}

/// Go's bridge: one channel carrying the values of every channel received on `input`, each
/// drained in turn, in the order the channels arrive; closed when `input` is drained or `done`
/// fires. Runs a [`Bridge`] driver on a new thread.
///
/// ```
/// use gosync::chan::{Chan, Receiver};
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let streams: Chan<Receiver<u32>> = Chan::new(0);
/// let tx = streams.clone();
/// std::thread::spawn(move || {
///     for i in 0..3 {
///         tx.send(pattern::from_iter(Chan::nil().receiver(), vec![i * 10, i * 10 + 1])).unwrap();
///     }
///     tx.close();
/// });
/// let flat = pattern::bridge(done, streams.receiver());
/// assert_eq!(flat.iter().collect::<Vec<_>>(), [0, 1, 10, 11, 20, 21]);
/// ```
pub fn bridge<T: Send + 'static>(done: Receiver<()>, input: Receiver<Receiver<T>>) -> Receiver<T> {
    let out = Chan::new(0);
    let driver = Bridge::new(done, input, out.sender());
    go("gosync-bridge", move || driver.run());
    out.receiver()
}
