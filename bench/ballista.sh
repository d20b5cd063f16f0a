#!/usr/bin/env bash
# Training sets on the local engine and on an Apache Ballista cluster of `quiver ballista`
# processes on this same machine, on the point-in-time workload of bench/pit.sh:
#   bench/ballista.sh [DIR] [SPINE_ROWS] [SCALE] [RUNS]
# SCALE multiplies the feature rows (1.0: 7.3 M + 3 M rows). The first run on DIR writes the
# sources and materializes them (bench/pit.sh's program, not timed here). Then, RUNS times
# (default 3) in turn: `quiver historical` on the local engine; on a cluster of one
# executor running two tasks at once; on a cluster of two executors running one task each
# (the same two task slots: this machine's two cores). The whole command is timed: reading
# and hashing the spine, copying it into the offline store for the cluster, the job, and
# writing the output file and its manifest. Each cluster's output must equal the local
# engine's, row for row. Prints one record per run (bench/record.py, workload "ballista").
# QUIVER_MEMORY_LIMIT (default 1GiB) is the memory of each process (client and executors);
# PARTITIONS (default 4) is offline_engine.partitions; PIT_BIN names the data generator
# (bench/pit.sh's program) when it is not to be built here.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
DIR="$(realpath -m "${1:-/tmp/quiver-pit-bench}")"
ROWS="${2:-1000000}"
SCALE="${3:-1.0}"
RUNS="${4:-3}"
CMD="$(bench_command "$0" "$DIR" "$ROWS" "$SCALE" "$RUNS")"
# shellcheck source=bench/cluster.sh
. "$BENCH_ROOT/bench/cluster.sh"
cluster_settings
bench_build -p quiver-cli --bin quiver
BIN="$(bench_bin quiver)"
# PIT_BIN: the data generator to use (any build: it only writes and materializes the data).
if [ -n "${PIT_BIN:-}" ]; then
  PIT="$(realpath "$PIT_BIN")"
else
  bench_build -p quiver-offline --example pit_bench
  PIT="$(bench_bin pit_bench)"
fi
PY="$(duckdb_python)"

mkdir -p "$DIR"
reset_for_scale "$DIR" "$SCALE"
QUIVER_MEMORY_LIMIT="$MEMORY" "$PIT" "$DIR" "$ROWS" "$SCALE" > /dev/null
# The benchmark program's registry, lake and offline store as a project `quiver` can open.
cat > "$DIR/quiver.yaml" <<EOF
project: bench
registry: registry/
lake: lake/
offline_store: offline/
EOF

WORK="$(mktemp -d)"
trap 'stop_cluster; rm -rf "$WORK"' EXIT

# historical CONFIG OUT: one timed `quiver historical` with the config CONFIG into $DIR/OUT.
historical() {
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$BIN" --config "$1" --memory-limit "$MEMORY" \
    historical --entities "$DIR/spine-$ROWS.parquet" \
    --features stats_a:f1,stats_a:f2,stats_a:f3,stats_b:f1,stats_b:f2,stats_b:f3 \
    --full-feature-names --overwrite --out "$DIR/$2" > /dev/null
}

same_rows() {
  "$PY" - "$DIR/out_local.parquet" "$DIR/$1" <<'PY'
import sys
import pyarrow.parquet as pq
a, b = (pq.read_table(p) for p in sys.argv[1:])
if not a.equals(b):
    sys.exit(f"{sys.argv[2]} differs from the local engine's training set")
PY
}

record() {
  local engine="$1" executors="$2" tasks="$3" rss="$4"
  echo "{\"spine_rows\": $ROWS, \"executors\": $executors, \"executor_peak_rss_mib\": $rss}" |
    bench_record ballista --engine "$engine" --command "$CMD" --time "$WORK/time" \
      --param scale="$SCALE" --param partitions="$PARTITIONS" --param tasks_per_executor="$tasks"
}

for ((run = 1; run <= RUNS; run++)); do
  historical "$DIR/quiver.yaml" out_local.parquet
  record local 0 0 0
  for shape in "1 2" "2 1"; do
    read -r executors tasks <<< "$shape"
    start_cluster "$executors" "$tasks"
    # offline_engine.partitions through the config (the flag takes only the scheduler).
    printf 'offline_engine: {type: ballista, scheduler: "%s", partitions: %s}\n' "$URL" "$PARTITIONS" \
      > "$WORK/engine.yaml"
    cat "$DIR/quiver.yaml" "$WORK/engine.yaml" > "$DIR/quiver-cluster.yaml"
    historical "$DIR/quiver-cluster.yaml" out_ballista.parquet
    rss="$(peak_rss_mib "${PIDS[@]:1}")"
    stop_cluster
    same_rows out_ballista.parquet
    record "ballista-$executors" "$executors" "$tasks" "$rss"
  done
done
