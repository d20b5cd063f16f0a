"""Each error class, raised by a real server's answer (gRPC and Arrow Flight)."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Callable

import grpc
import pyarrow as pa
import pytest

from conftest import DEFINITIONS, QuiverProject, token
from quiver_client import (
    Client,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuiverError,
    ResourceExhausted,
    RetryPolicy,
    Unauthenticated,
    Unavailable,
)

SPINE = pa.table(
    {
        "driver_id": pa.array([1001, 1002], pa.int64()),
        "event_timestamp": pa.array([1767571200000000, 1767657600000000], pa.timestamp("us", tz="UTC")),
    }
)


def test_invalid_argument_names_the_problem(client: Client) -> None:
    with pytest.raises(InvalidArgument) as e:
        client.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": ["not-a-number"]})
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "driver_id" in e.value.message and "int64" in e.value.message
    assert isinstance(e.value, ValueError) and isinstance(e.value, QuiverError)
    with pytest.raises(InvalidArgument, match="join key"):
        client.get_online_features(features=["driver_stats:conv_rate"], entities={"customer_id": [2001]})


def test_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as e:
        client.get_online_features(service="no_such_service", entities={"driver_id": [1001]})
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "no_such_service" in str(e.value)


def test_resource_exhausted_over_the_servers_online_value_limit(client: Client) -> None:
    # This server allows 1000 values per read (--max-online-values 1000): 3 x 400 is over.
    with pytest.raises(ResourceExhausted) as e:
        client.get_online_features(features=["driver_stats"], entities={"driver_id": list(range(400))})
    assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "1000" in e.value.message


def test_deadline_exceeded_on_grpc_and_flight(client: Client) -> None:
    with pytest.raises(DeadlineExceeded):
        client.plan(DEFINITIONS, timeout=0.001)
    big = pa.concat_tables([SPINE] * 50_000)
    with pytest.raises(DeadlineExceeded):
        client.get_historical_features(big, service="ride_ranking_v1", timeout=0.001)


def test_failed_precondition_before_anything_is_applied(new_project: Callable[..., QuiverProject]) -> None:
    empty = new_project(apply=False)
    with Client(empty.addr) as c:
        assert c.history() == []
        with pytest.raises(FailedPrecondition, match="apply"):
            c.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [1001]})
        with pytest.raises(FailedPrecondition):
            c.materialize_incremental("2026-01-08")
        # An apply over the empty registry (expected version 0) then works.
        assert c.apply(DEFINITIONS).version == 1


def test_unavailable_when_the_online_store_is_down(
    new_project: Callable[..., QuiverProject], caplog: pytest.LogCaptureFixture
) -> None:
    p = new_project(materialize=True)
    read = {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}
    with Client(p.addr) as c:
        c.get_online_features(**read)  # the server holds a Redis connection now
    p.redis.stop()
    caplog.set_level(logging.INFO, logger="quiver_client")
    # Without retries: the server's own UNAVAILABLE answer.
    with Client(p.addr, retry=RetryPolicy(max_attempts=1)) as c:
        with pytest.raises(Unavailable) as e:
            c.get_online_features(**read, timeout=10)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert "online store unavailable" in e.value.message
    assert not caplog.records
    # With retries (the default) the call ends within its timeout. While Redis is down the
    # server answers some reads at once with UNAVAILABLE and holds others until the client's
    # deadline, so either error may end it. (Retries are checked in test_retries.py.)
    with Client(p.addr) as c:
        started = time.monotonic()
        with pytest.raises((Unavailable, DeadlineExceeded)):
            c.get_online_features(**read, timeout=3)
        assert time.monotonic() - started < 4.5


def test_unauthenticated_without_or_with_an_unknown_token(auth_project: QuiverProject) -> None:
    with Client(auth_project.addr) as anonymous:
        with pytest.raises(Unauthenticated) as e:
            anonymous.list_feature_views()
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(Unauthenticated):
            anonymous.get_historical_features(SPINE, features=["driver_stats:conv_rate"])  # Flight DoPut
    with Client(auth_project.addr, token="not-a-known-token") as stranger:
        with pytest.raises(Unauthenticated):
            stranger.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [1001]})


def test_permission_denied_for_a_role_too_low(auth_project: QuiverProject) -> None:
    rows = SPINE.append_column("conv_rate", pa.array([0.1, 0.2], pa.float32()))
    with Client(auth_project.addr, token=token("ranking_svc")) as reader:
        assert len(reader.list_feature_views()) == 7  # reads are allowed
        reader.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [1001]})
        with pytest.raises(PermissionDenied) as e:
            reader.push("driver_stats", rows, to="online")
        assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(PermissionDenied):
            reader.get_historical_features(SPINE, features=["driver_stats:conv_rate"])  # Flight DoPut
        with pytest.raises(PermissionDenied):
            reader.materialize_incremental("2026-01-08")
    with Client(auth_project.addr, token=token("pipeline")) as writer:
        with pytest.raises(PermissionDenied):
            writer.plan(DEFINITIONS)
        with pytest.raises(PermissionDenied):
            writer.apply(DEFINITIONS)


def test_tokens_with_enough_rights_work_and_own_their_training_sets(auth_project: QuiverProject) -> None:
    with Client(auth_project.addr, token=token("pipeline")) as writer:
        ts = writer.get_historical_features(SPINE, features=["driver_stats:conv_rate"])
        assert ts.rows == 2
        assert writer.get_training_set(ts.ticket).num_rows == 2
    with Client(auth_project.addr, token=token("ops")) as admin:
        assert admin.apply(DEFINITIONS).applied is False
        # Another token's ticket is as unknown as a made-up one.
        with pytest.raises(NotFound):
            admin.get_training_set(ts.ticket)


def test_tls_for_grpc_and_flight(new_project: Callable[..., QuiverProject], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    p = new_project(serve_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    with Client(f"grpc+tls://{p.addr}", root_certificates=cert.read_bytes()) as c:
        assert len(c.list_feature_views()) == 7
        assert c.get_historical_features(SPINE, features=["driver_stats:conv_rate"]).rows == 2
    with Client(p.addr, timeout=2) as plain:  # a TLS port refuses clear text
        with pytest.raises((Unavailable, DeadlineExceeded)):
            plain.history()
