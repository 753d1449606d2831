#!/usr/bin/env bash
# What is shipped: the `sdam` binary is built without the core's doc-hidden `testing` feature.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "-- the sdam binary's build of the core has no \`testing\` feature"
# `cargo tree -e features -i sdam` lists the core's features as `cargo build -p sdam-cli` (and
# `cargo install sdam-cli`) resolves them.
features=$(cargo tree --locked -p sdam-cli -e normal,features -i sdam --prefix none)
if grep -q 'sdam feature "testing"' <<<"$features"; then
  echo "error: \`cargo build -p sdam-cli\` builds the core with its \`testing\` feature:" >&2
  cargo tree --locked -p sdam-cli -e normal,features -i sdam >&2
  exit 1
fi

# Every published crate, in dependency order. `cargo package` with several `-p` packages them
# together: each is verified (built from its .crate file) against the others through cargo's
# local registry overlay (target/package/tmp-registry), so the unpublished versions resolve
# without a network publish. `--workspace` would also package the unpublished crates.
published=(sdam sdam-wire sdam-adapter sdam-testserver sdam-tokio sdam-std sdam-spec-tests sdam-cli)
echo "-- cargo package: ${published[*]}"
args=()
for p in "${published[@]}"; do args+=(-p "$p"); done
# Cargo unpacks the overlay's crates under $CARGO_HOME/registry/src/-<hash>/ (local
# registries; crates.io's sources are under index.crates.io-*) and reuses an unpacked copy of
# the same name and version, so a second run would verify against the sources of the first.
# Remove those copies first.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
for p in "${published[@]}"; do
  rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"$p-$version"
done
cargo package --locked "${args[@]}"

echo "-- every other crate is publish = false, and no published crate depends on one"
unpublished=$(cargo metadata --locked --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"] if p["publish"] == []))')
for p in "${published[@]}"; do
  for u in $unpublished; do
    if [[ $p == "$u" ]]; then echo "error: $p is publish = false" >&2; exit 1; fi
  done
done
for p in "${published[@]}"; do
  for u in $unpublished; do
    if cargo tree --locked -p "$p" -e normal,build --prefix none | grep -q "^$u v"; then
      echo "error: the published $p depends on the unpublished $u" >&2
      exit 1
    fi
  done
done
echo "unpublished: $unpublished"

# The MSRV: clippy's incompatible_msrv lint (denied in the workspace lints) rejects standard
# library APIs stabilised after `rust-version`. It runs in the clippy step; here a probe crate
# with the workspace's rust-version and an API of Rust 1.89 shows that the lint fires.
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
echo "-- the MSRV lint is armed (rust-version $msrv)"
probe=target/msrv-probe
mkdir -p "$probe/src"
cat > "$probe/Cargo.toml" <<TOML
[package]
name = "msrv-probe"
version = "0.0.0"
edition = "2021"
rust-version = "$msrv"
publish = false
[workspace]
TOML
cat > "$probe/src/lib.rs" <<'RS'
//! Uses `File::lock`, stable since Rust 1.89.
pub fn lock(file: &std::fs::File) -> std::io::Result<()> {
    file.lock()
}
RS
if out=$(cd "$probe" && cargo clippy --quiet -- -D clippy::incompatible_msrv 2>&1); then
  echo "error: clippy accepted an API newer than rust-version $msrv: the MSRV is not checked" >&2
  exit 1
fi
grep -q "incompatible_msrv" <<<"$out" || { echo "$out" >&2; echo "error: the probe failed for another reason" >&2; exit 1; }
echo "clippy rejects File::lock (1.89) under rust-version $msrv"
