//! `--on-acquire CMD` / `--on-lose CMD`: hooks that run a shell command with the election's
//! facts in the environment. A non-zero exit of the acquire hook resigns.

use s3lect::{Hook, hook};

pub fn shell_hook(event: &'static str, command: String, lockfile: String) -> Hook {
    hook(move |ev| {
        let (command, lockfile) = (command.clone(), lockfile.clone());
        async move {
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .env("S3LECT_EVENT", event)
                .env("S3LECT_TERM", ev.term.to_string())
                .env("S3LECT_LEADER_ID", &ev.leader_id)
                .env("S3LECT_LOCKFILE", &lockfile)
                // The elector's hook timeout drops this future: the process goes with it.
                .kill_on_drop(true)
                .status()
                .await
                .map_err(|e| format!("{event} hook `{command}` could not start: {e}"))?;
            if status.success() { Ok(()) } else { Err(format!("{event} hook `{command}` failed: {status}")) }
        }
    })
}
