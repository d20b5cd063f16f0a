#!/usr/bin/env bash
# Online serving through gRPC on loopback, against a redis-server started here on a free port.
#   bench/grpc.sh [ENTITIES] [CALLS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/quiver-target}"
cargo build --release -q -p quiver-server --example grpc_bench
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --daemonize yes --pidfile "$DIR/pid" >/dev/null
trap 'kill "$(cat "$DIR/pid")" 2>/dev/null || true; rm -rf "$DIR"' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done
"$CARGO_TARGET_DIR/release/examples/grpc_bench" "redis://127.0.0.1:$PORT/0" "${1:-100000}" "${2:-5000}" "${3:-5}"
