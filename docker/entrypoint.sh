#!/usr/bin/env bash
# Entrypoint of the node image: starts /qdrant/qdrant, deriving the peer arguments of a
# StatefulSet pod when cluster mode is requested. The contract is documented in docker/README.md
# ("Entrypoint contract"); keep the two in step.
#
#   entrypoint.sh [qdrant args...]   run the node (cluster args derived or passed through)
#   entrypoint.sh CMD [args...]      run CMD instead (e.g. `bash`), like most images
#
# Cluster mode is on when QDRANT_CLUSTER_NAME is set and no --uri/--bootstrap argument was given:
#   pod name   QDRANT_POD_NAME (default: the hostname), must be <QDRANT_CLUSTER_NAME>-<ordinal>
#   peer host  <pod>.<QDRANT_HEADLESS_SERVICE|name-headless>[.<QDRANT_NAMESPACE>[.<QDRANT_CLUSTER_DOMAIN>]]
#   peer URI   <http|https>://<peer host>:<p2p port>   (https iff QDRANT__CLUSTER__P2P__ENABLE_TLS=true,
#              port QDRANT__CLUSTER__P2P__PORT or 6335: the node's own settings, so URI and listener agree)
#   ordinal 0  --uri <own URI>
#   ordinal k  --bootstrap <URI of ordinal 0> --uri <own URI>
#   QDRANT_BOOTSTRAP_URI=<uri> replaces the ordinal-0 seed for every pod, pod 0 included (a cluster
#   that is already initialised must never let pod 0 found a second cluster).
#   QDRANT__CLUSTER__ENABLED defaults to true in cluster mode.
# QDRANT_ENTRYPOINT_DRY_RUN=1 prints the final command, one argument per line, instead of running it.
set -euo pipefail

QDRANT_BIN="${QDRANT_BIN:-/qdrant/qdrant}"

log() { echo "entrypoint: $*" >&2; }
die() { echo "entrypoint: error: $*" >&2; exit 64; }

run() {
  if [ "${QDRANT_ENTRYPOINT_DRY_RUN:-0}" = 1 ]; then
    printf '%s\n' "$@"
    exit 0
  fi
  exec "$@"
}

# A command other than the node's flags: run it as given (`docker run IMAGE bash`).
if [ $# -gt 0 ]; then
  case "$1" in
    qdrant|./qdrant|"$QDRANT_BIN") shift ;;
    -*) ;;
    *) run "$@" ;;
  esac
fi

# RocksDB keeps many files open; use the hard limit like the official chart does (best effort).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

explicit=0
for arg in "$@"; do
  case "$arg" in
    --uri|--uri=*|--bootstrap|--bootstrap=*) explicit=1 ;;
  esac
done

if [ -z "${QDRANT_CLUSTER_NAME:-}" ] || [ "$explicit" = 1 ]; then
  [ "$explicit" = 1 ] && [ -n "${QDRANT_CLUSTER_NAME:-}" ] && log "--uri/--bootstrap given; not deriving them"
  run "$QDRANT_BIN" "$@"
fi

name="$QDRANT_CLUSTER_NAME"
pod="${QDRANT_POD_NAME:-${HOSTNAME:-$(hostname)}}"
pod="${pod%%.*}"   # a FQDN hostname: keep the first label
ordinal="${pod##*-}"
prefix="${pod%-*}"
if [ "$prefix" = "$pod" ] || ! [[ "$ordinal" =~ ^(0|[1-9][0-9]*)$ ]]; then
  die "pod name '$pod' is not <name>-<ordinal>; set QDRANT_POD_NAME or unset QDRANT_CLUSTER_NAME"
fi
[ "$prefix" = "$name" ] || die "pod name '$pod' does not belong to QDRANT_CLUSTER_NAME '$name'"

headless="${QDRANT_HEADLESS_SERVICE:-$name-headless}"
domain=""
if [ -n "${QDRANT_NAMESPACE:-}" ]; then
  domain=".$QDRANT_NAMESPACE"
  [ -n "${QDRANT_CLUSTER_DOMAIN:-}" ] && domain="$domain.$QDRANT_CLUSTER_DOMAIN"
elif [ -n "${QDRANT_CLUSTER_DOMAIN:-}" ]; then
  die "QDRANT_CLUSTER_DOMAIN needs QDRANT_NAMESPACE"
fi
port="${QDRANT__CLUSTER__P2P__PORT:-6335}"
[[ "$port" =~ ^[0-9]+$ ]] || die "QDRANT__CLUSTER__P2P__PORT '$port' is not a number"
case "${QDRANT__CLUSTER__P2P__ENABLE_TLS:-false}" in
  true|True|TRUE|1) scheme=https ;;
  *) scheme=http ;;
esac
export QDRANT__CLUSTER__ENABLED="${QDRANT__CLUSTER__ENABLED:-true}"

peer_uri() { echo "$scheme://$name-$1.$headless$domain:$port"; }
own="$(peer_uri "$ordinal")"
seed="${QDRANT_BOOTSTRAP_URI:-$(peer_uri 0)}"

if [ "$seed" = "$own" ]; then
  log "pod $pod (ordinal $ordinal) founds the cluster at $own"
  run "$QDRANT_BIN" --uri "$own" "$@"
fi
log "pod $pod (ordinal $ordinal) joins through $seed as $own"
run "$QDRANT_BIN" --bootstrap "$seed" --uri "$own" "$@"
