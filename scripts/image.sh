#!/usr/bin/env bash
# Builds the container images offline, from what is on this machine:
#   1. the base image the Dockerfiles name (debian:bookworm-slim), made with debootstrap when missing
#      (docker/build-base-image.sh; cached);
#   2. the release binaries on the host, built exactly as scripts/test.sh builds the workspace
#      (`cargo build --release --workspace --bins --tests`: same features, so no rebuild, and a
#      no-op when test.sh just built);
#   3. `docker build --target runtime-prebuilt` of node/Dockerfile and operator/Dockerfile, which copy
#      those binaries (debug info stripped into target/image/) into the same runtime stage a normal
#      multi-stage build produces.
# Prints each image's size. A normal machine needs none of this: `docker build -f node/Dockerfile .`
#
# Usage: scripts/image.sh [node] [operator]        (default: both)
# Env:   NODE_IMAGE (default qdrant-node:dev), OPERATOR_IMAGE (default qdrant-operator:dev); each
#        image is also tagged with the workspace version (qdrant-node:0.1.0), the charts' appVersion.
#        BASE_IMAGE (default debian:bookworm-slim),
#        SKIP_CARGO=1  use the binaries already in target/release (fails if one is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_IMAGE="${NODE_IMAGE:-qdrant-node:dev}"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-qdrant-operator:dev}"
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(node operator)
for t in "${targets[@]}"; do
  case "$t" in node|operator) ;; *) echo "image.sh: unknown image '$t' (node, operator)" >&2; exit 2 ;; esac
done

command -v docker >/dev/null || { echo "image.sh: docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "image.sh: the Docker engine is not reachable" >&2; exit 1; }

docker/build-base-image.sh "$BASE_IMAGE"

if [ "${SKIP_CARGO:-0}" != 1 ]; then
  [ -x scripts/setup.sh ] && scripts/setup.sh >&2
  echo "image.sh: cargo build --release --workspace --bins --tests" >&2
  nice cargo build --release --workspace --bins --tests >&2
fi

for t in "${targets[@]}"; do
  case "$t" in
    node)     pkg=node;     bin=qdrant;   image="$NODE_IMAGE" ;;
    operator) pkg=operator; bin=operator; image="$OPERATOR_IMAGE" ;;
  esac
  [ -x "target/release/$bin" ] || { echo "image.sh: target/release/$bin is missing" >&2; exit 1; }
  # The release profile keeps line tables of the workspace crates: strip them for the image.
  mkdir -p target/image
  if command -v strip >/dev/null 2>&1; then
    strip --strip-debug -o "target/image/$bin.tmp" "target/release/$bin"
  else
    cp "target/release/$bin" "target/image/$bin.tmp"
  fi
  mv "target/image/$bin.tmp" "target/image/$bin"
  repo="$image"
  [[ "${image##*/}" == *:* ]] && repo="${image%:*}"
  start=$(date +%s)
  # The classic builder prints every step; keep its log for failures only.
  log=$(mktemp)
  if ! docker build -f "$pkg/Dockerfile" --target runtime-prebuilt \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$VERSION" --build-arg PREBUILT="target/image/$bin" \
        -t "$image" -t "$repo:$VERSION" . >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "image.sh: docker build of $image failed" >&2
    exit 1
  fi
  rm -f "$log"
  size=$(docker image inspect -f '{{.Size}}' "$image")
  awk -v i="$image" -v s="$size" -v b="$(stat -c %s "target/image/$bin")" -v t="$(( $(date +%s) - start ))" \
    'BEGIN { printf "image.sh: %-28s %6.1f MB  (stripped binary %.1f MB; docker build %ss)\n", i, s/1e6, b/1e6, t }'
done
