"""NRTRDE 2.1 importer (GSMA TD.35): the near-real-time copy of roaming events for fraud control.

A VPMN sends these within 4 hours of each event, one flat record per event with the clear IMSI
(hashed here, at once) and a charge. Tag numbers (APPLICATION class) are facts of TD.35, read
off the sample `nrt_2_1.ber` beside its XML rendering `nrt_2_1.xml`; no ASN.1 text is used:

```
Nrtrde 1       SpecificationVersionNumber 41, ReleaseVersionNumber 37, Sender 38,
               Recipient 36, SequenceNumber 39, FileAvailableTimeStamp 31, UtcTimeOffset 45,
               CallEvents 2, CallEventsCount 20
events         Moc 3, Mtc 4, Gprs 5
event fields   Imsi 34, CallEventStartTimeStamp 21, UtcTimeOffset 45, CallEventDuration 19,
               ServiceCode 46 > TeleServiceCode 43, ChargeAmount 25;
               Gprs: AccessPointNameNI 16, DataVolumeIncoming 28, DataVolumeOutgoing 29
```

The file does not state the unit of `ChargeAmount` (TD.35 fixes it outside the file), so
`decimal_places` and `local_currency` are left None for the agreement to supply. The records
carry no MSISDN (`NO_MSISDN`). A whole file imports or none of it does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final

from .ber import TagClass, parse
from .errors import InvalidRecordError, InvalidSubscriberError, TapStructureError, TapValueError
from .fields import Fields, utc_offset_seconds, utc_seconds
from .partner_file import FileKind, ImportedFile, PartnerFile, file_digest, file_sequence
from .record import INSTANT_EVENTS, NO_MSISDN, EventType, UsageRecord, is_tadig

if TYPE_CHECKING:
    from .ber import Element
    from .partner_file import ImportPolicy

NRTRDE: Final = 1
SPECIFICATION_VERSION: Final = 2
RELEASE_VERSION: Final = 1
MOC: Final = 3
MTC: Final = 4
GPRS: Final = 5
MAX_EVENTS: Final = 100_000


def read_nrtrde(data: bytes, policy: ImportPolicy) -> ImportedFile:
    """Import one NRTRDE 2.1 file, all or nothing."""
    root = parse(data)
    if root.tag_class is not TagClass.APPLICATION or root.tag != NRTRDE:
        raise TapStructureError(root.offset, f"not an NRTRDE file (tag {root.tag})")
    top = Fields(root, "Nrtrde")
    spec_field = top.need(41, "SpecificationVersionNumber")
    spec = spec_field.unsigned("SpecificationVersionNumber", max_octets=1)
    release = top.need(37, "ReleaseVersionNumber").unsigned("ReleaseVersionNumber", max_octets=1)
    if (spec, release) != (SPECIFICATION_VERSION, RELEASE_VERSION):
        raise TapValueError(spec_field.value_offset, f"NRTRDE {spec}.{release} not supported")
    sender = _tadig(top.need(38, "Sender"), "Sender")
    recipient = _tadig(top.need(36, "Recipient"), "Recipient")
    if sender == recipient:
        raise TapValueError(root.offset, "sender and recipient are the same network")
    offset = utc_offset_seconds(top.need(45, "UtcTimeOffset"), "UtcTimeOffset")
    available = utc_seconds(top.need(31, "FileAvailableTimeStamp"), offset, "FileAvailable")
    count_field = top.get(20)
    count = None if count_field is None else count_field.unsigned("CallEventsCount")
    meta = PartnerFile(
        kind=FileKind.NRTRDE,
        sender=sender,
        recipient=recipient,
        sequence=file_sequence(top.need(39, "SequenceNumber"), "SequenceNumber"),
        digest=file_digest(data),
        specification_version=spec,
        release_version=release,
        available_utc=available,
        declared_event_count=count,
    )
    events_field = top.get(2)
    events = () if events_field is None else events_field.items("CallEvents")
    if len(events) > MAX_EVENTS:
        raise TapStructureError(events[MAX_EVENTS].offset, f"more than {MAX_EVENTS} events")
    records: list[UsageRecord] = []
    unknown: list[bytes] = []
    for element in events:
        record, known = _record(element, meta, policy)
        records.append(record)
        if not known:
            unknown.append(record.event_id)
    meta = replace(meta, unknown_range_events=tuple(unknown))
    return ImportedFile(meta=meta, records=tuple(records))


def _tadig(element: Element, name: str) -> str:
    value = element.text(name, shortest=5, longest=5)
    if not is_tadig(value):
        raise TapValueError(element.value_offset, f"{name} is not a TADIG code")
    return value


def _event_type(element: Element, event: Fields) -> EventType:
    if element.tag == GPRS:
        return EventType.DATA
    if element.tag not in (MOC, MTC):
        raise TapStructureError(element.offset, f"NRTRDE event kind {element.tag} not supported")
    service = event.optional_sub(46, "ServiceCode")
    code = None if service is None else service.get(43)
    sms = code is not None and code.text("TeleServiceCode", shortest=2, longest=2)[0] == "2"
    if element.tag == MOC:
        return EventType.SMS_MO if sms else EventType.MOC
    return EventType.SMS_MT if sms else EventType.MTC


def _record(element: Element, meta: PartnerFile, policy: ImportPolicy) -> tuple[UsageRecord, bool]:
    if element.tag_class is not TagClass.APPLICATION:
        raise TapStructureError(element.offset, "an event not in APPLICATION class")
    event = Fields(element, "event")
    kind = _event_type(element, event)
    imsi = event.need(34, "Imsi").digits("Imsi", longest=15)
    offset = utc_offset_seconds(event.need(45, "UtcTimeOffset"), "UtcTimeOffset")
    start = utc_seconds(event.need(21, "CallEventStartTimeStamp"), offset, "CallEventStart")
    duration = event.need(19, "CallEventDuration").unsigned("CallEventDuration", max_octets=5)
    charge_field = event.get(25)
    charge = 0 if charge_field is None else charge_field.unsigned("ChargeAmount")
    data = kind is EventType.DATA

    def volume(tag: int, name: str) -> int:
        return event.need(tag, name).unsigned(name) if data else 0

    apn_field = event.get(16) if data else None
    try:
        imsi_hash, known = policy.imsi(imsi)
        record = UsageRecord(
            sender=meta.sender,
            recipient=meta.recipient,
            imsi_hash=imsi_hash,
            msisdn_hash=NO_MSISDN,
            event_type=kind,
            start_utc=start,
            duration_s=0 if kind in INSTANT_EVENTS else duration,
            volume_up=volume(29, "DataVolumeOutgoing"),
            volume_down=volume(28, "DataVolumeIncoming"),
            apn="" if apn_field is None else apn_field.text("AccessPointNameNI", longest=63),
            serving_network=meta.sender,
            charge=charge,
        )
    except (InvalidRecordError, InvalidSubscriberError) as e:
        raise TapValueError(element.offset, str(e)) from None
    return record, known
