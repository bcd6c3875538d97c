//! The workloads of the `chan` family and the guards they run under.
//!
//! Thread workloads return the elapsed time (or round-trip latencies); they run on a thread of
//! their own through [`on_thread`], so that one that never finishes (a lost wake-up, a
//! livelock) is reported as [`Hung`] after a time limit instead of blocking the run. Its
//! threads are then left blocked: nothing can end a thread from outside.
//!
//! Async workloads are a set of tasks ([`Task`]) run on the family's tokio runtime through
//! [`on_tasks`]; tasks that do not finish in time are aborted.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use gosync::chan::Chan;
use tokio::runtime::Runtime;

use super::imp::{AsyncChan, SyncChan};

/// Threads (and tasks) per side in the multi-producer / multi-consumer cases.
pub const THREADS: usize = 4;

/// A measurement that did not finish within its time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hung;

/// One task of an async workload.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `f` on a new thread and waits at most `limit` for its result. On `Err(Hung)` the
/// thread (and whatever it waits for) is left behind.
///
/// # Panics
///
/// If `f` panics.
pub fn on_thread<R: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Hung> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("chan-bench".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("cannot spawn a benchmark thread");
    match rx.recv_timeout(limit) {
        Ok(r) => {
            let _ = handle.join();
            Ok(r)
        }
        Err(RecvTimeoutError::Timeout) => Err(Hung),
        Err(RecvTimeoutError::Disconnected) => {
            let _ = handle.join();
            panic!("benchmark thread panicked");
        }
    }
}

/// Spawns `tasks` on `rt` and returns the time until all of them finished, or `Err(Hung)`
/// (after aborting them) if that takes longer than `limit`.
///
/// # Panics
///
/// If a task panics.
pub fn on_tasks(rt: &Runtime, limit: Duration, tasks: Vec<Task>) -> Result<Duration, Hung> {
    let (tx, rx) = std::sync::mpsc::channel();
    let t0 = Instant::now();
    let handles: Vec<_> = tasks.into_iter().map(|t| rt.spawn(t)).collect();
    let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
    rt.spawn(async move {
        let mut ok = true;
        for h in handles {
            ok &= h.await.is_ok();
        }
        let _ = tx.send(ok.then(|| t0.elapsed()));
    });
    match rx.recv_timeout(limit) {
        Ok(Some(d)) => Ok(d),
        Ok(None) | Err(RecvTimeoutError::Disconnected) => panic!("benchmark task panicked"),
        Err(RecvTimeoutError::Timeout) => {
            for a in aborts {
                a.abort();
            }
            Err(Hung)
        }
    }
}

/// Median and 99th percentile of round-trip latencies, in ns.
pub fn percentiles(mut lat: Vec<u64>) -> Option<(f64, f64)> {
    if lat.is_empty() {
        return None;
    }
    lat.sort_unstable();
    let at = |q: usize| lat[(lat.len() * q / 100).min(lat.len() - 1)] as f64;
    Some((at(50), at(99)))
}

// ---------------------------------------------------------------------------------------
// Threads.

/// `seq`: one thread sends `cap` messages, then receives them, until `n` messages went
/// through (`cap` must be at least 1).
pub fn seq<C: SyncChan>(cap: usize, n: usize) -> Duration {
    assert!(cap > 0, "seq needs a buffer");
    let (tx, rx) = C::new(cap);
    let t0 = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = cap.min(left);
        for i in 0..k {
            C::send(&tx, i);
        }
        for _ in 0..k {
            black_box(C::recv(&rx));
        }
        left -= k;
    }
    t0.elapsed()
}

/// `spsc`: one thread sends `n` messages, another receives them.
pub fn spsc<C: SyncChan>(cap: usize, n: usize) -> Duration {
    let (tx, rx) = C::new(cap);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..n {
                C::send(&tx, i);
            }
        });
        for _ in 0..n {
            black_box(C::recv(&rx));
        }
    });
    t0.elapsed()
}

/// `mpsc`: [`THREADS`] threads send `n / THREADS` messages each, one thread receives them all.
pub fn mpsc<C: SyncChan>(cap: usize, n: usize) -> Duration {
    let per = n / THREADS;
    let (tx, rx) = C::new(cap);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let tx = tx.clone();
            s.spawn(move || {
                for i in 0..per {
                    C::send(&tx, i);
                }
            });
        }
        drop(tx);
        for _ in 0..per * THREADS {
            black_box(C::recv(&rx));
        }
    });
    t0.elapsed()
}

/// `mpmc`: [`THREADS`] threads send `n / THREADS` messages each, [`THREADS`] others receive
/// `n / THREADS` each.
pub fn mpmc<C: SyncChan>(cap: usize, n: usize) -> Duration
where
    C::Rx: Clone,
{
    let per = n / THREADS;
    let (tx, rx) = C::new(cap);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let tx = tx.clone();
            s.spawn(move || {
                for i in 0..per {
                    C::send(&tx, i);
                }
            });
            let rx = rx.clone();
            s.spawn(move || {
                for _ in 0..per {
                    black_box(C::recv(&rx));
                }
            });
        }
    });
    t0.elapsed()
}

/// Ping-pong: two threads bounce a message `n` times over two channels of capacity `cap`;
/// returns every round trip's latency in ns, as seen by the thread that starts it.
pub fn pingpong<C: SyncChan>(cap: usize, n: usize) -> Vec<u64> {
    let (tx_ab, rx_ab) = C::new(cap);
    let (tx_ba, rx_ba) = C::new(cap);
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..n {
                let v = C::recv(&rx_ab);
                C::send(&tx_ba, v);
            }
        });
        let mut lat = Vec::with_capacity(n);
        let mut v = 0;
        for _ in 0..n {
            let t = Instant::now();
            C::send(&tx_ab, v);
            v = C::recv(&rx_ba) + 1;
            lat.push(t.elapsed().as_nanos() as u64);
        }
        black_box(v);
        lat
    })
}

/// Which select workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sel {
    /// `select_rx`: [`THREADS`] producers, each on its own channel; one consumer selects
    /// receives over all of them.
    Rx,
    /// `select_both`: [`THREADS`] producers each send by selecting over the [`THREADS`]
    /// channels; [`THREADS`] consumers each receive by selecting over them.
    Both,
}

/// The select workloads with gosync's `select!`.
pub fn select_gosync(sel: Sel, cap: usize, n: usize) -> Duration {
    let per = n / THREADS;
    let chans: [Chan<usize>; THREADS] = std::array::from_fn(|_| Chan::new(cap));
    let [c0, c1, c2, c3] = &chans;
    let t0 = Instant::now();
    std::thread::scope(|s| match sel {
        Sel::Rx => {
            for c in &chans {
                let tx = c.sender();
                s.spawn(move || {
                    for i in 0..per {
                        tx.send(i).expect("channel closed");
                    }
                });
            }
            for _ in 0..per * THREADS {
                let v = gosync::select! {
                    recv(c0) -> v => v,
                    recv(c1) -> v => v,
                    recv(c2) -> v => v,
                    recv(c3) -> v => v,
                };
                black_box(v.expect("channel closed"));
            }
        }
        Sel::Both => {
            for _ in 0..THREADS {
                s.spawn(move || {
                    for i in 0..per {
                        let r = gosync::select! {
                            send(c0, i) -> r => r,
                            send(c1, i) -> r => r,
                            send(c2, i) -> r => r,
                            send(c3, i) -> r => r,
                        };
                        r.expect("channel closed");
                    }
                });
                s.spawn(move || {
                    for _ in 0..per {
                        let v = gosync::select! {
                            recv(c0) -> v => v,
                            recv(c1) -> v => v,
                            recv(c2) -> v => v,
                            recv(c3) -> v => v,
                        };
                        black_box(v.expect("channel closed"));
                    }
                });
            }
        }
    });
    t0.elapsed()
}

/// The select workloads with crossbeam-channel's `select!`.
pub fn select_crossbeam(sel: Sel, cap: usize, n: usize) -> Duration {
    use crossbeam_channel::select;
    let per = n / THREADS;
    let chans: [_; THREADS] = std::array::from_fn(|_| crossbeam_channel::bounded::<usize>(cap));
    let [(s0, r0), (s1, r1), (s2, r2), (s3, r3)] = &chans;
    let t0 = Instant::now();
    std::thread::scope(|s| match sel {
        Sel::Rx => {
            for (tx, _) in &chans {
                s.spawn(move || {
                    for i in 0..per {
                        tx.send(i).expect("channel closed");
                    }
                });
            }
            for _ in 0..per * THREADS {
                let v = select! {
                    recv(r0) -> v => v,
                    recv(r1) -> v => v,
                    recv(r2) -> v => v,
                    recv(r3) -> v => v,
                };
                black_box(v.expect("channel closed"));
            }
        }
        Sel::Both => {
            for _ in 0..THREADS {
                s.spawn(move || {
                    for i in 0..per {
                        let r = select! {
                            send(s0, i) -> r => r,
                            send(s1, i) -> r => r,
                            send(s2, i) -> r => r,
                            send(s3, i) -> r => r,
                        };
                        r.expect("channel closed");
                    }
                });
                s.spawn(move || {
                    for _ in 0..per {
                        let v = select! {
                            recv(r0) -> v => v,
                            recv(r1) -> v => v,
                            recv(r2) -> v => v,
                            recv(r3) -> v => v,
                        };
                        black_box(v.expect("channel closed"));
                    }
                });
            }
        }
    });
    t0.elapsed()
}

/// The select workloads with flume's `Selector`.
pub fn select_flume(sel: Sel, cap: usize, n: usize) -> Duration {
    let per = n / THREADS;
    let chans: [_; THREADS] = std::array::from_fn(|_| flume::bounded::<usize>(cap));
    let [(s0, r0), (s1, r1), (s2, r2), (s3, r3)] = &chans;
    let recv_any = move || {
        flume::Selector::new()
            .recv(r0, |v| v)
            .recv(r1, |v| v)
            .recv(r2, |v| v)
            .recv(r3, |v| v)
            .wait()
            .expect("channel closed")
    };
    let t0 = Instant::now();
    std::thread::scope(|s| match sel {
        Sel::Rx => {
            for (tx, _) in &chans {
                s.spawn(move || {
                    for i in 0..per {
                        tx.send(i).expect("channel closed");
                    }
                });
            }
            for _ in 0..per * THREADS {
                black_box(recv_any());
            }
        }
        Sel::Both => {
            for _ in 0..THREADS {
                s.spawn(move || {
                    for i in 0..per {
                        flume::Selector::new()
                            .send(s0, i, |r| r)
                            .send(s1, i, |r| r)
                            .send(s2, i, |r| r)
                            .send(s3, i, |r| r)
                            .wait()
                            .expect("channel closed");
                    }
                });
                s.spawn(move || {
                    for _ in 0..per {
                        black_box(recv_any());
                    }
                });
            }
        }
    });
    t0.elapsed()
}

// ---------------------------------------------------------------------------------------
// Async tasks.

/// `seq` in one task.
pub fn seq_async<C: AsyncChan>(cap: usize, n: usize) -> Vec<Task> {
    assert!(cap > 0, "seq needs a buffer");
    let (tx, mut rx) = C::new(cap);
    vec![Box::pin(async move {
        let mut left = n;
        while left > 0 {
            let k = cap.min(left);
            for i in 0..k {
                C::send(&tx, i).await;
            }
            for _ in 0..k {
                black_box(C::recv(&mut rx).await);
            }
            left -= k;
        }
    })]
}

/// `spsc` with two tasks.
pub fn spsc_async<C: AsyncChan>(cap: usize, n: usize) -> Vec<Task> {
    let (tx, mut rx) = C::new(cap);
    vec![
        Box::pin(async move {
            for i in 0..n {
                C::send(&tx, i).await;
            }
        }),
        Box::pin(async move {
            for _ in 0..n {
                black_box(C::recv(&mut rx).await);
            }
        }),
    ]
}

/// `mpsc` with [`THREADS`] producer tasks and one consumer task.
pub fn mpsc_async<C: AsyncChan>(cap: usize, n: usize) -> Vec<Task> {
    let per = n / THREADS;
    let (tx, mut rx) = C::new(cap);
    let mut tasks: Vec<Task> = (0..THREADS)
        .map(|_| {
            let tx = tx.clone();
            Box::pin(async move {
                for i in 0..per {
                    C::send(&tx, i).await;
                }
            }) as Task
        })
        .collect();
    tasks.push(Box::pin(async move {
        for _ in 0..per * THREADS {
            black_box(C::recv(&mut rx).await);
        }
    }));
    tasks
}

/// `mpmc` with [`THREADS`] producer and [`THREADS`] consumer tasks.
pub fn mpmc_async<C: AsyncChan>(cap: usize, n: usize) -> Vec<Task>
where
    C::Rx: Clone,
{
    let per = n / THREADS;
    let (tx, rx) = C::new(cap);
    let mut tasks: Vec<Task> = Vec::with_capacity(2 * THREADS);
    for _ in 0..THREADS {
        let tx = tx.clone();
        tasks.push(Box::pin(async move {
            for i in 0..per {
                C::send(&tx, i).await;
            }
        }));
        let mut rx = rx.clone();
        tasks.push(Box::pin(async move {
            for _ in 0..per {
                black_box(C::recv(&mut rx).await);
            }
        }));
    }
    tasks
}

/// Ping-pong between two tasks; the latencies (ns) go to `out` when done.
pub fn pingpong_async<C: AsyncChan>(
    cap: usize,
    n: usize,
    out: std::sync::mpsc::Sender<Vec<u64>>,
) -> Vec<Task> {
    let (tx_ab, mut rx_ab) = C::new(cap);
    let (tx_ba, mut rx_ba) = C::new(cap);
    vec![
        Box::pin(async move {
            for _ in 0..n {
                let v = C::recv(&mut rx_ab).await;
                C::send(&tx_ba, v).await;
            }
        }),
        Box::pin(async move {
            let mut lat = Vec::with_capacity(n);
            let mut v = 0;
            for _ in 0..n {
                let t = Instant::now();
                C::send(&tx_ab, v).await;
                v = C::recv(&mut rx_ba).await + 1;
                lat.push(t.elapsed().as_nanos() as u64);
            }
            black_box(v);
            let _ = out.send(lat);
        }),
    ]
}

/// The select workloads with gosync's `select_async!`.
pub fn select_gosync_async(sel: Sel, cap: usize, n: usize) -> Vec<Task> {
    let per = n / THREADS;
    let chans: [Chan<usize>; THREADS] = std::array::from_fn(|_| Chan::new(cap));
    let recv_any = |count: usize| -> Task {
        let [c0, c1, c2, c3] = chans.clone();
        Box::pin(async move {
            for _ in 0..count {
                let v = gosync::select_async! {
                    recv(c0) -> v => v,
                    recv(c1) -> v => v,
                    recv(c2) -> v => v,
                    recv(c3) -> v => v,
                };
                black_box(v.expect("channel closed"));
            }
        })
    };
    let mut tasks: Vec<Task> = Vec::new();
    match sel {
        Sel::Rx => {
            for c in &chans {
                let tx = c.sender();
                tasks.push(Box::pin(async move {
                    for i in 0..per {
                        tx.send_async(i).await.expect("channel closed");
                    }
                }));
            }
            tasks.push(recv_any(per * THREADS));
        }
        Sel::Both => {
            for _ in 0..THREADS {
                let [c0, c1, c2, c3] = chans.clone();
                tasks.push(Box::pin(async move {
                    for i in 0..per {
                        let r = gosync::select_async! {
                            send(c0, i) -> r => r,
                            send(c1, i) -> r => r,
                            send(c2, i) -> r => r,
                            send(c3, i) -> r => r,
                        };
                        r.expect("channel closed");
                    }
                }));
                tasks.push(recv_any(per));
            }
        }
    }
    tasks
}

/// The select workloads with async-channel and `tokio::select!`.
pub fn select_async_channel(sel: Sel, cap: usize, n: usize) -> Vec<Task> {
    let per = n / THREADS;
    let chans: [_; THREADS] = std::array::from_fn(|_| async_channel::bounded::<usize>(cap.max(1)));
    let recv_any = |count: usize| -> Task {
        let [r0, r1, r2, r3] = std::array::from_fn(|i| chans[i].1.clone());
        Box::pin(async move {
            for _ in 0..count {
                // A channel whose senders are all gone reports closed at once: the
                // pattern disables its branch.
                let v = tokio::select! {
                    Ok(v) = r0.recv() => v,
                    Ok(v) = r1.recv() => v,
                    Ok(v) = r2.recv() => v,
                    Ok(v) = r3.recv() => v,
                };
                black_box(v);
            }
        })
    };
    let mut tasks: Vec<Task> = Vec::new();
    match sel {
        Sel::Rx => {
            for (tx, _) in &chans {
                let tx = tx.clone();
                tasks.push(Box::pin(async move {
                    for i in 0..per {
                        tx.send(i).await.expect("channel closed");
                    }
                }));
            }
            tasks.push(recv_any(per * THREADS));
        }
        Sel::Both => {
            for _ in 0..THREADS {
                let [s0, s1, s2, s3] = std::array::from_fn(|i| chans[i].0.clone());
                tasks.push(Box::pin(async move {
                    for i in 0..per {
                        let r = tokio::select! {
                            r = s0.send(i) => r,
                            r = s1.send(i) => r,
                            r = s2.send(i) => r,
                            r = s3.send(i) => r,
                        };
                        r.expect("channel closed");
                    }
                }));
                tasks.push(recv_any(per));
            }
        }
    }
    tasks
}

/// `select_rx` with tokio's mpsc channels and `tokio::select!` (tokio's receivers are
/// single-consumer, so there is no `select_both`).
pub fn select_rx_tokio(cap: usize, n: usize) -> Vec<Task> {
    let per = n / THREADS;
    let mut tasks: Vec<Task> = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..THREADS {
        let (tx, rx) = tokio::sync::mpsc::channel::<usize>(cap.max(1));
        rxs.push(rx);
        tasks.push(Box::pin(async move {
            for i in 0..per {
                tx.send(i).await.expect("channel closed");
            }
        }));
    }
    let [mut r0, mut r1, mut r2, mut r3]: [_; THREADS] =
        rxs.try_into().expect("one receiver per producer");
    tasks.push(Box::pin(async move {
        for _ in 0..per * THREADS {
            // A channel whose sender is done reports closed at once: the pattern
            // disables its branch.
            let v = tokio::select! {
                Some(v) = r0.recv() => v,
                Some(v) = r1.recv() => v,
                Some(v) = r2.recv() => v,
                Some(v) = r3.recv() => v,
            };
            black_box(v);
        }
    }));
    tasks
}

#[cfg(test)]
mod tests {
    use super::super::imp::{AsyncChannel, Crossbeam, Flume, Gosync, Kanal, Std, Tokio};
    use super::*;

    const LIMIT: Duration = Duration::from_secs(60);

    fn rt() -> Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap()
    }

    #[test]
    fn thread_workloads_finish() {
        for cap in [0, 1, 16] {
            if cap > 0 {
                seq::<Gosync>(cap, 100);
                seq::<Std>(cap, 100);
            }
            spsc::<Gosync>(cap, 100);
            spsc::<Kanal>(cap, 100);
            mpsc::<Gosync>(cap, 100);
            mpsc::<Std>(cap, 100);
            mpmc::<Gosync>(cap, 100);
            mpmc::<Crossbeam>(cap, 100);
            for sel in [Sel::Rx, Sel::Both] {
                select_gosync(sel, cap, 100);
                select_crossbeam(sel, cap, 100);
            }
            assert_eq!(pingpong::<Gosync>(cap, 50).len(), 50);
            assert_eq!(pingpong::<Crossbeam>(cap, 50).len(), 50);
        }
        // flume's Selector is left out: it can hang (the harness reports that as a hang).
    }

    #[test]
    fn task_workloads_finish() {
        let rt = rt();
        for cap in [0, 1, 16] {
            let mut sets = vec![
                spsc_async::<Gosync>(cap, 100),
                spsc_async::<Tokio>(cap, 100),
                mpsc_async::<Gosync>(cap, 100),
                mpmc_async::<Gosync>(cap, 100),
                mpmc_async::<AsyncChannel>(cap, 100),
                mpmc_async::<Kanal>(cap, 100),
                spsc_async::<Flume>(cap, 100),
                select_rx_tokio(cap, 100),
            ];
            for sel in [Sel::Rx, Sel::Both] {
                sets.push(select_gosync_async(sel, cap, 100));
                sets.push(select_async_channel(sel, cap, 100));
            }
            if cap > 0 {
                sets.push(seq_async::<Gosync>(cap, 100));
            }
            for tasks in sets {
                assert!(on_tasks(&rt, LIMIT, tasks).is_ok());
            }
            let (tx, rx) = std::sync::mpsc::channel();
            assert!(on_tasks(&rt, LIMIT, pingpong_async::<Gosync>(cap, 50, tx)).is_ok());
            assert_eq!(rx.recv().unwrap().len(), 50);
        }
    }

    #[test]
    fn guards_report_a_hang() {
        let stuck: (Chan<usize>, Chan<usize>) = (Chan::new(0), Chan::new(0));
        let c = stuck.0.clone();
        assert_eq!(
            on_thread(Duration::from_millis(50), move || c.recv()),
            Err(Hung)
        );
        let rt = rt();
        let c = stuck.1.clone();
        let task: Task = Box::pin(async move {
            c.recv_async().await;
        });
        assert_eq!(
            on_tasks(&rt, Duration::from_millis(50), vec![task]),
            Err(Hung)
        );
        assert_eq!(on_thread(LIMIT, || 7), Ok(7));
    }

    #[test]
    fn percentiles_of_latencies() {
        let lat: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentiles(lat), Some((51.0, 100.0)));
        assert_eq!(percentiles(Vec::new()), None);
    }
}
