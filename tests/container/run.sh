#!/usr/bin/env bash
# The container end-to-end suite: builds the images offline (scripts/image.sh), then runs
# tests/container with pytest. Exit code = result. Bounded in time; removes every container,
# network and volume it made, also after a failure, a timeout or Ctrl-C (and those left by
# earlier runs that died).
#
# Usage: tests/container/run.sh [--cluster | --cluster-only | --no-cluster] [pytest args...]
#   default         every test, including the 3-container cluster test
#   --cluster       the same (kept for compatibility)
#   --cluster-only  only the cluster test
#   --no-cluster    without the cluster test
# Env: QDRANT_NODE_IMAGE (default qdrant-node:dev), QDRANT_OPERATOR_IMAGE (default
#      qdrant-operator:dev), SKIP_BUILD=1 (use the existing images),
#      SKIP_CARGO=1 (image from the existing target/release/qdrant), QDRANT_CT_TIMEOUT (seconds,
#      default 1200), QDRANT_CONTAINER_CLUSTER=0 (skip the cluster test), =only (only it).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${QDRANT_CONTAINER_CLUSTER:-1}"
case "${1:-}" in
  --cluster) CLUSTER=1; shift ;;
  --cluster-only) CLUSTER=only; shift ;;
  --no-cluster) CLUSTER=0; shift ;;
esac
case "$CLUSTER" in
  1) MARK=() ;;
  only) MARK=(-m cluster) ;;
  *) MARK=(-m "not cluster") ;;
esac

export QDRANT_NODE_IMAGE="${QDRANT_NODE_IMAGE:-qdrant-node:dev}"
export QDRANT_CT_RUN_PID=$$
export QDRANT_CT_RUN_ID="r$$-$(date +%s)"
LABEL=qdrant-container-test

# Remove the resources of a run: this one (by run id) or, with "stale", of runs whose process is gone.
sweep() {
  local mode="$1" filter ids
  if [ "$mode" = stale ]; then
    filter="label=$LABEL.pid"
  else
    filter="label=$LABEL=$QDRANT_CT_RUN_ID"
  fi
  for kind in container network volume; do
    case "$kind" in
      container) ids=$(docker ps -a --filter "$filter" --format '{{.ID}} {{.Label "'$LABEL'.pid"}}') ;;
      network) ids=$(docker network ls --filter "$filter" --format '{{.ID}} {{.Label "'$LABEL'.pid"}}') ;;
      volume) ids=$(docker volume ls --filter "$filter" --format '{{.Name}} {{.Label "'$LABEL'.pid"}}') ;;
    esac
    while read -r id pid; do
      [ -n "$id" ] || continue
      if [ "$mode" = stale ] && kill -0 "$pid" 2>/dev/null; then continue; fi
      case "$kind" in
        container) docker rm -f -v "$id" >/dev/null 2>&1 || true ;;
        network) docker network rm "$id" >/dev/null 2>&1 || true ;;
        volume) docker volume rm -f "$id" >/dev/null 2>&1 || true ;;
      esac
    done <<<"$ids"
  done
}
trap 'sweep run' EXIT
trap 'exit 130' INT TERM
sweep stale

BIN="$(scripts/py-env.sh)"
export QDRANT_OPERATOR_IMAGE="${QDRANT_OPERATOR_IMAGE:-qdrant-operator:dev}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  NODE_IMAGE="$QDRANT_NODE_IMAGE" OPERATOR_IMAGE="$QDRANT_OPERATOR_IMAGE" scripts/image.sh node operator
fi
# helm renders the charts whose pod specs the hook tests run.
export QDRANT_CT_HELM="${QDRANT_CT_HELM:-$(scripts/check-charts.sh --helm-path)}"

export QDRANT_CT_METRICS="${QDRANT_CT_METRICS:-$PWD/.cache/container-metrics.json}"
mkdir -p "$(dirname "$QDRANT_CT_METRICS")"
rm -f "$QDRANT_CT_METRICS"

status=0
timeout --kill-after=30 "${QDRANT_CT_TIMEOUT:-1200}" \
  "$BIN/python" -m pytest tests/container -p no:cacheprovider -q -rfEs "${MARK[@]}" "$@" || status=$?
if [ -s "$QDRANT_CT_METRICS" ]; then
  echo "container suite timings (s):"
  sed -n 's/^ *"\(.*\)": \(.*\),\{0,1\}$/  \1: \2/p' "$QDRANT_CT_METRICS" | tr -d ','
fi
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
  echo "container suite: timed out after ${QDRANT_CT_TIMEOUT:-1200}s" >&2
fi
exit "$status"
