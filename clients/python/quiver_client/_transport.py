"""Where and how to connect: the address, TLS, the bearer token, gRPC channel options, and
the Arrow Flight location on the same port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import grpc
import grpc.aio

__all__ = ["Endpoint"]

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
"""The server's default ``--max-message-size``; gRPC's own default receive limit (4 MiB) is
too small for large online reads."""

# While the server is away, gRPC waits between reconnection attempts; the defaults grow to
# two minutes, far longer than the retries of a call. Keep them short so a restarted server
# is found by the next retry.
_RECONNECT_OPTIONS: List[Tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass(frozen=True)
class Endpoint:
    """A Quiver server: ``host:port`` of its gRPC and Flight port, TLS or not, and the
    token sent with every call."""

    address: str
    tls: bool = False
    root_certificates: Optional[bytes] = None
    token: Optional[str] = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE

    @classmethod
    def parse(
        cls,
        target: str,
        *,
        tls: bool = False,
        root_certificates: Optional[bytes] = None,
        token: Optional[str] = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> "Endpoint":
        """An endpoint of ``host:port``, ``grpc://host:port`` or ``grpc+tls://host:port``
        (the last turns TLS on)."""
        for scheme, secure in (("grpc+tls://", True), ("grpc://", False)):
            if target.startswith(scheme):
                target, tls = target[len(scheme) :], tls or secure
        return cls(
            address=target,
            tls=tls,
            root_certificates=root_certificates,
            token=token,
            max_message_size=max_message_size,
        )

    def metadata(self) -> Tuple[Tuple[str, str], ...]:
        """gRPC metadata of every call: the bearer token, when there is one."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def channel_options(self) -> List[Tuple[str, int]]:
        """Options of the gRPC channel."""
        return [
            ("grpc.max_receive_message_length", self.max_message_size),
            ("grpc.max_send_message_length", self.max_message_size),
            *_RECONNECT_OPTIONS,
        ]

    def channel(self) -> grpc.Channel:
        """A new blocking gRPC channel."""
        if self.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
            return grpc.secure_channel(self.address, creds, options=self.channel_options())
        return grpc.insecure_channel(self.address, options=self.channel_options())

    def aio_channel(self) -> grpc.aio.Channel:
        """A new asyncio gRPC channel (to be made inside the event loop that uses it)."""
        if self.tls:
            creds = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
            return grpc.aio.secure_channel(self.address, creds, options=self.channel_options())
        return grpc.aio.insecure_channel(self.address, options=self.channel_options())

    def flight_location(self) -> str:
        """The Arrow Flight location of the same port."""
        return f"{'grpc+tls' if self.tls else 'grpc'}://{self.address}"

    def flight_headers(self) -> List[Tuple[bytes, bytes]]:
        """Arrow Flight call headers: the bearer token, when there is one."""
        return [(k.encode(), v.encode()) for k, v in self.metadata()]

    def flight_options(self) -> List[Tuple[str, int]]:
        """gRPC options of the Flight client's channel."""
        return list(_RECONNECT_OPTIONS)
