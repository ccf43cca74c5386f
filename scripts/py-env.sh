#!/usr/bin/env bash
# Creates (or refreshes) the project's Python virtualenv at .venv from tests/requirements.txt.
# Prints the venv's bin directory. Re-installs only when the requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-$PWD/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
stamp="$VENV/.requirements.sha"
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt >&2
  echo "$want" > "$stamp"
fi
echo "$VENV/bin"
