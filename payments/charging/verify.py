"""A driver checks the energy billed without trusting the CPO: `tanglepay charging
verify-session`.

Three checks, each a named failure (`SignedMeterValueError`):

1. the session record the back office serves (`GET /api/sessions/{cp}/{tx}/commitment`) hashes
   to the digest committed on the ledger: the tagged-data message (`COMMIT_TAG`) the CSMS names,
   read from a node the driver chooses (`check_ledger`);
2. every signed meter value in the record is signed by the meter's public key (OCMF, see
   `ocmf.py`) and reads the register the charger reported with it, and together they read as
   one transaction of one meter (`check_record`): one meter serial (`MS`), a strictly
   increasing pagination (`PG`), times (`TM`) in order and spanning no more than the session,
   a begin (`TX` B) only first and an end (E) only last, so values spliced in from another
   session of the same meter are caught by name;
3. the billed energy is the difference between the first and last readings; when both are
   signed, the first as the transaction's begin and the last as its end (`energy_proven`), the
   energy billed rests on the meter's signatures alone.

The record's amount is the CPO's price for that energy; the driver re-prices it with the
published tariff.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import TangleError
from tangle.protocol.ids import MessageId
from tangle.protocol.payload import TaggedData

from . import ocmf
from .commitment import COMMIT_TAG, SessionRecord, parse_session_record, session_digest
from .errors import SignedMeterValueError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

    from wallet.client import NodeClient


CLOCK_SLACK_S: Final = 60
"""How far the meter's clock may stretch the signed span beyond the session's length."""


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
    contexts = []
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
        contexts.append(ocmf.context(value, where))
    _one_transaction(contexts, record.duration_s)
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
        and contexts[0].kind == "B"
        and contexts[-1].kind == "E"
    )
    return MeterCheck(
        readings=len(record.readings),
        signed=len(contexts),
        first_wh=None if first is None else first.register_wh,
        last_wh=None if last is None else last.register_wh,
        energy_wh=record.energy_wh,
        energy_proven=proven,
    )


def _one_transaction(contexts: list[ocmf.ReadingContext], duration_s: int) -> None:
    """`SignedMeterValueError` unless the signed values (in the record's order) read like one
    transaction of one meter: one serial, a strictly increasing counter of one kind, times in
    order within the session's length, a begin only first and an end only last."""
    where = "session record"
    for a, b in itertools.pairwise(contexts):
        if b.meter_serial != a.meter_serial:
            raise SignedMeterValueError(where, "values signed by more than one meter (MS)")
        if b.page[0] != a.page[0] or b.page[1] <= a.page[1]:
            raise SignedMeterValueError(where, "the meter's pagination (PG) does not increase")
        if b.time_s < a.time_s:
            raise SignedMeterValueError(where, "the signed times (TM) run backwards")
        if b.kind == "B" or a.kind == "E":
            raise SignedMeterValueError(where, "a transaction begins or ends inside the session")
    if contexts and contexts[-1].time_s - contexts[0].time_s > duration_s + CLOCK_SLACK_S:
        raise SignedMeterValueError(where, "the signed times (TM) span more than the session")


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
