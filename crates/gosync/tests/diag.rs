//! `diag::blocked()`: a thread blocked in each kind of primitive shows up with the operation,
//! the call site, the primitive (and where it was created), and disappears once it returns.
//! Tasks show up too.
#![cfg(not(loom))]

mod support;

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::chan::Chan;
use gosync::context;
use gosync::diag::{self, Blocked, PrimitiveKind, Waiter};
use gosync::sync::{Cond, Mutex, Once, RawMutex, RwMutex, WaitGroup};
use gosync::WaitKind;
use support::{eventually, LIVENESS};

/// The waits of the thread named `name`.
fn waits_of(name: &str) -> Vec<Blocked> {
    diag::blocked()
        .into_iter()
        .filter(|b| matches!(&b.waiter, Waiter::Thread { name: Some(n), .. } if n == name))
        .collect()
}

/// Runs `block` on a thread named `name` (it sends the line of its blocking call first),
/// checks what `blocked()` says about it, then runs `release` and checks that it is gone.
fn check(
    name: &str,
    op: WaitKind,
    kind: PrimitiveKind,
    created: Option<u32>,
    block: impl FnOnce(mpsc::Sender<u32>) + Send + 'static,
    release: impl FnOnce(),
) {
    let (tx, rx) = mpsc::channel();
    let t = thread::Builder::new()
        .name(name.into())
        .spawn(move || block(tx))
        .unwrap();
    let line = rx.recv().unwrap();
    eventually(LIVENESS, name, || !waits_of(name).is_empty());
    let w = waits_of(name);
    assert_eq!(w.len(), 1, "{name}: {w:?}");
    let b = &w[0];
    assert_eq!(b.op, op, "{name}: {b}");
    assert_eq!(b.primitive.kind, kind, "{name}: {b}");
    assert!(b.site.file().ends_with("diag.rs"), "{name}: {b}");
    assert_eq!(b.site.line(), line, "{name}: {b}");
    match created {
        Some(l) => {
            let c = b.primitive.created.expect("creation site");
            assert!(
                c.file().ends_with("diag.rs") && c.line() == l,
                "{name}: {b}"
            );
            assert_ne!(b.primitive.id, 0, "{name}: {b}");
        }
        None => assert!(b.primitive.created.is_none(), "{name}: {b}"),
    }
    assert!(b.to_string().contains(name), "{b}");
    release();
    t.join().unwrap();
    assert!(
        waits_of(name).is_empty(),
        "{name} still listed after it returned"
    );
}

#[test]
fn a_blocked_mutex_lock() {
    let created = line!() + 1;
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let m2 = m.clone();
    let check_id = {
        let m = m.clone();
        move || m.waiters()
    };
    check(
        "diag-mutex",
        WaitKind::Mutex,
        PrimitiveKind::Mutex,
        Some(created),
        move |tx| {
            tx.send(line!() + 1).unwrap();
            *m2.lock() += 1;
        },
        || drop(g),
    );
    assert_eq!(check_id(), 0);
}

#[test]
fn blocked_rwmutex_reader_and_writer() {
    let created = line!() + 1;
    let rw = Arc::new(RwMutex::new(0));
    let g = rw.write();
    let r = rw.clone();
    check(
        "diag-rw-read",
        WaitKind::RwMutexRead,
        PrimitiveKind::RwMutex,
        Some(created),
        move |tx| {
            tx.send(line!() + 1).unwrap();
            let _ = *r.read();
        },
        || drop(g),
    );
    let g = rw.read();
    let w = rw.clone();
    check(
        "diag-rw-write",
        WaitKind::RwMutexWrite,
        PrimitiveKind::RwMutex,
        Some(created),
        move |tx| {
            tx.send(line!() + 1).unwrap();
            *w.write() += 1;
        },
        || drop(g),
    );
}

#[test]
fn a_blocked_cond_wait() {
    let created = line!() + 1;
    let c = Arc::new(Cond::new(RawMutex::new()));
    let c2 = c.clone();
    check(
        "diag-cond",
        WaitKind::Cond,
        PrimitiveKind::Cond,
        Some(created),
        move |tx| {
            c2.locker().lock();
            tx.send(line!() + 1).unwrap();
            c2.wait();
            c2.locker().unlock();
        },
        || {
            c.locker().lock();
            c.signal();
            c.locker().unlock();
        },
    );
}

#[test]
fn a_blocked_waitgroup_wait() {
    let created = line!() + 1;
    let wg = WaitGroup::new();
    wg.add(1);
    let w = wg.clone();
    check(
        "diag-wg",
        WaitKind::WaitGroup,
        PrimitiveKind::WaitGroup,
        Some(created),
        move |tx| {
            tx.send(line!() + 1).unwrap();
            w.wait();
        },
        || wg.done(),
    );
}

#[test]
fn a_caller_held_by_once() {
    let created = line!() + 1;
    let once = Arc::new(Once::new());
    let (go_tx, go) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let runner = {
        let once = once.clone();
        thread::spawn(move || {
            once.call_once(|| {
                started_tx.send(()).unwrap();
                go.recv().unwrap();
            })
        })
    };
    started.recv().unwrap();
    let o = once.clone();
    check(
        "diag-once",
        WaitKind::Once,
        PrimitiveKind::Once,
        Some(created),
        move |tx| {
            tx.send(line!() + 1).unwrap();
            o.call_once(|| unreachable!());
        },
        || go_tx.send(()).unwrap(),
    );
    runner.join().unwrap();
}

#[test]
fn a_context_wait() {
    let created = line!() + 1;
    let (ctx, cancel) = context::with_cancel(&context::background());
    check(
        "diag-ctx",
        WaitKind::Context,
        PrimitiveKind::Context,
        Some(created),
        move |tx| {
            tx.send(line!() + 1).unwrap();
            ctx.wait();
        },
        || cancel.cancel(),
    );
}

#[test]
fn blocked_channel_send_recv_select_and_nil() {
    let ch: Chan<u32> = Chan::new(0);
    let c = ch.clone();
    check(
        "diag-send",
        WaitKind::ChanSend,
        PrimitiveKind::Chan,
        None,
        move |tx| {
            tx.send(line!() + 1).unwrap();
            c.send(1).unwrap();
        },
        || assert_eq!(ch.recv(), Some(1)),
    );
    let c = ch.clone();
    check(
        "diag-recv",
        WaitKind::ChanRecv,
        PrimitiveKind::Chan,
        None,
        move |tx| {
            tx.send(line!() + 1).unwrap();
            assert_eq!(c.recv(), Some(2));
        },
        || ch.send(2).unwrap(),
    );
    let (a, b) = (ch.clone(), Chan::<u32>::new(0));
    let b2 = b.clone();
    check(
        "diag-select",
        WaitKind::Select,
        PrimitiveKind::Select,
        None,
        move |tx| {
            tx.send(line!() + 1).unwrap();
            gosync::select! {
                recv(a) -> v => assert_eq!(v, Some(3)),
                recv(b2) -> _ => unreachable!(),
            }
        },
        || ch.send(3).unwrap(),
    );
    drop(b);
    let (ctx, cancel) = context::with_cancel(&context::background());
    check(
        "diag-nil",
        WaitKind::NilChan,
        PrimitiveKind::NilChan,
        None,
        move |tx| {
            let nil: Chan<u32> = Chan::nil();
            tx.send(line!() + 1).unwrap();
            assert!(nil.recv_ctx(&ctx).is_err());
        },
        || cancel.cancel(),
    );
}

#[test]
fn a_sleeping_thread() {
    check(
        "diag-sleep",
        WaitKind::Sleep,
        PrimitiveKind::Timer,
        None,
        move |tx| {
            tx.send(line!() + 1).unwrap();
            gosync::time::sleep(Duration::from_millis(300));
        },
        || {},
    );
}

#[test]
fn a_thread_blocked_on_a_file_lock() {
    let path = std::env::temp_dir().join(format!("gosync-diag-{}.lock", std::process::id()));
    let created = line!() + 1;
    let mut waiting = gosync::filelock::FileLock::new(&path).unwrap();
    let mut holder = gosync::filelock::FileLock::new(&path).unwrap();
    holder.lock().unwrap();
    check(
        "diag-filelock",
        WaitKind::FileLock,
        PrimitiveKind::FileLock,
        Some(created),
        move |tx| {
            tx.send(line!() + 1).unwrap();
            waiting.lock().unwrap();
            waiting.unlock().unwrap();
        },
        || holder.unlock().unwrap(),
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_file_lock_polling_with_a_timeout() {
    let path = std::env::temp_dir().join(format!("gosync-diag-t-{}.lock", std::process::id()));
    let created = line!() + 1;
    let mut waiting = gosync::filelock::FileLock::new(&path).unwrap();
    let mut holder = gosync::filelock::FileLock::new(&path).unwrap();
    holder.lock().unwrap();
    check(
        "diag-filelock-timeout",
        WaitKind::FileLock,
        PrimitiveKind::FileLock,
        Some(created),
        move |tx| {
            tx.send(line!() + 1).unwrap();
            waiting.lock_timeout(Duration::from_secs(60)).unwrap();
            waiting.unlock().unwrap();
        },
        || holder.unlock().unwrap(),
    );
    std::fs::remove_file(&path).ok();
}

/// A task waiting on a mutex is listed as a task, and leaves the list with its future.
#[test]
fn a_waiting_task() {
    let m = Arc::new(RawMutex::new());
    m.lock();
    let line = line!() + 1;
    let mut f = Box::pin(m.lock_async());
    assert!(support::poll_noop(f.as_mut()).is_pending());
    let mine = |b: &Blocked| {
        matches!(b.waiter, Waiter::Task { .. })
            && b.site.file().ends_with("diag.rs")
            && b.site.line() == line
    };
    let seen: Vec<_> = diag::blocked().into_iter().filter(mine).collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].op, WaitKind::Mutex);
    drop(f);
    assert!(
        !diag::blocked().iter().any(mine),
        "a dropped future is still listed"
    );
    m.unlock();
}
