"""The durable channel store: round trips, never going backwards, group commit, refusals."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import TYPE_CHECKING

import pytest
import trio

from payments import (
    ChannelRecord,
    ChannelState,
    ChannelStore,
    PayerChannel,
    Role,
    StoreError,
    WrongChannelError,
    read_records,
)
from tangle.protocol.ids import ChannelId
from tests.payments_support import CHANNEL, PAYER, terms

if TYPE_CHECKING:
    from pathlib import Path


def _record(
    sequence: int, *, channel: ChannelId | None = None, role: Role = Role.PAYEE
) -> ChannelRecord:
    t = terms() if channel is None else terms(channel=channel)
    payer = PayerChannel(t, PAYER)
    for _ in range(sequence):
        payer.pay(3)
    return ChannelRecord(terms=t, role=role, state=ChannelState.OPEN, latest=payer.latest)


async def test_save_load_round_trip(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "c.db") as store:
        assert await store.load(_record(0).terms.channel_id, Role.PAYEE) is None
        record = _record(4)
        await store.save(record)
        await store.save(_record(2, role=Role.PAYER))
        assert await store.load(record.terms.channel_id, Role.PAYEE) == record
        assert [r.role for r in await store.records(Role.PAYER)] == [Role.PAYER]
    assert sorted(read_records(tmp_path / "c.db"), key=lambda r: r.role) == [
        _record(2, role=Role.PAYER),
        record,
    ]


async def test_store_never_goes_backwards(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "c.db") as store:
        await store.save(_record(5))
        await store.save(_record(3))
        record = await store.load(_record(0).terms.channel_id, Role.PAYEE)
        assert record is not None
        assert record.sequence == 5
        closing = dataclasses.replace(_record(5), state=ChannelState.CLOSING)
        await store.save(closing)  # the same sequence with a new state is kept
        assert await store.load(closing.terms.channel_id, Role.PAYEE) == closing


async def test_concurrent_saves_are_group_committed(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    records = [_record(i % 3 + 1, channel=ChannelId(bytes([i]) * 32)) for i in range(60)]
    durable_on_return: list[bool] = []
    async with ChannelStore(path) as store:

        async def save(record: ChannelRecord) -> None:
            await store.save(record)
            # read on a connection of its own: the commit that holds this record is done
            durable_on_return.append(record in read_records(path))

        async with trio.open_nursery() as nursery:
            for record in records:
                nursery.start_soon(save, record)
        assert store.stats.saves == len(records)
        assert 1 <= store.stats.commits < len(records) // 2
    assert all(durable_on_return)
    assert len(durable_on_return) == len(records)
    assert sorted(read_records(path), key=lambda r: r.terms.channel_id) == records


async def test_bad_records_change_nothing(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "c.db") as store:
        good = _record(2)
        await store.save(good)
        foreign = _record(3, channel=ChannelId(b"\x0b" * 32))
        mixed = dataclasses.replace(good, latest=foreign.latest)
        with pytest.raises(WrongChannelError):
            await store.save(mixed)
        with pytest.raises(StoreError):
            await store.save("not a record")  # type: ignore[arg-type]
        assert await store.records() == [good]


async def test_commit_failure_is_reported_to_every_caller(tmp_path: Path) -> None:
    store = ChannelStore(tmp_path / "c.db")
    await store.aclose()
    with pytest.raises(StoreError):
        await store.save(_record(1))
    with pytest.raises(StoreError, match="closed"):
        await store.load(CHANNEL, Role.PAYEE)
    with pytest.raises(StoreError, match="closed"):
        await store.records()


def test_unreadable_rows_are_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    read_records(path)  # creates the schema
    db = sqlite3.connect(path)
    db.execute("INSERT INTO channels VALUES (?, 0, ?, 1, ?, NULL)", (b"x" * 32, b"junk", b"\0" * 8))
    db.commit()
    db.close()
    with pytest.raises(StoreError):
        read_records(path)
