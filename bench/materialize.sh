#!/usr/bin/env bash
# Materialization into the offline store and a redis-server (started here on a free port):
# the online issue's workload, 10 M driver_stats rows over 60 000 drivers, the whole week.
#   bench/materialize.sh [DIR] [ROWS] [DRIVERS] [RUNS]
# QUIVER_BIN=path runs that binary instead of the release one (to compare two builds on the
# same lake, alternating); QUIVER_MEMORY_LIMIT=L passes --memory-limit L; BENCH_DEFS=DIR
# takes the definitions from DIR instead of feature_defs/rides (e.g. with other expectations).
# The sample lake is written under DIR/lake once per ROWS and DRIVERS and reused. Each run
# starts from an empty offline table, empty materialization state and an empty Redis, and
# prints one record (see bench/record.py): the CLI report's seconds (scan, sort, Delta commit,
# latest row per entity, Redis write) with /usr/bin/time's wall time and peak memory, and the
# Redis key count afterwards.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
DIR="${1:-/tmp/quiver-mat-bench}"
ROWS="${2:-10000000}"
DRIVERS="${3:-60000}"
RUNS="${4:-2}"
CMD="$(bench_command "$0" "$DIR" "$ROWS" "$DRIVERS" 1)"
LIMIT=()
if [ -n "${QUIVER_MEMORY_LIMIT:-}" ]; then
  LIMIT=(--memory-limit "$QUIVER_MEMORY_LIMIT")
  CMD="QUIVER_MEMORY_LIMIT=$QUIVER_MEMORY_LIMIT $CMD"
fi
quiver_bin

. "$BENCH_ROOT/bench/redis.sh"
TMP=$(mktemp -d)
trap 'stop_redis; rm -rf "$TMP"' EXIT
start_redis
PORT=$REDIS_PORT

DEFS="${BENCH_DEFS:-$BENCH_ROOT/feature_defs/rides}"
if [ -n "${BENCH_DEFS:-}" ]; then
  CMD="BENCH_DEFS=$BENCH_DEFS $CMD"
fi
rides_project "$DIR" "$DEFS" "$PORT" "$ROWS" "$DRIVERS"
cd "$DIR"
for _ in $(seq 1 "$RUNS"); do
  rm -rf .quiver
  redis-cli -p "$PORT" flushall >/dev/null
  "$BIN" apply >/dev/null
  sync
  /usr/bin/time -o "$TMP/time" -f '%e %M' \
    "$BIN" "${LIMIT[@]}" --json materialize --start 2026-01-01 --end 2026-01-08 --views driver_stats > "$TMP/report"
  bench_record materialize --engine quiver --command "$CMD" --time "$TMP/time" \
    --param rows="$ROWS" --param drivers="$DRIVERS" --set redis_keys="$(redis-cli -p "$PORT" dbsize)" < "$TMP/report"
done
