"""Limits on the proof-of-work the node does for small devices (`POST /api/v1/messages/pow`)."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

from tangle.node.token_bucket import TokenBucket

from ._request import ApiError

if TYPE_CHECKING:
    from collections.abc import Iterator


class PowLimits:
    """Per client: one search in flight and a token bucket of `per_minute`; for the node: at most
    `concurrency` searches. Time is the caller's (trio's clock)."""

    __slots__ = ("_buckets", "_concurrency", "_in_flight", "_max_clients", "_per_minute")

    def __init__(self, per_minute: int, concurrency: int, max_clients: int = 10_000) -> None:
        self._per_minute = per_minute
        self._concurrency = concurrency
        self._max_clients = max_clients
        self._buckets: dict[str, TokenBucket] = {}
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
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = TokenBucket(self._per_minute / 60.0, float(self._per_minute), now)
        tokens = bucket.tokens(now)
        if tokens < 1.0:
            wait = (1.0 - tokens) / bucket.rate
            raise ApiError(
                "pow_rate_limited",
                f"{self._per_minute} proofs-of-work a minute",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        bucket.charge(1.0, now)
        self._buckets[client] = bucket
        if len(self._buckets) > self._max_clients:
            full = [c for c, b in self._buckets.items() if b.tokens(now) >= b.burst]
            for c in full:
                del self._buckets[c]
        self._in_flight.add(client)
        try:
            yield
        finally:
            self._in_flight.discard(client)
