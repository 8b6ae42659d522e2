#!/usr/bin/env bash
# Makes a wasm32-wasip2 Rust toolchain available for building the s3lect guest component.
#
# 1. If rustup already has the target (or can download it), that is used: nothing else happens.
# 2. Otherwise a private toolchain is assembled from Debian packages into a folder this script owns
#    ($S3LECT_WASM_TOOLCHAIN, default ~/.cache/s3lect/wasm-toolchain): rustc-web/cargo-web plus the
#    rust-web-src of the *same* version (std is built from it once), and wasi-libc's wasm32-wasip2
#    sysroot from Debian trixie, fetched through a private apt configuration. rustup's toolchains
#    and the system's apt sources are never modified.
# Idempotent: a finished toolchain is recognised by its stamp file and the script returns at once.
set -euo pipefail

TC="${S3LECT_WASM_TOOLCHAIN:-$HOME/.cache/s3lect/wasm-toolchain}"
TARGET=wasm32-wasip2
step() { printf 's3lect setup: %s\n' "$*"; }
die() { printf 's3lect setup: error: %s\n' "$*" >&2; exit 1; }

# S3LECT_WASM_PRIVATE=1 skips rustup and always uses the private Debian-built toolchain.
PRIVATE_ONLY="${S3LECT_WASM_PRIVATE:-0}"
if [ "$PRIVATE_ONLY" != 1 ] && command -v rustup >/dev/null 2>&1; then
  if rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    step "rustup already has $TARGET; nothing to do"; exit 0
  fi
fi
if [ -f "$TC/ready" ] && [ "$(cat "$TC/ready")" = "$TARGET" ]; then
  step "private toolchain ready at $TC"; exit 0
fi
if [ "$PRIVATE_ONLY" != 1 ] && command -v rustup >/dev/null 2>&1; then
  step "trying 'rustup target add $TARGET' (60 s limit)"
  if timeout 60 rustup target add "$TARGET" >/dev/null 2>&1; then
    step "rustup installed $TARGET"; exit 0
  fi
  step "rustup could not install $TARGET; assembling a private toolchain from Debian packages"
fi

command -v apt-get >/dev/null 2>&1 || die "no rustup target and no apt-get: install the $TARGET target for your Rust toolchain by hand"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

# libllvm22 backs rustc-web, lld-22 provides wasm-ld, the rest are what cargo-web links against.
APT_PKGS=(libllvm22 lld-22 libgit2-1.5 libcurl4 libssh2-1 libsqlite3-0)
step "installing from apt: ${APT_PKGS[*]}"
if ! dpkg -s "${APT_PKGS[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
  $SUDO apt-get install -y -qq "${APT_PKGS[@]}" >/dev/null || die "apt-get install ${APT_PKGS[*]} failed"
fi
WASM_LD=$(command -v wasm-ld-22 || true)
[ -n "$WASM_LD" ] || WASM_LD=/usr/lib/llvm-22/bin/wasm-ld
[ -x "$WASM_LD" ] || die "lld-22 is installed but wasm-ld was not found at $WASM_LD"

DL="$TC/downloads"; ROOT="$TC/root"
rm -rf "$ROOT" "$TC/ready"; mkdir -p "$DL" "$ROOT" "$TC/bin"

VER=$(apt-cache policy rustc-web | awk '/Candidate:/ {print $2}')
[ -n "$VER" ] && [ "$VER" != "(none)" ] || die "apt has no rustc-web package (Debian bookworm-security carries it)"
step "downloading rustc-web, cargo-web, rust-web-src, rust-web-llvm $VER (same version for compiler and std source)"
( cd "$DL" && apt-get download -qq "rustc-web=$VER" "cargo-web=$VER" "rust-web-src=$VER" \
    "rust-web-llvm=$VER" "libstd-rust-web-dev=$VER" "libstd-rust-web-${VER%%.0+*}=$VER" 2>/dev/null ) \
  || die "apt-get download of the rust-web packages $VER failed"

step "downloading wasi-libc (wasm32-wasip2 sysroot) from Debian trixie via a private apt config"
APT="$TC/apt"; mkdir -p "$APT/lists/partial" "$APT/cache/partial"
echo "deb http://deb.debian.org/debian trixie main" > "$APT/sources.list"
APTOPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=-"
         -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "APT::Architecture=amd64")
apt-get "${APTOPTS[@]}" update -qq >/dev/null 2>&1 || die "could not read Debian trixie's package list"
( cd "$DL" && apt-get "${APTOPTS[@]}" download -qq wasi-libc 2>/dev/null ) || die "apt-get download wasi-libc failed"

step "unpacking into $ROOT"
for deb in "$DL"/*.deb; do dpkg -x "$deb" "$ROOT"; done

HOSTBIN="$ROOT/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin"
# Debian's links point at /usr/bin relative paths that do not exist in a private root: use lld-22.
mkdir -p "$HOSTBIN/gcc-ld"
ln -sf "$WASM_LD" "$HOSTBIN/gcc-ld/wasm-ld"
ln -sf "$WASM_LD" "$TC/bin/wasm-ld"
ln -sf "$(dirname "$WASM_LD")/lld" "$HOSTBIN/gcc-ld/ld.lld" 2>/dev/null || true
SRC=$(ls -d "$ROOT"/usr/src/rustc-*/ | head -1); SRC=${SRC%/}
ln -sfn "$SRC" "$ROOT/usr/lib/rustlib/src/rust"

# wasi-libc's crt and libc go where rustc looks for a self-contained wasm sysroot.
SELF="$ROOT/usr/lib/rustlib/$TARGET/lib/self-contained"; mkdir -p "$SELF"
LIBC_DIR=$(dirname "$(find "$ROOT/usr" -path "*$TARGET*" -name libc.a | head -1)")
[ -f "$LIBC_DIR/libc.a" ] || die "wasi-libc package has no $TARGET libc.a"
cp -a "$LIBC_DIR"/. "$SELF"/

cat > "$TC/bin/rustc" <<WRAP
#!/bin/sh
# Debian's rustc, unpacked privately: point it at its driver library and its own sysroot.
export LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PATH="$TC/bin:\$PATH"
exec "$ROOT/usr/bin/rustc" --sysroot "$ROOT/usr" "\$@"
WRAP
cat > "$TC/bin/cargo" <<WRAP
#!/bin/sh
export RUSTC="$TC/bin/rustc"
export LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PATH="$TC/bin:\$PATH"
exec "$ROOT/usr/bin/cargo" "\$@"
WRAP
chmod +x "$TC/bin/rustc" "$TC/bin/cargo"
"$TC/bin/rustc" --version >/dev/null || die "the unpacked rustc does not run"

step "building std for $TARGET once with -Zbuild-std (about a minute)"
B="$TC/std-build"; rm -rf "$B"; mkdir -p "$B/src"
printf '[package]\nname = "stdbuild"\nversion = "0.0.0"\nedition = "2021"\n[lib]\ncrate-type = ["rlib"]\n[workspace]\n' > "$B/Cargo.toml"
echo '' > "$B/src/lib.rs"
( cd "$B" && RUSTC_BOOTSTRAP=1 "$TC/bin/cargo" build -q --release \
    --target "$TARGET" -Zbuild-std=std,panic_abort > "$TC/std-build.log" 2>&1 ) \
  || { tail -20 "$TC/std-build.log" >&2; die "building std for $TARGET failed (log: $TC/std-build.log)"; }
LIB="$ROOT/usr/lib/rustlib/$TARGET/lib"; mkdir -p "$LIB"
find "$B/target/$TARGET/release/deps" -name 'lib*.rlib' ! -name 'libstdbuild*' -exec cp {} "$LIB"/ \;
rm -rf "$B"

step "checking: a hello-world component for $TARGET"
H="$TC/check"; rm -rf "$H"; mkdir -p "$H"; echo 'fn main() { println!("ok"); }' > "$H/main.rs"
"$TC/bin/rustc" --target "$TARGET" -O -o "$H/main.wasm" "$H/main.rs" > "$TC/check.log" 2>&1 \
  || { cat "$TC/check.log" >&2; die "the private toolchain cannot link a $TARGET program"; }
rm -rf "$H" "$APT"
echo "$TARGET" > "$TC/ready"
step "private toolchain ready at $TC (cargo: $TC/bin/cargo)"
