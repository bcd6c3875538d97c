//! A runnable tour of the Go concurrency course's scenarios, in gosync.
//!
//! Each scenario prints a header (the Go concept it shows and what to watch for), the events as
//! they happen, with the time since the scenario began and who did what, and a one-line
//! conclusion. Threads and async tasks share the same objects throughout: that is gosync's
//! point.
//!
//! ```text
//! cargo run --release -p gosync-tour                 # everything
//! cargo run --release -p gosync-tour -- sync/cond    # one scenario
//! cargo run --release -p gosync-tour -- context      # one family
//! cargo run --release -p gosync-tour -- --list       # what there is
//! cargo run --release -p gosync-tour -- --etcd http://127.0.0.1:2379 dist   # on a real etcd
//! ```

mod chan;
mod context;
mod dist;
mod ext;
mod out;
mod sync;

use std::process::ExitCode;

use clap::Parser;

/// One scenario of the tour.
pub struct Scenario {
    /// Its name within the family, e.g. `mutex`.
    pub name: &'static str,
    /// What it shows, in a few words.
    pub title: &'static str,
    /// The Go concept it shows.
    pub go: &'static str,
    /// What to watch for in its output.
    pub watch: &'static str,
    /// Runs it.
    pub run: fn(),
}

/// A family of scenarios: one module of the tour.
struct Family {
    name: &'static str,
    about: &'static str,
    scenarios: &'static [Scenario],
}

const FAMILIES: &[Family] = &[
    Family {
        name: "sync",
        about: "basic synchronization primitives: Mutex, RWMutex, Cond, WaitGroup, Once",
        scenarios: sync::SCENARIOS,
    },
    Family {
        name: "ext",
        about: "extended primitives: weighted semaphore, singleflight, errgroup, recursive, spin and file locks",
        scenarios: ext::SCENARIOS,
    },
    Family {
        name: "context",
        about: "cancellation, deadlines and request-scoped values",
        scenarios: context::SCENARIOS,
    },
    Family {
        name: "chan",
        about: "channels: the table of states, select, timers, the channel mutex and patterns",
        scenarios: chan::SCENARIOS,
    },
    Family {
        name: "dist",
        about: "distributed Mutex, RWMutex and Election (embedded store, or etcd with --etcd)",
        scenarios: dist::SCENARIOS,
    },
];

/// A runnable tour of the Go concurrency course's scenarios, in gosync: every primitive used
/// from OS threads and async tasks alike, on the same objects.
#[derive(Parser)]
#[command(name = "gosync-tour", version)]
struct Cli {
    /// Families (`sync`, `ext`, `context`, `chan`, `dist`) or scenarios (`sync/cond`, or just `cond`) to run,
    /// in the order given; everything when none is given.
    #[arg(value_name = "FAMILY")]
    families: Vec<String>,

    /// List the families and their scenarios, then exit.
    #[arg(long)]
    list: bool,

    /// Shorten the sleeps (to a fifth), for tests and the impatient.
    #[arg(long)]
    fast: bool,

    /// Run the `dist` family on the etcd at these endpoints (comma-separated) instead of the
    /// embedded store [default: $GOSYNC_ETCD_ENDPOINTS].
    #[arg(long, value_name = "URLS")]
    etcd: Option<String>,
}

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(ext::FILELOCK_CHILD_ENV) {
        ext::filelock_child(&path);
    }
    let cli = Cli::parse();
    if cli.list {
        list();
        return ExitCode::SUCCESS;
    }
    let selected = match select(&cli.families) {
        Ok(s) => s,
        Err(unknown) => {
            eprintln!("gosync-tour: no family or scenario named `{unknown}`; these exist:");
            list();
            return ExitCode::from(2);
        }
    };
    out::set_fast(cli.fast);
    let etcd = cli.etcd.or_else(|| std::env::var(dist::ENDPOINTS_ENV).ok());
    dist::set_etcd(etcd.as_deref());
    let started = std::time::Instant::now();
    for (i, (family, scenario)) in selected.iter().enumerate() {
        out::header(
            i + 1,
            selected.len(),
            &format!("{}/{}", family.name, scenario.name),
            scenario.title,
            scenario.go,
            scenario.watch,
        );
        (scenario.run)();
    }
    println!();
    println!(
        "Tour over: {} scenario(s) in {:.1} s.",
        selected.len(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn list() {
    for family in FAMILIES {
        println!("{:<10} {}", family.name, family.about);
        for s in family.scenarios {
            println!(
                "  {:<22} {}",
                format!("{}/{}", family.name, s.name),
                s.title
            );
        }
    }
}

/// The scenarios `names` select, in order, without repeats; all of them for no names.
fn select(names: &[String]) -> Result<Vec<(&'static Family, &'static Scenario)>, String> {
    let all = || {
        FAMILIES
            .iter()
            .flat_map(|f| f.scenarios.iter().map(move |s| (f, s)))
    };
    if names.is_empty() {
        return Ok(all().collect());
    }
    let mut chosen: Vec<(&Family, &Scenario)> = Vec::new();
    for name in names {
        let name = name.trim_matches('/');
        let matches: Vec<_> = all()
            .filter(|(f, s)| {
                name == f.name || name == s.name || name == format!("{}/{}", f.name, s.name)
            })
            .collect();
        if matches.is_empty() {
            return Err(name.to_string());
        }
        for m in matches {
            if !chosen.iter().any(|c| std::ptr::eq(c.1, m.1)) {
                chosen.push(m);
            }
        }
    }
    Ok(chosen)
}
