//! Stream operators — take, skip, map, filter, reduce — and generators (repeat, repeatFn,
//! from an iterator).
//!
//! Each operator is a [`Step`] (so it can run in any [`Stage`](super::Stage)) and a function that runs it in
//! a stage on a new thread.

use super::pipeline::{stage, Flow, Step};
use super::{go, send_or_done, send_or_done_async, CloseOnDrop, Driver};
use crate::chan::{Chan, Receiver, Sender};
use crate::{select, select_async};

/// The step of [`take`]: passes the first `n` values, then ends the stage without reading
/// more.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, Stage, Take};
///
/// let input = Chan::new(5);
/// for i in 0..5 {
///     input.send(i).unwrap();
/// }
/// let output = Chan::new(5);
/// Stage::new(Chan::nil().receiver(), input.receiver(), output.sender(), Take::new(2)).run();
/// assert_eq!(output.iter().collect::<Vec<_>>(), [0, 1]);
/// assert_eq!(input.len(), 3); // the rest stays in the input
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    left: usize,
}

impl Take {
    /// A step passing the first `n` values.
    ///
    /// ```
    /// let _first_ten = gosync::pattern::Take::new(10);
    /// ```
    pub fn new(n: usize) -> Self {
        Take { left: n }
    }
}

impl<T> Step<T> for Take {
    type Output = T;

    fn step(&mut self, value: T) -> Flow<T> {
        self.left = self.left.saturating_sub(1);
        Flow::Emit(value)
    }

    fn finished(&self) -> bool {
        self.left == 0
    }
}

/// The step of [`take_while`]: passes values while `pred` holds; the first value for which it
/// does not is dropped and ends the stage.
///
/// ```
/// use gosync::pattern::{Flow, Step, TakeWhile};
///
/// let mut small = TakeWhile::new(|v: &u32| *v < 10);
/// assert_eq!(small.step(3), Flow::Emit(3));
/// assert_eq!(small.step(12), Flow::Stop);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TakeWhile<F> {
    pred: F,
}

impl<F> TakeWhile<F> {
    /// A step passing values while `pred` holds.
    ///
    /// ```
    /// let _positive = gosync::pattern::TakeWhile::new(|v: &i64| *v > 0);
    /// ```
    pub fn new(pred: F) -> Self {
        TakeWhile { pred }
    }
}

impl<T, F: FnMut(&T) -> bool> Step<T> for TakeWhile<F> {
    type Output = T;

    fn step(&mut self, value: T) -> Flow<T> {
        if (self.pred)(&value) {
            Flow::Emit(value)
        } else {
            Flow::Stop
        }
    }
}

/// The step of [`skip`]: drops the first `n` values, passes the rest.
///
/// ```
/// use gosync::pattern::{Flow, Skip, Step};
///
/// let mut skip = Skip::new(1);
/// assert_eq!(skip.step('a'), Flow::Skip);
/// assert_eq!(skip.step('b'), Flow::Emit('b'));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip {
    left: usize,
}

impl Skip {
    /// A step dropping the first `n` values.
    ///
    /// ```
    /// let _past_header = gosync::pattern::Skip::new(1);
    /// ```
    pub fn new(n: usize) -> Self {
        Skip { left: n }
    }
}

impl<T> Step<T> for Skip {
    type Output = T;

    fn step(&mut self, value: T) -> Flow<T> {
        if self.left > 0 {
            self.left -= 1;
            Flow::Skip
        } else {
            Flow::Emit(value)
        }
    }
}

/// The step of [`skip_while`]: drops values while `pred` holds, then passes every value from
/// the first for which it does not.
///
/// ```
/// use gosync::pattern::{Flow, SkipWhile, Step};
///
/// let mut s = SkipWhile::new(|v: &i32| *v < 0);
/// assert_eq!(s.step(-1), Flow::Skip);
/// assert_eq!(s.step(2), Flow::Emit(2));
/// assert_eq!(s.step(-3), Flow::Emit(-3)); // skipping is over
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SkipWhile<F> {
    pred: F,
    skipping: bool,
}

impl<F> SkipWhile<F> {
    /// A step dropping values while `pred` holds.
    ///
    /// ```
    /// let _no_blank_start = gosync::pattern::SkipWhile::new(|line: &String| line.is_empty());
    /// ```
    pub fn new(pred: F) -> Self {
        SkipWhile {
            pred,
            skipping: true,
        }
    }
}

impl<T, F: FnMut(&T) -> bool> Step<T> for SkipWhile<F> {
    type Output = T;

    fn step(&mut self, value: T) -> Flow<T> {
        if self.skipping && (self.pred)(&value) {
            return Flow::Skip;
        }
        self.skipping = false;
        Flow::Emit(value)
    }
}

/// The step of [`map`]: sends `f(v)` for every `v`.
///
/// ```
/// use gosync::pattern::{Flow, Map, Step};
///
/// let mut len = Map::new(|s: &str| s.len());
/// assert_eq!(len.step("four"), Flow::Emit(4));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Map<F> {
    f: F,
}

impl<F> Map<F> {
    /// A step applying `f`.
    ///
    /// ```
    /// let _double = gosync::pattern::Map::new(|v: u32| v * 2);
    /// ```
    pub fn new(f: F) -> Self {
        Map { f }
    }
}

impl<T, U, F: FnMut(T) -> U> Step<T> for Map<F> {
    type Output = U;

    fn step(&mut self, value: T) -> Flow<U> {
        Flow::Emit((self.f)(value))
    }
}

/// The step of [`filter`]: passes the values for which `pred` holds.
///
/// ```
/// use gosync::pattern::{Filter, Flow, Step};
///
/// let mut even = Filter::new(|v: &u8| v % 2 == 0);
/// assert_eq!(even.step(2), Flow::Emit(2));
/// assert_eq!(even.step(3), Flow::Skip);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Filter<F> {
    pred: F,
}

impl<F> Filter<F> {
    /// A step keeping the values for which `pred` holds.
    ///
    /// ```
    /// let _non_empty = gosync::pattern::Filter::new(|s: &String| !s.is_empty());
    /// ```
    pub fn new(pred: F) -> Self {
        Filter { pred }
    }
}

impl<T, F: FnMut(&T) -> bool> Step<T> for Filter<F> {
    type Output = T;

    fn step(&mut self, value: T) -> Flow<T> {
        if (self.pred)(&value) {
            Flow::Emit(value)
        } else {
            Flow::Skip
        }
    }
}

/// The course's `take(done, valueStream, num)`: the first `n` values of `input`, then closed.
/// Exactly `n` values are read; the rest stay in `input`.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::new(0);
/// let endless = pattern::repeat(done.receiver(), vec!["ping"]);
/// let three = pattern::take(done.receiver(), endless, 3);
/// assert_eq!(three.iter().collect::<Vec<_>>(), ["ping"; 3]);
/// done.close(); // stop the generator
/// ```
pub fn take<T: Send + 'static>(done: Receiver<()>, input: Receiver<T>, n: usize) -> Receiver<T> {
    stage(done, input, Take::new(n))
}

/// The course's `takeWhile`: the values of `input` while `pred` holds; closed at the first
/// value for which it does not (that value is dropped).
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let numbers = pattern::from_iter(done.clone(), [1, 2, 30, 4]);
/// let small = pattern::take_while(done, numbers, |v: &i32| *v < 10);
/// assert_eq!(small.iter().collect::<Vec<_>>(), [1, 2]);
/// ```
pub fn take_while<T, F>(done: Receiver<()>, input: Receiver<T>, pred: F) -> Receiver<T>
where
    T: Send + 'static,
    F: FnMut(&T) -> bool + Send + 'static,
{
    stage(done, input, TakeWhile::new(pred))
}

/// The course's `skipN`: `input` without its first `n` values.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let rest = pattern::skip(done.clone(), pattern::from_iter(done, 0..5), 3);
/// assert_eq!(rest.iter().collect::<Vec<_>>(), [3, 4]);
/// ```
pub fn skip<T: Send + 'static>(done: Receiver<()>, input: Receiver<T>, n: usize) -> Receiver<T> {
    stage(done, input, Skip::new(n))
}

/// The course's `skipWhile`: `input` from the first value for which `pred` does not hold.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let numbers = pattern::from_iter(done.clone(), [0, 0, 7, 0, 8]);
/// let from_first = pattern::skip_while(done, numbers, |v: &i32| *v == 0);
/// assert_eq!(from_first.iter().collect::<Vec<_>>(), [7, 0, 8]);
/// ```
pub fn skip_while<T, F>(done: Receiver<()>, input: Receiver<T>, pred: F) -> Receiver<T>
where
    T: Send + 'static,
    F: FnMut(&T) -> bool + Send + 'static,
{
    stage(done, input, SkipWhile::new(pred))
}

/// The course's `mapChan`: `f` applied to every value of `input`, in order.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let words = pattern::from_iter(done.clone(), ["go", "rust"]);
/// let lengths = pattern::map(done, words, |w: &str| w.len());
/// assert_eq!(lengths.iter().collect::<Vec<_>>(), [2, 4]);
/// ```
pub fn map<T, U, F>(done: Receiver<()>, input: Receiver<T>, f: F) -> Receiver<U>
where
    T: Send + 'static,
    U: Send + 'static,
    F: FnMut(T) -> U + Send + 'static,
{
    stage(done, input, Map::new(f))
}

/// The values of `input` for which `pred` holds, in order.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let evens = pattern::filter(done.clone(), pattern::from_iter(done, 0..7), |v: &u32| v % 2 == 0);
/// assert_eq!(evens.iter().collect::<Vec<_>>(), [0, 2, 4, 6]);
/// ```
pub fn filter<T, F>(done: Receiver<()>, input: Receiver<T>, pred: F) -> Receiver<T>
where
    T: Send + 'static,
    F: FnMut(&T) -> bool + Send + 'static,
{
    stage(done, input, Filter::new(pred))
}

/// Folds every value of `input` into `init` with `f`, blocking the thread until `input` is
/// drained: `Some(total)`, or `None` if `done` fired first (the partial total is dropped).
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let sum = pattern::reduce(done.clone(), pattern::from_iter(done, 1..=4), 0, |acc, v| acc + v);
/// assert_eq!(sum, Some(10));
/// ```
pub fn reduce<T, A, F>(done: Receiver<()>, input: Receiver<T>, init: A, mut f: F) -> Option<A>
where
    F: FnMut(A, T) -> A,
{
    let mut acc = init;
    loop {
        select! {
            recv(done) -> _ => return None,
            recv(input) -> v => match v {
                Some(v) => acc = f(acc, v),
                None => return Some(acc),
            },
        }
    }
}

/// [`reduce`] for async tasks.
///
/// # Cancel safety
///
/// Dropping the future loses the partial total but no value still in `input`.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// # futures::executor::block_on(async {
/// let done = Chan::nil().receiver();
/// let words = pattern::from_iter(done.clone(), ["a", "b", "c"]);
/// let joined = pattern::reduce_async(done, words, String::new(), |mut s, w| {
///     s.push_str(w);
///     s
/// })
/// .await;
/// assert_eq!(joined.as_deref(), Some("abc"));
/// # });
/// ```
pub async fn reduce_async<T, A, F>(
    done: Receiver<()>,
    input: Receiver<T>,
    init: A,
    mut f: F,
) -> Option<A>
where
    F: FnMut(A, T) -> A,
{
    let mut acc = init;
    loop {
        select_async! {
            recv(done) -> _ => return None,
            recv(input) -> v => match v {
                Some(v) => acc = f(acc, v),
                None => return Some(acc),
            },
        }
    }
}

/// A generator: sends the values of an iterator on `output` until the iterator ends or `done`
/// fires, then closes `output` — the course's `gen(nums...)`, and with an endless iterator
/// its `repeat` and `repeatFn`.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, Generator};
///
/// let out = Chan::new(3);
/// Generator::new(Chan::nil().receiver(), ["x", "y", "z"], out.sender()).run();
/// assert_eq!(out.iter().collect::<String>(), "xyz");
/// ```
#[derive(Debug)]
pub struct Generator<I: Iterator> {
    done: Receiver<()>,
    iter: I,
    output: Sender<<I as Iterator>::Item>,
}

impl<I: Iterator> Generator<I> {
    /// A generator sending the values of `iter` on `output`.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::Generator;
    ///
    /// let out = Chan::new(0);
    /// let _gen = Generator::new(Chan::nil().receiver(), 0..10u8, out.sender());
    /// ```
    pub fn new<J>(done: Receiver<()>, iter: J, output: Sender<I::Item>) -> Self
    where
        J: IntoIterator<IntoIter = I>,
    {
        Generator {
            done,
            iter: iter.into_iter(),
            output,
        }
    }
}

impl<I> Driver for Generator<I>
where
    I: Iterator + Send,
    I::Item: Send,
{
    fn run(mut self) {
        let _close = CloseOnDrop(&self.output);
        for v in self.iter.by_ref() {
            if !send_or_done(&self.done, &self.output, v) {
                return;
            }
        }
    }

    async fn run_async(mut self) {
        let _close = CloseOnDrop(&self.output);
        for v in self.iter.by_ref() {
            if !send_or_done_async(&self.done, &self.output, v).await {
                return;
            }
        }
    }
}

fn spawn_generator<I>(done: Receiver<()>, iter: I) -> Receiver<I::Item>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    let out = Chan::new(0);
    let driver = Generator::new(done, iter, out.sender());
    go("gosync-generator", move || driver.run());
    out.receiver()
}

/// The course's `gen(nums...)`: a channel carrying the values of `iter`, closed after the last
/// one (or when `done` fires).
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let nums = pattern::from_iter(Chan::nil().receiver(), vec![2, 3]);
/// assert_eq!(nums.recv(), Some(2));
/// assert_eq!(nums.recv(), Some(3));
/// assert_eq!(nums.recv(), None);
/// ```
pub fn from_iter<I>(done: Receiver<()>, iter: I) -> Receiver<I::Item>
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    spawn_generator(done, iter.into_iter())
}

/// The course's `repeat(done, values...)`: `values` over and over until `done` fires. With no
/// values the channel closes at once.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::new(0);
/// let beats = pattern::repeat(done.receiver(), vec!["tick", "tock"]);
/// let four: Vec<_> = beats.iter().take(4).collect();
/// assert_eq!(four, ["tick", "tock", "tick", "tock"]);
/// done.close();
/// ```
pub fn repeat<T: Clone + Send + 'static>(done: Receiver<()>, values: Vec<T>) -> Receiver<T> {
    spawn_generator(done, values.into_iter().cycle())
}

/// The course's `repeatFn(done, fn)`: the values `f` returns, until it returns `None` or
/// `done` fires. For an endless stream, always return `Some`.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::new(0);
/// let mut n = 1u64;
/// let powers = pattern::generator(done.receiver(), move || {
///     n *= 2;
///     Some(n)
/// });
/// assert_eq!(powers.iter().take(3).collect::<Vec<_>>(), [2, 4, 8]);
/// done.close();
/// ```
pub fn generator<T, F>(done: Receiver<()>, f: F) -> Receiver<T>
where
    T: Send + 'static,
    F: FnMut() -> Option<T> + Send + 'static,
{
    spawn_generator(done, std::iter::from_fn(f))
}
