"""Quiver from Python (quiver_client), beside the raw generated gRPC stub and Feast, on the
same data in the same run. Run by bench/python_client.sh, which starts Redis and `quiver
serve`; each step is a subcommand:

    gen DIR ENTITIES SPINE_ROWS ROWS_PER_ENTITY SEED
        Writes DIR/lake/{driver_stats,customer_profile}/part-0.parquet (ENTITIES ids 1..N,
        ROWS_PER_ENTITY snapshots each, spread over 2026-01-01 .. 2026-01-08), the Quiver
        definitions DIR/defs/, and DIR/spine.parquet (SPINE_ROWS rows: driver_id,
        customer_id, event_timestamp, row_id).
    feast-setup REPO LAKE REDIS_PORT
        A Feast repository over the same Parquet files (the same two views and six features,
        ttl 0 like Quiver's "0"), applied and materialized into Redis database 1.
    online ADDR REPO REDIS_PORT ENTITIES CALLS BATCHES SEED
        Online reads: per batch size, CALLS rounds after warm-up; each round sends one
        request (the same random entity ids) through quiver_client, the raw stub and Feast,
        the rounds cycling through the six orders of the three (each engine as often first,
        second and third; quiver_client and the stub as often right after a Feast call,
        which leaves garbage and cold caches to whatever runs next). One JSON line per
        engine and batch size.
    train-quiver ADDR SPINE OUT SERVER_PID RUN / train-feast REPO SPINE OUT RUN
        One training set into pandas, in a fresh process; OUT (optional, "-" for none)
        receives the frame as Parquet, outside the timed part. One JSON line.
    compare QUIVER_OUT FEAST_OUT SPINE_ROWS
        Row counts and every feature value of the two training sets, by row_id.
    record --command CMD           (system python3, standard library only)
        bench/record.py with an adapter for these lines (workloads python_online and
        python_training).
    table RECORDS                  (standard library only)
        A readable table of the records on stderr.

What is timed (time.perf_counter, one process, everything sequential):
  quiver-python  Client.get_online_features(features=[6 refs], entities={driver_id: [...],
                 customer_id: [...]}): the dict becomes Arrow columns then typed Values, the
                 call goes through the client's retry wrapper, and the Arrow answer is
                 decoded into an OnlineFeatures (pyarrow table); no to_dict().
  quiver-stub    the hand-written call of the generated stub with the same request:
                 GetOnlineFeaturesRequest(features=FeatureList(refs), entities={key:
                 RepeatedValue(values=[Value(int64_value=id) ...])}, arrow=True) built from
                 the same Python lists, OnlineServiceStub.GetOnlineFeatures(request,
                 timeout=30) on a channel of its own, pa.ipc.open_stream(arrow_ipc).read_all().
  feast          FeatureStore.get_online_features(features=[6 refs], entity_rows={...}) as in
                 bench/feast_online.py (the OnlineResponse, already decoded; no to_dict()).
  training       quiver: Client.get_historical_features(spine_df, features=[6 refs])
                 .to_pandas() (spine upload over Flight, the server's build, download, Arrow
                 to pandas); feast: FeatureStore.get_historical_features(entity_df=spine_df,
                 features=[6 refs]).to_df(). The spine DataFrame is read before the clock
                 starts. Peak RSS: the Python process's (ru_maxrss, imports included), and for
                 Quiver also the server's peak during the call (VmHWM after clear_refs 5).
"""

import itertools
import json
import os
import sys
import time

from latency import Ids, percentile

VIEWS = {
    "driver_stats": ("driver", "driver_id", [("conv_rate", "float32"), ("acc_rate", "float32"), ("avg_daily_trips", "int64")]),
    "customer_profile": (
        "customer",
        "customer_id",
        [("current_balance", "float32"), ("avg_passenger_count", "float32"), ("lifetime_trip_count", "int64")],
    ),
}
FEATURES = [f"{view}:{name}" for view, (_, _, cols) in VIEWS.items() for name, _ in cols]
FEATURE_COLUMNS = [name for _, (_, _, cols) in VIEWS.items() for name, _ in cols]
START_S = 1767225600  # 2026-01-01T00:00:00Z
WEEK_S = 7 * 86400
SPINE_FROM_S = START_S + 3600  # every entity has a row in the first hour: no spine row precedes all rows
WARMUP = 100


def log(*args):
    print(*args, file=sys.stderr, flush=True)



def latency(times_ms):
    t = sorted(times_ms)
    return {
        "p50_ms": round(percentile(t, 0.5), 4),
        "p90_ms": round(percentile(t, 0.9), 4),
        "p99_ms": round(percentile(t, 0.99), 4),
        "p999_ms": round(percentile(t, 0.999), 4),
        "max_ms": round(t[-1], 4),
        "mean_ms": round(sum(t) / len(t), 4),
    }


def versions():
    import platform

    out = {"python": platform.python_version()}
    for module in ("quiver_client", "feast", "grpc", "google.protobuf", "pyarrow", "pandas", "numpy", "dask", "redis"):
        try:
            m = __import__(module, fromlist=["__version__"])
            out[module.split(".")[-1].replace("grpc", "grpcio")] = getattr(m, "__version__", "?")
        except ImportError:
            pass
    return out


def peak_rss_mib():
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# ---- data ----------------------------------------------------------------------------------


def gen(out_dir, entities, spine_rows, per_entity, seed):
    """The lake both engines read, the Quiver definitions and the spine. Feature rows sit at
    whole seconds, spine times at odd microseconds, so no spine time equals a row's time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    ids = np.arange(1, entities + 1, dtype=np.int64)
    step = WEEK_S // per_entity
    for view, (_, key, cols) in VIEWS.items():
        # Snapshot k of entity e at START + k * step + (e * 7919 mod 3600) seconds.
        offset = (ids * 7919) % 3600
        key_col = np.tile(ids, per_entity)
        times_s = START_S + np.repeat(np.arange(per_entity, dtype=np.int64) * step, entities) + np.tile(offset, per_entity)
        n = len(key_col)
        columns = {key: pa.array(key_col)}
        for name, dtype in cols:
            if dtype == "float32":
                low, high = {"current_balance": (0.0, 1000.0), "avg_passenger_count": (1.0, 4.0)}.get(name, (0.0, 1.0))
                columns[name] = pa.array((low + rng.random(n) * (high - low)).astype(np.float32))
            else:
                columns[name] = pa.array(rng.integers(0, 10_000, n, dtype=np.int64))
        columns["event_timestamp"] = pa.array(times_s * 1_000_000, pa.timestamp("us", tz="UTC"))
        os.makedirs(f"{out_dir}/lake/{view}", exist_ok=True)
        pq.write_table(pa.table(columns), f"{out_dir}/lake/{view}/part-0.parquet")

    # Spine: unique times (so Feast, which drops rows repeating keys + time, keeps them all),
    # spread evenly over the week after the first hour, in random order.
    span_us = (START_S + WEEK_S - SPINE_FROM_S) * 1_000_000
    step_us = (span_us // max(spine_rows, 1)) // 2 * 2
    times_us = SPINE_FROM_S * 1_000_000 + np.arange(spine_rows, dtype=np.int64) * step_us + 1
    rng.shuffle(times_us)
    spine = pa.table(
        {
            "driver_id": pa.array(rng.integers(1, entities + 1, spine_rows, dtype=np.int64)),
            "customer_id": pa.array(rng.integers(1, entities + 1, spine_rows, dtype=np.int64)),
            "event_timestamp": pa.array(times_us, pa.timestamp("us", tz="UTC")),
            "row_id": pa.array(np.arange(spine_rows, dtype=np.int64)),
        }
    )
    pq.write_table(spine, f"{out_dir}/spine.parquet")

    os.makedirs(f"{out_dir}/defs", exist_ok=True)
    with open(f"{out_dir}/defs/defs.yaml", "w") as f:
        f.write("entities:\n")
        for _, (entity, key, _) in VIEWS.items():
            f.write(f"  - {{name: {entity}, join_keys: [{{name: {key}, dtype: int64}}]}}\n")
        f.write("sources:\n")
        for view in VIEWS:
            f.write(f"  - {{name: {view}_src, path: {view}/*.parquet, format: parquet, timestamp_field: event_timestamp}}\n")
        f.write("feature_views:\n")
        for view, (entity, _, cols) in VIEWS.items():
            f.write(f"  - name: {view}\n    entities: [{entity}]\n    source: {view}_src\n    ttl: \"0\"\n    features:\n")
            for name, dtype in cols:
                f.write(f"      - {{name: {name}, dtype: {dtype}}}\n")
    log(f"gen: {entities} entities x {per_entity} rows per view, spine {spine_rows} rows, seed {seed}")


# ---- Feast ---------------------------------------------------------------------------------


def feast_store(repo):
    from feast import FeatureStore

    return FeatureStore(repo_path=repo)


def feast_setup(repo, lake, port):
    import contextlib
    from datetime import datetime, timedelta, timezone

    import redis
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Int64

    from feast_online import write_repo

    os.makedirs(f"{repo}/data", exist_ok=True)
    write_repo(repo, port, db=1)  # Quiver's rows live in database 0 of the same server
    types = {"float32": Float32, "int64": Int64}
    objects = []
    for view, (entity_name, key, cols) in VIEWS.items():
        entity = Entity(name=entity_name, join_keys=[key], value_type=ValueType.INT64)
        source = FileSource(name=f"{view}_src", path=f"{lake}/{view}/part-0.parquet", timestamp_field="event_timestamp")
        fv = FeatureView(
            name=view,
            entities=[entity],
            ttl=timedelta(0),  # no ttl, as Quiver's ttl "0"
            schema=[Field(name=key, dtype=Int64)] + [Field(name=n, dtype=types[t]) for n, t in cols],
            online=True,
            source=source,
        )
        objects += [entity, source, fv]
    store = feast_store(repo)
    start = datetime.fromtimestamp(START_S, timezone.utc)
    with contextlib.redirect_stdout(sys.stderr):
        store.apply(objects)
        t0 = time.perf_counter()
        store.materialize(start_date=start - timedelta(days=1), end_date=start + timedelta(days=30))
        seconds = time.perf_counter() - t0
    keys = redis.Redis(host="127.0.0.1", port=port, db=1).dbsize()
    print(json.dumps({"kind": "setup", "engine": "feast", "materialize_s": round(seconds, 2), "redis_keys": keys}))


# ---- online --------------------------------------------------------------------------------



def online(addr, repo, port, entities, calls, batches, seed):
    import grpc
    import pyarrow as pa
    from quiver_client import Client
    from quiver_client._proto.quiver.v1 import online_pb2, online_pb2_grpc, types_pb2

    ver = versions()
    store = feast_store(repo)
    client = Client(addr, timeout=30.0)
    # The stub's own channel, with the options the client sets (message size, reconnects).
    channel = grpc.insecure_channel(
        addr,
        options=[
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ],
    )
    stub = online_pb2_grpc.OnlineServiceStub(channel)
    refs = types_pb2.FeatureList(refs=FEATURES)

    def quiver_call(d, c):
        return client.get_online_features(features=FEATURES, entities={"driver_id": d, "customer_id": c})

    def stub_call(d, c):
        request = online_pb2.GetOnlineFeaturesRequest(
            features=refs,
            entities={
                "driver_id": types_pb2.RepeatedValue(values=[types_pb2.Value(int64_value=v) for v in d]),
                "customer_id": types_pb2.RepeatedValue(values=[types_pb2.Value(int64_value=v) for v in c]),
            },
            arrow=True,
        )
        response = stub.GetOnlineFeatures(request, timeout=30.0)
        return pa.ipc.open_stream(response.arrow_ipc).read_all()

    def feast_call(d, c):
        return store.get_online_features(features=FEATURES, entity_rows={"driver_id": d, "customer_id": c})

    engines = [("quiver-python", quiver_call), ("quiver-stub", stub_call), ("feast", feast_call)]
    # The six orders in turn: each engine as often first, second and third, and quiver_client
    # and the stub as often right after a Feast call (3 times in 6 rounds each, the joins
    # between rounds counted).
    orders = list(itertools.permutations(engines))
    version_of = {"quiver-python": ver.get("quiver_client"), "quiver-stub": ver.get("grpcio"), "feast": ver.get("feast")}

    for batch in batches:
        ids = Ids(seed * 1000 + batch, entities)

        def request():
            return [ids.next() for _ in range(batch)], [ids.next() for _ in range(batch)]

        # Warm-up, and the same answers from all three.
        mismatches = 0
        for _ in range(WARMUP):
            d, c = request()
            q = quiver_call(d, c).to_dict()
            s = stub_call(d, c)
            f = feast_call(d, c).to_dict()
            for name in FEATURE_COLUMNS:
                view = "driver_stats" if name in ("conv_rate", "acc_rate", "avg_daily_trips") else "customer_profile"
                qv, sv, fv = q[f"{view}:{name}"], s.column(f"{view}:{name}").to_pylist(), f[name]
                if any(v is None for v in qv):
                    raise SystemExit(f"quiver: an entity without {view}:{name}")
                if qv != sv or qv != fv:
                    mismatches += sum(1 for a, b, z in zip(qv, sv, fv) if not (a == b == z))
        if mismatches:
            log(f"online batch {batch}: {mismatches} values differ between quiver, the stub and Feast in warm-up")

        times = {name: [] for name, _ in engines}
        load = os.getloadavg()[0]
        for i in range(calls):
            d, c = request()
            for name, fn in orders[i % len(orders)]:
                t = time.perf_counter()
                fn(d, c)
                times[name].append((time.perf_counter() - t) * 1000.0)
        figures = {name: latency(ts) for name, ts in times.items()}
        q, s = figures["quiver-python"], figures["quiver-stub"]
        for name, _ in engines:
            out = {
                "kind": "online",
                "engine": name,
                "version": version_of[name],
                "entities": entities,
                "batch": batch,
                "calls": calls,
                "features": len(FEATURES),
                **figures[name],
                "warmup_mismatches": mismatches,
                "loadavg_1m_before": round(load, 2),
                "versions": ver,
            }
            if name == "quiver-python":
                out["overhead_p50_pct"] = round((q["p50_ms"] / s["p50_ms"] - 1) * 100, 1)
                out["overhead_p99_pct"] = round((q["p99_ms"] / s["p99_ms"] - 1) * 100, 1)
            print(json.dumps(out), flush=True)
    client.close()
    channel.close()


# ---- training sets -------------------------------------------------------------------------


def read_spine(path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def server_hwm_reset(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def server_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return None


def report_training(engine, ver, package, spine, run, load, seconds, frame, out, **extra):
    """Prints one training run's record; keeps its output at ``out`` unless that is ``-``."""
    result = {
        "kind": "training",
        "engine": engine,
        "version": ver.get(package),
        "spine_rows": len(spine),
        "run": run,
        "loadavg_1m_before": round(load, 2),
        "seconds": round(seconds, 3),
        "rows": len(frame),
        "rows_per_s": round(len(frame) / seconds),
        "peak_rss_mib": peak_rss_mib(),
        **extra,
        "versions": ver,
    }
    if out != "-":
        frame.to_parquet(out)
    print(json.dumps(result), flush=True)


def train_quiver(addr, spine_path, out, server_pid, run):
    from quiver_client import Client

    ver = versions()
    spine = read_spine(spine_path)
    client = Client(addr, timeout=1800.0)
    reset = server_hwm_reset(server_pid)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    frame = client.get_historical_features(spine, features=FEATURES).to_pandas()
    seconds = time.perf_counter() - t0
    server_peak = server_hwm_mib(server_pid) if reset else None
    client.close()
    report_training("quiver-python", ver, "quiver_client", spine, run, load, seconds, frame, out, server_peak_rss_mib=server_peak)


def train_feast(repo, spine_path, out, run):
    import contextlib

    ver = versions()
    spine = read_spine(spine_path)
    store = feast_store(repo)
    load = os.getloadavg()[0]
    with contextlib.redirect_stdout(sys.stderr):
        t0 = time.perf_counter()
        frame = store.get_historical_features(entity_df=spine, features=FEATURES).to_df()
        seconds = time.perf_counter() - t0
    report_training("feast", ver, "feast", spine, run, load, seconds, frame, out)


def compare(quiver_out, feast_out, spine_rows):
    import numpy as np
    import pandas as pd

    q, f = pd.read_parquet(quiver_out), pd.read_parquet(feast_out)
    problems = []
    for name, frame in (("quiver", q), ("feast", f)):
        if len(frame) != spine_rows:
            problems.append(f"{name}: {len(frame)} rows for a spine of {spine_rows}")
        if frame["row_id"].duplicated().any():
            problems.append(f"{name}: repeated spine rows")
    m = q.merge(f, on="row_id", how="outer", suffixes=("_q", "_f"), indicator=True)
    only = (m["_merge"] != "both").sum()
    if only:
        problems.append(f"{only} spine rows in only one of the two sets")
    m = m[m["_merge"] == "both"]
    differing, nulls, cells = 0, 0, 0
    for name in FEATURE_COLUMNS:
        a, b = m[f"{name}_q"], m[f"{name}_f"]
        na, nb = a.isna().to_numpy(), b.isna().to_numpy()
        both = ~na & ~nb
        if name in ("avg_daily_trips", "lifetime_trip_count"):
            same = a.to_numpy(dtype="float64", na_value=np.nan)[both] == b.to_numpy(dtype="float64", na_value=np.nan)[both]
        else:
            same = a[both].to_numpy(dtype=np.float32) == b[both].to_numpy(dtype=np.float32)
        bad = int((na != nb).sum() + (~same).sum())
        if bad:
            problems.append(f"{name}: {bad} values differ")
        differing += bad
        nulls += int((na & nb).sum())
        cells += len(m)
    for p in problems:
        log(f"training sets disagree: {p}")
    print(
        json.dumps(
            {
                "kind": "compare",
                "engine": "compare",
                "spine_rows": spine_rows,
                "rows_quiver": len(q),
                "rows_feast": len(f),
                "cells_compared": cells,
                "differing_cells": differing,
                "null_cells_both": nulls,
                "agree": not problems,
            }
        ),
        flush=True,
    )


# ---- records and the table (standard library only) -----------------------------------------


def adapter(obj, args):
    kind = obj.get("kind")
    skip = {"kind", "engine", "version", "entities", "batch", "calls", "spine_rows", "run", "features"}
    figures = {k: v for k, v in obj.items() if k not in skip}
    if kind == "online":
        params = {"entities": obj["entities"], "batch": obj["batch"], "calls": obj["calls"], "features": obj["features"]}
        return [("python_online", obj["engine"], obj.get("version"), params, figures)]
    if kind == "training":
        params = {"spine_rows": obj["spine_rows"], "run": obj["run"]}
        return [("python_training", obj["engine"], obj.get("version"), params, figures)]
    if kind == "compare":
        return [("python_training", "compare", None, {"spine_rows": obj["spine_rows"]}, figures)]
    if kind == "setup":
        return []
    raise SystemExit(f"python_client: unexpected line {obj}")


def record(argv):
    sys.dont_write_bytecode = True  # no bench/__pycache__ in the tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import record as rec

    rec.ADAPTERS["python_client"] = adapter
    sys.argv = ["record.py", "python_client", *argv]
    rec.main()


def table(path):
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    online = [r for r in records if r["workload"] == "python_online"]
    training = [r for r in records if r["workload"] == "python_training"]
    ms = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    out = []
    if records:
        r = records[0]
        out.append(f"commit {r['commit']}, {r['date']}, binaries {r['binaries']} ({r['profile']})")
        v = next((x.get("versions") for x in records if x.get("versions")), {})
        out.append("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    if online:
        out.append("")
        out.append(f"Online reads, {online[0]['params']['features']} features of 2 views, {online[0]['params']['entities']} entities per view, {online[0]['params']['calls']} calls each (ms)")
        out.append(f"{'batch':>5}  {'engine':<14} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8}  note")
        for r in sorted(online, key=lambda r: (r["params"]["batch"], ["quiver-python", "quiver-stub", "feast"].index(r["engine"]))):
            note = ""
            if r["engine"] == "quiver-python":
                note = f"client overhead vs stub: p50 {r['overhead_p50_pct']:+.1f} %, p99 {r['overhead_p99_pct']:+.1f} %"
            if r["engine"] == "feast":
                q = next((x for x in online if x["engine"] == "quiver-python" and x["params"]["batch"] == r["params"]["batch"]), None)
                if q:
                    note = f"Feast / quiver_client: p50 {r['p50_ms'] / q['p50_ms']:.1f}x, p99 {r['p99_ms'] / q['p99_ms']:.1f}x"
            out.append(
                f"{r['params']['batch']:>5}  {r['engine']:<14} {ms(r['p50_ms']):>8} {ms(r['p90_ms']):>8} {ms(r['p99_ms']):>8} {ms(r['p999_ms']):>8} {ms(r['max_ms']):>8}  {note}"
            )
        loads = {r["params"]["batch"]: r.get("loadavg_1m_before") for r in online}
        out.append("1-minute load average before each batch: " + ", ".join(f"batch {b}: {v}" for b, v in sorted(loads.items())))
    runs = [r for r in training if r["engine"] != "compare"]
    if runs:
        out.append("")
        out.append(f"Training set into pandas, spine {runs[0]['params']['spine_rows']} rows, 6 features of 2 views")
        out.append(f"{'engine':<14} {'run':>3} {'seconds':>9} {'rows':>9} {'peak RSS (client)':>18} {'server peak RSS':>16} {'load':>6}")
        for r in sorted(runs, key=lambda r: (r["engine"], r["params"]["run"])):
            server = r.get("server_peak_rss_mib")
            out.append(
                f"{r['engine']:<14} {r['params']['run']:>3} {r['seconds']:>9.2f} {r['rows']:>9} {str(r['peak_rss_mib']) + ' MiB':>18} {(str(server) + ' MiB') if server is not None else '-':>16} {r.get('loadavg_1m_before', '-'):>6}"
            )
    best, med = {}, {}
    if runs:
        for r in runs:
            best[r["engine"]] = min(best.get(r["engine"], r["seconds"]), r["seconds"])
        if "quiver-python" in best and "feast" in best:
            for e in best:
                s = sorted(r["seconds"] for r in runs if r["engine"] == e)
                med[e] = s[len(s) // 2]
            out.append(
                f"Feast / quiver_client: best {best['feast'] / best['quiver-python']:.1f}x, median {med['feast'] / med['quiver-python']:.1f}x"
            )
    for c in (r for r in training if r["engine"] == "compare"):
        out.append(
            f"compared: quiver {c['rows_quiver']} rows, feast {c['rows_feast']} rows, "
            f"{c['differing_cells']} of {c['cells_compared']} cells differ ({'agree' if c['agree'] else 'DISAGREE'})"
        )
    # The targets of the issue.
    targets = []
    q100 = next((r for r in online if r["engine"] == "quiver-python" and r["params"]["batch"] == 100), None)
    if q100:
        ok = q100["p99_ms"] < 3.0
        targets.append(f"batch 100 p99 through quiver_client {q100['p99_ms']:.3f} ms (target < 3 ms): {'met' if ok else 'MISSED'}")
    for r in sorted((r for r in online if r["engine"] == "quiver-python"), key=lambda r: r["params"]["batch"]):
        ok = r["overhead_p50_pct"] < 20 and r["overhead_p99_pct"] < 20
        targets.append(
            f"client overhead at batch {r['params']['batch']}: p50 {r['overhead_p50_pct']:+.1f} %, p99 "
            f"{r['overhead_p99_pct']:+.1f} % (target < 20 %): {'met' if ok else 'MISSED'}"
        )
    if runs and "quiver-python" in best and "feast" in best:
        x = med["feast"] / med["quiver-python"]
        targets.append(f"training set, Feast / quiver_client (medians) {x:.1f}x (target >= 5x): {'met' if x >= 5 else 'MISSED'}")
    if targets:
        out += ["", "Targets:"] + [f"  {t}" for t in targets]
    log("\n".join(out))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen":
        gen(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "feast-setup":
        feast_setup(args[0], args[1], int(args[2]))
    elif cmd == "online":
        online(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), [int(b) for b in args[5].split(",")], int(args[6]))
    elif cmd == "train-quiver":
        train_quiver(args[0], args[1], args[2], int(args[3]), int(args[4]))
    elif cmd == "train-feast":
        train_feast(args[0], args[1], args[2], int(args[3]))
    elif cmd == "compare":
        compare(args[0], args[1], int(args[2]))
    elif cmd == "record":
        record(args)
    elif cmd == "table":
        table(args[0])
    else:
        raise SystemExit(f"unknown step {cmd}")


if __name__ == "__main__":
    main()
