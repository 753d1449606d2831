#!/usr/bin/env bash
# Clones the public MongoDB specifications repository at the commit the tests are pinned to
# and prints the SDAM_SPEC_CORPUS value to use. Usage: spec-tests/clone-corpus.sh [DIR]
set -euo pipefail
commit=92b3c0b9287bfba1b0ec4084300858d05c654f8c
dir=${1:-"$(dirname "$0")/../target/specifications-repo"}
if [ ! -d "$dir/.git" ]; then
  git clone --quiet https://github.com/mongodb/specifications "$dir"
fi
git -C "$dir" checkout --quiet "$commit"
echo "export SDAM_SPEC_CORPUS=$(cd "$dir/source" && pwd)"
