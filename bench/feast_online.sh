#!/usr/bin/env bash
# Feast's online read (store.get_online_features, Feast 0.67.0 in the venv bench/lib.sh
# makes), the peer of bench/grpc.sh: same two views x three features, same entity count,
# same batch sizes, against a redis-server started here on a free port and filled by Feast's
# own materialize (see bench/feast_online.py for what is timed).
#   bench/feast_online.sh [ENTITIES] [CALLS] [BATCHES]
# BATCHES is a comma-separated list (default 1,100). Prints one record per batch size.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ENTITIES="${1:-100000}"
CALLS="${2:-1000}"
BATCHES="${3:-1,100}"
CMD="$(bench_command "$0" "$ENTITIES" "$CALLS" "$BATCHES")"
PY="$(feast_python)"
export FEAST_USAGE=False   # no telemetry
. "$BENCH_ROOT/bench/redis.sh"
TMP=$(mktemp -d)
trap 'stop_redis; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/repo/data"
start_redis
"$PY" "$BENCH_ROOT/bench/feast_online.py" "$TMP/repo" "$REDIS_PORT" "$ENTITIES" "$CALLS" "$BATCHES" |
  bench_record grpc --engine feast --command "$CMD"
