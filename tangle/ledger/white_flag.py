"""White-flag confirmation: what a milestone does to the ledger.

A milestone confirms every message of its past cone that no earlier milestone referenced. The
cone is walked in one deterministic order, a post-order depth-first search that visits parents in
their (sorted) order, so every node lists the same messages in the same order. Transactions are
applied in that order against the ledger plus the effects of those before them: the first spend
of an output wins, a later one is kept in the tangle but marked conflicting with a reason.
Device registry records are applied in the same order (`registry_rules.py`), each against the
registry plus the records before it.
The Merkle root of the ids of the included transaction messages, in that order, must equal the
root the committee signed, and so must the inclusion root of every referenced message
(`inclusion.py`) and the registry root the records leave (`registry.py`); if one does not, the
node stops rather than diverge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import MissingConeError
from tangle.protocol.channel import ChannelOutput, ChannelUnlock
from tangle.protocol.ids import Address, MerkleRoot, MessageId, OutputId, blake2b_256
from tangle.protocol.merkle import merkle_root

from .channel_rules import check_channel_spend, recorded_outputs
from .inclusion import inclusion_root
from .ledger import Conflict, LedgerDiff, Spend, unlock_key
from .registry import Registry, RegistryDiff
from .registry_rules import RegistryOverlay, RegistryRules, apply_record

if TYPE_CHECKING:
    from tangle.protocol.device import DeviceRecord
    from tangle.protocol.milestone import KeySet
    from tangle.protocol.transaction import Output, Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class ConeMessage:
    """What white-flag needs to know about a message."""

    parents: tuple[MessageId, ...]
    """Its parents, sorted."""
    transaction: Transaction | None
    """Its transaction payload, if any (signatures already verified at attach)."""
    referenced: bool
    """True if an earlier milestone referenced it (the walk stops there)."""
    record: DeviceRecord | None = None
    """Its device registry record, if any (signatures already verified at attach)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryContext:
    """What white flag applies registry records against."""

    registry: Registry
    """The registry at the confirmed milestone (read only)."""
    committee: KeySet
    """The committee in force at the milestone (it admits issuers)."""
    rules: RegistryRules
    """The network's endorsement policy and quarantine threshold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WhiteFlagResult:
    """What applying one milestone's cone yields."""

    referenced: tuple[MessageId, ...]
    """Newly referenced messages, in white-flag order."""
    included: tuple[MessageId, ...]
    """Transaction messages applied to the ledger, in order."""
    conflicts: tuple[tuple[MessageId, Conflict], ...]
    """Transaction messages kept out of the ledger, with the reason."""
    diff: LedgerDiff
    """The ledger changes."""
    merkle_root: MerkleRoot
    """Merkle root of `included`."""
    inclusion_root: MerkleRoot
    """Merkle root of `referenced`, sorted (`inclusion.py`)."""
    records: tuple[MessageId, ...]
    """Device registry records applied, in order."""
    record_conflicts: tuple[tuple[MessageId, Conflict], ...]
    """Device registry records kept out of the registry, with the rule they broke."""
    registry: RegistryDiff
    """The registry changes, with the registry root after them."""


Lookup = Callable[[MessageId], ConeMessage | None]
"""Message lookup; None means the message is unknown."""


def past_cone(
    parents: tuple[MessageId, ...], lookup: Lookup, is_entry_point: Callable[[MessageId], bool]
) -> list[tuple[MessageId, ConeMessage]]:
    """The unreferenced past cone of `parents`, in white-flag (post-order DFS) order.

    Raises `MissingConeError` naming every unknown message found.
    """
    order: list[tuple[MessageId, ConeMessage]] = []
    seen: set[MessageId] = set()
    missing: set[bytes] = set()
    # Each stack entry is (message id, its data, index of the next parent to visit).
    stack: list[tuple[MessageId, ConeMessage, int]] = []

    def enter(mid: MessageId) -> None:
        if mid in seen:
            return
        seen.add(mid)
        if is_entry_point(mid):
            return
        msg = lookup(mid)
        if msg is None:
            missing.add(mid)
        elif not msg.referenced:
            stack.append((mid, msg, 0))

    for parent in parents:
        enter(parent)
        while stack:
            mid, msg, nxt = stack[-1]
            if nxt < len(msg.parents):
                stack[-1] = (mid, msg, nxt + 1)
                enter(msg.parents[nxt])
            else:
                stack.pop()
                order.append((mid, msg))
    if missing:
        raise MissingConeError(frozenset(missing))
    return order


def white_flag(
    *,
    index: int,
    parents: tuple[MessageId, ...],
    lookup: Lookup,
    is_entry_point: Callable[[MessageId], bool],
    unspent: Mapping[OutputId, Output],
    is_spent: Callable[[OutputId], bool],
    registry: RegistryContext | None = None,
) -> WhiteFlagResult:
    """Apply milestone `index`'s cone to the ledger given by `unspent` and to `registry` (both
    read only; no registry: an empty one, under a committee that admits no issuer)."""
    cone = past_cone(parents, lookup, is_entry_point)
    overlay = RegistryOverlay(base=Registry() if registry is None else registry.registry)
    records: list[MessageId] = []
    record_conflicts: list[tuple[MessageId, Conflict]] = []
    created: dict[OutputId, Output] = {}
    consumed: dict[OutputId, Spend] = {}
    included: list[MessageId] = []
    conflicts: list[tuple[MessageId, Conflict]] = []
    for mid, msg in cone:
        if msg.record is not None:
            conflict = apply_record(
                overlay,
                msg.record,
                index=index,
                committee=None if registry is None else registry.committee,
                rules=RegistryRules() if registry is None else registry.rules,
            )
            if conflict is Conflict.NONE:
                records.append(mid)
            else:
                record_conflicts.append((mid, conflict))
            continue
        tx = msg.transaction
        if tx is None:
            continue
        conflict = _check(tx, index, unspent, created, consumed, is_spent)
        if conflict is not Conflict.NONE:
            conflicts.append((mid, conflict))
            continue
        tx_id = tx.id
        for oid in tx.essence.inputs:
            output = created[oid] if oid in created else unspent[oid]
            consumed[oid] = Spend(output_id=oid, output=output, transaction_id=tx_id)
        channel_unlock = next((u for u in tx.unlocks if isinstance(u, ChannelUnlock)), None)
        for i, output in enumerate(recorded_outputs(tx, channel_unlock, index)):
            created[OutputId.of(tx_id, i)] = output
        included.append(mid)
    # An output created and spent inside the same cone never reaches the UTXO set.
    diff = LedgerDiff(
        index=index,
        created=tuple((oid, out) for oid, out in created.items() if oid not in consumed),
        consumed=tuple(s for s in consumed.values() if s.output_id not in created),
    )
    referenced = tuple(mid for mid, _ in cone)
    return WhiteFlagResult(
        referenced=referenced,
        included=tuple(included),
        conflicts=tuple(conflicts),
        diff=diff,
        merkle_root=merkle_root(included),
        inclusion_root=inclusion_root(referenced),
        records=tuple(records),
        record_conflicts=tuple(record_conflicts),
        registry=overlay.diff(),
    )


def _check(
    tx: Transaction,
    index: int,
    unspent: Mapping[OutputId, Output],
    created: Mapping[OutputId, Output],
    consumed: Mapping[OutputId, Spend],
    is_spent: Callable[[OutputId], bool],
) -> Conflict:
    total_in = 0
    for position, oid in enumerate(tx.essence.inputs):
        if oid in consumed:
            return Conflict.INPUT_SPENT
        output = created[oid] if oid in created else unspent.get(oid)
        if output is None:
            return Conflict.INPUT_SPENT if is_spent(oid) else Conflict.INPUT_NOT_FOUND
        unlock = tx.unlocks[position]
        if isinstance(unlock, ChannelUnlock):
            conflict = check_channel_spend(tx, unlock, output, index)
            if conflict is not Conflict.NONE:
                return conflict
        elif isinstance(output, ChannelOutput):
            return Conflict.CHANNEL_UNLOCK_MISMATCH
        elif output.address != Address(blake2b_256(unlock_key(tx, position) or b"")):
            return Conflict.UNLOCK_ADDRESS_MISMATCH
        total_in += output.amount
    if total_in != tx.essence.total_output:
        return Conflict.AMOUNT_MISMATCH
    return Conflict.NONE
