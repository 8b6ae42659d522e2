//! `s3lect-bench`: failover time, graceful handover, S3 requests per hour, step cost (wasm vs
//! native), cold one-shot latency and scale — measured against a real SeaweedFS on loopback,
//! printed as a Markdown table. `--quick` runs tiny sizes (CI smoke run).
//!
//! cargo run --release -p s3lect --bin s3lect-bench [-- --quick] [--only SECTION] [--groups N]
//!
//! `--symbol-order FILE` measures no numbers: it writes the functions a node runs, which the
//! release build places together (cli/symbol-order.txt; see symbol_order.rs).

mod cluster_runs;
mod cost;
mod invocation;
mod scale_floor;
mod stats;
mod symbol_order;

use cluster_runs::Exit;
use stats::Row;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // As the `s3lect` command does: the component compiled once, then loaded precompiled.
    if let Some(home) = std::env::var_os("HOME") {
        s3lect::runtime::cache_compiled_component_in(std::path::PathBuf::from(home).join(".cache/s3lect"));
    }
    let weed = s3lect_cli::local_s3::find_weed().expect("SeaweedFS not found: run scripts/setup-s3-server.sh");
    let bin = std::env::current_exe().unwrap().with_file_name("s3lect");
    assert!(bin.exists(), "build the s3lect binary first: cargo build --release -p s3lect-cli");
    if let Some(out) = std::env::args().skip_while(|a| a != "--symbol-order").nth(1) {
        match symbol_order::write(&bin, &weed, std::path::Path::new(&out)).await {
            Ok(n) => println!("{n} functions written to {out}"),
            Err(e) => {
                eprintln!("s3lect-bench --symbol-order: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let mut rows: Vec<Row> = vec![];
    let n = |full: usize, small: usize| if quick { small } else { full };

    // `--only NAME` runs one section: step, cold, invocation, failover, handover, memory, requests,
    // scale, floor (scale runs floor too).
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let short = ("short timings (renew 1 s, lease 2.5 s, timeout 3 s, poll 1 s)", &cluster_runs::SHORT[..]);
    let defaults = ("defaults (5 s / 30 s / lease 10 s / timeout 15 s)", &[][..]);

    if run("step") {
        rows.extend(cost::step_cost(n(20_000, 200)).await);
    }
    if run("cold") {
        rows.push(cluster_runs::cold_step(&bin, &weed, n(30, 3)).await);
    }
    for (name, exit) in [("failover", Exit::Crash), ("handover", Exit::Graceful)] {
        if !run(name) {
            continue;
        }
        for peer in [false, true] {
            rows.push(cluster_runs::takeover(&bin, &weed, exit, short.0, short.1, peer, n(20, 2), 3).await);
            if !quick {
                rows.push(cluster_runs::takeover(&bin, &weed, exit, short.0, short.1, peer, 10, 10).await);
                rows.push(cluster_runs::takeover(&bin, &weed, exit, defaults.0, defaults.1, peer, 5, 3).await);
                rows.push(cluster_runs::takeover(&bin, &weed, exit, defaults.0, defaults.1, peer, 5, 10).await);
            }
        }
    }
    if run("memory") {
        for peer in [false, true] {
            rows.extend(cluster_runs::node_rss(&bin, &weed, peer, 3, if quick { 3 } else { 40 }).await);
        }
        rows.push(cluster_runs::first_start_rss(&bin, &weed, if quick { 3 } else { 20 }).await);
        // The list orders release builds only (cli/build.rs); a debug build names its functions
        // differently too.
        let debug = if cfg!(debug_assertions) { "; a debug build, which the list does not order" } else { "" };
        let (found, listed) = symbol_order::found_in(&bin).unwrap_or_else(|e| panic!("reading the link order: {e}"));
        rows.push(Row::new(
                "functions linked together (cli/symbol-order.txt)",
                &format!(
                    "of the functions listed, those this `s3lect` has ({found} of {listed}): fewer means a list from an older build, and more resident code{debug}"
                ),
                "%",
            vec![100.0 * found as f64 / listed.max(1) as f64],
            "–",
        ));
    }
    if run("invocation") {
        rows.extend(invocation::composed_invocation(&weed, n(20, 3)).await);
    }
    if run("requests") {
        rows.extend(cost::requests_per_hour(&weed, if quick { 6 } else { 60 }).await);
    }
    // `--groups N`: one size only (the full run measures 1,000 and 10,000).
    let groups: Option<usize> = std::env::args().skip_while(|a| a != "--groups").nth(1).map(|g| g.parse().expect("--groups N"));
    let sizes = match groups {
        Some(g) => vec![g],
        None if quick => vec![50],
        None => vec![1_000, 10_000],
    };
    let secs = if quick { 5 } else { 60 };
    if run("scale") {
        for &g in &sizes {
            rows.push(on_current_thread(&weed, move |weed| async move { cost::scale(&weed, g, secs).await }));
        }
    }
    // The largest size's PUTs without the election (`--only floor` runs these alone).
    if run("scale") || only.as_deref() == Some("floor") {
        let keys = *sizes.last().unwrap();
        rows.extend(on_current_thread(&weed, move |weed| async move { scale_floor::rows(&weed, keys, secs).await }));
    }

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
