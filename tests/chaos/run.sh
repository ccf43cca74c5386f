#!/usr/bin/env bash
# The chaos suite: Jepsen-style fault injection against real `qdrant` clusters (3 and 5 nodes),
# each process in its own network namespace, with a history checker (see tests/chaos/chaos.py).
#
#   tests/chaos/run.sh                 CI mode: unit tests of the checkers, then a 3-node and a
#                                      5-node run with 90 s of faults each (about 4 minutes)
#   tests/chaos/run.sh --soak          10 minutes of faults per cluster
#   tests/chaos/run.sh --seed N        replay a seed (or CHAOS_SEED=N); other flags: --nodes 3,
#                                      --duration S, --faults kill,clock,..., --clients N,
#                                      --no-faults, --keep (see: python3 tests/chaos/chaos.py -h)
# Env: QDRANT_BIN (default <repo>/target/release/qdrant), CHAOS_SEED, CHAOS_TIMEOUT (outer bound
#      in seconds; default 600, soak 3000), CHAOS_FAKETIME=0 (run nodes without libfaketime).
# Needs root (network namespaces, nft, tc) and libfaketime (installed with apt-get if missing).
# Everything runs inside `unshare --net --mount --pid`: the bridge and the namespaces exist only
# there, and when the harness ends (or is killed) the kernel kills every node it started.
# Exit code 0 only if the checkers' unit tests passed and no run found an anomaly.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${QDRANT_BIN:-$REPO/target/release/qdrant}"
if [ ! -x "$BIN" ]; then
  echo "tests/chaos/run.sh: qdrant binary not found or not executable: $BIN" >&2
  echo "  build it first: cargo build --release -p node   (or set QDRANT_BIN)" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/chaos/run.sh: must run as root (network namespaces, nft, tc)" >&2
  exit 2
fi

# libfaketime for the clock-jump faults (Debian packages faketime / libfaketime).
if ! compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null; then
  echo "chaos: installing libfaketime with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime libfaketime >/dev/null
fi
for tool in ip nft tc unshare; do
  command -v "$tool" >/dev/null 2>&1 || { echo "chaos: missing $tool (iproute2, nftables, util-linux)" >&2; exit 2; }
done

VENV_BIN="$("$REPO/scripts/py-env.sh")"
export PYTHONDONTWRITEBYTECODE=1
cd "$REPO/tests/chaos"

# The checkers first: a checker that cannot fail proves nothing.
"$VENV_BIN/python" -m pytest -q -p no:cacheprovider test_checkers.py

if ! err=$(unshare --net --mount --pid --fork true 2>&1); then
  echo "chaos: FAILED: cannot create network/mount/PID namespaces here: $err" >&2
  exit 2
fi

limit="${CHAOS_TIMEOUT:-600}"
for arg in "$@"; do [ "$arg" = "--soak" ] && limit="${CHAOS_TIMEOUT:-3000}"; done
# --kill-child: if unshare is killed (e.g. by this timeout), the harness (PID 1 of the new PID
# namespace) gets SIGKILL, and with it every node process.
set +e
timeout --kill-after=15 "$limit" \
  unshare --net --mount --pid --fork --mount-proc --kill-child \
  env CHAOS_IN_NS=1 QDRANT_BIN="$BIN" "$VENV_BIN/python" chaos.py "$@"
rc=$?
set -e
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "chaos: FAILED: the run exceeded ${limit}s and was killed (run directories: /tmp/qdrant-chaos-*)" >&2
fi
exit $rc
