//! The `or_n` case: the first of N done channels, three ways.
//!
//! The course shows three shapes of Go's `or(channels...)`: a goroutine per channel, a
//! recursive tree of two-way selects, and one `reflect.Select` over all of them. gosync's
//! [`gosync::pattern::or`] is the last shape (one thread in one dynamic select); the other two
//! are written here with gosync channels, each goroutine an OS thread, to compare them.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gosync::chan::{Chan, Receiver};

/// Done channels per measurement.
pub const N: usize = 16;

/// Pause between building an `or` and closing a done channel, so that its waiters are parked.
const SETTLE: Duration = Duration::from_millis(2);

/// An `or` implementation: a channel that closes once any of the done channels fires.
pub type OrFn = fn(&[Receiver<()>]) -> Receiver<()>;

/// The library's `or`: one thread selecting over all the channels.
pub fn library(dones: &[Receiver<()>]) -> Receiver<()> {
    gosync::pattern::or(dones)
}

/// The course's goroutine version: a thread per channel, each waiting for its channel or for
/// the output; the first to see its channel fire closes the output (once).
pub fn thread_per_channel(dones: &[Receiver<()>]) -> Receiver<()> {
    let out: Chan<()> = Chan::new(0);
    let dones = dones.to_vec();
    let o = out.clone();
    std::thread::spawn(move || {
        let once = Arc::new(std::sync::Once::new());
        for c in dones {
            let (o, once) = (o.clone(), once.clone());
            std::thread::spawn(move || {
                gosync::select! {
                    recv(c) -> _ => once.call_once(|| o.close()),
                    recv(o) -> _ => {},
                }
            });
        }
    });
    out.receiver()
}

/// The course's recursive version: a thread selecting over two halves, each an `or` of its own.
pub fn recursive(dones: &[Receiver<()>]) -> Receiver<()> {
    match dones {
        [] => Chan::nil().receiver(),
        [one] => one.clone(),
        many => {
            let out: Chan<()> = Chan::new(0);
            let many = many.to_vec();
            let o = out.sender();
            std::thread::spawn(move || {
                if let [a, b] = &many[..] {
                    gosync::select! {
                        recv(a) -> _ => {},
                        recv(b) -> _ => {},
                    }
                } else {
                    let m = many.len() / 2;
                    let (a, b) = (recursive(&many[..m]), recursive(&many[m..]));
                    gosync::select! {
                        recv(a) -> _ => {},
                        recv(b) -> _ => {},
                    }
                }
                o.close();
            });
            out.receiver()
        }
    }
}

/// One measurement of `or`: `iters` times build an `or` over [`N`] fresh channels, close one
/// (a different one each time) and wait for the output to close, timing the whole; then
/// `parked` times the same with a pause after building, timing only close → observed.
/// Returns the medians in µs: (whole, close → observed). Every channel is closed after each
/// iteration, so that every helper thread ends.
pub fn measure(or: OrFn, iters: usize, parked: usize) -> (f64, f64) {
    let once = |k: usize, settle: bool| -> Duration {
        let chans: Vec<Chan<()>> = (0..N).map(|_| Chan::new(0)).collect();
        let dones: Vec<Receiver<()>> = chans.iter().map(Chan::receiver).collect();
        let t0 = Instant::now();
        let out = or(&dones);
        if settle {
            std::thread::sleep(SETTLE);
        }
        let t1 = Instant::now();
        chans[k % N].close();
        black_box(out.recv());
        let t2 = Instant::now();
        for (i, c) in chans.iter().enumerate() {
            if i != k % N {
                c.close();
            }
        }
        if settle {
            t2 - t1
        } else {
            t2 - t0
        }
    };
    let whole: Vec<u64> = (0..iters)
        .map(|k| once(k, false).as_nanos() as u64)
        .collect();
    let fired: Vec<u64> = (0..parked)
        .map(|k| once(k, true).as_nanos() as u64)
        .collect();
    let med = |v: Vec<u64>| super::work::percentiles(v).map_or(f64::NAN, |(m, _)| m / 1e3);
    (med(whole), med(fired))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_fires_on_any_channel() {
        for or in [library as OrFn, thread_per_channel, recursive] {
            for k in [0, 7, N - 1] {
                let chans: Vec<Chan<()>> = (0..N).map(|_| Chan::new(0)).collect();
                let dones: Vec<Receiver<()>> = chans.iter().map(Chan::receiver).collect();
                let out = or(&dones);
                chans[k].close();
                assert_eq!(out.recv(), None);
                assert!(out.is_closed());
                for (i, c) in chans.iter().enumerate() {
                    if i != k {
                        c.close();
                    }
                }
            }
        }
    }

    #[test]
    fn measure_reports_medians() {
        let (whole, fired) = measure(recursive, 3, 1);
        assert!(whole > 0.0 && fired > 0.0);
    }
}
