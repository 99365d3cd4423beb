"""The Numba TAP kernel against the tree reader: for files the writer makes (random events) and
for those files edited or cut at random, `read_tap` gives what `read_tap(..., reference=True)`
gives, the same records or the same named error at the same offset; the kernel reads every
file the writer makes, and declines the files it must not read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from payments.roaming import ImportPolicy, SubscriberHasher, tap
from payments.roaming.ber import Element, parse
from payments.roaming.errors import RoamingFormatError
from payments.roaming.record import EventType
from payments.roaming.tap import MAX_EVENTS, read_tap
from payments.roaming.tap_events import CallEvent
from payments.roaming.tap_scan import scan_batch
from payments.roaming.tap_writer import TapFileSpec, write_tap

from .ber_writer import edit, encode
from .strategies import TADIGS

if TYPE_CHECKING:
    from payments.roaming.partner_file import ImportedFile

POLICY = ImportPolicy(
    hasher=SubscriberHasher(salt=bytes(range(20))), allowed_imsi_prefixes=frozenset({"9010"})
)
T0 = 1_700_000_000
DIGITS = st.from_regex(r"[0-9]{6,15}", fullmatch=True)


@st.composite
def call_events(draw: st.DrawFn) -> CallEvent:
    kind = draw(st.sampled_from(EventType))
    data = kind is EventType.DATA
    return CallEvent(
        offset=0,
        event_type=kind,
        imsi=draw(st.sampled_from(["901010000000001", "2620100000"]) | DIGITS),
        msisdn=draw(st.none() | st.just("4917000000") | DIGITS),
        start_utc=T0 + draw(st.integers(0, 10**8)),
        duration_s=0 if kind is EventType.SUPPLEMENTARY else draw(st.integers(0, 2**32 - 1)),
        volume_up=draw(st.integers(0, 2**63 - 1)) if data else 0,
        volume_down=draw(st.integers(0, 2**40)) if data else 0,
        apn=draw(st.from_regex(r"[A-Za-z0-9.\-]{0,20}", fullmatch=True)) if data else "",
        charge=draw(st.integers(0, 2**59)),
    )


@st.composite
def tap_files(draw: st.DrawFn) -> bytes:
    sender = draw(TADIGS)
    spec = TapFileSpec(
        sender=sender,
        recipient=draw(TADIGS.filter(lambda t: t != sender)),
        sequence=draw(st.integers(1, 99_999)),
        created_utc=T0,
        currency="EUR",
        decimal_places=draw(st.integers(0, 6)),
        utc_offset_s=60 * draw(st.integers(-12 * 60, 14 * 60)),
    )
    return write_tap(spec, draw(st.lists(call_events(), min_size=1, max_size=8)))


def outcome(data: bytes, *, reference: bool) -> ImportedFile | tuple[type, int, str]:
    try:
        return read_tap(data, POLICY, reference=reference)
    except RoamingFormatError as e:
        return type(e), e.offset, str(e)


def assert_same(data: bytes) -> None:
    assert outcome(data, reference=False) == outcome(data, reference=True)


def primitives(element: Element) -> list[Element]:
    if not element.constructed:
        return [element]
    return [p for child in element.children for p in primitives(child)]


def replace_contents(element: Element, target: Element, contents: bytes) -> Element:
    if element is target:
        return element._replace(contents=contents)
    children = tuple(replace_contents(c, target, contents) for c in element.children)
    return element._replace(children=children)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tap_files())
def test_the_kernel_reads_every_written_file_as_the_reference_does(data: bytes) -> None:
    scanned = scan_batch(data, MAX_EVENTS)
    assert scanned is not None
    kernel = tap._read(scanned.root, data, POLICY, scanned)  # the kernel path, no fallback
    assert kernel is not None
    assert read_tap(data, POLICY) == kernel
    reference = read_tap(data, POLICY, reference=True)
    assert kernel == reference
    assert [r.event_id for r in kernel.records] == [r.event_id for r in reference.records]
    assert kernel.meta.unknown_range_events == reference.meta.unknown_range_events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tap_files(), st.data())
def test_a_file_with_one_value_changed_reads_the_same_on_both_paths(
    data: bytes, draw: st.DataObject
) -> None:
    tree = parse(data)
    target = draw.draw(st.sampled_from(primitives(tree)))
    contents = draw.draw(
        st.binary(max_size=16)
        | st.from_regex(rb"[0-9]{0,16}", fullmatch=True)
        | st.sampled_from([b"\x00", b"\xff", b"\x00\x01", b"\x80", b"00", b"2a", b"\xff" * 8])
    )
    assert_same(encode(replace_contents(tree, target, contents)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tap_files(), st.data())
def test_a_file_with_bytes_changed_or_cut_reads_the_same_on_both_paths(
    data: bytes, draw: st.DataObject
) -> None:
    at = draw.draw(st.integers(0, len(data) - 1))
    edit = draw.draw(st.sampled_from(["flip", "set", "cut", "drop", "insert"]))
    if edit == "flip":
        changed = (
            data[:at] + bytes([data[at] ^ (1 << draw.draw(st.integers(0, 7)))]) + data[at + 1 :]
        )
    elif edit == "set":
        changed = data[:at] + bytes([draw.draw(st.integers(0, 255))]) + data[at + 1 :]
    elif edit == "cut":
        changed = data[:at]
    elif edit == "drop":
        changed = data[:at] + data[at + 1 :]
    else:
        changed = data[:at] + draw.draw(st.binary(min_size=1, max_size=4)) + data[at:]
    assume(changed != data)
    assert_same(changed)


def test_an_event_charge_past_int64_is_declined_and_summed_by_the_reference() -> None:
    event = CallEvent(
        offset=0, event_type=EventType.DATA, imsi="901010000000001", msisdn=None,
        start_utc=T0, duration_s=1, volume_up=0, volume_down=0, apn="", charge=2**63 - 1,
    )  # fmt: skip
    spec = TapFileSpec(
        sender="AAAAA", recipient="BBBBB", sequence=1, created_utc=T0, currency="EUR",
        decimal_places=2, declared_total_charge=0,
    )  # fmt: skip
    single = write_tap(spec, [event])
    assert scan_batch(single, MAX_EVENTS) is not None
    # The event's ChargeDetailList with its one detail (ChargeType "00") twice.
    twice = edit(
        parse(single), (3, 14, 121, 70, 69, 64), lambda e: e._replace(children=e.children * 2)
    )
    data = encode(twice)
    assert scan_batch(data, MAX_EVENTS) is None
    (record,) = read_tap(data, POLICY).records
    assert record.charge == 2**64 - 2
    assert read_tap(data, POLICY) == read_tap(data, POLICY, reference=True)


@pytest.mark.parametrize(
    ("imsi", "accepted"),
    [("12345", False), ("123456", True), ("123456789012345", True)],
)
def test_an_imsi_the_hasher_refuses_is_declined(imsi: str, accepted: bool) -> None:
    event = CallEvent(
        offset=0, event_type=EventType.MOC, imsi=imsi, msisdn="49", start_utc=T0,
        duration_s=5, volume_up=0, volume_down=0, apn="", charge=1,
    )  # fmt: skip
    spec = TapFileSpec(
        sender="AAAAA", recipient="BBBBB", sequence=1, created_utc=T0, currency="EUR",
        decimal_places=2,
    )  # fmt: skip
    data = write_tap(spec, [event])
    assert (scan_batch(data, MAX_EVENTS) is not None) is accepted
    assert_same(data)


def test_more_events_than_allowed_are_declined() -> None:
    event = CallEvent(
        offset=0, event_type=EventType.SUPPLEMENTARY, imsi="901010000000001", msisdn=None,
        start_utc=T0, duration_s=0, volume_up=0, volume_down=0, apn="", charge=0,
    )  # fmt: skip
    spec = TapFileSpec(
        sender="AAAAA", recipient="BBBBB", sequence=1, created_utc=T0, currency="EUR",
        decimal_places=2,
    )  # fmt: skip
    data = write_tap(spec, [event] * 3)
    assert scan_batch(data, 3) is not None
    assert scan_batch(data, 2) is None
