"""Validation at the HPMN: every batch of one partner checked and answered with a signed
acknowledgement (sans-I/O: the clock is passed in, storage is the caller's).

The checks, in order (TD.57 and TD.32 describe the same ones for TAP and RAP):

1. Refused, with no acknowledgement and no change (named errors): a header that is not signed by
   the sender's key of this agreement (`ForgedHeaderError`, `WrongSignerError`), a sequence
   number already acknowledged (`ReplayedBatchError`), records that do not hash to the signed
   Merkle root (`ForgedHeaderError`), a record of another pair or outside the validity period
   (`RecordOutsideAgreementError`).
2. Fatal, the whole batch returned and its sequence number still expected: a sequence gap, an
   audit count or audit total that does not match the records.
3. Per record: SEVERE (not paid) for an impossible value, usage after the HPMN barred the
   subscriber (`bars.py`), a duplicate, an event older than the duplicate window, a charge that
   re-rating does not reproduce; WARNING (paid) for a record presented long after the event.

Duplicates are checked over `DUPLICATE_WINDOW_S` (80 days, as clearing houses do) behind the
newest event seen, in a window bounded in entries: when it is full the oldest ids are dropped and
the horizon moves up, so an event the window can no longer vouch for is returned TOO_OLD, never
paid twice.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final

from .acknowledgement import (
    Acknowledgement,
    FatalCode,
    RecordReturn,
    ReturnCode,
    Severity,
    SignedAcknowledgement,
)
from .bars import BarList
from .batch import records_root, verify_header
from .errors import BatchError, ForgedHeaderError, ReplayedBatchError
from .rating import RatingTable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from tangle.protocol.ids import PublicKey
    from tangle.protocol.signature import Signer

    from .agreement import Agreement
    from .batch import Batch
    from .record import UsageRecord

DUPLICATE_WINDOW_S: Final = 80 * 86_400
MAX_WINDOW_ENTRIES: Final = 5_000_000
"""About 1 GB of ids and heap entries: past it the horizon rises (see the module docstring)."""
MAX_DURATION_S: Final = 7 * 86_400
MAX_VOLUME: Final = 10**13
"""Bytes in one record: 10 TB is beyond any session."""
CLOCK_SKEW_S: Final = 300
LATE_S: Final = 30 * 86_400
_SEVERE: Final = Severity.SEVERE
_WARNING: Final = Severity.WARNING
_LATE: Final = ReturnCode.LATE


class DuplicateWindow:
    """Event ids accepted within the window, bounded to `capacity` entries.

    Each `add` keeps its new entries as one group, sorted by start (latest first, so the oldest
    leave from the end), under a heap of groups by their oldest start: dropping what fell out
    of the window takes groups from the top of the heap, and a batch's events cost one sort,
    not a heap push each."""

    __slots__ = ("_added", "_capacity", "_groups", "_ids", "horizon", "newest")

    def __init__(self, capacity: int = MAX_WINDOW_ENTRIES) -> None:
        self._capacity = capacity
        self._ids: dict[bytes, int] = {}
        self._groups: list[tuple[int, int, list[tuple[int, bytes]]]] = []
        """(oldest start, order added, the group's (start, event id), latest first)."""
        self._added = 0
        self.horizon = 0
        """Events that start before this second cannot be checked (returned TOO_OLD)."""
        self.newest = 0
        """The latest start of an event in the window."""

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: bytes) -> bool:
        """Whether `event_id` is in the window: the one-id question (a caller checking a
        batch's many ids uses `ids`)."""
        return event_id in self._ids

    @property
    def ids(self) -> Mapping[bytes, int]:
        """The bulk path of `in`: the ids in the window, with their starts, as a read-only view
        a caller checking a whole batch (`Validator.validate`) takes once and looks each id up
        in directly, saving the `__contains__` call per id on the HPMN's hot loop. Both answer
        the same."""
        return self._ids

    def add(self, entries: Iterable[tuple[bytes, int]]) -> None:
        """Remember `(event_id, start_utc)` pairs, then drop what fell out of the window."""
        ids, horizon = self._ids, self.horizon
        group: list[tuple[int, bytes]] = []
        for event_id, start in entries:
            if start >= horizon and event_id not in ids:
                ids[event_id] = start
                group.append((start, event_id))
        if group:
            group.sort(reverse=True)
            self.newest = max(self.newest, group[0][0])
            self._added += 1
            heapq.heappush(self._groups, (group[-1][0], self._added, group))
        self._drop_before(self.newest - DUPLICATE_WINDOW_S)
        while len(ids) > self._capacity:
            self._drop_before(self._groups[0][0] + 1)

    def _drop_before(self, horizon: int) -> None:
        self.horizon = horizon = max(self.horizon, horizon)
        groups, ids = self._groups, self._ids
        while groups and groups[0][0] < horizon:
            _, added, group = heapq.heappop(groups)
            while group and group[-1][0] < horizon:
                del ids[group.pop()[1]]
            if group:
                heapq.heappush(groups, (group[-1][0], added, group))


class Validator:
    """The HPMN's checks of one partner's batches under one agreement."""

    __slots__ = ("_agreement", "_known", "_rating", "_signer", "bars", "next_sequence", "window")

    def __init__(
        self,
        agreement: Agreement,
        signer: Signer,
        *,
        next_sequence: int = 1,
        window: DuplicateWindow | None = None,
        known: tuple[PublicKey, ...] = (),
        bars: BarList | None = None,
    ) -> None:
        if signer.public_key not in (p.key for p in agreement.parties):
            raise BatchError("the validator's key is neither party's")
        self._agreement = agreement
        self._rating = RatingTable(agreement)
        self._signer = signer
        self._known = known
        self.next_sequence = next_sequence
        """The sequence number the next batch must carry."""
        self.window = window if window is not None else DuplicateWindow()
        self.bars = bars if bars is not None else BarList(agreement)
        """The subscribers this HPMN barred: their later usage is returned BARRED."""

    @property
    def home(self) -> str:
        """The TADIG of this side (the HPMN)."""
        return next(p.tadig for p in self._agreement.parties if p.key == self._signer.public_key)

    def validate(self, batch: Batch, now: int) -> SignedAcknowledgement:
        """Check `batch` (see the module docstring) and sign the answer. The validator's state
        (next sequence, duplicate window) changes only for an accepted batch, and only after
        every check passed."""
        header = batch.signed.header
        verify_header(batch.signed, self._agreement, self._known)
        if header.recipient != self.home:
            raise ForgedHeaderError(f"batch for {header.recipient}, this is {self.home}")
        if header.sequence < self.next_sequence:
            raise ReplayedBatchError(header.sequence, self.next_sequence - 1)
        records = batch.records
        if records_root(records) != header.root:
            raise ForgedHeaderError("the records do not hash to the signed Merkle root")
        ratings = self._rating.charges(records, header.pair)
        fatal = FatalCode.NONE
        if header.sequence > self.next_sequence:
            fatal = FatalCode.SEQUENCE_GAP
        elif header.count != len(records):
            fatal = FatalCode.AUDIT_COUNT
        elif header.total_charge != sum([r.charge for r in records]):
            fatal = FatalCode.AUDIT_TOTAL
        if fatal is not FatalCode.NONE:
            return self._sign(batch, now, fatal, (), [])
        returns: list[RecordReturn] = []
        accepted: list[UsageRecord] = []
        seen: set[bytes] = set()
        window, horizon = self.window.ids, self.window.horizon
        bars = self.bars if len(self.bars) else None
        first, last, late = header.first_start, header.last_start, header.sealed_utc - LATE_S
        future = now + CLOCK_SKEW_S
        for index, (record, charge) in enumerate(zip(records, ratings, strict=True)):
            start, event_id = record.start_utc, record.event_id
            if (
                start > future
                or not first <= start <= last
                or record.duration_s > MAX_DURATION_S
                or record.volume_up + record.volume_down > MAX_VOLUME
            ):
                code = ReturnCode.IMPOSSIBLE_VALUE
            elif bars is not None and bars.barred(record):
                code = ReturnCode.BARRED
            elif event_id in seen or event_id in window:
                code = ReturnCode.DUPLICATE
            elif start < horizon:
                code = ReturnCode.TOO_OLD
            elif record.charge != charge:
                code = ReturnCode.CHARGE_MISMATCH
            else:
                seen.add(event_id)
                accepted.append(record)
                if start < late:
                    returns.append(RecordReturn(index=index, severity=_WARNING, code=_LATE))
                continue
            returns.append(RecordReturn(index=index, severity=_SEVERE, code=code))
        signed = self._sign(batch, now, fatal, tuple(returns), accepted)
        self.window.add([(r.event_id, r.start_utc) for r in accepted])
        self.next_sequence += 1
        return signed

    def _sign(
        self,
        batch: Batch,
        now: int,
        fatal: FatalCode,
        returns: tuple[RecordReturn, ...],
        accepted: list[UsageRecord],
    ) -> SignedAcknowledgement:
        header = batch.signed.header
        ack = Acknowledgement(
            batch=header.hash,
            sender=header.sender,
            recipient=header.recipient,
            sequence=header.sequence,
            fatal=fatal,
            accepted_count=len(accepted),
            accepted_amount=sum([r.charge for r in accepted]),
            acked_utc=now,
            returns=returns,
        )
        return SignedAcknowledgement(ack=ack, signature=self._signer.sign(ack.signing_message()))
