"""Sealed readings: grants, revocations, period keys; anchoring and proving over ciphertext."""

from __future__ import annotations

import dataclasses

import pytest
from nacl.public import PrivateKey

from wallet.client import NodeClient
from wallet.devices.agent import DeviceAgent
from wallet.devices.batch import Batch, anchor_payload, check_batch_path, leaf_of, read_anchor
from wallet.devices.errors import (
    GrantSignatureError,
    NoGrantError,
    OpenError,
    SealFormatError,
)
from wallet.devices.gateway import Gateway
from wallet.devices.reading import Form, Reading, decode_signed, encode_signed, sign_reading
from wallet.devices.sealed import (
    MAX_PLAINTEXT,
    Keyring,
    StreamKeys,
    StreamRecord,
    StreamRecordKind,
    check_record,
    decode_record,
    encode_record,
)

from ._support import NETWORK, device_id, device_key

OWNER = device_key(40)


def _stream() -> StreamKeys:
    return StreamKeys(network_id=NETWORK, device_id=device_id(1), stream=1, owner=OWNER)


def _sealed(keys: StreamKeys, counter: int, plaintext: bytes) -> bytes:
    content = Reading(
        network_id=NETWORK,
        device_id=device_id(1),
        counter=counter,
        timestamp_ms=counter,
        stream=1,
        form=Form.PLAIN,
        data=b"",
    )
    return encode_signed(sign_reading(keys.seal(content, plaintext), device_key(1)))


def _reader(records: list[StreamRecord]) -> Keyring:
    ring = Keyring(PrivateKey.generate())
    for record in records:
        if record.kind == StreamRecordKind.KEY and record.grantee == ring.public_key:
            ring.add(record, OWNER.public_key)
    return ring


def test_a_grantee_reads_and_a_stranger_does_not() -> None:
    keys = _stream()
    alice = Keyring(PrivateKey.generate())
    grant, key = keys.grant(alice.public_key)
    check_record(grant, OWNER.public_key)
    alice.add(key, OWNER.public_key)
    raw = _sealed(keys, 1, b"21.5C")
    assert b"21.5C" not in raw
    assert alice.open(decode_signed(raw).reading) == b"21.5C"
    stranger = Keyring(PrivateKey.generate())
    with pytest.raises(NoGrantError):
        stranger.open(decode_signed(raw).reading)
    with pytest.raises(SealFormatError):  # someone else's key record
        stranger.add(key, OWNER.public_key)


def test_a_revoked_party_cannot_read_data_written_after_revocation() -> None:
    keys = _stream()
    alice, bob = Keyring(PrivateKey.generate()), Keyring(PrivateKey.generate())
    published: list[StreamRecord] = []
    for ring in (alice, bob):
        _, key = keys.grant(ring.public_key)
        ring.add(key, OWNER.public_key)
        published.append(key)
    before = decode_signed(_sealed(keys, 1, b"before")).reading
    published += keys.revoke(bob.public_key)
    after = decode_signed(_sealed(keys, 2, b"after")).reading
    for record in published:  # bob sees every published record; none for the new period is his
        if record.kind == StreamRecordKind.KEY and record.grantee == alice.public_key:
            alice.add(record, OWNER.public_key)
        if record.kind == StreamRecordKind.KEY and record.period == keys.period:
            with pytest.raises(SealFormatError):
                bob.add(record, OWNER.public_key)
    assert alice.open(after) == b"after"
    assert bob.open(before) == b"before"
    with pytest.raises(NoGrantError):
        bob.open(after)
    assert [r.kind for r in published[2:]] == [StreamRecordKind.REVOKE, StreamRecordKind.KEY]


def test_records_round_trip_and_forgeries_are_named() -> None:
    keys = _stream()
    alice = Keyring(PrivateKey.generate())
    for record in keys.grant(alice.public_key):
        raw = encode_record(record)
        assert decode_record(raw) == record
        assert encode_record(decode_record(raw)) == raw
        with pytest.raises(GrantSignatureError):
            check_record(record, device_key(41).public_key)
        forged = bytearray(raw)
        forged[12] ^= 1
        with pytest.raises(GrantSignatureError):
            check_record(decode_record(bytes(forged)), OWNER.public_key)
        for bad in (raw[:-1], raw + b"\x00", b"\x02" + raw[1:], raw[:1] + b"\x09" + raw[2:]):
            with pytest.raises(SealFormatError):
                decode_record(bad)


def test_a_tampered_ciphertext_or_a_moved_one_does_not_open() -> None:
    keys = _stream()
    alice = _reader([])
    alice.add(keys.grant(alice.public_key)[1], OWNER.public_key)
    reading = decode_signed(_sealed(keys, 1, b"x" * MAX_PLAINTEXT)).reading
    flipped = bytearray(reading.data)
    flipped[-1] ^= 1
    with pytest.raises(OpenError):
        alice.open(dataclasses.replace(reading, data=bytes(flipped)))
    with pytest.raises(OpenError):  # the same ciphertext under another counter
        alice.open(dataclasses.replace(reading, counter=2))
    with pytest.raises(SealFormatError):
        keys.seal(reading, b"x" * (MAX_PLAINTEXT + 1))


def test_sealed_readings_are_verified_batched_and_proved_without_the_key() -> None:
    keys = _stream()
    gateway = Gateway(network_id=NETWORK)
    gateway.serve(device_id(1), device_key(1).public_key)
    raws = [_sealed(keys, c, f"{c} kWh".encode()) for c in range(1, 5)]
    for raw in raws:
        gateway.accept(raw)
    batch = gateway.seal()
    assert isinstance(batch, Batch)
    assert batch.leaves == tuple(leaf_of(r) for r in raws)
    anchor = read_anchor(anchor_payload(batch.anchor))
    for index, raw in enumerate(raws):
        check_batch_path(raw, batch.path(index), anchor)


async def test_an_agent_seals_its_readings_for_the_granted() -> None:
    keys = _stream()
    alice = Keyring(PrivateKey.generate())
    alice.add(keys.grant(alice.public_key)[1], OWNER.public_key)
    async with NodeClient("http://127.0.0.1:9") as client:  # not called: readings are local
        agent = DeviceAgent(client, network_id=NETWORK, key=device_key(1), device_id=device_id(1))
        raw = agent.reading(b"secret 21.5C", timestamp_ms=1, stream=1, sealed=keys)
        plain = agent.reading(b"public", timestamp_ms=2, stream=1)
    sealed = decode_signed(raw).reading
    assert (sealed.form, sealed.counter, agent.counter) == (Form.SEALED, 1, 2)
    assert alice.open(sealed) == b"secret 21.5C"
    assert decode_signed(plain).reading.data == b"public"
