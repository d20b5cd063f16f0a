#!/usr/bin/env bash
# Online serving through gRPC on loopback, against a redis-server started here on a free port.
#   bench/grpc.sh [ENTITIES] [CALLS] [SECONDS]
# By default server and client share one process (two runtimes). With SPLIT=1 the server
# and the client run as two processes; SERVER_CPUS / CLIENT_CPUS (taskset lists, e.g. 0 and 1)
# pin them. QUIVER_BENCH_SERVER_THREADS / QUIVER_BENCH_CLIENT_THREADS set the worker threads.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/quiver-target}"
cargo build --release -q -p quiver-server --example grpc_bench
BIN="$CARGO_TARGET_DIR/release/examples/grpc_bench"
. bench/redis.sh
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
  pin "${SERVER_CPUS:-}" "$BIN" serve "$URL" "${1:-100000}" < "$DIR/in" > "$DIR/addr" &
  exec 3>"$DIR/in"   # the server stops when this closes
  until [ -s "$DIR/addr" ]; do sleep 0.1; done
  echo "server and client in two processes (server cpus: ${SERVER_CPUS:-any}, client cpus: ${CLIENT_CPUS:-any})"
  pin "${CLIENT_CPUS:-}" "$BIN" client "$(head -1 "$DIR/addr")" "${1:-100000}" "${2:-5000}" "${3:-5}"
  exec 3>&-
  wait
else
  "$BIN" "$URL" "${1:-100000}" "${2:-5000}" "${3:-5}"
fi
