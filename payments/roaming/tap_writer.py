"""TAP 3.12 transfer batch writer: call events -> the BER file `tap.read_tap` imports.

The visited network's side of the exchange: what its billing system hands over. It writes the
fields the importer reads, with the same tag numbers (`tap.py` and `tap_events.py` list them:
TD.57 facts as public decoders document them, checked against the sample files in
`../shared/vectors/tap/`), and nothing else; the optional TD.57 fields the importer skips
(location information, charging ids, charged items, exchange rates) are not written. Every length
is definite and minimal (`ber_writer.py`), so a file is canonical: the same events give the same
bytes.

```
TransferBatch 1
  BatchControlInfo 4     Sender, Recipient, FileSequenceNumber ("00042"), FileCreationTimeStamp,
                         TransferCutOffTimeStamp, FileAvailableTimeStamp, Specification 3,
                         Release 12, FileTypeIndicator "T" for test data
  AccountingInfo 5       LocalCurrency, TapDecimalPlaces
  NetworkInfo 6          one UtcTimeOffsetInfo: code 1, the sender's offset
  CallEventDetailList 3  one event per record, in order:
                         DATA -> GprsCall, MOC / SMS_MO -> MobileOriginatedCall (TeleService
                         "11" telephony / "22" SMS MO), MTC / SMS_MT -> MobileTerminatedCall
                         ("11" / "21" SMS MT), SUPPLEMENTARY -> SupplServiceEvent
  AuditControlInfo 15    Earliest/LatestCallTimeStamp, TotalCharge, TotalTaxValue 0,
                         TotalDiscountValue 0, CallEventDetailsCount
```

Time stamps are written in the sender's local time (`utc_offset_s` east of UTC) with that offset,
as TAP carries them; the importer subtracts it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .ber_writer import digits, integer, sequence, sequence_of, text
from .errors import BerWriteError
from .fields import MAX_OFFSET_MINUTES
from .partner_file import FILE_SEQUENCE_MAX
from .record import EventType
from .tap import BATCH_RELEASE, MAX_DECIMAL_PLACES, MAX_EVENTS, SPECIFICATION_VERSION
from .tap_events import GPRS, MOC, MTC, SUPPL_SERVICE, TOTAL_CHARGE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .tap_events import CallEvent

OFFSET_CODE: Final = 1
"""The one UtcTimeOffsetCode a written file defines."""
TELEPHONY: Final = "11"
SMS_MT_SERVICE: Final = "21"
SMS_MO_SERVICE: Final = "22"
_CHARGE_LIST: Final = 70


@dataclass(frozen=True, slots=True, kw_only=True)
class TapFileSpec:
    """What a transfer batch states besides its events."""

    sender: str
    """TADIG of the VPMN."""
    recipient: str
    """TADIG of the HPMN."""
    sequence: int
    """File sequence number, 1..`FILE_SEQUENCE_MAX`."""
    created_utc: int
    """File creation time (also its availability and cut-off time), UTC seconds."""
    currency: str
    """LocalCurrency, 3 letters."""
    decimal_places: int
    """TapDecimalPlaces of the charges."""
    utc_offset_s: int = 0
    """The sender's UTC offset, seconds east (whole minutes, -14:00..+14:00)."""
    test_data: bool = False
    """Mark the file as test data (FileTypeIndicator "T")."""
    declared_total_charge: int | None = None
    """The audit TotalCharge to state; None states the events' true total."""

    def __post_init__(self) -> None:
        if not 1 <= self.sequence <= FILE_SEQUENCE_MAX:
            raise BerWriteError("FileSequenceNumber", f"{self.sequence} is not 1..99999")
        if not 0 <= self.decimal_places <= MAX_DECIMAL_PLACES:
            raise BerWriteError("TapDecimalPlaces", f"{self.decimal_places} is out of range")
        offset = self.utc_offset_s
        if offset % 60 or abs(offset) > MAX_OFFSET_MINUTES * 60:
            raise BerWriteError("UtcTimeOffset", f"{offset} s is not a UTC offset")


def write_tap(spec: TapFileSpec, events: Sequence[CallEvent]) -> bytes:
    """The TAP 3.12 transfer batch holding `events` in order (`CallEvent.offset` is ignored)."""
    if not events:
        raise BerWriteError("CallEventDetailList", "a transfer batch holds at least one event")
    if len(events) > MAX_EVENTS:
        raise BerWriteError("CallEventDetailList", f"more than {MAX_EVENTS} events")
    stamp = _Stamps(spec.utc_offset_s)
    created = stamp.date_time(spec.created_utc)
    control = [
        text(196, spec.sender, "Sender"),
        text(182, spec.recipient, "Recipient"),
        text(109, f"{spec.sequence:05d}", "FileSequenceNumber"),
        sequence(108, *created),
        sequence(227, *created),
        sequence(107, *created),
        integer(201, SPECIFICATION_VERSION, "SpecificationVersionNumber"),
        integer(189, BATCH_RELEASE, "ReleaseVersionNumber"),
    ]
    if spec.test_data:
        control.append(text(110, "T", "FileTypeIndicator"))
    offset_info = sequence(233, integer(232, OFFSET_CODE, "UtcTimeOffsetCode"), stamp.offset_field)
    total = sum(e.charge for e in events)
    starts = [e.start_utc for e in events]
    audit = sequence(
        15,
        sequence(101, *stamp.date_time(min(starts))),
        sequence(133, *stamp.date_time(max(starts))),
        integer(415, total if spec.declared_total_charge is None else spec.declared_total_charge,
                "TotalCharge"),
        integer(226, 0, "TotalTaxValue"),
        integer(225, 0, "TotalDiscountValue"),
        integer(43, len(events), "CallEventDetailsCount"),
    )  # fmt: skip
    return sequence(
        1,
        sequence(4, *control),
        sequence(
            5,
            text(135, spec.currency, "LocalCurrency"),
            integer(244, spec.decimal_places, "TapDecimalPlaces"),
        ),
        sequence(6, sequence(234, offset_info)),
        sequence_of(3, (_event(e, stamp) for e in events)),
        audit,
    )


class _Stamps:
    """Local time stamps of one file (one UTC offset): `LocalTimeStamp` 16 fields."""

    __slots__ = ("offset_field", "offset_s")

    def __init__(self, offset_s: int) -> None:
        self.offset_s = offset_s
        minutes = abs(offset_s) // 60
        sign = "-" if offset_s < 0 else "+"
        self.offset_field = text(231, f"{sign}{minutes // 60:02d}{minutes % 60:02d}", "offset")

    def local(self, utc: int) -> bytes:
        local = utc + self.offset_s
        if local < 0:
            raise BerWriteError("LocalTimeStamp", "a time before the epoch")
        return text(16, time.strftime("%Y%m%d%H%M%S", time.gmtime(local)), "LocalTimeStamp")

    def date_time(self, utc: int) -> tuple[bytes, bytes]:
        """A DateTime: LocalTimeStamp and UtcTimeOffset."""
        return self.local(utc), self.offset_field

    def event_time(self, tag: int, utc: int) -> bytes:
        """An event's time stamp (CallEventStartTimeStamp 44, ChargingTimeStamp 74):
        LocalTimeStamp and UtcTimeOffsetCode."""
        return sequence(tag, self.local(utc), integer(232, OFFSET_CODE, "UtcTimeOffsetCode"))


def _charge(amount: int) -> bytes:
    """A ChargeInformationList with one total charge (ChargeType "00")."""
    detail = sequence(63, text(71, TOTAL_CHARGE, "ChargeType"), _unsigned(62, amount, "Charge"))
    return sequence(_CHARGE_LIST, sequence(69, sequence(64, detail)))


def _subscriber(event: CallEvent) -> bytes:
    """ChargeableSubscriber 427 > SimChargeableSubscriber 199 > Imsi 129 (, Msisdn 152)."""
    sim = [digits(129, event.imsi, "Imsi")]
    if event.msisdn is not None:
        sim.append(digits(152, event.msisdn, "Msisdn"))
    return sequence(427, sequence(199, *sim))


def _unsigned(tag: int, value: int, what: str) -> bytes:
    if value < 0:
        raise BerWriteError(what, f"{value} is negative")
    return integer(tag, value, what)


def _event(event: CallEvent, stamp: _Stamps) -> bytes:
    kind = event.event_type
    if kind is EventType.DATA:
        info = sequence(
            114,
            sequence(115, _subscriber(event)),
            *([sequence(116, text(261, event.apn, "AccessPointNameNI"))] if event.apn else []),
            stamp.event_time(44, event.start_utc),
            _unsigned(223, event.duration_s, "TotalCallEventDuration"),
        )
        used = sequence(
            121,
            _unsigned(250, event.volume_down, "DataVolumeIncoming"),
            _unsigned(251, event.volume_up, "DataVolumeOutgoing"),
            _charge(event.charge),
        )
        return sequence(GPRS, info, used)
    if kind is EventType.SUPPLEMENTARY:
        used = sequence(206, stamp.event_time(74, event.start_utc), _charge(event.charge))
        return sequence(SUPPL_SERVICE, _subscriber(event), used)
    originated = kind in (EventType.MOC, EventType.SMS_MO)
    service = {
        EventType.MOC: TELEPHONY,
        EventType.MTC: TELEPHONY,
        EventType.SMS_MO: SMS_MO_SERVICE,
        EventType.SMS_MT: SMS_MT_SERVICE,
    }[kind]
    info = sequence(
        147 if originated else 153,
        _subscriber(event),
        stamp.event_time(44, event.start_utc),
        _unsigned(223, event.duration_s, "TotalCallEventDuration"),
    )
    used = sequence(
        39,
        sequence(36, sequence(426, text(218, service, "TeleServiceCode"))),
        _charge(event.charge),
    )
    return sequence(MOC if originated else MTC, info, sequence(38, used))
