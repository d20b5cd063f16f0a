"""Training sets over Arrow Flight: the spine goes up with DoPut (streamed in record
batches, never converted row by row), the set comes back with DoGet of the ticket the
server answers with."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Dict, Optional

import pyarrow as pa
import pyarrow.flight as flight

from . import _retry
from ._errors import QuiverError, from_flight_error
from ._results import TrainingSet
from ._transport import Endpoint

__all__ = ["TrainingSets"]

# Rows per record batch sent; keeps each Flight message well below the server's message
# size limit for ordinary spines.
_UPLOAD_BATCH_ROWS = 64 * 1024


class TrainingSets:
    """The Flight side of one client. Thread-safe: the Flight client is made on first use."""

    def __init__(self, endpoint: Endpoint, policy: _retry.RetryPolicy) -> None:
        self._endpoint = endpoint
        self._policy = policy
        self._client: Optional[flight.FlightClient] = None
        self._lock = threading.Lock()

    def _flight(self) -> flight.FlightClient:
        with self._lock:
            if self._client is None:
                kwargs: Dict[str, Any] = {"generic_options": self._endpoint.flight_options()}
                if self._endpoint.root_certificates is not None:
                    kwargs["tls_root_certs"] = self._endpoint.root_certificates
                self._client = flight.FlightClient(self._endpoint.flight_location(), **kwargs)
            return self._client

    def _options(self, timeout: float) -> flight.FlightCallOptions:
        return flight.FlightCallOptions(timeout=timeout, headers=self._endpoint.flight_headers())

    def build(self, spine: pa.Table, command: bytes, timeout: float) -> TrainingSet:
        """Uploads ``spine`` (DoPut, never retried), then downloads the set (DoGet,
        retried after UNAVAILABLE), all within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        answer = self._put(spine, command, timeout)
        ticket = answer.get("ticket")
        if not isinstance(ticket, str):
            raise QuiverError(f"the server's DoPut answer has no ticket: {answer!r}")
        table = self.fetch(ticket, max(deadline - time.monotonic(), 0.001))
        return TrainingSet(table, ticket, answer.get("manifest") or {})

    def _put(self, spine: pa.Table, command: bytes, timeout: float) -> Dict[str, Any]:
        descriptor = flight.FlightDescriptor.for_command(command)
        try:
            writer, reader = self._flight().do_put(descriptor, spine.schema, self._options(timeout))
            try:
                writer.write_table(spine, max_chunksize=_UPLOAD_BATCH_ROWS)
                writer.done_writing()
                result = reader.read()
            finally:
                # The server's status (a refused spine, an unknown feature) surfaces here.
                writer.close()
        except (flight.FlightError, pa.ArrowException) as e:
            raise from_flight_error(e) from None
        if result is None:
            raise QuiverError("the server ended the upload without an answer")
        answer: Dict[str, Any] = json.loads(result.to_pybytes())
        return answer

    def fetch(self, ticket: str, timeout: float) -> pa.Table:
        """DoGet of a ticket: the training set as a table (retried after UNAVAILABLE)."""

        def attempt(left: float) -> pa.Table:
            try:
                return self._flight().do_get(flight.Ticket(ticket.encode()), self._options(left)).read_all()
            except (flight.FlightError, pa.ArrowException) as e:
                raise from_flight_error(e) from None

        return _retry.call("DoGet", attempt, timeout=timeout, idempotent=True, policy=self._policy)

    def close(self) -> None:
        """Closes the Flight client."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
