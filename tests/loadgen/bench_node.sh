#!/usr/bin/env bash
# Server benchmark: upload + indexing, then closed-loop and open-loop search over an ef sweep,
# against a running server (QDRANT_URL + SERVER_PID for CPU/RSS) or a binary started here
# (QDRANT_BIN, default target/release/qdrant, on a free loopback port, storage in a temp dir).
# JSON lines are appended to $OUT. TRANSPORT=grpc drives the server over its gRPC API instead of
# REST (a running server's gRPC endpoint: QDRANT_GRPC_URL, default its host on port 6334).
#   N=100000 LABEL=node tests/loadgen/bench_node.sh
#   QDRANT_BIN=/path/to/real/qdrant LABEL=qdrant-1.x tests/loadgen/bench_node.sh
#   TRANSPORT=grpc N=100000 tests/loadgen/bench_node.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QBENCH=${QBENCH:-$ROOT/target/release/qbench}
N=${N:-100000}
NQ=${NQ:-1000}
TRANSPORT=${TRANSPORT:-rest}
# The default label names the transport too, so that summarize.py keeps the two apart.
if [ "$TRANSPORT" = rest ]; then LABEL=${LABEL:-node}; else LABEL=${LABEL:-node-$TRANSPORT}; fi
EFS=${EFS:-32,64,128,256}
CONC=${CONC:-1,2,4,8,16}
RATES=${RATES:-}
REQUESTS=${REQUESTS:-3000}
BATCH=${BATCH:-256}
UPLOAD_CONC=${UPLOAD_CONC:-1}
EXTRA_UPLOAD=${EXTRA_UPLOAD:-}
OUT=${OUT:-$ROOT/.cache/qbench/node-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qbench-node.XXXXXX")
SERVER_PID=${SERVER_PID:-}
STARTED=""
cleanup() {
  if [ -n "$STARTED" ]; then
    kill -TERM "$STARTED" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$STARTED" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$STARTED" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

if [ -n "${QDRANT_URL:-}" ]; then
  URL=${QDRANT_URL%/}
else
  BIN=${QDRANT_BIN:-$ROOT/target/release/qdrant}
  HTTP_PORT=$(free_port)
  GRPC_PORT=$(free_port)
  URL="http://127.0.0.1:$HTTP_PORT"
  export QDRANT_GRPC_URL="http://127.0.0.1:$GRPC_PORT"
  (cd "$WORK" && exec env QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$HTTP_PORT" \
      QDRANT__SERVICE__GRPC_PORT="$GRPC_PORT" QDRANT__CLUSTER__P2P__PORT="$(free_port)" \
      QDRANT__STORAGE__STORAGE_PATH="$WORK/storage" QDRANT__STORAGE__SNAPSHOTS_PATH="$WORK/snapshots" \
      QDRANT__TELEMETRY_DISABLED=true "$BIN" >"$WORK/server.log" 2>&1) &
  STARTED=$!
  SERVER_PID=$STARTED
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$URL/collections" && break; sleep 0.1; done
  curl -sf -o /dev/null "$URL/collections" || { echo "server not ready"; tail "$WORK/server.log"; exit 1; }
fi
PIDS=()
[ -n "$SERVER_PID" ] && PIDS=(--server-pid "$SERVER_PID")
DATA=(--cache-dir "$ROOT/.cache/qbench" --n "$N" --nq "$NQ")
"$QBENCH" gen "${DATA[@]}" >/dev/null
# shellcheck disable=SC2086
"$QBENCH" upload "${DATA[@]}" --transport "$TRANSPORT" --url "$URL" --collection bench --batch "$BATCH" --concurrency "$UPLOAD_CONC" \
  --wait true "${PIDS[@]}" --label "$LABEL" --json-out "$OUT" $EXTRA_UPLOAD
RATE_ARGS=()
[ -n "$RATES" ] && RATE_ARGS=(--rate "$RATES")
"$QBENCH" search "${DATA[@]}" --transport "$TRANSPORT" --url "$URL" --collection bench --ef "$EFS" --concurrency "$CONC" \
  "${RATE_ARGS[@]}" --requests "$REQUESTS" --warmup 300 "${PIDS[@]}" --label "$LABEL" --json-out "$OUT"
echo "results: $OUT" >&2
