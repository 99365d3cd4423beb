"""Message encoding: canonical round trips and strict rejection of everything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tangle.errors import (
    DecodeError,
    InsufficientWorkError,
    InvalidFieldError,
    MalformedError,
    NonCanonicalError,
    OversizedError,
    TrailingBytesError,
    TruncatedError,
    UnknownTypeError,
    UnknownVersionError,
    WrongNetworkError,
)
from tangle.protocol.ids import MessageId, blake2b_256
from tangle.protocol.message import (
    MAX_MESSAGE_SIZE,
    Message,
    check_message,
    decode_message,
    encode_message,
    message_id,
    prepare,
)
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import search_reference
from tests.strategies import messages, parents

NET = 7


def _tagged(data: bytes = b"reading", parent_ids: tuple[MessageId, ...] | None = None) -> Message:
    ps = parent_ids or (MessageId(bytes(32)),)
    return Message(network_id=NET, parents=ps, payload=TaggedData(tag=b"t", data=data), nonce=5)


@given(messages())
def test_round_trip(message: Message) -> None:
    raw = encode_message(message)
    parsed = decode_message(raw)
    assert parsed.message == message
    assert parsed.raw == raw
    assert encode_message(parsed.message) == raw
    assert parsed.id == message_id(message) == blake2b_256(raw)


@given(messages(), st.data())
def test_every_truncation_is_rejected(message: Message, data: st.DataObject) -> None:
    raw = encode_message(message)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode_message(raw[:cut])


@given(messages(), st.binary(min_size=1, max_size=16))
def test_trailing_bytes_are_rejected(message: Message, extra: bytes) -> None:
    with pytest.raises(TrailingBytesError):
        decode_message(encode_message(message) + extra)


@given(messages(), st.data())
def test_mutations_decode_canonically_or_raise_named_errors(
    message: Message, data: st.DataObject
) -> None:
    raw = bytearray(encode_message(message))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    try:
        parsed = decode_message(bytes(raw))
    except DecodeError:
        return
    assert encode_message(parsed.message) == bytes(raw)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_escape_the_error_tree(raw: bytes) -> None:
    try:
        parsed = decode_message(raw)
    except DecodeError:
        return
    assert encode_message(parsed.message) == raw


def test_named_errors_for_each_defect() -> None:
    raw = encode_message(_tagged())
    with pytest.raises(UnknownVersionError):
        decode_message(b"\x02" + raw[1:])
    with pytest.raises(NonCanonicalError):
        decode_message(raw[:9] + b"\x00" + raw[10:])  # zero parents
    with pytest.raises(TruncatedError):
        decode_message(raw[:20])
    with pytest.raises(OversizedError):
        decode_message(bytes(MAX_MESSAGE_SIZE + 1))
    payload_type_at = 1 + 8 + 1 + 32 + 4
    with pytest.raises(UnknownTypeError):
        decode_message(raw[:payload_type_at] + b"\x63" + raw[payload_type_at + 1 :])


def test_unsorted_or_duplicate_parents_are_rejected() -> None:
    a, b = MessageId(bytes(31) + b"\x01"), MessageId(bytes(31) + b"\x02")
    with pytest.raises(InvalidFieldError):
        _tagged(parent_ids=(b, a))
    with pytest.raises(InvalidFieldError):
        _tagged(parent_ids=(a, a))
    raw = bytearray(encode_message(_tagged(parent_ids=(a, b))))
    raw[10:42], raw[42:74] = raw[42:74], raw[10:42]
    with pytest.raises(NonCanonicalError):
        decode_message(bytes(raw))


def test_milestone_parents_must_match_message_parents() -> None:
    raw = bytearray(encode_message(_tagged()))
    raw[-8:] = bytes(8)
    # A milestone whose essence parents differ from the message's is malformed.
    from tangle.protocol.ids import MerkleRoot, MilestoneId, PublicKey, Signature
    from tangle.protocol.milestone import CommitteeSignature, Milestone, MilestoneEssence
    from tangle.protocol.payload import encode_payload

    essence = MilestoneEssence(
        network_id=NET,
        index=1,
        timestamp_ms=0,
        previous=MilestoneId(bytes(32)),
        parents=(MessageId(b"\x01" * 32),),
        applied_merkle_root=MerkleRoot(bytes(32)),
        inclusion_root=MerkleRoot(bytes(32)),
        registry_root=MerkleRoot(bytes(32)),
    )
    ms = Milestone(
        essence=essence,
        signatures=(
            CommitteeSignature(public_key=PublicKey(bytes(32)), signature=Signature(bytes(64))),
        ),
    )
    with pytest.raises(InvalidFieldError):
        Message(network_id=NET, parents=(MessageId(bytes(32)),), payload=ms, nonce=0)
    body = encode_payload(ms)
    forged = b"".join(
        (
            b"\x01",
            NET.to_bytes(8, "little"),
            b"\x01",
            bytes(32),
            len(body).to_bytes(4, "little"),
            body,
            bytes(8),
        )
    )
    with pytest.raises(MalformedError):
        decode_message(forged)


@given(parents, parents)
def test_work_does_not_depend_on_parents(
    first: tuple[MessageId, ...], second: tuple[MessageId, ...]
) -> None:
    unsent = prepare(NET, TaggedData(tag=b"", data=b"x"), work_per_kib=1)
    a = decode_message(encode_message(unsent.attach(first, 0)))
    b = decode_message(encode_message(unsent.attach(second, 0)))
    assert a.root == b.root == unsent.root
    assert a.size_bound == b.size_bound


def test_work_done_once_stays_valid_on_fresh_tips() -> None:
    unsent = prepare(NET, TaggedData(tag=b"sensor", data=b"21.5C"), work_per_kib=64)
    nonce = search_reference(unsent.root, unsent.target, start=0, count=1 << 16)
    assert nonce is not None
    for tips in ((MessageId(bytes(32)),), (MessageId(b"\x01" * 32), MessageId(b"\x02" * 32))):
        check_message(decode_message(encode_message(unsent.attach(tips, nonce))), NET, 64)


def test_check_message_rejects_wrong_network_and_missing_work() -> None:
    parsed = decode_message(encode_message(_tagged()))
    with pytest.raises(WrongNetworkError):
        check_message(parsed, NET + 1, 1)
    unsent = prepare(NET, TaggedData(tag=b"", data=b""), work_per_kib=1 << 40)
    bad = next(n for n in range(1000) if n != search_reference(unsent.root, unsent.target, 0, 1000))
    with pytest.raises(InsufficientWorkError):
        check_message(
            decode_message(encode_message(unsent.attach((MessageId(bytes(32)),), bad))),
            NET,
            1 << 40,
        )


def test_oversized_payload_is_refused_before_work() -> None:
    with pytest.raises(InvalidFieldError):
        prepare(NET, TaggedData(tag=b"", data=bytes(MAX_MESSAGE_SIZE - 200)), work_per_kib=1)


def test_errors_survive_pickling() -> None:
    import pickle

    from tangle.errors import IndexGapError

    for error in (
        InvalidFieldError("Message.nonce", "too big"),
        IndexGapError(3, 5),
        TruncatedError("message.parent", 32, 7),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__
