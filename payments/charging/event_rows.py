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
               UNIQUE(charge_point, connector_id, timestamp_s))   1.6 transaction ids
```
"""

from __future__ import annotations

from typing import Final

from .group_commit import GroupCommit
from .session import EventKind, TransactionEvent

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
_INSERT_EVENT: Final = "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


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
        self, charge_point: str, connector_id: int, timestamp_s: int, meter_start: int
    ) -> int:
        """The 1.6 transaction id for this start (the same one for a resent StartTransaction)."""
        await self.write_now(
            "INSERT OR IGNORE INTO transactions16 (charge_point, connector_id, timestamp_s, "
            "meter_start) VALUES (?, ?, ?, ?)",
            (charge_point, connector_id, timestamp_s, meter_start),
        )
        query = (
            "SELECT id FROM transactions16 WHERE charge_point = ? AND connector_id = ? "
            "AND timestamp_s = ?"
        )
        async with self.db.execute(query, (charge_point, connector_id, timestamp_s)) as c:
            row = await c.fetchone()
        if row is None:
            raise RuntimeError("transaction id vanished")
        return int(row[0])
