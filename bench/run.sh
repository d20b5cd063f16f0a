#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md in one run, peers included, then the tables and plots.
#   bench/run.sh [SCALE] [OUT_DIR]
# SCALE (default 1.0) multiplies every size: 1.0 is what BENCHMARKS.md reports, 0.1 a quick
# run. OUT_DIR (default bench/results) receives one JSON-lines file per workload
# (pit, online, grpc, grpc_throughput, http, materialize, lake, training_memory, ballista,
# ballista_materialize; records described in
# bench/record.py) and tables.md; the plots go to bench/plots/ when OUT_DIR is the default,
# else to OUT_DIR/plots/. Each workload runs once.
#
# Binaries: one `cargo build --release` of everything the run needs, into CARGO_TARGET_DIR
# (default /var/tmp/quiver-release), unless QUIVER_BIN_DIR=DIR holds them already
# (DIR/quiver, DIR/examples/{pit_bench,online_bench,grpc_bench}); then nothing is built.
# BENCH_WORK=DIR is where data is written (default /var/tmp/quiver-bench; removed at the
# end when this script created it, unless BENCH_KEEP=1). The peers' Python environments
# are created on first use (bench/lib.sh): DuckDB in /var/tmp/quiver-duckdb-venv, Feast
# 0.67.0 in /var/tmp/quiver-feast-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
SCALE="${1:-1.0}"
OUT="${2:-bench/results}"
if [ "$OUT" = bench/results ] || [ "$(realpath -m "$OUT")" = "$(realpath -m bench/results)" ]; then
  PLOTS=bench/plots
else
  PLOTS="$OUT/plots"
fi
python3 -c 'import sys; s = float(sys.argv[1]); assert s > 0' "$SCALE" 2>/dev/null ||
  { echo "SCALE must be a positive number, not '$SCALE'" >&2; exit 2; }

# scaled N [MIN]: N x SCALE, rounded, at least MIN (default 1).
scaled() {
  python3 -c 'import sys; print(max(int(sys.argv[3]), round(float(sys.argv[1]) * float(sys.argv[2]))))' \
    "$1" "$SCALE" "${2:-1}"
}

mkdir -p "$OUT"
OUT="$(realpath "$OUT")"
rm -f "$OUT"/*.jsonl "$OUT/tables.md"
export BENCH_RESULTS="$OUT"
BENCH_RUN_COMMAND="$(bench_command bench/run.sh "$@")"
export BENCH_RUN_COMMAND

if [ -z "${QUIVER_BIN_DIR:-}" ]; then
  echo "== building release binaries into $CARGO_TARGET_DIR" >&2
  cargo build --release \
    -p quiver-cli --bin quiver \
    -p quiver-offline --example pit_bench \
    -p quiver-online --example online_bench \
    -p quiver-server --example grpc_bench
  export QUIVER_BIN_DIR="$CARGO_TARGET_DIR/release"
fi
for b in quiver pit_bench online_bench grpc_bench; do bench_bin "$b" >/dev/null; done
BENCH_COMMIT="$(bench_commit)"
export BENCH_COMMIT

WORK="${BENCH_WORK:-/var/tmp/quiver-bench}"
CREATED=0
if [ ! -e "$WORK" ]; then
  mkdir -p "$WORK"
  CREATED=1
fi
WORK="$(realpath "$WORK")"
cleanup() {
  if [ "$CREATED" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

step() { echo "== $*" >&2; }

# Sizes.
LAKE_ROWS=$(scaled 10000000 1000)
DRIVERS=$(scaled 60000 100)
ENTITIES=$(scaled 100000 1000)
BATCHES=1,10,100,1000
STORE_ITERATIONS=$(scaled 2000 200)
GRPC_CALLS=$(scaled 5000 200)
GRPC_SECONDS=$(python3 -c 'import sys; print(max(0.5, round(3 * float(sys.argv[1]), 2)))' "$SCALE")
FEAST_CALLS=$(scaled 1000 100)

step "sample lake: $LAKE_ROWS rows"
bench/lake.sh "$LAKE_ROWS" "$DRIVERS" >/dev/null

step "online store reads: $ENTITIES entities, batches $BATCHES"
bench/online.sh "$ENTITIES" "$STORE_ITERATIONS" "$BATCHES" >/dev/null

step "gRPC online reads: $ENTITIES entities, batches $BATCHES, throughput ${GRPC_SECONDS}s per setting"
BATCHES="$BATCHES" bench/grpc.sh "$ENTITIES" "$GRPC_CALLS" "$GRPC_SECONDS" >/dev/null

step "Feast online reads: $ENTITIES entities, batches $BATCHES"
bench/feast_online.sh "$ENTITIES" "$FEAST_CALLS" "$BATCHES" >/dev/null

HTTP_ROWS=$(scaled 1000000 10000)
HTTP_SECONDS=$(scaled 20 2)
step "HTTP online reads under wrk, Quiver and Feast's feature server: $HTTP_ROWS rows over $DRIVERS drivers, batches 1 and 100, ${HTTP_SECONDS}s each"
bench/http.sh "$HTTP_ROWS" "$DRIVERS" "$HTTP_SECONDS" >/dev/null

step "Python client: quiver_client, raw stub and Feast, $ENTITIES entities; training set of $(scaled 1000000 1000) rows"
bench/python_client.sh "$ENTITIES" "$GRPC_CALLS" "$(scaled 1000000 1000)" >/dev/null

for fraction in 0.1 0.3 1.0; do
  spine=$(scaled "$(python3 -c "print(1000000 * $fraction)")" 100)
  step "point-in-time join: spine $spine rows, feature data x$SCALE"
  bench/pit.sh "$WORK/pit" "$spine" "$SCALE" >/dev/null
done

for base in 1000000 3000000 10000000; do
  rows=$(scaled "$base" 1000)
  step "materialization: $rows rows over $DRIVERS drivers (Quiver, then Feast on the same lake)"
  bench/materialize.sh "$WORK/mat-$rows" "$rows" "$DRIVERS" 1 >/dev/null
  bench/feast_materialize.sh "$WORK/mat-$rows/lake" 1 >/dev/null
done

spine=$(scaled 1000000 1000)
step "training sets on the local engine and on Ballista clusters of 1 and 2 executors: spine $spine rows, feature data x$SCALE"
bench/ballista.sh "$WORK/pit" "$spine" "$SCALE" 3 >/dev/null

rows=$(scaled 10000000 1000)
step "materialization on the local engine and on Ballista clusters of 1 and 2 executors: $rows rows over $DRIVERS drivers"
bench/ballista_materialize.sh "$WORK/mat-$rows" "$rows" "$DRIVERS" 2 >/dev/null

spine=$(scaled 5000000 1000)
step "training sets under a memory limit: spine $spine rows at 256MiB, 512MiB and 2GiB"
bench/training_memory.sh "$WORK/train-mem" "$spine" 256MiB,512MiB,2GiB >/dev/null

step "tables and plots"
python3 bench/report.py "$OUT" --plots "$PLOTS" | tee "$OUT/tables.md"
