"""Offline proofs: one reading, from its device's signature up to the committee's signatures.

A proof bundle holds the links of one chain, each checked against the next, ending at the
committee key set, which the verifier brings:

```
reading ──signed by──▶ the device key in its registry entry
registry entry ──registry path──▶ registry_root ─┐
reading ──batch path──▶ batch root ◀── anchor payload of the anchor message
anchor message id ──inclusion path──▶ inclusion_root ─┤
                                                       └─ in the milestone essence, signed by
                                                          `threshold` keys of the committee
                                                          in force at its index
```
The milestone link names each committee signer by the first `KEY_PREFIX` bytes of its key, not
the whole key (`bundle_milestone`): the verifier holds the committee's keys, so it takes the one
key of its schedule with that prefix and checks the signature against it as before (a prefix
that names no key, or two, fails the milestone link). 24 bytes a signature, nothing less
checked.

`verify_bundle` checks the links in this order, each named by its own error (`link`):
milestone signatures, registry path, device status at that milestone, reading signature,
inclusion path, anchor payload, batch path. The order makes each byte string of the bundle
answer for itself: a changed milestone fails its signatures, a changed registry entry its path,
a changed reading its signature, a changed anchor message (its id) the inclusion path. The
reading and the registry entry are read at the milestone that confirmed the anchor: a device
whose key rotated in that very milestone proves its readings with the registry entry before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import TangleError
from tangle.ledger.inclusion import inclusion_path
from tangle.ledger.registry import DeviceEntry, decode_entry, encode_entry, registry_path
from tangle.protocol.codec import Reader
from tangle.protocol.device import DeviceId, DeviceStatus
from tangle.protocol.ids import MessageId, PublicKey, blake2b_256
from tangle.protocol.merkle import root_from_path
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone, decode_milestone, signing_message
from tangle.protocol.proof_bundle import (
    KEY_PREFIX,
    SIGNATURE_BYTES,
    ProofBundle,
    bundle_milestone,
)
from tangle.protocol.signature import is_valid

from .batch import Anchor, check_batch_path, read_anchor
from .errors import (
    AnchorPayloadError,
    DeviceNotActiveError,
    InclusionPathError,
    MilestoneSignatureError,
    ReadingFormatError,
    ReadingSignatureError,
    RegistryPathError,
)
from .reading import SignedReading, decode_signed, read_header, verify_reading

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tangle.ledger.committee import KeySchedule
    from tangle.ledger.registry import Registry

    from .batch import Batch


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvedReading:
    """What a checked bundle proves."""

    reading: SignedReading
    """The reading, signed by the device."""
    device: DeviceEntry
    """The device's registry entry at the milestone."""
    anchor_id: MessageId
    """The message that anchored it."""
    anchor: Anchor
    """What that message anchors."""
    milestone: Milestone
    """The milestone that confirmed it, signed by the committee of its index."""


def _expand_milestone(raw: bytes, schedule: KeySchedule) -> bytes:
    """The milestone's payload encoding, each signer's key found by its prefix among the keys
    of the key set `schedule` has in force at the milestone's index (read from the essence
    first); `MilestoneSignatureError` if the link cannot be read."""
    if not raw:
        raise MilestoneSignatureError("the milestone is empty")
    count = raw[-1]
    start = len(raw) - 1 - count * (KEY_PREFIX + SIGNATURE_BYTES)
    if count == 0 or start < 0:
        raise MilestoneSignatureError(f"the milestone cannot hold {count} signatures")
    try:  # the essence starts u64 network_id, u32 index: only that index's key set names
        essence = Reader(raw[:start], "milestone essence")
        essence.u64("network_id")
        index = essence.u32("index")
    except TangleError as exc:
        raise MilestoneSignatureError(f"the milestone does not decode: {exc}") from None
    by_prefix: dict[bytes, set[PublicKey]] = {}
    for key in schedule.key_set_at(index).public_keys:
        by_prefix.setdefault(key[:KEY_PREFIX], set()).add(key)
    parts = [raw[:start], bytes([count])]
    for at in range(start, len(raw) - 1, KEY_PREFIX + SIGNATURE_BYTES):
        prefix = raw[at : at + KEY_PREFIX]
        named = by_prefix.get(prefix, set())
        if not named:
            raise MilestoneSignatureError(f"signer {prefix.hex()}.. is not in the committee")
        if len(named) > 1:
            raise MilestoneSignatureError(f"{prefix.hex()} names {len(named)} committee keys")
        parts += (*named, raw[at + KEY_PREFIX : at + KEY_PREFIX + SIGNATURE_BYTES])
    return b"".join(parts)


def check_milestone(raw: bytes, schedule: KeySchedule, network_id: int | None = None) -> Milestone:
    """The milestone in `raw` (a bundle's milestone link), if at least the threshold of the key
    set in force at its index signed it and nobody else did (and it is of `network_id`, if
    given); else `MilestoneSignatureError`."""
    try:
        r = Reader(_expand_milestone(raw, schedule), "milestone")
        milestone = decode_milestone(r)
        r.finish()
    except TangleError as exc:
        raise MilestoneSignatureError(f"the milestone does not decode: {exc}") from None
    index = milestone.essence.index
    if network_id is not None and milestone.essence.network_id != network_id:
        raise MilestoneSignatureError(
            f"a milestone of network {milestone.essence.network_id}, not of {network_id}"
        )
    key_set = schedule.key_set_at(index)
    allowed = set(key_set.public_keys)
    message = signing_message(milestone.id)
    for sig in milestone.signatures:
        if sig.public_key not in allowed:
            raise MilestoneSignatureError(
                f"{sig.public_key.hex()} is not in the committee at {index}"
            )
        if not is_valid(sig.public_key, message, sig.signature):
            raise MilestoneSignatureError(
                f"the signature of {sig.public_key.hex()} does not verify"
            )
    if len(milestone.signatures) < key_set.threshold:
        count, needed = len(milestone.signatures), key_set.threshold
        raise MilestoneSignatureError(
            f"{count} signatures, the committee at {index} needs {needed}"
        )
    return milestone


def verify_bundle(
    bundle: ProofBundle, schedule: KeySchedule, *, network_id: int | None = None
) -> ProvedReading:
    """Check every link of `bundle` against the committee key `schedule` (module docstring),
    and that it is of network `network_id` if given; the first broken link raises its own
    `DeviceProofError`."""
    milestone = check_milestone(bundle.milestone, schedule, network_id)
    essence = milestone.essence
    # registry entry, then the device's status at the milestone
    if root_from_path(bundle.registry_entry, bundle.registry_path) != essence.registry_root:
        raise RegistryPathError("the entry and its path do not lead to the registry root")
    try:
        device = decode_entry(bundle.registry_entry)
    except TangleError as exc:
        raise RegistryPathError(f"the entry does not decode: {exc}") from None
    if device.status != DeviceStatus.ACTIVE:
        raise DeviceNotActiveError(f"the device is {device.status.name.lower()}")
    if device.quarantined_at(essence.index):
        raise DeviceNotActiveError(f"the device is quarantined at milestone {essence.index}")
    # the reading, signed by that device's key, for the milestone's network
    try:
        signed = decode_signed(bundle.reading)
    except ReadingFormatError as exc:
        raise ReadingSignatureError(exc.reason) from None
    if signed.reading.device_id != device.device_id:
        raise ReadingSignatureError("the reading names another device than the entry")
    if signed.reading.network_id != essence.network_id:
        raise ReadingSignatureError(f"the reading is for network {signed.reading.network_id}")
    verify_reading(signed, device.key)
    # the anchor message, included by the milestone, anchoring a batch root
    anchor_id = MessageId(blake2b_256(bundle.anchor))
    if root_from_path(anchor_id, bundle.inclusion_path) != essence.inclusion_root:
        raise InclusionPathError("the anchor's id and its path do not lead to the inclusion root")
    try:
        message = decode_message(bundle.anchor).message
    except TangleError as exc:
        raise AnchorPayloadError(f"the anchor message does not decode: {exc}") from None
    anchor = read_anchor(message.payload)
    if message.network_id != essence.network_id or anchor.network_id != essence.network_id:
        raise AnchorPayloadError("the anchor is for another network")
    # the reading under the anchored root
    check_batch_path(bundle.reading, bundle.batch_path, anchor)
    return ProvedReading(
        reading=signed, device=device, anchor_id=anchor_id, anchor=anchor, milestone=milestone
    )


def build_bundle(
    *,
    batch: Batch,
    index: int,
    anchor: bytes,
    referenced: Iterable[MessageId],
    milestone: Milestone,
    registry: Registry,
) -> ProofBundle:
    """The proof of reading `index` of `batch`, anchored by the message `anchor` (raw), which
    `milestone` confirmed among the messages `referenced`; `registry` is the device registry
    after that milestone. Checks nothing: `verify_bundle` does."""
    raw = batch.readings[index]
    entry, entry_path = registry_path(registry, DeviceId(read_header(raw).device_id))
    return ProofBundle(
        reading=raw,
        batch_path=batch.path(index),
        anchor=anchor,
        inclusion_path=inclusion_path(referenced, MessageId(blake2b_256(anchor))),
        milestone=bundle_milestone(milestone),
        registry_entry=encode_entry(entry),
        registry_path=entry_path,
    )
