"""Every unary gRPC call of the client, described once: which stub method, the request,
how to read the answer, and whether it may be retried. The blocking and the asyncio client
both run these descriptions, so the two cannot drift apart."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, TypeVar, Union

import pyarrow as pa

from ._convert import fill_entity_columns, fill_plain_entity_columns, to_ipc
from ._errors import InvalidArgument
from ._models import (
    ApplyResult,
    Entity,
    FeatureService,
    FeatureView,
    JobStatus,
    Plan,
    PushResult,
    RegistryVersion,
    Source,
)
from ._proto.quiver.v1 import (
    materialize_pb2,
    materialize_pb2_grpc,
    online_pb2,
    online_pb2_grpc,
    push_pb2,
    push_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    types_pb2,
)
from ._results import OnlineFeatures

__all__ = ["Call", "make_stubs"]

T = TypeVar("T")

_STUBS: Dict[str, Callable[[Any], Any]] = {
    "registry": registry_pb2_grpc.RegistryServiceStub,
    "online": online_pb2_grpc.OnlineServiceStub,
    "materialize": materialize_pb2_grpc.MaterializeServiceStub,
    "push": push_pb2_grpc.PushServiceStub,
}


def make_stubs(channel: Any) -> Dict[str, Any]:
    """The service stubs on ``channel`` (a blocking or an asyncio channel)."""
    return {name: stub(channel) for name, stub in _STUBS.items()}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One unary call: ``stubs[service].<method>(request)``, its answer read by ``parse``.
    Only ``idempotent`` calls are retried after UNAVAILABLE."""

    service: str
    method: str
    request: Any
    parse: Callable[[Any], T]
    idempotent: bool

    @property
    def what(self) -> str:
        """The call's name in logs and errors."""
        return self.method

    def bind(self, stubs: Dict[str, Any]) -> Callable[..., Any]:
        """The stub method to invoke."""
        method: Callable[..., Any] = getattr(stubs[self.service], self.method)
        return method


def feature_selection(features: Optional[Sequence[str]], service: Optional[str]) -> Dict[str, Any]:
    """Which features: exactly one of a feature service or a list of ``view:feature``
    references (a view name alone means all its features)."""
    if (features is None) == (service is None):
        raise InvalidArgument("name the features by service=... or by features=[...], exactly one of them")
    if isinstance(features, str):
        raise InvalidArgument("features: give a list of 'view:feature' references, not one string")
    if service is not None:
        return {"feature_service": service}
    return {"features": list(features or [])}


# ---- online -----------------------------------------------------------------------------


def online_features(
    features: Optional[Sequence[str]],
    service: Optional[str],
    entities: Union[pa.Table, Dict[str, List[Any]]],
    at_ns: int,
) -> Call[OnlineFeatures]:
    """GetOnlineFeatures of ``entities`` (join key columns: an Arrow table, or plain
    columns checked by :func:`quiver_client._convert.plain_columns`)."""
    selection = feature_selection(features, service)
    kind: Dict[str, Any] = (
        {"feature_service": selection["feature_service"]}
        if "feature_service" in selection
        else {"features": types_pb2.FeatureList(refs=selection["features"])}
    )
    # The Arrow answer: one record batch, decoded by pyarrow in C++, not value by value.
    request = online_pb2.GetOnlineFeaturesRequest(at_ns=at_ns, arrow=True, **kind)
    if isinstance(entities, pa.Table):
        fill_entity_columns(request.entities, entities)
    else:
        fill_plain_entity_columns(request.entities, entities)
    return Call("online", "GetOnlineFeatures", request, lambda r: OnlineFeatures(entities, r), idempotent=True)


# ---- training sets (the Arrow Flight command) -------------------------------------------


def training_set_command(
    features: Optional[Sequence[str]], service: Optional[str], full_feature_names: bool, timestamp_column: str
) -> bytes:
    """The JSON command of a Flight DoPut naming a training set's features."""
    command = feature_selection(features, service)
    command["full_feature_names"] = full_feature_names
    command["timestamp_column"] = timestamp_column
    return json.dumps(command).encode()


# ---- push ---------------------------------------------------------------------------------

_PUSH_TARGETS = {
    "online": push_pb2.PUSH_TARGET_ONLINE,
    "offline": push_pb2.PUSH_TARGET_OFFLINE,
    "both": push_pb2.PUSH_TARGET_ONLINE_AND_OFFLINE,
}


def push(feature_view: str, rows: pa.Table, to: str) -> Call[PushResult]:
    """Push rows to a view's online store, offline store, or both. Never retried."""
    target = _PUSH_TARGETS.get(to)
    if target is None:
        raise InvalidArgument(f"to={to!r}: push to 'online', 'offline' or 'both'")
    request = push_pb2.PushRequest(feature_view=feature_view, arrow_ipc=to_ipc(rows), to=target)
    return Call("push", "Push", request, PushResult._from_pb, idempotent=False)


# ---- materialization ----------------------------------------------------------------------


def _views(views: Optional[Sequence[str]]) -> List[str]:
    if isinstance(views, str):
        raise InvalidArgument("views: give a list of feature view names, not one string")
    return list(views or [])


def materialize_window(start_ns: int, end_ns: int, views: Optional[Sequence[str]]) -> Call[JobStatus]:
    """Start a job over [start, end) of event time. Never retried."""
    request = materialize_pb2.StartMaterializationRequest(
        window=materialize_pb2.Window(start_ns=start_ns, end_ns=end_ns), views=_views(views)
    )
    return Call("materialize", "Start", request, JobStatus._from_pb, idempotent=False)


def materialize_incremental(end_ns: int, views: Optional[Sequence[str]]) -> Call[JobStatus]:
    """Start a job from each view's watermark up to ``end``. Never retried."""
    request = materialize_pb2.StartMaterializationRequest(
        incremental=materialize_pb2.Incremental(end_ns=end_ns), views=_views(views)
    )
    return Call("materialize", "Start", request, JobStatus._from_pb, idempotent=False)


def get_job(job_id: str) -> Call[JobStatus]:
    """One materialization job."""
    request = materialize_pb2.GetMaterializationRequest(id=job_id)
    return Call("materialize", "Get", request, JobStatus._from_pb, idempotent=True)


def list_jobs() -> Call[List[JobStatus]]:
    """The materialization jobs, newest first."""
    return Call(
        "materialize",
        "List",
        materialize_pb2.ListMaterializationsRequest(),
        lambda r: [JobStatus._from_pb(j) for j in r.jobs],
        idempotent=True,
    )


# ---- registry -----------------------------------------------------------------------------


def plan(documents: List[registry_pb2.YamlDocument]) -> Call[Plan]:
    """Plan: what applying ``documents`` would change. Writes nothing, so it is retried."""
    return Call("registry", "Plan", registry_pb2.PlanRequest(documents=documents), Plan._from_pb, idempotent=True)


def apply(documents: List[registry_pb2.YamlDocument], expected_version: int, applied_by: str) -> Call[ApplyResult]:
    """Apply with compare-and-swap on ``expected_version``. Never retried."""
    request = registry_pb2.ApplyRequest(documents=documents, expected_version=expected_version, applied_by=applied_by)
    return Call("registry", "Apply", request, ApplyResult._from_pb, idempotent=False)


def list_entities(registry_version: int) -> Call[List[Entity]]:
    """Entities of a registry version (0: the current one)."""
    return Call(
        "registry",
        "ListEntities",
        registry_pb2.ListRequest(registry_version=registry_version),
        lambda r: [Entity._from_pb(e) for e in r.entities],
        idempotent=True,
    )


def list_sources(registry_version: int) -> Call[List[Source]]:
    """Sources of a registry version (0: the current one)."""
    return Call(
        "registry",
        "ListSources",
        registry_pb2.ListRequest(registry_version=registry_version),
        lambda r: [Source._from_pb(s) for s in r.sources],
        idempotent=True,
    )


def list_feature_views(registry_version: int) -> Call[List[FeatureView]]:
    """Feature views of a registry version (0: the current one)."""
    return Call(
        "registry",
        "ListFeatureViews",
        registry_pb2.ListRequest(registry_version=registry_version),
        lambda r: [FeatureView._from_pb(v) for v in r.feature_views],
        idempotent=True,
    )


def list_feature_services(registry_version: int) -> Call[List[FeatureService]]:
    """Feature services of a registry version (0: the current one)."""
    return Call(
        "registry",
        "ListFeatureServices",
        registry_pb2.ListRequest(registry_version=registry_version),
        lambda r: [FeatureService._from_pb(s) for s in r.feature_services],
        idempotent=True,
    )


def get_feature_view(name: str, registry_version: int) -> Call[FeatureView]:
    """One feature view."""
    return Call(
        "registry",
        "GetFeatureView",
        registry_pb2.GetFeatureViewRequest(name=name, registry_version=registry_version),
        lambda r: FeatureView._from_pb(r.feature_view),
        idempotent=True,
    )


def history() -> Call[List[RegistryVersion]]:
    """Every applied registry version, oldest first."""
    return Call(
        "registry",
        "History",
        registry_pb2.HistoryRequest(),
        lambda r: [RegistryVersion._from_pb(v) for v in r.versions],
        idempotent=True,
    )


def current_version(versions: List[RegistryVersion]) -> int:
    """The current registry version of a history (0 for an empty registry)."""
    return versions[-1].version if versions else 0


def push_view_types(name: str) -> Call[FeatureView]:
    """The view a push casts its rows to. A push is never retried, so neither is the read
    made for it: a push against a stopped server fails at once."""
    return replace(get_feature_view(name, 0), idempotent=False)
