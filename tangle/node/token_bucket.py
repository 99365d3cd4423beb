"""A token bucket: the one rate limiter of the node (gossip serving budgets, proof-of-work
requests). Time is the caller's, so the bucket is sans-I/O and tests run on virtual time."""

from __future__ import annotations

from tangle.errors import InvalidFieldError


class TokenBucket:
    """`rate` tokens per second up to `burst`; a charge may overdraw it into debt."""

    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not (rate > 0 and burst > 0):
            raise InvalidFieldError("TokenBucket", "rate and burst must be positive")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._at = now

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def tokens(self, now: float) -> float:
        """The balance at `now` (negative while in debt)."""
        self._refill(now)
        return self._tokens

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now

    def charge(self, cost: float, now: float) -> float:
        """Spend `cost` tokens; return the balance left (negative: in debt)."""
        self._refill(now)
        self._tokens -= cost
        return self._tokens

    def ready_at(self) -> float:
        """When the balance is back to zero (now, if it is not in debt)."""
        return self._at + max(0.0, -self._tokens) / self._rate
