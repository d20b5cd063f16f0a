"""The blocking client."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, TypeVar

import grpc
import pyarrow as pa

from . import _calls, _retry
from ._base import DEFAULT_TARGET, DEFAULT_TIMEOUT, ClientBase
from ._calls import Call
from ._convert import TableLike, conform_to_view, to_arrow
from ._definitions import Definitions
from ._errors import from_rpc_error
from ._flight import TrainingSets
from ._jobs import MaterializationJob
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
from ._results import OnlineFeatures, TrainingSet
from ._retry import RetryPolicy
from ._time import TimeLike
from ._transport import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["Client"]

T = TypeVar("T")


class Client(ClientBase):
    """A blocking client of one Quiver server (gRPC and Arrow Flight on one port).

    Args:
        target: ``host:port`` of ``quiver serve`` (``grpc+tls://host:port`` for TLS).
        token: sent as ``authorization: Bearer <token>`` with every call when given.
        timeout: default seconds per call, retries included; each method takes
            ``timeout=`` to override it.
        tls: speak TLS (also implied by a ``grpc+tls://`` target).
        root_certificates: PEM of the CA to trust with TLS (the system's roots when None).
        retry: how idempotent reads are retried after UNAVAILABLE.
        max_message_size: largest gRPC message sent or received (the server's default).

    Every method raises :class:`quiver_client.QuiverError` (the subclass of the status
    code) when the server refuses or cannot answer. Reads are retried after UNAVAILABLE
    within their timeout; writes (apply, push, materialization start, training set upload)
    never are. A client is safe to share between threads; close it (or use ``with``) to
    release its connections.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        tls: bool = False,
        root_certificates: Optional[bytes] = None,
        retry: Optional[RetryPolicy] = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__(
            target,
            token,
            timeout,
            tls=tls,
            root_certificates=root_certificates,
            retry=retry,
            max_message_size=max_message_size,
        )
        self._channel = self._endpoint.channel()
        self._stubs = _calls.make_stubs(self._channel)
        self._sets = TrainingSets(self._endpoint, self._retry)

    def close(self) -> None:
        """Closes the gRPC channel and the Flight client."""
        self._channel.close()
        self._sets.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _run(self, call: Call[T], timeout: Optional[float]) -> T:
        method = call.bind(self._stubs)
        metadata = self._endpoint.metadata()

        def attempt(left: float) -> Any:
            try:
                return method(call.request, timeout=left, metadata=metadata)
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None

        seconds = self._seconds(timeout)
        response = _retry.call(call.what, attempt, timeout=seconds, idempotent=call.idempotent, policy=self._retry)
        return call.parse(response)

    # ---- online ---------------------------------------------------------------------------

    def get_online_features(
        self,
        *,
        entities: TableLike,
        features: Optional[Sequence[str]] = None,
        service: Optional[str] = None,
        at: Optional[TimeLike] = None,
        timeout: Optional[float] = None,
    ) -> OnlineFeatures:
        """The latest feature values of entities, from the online store.

        Args:
            entities: the join key columns, one row per entity: a dict of column -> values,
                a pandas or polars DataFrame, or a pyarrow Table. A compound key is several
                columns.
            features: ``view:feature`` references (a view name alone: all its features)...
            service: ...or the name of a feature service; exactly one of the two.
            at: judge the views' ttls at this time instead of now (a datetime, naive =
                UTC, or RFC 3339 text).
            timeout: seconds for the call, retries included.

        Returns:
            the values, statuses and event times, row for row (:class:`OnlineFeatures`).
        """
        return self._run(self._online_call(entities, features, service, at), timeout)

    # ---- training sets --------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: TableLike,
        *,
        features: Optional[Sequence[str]] = None,
        service: Optional[str] = None,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
        timeout: Optional[float] = None,
    ) -> TrainingSet:
        """A point-in-time correct training set for a spine, over Arrow Flight.

        The spine (join keys, a timestamp column, any labels) is uploaded as Arrow record
        batches (Flight DoPut, never retried); the set is downloaded by its ticket (DoGet,
        retried after UNAVAILABLE). Every spine row comes back once, in order, with the
        features as they were at its timestamp.

        Args:
            entity_df: the spine: a pandas or polars DataFrame or a pyarrow Table (a pandas
                index is not sent; make it a column to keep it).
            features: ``view:feature`` references (or view names)...
            service: ...or a feature service; exactly one of the two.
            full_feature_names: name feature columns ``view__feature`` instead of ``feature``.
            timestamp_column: the spine's timestamp column.
            timeout: seconds for upload, build and download together.
        """
        spine, command = self._training_request(entity_df, features, service, full_feature_names, timestamp_column)
        return self._sets.build(spine, command, self._seconds(timeout))

    def get_training_set(self, ticket: str, *, timeout: Optional[float] = None) -> pa.Table:
        """A training set built earlier, by its ticket (``TrainingSet.ticket``), while the
        server keeps it (``--ticket-ttl``, 1 h by default); only the token that built it
        may fetch it."""
        return self._sets.fetch(ticket, self._seconds(timeout))

    # ---- push -----------------------------------------------------------------------------

    def push(
        self,
        feature_view: str,
        data: TableLike,
        *,
        to: str = "online",
        cast: bool = True,
        timeout: Optional[float] = None,
    ) -> PushResult:
        """Writes rows computed elsewhere to a feature view's stores. Never retried.

        Args:
            feature_view: the view's name.
            data: rows with the view's join keys, ``event_timestamp``, optionally
                ``created_timestamp``, and every feature of the view.
            to: ``"online"``, ``"offline"`` or ``"both"``. Online writes are newer-wins.
            cast: first read the view's declared types (one registry read) and cast number
                columns to them, as pandas makes every column ``int64`` or ``float64``
                (integers must fit exactly; ``float64`` is rounded to a declared
                ``float32``). With False the rows go as they are, and the server refuses a
                type that does not convert without loss.
        """
        rows = to_arrow(data, "data")
        if cast:
            rows = conform_to_view(rows, self._run(_calls.push_view_types(feature_view), timeout))
        return self._run(self._push_call(feature_view, rows, to), timeout)

    # ---- materialization ------------------------------------------------------------------

    def _job(self, status: JobStatus) -> MaterializationJob:
        return MaterializationJob(status, lambda job_id: self._run(_calls.get_job(job_id), None))

    def materialize(
        self,
        start: TimeLike,
        end: TimeLike,
        views: Optional[Sequence[str]] = None,
        *,
        timeout: Optional[float] = None,
    ) -> MaterializationJob:
        """Starts a background job computing ``[start, end)`` of event time of ``views``
        (all views when None) into the offline store, and the online store for online
        views. Returns at once; ``job.wait()`` waits for it. Never retried.

        Times are datetimes (naive = UTC), dates or RFC 3339 text.
        """
        return self._job(self._run(self._window_call(start, end, views), timeout))

    def materialize_incremental(
        self, end: TimeLike, views: Optional[Sequence[str]] = None, *, timeout: Optional[float] = None
    ) -> MaterializationJob:
        """Like :meth:`materialize`, from each view's watermark (the start of its data on a
        first run) up to ``end``."""
        return self._job(self._run(self._incremental_call(end, views), timeout))

    def get_materialization(self, job_id: str, *, timeout: Optional[float] = None) -> MaterializationJob:
        """A job by its id (any server sharing the offline store knows every job)."""
        return self._job(self._run(_calls.get_job(job_id), timeout))

    def list_materializations(self, *, timeout: Optional[float] = None) -> List[JobStatus]:
        """The materialization jobs, newest first."""
        return self._run(_calls.list_jobs(), timeout)

    # ---- registry -------------------------------------------------------------------------

    def list_entities(self, *, registry_version: int = 0, timeout: Optional[float] = None) -> List[Entity]:
        """The entities of a registry version (0: the current one)."""
        return self._run(_calls.list_entities(registry_version), timeout)

    def list_sources(self, *, registry_version: int = 0, timeout: Optional[float] = None) -> List[Source]:
        """The sources of a registry version (0: the current one)."""
        return self._run(_calls.list_sources(registry_version), timeout)

    def list_feature_views(self, *, registry_version: int = 0, timeout: Optional[float] = None) -> List[FeatureView]:
        """The feature views of a registry version (0: the current one)."""
        return self._run(_calls.list_feature_views(registry_version), timeout)

    def list_feature_services(
        self, *, registry_version: int = 0, timeout: Optional[float] = None
    ) -> List[FeatureService]:
        """The feature services of a registry version (0: the current one)."""
        return self._run(_calls.list_feature_services(registry_version), timeout)

    def describe_feature_view(
        self, name: str, *, registry_version: int = 0, timeout: Optional[float] = None
    ) -> FeatureView:
        """One feature view; :class:`quiver_client.NotFound` (naming the closest name) when
        there is none."""
        return self._run(_calls.get_feature_view(name, registry_version), timeout)

    def history(self, *, timeout: Optional[float] = None) -> List[RegistryVersion]:
        """Every applied registry version, oldest first."""
        return self._run(_calls.history(), timeout)

    def plan(self, definitions: Definitions, *, timeout: Optional[float] = None) -> Plan:
        """What applying ``definitions`` would change. Writes nothing.

        Args:
            definitions: a local folder of YAML definitions (every ``*.yaml``/``*.yml``
                below it), or a mapping of document name to YAML text. They are the complete
                set: objects not in them are planned for removal.
        """
        return self._run(self._plan_call(definitions), timeout)

    def apply(
        self,
        definitions: Definitions,
        expected_version: Optional[int] = None,
        *,
        applied_by: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> ApplyResult:
        """Stores ``definitions`` as the next registry version. Never retried.

        Args:
            definitions: as for :meth:`plan`.
            expected_version: the version planned against (``Plan.registry_version``); the
                apply fails with :class:`quiver_client.Conflict` when the registry moved on.
                None applies over whatever version is current when the call is made.
            applied_by: the name recorded in the history (QUIVER_USER or the login name by
                default; with tokens on, the server records the token's name instead).
        """
        documents = self._documents(definitions)
        if expected_version is None:
            expected_version = _calls.current_version(self.history(timeout=timeout))
        return self._run(self._apply_call(documents, expected_version, applied_by), timeout)
