"""What the coordinator puts in the next milestone (pure planning, no I/O).

**Which tips.** A milestone references every non-lazy and semi-lazy tip of the coordinator's
window, so every message that can still be confirmed is confirmed by the next milestone:
confirmation takes one milestone interval plus gossip delay. A message has at most 8 parents, so
when there are more tips the coordinator first issues *checkpoint* messages (tagged data,
`tag = b"tanglepay/checkpoint"`, `data = u32 index || u16 sequence || previous milestone id ||
16 random bytes`), each approving up to 8 of them, layer by layer until 8 or fewer remain; the
milestone approves those. The random bytes make a checkpoint's payload unknown until the
coordinator publishes it, so nobody can do its proof-of-work in advance and squat its gossip slot.
Lazy tips are left alone: they approve history below max depth and their issuers must re-attach.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final

from tangle.protocol.codec import u16, u32
from tangle.protocol.ids import MerkleRoot, MessageId, MilestoneId
from tangle.protocol.milestone import KeySetChange, MilestoneEssence
from tangle.protocol.payload import TaggedData
from tangle.window.dag import Score

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.node.core import NodeCore

MAX_PARENTS: Final = 8
CHECKPOINT_TAG: Final = b"tanglepay/checkpoint"


def tips_to_confirm(core: NodeCore) -> tuple[MessageId, ...]:
    """The tips the next milestone should cover, or the newest entry point if there are none."""
    dag = core.dag
    tips = sorted({*dag.tips(Score.NON_LAZY), *dag.tips(Score.SEMI_LAZY)})
    return tuple(tips) if tips else newest_entry_point(core)


def newest_entry_point(core: NodeCore) -> tuple[MessageId]:
    """The entry point referenced last: what a milestone approves when nothing else is new."""
    points = core.dag.entry_points()
    return (max(points, key=lambda m: (points[m], m)),)


def group(tips: Sequence[MessageId]) -> list[tuple[MessageId, ...]]:
    """Split sorted `tips` into parent sets of at most MAX_PARENTS, each sorted."""
    return [tuple(sorted(tips[i : i + MAX_PARENTS])) for i in range(0, len(tips), MAX_PARENTS)]


def checkpoint_payload(
    index: int, sequence: int, previous: MilestoneId, salt: bytes | None = None
) -> TaggedData:
    """The payload of checkpoint `sequence` of milestone `index`, which follows `previous`;
    `salt` (16 random bytes unless given) keeps it unpredictable."""
    salt = secrets.token_bytes(16) if salt is None else salt
    return TaggedData(tag=CHECKPOINT_TAG, data=u32(index) + u16(sequence) + previous + salt)


def milestone_essence(
    core: NodeCore,
    *,
    parents: tuple[MessageId, ...],
    timestamp_ms: int,
    key_set_change: KeySetChange | None,
) -> MilestoneEssence:
    """The essence of the next milestone, with the Merkle roots of what it will apply, of what
    it references and of the device registry it leaves."""
    index = core.confirmed_index + 1
    preview = core.preview(index, parents)
    return MilestoneEssence(
        network_id=core.params.network_id,
        index=index,
        timestamp_ms=timestamp_ms,
        previous=core.confirmed_id,
        parents=parents,
        applied_merkle_root=MerkleRoot(preview.merkle_root),
        inclusion_root=preview.inclusion_root,
        registry_root=preview.registry.root,
        key_set_change=key_set_change,
    )
