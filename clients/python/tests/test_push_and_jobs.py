"""Push then read, and materialization jobs waited on."""

from __future__ import annotations

import io
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from helpers import driver_rows
from quiver_client import Client, InvalidArgument, JobFailed, JobStatus, NotFound, _progress


def test_push_online_then_read(client: Client) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    result = client.push("driver_stats", driver_rows(9001, 0.25, now - timedelta(minutes=1)), to="online")
    assert (result.rows, result.online_rows_written, result.offline_version) == (1, 1, None)
    r = client.get_online_features(features=["driver_stats"], entities={"driver_id": [9001]})
    assert r.statuses()["driver_stats:conv_rate"] == ["PRESENT"]
    assert r.to_dict()["driver_stats:conv_rate"] == [0.25]
    assert r.to_dict()["driver_stats:avg_daily_trips"] == [12]
    assert r.event_timestamps()["driver_stats:conv_rate"] == [now - timedelta(minutes=1)]

    # Newer wins: an older row is received but does not replace the value.
    older = client.push("driver_stats", driver_rows(9001, 0.75, now - timedelta(minutes=30)), to="online")
    assert (older.rows, older.online_rows_written) == (1, 0)
    again = client.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [9001]})
    assert again.to_dict()["driver_stats:conv_rate"] == [0.25]


def test_push_a_pandas_frame_to_both_stores_then_train_on_it(client: Client) -> None:
    now = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(minutes=2)
    frame = pd.DataFrame(
        {
            "driver_id": [9002, 9003],
            "event_timestamp": [now, now],
            "conv_rate": pd.Series([0.5, 0.125], dtype="float32"),
            "acc_rate": pd.Series([0.9, 0.8], dtype="float32"),
            "avg_daily_trips": [3, 4],
        }
    )
    result = client.push("driver_stats", frame, to="both")
    assert result.rows == 2 and result.online_rows_written == 2 and result.offline_version is not None
    spine = pd.DataFrame({"driver_id": [9002, 9003], "event_timestamp": [now + pd.Timedelta(seconds=1)] * 2})
    ts = client.get_historical_features(spine, features=["driver_stats:conv_rate"])
    assert ts.to_arrow().column("conv_rate").to_pylist() == [0.5, 0.125]


def test_a_push_with_a_missing_column_is_refused_and_writes_nothing(client: Client) -> None:
    rows = driver_rows(9004, 0.5, datetime.now(timezone.utc) - timedelta(minutes=1)).drop(["acc_rate"])
    with pytest.raises(InvalidArgument, match="acc_rate"):
        client.push("driver_stats", rows, to="online")
    r = client.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [9004]})
    assert r.statuses()["driver_stats:conv_rate"] == ["NOT_FOUND"]
    with pytest.raises(InvalidArgument, match="online"):
        client.push("driver_stats", rows, to="somewhere")


def test_a_push_breaking_the_views_expectations_is_refused_with_the_report(client: Client) -> None:
    # driver_stats expects conv_rate between 0 and 1 (feature_defs/rides), and fails on a break.
    rows = driver_rows(9021, 1.5, datetime.now(timezone.utc) - timedelta(minutes=1))
    with pytest.raises(InvalidArgument, match=r"conv_rate between 0 and 1: 1 of 1 rows break it"):
        client.push("driver_stats", rows, to="both")
    r = client.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [9021]})
    assert r.statuses()["driver_stats:conv_rate"] == ["NOT_FOUND"]
    fine = driver_rows(9021, 0.5, datetime.now(timezone.utc) - timedelta(minutes=1))
    ok = client.push("driver_stats", fine, to="online")
    assert ok.expectation_warnings == ()


def test_a_materialization_job_waited_on_with_a_progress_bar(client: Client, capsys: Any) -> None:
    job = client.materialize("2026-01-01", datetime(2026, 1, 8), views=["driver_stats", "zone_demand"])
    assert job.id and job.status.state in ("PENDING", "RUNNING", "SUCCEEDED")
    final = job.wait(progress=True, poll_interval=0.1)
    assert isinstance(final, JobStatus) and final.succeeded and final.done
    views = {v.view: v for v in final.views}
    assert set(views) == {"driver_stats", "zone_demand"}
    assert views["driver_stats"].rows_done == 5000
    assert views["driver_stats"].window_start == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert views["driver_stats"].offline_version is not None
    assert final.finished_at is not None and final.created_at is not None
    assert "materialize" in capsys.readouterr().err  # tqdm's bar, on stderr
    assert client.get_materialization(job.id).status == final
    assert job.id in [j.id for j in client.list_materializations()]


def test_incremental_materialization_with_plain_progress_lines(client: Client, monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    err = io.StringIO()
    monkeypatch.setattr(_progress.sys, "stderr", err)
    final = client.materialize_incremental("2026-01-08T00:00:00Z", views=["customer_profile"]).wait(
        progress=True, poll_interval=0.1
    )
    assert final.succeeded
    assert [v.view for v in final.views] == ["customer_profile"]
    lines = err.getvalue().splitlines()
    assert lines and all(line.startswith("materialization job mat-") for line in lines)
    assert "succeeded" in lines[-1]


def test_an_unknown_job_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound):
        client.get_materialization("mat-no-such-job")


def test_a_failed_job_raises_job_failed(new_project: Any) -> None:
    p = new_project()
    for f in (p.root / "lake" / "zone_demand").glob("*.csv"):
        f.rename(p.root / f.name)  # the view's source now matches no file
    with Client(p.addr) as c:
        job = c.materialize("2026-01-01", "2026-01-08", views=["zone_demand"])
        with pytest.raises(JobFailed, match="zone_demand") as e:
            job.wait(poll_interval=0.1)
        assert e.value.job.state == "FAILED"
        status = job.wait(raise_on_failure=False)
        assert status.state == "FAILED" and status.views[0].state == "FAILED" and status.views[0].message


def test_a_pandas_frame_of_float64_and_int64_is_cast_to_the_declared_types(client: Client) -> None:
    now = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(minutes=3)
    # pandas' own types: float64 for the float32 rates, int64 for every integer.
    frame = pd.DataFrame(
        {"driver_id": [9005], "event_timestamp": [now], "conv_rate": [0.1], "acc_rate": [0.7], "avg_daily_trips": [5]}
    )
    with pytest.raises(InvalidArgument, match="conv_rate"):
        client.push("driver_stats", frame, to="online", cast=False)
    result = client.push("driver_stats", frame, to="online")
    assert (result.rows, result.online_rows_written) == (1, 1)
    r = client.get_online_features(features=["driver_stats"], entities={"driver_id": [9005]})
    assert r.to_dict()["driver_stats:conv_rate"] == pa.array([0.1], pa.float32()).to_pylist()
    assert r.to_dict()["driver_stats:avg_daily_trips"] == [5]

    # A value the declared type cannot hold is refused by the client, naming the column.
    huge = frame.assign(conv_rate=[1e300])
    with pytest.raises(InvalidArgument, match="conv_rate.*float32"):
        client.push("driver_stats", huge, to="online")
