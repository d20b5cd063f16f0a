"""Feast's online read, the peer of bench/grpc.sh: the same two views of three features, the
same number of entities per view, the same batch sizes, against a Redis of its own.

    python feast_online.py REPO_DIR REDIS_PORT ENTITIES CALLS BATCHES

Run by bench/feast_online.sh, in the Feast venv. Writes a Feast repository under REPO_DIR
(two entities, two Parquet sources of ENTITIES rows each, two feature views), applies it,
fills Redis with Feast's own store.materialize(), then, per batch size of BATCHES (a
comma-separated list), times CALLS sequential store.get_online_features() calls after 20
warm-up calls, each for `batch` entity rows (a random driver_id and customer_id per row, ids
1..ENTITIES) and the six features. Prints one JSON line per batch size on stdout; Feast's
own messages go to stderr.

What is timed: the get_online_features() call alone, which returns Feast's OnlineResponse
(the protobuf response, already decoded); building the entity rows is outside, and so is any
conversion of the response to Python lists (to_dict()).
"""

import contextlib
import json
import sys
import time
from datetime import datetime, timedelta, timezone

import feast
import pyarrow as pa
import pyarrow.parquet as pq
import redis
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64
from latency import Ids, percentile

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
VIEWS = {
    "driver_stats": ("driver", "driver_id", ["conv_rate", "acc_rate", "avg_daily_trips"]),
    "customer_profile": ("customer", "customer_id", ["current_balance", "avg_passenger_count", "lifetime_trip_count"]),
}
FEATURES = [f"{view}:{name}" for view, (_, _, names) in VIEWS.items() for name in names]


def write_repo(repo, port, db=0):
    """The repository's feature_store.yaml: Redis on loopback `port`, database `db`."""
    database = f",db={db}" if db else ""
    with open(f"{repo}/feature_store.yaml", "w") as f:
        f.write(
            "project: bench\n"
            "provider: local\n"
            # cache_ttl_seconds 0: the registry is loaded once and never refreshed during the
            # timed calls (the default refreshes it every 600 s, in the calling thread).
            "registry: {path: data/registry.db, cache_ttl_seconds: 0}\n"
            "offline_store: {type: file}\n"
            f'online_store: {{type: redis, connection_string: "127.0.0.1:{port}{database}"}}\n'
            "entity_key_serialization_version: 3\n"
        )


def write_sources(repo, entities):
    """One row per entity and view: ids 1..entities, event times one second apart."""
    ids = pa.array(range(1, entities + 1), pa.int64())
    times = pa.array([START + timedelta(seconds=i) for i in range(entities)], pa.timestamp("us", tz="UTC"))
    f32 = pa.float32()
    tables = {
        "driver_stats": {
            "driver_id": ids,
            "conv_rate": pa.array([0.5] * entities, f32),
            "acc_rate": pa.array([0.25] * entities, f32),
            "avg_daily_trips": ids,
        },
        "customer_profile": {
            "customer_id": ids,
            "current_balance": pa.array([120.5] * entities, f32),
            "avg_passenger_count": pa.array([1.5] * entities, f32),
            "lifetime_trip_count": ids,
        },
    }
    for view, columns in tables.items():
        table = pa.table({**columns, "event_timestamp": times})
        pq.write_table(table, f"{repo}/data/{view}.parquet")


def definitions(repo):
    objects = []
    for view, (entity_name, key, names) in VIEWS.items():
        entity = Entity(name=entity_name, join_keys=[key], value_type=ValueType.INT64)
        source = FileSource(name=f"{view}_src", path=f"{repo}/data/{view}.parquet", timestamp_field="event_timestamp")
        types = [Float32, Float32, Int64]
        fv = FeatureView(
            name=view,
            entities=[entity],
            ttl=timedelta(0),
            schema=[Field(name=key, dtype=Int64)] + [Field(name=n, dtype=t) for n, t in zip(names, types)],
            online=True,
            source=source,
        )
        objects += [entity, source, fv]
    return objects




def main():
    repo, port, entities, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    batches = [int(b) for b in sys.argv[5].split(",")]
    write_repo(repo, port)
    write_sources(repo, entities)
    store = FeatureStore(repo_path=repo)
    with contextlib.redirect_stdout(sys.stderr):
        store.apply(definitions(repo))
        t0 = time.perf_counter()
        store.materialize(start_date=START - timedelta(days=1), end_date=START + timedelta(days=30))
        materialize_s = time.perf_counter() - t0
    keys = redis.Redis(host="127.0.0.1", port=port).dbsize()
    assert keys == 2 * entities, f"{keys} keys in Redis after materialize, expected {2 * entities}"

    for batch in batches:
        ids = Ids(batch, entities)

        def rows():
            return {
                "driver_id": [ids.next() for _ in range(batch)],
                "customer_id": [ids.next() for _ in range(batch)],
            }

        for _ in range(20):
            answer = store.get_online_features(features=FEATURES, entity_rows=rows()).to_dict()
            assert all(v is not None for v in answer["conv_rate"]), "a driver without features"
            assert all(v is not None for v in answer["current_balance"]), "a customer without features"
        times = []
        for _ in range(calls):
            request = rows()
            t = time.perf_counter()
            store.get_online_features(features=FEATURES, entity_rows=request)
            times.append((time.perf_counter() - t) * 1000.0)
        times.sort()
        print(
            json.dumps(
                {
                    "engine": f"feast {feast.__version__}",
                    "entities": entities,
                    "batch": batch,
                    "calls": calls,
                    "p50_ms": round(percentile(times, 0.5), 3),
                    "p90_ms": round(percentile(times, 0.9), 3),
                    "p99_ms": round(percentile(times, 0.99), 3),
                    "p999_ms": round(percentile(times, 0.999), 3),
                    "max_ms": round(times[-1], 3),
                    "materialize_s": round(materialize_s, 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
