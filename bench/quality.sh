#!/usr/bin/env bash
# What expectations and statistics cost: materializing driver_stats (10 M rows by default)
# with a build that has neither (A) against a build that checks five expectations and keeps
# statistics of every feature (B), on the same lake, runs alternating A, B, A, B ...
#   bench/quality.sh A_BIN B_BIN [ROWS] [RUNS] [DIR]
# A_BIN and B_BIN are `quiver` binaries; A_COMMIT and B_COMMIT name them in the records
# (default: their folder names). A runs feature_defs/rides without any `expectations:`, B
# the same with these on driver_stats, under `on_failure: warn` (the sample lake's windows
# pass or break them; either way the window is checked and committed):
#   conv_rate and acc_rate between 0 and 1, avg_daily_trips at least 0,
#   unique [driver_id, event_timestamp, created_timestamp], rows at least 1000.
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

# The two definition folders: A's without expectations, B's with the five.
plain_defs "$DIR/defs-plain"
plain_defs "$DIR/defs-five"
python3 - "$DIR/defs-five/views.yaml" <<'PY'
import pathlib, sys
views = pathlib.Path(sys.argv[1])
marker = "    tags: {team: pricing, tier: gold}\n"
text = views.read_text()
assert marker in text, "driver_stats' tags line moved: update bench/quality.sh"
views.write_text(text.replace(marker, marker + """    expectations:
      - {column: conv_rate, min: 0, max: 1}
      - {column: acc_rate, min: 0, max: 1}
      - {column: avg_daily_trips, min: 0}
      - {unique: [driver_id, event_timestamp, created_timestamp]}
      - {rows: {min: 1000}}
    on_failure: warn
""", 1))
PY

for run in $(seq 1 "$RUNS"); do
  echo "== run $run of $RUNS" >&2
  BENCH_COMMIT="$A_COMMIT" QUIVER_BIN="$A_BIN" BENCH_DEFS="$DIR/defs-plain" \
    bench/materialize.sh "$DIR/project" "$ROWS" 60000 1 >/dev/null
  BENCH_COMMIT="$B_COMMIT" QUIVER_BIN="$B_BIN" BENCH_DEFS="$DIR/defs-five" \
    bench/materialize.sh "$DIR/project" "$ROWS" 60000 1 >/dev/null
done
python3 bench/ab.py "$OUT" "$A_COMMIT" "$B_COMMIT"
