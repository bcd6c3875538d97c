//! FileLock tests: exclusion across real child processes (the test binary re-run in a child
//! mode), release when a holder is killed, shared locks, the polling forms (timeout, context,
//! async on two executors), cancel safety of `lock_async`, misuse and error messages.
//!
//! A child is this test binary started with `--exact std_tests::child_process` and the
//! environment variable `GOSYNC_FILELOCK_CHILD` naming what to do; in a normal run that test
//! finds no such variable and returns at once.

#[cfg(not(loom))]
mod support;

#[cfg(not(loom))]
mod std_tests {
    use std::io::{self, BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
    use std::path::{Path, PathBuf};
    use std::pin::pin;
    use std::process::{Child, ChildStdout, Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use gosync::context::{self, ContextError};
    use gosync::filelock::{FileLock, FileLockGuard, LockCtxError, LockMode};

    use super::support::{poll_noop, within, LIVENESS};

    const CHILD_MODE: &str = "GOSYNC_FILELOCK_CHILD";
    const CHILD_PATH: &str = "GOSYNC_FILELOCK_PATH";
    const CHILD_COUNT: &str = "GOSYNC_FILELOCK_COUNT";
    /// What a holding child prints once it holds the lock.
    const LOCKED: &str = "filelock-child: locked";

    /// A lock file path unique to this test process and test, removed at the end.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> TempPath {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            TempPath(std::env::temp_dir().join(format!(
                "gosync-filelock-test-{}-{n}-{name}.lock",
                std::process::id()
            )))
        }
    }

    impl std::ops::Deref for TempPath {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for TempPath {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<std::ffi::OsStr> for TempPath {
        fn as_ref(&self) -> &std::ffi::OsStr {
            self.0.as_os_str()
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    // ---- child processes ----

    /// The child side: does what `GOSYNC_FILELOCK_CHILD` says, on `GOSYNC_FILELOCK_PATH`.
    /// Without the variable (a normal test run) it does nothing.
    #[test]
    fn child_process() {
        let Ok(mode) = std::env::var(CHILD_MODE) else {
            return;
        };
        let path = PathBuf::from(std::env::var(CHILD_PATH).expect("child needs a path"));
        let mut lock = FileLock::new(&path).expect("child opens the lock");
        match mode.as_str() {
            // Take the lock, say so, and hold it until stdin closes (or a kill).
            "hold" | "hold-shared" => {
                if mode == "hold" {
                    lock.lock().unwrap();
                } else {
                    lock.lock_shared().unwrap();
                }
                announce_and_wait();
                lock.unlock().unwrap();
            }
            // Hold nothing: just live until stdin closes.
            "idle" => announce_and_wait(),
            // Try for a short while; report how it ended on stdout and in the exit code.
            "timeout" => match lock.lock_timeout(Duration::from_millis(50)) {
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    println!("filelock-child: timed out: {e}");
                    std::process::exit(0);
                }
                Ok(()) => {
                    println!("filelock-child: locked, should have timed out");
                    std::process::exit(3);
                }
                Err(e) => {
                    println!("filelock-child: error: {e}");
                    std::process::exit(4);
                }
            },
            // Increment the counter stored in the lock file, under the lock, n times.
            "count" => {
                let n: usize = std::env::var(CHILD_COUNT).unwrap().parse().unwrap();
                for _ in 0..n {
                    increment(&mut lock);
                }
            }
            other => panic!("unknown child mode {other}"),
        }
    }

    fn announce_and_wait() {
        println!("{LOCKED}");
        io::stdout().flush().unwrap();
        let mut rest = Vec::new();
        let _ = io::stdin().read_to_end(&mut rest);
    }

    fn child(mode: &str, path: &Path) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "std_tests::child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env(CHILD_PATH, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        cmd
    }

    /// Starts a child in `mode` and waits (within the liveness bound) until it says it holds
    /// the lock (or, for "idle", that it is running).
    fn spawn_holder(mode: &str, path: &Path) -> Child {
        let mut c = child(mode, path).spawn().expect("spawn child");
        let out = c.stdout.take().unwrap();
        let out = within(LIVENESS, "child taking the lock", move || {
            read_until_locked(out)
        });
        c.stdout = Some(out);
        c
    }

    fn read_until_locked(out: ChildStdout) -> ChildStdout {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            let n = r.read_line(&mut line).unwrap();
            assert!(n > 0, "child exited before taking the lock");
            // libtest prints "test <name> ... " before the child's own output, on one line.
            if line.trim_end().ends_with(LOCKED) {
                // Nothing else is buffered: the child printed this last and now waits.
                return r.into_inner();
            }
        }
    }

    /// Ends a holding child by closing its stdin, and waits for it.
    fn release(mut c: Child) {
        drop(c.stdin.take());
        let status = within(LIVENESS, "child exiting", move || c.wait().unwrap());
        assert!(status.success(), "child failed: {status}");
    }

    /// One increment of the counter kept in the lock file, under the lock: read, then write
    /// back one more. Lost updates show unless the lock excludes.
    fn increment(lock: &mut FileLock) {
        let held = lock.guard().unwrap();
        let mut f = held.file();
        let mut s = String::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut s).unwrap();
        let n: u64 = if s.is_empty() {
            0
        } else {
            s.trim().parse().unwrap()
        };
        f.seek(SeekFrom::Start(0)).unwrap();
        // Fixed width, so the file never needs truncating.
        write!(f, "{:020}", n + 1).unwrap();
    }

    fn read_counter(path: &Path) -> u64 {
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn child_holds_parent_times_out_then_gets_it() {
        let path = TempPath::new("child-holds");
        let holder = spawn_holder("hold", &path);
        let mut me = FileLock::new(&path).unwrap();
        assert!(!me.try_lock().unwrap());
        let err = me.lock_timeout(Duration::from_millis(30)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert_eq!(me.held(), None);
        assert!(
            !me.try_lock_shared().unwrap(),
            "exclusive holder admits no reader"
        );
        release(holder);
        me.lock_timeout(LIVENESS).unwrap();
        assert_eq!(me.held(), Some(LockMode::Exclusive));
        me.unlock().unwrap();
    }

    #[test]
    fn parent_holds_child_times_out() {
        let path = TempPath::new("parent-holds");
        let mut me = FileLock::new(&path).unwrap();
        me.lock().unwrap();
        let mut c = child("timeout", &path).spawn().unwrap();
        drop(c.stdin.take());
        let out = within(LIVENESS, "timing-out child", move || {
            c.wait_with_output().unwrap()
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "child: {stdout}");
        assert!(stdout.contains("timed out"), "{stdout}");
        assert!(stdout.contains(&*path.to_string_lossy()), "{stdout}");
        me.unlock().unwrap();
    }

    #[test]
    fn killed_holder_releases_the_lock() {
        let path = TempPath::new("killed");
        let mut holder = spawn_holder("hold", &path);
        let mut me = FileLock::new(&path).unwrap();
        assert!(!me.try_lock().unwrap());
        holder.kill().unwrap(); // SIGKILL on Unix: no destructor runs
        let status = holder.wait().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "{status}");
        }
        #[cfg(not(unix))]
        assert!(!status.success());
        // The kernel dropped the lock with the dead process's descriptors; a liveness bound
        // only: the lock is either released or never will be.
        me.lock_timeout(LIVENESS).unwrap();
        me.unlock().unwrap();
    }

    #[test]
    fn children_do_not_inherit_the_lock() {
        let path = TempPath::new("inherit");
        let mut me = FileLock::new(&path).unwrap();
        me.lock().unwrap();
        // A child started while the lock is held, living on after we drop it.
        let idle = spawn_holder("idle", &path);
        drop(me); // closes our descriptor; an inherited copy would keep the lock alive
        let mut other = FileLock::new(&path).unwrap();
        assert!(
            other.try_lock().unwrap(),
            "the lock outlived its FileLock in a child"
        );
        other.unlock().unwrap();
        release(idle);
    }

    #[test]
    fn shared_lock_across_processes() {
        let path = TempPath::new("shared-procs");
        let reader = spawn_holder("hold-shared", &path);
        let mut r = FileLock::new(&path).unwrap();
        let mut w = FileLock::new(&path).unwrap();
        assert!(
            r.try_lock_shared().unwrap(),
            "readers coexist across processes"
        );
        r.unlock().unwrap();
        assert!(
            !w.try_lock().unwrap(),
            "a reader in another process excludes us"
        );
        let err = w.lock_timeout(Duration::from_millis(20)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        release(reader);
        assert!(w.try_lock().unwrap());
        w.unlock().unwrap();
    }

    /// Two child processes and two threads of this one, each with its own FileLock, increment
    /// the counter in the lock file; every update survives only if the lock excludes all of
    /// them from each other, and if each holder's writes are visible to the next.
    #[test]
    fn processes_and_threads_exclude_each_other() {
        const EACH: usize = 150;
        let path = TempPath::new("counter");
        drop(FileLock::new(&path).unwrap()); // create it before anyone reads it
        let children: Vec<Child> = (0..2)
            .map(|_| {
                let mut c = child("count", &path)
                    .env(CHILD_COUNT, EACH.to_string())
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap();
                drop(c.stdin.take());
                c
            })
            .collect();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let p = path.to_path_buf();
                thread::spawn(move || {
                    let mut lock = FileLock::new(&p).unwrap();
                    for _ in 0..EACH {
                        increment(&mut lock);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for mut c in children {
            let status = within(LIVENESS, "counting child", move || c.wait().unwrap());
            assert!(status.success(), "{status}");
        }
        assert_eq!(read_counter(&path), 4 * EACH as u64);
    }

    // ---- in one process ----

    #[test]
    fn two_file_locks_in_one_process_exclude_each_other() {
        let path = TempPath::new("in-process");
        let mut a = FileLock::new(&path).unwrap();
        let mut b = FileLock::new(&path).unwrap();
        a.lock().unwrap();
        assert!(!b.try_lock().unwrap());
        assert!(!b.try_lock_shared().unwrap());
        assert_eq!(
            b.lock_timeout(Duration::from_millis(10))
                .unwrap_err()
                .kind(),
            ErrorKind::TimedOut
        );
        // A blocked lock() in another thread returns only after a's unlock.
        let unlocked = Arc::new(AtomicBool::new(false));
        let t = {
            let unlocked = unlocked.clone();
            thread::spawn(move || {
                b.lock().unwrap();
                assert!(
                    unlocked.load(Ordering::SeqCst),
                    "lock returned while another FileLock held the file"
                );
                b.unlock().unwrap();
            })
        };
        thread::sleep(Duration::from_millis(20));
        unlocked.store(true, Ordering::SeqCst);
        a.unlock().unwrap();
        within(LIVENESS, "blocked lock after unlock", move || {
            t.join().unwrap()
        });
    }

    #[test]
    fn threads_with_own_locks_never_overlap() {
        let path = TempPath::new("overlap");
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (p, inside) = (path.to_path_buf(), inside.clone());
                thread::spawn(move || {
                    let mut lock = FileLock::new(&p).unwrap();
                    for k in 0..200 {
                        // Every way in: blocking, try, timeout.
                        match (i + k) % 3 {
                            0 => lock.lock().unwrap(),
                            1 => {
                                while !lock.try_lock().unwrap() {
                                    thread::yield_now();
                                }
                            }
                            _ => lock.lock_timeout(LIVENESS).unwrap(),
                        }
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        lock.unlock().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let path = TempPath::new("shared");
        let mut r1 = FileLock::new(&path).unwrap();
        let mut r2 = FileLock::new(&path).unwrap();
        let mut w = FileLock::new(&path).unwrap();
        r1.lock_shared().unwrap();
        assert!(r2.try_lock_shared().unwrap());
        assert_eq!(r2.held(), Some(LockMode::Shared));
        assert!(!w.try_lock().unwrap());
        let err = w.lock_timeout(Duration::from_millis(10)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        r1.unlock().unwrap();
        assert!(
            !w.try_lock().unwrap(),
            "one reader left is enough to exclude"
        );
        r2.unlock().unwrap();
        assert!(w.try_lock().unwrap());
        // And the exclusive holder keeps readers out, in every form.
        assert!(!r1.try_lock_shared().unwrap());
        assert_eq!(
            r1.lock_shared_timeout(Duration::from_millis(10))
                .unwrap_err()
                .kind(),
            ErrorKind::TimedOut
        );
        let (ctx, _cancel) =
            context::with_timeout(&context::background(), Duration::from_millis(10));
        assert_eq!(
            r1.lock_shared_ctx(&ctx).unwrap_err().context(),
            Some(ContextError::DeadlineExceeded)
        );
        w.unlock().unwrap();
        r1.lock_shared_timeout(LIVENESS).unwrap();
        r1.unlock().unwrap();
    }

    #[test]
    fn drop_releases() {
        let path = TempPath::new("drop");
        let mut other = FileLock::new(&path).unwrap();
        for shared in [false, true] {
            let mut a = FileLock::new(&path).unwrap();
            if shared {
                a.lock_shared().unwrap();
            } else {
                a.lock().unwrap();
            }
            assert!(!other.try_lock().unwrap());
            drop(a);
            assert!(other.try_lock().unwrap());
            other.unlock().unwrap();
        }
        // Even when a clone of the file outlives the FileLock.
        let mut a = FileLock::new(&path).unwrap();
        a.lock().unwrap();
        let clone = a.file().try_clone().unwrap();
        drop(a);
        assert!(
            other.try_lock().unwrap(),
            "a clone of the file kept the lock"
        );
        other.unlock().unwrap();
        drop(clone);
    }

    #[test]
    fn unlock_and_drop_keep_the_file() {
        let path = TempPath::new("keep");
        std::fs::write(&path, "contents").unwrap();
        let mut a = FileLock::new(&path).unwrap(); // no truncation
        a.lock().unwrap();
        a.unlock().unwrap();
        drop(a);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "contents");
    }

    #[test]
    fn guards() {
        let path = TempPath::new("guards");
        let mut a = FileLock::new(&path).unwrap();
        let mut b = FileLock::new(&path).unwrap();
        {
            let g = a.guard().unwrap();
            assert_eq!(g.mode(), LockMode::Exclusive);
            assert_eq!(g.path(), &*path);
            assert!(!b.try_lock().unwrap());
        }
        assert_eq!(a.held(), None);
        assert!(b.try_lock().unwrap());
        b.unlock().unwrap();

        let g = a.guard_shared().unwrap();
        assert_eq!(g.mode(), LockMode::Shared);
        assert!(b.try_lock_shared().unwrap());
        b.unlock().unwrap();
        g.unlock().unwrap();
        assert_eq!(a.held(), None);

        assert!(FileLockGuard::adopt(&mut a).is_none());
        assert!(a.try_lock().unwrap());
        drop(FileLockGuard::adopt(&mut a).unwrap());
        assert_eq!(a.held(), None);
        assert!(b.try_lock().unwrap());
        b.unlock().unwrap();
    }

    // ---- misuse and errors ----

    #[test]
    fn unlock_of_unlocked_is_an_error_naming_the_path() {
        let path = TempPath::new("unlock-unlocked");
        let mut a = FileLock::new(&path).unwrap();
        let err = a.unlock().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            format!("filelock: unlock of unlocked file lock {}", path.display())
        );
        a.lock().unwrap();
        a.unlock().unwrap();
        assert_eq!(a.unlock().unwrap_err().kind(), ErrorKind::InvalidInput);
        // Nothing changed: the lock still works, and no one else was unlocked by it.
        let mut b = FileLock::new(&path).unwrap();
        b.lock().unwrap();
        assert_eq!(a.unlock().unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(!a.try_lock().unwrap(), "a's bad unlock released b's lock");
        b.unlock().unwrap();
        assert!(a.try_lock().unwrap());
        a.unlock().unwrap();
    }

    #[test]
    fn locking_a_held_file_lock_is_a_deadlock_error() {
        let path = TempPath::new("relock");
        let mut a = FileLock::new(&path).unwrap();
        a.lock().unwrap();
        assert_eq!(a.lock().unwrap_err().kind(), ErrorKind::Deadlock);
        assert_eq!(a.try_lock().unwrap_err().kind(), ErrorKind::Deadlock);
        let err = a.lock_shared().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Deadlock);
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert_eq!(
            a.lock_timeout(Duration::from_secs(1)).unwrap_err().kind(),
            ErrorKind::Deadlock
        );
        match a.lock_ctx(&context::background()) {
            Err(LockCtxError::Io(e)) => assert_eq!(e.kind(), ErrorKind::Deadlock),
            other => panic!("expected a Deadlock error, got {other:?}"),
        }
        let r = futures::executor::block_on(a.lock_async());
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Deadlock);
        // Still held exclusively: the misuse changed nothing.
        assert_eq!(a.held(), Some(LockMode::Exclusive));
        let mut b = FileLock::new(&path).unwrap();
        assert!(!b.try_lock_shared().unwrap());
        a.unlock().unwrap();
    }

    #[test]
    fn open_errors_name_the_path() {
        let dir =
            std::env::temp_dir().join(format!("gosync-filelock-nodir-{}", std::process::id()));
        let missing = dir.join("app.lock");
        let err = FileLock::new(&missing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let msg = err.to_string();
        assert!(msg.starts_with("filelock: open "), "{msg}");
        assert!(msg.contains(&*missing.to_string_lossy()), "{msg}");
        // The system's error stays reachable.
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.downcast_ref::<io::Error>().is_some(), "{source:?}");

        // A directory is not a lock file.
        let dir = std::env::temp_dir();
        let err = FileLock::new(&dir).unwrap_err();
        assert!(err.to_string().contains(&*dir.to_string_lossy()), "{err}");
        #[cfg(target_os = "linux")]
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
    }

    #[test]
    fn timeout_zero_tries_once() {
        let path = TempPath::new("zero");
        let mut a = FileLock::new(&path).unwrap();
        a.lock_timeout(Duration::ZERO).unwrap();
        let mut b = FileLock::new(&path).unwrap();
        let err = b.lock_timeout(Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(err.to_string().contains("timed out"), "{err}");
        a.unlock().unwrap();
        // A timeout past the end of time is a plain wait.
        b.lock_timeout(Duration::MAX).unwrap();
        b.unlock().unwrap();
    }

    // ---- context ----

    #[test]
    fn lock_ctx_ends_with_the_context() {
        let path = TempPath::new("ctx");
        let mut holder = FileLock::new(&path).unwrap();
        let mut me = FileLock::new(&path).unwrap();
        holder.lock().unwrap();

        let (ctx, _c) = context::with_timeout(&context::background(), Duration::from_millis(20));
        let err = me.lock_ctx(&ctx).unwrap_err();
        assert_eq!(err.context(), Some(ContextError::DeadlineExceeded));
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        let io_err: io::Error = err.into();
        assert_eq!(io_err.kind(), ErrorKind::TimedOut);
        assert_eq!(me.held(), None);

        // A cancel from another thread ends the wait.
        let (ctx, cancel) = context::with_cancel(&context::background());
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            cancel.cancel();
        });
        let (me2, err) = within(LIVENESS, "lock_ctx after cancel", move || {
            let err = me.lock_ctx(&ctx).unwrap_err();
            (me, err)
        });
        me = me2;
        t.join().unwrap();
        assert!(matches!(
            err,
            LockCtxError::Context {
                err: ContextError::Canceled,
                ..
            }
        ));
        assert_eq!(io::Error::from(err).kind(), ErrorKind::Other);
        assert_eq!(me.held(), None);

        // A context already done fails even once the lock is free.
        holder.unlock().unwrap();
        let (ctx, cancel) = context::with_cancel(&context::background());
        cancel.cancel();
        assert_eq!(
            me.lock_ctx(&ctx).unwrap_err().context(),
            Some(ContextError::Canceled)
        );
        assert_eq!(me.held(), None);
        assert!(
            holder.try_lock().unwrap(),
            "a failed lock_ctx left the file locked"
        );
        holder.unlock().unwrap();

        // A live context and a free lock: locked.
        let (ctx, _cancel) = context::with_timeout(&context::background(), LIVENESS);
        me.lock_ctx(&ctx).unwrap();
        assert_eq!(me.held(), Some(LockMode::Exclusive));
        me.unlock().unwrap();
    }

    #[test]
    fn lock_ctx_takes_the_lock_when_released() {
        let path = TempPath::new("ctx-release");
        let mut holder = FileLock::new(&path).unwrap();
        holder.lock().unwrap();
        let p = path.to_path_buf();
        let t = thread::spawn(move || {
            let mut me = FileLock::new(&p).unwrap();
            me.lock_ctx(&context::background()).unwrap();
            me.held()
        });
        thread::sleep(Duration::from_millis(20));
        holder.unlock().unwrap();
        let held = within(LIVENESS, "lock_ctx after release", move || {
            t.join().unwrap()
        });
        assert_eq!(held, Some(LockMode::Exclusive));
    }

    // ---- async ----

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lock_async_on_tokio_waits_for_the_holder() {
        let path = TempPath::new("tokio");
        let mut holder = FileLock::new(&path).unwrap();
        holder.lock().unwrap();
        let mut waiter = FileLock::new(&path).unwrap();
        let task = tokio::spawn(async move {
            waiter.lock_async().await.unwrap();
            waiter
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !task.is_finished(),
            "lock_async completed while the file was held"
        );
        holder.unlock().unwrap();
        let mut waiter = tokio::time::timeout(LIVENESS, task)
            .await
            .expect("lock_async after unlock")
            .unwrap();
        assert_eq!(waiter.held(), Some(LockMode::Exclusive));
        assert!(!holder.try_lock().unwrap());
        waiter.unlock().unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn shared_async_on_tokio_current_thread() {
        let path = TempPath::new("tokio-shared");
        let mut r1 = FileLock::new(&path).unwrap();
        let mut r2 = FileLock::new(&path).unwrap();
        r1.lock_shared_async().await.unwrap();
        r2.lock_shared_async().await.unwrap();
        let mut w = FileLock::new(&path).unwrap();
        // A writer waits (on one thread: the readers unlock from another task).
        let writer = tokio::spawn(async move {
            w.lock_async().await.unwrap();
            w
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!writer.is_finished());
        r1.unlock().unwrap();
        r2.unlock().unwrap();
        let mut w = tokio::time::timeout(LIVENESS, writer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(w.held(), Some(LockMode::Exclusive));
        w.unlock().unwrap();
    }

    #[test]
    fn lock_async_on_futures_executor() {
        let path = TempPath::new("futures");
        let mut holder = FileLock::new(&path).unwrap();
        holder.lock().unwrap();
        let p = path.to_path_buf();
        let t = thread::spawn(move || {
            let mut me = FileLock::new(&p).unwrap();
            futures::executor::block_on(me.lock_async()).unwrap();
            let held = me.held();
            me.unlock().unwrap();
            held
        });
        thread::sleep(Duration::from_millis(20));
        holder.unlock().unwrap();
        let held = within(LIVENESS, "lock_async after unlock", move || {
            t.join().unwrap()
        });
        assert_eq!(held, Some(LockMode::Exclusive));

        // Threads and tasks on one lock file: a thread pool of tasks and blocking threads.
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..4 {
            let (p, inside, tx) = (path.to_path_buf(), inside.clone(), tx.clone());
            let work = async move {
                let mut lock = FileLock::new(&p).unwrap();
                for _ in 0..30 {
                    lock.lock_async().await.unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    inside.fetch_sub(1, Ordering::SeqCst);
                    lock.unlock().unwrap();
                }
                tx.send(()).unwrap();
            };
            if i % 2 == 0 {
                pool.spawn_ok(work);
            } else {
                thread::spawn(move || futures::executor::block_on(work));
            }
        }
        drop(tx);
        within(LIVENESS, "tasks and threads", move || {
            for _ in 0..4 {
                rx.recv().unwrap();
            }
        });
    }

    #[test]
    fn lock_async_bounded_by_context_run() {
        let path = TempPath::new("ctx-run");
        let mut holder = FileLock::new(&path).unwrap();
        holder.lock().unwrap();
        let mut me = FileLock::new(&path).unwrap();
        let (ctx, _cancel) =
            context::with_timeout(&context::background(), Duration::from_millis(20));
        let r = futures::executor::block_on(ctx.run(me.lock_async()));
        assert_eq!(r.unwrap_err(), ContextError::DeadlineExceeded);
        assert_eq!(me.held(), None);
        holder.unlock().unwrap();
        let r = futures::executor::block_on(context::background().run(me.lock_async()));
        r.unwrap().unwrap();
        me.unlock().unwrap();
    }

    /// Dropping a pending `lock_async` leaves nothing locked and nothing trying: after the
    /// holder releases, the lock stays free for longer than the longest backoff (a background
    /// attempt left over, like juju/fslock's goroutine, would take it meanwhile).
    #[test]
    fn dropped_lock_async_holds_nothing_and_leaves_nothing() {
        let path = TempPath::new("cancel");
        let mut holder = FileLock::new(&path).unwrap();
        holder.lock().unwrap();
        let mut me = FileLock::new(&path).unwrap();
        for shared in [false, true] {
            let mut fut = if shared {
                Box::pin(me.lock_shared_async())
            } else {
                Box::pin(me.lock_async())
            };
            assert!(poll_noop(fut.as_mut()).is_pending());
            thread::sleep(Duration::from_millis(5));
            assert!(poll_noop(fut.as_mut()).is_pending());
            drop(fut);
            assert_eq!(me.held(), None);
        }
        holder.unlock().unwrap();
        thread::sleep(Duration::from_millis(150));
        let mut probe = FileLock::new(&path).unwrap();
        assert!(
            probe.try_lock().unwrap(),
            "a dropped lock_async took the lock"
        );
        probe.unlock().unwrap();
        // The FileLock itself is as good as new.
        me.lock_async_blocking();
        me.unlock().unwrap();

        // A future dropped after the lock came free, before it was polled again, took
        // nothing either: the lock is taken only in the poll that completes.
        holder.lock().unwrap();
        let mut fut = Box::pin(me.lock_async());
        assert!(poll_noop(fut.as_mut()).is_pending());
        holder.unlock().unwrap();
        drop(fut);
        assert_eq!(me.held(), None);
        assert!(holder.try_lock().unwrap());
        holder.unlock().unwrap();
    }

    trait BlockOn {
        fn lock_async_blocking(&mut self);
    }

    impl BlockOn for FileLock {
        fn lock_async_blocking(&mut self) {
            futures::executor::block_on(self.lock_async()).unwrap();
        }
    }

    /// Pending `lock_async` futures use no thread each: many of them, polled and dropped,
    /// leave the process's thread count where it was.
    #[cfg(target_os = "linux")]
    #[test]
    fn dropped_lock_async_leaks_no_thread() {
        fn threads() -> usize {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        }
        const N: usize = 64;
        let path = TempPath::new("threads");
        let mut holder = FileLock::new(&path).unwrap();
        holder.lock().unwrap();
        let mut locks: Vec<FileLock> = (0..N).map(|_| FileLock::new(&path).unwrap()).collect();
        {
            // Warm-up: start the crate's timer thread if no test has yet.
            let mut f = pin!(locks[0].lock_async());
            assert!(poll_noop(f.as_mut()).is_pending());
        }
        let before = threads();
        let mut futs: Vec<_> = locks.iter_mut().map(|l| Box::pin(l.lock_async())).collect();
        for f in &mut futs {
            assert!(poll_noop(f.as_mut()).is_pending());
        }
        let during = threads();
        drop(futs);
        let after = threads();
        // Other tests run beside this one and start a few threads of their own; a thread
        // per future would add N.
        assert!(
            during < before + N / 2,
            "{before} threads, then {during} while waiting"
        );
        assert!(
            after < before + N / 2,
            "{before} threads, then {after} after dropping"
        );
        holder.unlock().unwrap();
        for l in &mut locks {
            assert_eq!(l.held(), None);
        }
    }

    #[test]
    fn futures_are_send() {
        fn is_send<T: Send>(_: &T) {}
        let path = TempPath::new("send");
        let mut lock = FileLock::new(&path).unwrap();
        is_send(&lock);
        let fut = lock.lock_async();
        is_send(&fut);
        drop(fut);
        let g = lock.guard().unwrap();
        is_send(&g);
        assert!(format!("{g:?}").contains("Exclusive"));
        drop(g);
        assert!(format!("{lock:?}").contains("held: None"));
    }
}
