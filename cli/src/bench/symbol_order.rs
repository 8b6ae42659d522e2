//! `s3lect-bench --symbol-order FILE`: the functions a running `s3lect` executes, for the
//! linker to place together (cli/symbol-order.txt, passed by cli/build.rs). Linux maps a
//! binary's code in 64 KiB around each page a process touches (fault-around), so a few
//! thousand functions scattered through 18 MB of code kept most of it resident; together, they
//! keep about themselves (BENCHMARKS.md, "What moved the numbers").
//!
//! Which functions run is read from valgrind's callgrind, over real nodes on SeaweedFS, over
//! HTTP and HTTPS: peer mode and S3 polling, leaders renewing and followers watching, a
//! graceful handover, a crash takeover, a resignation, then `step` and `status`. Run it on the
//! release build itself, whose profile keeps the command's symbol table for this: a build of
//! another profile names the same functions differently (cargo hashes the profile into them).

use super::cluster_runs::SHORT;
use s3lect_cli::cluster::{Node, command_via, server_flags};
use s3lect_cli::local_s3::{LocalS3, ServerTls};
use s3lect_cli::wait;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Long enough for a node under valgrind (about 50× slower) to start, or to take over.
const LIMIT: Duration = Duration::from_secs(120);

/// How the profiles of one-shot commands (`step`, `status`) begin, and no running node's.
const ONE_SHOT: &str = "once-";

/// Renewals and probes in steady state, at the short timings (one a second).
const STEADY: Duration = Duration::from_secs(5);

/// Profiles the nodes and writes the names of the functions they ran, one a line, to `out`.
/// Returns how many.
pub async fn write(bin: &Path, weed: &Path, out: &Path) -> Result<usize, String> {
    Command::new("valgrind").arg("--version").output().map_err(|e| format!("valgrind is needed (apt install valgrind): {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let http = LocalS3::start(weed, "symbol-order").await?;
    run_nodes(bin, &http, None, dir.path()).await?;
    drop(http);
    let pki = s3lect::tls::generate_pki(&["127.0.0.1"]).map_err(|e| e.to_string())?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_cert_pem).map_err(|e| e.to_string())?;
    let tls = ServerTls { cert_pem: pki.server_cert_pem, key_pem: pki.server_key_pem, ca_pem: pki.ca_cert_pem };
    let https = LocalS3::start_https(weed, "symbol-order", &tls).await?;
    run_nodes(bin, &https, Some(&ca), dir.path()).await?;
    let names = functions_run(bin, dir.path())?;
    // Fewer than this means no symbols were read: a stripped binary.
    if names.len() < 500 {
        return Err(format!(
            "only {} named functions of {} ran: it has no symbol table (the release profile keeps it; strip = \"debuginfo\")",
            names.len(),
            bin.display()
        ));
    }
    let mut text = String::from(
        "# The functions a running `s3lect` executes, placed together by the linker (cli/build.rs) in\n\
         # this order: what more of the running nodes ran first, what only `step` and `status` ran last.\n\
         # Made by `s3lect-bench --symbol-order` (BENCHMARKS.md): make it again after updating\n\
         # dependencies, whose functions' names then change and are skipped.\n",
    );
    for n in &names {
        text.push_str(n);
        text.push('\n');
    }
    std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(names.len())
}

/// How many of the listed functions `bin` has, of how many listed. A list made from another
/// build (dependencies updated since) names functions it no longer has; those stay scattered.
pub fn found_in(bin: &Path) -> Result<(usize, usize), String> {
    use object::{Object, ObjectSymbol};
    // The file cli/build.rs hands the linker.
    let listed = env!("S3LECT_SYMBOL_ORDER");
    let list = std::fs::read_to_string(listed).map_err(|e| format!("{listed}: {e}"))?;
    let names: BTreeSet<&str> = list.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let data = std::fs::read(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", bin.display()))?;
    // A name can be on more than one local symbol: count names, not symbols.
    let found: BTreeSet<&str> = file.symbols().filter_map(|s| s.name().ok()).filter(|n| names.contains(n)).collect();
    Ok((found.len(), names.len()))
}

/// `s3lect SUB` under callgrind, its profile written into `dir` as `ID.callgrind`.
fn profiled(bin: &Path, server: &LocalS3, ca: Option<&Path>, dir: &Path, sub: &str, id: &str, lock: &str) -> Command {
    let mut valgrind = Command::new("valgrind");
    valgrind
        .args(["--tool=callgrind", "--demangle=no", "--dump-instr=no", "--quiet"])
        .arg(format!("--callgrind-out-file={}", dir.join(format!("{id}.callgrind")).display()))
        .arg(bin);
    let mut cmd = command_via(valgrind, &server_flags(server), sub, id, lock);
    if let Some(ca) = ca {
        cmd.env("AWS_CA_BUNDLE", ca);
    }
    cmd
}

async fn run_nodes(bin: &Path, server: &LocalS3, ca: Option<&Path>, dir: &Path) -> Result<(), String> {
    let scheme = if ca.is_some() { "https" } else { "http" };
    let start = |mode: &str, i: u32, lock: &str| -> Result<Node, String> {
        let id = format!("{scheme}-{mode}-{i}");
        let mut args = SHORT.to_vec();
        if mode == "polling" {
            args.push("--no-peer");
        }
        Node::spawn(profiled(bin, server, ca, dir, "run", &id, lock), &id, dir, &args).map_err(|e| format!("{id}: {e}"))
    };
    let (peer_lock, polling_lock) = (format!("order/{scheme}-peer.json"), format!("order/{scheme}-polling.json"));
    let peer_leader = start("peer", 0, &peer_lock)?;
    let mut polling_leader = start("polling", 0, &polling_lock)?;
    acquired(&peer_leader).await?;
    acquired(&polling_leader).await?;
    let peer_follower = start("peer", 1, &peer_lock)?;
    let polling_follower = start("polling", 1, &polling_lock)?;
    for n in [&peer_follower, &polling_follower] {
        logged(n, "leader observed").await?;
    }
    tokio::time::sleep(STEADY).await;
    // Peer mode's leader leaves gracefully, S3 polling's dies (its profile with it): each
    // follower takes over.
    peer_leader.signal(libc::SIGTERM);
    polling_leader.kill9();
    for n in [&peer_follower, &polling_follower] {
        acquired(n).await?;
    }
    tokio::time::sleep(STEADY).await;
    // A resignation; valgrind writes each profile as its process exits.
    for mut n in [peer_leader, peer_follower, polling_follower] {
        n.signal(libc::SIGTERM);
        wait::until(LIMIT, Duration::from_millis(100), || std::future::ready(n.child.try_wait().ok().flatten()))
            .await
            .ok_or_else(|| format!("{} did not exit after SIGTERM", n.id))?;
    }
    for sub in ["step", "status"] {
        let id = format!("{ONE_SHOT}{scheme}-{sub}");
        let done = profiled(bin, server, ca, dir, sub, &id, &peer_lock).output().map_err(|e| e.to_string())?;
        // `step` exits 3 as a follower; anything else is a failure.
        if !matches!(done.status.code(), Some(0 | 3)) {
            return Err(format!("{id}: {}", String::from_utf8_lossy(&done.stderr)));
        }
    }
    Ok(())
}

/// Waits until `node`'s acquire hook has run.
async fn acquired(node: &Node) -> Result<(), String> {
    wait::until(LIMIT, Duration::from_millis(100), || {
        std::future::ready(node.transitions().iter().any(|(e, ..)| e == "acquire").then_some(()))
    })
    .await
    .ok_or_else(|| format!("{} did not become leader in {LIMIT:?}: {}", node.id, node.stderr()))
}

async fn logged(node: &Node, line: &str) -> Result<(), String> {
    wait::until(LIMIT, Duration::from_millis(100), || std::future::ready(node.stderr().contains(line).then_some(())))
        .await
        .ok_or_else(|| format!("{} did not log {line:?} in {LIMIT:?}: {}", node.id, node.stderr()))
}

/// The names of the functions of `bin` that ran, from every callgrind profile in `dir`, in the
/// order the linker is to place them: first what more of the running nodes (`run`) ran, and
/// what the same nodes ran side by side, so that each kind of node touches one stretch of code
/// with as little as possible of what only others run; last what only `step` and `status` ran.
fn functions_run(bin: &Path, dir: &Path) -> Result<Vec<String>, String> {
    let own = bin.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let mut profiles: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "callgrind"))
        .collect();
    profiles.sort();
    let mut ran = Vec::new();
    for p in &profiles {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        // Profiles are named `ID.callgrind` (`profiled`).
        let node = !p.file_stem().and_then(|s| s.to_str()).is_some_and(|id| id.starts_with(ONE_SHOT));
        ran.push((node, functions_in(&text, &own)));
    }
    Ok(placed(&ran))
}

/// Each function once, ordered by how many of the nodes' profiles ran it (most first), then by
/// which profiles did (the same ones together), then by name.
fn placed(ran: &[(bool, BTreeSet<String>)]) -> Vec<String> {
    let mut by: HashMap<&str, (usize, Vec<bool>)> = HashMap::new();
    for (i, (node, names)) in ran.iter().enumerate() {
        for n in names {
            let (nodes, which) = by.entry(n.as_str()).or_insert_with(|| (0, vec![false; ran.len()]));
            *nodes += usize::from(*node);
            which[i] = true;
        }
    }
    let mut order: Vec<_> = by.into_iter().collect();
    order.sort_by(|(a, (an, aw)), (b, (bn, bw))| bn.cmp(an).then_with(|| bw.cmp(aw)).then_with(|| a.cmp(b)));
    order.into_iter().map(|(n, _)| n.to_string()).collect()
}

/// The functions of the object named `own` in one callgrind profile. The format names an
/// object or function once, as `ob=(N) name`, and then by `(N)` alone; a function's lines
/// follow the `ob=` it belongs to.
fn functions_in(profile: &str, own: &str) -> BTreeSet<String> {
    let (mut objects, mut functions) = (HashMap::new(), HashMap::new());
    let mut in_own = false;
    let mut names = BTreeSet::new();
    for line in profile.lines() {
        let Some((key, rest)) = line.split_once('=') else { continue };
        let Some(rest) = rest.strip_prefix('(') else { continue };
        let (id, name) = match rest.split_once(") ") {
            Some((id, name)) => (id, Some(name)),
            None => (rest.trim_end_matches(')'), None),
        };
        // Objects (`ob`, and callees' `cob`) and functions (`fn`, `cfn`) share one numbering
        // each; only `ob=` and `fn=` say where the following lines belong.
        let table = match key {
            "ob" | "cob" => &mut objects,
            "fn" | "cfn" => &mut functions,
            _ => continue,
        };
        if let Some(name) = name {
            table.insert(id.to_string(), name.to_string());
        }
        if key == "ob" {
            in_own = objects.get(id).is_some_and(|o| Path::new(o).file_name().is_some_and(|f| f == own));
        }
        // Code without a symbol is named by its address, which no build shares, and valgrind
        // names the code before `main` "(below main)".
        if key == "fn"
            && let Some(f) = functions.get(id).filter(|f| in_own && !f.starts_with("0x") && !f.starts_with('('))
        {
            // callgrind names a function's recursion level or context after a quote (`f'2`);
            // the symbol is the name before it.
            names.insert(f.split_once('\'').map_or(f.as_str(), |(name, _)| name).to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::{functions_in, placed};
    use std::collections::BTreeSet;

    /// Names given once and then by number, in and out of the binary's own object.
    #[test]
    fn functions_are_read_by_name_and_by_number_for_the_binary_only() {
        let profile = "ob=(1) /usr/lib/libc.so.6\nfn=(1) memcpy\ncob=(2) /x/s3lect\ncfn=(2) _ZN4main17h0E\ncalls=1 0\n\
                       ob=(2)\nfn=(2)\nfn=(3) 0x00000000004d1000\nfn=(6) (below main)\nfn=(4) _ZN3run17h1E\nfn=(7) _ZN3run17h1E'2\nob=(1)\nfn=(5) free\n";
        let names: Vec<String> = functions_in(profile, "s3lect").into_iter().collect();
        assert_eq!(names, ["_ZN3run17h1E", "_ZN4main17h0E"]);
    }

    /// What every node ran comes first, what the same nodes ran sits together, and what only
    /// the one-shot commands ran comes last; each name once.
    #[test]
    fn functions_are_placed_by_the_nodes_that_ran_them() {
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        let ran = [
            (true, set(&["all", "leaders", "peer"])),
            (true, set(&["all", "followers", "peer"])),
            (true, set(&["all", "leaders"])),
            (true, set(&["all", "followers"])),
            (false, set(&["all", "step"])),
        ];
        assert_eq!(placed(&ran), ["all", "peer", "leaders", "followers", "step"]);
    }
}
