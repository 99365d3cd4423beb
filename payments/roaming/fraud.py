"""Fraud rules and fee monitoring, evaluated as records arrive (NRTRDE-style; sans I/O).

`FraudMonitor.observe(record, now=...)` returns the alerts one record raises; the caller passes
its clock and puts the alerts on its event stream, metrics and CLI. Rules:

- HIGH_USAGE: an IMSI's data volume or call seconds within `window_s` (4 hours) crosses the
  threshold (it fires on the record that crosses it, once per crossing);
- CLONED_SIM: the record overlaps in time a recent record of the same IMSI in another serving
  network (one SIM cannot be in two visited networks at once);
- USAGE_AFTER_BAR: the record starts at or after the time the HPMN barred the IMSI;
- UNKNOWN_IMSI_RANGE: the importer found the IMSI outside the HPMN's ranges (`unknown_range`);
- IMSI_SPEND_CAP / PARTNER_SPEND_CAP: the charges of an IMSI within `window_s`, or of a partner
  (the sending VPMN) within `partner_window_s`, cross their cap.

Usage is summed in buckets of `bucket_s` seconds by the record's start time (a start after `now`
counts at `now`); buckets older than the window before `now` are dropped, so a record that
arrives after its window (a monthly TAP file) still meets the bar, range and clone rules but no
longer counts towards usage or spend, and no IMSI or partner holds more than a window of
buckets.
Every table is bounded: IMSIs in total and per partner (the least recently seen goes first, and
any not seen within the window), partners, bars, and the recent records kept per IMSI.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from .errors import FraudConfigError
from .record import EventType

if TYPE_CHECKING:
    from .partner_file import ImportedFile
    from .record import UsageRecord


class AlertKind(Enum):
    """Which rule raised an alert."""

    HIGH_USAGE = "high-usage"
    CLONED_SIM = "cloned-sim"
    USAGE_AFTER_BAR = "usage-after-bar"
    UNKNOWN_IMSI_RANGE = "unknown-imsi-range"
    IMSI_SPEND_CAP = "imsi-spend-cap"
    PARTNER_SPEND_CAP = "partner-spend-cap"


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One rule firing on one record."""

    kind: AlertKind
    """The rule."""
    partner: str
    """TADIG of the VPMN that sent the record."""
    imsi_hash: bytes | None
    """The subscriber (None for a partner's spend cap)."""
    evidence: tuple[bytes, ...]
    """Event ids of the records behind the alert, the triggering record last."""
    at: int
    """The monitor's clock when it fired (UTC seconds)."""
    value: int
    """What was measured (bytes, seconds, minor units; 0 for bar, range and clone alerts)."""
    limit: int
    """The threshold or cap it crossed (0 where none applies)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FraudConfig:
    """Thresholds, caps and table bounds (all positive integers)."""

    data_volume_limit: int
    """Bytes (up plus down) one IMSI may use within `window_s` before HIGH_USAGE."""
    call_seconds_limit: int
    """Call seconds one IMSI may use within `window_s` before HIGH_USAGE."""
    imsi_spend_cap: int
    """Charges (minor units) of one IMSI within `window_s` before IMSI_SPEND_CAP."""
    partner_spend_cap: int
    """Charges (minor units) from one partner within `partner_window_s` before the alert."""
    window_s: int = 4 * 3600
    partner_window_s: int = 24 * 3600
    bucket_s: int = 60
    max_imsis: int = 1_000_000
    max_imsis_per_partner: int = 250_000
    max_partners: int = 10_000
    max_bars: int = 1_000_000
    recent_per_imsi: int = 16
    """Records kept per IMSI for the clone rule and as evidence."""

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise FraudConfigError(name, "must be a positive integer")
        if self.bucket_s > min(self.window_s, self.partner_window_s):
            raise FraudConfigError("bucket_s", "longer than a window")
        if self.max_imsis_per_partner > self.max_imsis:
            raise FraudConfigError("max_imsis_per_partner", "above max_imsis")


class _Buckets:
    """Sums per bucket of time, oldest first, with running totals over the kept buckets."""

    __slots__ = ("sums", "totals")

    def __init__(self, width: int) -> None:
        self.sums: deque[list[int]] = deque()
        """[bucket start, value 0, value 1, ...] per bucket."""
        self.totals = [0] * width

    def add(self, start: int, values: tuple[int, ...]) -> None:
        for i, v in enumerate(values):
            self.totals[i] += v
        for bucket in reversed(self.sums):
            if bucket[0] == start:
                for i, v in enumerate(values, start=1):
                    bucket[i] += v
                return
            if bucket[0] < start:
                break
        self.sums.append([start, *values])
        if len(self.sums) > 1 and self.sums[-2][0] > start:
            self.sums = deque(sorted(self.sums))

    def expire(self, since: int) -> list[int]:
        """Drop the buckets before `since`; the totals of the rest."""
        while self.sums and self.sums[0][0] < since:
            dropped = self.sums.popleft()
            for i in range(len(self.totals)):
                self.totals[i] -= dropped[i + 1]
        return self.totals


@dataclass(frozen=True, slots=True)
class _Seen:
    start: int
    end: int
    network: str
    event_id: bytes


@dataclass(slots=True)
class _Subscriber:
    owner: str
    last_seen: int
    usage: _Buckets
    recent: deque[_Seen]


class FraudMonitor:
    """The fraud rules over one HPMN's incoming records (see the module docstring)."""

    def __init__(self, config: FraudConfig) -> None:
        self.config = config
        self._subscribers: OrderedDict[bytes, _Subscriber] = OrderedDict()
        self._owned: dict[str, OrderedDict[bytes, None]] = {}
        self._partners: OrderedDict[str, _Buckets] = OrderedDict()
        self._bars: OrderedDict[bytes, int] = OrderedDict()

    @property
    def sizes(self) -> dict[str, int]:
        """How full each table is (for metrics and the bound tests)."""
        return {
            "imsis": len(self._subscribers),
            "partners": len(self._partners),
            "bars": len(self._bars),
            "largest_partner_imsis": max((len(o) for o in self._owned.values()), default=0),
        }

    def bar(self, imsi_hash: bytes, since: int) -> None:
        """The HPMN barred `imsi_hash` from `since` (UTC seconds) on; at most `max_bars` are
        kept, the oldest bar dropped first."""
        self._bars.pop(imsi_hash, None)
        self._bars[imsi_hash] = since
        while len(self._bars) > self.config.max_bars:
            self._bars.popitem(last=False)

    def unbar(self, imsi_hash: bytes) -> None:
        """Lift a bar."""
        self._bars.pop(imsi_hash, None)

    def observe(self, record: UsageRecord, *, now: int, unknown_range: bool = False) -> list[Alert]:
        """Evaluate every rule on `record`; `now` is the caller's clock (UTC seconds)."""
        self._expire(now)
        found: list[tuple[AlertKind, tuple[bytes, ...], int, int]] = []
        own = (record.event_id,)
        if unknown_range:
            found.append((AlertKind.UNKNOWN_IMSI_RANGE, own, 0, 0))
        barred = self._bars.get(record.imsi_hash)
        if barred is not None and record.start_utc >= barred:
            found.append((AlertKind.USAGE_AFTER_BAR, own, 0, 0))
        subscriber = self._subscriber(record.imsi_hash, record.sender, now)
        end = record.start_utc + max(record.duration_s, 1)
        clones = tuple(
            s.event_id
            for s in subscriber.recent
            if s.network != record.serving_network and s.start < end and record.start_utc < s.end
        )
        if clones:
            found.append((AlertKind.CLONED_SIM, (*clones, record.event_id), 0, 0))
        subscriber.recent.append(
            _Seen(record.start_utc, end, record.serving_network, record.event_id)
        )
        # A record from the future counts now; one from before a window does not count in it.
        start = min(record.start_utc, now)
        found.extend(self._usage(subscriber, record, start, now))
        found.extend(self._spend(record, start, now))
        return [
            Alert(
                kind=kind,
                partner=record.sender,
                imsi_hash=None if kind is AlertKind.PARTNER_SPEND_CAP else record.imsi_hash,
                evidence=evidence,
                at=now,
                value=value,
                limit=limit,
            )
            for kind, evidence, value, limit in found
        ]

    def _usage(
        self, subscriber: _Subscriber, record: UsageRecord, start: int, now: int
    ) -> list[tuple[AlertKind, tuple[bytes, ...], int, int]]:
        """HIGH_USAGE and IMSI_SPEND_CAP: the IMSI's sums within the window, before and after."""
        config = self.config
        since = now - config.window_s
        before = list(subscriber.usage.expire(since))
        seconds = record.duration_s if record.event_type in (EventType.MOC, EventType.MTC) else 0
        if start >= since:
            bucket = start - start % config.bucket_s
            volume = record.volume_up + record.volume_down
            subscriber.usage.add(bucket, (volume, seconds, record.charge))
        after = subscriber.usage.totals
        evidence = tuple(s.event_id for s in subscriber.recent if s.start >= since)
        limits = (
            (AlertKind.HIGH_USAGE, config.data_volume_limit),
            (AlertKind.HIGH_USAGE, config.call_seconds_limit),
            (AlertKind.IMSI_SPEND_CAP, config.imsi_spend_cap),
        )
        return [
            (kind, evidence or (record.event_id,), after[i], limit)
            for i, (kind, limit) in enumerate(limits)
            if before[i] < limit <= after[i]
        ]

    def _spend(
        self, record: UsageRecord, start: int, now: int
    ) -> list[tuple[AlertKind, tuple[bytes, ...], int, int]]:
        """PARTNER_SPEND_CAP: the sending partner's charges within its window."""
        config = self.config
        spend = self._partner(record.sender)
        since = now - config.partner_window_s
        before = spend.expire(since)[0]
        if start >= since:
            spend.add(start - start % config.bucket_s, (record.charge,))
        after = spend.totals[0]
        if before < config.partner_spend_cap <= after:
            return [
                (AlertKind.PARTNER_SPEND_CAP, (record.event_id,), after, config.partner_spend_cap)
            ]
        return []

    def observe_file(self, imported: ImportedFile, *, now: int) -> list[Alert]:
        """Evaluate every record of an imported file in order, with the importer's IMSI range
        flags."""
        unknown = set(imported.meta.unknown_range_events)
        alerts: list[Alert] = []
        for record in imported.records:
            alerts.extend(self.observe(record, now=now, unknown_range=record.event_id in unknown))
        return alerts

    def _expire(self, now: int) -> None:
        """Drop IMSIs not seen within the window (the least recently seen come first)."""
        horizon = now - self.config.window_s
        while self._subscribers:
            imsi, oldest = next(iter(self._subscribers.items()))
            if oldest.last_seen >= horizon:
                break
            self._evict(imsi)

    def _evict(self, imsi: bytes) -> None:
        subscriber = self._subscribers.pop(imsi)
        owned = self._owned[subscriber.owner]
        del owned[imsi]
        if not owned:
            del self._owned[subscriber.owner]

    def _subscriber(self, imsi: bytes, partner: str, now: int) -> _Subscriber:
        found = self._subscribers.get(imsi)
        if found is not None:
            self._subscribers.move_to_end(imsi)
            self._owned[found.owner].move_to_end(imsi)
            found.last_seen = max(found.last_seen, now)
            return found
        config = self.config
        owned = self._owned.get(partner)
        if owned is not None and len(owned) >= config.max_imsis_per_partner:
            self._evict(next(iter(owned)))
        if len(self._subscribers) >= config.max_imsis:
            self._evict(next(iter(self._subscribers)))
        created = _Subscriber(
            owner=partner,
            last_seen=now,
            usage=_Buckets(3),
            recent=deque(maxlen=config.recent_per_imsi),
        )
        self._subscribers[imsi] = created
        self._owned.setdefault(partner, OrderedDict())[imsi] = None
        return created

    def _partner(self, partner: str) -> _Buckets:
        found = self._partners.get(partner)
        if found is not None:
            self._partners.move_to_end(partner)
            return found
        if len(self._partners) >= self.config.max_partners:
            self._partners.popitem(last=False)
        created = _Buckets(1)
        self._partners[partner] = created
        return created
