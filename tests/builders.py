"""Small builders for signed transactions and milestones used across the tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nacl.signing import SigningKey

from coordinator.signers import KeySigner
from tangle.errors import NoTipsError
from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Genesis
from tangle.protocol.ids import (
    Address,
    MerkleRoot,
    MessageId,
    MilestoneId,
    OutputId,
    PublicKey,
    Signature,
)
from tangle.protocol.merkle import merkle_root
from tangle.protocol.message import encode_message, prepare
from tangle.protocol.milestone import (
    CommitteeSignature,
    KeySet,
    KeySetChange,
    Milestone,
    MilestoneEssence,
)
from tangle.protocol.milestone import (
    signing_message as milestone_signing_message,
)
from tangle.protocol.transaction import (
    BasicOutput,
    Transaction,
    TransactionEssence,
    address_of,
)
from tangle.window.dag import GENESIS_ID
from tangle.window.tip_selection import UniformRandomTips
from tangle.work import search
from wallet.transfer import sign_transaction

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from tangle.node.core import NodeCore
    from tangle.protocol.payload import Payload

NET = 42


def key(seed: int) -> SigningKey:
    return SigningKey(seed.to_bytes(32, "little"))


def address(signer: SigningKey) -> Address:
    return address_of(bytes(signer.verify_key))


def genesis(holders: Sequence[tuple[SigningKey, int]], network_id: int = NET) -> Genesis:
    allocations = tuple((address(k), amount) for k, amount in holders)
    return Genesis(
        network_id=network_id, supply=sum(a for _, a in allocations), allocations=allocations
    )


def transfer(
    spends: Sequence[tuple[OutputId, SigningKey]],
    outputs: Sequence[tuple[Address, int]],
    network_id: int = NET,
    memo: bytes = b"",
) -> Transaction:
    essence = TransactionEssence(
        network_id=network_id,
        inputs=tuple(oid for oid, _ in spends),
        outputs=tuple(BasicOutput(address=a, amount=v) for a, v in outputs),
        memo=memo,
    )
    return sign_transaction(essence, [KeySigner(bytes(signer)) for _, signer in spends])


def committee(n: int, threshold: int, offset: int = 1000) -> tuple[list[SigningKey], KeySet]:
    keys = sorted((key(offset + i) for i in range(n)), key=lambda k: bytes(k.verify_key))
    key_set = KeySet(
        threshold=threshold, public_keys=tuple(PublicKey(bytes(k.verify_key)) for k in keys)
    )
    return keys, key_set


def schedule(key_set: KeySet) -> KeySchedule:
    return KeySchedule(entries=((1, key_set),))


def milestone(
    *,
    index: int,
    previous: MilestoneId,
    parents: tuple[MessageId, ...],
    signers: Sequence[SigningKey],
    root: MerkleRoot | None = None,
    inclusion: MerkleRoot | None = None,
    registry: MerkleRoot | None = None,
    core: NodeCore | None = None,
    network_id: int = NET,
    timestamp_ms: int = 0,
    change: KeySetChange | None = None,
) -> Milestone:
    """A signed milestone; a root not given is what `core` computes for it (an empty tree's
    root without a core)."""
    parents = tuple(sorted(parents))
    empty = merkle_root([])
    if core is not None:
        preview = core.preview(index, parents)
        root = preview.merkle_root if root is None else root
        inclusion = preview.inclusion_root if inclusion is None else inclusion
        registry = preview.registry.root if registry is None else registry
    essence = MilestoneEssence(
        network_id=network_id,
        index=index,
        timestamp_ms=timestamp_ms,
        previous=previous,
        parents=parents,
        applied_merkle_root=empty if root is None else root,
        inclusion_root=empty if inclusion is None else inclusion,
        registry_root=empty if registry is None else registry,
        key_set_change=change,
    )
    draft = Milestone(
        essence=essence,
        signatures=(
            CommitteeSignature(public_key=PublicKey(bytes(32)), signature=Signature(bytes(64))),
        ),
    )
    message = milestone_signing_message(draft.id)
    sigs = sorted(
        (
            CommitteeSignature(
                public_key=PublicKey(bytes(k.verify_key)),
                signature=Signature(k.sign(message).signature),
            )
            for k in signers
        ),
        key=lambda s: s.public_key,
    )
    return Milestone(essence=essence, signatures=tuple(sigs))


def message(
    payload: Payload,
    parents: tuple[MessageId, ...],
    *,
    work_per_kib: int,
    network_id: int = NET,
) -> bytes:
    """A message carrying `payload` with valid proof-of-work."""
    unsent = prepare(network_id, payload, work_per_kib)
    nonce = search(unsent.root, unsent.target, threads=1)
    return encode_message(unsent.attach(tuple(sorted(parents)), nonce))


def on_tips(core: NodeCore, payload: Payload, rng: np.random.Generator, count: int = 2) -> bytes:
    """A message carrying `payload` on tips of `core` chosen by URTS."""
    try:
        parents = UniformRandomTips().select(core.dag, rng, count)
    except NoTipsError:
        parents = (GENESIS_ID,)
    return message(payload, parents, work_per_kib=core.params.work_per_kib)
