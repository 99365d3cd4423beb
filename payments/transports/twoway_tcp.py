"""Two-way channels over TCP on trio: sessions in which either operator pays the other.

Both ends of a connection hold a `TwoWaySession` over the frames of `wire.py`. The dialer
(`open_two_way`) speaks first, as a one-way payer does (its `Connection` role is PAYER whichever
party of the channel it is); the listener (`serve_two_way`) answers. Then the session is
symmetric.

**HELLO.** Each side sends its latest co-signed state. A newer one from the other side (both
signatures checked: `TwoWayChannel.recover`) is adopted and saved before the session goes on, so
a side that lost its database continues from the other's latest state. The listener saves what
it adopts before it answers with its own HELLO; a forged state is refused with a REJECT of the
session (sequence 0).

**Paying** (`TwoWaySession.pay`). The payer proposes the state that pays the amount
(`TwoWayChannel.propose`, a PROPOSE frame signed by it) and waits. The other side checks it
(`TwoWayChannel.countersign`: never a lower share for itself, never at or below its own
outstanding proposal), saves the co-signed state (`ChannelStore.save`: a group commit, fsync'd)
and only then answers COUNTERSIGN; the payer completes the state (`TwoWayChannel.complete`) and
saves it before `pay` returns. A refused proposal is answered with a REJECT and the error's code
(`service.reject_code`) and changes nothing. When two proposals cross, the higher one is
countersigned and the lower one refused as stale (see `twoway.py`); `pay` then proposes its
payment again on top of the new state. Each side has at most one proposal outstanding. If the
session ends after the proposal was sent and before its co-signed state is saved here, `pay`
raises `PaymentInDoubtError` (with the co-signed state if the countersignature arrived): the
other party may hold the payment, so the caller reconnects, and the HELLO exchange tells.

Every change of the channel is made on a copy (`TwoWayChannel.copy`), saved, and only then
adopted, the save and the adoption shielded from cancellation (a new session's takeover), so
the channel in memory is never ahead of the disk and a HELLO never announces an unsaved state.
All of it, and the frame that announces the change, happens under the session's lock: no frame
ever announces a state before it is durable, and no proposal rests on a state that is not saved
yet. A failed save (`StoreError`) changes nothing and ends the session. A new connection on a
channel ends the session already open on it (its peer may be gone without closing).
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING, cast

import trio

from tangle.protocol.codec import U64_MAX

from ..channels.connection import Closed, Connection
from ..channels.core import check_uint
from ..channels.state import Role
from ..channels.store import ChannelRecord
from ..channels.twoway import Proposal
from ..channels.wire import Countersign, Hello, Propose, Reject, RejectCode
from ..errors import (
    CounterpartyRejectedError,
    InvalidAmountError,
    PaymentError,
    PaymentInDoubtError,
    StoreError,
    UnexpectedChannelFrameError,
    UnknownChannelError,
    WrongChannelError,
)
from .tcp import (
    CLOSED_ERRORS,
    dial_hello,
    listen,
    receive_event,
    refuse_session,
    reject_of,
    single_error,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import ChannelId, Signature

    from ..channels.store import ChannelStore
    from ..channels.twoway import TwoWayChannel
    from ..channels.wire import Event


class TwoWaySession:
    """One party's side of a two-way channel session (see the module docstring)."""

    def __init__(
        self,
        channel: TwoWayChannel,
        store: ChannelStore,
        stream: trio.SocketStream,
        conn: Connection,
    ) -> None:
        self.channel = channel
        self._store = store
        self._stream = stream
        self._conn = conn
        self._lock = trio.Lock()
        """Held while the channel changes, its save, and the frame that announces it."""
        self._paying = trio.Lock()
        """Held by the one `pay` whose proposal is outstanding."""
        self._awaiting = 0
        """The sequence of our outstanding proposal (0: none)."""
        self._answer: SignedBalanceProof | CounterpartyRejectedError | None = None
        self._answered = trio.Event()
        self._failure: BaseException | None = None

    async def pay(self, amount: int) -> SignedBalanceProof:
        """Pay `amount` to the other party; returns the new co-signed state once it is durable
        at both. `CounterpartyRejectedError` if the other party refused it and `InvalidAmountError`
        beyond our share of the deposit (nothing paid); the reason the session ended if it ended
        before the proposal was sent (nothing paid), `PaymentInDoubtError` if after."""
        check_uint("amount", amount, U64_MAX, minimum=1)
        async with self._paying:
            while True:
                proposal = await self._propose(amount)
                while self._answer is None:
                    failure = self._failure
                    if isinstance(failure, PaymentInDoubtError):
                        raise failure
                    if failure is not None:
                        sequence = proposal.proof.sequence
                        raise PaymentInDoubtError(sequence, str(failure)) from failure
                    await self._answered.wait()
                answer, self._answer, self._awaiting = self._answer, None, 0
                if not isinstance(answer, CounterpartyRejectedError):
                    return answer
                crossed = self.channel.sequence > proposal.proof.sequence
                if answer.code != RejectCode.STALE_PROOF or not crossed:
                    raise answer  # refused for a reason of its own, not a crossing proposal

    async def _propose(self, amount: int) -> Proposal:
        async with self._lock:
            self._check_failure()
            channel = self.channel
            if amount > channel.own_balance:
                raise InvalidAmountError("amount", amount, f"above our {channel.own_balance}")
            paid_by_payer = channel.role is Role.PAYER
            balance = channel.payee_balance + (amount if paid_by_payer else -amount)
            proposal = channel.propose(balance)
            self._awaiting = proposal.proof.sequence
            self._answer = None  # an answer to a proposal whose `pay` was cancelled
            self._answered = trio.Event()
            await self._send(
                Propose(
                    sequence=proposal.proof.sequence,
                    payee_balance=balance,
                    signature=proposal.signature,
                )
            )
        return proposal

    def _check_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _send(self, event: Event) -> None:
        await self._stream.send_all(self._conn.send(event))

    async def _adopt(self, trial: TwoWayChannel) -> None:
        """Save `trial` (a changed copy of the channel), then adopt it; neither is cancelled."""
        with trio.CancelScope(shield=True):
            await self._store.save(ChannelRecord.of(trial, trial.role))
            self.channel.adopt(trial)

    async def _recover(self, latest: SignedBalanceProof | None) -> None:
        """Save the other side's HELLO state if it is newer than ours, and adopt it."""
        async with self._lock:
            trial = self.channel.copy()
            if latest is not None and trial.recover(latest):
                await self._adopt(trial)

    async def _run(self) -> None:
        """Answer the other side's frames until it closes or breaks the protocol; the reason
        the session ended is raised by the next `pay`."""
        try:
            while True:
                event = await receive_event(self._stream, self._conn)
                if isinstance(event, Propose):
                    await self._countersign(event)
                elif isinstance(event, Countersign):
                    await self._complete(event)
                elif isinstance(event, Reject):
                    self._refused(event)
                elif isinstance(event, Closed):
                    raise trio.BrokenResourceError("the other party closed the session")
                else:
                    raise UnexpectedChannelFrameError(
                        type(event).__name__, "not on a two-way channel"
                    )
        except (PaymentError, *CLOSED_ERRORS) as e:
            self._failure = e
            self._answered.set()

    async def _countersign(self, event: Propose) -> None:
        async with self._lock:
            trial = self.channel.copy()
            proof = trial.balance_proof(event.sequence, event.payee_balance)
            try:
                signed = trial.countersign(Proposal(proof=proof, signature=event.signature))
            except PaymentError as e:
                await self._send(reject_of(event.sequence, e))
                return
            await self._adopt(trial)
            ours = signed.payer_signature if trial.role is Role.PAYER else signed.payee_signature
            # a co-signed state carries both signatures
            await self._send(
                Countersign(sequence=event.sequence, signature=cast("Signature", ours))
            )

    async def _complete(self, event: Countersign) -> None:
        async with self._lock:
            trial = self.channel.copy()
            signed = trial.complete(event.sequence, event.signature)
            try:
                await self._adopt(trial)
            except StoreError as e:
                raise PaymentInDoubtError(event.sequence, str(e), signed=signed) from e
            self._answer = signed
            self._answered.set()

    def _refused(self, event: Reject) -> None:
        error = CounterpartyRejectedError(event.code, event.sequence, event.reason)
        if event.sequence == 0:
            raise error
        if event.sequence != self._awaiting:
            raise UnexpectedChannelFrameError(
                "Reject", f"no proposal {event.sequence} is outstanding"
            )
        self._answer = error
        self._answered.set()


# -- listener ---------------------------------------------------------------------------------


class _Sessions:
    """At most one live session per channel: a new connection ends the old session."""

    def __init__(self) -> None:
        self.locks: dict[ChannelId, trio.Lock] = {}
        self.scopes: dict[ChannelId, trio.CancelScope] = {}

    def take_over(self, channel_id: ChannelId) -> trio.Lock:
        old = self.scopes.get(channel_id)
        if old is not None:
            old.cancel()
        return self.locks.setdefault(channel_id, trio.Lock())


async def _serve_session(
    channels: Mapping[ChannelId, TwoWayChannel],
    store: ChannelStore,
    sessions: _Sessions,
    on_session: Callable[[TwoWaySession], Awaitable[None]] | None,
    stream: trio.SocketStream,
    conn: Connection,
    hello: Hello,
) -> None:
    channel = channels.get(hello.channel_id)
    if channel is None:
        await refuse_session(stream, conn, UnknownChannelError(hello.channel_id))
        return
    if channel.terms.network_id != hello.network_id:
        error = WrongChannelError("network_id", channel.terms.network_id, hello.network_id)
        await refuse_session(stream, conn, error)
        return
    async with sessions.take_over(hello.channel_id):
        with trio.CancelScope() as scope:
            sessions.scopes[hello.channel_id] = scope
            session = TwoWaySession(channel, store, stream, conn)
            try:
                await session._recover(hello.latest)
            except PaymentError as e:
                await refuse_session(stream, conn, e)
                return
            await session._send(Hello.of(channel))
            async with trio.open_nursery() as nursery:
                if on_session is not None:
                    nursery.start_soon(on_session, session)
                await session._run()
                nursery.cancel_scope.cancel()
        if sessions.scopes.get(hello.channel_id) is scope:
            del sessions.scopes[hello.channel_id]


async def serve_two_way(
    channels: Mapping[ChannelId, TwoWayChannel],
    store: ChannelStore,
    *,
    on_session: Callable[[TwoWaySession], Awaitable[None]] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept two-way sessions on `host:port` (0: any free port) until cancelled, for the
    `channels` this party holds (by channel id), saving their states in `store`; reports the
    bound port through `task_status.started(port)`. `on_session(session)`, if given, runs while
    each session is open (this side pays through it) and is cancelled when the session ends; a
    broken connection ends only its session, any other error it raises ends the server."""
    session = partial(_serve_session, channels, store, _Sessions(), on_session)
    await listen(session, host=host, port=port, task_status=task_status)


# -- dialer -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_two_way(
    channel: TwoWayChannel, store: ChannelStore, host: str, port: int
) -> AsyncIterator[TwoWaySession]:
    """Connect to the other party at `host:port`, exchange HELLOs (recovering the newest
    co-signed state, see the module docstring) and yield the session; states are saved in
    `store`. `CounterpartyRejectedError` if the other party refuses the session."""
    stream = await trio.open_tcp_stream(host, port)
    conn = Connection(Role.PAYER)
    async with stream:
        answer = await dial_hello(stream, conn, channel)
        session = TwoWaySession(channel, store, stream, conn)
        await session._recover(answer.latest)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session._run)
                yield session
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise single_error(group) from None
