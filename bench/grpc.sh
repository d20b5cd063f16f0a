#!/usr/bin/env bash
# Online serving through gRPC on loopback, against a redis-server started here on a free port.
#   bench/grpc.sh [ENTITIES] [CALLS] [SECONDS]
# BATCHES (a comma-separated list, default 1,100) sets the batch sizes whose latency is
# measured over CALLS sequential calls; throughput runs SECONDS per setting (0: none).
# By default server and client share one process (two runtimes). With SPLIT=1 the server
# and the client run as two processes; SERVER_CPUS / CLIENT_CPUS (taskset lists, e.g. 0 and 1)
# pin them. QUIVER_BENCH_SERVER_THREADS / QUIVER_BENCH_CLIENT_THREADS set the worker threads.
# With SPLIT=1, SERVER_BIN=path runs the server from that grpc_bench (another build) while the
# client stays this one: two builds' servers measured by the same client.
# Prints one record per latency and per throughput figure (see bench/record.py).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ENTITIES="${1:-100000}"
CALLS="${2:-5000}"
SECONDS_EACH="${3:-5}"
export QUIVER_BENCH_BATCHES="${BATCHES:-1,100}"
export QUIVER_BENCH_JSON=1
CMD="$(bench_command "$0" "$ENTITIES" "$CALLS" "$SECONDS_EACH")"
CMD="BATCHES=$QUIVER_BENCH_BATCHES $CMD"
if [ "${SPLIT:-0}" = 1 ]; then
  CMD="SPLIT=1 SERVER_CPUS=${SERVER_CPUS:-} CLIENT_CPUS=${CLIENT_CPUS:-} $CMD"
  if [ -n "${SERVER_BIN:-}" ]; then
    CMD="SERVER_BIN=$SERVER_BIN $CMD"
  fi
elif [ -n "${SERVER_BIN:-}" ]; then
  echo "SERVER_BIN needs SPLIT=1 (server and client in two processes)" >&2
  exit 2
fi
bench_build -p quiver-server --example grpc_bench
BIN="$(bench_bin grpc_bench)"
SERVER="$(realpath "${SERVER_BIN:-$BIN}")"
. "$BENCH_ROOT/bench/redis.sh"
DIR=$(mktemp -d)
cleanup() {
  exec 3>&- 2>/dev/null || true
  stop_redis
  rm -rf "$DIR"
}
trap cleanup EXIT
start_redis
URL="redis://127.0.0.1:$REDIS_PORT/0"
if [ "${SPLIT:-0}" = 1 ]; then
  pin() { local cpus="$1"; shift; if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi; }
  mkfifo "$DIR/in"
  pin "${SERVER_CPUS:-}" "$SERVER" serve "$URL" "$ENTITIES" < "$DIR/in" > "$DIR/addr" &
  exec 3>"$DIR/in"   # the server stops when this closes
  until [ -s "$DIR/addr" ]; do sleep 0.1; done
  echo "server and client in two processes (server cpus: ${SERVER_CPUS:-any}, client cpus: ${CLIENT_CPUS:-any})" >&2
  pin "${CLIENT_CPUS:-}" "$BIN" client "$(head -1 "$DIR/addr")" "$ENTITIES" "$CALLS" "$SECONDS_EACH" |
    bench_record grpc --command "$CMD" --param processes=2
  exec 3>&-
  wait
else
  "$BIN" "$URL" "$ENTITIES" "$CALLS" "$SECONDS_EACH" | bench_record grpc --command "$CMD" --param processes=1
fi
