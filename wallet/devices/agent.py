"""The device side of the registry: register at start-up, update when the attributes change,
rotate keys; and number and sign the device's readings.

A `DeviceAgent` builds the registry records `tangle.protocol.device` defines, signs them with
the device's key (and the signers that must vouch: the maker and operators for a registration,
an issuer for a rotation), and hands them to a node through the wallet's `NodeClient`, which
does the proof-of-work. Before each record it reads the device's entry from the node, so the
serial it uses is above the last the registry applied (a status change by an operator moves it
too), and a start-up or update that would change nothing sends nothing. A record is applied, or
refused by a named conflict, when a milestone confirms it (the node's message metadata).

Readings: `reading` numbers them from the counter given (persist `counter` across restarts;
a counter that goes back makes the gateway refuse the readings as replays).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U64_MAX
from tangle.protocol.device import (
    NO_GATEWAY,
    Capability,
    DeviceId,
    Register,
    RotateKey,
    Update,
    device_id_of,
    sign_record,
)
from tangle.protocol.transaction import address_of
from wallet.errors import RejectedError

from .errors import NotRegisteredError
from .reading import Form, Reading, encode_signed, sign_reading

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.ledger.registry import DeviceEntry
    from tangle.protocol.ids import MessageId, PublicKey
    from tangle.protocol.signature import Signer
    from wallet.client import NodeClient

    from .sealed import StreamKeys


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """What a device registers with."""

    maker: PublicKey
    """The maker's issuer key."""
    model: bytes
    """The model name (at most 64 bytes)."""
    attributes_hash: bytes
    """H of the device's attribute document (kept off-ledger)."""
    uri: bytes = b""
    """Where that document lives (at most 200 bytes)."""
    gateway: DeviceId | None = None
    """For a constrained device, the gateway device it reaches the ledger through."""


class DeviceAgent:
    """One device's registry records and readings."""

    __slots__ = ("_client", "_key", "counter", "device_id", "network_id")

    def __init__(
        self,
        client: NodeClient,
        *,
        network_id: int,
        key: Signer,
        device_id: DeviceId | None = None,
        counter: int = 0,
    ) -> None:
        """`key` is the device's current key; `device_id` defaults to the id of a device that
        registered with it (pass it after a rotation); `counter` is the last reading's."""
        self._client = client
        self._key = key
        self.network_id = network_id
        self.device_id = device_id if device_id is not None else device_id_of(key.public_key)
        self.counter = counter

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key

    async def entry(self) -> DeviceEntry | None:
        """The device's entry at the node's confirmed milestone."""
        found = await self._client.device(self.device_id)
        return None if found is None else found.entry

    async def _current(self) -> DeviceEntry:
        entry = await self.entry()
        if entry is None:
            raise NotRegisteredError(self.device_id)
        return entry

    async def register(self, profile: Profile, endorsers: Sequence[Signer]) -> MessageId:
        """Send the registration of this device, signed by its key and by `endorsers` (the
        maker and the operators the network's policy asks for)."""
        key = self._key.public_key
        body = Register(
            device_key=key,
            address=address_of(key),
            maker=profile.maker,
            model=profile.model,
            capability=Capability.FULL if profile.gateway is None else Capability.CONSTRAINED,
            gateway=NO_GATEWAY if profile.gateway is None else profile.gateway,
            attributes_hash=profile.attributes_hash,
            uri=profile.uri,
        )
        record = sign_record(self.network_id, body, [self._key, *endorsers])
        return await self._client.submit_pow(record)

    async def start(self, profile: Profile, endorsers: Sequence[Signer]) -> MessageId | None:
        """At start-up: register if the registry does not know the device, else update its
        attributes if they changed; the message sent, or None if nothing needed sending."""
        entry = await self.entry()
        if entry is None:
            return await self.register(profile, endorsers)
        return await self.update(profile.attributes_hash, profile.uri)

    async def update(self, attributes_hash: bytes, uri: bytes) -> MessageId | None:
        """Record new attributes (signed by the device's key); None if they are unchanged."""
        entry = await self._current()
        if (entry.attributes_hash, entry.uri) == (attributes_hash, uri):
            return None
        body = Update(
            device_id=self.device_id,
            serial=entry.serial + 1,
            attributes_hash=attributes_hash,
            uri=uri,
        )
        return await self._client.submit_pow(sign_record(self.network_id, body, [self._key]))

    async def rotate(self, new_key: Signer, issuer: Signer) -> MessageId | None:
        """Move the device to `new_key`: signed by the current key, the new one and an admitted
        issuer. The agent signs with the new key from now on; the message sent, or None when
        the rotation was attached already by an earlier try.

        A call that fails after its request may have reached the node (`NodeUnavailableError`
        with `outcome_unknown`: the answer was lost) leaves the agent on its current key, as the
        rotation may or may not apply: call it again with the same keys. The record it builds is
        the same bytes (the same serial, and ed25519 signatures are deterministic), so the node
        refuses it as `duplicate_payload` if an earlier try attached it, and the registry
        applies one rotation; once one is applied, the entry holds `new_key` and nothing is
        sent. Either way the agent takes the new key."""
        entry = await self._current()
        if entry.key == new_key.public_key:
            self._key = new_key
            return None
        body = RotateKey(
            device_id=self.device_id,
            serial=entry.serial + 1,
            new_key=new_key.public_key,
            new_address=address_of(new_key.public_key),
        )
        record = sign_record(self.network_id, body, [self._key, new_key, issuer])
        sent: MessageId | None
        try:
            sent = await self._client.submit_pow(record)
        except RejectedError as refused:
            if refused.code != "duplicate_payload":
                raise
            sent = None
        self._key = new_key
        return sent

    def reading(
        self, data: bytes, *, timestamp_ms: int, stream: int = 0, sealed: StreamKeys | None = None
    ) -> bytes:
        """The next reading, signed: raw bytes for a gateway. With `sealed` (the stream's keys),
        `data` is sealed under the stream's current period key first."""
        if self.counter >= U64_MAX:
            raise InvalidFieldError("DeviceAgent.counter", "exhausted")
        self.counter += 1
        content = Reading(
            network_id=self.network_id,
            device_id=self.device_id,
            counter=self.counter,
            timestamp_ms=timestamp_ms,
            stream=stream,
            form=Form.PLAIN,
            data=b"" if sealed is not None else data,
        )
        if sealed is not None:
            content = sealed.seal(content, data)
        return encode_signed(sign_reading(content, self._key))
