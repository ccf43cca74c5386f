#!/usr/bin/env bash
# Builds and starts a local 3-peer cluster on 127.0.0.1: REST on 6333/6343/6353, gRPC on
# 6334/6344/6354, p2p on 6335/6345/6355, storage under ./cluster-data/peer{0,1,2} (kept between runs: a restart resumes
# the same cluster). Logs in ./cluster-data/peer*.log. Ctrl-C stops all three.
#   curl localhost:6333/cluster
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -p node
data="${CLUSTER_DATA:-./cluster-data}"
mkdir -p "$data"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
for i in 0 1 2; do
  http=$((6333 + 10 * i)); grpc=$((6334 + 10 * i)); p2p=$((6335 + 10 * i))
  args=(--uri "http://127.0.0.1:$p2p")
  if [ "$i" -gt 0 ]; then args+=(--bootstrap "http://127.0.0.1:6335"); fi
  QDRANT__CLUSTER__ENABLED=true QDRANT__SERVICE__HOST=127.0.0.1 \
  QDRANT__SERVICE__HTTP_PORT=$http QDRANT__SERVICE__GRPC_PORT=$grpc QDRANT__CLUSTER__P2P__PORT=$p2p \
  QDRANT__STORAGE__STORAGE_PATH="$data/peer$i" \
    ./target/release/qdrant "${args[@]}" >"$data/peer$i.log" 2>&1 &
  pids+=($!)
  echo "peer $i: REST http://127.0.0.1:$http  gRPC http://127.0.0.1:$grpc  p2p http://127.0.0.1:$p2p  log $data/peer$i.log"
done
wait
