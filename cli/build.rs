//! Link flags for the command's binaries.

use std::path::Path;

/// The functions a running node executes (`s3lect-bench --symbol-order`), placed together.
const SYMBOL_ORDER: &str = "symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={SYMBOL_ORDER}");
    if packed_relocations_load_here() {
        // The PIE's relative relocations as a bitmap (DT_RELR): 0.75 MB of `.rela.dyn` becomes
        // 8 KB, which every start reads and a running node keeps mapped. A node 0.6–1.0 MiB
        // smaller (BENCHMARKS.md), with address-space randomisation kept.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(SYMBOL_ORDER);
    // The bench reports how much of this list the binary it measures has.
    println!("cargo:rustc-env=S3LECT_SYMBOL_ORDER={}", order.display());
    if std::env::var("PROFILE").as_deref() == Ok("release") && links_with_rust_lld() && order.exists() {
        // Linux maps a binary's code in 64 KiB around each page a process touches, so the
        // functions a node runs, scattered through 18 MB of code, kept 6.5 MiB of it resident.
        // Placed together they keep about 2.5 MiB (BENCHMARKS.md). A name the build no longer
        // has (a dependency updated since the list was made) is skipped, not an error.
        println!("cargo:rustc-link-arg-bin=s3lect=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bin=s3lect=-Wl,--no-warn-symbol-ordering");
    }
}

/// True where rustc links with its own lld (the default for x86_64 Linux since Rust 1.90) and
/// the build names no linker of its own: other linkers (GNU ld) do not know the ordering flag.
fn links_with_rust_lld() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    var("TARGET") == "x86_64-unknown-linux-gnu"
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !var("CARGO_ENCODED_RUSTFLAGS").split('\x1f').any(|f| f.contains("linker"))
}

/// True for a native Linux build on glibc 2.36 or newer. Older loaders refuse such a binary (it
/// requires GLIBC_ABI_DT_RELR), and the binary links the glibc this build script runs on.
fn packed_relocations_load_here() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("HOST") == var("TARGET")
        && glibc_version().is_some_and(|v| v >= (2, 36))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn glibc_version() -> Option<(u32, u32)> {
    // SAFETY: glibc returns a pointer to a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) }.to_str().ok()?;
    let mut parts = version.split('.').map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn glibc_version() -> Option<(u32, u32)> {
    None
}
