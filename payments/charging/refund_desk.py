"""The operator's side of the refunds owed to drivers (`RefundDesk`, the base of
`refund_rows.RefundRows`, so `CsmsStore.refunds` has both): a bounded listing of every refund
still owed, the two actions on a held one, and holding one.

A refund is held in one of two states (`HELD_STATES`), which the refunder never reads; it
stays owed until the operator acts. `held`: the refunder held it, its transfer failed for good
at its last attempt, or failed in a way that may still apply (abandoned after it was attached:
`refund_attempts`). `paused`: the operator held it (`hold`) while the refunder was paying it,
so a transfer under its key may be in flight or submitted, and may still confirm.

- *retry* (`retry_held`): a `held` refund's failed transfer can never confirm (the operator
  checked): the refund is owed again under its next attempt, at the same amount and under a
  key of its own (`refund_attempts.attempt_key`), so the refunder's next round pays it. Should
  that transfer fail for good too it is held again (`refund_attempts.next_attempt`: past
  `MAX_ATTEMPTS`). A `paused` refund is owed again under the attempt it was paused at, the
  same key: the refunder resumes the transfer recorded under it (`Wallet.send`), and a next
  attempt comes only from the wallet's record of that transfer (`refund_attempts.never_applies`),
  so retrying never puts a second transfer beside one that may still confirm.
- *settle* (`settle_held`): the operator paid it outside the ledger (a bank transfer, say); it
  is deleted, and the operator's note is logged at info level with its amount, the key of its
  last attempt and what the CPO's wallet recorded under that key, the record of how it was
  paid. Settling consults that record first (`refund_attempts.recorded_state`): a transfer
  `pending` (it may still confirm), `confirmed` (the ledger paid it: the operator retries a
  `paused` refund, and the refunder finds it paid) or `abandoned` after it was attached (its
  payload is on the tangle: anyone may attach it again, and it applies while its inputs are
  unspent) refuses the settlement by name (`RefundTransferLiveError`: paid by hand too, the
  driver would be paid twice); one `failed` (it can never apply: an abandoned one too, once
  the wallet records one of its inputs spent by another confirmed transfer) or never recorded
  (`none`) allows it. A process with no wallet at all (no refund seed, and no wallet state
  file beside the database: `refund_wallet.state_records`) never sent a refund, and settles
  without a check, unless the refund's row shows that a send of it was tried (`tried`): then
  the wallet's file is missing, and settling is refused. A record that cannot be read (in
  time: `refund_wallet.WALLET_READ_S`) refuses it (`RefundWalletError`).

*Checking, then deleting.* The check runs inside the settlement's one transaction, after its
DELETE took the row (and the database's write lock) and before its commit, so the row it
deletes is the row whose key was checked: no retry, hold or refunder changes it in between
(another process waits for the lock). A wallet record only moves from pending to final, never
back, so one seen final stays final. And no transfer starts under the key of a `held` or
`paused` row: the refunder reads neither state, and retrying is the only way out of them. A
payment already under way when the operator paused the refund (`hold` of a `sending` row
while the refunder had claimed it) records its transfer only once the wallet gets to it
(after its sync: seconds, longer on a slow node), and settled in between it shows `none`. The
two databases are two files, and neither's lock holds the other's writes, so the refunder
closes that window on its side: it records the transfer, then checks that the row is still
`sending` at its attempt, and only then attaches it (`refund_wallet.LedgerWallet`). A hold
committed before that check is seen, and nothing is attached; one committed after it finds
the transfer recorded, and settling refuses it.

Retry and settle each change the row in one statement, only while it is still held,
so two operators (or an operator and the refunder) never both act on one: the second is refused
by name (`RefundNotHeldError` for a refund owed in another state, `UnknownRefundError` for one
no longer owed), and nothing changes. An action from another process on the same database (the
CLI beside a running CSMS) is atomic alike. To settle a refund the refunder still pays (one the
operator paid by hand while its transfer kept failing), the operator first holds it (`hold`,
one statement from any state the refunder reads: `paused`).

Refunds are named by kind and id (`RefundRef`): `session` and `charge point/transaction id`
(no charge point id holds a `/`: it is the last segment of the URL it connects at,
`csms.station_of`), or `token` and the `token_refunds` row id. The listing is ordered by that
reference, sessions' refunds first, and read in pages of at most `MAX_PAGE` after a cursor
(the last reference read), so a listing costs a bounded read however many refunds are owed.
The back office and the CLI list one `page` alike: each refund with its transfer's state in the
CPO's wallet, and the next page's cursor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from .errors import (
    RefundNoteError,
    RefundNotHeldError,
    RefundRefError,
    RefundTransferLiveError,
    RefundWalletError,
    UnknownRefundError,
)
from .refund_attempts import (
    TransferState,
    attempt_key,
    session_refund_key,
    unbind_refund_key,
)
from .refund_wallet import WALLET_READ_S, read_record

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from contextlib import AbstractAsyncContextManager

    import aiosqlite

    from .refund_attempts import TransferRecords

SESSION: Final = "session"
"""The kind of a prepaid session's rest (`refunds`)."""
TOKEN: Final = "token"
"""The kind of an amount owed to a channel's payer (`token_refunds`)."""
MAX_PAGE: Final = 500
"""The most refunds one page of the listing holds."""
MAX_NOTE: Final = 500
"""The longest settlement note, in characters."""
OWED_STATES: Final = ("owed", "maybe_sent", "sending", "held", "paused")
"""Every state in which a refund's money is still owed (`refund_rows`)."""
HELD_STATES: Final = ("held", "paused")
"""The states the refunder never reads, in which the operator retries or settles a refund."""

READ_STATES: Final = ("owed", "maybe_sent", "sending")
"""The states the refunder reads (`refund_rows`), from which the operator holds a refund."""
LIVE: Final = (TransferState.PENDING, TransferState.CONFIRMED, TransferState.ABANDONED)
"""The states of a refund's transfer in which it is not settled (the module docstring)."""


def sql_states(states: tuple[str, ...]) -> str:
    """`states` as an SQL list, for `state IN ...` (fixed names, never input)."""
    return "(" + ", ".join(f"'{state}'" for state in states) + ")"


_IN: Final = sql_states(OWED_STATES)
_HELD: Final = sql_states(HELD_STATES)
_PAID_BY_REFUNDER: Final = sql_states(READ_STATES)

RefundRef = tuple[str, str] | int
"""A refund: a session's (charge point, transaction id), or a `token_refunds` row id."""

LOG: Final = logging.getLogger(__name__)


def parse_ref(kind: str, text: str) -> RefundRef:
    """The refund of `kind` named by `text` (`ref_text`'s inverse); `RefundRefError` if `text`
    names none."""
    if kind == SESSION:
        charge_point, slash, transaction_id = text.partition("/")
        if not (charge_point and slash and transaction_id):
            raise RefundRefError(text, "a session refund is CHARGE_POINT/TRANSACTION_ID")
        return (charge_point, transaction_id)
    if kind == TOKEN:
        if not (text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0):
            raise RefundRefError(text, "a token refund's id is a positive integer")
        return int(text)
    raise RefundRefError(f"{kind}/{text}", f"the kind is {SESSION} or {TOKEN}")


def ref_text(ref: RefundRef) -> tuple[str, str]:
    """The kind and the id text of refund `ref` (as URLs and the CLI name it)."""
    if isinstance(ref, int):
        return TOKEN, str(ref)
    return SESSION, f"{ref[0]}/{ref[1]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OwedRefund:
    """A refund still owed, as the operator sees it."""

    ref: RefundRef
    """Which refund (`ref_text` gives its kind and id)."""
    id_token: str | None
    """The driver's token it was prepaid through (a session's, if its binding is kept)."""
    channel_id: bytes | None
    """The channel whose payer it is owed to."""
    amount: int
    """What is owed, in minor units."""
    state: str
    """`owed`, `maybe_sent`, `sending` (`refund_rows`), `held` or `paused` (the module
    docstring)."""
    attempt: int
    """Its current attempt (`refund_attempts`)."""
    tries: int
    """How many payments of it failed."""
    first_key: bytes
    """The idempotency key of its first attempt (`session_refund_key`, `unbind_refund_key`)."""

    @property
    def key(self) -> bytes:
        """The idempotency key of its current attempt, as the CPO's wallet records its
        transfer (`attempt_key`)."""
        return attempt_key(self.first_key, self.attempt)

    def to_json(self) -> dict[str, object]:
        """Its JSON object (the back office's and the CLI's)."""
        kind, ref = ref_text(self.ref)
        return {
            "kind": kind,
            "id": ref,
            "charge_point": None if isinstance(self.ref, int) else self.ref[0],
            "transaction_id": None if isinstance(self.ref, int) else self.ref[1],
            "id_token": self.id_token,
            "channel_id": None if self.channel_id is None else self.channel_id.hex(),
            "amount": self.amount,
            "state": self.state,
            "held": self.state in HELD_STATES,
            "attempt": self.attempt,
            "tries": self.tries,
            "key": self.key.decode("utf-8", "backslashreplace"),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedRefund:
    """A refund still owed, as the listing shows it."""

    refund: OwedRefund
    """The refund."""
    transfer: TransferState | None
    """The CPO wallet's record of the transfer under its key (`unknown`: it cannot be read);
    None where no wallet is read."""

    def to_json(self) -> dict[str, object]:
        """Its JSON object: the refund's, and `transfer` (null: no wallet)."""
        transfer = None if self.transfer is None else self.transfer.value
        return {**self.refund.to_json(), "transfer": transfer}


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundPage:
    """One page of the listing (`RefundDesk.page`)."""

    refunds: tuple[ListedRefund, ...]
    """The refunds, ordered by reference."""
    next: str | None
    """The cursor (`KIND/ID`) the next page starts after, if this one is full."""

    def to_json(self) -> dict[str, object]:
        """Its JSON object, as the back office answers it."""
        return {"refunds": [r.to_json() for r in self.refunds], "next": self.next}


class RefundStore(Protocol):
    """What the refund rows use of their `CsmsStore` (so these modules need not import it)."""

    @property
    def db(self) -> aiosqlite.Connection: ...

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

    async def write_now(self, sql: str, params: tuple[object, ...]) -> int: ...


_SESSION_COLUMNS: Final = (
    "r.charge_point, r.transaction_id, s.id_token, s.channel_id, r.amount, r.state, r.attempt, "
    "r.tries"
)
_SESSION_FROM: Final = (
    "refunds r LEFT JOIN sessions s "
    "ON s.charge_point = r.charge_point AND s.transaction_id = r.transaction_id"
)
_TOKEN_COLUMNS: Final = "id, id_token, channel_id, amount, state, attempt, tries"


def _session_refund(r: Sequence[Any]) -> OwedRefund:
    ref = (str(r[0]), str(r[1]))
    return OwedRefund(
        ref=ref,
        id_token=None if r[2] is None else str(r[2]),
        channel_id=None if r[3] is None else bytes(r[3]),
        amount=int(r[4]),
        state=str(r[5]),
        attempt=int(r[6]),
        tries=int(r[7]),
        first_key=session_refund_key(ref),
    )


def _token_refund(r: Sequence[Any]) -> OwedRefund:
    refund_id, id_token, channel_id = int(r[0]), str(r[1]), bytes(r[2])
    return OwedRefund(
        ref=refund_id,
        id_token=id_token,
        channel_id=channel_id,
        amount=int(r[3]),
        state=str(r[4]),
        attempt=int(r[5]),
        tries=int(r[6]),
        first_key=unbind_refund_key(channel_id, id_token, refund_id),
    )


class RefundDesk:
    """The owed refunds of a `CsmsStore` as the operator lists and settles them (see the module
    docstring)."""

    __slots__ = ("_store",)

    def __init__(self, store: RefundStore) -> None:
        self._store = store

    async def owed_page(
        self, *, held_only: bool = False, after: RefundRef | None = None, limit: int = MAX_PAGE
    ) -> list[OwedRefund]:
        """Up to `limit` (at most `MAX_PAGE`) refunds still owed, in every state or held
        (`HELD_STATES`) only, ordered by reference (sessions' first), after refund `after` if
        given: the next page starts after the last refund of a full one."""
        limit = max(0, min(limit, MAX_PAGE))
        states = HELD_STATES if held_only else OWED_STATES
        marks = ", ".join("?" * len(states))
        page: list[OwedRefund] = []
        if not isinstance(after, int):
            where = "" if after is None else " AND (r.charge_point, r.transaction_id) > (?, ?)"
            query = (
                f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_FROM} WHERE r.state IN ({marks})"
                f"{where} ORDER BY r.charge_point, r.transaction_id LIMIT ?"
            )
            params = (*states, *(() if after is None else after), limit)
            async with self._store.db.execute(query, params) as rows:
                page.extend([_session_refund(r) async for r in rows])
        if len(page) < limit:
            query = (
                f"SELECT {_TOKEN_COLUMNS} FROM token_refunds WHERE state IN ({marks}) "
                "AND id > ? ORDER BY id LIMIT ?"
            )
            first = after if isinstance(after, int) else 0
            async with self._store.db.execute(query, (*states, first, limit - len(page))) as rows:
                page.extend([_token_refund(r) async for r in rows])
        return page

    async def page(
        self,
        *,
        held_only: bool = False,
        after: str | None = None,
        limit: int = MAX_PAGE,
        wallet: TransferRecords | None,
    ) -> RefundPage:
        """The listing's page of up to `limit` (1 to `MAX_PAGE`) refunds owed (`owed_page`)
        after the cursor `after` (`KIND/ID`, a page's `next`; `RefundRefError` if it names no
        refund), each with its transfer's state in `wallet` (None: none shown), and the next
        page's cursor if this one is full. A record that cannot be read is shown `unknown`
        (logged), and the rest are still read (only settling fails closed), unless it was not
        read in time (`WALLET_READ_S`): the rest are `unknown` too, so a page is not held up
        `WALLET_READ_S` a refund."""
        size = max(1, min(limit, MAX_PAGE))
        start = None if after is None else parse_ref(*after.partition("/")[::2])
        owed = await self.owed_page(held_only=held_only, after=start, limit=size)
        clock = asyncio.get_running_loop().time
        listed: list[ListedRefund] = []
        stalled = False  # a read ran out of time: the file is held, the rest are not read
        for refund in owed:
            shown: TransferState | None = None
            if wallet is not None:
                began = clock()
                shown = TransferState.UNKNOWN if stalled else await _shown(wallet, refund)
                stalled = stalled or clock() - began >= WALLET_READ_S
            listed.append(ListedRefund(refund=refund, transfer=shown))
        last = "/".join(ref_text(owed[-1].ref)) if len(owed) == size else None
        return RefundPage(refunds=tuple(listed), next=last)

    async def owed(self, ref: RefundRef) -> OwedRefund | None:
        """Refund `ref` if it is still owed (in any state)."""
        if isinstance(ref, int):
            query = f"SELECT {_TOKEN_COLUMNS} FROM token_refunds WHERE id = ? AND state IN {_IN}"
            async with self._store.db.execute(query, (ref,)) as c:
                row = await c.fetchone()
            return None if row is None else _token_refund(row)
        query = (
            f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_FROM} "
            f"WHERE r.charge_point = ? AND r.transaction_id = ? AND r.state IN {_IN}"
        )
        async with self._store.db.execute(query, ref) as c:
            row = await c.fetchone()
        return None if row is None else _session_refund(row)

    async def retry_held(self, ref: RefundRef, *, wallet: TransferRecords | None) -> OwedRefund:
        """Held refund `ref` is owed again (`sending`, same amount): a `held` one under its next
        attempt (a new key), a `paused` one under the attempt it was paused at (its key: the
        module docstring); in one statement from a held state only; the refund as it is now.
        A `held` one moves to a new key only if `wallet`, the CPO's wallet, shows that its
        transfer under its current key cannot pay it, checked as settling does (`LIVE`:
        `RefundTransferLiveError`, a transfer beside one that may still apply would pay the
        driver twice; `RefundWalletError`, with no wallet: a held refund was sent).
        `UnknownRefundError` if it is not owed, `RefundNotHeldError` if it is not held (nothing
        changes)."""

        async def unpaid(moved: OwedRefund) -> None:
            held = dataclasses.replace(moved, attempt=moved.attempt - 1, state="held")
            await _unpaid(held, wallet)

        try:
            move = "UPDATE {} SET attempt = attempt + 1, state = 'sending'"
            retried = await self._act(ref, move, "('held')", unpaid)
        except RefundNotHeldError as e:
            if e.state != "paused":
                raise
            retried = await self._act(ref, "UPDATE {} SET state = 'sending'", "('paused')")
        LOG.info(
            "held refund %s of %d retried by the operator: attempt %d, under %r",
            ref_text(ref),
            retried.amount,
            retried.attempt,
            retried.key,
        )
        return retried

    async def settle_held(
        self, ref: RefundRef, note: str, *, wallet: TransferRecords | None
    ) -> ListedRefund:
        """Held refund `ref` was paid outside the ledger: deleted, in one transaction from a
        held state only (`held` or `paused`), unless `wallet`, the CPO's wallet (None: there is
        none, nothing was sent), records its transfer under the refund's key as pending,
        confirmed or abandoned (`LIVE`: `RefundTransferLiveError`; the module docstring);
        `note` (how it was paid) logged at info with its amount, key and transfer; the refund
        as it was, with its transfer's state (None: no wallet). `RefundNoteError` for an
        empty, overlong or unprintable note, `RefundWalletError` if the wallet's record cannot
        be read, or if there is no wallet and the refund's row shows that a send was tried
        (`tried`: the wallet's file is missing), else as `retry_held`."""
        if not note.strip():
            raise RefundNoteError("empty")
        if len(note) > MAX_NOTE:
            raise RefundNoteError(f"over {MAX_NOTE} characters")
        if not note.isprintable():
            raise RefundNoteError("not printable text (one line)")
        seen: list[TransferState] = []

        async def unpaid(refund: OwedRefund) -> None:
            state = await _unpaid(refund, wallet)
            if state is not None:
                seen.append(state)

        settled = await self._act(ref, "DELETE FROM {}", check=unpaid)
        LOG.info(
            "held refund %s of %d under %r (its transfer: %s) settled by the operator: %r",
            ref_text(ref),
            settled.amount,
            settled.key,
            seen[0].value if seen else "no wallet",
            note,
        )
        return ListedRefund(refund=settled, transfer=seen[0] if seen else None)

    async def hold(self, ref: RefundRef) -> OwedRefund:
        """Refund `ref`, in a state the refunder reads, is `paused` from now on (the refunder
        no longer reads it: `refund_rows`), so that the operator can settle one paid outside
        the ledger before the refunder pays it too (a refund a version before attempts left
        `sending`: the README's upgrade note); one already held stays as it is. The refund as
        it is now. A payment of it already under way still ends (paid: it is deleted; failed
        for good: it stays `paused`), unless it had not yet recorded its transfer: then it
        attaches nothing (`refund_wallet.LedgerWallet`). `UnknownRefundError` if it is not
        owed."""
        try:
            held = await self._act(ref, "UPDATE {} SET state = 'paused'", _PAID_BY_REFUNDER)
        except RefundNotHeldError as e:  # held already, unless retried since
            if e.state not in HELD_STATES:
                raise
            now = await self.owed(ref)
            if now is None:
                raise UnknownRefundError(*ref_text(ref)) from None
            return now
        LOG.info("refund %s of %d held by the operator", ref_text(ref), held.amount)
        return held

    async def _act(
        self,
        ref: RefundRef,
        change: str,
        states: str = _HELD,
        check: Callable[[OwedRefund], Awaitable[None]] | None = None,
    ) -> OwedRefund:
        """Run `change` (a statement on table `{}`) on refund `ref`'s row if it is in one of
        `states` (SQL), in one statement, and read what it returns (a session's token and
        channel in the same transaction); `check`, if given, sees that refund before the
        commit, and what it raises rolls the change back; the refusal if no row changed."""
        table, where, params = row_of(ref)
        columns = _TOKEN_COLUMNS if isinstance(ref, int) else _SESSION_RETURNING
        query = f"{change.format(table)} WHERE {where} AND state IN {states} RETURNING {columns}"
        async with self._store.transaction() as db:
            async with db.execute(query, params) as c:
                row = await c.fetchone()
            if row is not None:
                acted = _token_refund(row) if isinstance(ref, int) else await _joined(db, row)
                if check is not None:
                    await check(acted)
                return acted
        kind, text = ref_text(ref)
        now = await self.owed(ref)
        if now is None:
            raise UnknownRefundError(kind, text)
        raise RefundNotHeldError(kind, text, now.state)


def tried(refund: OwedRefund) -> bool:
    """Whether `refund`'s row shows that a send of it was tried, so that a wallet recorded its
    transfer: a later attempt (one moves on only from a recorded transfer that failed for
    good), a failed try, or `held` (by the refunder, after its transfer failed for good). A
    `paused` refund at its first attempt never tried may still have been paused while it was
    being sent, but a send needs the wallet, whose state file the CSMS creates when it starts
    with a refund seed, before it sends anything: with no such file, nothing was sent."""
    return refund.attempt > 0 or refund.tries > 0 or refund.state == "held"


_SESSION_RETURNING: Final = (
    "charge_point, transaction_id, NULL, NULL, amount, state, attempt, tries"
)


async def _joined(db: aiosqlite.Connection, row: Sequence[Any]) -> OwedRefund:
    """Session refund `row` (as `_SESSION_RETURNING` reads it) with its session's token and
    channel, read in the open transaction."""
    query = (
        "SELECT id_token, channel_id FROM sessions WHERE charge_point = ? AND transaction_id = ?"
    )
    async with db.execute(query, (row[0], row[1])) as c:
        session = await c.fetchone()
    values = list(row)
    if session is not None:
        values[2:4] = session
    return _session_refund(values)


async def _unpaid(refund: OwedRefund, wallet: TransferRecords | None) -> TransferState | None:
    """The state of `refund`'s transfer under its key in `wallet` (None: no wallet), if it
    cannot pay the refund; `RefundTransferLiveError` if it is live (`LIVE`), `RefundWalletError`
    if it cannot be read, or if there is no wallet and the refund's row shows a send
    (`tried`)."""
    kind, text = ref_text(refund.ref)
    if wallet is None:
        if tried(refund):
            raise RefundWalletError(
                f"there is none, yet {kind} refund {text!r} shows a send (attempt "
                f"{refund.attempt}, {refund.tries} failed tries, {refund.state})"
            )
        return None
    transfer, state = await read_record(wallet, refund.key)
    if transfer is not None and state in LIVE:
        raise RefundTransferLiveError(kind, text, refund.key, state.value, transfer.status.value)
    return state


async def _shown(wallet: TransferRecords, refund: OwedRefund) -> TransferState:
    """The state of `refund`'s transfer as the listing shows it: `unknown` if its record cannot
    be read (logged)."""
    try:
        return (await read_record(wallet, refund.key))[1]
    except RefundWalletError as e:
        LOG.warning("refund %s: its transfer is not shown: %s", ref_text(refund.ref), e)
        return TransferState.UNKNOWN


def row_of(ref: RefundRef) -> tuple[str, str, tuple[object, ...]]:
    """The table, WHERE clause and parameters of refund `ref`'s row."""
    if isinstance(ref, int):
        return "token_refunds", "id = ?", (ref,)
    return "refunds", "charge_point = ? AND transaction_id = ?", ref
