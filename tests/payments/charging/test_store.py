"""The CSMS store's group commit: meter values arriving together share one transaction, and each
`record` returns only once its event is committed (another connection reads it then)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

from payments.charging.session import EventKind, TransactionEvent
from payments.charging.store import CsmsStore

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
    tmp_path: Path,
) -> None:
    path = tmp_path / "csms.sqlite"

    async def main() -> tuple[int, list[bool]]:
        async with CsmsStore(path) as store:
            commits = 0
            commit = store.db.commit

            async def counted() -> None:  # the real commit, counted
                nonlocal commits
                commits += 1
                await commit()

            store.db.commit = counted  # type: ignore[method-assign]

            async def one(station: int, seq: int) -> bool:
                event = _event(station, seq)
                await store.record(event)
                return _committed(path, event)  # read by another connection at once

            seen = await asyncio.gather(
                *(one(station, seq) for seq in (1, 2) for station in range(CHARGERS))
            )
            return commits, seen

    commits, seen = asyncio.run(main())
    assert all(seen)
    assert 1 <= commits <= 4  # 100 meter values, a handful of transactions


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
