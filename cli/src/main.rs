//! The `s3lect` command: join an election, step once, inspect or revoke leadership, or run
//! the local demo. Every failure ends in one line naming the problem and a non-zero exit.

mod cli;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "s3lect", version, about = "Leader election on S3 conditional writes, run as a WebAssembly component")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// Log lines on stderr as text, or as one JSON object each (fields: timestamp, level,
    /// fields.message and the event's named fields). The filter is RUST_LOG or S3LECT_LOG.
    #[arg(long, global = true, value_enum, env = "S3LECT_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Join an election and stay in it until Ctrl-C / SIGTERM (then resign gracefully).
    Run(cli::run::RunArgs),
    /// Run one election step and exit: 0 = leader, 3 = follower, 1 = error.
    Step {
        #[command(flatten)]
        flags: cli::settings::Flags,
        /// File carrying the elector's state between invocations. Without it every step
        /// starts afresh (stateless workers: use --server-clock-skew-ms so a follower can
        /// see a leader go).
        #[arg(long)]
        state: Option<std::path::PathBuf>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the lock object and show who leads.
    Status {
        #[command(flatten)]
        flags: cli::settings::Flags,
        #[arg(long)]
        json: bool,
    },
    /// Revoke the leadership of --server-id: its next renewal fails and it steps down; a
    /// follower takes over after one leader timeout.
    Resign(cli::settings::Flags),
    /// Local demo (no cloud account): three electors, the leader killed, the takeover shown.
    Demo(cli::demo::DemoArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    // AWS's credential providers narrate every lookup at info: only their warnings by default,
    // unless the filter names them.
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "aws_config=warn,{}",
        std::env::var("S3LECT_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".into())
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match args.log_format {
        // Colour codes only for a terminal, not for log files and pipes.
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => logs.json().init(),
    }
    // The command keeps the compiled component between runs: a cold `step` then skips
    // compiling it.
    if let Some(home) = std::env::var_os("HOME") {
        s3lect::runtime::cache_compiled_component_in(std::path::PathBuf::from(home).join(".cache/s3lect"));
    }
    // One election per process, all of it short steps and I/O waits: one thread serves it, with
    // no wake-ups between workers and one thread's stacks and malloc arena (BENCHMARKS.md,
    // "What moved the numbers").
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return cli::fail(format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(async {
        match args.command {
            Cmd::Run(args) => cli::run::run(args).await,
            Cmd::Step { flags, state, json } => cli::step::step(flags, state, json).await,
            Cmd::Status { flags, json } => cli::status::status(flags, json).await,
            Cmd::Resign(flags) => cli::status::resign(flags).await,
            Cmd::Demo(args) => cli::demo::demo(args).await,
        }
    })
}
