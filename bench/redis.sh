# Sourced by the bench scripts: a throwaway redis-server on a free loopback port.
#   start_redis   sets REDIS_PORT and REDIS_DIR and waits until the server answers
#   stop_redis    stops it and removes its folder (call it from the script's EXIT trap)
start_redis() {
  REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REDIS_DIR=$(mktemp -d)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/pid" >/dev/null
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
}

stop_redis() {
  if [ -n "${REDIS_DIR:-}" ]; then
    kill "$(cat "$REDIS_DIR/pid" 2>/dev/null)" 2>/dev/null || true
    rm -rf "$REDIS_DIR"
  fi
}
