"""Milestones: checkpoints issued by the coordinator committee.

A milestone references tips of the tangle (its message's parents) and confirms their whole past
cone not yet confirmed (white-flag, see `white_flag.py`). Its essence is signed by at least
`threshold` keys of the committee key set in force at its index. The essence may announce a new
key set, which takes over at `activation_index`.

Encoding of the milestone payload body (after the payload type byte):

```
essence:
  u64  network_id
  u32  index              (>= 1)
  u64  timestamp_ms
  32   previous           MilestoneId of index - 1 (all zero for index 1)
  u8   parent_count (1..8), parents (must equal the message's parents)
  32   applied_merkle_root  of the transactions the milestone applied
  32   inclusion_root       of the ids of every message it references (sorted), see inclusion.py
  32   registry_root        of the device registry after it, see ledger/registry.py
  u8   has_key_set_change (0 or 1), then:
       u32 activation_index, u8 threshold, u8 key_count (1..MAX_COMMITTEE), keys (32 each, sorted)
u8   signature_count (1..MAX_COMMITTEE), then (PublicKey 32, Signature 64) sorted by key, unique
```
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

from tangle.errors import InvalidFieldError, NonCanonicalError

from .codec import U32_MAX, U64_MAX, Reader, require_uint, u8, u32, u64
from .ids import MerkleRoot, MessageId, MilestoneId, PublicKey, Signature, blake2b_256

MAX_PARENTS: Final = 8
MAX_COMMITTEE: Final = 32
SIGNING_DOMAIN: Final = b"tanglepay/milestone/v2"


def _strictly_increasing(items: tuple[bytes, ...]) -> bool:
    return all(a < b for a, b in itertools.pairwise(items))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySet:
    """A committee: `threshold` of these `public_keys` must sign a milestone."""

    threshold: int
    """k of the k-of-n rule, 1..len(public_keys)."""
    public_keys: tuple[PublicKey, ...]
    """n operator keys, sorted, unique."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.public_keys) <= MAX_COMMITTEE:
            raise InvalidFieldError("KeySet.public_keys", f"count {len(self.public_keys)}")
        if not all(isinstance(k, PublicKey) for k in self.public_keys):
            raise InvalidFieldError("KeySet.public_keys", "must be PublicKeys")
        if not _strictly_increasing(self.public_keys):
            raise InvalidFieldError("KeySet.public_keys", "must be sorted and unique")
        require_uint("KeySet.threshold", self.threshold, len(self.public_keys), minimum=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySetChange:
    """A new committee that takes over from `activation_index` on."""

    activation_index: int
    """First milestone index the new key set signs."""
    key_set: KeySet
    """The new committee."""

    def __post_init__(self) -> None:
        require_uint("KeySetChange.activation_index", self.activation_index, U32_MAX, minimum=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneEssence:
    """What the committee signs."""

    network_id: int
    """The network the milestone belongs to."""
    index: int
    """Position in the milestone chain, from 1."""
    timestamp_ms: int
    """Issuance time, Unix milliseconds."""
    previous: MilestoneId
    """Id of milestone `index - 1`; all zero for index 1."""
    parents: tuple[MessageId, ...]
    """The tips the milestone references; equal to its message's parents."""
    applied_merkle_root: MerkleRoot
    """Merkle root of the ids of the transactions this milestone applied, in white-flag order."""
    inclusion_root: MerkleRoot
    """Merkle root of the ids of every message this milestone references, sorted bytewise."""
    registry_root: MerkleRoot
    """Merkle root of the device registry's entries after this milestone, by device id."""
    key_set_change: KeySetChange | None = None
    """A committee rotation announced by this milestone."""

    def __post_init__(self) -> None:
        require_uint("MilestoneEssence.network_id", self.network_id, U64_MAX)
        require_uint("MilestoneEssence.index", self.index, U32_MAX, minimum=1)
        require_uint("MilestoneEssence.timestamp_ms", self.timestamp_ms, U64_MAX)
        if not 1 <= len(self.parents) <= MAX_PARENTS:
            raise InvalidFieldError("MilestoneEssence.parents", f"count {len(self.parents)}")
        if not _strictly_increasing(self.parents):
            raise InvalidFieldError("MilestoneEssence.parents", "must be sorted and unique")
        change = self.key_set_change
        if change is not None and change.activation_index <= self.index:
            raise InvalidFieldError(
                "MilestoneEssence.key_set_change", "activation must come after this milestone"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitteeSignature:
    """One committee member's signature of a milestone id."""

    public_key: PublicKey
    """The member's key."""
    signature: Signature
    """ed25519 signature of `signing_message(milestone_id)`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Milestone:
    """A signed milestone payload."""

    essence: MilestoneEssence
    """The signed content."""
    signatures: tuple[CommitteeSignature, ...]
    """Signatures sorted by public key, one per key."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.signatures) <= MAX_COMMITTEE:
            raise InvalidFieldError("Milestone.signatures", f"count {len(self.signatures)}")
        if not _strictly_increasing(tuple(s.public_key for s in self.signatures)):
            raise InvalidFieldError("Milestone.signatures", "must be sorted by key and unique")

    @property
    def id(self) -> MilestoneId:
        return milestone_id(self.essence)


def milestone_id(essence: MilestoneEssence) -> MilestoneId:
    return MilestoneId(blake2b_256(encode_essence(essence)))


def signing_message(ms_id: MilestoneId) -> bytes:
    """The bytes each committee member signs."""
    return SIGNING_DOMAIN + ms_id


# -- encoding --------------------------------------------------------------------------------


def _encode_key_set_change(change: KeySetChange | None) -> bytes:
    if change is None:
        return u8(0)
    keys = change.key_set.public_keys
    return b"".join(
        (u8(1), u32(change.activation_index), u8(change.key_set.threshold), u8(len(keys)), *keys)
    )


def encode_essence(essence: MilestoneEssence) -> bytes:
    return b"".join(
        (
            u64(essence.network_id),
            u32(essence.index),
            u64(essence.timestamp_ms),
            essence.previous,
            u8(len(essence.parents)),
            *essence.parents,
            essence.applied_merkle_root,
            essence.inclusion_root,
            essence.registry_root,
            _encode_key_set_change(essence.key_set_change),
        )
    )


def encode_milestone(ms: Milestone) -> bytes:
    sigs = b"".join(s.public_key + s.signature for s in ms.signatures)
    return encode_essence(ms.essence) + u8(len(ms.signatures)) + sigs


def _bounded(r: Reader, what: str, maximum: int) -> int:
    n = r.u8(what)
    if not 1 <= n <= maximum:
        raise NonCanonicalError(f"{what} {n} is outside 1..{maximum}")
    return n


def _decode_key_set_change(r: Reader) -> KeySetChange | None:
    flag = r.u8("has_key_set_change")
    if flag == 0:
        return None
    if flag != 1:
        raise NonCanonicalError(f"has_key_set_change is {flag}, not 0 or 1")
    activation = r.u32("activation_index")
    threshold = r.u8("threshold")
    count = _bounded(r, "key_count", MAX_COMMITTEE)
    keys = tuple(PublicKey(r.take(32, "key")) for _ in range(count))
    return KeySetChange(
        activation_index=activation, key_set=KeySet(threshold=threshold, public_keys=keys)
    )


def decode_milestone(r: Reader) -> Milestone:
    """Read a milestone body; the caller checks that nothing trails it."""
    network_id = r.u64("network_id")
    index = r.u32("index")
    timestamp_ms = r.u64("timestamp_ms")
    previous = MilestoneId(r.take(32, "previous"))
    parents = tuple(
        MessageId(r.take(32, "parent")) for _ in range(_bounded(r, "parent_count", MAX_PARENTS))
    )
    root = MerkleRoot(r.take(32, "applied_merkle_root"))
    inclusion = MerkleRoot(r.take(32, "inclusion_root"))
    registry = MerkleRoot(r.take(32, "registry_root"))
    change = _decode_key_set_change(r)
    essence = MilestoneEssence(
        network_id=network_id,
        index=index,
        timestamp_ms=timestamp_ms,
        previous=previous,
        parents=parents,
        applied_merkle_root=root,
        inclusion_root=inclusion,
        registry_root=registry,
        key_set_change=change,
    )
    signatures = tuple(
        CommitteeSignature(
            public_key=PublicKey(r.take(32, "signer")),
            signature=Signature(r.take(64, "signature")),
        )
        for _ in range(_bounded(r, "signature_count", MAX_COMMITTEE))
    )
    return Milestone(essence=essence, signatures=signatures)
