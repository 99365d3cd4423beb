"""The published fraud alerts of one carrier: a bounded, numbered log for the event stream, the
counts for the metrics, and the JSON form the back-office API and the CLI print (sans I/O).

`FraudMonitor` decides what is an alert; `AlertLog.publish` numbers each one (1, 2, ...), keeps
the newest `capacity` of them (an older one is dropped and counted in `dropped`) and counts every
alert per rule and partner, so the metrics stay true after the buffer has moved on. The counts
are bounded too: past `max_series` (rule, partner) pairs, further partners count under
`OTHER_PARTNER`. A reader asks for what follows the last number it saw (`after`); one that fell
behind by more than the buffer gets the oldest kept alert next and can tell how many it missed
from the numbers. Thread-safe: the desk publishes from a worker thread while the API reads.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .fraud import Alert, FraudMonitor
    from .record import UsageRecord

CAPACITY: Final = 10_000
MAX_SERIES: Final = 6 * 1_000
MAX_READ: Final = 1_000
OTHER_PARTNER: Final = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedAlert:
    """An alert with its place in the log."""

    number: int
    """1 for the first alert this log published, then one more for each."""
    alert: Alert

    def to_json_object(self) -> dict[str, object]:
        a = self.alert
        return {
            "number": self.number,
            "rule": a.kind.value,
            "partner": a.partner,
            "imsi_hash": None if a.imsi_hash is None else a.imsi_hash.hex(),
            "evidence": [e.hex() for e in a.evidence],
            "at": a.at,
            "value": a.value,
            "limit": a.limit,
        }


class AlertLog:
    """The newest alerts, numbered, and the counts of all of them (see the module docstring)."""

    __slots__ = ("_counts", "_kept", "_lock", "_max_series", "dropped", "published")

    def __init__(self, capacity: int = CAPACITY, *, max_series: int = MAX_SERIES) -> None:
        self._kept: deque[PublishedAlert] = deque(maxlen=capacity)
        self._counts: dict[tuple[str, str], int] = {}
        self._max_series = max_series
        self._lock = threading.Lock()
        self.published = 0
        """The number of the newest alert (0: none yet)."""
        self.dropped = 0
        """Alerts pushed out of the buffer by newer ones."""

    def publish(self, alerts: Iterable[Alert]) -> int:
        """Number, keep and count `alerts`; the number of the last one."""
        with self._lock:
            for alert in alerts:
                self.published += 1
                if len(self._kept) == self._kept.maxlen:
                    self.dropped += 1
                self._kept.append(PublishedAlert(number=self.published, alert=alert))
                key = (alert.kind.value, alert.partner)
                if key not in self._counts and len(self._counts) >= self._max_series:
                    key = (alert.kind.value, OTHER_PARTNER)
                self._counts[key] = self._counts.get(key, 0) + 1
            return self.published

    def after(self, number: int, limit: int = MAX_READ) -> list[PublishedAlert]:
        """The kept alerts numbered above `number`, oldest first, at most `limit` (and at most
        `MAX_READ`)."""
        with self._lock:
            first = self.published - len(self._kept) + 1
            start = max(number + 1 - first, 0)
            stop = start + max(0, min(limit, MAX_READ))
            return [self._kept[i] for i in range(start, min(stop, len(self._kept)))]

    def counts(self) -> dict[tuple[str, str], int]:
        """Alerts published so far per (rule, partner), sorted."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    def __len__(self) -> int:
        return len(self._kept)


class FraudWatch:
    """A `FraudMonitor` and the `AlertLog` it publishes to, shared by every desk of a carrier
    (one SIM seen by two partners is a clone only if one monitor sees both)."""

    __slots__ = ("_lock", "log", "monitor")

    def __init__(self, monitor: FraudMonitor, log: AlertLog | None = None) -> None:
        self.monitor = monitor
        self.log = log if log is not None else AlertLog()
        self._lock = threading.Lock()

    def observe(self, records: Iterable[UsageRecord], now: int) -> int:
        """Run the rules over `records` as they arrive and publish the alerts; how many."""
        with self._lock:
            alerts = [a for r in records for a in self.monitor.observe(r, now=now)]
        self.log.publish(alerts)
        return len(alerts)

    def bar(self, imsi_hash: bytes, since: int) -> None:
        """The HPMN barred a subscriber: its later usage raises USAGE_AFTER_BAR."""
        with self._lock:
            self.monitor.bar(imsi_hash, since)

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return self.monitor.sizes
