#!/usr/bin/env bash
# Installs a pinned PyMongo from PyPI into a project-local virtual environment under
# target/pymongo-venv (never system-wide) for the HA benchmark (crates/sdam-habench), and
# prints the environment's python interpreter.
#
#   scripts/install-pymongo.sh                      # install (or reuse) and print the path
#   cargo run --release -p sdam-habench             # finds target/pymongo-venv/bin/python itself
#   SDAM_HABENCH_PYTHON=/path/to/python cargo run --release -p sdam-habench
#
# PYMONGO_VERSION overrides the pin (the figures in BENCHMARKS.md are for the default).
set -euo pipefail

version="${PYMONGO_VERSION:-4.20.1}"
# PyMongo's one dependency, pinned too so the environment is the same everywhere.
dnspython="${DNSPYTHON_VERSION:-2.8.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/pymongo-venv"
python="${PYTHON:-python3}"

command -v "$python" >/dev/null || { echo "install-pymongo.sh: $python is required" >&2; exit 1; }

have() {
  [ -x "$venv/bin/python" ] &&
    [ "$("$venv/bin/python" -c 'import pymongo; print(pymongo.version)' 2>/dev/null)" = "$version" ]
}

if ! have; then
  mkdir -p "$root/target"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "pymongo==$version" "dnspython==$dnspython" >&2
  have || { echo "install-pymongo.sh: pymongo $version did not install into $venv" >&2; exit 1; }
fi
# The C extensions (bson's encoder, PyMongo's message builder) are what users run.
"$venv/bin/python" -c 'import bson, pymongo, sys; sys.exit(0 if bson.has_c() and pymongo.has_c() else 1)' ||
  echo "install-pymongo.sh: warning: PyMongo's C extensions are not available" >&2
echo "$venv/bin/python"
