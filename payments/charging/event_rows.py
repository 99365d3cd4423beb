"""The transaction events of the CSMS's sessions in its database (`EventRows`, which
`store.CsmsStore` builds on), and the 1.6 transaction ids.

Each event is made durable through the group commit (`group_commit`) before the charger is
answered. Events are keyed by (charge point, transaction id, seq) and inserted `OR IGNORE`, so a
replay after a restart (a charger resending what it was not answered) records nothing twice.
What reads them with the sessions' bills (what a restarted CSMS resumes, the back office's
summary of sessions) is the store's: `CsmsStore.unsettled`, `CsmsStore.sessions`.

```
events(charge_point, transaction_id, seq_no, kind, timestamp_s, register_wh, signed, offline,
       id_token, PK(charge_point, transaction_id, seq_no))
transactions16(id INTEGER PK AUTOINCREMENT, charge_point, connector_id, timestamp_s, meter_start,
               id_tag)
          1.6 transaction ids, indexed (not unique) by (charge_point, connector_id, timestamp_s,
          meter_start, id_tag, id): one row per session
```

*A 1.6 start's identity.* OCPP 1.6 leaves the transaction id to the CSMS, and a charger that got
no answer to its StartTransaction sends it again, byte for byte: it must get the same id, and a
different start its own. What a start carries is its connector, time, meterStart and idTag, and
the id is looked up by all of them. Its time is taken in whole seconds: every charger can stamp
those, and the rows of versions up to 2 hold seconds only (`timestamp_s`), so a start resent
across the upgrade still finds its row. Looked up by the connector and the second alone (versions
up to 2), two starts in one second on one connector got one id: a quick stop and restart, and
far more often a charger whose clock is unset (it stamps every message with one fixed time until
it learns the time) or has whole seconds only; the second session was taken for the first's
resend and its energy never billed. A start's reservationId is not part of it: this CSMS makes
no reservations (no ReserveNow), so none it carries is one of its own.

Two starts can be alike in all of these: a session in which the car took nothing, then the same
driver's again at once, both stamped with one second by a charger whose clock is unset. What
tells the second from a resend of the first is the order OCPP 1.6 keeps: a charger sends a
transaction's messages in order, so it never resends a StartTransaction after that
transaction's StopTransaction. A start whose newest alike row's session has its Ended event
recorded (seq `STOP_SEQ`) is a new session and gets a new id; otherwise it is that row's resend
(`EventRows.transaction_id_16`). So the key is a plain index, not a unique one: one start's
identity can have several rows, one per session. The trade-off: a first copy of a start that
arrived only after its whole session's stop (the charger resent it, got its answer, charged and
stopped, and only then the first copy came in, delayed past all of that) would open a phantom
session, which never ends and bills nothing. Messages on one WebSocket connection arrive in
order, so that copy is negligible, where a session in which the car took nothing is common.

`UPGRADE_3` rebuilds a version-2 table without its unique key: every id is kept, and so is the
table's sequence (AUTOINCREMENT: no id is handed out twice). Its rows have no id tag; each gets
its session's, from the session's Started event (seq 0), so a start resent across the upgrade
gets its id; a row with no event (the CSMS stopped between the id and the event, so the charger
got no answer) gets none (NULL): it matches no start, and that start resent gets a new id.
"""

from __future__ import annotations

from typing import Final

from .group_commit import GroupCommit
from .session import STOP_SEQ, EventKind, TransactionEvent

EVENTS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    charge_point TEXT NOT NULL, transaction_id TEXT NOT NULL, seq_no INTEGER NOT NULL,
    kind TEXT NOT NULL, timestamp_s INTEGER NOT NULL, register_wh INTEGER, signed TEXT,
    offline INTEGER NOT NULL, id_token TEXT,
    PRIMARY KEY (charge_point, transaction_id, seq_no)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS transactions16 (
    id INTEGER PRIMARY KEY AUTOINCREMENT, charge_point TEXT NOT NULL,
    connector_id INTEGER NOT NULL, timestamp_s INTEGER NOT NULL, meter_start INTEGER NOT NULL,
    UNIQUE (charge_point, connector_id, timestamp_s));
"""
"""The tables as version 0 (and a new database) have them; the store's upgrades bring them to
this version's (`transactions16`: `UPGRADE_3`)."""
UPGRADE_3: Final = """
    CREATE TABLE transactions16_v3 (
        id INTEGER PRIMARY KEY AUTOINCREMENT, charge_point TEXT NOT NULL,
        connector_id INTEGER NOT NULL, timestamp_s INTEGER NOT NULL,
        meter_start INTEGER NOT NULL, id_tag TEXT);
    INSERT INTO transactions16_v3
        SELECT t.id, t.charge_point, t.connector_id, t.timestamp_s, t.meter_start,
               (SELECT e.id_token FROM events e WHERE e.charge_point = t.charge_point
                AND e.transaction_id = CAST(t.id AS TEXT) AND e.seq_no = 0)
        FROM transactions16 t;
    DELETE FROM sqlite_sequence WHERE name = 'transactions16_v3';
    UPDATE sqlite_sequence SET name = 'transactions16_v3' WHERE name = 'transactions16';
    DROP TABLE transactions16;
    ALTER TABLE transactions16_v3 RENAME TO transactions16;
    CREATE INDEX transactions16_start
        ON transactions16 (charge_point, connector_id, timestamp_s, meter_start, id_tag)"""
"""Version 2 to 3 (run once, by the store's upgrade): `transactions16` looked up by a start's
identity, with no unique key (see the module docstring). sqlite cannot drop a table's UNIQUE
constraint, so the table is rebuilt: created anew, its rows copied with their ids and each its
id tag (its session's Started event's, NULL if it has none), the old table's sequence moved to
the new one (the copy set it to the highest id copied, lower if the highest ids' rows are
gone), the old table dropped, the new one renamed (its sequence's row with it) and indexed."""
_INSERT_EVENT: Final = "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_LATEST_START: Final = f"""
    SELECT t.id, EXISTS (SELECT 1 FROM events e WHERE e.charge_point = t.charge_point
                         AND e.transaction_id = CAST(t.id AS TEXT) AND e.seq_no = {STOP_SEQ})
    FROM transactions16 t WHERE t.charge_point = ? AND t.connector_id = ? AND t.timestamp_s = ?
    AND t.meter_start = ? AND t.id_tag = ? ORDER BY t.id DESC LIMIT 1"""
"""The newest row of a start's identity, and whether its session has ended (its Ended event is
recorded)."""
_NEW_START: Final = """
    INSERT INTO transactions16 (charge_point, connector_id, timestamp_s, meter_start, id_tag)
    VALUES (?, ?, ?, ?, ?) RETURNING id"""
"""A new session's row, and its id (AUTOINCREMENT: never one handed out before)."""


class EventRows(GroupCommit):
    """The `events` and `transactions16` tables (see the module docstring)."""

    async def record(self, event: TransactionEvent) -> None:
        """Make `event` durable; returns after the commit that holds it (group commit)."""
        row = (
            event.charge_point,
            event.transaction_id,
            event.seq_no,
            event.kind.value,
            event.timestamp_s,
            event.register_wh,
            event.signed_meter_value,
            int(event.offline),
            event.id_token,
        )
        await self.write(((_INSERT_EVENT, row),))

    async def events(self, key: tuple[str, str]) -> list[TransactionEvent]:
        """Every recorded event of session `key`, in seq order."""
        query = "SELECT * FROM events WHERE charge_point = ? AND transaction_id = ? ORDER BY seq_no"
        async with self.db.execute(query, key) as rows:
            return [
                TransactionEvent(
                    charge_point=r[0],
                    transaction_id=r[1],
                    seq_no=r[2],
                    kind=EventKind(r[3]),
                    timestamp_s=r[4],
                    register_wh=r[5],
                    signed_meter_value=r[6],
                    offline=bool(r[7]),
                    id_token=r[8],
                )
                async for r in rows
            ]

    async def event_count(self, key: tuple[str, str]) -> int:
        """How many events of session `key` are recorded."""
        query = "SELECT count(*) FROM events WHERE charge_point = ? AND transaction_id = ?"
        async with self.db.execute(query, key) as c:
            row = await c.fetchone()
        return 0 if row is None else int(row[0])

    async def transaction_id_16(
        self, charge_point: str, connector_id: int, timestamp_s: int, meter_start: int, id_tag: str
    ) -> int:
        """The 1.6 transaction id for this start: its newest alike row's if that session has
        not ended (a resent StartTransaction), else a new one (see the module docstring). The
        look-up and the insert are one `transaction`, under the write lock: a resend that
        arrives while its first copy is being answered finds that copy's row."""
        start = (charge_point, connector_id, timestamp_s, meter_start, id_tag)
        async with self.transaction() as db:
            async with db.execute(_LATEST_START, start) as c:
                latest = await c.fetchone()
            if latest is not None and not latest[1]:
                return int(latest[0])
            [(new,)] = await db.execute_fetchall(_NEW_START, start)
        return int(new)
