"""A session's meter data committed to the ledger, so a driver can check the energy billed
without trusting the CPO.

When a session is billed, the CSMS encodes its record (the bill, every meter reading with its
signed meter value, in seq order, and for a roaming driver's session the hash of the OCPI CDR
sent to the eMSP, `ocpi_cdr.cdr_hash`) canonically, and attaches the BLAKE2b-256 of the record
to the ledger in a tagged-data message (tag `COMMIT_TAG`), through the node's HTTP API (the
node does the proof-of-work). The back office serves the record; the driver recomputes its
hash, finds the message on the ledger, and checks the signed readings with the meter's public
key (`verify.py`).

Record encoding (little-endian; strings UTF-8 with a u16 length):

```
  str  charge_point
  str  transaction_id
  u64  energy_wh      u64  duration_s      u64  amount
  u32  readings
  per reading:  u64 seq_no, u8 has_register, u64 register_wh, str signed_meter_value ("" if none)
  u8   has_cdr         [32] cdr_hash (present only if has_cdr = 1)
```
"""

from __future__ import annotations

import itertools
import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import TangleError
from tangle.protocol.ids import blake2b_256
from tangle.protocol.payload import TaggedData
from wallet.errors import WalletError

from .errors import ChargingError, SignedMeterValueError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tangle.protocol.ids import MessageId
    from wallet.client import NodeClient

    from .session import TransactionEvent
    from .store import Bill, CsmsStore

COMMIT_TAG: Final = b"tanglepay/charging/session/v2"
LOG: Final = logging.getLogger(__name__)


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<H", len(raw)) + raw


def session_record(
    bill: Bill, events: list[TransactionEvent], cdr_hash: bytes | None = None
) -> bytes:
    """The canonical record of a billed session (see the module docstring)."""
    readings = sorted((e for e in events if e.register_wh is not None), key=lambda e: e.seq_no)
    parts = [
        _text(bill.charge_point),
        _text(bill.transaction_id),
        struct.pack("<QQQI", bill.energy_wh, bill.duration_s, bill.amount, len(readings)),
    ]
    for e in readings:
        parts.append(struct.pack("<QBQ", e.seq_no, 1, e.register_wh or 0))
        parts.append(_text(e.signed_meter_value or ""))
    if cdr_hash is not None and len(cdr_hash) != 32:
        raise SignedMeterValueError("session record", "a CDR hash is 32 bytes")
    parts.append(b"\x00" if cdr_hash is None else b"\x01" + cdr_hash)
    return b"".join(parts)


MAX_READINGS: Final = 100_000
"""The most readings a record read back may hold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One register reading of a session record."""

    seq_no: int
    register_wh: int
    signed_meter_value: str
    """"" if the charger sent none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A session record read back (`parse_session_record`)."""

    charge_point: str
    transaction_id: str
    energy_wh: int
    duration_s: int
    amount: int
    readings: tuple[Reading, ...]
    cdr_hash: bytes | None = None
    """The hash of the session's OCPI CDR (a roaming driver's session)."""


class _Reader:
    __slots__ = ("at", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw, self.at = raw, 0

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.raw):
            raise SignedMeterValueError("session record", "truncated")
        values = struct.unpack_from(fmt, self.raw, self.at)
        self.at += size
        return values

    def text(self) -> str:
        (length,) = self.take("<H")
        if self.at + length > len(self.raw):
            raise SignedMeterValueError("session record", "truncated")
        raw = self.raw[self.at : self.at + length]
        self.at += length
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise SignedMeterValueError("session record", "a string is not UTF-8") from None


def parse_session_record(raw: bytes) -> SessionRecord:
    """The record `session_record` wrote, strictly (`SignedMeterValueError` otherwise): what a
    driver reads back before checking it; `session_record` of it gives the same bytes."""
    r = _Reader(raw)
    charge_point, transaction_id = r.text(), r.text()
    energy_wh, duration_s, amount, count = r.take("<QQQI")
    if count > MAX_READINGS:
        raise SignedMeterValueError("session record", f"more than {MAX_READINGS} readings")
    readings = []
    for _ in range(count):
        seq_no, has_register, register_wh = r.take("<QBQ")
        if has_register != 1:
            raise SignedMeterValueError("session record", "a reading without a register")
        readings.append(
            Reading(seq_no=seq_no, register_wh=register_wh, signed_meter_value=r.text())
        )
    (has_cdr,) = r.take("<B")
    if has_cdr > 1:
        raise SignedMeterValueError("session record", "has_cdr is neither 0 nor 1")
    cdr_hash = bytes(r.take("<32s")[0]) if has_cdr else None
    if r.at != len(raw):
        raise SignedMeterValueError("session record", "trailing bytes")
    if any(a.seq_no >= b.seq_no for a, b in itertools.pairwise(readings)):
        raise SignedMeterValueError("session record", "readings not in seq order")
    return SessionRecord(
        charge_point=charge_point,
        transaction_id=transaction_id,
        energy_wh=energy_wh,
        duration_s=duration_s,
        amount=amount,
        readings=tuple(readings),
        cdr_hash=cdr_hash,
    )


def session_digest(record: bytes) -> bytes:
    """What is committed to the ledger for `record`."""
    return blake2b_256(COMMIT_TAG, record)


class LedgerCommitter:
    """The CSMS's `on_bill` hook: commits each billed session's digest through a node; with
    `cdr_hash` (`RoamingCpo.cdr_hash_of`), a roaming session's record carries its CDR's hash."""

    __slots__ = ("cdr_hash", "node", "store")

    def __init__(
        self,
        store: CsmsStore,
        node: NodeClient,
        cdr_hash: Callable[[Bill], Awaitable[bytes | None]] | None = None,
    ) -> None:
        self.store = store
        self.node = node
        self.cdr_hash = cdr_hash

    async def record(self, bill: Bill) -> bytes:
        """The session record of `bill` (what the back office serves)."""
        key = (bill.charge_point, bill.transaction_id)
        cdr = None if self.cdr_hash is None else await self.cdr_hash(bill)
        return session_record(bill, await self.store.events(key), cdr)

    async def __call__(self, bill: Bill) -> None:
        """Commit `bill`'s session; a node that fails is logged (the bill stands, and the
        commitment can be made again from the store)."""
        key = (bill.charge_point, bill.transaction_id)
        try:
            record = await self.record(bill)
        except ChargingError as e:
            LOG.warning("session %s/%s has no record: %r", *key, e)
            return
        digest = session_digest(record)
        try:
            message: MessageId = await self.node.submit_pow(TaggedData(tag=COMMIT_TAG, data=digest))
        except (WalletError, TangleError) as e:
            LOG.warning("session %s/%s not committed: %r", *key, e)
            return
        await self.store.save_commitment(key, digest, bytes(message))
