"""Bad milestones reaching a node: each refused with its own error, nothing applied."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tangle.errors import (
    BadSignatureError,
    ChainMismatchError,
    DuplicatePayloadError,
    EquivocationError,
    HeldMilestoneLimitError,
    MerkleRootMismatchError,
    MilestoneTooFarAheadError,
    NodeHaltedError,
    StaleMilestoneError,
    TooFewSignaturesError,
    UnknownSignerError,
    WrongNetworkError,
)
from tangle.ledger.committee import KeySchedule
from tangle.node.core import (
    MAX_UNJUDGED_MILESTONES,
    MILESTONE_LOOKAHEAD,
    Confirmed,
    MilestoneRejected,
    Parameters,
)
from tangle.node.ledger_node import LedgerNode
from tangle.protocol.ids import MerkleRoot, MilestoneId, Signature
from tangle.protocol.merkle import merkle_root
from tangle.protocol.message import decode_message, encode_message, prepare
from tangle.protocol.milestone import CommitteeSignature, KeySetChange, Milestone
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import work_value
from tangle.window.dag import GENESIS_ID
from tests.builders import NET, committee, genesis, key, message, milestone

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from nacl.signing import SigningKey

    from tangle.protocol.ids import MessageId

PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=1)
KEYS, KEY_SET = committee(4, 3)
OUTSIDERS = [key(90 + n) for n in range(3)]
GENESIS = genesis([(key(1), 1_000)])
ZERO = MilestoneId(bytes(32))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LedgerNode]:
    opened = LedgerNode.open(
        tmp_path / "node.db",
        genesis=GENESIS,
        params=PARAMS,
        schedule=KeySchedule(entries=((1, KEY_SET),)),
    )
    yield opened
    opened.close()


def _send(payload: TaggedData | Milestone, parents: tuple[MessageId, ...], net: int = NET) -> bytes:
    return message(payload, parents, work_per_kib=PARAMS.work_per_kib, network_id=net)


def _milestone(
    signers: list[SigningKey],
    *,
    index: int = 1,
    previous: MilestoneId = ZERO,
    root: MerkleRoot | None = None,
    network_id: int = NET,
) -> Milestone:
    return milestone(
        index=index,
        previous=previous,
        parents=(GENESIS_ID,),
        root=root if root is not None else merkle_root([]),
        signers=signers,
        network_id=network_id,
    )


def _rejected(node: LedgerNode, ms: Milestone) -> Exception:
    events = node.submit(_send(ms, (GENESIS_ID,)))
    (rejected,) = [e for e in events if isinstance(e, MilestoneRejected)]
    assert node.core.confirmed_index == 0
    assert node.storage.confirmed_index() == 0
    return rejected.error


def test_too_few_signatures(node: LedgerNode) -> None:
    assert isinstance(_rejected(node, _milestone(KEYS[:2])), TooFewSignaturesError)


def test_unknown_signer(node: LedgerNode) -> None:
    assert isinstance(_rejected(node, _milestone([*KEYS[:3], key(77)])), UnknownSignerError)


def test_bad_signature(node: LedgerNode) -> None:
    good = _milestone(KEYS[:3])
    first = good.signatures[0]
    forged = Milestone(
        essence=good.essence,
        signatures=(
            CommitteeSignature(public_key=first.public_key, signature=Signature(bytes(64))),
            *good.signatures[1:],
        ),
    )
    # Refused on arrival (no key schedule needed), before the node holds or relays it.
    with pytest.raises(BadSignatureError):
        node.submit(_send(forged, (GENESIS_ID,)))
    assert node.core.confirmed_index == node.storage.confirmed_index() == 0
    node.submit(_send(good, (GENESIS_ID,)))
    assert node.core.confirmed_index == 1


def test_broken_chain(node: LedgerNode) -> None:
    ms = _milestone(KEYS[:3], previous=MilestoneId(b"\x01" * 32))
    assert isinstance(_rejected(node, ms), ChainMismatchError)


def test_another_networks_milestone_is_refused(node: LedgerNode) -> None:
    with pytest.raises(WrongNetworkError):
        node.submit(_send(_milestone(KEYS[:3], network_id=NET + 1), (GENESIS_ID,), net=NET + 1))
    with pytest.raises(WrongNetworkError):
        node.submit(_send(_milestone(KEYS[:3], network_id=NET + 1), (GENESIS_ID,)))
    assert node.core.confirmed_index == 0


def test_a_rejected_milestone_leaves_room_for_the_good_one(node: LedgerNode) -> None:
    _rejected(node, _milestone(KEYS[:2]))
    node.submit(_send(_milestone(KEYS[1:]), (GENESIS_ID,)))
    assert node.core.confirmed_index == node.storage.confirmed_index() == 1


def test_early_milestone_waits_for_its_predecessor(node: LedgerNode) -> None:
    first = _milestone(KEYS[:3])
    second = _milestone(KEYS[:3], index=2, previous=first.id)
    events = node.submit(_send(second, (GENESIS_ID,)))
    assert not [e for e in events if isinstance(e, Confirmed | MilestoneRejected)]
    assert node.core.confirmed_index == 0
    node.submit(_send(first, (GENESIS_ID,)))
    assert node.core.confirmed_index == 2
    forged = _milestone(OUTSIDERS, index=2, previous=first.id, root=MerkleRoot(b"\x02" * 32))
    with pytest.raises(StaleMilestoneError):
        node.submit(_send(forged, (GENESIS_ID,)))  # not the committee: no proof of anything
    assert node.core.alarms == ()


# -- equivocation: the committee signs two milestones for one index ---------------------------


def test_equivocation_on_a_confirmed_index_is_kept_as_evidence_and_stops_applying(
    node: LedgerNode,
) -> None:
    first = _milestone(KEYS[:3])
    node.submit(_send(first, (GENESIS_ID,)))
    rival = _milestone(KEYS[1:], root=MerkleRoot(b"\x02" * 32))
    with pytest.raises(EquivocationError) as raised:
        node.submit(_send(rival, (GENESIS_ID,)))
    assert (raised.value.index, raised.value.first, raised.value.second) == (1, first.id, rival.id)
    assert node.core.alarms == (raised.value,)
    second = _milestone(KEYS[:3], index=2, previous=first.id)
    node.submit(_send(second, (GENESIS_ID,)))  # held, never applied while the alarm stands
    assert node.core.confirmed_index == 1


def test_equivocation_between_held_milestones_is_detected(node: LedgerNode) -> None:
    first = _milestone(KEYS[:3])
    node.submit(_send(first, (GENESIS_ID,)))
    second = _milestone(KEYS[:3], index=3, previous=first.id)  # waits for milestone 2
    rival = _milestone(KEYS[1:], index=3, previous=first.id, root=MerkleRoot(b"\x03" * 32))
    node.submit(_send(second, (GENESIS_ID,)))
    with pytest.raises(EquivocationError):
        node.submit(_send(rival, (GENESIS_ID,)))
    assert [alarm.index for alarm in node.core.alarms] == [3]


def test_far_future_and_forged_milestones_are_bounded(node: LedgerNode) -> None:
    with pytest.raises(MilestoneTooFarAheadError):
        node.submit(_send(_milestone(KEYS[:3], index=MILESTONE_LOOKAHEAD + 1), (GENESIS_ID,)))
    for index in range(2, 2 + MAX_UNJUDGED_MILESTONES):  # signed by keys outside the committee
        node.submit(_send(_milestone(OUTSIDERS, index=index), (GENESIS_ID,)))
    with pytest.raises(HeldMilestoneLimitError):
        node.submit(_send(_milestone(OUTSIDERS, index=100), (GENESIS_ID,)))
    assert node.core.held_milestones() == MAX_UNJUDGED_MILESTONES
    node.submit(_send(_milestone(KEYS[:3], index=200), (GENESIS_ID,)))  # the committee's: held
    assert node.core.held_milestones() == MAX_UNJUDGED_MILESTONES + 1
    node.submit(_send(_milestone(KEYS[:3]), (GENESIS_ID,)))
    assert node.core.confirmed_index == 1
    assert node.core.held_milestones() == MAX_UNJUDGED_MILESTONES  # index 2's forgery is gone


def test_wrong_merkle_root_halts_the_node(node: LedgerNode) -> None:
    data = _send(TaggedData(tag=b"", data=b"x"), (GENESIS_ID,))
    node.submit(data)
    ms = _milestone(KEYS[:3], root=MerkleRoot(b"\x07" * 32))
    with pytest.raises(MerkleRootMismatchError):
        node.submit(_send(ms, (GENESIS_ID,)))
    assert node.core.confirmed_index == node.storage.confirmed_index() == 0
    with pytest.raises(NodeHaltedError):
        node.submit(_send(TaggedData(tag=b"", data=b"y"), (decode_message(data).id,)))


def test_latest_index_counts_only_milestones_the_committee_could_have_signed(
    node: LedgerNode,
) -> None:
    first = _milestone(KEYS[:3])
    outsider = _milestone([*KEYS[:3], key(77)], index=9, previous=first.id)
    node.submit(_send(outsider, (GENESIS_ID,)))
    assert node.core.latest_index == 0  # a signer outside the key set: as apply would refuse
    bogus = _milestone(KEYS[:3], index=2, previous=MilestoneId(b"\x05" * 32))
    node.submit(_send(bogus, (GENESIS_ID,)))
    assert node.core.latest_index == 2  # the committee's signatures: the network is ahead
    events = node.submit(_send(first, (GENESIS_ID,)))
    assert [type(e.error) for e in events if isinstance(e, MilestoneRejected)] == [
        ChainMismatchError
    ]
    assert node.core.confirmed_index == node.core.latest_index == 1  # the rejected one is gone


def _chain(node: LedgerNode, count: int, first: int = 1) -> list[bytes]:
    """Milestones `first`..`first + count - 1` of the committee, each on the previous one's
    message, submitted to `node`; returns their messages."""
    raws: list[bytes] = []
    previous = node.core.confirmed_id
    parent = GENESIS_ID
    for index in range(first, first + count):
        ms = milestone(
            index=index,
            previous=previous,
            parents=(parent,),
            signers=KEYS[:3],
            core=node.core,
        )
        raw = _send(ms, (parent,))
        node.submit(raw)
        raws.append(raw)
        previous, parent = ms.id, decode_message(raw).id
    return raws


def test_a_forged_milestone_dropped_by_pruning_does_not_stop_the_chain(node: LedgerNode) -> None:
    """A milestone signed by outside keys for index 30, held while the node confirms 1..20 and
    prunes it away as unconfirmable: milestone 30 of the committee still applies."""
    node.submit(_send(_milestone(OUTSIDERS, index=30), (GENESIS_ID,)))
    raws = _chain(node, 20)
    node.prune(17)
    assert node.core.held_milestones() == 0
    previous = decode_message(raws[-1])
    tail = decode_message(raws[-1]).message.payload
    assert isinstance(tail, Milestone)
    parent, prior = previous.id, tail.id
    for index in range(21, 31):
        ms = milestone(
            index=index, previous=prior, parents=(parent,), signers=KEYS[:3], core=node.core
        )
        raw = _send(ms, (parent,))
        node.submit(raw)
        parent, prior = decode_message(raw).id, ms.id
    assert node.core.confirmed_index == 30


def test_another_nonce_of_a_held_milestone_is_not_held_twice(node: LedgerNode) -> None:
    ms = _milestone(KEYS[:3], index=2, previous=MilestoneId(b"\x09" * 32))
    unsent = prepare(NET, ms, PARAMS.work_per_kib)
    nonces = [n for n in range(4096) if work_value(unsent.root, n) <= unsent.target][:2]
    first, second = (encode_message(unsent.attach((GENESIS_ID,), n)) for n in nonces)
    node.submit(first)
    with pytest.raises(DuplicatePayloadError):
        node.submit(second)
    assert node.core.held_milestones() == 1
    assert node.core.alarms == ()


def test_one_equivocation_is_kept_once_however_often_it_is_sent(node: LedgerNode) -> None:
    first = _milestone(KEYS[:3])
    node.submit(_send(first, (GENESIS_ID,)))
    rival = _milestone(KEYS[1:], root=MerkleRoot(b"\x02" * 32))
    raised = []
    for _ in range(3):
        with pytest.raises(EquivocationError) as error:
            node.submit(_send(rival, (GENESIS_ID,)))
        raised.append(error.value.repeated)
    assert raised == [False, True, True]
    assert len(node.core.alarms) == 1


def test_equivocation_between_milestones_held_before_a_rotation_is_detected(
    node: LedgerNode,
) -> None:
    """Two milestones for index 3 signed by the committee a rotation in milestone 1 brings in:
    unjudged when they arrive, judged (and compared) once milestone 1 is applied."""
    new_keys, new_set = committee(3, 2, offset=2000)
    rotation = KeySetChange(activation_index=3, key_set=new_set)
    one = milestone(
        index=1,
        previous=ZERO,
        parents=(GENESIS_ID,),
        root=merkle_root([]),
        signers=KEYS[:3],
        change=rotation,
    )
    for n in (1, 2):
        rival = milestone(
            index=3,
            previous=MilestoneId(bytes([n]) * 32),
            parents=(GENESIS_ID,),
            root=merkle_root([]),
            signers=new_keys,
        )
        node.submit(_send(rival, (GENESIS_ID,)))
    assert node.core.alarms == ()
    node.submit(_send(one, (GENESIS_ID,)))
    assert [alarm.index for alarm in node.core.alarms] == [3]
