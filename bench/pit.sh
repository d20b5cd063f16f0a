#!/usr/bin/env bash
# Point-in-time join benchmark: Quiver's training set and a hand-written DuckDB ASOF join
# (bench/pit_duckdb.py) on the same files, one after the other, then a cell-by-cell
# comparison of their outputs.
#   bench/pit.sh [DIR] [SPINE_ROWS] [SCALE]
# SCALE multiplies the feature rows (1.0: 7.3 M + 3 M rows). The first run on DIR writes the
# sources and materializes them into Delta tables (not timed here); later runs with the same
# SCALE reuse them, and each spine size is written once. Prints three records (quiver,
# duckdb, compare; see bench/record.py). QUIVER_MEMORY_LIMIT (default 1 GiB) sets Quiver's
# memory pool. DuckDB and pyarrow live in a venv (DUCKDB_VENV, default
# /var/tmp/quiver-duckdb-venv), created on first use.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
DIR="${1:-/tmp/quiver-pit-bench}"
ROWS="${2:-1000000}"
SCALE="${3:-1.0}"
CMD="$(bench_command "$0" "$DIR" "$ROWS" "$SCALE")"
if [ -n "${QUIVER_MEMORY_LIMIT:-}" ]; then
  CMD="QUIVER_MEMORY_LIMIT=$QUIVER_MEMORY_LIMIT $CMD"
fi
bench_build -p quiver-offline --example pit_bench
BIN="$(bench_bin pit_bench)"
PY="$(duckdb_python)"

mkdir -p "$DIR"
# What DIR holds was made for one SCALE: start again when it was made for another.
reset_for_scale "$DIR" "$SCALE"
# Writes what is missing (sources, spine, Delta tables), then times the join once; the
# timed run below reuses all of it.
"$BIN" "$DIR" "$ROWS" "$SCALE" > /dev/null
"$BIN" "$DIR" "$ROWS" "$SCALE" | bench_record pit --engine quiver --command "$CMD" --param scale="$SCALE"
"$PY" "$BENCH_ROOT/bench/pit_duckdb.py" "$DIR" "$ROWS" |
  bench_record pit --engine duckdb --command "$CMD" --param scale="$SCALE"
"$PY" "$BENCH_ROOT/bench/pit_duckdb.py" "$DIR" "$ROWS" --compare |
  bench_record pit --engine compare --command "$CMD" --param scale="$SCALE"
