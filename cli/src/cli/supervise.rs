//! `s3lect run -- CMD [ARGS…]`: CMD runs only while this node leads. It starts after the acquire
//! hook succeeded; when leadership ends — or, before that, when the lease is about to run out
//! without a renewal — it gets SIGTERM, then SIGKILL, so that it is dead *before* the lease
//! ends and so before any other node can lead. If `s3lect` dies, the kernel kills CMD
//! (parent-death signal); CMD runs in its own process group, which is what is signalled. If CMD
//! exits on its own, `s3lect` resigns and exits with CMD's status (like `consul lock`).

use s3lect::Elector;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Time allowed, after SIGKILL, for the kernel to end the group and for us to reap CMD.
pub const KILL_SLACK: Duration = Duration::from_millis(250);

/// How CMD is run and stopped.
pub struct Supervised {
    pub command: Vec<String>,
    /// SIGTERM → SIGKILL.
    pub grace: Duration,
    pub lockfile: String,
}

/// Why supervision ended.
pub enum Ended {
    /// The command exited on its own while this node led.
    CommandExited(ExitStatus),
    /// The caller's stop signal arrived.
    Stopped,
}

impl Supervised {
    /// The grace period by default: half of what the timings leave between a renewal and the
    /// lease's end, less the kill slack — so a healthy leader's command is never stopped
    /// between renewals, and a stopped one is gone before the lease ends.
    pub fn default_grace(renew_deadline: Duration, frequent_interval: Duration) -> Duration {
        (renew_deadline.saturating_sub(frequent_interval) / 2).saturating_sub(KILL_SLACK)
    }

    /// The grace period must leave room: SIGTERM goes out `grace + KILL_SLACK` before the
    /// lease's end, which must come after the next renewal would have extended it.
    pub fn check(&self, renew_deadline: Duration, frequent_interval: Duration) -> Result<(), String> {
        let room = renew_deadline.saturating_sub(frequent_interval);
        if self.grace + KILL_SLACK >= room {
            return Err(format!(
                "--child-grace-ms ({} ms) plus {} ms to reap must be below renew-deadline minus frequent-interval ({} ms): \
                 the command would be stopped between two healthy renewals",
                self.grace.as_millis(),
                KILL_SLACK.as_millis(),
                room.as_millis()
            ));
        }
        Ok(())
    }

    /// Runs CMD each time this node leads, until it exits on its own or `stop` resolves.
    pub async fn run(&self, elector: &Elector, stop: impl std::future::Future<Output = ()>) -> Result<Ended, String> {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                r = elector.wait_for_leadership() => r.map_err(|e| e.to_string())?,
                _ = &mut stop => return Ok(Ended::Stopped),
            }
            let status = elector.status();
            let mut child = self.spawn(status.term, &status.leader_id)?;
            tracing::info!(pid = child.id(), term = status.term, "leading: command started");
            tokio::select! {
                _ = elector.leadership_ending(self.grace + KILL_SLACK) => {
                    let how = self.stop(&mut child).await;
                    tracing::warn!(term = status.term, how, "leadership ending: command stopped");
                }
                exit = child.wait() => {
                    let exit = exit.map_err(|e| format!("waiting for the command: {e}"))?;
                    tracing::info!(%exit, "the command exited; resigning");
                    return Ok(Ended::CommandExited(exit));
                }
                _ = &mut stop => {
                    let how = self.stop(&mut child).await;
                    tracing::info!(how, "stopping: command stopped");
                    return Ok(Ended::Stopped);
                }
            }
        }
    }

    fn spawn(&self, term: u64, leader_id: &str) -> Result<Child, String> {
        let mut cmd = Command::new(&self.command[0]);
        cmd.args(&self.command[1..])
            .env("S3LECT_TERM", term.to_string())
            .env("S3LECT_LEADER_ID", leader_id)
            .env("S3LECT_LOCKFILE", &self.lockfile)
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe, and the closure touches nothing else.
        unsafe {
            cmd.pre_exec(|| {
                // If s3lect dies (even by SIGKILL), the kernel kills the command.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().map_err(|e| format!("cannot start the command {:?}: {e}", self.command[0]))
    }

    /// SIGTERM to the command's group; SIGKILL after the grace period. Returns how it ended.
    async fn stop(&self, child: &mut Child) -> &'static str {
        let Some(pid) = child.id() else { return "already gone" };
        let group = -(pid as libc::pid_t);
        // SAFETY: kill(2) on the group we created for the command.
        unsafe { libc::kill(group, libc::SIGTERM) };
        if tokio::time::timeout(self.grace, child.wait()).await.is_ok() {
            // The command is reaped; end what it left in its group too.
            unsafe { libc::kill(group, libc::SIGKILL) };
            return "SIGTERM";
        }
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = child.wait().await;
        "SIGKILL after the grace period"
    }
}
