#!/usr/bin/env bash
# The offline store on object storage against the offline store on local disk: the same
# lake (local), the same binary, runs alternating between the two stores.
#   bench/s3.sh [DIR] [ROWS] [DRIVERS] [SPINE_ROWS] [RUNS]
# Per run and store: a fresh registry and offline store, `apply`, the materialization of
# driver_stats for the sample's week (ROWS rows over DRIVERS drivers, default 10 M over
# 60 000), then a training set of driver_stats for a SPINE_ROWS-row spine (default 1 M,
# spread over the week). The object store is the testkit's S3-compatible server
# (`quiver-testkit --example s3_server`, objects in files under DIR/s3), on loopback.
# Prints one line per run and store, then min and median seconds per store and the ratio
# S3 / local of the medians, as a Markdown table.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
DIR="${1:-/var/tmp/quiver-s3-bench}"
ROWS="${2:-10000000}"
DRIVERS="${3:-60000}"
SPINE="${4:-1000000}"
RUNS="${5:-3}"
CMD="$(bench_command "$0" "$@")"
# Two builds: built together, the testkit's features would change the quiver binary's deps.
bench_build -p quiver-cli --bin quiver
bench_build -p quiver-testkit --example s3_server
BIN="$(bench_bin quiver)"
S3BIN="$(bench_bin s3_server)"

mkdir -p "$DIR" "$DIR/s3"
DIR="$(realpath "$DIR")"
TMPDIR="$DIR/s3" "$S3BIN" bench > "$DIR/s3.env" &
S3PID=$!
trap 'kill "$S3PID" 2>/dev/null || true; rm -rf "$DIR/s3"' EXIT
for _ in $(seq 1 100); do
  grep -q AWS_SECRET_ACCESS_KEY "$DIR/s3.env" 2>/dev/null && break
  sleep 0.1
done
# shellcheck disable=SC1091
. "$DIR/s3.env"

rm -rf "$DIR/feature_defs" && cp -r "$BENCH_ROOT/feature_defs/rides" "$DIR/feature_defs"
cd "$DIR"
if [ ! -f "lake/.rows-$ROWS-$DRIVERS" ]; then
  rm -rf lake
  "$BIN" sample-lake --dir lake --rows "$ROWS" --drivers "$DRIVERS" --customers "$DRIVERS" >/dev/null
  touch "lake/.rows-$ROWS-$DRIVERS"
fi
if [ ! -f "spine-$SPINE-$DRIVERS.csv" ]; then
  python3 - "$SPINE" "$DRIVERS" > "spine-$SPINE-$DRIVERS.csv" <<'PY'
import datetime, random, sys
rows, drivers = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
print("driver_id,event_timestamp")
for _ in range(rows):
    t = start + datetime.timedelta(seconds=rng.randrange(7 * 86400))
    print(f"{1001 + rng.randrange(drivers)},{t:%Y-%m-%dT%H:%M:%SZ}")
PY
fi

# run STORE N: one apply, materialization and training set with the offline store STORE.
run() {
  local store="$1" n="$2" offline
  if [ "$store" = s3 ]; then offline="s3://bench/offline-$n"; else offline=".quiver/offline-$n"; fi
  rm -rf .quiver "out.parquet" "out.parquet.manifest.json"
  cat > quiver.yaml <<YAML
project: rides
definitions: feature_defs
registry: .quiver/registry
lake: lake
offline_store: $offline
YAML
  "$BIN" apply >/dev/null
  sync
  local t0 t1 t2
  t0=$(date +%s.%N)
  "$BIN" --json materialize --start 2026-01-01 --end 2026-01-08 --views driver_stats >/dev/null
  t1=$(date +%s.%N)
  "$BIN" historical --entities "spine-$SPINE-$DRIVERS.csv" --features driver_stats --out out.parquet >/dev/null
  t2=$(date +%s.%N)
  python3 -c 'import sys; a,b,c=map(float,sys.argv[4:]); print(sys.argv[1], sys.argv[2], sys.argv[3], f"{b-a:.2f}", f"{c-b:.2f}")' \
    "$store" "$n" "$ROWS" "$t0" "$t1" "$t2" | tee -a "$DIR/times"
}

rm -f "$DIR/times"
echo "store run rows materialize_s training_set_s"
for n in $(seq 1 "$RUNS"); do
  run local "$n"
  run s3 "$n"
done
python3 - "$DIR/times" "$CMD" "$(bench_commit)" "$ROWS" "$SPINE" <<'PY'
import statistics, sys, datetime
lines = [l.split() for l in open(sys.argv[1])]
print()
print(f"{datetime.date.today()}, commit {sys.argv[3]}, `{sys.argv[2]}`: {sys.argv[4]} rows materialized, {sys.argv[5]}-row spine")
print()
print("| workload | local disk: min / median s | S3 (testkit server): min / median s | S3 / local (medians) |")
print("|---|---|---|---|")
for col, name in ((3, "materialization"), (4, "training set")):
    local = [float(l[col]) for l in lines if l[0] == "local"]
    s3 = [float(l[col]) for l in lines if l[0] == "s3"]
    ml, ms = statistics.median(local), statistics.median(s3)
    print(f"| {name} | {min(local):.2f} / {ml:.2f} | {min(s3):.2f} / {ms:.2f} | {ms / ml:.2f}x |")
PY
