//! `gosync-bench`: gosync side by side with the Rust crates people use today and with Go,
//! on the same machine, in one run.
//!
//! Each family (`sync`, ...) prints tables: one row per implementation, one column per case,
//! each cell the median over the rounds and the speed relative to the best anchor (every row
//! that is not gosync) in that column. Rounds alternate between implementations, so a noisy
//! spell of the machine is spread over all of them. Multi-thread cases also print each
//! implementation's fairness: the smallest and largest per-thread share of the operations.
//!
//! Go's rows come from `bench/go/<family>/`, built and run when `go` is on PATH.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

mod chan;
mod dist;
mod ext;
mod go;
mod measure;
mod mem;
mod stats;
mod sync;

use measure::Contender;
use stats::{Better, Sample};

/// Settings shared by every family.
#[derive(Clone, Debug)]
pub struct Config {
    /// Quick mode (for CI).
    pub quick: bool,
    /// Rounds per measurement (at least 1; 3 or more for a meaningful median).
    pub rounds: usize,
    /// Duration of one contended (multi-thread or multi-task) measurement.
    pub duration: Duration,
    /// Minimum duration of one ns/op measurement.
    pub op_duration: Duration,
    /// Whether to build and run the Go programs.
    pub go: bool,
    /// Only cases whose key contains one of these (empty: all cases).
    pub cases: Vec<String>,
    /// No progress lines on stderr.
    pub quiet: bool,
}

impl Config {
    /// Whether the case `key` (e.g. `mutex_contended`) is selected by `--case`.
    pub fn wants(&self, key: &str) -> bool {
        self.cases.is_empty() || self.cases.iter().any(|c| key.contains(c.as_str()))
    }
}

/// One family of benchmarks.
struct Family {
    name: &'static str,
    about: &'static str,
    cases: &'static [(&'static str, &'static str)],
    run: fn(&Config) -> Vec<Table>,
}

/// Every family, in the order they run.
const FAMILIES: &[Family] = &[
    Family {
        name: "sync",
        about: sync::ABOUT,
        cases: sync::CASES,
        run: sync::run,
    },
    Family {
        name: "chan",
        about: chan::ABOUT,
        cases: chan::CASES,
        run: chan::run,
    },
    Family {
        name: "dist",
        about: dist::ABOUT,
        cases: dist::CASES,
        run: dist::run,
    },
    Family {
        name: "ext",
        about: ext::ABOUT,
        cases: ext::CASES,
        run: ext::run,
    },
    Family {
        name: "mem",
        about: mem::ABOUT,
        cases: mem::CASES,
        run: mem::run,
    },
];

/// Results of one case: rows = implementations, columns = variants of the case.
#[derive(Clone, Debug)]
pub struct Table {
    /// Family name, e.g. `sync`.
    pub family: &'static str,
    /// Case key, e.g. `mutex_contended` (what `--case` matches).
    pub key: &'static str,
    /// What is measured, in words.
    pub title: String,
    /// Unit of the values, e.g. `ns/op` or `Mops/s`.
    pub unit: &'static str,
    /// Direction of the values.
    pub better: Better,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows in order of first appearance.
    pub rows: Vec<Row>,
    /// Remarks printed under the table.
    pub notes: Vec<String>,
}

/// One implementation's results in a table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Implementation, e.g. `parking_lot::Mutex`.
    pub name: String,
    /// Anchors are the implementations gosync is compared against.
    pub anchor: bool,
    /// Per column, the samples of every round (empty: not measured).
    pub cells: Vec<Vec<Sample>>,
}

impl Table {
    /// An empty table.
    pub fn new(
        family: &'static str,
        key: &'static str,
        title: impl Into<String>,
        unit: &'static str,
        better: Better,
        columns: &[&str],
    ) -> Self {
        Table {
            family,
            key,
            title: title.into(),
            unit,
            better,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Measures `contenders` in column `column` over the configured rounds (alternating) and
    /// records the samples. `label` names the case in progress lines.
    pub fn measure(
        &mut self,
        cfg: &Config,
        column: usize,
        label: &str,
        mut contenders: Vec<Contender<'_>>,
    ) {
        let case = format!("{label}, {}", self.columns[column]);
        let samples = measure::run_rounds(cfg, self.family, &case, &mut contenders);
        for (c, s) in contenders.iter().zip(samples) {
            self.record(column, &c.name, c.anchor, s);
        }
    }

    /// Records samples of row `name` in column `column`.
    pub fn record(&mut self, column: usize, name: &str, anchor: bool, samples: Vec<Sample>) {
        let ncols = self.columns.len();
        let row = match self.rows.iter().position(|r| r.name == name) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    name: name.to_string(),
                    anchor,
                    cells: vec![Vec::new(); ncols],
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.cells[column].extend(samples);
    }

    /// Adds a remark printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The best median among the anchors in `column`.
    pub fn best_anchor(&self, column: usize) -> Option<f64> {
        stats::best(
            self.rows
                .iter()
                .filter(|r| r.anchor)
                .filter_map(|r| stats::summarise(&r.cells[column]).map(|s| s.value)),
            self.better,
        )
    }

    /// Median and ratio to the best anchor of one cell.
    fn cell(&self, row: &Row, column: usize) -> Option<(stats::Summary, Option<f64>)> {
        let s = stats::summarise(&row.cells[column])?;
        let ratio = self
            .best_anchor(column)
            .and_then(|b| stats::ratio(s.value, b, self.better));
        Some((s, ratio))
    }

    /// The table as fixed-width text; with `spread`, also each cell's smallest and largest
    /// value over the rounds.
    pub fn render(&self, spread: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "[{}] {}: {}", self.family, self.key, self.title);
        let _ = writeln!(
            out,
            "  {} ({}); ratio = speed vs the best anchor in the column (>1.00x: faster than all)",
            self.unit,
            self.better.describe()
        );
        let name_w = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .chain(["implementation".len()])
            .max()
            .unwrap_or(0);

        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                (0..self.columns.len())
                    .map(|c| match self.cell(r, c) {
                        Some((s, Some(ratio))) => {
                            format!("{} {:>6}", fmt_value(s.value), format!("{ratio:.2}x"))
                        }
                        Some((s, None)) => format!("{}      -", fmt_value(s.value)),
                        None => "-".to_string(),
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r[c].len())
                    .chain([self.columns[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();

        let _ = write!(out, "  {:<name_w$}", "implementation");
        for (c, w) in self.columns.iter().zip(&widths) {
            let _ = write!(out, "  {c:>w$}");
        }
        out.push('\n');
        for (row, cells) in self.rows.iter().zip(&cells) {
            let _ = write!(out, "  {:<name_w$}", row.name);
            for (cell, w) in cells.iter().zip(&widths) {
                let _ = write!(out, "  {cell:>w$}");
            }
            out.push('\n');
        }

        let has_shares = self
            .rows
            .iter()
            .flat_map(|r| &r.cells)
            .flatten()
            .any(|s| s.shares.is_some());
        if has_shares {
            let _ = writeln!(
                out,
                "  fairness: per-thread share of the operations, min/max (1.00 = the mean; ! = min below 0.33)"
            );
            for row in &self.rows {
                let _ = write!(out, "  {:<name_w$}", row.name);
                for (c, w) in widths.iter().enumerate() {
                    let text = match stats::summarise(&row.cells[c]).and_then(|s| s.shares) {
                        Some(sh) => format!(
                            "{}{:.2}/{:.2}",
                            if sh.min < 1.0 / 3.0 { "!" } else { "" },
                            sh.min,
                            sh.max
                        ),
                        None => "-".to_string(),
                    };
                    let _ = write!(out, "  {text:>w$}");
                }
                out.push('\n');
            }
        }
        if spread {
            let _ = writeln!(out, "  spread: smallest and largest value over the rounds");
            for row in &self.rows {
                let _ = write!(out, "  {:<name_w$}", row.name);
                for (c, w) in widths.iter().enumerate() {
                    let text = match stats::summarise(&row.cells[c]) {
                        Some(s) => format!(
                            "{}-{}",
                            fmt_value(s.range.0).trim(),
                            fmt_value(s.range.1).trim()
                        ),
                        None => "-".to_string(),
                    };
                    let _ = write!(out, "  {text:>w$}");
                }
                out.push('\n');
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}

/// A value with about three significant digits, right-aligned in 8 columns.
fn fmt_value(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    format!("{s:>8}")
}

/// Minimal JSON string escaping.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number for JSON (`null` when not finite).
fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".to_string(),
    }
}

/// All results, every round's sample included, as JSON.
fn to_json(cfg: &Config, machine: &Machine, tables: &[Table]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "{{\n  \"quick\": {},\n  \"rounds\": {},\n  \"duration_ms\": {},\n  \"op_duration_ms\": {},\n  \"machine\": {{\"cpus\": {}, \"cpu\": {}, \"kernel\": {}, \"rustc\": {}, \"go\": {}}},\n  \"tables\": [",
        cfg.quick,
        cfg.rounds,
        cfg.duration.as_millis(),
        cfg.op_duration.as_millis(),
        machine.cpus,
        json_str(&machine.cpu),
        json_str(&machine.kernel),
        json_str(&machine.rustc),
        json_str(&machine.go),
    );
    for (ti, t) in tables.iter().enumerate() {
        let cols: Vec<String> = t.columns.iter().map(|c| json_str(c)).collect();
        let _ = write!(
            o,
            "{}\n    {{\"family\": {}, \"key\": {}, \"title\": {}, \"unit\": {}, \"better\": {}, \"columns\": [{}], \"rows\": [",
            if ti > 0 { "," } else { "" },
            json_str(t.family),
            json_str(t.key),
            json_str(&t.title),
            json_str(t.unit),
            json_str(match t.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
            }),
            cols.join(", ")
        );
        for (ri, r) in t.rows.iter().enumerate() {
            let cells: Vec<String> = (0..t.columns.len())
                .map(|c| match t.cell(r, c) {
                    None => "null".to_string(),
                    Some((s, ratio)) => {
                        let samples: Vec<String> = r.cells[c]
                            .iter()
                            .map(|x| match x.shares {
                                Some(sh) => format!(
                                    "{{\"value\": {}, \"min_share\": {}, \"max_share\": {}}}",
                                    json_num(Some(x.value)),
                                    json_num(Some(sh.min)),
                                    json_num(Some(sh.max))
                                ),
                                None => format!("{{\"value\": {}}}", json_num(Some(x.value))),
                            })
                            .collect();
                        format!(
                            "{{\"median\": {}, \"ratio\": {}, \"min_share\": {}, \"max_share\": {}, \"samples\": [{}]}}",
                            json_num(Some(s.value)),
                            json_num(ratio),
                            json_num(s.shares.map(|x| x.min)),
                            json_num(s.shares.map(|x| x.max)),
                            samples.join(", ")
                        )
                    }
                })
                .collect();
            let _ = write!(
                o,
                "{}\n      {{\"name\": {}, \"anchor\": {}, \"cells\": [{}]}}",
                if ri > 0 { "," } else { "" },
                json_str(&r.name),
                r.anchor,
                cells.join(", ")
            );
        }
        let notes: Vec<String> = t.notes.iter().map(|n| json_str(n)).collect();
        let _ = write!(o, "\n    ], \"notes\": [{}]}}", notes.join(", "));
    }
    o.push_str("\n  ]\n}\n");
    o
}

/// What the results were measured on.
struct Machine {
    cpus: usize,
    cpu: String,
    kernel: String,
    rustc: String,
    go: String,
}

impl Machine {
    fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("{} {}", std::env::consts::OS, s.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        let version_of = |cmd: &str, arg: &str| {
            std::process::Command::new(cmd)
                .arg(arg)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_else(|| format!("{cmd}: not found"))
        };
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            kernel,
            rustc: version_of(
                &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
                "--version",
            ),
            go: version_of("go", "version"),
        }
    }
}

const LONG_ABOUT: &str = "\
Benchmarks gosync side by side with the Rust crates people use today (std, parking_lot, \
async-lock, tokio::sync, crossbeam-utils) and with Go (bench/go/<family>, built and run when \
`go` is on PATH), on this machine, in one run.

Each family prints tables: rows = implementations, columns = cases. A cell is the median over \
the rounds and the speed relative to the best anchor (every row that is not gosync) in its \
column: above 1.00x is faster than all anchors. Rounds alternate between implementations, so \
a noisy spell of the machine hits all of them alike. Multi-thread cases also show fairness: \
the slowest and the fastest thread's share of the operations, relative to the mean.

Progress goes to stderr, tables to stdout. Use --list to see the families and their cases.";

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "gosync-bench", version, about = "Benchmarks gosync against std, parking_lot, async-lock, tokio, crossbeam and Go", long_about = LONG_ABOUT)]
struct Cli {
    /// Short run for CI: 3 rounds, 100 ms per contended measurement, 30 ms per ns/op
    /// measurement (the whole run takes under a minute).
    #[arg(long)]
    quick: bool,

    /// Families to run (repeat or separate with commas) [default: all].
    #[arg(long, value_name = "NAME", value_delimiter = ',', value_parser = family_names())]
    family: Vec<String>,

    /// Only cases whose key contains TEXT (repeat or separate with commas), e.g. `--case mutex`.
    #[arg(long, value_name = "TEXT", value_delimiter = ',')]
    case: Vec<String>,

    /// Rounds per measurement; tables show the median [default: 5, or 3 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rounds: Option<u32>,

    /// Duration of one contended (multi-thread or multi-task) measurement, in milliseconds
    /// [default: 400, or 100 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    duration_ms: Option<u64>,

    /// Minimum duration of one ns/op measurement, in milliseconds [default: 100, or 30 with --quick].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    op_duration_ms: Option<u64>,

    /// Leave out Go's rows (by default they run when `go` is on PATH).
    #[arg(long)]
    no_go: bool,

    /// Also write every round's raw result, with the machine and settings, to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Also show each cell's smallest and largest value over the rounds.
    #[arg(long)]
    spread: bool,

    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,

    /// List the families and their case keys, then exit.
    #[arg(long)]
    list: bool,
}

fn family_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(FAMILIES.iter().map(|f| f.name))
}

fn main() {
    let cli = Cli::parse();

    if cli.list {
        for f in FAMILIES {
            println!("{}: {}", f.name, f.about);
            for (key, what) in f.cases {
                println!("  {key:<20} {what}");
            }
        }
        return;
    }

    let cfg = Config {
        quick: cli.quick,
        rounds: cli
            .rounds
            .map_or(if cli.quick { 3 } else { 5 }, |r| r as usize),
        duration: Duration::from_millis(cli.duration_ms.unwrap_or(if cli.quick {
            100
        } else {
            400
        })),
        op_duration: Duration::from_millis(cli.op_duration_ms.unwrap_or(if cli.quick {
            30
        } else {
            100
        })),
        go: !cli.no_go,
        cases: cli.case.clone(),
        quiet: cli.quiet,
    };

    // A measurement takes at most a few durations; a minute more means something hangs.
    measure::start_watchdog(cfg.duration.max(cfg.op_duration) * 20 + Duration::from_secs(60));

    let machine = Machine::detect();
    println!("gosync-bench{}", if cfg.quick { " (quick)" } else { "" });
    println!(
        "machine: {} CPUs, {}, {}; {}; {}",
        machine.cpus, machine.cpu, machine.kernel, machine.rustc, machine.go
    );
    println!(
        "method: median of {} rounds alternating between implementations; {} ms per contended measurement, >= {} ms per ns/op measurement",
        cfg.rounds,
        cfg.duration.as_millis(),
        cfg.op_duration.as_millis()
    );
    if cfg.rounds < 3 {
        println!("note: fewer than 3 rounds, the medians are weak");
    }
    if cfg!(debug_assertions) {
        println!("note: this is a debug build; run with --release for meaningful numbers");
    }

    let mut all = Vec::new();
    for f in FAMILIES {
        if !cli.family.is_empty() && !cli.family.iter().any(|n| n == f.name) {
            continue;
        }
        let mut tables = (f.run)(&cfg);
        measure::progress_done(&cfg);
        for t in &mut tables {
            // gosync first (it is measured first), Go last.
            t.rows.sort_by_key(|r| r.name.starts_with("go "));
        }
        for t in &tables {
            println!();
            print!("{}", t.render(cli.spread));
        }
        all.extend(tables);
    }
    if all.is_empty() {
        println!("\nno case matched --case {}", cfg.cases.join(","));
    }

    if let Some(path) = &cli.json {
        if let Err(e) = std::fs::write(path, to_json(&cfg, &machine, &all)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(v: f64) -> Vec<Sample> {
        vec![Sample::value(v)]
    }

    #[test]
    fn ratio_against_best_anchor() {
        let mut t = Table::new("t", "k", "title", "ns/op", Better::Lower, &["a", "b"]);
        t.record(0, "gosync", false, sample(5.0));
        t.record(0, "x", true, sample(10.0));
        t.record(0, "y", true, sample(20.0));
        t.record(1, "gosync", false, sample(1.0));
        assert_eq!(t.best_anchor(0), Some(10.0));
        assert_eq!(t.best_anchor(1), None);
        let text = t.render(true);
        assert!(text.contains("2.00x"), "{text}");
        assert!(text.contains("0.50x"), "{text}");
        assert_eq!(t.rows.len(), 3);
    }

    #[test]
    fn json_is_balanced() {
        let mut t = Table::new(
            "t",
            "k",
            "a \"quoted\" title",
            "Mops/s",
            Better::Higher,
            &["c"],
        );
        t.record(0, "gosync", false, sample(5.0));
        t.note("n");
        let cfg = Config {
            quick: true,
            rounds: 1,
            duration: Duration::from_millis(1),
            op_duration: Duration::from_millis(1),
            go: false,
            cases: vec![],
            quiet: true,
        };
        let m = Machine {
            cpus: 2,
            cpu: "c".into(),
            kernel: "k".into(),
            rustc: "r".into(),
            go: "g".into(),
        };
        let j = to_json(&cfg, &m, &[t]);
        assert!(j.contains("a \\\"quoted\\\" title"));
        assert_eq!(j.matches('{').count(), j.matches('}').count());
        assert_eq!(j.matches('[').count(), j.matches(']').count());
    }
}
