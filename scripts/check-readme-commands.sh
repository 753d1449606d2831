#!/usr/bin/env bash
# Runs every command README.md shows, the long-running ones with a short duration, and fails
# on any it cannot account for. Called from .ci/run.
#
# The commands are extracted from the README (the lines of ```sh blocks, and inline code spans
# that start with cargo, bash, fuzz/, scripts/ or spec-tests/, after environment variables),
# and each must have an entry in
# the table below saying how CI exercises it:
#
#   run:ARGS       run the command as shown, with ARGS appended (a short duration, a timeout)
#   exit1:ARGS     the same, and exit status 1 is the expected outcome
#   path:CMD       run CMD instead (the README's placeholder replaced by a real argument)
#   path1:CMD      the same, and exit status 1 is the expected outcome
#   covered:WHERE  another step of .ci/run runs it (WHERE says which)
#   manual:WHY     not run by CI, and why (network access)
#
# A README command without an entry, or an entry no longer in the README, fails the check:
# when you add a command to the README, add its entry here.
#
# `../shared/specifications` in a command is replaced by $SDAM_SPEC_CORPUS when that is set.
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=${SDAM_SPEC_CORPUS:-../shared/specifications}
rs_tests="$corpus/server-discovery-and-monitoring/tests/rs"

declare -A how=(
  ["ls ../shared/specifications"]="run:"
  ['eval "$(spec-tests/clone-corpus.sh)"']="manual:clones mongodb/specifications from GitHub; CI reads the corpus beside the workspace or SDAM_SPEC_CORPUS"
  ["bash scripts/install-jongodb.sh"]="covered:the jongodb step of .ci/run"
  ["cargo fmt --check"]="run:"
  ["cargo clippy"]="covered:the clippy step of .ci/run (--workspace --all-targets --all-features -D warnings)"
  ["cargo test --workspace --all-features"]="covered:the last step of .ci/run"
  ["cargo test -p sdam"]="covered:cargo test --workspace --all-features (.ci/run)"
  ["cargo run --example failover"]="run:"
  ["cargo run -p sdam-cli -- demo"]="run: --duration 4 --step 0.5"
  ["cargo run -p sdam-cli -- watch 'mongodb://localhost:27017/?replicaSet=rs0'"]="run: --duration 2"
  ["cargo run -p sdam-cli -- select 'mongodb://a,b,c/?replicaSet=rs0' -r secondary --tags dc:ny,rack:1 --tags '' --max-staleness 120"]="exit1: --timeout 300"
  ["cargo run -p sdam-cli -- replay ../shared/specifications/server-discovery-and-monitoring/tests/rs/primary_becomes_standalone.json"]="run:"
  ["cargo run -p sdam-spec-tests -- path/to/file-or-folder ..."]="path:cargo run -p sdam-spec-tests -- $rs_tests $rs_tests/primary_becomes_standalone.json"
  ["cargo run --release -p sdam-bench"]="run: -- --time-ms 20"
  ["cargo bench -p sdam-bench"]="run: --bench workloads -- --test"
  ["cargo package"]="covered:scripts/check-packages.sh (.ci/run)"
  ["cargo install sdam-cli"]="manual:installs from crates.io; scripts/check-packages.sh builds the sdam-cli package as it would"
  ["RUSTDOCFLAGS='-D warnings' cargo doc --no-deps --workspace --all-features"]="covered:the doc step of .ci/run"
  ["RUSTDOCFLAGS='--cfg docsrs' RUSTC_BOOTSTRAP=1 cargo doc --no-deps --workspace --all-features"]="covered:the doc step of .ci/run"
  # The examples' success path runs against scripted servers in tests/example_client.rs; here
  # the programs themselves run, against a port nobody listens on (exit 1, the explained error).
  ["cargo run -p sdam-tokio --example client -- URI"]="path1:cargo run -p sdam-tokio --example client -- 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300'"
  ["fuzz/run.sh op_msg_decode 600"]="covered:the fuzz step of .ci/run (30 s per target)"
  ["fuzz/run.sh monitor_connection 600"]="covered:the fuzz step of .ci/run (30 s per target)"
  ["cargo run -p sdam --example driver_loop -- 'mongodb://localhost:27017/?replicaSet=rs0'"]="covered:cargo test (.ci/run): driver_loop_example runs it against a scripted replica set through a primary kill"
  ["fuzz/run.sh hello_parse 600"]="covered:the fuzz step of .ci/run (30 s per target)"
  ["fuzz/run.sh topology_transitions 600"]="covered:the fuzz step of .ci/run (30 s per target)"
  ["fuzz/run.sh selection 600"]="covered:the fuzz step of .ci/run (30 s per target)"
  ["RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/corpus/<target>"]="covered:what fuzz/run.sh runs, in the fuzz step of .ci/run"
)

readme_commands() {
  awk '
    /^```sh[ \t]*$/ { inblock = 1; next }
    /^```/ { if (inblock) { inblock = 0; next } }
    inblock {
      line = $0
      sub(/[ \t]+#.*$/, "", line)
      if (line ~ /^[ \t]*#/ || line ~ /^[ \t]*$/) next
      sub(/^[ \t]+/, "", line); sub(/[ \t]+$/, "", line)
      print line
      next
    }
    {
      rest = $0
      while (match(rest, /`[^`]+`/)) {
        span = substr(rest, RSTART + 1, RLENGTH - 2)
        rest = substr(rest, RSTART + RLENGTH)
        if (span ~ /^([A-Z_]+=(\047[^\047]*\047|[^ \047]+) )*(cargo|bash|fuzz\/|scripts\/|spec-tests\/) /) print span
      }
    }
  ' README.md | sort -u
}

mapfile -t commands < <(readme_commands)
status=0
declare -A seen=()
for cmd in "${commands[@]}"; do
  seen["$cmd"]=1
  if [[ -z "${how[$cmd]+x}" ]]; then
    echo "error: README command without an entry in $0: $cmd" >&2
    status=1
  fi
done
for cmd in "${!how[@]}"; do
  if [[ -z "${seen[$cmd]+x}" ]]; then
    echo "error: $0 has an entry for a command the README no longer shows: $cmd" >&2
    status=1
  fi
done
[[ $status -eq 0 ]] || exit 1

mkdir -p target/readme-commands
n=0
for cmd in "${commands[@]}"; do
  entry=${how[$cmd]}
  kind=${entry%%:*}
  arg=${entry#*:}
  expect=0
  case $kind in
    run) line="${cmd//..\/shared\/specifications/$corpus}$arg" ;;
    exit1) line="${cmd//..\/shared\/specifications/$corpus}$arg"; expect=1 ;;
    path) line=$arg ;;
    path1) line=$arg; expect=1 ;;
    covered) echo "covered  $cmd  ($arg)"; continue ;;
    manual) echo "manual   $cmd  ($arg)"; continue ;;
    *) echo "error: bad entry for $cmd: $entry" >&2; exit 1 ;;
  esac
  n=$((n + 1))
  log=target/readme-commands/$n.log
  start=$SECONDS
  set +e
  timeout 900 bash -c "$line" > "$log" 2>&1
  rc=$?
  set -e
  if [[ $rc -ne $expect ]]; then
    tail -n 30 "$log" >&2
    echo "error: README command failed (exit $rc, expected $expect): $line" >&2
    status=1
  else
    echo "ok       $line  ($((SECONDS - start)) s, exit $rc)"
  fi
done
exit $status
