"""The asyncio client: the methods of :class:`quiver_client.Client`, as coroutines on
``grpc.aio``. Arrow Flight has no asyncio API; training sets run in a worker thread."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Sequence, TypeVar

import grpc
import grpc.aio
import pyarrow as pa

from . import _calls, _retry
from ._base import DEFAULT_TARGET, DEFAULT_TIMEOUT, ClientBase
from ._calls import Call
from ._convert import TableLike, conform_to_view, to_arrow
from ._definitions import Definitions
from ._errors import from_rpc_error
from ._flight import TrainingSets
from ._jobs import AsyncMaterializationJob
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

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(ClientBase):
    """An asyncio client of one Quiver server; the same methods and arguments as
    :class:`quiver_client.Client`, as coroutines.

    The gRPC channel is opened on the first call, in the event loop that makes it; use one
    client per event loop, and ``await client.close()`` (or ``async with``) when done.
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
        self._channel: Optional[grpc.aio.Channel] = None
        self._stubs: Dict[str, Any] = {}
        self._sets = TrainingSets(self._endpoint, self._retry)

    async def close(self) -> None:
        """Closes the gRPC channel and the Flight client."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stubs = {}
        self._sets.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _run(self, call: Call[T], timeout: Optional[float]) -> T:
        if self._channel is None:
            self._channel = self._endpoint.aio_channel()
            self._stubs = _calls.make_stubs(self._channel)
        method = call.bind(self._stubs)
        metadata = self._endpoint.metadata()

        async def attempt(left: float) -> Any:
            try:
                return await method(call.request, timeout=left, metadata=metadata)
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None

        seconds = self._seconds(timeout)
        response = await _retry.call_async(
            call.what, attempt, timeout=seconds, idempotent=call.idempotent, policy=self._retry
        )
        return call.parse(response)

    # ---- online ---------------------------------------------------------------------------

    async def get_online_features(
        self,
        *,
        entities: TableLike,
        features: Optional[Sequence[str]] = None,
        service: Optional[str] = None,
        at: Optional[TimeLike] = None,
        timeout: Optional[float] = None,
    ) -> OnlineFeatures:
        """See :meth:`quiver_client.Client.get_online_features`."""
        return await self._run(self._online_call(entities, features, service, at), timeout)

    # ---- training sets --------------------------------------------------------------------

    async def get_historical_features(
        self,
        entity_df: TableLike,
        *,
        features: Optional[Sequence[str]] = None,
        service: Optional[str] = None,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
        timeout: Optional[float] = None,
    ) -> TrainingSet:
        """See :meth:`quiver_client.Client.get_historical_features` (runs in a thread)."""
        spine, command = self._training_request(entity_df, features, service, full_feature_names, timestamp_column)
        return await asyncio.to_thread(self._sets.build, spine, command, self._seconds(timeout))

    async def get_training_set(self, ticket: str, *, timeout: Optional[float] = None) -> pa.Table:
        """See :meth:`quiver_client.Client.get_training_set` (runs in a thread)."""
        return await asyncio.to_thread(self._sets.fetch, ticket, self._seconds(timeout))

    # ---- push -----------------------------------------------------------------------------

    async def push(
        self,
        feature_view: str,
        data: TableLike,
        *,
        to: str = "online",
        cast: bool = True,
        timeout: Optional[float] = None,
    ) -> PushResult:
        """See :meth:`quiver_client.Client.push`. Never retried."""
        rows = to_arrow(data, "data")
        if cast:
            rows = conform_to_view(rows, await self._run(_calls.push_view_types(feature_view), timeout))
        return await self._run(self._push_call(feature_view, rows, to), timeout)

    # ---- materialization ------------------------------------------------------------------

    def _job(self, status: JobStatus) -> AsyncMaterializationJob:
        async def get(job_id: str) -> JobStatus:
            return await self._run(_calls.get_job(job_id), None)

        return AsyncMaterializationJob(status, get)

    async def materialize(
        self,
        start: TimeLike,
        end: TimeLike,
        views: Optional[Sequence[str]] = None,
        *,
        timeout: Optional[float] = None,
    ) -> AsyncMaterializationJob:
        """See :meth:`quiver_client.Client.materialize`; ``await job.wait()``."""
        return self._job(await self._run(self._window_call(start, end, views), timeout))

    async def materialize_incremental(
        self, end: TimeLike, views: Optional[Sequence[str]] = None, *, timeout: Optional[float] = None
    ) -> AsyncMaterializationJob:
        """See :meth:`quiver_client.Client.materialize_incremental`."""
        return self._job(await self._run(self._incremental_call(end, views), timeout))

    async def get_materialization(self, job_id: str, *, timeout: Optional[float] = None) -> AsyncMaterializationJob:
        """See :meth:`quiver_client.Client.get_materialization`."""
        return self._job(await self._run(_calls.get_job(job_id), timeout))

    async def list_materializations(self, *, timeout: Optional[float] = None) -> List[JobStatus]:
        """See :meth:`quiver_client.Client.list_materializations`."""
        return await self._run(_calls.list_jobs(), timeout)

    # ---- registry -------------------------------------------------------------------------

    async def list_entities(self, *, registry_version: int = 0, timeout: Optional[float] = None) -> List[Entity]:
        """See :meth:`quiver_client.Client.list_entities`."""
        return await self._run(_calls.list_entities(registry_version), timeout)

    async def list_sources(self, *, registry_version: int = 0, timeout: Optional[float] = None) -> List[Source]:
        """See :meth:`quiver_client.Client.list_sources`."""
        return await self._run(_calls.list_sources(registry_version), timeout)

    async def list_feature_views(
        self, *, registry_version: int = 0, timeout: Optional[float] = None
    ) -> List[FeatureView]:
        """See :meth:`quiver_client.Client.list_feature_views`."""
        return await self._run(_calls.list_feature_views(registry_version), timeout)

    async def list_feature_services(
        self, *, registry_version: int = 0, timeout: Optional[float] = None
    ) -> List[FeatureService]:
        """See :meth:`quiver_client.Client.list_feature_services`."""
        return await self._run(_calls.list_feature_services(registry_version), timeout)

    async def describe_feature_view(
        self, name: str, *, registry_version: int = 0, timeout: Optional[float] = None
    ) -> FeatureView:
        """See :meth:`quiver_client.Client.describe_feature_view`."""
        return await self._run(_calls.get_feature_view(name, registry_version), timeout)

    async def history(self, *, timeout: Optional[float] = None) -> List[RegistryVersion]:
        """See :meth:`quiver_client.Client.history`."""
        return await self._run(_calls.history(), timeout)

    async def plan(self, definitions: Definitions, *, timeout: Optional[float] = None) -> Plan:
        """See :meth:`quiver_client.Client.plan`."""
        return await self._run(self._plan_call(definitions), timeout)

    async def apply(
        self,
        definitions: Definitions,
        expected_version: Optional[int] = None,
        *,
        applied_by: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> ApplyResult:
        """See :meth:`quiver_client.Client.apply`. Never retried."""
        documents = self._documents(definitions)
        if expected_version is None:
            expected_version = _calls.current_version(await self.history(timeout=timeout))
        return await self._run(self._apply_call(documents, expected_version, applied_by), timeout)
