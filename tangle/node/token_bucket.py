"""A token bucket: the one rate limiter of the node (gossip serving budgets, proof-of-work
requests, rebuilding past registry trees), and one bucket per client (`ClientBuckets`). Time is
the caller's, so the bucket is sans-I/O and tests run on virtual time."""

from __future__ import annotations

from collections import OrderedDict

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


class ClientBuckets:
    """A `TokenBucket` of `per_minute` tokens a minute (also its burst) for each client (an
    address), at most `max_clients` held: past that the client charged longest ago is dropped
    (one a take, so a flood of new addresses costs O(1) each; a dropped client starts again
    with a full bucket, which by then is what most of the oldest hold)."""

    __slots__ = ("_buckets", "_max_clients", "_per_minute")

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self._per_minute = per_minute
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def per_minute(self) -> int:
        return self._per_minute

    def take(self, client: str, now: float) -> float:
        """Charge `client` one token and return 0.0; or, when it has none, charge nothing and
        return the seconds until it has one again."""
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = TokenBucket(self._per_minute / 60.0, float(self._per_minute), now)
        else:
            self._buckets.move_to_end(client)  # a client refused in debt stays held too
        tokens = bucket.tokens(now)
        if tokens < 1.0:
            return (1.0 - tokens) / bucket.rate
        bucket.charge(1.0, now)
        self._buckets[client] = bucket
        self._buckets.move_to_end(client)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return 0.0
