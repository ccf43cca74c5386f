#!/usr/bin/env bash
# Cluster benchmark on loopback: starts PEERS (default 3) server processes of QDRANT_BIN
# (default target/release/qdrant) with cluster mode on, each with its own ports and storage,
# waits until every peer reports all peers and the same leader (timed from the first spawn),
# times collection creation (SHARDS shards, median of 5), then uploads with shard_number=SHARDS
# (one replica) and runs the search sweep against peer 1 (fan-out). CPU and RSS are summed over
# all peers. TRANSPORT=grpc sends qbench's upload and search to peer 1's gRPC API instead of REST
# (the cluster set-up, the creation probes and the transfer stay on REST).
#   N=100000 SHARDS=6 LABEL=node-3peers tests/loadgen/bench_cluster.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QBENCH=${QBENCH:-$ROOT/target/release/qbench}
BIN=${QDRANT_BIN:-$ROOT/target/release/qdrant}
PEERS=${PEERS:-3}
SHARDS=${SHARDS:-$PEERS}
REPLICATION=${REPLICATION:-1}
# TRANSFER=1: afterwards, for each of METHODS upload the whole dataset into a 1-shard collection
# and time a replicate_shard of it to another peer with that method: until the new replica is
# Active, and until it alone (the source replica dropped) has every vector indexed.
TRANSFER=${TRANSFER:-0}
# The transfer methods timed (one 1-shard collection each): stream_records, snapshot.
METHODS=${METHODS:-stream_records,snapshot}
SEARCH=${SEARCH:-1}
N=${N:-100000}
NQ=${NQ:-1000}
TRANSPORT=${TRANSPORT:-rest}
if [ "$TRANSPORT" = rest ]; then LABEL=${LABEL:-node-${PEERS}peers}; else LABEL=${LABEL:-node-${PEERS}peers-$TRANSPORT}; fi
EFS=${EFS:-32,64,128,256}
CONC=${CONC:-1,4,16}
REQUESTS=${REQUESTS:-2000}
OUT=${OUT:-$ROOT/.cache/qbench/cluster-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qbench-cluster.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

FIRST_P2P=""
URL=""
GRPC_URL=""
URLS=()
T0=$(date +%s.%N)
for i in $(seq 1 "$PEERS"); do
  HTTP=$(free_port); GRPC=$(free_port); P2P=$(free_port)
  mkdir -p "$WORK/p$i"
  ARGS=(--uri "http://127.0.0.1:$P2P")
  if [ -n "$FIRST_P2P" ]; then ARGS+=(--bootstrap "http://127.0.0.1:$FIRST_P2P"); fi
  (cd "$WORK/p$i" && exec env QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$HTTP" \
      QDRANT__SERVICE__GRPC_PORT="$GRPC" QDRANT__CLUSTER__ENABLED=true QDRANT__CLUSTER__P2P__PORT="$P2P" \
      QDRANT__STORAGE__STORAGE_PATH="$WORK/p$i/storage" QDRANT__STORAGE__SNAPSHOTS_PATH="$WORK/p$i/snapshots" \
      QDRANT__TELEMETRY_DISABLED=true "$BIN" "${ARGS[@]}" >"$WORK/p$i.log" 2>&1) &
  PIDS+=($!)
  for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$HTTP/collections" && break; sleep 0.1; done
  URLS+=("http://127.0.0.1:$HTTP")
  [ -z "$FIRST_P2P" ] && { FIRST_P2P=$P2P; URL="http://127.0.0.1:$HTTP"; GRPC_URL="http://127.0.0.1:$GRPC"; }
done
# Wait until every peer lists every peer and names the same leader.
AGREE=$(python3 - "$PEERS" "${CLUSTER_TIMEOUT:-60}" "$T0" "${URLS[@]}" <<'PY'
import json, sys, time, urllib.request
peers, timeout, t0, urls = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
deadline = time.time() + timeout
while time.time() < deadline:
    try:
        views = [json.load(urllib.request.urlopen(u + "/cluster", timeout=2))["result"] for u in urls]
        leaders = {v["raft_info"]["leader"] for v in views}
        if all(len(v["peers"]) >= peers for v in views) and len(leaders) == 1 and None not in leaders:
            print(round(time.time() - t0, 3))
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.02)
sys.exit(1)
PY
) || { echo "cluster did not form"; tail -n 20 "$WORK"/p*.log; exit 1; }
echo "cluster: $PEERS peers agree on one leader $AGREE s after the first spawn" >&2
# Collection creation through a follower-or-leader entry peer, median of 5.
CREATE=()
for i in 1 2 3 4 5; do
  t=$(curl -sf -o /dev/null -w '%{time_total}' -X PUT "$URL/collections/create_probe_$i?timeout=10" \
      -H 'content-type: application/json' \
      -d "{\"vectors\":{\"size\":128,\"distance\":\"Cosine\"},\"shard_number\":$SHARDS}")
  CREATE+=("$t")
  curl -sf -o /dev/null -X DELETE "$URL/collections/create_probe_$i?timeout=10"
done
echo "create ($SHARDS shards): ${CREATE[*]} s; median $(printf '%s\n' "${CREATE[@]}" | sort -n | sed -n 3p) s" >&2
SP=()
for p in "${PIDS[@]}"; do SP+=(--server-pid "$p"); done
TR=(--transport "$TRANSPORT" --grpc-url "$GRPC_URL")
DATA=(--cache-dir "$ROOT/.cache/qbench" --n "$N" --nq "$NQ")
"$QBENCH" gen "${DATA[@]}" >/dev/null
"$QBENCH" upload "${DATA[@]}" "${TR[@]}" --url "$URL" --collection bench --shards "$SHARDS" --replication "$REPLICATION" --batch 256 \
  --concurrency 1 --wait true "${SP[@]}" --label "$LABEL" --json-out "$OUT"
if [ "$SEARCH" = 1 ]; then
  "$QBENCH" search "${DATA[@]}" "${TR[@]}" --url "$URL" --collection bench --ef "$EFS" --concurrency "$CONC" \
    --requests "$REQUESTS" --warmup 300 "${SP[@]}" --label "$LABEL" --json-out "$OUT"
fi
if [ "$TRANSFER" = 1 ]; then
  for METHOD in ${METHODS//,/ }; do
  "$QBENCH" upload "${DATA[@]}" "${TR[@]}" --url "$URL" --collection "xfer-$METHOD" --shards 1 --replication 1 --batch 256 \
    --concurrency 1 --wait true "${SP[@]}" --label "$LABEL-xfer" --json-out "$OUT" >/dev/null
  python3 - "$URL" "xfer-$METHOD" "$METHOD" "$OUT" <<'PY'
import json, sys, time, urllib.request
url, name, method, out = sys.argv[1:5]
def call(method_, path, body=None):
    req = urllib.request.Request(url + path, method=method_, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=30))["result"]
peers = [int(p) for p in call("GET", "/cluster")["peers"]]
def replicas():
    info = call("GET", f"/collections/{name}/cluster")
    out = {s["peer_id"] if "peer_id" in s else info["peer_id"]: s["state"] for s in info["local_shards"] + info["remote_shards"]}
    return out
def wait(what, done):
    while not done():
        if time.time() - t0 > 1800:
            sys.exit(f"{what} not within 1800 s")
        time.sleep(0.05)
    return round(time.time() - t0, 2)
source = next(iter(replicas()))
target = next(p for p in peers if p != source)
points = call("POST", f"/collections/{name}/points/count", {"exact": True})["count"]
t0 = time.time()
call("POST", f"/collections/{name}/cluster",
     {"replicate_shard": {"shard_id": 0, "from_peer_id": source, "to_peer_id": target, "method": method}})
active = wait("Active", lambda: replicas().get(target) == "Active")
# The copy alone: searchable at full speed once its vectors are all indexed.
call("POST", f"/collections/{name}/cluster", {"drop_replica": {"shard_id": 0, "peer_id": source}})
def indexed():
    info = call("GET", f"/collections/{name}")
    return info["indexed_vectors_count"] >= info["points_count"] > 0
ready = wait("indexed", indexed)
r = {"kind": "transfer", "method": method, "points": points, "to_active_s": active, "to_indexed_s": ready}
open(out, "a").write(json.dumps(r) + "\n")
print(f"transfer ({method}): replicate_shard of {points} points from peer {source} to {target}: "
      f"Active after {active} s, all indexed on the copy after {ready} s", file=sys.stderr)
PY
  done
fi
echo "results: $OUT" >&2
