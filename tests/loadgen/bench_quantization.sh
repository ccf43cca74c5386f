#!/usr/bin/env bash
# Quantization benchmark (issue 14): one dataset, back to back, each configuration against a
# fresh server started here (QDRANT_BIN, default target/release/qdrant: the same script drives
# real Qdrant when given its path), on free loopback ports with its storage in a temp dir:
#   f32     no quantization, vectors in RAM (the reference)
#   scalar  {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}} + on_disk originals
#   scalar_disk  the same without always_ram: the codes follow the originals, so the graph's
#           records (links and codes) live in a mapped file too          (not in the default)
#   binary  {"binary": {"always_ram": true, "encoding": "one_bit"}} + on_disk originals
#   product {"product": {"compression": "x16", "always_ram": true}} + on_disk  (not in the default)
#   turbo   {"turbo": {"bits": "bits2", "always_ram": true}} + on_disk         (not in the default)
#   f16     no quantization, `datatype: float16` (vectors and graph records in 2-byte values)
# Each: upload + wait until indexed (server RSS after indexing in the upload line), then a closed
# loop at CONC over the ef sweep; quantized configurations also sweep oversampling (each value
# with rescore: true) inside each ef. JSON lines go to $OUT, then summarize.py prints recall,
# QPS at recall RECALL and RSS per configuration with the ratios to f32.
#   tests/loadgen/bench_quantization.sh                        # N=200000 DIM=128
#   N=100000 DIM=1024 COSINE=1 tests/loadgen/bench_quantization.sh
#   QDRANT_BIN=/path/to/qdrant-1.19 LABEL_PREFIX=qdrant- tests/loadgen/bench_quantization.sh
# Knobs: N, DIM, COSINE (1 = normalised data, Cosine collection), NQ, CONFIGS ("f32 scalar
# binary"), EFS, OVERSAMPLING, CONC, REQUESTS, WARMUP, TRANSPORT (rest|grpc), LABEL_PREFIX, OUT,
# RECALL, QBENCH, QDRANT_BIN, INDEX_TIMEOUT_S.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QBENCH=${QBENCH:-$ROOT/target/release/qbench}
BIN=${QDRANT_BIN:-$ROOT/target/release/qdrant}
N=${N:-200000}
DIM=${DIM:-128}
COSINE=${COSINE:-0}
NQ=${NQ:-1000}
CONFIGS=${CONFIGS:-f32 scalar binary}
EFS=${EFS:-32,64,128,256}
OVERSAMPLING=${OVERSAMPLING:-1,2,4}
CONC=${CONC:-4}
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-300}
TRANSPORT=${TRANSPORT:-rest}
LABEL_PREFIX=${LABEL_PREFIX:-}
RECALL=${RECALL:-0.95}
INDEX_TIMEOUT_S=${INDEX_TIMEOUT_S:-900}
OUT=${OUT:-$ROOT/.cache/qbench/quant-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")"
[ -x "$BIN" ] || { echo "no server binary at $BIN (set QDRANT_BIN)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qbench-quant.XXXXXX")
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# A fresh server with empty storage in $WORK/$1; sets URL, GRPC_URL and SERVER_PID.
start_server() {
  local dir="$WORK/$1" http grpc
  mkdir -p "$dir"
  http=$(free_port)
  grpc=$(free_port)
  URL="http://127.0.0.1:$http"
  GRPC_URL="http://127.0.0.1:$grpc"
  (cd "$dir" && exec env QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$http" \
      QDRANT__SERVICE__GRPC_PORT="$grpc" QDRANT__CLUSTER__P2P__PORT="$(free_port)" \
      QDRANT__STORAGE__STORAGE_PATH="$dir/storage" QDRANT__STORAGE__SNAPSHOTS_PATH="$dir/snapshots" \
      QDRANT__TELEMETRY_DISABLED=true "$BIN" >"$dir/server.log" 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$URL/collections" && break; sleep 0.1; done
  curl -sf -o /dev/null "$URL/collections" || { echo "server not ready"; tail "$dir/server.log"; exit 1; }
}

# quantization_config of a configuration (empty: none).
quant_json() {
  case $1 in
    f32 | f16) echo "" ;;
    scalar) echo '{"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}' ;;
    scalar_disk) echo '{"scalar": {"type": "int8", "quantile": 0.99}}' ;;
    binary) echo '{"binary": {"always_ram": true, "encoding": "one_bit"}}' ;;
    product) echo '{"product": {"compression": "x16", "always_ram": true}}' ;;
    turbo) echo '{"turbo": {"bits": "bits2", "always_ram": true}}' ;;
    *) echo "unknown configuration $1 (f32 f16 scalar scalar_disk binary product turbo)" >&2; exit 2 ;;
  esac
}

DATA=(--cache-dir "$ROOT/.cache/qbench" --n "$N" --nq "$NQ" --dim "$DIM")
[ "$COSINE" = 1 ] && DATA+=(--cosine)
"$QBENCH" gen "${DATA[@]}" >/dev/null
echo "bench_quantization: N=$N DIM=$DIM COSINE=$COSINE server $BIN ($(date -r "$BIN" '+%F %T')), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

for cfg in $CONFIGS; do
  q=$(quant_json "$cfg")
  label="$LABEL_PREFIX$cfg"
  start_server "$cfg"
  COMMON=(--transport "$TRANSPORT" --url "$URL" --grpc-url "$GRPC_URL" --collection bench
          --server-pid "$SERVER_PID" --label "$label" --json-out "$OUT")
  UP=()
  SEARCH=()
  if [ -n "$q" ]; then
    UP=(--quantization "$q" --on-disk)
    SEARCH=(--quantization '{"ignore": false, "rescore": true}' --oversampling "$OVERSAMPLING")
  fi
  [ "$cfg" = f16 ] && UP+=(--datatype float16)
  echo "== $label: quantization ${q:-none}, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$QBENCH" upload "${DATA[@]}" "${COMMON[@]}" --batch 256 --concurrency 1 --wait true \
    --index-timeout-s "$INDEX_TIMEOUT_S" "${UP[@]}" | grep -v '^{'
  "$QBENCH" search "${DATA[@]}" "${COMMON[@]}" --ef "$EFS" --concurrency "$CONC" --requests "$REQUESTS" \
    --warmup "$WARMUP" "${SEARCH[@]}" | grep -v '^{'
  stop_server
done
echo "results: $OUT" >&2
python3 "$HERE/summarize.py" "$OUT" --recall "$RECALL" --ref-label "${LABEL_PREFIX}f32"
