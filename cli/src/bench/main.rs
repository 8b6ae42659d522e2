//! `s3lect-bench`: failover time, graceful handover, S3 requests per hour, step cost (wasm vs
//! native), cold one-shot latency and scale — measured against a real SeaweedFS on loopback,
//! printed as a Markdown table. Its flags are [`Args`] (`s3lect-bench --help`).
//!
//! cargo run --release -p s3lect-cli --bin s3lect-bench [-- --quick] [--only SECTION] [--groups N]

mod allocator;
mod cluster_runs;
mod cost;
mod invocation;
mod scale_floor;
mod stats;
mod symbol_order;

use clap::Parser;
use cluster_runs::{Exit, Mode};
use stats::Row;

#[global_allocator]
static ALLOCATOR: allocator::Chosen = allocator::Chosen;

/// s3lect's benchmark harness: every section against a SeaweedFS on loopback that it starts
/// itself, printed as a Markdown table (BENCHMARKS.md). The full run takes about 50 minutes.
/// The process allocates with mimalloc, or with glibc's malloc given
/// `S3LECT_BENCH_ALLOCATOR=system`; the output names which.
#[derive(Parser)]
#[command(name = "s3lect-bench")]
struct Args {
    /// Tiny sizes, about 3 minutes (CI's smoke run): the harness still works; the numbers
    /// mean nothing.
    #[arg(long)]
    quick: bool,
    /// One section only (`scale` runs `floor` too).
    #[arg(long, value_enum, value_name = "SECTION")]
    only: Option<Section>,
    /// One size of the scale section, in groups (the full run measures 1,000 and 10,000).
    #[arg(long, value_name = "N")]
    groups: Option<usize>,
    /// One mode of the failover, handover and memory sections (the full run measures each).
    #[arg(long, value_enum, value_name = "MODE")]
    mode: Option<Mode>,
    /// Takeovers per row at the default timings (full run: 5, too few for a p99).
    #[arg(long, value_name = "N", conflicts_with = "quick")]
    runs: Option<usize>,
    /// Measures no numbers: writes the functions a running node executes to FILE, for the
    /// release build's link order (cli/symbol-order.txt).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["quick", "only", "groups", "mode", "runs"])]
    symbol_order: Option<std::path::PathBuf>,
}

/// The sections, in the order a full run takes them.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    Step,
    Cold,
    Failover,
    Handover,
    Memory,
    Invocation,
    Requests,
    Scale,
    Floor,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Parsed before anything starts: a mistyped flag is refused, not a 50-minute full run.
    let args = Args::parse();
    let quick = args.quick;
    // As the `s3lect` command does: the component compiled once, then loaded precompiled.
    if let Some(home) = std::env::var_os("HOME") {
        s3lect::runtime::cache_compiled_component_in(std::path::PathBuf::from(home).join(".cache/s3lect"));
    }
    let weed = s3lect_cli::local_s3::find_weed().expect("SeaweedFS not found: run scripts/setup-s3-server.sh");
    let bin = std::env::current_exe().unwrap().with_file_name("s3lect");
    assert!(bin.exists(), "build the s3lect binary first: cargo build --release -p s3lect-cli");
    if let Some(out) = &args.symbol_order {
        match symbol_order::write(&bin, &weed, out).await {
            Ok(n) => println!("{n} functions written to {}", out.display()),
            Err(e) => {
                eprintln!("s3lect-bench --symbol-order: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let mut rows: Vec<Row> = vec![];
    let n = |full: usize, small: usize| if quick { small } else { full };

    let run = |section: Section| args.only.is_none_or(|o| o == section);
    let short = ("short timings (renew 1 s, lease 2.5 s, timeout 3 s, poll 1 s)", &cluster_runs::SHORT[..]);
    let defaults = ("defaults (5 s / 30 s / lease 10 s / timeout 15 s)", &[][..]);

    if run(Section::Step) {
        rows.extend(cost::step_cost(n(20_000, 200)).await);
    }
    if run(Section::Cold) {
        rows.push(cluster_runs::cold_step(&bin, &weed, n(30, 3)).await);
    }
    let modes: Vec<Mode> = Mode::ALL.into_iter().filter(|m| args.mode.is_none_or(|o| o == *m)).collect();
    let at_defaults = args.runs.unwrap_or(5);
    for (section, exit) in [(Section::Failover, Exit::Crash), (Section::Handover, Exit::Graceful)] {
        if !run(section) {
            continue;
        }
        for &mode in &modes {
            // Short timings leave no room for the server clock's skew: there, polling is by the
            // nodes' own clocks already.
            if mode != Mode::OwnClock {
                rows.push(cluster_runs::takeover(&bin, &weed, exit, short.0, short.1, mode, n(20, 2), 3).await);
            }
            if !quick {
                if mode != Mode::OwnClock {
                    rows.push(cluster_runs::takeover(&bin, &weed, exit, short.0, short.1, mode, 10, 10).await);
                }
                rows.push(cluster_runs::takeover(&bin, &weed, exit, defaults.0, defaults.1, mode, at_defaults, 3).await);
                rows.push(cluster_runs::takeover(&bin, &weed, exit, defaults.0, defaults.1, mode, at_defaults, 10).await);
            }
        }
    }
    if run(Section::Memory) {
        // By its own clock alone a node runs what `--no-peer` runs: measured only when asked.
        for &mode in modes.iter().filter(|&&m| m != Mode::OwnClock || args.mode.is_some()) {
            rows.extend(cluster_runs::node_rss(&bin, &weed, mode, 3, if quick { 3 } else { 40 }).await);
        }
        rows.push(cluster_runs::first_start_rss(&bin, &weed, if quick { 3 } else { 20 }).await);
        let (found, listed) = symbol_order::found_in(&bin).unwrap_or_else(|e| panic!("reading the link order: {e}"));
        // The list orders release builds only (cli/build.rs); a debug build names its functions
        // differently too. A release build missing part of it has a stale list (a dependency
        // added to s3lect-cli renames some 200 of its functions: a node 0.6–0.8 MiB larger,
        // BENCHMARKS.md), and only this row would say so.
        let note = if cfg!(debug_assertions) {
            "; a debug build, which the list does not order"
        } else if found * 100 < listed * 98 {
            "; STALE: make it again (`s3lect-bench --symbol-order cli/symbol-order.txt`, then rebuild)"
        } else {
            ""
        };
        rows.push(Row::new(
                "functions linked together (cli/symbol-order.txt)",
                &format!(
                    "of the functions listed, those this `s3lect` has ({found} of {listed}): fewer means a list from an older build, and more resident code{note}"
                ),
                "%",
            vec![100.0 * found as f64 / listed.max(1) as f64],
            "–",
        ));
    }
    if run(Section::Invocation) {
        rows.extend(invocation::composed_invocation(&weed, n(20, 3)).await);
    }
    if run(Section::Requests) {
        rows.extend(cost::requests_per_hour(&weed, if quick { 6 } else { 60 }).await);
    }
    let sizes = match args.groups {
        Some(g) => vec![g],
        None if quick => vec![50],
        None => vec![1_000, 10_000],
    };
    let secs = if quick { 5 } else { 60 };
    if run(Section::Scale) {
        for &g in &sizes {
            rows.push(on_current_thread(&weed, move |weed| async move { cost::scale(&weed, g, secs).await }));
        }
    }
    // The largest size's PUTs without the election (`--only floor` runs these alone).
    if run(Section::Scale) || args.only == Some(Section::Floor) {
        let keys = *sizes.last().unwrap();
        rows.extend(on_current_thread(&weed, move |weed| async move { scale_floor::rows(&weed, keys, secs).await }));
    }

    // It serves the rows measured inside this process (step, scale), not the `s3lect` processes.
    println!("\nAllocator: {} (`S3LECT_BENCH_ALLOCATOR=system` for glibc's).", allocator::name());
    println!("\n| measurement | config | n | min | median | p99 | max | Go s3lect (computed) | target |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
}

/// Runs `f` on a current-thread runtime of its own, as the README advises a process serving
/// many groups (a third less CPU than on two workers: BENCHMARKS.md).
fn on_current_thread<R: Send + 'static, F: std::future::Future<Output = R>>(
    weed: &std::path::Path,
    f: impl FnOnce(std::path::PathBuf) -> F + Send + 'static,
) -> R {
    let weed = weed.to_path_buf();
    std::thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f(weed)))
        .join()
        .unwrap()
}
