#!/usr/bin/env bash
# Fails when deploy/crds/*.yaml differ from what `crdgen` generates from operator/src/crd.rs and
# operator/src/crd_backup.rs. Fix with:
#   cargo run --release -p operator --bin crdgen > deploy/crds/qdrantcluster.yaml
#   cargo run --release -p operator --bin crdgen qdrantbackup > deploy/crds/qdrantbackup.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
# The workspace build (scripts/test.sh's first step) already made crdgen (same command: a no-op); `cargo run -p operator`
# would build the operator's dependencies again with other features.
cargo build --release --quiet --workspace --bins --tests
status=0
for crd in qdrantcluster qdrantbackup; do
  committed=deploy/crds/$crd.yaml
  target/release/crdgen "$crd" > "$generated"
  if [ ! -f "$committed" ]; then
    echo "check-crd-drift: $committed is missing" >&2
    status=1
    continue
  fi
  if ! diff -u "$committed" "$generated"; then
    echo "check-crd-drift: $committed is out of date; regenerate it with:" >&2
    echo "  cargo run --release -p operator --bin crdgen $crd > $committed" >&2
    status=1
    continue
  fi
  echo "check-crd-drift: $committed is up to date"
done
exit $status
