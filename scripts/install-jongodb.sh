#!/usr/bin/env bash
# Installs jongodb (a MongoDB-compatible server, shipped as a native binary inside an npm
# package) under target/jongodb for the adapters' interop tests, and prints the binary's path.
#
#   scripts/install-jongodb.sh            # install (or reuse) and print the path
#   SDAM_JONGODB_BIN=$(scripts/install-jongodb.sh) cargo test -p sdam-tokio --test integration jongodb
#
# The tests find the binary without the variable too: they look at the path printed here.
set -euo pipefail

package="@jongodb/memory-server-bin-linux-x64-gnu"
version="${JONGODB_VERSION:-0.1.6}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/target/jongodb"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-jongodb.sh: $package exists for Linux x86-64 only, not $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "install-jongodb.sh: npm is required" >&2; exit 1; }

find_bin() {
  local dir="$prefix/node_modules/$package"
  [ -f "$dir/package.json" ] || return 1
  # The package's "jongodb" field names the binary and its SHA-256.
  local rel sum
  rel="$(node -e 'const j=require(process.argv[1]).jongodb||{};console.log(j.binary||"")' "$dir/package.json")"
  sum="$(node -e 'const j=require(process.argv[1]).jongodb||{};console.log(j.sha256||"")' "$dir/package.json")"
  [ -n "$rel" ] && [ -f "$dir/$rel" ] || return 1
  if [ -n "$sum" ] && command -v sha256sum >/dev/null; then
    echo "$sum  $dir/$rel" | sha256sum --check --status || { echo "install-jongodb.sh: $dir/$rel does not match its SHA-256" >&2; return 1; }
  fi
  echo "$dir/$rel"
}

if ! bin="$(find_bin)"; then
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] || echo '{"name":"sdam-jongodb","private":true}' > "$prefix/package.json"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$package@$version" >&2
  bin="$(find_bin)" || { echo "install-jongodb.sh: installed $package but found no jongodb binary in $prefix" >&2; exit 1; }
fi
chmod +x "$bin"
echo "$bin"
