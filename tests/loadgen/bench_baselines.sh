#!/usr/bin/env bash
# In-process index baselines on one generated dataset, run back to back so that the ratios
# come from one run: usearch variants through `qbench baseline`, then hnswlib (Python).
# Results: JSON lines appended to $OUT, then a summary at recall@10 = $RECALL.
#   N=100000 EFS=16,32,64,128,256 tests/loadgen/bench_baselines.sh
# Extra usearch variants: INDEXES="usearch usearch:kernel=rust usearch:quant=f16:rescore=2".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QBENCH=${QBENCH:-$ROOT/target/release/qbench}
N=${N:-100000}
NQ=${NQ:-1000}
EFS=${EFS:-16,32,64,128,256}
THREADS=${THREADS:-2}
PASSES=${PASSES:-2}
RECALL=${RECALL:-0.95}
INDEXES=${INDEXES:-usearch usearch:kernel=rust usearch:quant=f16 usearch:quant=f16:rescore=2}
GEN_ARGS=${GEN_ARGS:-}
OUT=${OUT:-$ROOT/.cache/qbench/baselines-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")"

# shellcheck disable=SC2086
DIR=$("$QBENCH" gen --cache-dir "$ROOT/.cache/qbench" --n "$N" --nq "$NQ" $GEN_ARGS | head -n 1)
echo "dataset: $DIR" >&2
IDX=()
for i in $INDEXES; do IDX+=(--index "$i"); done
nice -n 10 "$QBENCH" baseline --data "$DIR" "${IDX[@]}" --m 16 --ef-construct 100 --ef "$EFS" \
  --threads "$THREADS" --passes "$PASSES" --json-out "$OUT"
PYBIN=$("$ROOT/scripts/py-env.sh")
nice -n 10 "$PYBIN/python" "$HERE/hnswlib_baseline.py" --data "$DIR" --m 16 --ef-construct 100 --ef "$EFS" \
  --threads "$THREADS" --passes "$PASSES" --json-out "$OUT"
python3 "$HERE/summarize.py" "$OUT" --recall "$RECALL"
echo "results: $OUT" >&2
