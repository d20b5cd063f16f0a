# Sourced by the bench scripts: where the binaries come from, the Python environments of the
# peers, and how results are recorded.
#
#   QUIVER_BIN_DIR=DIR   use prebuilt binaries: DIR/quiver and DIR/examples/{pit_bench,
#                        online_bench,grpc_bench,s3_server}; nothing is built
#   CARGO_TARGET_DIR     otherwise the scripts build release binaries here
#                        (default /var/tmp/quiver-release)
#   BENCH_RESULTS=DIR    also append every record to DIR/<workload>.jsonl
#   BENCH_COMMIT=REV     the commit to record (default: `git rev-parse --short HEAD` of this
#                        tree, with "+dirty" when crates/ or Cargo.* have uncommitted changes);
#                        set it when QUIVER_BIN_DIR holds binaries built from another tree
#   BENCH_PROFILE=P      the binaries' build profile to record (default: "debug" or "release"
#                        when their folder's path says so, else "unknown")
BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/quiver-release}"
DUCKDB_VENV="${DUCKDB_VENV:-/var/tmp/quiver-duckdb-venv}"
FEAST_VENV="${FEAST_VENV:-/var/tmp/quiver-feast-venv}"

# bench_build CARGO_ARGS...: a release build of what the calling script needs, unless
# QUIVER_BIN_DIR names prebuilt binaries.
bench_build() {
  if [ -n "${QUIVER_BIN_DIR:-}" ]; then
    return 0
  fi
  (cd "$BENCH_ROOT" && cargo build --release -q "$@")
}

# bench_bin NAME: the path of `quiver` or of the example NAME.
bench_bin() {
  local dir="${QUIVER_BIN_DIR:-$CARGO_TARGET_DIR/release}" path
  if [ "$1" = quiver ]; then path="$dir/quiver"; else path="$dir/examples/$1"; fi
  if [ ! -x "$path" ]; then
    echo "no binary at $path (build it, or point QUIVER_BIN_DIR at a folder holding it)" >&2
    return 1
  fi
  realpath "$path"
}

# quiver_bin: sets BIN to the `quiver` to run: QUIVER_BIN when set (another build, to compare
# two on the same data; CMD then records it), else the release build (made if needed).
quiver_bin() {
  if [ -n "${QUIVER_BIN:-}" ]; then
    BIN="$(realpath "$QUIVER_BIN")"
    CMD="QUIVER_BIN=$QUIVER_BIN $CMD"
  else
    bench_build -p quiver-cli --bin quiver
    BIN="$(bench_bin quiver)"
  fi
}

# bench_commit: the commit the figures are recorded against.
bench_commit() {
  if [ -n "${BENCH_COMMIT:-}" ]; then
    echo "$BENCH_COMMIT"
    return
  fi
  local rev
  rev="$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git -C "$BENCH_ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    rev="$rev+dirty"
  fi
  echo "$rev"
}

# bench_command WORDS...: the words as one shell-quoted command line, script path relative to
# the repository (what a reader types from its root).
bench_command() {
  local first="$1" out
  shift
  first="$(realpath --relative-to="$BENCH_ROOT" "$first" 2>/dev/null || echo "$first")"
  out="$first"
  local w q="'"
  for w in "$@"; do
    if [[ "$w" =~ ^[A-Za-z0-9_./,:=+@%-]+$ ]]; then
      out="$out $w"
    else
      out="$out $q${w//$q/$q\\$q$q}$q"
    fi
  done
  echo "$out"
}

# bench_record WORKLOAD KIND [OPTIONS]: turns a program's JSON output (stdin) into the
# results' records (see bench/record.py), printed and appended to $BENCH_RESULTS/WORKLOAD.jsonl.
bench_record() {
  BENCH_COMMIT="$(bench_commit)" python3 "$BENCH_ROOT/bench/record.py" "$@"
}

# duckdb_python: the python of a venv holding DuckDB 2.0.1 and pyarrow (created on first use;
# if that pin ever disappears from PyPI, the newest DuckDB, said on stderr). The version
# that ran is recorded with every DuckDB figure.
duckdb_python() {
  if ! "$DUCKDB_VENV/bin/python" -c 'import duckdb, pyarrow' >/dev/null 2>&1; then
    [ -x "$DUCKDB_VENV/bin/python" ] || python3 -m venv "$DUCKDB_VENV" >&2
    if ! "$DUCKDB_VENV/bin/pip" install -q 'duckdb==2.0.1' pyarrow >&2; then
      echo "duckdb 2.0.1 not installable; using the newest" >&2
      "$DUCKDB_VENV/bin/pip" install -q duckdb pyarrow >&2
    fi
  fi
  echo "$DUCKDB_VENV/bin/python"
}

# feast_python: the python of a venv holding Feast 0.67.0 with its Redis extra (created on
# first use; if that pin ever disappears from PyPI, the newest 0.x, said on stderr).
feast_python() {
  if ! "$FEAST_VENV/bin/python" -c 'import feast, redis' >/dev/null 2>&1; then
    [ -x "$FEAST_VENV/bin/python" ] || python3 -m venv "$FEAST_VENV" >&2
    "$FEAST_VENV/bin/pip" install -q -U pip >&2
    if ! "$FEAST_VENV/bin/pip" install -q 'feast[redis]==0.67.0' >&2; then
      echo "feast 0.67.0 not installable; using the newest 0.x" >&2
      "$FEAST_VENV/bin/pip" install -q 'feast[redis]<1' >&2
    fi
  fi
  echo "$FEAST_VENV/bin/python"
}

# pyclient_python: the python of a venv holding this tree's quiver_client (with pandas) and
# Feast 0.67.0 with its Redis extra, side by side: one process measures both (pip resolves
# them together: Feast needs no grpcio and accepts quiver_client's protobuf 7). Created on
# first use with `pip install 'feast[redis]==0.67.0' 'clients/python[pandas]'` (if the
# Feast pin ever disappears from PyPI, the newest 0.x, said on stderr); quiver_client is
# reinstalled at every call, so the client measured is this tree's. pip builds from a copy
# of clients/python (its pyproject.toml, README.md and quiver_client/), so nothing is
# written into the tree.
PYCLIENT_VENV="${PYCLIENT_VENV:-/var/tmp/quiver-pyclient-venv}"
pyclient_python() {
  local client
  client="$(mktemp -d)"
  cp -r "$BENCH_ROOT/clients/python/pyproject.toml" "$BENCH_ROOT/clients/python/README.md" \
    "$BENCH_ROOT/clients/python/quiver_client" "$client/"
  find "$client" -name __pycache__ -prune -exec rm -rf {} +
  if ! "$PYCLIENT_VENV/bin/python" -c 'import feast, redis, quiver_client, pandas' >/dev/null 2>&1; then
    [ -x "$PYCLIENT_VENV/bin/python" ] || python3 -m venv "$PYCLIENT_VENV" >&2
    "$PYCLIENT_VENV/bin/pip" install -q -U pip >&2
    if ! "$PYCLIENT_VENV/bin/pip" install -q 'feast[redis]==0.67.0' "$client[pandas]" >&2; then
      echo "feast 0.67.0 not installable beside quiver_client; using the newest 0.x" >&2
      "$PYCLIENT_VENV/bin/pip" install -q 'feast[redis]<1' "$client[pandas]" >&2
    fi
  fi
  # setuptools' warnings about the package's metadata only on failure.
  if ! "$PYCLIENT_VENV/bin/pip" install -q --no-deps --force-reinstall "$client" > "$client.log" 2>&1 ||
    ! "$PYCLIENT_VENV/bin/pip" check >> "$client.log" 2>&1; then
    cat "$client.log" >&2
    rm -rf "$client" "$client.log"
    return 1
  fi
  rm -rf "$client" "$client.log"
  echo "$PYCLIENT_VENV/bin/python"
}

# plain_defs DIR: feature_defs/rides copied into DIR without the views' `expectations:`
# blocks and `drift:` lines, for builds that predate them (bench/ab.sh, bench/quality.sh).
plain_defs() {
  python3 - "$BENCH_ROOT/feature_defs/rides" "$1" <<'PY'
import pathlib, re, shutil, sys
src, out = map(pathlib.Path, sys.argv[1:])
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(src, out)
views = (src / "views.yaml").read_text()
# A view's `expectations:` block and `drift:` line, with the comment lines right above them.
views = re.sub(r"(?:\n    #[^\n]*)*\n    expectations:\n(?:      [^\n]*\n)+", "\n", views)
views = re.sub(r"(?:\n    #[^\n]*)*\n    drift: [^\n]*\n", "\n", views)
assert "expectations:" not in views and "drift:" not in views
(out / "views.yaml").write_text(views)
PY
}

# reset_for_scale DIR SCALE: the point-in-time data in DIR (bench/pit.sh's program's sources,
# tables, spines and outputs) was made for one SCALE: removed when it was made for another.
reset_for_scale() {
  if [ "$(cat "$1/.scale" 2>/dev/null || true)" != "$2" ]; then
    rm -rf "$1/lake" "$1/offline" "$1/registry" "$1"/spine-*.parquet "$1"/out_*.parquet
    echo "$2" > "$1/.scale"
  fi
}

# rides_project DIR DEFS REDIS_PORT ROWS DRIVERS: DIR as a project of the definitions in DEFS
# (copied) with its registry and offline store under DIR/.quiver, Redis on REDIS_PORT online,
# and `quiver sample-lake`'s lake of ROWS driver_stats rows over DRIVERS drivers in DIR/lake,
# written by $BIN once per ROWS and DRIVERS and reused.
rides_project() {
  mkdir -p "$1"
  rm -rf "$1/feature_defs" && cp -r "$2" "$1/feature_defs"
  cat > "$1/quiver.yaml" <<YAML
project: rides
definitions: feature_defs
registry: .quiver/registry
lake: lake
offline_store: .quiver/offline
online_store: {type: redis, url: "redis://127.0.0.1:$3/0"}
YAML
  if [ ! -f "$1/lake/.rows-$4-$5" ]; then
    rm -rf "$1/lake"
    "$BIN" sample-lake --dir "$1/lake" --rows "$4" --drivers "$5" --customers "$5" >/dev/null
    touch "$1/lake/.rows-$4-$5"
  fi
}
