#!/usr/bin/env bash
# Runs one libFuzzer target for a while.
#
#   fuzz/run.sh TARGET SECONDS      e.g. fuzz/run.sh op_msg_decode 60
#
# Installs cargo-fuzz if it is missing. Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1
# lets cargo-fuzz pass its nightly-only flags (sanitizers, coverage instrumentation) to it.
# The corpus grows in fuzz/corpus/TARGET (seeded by fuzz/seed-corpora.sh when empty) and
# crashes land in fuzz/artifacts/TARGET; neither is committed.
# Targets: op_msg_decode, monitor_connection, hello_parse, topology_transitions, selection.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 TARGET SECONDS" >&2
    exit 2
fi
target=$1
seconds=$2

cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# An empty corpus starts from seeds made of the spec tests' replies and scenarios.
if [ -z "$(ls -A "fuzz/corpus/$target" 2>/dev/null)" ]; then
    if ! bash fuzz/seed-corpora.sh fuzz/corpus >&2; then
        echo "warning: no seed corpus (spec tests not found); starting from nothing" >&2
    fi
fi
mkdir -p "fuzz/corpus/$target"
RUSTC_BOOTSTRAP=1 exec cargo fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds"
