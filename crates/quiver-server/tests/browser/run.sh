#!/usr/bin/env bash
# The catalog's browser test (test_catalog.py): headless Chromium through Playwright for
# Python, against `quiver serve --http-addr` on a quickstart project; then Schemathesis
# against the HTTP API's OpenAPI document (test_api_schema.py). Needs `chromium`
# (Debian: apt-get install chromium) and a built quiver binary (cargo build --workspace).
# Screenshots go to $ARTIFACTS (default: a temporary folder, printed at the end).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${QUIVER_BROWSER_VENV:-${TMPDIR:-/tmp}/quiver-browser-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# Playwright drives the system's Chromium: no browser is downloaded.
"$venv/bin/python" -c "import playwright, schemathesis" 2>/dev/null ||
  "$venv/bin/pip" install -q "playwright==1.*" "schemathesis==4.*"
"$venv/bin/python" "$here/test_catalog.py"
# Then the HTTP API against its OpenAPI document.
"$venv/bin/python" "$here/test_api_schema.py"
