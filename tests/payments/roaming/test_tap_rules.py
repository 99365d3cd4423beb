"""The TAP importer's rules one at a time: the valid sample edited in one place (with a small
test-only BER writer) must be refused by name at the edited element, or read as edited."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from payments.roaming import EventType
from payments.roaming.ber import Element, parse
from payments.roaming.errors import (
    BerElementCountError,
    BerIntegerError,
    TapStructureError,
    TapValueError,
)

from .ber_writer import constructed, edit, encode, primitive
from .vectors import POLICY, read

if TYPE_CHECKING:
    from .conftest import TapReader

VALID = parse(read("tap_3_12_valid.ber"))
MOC_PATH = (3, 9)


def test_the_writer_reproduces_the_sample() -> None:
    assert encode(VALID) == read("tap_3_12_valid.ber")


def import_edited(path: tuple[int, ...], change: object, read_tap: TapReader) -> object:
    return read_tap(encode(edit(VALID, path, change)), POLICY)  # type: ignore[arg-type]


def offset_of(data: bytes, path: tuple[int, ...]) -> int:
    element = parse(data)
    for tag in path:
        element = next(c for c in element.children if c.tag == tag)
    return element.offset


def test_a_missing_mandatory_part_is_named(read_tap: TapReader) -> None:
    with pytest.raises(TapStructureError, match="AuditControlInfo is missing") as caught:
        import_edited((15,), lambda e: None, read_tap)
    assert caught.value.offset == 0
    with pytest.raises(TapStructureError, match="TapDecimalPlaces is missing"):
        import_edited((5, 244), lambda e: None, read_tap)
    with pytest.raises(TapStructureError, match="Imsi is missing"):
        import_edited((*MOC_PATH, 147, 427, 199, 129), lambda e: None, read_tap)


def test_a_repeated_field_is_refused_where_it_repeats(read_tap: TapReader) -> None:
    control = next(c for c in VALID.children if c.tag == 4)
    doubled = control._replace(children=(*control.children, control.children[0]))
    data = encode(edit(VALID, (4,), lambda e: doubled))
    with pytest.raises(TapStructureError, match="repeated") as caught:
        read_tap(data, POLICY)
    assert caught.value.offset == parse(data).children[0].children[-1].offset


@pytest.mark.parametrize(
    ("path", "contents", "reason"),
    [
        ((4, 196), b"werfd", "Sender"),
        ((4, 182), b"WERFD", "same network"),
        ((4, 109), b"00000", "FileSequenceNumber"),
        ((4, 109), b"3170a", "FileSequenceNumber"),
        ((4, 189), b"\x0d", "version"),
        ((4, 189), b"\x0b", "version"),
        ((5, 244), b"\x07", "TapDecimalPlaces"),
        ((15, 415), b"\xff", "negative"),
        ((*MOC_PATH, 147, 44, 16), b"20140230150200", "not a valid time"),
        ((*MOC_PATH, 147, 44, 16), b"2014030115020x", "YYYYMMDDHHMMSS"),
        ((*MOC_PATH, 147, 44, 232), b"\x09", "UtcTimeOffsetCode 9"),
        ((*MOC_PATH, 147, 223), b"\xff\x00", "negative"),
        ((*MOC_PATH, 147, 427, 199, 129), b"\x13\x37\x1a", "TBCD"),
        ((6, 234, 233, 231), b"+2500", "not a UTC offset"),
        ((3, 14, 116, 261), b"foo bar", "apn"),
    ],
)
def test_a_bad_value_is_refused_by_name(
    path: tuple[int, ...], contents: bytes, reason: str, read_tap: TapReader
) -> None:
    gprs_path = (3, 14, 114, *path[2:]) if path[:2] == (3, 14) else path
    data = encode(edit(VALID, gprs_path, lambda e: e._replace(contents=contents)))
    with pytest.raises(TapValueError, match=reason) as caught:
        read_tap(data, POLICY)
    # The offset points into the top-level part that holds the bad value.
    part = parse(data).children
    start = next(c.offset for c in part if c.tag == gprs_path[0])
    stop = min([c.offset for c in part if c.offset > start], default=len(data))
    assert start <= caught.value.offset < stop


def test_an_integer_wider_than_its_field_is_refused(read_tap: TapReader) -> None:
    data = encode(edit(VALID, (5, 244), lambda e: e._replace(contents=b"\x00\x03")))
    with pytest.raises(BerIntegerError, match="TapDecimalPlaces") as caught:
        read_tap(data, POLICY)
    assert caught.value.offset == offset_of(data, (5, 244)) + 4  # 3 tag octets, 1 length


def test_an_unsupported_call_event_is_refused_by_name(read_tap: TapReader) -> None:
    listing = next(c for c in VALID.children if c.tag == 3)
    service_centre = constructed(12, primitive(129, b"\x13\x37"))
    data = encode(
        edit(VALID, (3,), lambda e: listing._replace(children=(*listing.children, service_centre)))
    )
    with pytest.raises(TapStructureError, match="kind 12") as caught:
        read_tap(data, POLICY)
    assert caught.value.offset == offset_of(data, (3, 12))


def test_teleservice_2x_makes_a_short_message(read_tap: TapReader) -> None:
    path = (*MOC_PATH, 38, 39, 36, 426, 218)
    imported = read_tap(encode(edit(VALID, path, lambda e: e._replace(contents=b"22"))), POLICY)
    message = imported.records[1]
    assert (message.event_type, message.duration_s, message.charge) == (EventType.SMS_MO, 0, 2300)


def test_test_data_indicator(read_tap: TapReader) -> None:
    control = next(c for c in VALID.children if c.tag == 4)
    marked = control._replace(children=(*control.children, primitive(110, b"T")))
    imported = read_tap(encode(edit(VALID, (4,), lambda e: marked)), POLICY)
    assert imported.meta.test_data
    assert not read_tap(read("tap_3_12_valid.ber"), POLICY).meta.test_data


def test_a_field_outside_the_application_class_is_refused(read_tap: TapReader) -> None:
    control = next(c for c in VALID.children if c.tag == 4)
    odd = control._replace(
        children=(
            *control.children,
            Element(control.tag_class.__class__(2), 1, 0, 0, False, b"x", ()),
        )
    )
    with pytest.raises(TapStructureError, match="APPLICATION"):
        read_tap(encode(edit(VALID, (4,), lambda e: odd)), POLICY)


def test_a_huge_file_is_refused_by_the_element_bound(read_tap: TapReader) -> None:
    listing = next(c for c in VALID.children if c.tag == 3)
    many = listing._replace(children=listing.children * 2)
    data = encode(edit(VALID, (3,), lambda e: many))
    assert len(read_tap(data, POLICY).records) == 8
    from payments.roaming import ber

    parse(data)
    with pytest.raises(BerElementCountError):
        ber.parse(data, max_elements=100)


@pytest.mark.parametrize(
    ("stamp", "valid"),
    [(b"20160229150200", True), (b"20150229150200", False), (b"20140301240000", False)],
)
def test_leap_days_and_hours(stamp: bytes, valid: bool, read_tap: TapReader) -> None:
    data = encode(edit(VALID, (*MOC_PATH, 147, 44, 16), lambda e: e._replace(contents=stamp)))
    if valid:
        assert read_tap(data, POLICY).records
    else:
        with pytest.raises(TapValueError, match="not a valid time"):
            read_tap(data, POLICY)
