"""Hypothesis strategies for the tangle's wire objects."""

from __future__ import annotations

from hypothesis import strategies as st

from tangle.protocol.channel import (
    MAX_CHALLENGE_PERIOD,
    BalanceProof,
    ChannelOp,
    ChannelOutput,
    ChannelUnlock,
    SignedBalanceProof,
)
from tangle.protocol.codec import U32_MAX, U64_MAX
from tangle.protocol.ids import (
    Address,
    ChannelId,
    MerkleRoot,
    MessageId,
    MilestoneId,
    OutputId,
    PublicKey,
    Signature,
)
from tangle.protocol.message import Message
from tangle.protocol.milestone import (
    CommitteeSignature,
    KeySet,
    KeySetChange,
    Milestone,
    MilestoneEssence,
)
from tangle.protocol.payload import Payload, TaggedData
from tangle.protocol.transaction import (
    BasicOutput,
    ReferenceUnlock,
    SignatureUnlock,
    Transaction,
    TransactionEssence,
    Unlock,
)

u64s = st.integers(0, U64_MAX)
message_ids = st.binary(min_size=32, max_size=32).map(MessageId)
public_keys = st.binary(min_size=32, max_size=32).map(PublicKey)
signatures = st.binary(min_size=64, max_size=64).map(Signature)
parents = st.lists(message_ids, min_size=1, max_size=8, unique=True).map(
    lambda ps: tuple(sorted(ps))
)

tagged_data = st.builds(TaggedData, tag=st.binary(max_size=64), data=st.binary(max_size=512))

basic_outputs = st.builds(
    BasicOutput,
    address=st.binary(min_size=32, max_size=32).map(Address),
    amount=st.integers(1, U64_MAX // 128),
)
channel_ids = st.binary(min_size=32, max_size=32).map(ChannelId)


@st.composite
def channel_outputs(draw: st.DrawFn) -> ChannelOutput:
    amount = draw(st.integers(1, U64_MAX // 128))
    payer, payee = draw(st.lists(public_keys, min_size=2, max_size=2, unique=True))
    return ChannelOutput(
        channel_id=draw(channel_ids),
        payer=payer,
        payee=payee,
        amount=amount,
        bidirectional=draw(st.booleans()),
        challenge_period=draw(st.integers(1, MAX_CHALLENGE_PERIOD)),
        expiry=draw(st.integers(1, U32_MAX)),
        sequence=draw(u64s),
        payee_balance=draw(st.integers(0, amount)),
        closing_since=draw(st.integers(0, U32_MAX)),
    )


@st.composite
def channel_unlocks(draw: st.DrawFn, network_id: int) -> ChannelUnlock:
    channel_id = draw(channel_ids)
    payer_sig, payee_sig = draw(
        st.sampled_from([(True, False), (False, True), (True, True)]).map(
            lambda mask: tuple(draw(signatures) if on else None for on in mask)
        )
    )
    proof = None
    if draw(st.booleans()):
        proof = SignedBalanceProof(
            proof=BalanceProof(
                network_id=network_id,
                channel_id=channel_id,
                sequence=draw(u64s),
                payee_balance=draw(u64s),
            ),
            payer_signature=draw(signatures),
            payee_signature=draw(st.none() | signatures),
        )
    return ChannelUnlock(
        op=draw(st.sampled_from(ChannelOp)),
        channel_id=channel_id,
        payer=draw(public_keys),
        payee=draw(public_keys),
        payer_signature=payer_sig,
        payee_signature=payee_sig,
        proof=proof,
    )


@st.composite
def transactions(draw: st.DrawFn, network_id: int | None = None) -> Transaction:
    inputs = draw(
        st.lists(
            st.binary(min_size=34, max_size=34).map(OutputId), min_size=1, max_size=6, unique=True
        )
    )
    outputs = draw(st.lists(basic_outputs | channel_outputs(), min_size=1, max_size=6))
    network = draw(u64s) if network_id is None else network_id
    essence = TransactionEssence(
        network_id=network,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        memo=draw(st.binary(max_size=64)),
    )
    unlocks: list[Unlock] = []
    for position in range(len(inputs)):
        signature_positions = [i for i, u in enumerate(unlocks) if isinstance(u, SignatureUnlock)]
        if signature_positions and draw(st.booleans()):
            unlocks.append(ReferenceUnlock(index=draw(st.sampled_from(signature_positions))))
        elif draw(st.integers(0, 3)) == 0:
            unlocks.append(draw(channel_unlocks(network)))
        else:
            unlocks.append(
                SignatureUnlock(public_key=draw(public_keys), signature=draw(signatures))
            )
        assert len(unlocks) == position + 1
    return Transaction(essence=essence, unlocks=tuple(unlocks))


key_sets = st.lists(public_keys, min_size=1, max_size=5, unique=True).flatmap(
    lambda keys: st.integers(1, len(keys)).map(
        lambda k: KeySet(threshold=k, public_keys=tuple(sorted(keys)))
    )
)


@st.composite
def milestones(
    draw: st.DrawFn, network_id: int | None = None, msg_parents: tuple[MessageId, ...] | None = None
) -> Milestone:
    index = draw(st.integers(1, U32_MAX - 1))
    change = None
    if draw(st.booleans()):
        change = KeySetChange(
            activation_index=draw(st.integers(index + 1, U32_MAX)), key_set=draw(key_sets)
        )
    essence = MilestoneEssence(
        network_id=draw(u64s) if network_id is None else network_id,
        index=index,
        timestamp_ms=draw(u64s),
        previous=MilestoneId(draw(st.binary(min_size=32, max_size=32))),
        parents=draw(parents) if msg_parents is None else msg_parents,
        applied_merkle_root=MerkleRoot(draw(st.binary(min_size=32, max_size=32))),
        inclusion_root=MerkleRoot(draw(st.binary(min_size=32, max_size=32))),
        registry_root=MerkleRoot(draw(st.binary(min_size=32, max_size=32))),
        key_set_change=change,
    )
    signers = sorted(draw(st.lists(public_keys, min_size=1, max_size=4, unique=True)))
    sigs = tuple(CommitteeSignature(public_key=k, signature=draw(signatures)) for k in signers)
    return Milestone(essence=essence, signatures=sigs)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    network_id = draw(u64s)
    ps = draw(parents)
    payload: Payload = draw(
        st.one_of(
            tagged_data,
            transactions(network_id=network_id),
            milestones(network_id=network_id, msg_parents=ps),
        )
    )
    return Message(network_id=network_id, parents=ps, payload=payload, nonce=draw(u64s))
