"""The client's own logic, without a server: times, retries, error mapping, conversions,
definitions folders."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import grpc
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from quiver_client import (
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    FeatureView,
    Field,
    InvalidArgument,
    NotFound,
    QuiverError,
    ResourceExhausted,
    RetryPolicy,
    Unavailable,
    _convert,
    _definitions,
    _errors,
    _retry,
    _time,
)
from quiver_client._proto.quiver.v1 import online_pb2

NS = 1_000_000_000
JAN1 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    "given, ns",
    [
        ("2026-01-01", JAN1),
        ("2026-01-01T00:00:00Z", JAN1),
        ("2026-01-01T01:30:00+01:30", JAN1),
        ("2025-12-31T23:00:00-01:00", JAN1),
        ("2026-01-01T00:00:00.000000001Z", JAN1 + 1),
        ("2026-01-01T00:00:00.5", JAN1 + NS // 2),
        (datetime(2026, 1, 1), JAN1),  # naive = UTC
        (datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), JAN1),
        (date(2026, 1, 1), JAN1),
        (pd.Timestamp("2026-01-01T00:00:00.000000007Z"), JAN1 + 7),
    ],
)
def test_times_to_nanoseconds(given: _time.TimeLike, ns: int) -> None:
    assert _time.to_ns(given) == ns


def test_bad_times_are_invalid_arguments() -> None:
    for bad in ["yesterday", "2026-13-01", "2026-01-01+01:00", "2026-01-01T25:00:00Z"]:
        with pytest.raises(InvalidArgument, match="start"):
            _time.to_ns(bad, "start")
    with pytest.raises(InvalidArgument):
        _time.to_ns(12345)  # type: ignore[arg-type]
    now = _time.to_ns("now")
    assert abs(now - datetime.now(timezone.utc).timestamp() * NS) < 5 * NS


def test_nanoseconds_to_times() -> None:
    assert _time.optional_time(0) is None
    assert _time.ns_to_datetime(JAN1 + 1999) == datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc)


def test_backoff_is_full_jitter_under_a_growing_cap() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    caps = [policy.pause(n, rng=lambda lo, hi: hi) for n in range(6)]
    assert caps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert all(policy.pause(n, rng=lambda lo, hi: lo) == 0.0 for n in range(6))


def test_only_idempotent_calls_retry_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="quiver_client")
    fast = RetryPolicy(initial_backoff=0.001, max_backoff=0.001)
    seen: List[float] = []

    def flaky(left: float) -> str:
        seen.append(left)
        if len(seen) < 3:
            raise Unavailable("down")
        return "ok"

    assert _retry.call("Read", flaky, timeout=5, idempotent=True, policy=fast) == "ok"
    assert len(seen) == 3 and all(0 < left <= 5 for left in seen)
    seen.clear()
    with pytest.raises(Unavailable):
        _retry.call("Write", flaky, timeout=5, idempotent=False, policy=fast)
    assert len(seen) == 1
    seen.clear()
    with pytest.raises(Unavailable):
        _retry.call("Read", flaky, timeout=5, idempotent=True, policy=RetryPolicy(max_attempts=2))
    assert len(seen) == 2

    def never(left: float) -> str:
        raise NotFound("gone")

    with pytest.raises(NotFound):
        _retry.call("Read", never, timeout=5, idempotent=True, policy=fast)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["retrying Read after UNAVAILABLE"] * 3


def test_a_deadline_after_retries_says_what_failed_before() -> None:
    calls: List[int] = []

    def down_then_slow(left: float) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Unavailable("online store unavailable: connection refused")
        raise DeadlineExceeded("Deadline Exceeded")

    with pytest.raises(DeadlineExceeded, match="connection refused"):
        _retry.call("Read", down_then_slow, timeout=5, idempotent=True, policy=RetryPolicy(initial_backoff=0.001))


def test_grpc_codes_map_to_classes() -> None:
    assert type(_errors.error_for(grpc.StatusCode.ABORTED, "stale")) is Conflict
    assert type(_errors.error_for(grpc.StatusCode.FAILED_PRECONDITION, "x")) is FailedPrecondition
    other = _errors.error_for(grpc.StatusCode.DATA_LOSS, "corrupt")
    assert type(other) is QuiverError and other.code == grpc.StatusCode.DATA_LOSS
    assert str(other) == "DATA_LOSS: corrupt"


def test_flight_errors_keep_the_grpc_code_and_the_servers_message() -> None:
    # pyarrow folds RESOURCE_EXHAUSTED into ArrowInvalid; its text still names the code.
    text = (
        "Flight returned invalid argument error, with message: a limit. of 8 uploads. "
        "gRPC client debug context: RESOURCE_EXHAUSTED:a limit. of 8 uploads. Client context: OK"
    )
    e = _errors.from_flight_error(pa.ArrowInvalid(text))
    assert type(e) is ResourceExhausted and e.message == "a limit. of 8 uploads"
    older = (
        "Flight returned not found error, with message: no such ticket. gRPC client debug context: "
        'UNKNOWN:Error received from peer ipv4:127.0.0.1:1 {grpc_status:10, grpc_message:"stale"}. Client context: OK'
    )
    assert type(_errors.from_flight_error(pa.ArrowKeyError(older))) is Conflict  # the number wins
    plain = _errors.from_flight_error(flight.FlightUnavailableError("connection refused"))
    assert type(plain) is Unavailable and plain.message == "connection refused"
    assert type(_errors.from_flight_error(pa.ArrowKeyError("no ticket"))) is NotFound


def test_entity_columns_are_typed_wire_values() -> None:
    table = _convert.to_arrow({"driver_id": [1, None], "city": ["a", "b"], "raw": [b"\x00", b"\x01"]}, "entities")
    columns = online_pb2.GetOnlineFeaturesRequest().entities
    _convert.fill_entity_columns(columns, table)
    assert [v.WhichOneof("kind") for v in columns["driver_id"].values] == ["int64_value", None]
    assert columns["city"].values[1].string_value == "b"
    assert columns["raw"].values[0].bytes_value == b"\x00"
    with pytest.raises(InvalidArgument, match="entity column 'when'"):
        _convert.fill_entity_columns(
            online_pb2.GetOnlineFeaturesRequest().entities, pa.table({"when": pa.array([1], pa.timestamp("s"))})
        )
    with pytest.raises(InvalidArgument, match="does not fit a 64-bit key"):
        _convert.fill_entity_columns(
            online_pb2.GetOnlineFeaturesRequest().entities, pa.table({"id": pa.array([2**63], pa.uint64())})
        )
    with pytest.raises(InvalidArgument, match="not list"):
        _convert.to_arrow([1, 2], "entities")  # type: ignore[arg-type]


def test_plain_entity_lists_go_to_the_wire_as_arrow_would_send_them() -> None:
    given = {"driver_id": [1, None, -(2**63)], "city": ("a", "b", None), "raw": [b"\x00", b"", None]}
    plain = _convert.plain_columns(given)
    assert plain == {"driver_id": [1, None, -(2**63)], "city": ["a", "b", None], "raw": [b"\x00", b"", None]}
    fast = online_pb2.GetOnlineFeaturesRequest().entities
    _convert.fill_plain_entity_columns(fast, plain)
    through_arrow = online_pb2.GetOnlineFeaturesRequest().entities
    _convert.fill_entity_columns(through_arrow, _convert.to_arrow(given, "entities"))
    assert fast == through_arrow
    # Anything else takes the Arrow route (which converts, or names what it cannot).
    others: List[Dict[str, Any]] = [
        {"id": [1, "a"]},  # mixed types
        {"id": [1.5]},  # floats are no join keys: the server says so
        {"id": [2**63]},  # too large for a 64-bit key
        {"id": [1, 2], "city": ["a"]},  # ragged
        {"id": []},  # no rows
        {"id": [None]},  # no type
        {"id": pa.array([1])},  # not a list
        {},
    ]
    for other in others:
        assert _convert.plain_columns(other) is None, other


def test_definitions_folders_are_read_like_the_server_reads_them(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b.yaml").write_text("b")
    (tmp_path / "a.yml").write_text("a")
    (tmp_path / "sub" / "c.yaml").write_text("c")
    (tmp_path / ".hidden" / "d.yaml").write_text("d")
    (tmp_path / "notes.txt").write_text("x")
    docs = _definitions.read_documents(tmp_path)
    assert [(d.name, d.content) for d in docs] == [("a.yml", "a"), ("b.yaml", "b"), ("sub/c.yaml", "c")]


def test_the_package_ships_its_stubs_and_type_information() -> None:
    import quiver_client

    root = Path(quiver_client.__file__).parent
    assert (root / "py.typed").is_file()
    assert (root / "_proto" / "quiver" / "v1" / "online_pb2.pyi").is_file()
    assert (root / "_proto" / "quiver" / "v1" / "online_pb2_grpc.py").is_file()


def test_number_columns_are_cast_to_the_declared_types_or_refused() -> None:
    view = FeatureView(
        name="v",
        entities=("e",),
        source="s",
        ttl=None,
        online=True,
        features=(Field("rate", "float32"), Field("count", "int32"), Field("tags", "list<int64>")),
        join_keys=(Field("id", "int64"),),
    )
    table = pa.table({"id": [1, 2], "rate": [0.1, None], "count": [3, 4], "tags": [[1], [2]], "note": ["a", "b"]})
    cast = _convert.conform_to_view(table, view)
    assert cast.schema.field("rate").type == pa.float32()
    assert cast.column("rate").to_pylist() == [pa.array([0.1], pa.float32()).to_pylist()[0], None]
    assert cast.schema.field("count").type == pa.int32()
    assert cast.column("tags").type == table.column("tags").type  # not a number type: left alone
    assert cast.column("note").to_pylist() == ["a", "b"]
    with pytest.raises(InvalidArgument, match="'count'.*int32"):
        _convert.conform_to_view(table.set_column(2, "count", pa.array([3, 2**40])), view)
    with pytest.raises(InvalidArgument, match="'rate'.*float32"):
        _convert.conform_to_view(table.set_column(1, "rate", pa.array([1e300, 1.0])), view)
    with pytest.raises(InvalidArgument, match="'id'.*int64"):
        _convert.conform_to_view(table.set_column(0, "id", pa.array([1.5, 2.0])), view)
