"""Online reads against a real server, checked against the `quiver online` CLI."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from helpers import AT, RANKING, cli_online, same_value
from quiver_client import Client, InvalidArgument


def test_service_read_has_each_status_and_matches_the_cli(client: Client, project: Any) -> None:
    # 1001 has recent driver_stats at AT; 1050 too; 999999 is unknown. customer 2001 and
    # 2002 have profiles; 2999 does not exist.
    entities = {"driver_id": [1001, 1050, 999999], "customer_id": [2001, 2002, 2999]}
    r = client.get_online_features(service="ride_ranking_v1", entities=entities, at=AT)
    assert r.feature_names == RANKING
    assert r.registry_version >= 1  # other tests apply new versions
    assert len(r) == 3
    values, statuses, times = r.to_dict(), r.statuses(), r.event_timestamps()
    assert values["driver_id"] == [1001, 1050, 999999]
    assert values["customer_id"] == [2001, 2002, 2999]
    assert statuses["driver_stats:conv_rate"][2] == "NOT_FOUND"
    assert values["driver_stats:conv_rate"][2] is None
    assert times["driver_stats:conv_rate"][2] is None

    rows = [{"driver_id": d, "customer_id": c} for d, c in zip(entities["driver_id"], entities["customer_id"])]
    cli = cli_online(project, RANKING, rows, AT)
    for i, answer in enumerate(cli):
        for ref in RANKING:
            want = answer["features"][ref]
            assert statuses[ref][i] == want["status"], (ref, i)
            assert same_value(values[ref][i], want["value"]), (ref, i, values[ref][i], want["value"])
            got_time = times[ref][i]
            assert (got_time.strftime("%Y-%m-%dT%H:%M:%SZ") if got_time else None) == want.get("event_timestamp")


def test_at_moves_values_outside_max_age(client: Client) -> None:
    entities = {"driver_id": [1001]}
    now = client.get_online_features(features=["driver_stats:conv_rate"], entities=entities)
    # The sample data is from January 2026; driver_stats' ttl is 2h: today it is too old.
    assert now.statuses()["driver_stats:conv_rate"] == ["OUTSIDE_MAX_AGE"]
    assert now.to_dict()["driver_stats:conv_rate"] == [None]
    last = now.event_timestamps()["driver_stats:conv_rate"][0]
    assert last is not None and last.tzinfo is not None
    # Just after the last row it is PRESENT; 2h01m later it is not.
    fresh = client.get_online_features(features=["driver_stats:conv_rate"], entities=entities, at=last)
    assert fresh.statuses()["driver_stats:conv_rate"] == ["PRESENT"]
    assert isinstance(fresh.to_dict()["driver_stats:conv_rate"][0], float)
    stale_at = datetime.fromtimestamp(last.timestamp() + 2 * 3600 + 60, tz=timezone.utc).replace(tzinfo=None)
    stale = client.get_online_features(features=["driver_stats:conv_rate"], entities=entities, at=stale_at)
    assert stale.statuses()["driver_stats:conv_rate"] == ["OUTSIDE_MAX_AGE"]


def test_compound_string_keys_and_list_values(client: Client, project: Any) -> None:
    refs = ["driver_city_stats:trips_in_city", "driver_city_stats:avg_fare_in_city"]
    rows = [{"driver_id": 1065, "city": "lisbon"}, {"driver_id": 1065, "city": "atlantis"}]
    r = client.get_online_features(
        features=refs, entities={"driver_id": [1065, 1065], "city": ["lisbon", "atlantis"]}, at=AT
    )
    cli = cli_online(project, refs, rows, AT)
    for i, answer in enumerate(cli):
        for ref in refs:
            assert r.statuses()[ref][i] == answer["features"][ref]["status"]
            assert same_value(r.to_dict()[ref][i], answer["features"][ref]["value"])
    assert r.statuses()[refs[0]][1] == "NOT_FOUND"

    zones = client.get_online_features(features=["zone_demand"], entities={"zone_id": ["zone_017", "zone_999"]}, at=AT)
    assert zones.feature_names == ["zone_demand:open_requests", "zone_demand:surge_multiplier"]
    assert zones.statuses()["zone_demand:open_requests"][1] == "NOT_FOUND"
    assert zones.statuses()["zone_demand:open_requests"][0] in ("PRESENT", "OUTSIDE_MAX_AGE")

    emb = client.get_online_features(features=["customer_embeddings"], entities={"customer_id": [2002, 2999]})
    vector = emb.to_dict()["customer_embeddings:embedding"][0]
    assert emb.statuses()["customer_embeddings:embedding"] == ["PRESENT", "NOT_FOUND"]  # ttl 0: never expires
    assert isinstance(vector, list) and len(vector) == 8 and all(isinstance(x, float) for x in vector)
    table = emb.to_arrow()
    assert table.schema.field("customer_embeddings:embedding").type == pa.list_(pa.float32())
    assert table.schema.field("customer_embeddings:embedding_model").type == pa.string()
    cli = cli_online(project, ["customer_embeddings:embedding"], [{"customer_id": 2002}], AT)
    assert same_value(vector, cli[0]["features"]["customer_embeddings:embedding"]["value"])


@pytest.mark.parametrize("kind", ["dict", "pandas", "polars", "pyarrow"])
def test_entities_from_dataframes_and_tables(client: Client, kind: str) -> None:
    columns = {"driver_id": [1001, 1002], "customer_id": [2001, 2002]}
    entities: Any = {
        "dict": columns,
        "pandas": pd.DataFrame(columns),
        "polars": pl.DataFrame(columns),
        "pyarrow": pa.table(columns),
    }[kind]
    r = client.get_online_features(service="ride_ranking_v1", entities=entities, at=AT)
    expected = client.get_online_features(service="ride_ranking_v1", entities=columns, at=AT)
    assert r.to_dict() == expected.to_dict()
    assert r.statuses() == expected.statuses()


def test_results_as_arrow_and_pandas(client: Client) -> None:
    # At 18:00 driver 1001 has fresh driver_stats but no profile; 1003 the other way round.
    r = client.get_online_features(
        features=["driver_stats:conv_rate", "driver_stats:avg_daily_trips", "driver_profile:vehicle_type"],
        entities={"driver_id": [1001, 1003]},
        at="2026-01-07T18:00:00Z",
    )
    assert r.statuses()["driver_stats:conv_rate"] == ["PRESENT", "NOT_FOUND"]
    assert r.statuses()["driver_profile:vehicle_type"] == ["NOT_FOUND", "PRESENT"]
    table = r.to_arrow()
    assert table.column_names == [
        "driver_id",
        "driver_stats:conv_rate",
        "driver_stats:avg_daily_trips",
        "driver_profile:vehicle_type",
    ]
    assert table.schema.field("driver_stats:conv_rate").type == pa.float32()
    assert table.schema.field("driver_stats:avg_daily_trips").type == pa.int64()
    assert table.schema.field("driver_profile:vehicle_type").type == pa.string()
    assert table.column("driver_profile:vehicle_type").to_pylist()[0] is None
    frame = r.to_pandas()
    assert list(frame["driver_id"]) == [1001, 1003]
    assert frame["driver_stats:conv_rate"].isna().tolist() == [False, True]


def test_a_feature_without_any_value_keeps_its_declared_type(client: Client) -> None:
    # The Arrow answer carries each feature's declared type, values or not.
    r = client.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [424242]})
    assert r.to_arrow().schema.field("driver_stats:conv_rate").type == pa.float32()
    assert r.to_dict()["driver_stats:conv_rate"] == [None]
    assert r.statuses()["driver_stats:conv_rate"] == ["NOT_FOUND"]


def test_naming_features_twice_or_not_at_all_is_refused_before_sending(client: Client) -> None:
    with pytest.raises(InvalidArgument, match="exactly one"):
        client.get_online_features(features=["driver_stats"], service="ride_ranking_v1", entities={"driver_id": [1]})
    with pytest.raises(InvalidArgument, match="exactly one"):
        client.get_online_features(entities={"driver_id": [1]})
