#!/usr/bin/env bash
# Materialization on the local engine and on an Apache Ballista cluster of `quiver ballista`
# processes on this same machine, on bench/materialize.sh's workload (driver_stats over
# DRIVERS drivers, the whole week, into the offline store and a redis-server started here):
#   bench/ballista_materialize.sh [DIR] [ROWS] [DRIVERS] [RUNS]
# RUNS times (default 2) in turn, each from an empty offline store, empty materialization
# state and an empty Redis: `quiver materialize` on the local engine; on a cluster of one
# executor running two tasks at once; on a cluster of two executors running one task each
# (the same two task slots: this machine's two cores). The whole command is timed: on a
# cluster, the hash shuffle by driver, the sort and the Parquet writes run on the executors,
# and the client merges their reports, commits and writes Redis. Each cluster run must write
# the same table (row count, distinct drivers, sums and time range, read with DuckDB) and the
# same Redis keys as the local run. Prints one record per run (bench/record.py, workload
# "ballista_materialize"). QUIVER_MEMORY_LIMIT (default 1GiB) is the memory of each process;
# PARTITIONS (default 4) is offline_engine.partitions.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
DIR="$(realpath -m "${1:-/tmp/quiver-mat-bench}")"
ROWS="${2:-10000000}"
DRIVERS="${3:-60000}"
RUNS="${4:-2}"
CMD="$(bench_command "$0" "$DIR" "$ROWS" "$DRIVERS" "$RUNS")"
# shellcheck source=bench/cluster.sh
. "$BENCH_ROOT/bench/cluster.sh"
cluster_settings
quiver_bin
PY="$(duckdb_python)"

. "$BENCH_ROOT/bench/redis.sh"
WORK="$(mktemp -d)"
trap 'stop_cluster; stop_redis; rm -rf "$WORK"' EXIT
start_redis

rides_project "$DIR" "$BENCH_ROOT/feature_defs/rides" "$REDIS_PORT" "$ROWS" "$DRIVERS"
cd "$DIR"

# materialize CONFIG: one timed materialization of the week from an empty state.
materialize() {
  rm -rf .quiver
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  "$BIN" apply >/dev/null
  sync
  /usr/bin/time -o "$WORK/time" -f '%e %M' "$BIN" --config "$1" --memory-limit "$MEMORY" --json \
    materialize --start 2026-01-01 --end 2026-01-08 --views driver_stats > "$WORK/report"
}

# table_digest: what the committed table holds, as one line (every file in the folder is
# committed: no run here fails).
table_digest() {
  "$PY" - "$DIR/.quiver/offline/driver_stats" <<'PY'
import sys
import duckdb
row = duckdb.sql(
    "SELECT count(*), count(DISTINCT driver_id), round(sum(conv_rate), 3), round(sum(acc_rate), 3), "
    "sum(avg_daily_trips), min(event_timestamp), max(event_timestamp) "
    f"FROM read_parquet('{sys.argv[1]}/**/*.parquet')"
).fetchall()[0]
print(row)
PY
}

record() {
  local engine="$1" executors="$2" tasks="$3" rss="$4"
  bench_record ballista_materialize --engine "$engine" --command "$CMD" --time "$WORK/time" \
    --param rows="$ROWS" --param drivers="$DRIVERS" --param executors="$executors" \
    --param partitions="$PARTITIONS" --param tasks_per_executor="$tasks" \
    --set executor_peak_rss_mib="$rss" --set redis_keys="$(redis-cli -p "$REDIS_PORT" dbsize)" < "$WORK/report"
}

for ((run = 1; run <= RUNS; run++)); do
  materialize "$DIR/quiver.yaml"
  local_digest="$(table_digest)"
  local_keys="$(redis-cli -p "$REDIS_PORT" dbsize)"
  record local 0 0 0
  for shape in "1 2" "2 1"; do
    read -r executors tasks <<< "$shape"
    start_cluster "$executors" "$tasks"
    printf 'offline_engine: {type: ballista, scheduler: "%s", partitions: %s}\n' "$URL" "$PARTITIONS" \
      > "$WORK/engine.yaml"
    cat "$DIR/quiver.yaml" "$WORK/engine.yaml" > "$DIR/quiver-cluster.yaml"
    materialize "$DIR/quiver-cluster.yaml"
    rss="$(peak_rss_mib "${PIDS[@]:1}")"
    stop_cluster
    digest="$(table_digest)"
    keys="$(redis-cli -p "$REDIS_PORT" dbsize)"
    if [ "$digest" != "$local_digest" ] || [ "$keys" != "$local_keys" ]; then
      echo "the cluster of $executors wrote $digest and $keys Redis keys; the local engine $local_digest and $local_keys" >&2
      exit 1
    fi
    record "ballista-$executors" "$executors" "$tasks" "$rss"
  done
done
