//! Link flags for the command's binaries.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if packed_relocations_load_here() {
        // The PIE's relative relocations as a bitmap (DT_RELR): 0.75 MB of `.rela.dyn` becomes
        // 8 KB, which every start reads and a running node keeps mapped. A node 0.6–1.0 MiB
        // smaller (BENCHMARKS.md), with address-space randomisation kept.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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
