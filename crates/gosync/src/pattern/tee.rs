//! Tee: one channel into two, each receiving every value.

use super::{go, recv_or_done, recv_or_done_async, CloseOnDrop, Driver};
use crate::chan::{Chan, Receiver, Sender};
use crate::{select, select_async};

/// The driver of [`tee`]: sends every value of its input to both outputs — to whichever is
/// ready first, then to the other — before reading the next, and closes both outputs when the
/// input is drained or `done` fires (Go's `tee`, a `select` over the two sends).
///
/// Both outputs receive the same values in the same order. The slower consumer sets the
/// pace. An output its consumer closed is dropped; the tee ends when both are gone.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern::{Driver, Tee};
///
/// let input = Chan::new(2);
/// input.send('a').unwrap();
/// input.send('b').unwrap();
/// input.close();
/// let (left, right) = (Chan::new(2), Chan::new(2));
/// Tee::new(Chan::nil().receiver(), input.receiver(), left.sender(), right.sender()).run();
/// assert_eq!(left.iter().collect::<String>(), "ab");
/// assert_eq!(right.iter().collect::<String>(), "ab");
/// ```
#[derive(Debug)]
pub struct Tee<T> {
    done: Receiver<()>,
    input: Receiver<T>,
    out1: Sender<T>,
    out2: Sender<T>,
}

impl<T> Tee<T> {
    /// A tee from `input` to `out1` and `out2`.
    ///
    /// ```
    /// use gosync::chan::Chan;
    /// use gosync::pattern::Tee;
    ///
    /// let (input, a, b) = (Chan::<u8>::new(0), Chan::new(0), Chan::new(0));
    /// let _tee = Tee::new(Chan::nil().receiver(), input.receiver(), a.sender(), b.sender());
    /// ```
    pub fn new(done: Receiver<()>, input: Receiver<T>, out1: Sender<T>, out2: Sender<T>) -> Self {
        Tee {
            done,
            input,
            out1,
            out2,
        }
    }
}

/// Where a value is still owed, and which outputs are still open.
#[derive(Clone, Copy)]
struct Live {
    out1: bool,
    out2: bool,
}

impl<T: Clone + Send> Driver for Tee<T> {
    fn run(self) {
        let _close1 = CloseOnDrop(&self.out1);
        let _close2 = CloseOnDrop(&self.out2);
        let mut live = Live {
            out1: true,
            out2: true,
        };
        while live.out1 || live.out2 {
            let Some(v) = recv_or_done(&self.done, &self.input) else {
                return;
            };
            let mut owed = live;
            if owed.out1 && owed.out2 {
                // Both owed: whichever consumer is ready first gets it first.
                select! {
                    send(self.out1, v.clone()) -> r => {
                        owed.out1 = false;
                        live.out1 = r.is_ok();
                    }
                    send(self.out2, v.clone()) -> r => {
                        owed.out2 = false;
                        live.out2 = r.is_ok();
                    }
                    recv(self.done) -> _ => return,
                }
            }
            let (out, open) = if owed.out1 {
                (&self.out1, &mut live.out1)
            } else {
                (&self.out2, &mut live.out2)
            };
            select! {
                send(out, v) -> r => *open = r.is_ok(),
                recv(self.done) -> _ => return,
            }
        }
    }

    async fn run_async(self) {
        let _close1 = CloseOnDrop(&self.out1);
        let _close2 = CloseOnDrop(&self.out2);
        let mut live = Live {
            out1: true,
            out2: true,
        };
        while live.out1 || live.out2 {
            let Some(v) = recv_or_done_async(&self.done, &self.input).await else {
                return;
            };
            let mut owed = live;
            if owed.out1 && owed.out2 {
                select_async! {
                    send(self.out1, v.clone()) -> r => {
                        owed.out1 = false;
                        live.out1 = r.is_ok();
                    }
                    send(self.out2, v.clone()) -> r => {
                        owed.out2 = false;
                        live.out2 = r.is_ok();
                    }
                    recv(self.done) -> _ => return,
                }
            }
            let (out, open) = if owed.out1 {
                (&self.out1, &mut live.out1)
            } else {
                (&self.out2, &mut live.out2)
            };
            select_async! {
                send(out, v) -> r => *open = r.is_ok(),
                recv(self.done) -> _ => return,
            }
        }
    }
}

/// Go's `tee(done, in)`: two channels, each carrying every value of `input` in order; closed
/// when `input` is drained or `done` fires. Both consumers must keep reading: a value goes to
/// both before the next is read. Runs a [`Tee`] driver on a new thread.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::pattern;
///
/// let done = Chan::nil().receiver();
/// let (log, work) = pattern::tee(done.clone(), pattern::from_iter(done, ["job-1", "job-2"]));
/// let logger = std::thread::spawn(move || log.iter().count());
/// assert_eq!(work.iter().collect::<Vec<_>>(), ["job-1", "job-2"]);
/// assert_eq!(logger.join().unwrap(), 2);
/// ```
pub fn tee<T: Clone + Send + 'static>(
    done: Receiver<()>,
    input: Receiver<T>,
) -> (Receiver<T>, Receiver<T>) {
    let (a, b) = (Chan::new(0), Chan::new(0));
    let driver = Tee::new(done, input, a.sender(), b.sender());
    go("gosync-tee", move || driver.run());
    (a.receiver(), b.receiver())
}
