#!/usr/bin/env bash
# Online reads over HTTP under load: Quiver's `POST /v1/online` (`quiver serve --http-addr`)
# beside Feast's HTTP feature server (`feast serve`, Feast 0.67.0 in the venv bench/lib.sh
# makes), both driven by wrk on the same data, one after the other.
#   bench/http.sh [ROWS] [DRIVERS] [SECONDS]
# Data: `quiver sample-lake` with ROWS driver_stats rows (default 1000000) over DRIVERS
# drivers and as many customers (default 60000); requests ask only for the drivers and
# customers with a row in the sample's week (bench/http_online.py ids). Quiver's project is
# the example definitions (feature_defs/rides) with driver_stats and customer_profile given
# ttl "0" (the sample's week lies in the past; Feast's views are ttl 0 as well),
# materialized for the week into a redis-server of its own. Feast's repository
# (bench/http_online.py feast-setup: registry and Redis store written as
# bench/feast_online.py writes them) reads the same lake folders and is filled by Feast's
# materialize over the same week into another redis-server. Both servers answer the same
# six features (driver_stats and customer_profile, three each)
# for driver_id and customer_id.
#
# Before the load, the first 20 bodies of each batch size are sent to both servers with
# curl-like POSTs (bench/http_online.py compare) and their values must agree.
# Then, per batch size of BATCHES (default 1,100: one driver and one customer per request,
# or 100 distinct drivers and 100 distinct customers), per server: wrk with CONNECTIONS
# (default 4) connections on THREADS (default 2) threads for WARMUP seconds (default 5; not
# recorded), then for SECONDS (default 20), cycling through 1 000 request bodies of random
# existing entities (bench/http.lua). Recorded: p50, p90, p99, p99.9, max, requests/s and
# wrk's error counts (workload http; see bench/record.py).
#
# Servers: `quiver serve --addr 127.0.0.1:P --http-addr 127.0.0.1:Q` (no token, loopback,
# default limits); `feast serve --no-access-log --workers FEAST_WORKERS` (default 2, one
# per core; Feast's own default is 1) and FEAST_ARGS (more `feast serve` options, e.g.
# "--max-requests 1000000"; none by default, so Feast's other settings are its defaults,
# among them a worker restart after 1 000 requests, plus jitter). Both run the whole time;
# the one not under load is idle. wrk, both servers and both Redis share the machine's cores.
# wrk is installed with apt-get when missing.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ROWS="${1:-1000000}"
DRIVERS="${2:-60000}"
SECONDS_EACH="${3:-20}"
BATCHES="${BATCHES:-1,100}"
CONNECTIONS="${CONNECTIONS:-4}"
THREADS="${THREADS:-2}"
WARMUP="${WARMUP:-5}"
FEAST_WORKERS="${FEAST_WORKERS:-2}"
# RATE: requests a second over all connections (0: as fast as answers come). At a rate each
# connection pauses CONNECTIONS * 1000 / RATE ms after an answer (bench/http.lua). One rate
# for every batch size, or a comma-separated list paired with BATCHES (RATE=400,40 with
# BATCHES=1,100).
RATE="${RATE:-0}"
# RUNS: measured runs per batch size, each one Quiver's then Feast's (recorded with run=N).
RUNS="${RUNS:-1}"
FEAST_ARGS="${FEAST_ARGS:-}"
# PERF_DIR: record where Quiver's server spends its CPU during each of its measured runs
# (`perf record` attached to the server, sampling at 999 Hz with DWARF call graphs) into
# PERF_DIR/quiver-batch-B-run-R.data; read them with `perf report -i FILE`. perf's own
# sampling costs the server a little CPU: leave it unset for the figures.
PERF_DIR="${PERF_DIR:-}"
# PEER=none measures Quiver alone (to compare two Quiver builds through QUIVER_BIN_DIR);
# the default, feast, sets up and measures Feast's server beside it.
PEER="${PEER:-feast}"
CMD="$(bench_command "$0" "$ROWS" "$DRIVERS" "$SECONDS_EACH")"
if [ -n "$FEAST_ARGS" ]; then
  CMD="FEAST_ARGS='$FEAST_ARGS' $CMD"
fi
if [ -n "$PERF_DIR" ]; then CMD="PERF_DIR=$PERF_DIR $CMD"; fi
for v in FEAST_WORKERS WARMUP THREADS CONNECTIONS BATCHES RATE RUNS PEER; do
  CMD="$v=${!v} $CMD"
done
IFS=, read -ra BATCH_LIST <<< "$BATCHES"
IFS=, read -ra RATE_LIST <<< "$RATE"
for r in "${RATE_LIST[@]}"; do
  [[ "$r" =~ ^[0-9]+$ ]] || { echo "RATE must be whole numbers of requests a second, not '$RATE'" >&2; exit 2; }
done
if [ "${#RATE_LIST[@]}" != 1 ] && [ "${#RATE_LIST[@]}" != "${#BATCH_LIST[@]}" ]; then
  echo "RATE lists ${#RATE_LIST[@]} rates for ${#BATCH_LIST[@]} batch sizes: give one, or one per batch size" >&2
  exit 2
fi
if [ -n "$PERF_DIR" ]; then mkdir -p "$PERF_DIR"; command -v perf >/dev/null || { echo "PERF_DIR needs perf (apt-get install linux-perf)" >&2; exit 2; }; fi
case "$PEER" in feast | none) ;; *) echo "PEER is feast or none, not '$PEER'" >&2; exit 2 ;; esac
[[ "$RUNS" =~ ^[1-9][0-9]?$ ]] || { echo "RUNS must be a count from 1 to 99, not '$RUNS'" >&2; exit 2; }
bench_build -p quiver-cli --bin quiver
BIN="$(bench_bin quiver)"
PY="$(feast_python)"
FEAST_VERSION="$("$PY" -c 'import feast; print(feast.__version__)')"
if ! command -v wrk >/dev/null; then
  echo "== installing wrk" >&2
  apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
fi
export FEAST_USAGE=False # no telemetry
export BENCH_COMMIT="${BENCH_COMMIT:-$(bench_commit)}"
HTTP_PY="$BENCH_ROOT/bench/http_online.py"

. "$BENCH_ROOT/bench/redis.sh"
TMP=$(mktemp -d)
QUIVER_PID=
FEAST_PID=
F_HTTP_PORT=
Q_REDIS_DIR=
cleanup() {
  local pid
  for pid in "$QUIVER_PID" "$FEAST_PID"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  stop_redis
  if [ -n "$Q_REDIS_DIR" ]; then REDIS_DIR="$Q_REDIS_DIR" stop_redis; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
step() { echo "== $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_http URL PID LOG: until URL answers 200, failing when the process PID has exited.
wait_http() {
  local tries=0
  until curl -sf -o /dev/null "$1"; do
    if ! kill -0 "$2" 2>/dev/null || [ "$tries" -gt 1200 ]; then
      cat "$3" >&2
      echo "the server behind $1 did not come up" >&2
      exit 1
    fi
    tries=$((tries + 1))
    sleep 0.1
  done
}

# Two redis-servers: Quiver's, then Feast's (redis.sh keeps one in its variables).
start_redis
Q_REDIS_PORT=$REDIS_PORT
Q_REDIS_DIR=$REDIS_DIR
start_redis
F_REDIS_PORT=$REDIS_PORT

step "sample lake: $ROWS driver_stats rows, $DRIVERS drivers and customers"
"$BIN" sample-lake --dir "$TMP/lake" --rows "$ROWS" --drivers "$DRIVERS" --customers "$DRIVERS" >/dev/null

step "quiver: apply, materialize driver_stats and customer_profile for the week, serve"
mkdir -p "$TMP/quiver"
python3 - "$BENCH_ROOT/feature_defs/rides" "$TMP/quiver/defs" <<'PY'
import pathlib, re, shutil, sys
src, out = map(pathlib.Path, sys.argv[1:])
shutil.copytree(src, out)
views = (out / "views.yaml").read_text()
for view in ("driver_stats", "customer_profile"):
    views, n = re.subn(r'(\n  - name: %s\n(?:    [^\n]*\n)*?    ttl: )[^\n]*' % view, r'\g<1>"0"', views, count=1)
    assert n == 1, f"no ttl for {view}"
(out / "views.yaml").write_text(views)
PY
cat > "$TMP/quiver/quiver.yaml" <<YAML
project: rides
definitions: defs
registry: .quiver/registry
lake: $TMP/lake
offline_store: .quiver/offline
online_store: {type: redis, url: "redis://127.0.0.1:$Q_REDIS_PORT/0"}
YAML
(cd "$TMP/quiver" && "$BIN" apply >/dev/null)
(cd "$TMP/quiver" && "$BIN" --json materialize --start 2026-01-01 --end 2026-01-08 \
  --views driver_stats,customer_profile > "$TMP/materialize.json")
# The entities with a row in the week: the requests ask for these alone.
(cd "$BENCH_ROOT/bench" && "$PY" "$HTTP_PY" ids "$TMP/lake" "$TMP/ids.json" \
  2026-01-01T00:00:00+00:00 2026-01-08T00:00:00+00:00) > "$TMP/ids-count.json"
python3 - "$TMP/materialize.json" "$TMP/ids-count.json" <<'PY' >&2
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("ok"), d
ids = json.load(open(sys.argv[2]))
keys = {"driver_stats": "driver_id", "customer_profile": "customer_id"}
for v in d["views"]:
    assert v["online_rows"] == ids[keys[v["view"]]], f"{v['view']}: {v['online_rows']} online, {ids} in the lake's week"
print("quiver materialize: " + ", ".join(f"{v['view']} {v['rows']} rows, {v['online_rows']} online in {v['seconds']:.1f} s" for v in d["views"]))
PY
Q_GRPC_PORT=$(free_port)
Q_HTTP_PORT=$(free_port)
(cd "$TMP/quiver" && exec "$BIN" serve --addr "127.0.0.1:$Q_GRPC_PORT" --http-addr "127.0.0.1:$Q_HTTP_PORT" \
  > "$TMP/quiver-serve.log" 2>&1) &
QUIVER_PID=$!
wait_http "http://127.0.0.1:$Q_HTTP_PORT/healthz" "$QUIVER_PID" "$TMP/quiver-serve.log"

if [ "$PEER" = feast ]; then
  step "feast $FEAST_VERSION: apply, materialize the same week, serve ($FEAST_WORKERS workers${FEAST_ARGS:+, $FEAST_ARGS})"
  (cd "$BENCH_ROOT/bench" && "$PY" "$HTTP_PY" feast-setup "$TMP/feast" "$TMP/lake" "$F_REDIS_PORT" \
    2026-01-01T00:00:00+00:00 2026-01-08T00:00:00+00:00) > "$TMP/feast-setup.json"
  python3 - "$TMP/feast-setup.json" "$Q_REDIS_PORT" <<'PY' >&2
import json, subprocess, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
quiver_keys = int(subprocess.check_output(["redis-cli", "-p", sys.argv[2], "dbsize"]))
print(f"feast materialize: {d['redis_keys']} keys in {d['materialize_s']} s (Quiver's Redis: {quiver_keys} keys)")
PY
  F_HTTP_PORT=$(free_port)
  (cd "$TMP/feast" && exec "$FEAST_VENV/bin/feast" serve -h 127.0.0.1 -p "$F_HTTP_PORT" --no-access-log \
    --workers "$FEAST_WORKERS" $FEAST_ARGS > "$TMP/feast-serve.log" 2>&1) &
  FEAST_PID=$!
  wait_http "http://127.0.0.1:$F_HTTP_PORT/health" "$FEAST_PID" "$TMP/feast-serve.log"
fi

QUIVER_URL="http://127.0.0.1:$Q_HTTP_PORT/v1/online"
FEAST_URL="http://127.0.0.1:$F_HTTP_PORT/get-online-features"
for batch in "${BATCH_LIST[@]}"; do
  python3 "$HTTP_PY" bodies "$TMP/bodies-$batch.jsonl" "$TMP/ids.json" "$batch" 1000 42
  if [ "$PEER" = feast ]; then
    step "batch $batch: the same values from both servers (20 requests)"
    python3 "$HTTP_PY" compare "$QUIVER_URL" "$FEAST_URL" "$TMP/bodies-$batch.jsonl" 20
  fi
done

# load SERVER URL PATH BATCH RATE RUN: a warm-up, then the measured wrk run, recorded.
load() {
  local server="$1" url="$2" path="$3" batch="$4" rate="$5" run="$6" version=()
  local base="${url%"$path"}" pause_ms=0
  if [ "$rate" != 0 ]; then pause_ms=$(( CONNECTIONS * 1000 / rate )); fi
  if [ "$server" = feast ]; then
    version=(--version "$FEAST_VERSION" --param workers="$FEAST_WORKERS")
    if [ -n "$FEAST_ARGS" ]; then version+=(--param "feast_args=$FEAST_ARGS"); fi
  fi
  step "$server, batch $batch, rate $rate/s, run $run: wrk -t$THREADS -c$CONNECTIONS, ${WARMUP}s warm-up, ${SECONDS_EACH}s measured"
  if [ "$WARMUP" != 0 ]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 10s -s "$BENCH_ROOT/bench/http.lua" "$base" \
      -- "$TMP/bodies-$batch.jsonl" "$path" "$pause_ms" >/dev/null
  fi
  # The CPU the server (with its workers) and its Redis use during the measured run.
  local pids=("$QUIVER_PID" "$(cat "$Q_REDIS_DIR/pid")") before after
  if [ "$server" = feast ]; then pids=("$FEAST_PID" "$(cat "$REDIS_DIR/pid")"); fi
  read -ra before <<< "$(python3 "$HTTP_PY" cpu "${pids[@]}")"
  local perf_pid=
  if [ -n "$PERF_DIR" ] && [ "$server" = quiver ]; then
    perf record -q -F 999 --call-graph dwarf,16384 -p "$QUIVER_PID" -o "$PERF_DIR/quiver-batch-$batch-run-$run.data" \
      -- sleep "$SECONDS_EACH" 2>/dev/null &
    perf_pid=$!
  fi
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --timeout 10s --latency -s "$BENCH_ROOT/bench/http.lua" "$base" \
    -- "$TMP/bodies-$batch.jsonl" "$path" "$pause_ms" > "$TMP/wrk.out"
  read -ra after <<< "$(python3 "$HTTP_PY" cpu "${pids[@]}")"
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || echo "perf record failed (is perf installed?)" >&2; fi
  bench_record http --engine "$server" --command "$CMD" "${version[@]}" --param batch="$batch" \
      --set server_cpu_s="$(awk -v a="${after[0]}" -v b="${before[0]}" 'BEGIN { printf "%.2f", a - b }')" \
      --set redis_cpu_s="$(awk -v a="${after[1]}" -v b="${before[1]}" 'BEGIN { printf "%.2f", a - b }')" \
      --param rate="$rate" --param run="$run" \
      --param connections="$CONNECTIONS" --param threads="$THREADS" --param drivers="$DRIVERS" \
      --param rows="$ROWS" < "$TMP/wrk.out" | tee -a "$TMP/records.jsonl"
}
for i in "${!BATCH_LIST[@]}"; do
  batch="${BATCH_LIST[$i]}"
  rate="${RATE_LIST[0]}"
  if [ "${#RATE_LIST[@]}" != 1 ]; then rate="${RATE_LIST[$i]}"; fi
  for run in $(seq 1 "$RUNS"); do
    load quiver "$QUIVER_URL" /v1/online "$batch" "$rate" "$run"
    if [ "$PEER" = feast ]; then load feast "$FEAST_URL" /get-online-features "$batch" "$rate" "$run"; fi
  done
done

echo >&2
python3 - "$TMP/records.jsonl" <<'PY' >&2
import json, sys
print(f"{'server':<22} {'batch':>5} {'rate':>5} {'run':>3} {'p50 ms':>9} {'p99 ms':>9} {'p99.9 ms':>9} {'max ms':>9} {'req/s':>9} errors {'CPU ms/req (server + Redis)':>28}")
for line in open(sys.argv[1]):
    r = json.loads(line)
    name = r["engine"] + (" " + r["version"] if r.get("version") else "")
    errors = sum(v for k, v in r.items() if k.startswith("errors_"))
    print(f"{name:<22} {r['params']['batch']:>5} {r['params']['rate']:>5} {r['params']['run']:>3} {r['p50_ms']:>9.3f} {r['p99_ms']:>9.3f} {r['p999_ms']:>9.3f} "
          f"{r['max_ms']:>9.1f} {r['requests_per_s']:>9.0f} {errors:>6} "
          f"{1000 * r['server_cpu_s'] / r['requests']:>13.3f} + {1000 * r['redis_cpu_s'] / r['requests']:.3f}")
PY
