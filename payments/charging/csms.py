"""The CSMS process: OCPP 1.6J and 2.0.1 charge points over WebSockets, on asyncio (uvloop's
event loop in its own process: `run_process`).

`Csms` is the service both versions' handlers (`csms16`, `csms201`) call: it turns their events
into the session core's (`session.SessionBook`), makes each durable (`store.CsmsStore`) before
the charger gets its answer, bills each session once when it ends, and carries out the core's
stop decisions by asking the station to stop (RemoteStopTransaction / RequestStopTransaction).
A restarted CSMS first rebuilds every unsettled session from its store (`restore`).

`serve` listens for charge points at `ws://HOST:PORT/ocpp/<station id>`, negotiating the
subprotocol `ocpp2.0.1` or `ocpp1.6`, and authenticates them with OCPP security profile 1 (HTTP
Basic, the station id and its password) in `process_request`, before the WebSocket opens: an
unknown station or a wrong password gets 401 (and a WARNING line, bounded per station id), a
missing or unknown subprotocol 400, and a store that fails to read the station's password 503
(the station retries; the error is logged under its own key, `STORE_FAILED`, apart from the
`websockets` lines any TCP client causes).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import gc
import logging
import sqlite3
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio.lowlevel
from ocpp import messages as ocpp_messages  # type: ignore[import-untyped]
from ocpp.exceptions import (  # type: ignore[import-untyped]
    OCPPError,
    UnknownCallErrorCodeError,
)
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from .csms16 import Station16
from .csms201 import Station201
from .errors import (
    SessionError,
    StationAuthError,
    StationCallError,
    StationTimeoutError,
    TokenRefusedError,
)
from .log_limit import CLIENTS, LimitedLogger, LogLimiter
from .pay_frames import PAY_PATH, PAY_SUBPROTOCOL
from .session import (
    MAX_EVENTS_PER_SESSION,
    MAX_ID_LENGTH,
    ChargingSession,
    SessionBook,
    SessionLimits,
    StopSession,
    TransactionEvent,
)
from .store import Bill, Binding, CsmsStore

if sys.platform != "win32":
    import uvloop

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine

    from websockets.asyncio.server import Server
    from websockets.http11 import Request, Response

    from .session import Pricing
    from .station import StationConnection

    Authorizer = Callable[[str], Awaitable[Binding | None]]
    """Decides an id token: how a session started with it is paid, or None to refuse it."""

SUBPROTOCOLS: Final = (Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6"))
MAX_MESSAGE: Final = 64 * 1024
"""The largest OCPP frame accepted (websockets closes the connection beyond it)."""
MAX_RECENT_STOPS: Final = 1024
MAX_TOKENS: Final = 100_000
"""Id tokens indexed to their latest session (the least recently started are forgotten)."""
LOG: Final = logging.getLogger(__name__)
STORE_FAILED: Final = ("the CSMS store", "station login failed")
"""The key (source, kind) of the lines about the store failing at a station's login: the
operator's own fault, under a key no client's input shares (the `websockets` server's lines,
which any TCP client causes, are all under `log_limit.CLIENTS`) and outside the cap on all lines
(`LogLimiter.max_lines`), so that a crowd of clients that never log in cannot take its lines'
place."""
TICK_SLICE: Final = 256
"""Sessions `Csms.tick` decides at a time: every charger's answer waits out a slice (deciding
every session at once held them up 67 ms at 64,000 sessions, 64 each at 1,000 charge points)."""
GC_YOUNG_THRESHOLD: Final = 20_000
"""Net allocations of tracked objects between two collections of the youngest generation in a
CSMS process (`tune_process`; Python's default is 700)."""
SWITCH_INTERVAL_S: Final = 0.0001
"""How long a thread of a CSMS process waits for the GIL before it asks the running one to drop
it (`tune_process`; Python's default is 5 ms)."""


async def accept_every_token(id_token: str) -> Binding | None:
    """The authorizer of a CSMS without payments: every token, no limits."""
    return Binding(id_token=id_token, channel_id=None, limits=SessionLimits(), paid=0)


@dataclass(slots=True)
class Csms:
    """The charging service behind every station connection (see the module docstring)."""

    store: CsmsStore
    pricing: Pricing
    authorize: Authorizer = accept_every_token
    channel_pricing: Pricing | None = None
    """The price of sessions paid through a channel (the channel's per-kWh tariff, which the
    driver's wallet checks every bill against); `pricing` prices the others."""
    clock: Callable[[], float] = time.time
    log_limit: LogLimiter = field(default_factory=LogLimiter)
    """Bounds the lines stations' and clients' input causes (`log_limit`): a charger decides
    how often it is refused, a TCP client how often a handshake fails."""
    book: SessionBook = field(init=False)
    stations: dict[str, StationConnection] = field(default_factory=dict)
    stops: deque[StopSession] = field(default_factory=lambda: deque(maxlen=MAX_RECENT_STOPS))
    """The latest stop decisions, newest last."""
    bindings: dict[tuple[str, str], Binding] = field(default_factory=dict)
    """How each open session is paid (as saved in the store)."""
    by_token: dict[str, tuple[str, str]] = field(default_factory=dict)
    """The latest session each accepted id token started (kept after the session closes, so a
    driver can still read its final bill; one entry per token)."""
    on_bill: list[Callable[[Bill], Awaitable[None]]] = field(default_factory=list)
    on_event: list[Callable[[ChargingSession], None]] = field(default_factory=list)
    """Called (synchronously, cheaply) with a session each time an event was applied to it."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.book = SessionBook(self.pricing)

    async def restore(self) -> int:
        """Rebuild every unbilled session, and every billed one a driver still owes on, from
        the store; returns how many."""
        keys = await self.store.unsettled()
        for key in keys:
            binding = await self.store.binding(key)
            session = self.book.open(
                key, binding.limits if binding else None, pricing=self._pricing_of(binding)
            )
            session.paid = binding.paid if binding else 0
            if binding is not None:
                self.bindings[key] = binding
            if binding is not None and binding.id_token is not None:
                self._index_token(binding.id_token, key)
            for event in await self.store.events(key):
                session.apply(event)
            if session.ended:
                await self._bill(session)
        return len(keys)

    async def check_station(self, station: str, password: str) -> None:
        """`StationAuthError` unless `password` is `station`'s."""
        await self.store.check_password(station, password)

    async def start(self, event: TransactionEvent) -> bool:
        """A Started event with an id token: bind the session (if the token is accepted; a
        resent start keeps the binding it got the first time) and apply it. Returns whether the
        token was accepted."""
        binding = await self.store.binding(event.key)
        if binding is None and event.id_token is not None:
            try:
                binding = await self.authorize(event.id_token)
            except TokenRefusedError as e:
                self.log_limit.log(LOG, logging.INFO, event.charge_point, "token refused", "%s", e)
            if binding is not None and not await self.store.bind(event.key, binding):
                binding = None  # its prepaid amount went to another session meanwhile
        if binding is not None:
            session = self.book.open(event.key, binding.limits, pricing=self._pricing_of(binding))
            session.paid = max(session.paid, binding.paid)
            self.bindings[event.key] = binding
            self._index_token(binding.id_token or "", event.key)
        await self.event(event)
        return binding is not None

    def _index_token(self, id_token: str, key: tuple[str, str]) -> None:
        self.by_token.pop(id_token, None)
        self.by_token[id_token] = key
        while len(self.by_token) > MAX_TOKENS:  # the least recently started token goes
            del self.by_token[next(iter(self.by_token))]

    def _pricing_of(self, binding: Binding | None) -> Pricing | None:
        if binding is not None and binding.channel_id is not None:
            return self.channel_pricing
        return None

    def sample_seq(self, key: tuple[str, str], ms: int, register_wh: int | None) -> int:
        """The seq of a 1.6 sample of session `key` (`ChargingSession.sample_seq`; a session
        not in the book, new or billed and closed, has none applied)."""
        session = self.book.sessions.get(key) or ChargingSession(key, self.pricing)
        return session.sample_seq(ms, register_wh)

    async def event(self, event: TransactionEvent) -> ChargingSession | None:
        """Apply one transaction event once, durably, then act on the core's decision. An
        event of a session already billed and closed (a late offline event) is kept in the
        store; the bill stands (the energy is the register's highest reading, which the Ended
        event carried). A `SessionError` refuses it with nothing applied: `EventConflictError`
        for one that contradicts the session, a seq applied with another reading included."""
        if event.key not in self.book.sessions and await self.store.bill_of(event.key):
            if await self.store.event_count(event.key) < MAX_EVENTS_PER_SESSION:
                await self.store.record(event)
            return None
        session = self.book.open(event.key)
        if session.repeated(event):
            return session
        session.check(event)
        await self.store.record(event)
        if session.repeated(event):  # applied while the commit was in flight
            return session
        session.apply(event)
        for hook in self.on_event:
            hook(session)
        self.decide(session)
        if session.ended:
            await self._bill(session)
        return session

    def decide(self, session: ChargingSession, now_s: int | None = None) -> None:
        """Ask the station to stop if the core says so."""
        stop = session.decide(now_s)
        if stop is not None:
            self.stops.append(stop)
            self._spawn(self._stop(stop), stop.charge_point)

    async def _bill(self, session: ChargingSession) -> None:
        bill = Bill(
            charge_point=session.key[0],
            transaction_id=session.key[1],
            energy_wh=session.energy_wh,
            duration_s=session.duration_s,
            amount=session.billed(),
        )
        if await self.store.bill(bill):
            for hook in self.on_bill:  # after the charger's answer; a hook logs its failures
                self._spawn(hook(bill), bill.charge_point)
        self.settle_if_done(session)

    def settle_if_done(self, session: ChargingSession) -> None:
        """Forget an ended session once nothing more is expected for it: at once if it is not
        paid through a channel (its bill is final), else once the driver has paid it all."""
        binding = self.bindings.get(session.key)
        paid_by_channel = binding is not None and binding.channel_id is not None
        if session.ended and (not paid_by_channel or session.due() == 0):
            self.book.close(session.key)
            self.bindings.pop(session.key, None)

    async def _stop(self, stop: StopSession) -> None:
        connection = self.stations.get(stop.charge_point)
        if connection is None:
            self.log_limit.log(
                LOG,
                logging.WARNING,
                stop.charge_point,
                "cannot stop",
                "cannot stop %s/%s: not connected",
                stop.charge_point,
                stop.transaction_id,
            )
            return
        await connection.request_stop(stop.transaction_id)

    def _spawn(self, work: Awaitable[None], station: str) -> None:
        """Run `work` (a call to `station`, or a bill hook of one of its sessions) apart from
        the message that caused it. Its failure is logged here, where it ends (a task's
        exception nobody retrieves is reported only when the task is collected, without the
        call it came from), within `station`'s bound (`log_limit`: a station that reconnects in
        a loop causes a call per reconnection). A station that times out, hangs up or answers
        outside the schema (`OCPPError`) is a warning; anything else is a bug, logged with its
        traceback."""

        async def run() -> None:
            try:
                await work
            except (TimeoutError, ConnectionClosed, SessionError, OCPPError) as e:
                self.log_limit.log(
                    LOG, logging.WARNING, station, "call failed", "station call failed: %r", e
                )
            except Exception:
                self.log_limit.log(
                    LOG,
                    logging.ERROR,
                    station,
                    "work failed unexpectedly",
                    "%s: work of the station failed unexpectedly (a call or a bill hook)",
                    station,
                    exc_info=True,
                )

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def resend_stops(self, station: str) -> None:
        """Ask a (re)connected station again to stop each of its running sessions the core
        decided to stop (the station may have been offline when the decision was taken)."""
        for session in self.book.at(station):  # not every session's: a reconnect storm
            reason = session.stopped_for
            if reason is not None and not session.ended:
                stop = StopSession(
                    charge_point=station, transaction_id=session.key[1], reason=reason
                )
                self._spawn(self._stop(stop), station)

    async def tick(self) -> None:
        """Check the prepaid time limits against the clock, `TICK_SLICE` sessions between two
        returns to the event loop, and count the log lines suppressed in windows closed since
        (`LogLimiter.flush`)."""
        self.log_limit.flush()
        now = int(self.clock())
        for done, session in enumerate(list(self.book.sessions.values()), 1):
            self.decide(session, now)  # one closed meanwhile is ended: nothing to decide
            if done % TICK_SLICE == 0:
                await asyncio.sleep(0)

    async def remote_start(self, station: str, id_token: str, connector: int = 1) -> bool:
        """Ask `station` to start a session for `id_token` (1.6 RemoteStartTransaction, 2.0.1
        RequestStartTransaction); True if it accepted (`_ask` on its failures)."""
        return await self._ask(station, lambda c: c.request_start(id_token, connector))

    async def set_charging_profile(self, station: str, connector: int, limit_w: int) -> bool:
        """Cap `station`'s connector at `limit_w` watts (a TxDefaultProfile); True if it
        accepted (`_ask` on its failures)."""
        return await self._ask(station, lambda c: c.set_power_limit(connector, limit_w))

    async def _ask(
        self, station: str, call: Callable[[StationConnection], Awaitable[bool]]
    ) -> bool:
        """`call` on `station`'s connection, its failures named: `StationAuthError` if it is
        not connected, `StationTimeoutError` if it did not answer in time (a station that hung
        up after the call was sent too), `StationCallError` for a CALLERROR (of a code the
        library knows or not), an answer outside the schema, or a connection closed as the
        call was sent."""
        connection = self._connected(station)
        try:
            return bool(await call(connection))
        except TimeoutError:
            raise StationTimeoutError(station, "no answer in time") from None
        except (OCPPError, UnknownCallErrorCodeError) as e:  # the latter: a code the library
            # does not name (2.0.1's RpcFrameworkError, a maker's own), not an OCPPError
            raise StationCallError(station, f"answered {type(e).__name__}") from None
        except ConnectionClosed:
            raise StationCallError(station, "disconnected before it answered") from None

    def _connected(self, station: str) -> StationConnection:
        connection = self.stations.get(station)
        if connection is None:
            raise StationAuthError(station)
        return connection


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def station_of(path: str) -> str:
    """The station id in a request path `/ocpp/<id>` (or just `/<id>`)."""
    return path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


async def _connection_handler(csms: Csms, connection: ServerConnection) -> None:
    station = station_of(connection.request.path if connection.request else "")
    kind = Station201 if connection.subprotocol == "ocpp2.0.1" else Station16
    handler = kind(station, connection, csms)
    previous = csms.stations.get(station)
    csms.stations[station] = handler
    if previous is not None:  # the station reconnected: its old socket is dead
        await previous.close()
    csms.resend_stops(station)
    try:
        await handler.start()
    except ConnectionClosed:
        pass
    finally:
        if csms.stations.get(station) is handler:
            del csms.stations[station]


@contextlib.asynccontextmanager
async def serve_csms(
    csms: Csms,
    host: str = "127.0.0.1",
    port: int = 0,
    pay: Callable[[ServerConnection], Awaitable[None]] | None = None,
) -> AsyncIterator[Server]:
    """Listen for charge points (see the module docstring) until the context exits; with
    `pay`, drivers' payment streams on `/pay/<token>` too (`pay_stream.payment_stream`)."""

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if pay is not None and request.path.startswith(PAY_PATH):
            return None
        station = station_of(request.path)
        credentials = _basic_auth(request)
        if credentials is None:
            return _refuse_login(csms, connection, station, "no credentials")
        if credentials[0] != station:
            return _refuse_login(csms, connection, station, "another station's credentials")
        try:
            await csms.check_station(station, credentials[1])
        except StationAuthError:
            return _refuse_login(csms, connection, station, "unknown station or wrong password")
        except sqlite3.Error as e:  # else `websockets` logs it under the clients' key, as a 500
            source, kind = STORE_FAILED
            csms.log_limit.log(
                LOG,
                logging.ERROR,
                source,
                f"{kind} ({type(e).__name__})",
                "station %r not logged in: the store failed: %r",
                station[:MAX_ID_LENGTH],  # any client names it (the URL's last segment)
                e,
                capped=False,
                exc_info=True,
            )
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "station logins are unavailable, retry later\n"
            )
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        if not {p.strip() for p in offered.split(",")} & set(SUBPROTOCOLS):
            return connection.respond(HTTPStatus.BAD_REQUEST, "no OCPP subprotocol offered\n")
        return None

    async def handler(connection: ServerConnection) -> None:
        if pay is not None and connection.request and connection.request.path.startswith(PAY_PATH):
            await pay(connection)
            return
        await _connection_handler(csms, connection)

    # The `ocpp` library validates a message its compiled check refuses (see `schemas`) in a
    # worker thread by default; that holds the GIL all the same, so validate on the loop.
    ocpp_messages.ASYNC_VALIDATION = False
    # Before the first charger connects, what would otherwise hold every charger's answer up
    # the first time it is needed: the payload checks of each action, compiled once (1-13 ms
    # each), and anyio's asyncio backend, imported at anyio's first call (17-30 ms, at the
    # first payment: the payee service is a library on anyio and takes anyio locks).
    Station16.compile_checks()
    Station201.compile_checks()
    await anyio.lowlevel.checkpoint()
    async with serve(
        handler,
        host,
        port,
        subprotocols=[*SUBPROTOCOLS, *([PAY_SUBPROTOCOL] if pay else [])],
        process_request=process_request,
        max_size=MAX_MESSAGE,
        ping_interval=None,
        compression=None,  # no permessage-deflate: a zlib pass each way per small OCPP frame
        logger=LimitedLogger(logging.getLogger("websockets.server"), csms.log_limit, CLIENTS),
    ) as server:
        ticker = asyncio.create_task(_tick_forever(csms))
        try:
            yield server
        finally:
            for task in (ticker, *csms._tasks):
                task.cancel()
            await asyncio.gather(ticker, *csms._tasks, return_exceptions=True)


T = TypeVar("T")


def run_process(main: Coroutine[Any, Any, T]) -> T:
    """Run a CSMS process's `main` on uvloop's event loop (asyncio's API on libuv: less CPU per
    OCPP message than asyncio's own loop, see `benchmarks.charging`), or on asyncio's own loop
    where uvloop has no build (Windows). One loop per process either way."""
    if sys.platform == "win32":
        return asyncio.run(main)
    return uvloop.run(main)


def tune_process() -> None:
    """Set this process's interpreter for a CSMS.

    *The collector* collects the youngest generation every `GC_YOUNG_THRESHOLD` net
    allocations. At Python's 700, a collection comes every few messages and promotes the
    objects of every message then waiting for its commit (its frames, futures, payload); the
    promoted pile up until a full collection scans every station's connection, a pause of tens
    of milliseconds under load that every message in flight waits out (`benchmarks.charging`
    reports the collector's pauses). Those objects are freed by reference counting once
    answered; fewer young collections promote fewer.

    *The GIL's switch interval* is `SWITCH_INTERVAL_S`. The store's sqlite calls run on
    aiosqlite's thread, which lets go of the GIL around every step of a statement (each row of
    a group commit's executemany, the commit's fsync) and must take it back from the event
    loop's thread to go on. At Python's 5 ms, a loop busy with chargers' messages hands it back
    only when that interval runs out, once per row: a group commit of a dozen rows, one fsync
    long on its own, took tens of milliseconds (`benchmarks.charging`: `csms_commit_p99_ms`
    well over `csms_commit_fsync_p99_ms`), and every charger in it waited that long."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def _refuse_login(csms: Csms, connection: ServerConnection, station: str, reason: str) -> Response:
    """401, and a WARNING line within `station`'s bound (`Csms.log_limit`): `websockets` logs a
    refused handshake at INFO only, and an operator must see a station's password being
    guessed. The id, from the request's path, is cut to `MAX_ID_LENGTH` characters in the key
    and the line: any client chooses it."""
    station = station[:MAX_ID_LENGTH]
    address = connection.remote_address
    client = address[0] if isinstance(address, tuple) and address else "unknown"
    csms.log_limit.log(
        LOG,
        logging.WARNING,
        station,
        "login refused",
        "station %r not logged in from %s: %s",
        station,
        client,
        reason,
    )
    response = connection.respond(HTTPStatus.UNAUTHORIZED, "station unknown or wrong password\n")
    response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
    return response


async def _tick_forever(csms: Csms, every_s: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        await csms.tick()
