#!/usr/bin/env bash
# Training sets under a memory limit: `quiver historical --service ride_ranking_v1` over a
# large spine at several `--memory-limit` values (the join's sorts spill to disk when the
# pool is full).
#   bench/training_memory.sh [DIR] [SPINE_ROWS] [LIMITS]
# DIR (default /tmp/quiver-train-mem) holds the sample lake (1 M driver_stats rows, 1 000
# drivers, 5 000 customers), its offline tables and the spine (default 5 000 000 rows),
# written once and reused. LIMITS is a comma-separated list (default 256MiB,512MiB,2GiB).
# Prints one record per limit (see bench/record.py): the CLI's JSON report, /usr/bin/time's
# wall time and peak memory, and ok=1 or ok=0 with the error's first line.
# QUIVER_BIN=path runs that binary instead of the release one (to compare two builds on the
# same spine and tables, alternating); BENCH_DEFS=DIR takes the definitions from DIR instead
# of feature_defs/rides (read when DIR's data is first written).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
DIR="${1:-/tmp/quiver-train-mem}"
ROWS="${2:-5000000}"
LIMITS="${3:-256MiB,512MiB,2GiB}"
CMD="$(bench_command "$0" "$DIR" "$ROWS" "$LIMITS")"
quiver_bin
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

mkdir -p "$DIR"
cd "$DIR"
if [ ! -f ".ready-$ROWS" ]; then
  rm -rf lake .quiver feature_defs spine.parquet .ready-*
  cp -r "${BENCH_DEFS:-$BENCH_ROOT/feature_defs/rides}" feature_defs
  cat > quiver.yaml <<'YAML'
project: rides
definitions: feature_defs
registry: .quiver/registry
lake: lake
offline_store: .quiver/offline
online_store: {type: embedded, path: .quiver/online}
YAML
  "$BIN" sample-lake --dir lake --rows 1000000 --drivers 1000 --customers 5000 \
    --spine spine.parquet --spine-rows "$ROWS" >/dev/null
  "$BIN" apply >/dev/null
  "$BIN" materialize --start 2026-01-01 --end 2026-01-08 --views driver_stats,customer_profile >/dev/null
  touch ".ready-$ROWS"
fi
IFS=, read -ra limits <<< "$LIMITS"
for limit in "${limits[@]}"; do
  ok=1
  /usr/bin/time -o "$TMP/time" -f '%e %M' "$BIN" --json --memory-limit "$limit" historical \
    --entities spine.parquet --service ride_ranking_v1 --out "$TMP/out.parquet" --overwrite \
    > "$TMP/report" 2> "$TMP/err" || ok=0
  if [ "$ok" = 0 ]; then
    # A failed run's report is the CLI's error document; keep only its message.
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"error": d.get("error","")[:200]}))' \
      "$TMP/report" > "$TMP/report.ok" 2>/dev/null || echo '{}' > "$TMP/report.ok"
    mv "$TMP/report.ok" "$TMP/report"
  fi
  bench_record training_memory --engine quiver --command "$CMD" --time "$TMP/time" \
    --param spine_rows="$ROWS" --param memory_limit="$limit" --set ok="$ok" < "$TMP/report"
done
