#!/usr/bin/env bash
# Builds and starts one node on http://localhost:6333 with the built-in default config
# (storage in ./storage). Extra arguments go to the binary, e.g. --config-path my.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -p node
exec ./target/release/qdrant "$@"
