"""The sans-I/O node: raw messages in, events out.

`NodeCore` checks each message (format, network, proof-of-work, transaction rules), attaches it
to the DAG window, and applies milestones in index order as their cones become solid. It never
touches a socket, a file or a clock: the adapter around it persists what `Accepted` and
`Confirmed` events carry, gossips accepted messages, and requests the ids in `Requested`.

The ledger state in memory moves forward as soon as a milestone is applied; the adapter must
write the `Confirmed` event (one storage transaction) before it tells anyone about it. After a
crash the node restarts from storage, which holds milestone N or N-1, and re-applies the rest.

Every table input can grow is bounded: pending messages per source and in total, and by age
(`Dag`); milestones held until their turn by how far ahead they are (`MILESTONE_LOOKAHEAD`) and,
for those whose signers the applied chain does not show to be the committee of their index, by
count (`MAX_UNJUDGED_MILESTONES`). A message a held committee milestone waits for is always
taken. Two milestones for one index signed as the committee must sign are an equivocation: the
core keeps both as evidence (`alarms`) and applies no further milestone until an operator acts.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from tangle.errors import (
    DuplicateMessageError,
    DuplicatePayloadError,
    EquivocationError,
    HeldMilestoneLimitError,
    InclusionRootMismatchError,
    MerkleRootMismatchError,
    MilestoneError,
    MilestoneTooFarAheadError,
    NodeHaltedError,
    RegistryRootMismatchError,
    StaleMilestoneError,
)
from tangle.ledger.committee import KeySchedule, check_signatures, verify_milestone
from tangle.ledger.ledger import LedgerState, apply_diff, validate_transaction
from tangle.ledger.quarantine import refuse_quarantined
from tangle.ledger.records import MilestoneRecord, milestone_record
from tangle.ledger.registry import apply_registry_diff
from tangle.ledger.registry_rules import RegistryRules, validate_record
from tangle.ledger.white_flag import ConeMessage, RegistryContext, WhiteFlagResult, white_flag
from tangle.protocol.codec import U64_MAX, require_uint
from tangle.protocol.device import DeviceRecord
from tangle.protocol.ids import MessageId, MilestoneId, OutputId
from tangle.protocol.message import Parsed, check_message, decode_message
from tangle.protocol.milestone import Milestone
from tangle.protocol.transaction import Transaction
from tangle.window.dag import GENESIS_ID, Dag
from tangle.window.tip_pool import TipRules

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Mapping

    from tangle.window._dag_pending import PendingLimits

GENESIS_MILESTONE_ID: Final = MilestoneId(bytes(32))
MILESTONE_LOOKAHEAD: Final = 256
"""A milestone more than this above the confirmed index is refused (milestone sync fetches it
when its turn comes)."""
MAX_UNJUDGED_MILESTONES: Final = 16
"""Most held milestones whose signers are not the committee of their index as the applied chain
tells (they may be a rotation not applied yet, or forgeries by outside keys)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameters:
    """What every node of a network must agree on."""

    network_id: int
    """The network; messages, transactions and milestones of others are refused."""
    work_per_kib: int
    """Expected proof-of-work hashes per KiB of message."""
    min_output_amount: int
    """Storage deposit: the least an output may hold (dust protection)."""
    tip_rules: TipRules = field(default_factory=TipRules)
    """Tip scoring thresholds, in milestones."""
    pending_limits: PendingLimits | None = None
    """Bounds of the pending-message table (None: `PendingLimits()`); local, not consensus."""
    registry_rules: RegistryRules = field(default_factory=RegistryRules)
    """The device registry's endorsement policy and quarantine threshold."""

    def __post_init__(self) -> None:
        require_uint("Parameters.network_id", self.network_id, U64_MAX)
        require_uint("Parameters.work_per_kib", self.work_per_kib, 1 << 40, minimum=1)
        require_uint("Parameters.min_output_amount", self.min_output_amount, U64_MAX, minimum=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """A new valid message: persist it and gossip it."""

    parsed: Parsed
    """The message."""
    solid: tuple[MessageId, ...]
    """Messages that became solid through it (itself first, if it is)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Requested:
    """Parents nobody has sent yet: ask peers for them."""

    ids: tuple[MessageId, ...]
    """The missing ids."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirmed:
    """A milestone was applied: write it to storage (one transaction) before announcing it."""

    record: MilestoneRecord
    """The milestone."""
    result: WhiteFlagResult
    """What it referenced, included and rejected, and the ledger diff."""
    state_hash: bytes
    """The ledger state hash after it."""
    transactions: Mapping[MessageId, Transaction]
    """The transactions of the messages it included or marked conflicting, by message id (what
    the event stream tells, without reading them back from storage)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneRejected:
    """A solid milestone message that failed verification; nothing was applied."""

    message_id: MessageId
    """The milestone's message."""
    error: MilestoneError
    """Why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Expired:
    """Messages dropped from memory: pending ones that waited too long, or unreferenced ones
    below the pruning index. Their sources may send them again."""

    ids: tuple[MessageId, ...]
    """The messages."""


Event = Accepted | Requested | Confirmed | MilestoneRejected | Expired


class NodeCore:
    """One node's view of the tangle and the ledger."""

    def __init__(
        self,
        params: Parameters,
        *,
        ledger: LedgerState,
        confirmed_id: MilestoneId,
        schedule: KeySchedule,
        is_spent: Callable[[OutputId], bool],
        entry_points: Mapping[MessageId, int] | None = None,
        applied_milestone: Callable[[int], MilestoneId | None] | None = None,
    ) -> None:
        """A node at the confirmed milestone of `ledger`. `entry_points` (id -> milestone index)
        are the referenced messages the window starts from (default: the genesis);
        `applied_milestone` gives the id of an applied milestone by index (storage's lookup), so
        that messages of applied milestones are still accepted as plain messages."""
        points = dict(entry_points) if entry_points else {GENESIS_ID: ledger.milestone_index}
        self._params = params
        self._ledger = ledger
        self._confirmed_id = confirmed_id
        self._schedule = schedule
        self._is_spent = is_spent
        self._applied_milestone = applied_milestone
        self._dag = Dag(
            entry_points=points, rules=params.tip_rules, pending_limits=params.pending_limits
        )
        self._entry_points = set(points)
        self._messages: dict[MessageId, ConeMessage] = {}
        self._referenced_at: dict[int, list[MessageId]] = {}
        self._milestone_messages: dict[MessageId, tuple[Parsed, Milestone]] = {}
        self._candidates: dict[int, list[MessageId]] = {}
        self._halted: MerkleRootMismatchError | None = None
        self._alarms: dict[tuple[int, frozenset[bytes]], EquivocationError] = {}
        self._ahead: dict[MessageId, int] = {}
        self._ahead_max = 0
        # Held milestone messages signed as the committee of their index must sign (by the
        # schedule as applied so far): id -> index. Their highest index is `latest_index`.
        # The last preview: valid until the ledger or the referenced set changes (an apply or a
        # prune), since new messages never enter the past cone of fixed parents.
        self._previewed: tuple[int, tuple[MessageId, ...], WhiteFlagResult] | None = None

    # -- queries -----------------------------------------------------------------------------

    @property
    def params(self) -> Parameters:
        return self._params

    @property
    def dag(self) -> Dag:
        """The window, for tip selection (read only)."""
        return self._dag

    @property
    def ledger(self) -> LedgerState:
        """The ledger at the confirmed milestone (read only)."""
        return self._ledger

    @property
    def confirmed_index(self) -> int:
        return self._ledger.milestone_index

    @property
    def latest_index(self) -> int:
        """The highest milestone index known: the confirmed one, or that of a milestone held
        but not applied yet whose signers are, as far as the applied chain tells, the committee
        of its index (only such milestones count, so no one else can make the node look
        behind). A node further behind than a milestone or two is catching up, and its tips are
        stale."""
        return max(self.confirmed_index, self._ahead_max)

    @property
    def confirmed_id(self) -> MilestoneId:
        return self._confirmed_id

    @property
    def schedule(self) -> KeySchedule:
        return self._schedule

    @property
    def alarms(self) -> tuple[EquivocationError, ...]:
        """Equivocations seen (evidence); while there is one, no milestone is applied."""
        return tuple(self._alarms.values())

    def held_milestones(self) -> int:
        """Milestones held until their index comes up."""
        return len(self._milestone_messages)

    def knows(self, message_id: MessageId) -> bool:
        return message_id in self._messages or message_id in self._entry_points

    def preview(self, index: int, parents: tuple[MessageId, ...]) -> WhiteFlagResult:
        """What a milestone `index` with these parents would do, changing nothing. The result
        is kept, so that the coordinator's node applies its own milestone without a second
        white-flag walk."""
        cached = self._previewed
        if cached is not None and cached[0] == index and cached[1] == parents:
            return cached[2]
        result = white_flag(
            index=index,
            parents=parents,
            lookup=self._messages.get,
            is_entry_point=self._entry_points.__contains__,
            unspent=self._ledger.unspent,
            is_spent=self._is_spent,
            registry=RegistryContext(
                registry=self._ledger.registry,
                committee=self._schedule.key_set_at(index),
                rules=self._params.registry_rules,
            ),
        )
        self._previewed = (index, parents, result)
        return result

    # -- input -------------------------------------------------------------------------------

    def receive(self, raw: bytes, source: Hashable | None = None) -> list[Event]:
        """Check and attach one message from `source` (an opaque key the adapter chooses: pending
        messages count against it); raises a `TangleError` for an invalid or duplicate one
        (nothing changes then), returns what the adapter must do otherwise."""
        if self._halted is not None:
            raise NodeHaltedError(str(self._halted))
        parsed = decode_message(raw)
        if self.knows(parsed.id):
            raise DuplicateMessageError(parsed.id.hex())
        params = self._params
        check_message(parsed, params.network_id, params.work_per_kib)
        message = parsed.message
        payload = message.payload
        transaction = payload if isinstance(payload, Transaction) else None
        milestone = payload if isinstance(payload, Milestone) else None
        record = payload if isinstance(payload, DeviceRecord) else None
        if transaction is not None:
            validate_transaction(transaction, params.network_id, params.min_output_amount)
        if record is not None:
            validate_record(record, params.network_id)
        if not self._dag.is_protected(parsed.id):  # no milestone the node holds waits for it
            refuse_quarantined(self._ledger.registry, payload, self.confirmed_index)
        if milestone is not None:
            milestone = self._admit_milestone(milestone)
        committee = milestone is not None and self._by_committee(milestone)
        attached = self._dag.attach(
            parsed.id,
            message.parents,
            parsed.root,
            source=source,
            protected=committee,
            latest_index=self.latest_index,
        )
        self._messages[parsed.id] = ConeMessage(
            parents=message.parents, transaction=transaction, referenced=False, record=record
        )
        if milestone is not None:
            self._milestone_messages[parsed.id] = (parsed, milestone)
            if committee:
                self._ahead[parsed.id] = milestone.essence.index
                self._ahead_max = max(self._ahead_max, milestone.essence.index)
        events: list[Event] = [Accepted(parsed=parsed, solid=attached.solid)]
        if attached.missing:
            events.append(Requested(ids=attached.missing))
        for solid_id in attached.solid:
            held = self._milestone_messages.get(solid_id)
            if held is not None:
                self._candidates.setdefault(held[1].essence.index, []).append(solid_id)
        events.extend(self._apply_ready())
        return events

    def _admit_milestone(self, milestone: Milestone) -> Milestone | None:
        """The milestone to hold, None for an applied one's message (a plain message from now
        on); raises for one the node must not hold."""
        index = milestone.essence.index
        confirmed = self.confirmed_index
        if index <= confirmed:
            applied = self._confirmed_id if index == confirmed else self._applied_id(index)
            if applied == milestone.id:
                return None
            if applied is not None:  # unknown below a snapshot's start: nothing to compare
                check_signatures(milestone)
                if self._by_committee(milestone):
                    self._alarm(index, applied, milestone.id)
            raise StaleMilestoneError(index, confirmed)
        if index > confirmed + MILESTONE_LOOKAHEAD:
            raise MilestoneTooFarAheadError(index, confirmed, MILESTONE_LOOKAHEAD)
        for _, held in self._milestone_messages.values():
            if held.id == milestone.id:  # another nonce: one message per milestone is held
                raise DuplicatePayloadError(f"milestone {milestone.id.hex()} is held already")
        check_signatures(milestone)
        if self._by_committee(milestone):
            for held_id, held_index in self._ahead.items():
                other = self._milestone_messages[held_id][1].id
                if held_index == index:
                    self._alarm(index, other, milestone.id)
        elif len(self._milestone_messages) - len(self._ahead) >= MAX_UNJUDGED_MILESTONES:
            raise HeldMilestoneLimitError(
                f"{MAX_UNJUDGED_MILESTONES} milestones with signers not yet judged are held"
            )
        return milestone

    def _alarm(self, index: int, first: bytes, second: bytes) -> None:
        """Keep the evidence (once per pair), stop applying milestones, and refuse the second
        milestone."""
        key = (index, frozenset((bytes(first), bytes(second))))
        known = self._alarms.get(key)
        if known is not None:
            raise EquivocationError(index, known.first, known.second, repeated=True)
        error = EquivocationError(index, first, second)
        self._alarms[key] = error
        raise error

    def _by_committee(self, milestone: Milestone) -> bool:
        """Signed as apply requires: every signer in the key set the schedule (as applied so
        far) puts in force at the milestone's index, and at least its threshold of them."""
        key_set = self._schedule.key_set_at(milestone.essence.index)
        signers = {sig.public_key for sig in milestone.signatures}
        return signers <= set(key_set.public_keys) and len(signers) >= key_set.threshold

    def _reassess(self) -> None:
        """After an apply: forget milestones at or below the confirmed index, and re-judge the
        rest against the schedule as it now stands (a key rotation may have come into force)."""
        confirmed = self.confirmed_index
        for message_id in [
            m for m, (_, ms) in self._milestone_messages.items() if ms.essence.index <= confirmed
        ]:
            del self._milestone_messages[message_id]
        for index in [i for i in self._candidates if i <= confirmed]:
            del self._candidates[index]
        self._ahead = {}
        by_index: dict[int, MilestoneId] = {}
        for message_id, (_, milestone) in self._milestone_messages.items():
            index = milestone.essence.index
            if not self._by_committee(milestone):
                continue
            self._ahead[message_id] = index
            other = by_index.setdefault(index, milestone.id)
            if other != milestone.id:  # both held before a rotation made them judgeable
                with contextlib.suppress(EquivocationError):
                    self._alarm(index, other, milestone.id)
        self._protect()

    def _protect(self) -> None:
        self._ahead_max = max(self._ahead.values(), default=0)
        self._dag.protect(self._ahead)

    def _was_applied(self, milestone: Milestone) -> bool:
        index = milestone.essence.index
        if index == self.confirmed_index:
            return milestone.id == self._confirmed_id
        return self._applied_id(index) == milestone.id

    def _applied_id(self, index: int) -> MilestoneId | None:
        return None if self._applied_milestone is None else self._applied_milestone(index)

    def _apply_ready(self) -> list[Event]:
        events: list[Event] = []
        while (
            not self._alarms
            and (candidates := self._candidates.pop(self.confirmed_index + 1, None)) is not None
        ):
            for message_id in candidates:
                held = self._milestone_messages.pop(message_id, None)
                if held is None:
                    continue
                parsed, milestone = held
                try:
                    events.append(self._apply(parsed, milestone))
                except MerkleRootMismatchError as exc:
                    self._halted = exc
                    raise
                except MilestoneError as exc:
                    events.append(MilestoneRejected(message_id=message_id, error=exc))
                    continue
                break
        if events:
            self._reassess()
            expired = self._dag.expire_pending(self.latest_index)
            if expired:
                self._forget(expired)
                events.append(Expired(ids=expired))
        return events

    def _forget(self, message_ids: tuple[MessageId, ...]) -> None:
        """Drop messages the window dropped (never referenced ones)."""
        for message_id in message_ids:
            del self._messages[message_id]
            held = self._milestone_messages.pop(message_id, None)
            if held is None:
                continue
            index = held[1].essence.index
            waiting = self._candidates.get(index)
            if waiting is not None and message_id in waiting:
                waiting.remove(message_id)
                if not waiting:
                    del self._candidates[index]
            if self._ahead.pop(message_id, None) is not None:
                self._protect()

    def _apply(self, parsed: Parsed, milestone: Milestone) -> Confirmed:
        essence = milestone.essence
        verify_milestone(
            milestone,
            network_id=self._params.network_id,
            confirmed_index=self.confirmed_index,
            confirmed_id=self._confirmed_id,
            schedule=self._schedule,
        )
        result = self.preview(essence.index, essence.parents)
        if result.merkle_root != essence.applied_merkle_root:
            raise MerkleRootMismatchError(
                essence.index, essence.applied_merkle_root, result.merkle_root
            )
        if result.inclusion_root != essence.inclusion_root:
            raise InclusionRootMismatchError(
                essence.index, essence.inclusion_root, result.inclusion_root
            )
        if result.registry.root != essence.registry_root:
            raise RegistryRootMismatchError(
                essence.index, essence.registry_root, result.registry.root
            )
        self._previewed = None
        apply_diff(self._ledger, result.diff)
        apply_registry_diff(self._ledger.registry, result.registry)
        self._dag.mark_referenced(result.referenced, essence.index)
        messages = self._messages
        for message_id in result.referenced:
            cone = messages[message_id]
            messages[message_id] = ConeMessage(
                parents=cone.parents,
                transaction=cone.transaction,
                referenced=True,
                record=cone.record,
            )
        self._referenced_at[essence.index] = list(result.referenced)
        self._schedule = self._schedule.after(milestone)
        self._confirmed_id = milestone.id
        transactions = {}
        for message_id in (*result.included, *(m for m, _ in result.conflicts)):
            transaction = messages[message_id].transaction
            if transaction is not None:
                transactions[message_id] = transaction
        return Confirmed(
            record=milestone_record(parsed),
            result=result,
            state_hash=self._ledger.state_hash,
            transactions=transactions,
        )

    def prune(self, below_index: int) -> int:
        """Drop messages referenced below milestone `below_index` from memory (those still
        approved stay as entry points), and unreferenced ones that can no longer be confirmed;
        returns how many were dropped."""
        self._previewed = None
        result = self._dag.prune(below_index)
        self._forget(result.dropped)
        self._entry_points = set(self._dag.entry_points())
        dropped = len(result.dropped)
        for index in [i for i in self._referenced_at if i < below_index]:
            for message_id in self._referenced_at.pop(index):
                del self._messages[message_id]
                dropped += 1
        return dropped
