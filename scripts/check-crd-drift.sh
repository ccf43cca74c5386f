#!/usr/bin/env bash
# Fails when deploy/crds/qdrantcluster.yaml differs from what `crdgen` generates from
# operator/src/crd.rs. Fix with:
#   cargo run --release -p operator --bin crdgen > deploy/crds/qdrantcluster.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
committed=deploy/crds/qdrantcluster.yaml
generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
# The workspace build (scripts/test.sh's first step) already made crdgen (same command: a no-op); `cargo run -p operator`
# would build the operator's dependencies again with other features.
cargo build --release --quiet --workspace --bins --tests
target/release/crdgen > "$generated"
if [ ! -f "$committed" ]; then
  echo "check-crd-drift: $committed is missing" >&2
  exit 1
fi
if ! diff -u "$committed" "$generated"; then
  echo "check-crd-drift: $committed is out of date; regenerate it with:" >&2
  echo "  cargo run --release -p operator --bin crdgen > $committed" >&2
  exit 1
fi
echo "check-crd-drift: $committed is up to date"
