"""The channel protocol's encodings and the sans-I/O `Connection`: canonical both ways, strict."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments import (
    CLOSED,
    NEED_DATA,
    Ack,
    ChannelFrameError,
    Connection,
    ConnectionClosedError,
    Event,
    Hello,
    Pay,
    PaymentError,
    Reject,
    Role,
    UnexpectedChannelFrameError,
    VersionMismatchError,
    decode_frame,
    decode_signed_proof,
    encode_event,
    encode_signed_proof,
)
from payments.channels.frames import HEADER
from payments.channels.wire import BODY_LIMITS, FrameType
from tests.payments_support import CHANNEL, NETWORK, PAYER, events, signed, signed_proofs

if TYPE_CHECKING:
    from tangle.protocol.channel import SignedBalanceProof


@given(signed_proofs)
def test_signed_proof_round_trip(proof: SignedBalanceProof) -> None:
    data = encode_signed_proof(proof)
    assert len(data) == (185 if proof.payee_signature is not None else 121)
    assert decode_signed_proof(data) == proof
    assert encode_signed_proof(decode_signed_proof(data)) == data


@given(signed_proofs, st.data())
def test_signed_proof_rejects_truncation_trailing_and_flags(
    proof: SignedBalanceProof, data: st.DataObject
) -> None:
    raw = encode_signed_proof(proof)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(ChannelFrameError):
        decode_signed_proof(raw[:cut])
    with pytest.raises(ChannelFrameError):
        decode_signed_proof(raw + data.draw(st.binary(min_size=1, max_size=70)))
    flag = 120
    bad = raw[:flag] + bytes([data.draw(st.integers(2, 255))]) + raw[flag + 1 :]
    with pytest.raises(ChannelFrameError):
        decode_signed_proof(bad)


@given(st.binary(max_size=300))
def test_signed_proof_garbage_is_refused_or_canonical(raw: bytes) -> None:
    try:
        proof = decode_signed_proof(raw)
    except ChannelFrameError:
        return
    assert encode_signed_proof(proof) == raw


@given(events)
def test_frame_round_trip(event: Event) -> None:
    frame = encode_event(event)
    length, kind = HEADER.unpack_from(frame)
    assert length == len(frame) - HEADER.size <= BODY_LIMITS[FrameType(kind)]
    assert decode_frame(frame) == event
    assert encode_event(decode_frame(frame)) == frame


@given(events, st.data())
def test_mutated_frames_are_refused_or_canonical(event: Event, data: st.DataObject) -> None:
    frame = bytearray(encode_event(event))
    position = data.draw(st.integers(0, len(frame) - 1))
    frame[position] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_frame(bytes(frame))
    except ChannelFrameError:
        return
    assert encode_event(decoded) == bytes(frame)


@given(st.binary(max_size=400))
def test_garbage_streams_never_raise_anything_but_protocol_errors(raw: bytes) -> None:
    conn = Connection(Role.PAYEE)
    conn.receive_data(raw)
    conn.receive_data(b"")
    try:
        while conn.next_event() is not CLOSED:
            pass
    except PaymentError:
        pass


def _session(role: Role) -> tuple[Connection, list[bytes]]:
    """A connection of `role` right after the HELLO exchange, and the HELLO frames."""
    conn = Connection(role)
    hello = Hello(network_id=NETWORK, channel_id=CHANNEL)
    if role is Role.PAYER:
        conn.send(hello)
        conn.receive_data(encode_event(hello))
        assert conn.next_event() == hello
    else:
        conn.receive_data(encode_event(hello))
        assert conn.next_event() == hello
        conn.send(hello)
    return conn, [encode_event(hello)]


@given(st.lists(events.filter(lambda e: not isinstance(e, Hello | Ack)), max_size=20), st.data())
def test_any_split_of_the_stream_gives_the_same_events(
    sent: list[Event], data: st.DataObject
) -> None:
    conn, _ = _session(Role.PAYEE)
    stream = b"".join(encode_event(e) for e in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    received: list[object] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        if start == end:
            continue  # b"" would mean the end of the stream
        conn.receive_data(stream[start:end])
        while (event := conn.next_event()) is not NEED_DATA:
            received.append(event)
    conn.receive_data(b"")
    assert conn.next_event() is CLOSED
    assert received == sent


def test_oversized_frame_is_refused_from_its_header() -> None:
    conn, _ = _session(Role.PAYEE)
    conn.receive_data(HEADER.pack(BODY_LIMITS[FrameType.ACK] + 1, FrameType.ACK))
    with pytest.raises(ChannelFrameError):
        conn.next_event()
    with pytest.raises(ChannelFrameError):  # and it stays refused
        conn.next_event()
    huge = Connection(Role.PAYEE)
    huge.receive_data((1 << 30).to_bytes(4, "little"))  # before the type byte arrives
    with pytest.raises(ChannelFrameError):
        huge.next_event()


def test_unknown_type_and_torn_frame() -> None:
    conn = Connection(Role.PAYEE)
    conn.receive_data(HEADER.pack(0, 99))
    with pytest.raises(ChannelFrameError):
        conn.next_event()
    torn = Connection(Role.PAYEE)
    torn.receive_data(encode_event(Hello(network_id=1, channel_id=CHANNEL))[:-1])
    assert torn.next_event() is NEED_DATA
    torn.receive_data(b"")
    with pytest.raises(ChannelFrameError):
        torn.next_event()
    with pytest.raises(ConnectionClosedError):
        torn.receive_data(b"more")


def test_session_rules() -> None:
    pay = Pay.of(signed(PAYER, 1, 1))
    first = Connection(Role.PAYEE)
    first.receive_data(encode_event(pay))
    with pytest.raises(UnexpectedChannelFrameError):
        first.next_event()  # the first frame must be HELLO
    payer, _ = _session(Role.PAYER)
    payer.receive_data(encode_event(pay))
    with pytest.raises(UnexpectedChannelFrameError):
        payer.next_event()  # payees do not pay
    payee, _ = _session(Role.PAYEE)
    with pytest.raises(UnexpectedChannelFrameError):
        payee.send(pay)
    with pytest.raises(UnexpectedChannelFrameError):
        payee.send(Hello(network_id=NETWORK, channel_id=CHANNEL))
    payee.receive_data(encode_event(Ack(sequence=1)))
    with pytest.raises(UnexpectedChannelFrameError):
        payee.next_event()  # payers do not acknowledge
    old = Connection(Role.PAYEE)
    old.receive_data(encode_event(Hello(network_id=NETWORK, channel_id=CHANNEL, version=2)))
    with pytest.raises(VersionMismatchError):
        old.next_event()


def test_payee_hello_must_name_the_same_channel() -> None:
    conn = Connection(Role.PAYER)
    conn.send(Hello(network_id=NETWORK, channel_id=CHANNEL))
    conn.receive_data(encode_event(Hello(network_id=NETWORK + 1, channel_id=CHANNEL)))
    with pytest.raises(UnexpectedChannelFrameError):
        conn.next_event()


def test_reject_before_hello_is_allowed() -> None:
    conn = Connection(Role.PAYER)
    conn.send(Hello(network_id=NETWORK, channel_id=CHANNEL))
    reject = Reject(sequence=0, code=2, reason="unknown channel")
    conn.receive_data(encode_event(reject))
    assert conn.next_event() == reject


@pytest.mark.parametrize(
    "make",
    [
        lambda: Pay.of(signed(PAYER, 1, 1), tag=b"x" * 65),
        lambda: Reject(sequence=1, code=1 << 16),
        lambda: Reject(sequence=1, code=1, reason="é" * 101),
        lambda: Ack(sequence=-1),
        lambda: Hello(network_id=NETWORK + 1, channel_id=CHANNEL, latest=signed(PAYER, 1, 1)),
    ],
)
def test_events_validate_their_fields(make: object) -> None:
    with pytest.raises(PaymentError):
        make()  # type: ignore[operator]
