//! `--on-acquire CMD` / `--on-lose CMD`: hooks that run a shell command with the election's
//! facts in the environment. A non-zero exit of the acquire hook resigns.
//!
//! Each hook runs in a process group of its own: when it overruns the hook timeout, the whole
//! group is killed — a background child it left behind included. The AWS credential variables
//! are not passed on unless asked for (`--hooks-keep-aws-env`): a hook needs the election's
//! facts, not the elector's keys.

use s3lect::{Hook, hook};

/// The variables that carry AWS credentials.
const AWS_SECRETS: [&str; 4] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

pub fn shell_hook(event: &'static str, command: String, lockfile: String, keep_aws_env: bool) -> Hook {
    hook(move |ev| {
        let (command, lockfile) = (command.clone(), lockfile.clone());
        async move {
            let mut cmd = tokio::process::Command::new("sh");
            cmd.arg("-c")
                .arg(&command)
                .env("S3LECT_EVENT", event)
                .env("S3LECT_TERM", ev.term.to_string())
                .env("S3LECT_LEADER_ID", &ev.leader_id)
                .env("S3LECT_LOCKFILE", &lockfile)
                .process_group(0)
                .kill_on_drop(true);
            if !keep_aws_env {
                for k in AWS_SECRETS {
                    cmd.env_remove(k);
                }
            }
            let mut child = cmd.spawn().map_err(|e| format!("{event} hook `{command}` could not start: {e}"))?;
            // The elector's hook timeout drops this future: the guard then kills the group.
            let group = GroupGuard(child.id());
            let status = child.wait().await.map_err(|e| format!("{event} hook `{command}`: {e}"))?;
            std::mem::forget(group);
            if status.success() { Ok(()) } else { Err(format!("{event} hook `{command}` failed: {status}").into()) }
        }
    })
}

/// Kills a hook's process group when dropped before the hook finished.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: killpg on the group our own child leads (its pid is the group id).
            unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}
