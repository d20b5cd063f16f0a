#!/usr/bin/env bash
# Soak: `quiver serve` (online store in a redis-server started here, offline store on local
# disk) under online reads at a fixed rate, pushes, an incremental materialization every
# minute of a lake file written that minute, and a Redis restart halfway. Loopback only.
#   bench/soak.sh DURATION        DURATION: seconds, or 90s, 10m, 1h (1 minute to 24 hours)
# SOAK_READS_PER_S (default 500) and SOAK_PUSH_ROWS_PER_S (default 200) set the load;
# SOAK_KEEP=1 keeps the project folder (lake, offline tables, run records) afterwards.
# Prints one JSON line per minute (reads, p50/p99/p99.9, pushes, the materialization, errors
# by kind, the server's RSS and what its offline file caches hold) and a summary after
# reading every pushed and lake entity back online and in a training set; then the server's
# WARN and ERROR log lines by kind (the log is kept at SOAK_SERVER_LOG, default
# $TMPDIR/quiver-soak-server.log). Exits 1
# when an error is unexplained (anything but UNAVAILABLE or a deadline during the Redis
# restart) or a read-back disagrees with what was acknowledged. The driver is
# crates/quiver-server/examples/soak.rs; its header says what each check means.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
DURATION="${1:?usage: bench/soak.sh DURATION (e.g. 600, 10m, 1h)}"
case "$DURATION" in
  *[0-9]h) SECS=$(( ${DURATION%h} * 3600 )) ;;
  *[0-9]m) SECS=$(( ${DURATION%m} * 60 )) ;;
  *[0-9]s) SECS=${DURATION%s} ;;
  *) SECS=$DURATION ;;
esac
if ! [[ "$SECS" =~ ^[0-9]+$ ]] || (( SECS < 60 || SECS > 86400 )); then
  echo "DURATION must be 1 minute to 24 hours (seconds, or with s, m or h): got '$DURATION'" >&2
  exit 2
fi

# One build of both: built apart, the two would unify DataFusion's features differently and
# each rebuild it.
bench_build -p quiver-cli --bin quiver -p quiver-server --example soak
QUIVER="$(bench_bin quiver)"
SOAK="$(bench_bin soak)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR="$(mktemp -d "${TMPDIR:-/var/tmp}/quiver-soak.XXXXXX")"
REDIS_PORT="$(free_port)"
PORT="$(free_port)"
METRICS_PORT="$(free_port)"
mkdir -p "$DIR/redis" "$DIR/feature_defs"
# Redis keeps an append-only file, so the restart halfway loses nothing it acknowledged.
REDIS_START="redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly yes --dir '$DIR/redis' \
  --daemonize yes --pidfile '$DIR/redis/pid' >/dev/null && until redis-cli -p $REDIS_PORT ping >/dev/null 2>&1; do sleep 0.1; done"
REDIS_STOP="redis-cli -p $REDIS_PORT shutdown >/dev/null 2>&1; while redis-cli -p $REDIS_PORT ping >/dev/null 2>&1; do sleep 0.1; done"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; fi
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: project kept in $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
sh -c "$REDIS_START"

cat > "$DIR/quiver.yaml" <<YAML
project: soak
definitions: feature_defs
registry: .quiver/registry
lake: lake
offline_store: .quiver/offline
online_store: {type: redis, url: "redis://127.0.0.1:$REDIS_PORT/0"}
YAML
cat > "$DIR/feature_defs/soak.yaml" <<'YAML'
entities:
  - {name: driver, join_keys: [{name: driver_id, dtype: int64}]}
sources:
  - {name: soak_src, path: soak/*.parquet, format: parquet, timestamp_field: event_timestamp, created_timestamp_field: created}
feature_views:
  - name: soak
    entities: [driver]
    source: soak_src
    ttl: 0
    online: true
    features:
      - {name: seq, dtype: int64}
      - {name: score, dtype: float64}
YAML
"$SOAK" lake "$DIR/lake"
cd "$DIR"
"$QUIVER" apply >/dev/null
"$QUIVER" materialize-incremental --end now >/dev/null
# glibc's malloc gives each thread that allocates at once an arena of its own (up to 8 per
# core) and rarely returns their memory: capped at 2, as docker/Dockerfile sets it, the
# server's RSS levels off after a few minutes (RELIABILITY.md, Soak).
MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" NO_COLOR=1 "$QUIVER" serve --addr "127.0.0.1:$PORT" --metrics-addr "127.0.0.1:$METRICS_PORT" \
  > "$DIR/server.log" 2>&1 &
SERVER_PID=$!

status=0
SOAK_REDIS_STOP="$REDIS_STOP" SOAK_REDIS_START="$REDIS_START" SOAK_METRICS="127.0.0.1:$METRICS_PORT" \
  "$SOAK" run "127.0.0.1:$PORT" "$SECS" "$SERVER_PID" "$DIR/lake" || status=$?
kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
# The server's own complaints, by kind (times and ids cut away); the whole log is kept.
LOG="${SOAK_SERVER_LOG:-${TMPDIR:-/var/tmp}/quiver-soak-server.log}"
sed 's/\x1b\[[0-9;]*m//g' "$DIR/server.log" > "$LOG"
echo "server log ($LOG): $(grep -c . "$LOG" || true) lines; WARN and ERROR lines by kind:"
grep -E ' (WARN|ERROR) ' "$LOG" | sed -E 's/^[^ ]+ +//; s/[0-9a-f]{8,}/…/g; s/[0-9]+(\.[0-9]+)?/N/g' | cut -c1-160 |
  sort | uniq -c | sort -rn | head -20 || true
exit "$status"
