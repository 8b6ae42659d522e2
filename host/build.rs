//! Provides the election component the library embeds, first of:
//! 1. `S3LECT_GUEST_WASM=path`: a prebuilt `s3lect_guest.wasm` (no wasm toolchain needed);
//! 2. in the repository: built from `guest/` for wasm32-wasip2, by a nested cargo with its own
//!    target dir (no lock contention with the outer build), with rustup's toolchain when it has
//!    the target, else the private one `scripts/setup-wasm.sh` assembles;
//! 3. in a published package: `component/s3lect_guest.wasm`, which `scripts/package.sh` puts
//!    there from step 2.
//!
//! Only this component: the others (cron, s3-storage, the examples) are built by
//! `scripts/build-components.sh`, when a test or a user needs them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    println!("cargo:rerun-if-env-changed=S3LECT_GUEST_WASM");
    println!("cargo:rerun-if-env-changed=S3LECT_WASM_TOOLCHAIN");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("s3lect_guest.wasm");
    if let Ok(prebuilt) = env::var("S3LECT_GUEST_WASM") {
        std::fs::copy(&prebuilt, &out).unwrap_or_else(|e| panic!("S3LECT_GUEST_WASM={prebuilt}: {e}"));
        return publish_hash(&out);
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    if !root.join("guest/Cargo.toml").exists() {
        let bundled = manifest.join("component/s3lect_guest.wasm");
        println!("cargo:rerun-if-changed={}", bundled.display());
        std::fs::copy(&bundled, &out).unwrap_or_else(|e| {
            panic!("{}: {e} (a package without the guest source needs its bundled component, or S3LECT_GUEST_WASM)", bundled.display())
        });
        return publish_hash(&out);
    }
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let cargo = cargo_for_wasm();
    let guest_dir = root.join("target").join("guest");
    build_wasm(&cargo, &root, &guest_dir, &["s3lect-guest"]);
    let built = guest_dir.join(TARGET).join("release").join("s3lect_guest.wasm");
    std::fs::copy(&built, &out).unwrap_or_else(|e| panic!("{}: {e}", built.display()));
    publish_hash(&out);
}

/// The component's hash, for the name of its precompiled copy: computed here, so that a
/// process loading that copy never reads (and keeps resident) the embedded bytes.
fn publish_hash(wasm: &Path) {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    println!("cargo:rustc-env=S3LECT_COMPONENT_HASH={:016x}", h.finish());
}

fn build_wasm(cargo: &Path, root: &Path, target_dir: &Path, packages: &[&str]) {
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", TARGET])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The outer build's settings describe the host target, not ours.
    for (key, _) in env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_") && k != "CARGO_HOME"
            || [
                "RUSTC",
                "RUSTFLAGS",
                "RUSTC_WRAPPER",
                "RUSTC_WORKSPACE_WRAPPER",
                "TARGET",
                "HOST",
                "OUT_DIR",
                "PROFILE",
                "OPT_LEVEL",
                "DEBUG",
                "NUM_JOBS",
                "RUSTDOC",
            ]
            .contains(&k.as_ref())
        {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("could not run cargo to build {packages:?}: {e}"));
    if !status.success() {
        panic!(
            "building {packages:?} for {TARGET} failed (see above). \
             If the {TARGET} target is missing, run scripts/setup-wasm.sh once."
        );
    }
}

/// rustup's cargo if the active toolchain has the target; else the private toolchain.
fn cargo_for_wasm() -> PathBuf {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let has_target = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| has_rlibs(&dir));
    let cargo = PathBuf::from(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    if has_target {
        return cargo;
    }
    let private = env::var_os("S3LECT_WASM_TOOLCHAIN")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/s3lect/wasm-toolchain")));
    match private {
        Some(tc) if tc.join("ready").exists() => tc.join("bin").join("cargo"),
        _ => panic!("the Rust target {TARGET} is not installed: run scripts/setup-wasm.sh once"),
    }
}

fn has_rlibs(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
}
