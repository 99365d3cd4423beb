"""The BER writer and the TAP 3.12 transfer batch writer against the reader and the importer:
every value written reads back as itself, a written file imports to the records of its events,
and the writer refuses by name what the reader would refuse."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.roaming import EventType, UsageRecord, read_tap
from payments.roaming.ber import Element, TagClass, parse
from payments.roaming.ber_writer import (
    MAX_TAG,
    digits,
    encode,
    identifier,
    integer,
    integer_contents,
    length,
    sequence,
    text,
)
from payments.roaming.errors import BerWriteError, TapValueError
from payments.roaming.partner_file import FileKind, ImportPolicy
from payments.roaming.record import INSTANT_EVENTS, NO_MSISDN
from payments.roaming.subscriber import SubscriberHasher
from payments.roaming.tap_events import CallEvent
from payments.roaming.tap_writer import TapFileSpec, write_tap

POLICY = ImportPolicy(hasher=SubscriberHasher(salt=b"tap-writer-test-salt"))
T0 = 1_700_000_000


# -- the BER writer ----------------------------------------------------------------------------


@given(st.integers(0, MAX_TAG), st.sampled_from(TagClass), st.binary(max_size=300))
def test_a_primitive_value_reads_back_with_its_tag_and_contents(
    tag: int, tag_class: TagClass, contents: bytes
) -> None:
    if tag == 0 and tag_class is TagClass.UNIVERSAL:
        tag = 1  # UNIVERSAL 0 is end-of-contents: refused (below)
    raw = identifier(tag_class, False, tag) + length(len(contents)) + contents
    element = parse(raw)
    assert (element.tag_class, element.tag, element.contents) == (tag_class, tag, contents)
    assert encode(element) == raw


def shape(element: Element) -> tuple[object, ...]:
    """An element without its offsets."""
    return (
        element.tag_class,
        element.tag,
        element.constructed,
        element.contents,
        tuple(shape(c) for c in element.children),
    )


TAGS = st.one_of(st.integers(1, 30), st.integers(31, 127), st.integers(128, 20_000))
PRIMITIVES = st.builds(
    lambda cls, tag, contents: Element(cls, tag, 0, 0, False, contents, ()),
    st.sampled_from([TagClass.APPLICATION, TagClass.CONTEXT]),
    TAGS,
    st.binary(max_size=140),
)
TREES = st.recursive(
    PRIMITIVES,
    lambda children: st.builds(
        lambda tag, items: Element(TagClass.APPLICATION, tag, 0, 0, True, b"", tuple(items)),
        TAGS,
        st.lists(children, max_size=5),
    ),
    max_leaves=25,
)


@given(TREES)
def test_a_written_tree_parses_back_to_itself(tree: Element) -> None:
    """Short and long tags and lengths, primitive and constructed, at every depth: the reader's
    inline path for short primitives and its general path agree with the writer."""
    raw = encode(tree)
    parsed = parse(raw)
    assert shape(parsed) == shape(tree)
    assert encode(parsed) == raw


@given(st.integers(-(2**63), 2**63 - 1))
def test_an_integer_is_minimal_and_reads_back(value: int) -> None:
    element = parse(integer(300, value, "n"))
    assert element.integer("n") == value
    assert integer_contents(value, "n") == element.contents


@given(st.from_regex(r"[0-9]{1,15}", fullmatch=True))
def test_digits_read_back(value: str) -> None:
    assert parse(digits(129, value, "Imsi")).digits("Imsi", longest=15) == value


def test_the_writer_refuses_what_the_reader_would() -> None:
    with pytest.raises(BerWriteError, match="tag"):
        identifier(TagClass.APPLICATION, False, MAX_TAG + 1)
    with pytest.raises(BerWriteError, match="end-of-contents"):
        identifier(TagClass.UNIVERSAL, False, 0)
    with pytest.raises(BerWriteError, match="length"):
        length(2**32)
    with pytest.raises(BerWriteError, match="more than 8 octets"):
        integer_contents(2**63, "Charge")
    with pytest.raises(BerWriteError, match="not printable"):
        text(135, "E\nR", "LocalCurrency")
    with pytest.raises(BerWriteError, match="not decimal digits"):
        digits(129, "12a4", "Imsi")


def test_a_long_value_uses_the_minimal_long_form_length() -> None:
    raw = sequence(3, *(text(135, "EUR", "c") for _ in range(100)))
    # APPLICATION 3 constructed, then 700 (100 fields of 7 octets) in two length octets
    assert raw[:4] == bytes((0x63, 0x82, 0x02, 0xBC))
    assert len(parse(raw).children) == 100


# -- the TAP writer ----------------------------------------------------------------------------


@st.composite
def call_events(draw: st.DrawFn) -> CallEvent:
    kind = draw(st.sampled_from(EventType))
    data = kind is EventType.DATA
    return CallEvent(
        offset=0,
        event_type=kind,
        imsi=draw(st.from_regex(r"[0-9]{6,15}", fullmatch=True)),
        msisdn=draw(st.none() | st.from_regex(r"[0-9]{1,15}", fullmatch=True)),
        start_utc=draw(st.integers(T0, T0 + 400 * 86_400)),
        duration_s=0 if kind in INSTANT_EVENTS else draw(st.integers(0, 2**32 - 1)),
        volume_up=draw(st.integers(0, 2**62)) if data else 0,
        volume_down=draw(st.integers(0, 2**62)) if data else 0,
        apn=draw(st.from_regex(r"[a-z0-9.\-]{0,63}", fullmatch=True)) if data else "",
        charge=draw(st.integers(0, 2**40)),
    )


SPECS = st.builds(
    TapFileSpec,
    sender=st.just("AAAAA"),
    recipient=st.just("BBB01"),
    sequence=st.integers(1, 99_999),
    created_utc=st.integers(T0, T0 + 500 * 86_400),
    currency=st.sampled_from(["EUR", "USD"]),
    decimal_places=st.integers(0, 6),
    utc_offset_s=st.integers(-12 * 60, 14 * 60).map(lambda m: m * 60),
    test_data=st.booleans(),
)


def expected_record(spec: TapFileSpec, event: CallEvent) -> UsageRecord:
    return UsageRecord(
        sender=spec.sender,
        recipient=spec.recipient,
        imsi_hash=POLICY.hasher.imsi(event.imsi),
        msisdn_hash=NO_MSISDN if event.msisdn is None else POLICY.hasher.msisdn(event.msisdn),
        event_type=event.event_type,
        start_utc=event.start_utc,
        duration_s=event.duration_s,
        volume_up=event.volume_up,
        volume_down=event.volume_down,
        apn=event.apn,
        serving_network=spec.sender,
        charge=event.charge,
    )


@settings(max_examples=60, deadline=None)
@given(SPECS, st.lists(call_events(), min_size=1, max_size=12))
def test_a_written_file_imports_to_its_events(spec: TapFileSpec, events: list[CallEvent]) -> None:
    raw = write_tap(spec, events)
    assert encode(parse(raw)) == raw  # canonical: definite, minimal lengths
    imported = read_tap(raw, POLICY)
    assert imported.records == tuple(expected_record(spec, e) for e in events)
    meta = imported.meta
    assert meta.kind is FileKind.TAP_TRANSFER_BATCH
    assert (meta.sender, meta.recipient, meta.sequence) == (
        spec.sender,
        spec.recipient,
        spec.sequence,
    )
    assert meta.created_utc == meta.available_utc == meta.cutoff_utc == spec.created_utc
    assert (meta.local_currency, meta.decimal_places) == (spec.currency, spec.decimal_places)
    assert meta.test_data is spec.test_data
    assert meta.declared_total_charge == imported.total_charge
    assert meta.declared_event_count == len(events)
    assert meta.declared_earliest_utc == min(e.start_utc for e in events)
    assert meta.declared_latest_utc == max(e.start_utc for e in events)


def one_event(**changes: object) -> CallEvent:
    event = CallEvent(
        offset=0,
        event_type=EventType.DATA,
        imsi="901011234567890",
        msisdn=None,
        start_utc=T0,
        duration_s=60,
        volume_up=1,
        volume_down=2,
        apn="iot.example",
        charge=5,
    )
    return replace(event, **changes)  # type: ignore[arg-type]


SPEC = TapFileSpec(
    sender="AAAAA", recipient="BBB01", sequence=7, created_utc=T0, currency="EUR", decimal_places=3
)


def test_a_stated_audit_total_is_written_as_given() -> None:
    """A billing system's wrong audit total reaches the importer, which reports it as declared
    (validation at the HPMN flags it)."""
    raw = write_tap(replace(SPEC, declared_total_charge=1), [one_event(), one_event(charge=9)])
    imported = read_tap(raw, POLICY)
    assert (imported.meta.declared_total_charge, imported.total_charge) == (1, 14)


def test_the_same_events_give_the_same_bytes() -> None:
    assert write_tap(SPEC, [one_event()]) == write_tap(SPEC, [one_event()])


@pytest.mark.parametrize(
    ("spec", "events", "what"),
    [
        (SPEC, [], "CallEventDetailList"),
        (SPEC, [one_event(volume_up=-1)], "DataVolumeOutgoing"),
        (SPEC, [one_event(charge=-5)], "Charge"),
        (SPEC, [one_event(start_utc=-7200)], "LocalTimeStamp"),
        (SPEC, [one_event(imsi="90101x")], "Imsi"),
    ],
)
def test_the_tap_writer_refuses_by_name(
    spec: TapFileSpec, events: list[CallEvent], what: str
) -> None:
    with pytest.raises(BerWriteError) as caught:
        write_tap(spec, events)
    assert caught.value.what == what


@pytest.mark.parametrize(
    "changes",
    [{"sequence": 0}, {"decimal_places": 7}, {"utc_offset_s": 30}, {"utc_offset_s": 15 * 3600}],
)
def test_a_spec_out_of_range_is_refused(changes: dict[str, int]) -> None:
    with pytest.raises(BerWriteError):
        replace(SPEC, **changes)  # type: ignore[arg-type]


def test_an_event_the_importer_would_refuse_is_refused_there() -> None:
    """The writer encodes what the format can carry; the importer's own rules (an IMSI too short
    for the hasher) still apply to what it reads."""
    with pytest.raises(TapValueError):
        read_tap(write_tap(SPEC, [one_event(imsi="12345")]), POLICY)
