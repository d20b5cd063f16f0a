"""Helpers shared by the test modules: the `quiver` CLI's answers to compare with, and
test data."""

from __future__ import annotations

import json
import random
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import pyarrow as pa
import pyarrow.parquet as pq

AT = "2026-01-07T23:00:00Z"
RANKING = [
    "driver_stats:conv_rate",
    "driver_stats:acc_rate",
    "driver_stats:avg_daily_trips",
    "customer_profile:current_balance",
    "customer_profile:avg_passenger_count",
]


def as_float32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def same_value(client_value: Any, cli_value: Any) -> bool:
    if isinstance(client_value, float) and isinstance(cli_value, (int, float)):
        return as_float32(client_value) == as_float32(float(cli_value)) or client_value == cli_value
    if isinstance(client_value, list) and isinstance(cli_value, list):
        return len(client_value) == len(cli_value) and all(map(same_value, client_value, cli_value))
    return bool(client_value == cli_value)


def cli_online(project: Any, refs: List[str], rows: List[Dict[str, Any]], at: str) -> List[Dict[str, Any]]:
    args = ["--json", "online", "--features", ",".join(refs), "--at", at]
    for row in rows:
        args += ["--entity", ",".join(f"{k}={v}" for k, v in row.items())]
    results: List[Dict[str, Any]] = json.loads(project.cli(*args).stdout)["results"]
    return results


def make_spine(rows: int = 300, seed: int = 7) -> pa.Table:
    """Drivers and customers (some unknown) at times across the sample lake's week."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    drivers = [rng.choice([*range(1001, 1101), 7, 9999]) for _ in range(rows)]
    customers = [rng.choice([*range(2001, 2501), 1]) for _ in range(rows)]
    times = [start + timedelta(seconds=rng.randrange(0, 8 * 24 * 3600)) for _ in range(rows)]
    return pa.table(
        {
            "driver_id": pa.array(drivers, pa.int64()),
            "customer_id": pa.array(customers, pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "label": pa.array([f"row{i}" if i % 5 else None for i in range(rows)], pa.string()),
        }
    )


def cli_training_set(project: Any, spine: pa.Table, name: str, *args: str) -> pa.Table:
    path = Path(project.root) / f"{name}.parquet"
    pq.write_table(spine, path)
    out = Path(project.root) / f"{name}.out.parquet"
    project.cli("historical", "--entities", str(path), "--out", str(out), "--overwrite", *args)
    return pq.read_table(out)


def assert_same_cells(got: pa.Table, want: pa.Table) -> None:
    assert got.column_names == want.column_names
    assert got.num_rows == want.num_rows
    for name in want.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


SPINE = make_spine()


def driver_rows(driver_id: int, conv_rate: float, when: datetime) -> pa.Table:
    return pa.table(
        {
            "driver_id": pa.array([driver_id], pa.int64()),
            "event_timestamp": pa.array([when], pa.timestamp("us", tz="UTC")),
            "conv_rate": pa.array([conv_rate], pa.float32()),
            "acc_rate": pa.array([0.5], pa.float32()),
            "avg_daily_trips": pa.array([12], pa.int64()),
        }
    )
