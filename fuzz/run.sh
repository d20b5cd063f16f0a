#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60): `fuzz/run.sh [SECONDS] [TARGET...]`;
# `.ci/run` runs it (FUZZ_BUILD=dev, 60 s each) when a nightly toolchain is present.
# Needs a nightly toolchain (libFuzzer's instrumentation); installs cargo-fuzz from crates.io
# when it is missing. New inputs the fuzzer finds go to fuzz/scratch/<target>/ (not
# committed); a failing input is saved under fuzz/artifacts/<target>/ and the run stops with
# its path: reproduce it with `cargo +nightly fuzz run TARGET FILE`, fix the cause, then copy
# it to fuzz/regressions/<target>/ so `cargo test -p quiver-fuzz` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(definitions online_row push_ipc spine requests)
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number, not '$seconds'"; exit 2; }

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "no nightly toolchain here: fuzzing needs one (the corpora still replay in cargo test -p quiver-fuzz)"
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/quiver-fuzz-target}"
# The address sanitizer costs a slow DataFusion build for little: Quiver forbids unsafe code.
# FUZZ_BUILD=dev builds without optimizations: far quicker to build from cold (what CI uses),
# fewer runs a second; release (the default) is for long runs.
case "${FUZZ_BUILD:-release}" in
  release) build=(--sanitizer none --release --debug-assertions) ;;
  dev) build=(--sanitizer none --dev) ;;
  *) echo "FUZZ_BUILD must be release or dev, not '${FUZZ_BUILD}'"; exit 2 ;;
esac
mkdir -p logs
# Build every target first (one build), then run FUZZ_JOBS targets at a time (default 1).
cargo +nightly fuzz build "${build[@]}"
jobs_at_once="${FUZZ_JOBS:-1}"
[[ "$jobs_at_once" =~ ^[1-9][0-9]?$ ]] || { echo "FUZZ_JOBS must be 1 to 99, not '$jobs_at_once'"; exit 2; }
fuzz_one() {
  local t="$1" rc=0
  mkdir -p "scratch/$t" "artifacts/$t"
  cargo +nightly fuzz run "${build[@]}" "$t" "scratch/$t" "corpus/$t" $(ls -d "regressions/$t" 2>/dev/null) -- \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
    >"logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"logs/$t.rc"
}
for t in "${targets[@]}"; do
  while (( $(jobs -rp | wc -l) >= jobs_at_once )); do wait -n || true; done
  echo "== $t: ${seconds}s"
  fuzz_one "$t" &
done
wait
failed=0
for t in "${targets[@]}"; do
  echo "== $t"
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)|panicked at|Test unit written|^SUMMARY' "logs/$t.log" || true
  rc="$(cat "logs/$t.rc" 2>/dev/null || echo missing)"
  if [[ "$rc" != 0 ]]; then
    tail -20 "logs/$t.log"
    echo "$t: failed (exit $rc); the whole output is in fuzz/logs/$t.log"; failed=1
  fi
done
exit "$failed"
