"""The HPMN's duplicate window in its store: one row of accepted events per batch, rows that fell
out of the 80-day window dropped as later batches are kept, and a restart restoring exactly the
events of the window."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from payments.roaming.batch import seal
from payments.roaming.errors import RoamingStoreError
from payments.roaming.rating import rate
from payments.roaming.store import RoamingStore
from payments.roaming.validation import DUPLICATE_WINDOW_S, Validator
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
    with sqlite3.connect(path) as db:
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
    with sqlite3.connect(path) as db:
        db.execute("UPDATE accepted SET events = ?", (bytes(39),))
    with RoamingStore(path) as store, pytest.raises(RoamingStoreError, match="unreadable"):
        store.window(100)
