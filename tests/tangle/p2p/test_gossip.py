"""The gossip protocol without I/O: frames, the handshake, deadlines, rate limits, known ids and
the request planners."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tangle.errors import (
    FrameError,
    FrameTimeoutError,
    GossipError,
    HandshakeTimeoutError,
    IdleTimeoutError,
    InvalidFieldError,
    KeySetMismatchError,
    NetworkMismatchError,
    NonCanonicalError,
    OversizedError,
    ProtocolVersionMismatchError,
    RateLimitedError,
    SelfConnectionError,
    TrailingBytesError,
    TruncatedError,
    UnexpectedFrameError,
    UnknownTypeError,
)
from tangle.node.token_bucket import TokenBucket
from tangle.p2p.gossip import (
    BODY_LIMITS,
    GOSSIP_VERSION,
    HANDSHAKE_SIZE,
    HEADER_SIZE,
    MAX_IDS,
    MAX_MILESTONE_WINDOW,
    Announce,
    Frame,
    FrameReader,
    FrameType,
    Handshake,
    Heartbeat,
    KnownIds,
    Limits,
    LocalNode,
    MessageFrame,
    MilestoneRequest,
    NodeId,
    PeerProtocol,
    PeerState,
    RateLimiter,
    Request,
    decode_frame,
    encode_frame,
    key_set_digest,
)
from tangle.p2p.sync import MilestoneSync, Requests
from tangle.protocol.codec import U32_MAX
from tangle.protocol.ids import MessageId, PublicKey, blake2b_256
from tangle.protocol.message import MAX_MESSAGE_SIZE
from tangle.protocol.milestone import KeySet
from tests.strategies import key_sets, message_ids

NET = 42
DIGEST = bytes(range(32))
ALICE, BOB, CAROL = NodeId(b"\x0a" * 32), NodeId(b"\x0b" * 32), NodeId(b"\x0c" * 32)
LOCAL = LocalNode(network_id=NET, key_set_digest=DIGEST, node_id=ALICE, listen_port=7000)
LIMITS = Limits(
    frames_per_s=100,
    frame_burst=50,
    bytes_per_s=100_000,
    byte_burst=100_000,
    handshake_timeout_s=5,
    frame_deadline_s=10,
    idle_timeout_s=30,
    known_ids=4,
)


def mid(n: int) -> MessageId:
    return MessageId(n.to_bytes(32, "big"))


def handshake(**changes: object) -> Handshake:
    fields: dict[str, object] = {
        "network_id": NET,
        "key_set_digest": DIGEST,
        "node_id": BOB,
        "listen_port": 7001,
        "confirmed_index": 12,
    }
    fields.update(changes)
    return Handshake(**fields)  # type: ignore[arg-type]


# -- frames ------------------------------------------------------------------------------------

node_ids = st.binary(min_size=32, max_size=32).map(NodeId)
id_lists = st.lists(message_ids, min_size=1, max_size=40, unique=True).map(tuple)


@st.composite
def heartbeats(draw: st.DrawFn) -> Heartbeat:
    confirmed = draw(st.integers(0, U32_MAX))
    return Heartbeat(
        confirmed_index=confirmed,
        pruned_index=draw(st.integers(0, confirmed)),
        peer_count=draw(st.integers(0, 0xFFFF)),
    )


frames: st.SearchStrategy[Frame] = st.one_of(
    st.builds(
        Handshake,
        network_id=st.integers(0, 2**64 - 1),
        key_set_digest=st.binary(min_size=32, max_size=32),
        node_id=node_ids,
        listen_port=st.integers(0, 0xFFFF),
        confirmed_index=st.integers(0, U32_MAX),
    ),
    st.builds(MessageFrame, raw=st.binary(min_size=1, max_size=600)),
    st.builds(Announce, ids=id_lists),
    st.builds(Request, ids=id_lists),
    st.integers(1, MAX_MILESTONE_WINDOW).flatmap(
        lambda count: st.builds(
            MilestoneRequest, start=st.integers(1, U32_MAX - count + 1), count=st.just(count)
        )
    ),
    heartbeats(),
)


@given(frames)
def test_frames_round_trip(frame: Frame) -> None:
    data = encode_frame(frame)
    assert decode_frame(data) == frame
    assert (
        data[0]
        == {
            Handshake: 0,
            MessageFrame: 1,
            Announce: 2,
            Request: 3,
            MilestoneRequest: 4,
            Heartbeat: 5,
        }[type(frame)]
    )
    assert int.from_bytes(data[1:5], "little") == len(data) - HEADER_SIZE


@given(frames)
def test_every_truncation_is_refused(frame: Frame) -> None:
    encoded = encode_frame(frame)
    for cut in range(len(encoded)):
        with pytest.raises(FrameError) as info:
            decode_frame(encoded[:cut])
        assert isinstance(info.value.__cause__, TruncatedError | NonCanonicalError)


@given(frames, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(frame: Frame, extra: bytes) -> None:
    with pytest.raises(FrameError) as info:
        decode_frame(encode_frame(frame) + extra)
    assert isinstance(info.value.__cause__, TrailingBytesError)


@given(st.binary(max_size=200))
def test_random_bytes_raise_named_errors_only(data: bytes) -> None:
    with contextlib.suppress(FrameError, ProtocolVersionMismatchError):
        decode_frame(data)


@given(st.binary(max_size=300))
def test_random_streams_raise_named_errors_only(data: bytes) -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    try:
        protocol.receive_data(encode_frame(handshake()) + data, 0.0)
    except GossipError:
        assert protocol.state is PeerState.CLOSED


def test_body_rules() -> None:
    two = mid(1) + mid(2)
    cases: list[tuple[bytes, type[Exception]]] = [
        (b"\x09" + (0).to_bytes(4, "little"), UnknownTypeError),
        (b"\x02" + (2).to_bytes(4, "little") + b"\x00\x00", NonCanonicalError),  # no ids
        (b"\x02" + (66).to_bytes(4, "little") + b"\x02\x00" + mid(1) * 2, NonCanonicalError),
        (b"\x03" + (66).to_bytes(4, "little") + b"\x03\x00" + two, TruncatedError),
        (b"\x01" + (0).to_bytes(4, "little"), InvalidFieldError),  # empty message
        (b"\x04" + (6).to_bytes(4, "little") + bytes(4) + b"\x01\x00", InvalidFieldError),
        (b"\x04" + (6).to_bytes(4, "little") + b"\x01\x00\x00\x00\x01\x01", InvalidFieldError),
        (b"\x05" + (10).to_bytes(4, "little") + bytes(4) + b"\x01" + bytes(5), InvalidFieldError),
        (b"\x01" + (MAX_MESSAGE_SIZE + 1).to_bytes(4, "little"), OversizedError),
        (b"\x02" + (2 + 32 * (MAX_IDS + 1)).to_bytes(4, "little"), OversizedError),
    ]
    for data, cause in cases:
        with pytest.raises(FrameError) as info:
            decode_frame(data)
        assert isinstance(info.value.__cause__, cause), data[:8]
    assert BODY_LIMITS[FrameType.HEARTBEAT] == 10
    assert len(encode_frame(handshake())) == HEADER_SIZE + HANDSHAKE_SIZE


def test_a_handshake_of_another_version_is_named() -> None:
    body = bytes([GOSSIP_VERSION + 1]) + bytes(HANDSHAKE_SIZE + 20)
    with pytest.raises(ProtocolVersionMismatchError) as info:
        decode_frame(b"\x00" + len(body).to_bytes(4, "little") + body)
    assert (info.value.expected, info.value.got) == (GOSSIP_VERSION, GOSSIP_VERSION + 1)


def test_frame_constructors_validate() -> None:
    with pytest.raises(InvalidFieldError):
        Announce(ids=())
    with pytest.raises(InvalidFieldError):
        Request(ids=(mid(1), mid(1)))
    with pytest.raises(InvalidFieldError):
        MilestoneRequest(start=U32_MAX, count=2)
    with pytest.raises(InvalidFieldError):
        Heartbeat(confirmed_index=1, pruned_index=2, peer_count=0)
    with pytest.raises(InvalidFieldError):
        MessageFrame(raw=bytes(MAX_MESSAGE_SIZE + 1))
    with pytest.raises(InvalidFieldError):
        handshake(node_id=bytes(32))


@given(frames.flatmap(lambda f: st.tuples(st.just(f), st.lists(st.integers(1, 9), max_size=50))))
def test_the_reader_cuts_any_split_stream(case: tuple[Frame, list[int]]) -> None:
    frame, cuts = case
    data = encode_frame(frame) * 3
    reader = FrameReader()
    got: list[Frame] = []
    position = 0
    for size in [*cuts, len(data)]:
        got += [f for f, _ in reader.feed(data[position : position + size], 0.0)]
        position += size
    assert got == [frame] * 3
    assert reader.partial_since is None


def test_the_reader_refuses_garbage_and_oversize_before_the_body() -> None:
    with pytest.raises(FrameError) as info:
        list(FrameReader().feed(b"\xff", 0.0))
    assert isinstance(info.value.__cause__, UnknownTypeError)
    with pytest.raises(FrameError) as info:
        list(FrameReader().feed(b"\x01" + (1 << 30).to_bytes(4, "little"), 0.0))
    assert isinstance(info.value.__cause__, OversizedError)


def test_the_reader_dates_an_unfinished_frame_from_its_first_byte() -> None:
    reader = FrameReader()
    data = encode_frame(Heartbeat(confirmed_index=3, pruned_index=0, peer_count=1))
    assert list(reader.feed(data[:3], 1.0)) == []
    assert reader.partial_since == 1.0
    assert list(reader.feed(data[3:7], 2.0)) == []
    assert reader.partial_since == 1.0
    frames = list(reader.feed(data[7:] + data[:2], 3.0))
    assert len(frames) == 1
    assert reader.partial_since == 3.0
    reader.shift(0.5)
    assert reader.partial_since == 3.5


# -- the handshake ------------------------------------------------------------------------------


def test_the_handshake_opens_the_connection() -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    hello = decode_frame(protocol.hello(5))
    assert hello == Handshake(
        network_id=NET, key_set_digest=DIGEST, node_id=ALICE, listen_port=7000, confirmed_index=5
    )
    assert protocol.state is PeerState.AWAIT_HANDSHAKE
    beat = Heartbeat(confirmed_index=12, pruned_index=0, peer_count=2)
    frames = protocol.receive_data(encode_frame(handshake()) + encode_frame(beat), 0.5)
    assert frames == [handshake(), beat]
    assert protocol.state.value == "active"
    assert protocol.remote == handshake()
    assert protocol.traffic.frames_in[FrameType.HEARTBEAT] == 1
    assert protocol.traffic.bytes_out[FrameType.HANDSHAKE] == HEADER_SIZE + HANDSHAKE_SIZE


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (handshake(network_id=NET + 1), NetworkMismatchError),
        (handshake(key_set_digest=bytes(32)), KeySetMismatchError),
        (handshake(node_id=ALICE), SelfConnectionError),
        (Heartbeat(confirmed_index=0, pruned_index=0, peer_count=0), UnexpectedFrameError),
    ],
)
def test_a_wrong_first_frame_closes_the_connection(frame: Frame, error: type[GossipError]) -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    with pytest.raises(error):
        protocol.receive_data(encode_frame(frame), 0.0)
    assert protocol.state is PeerState.CLOSED
    with pytest.raises(UnexpectedFrameError):
        protocol.receive_data(b"", 0.0)


def test_another_version_closes_the_connection() -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    body = bytearray(encode_frame(handshake())[HEADER_SIZE:])
    body[0] = 2
    with pytest.raises(ProtocolVersionMismatchError):
        protocol.receive_data(b"\x00" + len(body).to_bytes(4, "little") + body, 0.0)
    assert protocol.state is PeerState.CLOSED


def test_a_second_handshake_is_refused() -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    protocol.receive_data(encode_frame(handshake()), 0.0)
    with pytest.raises(UnexpectedFrameError):
        protocol.receive_data(encode_frame(handshake()), 0.0)


def test_key_set_digest_is_canonical() -> None:
    keys = (PublicKey(b"\x01" * 32), PublicKey(b"\x02" * 32))
    encoding = b"tanglepay/key-set/v1" + b"\x02" + b"\x02" + keys[0] + keys[1]
    assert key_set_digest(KeySet(threshold=2, public_keys=keys)) == blake2b_256(encoding)


@given(key_sets, key_sets)
def test_key_set_digests_differ_for_different_sets(a: KeySet, b: KeySet) -> None:
    assert (key_set_digest(a) == key_set_digest(b)) == (a == b)


# -- deadlines ----------------------------------------------------------------------------------


def test_no_handshake_in_time() -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 100.0)
    assert protocol.deadline() == 105.0
    protocol.check_time(104.9)
    with pytest.raises(HandshakeTimeoutError):
        protocol.check_time(105.0)


def test_a_half_frame_is_dropped_at_its_deadline() -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    protocol.receive_data(encode_frame(handshake()), 0.0)
    data = encode_frame(MessageFrame(raw=bytes(1000)))
    protocol.receive_data(data[:500], 1.0)
    for t in range(2, 11):  # trickling a byte a second does not move the deadline
        protocol.receive_data(data[500 + t : 501 + t], float(t))
    assert protocol.deadline() == 11.0
    protocol.pause(2.0)  # our reader was busy: not the peer's fault
    assert protocol.deadline() == 13.0
    with pytest.raises(FrameTimeoutError):
        protocol.check_time(13.0)


def test_silence_is_dropped_after_the_idle_timeout() -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    protocol.receive_data(encode_frame(handshake()), 0.0)
    beat = encode_frame(Heartbeat(confirmed_index=1, pruned_index=0, peer_count=0))
    protocol.receive_data(beat, 20.0)
    assert protocol.deadline() == 50.0
    protocol.check_time(49.0)
    with pytest.raises(IdleTimeoutError):
        protocol.check_time(50.0)


# -- rate limits ----------------------------------------------------------------------------------


def test_token_bucket_refills_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert bucket.charge(5, 0.0) == 0
    assert bucket.ready_at() == 0.0
    assert bucket.charge(3, 0.0) == -3
    assert bucket.ready_at() == pytest.approx(0.3)
    assert bucket.tokens(0.2) == pytest.approx(-1)
    assert bucket.tokens(100.0) == 5
    with pytest.raises(InvalidFieldError):
        TokenBucket(rate=0, burst=1, now=0.0)


def test_rate_limiter_slows_then_refuses() -> None:
    limiter = RateLimiter(LIMITS, 0.0)
    for _ in range(50):
        limiter.charge(10, 0.0)
    assert limiter.ready_at() == 0.0
    for _ in range(50):
        limiter.charge(10, 0.0)
    assert limiter.ready_at() == pytest.approx(0.5)  # 50 frames in debt at 100 per second
    with pytest.raises(RateLimitedError) as info:
        limiter.charge(10, 0.0)
    assert info.value.what == "frames"
    bytes_limiter = RateLimiter(LIMITS, 0.0)
    bytes_limiter.charge(150_000, 0.0)
    assert bytes_limiter.ready_at() == pytest.approx(0.5)
    with pytest.raises(RateLimitedError):
        bytes_limiter.charge(70_000, 0.1)


def test_a_flood_of_frames_is_refused() -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    beat = encode_frame(Heartbeat(confirmed_index=1, pruned_index=0, peer_count=0))
    protocol.receive_data(encode_frame(handshake()) + beat * 60, 0.0)
    assert protocol.ready_at() > 0.0  # the reader pauses
    with pytest.raises(RateLimitedError):
        protocol.receive_data(beat * 60, 0.0)


# -- known ids ------------------------------------------------------------------------------------


def test_known_ids_forget_the_oldest() -> None:
    known = KnownIds(3)
    assert known.add_new([mid(1), mid(2), mid(3), mid(1)]) == [mid(1), mid(2), mid(3)]
    assert not known.add(mid(3))  # refreshed
    known.add(mid(4))
    assert mid(2) not in known
    assert [i for i in map(mid, range(1, 5)) if i in known] == [mid(1), mid(3), mid(4)]
    known.discard(mid(3))
    assert len(known) == 2


def test_the_peer_is_known_to_have_what_it_sent_or_was_sent() -> None:
    protocol = PeerProtocol(LOCAL, LIMITS, 0.0)
    protocol.receive_data(encode_frame(handshake()), 0.0)
    raw = b"a message"
    protocol.receive_data(encode_frame(MessageFrame(raw=raw)), 0.0)
    protocol.receive_data(encode_frame(Announce(ids=(mid(1),))), 0.0)
    protocol.send(MessageFrame(raw=b"another"))
    protocol.send(Announce(ids=(mid(2),)))
    ids = [
        MessageFrame(raw=raw).message_id,
        mid(1),
        mid(2),
        MessageFrame(raw=b"another").message_id,
    ]
    assert protocol.unknown_to_peer([*ids, mid(3)]) == [mid(3)]
    protocol.receive_data(encode_frame(Request(ids=(mid(3),))), 0.0)
    assert protocol.unknown_to_peer([mid(3)]) == [mid(3)]


# -- request planning ------------------------------------------------------------------------------


def requests(*, max_per_peer: int = 100, max_announced: int = 1000) -> Requests:
    return Requests(
        delay_s=0.05,
        timeout_s=2.0,
        max_attempts=4,
        backoff_s=1.0,
        backoff_max_s=8,
        max_per_peer=max_per_peer,
        max_announced=max_announced,
    )


def test_an_announced_id_is_asked_of_one_announcer_after_the_delay() -> None:
    planner = requests()
    planner.announced(BOB, [mid(1)], 0.0)
    planner.announced(CAROL, [mid(1)], 0.01)
    assert planner.due(0.01, {BOB, CAROL}) == {}
    assert planner.next_deadline() == 0.05
    assert planner.due(0.05, {BOB, CAROL}) == {BOB: [mid(1)]}
    assert planner.due(1.0, {BOB, CAROL}) == {}
    assert planner.due(2.05, {BOB, CAROL}) == {CAROL: [mid(1)]}  # timed out: next announcer
    assert not planner.arrived(mid(1))
    assert planner.due(10.0, {BOB, CAROL}) == {}
    assert len(planner) == 0


def test_an_announced_id_arriving_in_the_delay_is_never_asked() -> None:
    planner = requests()
    planner.announced(BOB, [mid(1)], 0.0)
    planner.arrived(mid(1))
    assert planner.due(1.0, {BOB}) == {}


def test_a_missing_parent_is_asked_at_once_of_the_childs_sender_then_of_anyone() -> None:
    planner = requests()
    planner.missing([mid(1)], CAROL, 0.0)
    assert planner.is_history(mid(1))
    assert planner.due(0.0, {BOB, CAROL}) == {CAROL: [mid(1)]}
    assert planner.due(2.0, {BOB, CAROL}) == {BOB: [mid(1)]}
    assert planner.due(4.0, {BOB, CAROL}) == {}  # everyone asked: pause 1 s, start over
    assert planner.due(5.0, {BOB, CAROL})
    assert planner.arrived(mid(1))


def test_an_id_is_given_up_after_its_attempts_until_a_peer_joins() -> None:
    planner = requests()
    planner.still_missing([mid(1)], 0.0)
    asked = 0
    t = 0.0
    while mid(1) in planner:
        asked += sum(len(v) for v in planner.due(t, {BOB}).values())
        t += 1.0
    assert asked == 4
    assert planner.given_up == 1
    assert planner.still_missing([mid(1)], t) == 0
    planner.peer_added()
    assert planner.still_missing([mid(1)], t) == 1


def test_a_peer_leaving_hands_its_requests_to_another() -> None:
    planner = requests()
    planner.announced(BOB, [mid(1)], 0.0)
    planner.announced(CAROL, [mid(1)], 0.0)
    planner.missing([mid(2)], BOB, 0.0)
    assert planner.due(1.0, {BOB, CAROL}) == {BOB: [mid(2), mid(1)]}
    planner.peer_gone(BOB, 1.5)
    assert planner.due(1.5, {CAROL}) == {CAROL: [mid(2), mid(1)]}


def test_announcer_leaving_is_not_reasked() -> None:
    """Ids only a departed peer announced are dropped: nobody else is asked for them."""
    planner = requests()
    planner.announced(BOB, [mid(1), mid(2)], 0.0)
    assert planner.due(1.0, {BOB, CAROL}) == {BOB: [mid(1), mid(2)]}
    planner.peer_gone(BOB, 1.5)
    assert len(planner) == 0
    assert planner.announced_only == planner.announced_by(BOB) == 0
    assert planner.due(30.0, {CAROL}) == {}
    assert planner.next_deadline() is None


def test_announce_flood_is_bounded_per_peer_and_in_total() -> None:
    planner = requests(max_per_peer=100, max_announced=250)
    assert planner.announced(BOB, [mid(i) for i in range(1000)], 0.0) == 100
    assert planner.announced_by(BOB) == 100
    assert planner.announced(CAROL, [mid(i) for i in range(1000, 2000)], 0.0) == 100
    dave = NodeId(bytes([4]) * 32)
    assert planner.announced(dave, [mid(i) for i in range(2000, 3000)], 0.0) == 50
    assert len(planner) == planner.announced_only == 250
    assert planner.refused == 900 + 900 + 950
    # A bounded peer still adds itself as a source of ids it has room for; once the ids it
    # announced arrive, it has room again.
    for i in range(100):
        planner.arrived(mid(i))
    assert planner.announced_by(BOB) == 0
    assert planner.announced(BOB, [mid(1000)], 0.0) == 0
    assert planner.announced_by(BOB) == 1


def test_ids_the_node_needs_are_wanted_beyond_the_announce_bounds() -> None:
    planner = requests(max_per_peer=2, max_announced=2)
    planner.announced(BOB, [mid(1), mid(2)], 0.0)
    planner.missing([mid(3), mid(4)], None, 0.0)
    assert planner.still_missing([mid(5)], 0.0) == 1
    planner.missing([mid(1)], None, 0.0)  # announced, and now needed: kept when BOB leaves
    assert planner.announced_only == 1
    assert planner.announced_by(BOB) == 1
    planner.peer_gone(BOB, 0.0)
    assert set(planner.due(0.1, {CAROL})[CAROL]) == {mid(1), mid(3), mid(4), mid(5)}


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["announced", "missing", "still_missing", "arrived", "due", "gone"]),
        st.sampled_from([ALICE, BOB, CAROL]),
        st.lists(st.integers(0, 30), max_size=8),
    ),
    max_size=60,
)


@given(_OPS)
def test_the_announce_bounds_hold_under_any_sequence(
    ops: list[tuple[str, NodeId, list[int]]],
) -> None:
    planner = requests(max_per_peer=5, max_announced=8)
    peers = {ALICE, BOB, CAROL}
    now = 0.0
    for op, peer, numbers in ops:
        ids = [mid(n) for n in numbers]
        now += 0.5
        if op == "announced":
            planner.announced(peer, ids, now)
        elif op == "missing":
            planner.missing(ids, peer, now)
        elif op == "still_missing":
            planner.still_missing(ids, now)
        elif op == "arrived":
            for i in ids:
                planner.arrived(i)
        elif op == "due":
            planner.due(now, peers)
        else:
            planner.peer_gone(peer, now)
        assert planner.announced_only <= 8
        assert all(planner.announced_by(p) <= 5 for p in peers)
        assert planner.scheduled <= 2 * len(planner) + 64 + 1
    for peer in peers:
        planner.peer_gone(peer, now)
    assert planner.announced_only == 0
    assert all(planner.is_history(mid(n)) for n in range(31) if mid(n) in planner)


def test_due_takes_only_what_is_due_from_a_large_table() -> None:
    planner = requests(max_per_peer=20_000, max_announced=20_000)
    planner.announced(BOB, [mid(i) for i in range(10_000)], 5.0)
    planner.missing([mid(10_000)], None, 0.0)
    assert planner.scheduled == 10_001
    assert planner.due(1.0, {BOB}) == {BOB: [mid(10_000)]}
    assert planner.scheduled == 10_001  # one taken, one scheduled for its timeout
    assert planner.next_deadline() == 3.0
    for i in range(10_000):  # arrivals leave stale entries; the heap is rebuilt, not grown
        planner.arrived(mid(i))
    planner.missing([mid(10_001)], None, 3.0)
    assert planner.scheduled <= 2 * len(planner) + 64 + 1


def test_nothing_is_asked_without_peers() -> None:
    planner = requests()
    planner.missing([mid(1)], None, 0.0)
    assert planner.due(1.0, set()) == {}


def test_milestones_are_asked_in_windows_of_peers_that_have_them() -> None:
    sync = MilestoneSync(confirmed=10, window=64, in_flight=3, timeout_s=5.0, grace_s=1.0)
    sync.peer(BOB, 500, 0.0)
    sync.peer(CAROL, 70, 0.0)  # has none of the windows
    assert sync.due(0.0) == [(BOB, 11, 64), (BOB, 75, 64), (BOB, 139, 64)]
    assert sync.due(1.0) == []  # all in flight
    assert sync.received(11)
    assert not sync.received(12_000)


def test_milestone_windows_go_to_the_least_loaded_and_move_on_after_a_timeout() -> None:
    sync = MilestoneSync(confirmed=0, window=10, in_flight=4, timeout_s=5.0, grace_s=0.0)
    sync.peer(BOB, 100, 0.0)
    sync.peer(CAROL, 100, 0.0)
    assert sync.due(0.0) == [(BOB, 1, 10), (CAROL, 11, 10), (BOB, 21, 10), (CAROL, 31, 10)]
    sync.local(10)  # the first window is applied: one more fits
    assert sync.due(1.0) == [(BOB, 41, 10)]
    assert sync.next_deadline(1.0) == 5.0
    later = sync.due(5.0)  # the rest timed out: each goes to the other peer
    assert later == [(BOB, 11, 10), (CAROL, 21, 10), (BOB, 31, 10)]
    sync.peer_gone(BOB)
    assert sync.due(5.0) == [(CAROL, 11, 10), (CAROL, 31, 10), (CAROL, 41, 10)]
    assert sync.requested == 11 * 10


def test_the_newest_milestone_gets_a_grace_period() -> None:
    sync = MilestoneSync(confirmed=10, window=64, in_flight=2, timeout_s=5.0, grace_s=1.0)
    sync.peer(BOB, 11, 0.0)
    assert sync.due(0.5) == []
    assert sync.next_deadline(0.5) == 1.0
    assert sync.due(1.0) == [(BOB, 11, 1)]
    sync.local(11)
    assert sync.due(20.0) == []
    assert sync.requested == 1
