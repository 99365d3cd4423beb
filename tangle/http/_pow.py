"""Limits on the proof-of-work the node does for small devices (`POST /api/v1/messages/pow`)."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

from tangle.node.token_bucket import ClientBuckets

from ._request import ApiError

if TYPE_CHECKING:
    from collections.abc import Iterator


class PowLimits:
    """Per client: one search in flight and a token bucket of `per_minute`; for the node: at most
    `concurrency` searches. Time is the caller's (trio's clock)."""

    __slots__ = ("_buckets", "_concurrency", "_in_flight")

    def __init__(self, per_minute: int, concurrency: int, max_clients: int = 10_000) -> None:
        self._concurrency = concurrency
        self._buckets = ClientBuckets(per_minute, max_clients)
        self._in_flight: set[str] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @contextlib.contextmanager
    def admit(self, client: str, now: float) -> Iterator[None]:
        """Hold a search for `client`, or raise a 429 `ApiError` saying when to retry."""
        if client in self._in_flight:
            raise ApiError("pow_in_flight", "one proof-of-work at a time", {"Retry-After": "1"})
        if len(self._in_flight) >= self._concurrency:
            raise ApiError("pow_capacity", "the node is busy", {"Retry-After": "1"})
        wait = self._buckets.take(client, now)
        if wait > 0:
            raise ApiError(
                "pow_rate_limited",
                f"{self._buckets.per_minute} proofs-of-work a minute",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        self._in_flight.add(client)
        try:
            yield
        finally:
            self._in_flight.discard(client)
