"""The HPMN's duplicate window: in memory the same ids, horizon and newest start as a plain
model after any adds; in its store one row of accepted events per batch, rows that fell out of
the 80-day window dropped as later batches are kept, and a restart restoring exactly the events
of the window."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.roaming import store as store_module
from payments.roaming.batch import seal
from payments.roaming.errors import RoamingStoreError
from payments.roaming.rating import rate
from payments.roaming.store import RoamingStore
from payments.roaming.validation import DUPLICATE_WINDOW_S, DuplicateWindow, Validator
from tests.payments.roaming.settle_support import HOME_KEY, T0, VISITED_KEY, agreement, record

if TYPE_CHECKING:
    from pathlib import Path

    from payments.roaming.record import UsageRecord

A = agreement()
DAY = 86_400


def keep(store: RoamingStore, v: Validator, sequence: int, starts: list[int]) -> list[UsageRecord]:
    """Batch `sequence` of records starting at `starts`, validated and its ack kept."""
    records = tuple(
        replace(r, charge=rate(A, r).charge)
        for r in (record(up=100 + i, start=s) for i, s in enumerate(starts))
    )
    b = seal(A, VISITED_KEY, records, sequence=sequence, now=max(starts))
    ack = v.validate(b, max(starts))
    assert ack.ack.accepted_count == len(records)
    assert store.save_ack(ack, accepted=b.records, batch=b)
    return list(b.records)


def rows(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as db, db:
        return [int(s) for (s,) in db.execute("SELECT sequence FROM accepted ORDER BY sequence")]


def test_the_window_keeps_80_days_and_a_restart_restores_it(tmp_path: Path) -> None:
    path = tmp_path / "hpmn.db"
    with RoamingStore(path) as store:
        v = Validator(A, HOME_KEY)
        first = keep(store, v, 1, [T0, T0 + 10 * DAY])
        keep(store, v, 2, [T0 + 1 * DAY])
        assert rows(path) == [1, 2]
        last = keep(store, v, 3, [T0 + 85 * DAY])
    # since = T0 + 5 days: batch 2 (newest T0 + 1 day) is dropped, batch 1 is kept for its
    # event of T0 + 10 days, but its event of T0 is out of the window
    assert rows(path) == [1, 3]
    with RoamingStore(path) as store:
        window = store.window(100)
    assert window.newest == T0 + 85 * DAY
    assert window.horizon == T0 + 85 * DAY - DUPLICATE_WINDOW_S
    assert len(window) == 2
    assert first[1].event_id in window
    assert last[0].event_id in window
    assert first[0].event_id not in window


def test_an_unreadable_row_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "hpmn.db"
    with RoamingStore(path) as store:
        keep(store, Validator(A, HOME_KEY), 1, [T0, T0 + 1])
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE accepted SET events = ?", (bytes(39),))
    with RoamingStore(path) as store, pytest.raises(RoamingStoreError, match="unreadable"):
        store.window(100)


class Model:
    """The window's rules, plainly: keep a new id starting at or after the horizon; the horizon
    rises to the newest start less the window, and while over capacity, past the oldest start."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.ids, self.horizon, self.newest = capacity, dict[bytes, int](), 0, 0

    def add(self, entries: list[tuple[bytes, int]]) -> None:
        for event_id, start in entries:
            if event_id not in self.ids and start >= self.horizon:
                self.ids[event_id] = start
                self.newest = max(self.newest, start)
        self.drop(self.newest - DUPLICATE_WINDOW_S)
        while len(self.ids) > self.capacity:
            self.drop(min(self.ids.values()) + 1)

    def drop(self, horizon: int) -> None:
        self.horizon = max(self.horizon, horizon)
        self.ids = {e: s for e, s in self.ids.items() if s >= self.horizon}


ENTRY = st.tuples(st.integers(0, 40).map(lambda i: bytes([i]) * 32), st.integers(0, 12))


@settings(deadline=None)
@given(st.integers(1, 12), st.lists(st.lists(ENTRY, max_size=8), max_size=12))
def test_the_window_keeps_what_the_model_keeps(
    capacity: int, adds: list[list[tuple[bytes, int]]]
) -> None:
    window, model = DuplicateWindow(capacity), Model(capacity)
    for entries in adds:
        # starts in whole windows, so that both rules (age and capacity) come into play
        scaled = [(e, s * DUPLICATE_WINDOW_S // 4) for e, s in entries]
        window.add(scaled)
        model.add(scaled)
        assert (window.horizon, window.newest, len(window)) == (
            model.horizon,
            model.newest,
            len(model.ids),
        )
        assert all(e in window for e in model.ids)


@pytest.mark.parametrize("per_row", [1, 2, 1_000_000])
def test_a_store_of_the_former_layout_keeps_its_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_row: int
) -> None:
    """A store that kept the window as a table of event ids (before `accepted`) opens with the
    same window: an upgraded HPMN still refuses what it accepted before. Its events move in
    rows of at most `_MIGRATED_EVENTS` (here 1, 2 and the real bound)."""
    monkeypatch.setattr(store_module, "_MIGRATED_EVENTS", per_row)
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE window (event_id BLOB PRIMARY KEY, start_utc INTEGER NOT NULL)")
        db.executemany(
            "INSERT INTO window VALUES (?, ?)", [(b"\x01" * 32, T0), (b"\x02" * 32, T0 + 5)]
        )
    for _ in range(2):  # the second open finds nothing left to move
        with RoamingStore(path) as store:
            window = store.window(100)
        assert (len(window), window.newest) == (2, T0 + 5)
        assert b"\x01" * 32 in window
    with closing(sqlite3.connect(path)) as db, db:
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = db.execute("SELECT length(events) FROM accepted ORDER BY sequence").fetchall()
    assert "window" not in tables
    assert rows == ([(32 + 8,), (32 + 8,)] if per_row == 1 else [(2 * (32 + 8),)])
