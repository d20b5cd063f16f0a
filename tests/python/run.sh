#!/usr/bin/env bash
# Runs the Python client checks against a running `quiver serve`.
#   tests/python/run.sh VENV_DIR ARGS...   (ARGS go to client_check.py)
# Creates the virtual environment VENV_DIR on first use and installs requirements.txt into
# it (again whenever that file changes), then generates the gRPC stubs from proto/ into a
# temporary folder and runs client_check.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$1"
shift
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
stubs="$(mktemp -d)"
trap 'rm -rf "$stubs"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I "$repo/proto" --python_out="$stubs" --grpc_python_out="$stubs" \
  "$repo"/proto/quiver/v1/*.proto
PYTHONPATH="$stubs" "$venv/bin/python" "$here/client_check.py" "$@"
