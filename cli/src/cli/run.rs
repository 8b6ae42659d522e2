//! `s3lect run [-- CMD ARGS…]`: join the election until Ctrl-C or SIGTERM, then resign
//! gracefully; with a command, run it only while this node leads (supervise.rs).

use super::fail;
use super::settings::{Flags, Settings};
use super::shell_hooks::shell_hook;
use super::supervise::{Ended, Supervised};
use clap::Args;
use s3lect::{Elector, HealthServer, HealthServerConfig};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: Flags,
    /// With a command: how long it gets between SIGTERM and SIGKILL when leadership ends
    /// [default: half of renew-deadline − frequent-interval, less 250 ms].
    #[arg(long, env = "S3LECT_CHILD_GRACE_MS")]
    pub child_grace_ms: Option<u64>,
    /// Serve Prometheus metrics over plain HTTP on this address (GET /metrics).
    #[arg(long, env = "S3LECT_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// The command to run while this node leads (after `--`). It gets S3LECT_TERM,
    /// S3LECT_LEADER_ID and S3LECT_LOCKFILE, and is dead before the lease ends.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn with_hooks(mut s: Settings) -> Settings {
    let lockfile = s.elector.lockfile_path.clone();
    let keep = s.hooks_keep_aws_env;
    if let Some(cmd) = s.on_acquire.take() {
        s.elector.on_acquire_leadership = Some(shell_hook("acquire", cmd, lockfile.clone(), keep));
    }
    if let Some(cmd) = s.on_lose.take() {
        s.elector.on_lose_leadership = Some(shell_hook("lose", cmd, lockfile, keep));
    }
    s
}

pub async fn run(args: RunArgs) -> ExitCode {
    let mut s = match args.flags.resolve_for_run() {
        Ok(s) => with_hooks(s),
        Err(e) => return fail(e),
    };
    if let Some(bind) = &args.metrics_bind {
        let mut registry = prometheus_client::registry::Registry::default();
        s.elector.metrics = Some(s3lect::metrics::Metrics::register(&mut registry));
        match super::metrics_server::serve(bind, std::sync::Arc::new(registry)).await {
            Ok(addr) => tracing::info!(%addr, "metrics endpoint listening (HTTP, /metrics)"),
            Err(e) => return fail(e),
        }
    }
    let (renew, frequent) = (s.elector.renew_deadline, s.elector.frequent_interval);
    let supervised = (!args.command.is_empty()).then(|| Supervised {
        command: args.command.clone(),
        grace: args.child_grace_ms.map_or_else(|| Supervised::default_grace(renew, frequent), Duration::from_millis),
        lockfile: s.elector.lockfile_path.clone(),
    });
    if let Some(Err(e)) = supervised.as_ref().map(|sup| sup.check(renew, frequent)) {
        return fail(e);
    }
    let elector = match Elector::new(s.elector.clone(), s.storage.clone()) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let _health = match s.health {
        Some(h) => {
            let server = match HealthServer::new(HealthServerConfig {
                bind_address: h.bind,
                cert_pem: h.cert_pem,
                key_pem: h.key_pem,
                elector: elector.clone(),
            }) {
                Ok(server) => server,
                Err(e) => return fail(e),
            };
            let started = match h.listener {
                Some(listener) => server.start_on(listener),
                None => server.start().await,
            };
            match started {
                Ok(addr) => tracing::info!(
                    %addr,
                    path = %s.elector.peer_health_path,
                    peer_mode = s.elector.peer_mode,
                    "health endpoint listening (HTTPS)"
                ),
                Err(e) => return fail(e),
            }
            Some(server)
        }
        None => None,
    };
    if let Err(e) = elector.start().await {
        return fail(format!("cannot join the election on {}: {e}", s.location));
    }
    tracing::info!(server = %s.elector.server_id, lock = %s.location, "joined the election");
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot watch SIGTERM: {e}")),
    };
    let signalled = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; resigning"),
            _ = term.recv() => tracing::info!("terminated; resigning"),
        }
    };
    let mut code = ExitCode::SUCCESS;
    match &supervised {
        None => signalled.await,
        Some(sup) => match sup.run(&elector, signalled).await {
            Ok(Ended::Stopped) => {}
            // The command's own status, as a shell would report it.
            Ok(Ended::CommandExited(exit)) => {
                let status = exit.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&exit).unwrap_or(0));
                code = ExitCode::from(u8::try_from(status).unwrap_or(1));
            }
            Err(e) => {
                let _ = elector.stop().await;
                return fail(e);
            }
        },
    }
    match elector.stop().await {
        Ok(()) => code,
        Err(e) => fail(format!("left the election, but not cleanly: {e}")),
    }
}
