#!/usr/bin/env bash
# Smoke test of the load generator against a Qdrant-compatible server:
#   qbench gen (10k x 128) -> upload (wait=true) -> search (one ef, closed + open loop) over REST
#   -> one short closed-loop search over gRPC,
# asserting recall@10 >= MIN_RECALL (default 0.9). It asserts recall, never speed.
#
# Server: QDRANT_URL=http://host:port (a running node), or QDRANT_BIN=/path/to/qdrant
# (started here on a free loopback port with its storage in a temp dir, stopped at the end).
# Without either, target/release/qdrant is used when it exists; otherwise the test is skipped.
# With QDRANT_URL, the gRPC pass goes to QDRANT_GRPC_URL (default: that host, port 6334).
# Other knobs: QBENCH (binary), SMOKE_N, SMOKE_EF, SMOKE_TIMEOUT (seconds, whole run),
# SMOKE_INDEXING_THRESHOLD_KB (so that a 10k collection gets an HNSW index; empty = default),
# SMOKE_GRPC (0 = skip the gRPC pass, for a server without the gRPC API).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QBENCH=${QBENCH:-$ROOT/target/release/qbench}
MIN_RECALL=${MIN_RECALL:-0.9}
N=${SMOKE_N:-10000}
EF=${SMOKE_EF:-128}
DEADLINE=$(( $(date +%s) + ${SMOKE_TIMEOUT:-300} ))
THRESHOLD_KB=${SMOKE_INDEXING_THRESHOLD_KB-1000}
SMOKE_GRPC=${SMOKE_GRPC:-1}
GRPC_ARGS=()
COLLECTION="qbench_smoke_$$"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qbench-smoke.XXXXXX")
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  elif [ -n "${URL:-}" ]; then
    curl -s -o /dev/null -X DELETE "$URL/collections/$COLLECTION" || true
  fi
  if [ $rc -ne 0 ] && [ -f "$WORK/server.log" ]; then
    echo "--- server log (tail) ---" >&2; tail -n 30 "$WORK/server.log" >&2
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM

remaining() { local r=$(( DEADLINE - $(date +%s) )); [ $r -gt 0 ] || { echo "smoke: time limit reached" >&2; exit 1; }; echo $r; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

if [ ! -x "$QBENCH" ]; then
  echo "smoke: building qbench" >&2
  (cd "$ROOT" && cargo build --release -p loadgen >&2)
fi

if [ -n "${QDRANT_URL:-}" ]; then
  URL=${QDRANT_URL%/}
else
  BIN=${QDRANT_BIN:-$ROOT/target/release/qdrant}
  if [ ! -x "$BIN" ]; then
    echo "smoke: SKIP (no QDRANT_URL, and no server binary at $BIN)"
    exit 0
  fi
  HTTP_PORT=$(free_port); GRPC_PORT=$(free_port); P2P_PORT=$(free_port)
  URL="http://127.0.0.1:$HTTP_PORT"
  GRPC_ARGS=(--grpc-url "http://127.0.0.1:$GRPC_PORT")
  mkdir -p "$WORK/storage" "$WORK/snapshots"
  # Run inside the temp dir: a server that writes relative paths writes them there.
  (cd "$WORK" && exec env \
      QDRANT__SERVICE__HOST=127.0.0.1 \
      QDRANT__SERVICE__HTTP_PORT="$HTTP_PORT" \
      QDRANT__SERVICE__GRPC_PORT="$GRPC_PORT" \
      QDRANT__CLUSTER__P2P__PORT="$P2P_PORT" \
      QDRANT__STORAGE__STORAGE_PATH="$WORK/storage" \
      QDRANT__STORAGE__SNAPSHOTS_PATH="$WORK/snapshots" \
      QDRANT__TELEMETRY_DISABLED=true \
      "$BIN" >"$WORK/server.log" 2>&1) &
  SERVER_PID=$!
  echo "smoke: started $BIN (pid $SERVER_PID) on $URL" >&2
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$URL/collections" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "smoke: server exited" >&2; exit 1; }
    [ "$(date +%s)" -lt "$DEADLINE" ] || { echo "smoke: server not ready in time" >&2; exit 1; }
    sleep 0.1
  done
  curl -sf -o /dev/null "$URL/collections" || { echo "smoke: server not ready" >&2; exit 1; }
fi

PIDARGS=()
[ -n "$SERVER_PID" ] && PIDARGS=(--server-pid "$SERVER_PID")
DATA=(--cache-dir "${QBENCH_CACHE:-$ROOT/.cache/qbench}" --n "$N" --nq 200 --gt-k 100)
THRESH=()
[ -n "$THRESHOLD_KB" ] && THRESH=(--indexing-threshold-kb "$THRESHOLD_KB")

echo "smoke: gen" >&2
timeout "$(remaining)" "$QBENCH" gen "${DATA[@]}" >"$WORK/gen.out"

echo "smoke: upload to $URL/collections/$COLLECTION" >&2
timeout "$(remaining)" "$QBENCH" upload "${DATA[@]}" --url "$URL" --collection "$COLLECTION" \
  --batch 256 --concurrency 2 --wait true --index-timeout-s 120 --poll-ms 100 \
  "${THRESH[@]}" "${PIDARGS[@]}" --label smoke | tee "$WORK/upload.out"

echo "smoke: search" >&2
timeout "$(remaining)" "$QBENCH" search "${DATA[@]}" --url "$URL" --collection "$COLLECTION" \
  --ef "$EF" --concurrency 1,4 --rate 200 --requests 400 --warmup 50 \
  "${PIDARGS[@]}" --label smoke | tee "$WORK/search.out"

OUTS=("$WORK/search.out")
if [ "$SMOKE_GRPC" != 0 ]; then
  echo "smoke: search over gRPC" >&2
  timeout "$(remaining)" "$QBENCH" search "${DATA[@]}" --transport grpc "${GRPC_ARGS[@]}" --url "$URL" \
    --collection "$COLLECTION" --ef "$EF" --concurrency 4 --requests 400 --warmup 50 \
    "${PIDARGS[@]}" --label smoke | tee "$WORK/search_grpc.out"
  OUTS+=("$WORK/search_grpc.out")
fi

# Every search run (closed and open loop, each transport) must reach the recall and have no errors.
python3 - "$MIN_RECALL" "${OUTS[@]}" <<'PY'
import json, sys
min_recall, files = float(sys.argv[1]), sys.argv[2:]
runs = [json.loads(l) for f in files for l in open(f) if l.startswith("{")]
runs = [r for r in runs if r.get("kind") == "search"]
missing = {r.get("transport", "rest") for r in runs} ^ {"rest", "grpc"}
if not runs or (len(files) > 1 and missing):
    sys.exit(f"smoke: no search results (missing: {sorted(missing) or 'all'})")
bad = [r for r in runs if r["errors"] or r["recall"] is None or r["recall"] < min_recall]
for r in runs:
    print(f"smoke: {r.get('transport', 'rest'):<4} {r['mode']:<6} ef={r['ef']} recall@10={r['recall']:.4f} "
          f"errors={r['errors']} qps={r['qps']:.0f}")
if bad:
    sys.exit(f"smoke: FAIL: {len(bad)} run(s) below recall {min_recall} or with errors")
print(f"smoke: {len(runs)} passed, 0 failed")
PY
