//! Go's side: builds a family's Go program (`bench/go/<family>/`) and runs it.
//!
//! The program is built in GOPATH mode with the module proxy off
//! (`GO111MODULE=off GOPROXY=off`, `GOPATH=/usr/share/gocode` unless set), so that Debian's
//! packaged Go libraries are found and nothing is downloaded. The binary goes next to the
//! harness's own executable (`target/release/go-bench/<family>`).
//!
//! A Go program runs one measurement per invocation (`-case ... -dur ...`), so the harness
//! can alternate Go with the Rust implementations round by round. It prints lines of
//! `key=value` pairs; see `bench/go/sync/main.go`.
//!
//! When `go` is not on PATH or the build fails, the family notes it and leaves out the Go
//! rows; nothing else is affected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::measure::Contender;
use crate::stats::{Sample, Shares};
use crate::Config;

/// A built Go benchmark program.
#[derive(Debug)]
pub struct GoProgram {
    exe: PathBuf,
}

/// One output line of a Go program: its `key=value` pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record(pub BTreeMap<String, String>);

impl Record {
    /// Parses `case=x threads=4 mops=1.5`; words without `=` are ignored.
    pub fn parse(line: &str) -> Record {
        Record(
            line.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value of `key` as a number.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.0.get(key)?.parse().ok()
    }

    /// The measurement of this record: `ns_per_op`, or `mops` with `min_share`/`max_share`.
    pub fn sample(&self) -> Option<Sample> {
        if let Some(ns) = self.f64("ns_per_op") {
            return Some(Sample::value(ns));
        }
        let mops = self.f64("mops")?;
        let shares = match (self.f64("min_share"), self.f64("max_share")) {
            (Some(min), Some(max)) => Some(Shares { min, max }),
            _ => None,
        };
        Some(Sample {
            value: mops,
            shares,
        })
    }
}

/// Where the Go sources of the families live.
fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/go")
}

/// Go's environment for a GOPATH-mode, offline build.
fn go_command(out_dir: &Path) -> Command {
    let mut cmd = Command::new("go");
    cmd.env("GO111MODULE", "off").env("GOPROXY", "off");
    if std::env::var_os("GOPATH").is_none() && Path::new("/usr/share/gocode").is_dir() {
        cmd.env("GOPATH", "/usr/share/gocode");
    }
    // `go` needs a build cache; without HOME it has no default one.
    let no_home = std::env::var_os("HOME").filter(|h| !h.is_empty()).is_none();
    if std::env::var_os("GOCACHE").is_none() && no_home {
        cmd.env("GOCACHE", out_dir.join("cache"));
    }
    cmd
}

impl GoProgram {
    /// Builds `bench/go/<family>`. `Err` says why Go's rows are skipped.
    pub fn build(cfg: &Config, family: &str) -> Result<GoProgram, String> {
        if !cfg.go {
            return Err("Go rows skipped (--no-go)".into());
        }
        let src = source_root().join(family);
        if !src.join("main.go").is_file() {
            return Err(format!(
                "Go rows skipped: no Go program for family {family}"
            ));
        }
        let out_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("go-bench")))
            .unwrap_or_else(|| std::env::temp_dir().join("gosync-go-bench"));
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| format!("Go rows skipped: cannot create {}: {e}", out_dir.display()))?;
        let exe = out_dir.join(family);

        match go_command(&out_dir).arg("version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "Go rows skipped: `go version` failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("Go rows skipped: `go` is not on PATH".into())
            }
            Err(e) => return Err(format!("Go rows skipped: cannot run `go`: {e}")),
        }

        crate::measure::progress(cfg, &format!("[{family}] building the Go program"));
        let out = go_command(&out_dir)
            .arg("build")
            .arg("-o")
            .arg(&exe)
            .arg(".")
            .current_dir(&src)
            .output()
            .map_err(|e| format!("Go rows skipped: cannot run `go build`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "Go rows skipped: `go build` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(GoProgram { exe })
    }

    /// Runs the program with `args` and parses every output line that has a `case=`.
    pub fn run(&self, args: &[String]) -> Result<Vec<Record>, String> {
        let out = Command::new(&self.exe)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} {} failed: {}",
                self.exe.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(Record::parse)
            .filter(|r| r.0.contains_key("case"))
            .collect())
    }

    /// A contender row named `name` that runs the program once per round with `args` plus
    /// the configured durations, and takes the first record's sample. Failures are
    /// reported on stderr and leave that round out.
    pub fn contender<'a>(&'a self, name: &str, args: &[&str], cfg: &Config) -> Contender<'a> {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(format!("-dur={}", go_duration(cfg.duration)));
        args.push(format!("-opdur={}", go_duration(cfg.op_duration)));
        Contender::anchor(name, move || match self.run(&args) {
            Ok(records) => records.first().and_then(Record::sample),
            Err(e) => {
                eprintln!("warning: {e}");
                None
            }
        })
    }
}

/// A duration in Go's `time.ParseDuration` syntax.
pub fn go_duration(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_records() {
        let r = Record::parse(
            "case=mutex_contended threads=4 ops=10 secs=0.1 mops=3.5 min_share=0.9 max_share=1.1",
        );
        assert_eq!(r.0["case"], "mutex_contended");
        let s = r.sample().unwrap();
        assert_eq!(s.value, 3.5);
        assert_eq!(s.shares, Some(Shares { min: 0.9, max: 1.1 }));

        let r = Record::parse("case=once ns_per_op=0.5 iters=100");
        assert_eq!(r.sample(), Some(Sample::value(0.5)));
        assert_eq!(Record::parse("round 1/3").sample(), None);
    }

    #[test]
    fn durations_for_go() {
        assert_eq!(go_duration(Duration::from_millis(400)), "400000us");
    }
}
