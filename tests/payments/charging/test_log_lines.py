"""Which log lines go through the CSMS's limiter (`payments.charging.log_limit`), and which never
do: each line hostile input causes (a client's refused login, a charger, an eMSP's answers, a
registry a charger makes us ask), caused once under a limiter that writes none, is counted and
not written; each line about money (refunds paid, held and settled, CDRs not pushed, sessions
not committed), written twice as often as any key's bound allows, is written every time."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Final

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from payments.charging.commitment import LedgerCommitter
from payments.charging.csms import Csms
from payments.charging.devices import DeviceGate
from payments.charging.errors import DeviceLookupError, EventConflictError
from payments.charging.log_limit import LINES, LogLimiter
from payments.charging.ocpi_client import OcpiClient
from payments.charging.ocpi_session import WhitelistType
from payments.charging.pricing import ocpi_pricing
from payments.charging.roaming_cpo import RoamingCpo
from payments.charging.session import (
    ChargingSession,
    EventKind,
    SessionLimits,
    StopReason,
    StopSession,
    TransactionEvent,
)
from payments.charging.simulator import connect_charger
from payments.charging.store import Bill, Binding, CsmsStore
from tests.payments.charging.test_csms import _raw, _sample, _start16, run
from tests.payments.charging.test_log_limit import Clock
from tests.payments.charging.test_ocpi_app import in_process
from tests.payments.charging.test_payment import World
from tests.payments.charging.test_payment import run as run_with_payments
from tests.payments.charging.test_refund import refunder
from tests.payments.charging.test_refund_bounds import _owe_small
from tests.payments.charging.test_refund_desk import owe
from tests.payments.charging.test_roaming_cpo import TARIFF, token
from wallet.errors import NodeUnavailableError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from wallet._responses import RegisteredDevice


def _stop_sample_refused(tmp_path: Path, limiter: LogLimiter) -> None:
    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            tx = await _start16(ws)
            early = {**_sample("01", 1_200), "timestamp": "1970-01-01T00:00:01Z"}
            stop = {"meterStop": 1_500, "timestamp": "2026-06-01T00:05:00Z", "transactionId": tx}
            stop["transactionData"] = [early]
            await ws.send(json.dumps([2, "stop", "StopTransaction", stop]))
            assert json.loads(await ws.recv())[0] == 3  # the stop stands

    run(tmp_path, body, log_limit=limiter)


def _login_refused(tmp_path: Path, limiter: LogLimiter) -> None:
    async def body(csms: Csms, url: str) -> None:
        with pytest.raises(InvalidStatus):
            async with connect_charger(url, "CP16", "guessed", "1.6"):
                pass

    run(tmp_path, body, log_limit=limiter)


def _cannot_stop(tmp_path: Path, limiter: LogLimiter) -> None:
    async def body(csms: Csms, url: str) -> None:
        stop = StopSession(charge_point="CP9", transaction_id="1", reason=StopReason.PAYMENT_LAG)
        await csms._stop(stop)  # CP9 is not connected

    run(tmp_path, body, log_limit=limiter)


def _call_failed(tmp_path: Path, limiter: LogLimiter) -> None:
    async def body(csms: Csms, url: str) -> None:
        failed = asyncio.Event()

        async def failing_hook(bill: Bill) -> None:
            failed.set()  # the failure is logged in this task's step, before `body` resumes
            raise EventConflictError((bill.charge_point, bill.transaction_id), "refused")

        csms.on_bill.append(failing_hook)
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            tx = await _start16(ws)
            stop = {"meterStop": 1_500, "timestamp": "2026-06-01T00:05:00Z", "transactionId": tx}
            await ws.send(json.dumps([2, "stop", "StopTransaction", stop]))
            assert json.loads(await ws.recv())[0] == 3
        await failed.wait()
        await asyncio.sleep(0)

    run(tmp_path, body, log_limit=limiter)


def _lookup_failed(tmp_path: Path, limiter: LogLimiter) -> None:
    async def unavailable(subject: bytes) -> RegisteredDevice | None:
        raise NodeUnavailableError("GET /api/v1/devices/{id}", "connection refused")

    gate = DeviceGate(
        lookup=unavailable,
        lookup_key=unavailable,
        token_devices={"CAR-7": bytes(32)},
        log_limit=limiter,
    )
    with pytest.raises(DeviceLookupError):
        asyncio.run(gate.check("CAR-7"))


async def _roaming(
    tmp_path: Path, limiter: LogLimiter, work: Callable[[RoamingCpo], Awaitable[None]]
) -> None:
    """`work` done with a roaming CPO whose eMSP pushed token RFID-101 (allowed offline), and
    which knows no charge point's location."""
    async with in_process() as (world, _), CsmsStore(tmp_path / "csms.sqlite") as store:
        await world.register()
        party = next(iter(world.emsp.registry.parties.values()))
        await world.emsp.client.push_token(party, token("RFID-101", WhitelistType.ALLOWED_OFFLINE))
        roaming = RoamingCpo(
            csms=Csms(store=store, pricing=ocpi_pricing(TARIFF), log_limit=limiter),
            ocpi=world.cpo.store,
            registry=world.cpo.registry,
            client=world.cpo.client,
            tariff=TARIFF,
            locations={},
            country_code="NL",
            party_id="CPO",
        )
        await work(roaming)


def _allowed_by_whitelist(tmp_path: Path, limiter: LogLimiter) -> None:
    async def work(roaming: RoamingCpo) -> None:
        down = httpx.MockTransport(lambda _: httpx.Response(503))
        async with httpx.AsyncClient(transport=down) as http:
            roaming.client = OcpiClient(http)
            assert await roaming.authorize("RFID-101") is not None

    asyncio.run(_roaming(tmp_path, limiter, work))


def _no_ocpi_session(tmp_path: Path, limiter: LogLimiter) -> None:
    async def work(roaming: RoamingCpo) -> None:
        session = ChargingSession(("CP16", "1"), roaming.csms.pricing, id_token="RFID-101")
        roaming.on_event(session)  # no location for CP16

    asyncio.run(_roaming(tmp_path, limiter, work))


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("login refused", _login_refused),
        ("stop sample refused", _stop_sample_refused),
        ("cannot stop", _cannot_stop),
        ("call failed", _call_failed),
        ("lookup failed", _lookup_failed),
        ("allowed by whitelist", _allowed_by_whitelist),
        ("no OCPI session", _no_ocpi_session),
    ],
)
def test_each_line_hostile_input_causes_goes_through_the_limiter(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    cause: Callable[[Path, LogLimiter], None],
) -> None:
    """Each such line, caused once with a limiter that writes none (`lines=0`): nothing is
    written, and its key counts it. A line written with a plain `LOG.warning` fails this."""
    clock = Clock()
    limiter = LogLimiter(lines=0, interval_s=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="payments.charging"):
        cause(tmp_path, limiter)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("payments.")] == []
    clock.now += 60
    assert kind in {s.kind for s in limiter.expire()}


FLOOD = 2 * LINES
"""How many of each money line a test writes: past any key's bound."""


def _refunds_paid(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        for i in range(FLOOD):
            await _owe_small(world, wallet, f"CARD-{i}", 200)
        assert await refunder(world, []).retry() == FLOOD

    run_with_payments(tmp_path, body)


def _refunds_settled(tmp_path: Path) -> None:
    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            owed = [("CP1", f"T{i}", 300, "owed", 0, 0) for i in range(FLOOD)]
            await owe(store, owed, [])
            for _, tx, *_ in owed:
                await store.refunds.hold(("CP1", tx))
                await store.refunds.settle_held(("CP1", tx), "paid in cash", wallet=None)

    asyncio.run(main())


def _cdrs_not_pushed(tmp_path: Path) -> None:
    async def work(roaming: RoamingCpo) -> None:
        store = roaming.csms.store
        for i in range(FLOOD):
            key = ("CP16", str(i))
            await store.bind(
                key, Binding(id_token="RFID-101", channel_id=None, limits=SessionLimits(), paid=0)
            )
            await store.record(
                TransactionEvent(
                    charge_point=key[0],
                    transaction_id=key[1],
                    seq_no=0,
                    kind=EventKind.STARTED,
                    timestamp_s=1_780_000_000,
                    register_wh=0,
                    id_token="RFID-101",
                )
            )
            bill = Bill(
                charge_point=key[0], transaction_id=key[1], energy_wh=1, duration_s=1, amount=1
            )
            await roaming.on_bill(bill)  # no location for CP16: no CDR

    asyncio.run(_roaming(tmp_path, LogLimiter(), work))


def _sessions_not_committed(tmp_path: Path) -> None:
    class DownNode:
        async def submit_pow(self, payload: object) -> bytes:
            raise NodeUnavailableError("POST /api/v1/messages", "connection refused")

    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            committer = LedgerCommitter(store, DownNode())  # type: ignore[arg-type]
            for i in range(FLOOD):
                await committer(
                    Bill(
                        charge_point="CP1",
                        transaction_id=str(i),
                        energy_wh=1,
                        duration_s=1,
                        amount=1,
                    )
                )

    asyncio.run(main())


REFUND: Final = "payments.charging.refund"
DESK: Final = "payments.charging.refund_desk"


@pytest.mark.parametrize(
    ("lines", "cause"),
    [
        ([(REFUND, "refunded 200 to ")], _refunds_paid),
        ([(DESK, " held by the operator"), (DESK, " settled by the operator")], _refunds_settled),
        ([("payments.charging.roaming_cpo", " not pushed: ")], _cdrs_not_pushed),
        ([("payments.charging.commitment", "session CP1/")], _sessions_not_committed),
    ],
)
def test_lines_about_money_are_never_limited(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    lines: list[tuple[str, str]],
    cause: Callable[[Path], None],
) -> None:
    """Refunds paid, held and settled, CDRs not pushed and sessions not committed are the
    operator's record: a line each, however many (here twice any key's bound)."""
    with caplog.at_level(logging.INFO, logger="payments.charging"):
        cause(tmp_path)
    for name, text in lines:
        written = [r for r in caplog.records if r.name == name and text in r.getMessage()]
        assert len(written) == FLOOD, text
