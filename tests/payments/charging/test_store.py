"""The CSMS store's group commit: meter values arriving together share one transaction, and each
`record` returns only once its event is committed (another connection reads it then)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest

import payments.charging.group_commit as group_commit
from payments.charging.session import EventKind, SessionLimits, TransactionEvent
from payments.charging.store import Bill, Binding, CsmsStore

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_780_000_000
CHARGERS = 50


def _event(station: int, seq: int) -> TransactionEvent:
    return TransactionEvent(
        charge_point=f"CP{station}",
        transaction_id=f"TX{station}",
        seq_no=seq,
        kind=EventKind.UPDATED,
        timestamp_s=T0 + seq,
        register_wh=100 * seq,
    )


def _committed(path: Path, event: TransactionEvent) -> bool:
    reader = sqlite3.connect(path)
    try:
        row = reader.execute(
            "SELECT register_wh FROM events WHERE charge_point = ? AND transaction_id = ? "
            "AND seq_no = ?",
            (*event.key, event.seq_no),
        ).fetchone()
    finally:
        reader.close()
    return row == (event.register_wh,)


def test_meter_values_arriving_together_share_commits_and_each_is_durable_on_return(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "csms.sqlite"

    async def main() -> tuple[int, list[bool], list[tuple[float, float, int, float, float]]]:
        async with CsmsStore(path) as store:
            commits = 0
            commit = group_commit._commit

            def counted(db: sqlite3.Connection, rows: Any) -> float:  # the real one, counted
                nonlocal commits
                commits += 1
                return commit(db, rows)

            monkeypatch.setattr(group_commit, "_commit", counted)

            async def one(station: int, seq: int) -> bool:
                event = _event(station, seq)
                await store.record(event)
                return _committed(path, event)  # read by another connection at once

            seen = await asyncio.gather(
                *(one(station, seq) for seq in (1, 2) for station in range(CHARGERS))
            )
            return commits, seen, list(store.commits)

    commits, seen, timed = asyncio.run(main())
    assert all(seen)
    assert 1 <= commits <= 4  # 100 meter values, a handful of transactions
    assert len(timed) == commits  # each group commit is timed, with its rows
    assert sum(rows for _, _, rows, _, _ in timed) == 2 * CHARGERS
    assert all(seconds >= fsync > 0 and wait >= 0 for _, seconds, _, wait, fsync in timed)


def test_a_write_after_a_quiet_spell_is_committed_alone_within_the_window(tmp_path: Path) -> None:
    path = tmp_path / "csms.sqlite"

    async def main() -> float:
        async with CsmsStore(path, group_window_s=0.05) as store:
            loop = asyncio.get_running_loop()
            began = loop.time()
            await store.record(_event(1, 1))
            took = loop.time() - began
            assert _committed(path, _event(1, 1))
            return took

    took = asyncio.run(main())
    assert 0.05 <= took < 5.0  # it waited the window for company, then committed


CHANNEL_A = b"A" * 32
CHANNEL_B = b"B" * 32
PREPAID = Binding(
    id_token="CARD", channel_id=CHANNEL_A, limits=SessionLimits(energy_wh=1_000), paid=100
)


def _taken_and_left(path: Path) -> tuple[int, int]:
    """What committed sessions paid, and what the token has left (another connection reads)."""
    reader = sqlite3.connect(path)
    try:
        paid = reader.execute("SELECT coalesce(sum(paid), 0) FROM sessions").fetchone()[0]
        left = reader.execute("SELECT coalesce(sum(prepaid), 0) FROM tokens").fetchone()[0]
    finally:
        reader.close()
    return int(paid), int(left)


def test_a_group_commit_never_lands_inside_a_binding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A meter value's group commit while a prepaid session binds: every commit leaves the
    session's payment and the token's prepaid amount adding up to what was prepaid."""
    path = tmp_path / "csms.sqlite"

    async def main() -> list[tuple[int, int]]:
        async with CsmsStore(path, group_window_s=0) as store:
            await store.save_token("CARD", CHANNEL_A, 100)
            seen: list[tuple[int, int]] = []
            commit, execute = store.db.commit, store.db.execute
            group = group_commit._commit

            async def observed() -> None:  # the binding's commit
                await commit()
                seen.append(_taken_and_left(path))

            def group_observed(db: sqlite3.Connection, rows: Any) -> float:  # a group commit
                began = group(db, rows)
                seen.append(_taken_and_left(path))
                return began

            def slow(sql: str, *args: Any) -> Any:  # the real statement, then a pause
                async def run() -> Any:
                    cursor = await execute(sql, *args)
                    if "INTO sessions" in sql:
                        await asyncio.sleep(0.05)  # the group writer runs now, if it may
                    return cursor

                return run()

            store.db.commit = observed  # type: ignore[method-assign]
            monkeypatch.setattr(group_commit, "_commit", group_observed)
            store.db.execute = slow  # type: ignore[method-assign, assignment]
            binding = asyncio.create_task(store.bind(("CP", "TX"), PREPAID))
            await asyncio.sleep(0.01)  # the binding's first statement is written
            await store.record(_event(1, 1))
            assert await binding
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 2
    assert all(paid + left == 100 for paid, left in seen), seen


def test_a_small_rest_of_a_token_bound_elsewhere_is_owed_to_its_channel(tmp_path: Path) -> None:
    """The driver rebound the token to another channel: the old session's rest does not reset
    that channel's credit; it is owed to the old channel's payer (with that channel's other
    small amounts: `refund_rows`), and the session's refund row is gone."""

    async def main() -> tuple[bool, tuple[bytes, int] | None, int | None, list[object]]:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            await store.save_token("CARD", CHANNEL_A, 100)
            assert await store.bind(("CP", "TX"), PREPAID)
            bill = Bill(
                charge_point="CP", transaction_id="TX", energy_wh=600, duration_s=60, amount=60
            )
            assert await store.bill(bill)
            await store.save_token("CARD", CHANNEL_B, 7)
            credited = await store.refunds.refund_as_credit(("CP", "TX"), "CARD", CHANNEL_A)
            return (
                credited,
                await store.token("CARD"),
                await store.refunds.owed_refund(("CP", "TX")),
                [r[1:] for r in await store.refunds.owed_token_refunds(0)],
            )

    assert asyncio.run(main()) == (True, (CHANNEL_B, 7), None, [(CHANNEL_A, "CARD", 40)])


_ABORT_TOKEN_REFUND = """
    CREATE TRIGGER fail_token_refund BEFORE INSERT ON token_refunds
    BEGIN SELECT RAISE(ABORT, 'the disk failed here'); END"""


def test_a_write_failing_after_its_first_statement_leaves_nothing_for_the_next_commit(
    tmp_path: Path,
) -> None:
    """Unbinding a token deletes its row, then writes its prepaid amount as an owed refund; if
    that insert fails, the delete is rolled back with it (`CsmsStore.transaction`), so the
    next group commit (a meter value) does not commit a token unbound without its refund (the
    driver's money lost). Before, the delete stayed in the open transaction."""
    path = tmp_path / "csms.sqlite"

    async def main() -> None:
        async with CsmsStore(path) as store:
            await store.save_token("CARD", b"\x01" * 32, 700)
            await store.db.execute(_ABORT_TOKEN_REFUND)
            await store.db.commit()
            with pytest.raises(sqlite3.Error, match="the disk failed here"):
                await store.refunds.unbind_token("CARD")
            await store.record(_event(1, 1))  # a group commit after the failure
            assert await store.token("CARD") == (b"\x01" * 32, 700)

    asyncio.run(main())
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT prepaid FROM tokens WHERE id_token = 'CARD'").fetchall() == [
            (700,)
        ]
        assert reader.execute("SELECT count(*) FROM token_refunds").fetchone() == (0,)
        assert reader.execute("SELECT count(*) FROM events").fetchone() == (1,)
    finally:
        reader.close()


def test_a_store_whose_rollback_fails_closes_and_commits_nothing_half_applied(
    tmp_path: Path,
) -> None:
    """If the rollback of a failed write fails too, the store closes its connection (sqlite
    drops the open transaction) and every later call fails: the delete is never committed."""
    path = tmp_path / "csms.sqlite"

    async def main() -> None:
        async with CsmsStore(path) as store:
            await store.save_token("CARD", b"\x01" * 32, 700)
            await store.db.execute(_ABORT_TOKEN_REFUND)
            await store.db.commit()

            async def failing() -> None:
                raise sqlite3.OperationalError("disk I/O error")

            store.db.rollback = failing  # type: ignore[method-assign]
            with pytest.raises(sqlite3.Error, match="the disk failed here"):
                await store.refunds.unbind_token("CARD")
            assert store.broken.is_set()  # what `charging serve` exits on
            with pytest.raises(RuntimeError, match="not open"):
                await store.record(_event(1, 1))

    asyncio.run(main())
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT prepaid FROM tokens").fetchall() == [(700,)]
    finally:
        reader.close()


def test_writes_queued_behind_a_failed_group_commit_are_committed_without_another_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group commit that fails hands its error to its own writers only; the writes queued
    behind it (beyond one batch, or come while it was committing) are committed by the same
    flush. Before, the flush ended with the error and they waited for an unrelated write."""
    monkeypatch.setattr(group_commit, "MAX_BATCH", 1)

    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            await store.db.execute(
                "CREATE TRIGGER fail BEFORE INSERT ON events WHEN NEW.seq_no = 1 "
                "BEGIN SELECT RAISE(ABORT, 'the disk failed here'); END"
            )
            await store.db.commit()
            first = asyncio.create_task(store.record(_event(1, 1)))
            second = asyncio.create_task(store.record(_event(1, 2)))
            await asyncio.wait_for(asyncio.wait([first, second]), 10)
            with pytest.raises(sqlite3.Error, match="the disk failed here"):
                first.result()
            second.result()
            assert [e.seq_no for e in await store.events(("CP1", "TX1"))] == [2]

    asyncio.run(main())


def test_the_wal_is_copied_back_by_the_checkpointer_never_by_a_commit(tmp_path: Path) -> None:
    """The writer's connection never checkpoints (a commit that did took the copy and its fsync
    on every charger in it); the checkpointer's connection does, in the background."""
    path = tmp_path / "csms.sqlite"

    async def main() -> tuple[int, int, int]:
        async with CsmsStore(path, checkpoint_every_s=0.05) as store:
            async with store.db.execute("PRAGMA wal_autocheckpoint") as cursor:
                (automatic,) = tuple(await cursor.fetchone() or (None,))
            before = path.stat().st_size
            await asyncio.gather(
                *(store.record(_event(station, seq)) for seq in (1, 2, 3) for station in range(50))
            )
            for _ in range(200):  # up to about 10 s: the checkpointer runs every 0.05 s
                if path.stat().st_size > before:
                    break
                await asyncio.sleep(0.05)
            return automatic, before, path.stat().st_size

    automatic, before, after = asyncio.run(main())
    assert automatic == 0
    assert after > before  # the rows reached the database file while the store was open
