"""A whole proof chain built in memory: a registry, a committee, a gateway batch, its anchor
message and the milestone that confirms it, with the real encoders and signers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from coordinator.signers import KeySigner, sign_milestone
from tangle.ledger.committee import KeySchedule
from tangle.ledger.inclusion import inclusion_root
from tangle.ledger.registry import DeviceEntry, Registry, restore_registry
from tangle.protocol.device import NO_GATEWAY, Capability, DeviceStatus
from tangle.protocol.ids import MerkleRoot, MessageId, MilestoneId, PublicKey, blake2b_256
from tangle.protocol.message import Message, encode_message
from tangle.protocol.milestone import KeySet, Milestone, MilestoneEssence
from tangle.protocol.transaction import address_of
from wallet.devices.batch import Batch, anchor_payload
from wallet.devices.gateway import Gateway
from wallet.devices.proof import build_bundle

from ._support import NETWORK, device_id, device_key, raw_reading

if TYPE_CHECKING:
    from tangle.protocol.payload import TaggedData
    from tangle.protocol.proof_bundle import ProofBundle

MAKER = PublicKey(blake2b_256(b"maker"))


def committee(offset: int, size: int = 5, threshold: int = 3) -> tuple[list[KeySigner], KeySet]:
    signers = sorted(
        (KeySigner(blake2b_256(b"committee", bytes([offset + i]))) for i in range(size)),
        key=lambda s: s.public_key,
    )
    return signers, KeySet(threshold=threshold, public_keys=tuple(s.public_key for s in signers))


def entry(n: int, status: DeviceStatus = DeviceStatus.ACTIVE) -> DeviceEntry:
    key = device_key(n).public_key
    return DeviceEntry(
        device_id=device_id(n),
        key=key,
        address=address_of(key),
        maker=MAKER,
        model=b"thermo-3",
        capability=Capability.FULL,
        gateway=NO_GATEWAY,
        attributes_hash=blake2b_256(b"attributes", bytes([n])),
        uri=b"",
        status=status,
        serial=0,
        registered_at=1,
        updated_at=1,
        endorsers=(MAKER,),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Chain:
    batch: Batch
    anchor: bytes
    referenced: tuple[MessageId, ...]
    milestone: Milestone
    registry: Registry

    def bundle(self, index: int = 0) -> ProofBundle:
        return build_bundle(
            batch=self.batch,
            index=index,
            anchor=self.anchor,
            referenced=self.referenced,
            milestone=self.milestone,
            registry=self.registry,
        )


def build_chain(
    *,
    index: int = 5,
    signers: list[KeySigner] | None = None,
    key_set: KeySet | None = None,
    devices: int = 4,
    readings: int = 3,
    others: int = 9,
    registry: Registry | None = None,
    payload: TaggedData | None = None,
) -> Chain:
    """Device `d` sends readings 1..`readings`; the gateway batches them; one message anchors
    the batch (or carries `payload`); milestone `index`, signed by the threshold of `signers`,
    references it among `others` more."""
    if signers is None or key_set is None:
        signers, key_set = committee(0)
    gateway = Gateway(network_id=NETWORK)
    for d in range(devices):
        gateway.serve(device_id(d), device_key(d).public_key)
    for c in range(1, readings + 1):
        for d in range(devices):
            gateway.accept(raw_reading(d, c, data=f"{d}:{c} 21.5C".encode()))
    batch = gateway.seal()
    assert batch is not None
    parents = tuple(sorted(MessageId(blake2b_256(b"tip", bytes([i]))) for i in range(4)))
    anchor = encode_message(
        Message(
            network_id=NETWORK,
            parents=parents,
            payload=payload or anchor_payload(batch.anchor),
            nonce=7,
        )
    )
    referenced = (
        MessageId(blake2b_256(anchor)),
        *(MessageId(blake2b_256(b"other", bytes([i]))) for i in range(others)),
    )
    if registry is None:
        registry = restore_registry([entry(d) for d in range(devices)], [])
    essence = MilestoneEssence(
        network_id=NETWORK,
        index=index,
        timestamp_ms=1_700_000_000_000,
        previous=MilestoneId(blake2b_256(b"previous", bytes([index]))),
        parents=tuple(sorted((MessageId(blake2b_256(anchor)), parents[0]))),
        applied_merkle_root=MerkleRoot(bytes(32)),
        inclusion_root=inclusion_root(referenced),
        registry_root=registry.root,
    )
    milestone = sign_milestone(essence, signers[: key_set.threshold], key_set)
    return Chain(
        batch=batch, anchor=anchor, referenced=referenced, milestone=milestone, registry=registry
    )


def schedule_of(key_set: KeySet) -> KeySchedule:
    return KeySchedule(entries=((1, key_set),))
