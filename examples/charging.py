"""EV charging paid over payment channels: a CSMS, OCPP 1.6J and 2.0.1 chargers, two drivers.

`python -m examples.charging --self-contained [--json] [--rounds N]` runs, under a temporary
directory (with `--rounds`, the two drivers' sessions N times on the same CSMS and devnet, as the
devnet's charging flow does; the roaming driver in the first round only):

* a devnet of its own (a coordinator and one node, as processes: `examples._devnet`);
* the CSMS as its own asyncio process, `tanglepay charging serve --node-api ...`: it looks the
  drivers' channels up on the node's HTTP API and takes their payments;
* a 2.0.1 charger whose driver pays as she charges: she opens a channel to the CPO on the
  ledger, binds her RFID token to it, and after each meter value pays what her car's own meter
  shows is due, the invoice and the proof in one frame on her payment stream (a WebSocket on the
  CSMS's OCPP server, `payments.charging.pay_client`), and checks the CPO's signed receipt;
* a 1.6J charger whose driver prepays 1.5 kWh; the CSMS stops the charger once it is delivered;
* the same driver prepays 10 kWh and unplugs after 1.2: the CSMS's wallet pays the rest back on
  the ledger;
* a roaming driver of an eMSP (`examples/_charging_roaming.py`): the eMSP registers with the
  CSMS over OCPI 2.2.1, its driver charges on the 2.0.1 charger, the CSMS pushes the CDR to the
  eMSP, and the two settle the month's net over a two-way channel on the devnet.

Both chargers are the `ocpp` library's ChargePoint over WebSockets with HTTP Basic; the 2.0.1
charger's meter signs its readings (OCMF, P-256), and the driver checks the session record on the
ledger and every signature with the meter's public key (`payments.charging.verify`). The summary
shows each session's energy, its bill, what each driver paid through the channel, the stops the
CSMS asked for, and the channel as the ledger holds it.

`python -m examples.charging --node URL --faucet URL --forever [--interval-s 20]` is the
devnet's charging flow (`tanglepay.flows`): attached to a running devnet (the faucet funds the
driver), it runs the CSMS as its own process and the same two sessions again and again, a round
every `--interval-s` seconds, one line per round, until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from examples._charging_roaming import TOKEN_A, roam, roaming_files
from payments.channels.core import PayerChannel
from payments.channels.wire import encode_signed_proof
from payments.charging import ocmf
from payments.charging.pay_client import PaymentStream
from payments.charging.payment import DriverWallet
from payments.charging.simulator import Charger16, Charger201, connect_charger
from payments.charging.station import now_iso
from payments.charging.verify import verify_session
from payments.errors import PaymentError, PaymentRejectedError
from payments.payperuse.metering import Tariff
from payments.payperuse.offer import PROOF_HEADER
from tangle.protocol.transaction import address_of
from wallet import AccountKey, WalletError
from wallet.client import NodeClient

if TYPE_CHECKING:
    from tangle.protocol.ids import PublicKey
    from tangle.protocol.signature import Signer

PRICE_PER_KWH = 300
TARIFF = Tariff.per_kwh(PRICE_PER_KWH)
MARGIN = 400
PREPAY_BIG = 3_000
"""A prepayment (10 kWh) the driver does not use up: the rest comes back on the ledger."""
CPO_WALLET_FUNDS = 1_000_000
PASSWORD = "example-station-password"
T0 = 1_780_000_000.0
ROOT = Path(__file__).resolve().parent.parent
METER = ec.derive_private_key(0x0CAF, ec.SECP256R1())
"""The 2.0.1 charger's meter key (a fixed example key: its public half is on the meter's label)."""


def _tanglepay(*args: str) -> list[str]:
    """The command line of `tanglepay ARGS` in a fresh interpreter."""
    code = "import sys; from tanglepay.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *args]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


@contextlib.contextmanager
def devnet_process(work: Path) -> Any:
    """A devnet of the example's own in a trio process of its own; yields `devnet.json`."""
    child = subprocess.Popen(
        [sys.executable, "-m", "examples.charging", "--devnet-process", str(work / "devnet")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    if child.stdout is None or child.stdin is None:
        raise SystemExit("the devnet process has no pipes")
    try:
        yield Path(json.loads(child.stdout.readline())["devnet"])
    finally:
        child.stdin.close()
        child.wait(60)
        child.stdout.close()


def _devnet_main(data_dir: Path) -> None:
    import trio

    from ._devnet import local_devnet

    async def run() -> None:
        async with local_devnet(data_dir) as path:
            print(json.dumps({"devnet": str(path)}), flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)

    trio.run(run)


@contextlib.contextmanager
def csms_process(work: Path, devnet: Path, cpo_seed: Path) -> Any:
    """The CSMS (`tanglepay charging serve`) paid over the devnet, paying prepaid rests back
    from the wallet whose seed is `cpo-wallet.seed` beside `cpo_seed`; yields its start line."""
    doc = json.loads(devnet.read_text())
    db = work / "csms.sqlite"
    for station in ("CP-201", "CP-16"):
        subprocess.run(
            _tanglepay(
                "charging",
                "--db",
                str(db),
                "stations",
                "add",
                station,
                "--password-env",
                "STATION_PASSWORD",
            ),
            env=_env(STATION_PASSWORD=PASSWORD),
            check=True,
            capture_output=True,
        )
    child = subprocess.Popen(
        _tanglepay(
            "charging",
            "--db",
            str(db),
            "--json",
            "serve",
            "--port",
            "0",
            "--api-port",
            "0",
            "--price-per-kwh",
            str(PRICE_PER_KWH),
            "--margin",
            str(MARGIN),
            "--node-api",
            doc["members"][0]["api"],
            "--network-id",
            str(doc["network_id"]),
            "--cpo-seed-file",
            str(cpo_seed),
            "--refund-seed-file",
            str(cpo_seed.with_name("cpo-wallet.seed")),
            *roaming_files(work),
        ),
        stdout=subprocess.PIPE,
        text=True,
        env=_env(CSMS_OPERATOR_TOKEN="example-operator", OCPI_TOKEN_A=TOKEN_A),
    )
    if child.stdout is None:
        raise SystemExit("the CSMS process has no pipe")
    try:
        yield {**json.loads(child.stdout.readline()), "node_api": doc["members"][0]["api"]}
    finally:
        child.terminate()
        child.wait(30)
        child.stdout.close()


async def pay_due(stream: PaymentStream) -> int:
    """Pay what the car's meter shows is due with the invoice the wallet computed (one frame on
    the payment stream), and check the CPO's receipt; 0 if nothing was taken this time."""
    try:
        return 0 if await stream.pay() is None else 1
    except PaymentRejectedError as e:
        raise SystemExit(f"the CSMS refused the payment: {e}") from None


async def check_commitment(
    http: httpx.AsyncClient, node_api: str, key: tuple[str, str]
) -> dict[str, Any]:
    """What a driver does to check the energy billed: fetch the session's meter record from the
    CSMS, find its hash in the ledger message the CSMS names, and verify every signed reading
    with the meter's public key (`payments.charging.verify`)."""
    doc: dict[str, Any] = {}
    for _ in range(120):  # the CSMS commits after the bill, with the node's proof-of-work
        doc = (await http.get(f"/api/sessions/{key[0]}/{key[1]}/commitment")).json()
        if doc["message_id"] is not None:
            break
        await asyncio.sleep(0.5)
    async with NodeClient(node_api) as node:
        return await verify_session(node, doc, METER.public_key())


async def verify_with_cli(work: Path, csms: dict[str, Any], key: tuple[str, str]) -> Any:
    """The same check as a driver runs it: `tanglepay charging verify-session`."""
    meter_key = work / "meter.pub"
    meter_key.write_text(ocmf.key_hex(METER.public_key()))
    argv = _tanglepay(
        "charging",
        "--json",
        "verify-session",
        *key,
        "--api",
        csms["api"],
        "--node-api",
        csms["node_api"],
        "--meter-key",
        str(meter_key),
    )
    done = await asyncio.to_thread(
        subprocess.run, argv, env=_env(), capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()}


async def unplug_early(
    http: httpx.AsyncClient, channel: PayerChannel, csms: dict[str, Any], t0: float, round_: int
) -> dict[str, Any]:
    """A prepaid driver unplugs early: the CSMS pays the unused rest back on the ledger, to the
    address of the channel's payer key (`payments.charging.refund`)."""
    to = address_of(channel.terms.payer)
    async with NodeClient(csms["node_api"]) as node:
        before = await node.balance(to)
        proof = channel.pay(PREPAY_BIG)
        header = base64.urlsafe_b64encode(encode_signed_proof(proof)).rstrip(b"=").decode()
        (
            await http.post("/api/tokens/RFID-ANNA/prepay", headers={PROOF_HEADER: header})
        ).raise_for_status()
        async with connect_charger(csms["url"], "CP-201", PASSWORD, "2.0.1") as charger:
            tx, at = f"P-{round_}", t0 + 50_000
            await charger.event("Started", tx, 0, 50_000, at, id_token="RFID-ANNA")
            await charger.event("Ended", tx, 1, 51_200, at + 600)  # 1.2 kWh of 10 paid
        refunded = 0
        for _ in range(240):  # the CSMS's wallet sends once the bill is made; a milestone confirms
            refunded = await node.balance(to) - before
            if refunded:
                break
            await asyncio.sleep(0.5)
    return {"prepaid": PREPAY_BIG, "billed": TARIFF.cost(1_200), "refunded_on_ledger": refunded}


def _signed(register_wh: int, at: float, kind: str, page: int) -> str:
    return ocmf.sign(
        METER, register_wh, meter_serial="EXAMPLE-METER-1", time=now_iso(at), kind=kind, page=page
    )


async def drive(
    devnet: Path,
    work: Path,
    csms: dict[str, Any],
    cpo: PublicKey,
    round_: int = 1,
    *,
    faucet_key: bool = True,
    cpo_signer: Signer | None = None,
) -> dict[str, Any]:
    """One round: the pay-as-you-charge and the prepaid session; the driver is funded with the
    faucet's key (a devnet of the example's own) or by the faucet service (`faucet_key` False)."""
    from ._devnet import devnet_payer

    t0 = T0 + 100_000 * round_
    tx201 = f"S-{round_}"

    summary: dict[str, Any] = {}
    admin = {"Authorization": "Bearer example-operator"}
    async with (
        devnet_payer(devnet, work / "driver", 50_000, faucet_key=faucet_key) as payer,
        httpx.AsyncClient(base_url=csms["api"], timeout=30) as http,
    ):
        funder, key, _, min_output = payer
        # a deposit of its own per round: the funder returns a still-open channel of the same
        # terms (an open repeated after a crash), and each round starts a fresh channel state
        terms = await funder.open(cpo, max(20_000, min_output) + round_ - 1)
        channel = PayerChannel(terms, key)
        # pay as you charge, on the 2.0.1 charger
        wallet = DriverWallet(channel, TARIFF, cpo, ("CP-201", tx201))
        # her card is still bound to the last round's channel (a token bound to another channel
        # is refused): the operator unbinds it first (404: bound to none yet)
        unbound = await http.delete("/api/tokens/RFID-ANNA", headers=admin)
        if unbound.status_code != 404:
            unbound.raise_for_status()
        bound = await http.put(
            "/api/tokens/RFID-ANNA",
            json={
                "channel_id": terms.channel_id.hex(),
                "signature": wallet.bind_signature(key, "RFID-ANNA").hex(),
            },
        )
        bound.raise_for_status()
        receipts = 0
        async with (
            connect_charger(csms["url"], "CP-201", PASSWORD, "2.0.1") as charger,
            PaymentStream.connect(csms["url"], "RFID-ANNA", wallet) as stream,
        ):
            assert isinstance(charger, Charger201)
            signed = _signed(40_000, t0, "B", 1)
            await charger.event(
                "Started", tx201, 0, 40_000, t0, id_token="RFID-ANNA", signed=signed
            )
            for i in range(1, 7):
                register = 40_000 + 1_100 * i
                at = t0 + 300 * i
                await charger.event(
                    "Updated", tx201, i, register, at, signed=_signed(register, at, "C", i + 1)
                )
                wallet.observe(register, 40_000)
                receipts += await pay_due(stream)
            await charger.event(
                "Ended", tx201, 7, 46_600, t0 + 2_100, signed=_signed(46_600, t0 + 2_100, "E", 8)
            )
            receipts += await pay_due(stream)
        # prepaid, on the 1.6 charger: 450 minor units buy 1.5 kWh
        prepaid = channel.pay(450)
        header = base64.urlsafe_b64encode(encode_signed_proof(prepaid)).rstrip(b"=").decode()
        (
            await http.post("/api/tokens/RFID-ANNA/prepay", headers={PROOF_HEADER: header})
        ).raise_for_status()
        async with connect_charger(csms["url"], "CP-16", PASSWORD, "1.6") as charger16:
            assert isinstance(charger16, Charger16)
            tx, status = await charger16.start_session("RFID-ANNA", 0, t0)
            register = 0
            for i in range(1, 10):
                register = 400 * i
                await charger16.meter(tx, register, t0 + 60 * i)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(charger16.stop_requested.wait(), 0.2)
                if charger16.stop_requested.is_set():
                    break
            await charger16.stop_session(tx, register, t0 + 60 * 10)
        summary["prepaid_refund"] = await unplug_early(http, channel, csms, t0, round_)
        if cpo_signer is not None:  # a roaming driver, her eMSP's CDR and the settlement
            summary["roaming"] = await roam(devnet, work, csms, cpo_signer, t0, PASSWORD)
        summary["pay_as_you_charge"] = {
            "energy_wh": wallet.meter.units,
            "paid": wallet.meter.paid,
            "owed_by_tariff": TARIFF.cost(wallet.meter.units),
            "receipts_checked": receipts,
        }
        summary["prepaid"] = {
            "prepaid": 450,
            "start_status": status,
            "stop_requested_by_csms": charger16.stop_requested.is_set(),
            "energy_wh": register,
        }
        summary["cdrs"] = (await http.get("/api/cdrs", headers=admin)).json()
        summary["ledger_commitment"] = await check_commitment(
            http, csms["node_api"], ("CP-201", tx201)
        )
        summary["verify_session_cli"] = await verify_with_cli(work, csms, ("CP-201", tx201))
        summary["channel"] = {"deposit": terms.deposit, "paid_to_cpo": channel.payee_balance}
        summary["ledger"] = await funder.ledger_state(terms.channel_id)
    return summary


def self_contained(rounds: int = 1) -> dict[str, Any]:
    """The first round's summary (with the roaming driver); with `rounds` above 1, the later
    rounds' summaries (`later_rounds`), run against the same CSMS and devnet as the devnet's
    charging flow runs them (`forever`)."""
    with tempfile.TemporaryDirectory(prefix="tanglepay-charging-example-") as tmp:
        work = Path(tmp)
        seed = os.urandom(32)
        (work / "cpo.seed").write_text(seed.hex())
        from wallet.keys import AddressKey, ExtendedKey

        signer = AddressKey(ExtendedKey.from_seed(seed))
        with devnet_process(work) as devnet:
            asyncio.run(fund_cpo_wallet(devnet, work, faucet_key=True))
            with csms_process(work, devnet, work / "cpo.seed") as csms:

                async def run() -> dict[str, Any]:
                    doc = await drive(devnet, work, csms, signer.public_key, cpo_signer=signer)
                    later = [
                        await drive(devnet, work, csms, signer.public_key, n)
                        for n in range(2, rounds + 1)
                    ]
                    return {**doc, "later_rounds": later} if later else doc

                return asyncio.run(run())


async def fund_cpo_wallet(devnet: Path, work: Path, *, faucet_key: bool) -> None:
    """A fresh CPO wallet (`cpo-wallet.seed`), funded to pay prepaid rests back."""
    from ._devnet import _ask_faucet, pay_with_faucet_key, read_devnet

    seed = os.urandom(32)
    (work / "cpo-wallet.seed").write_text(seed.hex())
    address = AccountKey(seed, 0).address(0)
    _, api, faucet = read_devnet(devnet)
    if faucet_key:
        await pay_with_faucet_key(devnet.parent, api, address, CPO_WALLET_FUNDS)
        return
    await _ask_faucet(faucet, address, CPO_WALLET_FUNDS)
    async with NodeClient(api) as node:
        for _ in range(240):  # a milestone confirms the faucet's transfer
            if await node.balance(address) >= CPO_WALLET_FUNDS:
                return
            await asyncio.sleep(0.5)
    raise SystemExit("the faucet did not fund the CPO's wallet")


def _attached_devnet(work: Path, node: str, faucet: str) -> Path:
    """A `devnet.json` naming a running devnet's node and faucet (what `_devnet` reads)."""

    async def network_id() -> int:
        async with NodeClient(node) as client:
            return (await client.info()).network_id

    doc = {"network_id": asyncio.run(network_id()), "members": [{"api": node}], "faucet": faucet}
    path = work / "devnet.json"
    path.write_text(json.dumps(doc))
    return path


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds the rounds and stops the CSMS process


def forever(node: str, faucet: str, interval_s: float) -> None:
    """The devnet's charging flow (see the module docstring)."""
    signal.signal(signal.SIGTERM, _stop)
    with tempfile.TemporaryDirectory(prefix="tanglepay-charging-flow-") as tmp:
        work = Path(tmp)
        seed = os.urandom(32)
        (work / "cpo.seed").write_text(seed.hex())
        from wallet.keys import AddressKey, ExtendedKey

        cpo = AddressKey(ExtendedKey.from_seed(seed)).public_key
        devnet = _attached_devnet(work, node, faucet)
        asyncio.run(fund_cpo_wallet(devnet, work, faucet_key=False))
        with csms_process(work, devnet, work / "cpo.seed") as csms:
            print(f"charging flow: CSMS at {csms['url']}, back office {csms['api']}", flush=True)

            async def rounds() -> None:
                for n in itertools.count(1):
                    try:
                        done = await drive(devnet, work, csms, cpo, n, faucet_key=False)
                    except (PaymentError, WalletError, httpx.HTTPError) as exc:
                        # one round that fails (a loaded devnet confirming late) is reported;
                        # the flow goes on with the next
                        error = f"{type(exc).__name__}: {exc}"
                        print(json.dumps({"round": n, "error": error}), flush=True)
                        await asyncio.sleep(interval_s)
                        continue
                    line = {
                        "round": n,
                        "paid_per_kwh": done["pay_as_you_charge"],
                        "prepaid_stopped": done["prepaid"]["stop_requested_by_csms"],
                        "prepaid_refund": done["prepaid_refund"],
                        "commitment": done["ledger_commitment"],
                    }
                    print(json.dumps(line), flush=True)
                    await asyncio.sleep(interval_s)

            asyncio.run(rounds())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--self-contained", action="store_true", help="a devnet of its own")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--node", help="a running devnet's node API (with --forever)")
    parser.add_argument("--faucet", help="its faucet, POST URL (with --forever)")
    parser.add_argument("--forever", action="store_true", help="rounds until SIGTERM")
    parser.add_argument("--interval-s", type=float, default=20.0, help="between rounds")
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --self-contained: rounds on one CSMS"
    )
    parser.add_argument("--devnet-process", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.devnet_process is not None:
        _devnet_main(args.devnet_process)
        return 0
    if args.forever:
        if not (args.node and args.faucet):
            parser.error("--forever needs --node and --faucet")
        forever(args.node, args.faucet, args.interval_s)
        return 0
    if not args.self_contained:
        parser.error("give --self-contained, or --node, --faucet and --forever")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    doc = self_contained(args.rounds)
    if args.json:
        print(json.dumps(doc))
    else:
        for name, value in doc.items():
            print(f"{name:>18}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
