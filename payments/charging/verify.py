"""A driver checks the energy billed without trusting the CPO: `tanglepay charging
verify-session`.

Three checks, each a named failure (`SignedMeterValueError`):

1. the session record the back office serves (`GET /api/sessions/{cp}/{tx}/commitment`) hashes
   to the digest committed on the ledger: the tagged-data message (`COMMIT_TAG`) the CSMS names,
   read from a node the driver chooses (`check_ledger`);
2. every signed meter value in the record is signed by the meter's public key (OCMF, see
   `ocmf.py`) and reads the register the charger reported with it (`check_record`);
3. the billed energy is the difference between the first and last readings; when both are
   signed (`energy_proven`), the energy billed rests on the meter's signatures alone.

The record's amount is the CPO's price for that energy; the driver re-prices it with the
published tariff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import TangleError
from tangle.protocol.ids import MessageId
from tangle.protocol.payload import TaggedData

from . import ocmf
from .commitment import COMMIT_TAG, SessionRecord, parse_session_record, session_digest
from .errors import SignedMeterValueError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

    from wallet.client import NodeClient


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterCheck:
    """What `check_record` found."""

    readings: int
    signed: int
    """Readings with a signed meter value, each verified."""
    first_wh: int | None
    last_wh: int | None
    energy_wh: int
    """The energy billed."""
    energy_proven: bool
    """The first and last readings are signed and differ by exactly the energy billed."""


def check_record(record: SessionRecord, key: EllipticCurvePublicKey) -> MeterCheck:
    """Verify every signed reading of `record` with the meter's `key` (see the docstring)."""
    signed = 0
    for reading in record.readings:
        if not reading.signed_meter_value:
            continue
        where = f"reading seq {reading.seq_no}"
        value = ocmf.parse(reading.signed_meter_value, where)
        ocmf.verify(value, key, where)
        if ocmf.reading_wh(value, where) != reading.register_wh:
            raise SignedMeterValueError(
                where, f"signed {ocmf.reading_wh(value, where)} Wh, reported {reading.register_wh}"
            )
        signed += 1
    first = record.readings[0] if record.readings else None
    last = record.readings[-1] if record.readings else None
    if first is not None and last is not None and last.register_wh < first.register_wh:
        raise SignedMeterValueError("session record", "the register ran backwards")
    if (
        first is not None
        and last is not None
        and (last.register_wh - first.register_wh != record.energy_wh)
    ):
        raise SignedMeterValueError(
            "session record",
            f"billed {record.energy_wh} Wh, the readings differ by "
            f"{last.register_wh - first.register_wh} Wh",
        )
    proven = (
        first is not None
        and last is not None
        and first is not last
        and bool(first.signed_meter_value)
        and bool(last.signed_meter_value)
    )
    return MeterCheck(
        readings=len(record.readings),
        signed=signed,
        first_wh=None if first is None else first.register_wh,
        last_wh=None if last is None else last.register_wh,
        energy_wh=record.energy_wh,
        energy_proven=proven,
    )


async def check_ledger(node: NodeClient, record: bytes, message_id: str | None) -> str:
    """Check that the ledger message `message_id` commits `record`; returns the digest (hex)."""
    if message_id is None:
        raise SignedMeterValueError("ledger", "the session is not committed (yet)")
    try:
        wanted = MessageId.from_hex(message_id)
    except TangleError:
        raise SignedMeterValueError("ledger", "not a message id") from None
    payload = (await node.message(wanted)).message.payload
    digest = session_digest(record)
    if not isinstance(payload, TaggedData) or payload.tag != COMMIT_TAG:
        raise SignedMeterValueError("ledger", "the message is no session commitment")
    if payload.data != digest:
        raise SignedMeterValueError("ledger", "the record does not hash to the committed digest")
    return digest.hex()


async def verify_session(
    node: NodeClient, commitment: dict[str, object], key: EllipticCurvePublicKey
) -> dict[str, object]:
    """All three checks on a back office's commitment answer (`record`, `message_id`)."""
    raw_hex, message_id = commitment.get("record"), commitment.get("message_id")
    try:
        raw = bytes.fromhex(raw_hex) if isinstance(raw_hex, str) else b""
    except ValueError:
        raw = b""
    record = parse_session_record(raw)
    digest = await check_ledger(node, raw, message_id if isinstance(message_id, str) else None)
    meter = check_record(record, key)
    return {
        "charge_point": record.charge_point,
        "transaction_id": record.transaction_id,
        "digest": digest,
        "committed_in": message_id,
        "amount": record.amount,
        "energy_wh": meter.energy_wh,
        "readings": meter.readings,
        "signed_readings_verified": meter.signed,
        "energy_proven_by_meter_signatures": meter.energy_proven,
    }
