"""Device records: the canonical codec both ways, and the layout rules it enforces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tangle.errors import (
    DecodeError,
    InvalidFieldError,
    NonCanonicalError,
    TrailingBytesError,
    UnknownTypeError,
)
from tangle.protocol.codec import U32_MAX, U64_MAX, Reader
from tangle.protocol.device import (
    MAX_NAME,
    MAX_SIGNERS,
    MAX_URI,
    NO_GATEWAY,
    AdmitIssuer,
    Capability,
    DeviceId,
    DeviceRecord,
    DeviceStatus,
    IssuerRole,
    LiftQuarantine,
    Quarantine,
    RecordSignature,
    Register,
    RotateKey,
    SetStatus,
    Update,
    decode_record,
    encode_record,
)
from tangle.protocol.ids import Address, PublicKey, Signature
from tangle.protocol.payload import decode_payload, encode_payload
from tests.registry_records import record, register_body, signer

h32 = st.binary(min_size=32, max_size=32)
keys = h32.map(PublicKey)
serials = st.integers(1, U32_MAX)
device_ids = h32.map(DeviceId)


@st.composite
def registers(draw: st.DrawFn) -> Register:
    constrained = draw(st.booleans())
    gateway = draw(h32.filter(lambda g: g != NO_GATEWAY)) if constrained else NO_GATEWAY
    return Register(
        device_key=draw(keys),
        address=Address(draw(h32)),
        maker=draw(keys),
        model=draw(st.binary(max_size=MAX_NAME)),
        capability=Capability.CONSTRAINED if constrained else Capability.FULL,
        gateway=gateway,
        attributes_hash=draw(h32),
        uri=draw(st.binary(max_size=MAX_URI)),
    )


bodies = st.one_of(
    st.builds(
        AdmitIssuer,
        issuer=keys,
        role=st.sampled_from(IssuerRole),
        admitted=st.booleans(),
        serial=serials,
        name=st.binary(max_size=MAX_NAME),
    ),
    registers(),
    st.builds(
        Update,
        device_id=device_ids,
        serial=serials,
        attributes_hash=h32,
        uri=st.binary(max_size=MAX_URI),
    ),
    st.builds(
        RotateKey, device_id=device_ids, serial=serials, new_key=keys, new_address=h32.map(Address)
    ),
    st.builds(
        SetStatus, device_id=device_ids, serial=serials, status=st.sampled_from(DeviceStatus)
    ),
    st.builds(
        Quarantine,
        device_id=device_ids,
        serial=serials,
        reason=st.integers(0, 255),
        evidence_hash=h32,
        expires_after=serials,
    ),
    st.builds(LiftQuarantine, device_id=device_ids, serial=serials),
)


@st.composite
def records(draw: st.DrawFn) -> DeviceRecord:
    signers = sorted(draw(st.lists(keys, min_size=1, max_size=MAX_SIGNERS, unique=True)))
    sigs = tuple(
        RecordSignature(
            public_key=k, signature=Signature(draw(st.binary(min_size=64, max_size=64)))
        )
        for k in signers
    )
    return DeviceRecord(
        network_id=draw(st.integers(0, U64_MAX)), body=draw(bodies), signatures=sigs
    )


def _decode(data: bytes) -> DeviceRecord:
    r = Reader(data, "record")
    found = decode_record(r)
    r.finish()
    return found


@given(records())
def test_decode_inverts_encode(rec: DeviceRecord) -> None:
    data = encode_record(rec)
    assert _decode(data) == rec
    payload = encode_payload(rec)
    r = Reader(payload, "payload")
    assert decode_payload(r) == rec


@given(st.binary(max_size=400))
def test_encode_inverts_decode_and_garbage_is_refused_by_name(data: bytes) -> None:
    try:
        rec = _decode(data)
    except (DecodeError, InvalidFieldError):
        return
    assert encode_record(rec) == data


@given(records(), st.binary(min_size=1, max_size=8))
def test_trailing_and_truncated_bytes_are_refused(rec: DeviceRecord, extra: bytes) -> None:
    data = encode_record(rec)
    with pytest.raises(TrailingBytesError):
        _decode(data + extra)
    with pytest.raises(DecodeError):
        _decode(data[:-1])


def test_non_canonical_spellings_are_refused() -> None:
    a, b = signer(1), signer(2)
    rec = record(register_body(a, b.public_key), [a, b])
    data = bytearray(encode_record(rec))
    with pytest.raises(UnknownTypeError):
        _decode(bytes([9]) + bytes(data[1:]))
    count_at = len(data) - 2 * 96 - 1
    swapped = data[: count_at + 1] + data[count_at + 1 + 96 :] + data[count_at + 1 : count_at + 97]
    with pytest.raises(InvalidFieldError):  # signatures out of key order
        _decode(bytes(swapped))
    zero = data[:count_at] + b"\x00"
    with pytest.raises(NonCanonicalError):
        _decode(bytes(zero))
    admit = record(
        AdmitIssuer(issuer=a.public_key, role=IssuerRole.MAKER, admitted=True, serial=1, name=b""),
        [b],
    )
    flag = bytearray(encode_record(admit))
    flag[1 + 8 + 32 + 1] = 2  # admitted is 0 or 1
    with pytest.raises(NonCanonicalError):
        _decode(bytes(flag))


def test_a_constrained_device_names_its_gateway_and_a_full_one_none() -> None:
    body = register_body(signer(1), signer(2).public_key)
    with pytest.raises(InvalidFieldError):
        Register(**{**_fields(body), "capability": Capability.CONSTRAINED})
    with pytest.raises(InvalidFieldError):
        Register(**{**_fields(body), "gateway": b"\x01" * 32})


def test_serials_start_at_one() -> None:
    with pytest.raises(InvalidFieldError):
        record(LiftQuarantine(device_id=DeviceId(bytes(32)), serial=0), [signer(1)])


def _fields(body: Register) -> dict[str, object]:
    return {name: getattr(body, name) for name in Register.__dataclass_fields__}
