"""Errors: one class per status code the Quiver server answers with.

Every gRPC status and every Arrow Flight error becomes a :class:`QuiverError` (or the
subclass for its code) carrying the status code and the server's own message, which says
what to fix. The server's table of codes is in the repository README ("Server" section).
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Type

import grpc

__all__ = [
    "QuiverError",
    "InvalidArgument",
    "NotFound",
    "Unauthenticated",
    "PermissionDenied",
    "Unavailable",
    "Conflict",
    "ResourceExhausted",
    "DeadlineExceeded",
    "FailedPrecondition",
    "JobFailed",
]


class QuiverError(Exception):
    """A call to Quiver failed.

    Attributes:
        code: the gRPC status code of the answer (``grpc.StatusCode.NOT_FOUND``, ...).
        message: the server's message (or the client's, for a request it refused to send).
    """

    default_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.message: str = message
        self.code: grpc.StatusCode = code if code is not None else self.default_code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(QuiverError, ValueError):
    """Bad input: invalid definitions, a missing or mistyped key or column, a bad spine."""

    default_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(QuiverError):
    """An unknown object: feature view, service, feature, registry version, job or ticket."""

    default_code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(QuiverError):
    """No token, or a token the server does not know."""

    default_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(QuiverError):
    """The token's role is too low for the call (e.g. a reader token pushing)."""

    default_code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(QuiverError):
    """The server, or a store behind it, cannot answer now; retrying later may work."""

    default_code = grpc.StatusCode.UNAVAILABLE


class Conflict(QuiverError):
    """An apply lost the compare-and-swap: the registry moved past ``expected_version``."""

    default_code = grpc.StatusCode.ABORTED


class ResourceExhausted(QuiverError):
    """Over a server limit (message size, values per read, concurrent calls, memory)."""

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(QuiverError):
    """The call's deadline passed, or an upload stalled."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPrecondition(QuiverError):
    """Nothing applied yet, a view busy in another job, or data that cannot work."""

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class JobFailed(QuiverError):
    """A materialization job finished in state FAILED (no call failed: ``code`` is UNKNOWN).

    Attributes:
        job: the job's final status (a :class:`quiver_client.JobStatus`).
    """

    def __init__(self, message: str, job: object) -> None:
        super().__init__(message)
        self.job = job


_BY_CODE: Dict[grpc.StatusCode, Type[QuiverError]] = {
    cls.default_code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
        Conflict,
        ResourceExhausted,
        DeadlineExceeded,
        FailedPrecondition,
    )
}

_CODE_BY_NAME: Dict[str, grpc.StatusCode] = {c.name: c for c in grpc.StatusCode}


def error_for(code: grpc.StatusCode, message: str) -> QuiverError:
    """The error of the class that goes with ``code``."""
    return _BY_CODE.get(code, QuiverError)(message, code)


def from_rpc_error(error: grpc.RpcError) -> QuiverError:
    """A gRPC error (sync or asyncio) as a :class:`QuiverError`."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    return error_for(code, details or str(error))


# pyarrow.flight folds several gRPC codes into one Arrow status (ABORTED, DATA_LOSS -> IOError;
# RESOURCE_EXHAUSTED, FAILED_PRECONDITION -> Invalid), but its text keeps the real code:
# "Flight returned <kind> error, with message: <server message>. gRPC client debug context:
# <CODE>:..." (recent gRPC) or "... debug context: UNKNOWN:Error received from peer ...
# {..., grpc_status:5, ...}" (the older gRPC inside pyarrow 16).
_FLIGHT_STATUS_NUMBER = re.compile(r"grpc_status:(\d+)")
_FLIGHT_STATUS_NAME = re.compile(r"gRPC client debug context: ([A-Z_]+):")
_FLIGHT_MESSAGE = re.compile(r"with message: (.*?)\. gRPC client debug context:", re.DOTALL)
_CODE_BY_NUMBER: Dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


def _flight_code_in_text(text: str) -> Optional[grpc.StatusCode]:
    number = _FLIGHT_STATUS_NUMBER.search(text)
    if number:
        return _CODE_BY_NUMBER.get(int(number.group(1)))
    name = _FLIGHT_STATUS_NAME.search(text)
    code = _CODE_BY_NAME.get(name.group(1)) if name else None
    return None if code == grpc.StatusCode.UNKNOWN else code


def _flight_code_by_type(error: BaseException) -> grpc.StatusCode:
    import pyarrow as pa
    import pyarrow.flight as flight

    by_type = (
        (flight.FlightUnavailableError, grpc.StatusCode.UNAVAILABLE),
        (flight.FlightUnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
        (flight.FlightUnauthorizedError, grpc.StatusCode.PERMISSION_DENIED),
        (flight.FlightTimedOutError, grpc.StatusCode.DEADLINE_EXCEEDED),
        (flight.FlightCancelledError, grpc.StatusCode.CANCELLED),
        (flight.FlightInternalError, grpc.StatusCode.INTERNAL),
        (pa.ArrowKeyError, grpc.StatusCode.NOT_FOUND),
        (pa.ArrowNotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
        (pa.ArrowInvalid, grpc.StatusCode.INVALID_ARGUMENT),
    )
    for cls, code in by_type:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.UNKNOWN


def from_flight_error(error: BaseException) -> QuiverError:
    """An error raised by ``pyarrow.flight`` as a :class:`QuiverError`."""
    text = str(error)
    code = _flight_code_in_text(text) or _flight_code_by_type(error)
    said = _FLIGHT_MESSAGE.search(text)
    return error_for(code, said.group(1) if said else text)
