"""Retries against a server that is stopped (SIGTERM) and started again on the same port:
reads wait it out within their timeout; writes fail at once with Unavailable."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List

import pyarrow as pa
import pytest

from conftest import QuiverProject
from quiver_client import AsyncClient, Client, Unavailable


def retry_lines(caplog: pytest.LogCaptureFixture, method: str) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"retrying {method} ")]


def test_a_read_started_while_the_server_is_down_succeeds_once_it_is_back(
    new_project: Callable[..., QuiverProject], caplog: pytest.LogCaptureFixture
) -> None:
    p = new_project()
    caplog.set_level(logging.INFO, logger="quiver_client")
    with Client(p.addr, timeout=5) as c:
        assert len(c.list_feature_views()) == 7
        p.stop()
        outcome: Dict[str, Any] = {}

        def read() -> None:
            started = time.monotonic()
            try:
                outcome["views"] = c.list_feature_views(timeout=60)
            except Exception as e:  # reported by the assertions below
                outcome["error"] = e
            outcome["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=read)
        thread.start()
        time.sleep(2.0)
        assert thread.is_alive(), outcome
        p.start()
        thread.join(60)
        assert not thread.is_alive()
    assert "error" not in outcome, outcome
    assert len(outcome["views"]) == 7
    assert outcome["seconds"] >= 2.0
    assert len(retry_lines(caplog, "ListFeatureViews")) >= 2


def test_writes_against_a_stopped_server_fail_at_once_without_retrying(
    new_project: Callable[..., QuiverProject], caplog: pytest.LogCaptureFixture
) -> None:
    p = new_project()
    caplog.set_level(logging.INFO, logger="quiver_client")
    rows = pa.table(
        {
            "driver_id": pa.array([9100], pa.int64()),
            "event_timestamp": pa.array([datetime.now(timezone.utc) - timedelta(minutes=1)], pa.timestamp("us", "UTC")),
            "conv_rate": pa.array([0.5], pa.float32()),
            "acc_rate": pa.array([0.5], pa.float32()),
            "avg_daily_trips": pa.array([1], pa.int64()),
        }
    )
    spine = rows.select(["driver_id", "event_timestamp"])
    with Client(p.addr, timeout=30) as c:
        assert c.push("driver_stats", rows).rows == 1
        p.stop()
        writes = {
            "Push": lambda: c.push("driver_stats", rows, to="online"),
            "Start": lambda: c.materialize_incremental("2026-01-08"),
            "Apply": lambda: c.apply({"x.yaml": "entities: []"}, expected_version=1),
            "DoPut": lambda: c.get_historical_features(spine, features=["driver_stats:conv_rate"]),
        }
        for name, write in writes.items():
            started = time.monotonic()
            with pytest.raises(Unavailable):
                write()
            assert time.monotonic() - started < 5.0, name
    assert not [r for r in caplog.records if r.getMessage().startswith("retrying")]


def test_a_read_gives_up_with_unavailable_when_the_server_stays_down(
    new_project: Callable[..., QuiverProject], caplog: pytest.LogCaptureFixture
) -> None:
    p = new_project()
    caplog.set_level(logging.INFO, logger="quiver_client")
    with Client(p.addr) as c:
        c.history()
        p.stop()
        started = time.monotonic()
        with pytest.raises(Unavailable):
            c.history(timeout=1.5)
        # Retried until just before the timeout.
        assert 1.3 < time.monotonic() - started < 3.0
        # A training set download (DoGet) is a read too.
        with pytest.raises(Unavailable):
            c.get_training_set("ts-00000000000000000000000000000000", timeout=1.5)
    assert retry_lines(caplog, "History") and retry_lines(caplog, "DoGet")


def test_the_async_client_retries_across_a_restart(
    new_project: Callable[..., QuiverProject], caplog: pytest.LogCaptureFixture
) -> None:
    p = new_project(materialize=True)
    caplog.set_level(logging.INFO, logger="quiver_client")

    async def scenario() -> Any:
        async with AsyncClient(p.addr) as c:
            await c.history()
            p.stop()
            read = asyncio.create_task(
                c.get_online_features(
                    features=["driver_profile:vehicle_type"], entities={"driver_id": [1003]}, timeout=60
                )
            )
            await asyncio.sleep(2.0)
            assert not read.done()
            await asyncio.to_thread(p.start)
            result = await asyncio.wait_for(read, 60)
            with pytest.raises(Unavailable):
                p.stop()
                await c.push("driver_stats", pa.table({"driver_id": [1]}))
            return result

    result = asyncio.run(scenario())
    assert result.statuses()["driver_profile:vehicle_type"] == ["PRESENT"]
    assert len(retry_lines(caplog, "GetOnlineFeatures")) >= 2
    assert not retry_lines(caplog, "Push")
