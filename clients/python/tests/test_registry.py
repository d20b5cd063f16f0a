"""Registry reads, plan and apply (compare-and-swap) from a local definitions folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import DEFINITIONS
from quiver_client import Client, Conflict, FeatureView, InvalidArgument, NotFound


def test_lists_and_describe(client: Client) -> None:
    views = {v.name: v for v in client.list_feature_views()}
    assert set(views) == {
        "driver_stats",
        "customer_profile",
        "driver_city_stats",
        "customer_embeddings",
        "zone_demand",
        "driver_profile",
        "driver_trip_features",
    }
    stats = client.describe_feature_view("driver_stats")
    assert isinstance(stats, FeatureView)
    assert stats.ttl is not None and stats.ttl.total_seconds() == 7200
    assert [(f.name, f.dtype) for f in stats.features] == [
        ("conv_rate", "float32"),
        ("acc_rate", "float32"),
        ("avg_daily_trips", "int64"),
    ]
    assert [(k.name, k.dtype) for k in stats.join_keys] == [("driver_id", "int64")]
    assert stats.tags == {"team": "pricing", "tier": "gold"} and stats.hash
    assert stats.expectations == (
        "conv_rate between 0 and 1",
        "acc_rate between 0 and 1",
        "avg_daily_trips at least 0",
    )
    assert stats.on_failure == "fail"
    assert views["customer_embeddings"].ttl is None
    assert views["driver_trip_features"].transform and "NULLIF" in views["driver_trip_features"].transform
    assert [(k.name, k.dtype) for k in views["driver_city_stats"].join_keys] == [
        ("driver_id", "int64"),
        ("city", "string"),
    ]
    services = {s.name: s for s in client.list_feature_services()}
    assert services["ride_ranking_v1"].resolved_features[0] == "driver_stats:conv_rate"
    assert len(client.list_entities()) == 4
    sources = {s.name: s for s in client.list_sources()}
    assert sources["zone_demand_src"].format == "csv"
    assert sources["driver_city_stats_src"].created_timestamp_field is None
    with pytest.raises(NotFound, match="driver_stat"):
        client.describe_feature_view("driver_stat")


def test_plan_then_apply_then_a_lost_apply(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    shutil.copytree(DEFINITIONS, folder)
    start = client.history()[-1].version

    plan = client.plan(folder)
    assert plan.registry_version == start and plan.changes == ()
    unchanged = client.apply(folder, expected_version=start)
    assert not unchanged.applied and unchanged.version == start

    views = folder / "views.yaml"
    original = views.read_text()
    views.write_text(original.replace("Recent conversion, acceptance", "Conversion, acceptance"))
    plan = client.plan(folder)
    assert [(c.kind, c.name, c.action) for c in plan.changes] == [("feature view", "driver_stats", "changed")]
    assert any(f.startswith("description") for f in plan.changes[0].fields)
    applied = client.apply(folder, expected_version=plan.registry_version, applied_by="pytest")
    assert applied.applied and applied.version == start + 1

    # A second writer planned against the old version too: its apply is refused.
    views.write_text(original.replace("Recent conversion, acceptance", "Conversion and acceptance"))
    with pytest.raises(Conflict) as lost:
        client.apply(folder, expected_version=plan.registry_version)
    assert lost.value.code.name == "ABORTED"
    assert client.history()[-1].version == start + 1

    # Back to the original definitions, over whatever is current (expected_version=None).
    views.write_text(original)
    restored = client.apply(folder)
    assert restored.applied and restored.version == start + 2
    history = client.history()
    assert [v.version for v in history][-3:] == [start, start + 1, start + 2]
    assert history[-2].applied_by == "pytest"
    assert history[-2].changed == ("feature_views/driver_stats",)
    assert history[-1].definitions_hash == history[-3].definitions_hash


def test_documents_from_a_mapping_and_invalid_definitions(client: Client, tmp_path: Path) -> None:
    docs = {p.name: p.read_text() for p in sorted(DEFINITIONS.glob("*.yaml"))}
    assert client.plan(docs).changes == ()
    docs["views.yaml"] = docs["views.yaml"].replace("dtype: float32", "dtype: float33", 1)
    with pytest.raises(InvalidArgument, match="views.yaml"):
        client.plan(docs)
    with pytest.raises(InvalidArgument, match="does not exist"):
        client.plan(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgument, match="no \\*.yaml"):
        client.plan(tmp_path / "empty")


def test_a_registry_version_can_be_read_back(client: Client) -> None:
    first = client.list_feature_views(registry_version=1)
    assert len(first) == 7
    with pytest.raises(NotFound):
        client.list_feature_views(registry_version=10_000)
