#!/usr/bin/env bash
# Materialization into the offline store and a redis-server (started here on a free port):
# the online issue's workload, 10 M driver_stats rows over 60 000 drivers, the whole week.
#   bench/materialize.sh [DIR] [ROWS] [DRIVERS] [RUNS]
# QUIVER_BIN=path runs that binary instead of building the tree's release one (to compare
# two builds on the same lake, alternating).
# Each run starts from an empty offline table, empty materialization state and an empty
# Redis, and prints the CLI's JSON report and /usr/bin/time's wall time and peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-/tmp/quiver-mat-bench}"
ROWS="${2:-10000000}"
DRIVERS="${3:-60000}"
RUNS="${4:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/quiver-target}"
if [ -n "${QUIVER_BIN:-}" ]; then
  BIN="$(realpath "$QUIVER_BIN")"
else
  cargo build --release -q -p quiver-cli --bin quiver
  BIN="$CARGO_TARGET_DIR/release/quiver"
fi

. bench/redis.sh
trap stop_redis EXIT
start_redis
PORT=$REDIS_PORT

mkdir -p "$DIR"
rm -rf "$DIR/feature_defs" && cp -r feature_defs/rides "$DIR/feature_defs"
cat > "$DIR/quiver.yaml" <<EOF
project: rides
definitions: feature_defs
registry: .quiver/registry
lake: lake
offline_store: .quiver/offline
online_store: {type: redis, url: "redis://127.0.0.1:$PORT/0"}
EOF
cd "$DIR"
if [ ! -f "lake/.rows-$ROWS-$DRIVERS" ]; then
  rm -rf lake
  "$BIN" sample-lake --dir lake --rows "$ROWS" --drivers "$DRIVERS" --customers "$DRIVERS" >/dev/null
  touch "lake/.rows-$ROWS-$DRIVERS"
fi
for run in $(seq 1 "$RUNS"); do
  rm -rf .quiver
  redis-cli -p "$PORT" flushall >/dev/null
  "$BIN" apply >/dev/null
  sync
  /usr/bin/time -f "run $run: wall %e s, peak %M KiB" \
    "$BIN" --json materialize --start 2026-01-01 --end 2026-01-08 --views driver_stats
  echo "redis keys: $(redis-cli -p "$PORT" dbsize)"
done
