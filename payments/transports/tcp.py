"""The channel protocol over TCP on trio: a payee server and a pipelining payer client.

**Payee** (`serve_payee`). The channels are those of a `PayeeService`, shared with the
process's other transports. Per connection, after the HELLO exchange, two tasks share the work.
The reader decodes every frame that has arrived and queues the payments. The committer hands
everything queued to `PayeeService.receive_batch` as one run: it checks each proof against the
one before it on a trial copy of the channel, verifies only the newest signature (proofs are
cumulative: the newest covers every earlier payment; if the run is refused the proofs are taken
one by one and the bad ones rejected), saves the result (`ChannelStore.save`, a group commit
with every other save in flight) and only then adopts it; the committer then sends the REJECTs
and the ACK of the sequence number that is now durable. While a run is being saved the reader
queues the next one. So an ACK never runs ahead of the disk, and every acknowledged sequence
number is covered by a verified, durable proof.

**Payer** (`open_payer`). `PayerClient.send` signs the next proof and queues its PAY frame
without waiting for an ACK; at most `window` payments are unacknowledged at a time. A writer task
sends whatever is queued in one write, a reader task takes ACKs (each covers every sequence up to
it) and REJECTs. On connect the payer sends HELLO with its latest proof and the payee answers with
its own: a newer one (signed by us, so checked against our key) is adopted, so a payer that lost
its database continues where the payee is; if ours is newer, it is sent again as a PAY, so
payments the payee lost in flight are recovered too. The payee answers HELLO first and only then
REJECTs a refused HELLO proof (by its sequence number); only a REJECT of sequence 0 in place of
its HELLO refuses the session.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING, Final

import trio

from ..channels.connection import Closed, Connection, NeedData
from ..channels.service import PayeeService, reject_code
from ..channels.state import Role
from ..channels.store import ChannelRecord
from ..channels.wire import Ack, Hello, Pay, Reject
from ..errors import (
    CounterpartyRejectedError,
    PaymentError,
    ProtocolError,
    UnexpectedChannelFrameError,
    WrongChannelError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from tangle.protocol.channel import SignedBalanceProof

    from ..channels.core import ChannelCore, PayerChannel
    from ..channels.store import ChannelStore
    from ..channels.wire import Event

READ_SIZE: Final = 1 << 16
DEFAULT_WINDOW: Final = 128
"""Most unacknowledged payments a payer keeps in flight."""
HELLO_TIMEOUT_S: Final = 10.0
CLOSED_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError)
"""What trio raises on a stream the other side broke or that is closed."""


async def receive_event(stream: trio.SocketStream, conn: Connection) -> Event | Closed:
    """The next event of `conn`, reading from `stream` as needed."""
    while True:
        event = conn.next_event()
        if not isinstance(event, NeedData):
            return event
        conn.receive_data(await stream.receive_some(READ_SIZE))


# -- payee -----------------------------------------------------------------------------------


class _PayeeSession:
    """One payer connection on one channel."""

    def __init__(
        self, stream: trio.SocketStream, conn: Connection, service: PayeeService, hello: Hello
    ) -> None:
        self.stream = stream
        self.conn = conn
        self.service = service
        self.network_id = hello.network_id
        self.channel_id = hello.channel_id
        self.acked = 0
        self.durable = 0
        self.pending: list[SignedBalanceProof] = []
        self.arrived = trio.Event()
        self.send_lock = trio.Lock()

    async def send(self, event: Event) -> None:
        data = self.conn.send(event)
        async with self.send_lock:
            await self.stream.send_all(data)

    async def read(self) -> None:
        """Decode every frame that arrived; queue the payments for the committer."""
        conn = self.conn
        while True:
            data = await self.stream.receive_some(READ_SIZE)
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if isinstance(event, Pay):
                    self.pending.append(event.to_proof(self.network_id, self.channel_id))
                elif isinstance(event, NeedData):
                    break
                elif isinstance(event, Closed):
                    return
                elif not isinstance(event, Reject):
                    raise UnexpectedChannelFrameError(
                        type(event).__name__, "not on a one-way channel"
                    )
            if self.pending:
                self.arrived.set()

    async def commit_pending(self) -> tuple[tuple[int, PaymentError], ...]:
        """Hand what is queued to the service as one run (saved before it returns); the
        sequence number and error of each refused proof."""
        proofs, self.pending = self.pending, []
        if not proofs:
            return ()
        with trio.CancelScope(shield=True):  # proofs taken off the queue are never dropped
            taken = await self.service.receive_batch(self.channel_id, proofs)
        self.durable = max(self.durable, taken.sequence)
        return taken.refused

    async def reject(self, refused: tuple[tuple[int, PaymentError], ...]) -> None:
        """Send the REJECTs of refused proofs."""
        for sequence, error in refused:
            await self.send(reject_of(sequence, error))

    async def take(self) -> None:
        """Commit what is queued and send the REJECTs of the refused proofs."""
        await self.reject(await self.commit_pending())

    async def acknowledge(self) -> None:
        """Send the ACK of what is durable, if the payer has not had it yet."""
        if self.durable > self.acked:
            self.acked = self.durable
            await self.send(Ack(sequence=self.durable))

    async def commit(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived = trio.Event()
            await self.take()
            await self.acknowledge()


def reject_of(sequence: int, error: PaymentError) -> Reject:
    """The REJECT that tells the counterparty about `error` (sequence 0: the session)."""
    return Reject(sequence=sequence, code=reject_code(error), reason=str(error)[:200])


async def refuse_session(stream: trio.SocketStream, conn: Connection, error: PaymentError) -> None:
    """Tell the dialer that the session is refused (a REJECT of sequence 0), and why."""
    await stream.send_all(conn.send(reject_of(0, error)))


async def listen(
    session: Callable[[trio.SocketStream, Connection, Hello], Awaitable[None]],
    *,
    host: str,
    port: int,
    task_status: trio.TaskStatus[int],
) -> None:
    """Accept connections on `host:port` (0: any free port) until cancelled; reports the bound
    port through `task_status.started(port)`. Each connection waits at most `HELLO_TIMEOUT_S` for
    the dialer's HELLO, then runs `session(stream, conn, hello)`. A dialer that breaks the
    protocol or goes away ends only its connection; the connection is closed in any case."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    task_status.started(listeners[0].socket.getsockname()[1])

    async def handle(stream: trio.SocketStream) -> None:
        conn = Connection(Role.PAYEE)
        try:
            with trio.fail_after(HELLO_TIMEOUT_S):
                hello = await receive_event(stream, conn)
            if isinstance(hello, Hello):
                await session(stream, conn, hello)
        except* (ProtocolError, *CLOSED_ERRORS, trio.TooSlowError):
            pass  # the dialer broke the protocol or went away: drop the connection
        finally:
            with contextlib.suppress(*CLOSED_ERRORS):
                await stream.aclose()

    await trio.serve_listeners(handle, listeners)


async def dial_hello(stream: trio.SocketStream, conn: Connection, channel: ChannelCore) -> Hello:
    """Send `channel`'s HELLO to the listener and return its answer, waiting at most
    `HELLO_TIMEOUT_S`; `CounterpartyRejectedError` if it refuses the session (a REJECT of sequence
    0). A listener answers HELLO before it refuses anything else (the proof in our HELLO, say), so
    another REJECT in its place breaks the protocol."""
    await stream.send_all(conn.send(Hello.of(channel)))
    with trio.fail_after(HELLO_TIMEOUT_S):
        answer = await receive_event(stream, conn)
    if isinstance(answer, Reject):
        if answer.sequence != 0:
            raise UnexpectedChannelFrameError("Reject", f"of proof {answer.sequence} before HELLO")
        raise CounterpartyRejectedError(answer.code, answer.sequence, answer.reason)
    if not isinstance(answer, Hello):
        raise trio.BrokenResourceError("the other side closed the connection during HELLO")
    return answer


async def _serve_session(
    service: PayeeService, stream: trio.SocketStream, conn: Connection, hello: Hello
) -> None:
    try:
        core = await service.channel(hello.channel_id)
    except PaymentError as e:
        await refuse_session(stream, conn, e)
        return
    if core.terms.network_id != hello.network_id:
        error = WrongChannelError("network_id", core.terms.network_id, hello.network_id)
        await refuse_session(stream, conn, error)
        return
    session = _PayeeSession(stream, conn, service, hello)
    refused: tuple[tuple[int, PaymentError], ...] = ()
    if hello.latest is not None and hello.latest.proof.sequence > core.sequence:
        session.pending.append(hello.latest)  # the payer's newest: payments lost in flight
        refused = await session.commit_pending()
    core = await service.channel(hello.channel_id)
    session.acked = session.durable = core.sequence  # what the service holds is durable
    await session.send(Hello.of(core))
    await session.reject(refused)  # after HELLO: a REJECT before it refuses the session
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.commit)
        await session.read()
        nursery.cancel_scope.cancel()
    # the payer closed its end: keep what arrived, and acknowledge it if it still listens
    await session.take()
    await session.acknowledge()


async def serve_payee(
    service: PayeeService,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept payer connections on `host:port` (0: any free port) until cancelled, for the
    channels of `service`; reports the bound port through `task_status.started(port)`."""
    await listen(partial(_serve_session, service), host=host, port=port, task_status=task_status)


# -- payer -----------------------------------------------------------------------------------


class PayerClient:
    """A payer's session with the payee over one TCP connection (see the module docstring)."""

    def __init__(
        self,
        channel: PayerChannel,
        stream: trio.SocketStream,
        conn: Connection,
        *,
        window: int,
        store: ChannelStore | None,
        on_ack: Callable[[int], None] | None,
    ) -> None:
        self.channel = channel
        self._stream = stream
        self._conn = conn
        self._window = window
        self._store = store
        self._on_ack = on_ack
        self._acked = 0
        self._outbox: list[bytes] = []
        self._has_output = trio.Event()
        self._progress = trio.Event()
        self._rejected: dict[int, CounterpartyRejectedError] = {}
        self._failure: BaseException | None = None
        self._saved = 0

    @property
    def acked(self) -> int:
        """The highest sequence number the payee has acknowledged (made durable)."""
        return self._acked

    async def send(self, amount: int, tag: bytes = b"") -> int:
        """Pay `amount` without waiting for the ACK; returns the payment's sequence number. Waits
        while `window` payments are unacknowledged."""
        if self._failure is not None:
            raise self._failure
        while self.channel.sequence - self._acked >= self._window:
            await self._wait_progress()
        signed = self.channel.pay(amount)
        self._outbox.append(self._conn.send(Pay.of(signed, tag)))
        self._has_output.set()
        await trio.lowlevel.checkpoint()  # let the writer send it now: pipelining, not batching
        return signed.proof.sequence

    async def wait_acked(self, sequence: int) -> None:
        """Return once `sequence` is acknowledged; `CounterpartyRejectedError` if the payee refused
        it."""
        while self._acked < sequence:
            rejected = self._rejected.get(sequence)
            if rejected is not None:
                raise rejected
            await self._wait_progress()

    async def pay(self, amount: int, tag: bytes = b"") -> int:
        """Pay `amount` and wait until the payee acknowledged it; returns its sequence."""
        sequence = await self.send(amount, tag)
        await self.wait_acked(sequence)
        return sequence

    async def drain(self) -> None:
        """Wait until every payment sent so far is acknowledged."""
        await self.wait_acked(self.channel.sequence)

    async def _wait_progress(self) -> None:
        if self._failure is not None:
            raise self._failure
        await self._progress.wait()

    def _wake(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def _write(self) -> None:
        while True:
            await self._has_output.wait()
            self._has_output = trio.Event()
            data, self._outbox = b"".join(self._outbox), []
            try:
                await self._stream.send_all(data)
            except CLOSED_ERRORS as e:
                self._failure = e
                self._wake()
                return

    async def _read(self) -> None:
        try:
            while True:
                event = await receive_event(self._stream, self._conn)
                if isinstance(event, Ack):
                    if event.sequence > self.channel.sequence:
                        raise UnexpectedChannelFrameError("Ack", "for a payment never sent")
                    if event.sequence > self._acked:
                        self._acked = event.sequence
                        if self._on_ack is not None:
                            self._on_ack(event.sequence)
                elif isinstance(event, Reject):
                    error = CounterpartyRejectedError(event.code, event.sequence, event.reason)
                    if event.sequence == 0:
                        raise error
                    self._rejected[event.sequence] = error
                elif isinstance(event, Closed):
                    raise trio.BrokenResourceError("the payee closed the connection")
                else:
                    raise UnexpectedChannelFrameError(
                        type(event).__name__, "not on a one-way channel"
                    )
                self._wake()
        except (PaymentError, *CLOSED_ERRORS) as e:
            self._failure = e
            self._wake()

    async def _persist(self) -> None:
        """Keep the payer's store at the newest proof it has signed (coalesced saves)."""
        store = self._store
        if store is None:
            return
        with contextlib.suppress(PaymentError, *CLOSED_ERRORS):
            while True:
                if self.channel.sequence == self._saved:
                    await self._wait_progress()
                    continue
                record = ChannelRecord.of(self.channel, Role.PAYER)
                await store.save(record)
                self._saved = record.sequence


@contextlib.asynccontextmanager
async def open_payer(
    channel: PayerChannel,
    host: str,
    port: int,
    *,
    store: ChannelStore | None = None,
    window: int = DEFAULT_WINDOW,
    on_ack: Callable[[int], None] | None = None,
) -> AsyncIterator[PayerClient]:
    """Connect to the payee at `host:port`, exchange HELLOs (recovering the channel's newest
    state, see the module docstring) and yield a `PayerClient`. On exit, waits for the ACKs of
    everything sent, then closes. `store`, if given, keeps the payer's newest proof durable."""
    stream = await trio.open_tcp_stream(host, port)
    conn = Connection(Role.PAYER)
    async with stream:
        answer = await dial_hello(stream, conn, channel)
        if answer.latest is not None:
            channel.recover(answer.latest)
        payee_sequence = 0 if answer.latest is None else answer.latest.proof.sequence
        client = PayerClient(channel, stream, conn, window=window, store=store, on_ack=on_ack)
        client._acked = payee_sequence
        if store is not None:
            await store.save(ChannelRecord.of(channel, Role.PAYER))
            client._saved = channel.sequence
        latest = channel.latest
        if latest is not None and latest.proof.sequence > payee_sequence:
            await stream.send_all(conn.send(Pay.of(latest)))  # the payee missed these
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client._read)
                nursery.start_soon(client._write)
                nursery.start_soon(client._persist)
                yield client
                await client.drain()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise single_error(group) from None
        if store is not None:
            await store.save(ChannelRecord.of(channel, Role.PAYER))


def single_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception of a nursery's group (the background tasks never raise), else the
    group itself."""
    return group.exceptions[0] if len(group.exceptions) == 1 else group
