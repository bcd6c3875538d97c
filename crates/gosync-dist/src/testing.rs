//! Test support: a real, throw-away etcd server.
//!
//! Enabled by the non-default cargo feature `testing`. [`EtcdServer::start`] runs the `etcd`
//! binary on free loopback ports with its data in a fresh temporary directory, waits until it
//! answers its health check, and kills it when the [`EtcdServer`] is dropped — also when the
//! test panics. Even if the test process itself is killed, the server goes with it: etcd runs
//! under a small `sh` guard that kills it as soon as the test process's end of a pipe closes.
//!
//! The binary is `etcd` from `PATH` (Debian and Ubuntu: `apt-get install etcd-server`), or the
//! file named by the environment variable `GOSYNC_ETCD_BIN`. Tests that need etcd call
//! [`EtcdServer::start_or_skip`]: it fails the test with a message saying how to install etcd
//! when the binary is missing. With `GOSYNC_SKIP_ETCD=1` set it instead prints a note and
//! returns `None` (whether etcd is installed or not), so the test can return early.
//!
//! The server is tuned for tests: no fsync (`--unsafe-no-fsync`), and a 250 ms election
//! timeout, which also lowers etcd's minimum lease TTL to 1 s.
//!
//! ```no_run
//! use gosync_dist::testing::EtcdServer;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let Some(etcd) = EtcdServer::start_or_skip() else { return Ok(()) };
//! let client = gosync_dist::Client::etcd(&etcd.endpoints()).await?;
//! // ... use `client` ...
//! etcd.stop(); // optional: simulate a crash; dropping `etcd` also stops it
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Environment variable naming the etcd binary to run instead of `etcd` from `PATH`.
pub const ETCD_BIN_ENV: &str = "GOSYNC_ETCD_BIN";

/// Environment variable that, when set to `1`, makes [`EtcdServer::start_or_skip`] skip.
pub const SKIP_ENV: &str = "GOSYNC_SKIP_ETCD";

/// How long [`EtcdServer::start`] waits for a started server to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often [`EtcdServer::start`] tries again when the chosen ports were taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// Runs etcd (`"$0" "$@"`) and kills it as soon as standard input reaches end of file, i.e.
/// when the process holding the other end of the pipe closes it or dies. Exits with etcd's
/// status when etcd ends by itself.
const GUARD_SCRIPT: &str = r#"exec 3<&0
"$0" "$@" </dev/null 3<&- &
etcd_pid=$!
echo "$etcd_pid" > "$GOSYNC_ETCD_PID_FILE"
( read -r _ <&3 ; kill -9 "$etcd_pid" 2>/dev/null ) &
guard_pid=$!
wait "$etcd_pid"
status=$?
kill "$guard_pid" 2>/dev/null
exit "$status"
"#;

/// Why an [`EtcdServer`] could not be started.
#[derive(Debug)]
pub enum StartError {
    /// No etcd binary was found.
    NotInstalled {
        /// What was looked for.
        looked_for: String,
    },
    /// Setting up the directory or running the process failed.
    Io(io::Error),
    /// etcd exited, or did not become healthy within the start timeout.
    NotHealthy {
        /// What went wrong.
        reason: String,
        /// The last lines etcd logged.
        log_tail: String,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NotInstalled { looked_for } => write!(
                f,
                "etcd is not installed ({looked_for}): install it (Debian/Ubuntu: \
                 `apt-get install etcd-server`), or set {ETCD_BIN_ENV} to the etcd binary, \
                 or set {SKIP_ENV}=1 to skip the tests that need a real etcd"
            ),
            StartError::Io(e) => write!(f, "could not start etcd: {e}"),
            StartError::NotHealthy { reason, log_tail } => {
                write!(f, "etcd did not start: {reason}")?;
                if !log_tail.is_empty() {
                    write!(f, "; last lines of its log:\n{log_tail}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Io(e)
    }
}

/// The running process: the guard shell and our end of its standard input.
struct Running {
    guard: Child,
    stdin: Option<ChildStdin>,
}

impl Running {
    /// Kills etcd and waits until both it and the guard have exited.
    fn kill(mut self) {
        // Closing the pipe makes the guard kill etcd with SIGKILL and then exit.
        drop(self.stdin.take());
        match wait_timeout(&mut self.guard, Duration::from_secs(10)) {
            Ok(true) => {}
            _ => {
                // The guard did not finish: kill it directly. etcd then still dies when the
                // guard's reader sees end of file, which killing the guard does not prevent.
                let _ = self.guard.kill();
                let _ = self.guard.wait();
            }
        }
    }
}

/// A single-member etcd server for tests, listening on free loopback ports, with its data in a
/// temporary directory. Dropping it kills the server and removes the directory.
///
/// ```no_run
/// use gosync_dist::testing::EtcdServer;
///
/// let etcd = EtcdServer::start().expect("etcd starts");
/// println!("etcd at {}", etcd.endpoint());
/// drop(etcd); // killed and cleaned up
/// ```
pub struct EtcdServer {
    running: Mutex<Option<Running>>,
    client_url: String,
    peer_url: String,
    log_path: PathBuf,
    pid_path: PathBuf,
    // Declared last: removed after the process is gone (see `Drop`).
    dir: tempfile::TempDir,
}

impl fmt::Debug for EtcdServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdServer")
            .field("client_url", &self.client_url)
            .field("peer_url", &self.peer_url)
            .field("dir", &self.dir.path())
            .field("running", &self.is_running())
            .finish()
    }
}

impl EtcdServer {
    /// Starts etcd and waits (blocking the calling thread, at most about 30 s) until it is
    /// healthy.
    ///
    /// Errors: [`StartError::NotInstalled`] when there is no etcd binary, otherwise why it did
    /// not come up, with the tail of its log.
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// assert_eq!(etcd.endpoints().len(), 1);
    /// # Ok::<(), gosync_dist::testing::StartError>(())
    /// ```
    pub fn start() -> Result<EtcdServer, StartError> {
        let binary = find_etcd()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&binary) {
                Ok(server) => return Ok(server),
                // A port picked as free may have been taken before etcd bound it: try others.
                Err(e @ StartError::NotHealthy { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Starts etcd for a test, or says why not.
    ///
    /// Returns `None` (after printing a note) when the environment variable `GOSYNC_SKIP_ETCD`
    /// is `1`; the test should then return early. Otherwise panics when etcd is not installed
    /// or does not start, with a message saying how to install it.
    ///
    /// ```no_run
    /// # fn test() {
    /// let Some(etcd) = gosync_dist::testing::EtcdServer::start_or_skip() else { return };
    /// # drop(etcd);
    /// # }
    /// ```
    #[track_caller]
    pub fn start_or_skip() -> Option<EtcdServer> {
        if skip_requested() {
            eprintln!("note: {SKIP_ENV}=1 is set: skipping a test that needs a real etcd");
            return None;
        }
        match Self::start() {
            Ok(server) => Some(server),
            Err(e) => panic!("{e}"),
        }
    }

    fn start_once(binary: &Path) -> Result<EtcdServer, StartError> {
        let dir = tempfile::Builder::new().prefix("gosync-etcd-").tempdir()?;
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("etcd.log");
        let pid_path = dir.path().join("etcd.pid");
        let [client_port, peer_port] = free_ports()?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log = File::create(&log_path)?;

        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .env("GOSYNC_ETCD_PID_FILE", &pid_path)
            .arg(binary)
            .arg("--name")
            .arg("t")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("t={peer_url}")])
            .args(["--initial-cluster-state", "new"])
            // No fsync: tests do not need durability, and fsync is slow on shared disks.
            .arg("--unsafe-no-fsync")
            // A short election timeout elects the single member sooner and lowers etcd's
            // minimum lease TTL (1.5 election timeouts) to 1 s, so lease tests are quick.
            .args(["--heartbeat-interval", "25", "--election-timeout", "250"])
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut guard = command.spawn()?;
        let stdin = guard.stdin.take();
        let mut server = EtcdServer {
            running: Mutex::new(Some(Running { guard, stdin })),
            client_url,
            peer_url,
            log_path,
            pid_path,
            dir,
        };
        server.wait_healthy(START_TIMEOUT)?;
        Ok(server)
    }

    /// Polls the health endpoint until it says healthy, etcd exits, or `timeout` passes.
    fn wait_healthy(&mut self, timeout: Duration) -> Result<(), StartError> {
        let addr = self.addr();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status()? {
                return Err(self.not_healthy(format!("etcd exited with {status}")));
            }
            if health_check(addr).unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(self.not_healthy(format!("not healthy within {} s", timeout.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exit_status(&self) -> io::Result<Option<std::process::ExitStatus>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.as_mut() {
            Some(r) => r.guard.try_wait(),
            None => Ok(None),
        }
    }

    fn not_healthy(&self, reason: String) -> StartError {
        StartError::NotHealthy {
            reason,
            log_tail: self.log_tail(20),
        }
    }

    /// The last `lines` lines etcd wrote to its log (warnings and errors only).
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// eprintln!("{}", etcd.log_tail(10));
    /// # Ok::<(), gosync_dist::testing::StartError>(())
    /// ```
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The current value of one of etcd's Prometheus metrics (from `GET /metrics`), e.g.
    /// `etcd_debugging_mvcc_watcher_total`; `None` if the server does not answer or has no
    /// such metric. Labelled series are summed.
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// assert_eq!(etcd.metric("etcd_debugging_mvcc_watcher_total"), Some(0.0));
    /// # Ok::<(), gosync_dist::testing::StartError>(())
    /// ```
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = http_get(self.addr(), "/metrics").ok()?;
        let mut found = None;
        for line in body.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            // `name value` or `name{labels} value`, not a longer name with this prefix.
            let value = if rest.starts_with(' ') {
                rest
            } else if rest.starts_with('{') {
                rest.rsplit_once('}').map(|(_, v)| v)?
            } else {
                continue;
            };
            let value: f64 = value.trim().parse().ok()?;
            found = Some(found.unwrap_or(0.0) + value);
        }
        found
    }

    fn addr(&self) -> SocketAddr {
        self.client_url
            .trim_start_matches("http://")
            .parse()
            .expect("a socket address")
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// assert!(etcd.endpoint().starts_with("http://127.0.0.1:"));
    /// # Ok::<(), gosync_dist::testing::StartError>(())
    /// ```
    pub fn endpoint(&self) -> &str {
        &self.client_url
    }

    /// The client URLs, ready for `Client::etcd(&etcd.endpoints())`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// let client = gosync_dist::Client::etcd(&etcd.endpoints()).await?;
    /// # drop(client); Ok(())
    /// # }
    /// ```
    pub fn endpoints(&self) -> Vec<&str> {
        vec![self.client_url.as_str()]
    }

    /// The directory holding the server's data and log; removed on drop.
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// assert!(etcd.dir().exists());
    /// # Ok::<(), gosync_dist::testing::StartError>(())
    /// ```
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server process is still running (not stopped, not exited).
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// assert!(etcd.is_running());
    /// etcd.stop();
    /// assert!(!etcd.is_running());
    /// # Ok::<(), gosync_dist::testing::StartError>(())
    /// ```
    pub fn is_running(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.as_mut() {
            Some(r) => matches!(r.guard.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server (SIGKILL, like a crash) and waits until it is gone. Clients see the
    /// connection refused from then on. The data directory stays until the `EtcdServer` is
    /// dropped. Calling it again does nothing.
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// etcd.stop();
    /// etcd.stop();
    /// # Ok::<(), gosync_dist::testing::StartError>(())
    /// ```
    pub fn stop(&self) {
        let taken = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(running) = taken {
            running.kill();
        }
    }
}

impl EtcdServer {
    /// Freezes the server (SIGSTOP): connections stay open but nothing is answered, as with
    /// a hung machine or a network partition. [`resume`](Self::resume) thaws it; stopping or
    /// dropping a paused server works as usual.
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// etcd.pause()?;
    /// // ... requests now hang until their timeouts ...
    /// etcd.resume()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pause(&self) -> io::Result<()> {
        self.signal("-STOP")
    }

    /// Thaws a server frozen by [`pause`](Self::pause) (SIGCONT).
    ///
    /// ```no_run
    /// let etcd = gosync_dist::testing::EtcdServer::start()?;
    /// etcd.pause()?;
    /// etcd.resume()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume(&self) -> io::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> io::Result<()> {
        if !self.is_running() {
            return Err(io::Error::other("etcd is not running"));
        }
        let pid = std::fs::read_to_string(&self.pid_path)?;
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.trim())
            .stdin(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "kill {signal} {} failed",
                pid.trim()
            )))
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
        // `dir` is removed after this, when the fields drop.
    }
}

/// Whether `GOSYNC_SKIP_ETCD=1` is set.
fn skip_requested() -> bool {
    std::env::var(SKIP_ENV).is_ok_and(|v| v.trim() == "1")
}

/// The etcd binary: `$GOSYNC_ETCD_BIN`, or `etcd` found on `PATH`.
fn find_etcd() -> Result<PathBuf, StartError> {
    if let Some(bin) = std::env::var_os(ETCD_BIN_ENV).filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(StartError::NotInstalled {
                looked_for: format!("{ETCD_BIN_ENV}={} is not a file", bin.display()),
            })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| StartError::NotInstalled {
            looked_for: "no `etcd` on PATH".to_owned(),
        })
}

/// Two distinct loopback ports that were free a moment ago (bound to port 0, then released).
fn free_ports() -> io::Result<[u16; 2]> {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok([a.local_addr()?.port(), b.local_addr()?.port()])
}

/// One `GET /health`: `Ok(true)` when etcd reports itself healthy.
fn health_check(addr: SocketAddr) -> io::Result<bool> {
    let body = http_get(addr, "/health")?;
    Ok(body.contains(r#""health":"true""#))
}

/// A minimal HTTP `GET`: the body of a `200 OK` answer, an error for anything else. It asks
/// in HTTP/1.0 so the answer is never chunked.
fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.lines().next().unwrap_or_default();
    if !(status.starts_with("HTTP/1.") && status.contains(" 200 ")) {
        let status = if status.is_empty() {
            "no answer"
        } else {
            status
        };
        return Err(io::Error::other(status.to_owned()));
    }
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body.to_owned())
}

/// Waits for `child` to exit, at most `timeout`; `Ok(true)` when it did.
fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_installed_says_how_to_install_or_skip() {
        let msg = StartError::NotInstalled {
            looked_for: "no `etcd` on PATH".into(),
        }
        .to_string();
        assert!(msg.contains("apt-get install etcd-server"), "{msg}");
        assert!(msg.contains("GOSYNC_SKIP_ETCD=1"), "{msg}");
        assert!(msg.contains("GOSYNC_ETCD_BIN"), "{msg}");
    }

    #[test]
    fn free_ports_are_distinct_and_nonzero() {
        let [a, b] = free_ports().unwrap();
        assert_ne!(a, b);
        assert!(a != 0 && b != 0);
    }
}
