"""The simulated side of `benchmarks.charging`: the drivers' keys and channels, and one simulator
process holding many `ocpp` library charge points (see that module's docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import sys
import time
from typing import Any, Final

from websockets.exceptions import InvalidHandshake

from coordinator.signers import KeySigner
from payments.channels.core import ChannelTerms, PayerChannel
from payments.charging.pay_client import PaymentStream
from payments.charging.payment import DriverWallet
from payments.charging.simulator import Charger16, Charger201, connect_charger
from payments.payperuse.metering import Tariff
from tangle.protocol.ids import ChannelId, blake2b_256

NETWORK: Final = 1
PASSWORD: Final = "benchmark-password"
TARIFF: Final = Tariff.per_kwh(300)
STEP_WH: Final = 50
CPO: Final = KeySigner(blake2b_256(b"benchmarks.charging cpo"))
CONNECT_TRIES: Final = 3
MAX_SAMPLES: Final = 100_000
"""Loop lag samples and garbage collector pauses a process keeps (a run is minutes long)."""
HANDSHAKES: Final = 8
"""Handshakes a simulator process has in flight at once (each costs the CSMS an scrypt: more
at once and some wait past the server's 10 s opening timeout)."""


def driver(i: int) -> tuple[KeySigner, ChannelTerms]:
    """Driver `i`'s key and channel to the CPO."""
    key = KeySigner(blake2b_256(b"benchmarks.charging driver", i.to_bytes(4, "little")))
    terms = ChannelTerms(
        network_id=NETWORK,
        channel_id=ChannelId(blake2b_256(b"benchmarks.charging channel", key.public_key)),
        payer=key.public_key,
        payee=CPO.public_key,
        deposit=10**12,
        bidirectional=False,
        challenge_period=100,
        expiry=10**6,
    )
    return key, terms


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def kernel_seconds() -> float:
    """The CPU seconds this process spent in the kernel (sockets, epoll, fsync)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


class GcPauses:
    """The cyclic garbage collector's pauses in this process while installed (a `gc.callbacks`
    entry): `[unix time it ended, seconds, CPU seconds of the thread, generation]` each, the
    first `MAX_SAMPLES` (a pause's seconds well over its CPU seconds: the process waited)."""

    __slots__ = ("_began", "_began_cpu", "pauses")

    def __init__(self) -> None:
        self._began = self._began_cpu = 0.0
        self.pauses: list[tuple[float, float, float, int]] = []

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began, self._began_cpu = time.perf_counter(), time.thread_time()
        elif len(self.pauses) < MAX_SAMPLES:
            wall = time.perf_counter() - self._began
            cpu = time.thread_time() - self._began_cpu
            self.pauses.append((time.time(), wall, cpu, info["generation"]))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def loop_lag(samples: list[tuple[float, float]], every_s: float = 0.02) -> None:
    """How late this process's event loop wakes a sleeper (its own load, or the machine's):
    `[unix time, seconds late]` each, the first `MAX_SAMPLES`, until cancelled."""
    while len(samples) < MAX_SAMPLES:
        began = time.perf_counter()
        await asyncio.sleep(every_s)
        samples.append((time.time(), time.perf_counter() - began - every_s))


def _maybe_ready(plan: dict[str, Any], out: dict[str, Any]) -> None:
    """Say when every charge point is in its session (or failed)."""
    if out["connected"] + out["failed"] == plan["count"]:
        plan["in_session"].set()


async def _connect(
    stack: contextlib.AsyncExitStack, url: str, i: int, version: str, out: dict[str, Any]
) -> Charger16 | Charger201:
    """Connect charge point `i`, trying again (as a charger does) if the handshake fails."""
    for _ in range(CONNECT_TRIES - 1):
        try:
            return await stack.enter_async_context(_charger(url, i, version))
        except (InvalidHandshake, OSError, TimeoutError):
            out["retried"] = out.get("retried", 0) + 1
            await asyncio.sleep(1.0)
    return await stack.enter_async_context(_charger(url, i, version))


def _charger(url: str, i: int, version: str) -> contextlib.AbstractAsyncContextManager[Any]:
    return connect_charger(url, f"CP{i}", PASSWORD, version, check_schemas=False)


async def one_charge_point(url: str, i: int, plan: dict[str, Any], out: dict[str, Any]) -> None:
    """Charge point `i`: connect, start, and once every charge point of this process is in its
    session, meter every `interval_s` for the measured window, paying every `pay_every` (if
    not 0) over its driver's own payment stream (`pay_client`) on the CSMS's WebSocket
    server. A charge point that fails is counted (and its error kept), not raised."""
    version = "1.6" if i % 2 else "2.0.1"
    key, terms = driver(i)
    try:
        async with contextlib.AsyncExitStack() as stack:
            async with plan["connecting"]:  # a bounded number of handshakes at once
                charger = await _connect(stack, url, i, version, out)
                if isinstance(charger, Charger16):
                    tx, _ = await charger.start_session(f"TOKEN{i}", 0, time.time())
                    session = (f"CP{i}", str(tx))
                else:
                    await charger.event("Started", f"B{i}", 0, 0, time.time(), id_token=f"TOKEN{i}")
                    session = (f"CP{i}", f"B{i}")
            wallet = DriverWallet(PayerChannel(terms, key), TARIFF, CPO.public_key, session)
            stream = None
            if plan["pay_every"]:  # each driver has its own phone
                paying = PaymentStream.connect(url, f"TOKEN{i}", wallet, timeout_s=30)
                stream = await stack.enter_async_context(paying)
            out["connected"] += 1
            _maybe_ready(plan, out)
            await plan["ready"].wait()
            await _meter_and_pay(charger, wallet, stream, session, i, plan, out)
            # connected until every charge point (of every process) has sent its last meter
            # value: a thousand connections closing in the window's last second is no part of
            # metering, and it held the last interval's answers back (p99 85-122 ms there,
            # 11-54 ms in the intervals before)
            connected_until = plan["stop_at"] + plan["interval_s"]
            await asyncio.sleep(max(0.0, connected_until - time.perf_counter()))
    except Exception as e:  # counted and reported: the run says how many charge points failed
        out["failed"] += 1
        out["errors"] = [*out.get("errors", [])[:3], repr(e)]
        _maybe_ready(plan, out)


class _Phone:
    """A driver's phone: pays over its payment stream in a task of its own, so that a charger
    never waits for its driver's payment (a real one does not) and a slow payment cannot hold
    the next meter value back. At most one payment in flight: asked while one is, it pays once
    more after it (invoices are cumulative: that one covers every meter value since), and the
    asks in between are merged (counted in `out["pay_merged"]`). Each accepted payment's round
    trip goes to `out["pay"]`, and the time from the oldest ask it answers to its receipt (the
    wait behind a payment in flight included) to `out["pay_asked"]`."""

    __slots__ = ("_asked", "_closing", "_due", "_out", "_stream", "_task", "_wake")

    def __init__(self, stream: PaymentStream, out: dict[str, Any]) -> None:
        self._stream = stream
        self._out = out
        self._due = self._closing = False
        self._asked = 0.0
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._paying())

    def ask(self) -> None:
        """Pay what the car's meter shows (now, or after the payment in flight)."""
        if self._due:
            self._out["pay_merged"] += 1
        else:
            self._asked = time.perf_counter()
        self._due = True
        self._wake.set()

    async def close(self) -> None:
        """Wait for the payment in flight and the one asked for, if any; raise what failed."""
        self._closing = True
        self._wake.set()
        await self._task

    async def cancel(self) -> None:
        """Stop paying (the charger failed): the payment in flight is abandoned."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def _paying(self) -> None:
        while True:
            if not self._due:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            self._due = False
            asked, began = self._asked, time.perf_counter()
            if await self._stream.pay() is not None:  # the invoice, the proof and the receipt
                done = time.perf_counter()
                self._out["pay"].append(done - began)
                self._out["pay_asked"].append(done - asked)


async def _meter_and_pay(
    charger: Charger16 | Charger201,
    wallet: DriverWallet,
    stream: PaymentStream | None,
    session: tuple[str, str],
    i: int,
    plan: dict[str, Any],
    out: dict[str, Any],
) -> None:
    interval_s: float = plan["interval_s"]
    phase = 0 if plan["together"] else i  # drivers pay in their own intervals, or all in one
    next_at = plan["start_at"] + (i % 97) / 97 * interval_s  # spread over the interval
    phone = None if stream is None else _Phone(stream, out)
    try:
        held_s = await _metering(charger, wallet, phone, session, next_at, plan, phase)
    except BaseException:
        if phone is not None:
            await phone.cancel()
        raise
    if phone is not None:
        await phone.close()  # the payment in flight at the window's end
    out["held_s"] = max(out["held_s"], held_s)  # the last one's: how far past the window it went


async def _metering(
    charger: Charger16 | Charger201,
    wallet: DriverWallet,
    phone: _Phone | None,
    session: tuple[str, str],
    next_at: float,
    plan: dict[str, Any],
    phase: int,
) -> float:
    """Send each meter value the schedule puts in the window, each once the one before was
    answered, asking the phone to pay after every `pay_every`-th; how late the last was sent."""
    stop_at: float = plan["stop_at"]
    interval_s: float = plan["interval_s"]
    pay_every: int = plan["pay_every"]
    out: dict[str, Any] = plan["out"]
    n = 0
    held_s = 0.0
    while next_at < stop_at:  # each meter value the schedule puts in the window, sent in turn
        held_s = max(0.0, time.perf_counter() - next_at)  # the answers before came after its time
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        sent = time.perf_counter()
        n += 1
        wh = STEP_WH * n
        sampled = plan["start_unix"] + next_at - plan["start_at"]  # on schedule, sent when it can
        if isinstance(charger, Charger16):
            await charger.meter(int(session[1]), wh, sampled)
        else:
            await charger.event("Updated", session[1], n, wh, sampled)
        out["meter"].append(time.perf_counter() - sent)
        out["interval"].append(n)
        wallet.observe(wh, 0)
        if phone is not None and (n + phase) % pay_every == 0:
            phone.ask()
        next_at += interval_s
    return held_s


async def simulator_process(
    url: str,
    first: int,
    count: int,
    measure_s: float,
    pay_every: int,
    interval_s: float,
    together: bool = False,
) -> None:
    """Charge points `first..first+count`; prints their figures as JSON: `meter` (each meter
    value's response time) with `interval` (its number, from 1), `pay`, `lag`, `gc`. Driver `i`
    pays after the meter values `n` with `(n + i) % pay_every == 0` (the drivers' sessions began
    at different times), or with `together` every driver after the same ones (`n % pay_every ==
    0`: every `pay_every`-th interval all drivers pay)."""
    out: dict[str, Any] = {
        "connected": 0,
        "failed": 0,
        "lag": [],
        "meter": [],
        "interval": [],
        "pay": [],
        "pay_asked": [],
        "pay_merged": 0,
        "held_s": 0.0,
    }
    plan: dict[str, Any] = {
        "count": count,
        "measure_s": measure_s,
        "pay_every": pay_every,
        "together": together,
        "interval_s": interval_s,
        "in_session": asyncio.Event(),
        "ready": asyncio.Event(),
        "connecting": asyncio.Semaphore(HANDSHAKES),
        "out": out,
    }
    tasks = [asyncio.create_task(one_charge_point(url, first + k, plan, out)) for k in range(count)]
    await asyncio.wait_for(plan["in_session"].wait(), 300)
    print(json.dumps({"in_session": out["connected"]}), flush=True)
    start_unix = float(await asyncio.to_thread(sys.stdin.readline))  # the same for every process
    plan["start_at"] = time.perf_counter() + start_unix - time.time()
    plan["start_unix"] = start_unix
    plan["stop_at"] = plan["start_at"] + measure_s
    plan["ready"].set()
    await asyncio.sleep(max(0.0, plan["start_at"] - time.perf_counter()))
    began_cpu, began_kernel, began = cpu_seconds(), kernel_seconds(), time.perf_counter()
    monitor = asyncio.create_task(loop_lag(out["lag"]))
    with GcPauses() as pauses:
        await asyncio.gather(*tasks)
    monitor.cancel()
    out["gc"] = pauses.pauses
    out["cpu_share"] = (cpu_seconds() - began_cpu) / (time.perf_counter() - began)
    out["kernel_share"] = (kernel_seconds() - began_kernel) / (time.perf_counter() - began)
    out["window"] = [start_unix, start_unix + measure_s + out["held_s"]]
    print(json.dumps(out), flush=True)
