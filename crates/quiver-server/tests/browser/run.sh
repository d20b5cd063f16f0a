#!/usr/bin/env bash
# The catalog's browser test (test_catalog.py): headless Chromium through Playwright for
# Python and headless Firefox through WebDriver BiDi (firefox.py), against `quiver serve
# --http-addr` on a quickstart project; then Schemathesis against the HTTP API's OpenAPI
# document (test_api_schema.py). Needs `chromium` and `firefox-esr` (Debian: apt-get
# install chromium firefox-esr) and a built quiver binary (cargo build --workspace).
# Screenshots go to $ARTIFACTS (default: a temporary folder, printed at the end).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${QUIVER_BROWSER_VENV:-${TMPDIR:-/tmp}/quiver-browser-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# Playwright drives the system's Chromium, websockets speaks BiDi to the system's Firefox:
# no browser is downloaded.
"$venv/bin/python" -c "import playwright, schemathesis, websockets" 2>/dev/null ||
  "$venv/bin/pip" install -q "playwright==1.*" "schemathesis==4.*" "websockets==15.*"
"$venv/bin/python" "$here/test_catalog.py"
# Then the HTTP API against its OpenAPI document.
"$venv/bin/python" "$here/test_api_schema.py"
