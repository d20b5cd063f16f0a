"""Turns the JSON lines a benchmark program prints into the records bench/report.py reads.

    PROGRAM | python3 bench/record.py WORKLOAD --engine ENGINE --command CMD [options]

Reads the program's output on stdin (JSON objects, one per line or pretty-printed; other
lines are passed to stderr),
and prints one record per measurement on stdout; with BENCH_RESULTS=DIR set, it also
appends them to DIR/<workload>.jsonl (the gRPC program's throughput lines go to
grpc_throughput.jsonl). Every record carries:

    workload, engine, version (peers), params (what was measured: sizes, batch),
    the figures (seconds, p50_ms, p99_ms, rows_per_s, peak_rss_mib ... as the program gives them),
    commit, date (UTC), command (the single script invocation that reproduces the line),
    run (the bench/run.sh invocation, when there was one), host (cpus, memory), binaries
    (their folder) and profile (BENCH_PROFILE, else "debug" or "release" when the folder's
    path says so, else "unknown").

Options:
    --param K=V   a parameter of the measurement (numbers are stored as numbers)
    --set K=V     a measured value added to the record (e.g. the Redis key count after a run)
    --time FILE   a /usr/bin/time -f '%e %M' output: adds wall_s and peak_rss_mib
    --version V   the peer's version when the program does not print one
Python standard library only.
"""

import argparse
import datetime
import json
import os
import sys


def number(text):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def pairs(items):
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        out[key] = number(value)
    return out


def host():
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "mem_gib": round(mem_kib / 1024 / 1024, 1)}


def read_time(path):
    """/usr/bin/time -f '%e %M': wall seconds and peak resident set in KiB."""
    with open(path) as f:
        words = f.read().split()
    # GNU time writes "Command exited with non-zero status N" first when the program fails.
    wall, peak_kib = float(words[-2]), int(words[-1])
    return {"wall_s": wall, "peak_rss_mib": round(peak_kib / 1024)}


def split_engine(text):
    """'duckdb 1.2.3' -> ('duckdb', '1.2.3')."""
    name, _, version = text.partition(" ")
    return name, version or None


def json_objects(text):
    """The JSON objects in a program's output, one per line or pretty-printed over several;
    other lines go to stderr."""
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        if text[pos] == "{":
            obj, pos = decoder.raw_decode(text, pos)
            yield obj
        else:
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            print(text[pos:end], file=sys.stderr)
            pos = end


# Adapters: one program output object -> a list of (workload, engine, version, params, figures).


def pit(obj, args):
    if args.engine == "quiver":
        params = {"spine_rows": obj["spine_rows"], "feature_rows": obj["a_rows"] + obj["b_rows"]}
        figures = {
            "seconds": obj["historical_s"],
            "rows_per_s": obj["rows_per_s"],
            "peak_rss_mib": obj["peak_rss_mib"],
            "memory_limit_mib": obj.get("memory_limit_mib"),
        }
        return [("pit", "quiver", None, params, figures)]
    if args.engine == "duckdb":
        name, version = split_engine(obj["engine"])
        params = {"spine_rows": obj["spine_rows"]}
        figures = {"seconds": obj["seconds"], "rows_per_s": obj["rows_per_s"], "peak_rss_mib": obj["peak_rss_mib"]}
        return [("pit", name, version, params, figures)]
    if args.engine == "compare":
        return [("pit", "compare", None, {"spine_rows": obj["rows"]}, dict(obj))]
    raise SystemExit(f"pit: unknown engine {args.engine}")


def online(obj, args):
    params = {"entities": obj["entities"], "batch": obj["batch"], "iterations": obj["iterations"]}
    shared = {
        "write_rows_per_s": obj.get("write_rows_per_s"),
        "bytes_per_entity_view": obj.get("bytes_per_entity_view"),
    }
    quiver = {"p50_ms": obj["read_p50_ms"], "p99_ms": obj["read_p99_ms"], **shared}
    floor = {"p50_ms": obj["raw_get_p50_ms"], "p99_ms": obj["raw_get_p99_ms"]}
    return [
        ("online", "quiver-store", None, params, quiver),
        ("online", "redis-get", args.version, params, floor),
    ]


def grpc(obj, args):
    if args.engine == "feast":
        name, version = split_engine(obj["engine"])
        params = {"entities": obj["entities"], "batch": obj["batch"], "calls": obj["calls"]}
        figures = {k: obj[k] for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms") if k in obj}
        return [("grpc", name, version, params, figures)]
    if obj.get("kind") == "latency":
        params = {"entities": obj["entities"], "batch": obj["batch"], "calls": obj["calls"]}
        figures = {k: obj[k] for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")}
        return [("grpc", "quiver-grpc", None, params, figures)]
    if obj.get("kind") == "throughput":
        params = {k: obj[k] for k in ("entities", "batch", "concurrency", "connections", "seconds")}
        return [("grpc_throughput", "quiver-grpc", None, params, {"rows_per_s": obj["rows_per_s"]})]
    raise SystemExit(f"grpc: unexpected line {obj}")


def materialize(obj, args):
    if args.engine == "quiver":
        views = obj.get("views") or [{}]
        view = views[0]
        if not obj.get("ok", False) or view.get("error"):
            raise SystemExit(f"materialize failed: {obj}")
        figures = {
            "seconds": view.get("seconds"),
            "rows": view.get("rows"),
            "online_rows": view.get("online_rows"),
            "online_seconds": view.get("online_seconds"),
        }
        return [("materialize", "quiver", None, {}, figures)]
    if args.engine == "feast":
        name, version = split_engine(obj["engine"])
        figures = {
            "seconds": obj["seconds"],
            "rows": obj.get("rows_in_lake"),
            "online_rows": obj.get("entities_online"),
        }
        return [("materialize", name, version, {}, figures)]
    raise SystemExit(f"materialize: unknown engine {args.engine}")


def lake(obj, args):
    files = obj.get("files", [])
    figures = {"files": len(files), "rows_total": sum(f.get("rows", 0) for f in files)}
    return [("lake", "quiver", None, {}, figures)]


def training_memory(obj, args):
    """`quiver --json historical` under a memory limit: its report, or its error message."""
    manifest = obj.get("manifest") or {}
    figures = {"rows": manifest.get("rows", manifest.get("spine_rows"))}
    if obj.get("error"):
        figures["error"] = obj["error"]
    return [("training_memory", "quiver", None, {}, figures)]


def http(obj, args):
    """bench/http.lua's line for one server and batch size (params from --param)."""
    engine = {"quiver": "quiver-http", "feast": "feast-http"}[args.engine]
    figures = {k: v for k, v in obj.items() if k.endswith("_ms") or k.startswith("errors_")}
    figures["requests"] = obj["requests"]
    figures["requests_per_s"] = obj["requests_per_s"]
    return [("http", engine, args.version if args.engine == "feast" else None, {"seconds": obj["seconds"]}, figures)]


def ballista(obj, args):
    """bench/ballista.sh's line for one `quiver historical` run (the timing from --time)."""
    params = {"spine_rows": obj["spine_rows"], "executors": obj["executors"]}
    figures = {"executor_peak_rss_mib": obj["executor_peak_rss_mib"] or None}
    return [("ballista", args.engine, None, params, figures)]


def ballista_materialize(obj, args):
    """bench/ballista_materialize.sh's line: one `quiver --json materialize` report on an engine
    (the timing from --time, the executors' peak and the Redis key count from --set)."""
    view = (obj.get("views") or [{}])[0]
    if not obj.get("ok", False) or view.get("error"):
        raise SystemExit(f"materialize on {args.engine} failed: {obj}")
    figures = {"seconds": view.get("seconds"), "rows": view.get("rows"), "online_rows": view.get("online_rows")}
    return [("ballista_materialize", args.engine, None, {}, figures)]


ADAPTERS = {"ballista": ballista, "ballista_materialize": ballista_materialize, "http": http, "training_memory": training_memory, "pit": pit, "online": online, "grpc": grpc, "materialize": materialize, "lake": lake}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(ADAPTERS))
    parser.add_argument("--engine", default="quiver")
    parser.add_argument("--command", required=True)
    parser.add_argument("--param", action="append")
    parser.add_argument("--set", action="append")
    parser.add_argument("--time")
    parser.add_argument("--version")
    args = parser.parse_args()

    extra_params, extra_figures = pairs(args.param), pairs(args.set)
    if args.time:
        extra_figures.update(read_time(args.time))
    quiver_bin = os.environ.get("QUIVER_BIN")
    binaries = (os.path.dirname(os.path.realpath(quiver_bin)) if quiver_bin else None) or os.environ.get("QUIVER_BIN_DIR") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "/var/tmp/quiver-release"), "release"
    )
    profile = os.environ.get("BENCH_PROFILE") or (
        "debug" if "/debug" in binaries else "release" if "/release" in binaries else "unknown"
    )
    common = {
        "commit": os.environ.get("BENCH_COMMIT", "unknown"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": args.command,
        "run": os.environ.get("BENCH_RUN_COMMAND") or None,
        "host": host(),
        "binaries": binaries,
        "profile": profile,
    }
    results = os.environ.get("BENCH_RESULTS")
    count = 0
    for obj in json_objects(sys.stdin.read()):
        for workload, engine, version, params, figures in ADAPTERS[args.workload](obj, args):
            figures = {k: v for k, v in figures.items() if v is not None}
            # The time file's peak covers the whole process; a program's own figure wins.
            for key, value in extra_figures.items():
                figures.setdefault(key, value)
            record = {"workload": workload, "engine": engine}
            if version:
                record["version"] = version
            record["params"] = {**params, **extra_params}
            record.update(figures)
            record.update(common)
            out = json.dumps(record)
            print(out, flush=True)
            if results:
                with open(os.path.join(results, f"{workload}.jsonl"), "a") as f:
                    f.write(out + "\n")
            count += 1
    if count == 0:
        raise SystemExit(f"record.py {args.workload}/{args.engine}: the program printed no result")


if __name__ == "__main__":
    main()
