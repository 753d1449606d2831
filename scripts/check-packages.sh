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
