#!/usr/bin/env bash
# Hybrid-search benchmark: `qbench hybrid` (a dense and a sparse prefetch fused with RRF, and each
# prefetch alone) against this node and, when REF_BIN names a Qdrant binary, against it in the
# same run, one server at a time on free loopback ports with fresh storage. Prints the hybrid
# query's latency relative to its slower prefetch alone, and node / reference QPS ratios.
#   N=100000 tests/loadgen/bench_hybrid.sh
#   REF_BIN=/path/to/qdrant-1.19 N=100000 tests/loadgen/bench_hybrid.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QBENCH=${QBENCH:-$ROOT/target/release/qbench}
NODE_BIN=${QDRANT_BIN:-$ROOT/target/release/qdrant}
REF_BIN=${REF_BIN:-}
N=${N:-100000}
NQ=${NQ:-1000}
CONC=${CONC:-1,4}
REQUESTS=${REQUESTS:-2000}
EF=${EF:-64}
PREFETCH=${PREFETCH:-50}
OUT=${OUT:-$ROOT/.cache/qbench/hybrid-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qbench-hybrid.XXXXXX")
PID=""
stop_server() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    PID=""
  fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# run LABEL BIN: starts BIN with fresh storage, runs qbench hybrid against it, stops it.
run() {
  local label=$1 bin=$2 dir="$WORK/$1" port
  port=$(free_port)
  mkdir -p "$dir"
  (cd "$dir" && exec env QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$port" \
      QDRANT__SERVICE__GRPC_PORT="$(free_port)" QDRANT__CLUSTER__P2P__PORT="$(free_port)" \
      QDRANT__STORAGE__STORAGE_PATH="$dir/storage" QDRANT__STORAGE__SNAPSHOTS_PATH="$dir/snapshots" \
      QDRANT__TELEMETRY_DISABLED=true "$bin" >"$dir/server.log" 2>&1) &
  PID=$!
  local url="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$url/collections" && break; sleep 0.1; done
  curl -sf -o /dev/null "$url/collections" || { echo "$label not ready"; tail "$dir/server.log"; exit 1; }
  "$QBENCH" hybrid --cache-dir "$ROOT/.cache/qbench" --n "$N" --nq "$NQ" --url "$url" --collection hybrid \
    --concurrency "$CONC" --requests "$REQUESTS" --ef "$EF" --prefetch-limit "$PREFETCH" \
    --server-pid "$PID" --label "$label" --json-out "$OUT"
  stop_server
}

"$QBENCH" gen --cache-dir "$ROOT/.cache/qbench" --n "$N" --nq "$NQ" >/dev/null
run node "$NODE_BIN"
[ -n "$REF_BIN" ] && run reference "$REF_BIN"

python3 - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = {(r["label"], r["shape"], r["concurrency"]): r for r in rows if r.get("kind") == "hybrid"}
print(f"{'label':<10} {'conc':>4} {'shape':<7} {'recall':>7} {'QPS':>7} {'p50 ms':>7} {'p99 ms':>7}")
for (label, shape, conc), r in sorted(runs.items()):
    print(f"{label:<10} {conc:>4} {shape:<7} {r['recall']:>7.3f} {r['qps']:>7.0f} "
          f"{r['latency']['p50_ms']:>7.2f} {r['latency']['p99_ms']:>7.2f}")
for r in rows:
    if r.get("kind") == "hybrid_ratio":
        print(f"{r['label']}: c={r['concurrency']}: hybrid / slower prefetch alone: "
              f"p50 {r['p50_ratio']:.2f}x, p99 {r['p99_ratio']:.2f}x")
for (label, shape, conc), r in sorted(runs.items()):
    ref = runs.get(("reference", shape, conc))
    if label == "node" and ref:
        print(f"node / reference, c={conc}, {shape}: QPS {r['qps'] / ref['qps']:.2f}x")
EOF
echo "results: $OUT" >&2
