# Sourced by the cluster benchmarks: a Ballista cluster of `quiver ballista` processes on
# loopback ports of this machine. The caller sets BIN (the `quiver` to run) and WORK (a folder
# for the executors' work folders and logs), calls cluster_settings, and stop_cluster on exit.
PIDS=()

# cluster_settings: MEMORY (each process's memory limit: QUIVER_MEMORY_LIMIT, default 1GiB)
# and PARTITIONS (offline_engine.partitions, default 4), both added to CMD when given; checks
# them and RUNS.
cluster_settings() {
  if [ -n "${QUIVER_MEMORY_LIMIT:-}" ]; then CMD="QUIVER_MEMORY_LIMIT=$QUIVER_MEMORY_LIMIT $CMD"; fi
  if [ -n "${PARTITIONS:-}" ]; then CMD="PARTITIONS=$PARTITIONS $CMD"; fi
  MEMORY="${QUIVER_MEMORY_LIMIT:-1GiB}"
  PARTITIONS="${PARTITIONS:-4}"
  [[ "$RUNS" =~ ^[1-9][0-9]?$ ]] || { echo "RUNS must be 1 to 99, not '$RUNS'"; exit 2; }
  [[ "$PARTITIONS" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "PARTITIONS must be 1 to 9999, not '$PARTITIONS'"; exit 2; }
}

# stop_cluster: kills the scheduler and executors started last and waits for them.
stop_cluster() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_cluster EXECUTORS TASKS: a scheduler and EXECUTORS executors of TASKS task slots each;
# sets URL once every executor is registered. PIDS holds the scheduler's process, then the
# executors'.
start_cluster() {
  local executors="$1" tasks="$2" port i
  port="$(free_port)"
  "$BIN" ballista scheduler --bind "127.0.0.1:$port" 2> "$WORK/scheduler.log" &
  PIDS+=("$!")
  URL="df://127.0.0.1:$port"
  for ((i = 0; i < executors; i++)); do
    "$BIN" --memory-limit "$MEMORY" ballista executor --scheduler "$URL" \
      --bind "127.0.0.1:$(free_port)" --grpc-port "$(free_port)" --concurrent-tasks "$tasks" \
      --work-dir "$WORK/executor-$i" 2> "$WORK/executor-$i.log" &
    PIDS+=("$!")
  done
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$port/readyz" 2>/dev/null | grep -q "^ready: $executors executors"; then
      return 0
    fi
    sleep 0.1
  done
  echo "the cluster did not come up; its logs:" >&2
  cat "$WORK"/*.log >&2
  exit 1
}

# peak_rss_mib PID...: the largest peak resident size among the processes, MiB.
peak_rss_mib() {
  local p kib max=0
  for p in "$@"; do
    kib="$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)"
    [ "${kib:-0}" -gt "$max" ] && max="$kib"
  done
  echo $((max / 1024))
}
