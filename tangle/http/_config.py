"""How the HTTP API serves one node (`ApiConfig`), and what it needs from the gossip layer
(`PeerAdmin`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tangle.errors import InvalidFieldError
from tangle.protocol.bech32 import DEVNET, Network

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiConfig:
    """How the API serves one node."""

    network: Network = DEVNET
    """Whose bech32m prefix addresses are answered with (and accepted with, besides hex)."""
    admin_token: str | None = None
    """Bearer token of the admin endpoints; None: they do not exist (404)."""
    pow_per_minute: int = 6
    """Proofs-of-work one client address may ask for per minute (also the burst size)."""
    pow_concurrency: int = 2
    """Proofs-of-work the node runs at once, for all clients."""
    pow_threads: int = 1
    """Threads each proof-of-work search uses (capped at Numba's pool)."""
    past_proofs_per_minute: int = 10
    """Earlier registry trees one client address may have rebuilt per minute (`?at=` of
    `GET /api/v1/devices/{id}`; also the burst size)."""
    max_event_streams: int = 256
    """Event streams served at once."""
    max_event_streams_per_client: int = 8
    """Event streams served at once to one client address."""
    event_history: int = 64
    """Milestones whose events a reconnecting stream is sent again (`Last-Event-ID`)."""
    event_buffer: int = 64
    """Milestones an event stream may fall behind before the node drops it."""
    keepalive_s: float = 15.0
    """Seconds without an event after which a stream sends a keep-alive comment."""
    health_window_s: float = 60.0
    """The node is healthy while its confirmed milestone is at most this old."""
    latency_tracked: int = 100_000
    """Unconfirmed submitted messages remembered for the latency histogram."""

    def __post_init__(self) -> None:
        if self.admin_token is not None and not self.admin_token:
            raise InvalidFieldError("ApiConfig.admin_token", "must not be empty")
        for name in (
            "pow_per_minute",
            "pow_concurrency",
            "pow_threads",
            "past_proofs_per_minute",
            "max_event_streams",
            "max_event_streams_per_client",
            "event_history",
        ):
            if getattr(self, name) < 1:
                raise InvalidFieldError(f"ApiConfig.{name}", "must be at least 1")
        if self.event_buffer < 1 or self.latency_tracked < 1:
            raise InvalidFieldError("ApiConfig", "buffers must hold at least 1")
        if not (self.keepalive_s > 0 and self.health_window_s > 0):
            raise InvalidFieldError("ApiConfig", "intervals must be positive")


class PeerAdmin(Protocol):
    """What the admin endpoints need from the gossip layer. Peers are rendered as JSON objects:
    the mappings' values may be str, int, float, bool, None, bytes (as hex) or nested lists and
    mappings of those; anything else is rendered with `str`."""

    def peers(self) -> Sequence[Mapping[str, object]]:
        """One mapping per peer: at least an `"id"` the DELETE route accepts, `"outbound"`
        (True for a configured peer this node dials) and `"connected"` (True while a connection
        with it is up), by convention."""
        ...

    async def add_peer(self, host: str, port: int) -> Mapping[str, object]:
        """Add (and connect to) a peer; return it as `peers` would. Raise `ValueError` with a
        message for a peer that cannot be added (duplicate, refused address)."""
        ...

    async def remove_peer(self, peer: str) -> bool:
        """Disconnect and forget `peer` (its id); False if there is no such peer."""
        ...

    async def publish(self, raw: bytes) -> None:
        """Push a message submitted through this API to every peer."""
        ...

    def gossip_counters(self) -> Mapping[str, float]:
        """Gossip figures for `/metrics`, exposed as `tangle_gossip_<name>`, named as Prometheus
        wants (`received_bytes_total`: the unit, then `_total` for a counter; ratios are left
        to PromQL); counters end in `_total`, the rest are gauges."""
        ...
