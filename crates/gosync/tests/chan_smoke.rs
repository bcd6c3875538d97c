//! Smoke tests of the channel core: rendezvous, mpmc, select, cancel.
#![cfg(not(loom))]
use gosync::chan::{Chan, Select, Selected};
use gosync::{select, select_async};
use std::thread;

#[test]
fn rendezvous_many() {
    let ch = Chan::new(0);
    let tx = ch.sender();
    let n = 100_000u64;
    let t = thread::spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
        tx.close();
    });
    let mut expect = 0;
    for v in &ch {
        assert_eq!(v, expect);
        expect += 1;
    }
    assert_eq!(expect, n);
    t.join().unwrap();
}

#[test]
fn mpmc_buffered_sum() {
    for cap in [0usize, 1, 1000] {
        let ch = Chan::new(cap);
        let done: Chan<()> = Chan::new(0);
        let mut hs = vec![];
        for p in 0..4u64 {
            let ch = ch.clone();
            hs.push(thread::spawn(move || {
                for i in 0..20_000u64 {
                    ch.send(p * 1_000_000 + i).unwrap();
                }
            }));
        }
        let mut rs = vec![];
        for _ in 0..4 {
            let ch = ch.clone();
            let done = done.clone();
            rs.push(thread::spawn(move || {
                let mut s = 0u64;
                let mut c = 0;
                loop {
                    select! {
                        recv(ch) -> v => match v { Some(v) => { s += v; c += 1; } None => break },
                        recv(done) -> _ => break,
                    }
                }
                (s, c)
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
        ch.close();
        let (mut s, mut c) = (0, 0);
        for r in rs {
            let (a, b) = r.join().unwrap();
            s += a;
            c += b;
        }
        assert_eq!(c, 80_000, "cap {cap}");
        let want: u64 = (0..4u64)
            .map(|p| (0..20_000u64).map(|i| p * 1_000_000 + i).sum::<u64>())
            .sum();
        assert_eq!(s, want);
    }
}

#[test]
fn select_send_and_recv_async_mixed() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let a = Chan::new(0);
    let b = Chan::new(0);
    let (a2, b2) = (a.clone(), b.clone());
    let h = rt.spawn(async move {
        let mut got = 0u64;
        let mut sent = 0u64;
        while got < 10_000 || sent < 10_000 {
            select_async! {
                recv(a2) -> v => { got += v.unwrap(); }
                send(b2, sent) -> r => { r.unwrap(); sent += 1; }
            }
        }
        got
    });
    let t = thread::spawn(move || {
        for _ in 0..10_000 {
            a.send(1u64).unwrap();
        }
    });
    let mut s = 0;
    for _ in 0..10_000 {
        s += b.recv().unwrap();
    }
    t.join().unwrap();
    assert_eq!(rt.block_on(h).unwrap(), 10_000);
    assert_eq!(s, (0..10_000).sum::<u64>());
}

#[test]
fn dynamic_select_uniform() {
    let chans: Vec<Chan<u8>> = (0..4).map(|_| Chan::new(1)).collect();
    let mut counts = [0u32; 4];
    for _ in 0..4000 {
        for c in &chans {
            let _ = c.try_send(1);
        }
        let mut sel = Select::new();
        for c in &chans {
            sel.recv(c);
        }
        if let Selected::Recv { index, .. } = sel.select() {
            counts[index] += 1;
        }
    }
    for c in counts {
        assert!(c > 800 && c < 1200, "{counts:?}");
    }
}

#[test]
fn cancel_recv_puts_back() {
    use std::future::Future;
    let ch = Chan::new(0);
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = Box::pin(ch.recv_async());
    assert!(f.as_mut().poll(&mut cx).is_pending());
    ch.try_send(5).unwrap(); // handed to the pending future
    drop(f);
    assert_eq!(ch.try_recv(), Ok(5));
}
