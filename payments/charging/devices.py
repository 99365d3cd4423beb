"""Not serving quarantined devices: Authorize asks the device registry (issue #14) first.

A driver's id token may belong to a registered device (a car's own token: the operator knows it
as `token_devices`, since an OCPP id token is too short to carry a 32-byte device id), and the
channel it pays from is keyed by the payer's public key, which may be a device's current key.
`DeviceGate.check` looks the token's device up by id (`GET /api/v1/devices/{id}`,
`NodeClient.device`) and the payer key by key (`GET /api/v1/keys/{key}/device`,
`NodeClient.device_by_key`: a device that rotated its key is found by its new one, and by
nothing else), and refuses the token by name, `DeviceQuarantinedError` (OCPP status Blocked), if
one is under a quarantine in force at the node's confirmed milestone. A token that is no
registered device passes. A node that cannot answer refuses the token (`DeviceLookupError`,
status Invalid): a quarantine is a safety measure, so the gate fails closed.

`DeviceGate.guard(authorize)` wraps any authorizer (every token, roaming tokens); the
pay-as-you-charge authorizer (`payment.ChargePayments`) also checks its channel's payer key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from tangle.errors import TangleError
from wallet.errors import WalletError

from .errors import DeviceLookupError, DeviceQuarantinedError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from wallet._responses import RegisteredDevice

    from .log_limit import LogLimiter
    from .store import Binding

    DeviceLookup = Callable[[bytes], Awaitable[RegisteredDevice | None]]
    Authorizer = Callable[[str], Awaitable[Binding | None]]

LOG: Final = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceGate:
    """Refuses tokens whose device is quarantined (see the module docstring)."""

    lookup: DeviceLookup
    """A device's registry entry at the confirmed milestone, None if not registered."""
    lookup_key: DeviceLookup
    """The entry of the device whose current key is the one given, None if it is no device's."""
    log_limit: LogLimiter
    """Bounds the lines of a registry that does not answer: one per Authorize, and a charger
    decides how many it sends. The CSMS's (`Csms.log_limit`), which its tick flushes: a limiter
    of its own would never write the summary of a flood that stopped."""
    token_devices: Mapping[str, bytes] = field(default_factory=dict)
    """The device id each known device token belongs to."""

    async def check(self, id_token: str, payer_key: bytes | None = None) -> None:
        """Raise `DeviceQuarantinedError` if `id_token` or `payer_key` is a quarantined device,
        `DeviceLookupError` if the registry cannot be read."""
        lookups: list[tuple[DeviceLookup, bytes]] = []
        if id_token in self.token_devices:
            lookups.append((self.lookup, self.token_devices[id_token]))
        if payer_key is not None:
            lookups.append((self.lookup_key, payer_key))
        for lookup, subject in lookups:
            try:
                found = await lookup(subject)
            except (WalletError, TangleError) as e:
                self.log_limit.log(
                    LOG,
                    logging.WARNING,
                    "device registry",
                    "lookup failed",
                    "device %s not looked up: %r",
                    subject.hex(),
                    e,
                )
                raise DeviceLookupError(id_token, f"the registry did not answer: {e}") from None
            if found is not None and found.entry.quarantined_at(found.ledger_index):
                raise DeviceQuarantinedError(
                    id_token, bytes(found.entry.device_id), found.ledger_index
                )

    def guard(self, authorize: Authorizer) -> Authorizer:
        """`authorize`, refusing quarantined devices' tokens before it is asked."""

        async def guarded(id_token: str) -> Binding | None:
            await self.check(id_token)
            return await authorize(id_token)

        return guarded
