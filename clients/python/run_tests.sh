#!/usr/bin/env bash
# Tests the Python client in a fresh virtual environment against real servers.
#
#   clients/python/run_tests.sh [VENV_DIR]
#
# Creates VENV_DIR afresh (default: a temporary folder, removed afterwards), installs the
# client from this folder with its pandas and polars extras plus requirements-test.txt, checks
# the committed gRPC stubs against proto/ (check_stubs.sh), and runs pytest on tests/.
# Needs python3 (3.10+) with venv, PyPI access, redis-server on the PATH, and the quiver
# binary at $QUIVER_BIN (default /var/tmp/quiver-target/debug/quiver). Extra arguments after
# VENV_DIR go to pytest.
#
# Exit code: pytest's; if pytest passed but the stubs drifted from proto/, 1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [[ $# -ge 1 ]]; then
  venv="$1"
  shift
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  venv="$tmp/venv"
fi

python3 -m venv --clear "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$here/requirements-test.txt" "$here[pandas,polars]"

stubs=0
PYTHON="$venv/bin/python" "$here/check_stubs.sh" || stubs=$?

# pytest's console script, from the tests folder: quiver_client is imported from the
# installed package, not from the source tree.
cd "$here/tests"
tests=0
"$venv/bin/pytest" -p no:cacheprovider "$@" . || tests=$?
if [[ $tests -ne 0 ]]; then
  exit "$tests"
fi
if [[ $stubs -ne 0 ]]; then
  echo "run_tests.sh: the tests passed, but check_stubs.sh failed ($stubs)" >&2
  exit 1
fi
