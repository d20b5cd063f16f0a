#!/usr/bin/env bash
# Feast's online materialization of the same driver_stats data that bench/materialize.sh has
# Quiver materialize, into a redis-server started here on a free loopback port.
#   bench/feast_materialize.sh LAKE_DIR [RUNS]
# LAKE_DIR is a `quiver sample-lake` directory (its driver_stats/ folder of parquet files is
# the FileSource). Each run is a fresh Python process against an empty Redis (flushall) and
# prints one record (see bench/record.py) whose "seconds" is time.perf_counter() around
# store.materialize() alone (imports, registry load and `feast apply` are outside it), with
# /usr/bin/time's wall time and peak RSS of that whole Python process (wall includes several
# seconds of `import feast` + FeatureStore setup). Feast's own banner goes to stderr.
#
# Notes (measured with the first version of this script):
# - Feast 0.67.0 (pinned in bench/lib.sh, `feast[redis]==0.67.0`) is on PyPI and is what gets
#   installed, into the venv at /var/tmp/quiver-feast-venv (created once, reused after).
#   If that pin ever disappears the script falls back to the newest 0.x and says so.
# - The engine is Feast's default: `batch_engine: local` (LocalComputeEngine) over the
#   `file` offline store (= DaskOfflineStore). Reading: dd.read_parquet(<folder>), so a
#   folder of part files works as the FileSource path as it is. The Dask part (read, sort
#   by created then event_timestamp, filter, drop_duplicates(keep="last")) uses Dask's
#   threaded scheduler; converting rows to protos and writing to Redis is single-threaded
#   Python in the one process. Nothing is spread over processes.
# - Feast filters event_timestamp BETWEEN start AND end inclusive on both ends (Quiver's
#   end is exclusive); the sample lake has no row at exactly 2026-01-08T00:00:00Z, so the
#   two select the same rows.
# - The lake's dtypes map 1:1: driver_id int64 -> Int64 entity, conv_rate/acc_rate float
#   (float32) -> Float32, avg_daily_trips int64 -> Int64, timestamps are timestamp[us, UTC].
#   No casts were needed.
# - entity_key_serialization_version: 3 (0.67's default; below 3 is deprecated).
# - Correctness, checked once on the 200 k-row dev lake (also split into two part files):
#   every driver's online values equal the latest row by (event_timestamp, created),
#   corrected records and nulls included; DBSIZE = distinct drivers in the window.
# - The window is held in memory (persist() + to_arrow()), so peak RSS grows with the lake;
#   a lake of several part files takes Dask's multi-partition sort/shuffle path.
# - Feast prints a "Materializing ..." banner to stdout; run.py sends it to stderr.
# - Redis layout: one hash per entity key (features as hash fields), so DBSIZE after a run
#   equals the number of drivers written.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
LAKE="${1:?usage: bench/feast_materialize.sh LAKE_DIR [RUNS]}"
RUNS="${2:-1}"
LAKE="$(cd "$LAKE" && pwd)"
SRC="$LAKE/driver_stats"
[ -d "$SRC" ] || { echo "no $SRC" >&2; exit 1; }
CMD="$(bench_command "$0" "$LAKE" 1)"
PY="$(feast_python)"
VENV="$FEAST_VENV"
export FEAST_USAGE=False   # no telemetry attempts

. "$BENCH_ROOT/bench/redis.sh"
TMP=$(mktemp -d)
mkdir -p "$TMP/repo/data"
trap 'stop_redis; rm -rf "$TMP"' EXIT
start_redis
PORT=$REDIS_PORT

cat > "$TMP/repo/feature_store.yaml" <<EOF
project: rides
provider: local
registry: data/registry.db
offline_store:
  type: file
online_store:
  type: redis
  connection_string: "127.0.0.1:$PORT"
entity_key_serialization_version: 3
EOF
cat > "$TMP/repo/definitions.py" <<EOF
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
driver_stats_src = FileSource(
    name="driver_stats_src",
    path="$SRC",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    online=True,
    source=driver_stats_src,
)
EOF
cat > "$TMP/run.py" <<'EOF'
import contextlib, json, sys, time
from datetime import datetime, timezone
import feast
import redis
from feast import FeatureStore

repo, port, rows, window_drivers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
store = FeatureStore(repo_path=repo)
start = datetime(2026, 1, 1, tzinfo=timezone.utc)
end = datetime(2026, 1, 8, tzinfo=timezone.utc)
with contextlib.redirect_stdout(sys.stderr):  # Feast's banner; stdout is the JSON alone
    t0 = time.perf_counter()
    store.materialize(start_date=start, end_date=end, feature_views=["driver_stats"])
    seconds = time.perf_counter() - t0
print(json.dumps({
    "engine": f"feast {feast.__version__}",
    "rows_in_lake": rows,
    "entities_online": redis.Redis(host="127.0.0.1", port=port).dbsize(),
    "distinct_drivers_in_window": window_drivers,
    "seconds": round(seconds, 3),
}), flush=True)
EOF

(cd "$TMP/repo" && "$VENV/bin/feast" apply >/dev/null)

# Row count of the lake and distinct drivers in the window, outside the timed part.
read -r ROWS WINDOW_DRIVERS < <("$PY" - "$SRC" <<'EOF'
import sys
from datetime import datetime, timezone
import pyarrow.compute as pc, pyarrow.dataset as ds
d = ds.dataset(sys.argv[1], format="parquet")
t = ds.field("event_timestamp")
f = (t >= datetime(2026, 1, 1, tzinfo=timezone.utc)) & (t <= datetime(2026, 1, 8, tzinfo=timezone.utc))
ids = d.to_table(columns=["driver_id"], filter=f)["driver_id"]
print(d.count_rows(), len(pc.unique(ids)))
EOF
)

for _ in $(seq 1 "$RUNS"); do
  redis-cli -p "$PORT" flushall >/dev/null
  sync
  /usr/bin/time -o "$TMP/time" -f '%e %M' \
    "$PY" "$TMP/run.py" "$TMP/repo" "$PORT" "$ROWS" "$WINDOW_DRIVERS" > "$TMP/report"
  bench_record materialize --engine feast --command "$CMD" --time "$TMP/time" \
    --param rows="$ROWS" --set distinct_drivers_in_window="$WINDOW_DRIVERS" < "$TMP/report"
done
