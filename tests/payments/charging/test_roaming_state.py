"""The roaming state as rows of the CSMS's sqlite store (`payments.charging.roaming_state`): a
save restores to the same partners, Token As, tokens and sent CDRs, beyond the 1,000 entries one
OCPI list may hold (up to the store's own limit); a save writes only what changed; a row that
breaks a rule raises a named error and fills nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from typing import TYPE_CHECKING, Any

import aiosqlite
import pytest

from payments.charging.errors import ChargingError
from payments.charging.ocpi_credentials import (
    Credentials,
    CredentialsRole,
    Endpoint,
    InterfaceRole,
    Party,
    Registry,
    Role,
)
from payments.charging.ocpi_json import MAX_LIST
from payments.charging.ocpi_session import WhitelistType
from payments.charging.ocpi_store import OcpiStore
from payments.charging.roaming_state import RoamingRows
from payments.charging.session import EventKind, TransactionEvent
from payments.charging.store import CsmsStore

from .test_cdr_settlement import cdr
from .test_roaming_cpo import token

if TYPE_CHECKING:
    from pathlib import Path

ROLE = CredentialsRole(role=Role.CPO, party_id="CPO", country_code="NL", business_name="CPO")
EMSP = CredentialsRole(role=Role.EMSP, party_id="MSP", country_code="NL", business_name="MSP")
TOKENS = MAX_LIST + 500


def _event() -> TransactionEvent:
    return TransactionEvent(
        charge_point="CP1",
        transaction_id="TX1",
        seq_no=1,
        kind=EventKind.UPDATED,
        timestamp_s=1_780_000_000,
        register_wh=100,
    )


def _fresh() -> tuple[Registry, OcpiStore]:
    return Registry(ours=Credentials(token="unset", url="", roles=(ROLE,))), OcpiStore()


async def _restored(db: aiosqlite.Connection) -> RoamingRows:
    rows = RoamingRows(db, *_fresh())
    await rows.restore()
    return rows


def test_the_state_round_trips_beyond_one_ocpi_list_and_saves_only_changes(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with aiosqlite.connect(tmp_path / "csms.sqlite") as db:
            registry, store = _fresh()
            rows = RoamingRows(db, registry, store)
            assert not await rows.restore()  # nothing yet
            registry.issue("token-A2")
            endpoint = Endpoint(identifier="cdrs", role=InterfaceRole.RECEIVER, url="http://e/c")
            credentials = Credentials(token="token-B", url="http://e/ocpi/versions", roles=(EMSP,))
            registry.bind(Party(credentials=credentials, endpoints=(endpoint,), token="token-C"))
            for n in range(TOKENS):
                store.put_token(token(f"RFID-{n:05}", WhitelistType.ALWAYS))
            store.add_cdr(cdr("CDR-1", 1_000))
            store.add_cdr(cdr("CDR-2", 2_000))
            store.mark_sent("CDR-1")
            await rows.save()
            again = await _restored(db)
            assert again.registry.pending == {"token-A2"}
            assert again.registry.parties == registry.parties
            assert again.store.tokens.rows == store.tokens.rows
            assert len(again.store.tokens.rows) == TOKENS
            assert again.store.cdrs.rows == store.cdrs.rows
            assert again.store.sent == {"CDR-1"}
            # a second save writes only what changed: one token replaced, one CDR sent
            before = db.total_changes
            blocked = dataclasses.replace(store.tokens.rows["RFID-00007"], valid=False)
            store.put_token(blocked)
            store.mark_sent("CDR-2")
            await rows.save()
            assert db.total_changes - before == 2
            third = await _restored(db)
            assert third.store.tokens.get("RFID-00007") == blocked
            assert third.store.sent == {"CDR-1", "CDR-2"}

    asyncio.run(main())


def test_a_broken_row_fills_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with aiosqlite.connect(tmp_path / "csms.sqlite") as db:
            registry, store = _fresh()
            rows = RoamingRows(db, registry, store)
            await rows.restore()
            registry.issue("token-A2")
            store.put_token(token("RFID-1", WhitelistType.ALWAYS))
            store.add_cdr(cdr("CDR-1", 1_000))
            await rows.save()
            for table, column, broken in (
                ("ocpi_tokens", "doc", '{"uid": "x"}'),
                ("ocpi_cdrs", "doc", "[]"),
                ("ocpi_tokens", "doc", "not json"),
            ):
                async with db.execute(f"SELECT {column} FROM {table}") as cursor:
                    [(kept,)] = [tuple(r) async for r in cursor]
                await db.execute(f"UPDATE {table} SET {column} = ?", (broken,))
                await db.commit()
                fresh = RoamingRows(db, *_fresh())
                with pytest.raises(ChargingError):
                    await fresh.restore()
                assert (fresh.registry.pending, fresh.store.tokens.rows) == (set(), {})
                await db.execute(f"UPDATE {table} SET {column} = ?", (kept,))
                await db.commit()
            assert (await _restored(db)).store.tokens.rows == store.tokens.rows

    asyncio.run(main())


def test_a_cdr_added_while_a_save_awaits_is_written_by_the_next_save(tmp_path: Path) -> None:
    async def main() -> None:
        async with aiosqlite.connect(tmp_path / "csms.sqlite") as db:
            registry, store = _fresh()
            rows = RoamingRows(db, registry, store)
            assert not await rows.restore()
            store.add_cdr(cdr("CDR-1", 1_000))
            executemany = db.executemany

            async def adding(sql: str, params: Any) -> Any:  # a bill's hook runs meanwhile
                if "CDR-2" not in store.cdrs.rows:
                    store.add_cdr(cdr("CDR-2", 2_000))
                return await executemany(sql, params)

            db.executemany = adding  # type: ignore[method-assign]
            await rows.save()
            db.executemany = executemany  # type: ignore[method-assign]
            await rows.save()
            again = await _restored(db)
            assert set(again.store.cdrs.rows) == {"CDR-1", "CDR-2"}

    asyncio.run(main())


def test_a_save_commits_nothing_while_the_stores_writer_holds_its_lock(tmp_path: Path) -> None:
    """The roaming rows share the CSMS's connection: a save waits for the store's writer
    (`CsmsStore.write_lock`) instead of committing inside its transaction."""

    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as csms_store:
            registry, store = _fresh()
            rows = RoamingRows(csms_store.db, registry, store, lock=csms_store.write_lock)
            assert not await rows.restore()
            store.add_cdr(cdr("CDR-1", 1_000))
            async with csms_store.write_lock:  # a bill in the middle of its statements
                before = csms_store.db.total_changes
                saving = asyncio.ensure_future(rows.save())
                await asyncio.sleep(0.05)
                assert not saving.done()
                assert csms_store.db.total_changes == before
            await saving
            assert set((await _restored(csms_store.db)).store.cdrs.rows) == {"CDR-1"}

    asyncio.run(main())


def test_a_save_failing_midway_leaves_nothing_for_the_stores_next_commit(tmp_path: Path) -> None:
    """A save that fails after its first statements (here the CDR insert) is rolled back
    (`store.locked_transaction`): the CSMS store's next group commit does not commit half of it,
    and the next save writes it whole."""

    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as csms_store:
            registry, store = _fresh()
            rows = RoamingRows(csms_store.db, registry, store, lock=csms_store.write_lock)
            await rows.restore()
            await csms_store.db.execute(
                "CREATE TRIGGER fail_cdr BEFORE INSERT ON ocpi_cdrs "
                "BEGIN SELECT RAISE(ABORT, 'the disk failed here'); END"
            )
            await csms_store.db.commit()
            registry.issue("token-A")  # written before the CDRs
            store.add_cdr(cdr("CDR-1", 1_000))
            with pytest.raises(sqlite3.Error, match="the disk failed here"):
                await rows.save()
            await csms_store.record(_event())  # a group commit after the failure
            again = await _restored(csms_store.db)
            assert set(again.registry.pending) == set()  # nothing of the failed save
            assert not again.store.cdrs.rows
            await csms_store.db.execute("DROP TRIGGER fail_cdr")
            await rows.save()
            again = await _restored(csms_store.db)
            assert set(again.registry.pending) == {"token-A"}
            assert set(again.store.cdrs.rows) == {"CDR-1"}

    asyncio.run(main())
