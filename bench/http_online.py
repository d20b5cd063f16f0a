"""The helpers of bench/http.sh (Quiver's POST /v1/online beside Feast's HTTP feature server,
both under wrk). Subcommands:

    feast-setup REPO LAKE REDIS_PORT START END      (in the Feast venv)
        A Feast repository over the sample lake's driver_stats/ and customer_profile/ folders
        (the same two views, three features each, ttl none as in the Quiver project
        bench/http.sh writes), its registry and its Redis online store on REDIS_PORT, written
        as bench/feast_online.py writes them (registry loaded once, never refreshed by the
        SDK); applied, then filled by Feast's own materialize over [START, END]. Prints one
        JSON line: the Redis key count and the seconds materialize took.
    ids LAKE OUT START END                          (in the Feast venv: pyarrow)
        The distinct driver_id and customer_id of the lake's driver_stats/ and
        customer_profile/ rows with an event time in [START, END): the entities both stores
        hold after materializing that window. Written to OUT as JSON, with their counts.
    bodies OUT IDS BATCH COUNT SEED                 (standard library only)
        COUNT request bodies, one JSON document a line, each with the six features, BATCH
        distinct driver ids and BATCH distinct customer ids drawn from IDS (the ids command's
        file). The same file is sent to both servers, whose bodies have the same shape
        ({"features": [...], "entities": {...}}).
    compare QUIVER_URL FEAST_URL BODIES N           (standard library only)
        POSTs the first N bodies of BODIES to both servers and checks that they answer the
        same value for every entity row and feature (float32 values compared as float32,
        nulls as nulls); exits non-zero, naming the first difference, otherwise.
    cpu PID [PID...]                                (standard library only; Linux /proc)
        For each PID, the CPU seconds (user and system) it has used so far with every live
        descendant and every child already waited for: Quiver's server or Feast's server
        with its workers, and a Redis. Prints the figures on one line, in PID order.
"""

import json
import os
import random
import struct
import sys
import urllib.request

VIEWS = {
    "driver_stats": ("driver", "driver_id", ["conv_rate", "acc_rate", "avg_daily_trips"]),
    "customer_profile": ("customer", "customer_id", ["current_balance", "avg_passenger_count", "lifetime_trip_count"]),
}
FEATURES = [f"{view}:{name}" for view, (_, _, names) in VIEWS.items() for name in names]


def feast_setup(repo, lake, port, start, end):
    import contextlib
    import os
    import time
    from datetime import datetime, timedelta

    import feast
    import redis
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Int64
    from feast_online import write_repo

    os.makedirs(f"{repo}/data", exist_ok=True)
    write_repo(repo, int(port))
    objects = []
    for view, (entity_name, key, names) in VIEWS.items():
        entity = Entity(name=entity_name, join_keys=[key], value_type=ValueType.INT64)
        source = FileSource(
            name=f"{view}_src",
            path=f"{lake}/{view}",
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        )
        fv = FeatureView(
            name=view,
            entities=[entity],
            ttl=timedelta(0),
            schema=[Field(name=key, dtype=Int64)]
            + [Field(name=n, dtype=t) for n, t in zip(names, [Float32, Float32, Int64])],
            online=True,
            source=source,
        )
        objects += [entity, source, fv]
    store = FeatureStore(repo_path=repo)
    with contextlib.redirect_stdout(sys.stderr):  # Feast's banners; stdout is the JSON alone
        store.apply(objects)
        t0 = time.perf_counter()
        store.materialize(start_date=datetime.fromisoformat(start), end_date=datetime.fromisoformat(end))
        seconds = time.perf_counter() - t0
    keys = redis.Redis(host="127.0.0.1", port=int(port)).dbsize()
    print(json.dumps({"engine": f"feast {feast.__version__}", "redis_keys": keys, "materialize_s": round(seconds, 2)}))


def ids(lake, out, start, end):
    from datetime import datetime

    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    found = {}
    for view, (_, key, _) in VIEWS.items():
        data = ds.dataset(f"{lake}/{view}", format="parquet")
        t = ds.field("event_timestamp")
        table = data.to_table(columns=[key], filter=(t >= lo) & (t < hi))
        found[key] = sorted(pc.unique(table[key]).to_pylist())
    with open(out, "w") as f:
        json.dump(found, f)
    print(json.dumps({key: len(values) for key, values in found.items()}))


def bodies(out, ids_file, batch, count, seed):
    batch, count = int(batch), int(count)
    with open(ids_file) as f:
        found = json.load(f)
    drivers, customers = found["driver_id"], found["customer_id"]
    if batch > min(len(drivers), len(customers)):
        raise SystemExit(f"batch {batch} needs at least {batch} drivers and customers")
    rng = random.Random(int(seed) * 1000 + batch)
    with open(out, "w") as f:
        for _ in range(count):
            body = {
                "features": FEATURES,
                "entities": {"driver_id": rng.sample(drivers, batch), "customer_id": rng.sample(customers, batch)},
            }
            f.write(json.dumps(body, separators=(",", ":")) + "\n")


def post(url, body):
    request = urllib.request.Request(url, data=body.encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def f32(value):
    """float32 values print differently (Quiver: shortest float32 text; Feast: the double);
    both round to the same float32."""
    if isinstance(value, float):
        return struct.unpack("f", struct.pack("f", value))[0]
    return value


def quiver_rows(answer):
    """Quiver's answer: {"results": [{"entity": {...}, "features": {ref: {"value", "status", ...}}}]}."""
    return [{ref: f32(cell.get("value")) for ref, cell in row["features"].items()} for row in answer["results"]]


def feast_rows(answer, n):
    """Feast's answer: {"metadata": {"feature_names": [...]}, "results": [{"values": [...]}, ...]},
    one result per feature (join keys included) holding a value per entity row."""
    names = answer["metadata"]["feature_names"]
    columns = {name: result["values"] for name, result in zip(names, answer["results"])}
    short = {ref.split(":", 1)[1]: ref for ref in FEATURES}
    rows = []
    for i in range(n):
        rows.append({short[name]: f32(columns[name][i]) for name in short})
    return rows


def compare(quiver_url, feast_url, path, n):
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line][: int(n)]
    cells = nulls = 0
    for number, body in enumerate(lines):
        batch = len(json.loads(body)["entities"]["driver_id"])
        q = quiver_rows(post(quiver_url, body))
        fe = feast_rows(post(feast_url, body), batch)
        if len(q) != batch:
            raise SystemExit(f"body {number}: Quiver answered {len(q)} rows for {batch} entities")
        for row, (qrow, frow) in enumerate(zip(q, fe)):
            for ref in FEATURES:
                if qrow.get(ref) != frow.get(ref):
                    raise SystemExit(
                        f"body {number}, row {row}, {ref}: Quiver {qrow.get(ref)!r}, Feast {frow.get(ref)!r}\n{body}"
                    )
                cells += 1
                nulls += qrow.get(ref) is None
    print(f"same values from both servers: {len(lines)} requests, {cells} cells ({nulls} null)", file=sys.stderr)


def cpu(*pids):
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue  # a process that ended meanwhile
        # The command name, in parentheses, may hold spaces: the fields follow its last ')'.
        fields = text[text.rindex(")") + 2:].split()
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        stats[int(entry)] = (ppid, utime + stime + cutime + cstime)
    roots = [int(p) for p in pids]
    totals = dict.fromkeys(roots, 0)
    for pid, (_, used) in stats.items():
        # Counted for the nearest root among the process and its ancestors.
        node, seen = pid, set()
        while node and node not in totals and node not in seen:
            seen.add(node)
            node = stats.get(node, (0, 0))[0]
        if node in totals:
            totals[node] += used
    print(" ".join(f"{totals[r] / ticks:.2f}" for r in roots))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "feast-setup":
        feast_setup(*args)
    elif command == "ids":
        ids(*args)
    elif command == "bodies":
        bodies(*args)
    elif command == "compare":
        compare(*args)
    elif command == "cpu":
        cpu(*args)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
