#!/usr/bin/env bash
# Online read benchmark against a redis-server started here on a free port.
#   bench/online.sh [ENTITIES] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/quiver-target}"
cargo build --release -q -p quiver-online --example online_bench
. bench/redis.sh
trap stop_redis EXIT
start_redis
"$CARGO_TARGET_DIR/release/examples/online_bench" "redis://127.0.0.1:$REDIS_PORT/0" "${1:-100000}" "${2:-2000}"
