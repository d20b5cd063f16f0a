#!/usr/bin/env bash
# Quiver from Python: the quiver_client package against a hand-written call of the generated
# gRPC stub (the client's own overhead) and against Feast 0.67.0, on the same data, machine
# and run.
#   bench/python_client.sh [ENTITIES] [CALLS] [SPINE_ROWS]
# ENTITIES (default 100000) drivers and as many customers, each with ROWS_PER_ENTITY (default
# 7: one a day over 2026-01-01..07) rows of two views (driver_stats, customer_profile: three
# features each, ttl none), written once as Parquet and read by both Quiver and Feast.
#
# 1. Online reads of the six features for batches of 1 and 100 entity rows (BATCHES, a
#    comma-separated list, default 1,100): per batch, CALLS (default 5000) sequential rounds
#    after 100 warm-up rounds; each round sends the same random ids through quiver_client
#    (Client.get_online_features), through the raw OnlineServiceStub (same request, Arrow
#    answer decoded by pyarrow) and through Feast's FeatureStore.get_online_features, the
#    rounds cycling through the six orders of the three. p50, p90, p99, p99.9 and max of each; the client's
#    overhead is client p50 / stub p50 - 1 (and the same at p99). The warm-up checks that
#    all three answer the same values.
# 2. A SPINE_ROWS-row training set (default 1000000; driver_id, customer_id, event_timestamp,
#    row_id) into pandas: Client.get_historical_features(spine, features).to_pandas() (Arrow
#    Flight up and down) against Feast's get_historical_features(entity_df=spine,
#    features).to_df() (its file offline store, Dask), TRAIN_RUNS (default 3) times each,
#    alternating, each in a fresh Python process (peak RSS: that process's; for Quiver also
#    the server's during the call). The first run's two sets are compared row by row (by
#    row_id) and value by value; any disagreement is printed.
# bench/python_client.py says exactly what each timer covers.
#
# Quiver's side: a redis-server (free loopback port, database 0) and `quiver serve` (free
# loopback port) started here over a project of these two views, filled by `quiver apply` and
# `quiver materialize`; Feast's: a repository over the same Parquet files, its online store
# database 1 of the same redis-server, filled by Feast's own materialize. Both are torn down
# on exit. Python: one venv with both quiver_client (reinstalled from clients/python at every
# run) and Feast (bench/lib.sh pyclient_python; /var/tmp/quiver-pyclient-venv).
# SEED (default 42) fixes the data, the spine and the online requests.
# Prints one record per figure on stdout (workloads python_online and python_training; see
# bench/record.py), and a readable table on stderr at the end.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ENTITIES="${1:-100000}"
CALLS="${2:-5000}"
SPINE_ROWS="${3:-1000000}"
BATCHES="${BATCHES:-1,100}"
TRAIN_RUNS="${TRAIN_RUNS:-3}"
ROWS_PER_ENTITY="${ROWS_PER_ENTITY:-7}"
SEED="${SEED:-42}"
[ "$TRAIN_RUNS" -ge 1 ] 2>/dev/null || { echo "TRAIN_RUNS must be 1 or more, not '$TRAIN_RUNS'" >&2; exit 2; }
CMD="$(bench_command "$0" "$ENTITIES" "$CALLS" "$SPINE_ROWS")"
for v in SEED ROWS_PER_ENTITY TRAIN_RUNS BATCHES; do
  CMD="$v=${!v} $CMD"
done
bench_build -p quiver-cli --bin quiver
BIN="$(bench_bin quiver)"
PY="$(pyclient_python)"
BENCH_PY="$BENCH_ROOT/bench/python_client.py"
export FEAST_USAGE=False # no telemetry
export BENCH_COMMIT="${BENCH_COMMIT:-$(bench_commit)}"

. "$BENCH_ROOT/bench/redis.sh"
TMP=$(mktemp -d)
SERVE_PID=
cleanup() {
  if [ -n "$SERVE_PID" ]; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  stop_redis
  rm -rf "$TMP"
}
trap cleanup EXIT
step() { echo "== $*" >&2; }
# record: the program's JSON lines (stdin) as records on stdout, kept for the table.
record() { python3 "$BENCH_PY" record --command "$CMD" | tee -a "$TMP/records.jsonl"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_redis
step "data: $ENTITIES entities x $ROWS_PER_ENTITY rows per view, spine $SPINE_ROWS rows (seed $SEED)"
"$PY" "$BENCH_PY" gen "$TMP" "$ENTITIES" "$SPINE_ROWS" "$ROWS_PER_ENTITY" "$SEED"

step "quiver: apply, materialize into Redis db 0, serve"
cat > "$TMP/quiver.yaml" <<YAML
project: bench
definitions: defs
registry: .quiver/registry
lake: lake
offline_store: .quiver/offline
online_store: {type: redis, url: "redis://127.0.0.1:$REDIS_PORT/0"}
YAML
(cd "$TMP" && "$BIN" apply >/dev/null)
(cd "$TMP" && "$BIN" --json materialize --start 2026-01-01 --end 2026-01-08 > "$TMP/materialize.json")
python3 - "$TMP/materialize.json" <<'EOF' >&2
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("ok"), d
print("quiver materialize: " + ", ".join(f"{v['view']} {v['rows']} rows, {v['online_rows']} online in {v['seconds']:.1f} s" for v in d["views"]))
EOF
QUIVER_PORT=$(free_port)
(cd "$TMP" && exec "$BIN" serve --addr "127.0.0.1:$QUIVER_PORT" > "$TMP/serve.log" 2>&1) &
SERVE_PID=$!
until python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$QUIVER_PORT" 2>/dev/null; do
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then
    cat "$TMP/serve.log" >&2
    echo "quiver serve exited" >&2
    exit 1
  fi
  sleep 0.1
done

step "feast: apply, materialize into Redis db 1"
"$PY" "$BENCH_PY" feast-setup "$TMP/feast" "$TMP/lake" "$REDIS_PORT" > "$TMP/feast-setup.json"
python3 - "$TMP/feast-setup.json" "$ENTITIES" <<'EOF' >&2
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["redis_keys"] == 2 * int(sys.argv[2]), f"{d['redis_keys']} keys in Redis db 1 after Feast's materialize"
print(f"feast materialize: {d['redis_keys']} keys in {d['materialize_s']} s")
EOF

step "online reads: batches $BATCHES, $CALLS rounds of quiver_client, stub and Feast"
"$PY" "$BENCH_PY" online "127.0.0.1:$QUIVER_PORT" "$TMP/feast" "$REDIS_PORT" "$ENTITIES" "$CALLS" "$BATCHES" "$SEED" | record

for run in $(seq 1 "$TRAIN_RUNS"); do
  qout=-
  fout=-
  if [ "$run" = 1 ]; then
    qout="$TMP/train-quiver.parquet"
    fout="$TMP/train-feast.parquet"
  fi
  step "training set, run $run of $TRAIN_RUNS: quiver_client"
  "$PY" "$BENCH_PY" train-quiver "127.0.0.1:$QUIVER_PORT" "$TMP/spine.parquet" "$qout" "$SERVE_PID" "$run" | record
  step "training set, run $run of $TRAIN_RUNS: Feast"
  "$PY" "$BENCH_PY" train-feast "$TMP/feast" "$TMP/spine.parquet" "$fout" "$run" | record
done
step "training sets: comparing quiver_client's and Feast's"
"$PY" "$BENCH_PY" compare "$TMP/train-quiver.parquet" "$TMP/train-feast.parquet" "$SPINE_ROWS" | record

echo >&2
python3 "$BENCH_PY" table "$TMP/records.jsonl"
