"""Genesis, transaction rules, white-flag application and milestone verification."""

from __future__ import annotations

import pytest

from tangle.errors import (
    BadSignatureError,
    ChainMismatchError,
    IndexGapError,
    InvalidFieldError,
    InvalidGenesisError,
    InvalidTransactionError,
    MissingConeError,
    TooFewSignaturesError,
    UnknownSignerError,
    WrongNetworkError,
)
from tangle.ledger.committee import KeySchedule, verify_milestone
from tangle.ledger.ledger import (
    Conflict,
    Genesis,
    accumulate,
    apply_diff,
    genesis_state,
    restore_state,
    validate_transaction,
)
from tangle.ledger.white_flag import ConeMessage, white_flag
from tangle.protocol.ids import MerkleRoot, MessageId, MilestoneId, OutputId, Signature
from tangle.protocol.merkle import merkle_root
from tangle.protocol.milestone import CommitteeSignature, KeySetChange, Milestone
from tangle.protocol.transaction import SignatureUnlock, Transaction
from tests.builders import NET, address, committee, genesis, key, milestone, schedule, transfer

ALICE, BOB, CAROL = key(1), key(2), key(3)
ZERO = MessageId(bytes(32))


def _mid(n: int) -> MessageId:
    return MessageId(n.to_bytes(32, "big"))


def test_genesis_mints_exactly_the_supply() -> None:
    g = genesis([(ALICE, 600), (BOB, 400)])
    state = genesis_state(g)
    assert sum(o.amount for o in state.unspent.values()) == g.supply == 1000
    with pytest.raises(InvalidGenesisError):
        Genesis(network_id=NET, supply=999, allocations=g.allocations)
    with pytest.raises(InvalidGenesisError):
        restore_state(NET, 999, 0, state.unspent)


def test_stateless_rules() -> None:
    g = genesis([(ALICE, 1000)])
    (oid,) = g.outputs()
    tx = transfer([(oid, ALICE)], [(address(BOB), 1000)])
    validate_transaction(tx, NET, min_output_amount=10)
    with pytest.raises(WrongNetworkError):
        validate_transaction(tx, NET + 1, min_output_amount=10)
    dusty = transfer([(oid, ALICE)], [(address(BOB), 995), (address(CAROL), 5)])
    with pytest.raises(InvalidTransactionError, match="deposit"):
        validate_transaction(dusty, NET, min_output_amount=10)
    unlock = tx.unlocks[0]
    assert isinstance(unlock, SignatureUnlock)
    forged = Transaction(
        essence=tx.essence,
        unlocks=(SignatureUnlock(public_key=unlock.public_key, signature=Signature(bytes(64))),),
    )
    with pytest.raises(InvalidTransactionError, match="signature"):
        validate_transaction(forged, NET, min_output_amount=10)


class Cone:
    """A hand-built tangle for white-flag tests."""

    def __init__(self) -> None:
        self.messages: dict[MessageId, ConeMessage] = {}

    def add(self, n: int, parents: tuple[MessageId, ...], tx: Transaction | None) -> MessageId:
        mid = _mid(n)
        self.messages[mid] = ConeMessage(
            parents=tuple(sorted(parents)), transaction=tx, referenced=False
        )
        return mid


def _apply(cone: Cone, parents: tuple[MessageId, ...], g: Genesis, index: int = 1):  # type: ignore[no-untyped-def]
    state = genesis_state(g)
    return state, white_flag(
        index=index,
        parents=tuple(sorted(parents)),
        lookup=cone.messages.get,
        is_entry_point=lambda m: m == ZERO,
        unspent=state.unspent,
        is_spent=lambda _: False,
    )


def test_white_flag_order_and_first_spend_wins() -> None:
    g = genesis([(ALICE, 1000)])
    (oid,) = g.outputs()
    to_bob = transfer([(oid, ALICE)], [(address(BOB), 1000)])
    to_carol = transfer([(oid, ALICE)], [(address(CAROL), 1000)])
    cone = Cone()
    a = cone.add(10, (ZERO,), to_carol)  # smaller id: visited first
    b = cone.add(20, (ZERO,), to_bob)
    c = cone.add(30, (a, b), None)
    state, result = _apply(cone, (c,), g)
    assert result.referenced == (a, b, c)
    assert result.included == (a,)
    assert result.conflicts == ((b, Conflict.INPUT_SPENT),)
    assert result.merkle_root == merkle_root([a])
    apply_diff(state, result.diff)
    assert [o.address for o in state.unspent.values()] == [address(CAROL)]
    assert state.accumulator == accumulate(state.unspent.items())


def test_chained_spends_inside_one_cone() -> None:
    g = genesis([(ALICE, 1000)])
    (oid,) = g.outputs()
    first = transfer([(oid, ALICE)], [(address(BOB), 600), (address(ALICE), 400)])
    second = transfer([(first.output_id(0), BOB)], [(address(CAROL), 600)])
    cone = Cone()
    a = cone.add(1, (ZERO,), first)
    b = cone.add(2, (a,), second)
    state, result = _apply(cone, (b,), g)
    assert result.included == (a, b)
    apply_diff(state, result.diff)
    held = sorted((o.address, o.amount) for o in state.unspent.values())
    assert held == sorted([(address(CAROL), 600), (address(ALICE), 400)])


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (
            lambda oid: transfer([(oid, BOB)], [(address(BOB), 1000)]),
            Conflict.UNLOCK_ADDRESS_MISMATCH,
        ),
        (lambda oid: transfer([(oid, ALICE)], [(address(BOB), 999)]), Conflict.AMOUNT_MISMATCH),
        (
            lambda oid: transfer([(OutputId(bytes(34)), ALICE)], [(address(BOB), 1)]),
            Conflict.INPUT_NOT_FOUND,
        ),
    ],
)
def test_conflict_reasons(build, reason: Conflict) -> None:  # type: ignore[no-untyped-def]
    g = genesis([(ALICE, 1000)])
    (oid,) = g.outputs()
    cone = Cone()
    a = cone.add(1, (ZERO,), build(oid))
    state, result = _apply(cone, (a,), g)
    assert result.conflicts == ((a, reason),)
    assert result.included == ()
    apply_diff(state, result.diff)
    assert state.unspent == g.outputs()


def test_missing_cone_names_every_missing_message() -> None:
    cone = Cone()
    a = cone.add(1, (_mid(7), _mid(8)), None)
    with pytest.raises(MissingConeError) as info:
        _apply(cone, (a,), genesis([(ALICE, 1)]))
    assert info.value.missing == {_mid(7), _mid(8)}


def test_referenced_messages_stop_the_walk() -> None:
    cone = Cone()
    a = cone.add(1, (ZERO,), None)
    cone.messages[a] = ConeMessage(parents=(ZERO,), transaction=None, referenced=True)
    b = cone.add(2, (a,), None)
    _, result = _apply(cone, (b,), genesis([(ALICE, 1)]))
    assert result.referenced == (b,)


# -- milestones -------------------------------------------------------------------------------

KEYS, KEY_SET = committee(5, 3)
GENESIS_MS = MilestoneId(bytes(32))


def _ms(
    signers, index: int = 1, previous: MilestoneId = GENESIS_MS, network_id: int = NET
) -> Milestone:  # type: ignore[no-untyped-def]
    return milestone(
        index=index,
        previous=previous,
        parents=(ZERO,),
        root=MerkleRoot(bytes(32)),
        signers=signers,
        network_id=network_id,
    )


def _verify(ms: Milestone, sched: KeySchedule | None = None, confirmed: int = 0) -> None:
    verify_milestone(
        ms,
        network_id=NET,
        confirmed_index=confirmed,
        confirmed_id=GENESIS_MS,
        schedule=sched or schedule(KEY_SET),
    )


def test_k_of_n_accepts_threshold_signatures() -> None:
    _verify(_ms(KEYS[:3]))
    _verify(_ms(KEYS))


def test_bad_milestones_each_have_their_error() -> None:
    with pytest.raises(TooFewSignaturesError):
        _verify(_ms(KEYS[:2]))
    with pytest.raises(UnknownSignerError):
        _verify(_ms([*KEYS[:3], key(99)]))
    with pytest.raises(IndexGapError):
        _verify(_ms(KEYS[:3], index=2))
    with pytest.raises(ChainMismatchError):
        _verify(_ms(KEYS[:3], previous=MilestoneId(b"\x01" * 32)))
    with pytest.raises(WrongNetworkError):
        _verify(_ms(KEYS[:3], network_id=NET + 1))
    good = _ms(KEYS[:3])
    first = good.signatures[0]
    tampered = Milestone(
        essence=good.essence,
        signatures=(
            CommitteeSignature(public_key=first.public_key, signature=Signature(bytes(64))),
            *good.signatures[1:],
        ),
    )
    with pytest.raises(BadSignatureError):
        _verify(tampered)


def test_key_rotation_takes_effect_at_its_index() -> None:
    new_keys, new_set = committee(3, 2, offset=5000)
    sched = schedule(KEY_SET)
    announcing = milestone(
        index=1,
        previous=GENESIS_MS,
        parents=(ZERO,),
        root=MerkleRoot(bytes(32)),
        signers=KEYS[:3],
        change=KeySetChange(activation_index=3, key_set=new_set),
    )
    _verify(announcing, sched)
    rotated = sched.after(announcing)
    assert rotated.key_set_at(2) == KEY_SET
    assert rotated.key_set_at(3) == new_set
    with pytest.raises(InvalidFieldError):
        KeySchedule(entries=((2, KEY_SET),))
    _verify(
        milestone(
            index=3,
            previous=GENESIS_MS,
            parents=(ZERO,),
            root=MerkleRoot(bytes(32)),
            signers=new_keys[:2],
        ),
        rotated,
        confirmed=2,
    )
    with pytest.raises(UnknownSignerError):
        _verify(_ms(KEYS[:3], index=3), rotated, confirmed=2)
