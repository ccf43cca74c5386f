#!/usr/bin/env bash
# Runs every test of the project, from a fresh clone: installs what is missing, builds the whole
# workspace once (release profile: the tests run the code users run), then runs each suite.
# Ends with one summary line "summary: N passed, M failed". Exit code 0 only if all passed.
#
#   scripts/test.sh            all suites
#   scripts/test.sh rust       only the named suites (rust, lint, compat, attack, loadgen, deploy, charts, container)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

./scripts/setup.sh || exit 1
export CARGO_TERM_COLOR=never

passed=0; failed=0; failed_names=()
SELECTED="$*"

# run NAME TIMEOUT_SECONDS COMMAND...: one suite, bounded in time.
run() {
  local name=$1 limit=$2; shift 2
  if [ -n "$SELECTED" ] && [[ " $SELECTED " != *" $name "* ]]; then return 0; fi
  echo "=== [$name] $* (limit ${limit}s)"
  local t0=$SECONDS
  if timeout --kill-after=30 "$limit" "$@"; then
    passed=$((passed + 1)); echo "=== [$name] passed in $((SECONDS - t0))s"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "=== [$name] FAILED after $((SECONDS - t0))s"
  fi
}

run build 4500 cargo build --release --workspace --bins --tests
if [ "$failed" -gt 0 ]; then
  echo "summary: $passed passed, $failed failed"
  exit 1
fi
run lint 1200 bash -c 'cargo fmt --all --check && cargo clippy --release --workspace --all-targets -- -D warnings'
# The Python venv first: the operator's S3 test starts moto_server from it.
./scripts/py-env.sh >/dev/null || echo "python venv setup failed"
run rust 1800 cargo test --release --workspace
[ -x tests/compat/run.sh ] && run compat 1500 tests/compat/run.sh
[ -x tests/attack/run.sh ] && run attack 900 tests/attack/run.sh
[ -x tests/loadgen/smoke.sh ] && run loadgen 600 env QDRANT_BIN="$ROOT/target/release/qdrant" tests/loadgen/smoke.sh
[ -x scripts/check-crd-drift.sh ] && run crd 300 scripts/check-crd-drift.sh
[ -x scripts/check-deploy.sh ] && run deploy 600 scripts/check-deploy.sh
[ -x scripts/check-charts.sh ] && run charts 600 scripts/check-charts.sh
[ -x tests/container/run.sh ] && run container 1800 tests/container/run.sh
[ -x tests/chaos/run.sh ] && run chaos 900 tests/chaos/run.sh

[ "$failed" -gt 0 ] && echo "failed suites: ${failed_names[*]}"
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
