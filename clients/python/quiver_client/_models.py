"""Plain, immutable Python forms of the server's answers (registry objects, plans, jobs,
pushes), made from the wire messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, Optional, Tuple

from ._proto.quiver.v1 import materialize_pb2, push_pb2, registry_pb2, types_pb2
from ._time import optional_time

__all__ = [
    "Field",
    "Entity",
    "Source",
    "FeatureView",
    "FeatureService",
    "ObjectChange",
    "Plan",
    "ApplyResult",
    "RegistryVersion",
    "PushResult",
    "ViewProgress",
    "JobStatus",
]


@dataclass(frozen=True)
class Field:
    """A declared column: a join key or a feature, with its Quiver dtype (``int64``,
    ``float32``, ``list<float32>``, ...)."""

    name: str
    dtype: str
    description: str = ""

    @classmethod
    def _from_pb(cls, f: types_pb2.Field) -> "Field":
        return cls(name=f.name, dtype=f.dtype, description=f.description)


def _fields(fields: Iterable[types_pb2.Field]) -> Tuple[Field, ...]:
    return tuple(Field._from_pb(f) for f in fields)


@dataclass(frozen=True)
class Entity:
    """What features describe, identified by its join keys."""

    name: str
    join_keys: Tuple[Field, ...]
    description: str = ""

    @classmethod
    def _from_pb(cls, e: registry_pb2.Entity) -> "Entity":
        return cls(name=e.name, join_keys=_fields(e.join_keys), description=e.description)


@dataclass(frozen=True)
class Source:
    """Raw data in the lake: a path (relative to the lake, or a URL), a format and its
    timestamp columns."""

    name: str
    path: str
    format: str
    timestamp_field: str
    created_timestamp_field: Optional[str] = None
    description: str = ""

    @classmethod
    def _from_pb(cls, s: registry_pb2.Source) -> "Source":
        return cls(
            name=s.name,
            path=s.path,
            format=s.format,
            timestamp_field=s.timestamp_field,
            created_timestamp_field=s.created_timestamp_field or None,
            description=s.description,
        )


@dataclass(frozen=True)
class FeatureView:
    """Typed features of some entities, read from one source.

    ``ttl`` is None when values never expire; ``hash`` is the definition's content hash in
    the registry version that answered; ``expectations`` are the checks every materialized
    window and push must pass (e.g. ``"conv_rate between 0 and 1"``), and ``on_failure``
    (``"fail"`` or ``"warn"``) what a broken one does.
    """

    name: str
    entities: Tuple[str, ...]
    source: str
    ttl: Optional[timedelta]
    online: bool
    features: Tuple[Field, ...]
    join_keys: Tuple[Field, ...]
    transform: Optional[str] = None
    tags: Dict[str, str] = field(default_factory=dict)
    owner: str = ""
    description: str = ""
    hash: str = ""
    expectations: Tuple[str, ...] = ()
    on_failure: str = "fail"

    @classmethod
    def _from_pb(cls, v: registry_pb2.FeatureView) -> "FeatureView":
        return cls(
            name=v.name,
            entities=tuple(v.entities),
            source=v.source,
            ttl=timedelta(seconds=v.ttl_seconds) if v.ttl_seconds else None,
            online=v.online,
            features=_fields(v.features),
            join_keys=_fields(v.join_keys),
            transform=v.transform or None,
            tags=dict(v.tags),
            owner=v.owner,
            description=v.description,
            hash=v.hash,
            expectations=tuple(v.expectations),
            on_failure=v.on_failure or "fail",
        )


@dataclass(frozen=True)
class FeatureService:
    """A named list of features a model uses: ``features`` as written, and what they
    resolve to (one ``view:feature`` each)."""

    name: str
    features: Tuple[str, ...]
    resolved_features: Tuple[str, ...]
    tags: Dict[str, str] = field(default_factory=dict)
    owner: str = ""
    description: str = ""

    @classmethod
    def _from_pb(cls, s: registry_pb2.FeatureService) -> "FeatureService":
        return cls(
            name=s.name,
            features=tuple(s.features),
            resolved_features=tuple(s.resolved_features),
            tags=dict(s.tags),
            owner=s.owner,
            description=s.description,
        )


_ACTIONS = {
    registry_pb2.CHANGE_ACTION_ADDED: "added",
    registry_pb2.CHANGE_ACTION_CHANGED: "changed",
    registry_pb2.CHANGE_ACTION_REMOVED: "removed",
}


@dataclass(frozen=True)
class ObjectChange:
    """How one object differs from the registry's current version.

    ``kind`` is ``entity``, ``source``, ``feature view`` or ``feature service``; ``action``
    is ``added``, ``changed`` or ``removed``; ``fields`` has one line per changed field.
    """

    kind: str
    name: str
    action: str
    fields: Tuple[str, ...] = ()

    @classmethod
    def _from_pb(cls, c: registry_pb2.ObjectChange) -> "ObjectChange":
        return cls(kind=c.kind, name=c.name, action=_ACTIONS.get(c.action, "unspecified"), fields=tuple(c.fields))


@dataclass(frozen=True)
class Plan:
    """What an apply would change, against ``registry_version`` (pass it to ``apply`` as
    ``expected_version``)."""

    registry_version: int
    changes: Tuple[ObjectChange, ...]

    @classmethod
    def _from_pb(cls, p: registry_pb2.PlanResponse) -> "Plan":
        return cls(registry_version=p.registry_version, changes=tuple(ObjectChange._from_pb(c) for c in p.changes))


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of an apply: ``applied`` is False when the definitions equal the current
    version (nothing written); ``version`` is the registry version now current."""

    applied: bool
    version: int
    changes: Tuple[ObjectChange, ...]
    deleted_online_rows: Dict[str, int] = field(default_factory=dict)

    @classmethod
    def _from_pb(cls, a: registry_pb2.ApplyResponse) -> "ApplyResult":
        return cls(
            applied=a.applied,
            version=a.version,
            changes=tuple(ObjectChange._from_pb(c) for c in a.changes),
            deleted_online_rows=dict(a.deleted_online_rows),
        )


@dataclass(frozen=True)
class RegistryVersion:
    """One applied version of the definitions. ``added``, ``changed`` and ``removed`` hold
    ``section/name`` keys such as ``feature_views/driver_stats``."""

    version: int
    applied_at: Optional[datetime]
    applied_by: str
    definitions_hash: str
    added: Tuple[str, ...] = ()
    changed: Tuple[str, ...] = ()
    removed: Tuple[str, ...] = ()

    @classmethod
    def _from_pb(cls, v: registry_pb2.RegistryVersion) -> "RegistryVersion":
        return cls(
            version=v.version,
            applied_at=optional_time(v.applied_at_ns),
            applied_by=v.applied_by,
            definitions_hash=v.definitions_hash,
            added=tuple(v.added),
            changed=tuple(v.changed),
            removed=tuple(v.removed),
        )


@dataclass(frozen=True)
class PushResult:
    """What a push wrote: rows received, entity rows that replaced or created an online
    value (older ones are skipped), the offline Delta table version committed (None when
    not pushed offline), and the view's expectations the rows broke, one line each, when the
    view only warns (``on_failure: warn``; under ``fail`` the push raises InvalidArgument)."""

    rows: int
    online_rows_written: int
    offline_version: Optional[int]
    expectation_warnings: Tuple[str, ...] = ()

    @classmethod
    def _from_pb(cls, p: push_pb2.PushResponse) -> "PushResult":
        return cls(
            rows=p.rows,
            online_rows_written=p.online_rows_written,
            offline_version=p.offline_version if p.HasField("offline_version") else None,
            expectation_warnings=tuple(p.expectation_warnings),
        )


def _state_name(enum: Any, value: int, prefix: str) -> str:
    name: str = enum.Name(value)
    return name[len(prefix) :] if name.startswith(prefix) else name


@dataclass(frozen=True)
class ViewProgress:
    """One view of a materialization job.

    ``state`` is ``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``SKIPPED`` or ``FAILED``;
    ``rows_expected`` is 0 until the window's rows are read and sorted; ``message`` says why
    the view was skipped, or its error; ``dropped_null_keys`` counts the window's rows left out
    because a join key was missing, ``dropped_null_event_times`` the source's rows left out
    because they have no event time (they belong to no window).
    """

    view: str
    state: str
    rows_done: int
    rows_expected: int
    window_start: Optional[datetime]
    window_end: Optional[datetime]
    offline_version: Optional[int]
    online_rows: int
    seconds: float
    message: str
    dropped_null_keys: int = 0
    dropped_null_event_times: int = 0

    @classmethod
    def _from_pb(cls, v: materialize_pb2.ViewProgress) -> "ViewProgress":
        return cls(
            view=v.view,
            state=_state_name(materialize_pb2.ViewRunState, v.state, "VIEW_RUN_STATE_"),
            rows_done=v.rows_done,
            rows_expected=v.rows_expected,
            window_start=optional_time(v.window_start_ns),
            window_end=optional_time(v.window_end_ns),
            offline_version=v.offline_version if v.HasField("offline_version") else None,
            online_rows=v.online_rows,
            seconds=v.seconds,
            message=v.message,
            dropped_null_keys=v.dropped_null_keys,
            dropped_null_event_times=v.dropped_null_event_times,
        )


@dataclass(frozen=True)
class JobStatus:
    """A materialization job as the server last reported it.

    ``state`` is ``PENDING``, ``RUNNING``, ``SUCCEEDED`` or ``FAILED``; ``error`` is set
    when the job could not start at all.
    """

    id: str
    state: str
    created_at: Optional[datetime]
    finished_at: Optional[datetime]
    views: Tuple[ViewProgress, ...]
    error: Optional[str] = None

    @property
    def done(self) -> bool:
        """True once the job finished (succeeded or failed)."""
        return self.state in ("SUCCEEDED", "FAILED")

    @property
    def succeeded(self) -> bool:
        """True when every view succeeded or was skipped."""
        return self.state == "SUCCEEDED"

    @property
    def rows_done(self) -> int:
        """Rows written so far, over all views."""
        return sum(v.rows_done for v in self.views)

    @property
    def rows_expected(self) -> int:
        """Rows to write over all views, as far as known (views count once read)."""
        return sum(v.rows_expected for v in self.views)

    @classmethod
    def _from_pb(cls, j: materialize_pb2.MaterializationJob) -> "JobStatus":
        return cls(
            id=j.id,
            state=_state_name(materialize_pb2.JobState, j.state, "JOB_STATE_"),
            created_at=optional_time(j.created_at_ns),
            finished_at=optional_time(j.finished_at_ns),
            views=tuple(ViewProgress._from_pb(v) for v in j.views),
            error=j.error or None,
        )
