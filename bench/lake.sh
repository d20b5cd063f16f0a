#!/usr/bin/env bash
# The sample lake generator: `quiver sample-lake` writing ROWS driver_stats rows (and the six
# other tables, which scale with it) into a temporary folder, timed with /usr/bin/time.
#   bench/lake.sh [ROWS] [DRIVERS]
# Prints one record (see bench/record.py): wall seconds, peak memory, files and rows written.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ROWS="${1:-10000000}"
DRIVERS="${2:-60000}"
CMD="$(bench_command "$0" "$ROWS" "$DRIVERS")"
bench_build -p quiver-cli --bin quiver
BIN="$(bench_bin quiver)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/time -o "$TMP/time" -f '%e %M' \
  "$BIN" --json sample-lake --dir "$TMP/lake" --rows "$ROWS" --drivers "$DRIVERS" --customers "$DRIVERS" > "$TMP/report"
BYTES=$(du -sb "$TMP/lake" | cut -f1)
bench_record lake --command "$CMD" --time "$TMP/time" --param rows="$ROWS" --param drivers="$DRIVERS" \
  --set bytes="$BYTES" < "$TMP/report"
