#!/usr/bin/env bash
# Snapshot benchmark: a collection of N x DIM vectors with payload is uploaded through the API and
# indexed (qbench upload --payload), snapshotted, and restored on a second, empty node by upload
# (the path a backup takes to a new machine) and by a file:// recovery. Reports snapshot and
# restore MB/s and time to Available (all vectors indexed) against the re-upload (upload start
# to fully indexed).
#   N=1000000 tests/loadgen/bench_snapshot.sh
#   QDRANT_BIN=/path/to/qdrant N=200000 tests/loadgen/bench_snapshot.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QBENCH=${QBENCH:-$ROOT/target/release/qbench}
BIN=${QDRANT_BIN:-$ROOT/target/release/qdrant}
N=${N:-1000000}
DIM=${DIM:-128}
OUT=${OUT:-$ROOT/.cache/qbench/snapshot-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qbench-snapshot.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now() { date +%s.%N; }

start_node() { # name -> prints URL
  local dir="$WORK/$1" port
  port=$(free_port)
  mkdir -p "$dir"
  (cd "$dir" && exec env QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$port" \
      QDRANT__SERVICE__GRPC_PORT="$(free_port)" QDRANT__STORAGE__STORAGE_PATH="$dir/storage" \
      QDRANT__STORAGE__SNAPSHOTS_PATH="$dir/snapshots" QDRANT__TELEMETRY_DISABLED=true \
      "$BIN" >"$dir/server.log" 2>&1) &
  PIDS+=($!)
  for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/collections" && break; sleep 0.1; done
  echo "http://127.0.0.1:$port"
}

# Seconds until every vector of `collection` at `url` is indexed and the collection is green.
wait_available() {
  local url=$1 collection=$2 t0=$3
  while true; do
    if curl -sf "$url/collections/$collection" | python3 -c '
import json, sys
r = json.load(sys.stdin)["result"]
sys.exit(0 if r["status"] == "green" and r["indexed_vectors_count"] >= r["points_count"] > 0 else 1)'; then
      break
    fi
    sleep 0.05
  done
  python3 -c "print(round($(now) - $t0, 3))"
}

A=$(start_node a)
"$QBENCH" upload --url "$A" --n "$N" --dim "$DIM" --payload --label node --json-out "$WORK/upload.jsonl" --index-timeout-s 7200
read -r UPLOAD_S INDEXED_S < <(python3 -c '
import json
r = [json.loads(l) for l in open("'"$WORK/upload.jsonl"'")][-1]
print(r["upload_s"], r["to_indexed_s"])')

t0=$(now)
NAME=$(curl -sf -X POST "$A/collections/bench/snapshots" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["name"])')
SNAPSHOT_S=$(python3 -c "print(round($(now) - $t0, 3))")
FILE="$WORK/a/snapshots/bench/$NAME"
BYTES=$(stat -c %s "$FILE")

B=$(start_node b)
t0=$(now)
curl -sf -o /dev/null -X POST -F "snapshot=@$FILE" "$B/collections/bench/snapshots/upload"
RESTORE_S=$(python3 -c "print(round($(now) - $t0, 3))")
AVAILABLE_S=$(wait_available "$B" bench "$t0")

t0=$(now)
curl -sf -o /dev/null -X PUT -H 'content-type: application/json' \
  -d "{\"location\": \"file://$FILE\"}" "$A/collections/copy/snapshots/recover"
FILE_AVAILABLE_S=$(wait_available "$A" copy "$t0")

python3 - "$OUT" <<PY
import json, sys
mb = $BYTES / 1e6
reupload = $INDEXED_S  # qbench times indexing from the start of the upload
r = {"kind": "snapshot", "n": $N, "dim": $DIM, "payload": True, "snapshot_bytes": $BYTES,
     "upload_s": $UPLOAD_S, "reupload_total_s": round(reupload, 3),
     "snapshot_s": $SNAPSHOT_S, "snapshot_mb_per_s": round(mb / $SNAPSHOT_S, 1),
     "restore_upload_s": $RESTORE_S, "restore_mb_per_s": round(mb / $RESTORE_S, 1),
     "restore_upload_to_available_s": $AVAILABLE_S, "restore_file_to_available_s": $FILE_AVAILABLE_S,
     "speedup_upload_restore": round(reupload / $AVAILABLE_S, 2),
     "speedup_file_restore": round(reupload / $FILE_AVAILABLE_S, 2)}
open(sys.argv[1], "a").write(json.dumps(r) + "\n")
for k, v in r.items():
    print(f"{k:32} {v}")
PY
