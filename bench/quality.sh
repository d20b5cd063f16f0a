#!/usr/bin/env bash
# What expectations and statistics cost: materializing driver_stats (10 M rows by default)
# with a build that has neither (A) against a build that checks five expectations and keeps
# statistics of every feature (B), and B with a sixth, `unique`, on the same lake, runs
# alternating A, B, B+unique, A, ...
#   bench/quality.sh A_BIN B_BIN [ROWS] [RUNS] [DIR]
# A_BIN and B_BIN are `quiver` binaries; A_COMMIT and B_COMMIT name them in the records
# (default: their folder names; B's sixth-expectation runs are recorded as B_COMMIT+unique).
# A runs feature_defs/rides without any `expectations:`, B the same with these on
# driver_stats, under `on_failure: warn` (the window is checked and committed either way):
#   conv_rate and acc_rate between 0 and 1, avg_daily_trips at least 0, rows at least 1000,
#   freshness 1d; and, in the third runs, unique [driver_id, event_timestamp, created_timestamp].
# OUT (default bench/results-quality) receives the records; the comparison (bench/ab.py) is
# printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
[ $# -ge 2 ] || { echo "usage: bench/quality.sh A_BIN B_BIN [ROWS] [RUNS] [DIR]" >&2; exit 2; }
A_BIN="$(realpath "$1")"
B_BIN="$(realpath "$2")"
ROWS="${3:-10000000}"
RUNS="${4:-5}"
DIR="${5:-/var/tmp/quiver-quality-bench}"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive whole number, not '$RUNS'" >&2; exit 2; }
A_COMMIT="${A_COMMIT:-$(basename "$(dirname "$A_BIN")")}"
B_COMMIT="${B_COMMIT:-$(basename "$(dirname "$B_BIN")")}"
OUT="$(realpath -m "${OUT:-bench/results-quality}")"
mkdir -p "$OUT" "$DIR"
rm -f "$OUT"/*.jsonl
export BENCH_RESULTS="$OUT" BENCH_PROFILE=release
BENCH_RUN_COMMAND="$(bench_command bench/quality.sh "$@")"
export BENCH_RUN_COMMAND

# The definition folders: A's without expectations; B's with five cheap ones; B's with those
# and a `unique` over the window's keys and times (a set of 16 bytes per row, the costly one).
plain_defs "$DIR/defs-plain"
plain_defs "$DIR/defs-five"
plain_defs "$DIR/defs-unique"
python3 - "$DIR/defs-five/views.yaml" "$DIR/defs-unique/views.yaml" <<'PY'
import pathlib, sys
five = """    expectations:
      - {column: conv_rate, min: 0, max: 1}
      - {column: acc_rate, min: 0, max: 1}
      - {column: avg_daily_trips, min: 0}
      - {rows: {min: 1000}}
      - {freshness: 1d}
"""
unique = five + "      - {unique: [driver_id, event_timestamp, created_timestamp]}\n"
marker = "    tags: {team: pricing, tier: gold}\n"
for path, block in zip(sys.argv[1:], (five, unique)):
    views = pathlib.Path(path)
    text = views.read_text()
    assert marker in text, "driver_stats' tags line moved: update bench/quality.sh"
    views.write_text(text.replace(marker, marker + block + "    on_failure: warn\n", 1))
PY

for run in $(seq 1 "$RUNS"); do
  echo "== run $run of $RUNS" >&2
  BENCH_COMMIT="$A_COMMIT" QUIVER_BIN="$A_BIN" BENCH_DEFS="$DIR/defs-plain" \
    bench/materialize.sh "$DIR/project" "$ROWS" 60000 1 >/dev/null
  BENCH_COMMIT="$B_COMMIT" QUIVER_BIN="$B_BIN" BENCH_DEFS="$DIR/defs-five" \
    bench/materialize.sh "$DIR/project" "$ROWS" 60000 1 >/dev/null
  BENCH_COMMIT="$B_COMMIT+unique" QUIVER_BIN="$B_BIN" BENCH_DEFS="$DIR/defs-unique" \
    bench/materialize.sh "$DIR/project" "$ROWS" 60000 1 >/dev/null
done
python3 bench/ab.py "$OUT" "$A_COMMIT" "$B_COMMIT"
python3 bench/ab.py "$OUT" "$A_COMMIT" "$B_COMMIT+unique"
