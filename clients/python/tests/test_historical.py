"""Training sets over Arrow Flight, cell for cell equal to `quiver historical` for the
same spine."""

from __future__ import annotations

from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pytest

from helpers import SPINE, assert_same_cells, cli_training_set
from quiver_client import Client, InvalidArgument, NotFound


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_training_set_equals_the_cli_for_each_kind_of_spine(client: Client, project: Any, kind: str) -> None:
    spine: Any = {
        "pandas": SPINE.to_pandas(),
        "polars": pl.from_arrow(SPINE),
        "pyarrow": SPINE,
    }[kind]
    ts = client.get_historical_features(spine, service="ride_ranking_v1")
    want = cli_training_set(project, SPINE, f"spine_{kind}", "--service", "ride_ranking_v1")
    got = ts.to_arrow()
    assert_same_cells(got, want)
    assert ts.rows == len(ts) == SPINE.num_rows
    # Features came out: not every cell is null.
    assert got.column("conv_rate").null_count < SPINE.num_rows
    assert ts.manifest["feature_service"] == "ride_ranking_v1"
    assert ts.manifest["spine_rows"] == SPINE.num_rows
    assert ts.manifest["registry_version"] >= 1
    assert ts.ticket.startswith("ts-")


def test_full_feature_names_and_another_timestamp_column(client: Client, project: Any) -> None:
    spine = SPINE.rename_columns(["driver_id", "customer_id", "ts", "label"])
    refs = ["driver_stats:conv_rate", "driver_profile", "customer_embeddings:embedding"]
    ts = client.get_historical_features(spine, features=refs, full_feature_names=True, timestamp_column="ts")
    want = cli_training_set(
        project,
        spine,
        "spine_names",
        "--features",
        ",".join(refs),
        "--full-feature-names",
        "--timestamp-column",
        "ts",
    )
    assert_same_cells(ts.to_arrow(), want)
    assert "driver_stats__conv_rate" in ts.to_arrow().column_names
    assert ts.to_arrow().schema.field("customer_embeddings__embedding").type.value_type == pa.float32()


def test_results_as_pandas_and_polars_and_by_ticket(client: Client) -> None:
    ts = client.get_historical_features(SPINE.slice(0, 20), features=["driver_stats:conv_rate"])
    frame = ts.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 20
    assert list(frame.columns) == ["driver_id", "customer_id", "event_timestamp", "label", "conv_rate"]
    polars_frame = ts.to_polars()
    assert isinstance(polars_frame, pl.DataFrame) and polars_frame.shape == (20, 5)
    again = client.get_training_set(ts.ticket)
    assert again.equals(ts.to_arrow())


def test_naive_pandas_timestamps_are_utc_and_the_index_is_not_sent(client: Client, project: Any) -> None:
    frame = SPINE.to_pandas()
    frame["event_timestamp"] = frame["event_timestamp"].dt.tz_localize(None)
    frame = frame[frame["driver_id"] % 2 == 0]  # an index with gaps
    ts = client.get_historical_features(frame, service="ride_ranking_v1")
    aware = SPINE.filter(pa.compute.equal(pa.compute.bit_wise_and(SPINE.column("driver_id"), 1), 0))
    want = cli_training_set(project, aware, "spine_naive", "--service", "ride_ranking_v1")
    got = ts.to_arrow()
    assert got.column_names == want.column_names
    times = got.column("event_timestamp").cast(pa.timestamp("us", tz="UTC"))
    assert times.to_pylist() == want.column("event_timestamp").to_pylist()
    assert_same_cells(got.drop(["event_timestamp"]), want.drop(["event_timestamp"]))


def test_refused_spines_and_unknown_features(client: Client) -> None:
    with pytest.raises(InvalidArgument, match="timestamp column"):
        client.get_historical_features(SPINE.drop(["event_timestamp"]), service="ride_ranking_v1")
    with pytest.raises(InvalidArgument, match="customer_id"):
        client.get_historical_features(SPINE.drop(["customer_id"]), service="ride_ranking_v1")
    with pytest.raises(NotFound, match="no_such_feature"):
        client.get_historical_features(SPINE, features=["driver_stats:no_such_feature"])
    with pytest.raises(NotFound, match="no_such_service"):
        client.get_historical_features(SPINE, service="no_such_service")
    with pytest.raises(NotFound, match="ticket"):
        client.get_training_set("ts-00000000000000000000000000000000")
