#!/usr/bin/env bash
# Runs the attack suite against our binary: oversized and deeply nested JSON, slow clients
# (slowloris heads, stalled and trickled bodies), malformed protobuf, path traversal in snapshot
# names and locations, header injection, and a schemathesis fuzz run over every REST operation of
# Qdrant's OpenAPI spec (rebuilt from the official client). Prints the fuzz figures.
#   tests/attack/run.sh [extra pytest args]      e.g.  -k fuzz  |  -k "not fuzz"
# Env: QDRANT_BIN (default <repo>/target/release/qdrant), ATTACK_FUZZ_EXAMPLES, ATTACK_FUZZ_SEED,
#      ATTACK_FUZZ_MAX_TIME (see test_fuzz.py).
# Exit code = pytest's.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${QDRANT_BIN:-$REPO/target/release/qdrant}"
if [ ! -x "$BIN" ]; then
  echo "tests/attack/run.sh: qdrant binary not found or not executable: $BIN (build it first, or set QDRANT_BIN)" >&2
  exit 2
fi
export QDRANT_BIN="$BIN"
VENV_BIN="$("$REPO/scripts/py-env.sh")"
cd "$REPO/tests/attack"
export PYTHONDONTWRITEBYTECODE=1
exec "$VENV_BIN/python" -m pytest -q -s -p no:cacheprovider . "$@"
