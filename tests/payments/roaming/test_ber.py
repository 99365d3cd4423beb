"""The strict BER reader: definite and indefinite lengths give the same tree, every malformed
input raises its named error at the right offset, and no input (random or a mutated sample
file) gets anything out of any importer but a roaming error or a result."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.roaming import read_nrtrde, read_rap, read_tap
from payments.roaming.ber import MAX_DEPTH, Element, TagClass, parse
from payments.roaming.errors import (
    BerElementCountError,
    BerEndOfContentsError,
    BerIntegerError,
    BerLengthError,
    BerNestingError,
    BerPrimitiveError,
    BerTagError,
    BerTrailingBytesError,
    BerTruncatedError,
    RoamingError,
    RoamingFormatError,
    TapValueError,
)

from .vectors import POLICY, read


def shape(element: Element) -> object:
    """The tree without offsets, to compare two encodings of the same values."""
    if element.constructed:
        return (element.tag_class, element.tag, tuple(shape(c) for c in element.children))
    return (element.tag_class, element.tag, element.contents)


def definite_to_indefinite(data: bytes) -> bytes:
    """Re-encode every constructed value with an indefinite length (an independent writer)."""

    def walk(element: Element) -> bytes:
        ident = data[element.offset : element.value_offset]
        # Drop the length octets: the identifier ends where the length begins.
        ident_len = 1 if data[element.offset] & 0x1F != 0x1F else _tag_len(data, element.offset)
        identifier = ident[:ident_len]
        if not element.constructed:
            return ident + element.contents
        return identifier + b"\x80" + b"".join(walk(c) for c in element.children) + b"\x00\x00"

    return walk(parse(data))


def _tag_len(data: bytes, offset: int) -> int:
    n = 1
    while data[offset + n] & 0x80:
        n += 1
    return n + 1


@pytest.mark.parametrize(
    "name", ["tap_3_12_valid.ber", "nrt_2_1.ber", "tap_notification.ber", "rap_mini.ber"]
)
def test_indefinite_lengths_read_the_same_as_definite(name: str) -> None:
    data = read(name)
    indefinite = definite_to_indefinite(data)
    assert indefinite != data
    assert shape(parse(indefinite)) == shape(parse(data))


def test_an_indefinite_tap_file_imports_to_the_same_records() -> None:
    data = read("tap_3_12_valid.ber")
    indefinite = read_tap(definite_to_indefinite(data), POLICY)
    definite = read_tap(data, POLICY)
    assert indefinite.records == definite.records
    assert indefinite.meta.declared_total_charge == definite.meta.declared_total_charge == 2300


def test_high_tag_numbers_and_offsets() -> None:
    # [APPLICATION 196] primitive "ab", inside [APPLICATION 1] constructed.
    data = bytes.fromhex("6106 5f8144 026162")
    root = parse(data)
    assert (root.tag_class, root.tag, root.constructed) == (TagClass.APPLICATION, 1, True)
    (child,) = root.children
    assert (child.tag, child.offset, child.value_offset, child.contents) == (196, 2, 6, b"ab")


@pytest.mark.parametrize(
    ("hex_data", "error", "offset"),
    [
        ("", BerTruncatedError, 0),
        ("5f", BerTruncatedError, 1),
        ("5f81", BerTruncatedError, 2),
        ("04", BerTruncatedError, 1),
        ("0482", BerTruncatedError, 2),
        ("0403aa", BerLengthError, 1),
        ("0485ffffffffff", BerLengthError, 1),
        ("04ff", BerLengthError, 1),
        ("3003 0405aa", BerLengthError, 3),
        ("0480 0000", BerPrimitiveError, 1),
        ("3080 0401aa", BerTruncatedError, 5),
        ("3080 0001", BerEndOfContentsError, 2),
        ("3080 00", BerTruncatedError, 2),
        ("3002 0000", BerEndOfContentsError, 2),
        ("0000", BerEndOfContentsError, 0),
        ("0401aa 0000", BerEndOfContentsError, 3),
        ("0401aa 01", BerTrailingBytesError, 3),
        ("1f8001 00", BerTagError, 0),
        ("1f05 00", BerTagError, 0),
        ("1f8181818101 00", BerTagError, 0),
    ],
)
def test_malformed_ber_raises_named_error_with_offset(
    hex_data: str, error: type, offset: int
) -> None:
    with pytest.raises(error) as caught:
        parse(bytes.fromhex(hex_data))
    assert caught.value.offset == offset


def test_nesting_beyond_the_bound_is_refused_definite_and_indefinite() -> None:
    depth = MAX_DEPTH + 1
    indefinite = b"\x30\x80" * depth + b"\x04\x00" + b"\x00\x00" * depth
    with pytest.raises(BerNestingError):
        parse(indefinite)
    definite = b"\x04\x00"
    for _ in range(depth):
        definite = (
            b"\x30" + bytes([len(definite)]) + definite
            if len(definite) < 128
            else b"\x30\x81" + bytes([len(definite)]) + definite
        )
    with pytest.raises(BerNestingError):
        parse(definite)
    shallow = b"\x30\x80" * (MAX_DEPTH - 1) + b"\x04\x00" + b"\x00\x00" * (MAX_DEPTH - 1)
    assert parse(shallow).constructed


def test_element_count_is_bounded() -> None:
    data = b"\x30\x0a" + b"\x05\x00" * 5
    assert len(parse(data).children) == 5
    with pytest.raises(BerElementCountError) as caught:
        parse(data, max_elements=5)
    assert caught.value.offset == 10  # the sixth element, the root counted first


@pytest.mark.parametrize(
    ("contents", "value"),
    [
        ("00", 0),
        ("7f", 127),
        ("0080", 128),
        ("ff", -1),
        ("80", -128),
        ("ff7f", -129),
        ("0083215600", 2_200_000_000),
    ],
)
def test_integers(contents: str, value: int) -> None:
    element = parse(bytes.fromhex(f"02{len(contents) // 2:02x}{contents}"))
    assert element.integer("n") == value


@pytest.mark.parametrize("contents", ["", "0000", "007f", "ffff", "ff80", "010203040506070809"])
def test_bad_integers(contents: str) -> None:
    element = parse(bytes.fromhex(f"02{len(contents) // 2:02x}{contents}"))
    with pytest.raises(BerIntegerError) as caught:
        element.integer("n")
    assert caught.value.offset == 2


def test_negative_where_unsigned_is_needed() -> None:
    with pytest.raises(TapValueError):
        parse(bytes.fromhex("0201fe")).unsigned("volume")


def test_digit_strings() -> None:
    assert (
        parse(bytes.fromhex("0408133713371337133f")).digits("imsi", longest=15) == "133713371337133"
    )
    for bad in ("0402f133", "04021a33", "0400"):
        with pytest.raises(TapValueError):
            parse(bytes.fromhex(bad)).digits("imsi", longest=15)


def test_primitive_and_constructed_are_checked() -> None:
    with pytest.raises(BerPrimitiveError):
        parse(bytes.fromhex("3000")).integer("n")
    with pytest.raises(BerPrimitiveError):
        parse(bytes.fromhex("0400")).items("list")


READERS = [
    lambda data: read_tap(data, POLICY),
    lambda data: read_nrtrde(data, POLICY),
    read_rap,
]
SAMPLES = [
    "tap_3_12_valid.ber",
    "nrt_2_1.ber",
    "rap_mini.ber",
    "tap_notification.ber",
    "rap_ack.ber",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_an_importer(data: bytes) -> None:
    for reader in READERS:
        with contextlib.suppress(RoamingError):
            reader(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(read(draw(st.sampled_from(SAMPLES))))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete" and len(data) > 1:
            del data[at]
        else:
            del data[at:]
        if not data:
            break
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_sample_files_never_crash_an_importer(data: bytes) -> None:
    for reader in READERS:
        offset = 0
        try:
            reader(data)
        except RoamingFormatError as e:
            offset = e.offset
        except RoamingError:
            pass
        assert 0 <= offset <= len(data)


def test_text_must_be_printable_ascii() -> None:
    assert parse(bytes.fromhex("0403455552")).text("currency", shortest=3, longest=3) == "EUR"
    for bad in ("04034555ff", "0403455500", "04024555"):
        with pytest.raises(TapValueError) as caught:
            parse(bytes.fromhex(bad)).text("currency", shortest=3, longest=3)
        assert caught.value.offset == 2


@pytest.mark.parametrize(
    ("hex_data", "error", "offset"),
    [
        ("3004 1f8001 00", BerTagError, 2),
        ("3003 1f05 00", BerTagError, 2),
        ("3007 1f8181818101 00", BerTagError, 2),
        ("3003 5f81 44", BerTruncatedError, 5),
        ("3002 5f81", BerTruncatedError, 4),
    ],
)
def test_tag_rules_hold_inside_a_constructed_value(
    hex_data: str, error: type[RoamingFormatError], offset: int
) -> None:
    # the children of a definite-length value are read by a faster path than the top level
    with pytest.raises(error) as caught:
        parse(bytes.fromhex(hex_data))
    assert caught.value.offset == offset


def test_one_and_two_octet_tag_numbers_inside_a_constructed_value() -> None:
    data = bytes.fromhex("300d 5f1f 0161 5f7f 0162 5f8100 0163")
    tags = [(c.tag, c.offset, c.value_offset, c.contents) for c in parse(data).children]
    assert tags == [(31, 2, 5, b"a"), (127, 6, 9, b"b"), (128, 10, 14, b"c")]
