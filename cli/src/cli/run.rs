//! `s3lect run`: join the election until Ctrl-C or SIGTERM, then resign gracefully.

use super::fail;
use super::settings::{Flags, Settings};
use super::shell_hooks::shell_hook;
use s3lect::{Elector, HealthServer, HealthServerConfig};
use std::process::ExitCode;

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

pub async fn run(flags: Flags) -> ExitCode {
    let s = match flags.resolve() {
        Ok(s) => with_hooks(s),
        Err(e) => return fail(e),
    };
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
            match server.start().await {
                Ok(addr) => tracing::info!(%addr, path = %s.elector.peer_health_path, "health endpoint listening (HTTPS)"),
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
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; resigning"),
        _ = term.recv() => tracing::info!("terminated; resigning"),
    }
    match elector.stop().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("left the election, but not cleanly: {e}")),
    }
}
