"""A gateway: verifies signed readings from the devices it serves, gathers them into batches
and anchors each batch's root in one tagged-data message.

`Gateway` is a sans-I/O core: raw readings in, `Batch`es out. Its state is bounded: one entry
per device it serves (a key and the last counter accepted, at most `max_devices`) and the open
batch (at most `max_batch` readings of at most `MAX_READING_SIZE` bytes each). A reading is
checked in this order, and a refused one changes nothing:

1. framing (`ReadingFormatError`), 2. network (`ReadingNetworkError`), 3. a device the gateway
serves (`UnknownDeviceError`), 4. a counter above the last accepted (`ReadingReplayError`),
5. room in the open batch (`GatewayFullError`), 6. the device's signature
(`ReadingSignatureError`).

The counter is advanced only after the signature checks, so a forged reading cannot burn a
device's counters. `anchor_batch` is the I/O adapter: it hands the anchor payload to a node
through the wallet's `NodeClient`, which does the proof-of-work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError
from tangle.protocol.device import DeviceStatus

from .batch import MAX_BATCH, Batch, anchor_payload, leaf_of
from .errors import (
    DeviceDataError,
    GatewayFullError,
    ReadingNetworkError,
    ReadingReplayError,
    UnknownDeviceError,
)
from .reading import DEVICE_ID_SIZE, read_header, verify_raw

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tangle.ledger.registry import DeviceEntry
    from tangle.protocol.ids import MessageId, PublicKey
    from wallet.client import NodeClient

DEFAULT_MAX_DEVICES: Final = 100_000


@dataclass(slots=True)
class _Device:
    key: PublicKey
    last_counter: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """A reading taken into the open batch."""

    index: int
    """Its position in the batch that `seal` will return."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """A reading the gateway refused, with the reason."""

    error: DeviceDataError
    """The named error."""


@dataclass(slots=True, kw_only=True)
class GatewayStats:
    """Counts since the gateway started."""

    accepted: int = 0
    """Readings taken into a batch."""
    refused: dict[str, int] = field(default_factory=dict)
    """Refused readings by error class name."""
    batches: int = 0
    """Batches sealed."""


class Gateway:
    """Verifies readings for the devices it serves and aggregates them into batches."""

    __slots__ = (
        "_devices",
        "_leaves",
        "_readings",
        "max_batch",
        "max_devices",
        "network_id",
        "stats",
    )

    def __init__(
        self,
        *,
        network_id: int,
        max_batch: int = 4096,
        max_devices: int = DEFAULT_MAX_DEVICES,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH:
            raise InvalidFieldError("Gateway.max_batch", f"outside 1..{MAX_BATCH}")
        if max_devices < 1:
            raise InvalidFieldError("Gateway.max_devices", "must be positive")
        self.network_id = network_id
        self.max_batch = max_batch
        self.max_devices = max_devices
        self.stats = GatewayStats()
        self._devices: dict[bytes, _Device] = {}
        self._readings: list[bytes] = []
        self._leaves: list[bytes] = []

    # -- the devices served (from the registry) ---------------------------------------------

    def serve(self, device_id: bytes, public_key: PublicKey, *, last_counter: int = 0) -> None:
        """Serve `device_id` with `public_key` (a new device, or a rotated key: the counter
        carries over, so a reading signed before the rotation cannot be replayed after it)."""
        if len(device_id) != DEVICE_ID_SIZE:
            raise InvalidFieldError("Gateway.serve device_id", f"must be {DEVICE_ID_SIZE} bytes")
        known = self._devices.get(device_id)
        if known is not None:
            known.key = public_key
            known.last_counter = max(known.last_counter, last_counter)
            return
        if len(self._devices) >= self.max_devices:
            raise GatewayFullError("device table", self.max_devices)
        self._devices[bytes(device_id)] = _Device(key=public_key, last_counter=last_counter)

    def stop_serving(self, device_id: bytes) -> None:
        """Forget a device (revoked, quarantined or moved to another gateway)."""
        self._devices.pop(device_id, None)

    def follow(self, entry: DeviceEntry, index: int) -> bool:
        """Serve the device, or stop, as its registry `entry` at milestone `index` says: an
        active device under no quarantine is served with its current key (after a rotation, the
        new one); a suspended, revoked or quarantined one is forgotten. True if served."""
        if entry.status == DeviceStatus.ACTIVE and not entry.quarantined_at(index):
            self.serve(entry.device_id, entry.key)
            return True
        self.stop_serving(entry.device_id)
        return False

    def last_counter(self, device_id: bytes) -> int | None:
        """The last counter accepted from `device_id`, None if it is not served."""
        device = self._devices.get(device_id)
        return None if device is None else device.last_counter

    # -- readings ----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Readings in the open batch."""
        return len(self._readings)

    def accept(self, raw: bytes) -> Accepted:
        """Check one raw signed reading and add it to the open batch (order in the module
        docstring); a refused reading raises and leaves the gateway as it was."""
        header = read_header(raw)
        if header.network_id != self.network_id:
            raise ReadingNetworkError(self.network_id, header.network_id)
        device = self._devices.get(header.device_id)
        if device is None:
            raise UnknownDeviceError(header.device_id)
        if header.counter <= device.last_counter:
            raise ReadingReplayError(header.device_id, header.counter, device.last_counter)
        index = len(self._readings)
        if index >= self.max_batch:
            raise GatewayFullError("open batch", self.max_batch)
        verify_raw(raw, device.key)
        device.last_counter = header.counter
        self._readings.append(raw)
        self._leaves.append(leaf_of(raw))
        self.stats.accepted += 1
        return Accepted(index=index)

    def accept_many(self, raws: Iterable[bytes]) -> list[Accepted | Refused]:
        """`accept` each reading in turn; one refused reading does not stop the others."""
        outcomes: list[Accepted | Refused] = []
        refused = self.stats.refused
        for raw in raws:
            try:
                outcomes.append(self.accept(raw))
            except DeviceDataError as exc:
                name = type(exc).__name__
                refused[name] = refused.get(name, 0) + 1
                outcomes.append(Refused(error=exc))
        return outcomes

    def seal(self) -> Batch | None:
        """Close the open batch and return it (None when it is empty); a new one opens."""
        if not self._readings:
            return None
        batch = Batch.of(self.network_id, self._readings, self._leaves)
        self._readings = []
        self._leaves = []
        self.stats.batches += 1
        return batch


async def anchor_batch(client: NodeClient, batch: Batch) -> MessageId:
    """Anchor `batch` in one tagged-data message through `client` (the node does the
    proof-of-work); the message's id."""
    return await client.submit_pow(anchor_payload(batch.anchor))
