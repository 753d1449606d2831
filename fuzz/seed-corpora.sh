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
cargo run --quiet -p sdam-spec-tests --bin fuzz_seeds -- "$out"
