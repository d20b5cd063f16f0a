#!/usr/bin/env bash
# Online store reads against a redis-server started here on a free port: Quiver's whole
# read path (get_online_features) beside one raw MGET of the same keys.
#   bench/online.sh [ENTITIES] [ITERATIONS] [BATCHES]
# BATCHES is a comma-separated list of batch sizes (entities per read; default 100). Prints
# two records per batch size (quiver-store and redis-get; see bench/record.py).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ENTITIES="${1:-100000}"
ITERATIONS="${2:-2000}"
BATCHES="${3:-100}"
CMD="$(bench_command "$0" "$ENTITIES" "$ITERATIONS" "$BATCHES")"
bench_build -p quiver-online --example online_bench
BIN="$(bench_bin online_bench)"
REDIS_VERSION="$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')"
. "$BENCH_ROOT/bench/redis.sh"
trap stop_redis EXIT
start_redis
"$BIN" "redis://127.0.0.1:$REDIS_PORT/0" "$ENTITIES" "$ITERATIONS" "$BATCHES" |
  bench_record online --command "$CMD" --version "$REDIS_VERSION"
