"""The canonical usage record: strict binary and JSON forms that round-trip both ways, an event
id over everything but the charge, field validation by name, and the keyed subscriber hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.errors import PaymentError
from payments.roaming import EventType, SubscriberHasher, UsageRecord
from payments.roaming.errors import (
    InvalidRecordError,
    InvalidSubscriberError,
    MalformedRecordError,
    RoamingError,
)
from payments.roaming.partner_file import ImportPolicy
from payments.roaming.record import EVENT_ID_DOMAIN, NO_MSISDN, RECORD_MAX_SIZE

from .strategies import records

# Time is not what these tests measure: on a loaded machine it must not fail them.
SHARED_MACHINE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

HASHER = SubscriberHasher(salt=b"agreement-salt-16")


def sample(**changes: object) -> UsageRecord:
    fields: dict[str, object] = {
        "sender": "DEUD1",
        "recipient": "FRAF1",
        "imsi_hash": HASHER.imsi("208011234567890"),
        "msisdn_hash": HASHER.msisdn("33612345678"),
        "event_type": EventType.DATA,
        "start_utc": 1_767_225_600,
        "duration_s": 600,
        "volume_up": 1_000,
        "volume_down": 50_000,
        "apn": "iot.example",
        "serving_network": "262-01",
        "charge": 125,
    }
    fields.update(changes)
    return UsageRecord(**fields)  # type: ignore[arg-type]


@SHARED_MACHINE
@given(records())
def test_decode_of_encode_is_the_record(record: UsageRecord) -> None:
    data = record.encode()
    assert len(data) <= RECORD_MAX_SIZE
    decoded = UsageRecord.decode(data)
    assert decoded == record
    assert decoded.event_id == record.event_id


@SHARED_MACHINE
@given(records())
def test_encode_of_decode_is_the_bytes(record: UsageRecord) -> None:
    data = record.encode()
    assert UsageRecord.decode(data).encode() == data


@SHARED_MACHINE
@given(records())
def test_canonical_json_round_trips_both_ways(record: UsageRecord) -> None:
    text = record.canonical_json()
    assert UsageRecord.from_canonical_json(text) == record
    assert UsageRecord.from_canonical_json(text).canonical_json() == text


@SHARED_MACHINE
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_malformed(data: bytes) -> None:
    try:
        record = UsageRecord.decode(data)
    except MalformedRecordError:
        return
    assert record.encode() == data


@SHARED_MACHINE
@given(records(), st.data())
def test_any_truncation_or_extension_is_malformed(record: UsageRecord, data: st.DataObject) -> None:
    encoded = record.encode()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(MalformedRecordError):
        UsageRecord.decode(encoded[:cut])
    with pytest.raises(MalformedRecordError, match="trailing"):
        UsageRecord.decode(encoded + data.draw(st.binary(min_size=1, max_size=8)))


def test_event_id_covers_every_field_but_the_charge() -> None:
    base = sample()
    assert sample(charge=999).event_id == base.event_id
    for name, value in [
        ("sender", "DEUD2"),
        ("recipient", "FRAF2"),
        ("imsi_hash", HASHER.imsi("208011234567891")),
        ("msisdn_hash", NO_MSISDN),
        ("start_utc", base.start_utc + 1),
        ("duration_s", 601),
        ("volume_up", 1_001),
        ("volume_down", 50_001),
        ("apn", "iot2.example"),
        ("serving_network", "262-02"),
    ]:
        assert sample(**{name: value}).event_id != base.event_id, name
    assert len(base.event_id) == 32


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sender", "deud1"),
        ("sender", "DEUD"),
        ("recipient", "DEUD1"),
        ("imsi_hash", b"\x01" * 31),
        ("imsi_hash", NO_MSISDN),
        ("msisdn_hash", "00" * 32),
        ("event_type", 0),
        ("start_utc", -1),
        ("duration_s", 2**32),
        ("volume_up", -5),
        ("volume_down", True),
        ("charge", 2**64),
        ("charge", 1.5),
        ("apn", "a" * 101),
        ("apn", "bad apn"),
        ("serving_network", "26201"),
        ("serving_network", "2620-1"),
    ],
)
def test_invalid_fields_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        sample(**{field: value})
    assert caught.value.field in {field, "recipient"}
    assert isinstance(caught.value, RoamingError)
    assert isinstance(caught.value, PaymentError)


def test_only_data_sessions_carry_volumes_and_messages_have_no_duration() -> None:
    with pytest.raises(InvalidRecordError, match="volume"):
        sample(event_type=EventType.MOC)
    with pytest.raises(InvalidRecordError, match="duration"):
        sample(event_type=EventType.SMS_MO, volume_up=0, volume_down=0, apn="")
    call = sample(event_type=EventType.MOC, volume_up=0, volume_down=0, apn="")
    assert call.duration_s == 600


def test_records_are_frozen_and_slotted() -> None:
    record = sample()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.charge = 1  # type: ignore[misc]
    assert not hasattr(record, "__dict__")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.update(event_id="00" * 32),
        lambda o: o.update(extra=1),
        lambda o: o.pop("charge"),
        lambda o: o.update(charge="125"),
        lambda o: o.update(charge=True),
        lambda o: o.update(imsi_hash=o["imsi_hash"].upper()),
        lambda o: o.update(imsi_hash="zz" * 32),
        lambda o: o.update(event_type="VOICE"),
        lambda o: o.update(sender=5),
    ],
)
def test_json_that_is_not_a_record_is_malformed(mutate: object) -> None:
    obj = json.loads(sample().canonical_json())
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(MalformedRecordError):
        UsageRecord.from_json_object(obj)


def test_non_canonical_json_is_refused() -> None:
    text = sample().canonical_json()
    assert UsageRecord.from_canonical_json(text.encode()) == sample()
    for other in (
        text.replace(",", ", "),
        json.dumps(json.loads(text)),
        text + "\n",
        "[" * 5000,
        "nan",
    ):
        with pytest.raises(MalformedRecordError):
            UsageRecord.from_canonical_json(other)


def test_hasher_is_keyed_and_domain_separated() -> None:
    other = SubscriberHasher(salt=b"another-salt-16b")
    assert HASHER.imsi("208011234567890") != other.imsi("208011234567890")
    assert HASHER.imsi("33612345678") != HASHER.msisdn("33612345678")
    assert HASHER.imsi("208011234567890") == SubscriberHasher(salt=b"agreement-salt-16").imsi(
        "208011234567890"
    )


def test_hasher_is_keyed_blake2b_with_a_person_per_kind() -> None:
    def keyed(value: str, person: bytes) -> bytes:
        salt = b"agreement-salt-16"
        return hashlib.blake2b(value.encode(), digest_size=32, key=salt, person=person).digest()

    for _ in range(2):  # the prepared keyed states are copied, never used up
        assert HASHER.imsi("208011234567890") == keyed("208011234567890", b"tp-roam-imsi")
        assert HASHER.msisdn("33612345678") == keyed("33612345678", b"tp-roam-msisdn")


@pytest.mark.parametrize(
    ("method", "value"),
    [
        ("imsi", "12345"),
        ("imsi", "1234567890123456"),
        ("imsi", "20801abc"),
        ("msisdn", ""),
        ("msisdn", "+3361"),
        ("imsi", "\uff12\uff10\uff18\uff10\uff11\uff11\uff12\uff13"),
        ("imsi", "20801123456789\u00b2"),  # a digit to isdigit(), not ASCII
        ("msisdn", "3361234 5678"),
        ("msisdn", "3361234567\n"),
    ],
)
def test_hasher_refuses_what_is_not_digits(method: str, value: str) -> None:
    with pytest.raises(InvalidSubscriberError) as caught:
        getattr(HASHER, method)(value)
    assert value not in str(caught.value) or not value


@pytest.mark.parametrize("salt", [b"", b"x" * 15, b"x" * 65])
def test_hasher_salt_length(salt: bytes) -> None:
    with pytest.raises(InvalidSubscriberError):
        SubscriberHasher(salt=salt)


def test_texts_checked_once_are_still_checked_for_every_record() -> None:
    from payments.roaming import record as module

    assert sample().apn == "iot.example"  # its texts are now remembered as checked
    for name, value in (("sender", "DEUD"), ("apn", "a b"), ("serving_network", "26-01")):
        with pytest.raises(InvalidRecordError, match=name):
            sample(**{name: value})

    class Text(str):
        __slots__ = ()

    # A str subclass is checked each time and never remembered.
    assert sample(apn=Text("iot.example")).apn == "iot.example"
    assert all(type(t) is str for t in module._APNS)
    with pytest.raises(InvalidRecordError, match="apn"):
        sample(apn=Text("iot example"))


def test_the_event_id_is_blake2b_over_the_domain_and_the_identity() -> None:
    record = sample()
    identity = record.encode()[:-8]
    expected = hashlib.blake2b(EVENT_ID_DOMAIN + identity, digest_size=32).digest()
    assert record.event_id == expected


def test_the_memo_of_checked_texts_is_bounded() -> None:
    from payments.roaming import record as module

    for n in range(module._TEXTS_REMEMBERED + 10):
        sample(apn=f"apn{n}")
    assert 0 < len(module._APNS) <= module._TEXTS_REMEMBERED


def test_many_imsis_hash_as_one_each_and_refuse_as_one_does() -> None:
    good = ["208011234567890", "262011", "90101000000042"]
    assert HASHER.imsis(good) == [HASHER.imsi(i) for i in good]
    assert HASHER.imsis([]) == []
    for bad in ("12345", "1234567890123456", "20801abc", "20801123456789\u00b2", 262011):
        with pytest.raises(InvalidSubscriberError) as one:
            HASHER.imsi(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidSubscriberError) as many:
            HASHER.imsis([good[0], bad, good[1]])  # type: ignore[list-item]
        assert str(many.value) == str(one.value)
    policy = ImportPolicy(hasher=HASHER, allowed_imsi_prefixes=frozenset({"20801", "262"}))
    assert policy.imsis(good) == [(HASHER.imsi(i), i[:3] != "901") for i in good]
    assert ImportPolicy(hasher=HASHER).imsis(good) == [(HASHER.imsi(i), True) for i in good]
