#!/usr/bin/env bash
# Two builds of Quiver on the same data, runs alternating B, A, B, A ...: materialization,
# a training set, and gRPC online reads (latency), each through its own bench script.
#   bench/ab.sh A_DIR B_DIR [RUNS] [SCALE]
# A_DIR and B_DIR hold release binaries laid out as for QUIVER_BIN_DIR (DIR/quiver and
# DIR/examples/grpc_bench); A_COMMIT and B_COMMIT name the commits the records carry
# (default: each folder's name). RUNS (default 5) runs per build and workload; SCALE
# (default 1.0) multiplies the sizes: 10 M driver_stats rows over 60 000 drivers to
# materialize, a 5 M-row spine for `historical --service ride_ranking_v1` at
# --memory-limit 2GiB, 100 000 entities per view and 5 000 calls per batch size (1 and 100)
# for gRPC (server and client in two processes: each build's server, B's client, so that
# only the server differs). OUT (default bench/results-ab) receives the records (bench/record.py); the
# comparison (bench/ab.py: medians per build and B ÷ A) is printed at the end.
# BENCH_WORK (default /var/tmp/quiver-ab) holds the data, reused between invocations.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
[ $# -ge 2 ] || { echo "usage: bench/ab.sh A_DIR B_DIR [RUNS] [SCALE]" >&2; exit 2; }
A_DIR="$(realpath "$1")"
B_DIR="$(realpath "$2")"
RUNS="${3:-5}"
SCALE="${4:-1.0}"
for dir in "$A_DIR" "$B_DIR"; do
  for b in quiver examples/grpc_bench; do
    [ -x "$dir/$b" ] || { echo "no binary at $dir/$b" >&2; exit 2; }
  done
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive whole number, not '$RUNS'" >&2; exit 2; }
python3 -c 'import sys; assert float(sys.argv[1]) > 0' "$SCALE" 2>/dev/null ||
  { echo "SCALE must be a positive number, not '$SCALE'" >&2; exit 2; }
scaled() {
  python3 -c 'import sys; print(max(int(sys.argv[3]), round(float(sys.argv[1]) * float(sys.argv[2]))))' \
    "$1" "$SCALE" "${2:-1}"
}
# The gRPC client: B's grpc_bench unless CLIENT_DIR names another folder holding one (a build
# whose grpc_bench prints JSON lines, when B's predates them).
CLIENT_DIR="$(realpath "${CLIENT_DIR:-$B_DIR}")"
A_COMMIT="${A_COMMIT:-$(basename "$A_DIR")}"
B_COMMIT="${B_COMMIT:-$(basename "$B_DIR")}"
OUT="$(realpath -m "${OUT:-bench/results-ab}")"
WORK="${BENCH_WORK:-/var/tmp/quiver-ab}"
mkdir -p "$OUT" "$WORK"
rm -f "$OUT"/*.jsonl
export BENCH_RESULTS="$OUT" BENCH_PROFILE=release
BENCH_RUN_COMMAND="$(bench_command bench/ab.sh "$@")"
export BENCH_RUN_COMMAND

# Both builds read the example definitions without expectations or drift thresholds, which
# builds before them refuse.
plain_defs "$WORK/defs"
export BENCH_DEFS="$WORK/defs"

MAT_ROWS="$(scaled 10000000 1000)"
MAT_DRIVERS="$(scaled 60000 10)"
SPINE_ROWS="$(scaled 5000000 1000)"
ENTITIES="$(scaled 100000 100)"
CALLS="$(scaled 5000 100)"

# One run of every workload with the build in DIR, recorded against COMMIT.
run_build() {
  local dir="$1" commit="$2"
  echo "== $commit: materialization" >&2
  BENCH_COMMIT="$commit" QUIVER_BIN="$dir/quiver" \
    bench/materialize.sh "$WORK/materialize" "$MAT_ROWS" "$MAT_DRIVERS" 1 >/dev/null
  echo "== $commit: training set" >&2
  BENCH_COMMIT="$commit" QUIVER_BIN="$dir/quiver" \
    bench/training_memory.sh "$WORK/training" "$SPINE_ROWS" 2GiB >/dev/null
  echo "== $commit: gRPC online reads" >&2
  BENCH_COMMIT="$commit" QUIVER_BIN_DIR="$CLIENT_DIR" SPLIT=1 SERVER_BIN="$dir/examples/grpc_bench" BATCHES=1,100 \
    bench/grpc.sh "$ENTITIES" "$CALLS" 0 >/dev/null
}

# B goes first: the data each script writes on its first run is written by the newer build
# (an older one may lack options such as `sample-lake --spine`).
for run in $(seq 1 "$RUNS"); do
  echo "== run $run of $RUNS" >&2
  run_build "$B_DIR" "$B_COMMIT"
  run_build "$A_DIR" "$A_COMMIT"
done
python3 bench/ab.py "$OUT" "$A_COMMIT" "$B_COMMIT"
