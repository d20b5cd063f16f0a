"""The AsyncClient on the cases of the blocking client's tests: online reads, training sets
equal to the CLI's, push then read, a materialization job, apply and a lost apply, errors."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import pandas as pd
import polars as pl
import pytest

from conftest import DEFINITIONS, QuiverProject, token
from helpers import AT, RANKING, SPINE, assert_same_cells, cli_online, cli_training_set, driver_rows, same_value
from quiver_client import (
    AsyncClient,
    AsyncMaterializationJob,
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)

T = TypeVar("T")


def run(addr: str, scenario: Callable[[AsyncClient], Awaitable[T]], **kwargs: Any) -> T:
    """Runs ``scenario`` with a client of its own, in an event loop of its own."""

    async def main() -> T:
        async with AsyncClient(addr, **kwargs) as c:
            return await scenario(c)

    return asyncio.run(main())


def test_online_reads_match_the_cli(project: QuiverProject) -> None:
    entities = {"driver_id": [1001, 1050, 999999], "customer_id": [2001, 2002, 2999]}

    async def scenario(c: AsyncClient) -> Any:
        # Concurrent reads on one channel.
        return await asyncio.gather(
            c.get_online_features(service="ride_ranking_v1", entities=entities, at=AT),
            c.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [1001]}),
            c.get_online_features(
                features=["customer_embeddings:embedding"], entities=pd.DataFrame({"customer_id": [2002]})
            ),
            c.get_online_features(
                features=["driver_city_stats"], entities=pl.DataFrame({"driver_id": [1065], "city": ["lisbon"]}), at=AT
            ),
        )

    ranking, now, embedding, city = run(project.addr, scenario)
    rows = [{"driver_id": d, "customer_id": c} for d, c in zip(entities["driver_id"], entities["customer_id"])]
    for i, answer in enumerate(cli_online(project, RANKING, rows, AT)):
        for ref in RANKING:
            assert ranking.statuses()[ref][i] == answer["features"][ref]["status"]
            assert same_value(ranking.to_dict()[ref][i], answer["features"][ref]["value"])
    assert ranking.statuses()["driver_stats:conv_rate"][2] == "NOT_FOUND"
    assert now.statuses()["driver_stats:conv_rate"] == ["OUTSIDE_MAX_AGE"]
    assert len(embedding.to_dict()["customer_embeddings:embedding"][0]) == 8
    cli = cli_online(project, ["driver_city_stats:trips_in_city"], [{"driver_id": 1065, "city": "lisbon"}], AT)
    assert (
        city.to_dict()["driver_city_stats:trips_in_city"][0]
        == cli[0]["features"]["driver_city_stats:trips_in_city"]["value"]
    )


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_training_sets_equal_the_cli(project: QuiverProject, kind: str) -> None:
    spine: Any = {"pandas": SPINE.to_pandas(), "polars": pl.from_arrow(SPINE), "pyarrow": SPINE}[kind]

    async def scenario(c: AsyncClient) -> Any:
        ts = await c.get_historical_features(spine, service="ride_ranking_v1")
        again = await c.get_training_set(ts.ticket)
        return ts, again

    ts, again = run(project.addr, scenario)
    want = cli_training_set(project, SPINE, f"async_{kind}", "--service", "ride_ranking_v1")
    assert_same_cells(ts.to_arrow(), want)
    assert again.equals(ts.to_arrow())
    assert ts.manifest["spine_rows"] == SPINE.num_rows


def test_push_then_read_and_a_materialization_job(project: QuiverProject) -> None:
    when = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)

    async def scenario(c: AsyncClient) -> Any:
        pushed = await c.push("driver_stats", driver_rows(9201, 0.375, when), to="online")
        read = await c.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [9201]})
        job = await c.materialize("2026-01-01", "2026-01-08", views=["driver_profile"])
        assert isinstance(job, AsyncMaterializationJob)
        final = await job.wait(poll_interval=0.1)
        listed = await c.list_materializations()
        return pushed, read, final, listed

    pushed, read, final, listed = run(project.addr, scenario)
    assert pushed.online_rows_written == 1
    assert read.to_dict()["driver_stats:conv_rate"] == [0.375]
    assert read.event_timestamps()["driver_stats:conv_rate"] == [when]
    assert final.succeeded and final.views[0].view == "driver_profile" and final.views[0].rows_done == 100
    assert final.id in [j.id for j in listed]


def test_registry_apply_and_a_lost_apply(project: QuiverProject, tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    shutil.copytree(DEFINITIONS, folder)
    views = folder / "views.yaml"
    original = views.read_text()

    async def scenario(c: AsyncClient) -> Any:
        assert len(await c.list_feature_views()) == 7
        assert (await c.describe_feature_view("zone_demand")).join_keys[0].dtype == "string"
        assert {s.name for s in await c.list_feature_services()} == {"ride_ranking_v1", "driver_quality_v2"}
        plan = await c.plan(folder)
        views.write_text(original.replace("Balance and riding habits", "Balance and habits"))
        applied = await c.apply(folder, expected_version=plan.registry_version)
        views.write_text(original.replace("Balance and riding habits", "Riding habits"))
        with pytest.raises(Conflict):
            await c.apply(folder, expected_version=plan.registry_version)
        views.write_text(original)
        restored = await c.apply(folder)
        return plan, applied, restored, await c.history()

    plan, applied, restored, history = run(project.addr, scenario)
    assert applied.applied and applied.version == plan.registry_version + 1
    assert restored.version == plan.registry_version + 2
    assert history[-1].version == restored.version


def test_errors(project: QuiverProject, auth_project: QuiverProject, new_project: Any) -> None:
    async def errors(c: AsyncClient) -> None:
        with pytest.raises(InvalidArgument):
            await c.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": ["x"]})
        with pytest.raises(NotFound):
            await c.describe_feature_view("nope")
        with pytest.raises(NotFound):
            await c.get_historical_features(SPINE, service="nope")
        with pytest.raises(ResourceExhausted):
            await c.get_online_features(features=["driver_stats"], entities={"driver_id": list(range(400))})
        with pytest.raises(DeadlineExceeded):
            await c.plan(DEFINITIONS, timeout=0.001)

    run(project.addr, errors)

    async def anonymous(c: AsyncClient) -> None:
        with pytest.raises(Unauthenticated):
            await c.history()

    run(auth_project.addr, anonymous)

    async def reader(c: AsyncClient) -> None:
        await c.history()
        with pytest.raises(PermissionDenied):
            await c.push("driver_stats", driver_rows(1, 0.5, datetime.now(timezone.utc)))
        with pytest.raises(PermissionDenied):
            await c.get_historical_features(SPINE, service="ride_ranking_v1")

    run(auth_project.addr, reader, token=token("ranking_svc"))

    async def empty(c: AsyncClient) -> None:
        with pytest.raises(FailedPrecondition):
            await c.get_online_features(features=["driver_stats:conv_rate"], entities={"driver_id": [1]})

    run(new_project(apply=False).addr, empty)
