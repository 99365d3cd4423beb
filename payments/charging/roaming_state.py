"""The CSMS's roaming state as rows of its sqlite store: the eMSPs registered with it, the Token
As not yet spent, the tokens they pushed, and the CDRs sent (and which were), so a restarted CSMS
still knows its partners, authorizes their drivers and never sends a CDR twice or changes one it
sent.

```
ocpi_pending(token TEXT PK)                            a Token A not yet spent
ocpi_parties(token TEXT PK, credentials, endpoints)    a registered party (OCPI JSON)
ocpi_tokens(uid TEXT PK, doc)                          a token an eMSP pushed (OCPI Token)
ocpi_cdrs(id TEXT PK, doc, sent)                       a CDR (OCPI CDR), and whether it was sent
```

Each object is its own row in OCPI's own shape, read back with the strict parsers, so the state
is bounded by the store's limits (`OcpiStore.limit`, `MAX_PARTIES`), not by one document's.
`RoamingRows.save` writes what changed since the last save (compared by identity: the objects are
frozen, a change is a new object) in one transaction on the store's aiosqlite connection, off the
event loop; `roaming_service` calls it in the OCPI handler before a successful response is sent
(a failed request writes nothing) and after every CDR push. `restore` fills a fresh `Registry`
and `OcpiStore`; a row that breaks a rule raises the parser's `ChargingError` and fills nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

from . import ocpi_json as j
from .errors import OcpiFieldError
from .group_commit import locked_transaction
from .ocpi_cdr import cdr_to_json, parse_cdr
from .ocpi_credentials import (
    MAX_PARTIES,
    VERSION,
    Party,
    credentials_to_json,
    endpoints_to_json,
    parse_credentials,
    parse_endpoints,
)
from .ocpi_session import parse_token, token_to_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import aiosqlite

    from .ocpi_cdr import Cdr
    from .ocpi_credentials import Registry
    from .ocpi_session import Token
    from .ocpi_store import OcpiStore

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS ocpi_pending (token TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ocpi_parties (
    token TEXT PRIMARY KEY, credentials TEXT NOT NULL, endpoints TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ocpi_tokens (uid TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ocpi_cdrs (
    id TEXT PRIMARY KEY, doc TEXT NOT NULL, sent INTEGER NOT NULL) WITHOUT ROWID;
"""


def _dump(value: object) -> str:
    return j.dumps(value)


K = TypeVar("K")
V = TypeVar("V")


def _changed(now: dict[K, V], saved: dict[K, V]) -> tuple[list[K], list[K]]:
    """Keys put or replaced since `saved`, and keys gone."""
    put = [k for k, v in now.items() if saved.get(k) is not v]
    return put, [k for k in saved if k not in now]


@dataclass(slots=True)
class RoamingRows:
    """The roaming state of `registry` and `store` kept as rows in `db` (see the module
    docstring)."""

    db: aiosqlite.Connection
    registry: Registry
    store: OcpiStore
    _pending: set[str] = field(default_factory=set)
    _parties: dict[str, Party] = field(default_factory=dict)
    _tokens: dict[str, Token] = field(default_factory=dict)
    _cdrs: dict[str, Cdr] = field(default_factory=dict)
    _sent: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """The lock of every writer on `db` (`CsmsStore.write_lock` when `db` is the CSMS's store):
    held from a save's first statement to its commit, so no other commit lands inside it."""
    broken: Callable[[], None] | None = None
    """Called if a failed save's rollback fails too and `db` is closed (`CsmsStore.mark_broken`
    when `db` is the CSMS's store)."""

    async def restore(self) -> bool:
        """Fill the (fresh) registry and store from the rows; False if there are none yet."""
        await self.db.executescript(_SCHEMA)
        await self.db.commit()
        pending = [r[0] for r in await self._rows("SELECT token FROM ocpi_pending", MAX_PARTIES)]
        parties = []
        query = "SELECT token, credentials, endpoints FROM ocpi_parties"
        for token, credentials, endpoints in await self._rows(query, MAX_PARTIES):
            where = f"state.parties[{token!r}]"
            _, served = parse_endpoints(j.loads(endpoints.encode()), f"{where}.endpoints")
            parties.append(
                Party(
                    credentials=parse_credentials(j.loads(credentials.encode()), where),
                    endpoints=served,
                    token=token,
                )
            )
        limit = self.store.limit
        tokens = [
            parse_token(j.loads(doc.encode()), f"state.tokens[{uid!r}]")
            for uid, doc in await self._rows("SELECT uid, doc FROM ocpi_tokens", limit)
        ]
        cdrs = []
        sent = []
        for cdr_id, doc, was_sent in await self._rows("SELECT id, doc, sent FROM ocpi_cdrs", limit):
            cdrs.append(parse_cdr(j.loads(doc.encode()), f"state.cdrs[{cdr_id!r}]"))
            if was_sent:
                sent.append(cdr_id)
        for token in pending:  # everything parsed: now apply
            self.registry.issue(token)
        for party in parties:
            self.registry.bind(party)
        for t in tokens:
            self.store.put_token(t)
        for cdr in cdrs:
            self.store.add_cdr(cdr)
        for cdr_id in sent:
            self.store.mark_sent(cdr_id)
        self._remember()
        return bool(pending or parties)

    async def _rows(self, query: str, limit: int) -> list[tuple[str, ...]]:
        async with self.db.execute(f"{query} LIMIT ?", (limit + 1,)) as cursor:
            rows = [tuple(r) async for r in cursor]
        if len(rows) > limit:
            raise OcpiFieldError("state", f"{query}: more than {limit} rows")
        return rows

    def _remember(self) -> None:
        self._pending = set(self.registry.pending)
        self._parties = dict(self.registry.parties)
        self._tokens = dict(self.store.tokens.rows)
        self._cdrs = dict(self.store.cdrs.rows)
        self._sent = set(self.store.sent)

    async def save(self) -> None:
        """Write what changed since the last save or restore, in one transaction. It writes
        the state as it was when called and remembers that, so what changes while it awaits
        the database is written by the next save; saves (and the store's writes) run one at a
        time."""
        async with locked_transaction(self.db, self.lock, self.broken) as db:  # error: rollback
            await self._save(db)

    async def _save(self, db: aiosqlite.Connection) -> None:
        registry = self.registry
        pending, parties = set(registry.pending), dict(registry.parties)
        tokens, cdrs, sent_now = (
            dict(self.store.tokens.rows),
            dict(self.store.cdrs.rows),
            set(self.store.sent),
        )
        gone_pending = self._pending - pending
        new_pending = pending - self._pending
        put_parties, gone_parties = _changed(parties, self._parties)
        put_tokens, gone_tokens = _changed(tokens, self._tokens)
        put_cdrs, gone_cdrs = _changed(cdrs, self._cdrs)
        sent = sent_now - self._sent
        await db.executemany("DELETE FROM ocpi_pending WHERE token = ?", _one(gone_pending))
        await db.executemany("INSERT OR IGNORE INTO ocpi_pending VALUES (?)", _one(new_pending))
        await db.executemany("DELETE FROM ocpi_parties WHERE token = ?", _one(gone_parties))
        await db.executemany(
            "INSERT OR REPLACE INTO ocpi_parties VALUES (?, ?, ?)",
            [
                (
                    k,
                    _dump(credentials_to_json(parties[k].credentials)),
                    _dump(endpoints_to_json(VERSION, parties[k].endpoints)),
                )
                for k in put_parties
            ],
        )
        await db.executemany("DELETE FROM ocpi_tokens WHERE uid = ?", _one(gone_tokens))
        await db.executemany(
            "INSERT OR REPLACE INTO ocpi_tokens VALUES (?, ?)",
            [(k, _dump(token_to_json(tokens[k]))) for k in put_tokens],
        )
        await db.executemany("DELETE FROM ocpi_cdrs WHERE id = ?", _one(gone_cdrs))
        await db.executemany(
            "INSERT OR REPLACE INTO ocpi_cdrs VALUES (?, ?, ?)",
            [(k, _dump(cdr_to_json(cdrs[k])), int(k in sent_now)) for k in put_cdrs],
        )
        await db.executemany("UPDATE ocpi_cdrs SET sent = 1 WHERE id = ?", _one(sent))
        await db.commit()  # remembered only once committed
        self._pending, self._parties, self._tokens, self._cdrs = pending, parties, tokens, cdrs
        self._sent = sent_now


def _one(keys: Iterable[str]) -> list[tuple[str]]:
    return [(k,) for k in keys]
