#!/usr/bin/env bash
# Generates seed corpora for every fuzz target from the official spec tests, into
# fuzz/corpus/<target>/ (or the directory given). The spec corpus is found through
# SDAM_SPEC_CORPUS, else ../shared/specifications; its licence forbids copying it into this
# repository, so the seeds are generated here and never committed (fuzz/corpus is ignored).
#
#   fuzz/seed-corpora.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-fuzz/corpus}
# An example, not a binary: it needs the core's `testing` module (a dev-dependency), which
# the published runner and the `sdam` binary are built without.
cargo run --quiet -p sdam-spec-tests --example fuzz_seeds -- "$out"
