"""Signed readings: canonical encoding both ways, strict decoding, domain-separated signatures."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tangle.errors import InvalidFieldError
from tangle.protocol.ids import Signature
from wallet.devices.errors import ReadingFormatError, ReadingSignatureError
from wallet.devices.reading import (
    MAX_READING_DATA,
    MIN_READING_SIZE,
    READING_DOMAIN,
    Form,
    Reading,
    SignedReading,
    decode_signed,
    encode_reading,
    encode_signed,
    verify_raw,
    verify_reading,
)

from ._support import NETWORK, device_id, device_key, raw_reading, reading

readings = st.builds(
    Reading,
    network_id=st.integers(0, 2**64 - 1),
    device_id=st.binary(min_size=32, max_size=32),
    counter=st.integers(1, 2**64 - 1),
    timestamp_ms=st.integers(0, 2**64 - 1),
    stream=st.integers(0, 0xFFFF),
    form=st.sampled_from(Form),
    data=st.binary(max_size=MAX_READING_DATA),
)


@given(readings, st.binary(min_size=64, max_size=64))
def test_round_trip_from_objects(content: Reading, signature: bytes) -> None:
    signed = SignedReading(reading=content, signature=Signature(signature))
    raw = encode_signed(signed)
    assert decode_signed(raw) == signed
    assert encode_signed(decode_signed(raw)) == raw


@given(st.binary(max_size=MIN_READING_SIZE + 40))
def test_round_trip_from_bytes(raw: bytes) -> None:
    """Any bytes either decode and re-encode to themselves, or raise ReadingFormatError."""
    try:
        signed = decode_signed(raw)
    except ReadingFormatError:
        return
    assert encode_signed(signed) == raw


def test_a_signed_reading_verifies_and_binds_every_field() -> None:
    signed = reading(1, 5)
    key = device_key(1).public_key
    verify_reading(signed, key)
    verify_raw(encode_signed(signed), key)
    for name, value in [
        ("network_id", NETWORK + 1),
        ("device_id", device_id(2)),
        ("counter", 6),
        ("timestamp_ms", 1),
        ("stream", 2),
        ("form", Form.SEALED),
        ("data", b"99.9C"),
    ]:
        changed = dataclasses.replace(signed.reading, **{name: value})
        with pytest.raises(ReadingSignatureError):
            verify_reading(SignedReading(reading=changed, signature=signed.signature), key)


def test_another_key_and_another_domain_fail() -> None:
    signed = reading(1, 5)
    with pytest.raises(ReadingSignatureError):
        verify_reading(signed, device_key(2).public_key)
    undomained = device_key(1).sign(encode_reading(signed.reading))
    with pytest.raises(ReadingSignatureError):
        verify_reading(
            SignedReading(reading=signed.reading, signature=undomained), device_key(1).public_key
        )
    assert READING_DOMAIN.startswith(b"tanglepay/")


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (lambda raw: raw[:-1], "bytes where"),
        (lambda raw: raw + b"\x00", "bytes where"),
        (lambda raw: raw[:100], "at least"),
        (lambda raw: b"\x02" + raw[1:], "version"),
        (lambda raw: raw[:59] + b"\x02" + raw[60:], "form"),
        (lambda raw: raw[:60] + (MAX_READING_DATA + 1).to_bytes(2, "little") + raw[62:], "data of"),
        (lambda raw: raw[:41] + bytes(8) + raw[49:], "counter 0"),
    ],
)
def test_every_framing_rule_is_named(mutate: object, rule: str) -> None:
    raw = raw_reading(1, 3)
    with pytest.raises(ReadingFormatError, match=rule):
        decode_signed(mutate(raw))  # type: ignore[operator]


def test_values_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidFieldError):
        reading(1, 0)
    with pytest.raises(InvalidFieldError):
        reading(1, 1, data=bytes(MAX_READING_DATA + 1))
