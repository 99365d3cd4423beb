"""An OCPP 1.6 StartTransaction gets its transaction id by what makes it the same start
(`event_rows.EventRows.transaction_id_16`): its charge point, connector, time, meterStart and
idTag. Two starts on one connector stamped with one second (a quick stop and restart, a charger
whose clock is unset and stamps every message with one fixed time, one with whole seconds only)
are two sessions, each billed; a resent start gets its first answer's id and records nothing
twice, unless its session has stopped (then it is a new session, alike in every field). Before,
the id was keyed by the connector and the second alone: the second session got the first one's
id, and its energy was never billed. Also the store's upgrade of an older database's table of
those ids (`event_rows.UPGRADE_3`): of a version-2 file alone, of a version-1 file by two opens
at once, and an open that waits out another's long upgrade."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

import pytest

from payments.charging.simulator import Charger16, connect_charger
from payments.charging.store import SCHEMA_VERSION

from .old_databases import as_version_1_left_it, as_version_2_left_it, open_and_close
from .test_csms import PASSWORD, T0, run

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from payments.charging.csms import Csms

_OLD_IDS: Final = 10
"""The transaction ids an older version's file handed out in these tests (its sequence),
whatever rows it still holds: none is handed out again after the upgrade."""


def _read(path: Path, query: str) -> list[tuple[object, ...]]:
    """`query`'s rows, as another connection reads them."""
    reader = sqlite3.connect(path)
    try:
        return reader.execute(query).fetchall()
    finally:
        reader.close()


def test_16_starts_in_one_second_are_sessions_of_their_own_and_a_resend_is_not(
    tmp_path: Path,
) -> None:
    """A charger with its clock unset stamps every message T0: a session of 1,000 Wh, one of
    the same driver in which the car took nothing (another meterStart), one of another driver
    from that same register (another idTag, its start resent): three ids, three bills."""

    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, "CP16", PASSWORD, "1.6") as charger:
            assert isinstance(charger, Charger16)
            await charger.boot()
            a, _ = await charger.start_session("DRIVER1", 1_000, T0)
            await charger.stop_session(a, 2_000, T0)
            b, _ = await charger.start_session("DRIVER1", 2_000, T0)
            await charger.stop_session(b, 2_000, T0)
            c, status = await charger.start_session("DRIVER2", 2_000, T0)
            assert await charger.start_session("DRIVER2", 2_000, T0) == (c, status)  # resent
            assert status == "Accepted"
            await charger.stop_session(c, 2_700, T0)
        assert len({a, b, c}) == 3
        bills = {bill.transaction_id: bill.energy_wh for bill in await csms.store.bills()}
        assert bills == {str(a): 1_000, str(b): 0, str(c): 700}  # before: one bill, of a
        assert len(await csms.store.events(("CP16", str(c)))) == 2  # its start once, its stop

    run(tmp_path, body)
    assert _read(tmp_path / "csms.sqlite", "SELECT count(*) FROM transactions16") == [(3,)]


def test_16_the_same_start_after_its_session_stopped_is_a_new_session(tmp_path: Path) -> None:
    """A charger with its clock unset stamps every message T0; the car takes nothing and the
    session stops; the same driver taps again: that start is alike in every field to the
    first one, but it comes after the first session's stop, so it is no resend (a 1.6 charger
    sends a transaction's messages in order): a new id, and its 800 Wh billed. Its own resend
    gets its id. Before, it got the first session's id, and its energy and its stop were
    taken for repeats of the first session's: never billed."""

    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, "CP16", PASSWORD, "1.6") as charger:
            assert isinstance(charger, Charger16)
            await charger.boot()
            a, _ = await charger.start_session("DRIVER1", 1_000, T0)
            await charger.stop_session(a, 1_000, T0)  # the car took nothing
            b, status = await charger.start_session("DRIVER1", 1_000, T0)
            assert await charger.start_session("DRIVER1", 1_000, T0) == (b, status)  # resent
            assert status == "Accepted"
            await charger.meter(b, 1_500, T0)
            await charger.stop_session(b, 1_800, T0)
        assert a != b
        bills = {bill.transaction_id: bill.energy_wh for bill in await csms.store.bills()}
        assert bills == {str(a): 0, str(b): 800}
        assert len(await csms.store.events(("CP16", str(b)))) == 3  # start, sample, stop
        assert len(await csms.store.events(("CP16", str(a)))) == 2

    run(tmp_path, body)


def _old_file(tmp_path: Path, left_by: Callable[[Path], None]) -> int:
    """A file at `tmp_path / "csms.sqlite"` as an older version left it (`left_by`: version 2's
    or version 1's, alike in `transactions16`) holding an open 1.6 session (DRIVER1 from 1,000
    Wh at T0, on connector 1), a start on connector 2 whose answer never went out (the CSMS
    stopped between its id and its event: no event), and a sequence of `_OLD_IDS`; the open
    session's id."""

    async def body(csms: Csms, url: str) -> None:
        del csms
        async with connect_charger(url, "CP16", PASSWORD, "1.6") as charger:
            assert isinstance(charger, Charger16)
            started.append((await charger.start_session("DRIVER1", 1_000, T0))[0])

    started: list[int] = []
    run(tmp_path, body)
    path = tmp_path / "csms.sqlite"
    left_by(path)
    writer = sqlite3.connect(path)
    with writer:
        writer.execute(
            "INSERT INTO transactions16 (charge_point, connector_id, timestamp_s, meter_start) "
            "VALUES ('CP16', 2, ?, 5)",
            (int(T0),),
        )
        writer.execute(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = 'transactions16'", (_OLD_IDS,)
        )
    writer.close()
    return started[0]


def _rows_after_the_upgrade(path: Path, a: int) -> None:
    """The file at `path`, upgraded: version `SCHEMA_VERSION`, every id of the older file
    kept, the open session's with its id tag (from its Started event), the start with no event
    with none (it matches no start), the sequence kept."""
    assert _read(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert _read(path, "SELECT * FROM transactions16 ORDER BY id") == [
        (a, "CP16", 1, int(T0), 1_000, "DRIVER1"),
        (a + 1, "CP16", 2, int(T0), 5, None),
    ]
    query = "SELECT name, seq FROM sqlite_sequence WHERE name LIKE 'transactions16%'"
    assert _read(path, query) == [("transactions16", _OLD_IDS)]


def test_a_version_2_file_keeps_its_16_ids_and_their_starts(tmp_path: Path) -> None:
    """After the upgrade, the open session's start resent gets its id (its id tag is known:
    its Started event's), and another driver's start from that register at that second gets
    an id of its own, past every id handed out before (the sequence, not only the rows)."""
    a = _old_file(tmp_path, as_version_2_left_it)
    path = tmp_path / "csms.sqlite"
    asyncio.run(open_and_close(path))
    _rows_after_the_upgrade(path, a)

    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, "CP16", PASSWORD, "1.6") as charger:
            assert isinstance(charger, Charger16)
            assert (await charger.start_session("DRIVER1", 1_000, T0))[0] == a
            await charger.stop_session(a, 1_000, T0)  # the car took nothing
            started.append((await charger.start_session("DRIVER2", 1_000, T0))[0])
            await charger.stop_session(started[0], 1_300, T0)
        bills = {bill.transaction_id: bill.energy_wh for bill in await csms.store.bills()}
        assert bills == {str(a): 0, str(_OLD_IDS + 1): 300}

    started: list[int] = []
    run(tmp_path, body)
    assert started == [_OLD_IDS + 1]


def test_two_opens_of_one_version_1_file_at_once_upgrade_it_once(tmp_path: Path) -> None:
    """Two CSMS processes (here threads, each with its own connection and event loop) open one
    version-1 file while a third writer holds its write lock: both wait for it in the upgrade's
    `BEGIN IMMEDIATE`, one upgrades, the other finds it done, and both open. An upgrade that
    read the version before taking the lock, or in a deferred transaction, would run in both:
    the second fails, as the database is locked or as the column `UPGRADE_2` adds is there
    already ("duplicate column name: attempt"). (A version-2 file would not show it:
    `UPGRADE_3` run twice rebuilds the table twice, and ends alike.)"""
    a = _old_file(tmp_path, as_version_1_left_it)
    path = tmp_path / "csms.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiting = threading.Barrier(3)

    def open_store() -> None:
        waiting.wait()
        asyncio.run(open_and_close(path))

    with ThreadPoolExecutor(2) as pool:
        opens = [pool.submit(open_store) for _ in range(2)]
        waiting.wait()
        time.sleep(0.3)  # both reach the lock (one that comes later opens after)
        holder.execute("ROLLBACK")
        holder.close()
        for opened in opens:
            opened.result()
    _rows_after_the_upgrade(path, a)
    added = "SELECT count(*) FROM pragma_table_info('refunds') WHERE name IN ('attempt', 'tries')"
    assert _read(path, added) == [(2,)]


@pytest.mark.slow
def test_an_open_waits_for_another_opens_long_upgrade(tmp_path: Path) -> None:
    """Another CSMS process upgrading a large file holds its write lock for seconds (4 to 16 s
    measured a million 1.6 sessions); here a writer holds it 6 s, past sqlite's 5 s busy
    timeout. The open waits for it (`store.OPEN_WAIT_S`) and finds the file to upgrade. Before,
    it failed after 5 s: "database is locked"."""
    a = _old_file(tmp_path, as_version_1_left_it)
    path = tmp_path / "csms.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(1) as pool:
        opened = pool.submit(asyncio.run, open_and_close(path))
        time.sleep(6)
        assert not opened.done()
        holder.execute("ROLLBACK")
        holder.close()
        opened.result()
    _rows_after_the_upgrade(path, a)
