//! The channels under test, behind two small traits so that one generic workload measures
//! them all: [`SyncChan`] for threads, [`AsyncChan`] for async tasks.
//!
//! Every channel carries `usize` messages (Go's side sends `uintptr`). Channels without a
//! rendezvous mode (async-channel, tokio) are created with capacity 1 when asked for 0, and
//! the tables mark their rows.

use std::future::Future;

/// A bounded channel used from threads.
pub trait SyncChan: 'static {
    /// The sending half.
    type Tx: Clone + Send + Sync + 'static;
    /// The receiving half.
    type Rx: Send + 'static;
    /// A channel with room for `cap` messages (0: rendezvous).
    fn new(cap: usize) -> (Self::Tx, Self::Rx);
    /// Sends `v`, blocking while the channel is full.
    fn send(tx: &Self::Tx, v: usize);
    /// Receives a message, blocking while the channel is empty.
    fn recv(rx: &Self::Rx) -> usize;
}

/// `gosync::chan::Chan` through its send and receive views.
pub struct Gosync;
/// `crossbeam_channel::bounded`.
pub struct Crossbeam;
/// `flume::bounded`.
pub struct Flume;
/// `kanal::bounded`.
pub struct Kanal;
/// `std::sync::mpsc::sync_channel` (single consumer: no mpmc, no select).
pub struct Std;

impl SyncChan for Gosync {
    type Tx = gosync::chan::Sender<usize>;
    type Rx = gosync::chan::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        let ch = gosync::chan::Chan::new(cap);
        (ch.sender(), ch.receiver())
    }
    #[inline]
    fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).expect("channel closed");
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> usize {
        rx.recv().expect("channel closed")
    }
}

impl SyncChan for Crossbeam {
    type Tx = crossbeam_channel::Sender<usize>;
    type Rx = crossbeam_channel::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(cap)
    }
    #[inline]
    fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).expect("channel closed");
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> usize {
        rx.recv().expect("channel closed")
    }
}

impl SyncChan for Flume {
    type Tx = flume::Sender<usize>;
    type Rx = flume::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(cap)
    }
    #[inline]
    fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).expect("channel closed");
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> usize {
        rx.recv().expect("channel closed")
    }
}

impl SyncChan for Kanal {
    type Tx = kanal::Sender<usize>;
    type Rx = kanal::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        kanal::bounded(cap)
    }
    #[inline]
    fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).expect("channel closed");
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> usize {
        rx.recv().expect("channel closed")
    }
}

impl SyncChan for Std {
    type Tx = std::sync::mpsc::SyncSender<usize>;
    type Rx = std::sync::mpsc::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        std::sync::mpsc::sync_channel(cap)
    }
    #[inline]
    fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).expect("channel closed");
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> usize {
        rx.recv().expect("channel closed")
    }
}

/// A bounded channel used from async tasks.
pub trait AsyncChan: 'static {
    /// The sending half.
    type Tx: Clone + Send + Sync + 'static;
    /// The receiving half.
    type Rx: Send + 'static;
    /// A channel with room for `cap` messages (0: rendezvous, where the crate has one; else 1).
    fn new(cap: usize) -> (Self::Tx, Self::Rx);
    /// Sends `v`, waiting while the channel is full.
    fn send(tx: &Self::Tx, v: usize) -> impl Future<Output = ()> + Send + '_;
    /// Receives a message, waiting while the channel is empty.
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = usize> + Send + '_;
}

/// `async_channel::bounded` (no capacity 0).
pub struct AsyncChannel;
/// `tokio::sync::mpsc::channel` (single consumer, no capacity 0).
pub struct Tokio;

impl AsyncChan for Gosync {
    type Tx = gosync::chan::Sender<usize>;
    type Rx = gosync::chan::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        <Gosync as SyncChan>::new(cap)
    }
    async fn send(tx: &Self::Tx, v: usize) {
        tx.send_async(v).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv_async().await.expect("channel closed")
    }
}

impl AsyncChan for AsyncChannel {
    type Tx = async_channel::Sender<usize>;
    type Rx = async_channel::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(cap.max(1))
    }
    async fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv().await.expect("channel closed")
    }
}

impl AsyncChan for Tokio {
    type Tx = tokio::sync::mpsc::Sender<usize>;
    type Rx = tokio::sync::mpsc::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::mpsc::channel(cap.max(1))
    }
    async fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv().await.expect("channel closed")
    }
}

impl AsyncChan for Kanal {
    type Tx = kanal::AsyncSender<usize>;
    type Rx = kanal::AsyncReceiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        kanal::bounded_async(cap)
    }
    async fn send(tx: &Self::Tx, v: usize) {
        tx.send(v).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv().await.expect("channel closed")
    }
}

impl AsyncChan for Flume {
    type Tx = flume::Sender<usize>;
    type Rx = flume::Receiver<usize>;
    fn new(cap: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(cap)
    }
    async fn send(tx: &Self::Tx, v: usize) {
        tx.send_async(v).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv_async().await.expect("channel closed")
    }
}
