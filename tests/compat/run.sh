#!/usr/bin/env bash
# Runs the Qdrant compatibility suite (real qdrant-client from PyPI against our binary), every
# client test over REST and over gRPC (test ids [rest] / [grpc]).
#   tests/compat/run.sh [extra pytest args]      e.g.  -m slow   |  -m "not slow"  |  -k filters  |  -x
#   gRPC half: -k grpc      REST half: -k "not grpc"   (not `-k rest`: it also matches test_restart.py)
# Env: QDRANT_BIN (default <repo>/target/release/qdrant), QDRANT_COMPAT_READY_TIMEOUT (s, default 30),
#      QDRANT_COMPAT_LOG_LEVEL (node log level, default INFO).
# The binary must already be built (`cargo build --release -p node`); this script does not build it.
# Exit code = pytest's.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${QDRANT_BIN:-$REPO/target/release/qdrant}"
if [ ! -x "$BIN" ]; then
  echo "tests/compat/run.sh: qdrant binary not found or not executable: $BIN" >&2
  echo "  build it first: cargo build --release -p node   (or set QDRANT_BIN)" >&2
  exit 2
fi
export QDRANT_BIN="$BIN"
VENV_BIN="$("$REPO/scripts/py-env.sh")"
cd "$REPO"
export PYTHONDONTWRITEBYTECODE=1
set +e
"$VENV_BIN/python" -m pytest -q -p no:cacheprovider tests/compat "$@"
rc=$?
set -e
exit $rc
