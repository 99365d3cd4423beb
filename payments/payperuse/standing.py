"""Whether a payer is a device cut off by a quarantine: what the paywall's `Cashier` asks before
it credits a payment (`QuarantinedPayerError`, `403 quarantined_device`).

A channel's payer is a key. `LedgerDevices` asks a node for the device whose current key it is
(`GET /api/v1/keys/{key}/device`, `NodeClient.device_by_key`: a device that rotated its key is
found by its new key) and takes the quarantine in force at the node's confirmed milestone. A key
that is no registered device's current key stands, a key a device rotated away from included
(nothing else is looked up: not `device_id_of(key)`). Answers are cached per payer for `ttl_s`
(a quarantine applied meanwhile is seen at most that late), at most `max_entries` of them (the
oldest goes first), so a flood of payments costs the node one request per payer per `ttl_s`.
The clock is the caller's (anyio's by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

    from tangle.protocol.ids import PublicKey
    from wallet.client import NodeClient

DEFAULT_TTL_S: Final = 5.0
DEFAULT_MAX_ENTRIES: Final = 10_000


class DeviceStanding(Protocol):
    """Where the cashier learns whether a payer is a quarantined device."""

    async def quarantined_until(self, payer: PublicKey) -> int | None:
        """The last milestone index of the quarantine that holds for the device `payer` is,
        or None when no quarantine holds (or `payer` is no device)."""
        ...


class LedgerDevices:
    """The `DeviceStanding` of a real network: a node's registry, cached (module docstring)."""

    __slots__ = ("_cache", "_client", "_clock", "max_entries", "ttl_s")

    def __init__(
        self,
        client: NodeClient,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = anyio.current_time,
    ) -> None:
        self._client = client
        self.ttl_s = ttl_s
        self.max_entries = max(1, max_entries)
        self._clock = clock
        self._cache: dict[PublicKey, tuple[int | None, float]] = {}
        """payer -> (its answer, when it expires), oldest first."""

    def __len__(self) -> int:
        return len(self._cache)

    async def quarantined_until(self, payer: PublicKey) -> int | None:
        now = self._clock()
        cached = self._cache.get(payer)
        if cached is not None and now < cached[1]:
            return cached[0]
        found = await self._client.device_by_key(payer)
        until = None
        if found is not None:
            entry = found.entry
            if entry.quarantine is not None and entry.quarantined_at(found.ledger_index):
                until = entry.quarantine.expires_after
        self._cache.pop(payer, None)
        self._cache[payer] = (until, self._clock() + self.ttl_s)
        while len(self._cache) > self.max_entries:
            del self._cache[next(iter(self._cache))]
        return until
