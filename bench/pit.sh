#!/usr/bin/env bash
# Point-in-time join benchmark: Quiver and a hand-written DuckDB ASOF join on the same data,
# side by side in one run, then a cell-by-cell comparison of their outputs.
#   bench/pit.sh [DIR] [SPINE_ROWS] [SCALE]
# Needs: a release build of the bench example (built here), python3 (a venv with duckdb and
# pyarrow is created under DIR/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-/tmp/quiver-pit-bench}"
ROWS="${2:-1000000}"
SCALE="${3:-1.0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/quiver-target}"
mkdir -p "$DIR"
cargo build --release -q -p quiver-offline --example pit_bench
if [ ! -x "$DIR/.venv/bin/python" ]; then
  python3 -m venv "$DIR/.venv"
  "$DIR/.venv/bin/pip" install -q duckdb pyarrow
fi
# First run writes the data and materializes it; the timed runs reuse both.
"$CARGO_TARGET_DIR/release/examples/pit_bench" "$DIR" "$ROWS" "$SCALE" > /dev/null
echo "quiver: $("$CARGO_TARGET_DIR/release/examples/pit_bench" "$DIR" "$ROWS" "$SCALE")"
echo "duckdb: $("$DIR/.venv/bin/python" bench/pit_duckdb.py "$DIR" "$ROWS")"
echo "compare: $("$DIR/.venv/bin/python" bench/pit_duckdb.py "$DIR" "$ROWS" --compare)"
