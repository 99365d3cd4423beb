"""Pay as you charge and prepaid (`payments.charging.payment`) with real `ocpp` chargers over
loopback WebSockets, the real channel cores, cashier and sqlite channel store. Channels come
from `UnitTestOnlyFunder` (valid terms, no ledger)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from ocpp.v16 import call

from coordinator.signers import KeySigner
from payments.channels.core import PayerChannel
from payments.channels.service import PayeeService
from payments.charging.channel_rows import CsmsChannels
from payments.charging.csms import Csms, serve_csms
from payments.charging.errors import TokenBindingError
from payments.charging.pay_stream import payment_stream
from payments.charging.payment import ChargePayments, DriverWallet
from payments.charging.session import SessionLimits, StopReason
from payments.charging.simulator import Charger16, Charger201, connect_charger
from payments.charging.store import Binding, CsmsStore
from payments.errors import OverchargeError
from payments.payperuse.cashier import Cashier
from payments.payperuse.metering import Invoice, Tariff
from tests.unit_test_funder import UnitTestOnlyFunder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

NET = 7
CPO = KeySigner(b"\x21" * 32)
DRIVER = KeySigner(b"\x22" * 32)
TARIFF = Tariff.per_kwh(300)  # 300 minor units per kWh
MARGIN = 200
T0 = 1_780_000_000.0
PASSWORD = "pw"
STEP_WH = 250  # 75 per step


class World:
    """A CSMS with payments, a driver's funded channel, and the CSMS's URL."""

    def __init__(self, csms: Csms, payments: ChargePayments, funder: UnitTestOnlyFunder) -> None:
        self.csms = csms
        self.payments = payments
        self.funder = funder
        self.url = ""

    async def driver(self, key: tuple[str, str], deposit: int = 100_000) -> DriverWallet:
        terms = await self.funder.open(CPO.public_key, deposit)
        return DriverWallet(PayerChannel(terms, DRIVER), TARIFF, CPO.public_key, key)

    async def bind(self, wallet: DriverWallet, token: str) -> None:
        signature = wallet.bind_signature(DRIVER, token)
        await self.payments.bind(token, wallet.channel.terms.channel_id, signature)

    async def pay_due(self, wallet: DriverWallet, key: tuple[str, str]) -> None:
        proof = wallet.settle(await self.payments.invoice(key))
        if proof is not None:
            wallet.check(await self.payments.pay(key, proof))


def run(tmp_path: Path, body: Callable[[World], Awaitable[None]]) -> None:
    async def main() -> None:
        funder = UnitTestOnlyFunder(network_id=NET, payer=DRIVER.public_key)
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            for station in ("CP16", "CP201"):
                await store.add_station(station, PASSWORD)
            csms = Csms(store=store, pricing=lambda t, wh, s: TARIFF.cost(wh))
            cashier = Cashier(
                payee=CPO.public_key,
                network_id=NET,
                directory=funder,
                service=PayeeService(CsmsChannels(store)),
            )
            payments = ChargePayments(
                csms=csms, cashier=cashier, signer=CPO, tariff=TARIFF, margin=MARGIN
            )
            csms.authorize = payments.authorize
            csms.channel_pricing = payments.pricing
            await csms.restore()
            world = World(csms, payments, funder)
            async with serve_csms(csms, pay=payment_stream(payments)) as server:
                world.url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/ocpp"
                await asyncio.wait_for(body(world), 20)

    asyncio.run(main())


async def _start(charger: Charger16 | Charger201, token: str, wh: int) -> tuple[str, str]:
    if isinstance(charger, Charger16):
        tx, status = await charger.start_session(token, wh, T0)
        assert status == "Accepted"
        return charger.id, str(tx)
    answer = await charger.event("Started", "T1", 0, wh, T0, id_token=token)
    assert answer.id_token_info["status"] == "Accepted"
    return charger.id, "T1"


async def _meter(charger: Charger16 | Charger201, key: tuple[str, str], i: int, wh: int) -> None:
    if isinstance(charger, Charger16):
        await charger.meter(int(key[1]), wh, T0 + 60 * i)
    else:
        await charger.event("Updated", key[1], i, wh, T0 + 60 * i)


async def _end(charger: Charger16 | Charger201, key: tuple[str, str], i: int, wh: int) -> None:
    if isinstance(charger, Charger16):
        await charger.stop_session(int(key[1]), wh, T0 + 60 * i)
    else:
        await charger.event("Ended", key[1], i, wh, T0 + 60 * i)


STATIONS = {"1.6": "CP16", "2.0.1": "CP201"}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_paying_driver_pays_exactly_the_metered_energy(tmp_path: Path, version: str) -> None:
    async def body(world: World) -> None:
        station = STATIONS[version]
        async with connect_charger(world.url, station, PASSWORD, version) as charger:
            wallet = await world.driver((station, "1" if version == "1.6" else "T1"))
            await world.bind(wallet, "CARD-1")
            key = await _start(charger, "CARD-1", 10_000)
            for i in range(1, 9):
                await _meter(charger, key, i, 10_000 + STEP_WH * i)
                wallet.observe(10_000 + STEP_WH * i, 10_000)
                await world.pay_due(wallet, key)
            await _end(charger, key, 9, 12_000)
            wallet.observe(12_000, 10_000)
            await world.pay_due(wallet, key)
            assert not charger.stop_requested.is_set()
        [bill] = await world.csms.store.bills()
        assert bill.energy_wh == 2_000
        assert bill.amount == TARIFF.cost(2_000) == 600 == wallet.meter.paid
        assert wallet.channel.payee_balance == 600
        assert key not in world.csms.book.sessions  # paid in full: forgotten
        final = await world.payments.invoice(key)  # the final bill, from the store
        assert (final.units, final.amount, final.paid, final.due) == (2_000, 600, 600, 0)
        assert not world.csms.stops

    run(tmp_path, body)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_driver_that_stops_paying_is_stopped_within_one_interval(
    tmp_path: Path, version: str
) -> None:
    async def body(world: World) -> None:
        station = STATIONS[version]
        async with connect_charger(world.url, station, PASSWORD, version) as charger:
            wallet = await world.driver((station, "1" if version == "1.6" else "T1"))
            await world.bind(wallet, "CARD-2")
            key = await _start(charger, "CARD-2", 0)
            i = 0
            for i in range(1, 4):  # pays for three steps
                await _meter(charger, key, i, STEP_WH * i)
                wallet.observe(STEP_WH * i, 0)
                await world.pay_due(wallet, key)
            for i in range(4, 20):  # then pays nothing
                await _meter(charger, key, i, STEP_WH * i)
                if world.csms.stops:  # decided before the charger got its answer
                    break
            assert i == 5  # 75 due at step 4 (150 by the next), 150 at 5 (225 > 200)
            await asyncio.wait_for(charger.stop_requested.wait(), 5)
            await _end(charger, key, i + 1, STEP_WH * i)
        session = world.csms.book.sessions[key]
        assert 0 < session.due() <= MARGIN
        assert [s.reason for s in world.csms.stops] == [StopReason.PAYMENT_LAG]

    run(tmp_path, body)


def test_the_wallet_refuses_a_bill_above_its_own_meter(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            wallet = await world.driver(("CP201", "T1"))
            await world.bind(wallet, "CARD-3")
            key = await _start(charger, "CARD-3", 0)
            await _meter(charger, key, 1, 1_000)
            wallet.observe(1_000, 0)
            await world.pay_due(wallet, key)
            await _meter(charger, key, 2, 2_000)  # the charger reports 2 kWh ...
            wallet.observe(1_400, 0)  # ... the car measured 1.4 kWh
            bill = await world.payments.invoice(key)
            with pytest.raises(OverchargeError):
                wallet.settle(bill)
            inflated = Invoice(channel_id=bill.channel_id, units=1_400, amount=900, paid=300)
            with pytest.raises(OverchargeError):  # the right units at a higher price
                wallet.settle(inflated)
            assert wallet.meter.paid == 300
            assert wallet.channel.payee_balance == 300

    run(tmp_path, body)


def test_authorize_needs_a_bound_channel_that_covers_the_first_increment(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"), deposit=299)  # 1 kWh costs 300
        with pytest.raises(TokenBindingError):  # signed by another key
            await world.payments.bind(
                "CARD-4", wallet.channel.terms.channel_id, wallet.bind_signature(CPO, "CARD-4")
            )
        assert await world.payments.authorize("CARD-4") is None  # unbound
        await world.bind(wallet, "CARD-4")
        assert await world.payments.authorize("CARD-4") is None  # too small a channel
        rich = await world.driver(("CP201", "T1"), deposit=10_000)
        await world.bind(rich, "CARD-5")
        binding = await world.payments.authorize("CARD-5")
        assert binding is not None
        assert binding.limits.margin == MARGIN
        async with connect_charger(world.url, "CP16", PASSWORD, "1.6") as charger:
            assert isinstance(charger, Charger16)
            _, status = await charger.start_session("CARD-4", 0, T0)
            assert status == "Invalid"

    run(tmp_path, body)


def test_a_prepaid_session_stops_at_the_energy_paid_for(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            wallet = await world.driver(("CP201", "T1"))
            await world.bind(wallet, "CARD-6")
            receipt = await world.payments.prepay("CARD-6", wallet.channel.pay(450))  # 1.5 kWh
            receipt.verify(CPO.public_key)
            assert receipt.credited == 450
            key = await _start(charger, "CARD-6", 0)
            for i in range(1, 10):
                await _meter(charger, key, i, 400 * i)
                if world.csms.stops:
                    break
            assert i == 4  # 1600 Wh >= 1500 Wh
            await asyncio.wait_for(charger.stop_requested.wait(), 5)
            await _end(charger, key, i + 1, 1_600)
            session = world.csms.book.sessions[key]
            assert session.billed() == 480
            assert world.payments.refund(session) == 0
            assert [s.reason for s in world.csms.stops] == [StopReason.PREPAID_ENERGY]
            assert await world.payments.authorize("CARD-6") is not None  # back to pay as you go

    run(tmp_path, body)


def test_a_restarted_csms_still_takes_the_last_payment_of_an_ended_session(
    tmp_path: Path,
) -> None:
    """The session ended owing one step; the CSMS restarts; the driver pays the rest."""
    wallets: list[DriverWallet] = []

    async def first(world: World) -> None:
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            wallet = await world.driver(("CP201", "T1"))
            wallets.append(wallet)
            await world.bind(wallet, "CARD-7")
            key = await _start(charger, "CARD-7", 0)
            await _meter(charger, key, 1, 500)
            wallet.observe(500, 0)
            await world.pay_due(wallet, key)
            await _end(charger, key, 2, 1_000)
            wallet.observe(1_000, 0)

    async def second(world: World) -> None:
        key = ("CP201", "T1")
        assert world.csms.book.sessions[key].due() == 150  # resumed: billed, owing one step
        await world.pay_due(wallets[0], key)
        assert key not in world.csms.book.sessions
        [bill] = await world.csms.store.bills()
        assert bill.amount == wallets[0].meter.paid == 300

    run(tmp_path, first)
    run(tmp_path, second)


def test_an_authorize_before_the_start_keeps_the_prepaid_amount(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        async with connect_charger(world.url, "CP16", PASSWORD, "1.6") as charger:
            assert isinstance(charger, Charger16)
            wallet = await world.driver(("CP16", "1"))
            await world.bind(wallet, "CARD-A")
            await world.payments.prepay("CARD-A", wallet.channel.pay(450))
            answer = await charger.call(call.Authorize(id_tag="CARD-A"))
            assert answer.id_tag_info["status"] == "Accepted"
            assert await world.csms.store.token("CARD-A") == (wallet.channel.terms.channel_id, 450)
            tx, status = await charger.start_session("CARD-A", 0, T0)
            assert status == "Accepted"
            binding = world.csms.bindings[("CP16", str(tx))]
            assert binding.paid == 450
            assert binding.limits.energy_wh == 1_500
            assert await world.csms.store.token("CARD-A") == (wallet.channel.terms.channel_id, 0)

    run(tmp_path, body)


def test_a_prepaid_amount_taken_during_a_prepay_is_not_given_back(tmp_path: Path) -> None:
    """A session binds (taking the prepaid 450) while a second prepay of 300 awaits its
    payment: the token then holds 300, not 450 + 300."""

    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, "CARD-P")
        channel_id = wallet.channel.terms.channel_id
        await world.payments.prepay("CARD-P", wallet.channel.pay(450))
        cashier = world.payments.cashier

        class BindingMeanwhile:  # the real cashier; a session binds while it takes the payment
            def __getattr__(self, name: str) -> Any:
                return getattr(cashier, name)

            async def accept(self, *args: Any, **kwargs: Any) -> Any:
                limits = SessionLimits(energy_wh=1_500)
                taking = Binding(id_token="CARD-P", channel_id=channel_id, limits=limits, paid=450)
                assert await world.csms.store.bind(("CP201", "T9"), taking)
                return await cashier.accept(*args, **kwargs)

        world.payments.cashier = BindingMeanwhile()  # type: ignore[assignment]
        await world.payments.prepay("CARD-P", wallet.channel.pay(300))
        assert await world.csms.store.token("CARD-P") == (channel_id, 300)

    run(tmp_path, body)
