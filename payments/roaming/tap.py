"""TAP 3.12 importer (GSMA TD.57): a transfer batch or a notification -> metadata and records.

Tag numbers are facts of TD.57 as public decoders document them and as the sample files in
`../shared/vectors/tap/` show them next to their XML renderings; no ASN.1 text is used. The
importer reads the whole file with the strict BER reader, checks each field it uses and builds
every record before it returns: a file either imports whole or raises a `RoamingFormatError`
with the offset of the first broken rule.

What is read (APPLICATION tags):

```
TransferBatch 1     BatchControlInfo 4, AccountingInfo 5, NetworkInfo 6,
                    CallEventDetailList 3, AuditControlInfo 15
Notification 2      Sender 196, Recipient 182, FileSequenceNumber 109, FileCreationTimeStamp 108,
                    FileAvailableTimeStamp 107, TransferCutOffTimeStamp 227,
                    SpecificationVersionNumber 201, ReleaseVersionNumber 189, FileTypeIndicator 110
AccountingInfo      LocalCurrency 135, TapDecimalPlaces 244
NetworkInfo         UtcTimeOffsetInfoList 234 of UtcTimeOffsetInfo 233 (code 232, offset 231)
call events         MobileOriginatedCall 9, MobileTerminatedCall 10, SupplServiceEvent 11,
                    GprsCall 14
AuditControlInfo    EarliestCallTimeStamp 101, LatestCallTimeStamp 133, TotalCharge 415,
                    TotalTaxValue 226, TotalDiscountValue 225, CallEventDetailsCount 43
```

Two paths read the call events: the Numba kernel (`_tap_kernel`, by way of `tap_scan`) walks
the event list's bytes once, and the tree reader (`tap_events`, the reference) reads the parsed
tree; everything else in the file is read from the tree on both paths. The kernel declines what
it does not fully understand or what breaks a rule, and the tree reader then reads the file and
names the error, so the two agree on every file (`read_tap(..., reference=True)` takes the tree
path alone; the tests run on both).

Time stamps in the batch control and audit info carry their own offset (UtcTimeOffset 231);
event time stamps carry a UtcTimeOffsetCode (232) resolved through the network info. The
serving network of every record is the sender: a TAP file holds one VPMN's events.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final, overload

from .ber import TagClass, parse
from .errors import (
    InvalidRecordError,
    InvalidSubscriberError,
    RoamingFormatError,
    TapStructureError,
    TapValueError,
)
from .fields import Fields, date_time, list_items, utc_offset_seconds
from .partner_file import FileKind, ImportedFile, PartnerFile, file_digest, file_sequence
from .record import INSTANT_EVENTS, NO_MSISDN, UsageRecord, is_tadig
from .tap_events import CallEvent, read_call_event
from .tap_scan import scan_batch

if TYPE_CHECKING:
    from collections.abc import Container

    from .ber import Element
    from .partner_file import ImportPolicy
    from .tap_scan import ScannedBatch

TRANSFER_BATCH: Final = 1
NOTIFICATION: Final = 2
SPECIFICATION_VERSION: Final = 3
BATCH_RELEASE: Final = 12
"""Transfer batches must be TAP 3.12: their call events are read by its tags."""
NOTIFICATION_RELEASES: Final = range(9, 13)
"""A notification holds only batch control fields, which keep their tags from TAP 3.9 on (the
sample notification is 3.9); a later release is refused rather than guessed at."""
MAX_DECIMAL_PLACES: Final = 6
MAX_EVENTS: Final = 100_000


def read_tap(data: bytes, policy: ImportPolicy, *, reference: bool = False) -> ImportedFile:
    """Import one TAP file (a transfer batch or a notification), all or nothing.

    A transfer batch's call events are read by the Numba kernel (`_tap_kernel.scan`) unless
    `reference` is set; a file the kernel declines (one it does not fully understand, or one
    that breaks a rule) is read again by the strict tree reader, which names the broken rule
    and its offset. Both give the same `ImportedFile` for every file the kernel reads."""
    data = bytes(data)
    if not reference:
        try:
            scanned = scan_batch(data, MAX_EVENTS)
            imported = None if scanned is None else _read(scanned.root, data, policy, scanned)
        except RoamingFormatError:
            imported = None  # the reference below raises the error it finds first
        if imported is not None:
            return imported
    return _read(parse(data), data, policy, None)


@overload
def _read(root: Element, data: bytes, policy: ImportPolicy, scanned: None) -> ImportedFile: ...


@overload
def _read(
    root: Element, data: bytes, policy: ImportPolicy, scanned: ScannedBatch
) -> ImportedFile | None: ...


def _read(
    root: Element, data: bytes, policy: ImportPolicy, scanned: ScannedBatch | None
) -> ImportedFile | None:
    """The file whose tree is `root`; its call events from `scanned` if given, else from the
    tree (None: `scanned` declined an event's values)."""
    if root.tag_class is not TagClass.APPLICATION or root.tag not in (TRANSFER_BATCH, NOTIFICATION):
        raise TapStructureError(
            root.offset, f"not a TAP transfer batch or notification ({root.tag})"
        )
    digest = file_digest(data)
    if root.tag == NOTIFICATION:
        control = Fields(root, "Notification")
        meta = _batch_control(control, FileKind.TAP_NOTIFICATION, digest, NOTIFICATION_RELEASES)
        return ImportedFile(meta=meta, records=())
    batch = Fields(root, "TransferBatch")
    control = batch.sub(4, "BatchControlInfo")
    meta = _batch_control(control, FileKind.TAP_TRANSFER_BATCH, digest, (BATCH_RELEASE,))
    accounting = batch.sub(5, "AccountingInfo")
    currency = accounting.need(135, "LocalCurrency").text("LocalCurrency", shortest=3, longest=3)
    places_field = accounting.need(244, "TapDecimalPlaces")
    places = places_field.unsigned("TapDecimalPlaces", max_octets=1)
    if places > MAX_DECIMAL_PLACES:
        raise TapValueError(places_field.value_offset, f"TapDecimalPlaces {places} is too many")
    offsets = _utc_offsets(batch.sub(6, "NetworkInfo"))
    read: tuple[list[UsageRecord], list[bytes]] | None
    if scanned is None:
        read = _tree_records(meta, batch, offsets, policy)
    else:
        read = scanned.records(meta, offsets, policy)
        if read is None:
            return None
    records, unknown = read
    audit = batch.sub(15, "AuditControlInfo")
    meta = _with_audit(meta, audit, currency, places, tuple(unknown))
    return ImportedFile(meta=meta, records=tuple(records))


def _tree_records(
    meta: PartnerFile, batch: Fields, offsets: dict[int, int], policy: ImportPolicy
) -> tuple[list[UsageRecord], list[bytes]]:
    """The reference: every call event read from the tree (`tap_events`)."""
    events = batch.need(3, "CallEventDetailList").items("CallEventDetailList")
    if len(events) > MAX_EVENTS:
        raise TapStructureError(events[MAX_EVENTS].offset, f"more than {MAX_EVENTS} events")
    records: list[UsageRecord] = []
    unknown: list[bytes] = []
    for element in events:
        event = read_call_event(element, offsets)
        record, known = _record(meta, event, policy)
        records.append(record)
        if not known:
            unknown.append(record.event_id)
    return records, unknown


def _batch_control(
    control: Fields, kind: FileKind, digest: bytes, releases: Container[int]
) -> PartnerFile:
    sender = control.need(196, "Sender").text("Sender", shortest=5, longest=5)
    recipient = control.need(182, "Recipient").text("Recipient", shortest=5, longest=5)
    for name, value, tag in (("Sender", sender, 196), ("Recipient", recipient, 182)):
        if not is_tadig(value):
            raise TapValueError(control.need(tag, name).value_offset, f"{name} is not a TADIG code")
    if sender == recipient:
        raise TapValueError(control.element.offset, "sender and recipient are the same network")
    spec_field = control.need(201, "SpecificationVersionNumber")
    spec = spec_field.unsigned("SpecificationVersionNumber", max_octets=1)
    release_field = control.need(189, "ReleaseVersionNumber")
    release = release_field.unsigned("ReleaseVersionNumber", max_octets=1)
    if spec != SPECIFICATION_VERSION or release not in releases:
        raise TapValueError(spec_field.value_offset, f"TAP version {spec}.{release} not supported")
    file_type = control.get(110)
    test = file_type is not None and file_type.text("FileTypeIndicator", longest=1) == "T"
    return PartnerFile(
        kind=kind,
        sender=sender,
        recipient=recipient,
        sequence=file_sequence(control.need(109, "FileSequenceNumber"), "FileSequenceNumber"),
        digest=digest,
        test_data=test,
        specification_version=spec,
        release_version=release,
        created_utc=_optional_time(control, 108, "FileCreationTimeStamp"),
        available_utc=date_time(control.sub(107, "FileAvailableTimeStamp"), 231, "available"),
        cutoff_utc=date_time(control.sub(227, "TransferCutOffTimeStamp"), 231, "cut-off"),
    )


def _optional_time(fields: Fields, tag: int, name: str) -> int | None:
    found = fields.optional_sub(tag, name)
    return None if found is None else date_time(found, 231, name)


def _utc_offsets(network: Fields) -> dict[int, int]:
    """UtcTimeOffsetCode -> seconds east of UTC."""
    offsets: dict[int, int] = {}
    listing = network.need(234, "UtcTimeOffsetInfoList")
    for item in list_items(listing, "UtcTimeOffsetInfoList", 233):
        info = Fields(item, "UtcTimeOffsetInfo")
        code = info.need(232, "UtcTimeOffsetCode").unsigned("UtcTimeOffsetCode", max_octets=2)
        if code in offsets:
            raise TapStructureError(item.offset, f"UtcTimeOffsetCode {code} defined twice")
        offsets[code] = utc_offset_seconds(info.need(231, "UtcTimeOffset"), "UtcTimeOffset")
    return offsets


def _record(meta: PartnerFile, event: CallEvent, policy: ImportPolicy) -> tuple[UsageRecord, bool]:
    try:
        imsi_hash, known = policy.imsi(event.imsi)
        msisdn_hash = NO_MSISDN if event.msisdn is None else policy.hasher.msisdn(event.msisdn)
        record = UsageRecord(
            sender=meta.sender,
            recipient=meta.recipient,
            imsi_hash=imsi_hash,
            msisdn_hash=msisdn_hash,
            event_type=event.event_type,
            start_utc=event.start_utc,
            duration_s=0 if event.event_type in INSTANT_EVENTS else event.duration_s,
            volume_up=event.volume_up,
            volume_down=event.volume_down,
            apn=event.apn,
            serving_network=meta.sender,
            charge=event.charge,
        )
    except (InvalidRecordError, InvalidSubscriberError) as e:
        raise TapValueError(event.offset, str(e)) from None
    return record, known


def _with_audit(
    meta: PartnerFile, audit: Fields, currency: str, places: int, unknown: tuple[bytes, ...]
) -> PartnerFile:
    def amount(tag: int, name: str) -> int | None:
        found = audit.get(tag)
        return None if found is None else found.unsigned(name)

    def stamp(tag: int, name: str) -> int | None:
        found = audit.optional_sub(tag, name)
        return None if found is None else date_time(found, 231, name)

    return replace(
        meta,
        local_currency=currency,
        decimal_places=places,
        declared_total_charge=audit.need(415, "TotalCharge").unsigned("TotalCharge"),
        declared_total_tax=amount(226, "TotalTaxValue"),
        declared_total_discount=amount(225, "TotalDiscountValue"),
        declared_event_count=audit.need(43, "CallEventDetailsCount").unsigned(
            "CallEventDetailsCount"
        ),
        declared_earliest_utc=stamp(101, "EarliestCallTimeStamp"),
        declared_latest_utc=stamp(133, "LatestCallTimeStamp"),
        unknown_range_events=unknown,
    )
