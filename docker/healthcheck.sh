#!/usr/bin/env bash
# Docker HEALTHCHECK of the node image without curl: HTTP/1.0 GET over bash's /dev/tcp.
# Healthy when GET <path> (default /readyz) on the local REST port answers 2xx.
# Kubernetes ignores HEALTHCHECK; the operator uses httpGet probes on /readyz and /livez instead.
set -uo pipefail
path="${1:-/readyz}"
port="${QDRANT__SERVICE__HTTP_PORT:-6333}"
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 5 status <&3 || exit 1
case "$status" in
  "HTTP/1."[01]" 2"*) exit 0 ;;
  *) echo "unhealthy: $status" >&2; exit 1 ;;
esac
