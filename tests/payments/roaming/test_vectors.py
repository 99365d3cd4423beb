"""Every sample file in `tests/vectors/tap/` (copied from `../shared/vectors/tap/`): the valid
ones decode to the values they hold (read off their XML twins where there is one, otherwise off
the bytes by hand), the broken ones raise the named error at the right offset."""

from __future__ import annotations

import calendar
import hashlib
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from payments.roaming import (
    EventType,
    FileKind,
    ImportLedger,
    ImportOutcome,
    RapKind,
    read_nrtrde,
    read_rap,
    tap,
    tap_scan,
)
from payments.roaming.errors import (
    BerEndOfContentsError,
    BerLengthError,
    RoamingError,
    TapStructureError,
    TapValueError,
)
from payments.roaming.record import NO_MSISDN

from .vectors import POLICY, SHARED_TAP_VECTORS, TAP_VECTORS, read

if TYPE_CHECKING:
    from .conftest import TapReader


def utc(local: str, offset: str) -> int:
    """Independent of the importer: datetime does the offset arithmetic."""
    sign = -1 if offset[0] == "-" else 1
    zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    return int(datetime.strptime(local, "%Y%m%d%H%M%S").replace(tzinfo=zone).timestamp())


def test_every_file_is_listed_in_the_manifest_and_unchanged() -> None:
    manifest = dict(
        reversed(line.split("  ", 1))
        for line in (TAP_VECTORS.parent / "tap.sha256").read_text().splitlines()
    )
    assert sorted(manifest) == sorted(p.name for p in TAP_VECTORS.iterdir())
    for name, digest in manifest.items():
        assert hashlib.sha256(read(name)).hexdigest() == digest, name


def test_the_copies_equal_the_shared_files() -> None:
    if not SHARED_TAP_VECTORS.is_dir():
        pytest.skip("../shared/vectors/tap absent: only the project's copy is checked")
    shared = sorted(p.name for p in SHARED_TAP_VECTORS.iterdir())
    assert shared == sorted(p.name for p in TAP_VECTORS.iterdir())
    for name in shared:
        assert (SHARED_TAP_VECTORS / name).read_bytes() == read(name), name


def test_every_file_is_covered_by_a_test() -> None:
    covered = {*VALID_TAP, *BROKEN, "nrt_2_1.ber", "nrt_2_1.xml", "tap_notification.ber"}
    covered |= {"tap_notification.xml", "rap_mini.ber", "rap_mini.xml", "rap_ack.ber"}
    covered |= {"rap_ack.xml", "tap_3_12_negative_volume_fixed.ber"}
    assert covered == {p.name for p in TAP_VECTORS.iterdir()}


# -- TAP transfer batches --------------------------------------------------------------------

VALID_TAP = [
    "tap_3_12_valid.ber",
    "tap_3_12_valid_att.ber",
    "tap_3_12_valid_add_osi.ber",
    "tap_3_12_valid_replaced.ber",
    "tap_3_12_valid_removed.ber",
    "tap_3_12_timestamps.ber",
]
IMSI_A = "133713371337133"
IMSI_B = "232323232323232"


def test_tap_valid_decodes_to_the_values_it_holds(read_tap: TapReader) -> None:
    imported = read_tap(read("tap_3_12_valid.ber"), POLICY)
    meta = imported.meta
    assert meta.kind is FileKind.TAP_TRANSFER_BATCH
    assert (meta.sender, meta.recipient, meta.sequence) == ("WERFD", "XLKJE", 31707)
    assert (meta.specification_version, meta.release_version) == (3, 12)
    assert (meta.local_currency, meta.decimal_places) == ("EUR", 3)
    assert meta.created_utc == utc("20050405090547", "+0200")
    assert meta.declared_earliest_utc == utc("20050404162453", "+0200")
    assert meta.declared_latest_utc == utc("20050405090059", "+0200")
    # The file states 2300 over four events whose charges sum to 71200: both kept exactly.
    assert meta.declared_total_charge == 2300
    assert meta.declared_event_count == 4
    assert imported.total_charge == 71200
    assert (meta.declared_total_tax, meta.declared_total_discount) == (0, 0)
    mtc, moc, gprs, suppl = imported.records
    hasher = POLICY.hasher
    assert mtc.event_type is EventType.MTC
    assert mtc.imsi_hash == hasher.imsi(IMSI_A)
    assert mtc.msisdn_hash == NO_MSISDN
    assert (mtc.start_utc, mtc.duration_s, mtc.charge) == (
        utc("20140301140342", "+0200"),
        153,
        2300,
    )
    assert moc.event_type is EventType.MOC
    assert moc.imsi_hash == hasher.imsi(IMSI_B)
    assert (moc.start_utc, moc.duration_s, moc.charge) == (
        utc("20140301150200", "+0200"),
        213,
        2300,
    )
    assert gprs.event_type is EventType.DATA
    assert gprs.start_utc == utc("20140301150800", "+0200")
    assert (gprs.duration_s, gprs.volume_up, gprs.volume_down) == (
        500,
        2_200_000_000,
        1_200_000_000,
    )
    assert (gprs.apn, gprs.charge) == ("foo.example.net", 66600)
    assert suppl.event_type is EventType.SUPPLEMENTARY
    assert (suppl.start_utc, suppl.charge) == (utc("20140302150800", "+0200"), 0)
    assert suppl.imsi_hash == hasher.imsi(IMSI_A)
    for record in imported.records:
        assert (record.sender, record.recipient, record.serving_network) == (
            "WERFD",
            "XLKJE",
            "WERFD",
        )


@pytest.mark.parametrize("name", VALID_TAP)
def test_every_valid_tap_file_imports(name: str, read_tap: TapReader) -> None:
    imported = read_tap(read(name), POLICY)
    assert imported.meta.declared_total_charge == 2300
    assert imported.meta.declared_event_count == 4
    assert all(r.sender == "WERFD" for r in imported.records)


@pytest.mark.parametrize("name", [*VALID_TAP, "tap_3_12_negative_volume_fixed.ber"])
def test_the_kernel_path_takes_every_valid_tap_file(name: str) -> None:
    """The "kernel" runs of these tests would pass on the tree reader's fallback alone: the
    kernel itself reads each valid sample (no decline), to what the tree reader reads."""
    data = read(name)
    scanned = tap_scan.scan_batch(data, tap.MAX_EVENTS)
    assert scanned is not None
    kernel = tap._read(scanned.root, data, POLICY, scanned)
    assert kernel is not None
    assert kernel == tap.read_tap(data, POLICY, reference=True)


def test_tap_variants_differ_where_their_bytes_do(read_tap: TapReader) -> None:
    valid = read_tap(read("tap_3_12_valid.ber"), POLICY)
    removed = read_tap(read("tap_3_12_valid_removed.ber"), POLICY)
    assert [r.event_type for r in removed.records] == [
        EventType.MTC,
        EventType.DATA,
        EventType.SUPPLEMENTARY,
    ]
    assert removed.total_charge == 71200 - 2300
    replaced = read_tap(read("tap_3_12_valid_replaced.ber"), POLICY)
    assert replaced.meta.created_utc == utc("20160405090547", "+0200")
    assert [r.charge for r in replaced.records] == [r.charge for r in valid.records]
    timestamps = read_tap(read("tap_3_12_timestamps.ber"), POLICY)
    assert len(timestamps.records) == 5 != timestamps.meta.declared_event_count


def test_negative_volume_is_refused_where_it_is(read_tap: TapReader) -> None:
    with pytest.raises(TapValueError) as caught:
        read_tap(read("tap_3_12_negative_volume.ber"), POLICY)
    assert caught.value.offset == 364  # the DataVolumeIncoming contents octet (0xfe)
    assert read("tap_3_12_negative_volume.ber")[caught.value.offset] == 0xFE
    assert "negative" in caught.value.reason


def test_negative_volume_fixed_imports(read_tap: TapReader) -> None:
    (gprs,) = read_tap(read("tap_3_12_negative_volume_fixed.ber"), POLICY).records
    assert gprs.event_type is EventType.DATA
    assert (gprs.volume_up, gprs.volume_down, gprs.charge) == (2_200_000_000, 0xFFFF_FFFE, 66600)


BROKEN = {
    "tap_3_12_trailing_eoc_invalid.ber": (BerEndOfContentsError, 819),
    "length_overflow.ber": (BerLengthError, 1),
    "deep_invalid.ber": (BerLengthError, 78),
    "tap_3_12_negative_volume.ber": (TapValueError, 364),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_raise_named_errors_with_offsets(name: str, read_tap: TapReader) -> None:
    error, offset = BROKEN[name]
    reader = read_nrtrde if name == "deep_invalid.ber" else read_tap
    with pytest.raises(error) as caught:
        reader(read(name), POLICY)
    assert caught.value.offset == offset


def test_deep_invalid_is_refused_by_every_reader(read_tap: TapReader) -> None:
    # Its corrupted IMSI makes the following bytes read as a constructed value whose length
    # runs past the call event that holds it.
    for reader in (read_tap, read_nrtrde):
        with pytest.raises(BerLengthError):
            reader(read("deep_invalid.ber"), POLICY)
    with pytest.raises(BerLengthError):
        read_rap(read("deep_invalid.ber"))


def test_a_file_of_another_kind_is_refused_by_name(read_tap: TapReader) -> None:
    with pytest.raises(TapStructureError):
        read_tap(read("nrt_2_1.ber"), POLICY)
    with pytest.raises(TapStructureError):
        read_nrtrde(read("tap_3_12_valid.ber"), POLICY)
    with pytest.raises(TapStructureError):
        read_rap(read("tap_3_12_valid.ber"))


# -- notification, NRTRDE, RAP against their XML twins --------------------------------------


def xml(name: str) -> ET.Element:
    return ET.fromstring(read(name))


def test_notification_matches_its_xml(read_tap: TapReader) -> None:
    twin = xml("tap_notification.xml")
    imported = read_tap(read("tap_notification.ber"), POLICY)
    meta = imported.meta
    assert imported.records == ()
    assert meta.kind is FileKind.TAP_NOTIFICATION
    assert meta.sender == twin.findtext("Sender")
    assert meta.recipient == twin.findtext("Recipient")
    assert meta.sequence == int(twin.findtext("FileSequenceNumber", ""))
    available = twin.find("FileAvailableTimeStamp")
    cutoff = twin.find("TransferCutOffTimeStamp")
    assert available is not None
    assert cutoff is not None
    assert meta.available_utc == utc(
        available.findtext("LocalTimeStamp", ""), available.findtext("UtcTimeOffset", "")
    )
    assert meta.cutoff_utc == utc(
        cutoff.findtext("LocalTimeStamp", ""), cutoff.findtext("UtcTimeOffset", "")
    )
    assert meta.specification_version == int(twin.findtext("SpecificationVersionNumber", ""))
    assert meta.release_version == int(twin.findtext("ReleaseVersionNumber", ""))


def test_nrtrde_matches_its_xml() -> None:
    twin = xml("nrt_2_1.xml")
    imported = read_nrtrde(read("nrt_2_1.ber"), POLICY)
    meta = imported.meta
    assert meta.kind is FileKind.NRTRDE
    assert (meta.sender, meta.recipient) == (twin.findtext("Sender"), twin.findtext("Recipient"))
    assert meta.sequence == int(twin.findtext("SequenceNumber", ""))
    assert meta.available_utc == utc(
        twin.findtext("FileAvailableTimeStamp", ""), twin.findtext("UtcTimeOffset", "")
    )
    assert meta.declared_event_count == int(twin.findtext("CallEventsCount", ""))
    events = list(twin.find("CallEventList") or [])
    assert len(events) == len(imported.records) == 7
    for event, record in zip(events, imported.records, strict=True):
        assert record.imsi_hash == POLICY.hasher.imsi(event.findtext("Imsi", ""))
        assert record.start_utc == utc(
            event.findtext("CallEventStartTimeStamp", ""), event.findtext("UtcTimeOffset", "")
        )
        assert record.charge == int(event.findtext("ChargeAmount", "0"))
        teleservice = event.findtext("ServiceCode/TeleServiceCode", "")
        expected = {
            ("Moc", "11"): EventType.MOC,
            ("Mtc", "21"): EventType.SMS_MT,
            ("Gprs", ""): EventType.DATA,
        }[(event.tag, teleservice)]
        assert record.event_type is expected
        duration = int(event.findtext("CallEventDuration", ""))
        assert record.duration_s == (0 if expected is EventType.SMS_MT else duration)
        if expected is EventType.DATA:
            assert record.volume_down == int(event.findtext("DataVolumeIncoming", ""))
            assert record.volume_up == int(event.findtext("DataVolumeOutgoing", ""))
            assert record.apn == event.findtext("AccessPointNameNI")


@pytest.mark.parametrize(
    ("name", "kind"), [("rap_mini", RapKind.RETURN_BATCH), ("rap_ack", RapKind.ACKNOWLEDGEMENT)]
)
def test_rap_files_match_their_xml(name: str, kind: RapKind) -> None:
    twin = xml(f"{name}.xml")
    rap = read_rap(read(f"{name}.ber"))
    assert rap.kind is kind
    control = twin.find("RapBatchControlInfo") if kind is RapKind.RETURN_BATCH else twin
    assert control is not None
    assert (rap.sender, rap.recipient) == (
        control.findtext("Sender"),
        control.findtext("Recipient"),
    )
    assert rap.rap_sequence == int(control.findtext("RapFileSequenceNumber", ""))
    prefix = "RapFile" if kind is RapKind.RETURN_BATCH else "AckFile"
    for attribute, tag in (
        ("created_utc", "CreationTimeStamp"),
        ("available_utc", "AvailableTimeStamp"),
    ):
        stamp = control.find(prefix + tag)
        assert stamp is not None
        expected = utc(stamp.findtext("LocalTimeStamp", ""), stamp.findtext("UtcTimeOffset", ""))
        assert getattr(rap, attribute) == expected
    if kind is RapKind.RETURN_BATCH:
        assert rap.tap_version == (3, 12)
        assert rap.rap_version == (1, 5)


def test_utc_helper_agrees_with_calendar() -> None:
    assert utc("20140301140342", "+0200") == calendar.timegm((2014, 3, 1, 12, 3, 42, 0, 0, 0))


# -- idempotent import -----------------------------------------------------------------------


def test_import_ledger_tells_new_repeat_and_conflict(read_tap: TapReader) -> None:
    ledger = ImportLedger()
    valid = read_tap(read("tap_3_12_valid.ber"), POLICY).meta
    assert ledger.check(valid) is ImportOutcome.NEW
    ledger.record(valid)
    assert (
        ledger.check(read_tap(read("tap_3_12_valid.ber"), POLICY).meta)
        is ImportOutcome.ALREADY_IMPORTED
    )
    # Same sender, recipient and sequence number, other bytes: a reused sequence number.
    other = read_tap(read("tap_3_12_valid_att.ber"), POLICY).meta
    assert other.key == valid.key
    assert ledger.check(other) is ImportOutcome.CONFLICT
    nrtrde = read_nrtrde(read("nrt_2_1.ber"), POLICY).meta
    assert ledger.check(nrtrde) is ImportOutcome.NEW


def test_unknown_imsi_ranges_are_flagged_not_dropped(read_tap: TapReader) -> None:
    from payments.roaming import ImportPolicy

    policy = ImportPolicy(hasher=POLICY.hasher, allowed_imsi_prefixes=frozenset({"13371"}))
    imported = read_tap(read("tap_3_12_valid.ber"), policy)
    flagged = set(imported.meta.unknown_range_events)
    assert len(imported.records) == 4
    assert flagged == {
        r.event_id for r in imported.records if r.imsi_hash == POLICY.hasher.imsi(IMSI_B)
    }
    assert len(flagged) == 2


def test_no_clear_imsi_in_any_record(read_tap: TapReader) -> None:
    for name in VALID_TAP:
        for record in read_tap(read(name), POLICY).records:
            text = record.canonical_json() + repr(record) + record.encode().hex()
            assert IMSI_A not in text
            assert IMSI_B not in text


def test_errors_are_in_the_roaming_tree() -> None:
    for name, (error, _) in BROKEN.items():
        assert issubclass(error, RoamingError), name
