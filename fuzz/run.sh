#!/usr/bin/env bash
# Runs one libFuzzer target for a while.
#
#   fuzz/run.sh TARGET SECONDS      e.g. fuzz/run.sh op_msg_decode 60
#
# Installs cargo-fuzz if it is missing. Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1
# lets cargo-fuzz pass its nightly-only flags (sanitizers, coverage instrumentation) to it.
# The corpus grows in fuzz/corpus/TARGET and crashes land in fuzz/artifacts/TARGET; neither
# is committed.
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

mkdir -p "fuzz/corpus/$target"
RUSTC_BOOTSTRAP=1 exec cargo fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds"
