"""What the blocking and the asyncio client share: settings, and turning each method's
arguments into a call description (:mod:`quiver_client._calls`) or a Flight command."""

from __future__ import annotations

import getpass
import os
from typing import List, Optional, Sequence, Tuple

import pyarrow as pa

from . import _calls
from ._calls import Call
from ._convert import TableLike, plain_columns, to_arrow
from ._definitions import Definitions, read_documents
from ._errors import InvalidArgument
from ._models import ApplyResult, JobStatus, Plan, PushResult
from ._proto.quiver.v1 import registry_pb2
from ._results import OnlineFeatures
from ._retry import RetryPolicy
from ._time import TimeLike, to_ns
from ._transport import DEFAULT_MAX_MESSAGE_SIZE, Endpoint

__all__ = ["ClientBase", "DEFAULT_TARGET", "DEFAULT_TIMEOUT"]

DEFAULT_TARGET = "127.0.0.1:6566"
DEFAULT_TIMEOUT = 30.0


def _applied_by() -> str:
    """Who applies, as the CLI names them: QUIVER_USER, else the login name."""
    name = os.environ.get("QUIVER_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment (e.g. a bare container)
        return "python"


class ClientBase:
    """Settings and request building common to :class:`Client` and :class:`AsyncClient`."""

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
        if timeout <= 0:
            raise InvalidArgument(f"timeout must be positive seconds, not {timeout}")
        self._endpoint = Endpoint.parse(
            target,
            tls=tls,
            root_certificates=root_certificates,
            token=token or None,
            max_message_size=max_message_size,
        )
        self._timeout = float(timeout)
        self._retry = retry if retry is not None else RetryPolicy()

    @property
    def target(self) -> str:
        """The server's ``host:port``."""
        return self._endpoint.address

    def __repr__(self) -> str:
        auth = ", token=***" if self._endpoint.token else ""
        return f"{type(self).__name__}({self._endpoint.address!r}{auth}, timeout={self._timeout})"

    def _seconds(self, timeout: Optional[float]) -> float:
        seconds = self._timeout if timeout is None else float(timeout)
        if seconds <= 0:
            raise InvalidArgument(f"timeout must be positive seconds, not {timeout}")
        return seconds

    # Each `_x_call` turns a method's arguments into the call it makes.

    @staticmethod
    def _online_call(
        entities: TableLike,
        features: Optional[Sequence[str]],
        service: Optional[str],
        at: Optional[TimeLike],
    ) -> Call[OnlineFeatures]:
        columns = plain_columns(entities)
        rows = columns if columns is not None else to_arrow(entities, "entities")
        at_ns = 0 if at is None else to_ns(at, "at")
        return _calls.online_features(features, service, rows, at_ns)

    @staticmethod
    def _training_request(
        entity_df: TableLike,
        features: Optional[Sequence[str]],
        service: Optional[str],
        full_feature_names: bool,
        timestamp_column: str,
    ) -> Tuple[pa.Table, bytes]:
        command = _calls.training_set_command(features, service, full_feature_names, timestamp_column)
        return to_arrow(entity_df, "entity_df"), command

    @staticmethod
    def _push_call(feature_view: str, rows: pa.Table, to: str) -> Call[PushResult]:
        return _calls.push(feature_view, rows, to)

    @staticmethod
    def _window_call(start: TimeLike, end: TimeLike, views: Optional[Sequence[str]]) -> Call[JobStatus]:
        start_ns, end_ns = to_ns(start, "start"), to_ns(end, "end")
        if end_ns <= start_ns:
            raise InvalidArgument("materialize: end must be after start")
        return _calls.materialize_window(start_ns, end_ns, views)

    @staticmethod
    def _incremental_call(end: TimeLike, views: Optional[Sequence[str]]) -> Call[JobStatus]:
        return _calls.materialize_incremental(to_ns(end, "end"), views)

    @staticmethod
    def _plan_call(definitions: Definitions) -> Call[Plan]:
        return _calls.plan(read_documents(definitions))

    @staticmethod
    def _documents(definitions: Definitions) -> List[registry_pb2.YamlDocument]:
        return read_documents(definitions)

    @staticmethod
    def _apply_call(
        documents: List[registry_pb2.YamlDocument], expected_version: int, applied_by: Optional[str]
    ) -> Call[ApplyResult]:
        return _calls.apply(documents, expected_version, applied_by or _applied_by())
