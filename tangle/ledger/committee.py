"""The coordinator committee: which keys sign which milestones, and milestone verification.

A node accepts milestone N only if it follows the confirmed milestone (index N-1, `previous`
equal to its id), belongs to this network, and carries valid signatures from at least
`threshold` keys of the key set in force at N. Any signature by a key outside that set, or one
that does not verify, rejects the whole milestone, so a milestone is valid or not independently
of which subset of signatures a peer forwarded. A milestone may announce a new key set, which is
in force from its activation index on.

A key schedule is encoded (in snapshots, and in the database of a node started from one) as
```
u32  entry_count (>= 1)
     entry_count x (u32 activation_index, u8 threshold, u8 key_count (1..MAX_COMMITTEE),
                    key_count x PublicKey 32, sorted, unique)
     activation indexes strictly increasing, the first 1
```
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import (
    BadSignatureError,
    ChainMismatchError,
    IndexGapError,
    InvalidFieldError,
    MalformedError,
    NonCanonicalError,
    TooFewSignaturesError,
    TruncatedError,
    UnknownSignerError,
    WrongNetworkError,
)
from tangle.protocol.codec import U32_MAX, require_uint, u8, u32
from tangle.protocol.ids import PublicKey
from tangle.protocol.milestone import MAX_COMMITTEE, KeySet, Milestone, signing_message
from tangle.protocol.signature import is_valid

if TYPE_CHECKING:
    from tangle.protocol.codec import Reader
    from tangle.protocol.ids import MilestoneId

_MIN_ENTRY_SIZE: Final = 4 + 1 + 1 + PublicKey.SIZE


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySchedule:
    """Key sets by the milestone index from which each is in force."""

    entries: tuple[tuple[int, KeySet], ...]
    """(activation index, key set), strictly increasing indexes, the first at index 1."""

    def __post_init__(self) -> None:
        if not self.entries or self.entries[0][0] != 1:
            raise InvalidFieldError("KeySchedule.entries", "must start at milestone 1")
        starts = [start for start, _ in self.entries]
        for start in starts:
            require_uint("KeySchedule.entries activation index", start, U32_MAX, minimum=1)
        if not all(isinstance(key_set, KeySet) for _, key_set in self.entries):
            raise InvalidFieldError("KeySchedule.entries", "must hold KeySets")
        if any(a >= b for a, b in itertools.pairwise(starts)):
            raise InvalidFieldError("KeySchedule.entries", "activation indexes must increase")

    def key_set_at(self, index: int) -> KeySet:
        current = self.entries[0][1]
        for start, key_set in self.entries:
            if start > index:
                break
            current = key_set
        return current

    def after(self, milestone: Milestone) -> KeySchedule:
        """The schedule once `milestone` is applied (with its announced rotation, if any)."""
        change = milestone.essence.key_set_change
        if change is None:
            return self
        kept = tuple(e for e in self.entries if e[0] < change.activation_index)
        return KeySchedule(entries=(*kept, (change.activation_index, change.key_set)))


def encode_key_schedule(schedule: KeySchedule) -> bytes:
    """The canonical encoding of `schedule` (module docstring)."""
    parts = [u32(len(schedule.entries))]
    for start, key_set in schedule.entries:
        keys = key_set.public_keys
        parts += (u32(start), u8(key_set.threshold), u8(len(keys)), *keys)
    return b"".join(parts)


def decode_key_schedule(r: Reader) -> KeySchedule:
    """Read a key schedule; every defect raises a `DecodeError`."""
    count = r.u32("key_schedule_count")
    if count * _MIN_ENTRY_SIZE > r.remaining:
        raise TruncatedError("key_schedule", count * _MIN_ENTRY_SIZE, r.remaining)
    entries: list[tuple[int, KeySet]] = []
    try:
        for _ in range(count):
            start = r.u32("activation_index")
            threshold = r.u8("threshold")
            key_count = r.u8("key_count")
            if not 1 <= key_count <= MAX_COMMITTEE:
                raise NonCanonicalError(f"key_count {key_count} is outside 1..{MAX_COMMITTEE}")
            keys = tuple(PublicKey(r.take(PublicKey.SIZE, "key")) for _ in range(key_count))
            entries.append((start, KeySet(threshold=threshold, public_keys=keys)))
        return KeySchedule(entries=tuple(entries))
    except InvalidFieldError as exc:
        raise MalformedError(str(exc)) from exc


def check_signatures(milestone: Milestone) -> None:
    """Raise `BadSignatureError` unless every signature is a valid ed25519 signature of the
    milestone by its stated key.

    A node checks this when a milestone arrives, before it holds or relays it: it needs no key
    schedule (which may change before the milestone's index), so an honest node never relays a
    milestone that fails it, and a peer that sends one is misbehaving. Whether the signers are
    the committee of that index is checked when the milestone is applied."""
    message = signing_message(milestone.id)
    for sig in milestone.signatures:
        if not is_valid(sig.public_key, message, sig.signature):
            raise BadSignatureError(sig.public_key)


def verify_milestone(
    milestone: Milestone,
    *,
    network_id: int,
    confirmed_index: int,
    confirmed_id: MilestoneId,
    schedule: KeySchedule,
) -> None:
    """Raise a `MilestoneError` unless `milestone` may follow the confirmed milestone."""
    essence = milestone.essence
    if essence.network_id != network_id:
        raise WrongNetworkError(network_id, essence.network_id)
    if essence.index != confirmed_index + 1:
        raise IndexGapError(confirmed_index + 1, essence.index)
    if essence.previous != confirmed_id:
        raise ChainMismatchError(
            f"milestone {essence.index} follows {essence.previous.hex()}, "
            f"not the confirmed {confirmed_id.hex()}"
        )
    key_set = schedule.key_set_at(essence.index)
    allowed = set(key_set.public_keys)
    for sig in milestone.signatures:
        if sig.public_key not in allowed:
            raise UnknownSignerError(sig.public_key, essence.index)
    check_signatures(milestone)
    if len(milestone.signatures) < key_set.threshold:
        raise TooFewSignaturesError(len(milestone.signatures), key_set.threshold)
