#!/usr/bin/env bash
# Offline validation of deploy/ (and of the objects the operator's builders render):
# Kubernetes schemas via PyPI kubernetes-validate, the example QdrantClusters against the generated
# CRD's schema and CEL rules. Exits non-zero on any problem. See scripts/check_deploy.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(scripts/py-env.sh)
"$bin/python" scripts/check_deploy.py
