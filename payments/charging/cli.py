"""`tanglepay charging ...`: run the CSMS and look after its stations, sessions and bills.

```
tanglepay charging serve --db csms.sqlite [--host 127.0.0.1] [--port 8180] [--api-port 8181]
                         [--price-per-kwh 30] [--node-api http://127.0.0.1:14265
                          --network-id N --cpo-seed-file cpo.seed --margin 100
                          [--devices [--device-token TOKEN=DEVICE_ID ...]]
                          [--refund-seed-file cpo-wallet.seed]]
                         [--tariff tariff.json --ocpi-port 8182 --party NL/TPY
                          --location location.json]
tanglepay charging stations add CP-1 --password-env CP1_PASSWORD
tanglepay charging stations list [--json]
tanglepay charging sessions [--json]
tanglepay charging cdrs [--json]
tanglepay charging refunds [--held] [--limit N] [--after KIND/ID] [--json]
tanglepay charging refund-retry KIND ID
tanglepay charging refund-settle KIND ID --note "paid by bank transfer ref X"
tanglepay charging refund-hold KIND ID
tanglepay charging verify-session CP-1 TX-1 --api http://127.0.0.1:8181
                         --node-api http://127.0.0.1:14265 --meter-key meter.pub [--json]
```

`serve` runs the CSMS and its back-office API (`backoffice.py`) on asyncio until SIGINT or
SIGTERM and prints one line (with `--json`, one JSON object) naming the URL charge points connect
to, `ws://HOST:PORT/ocpp/<station id>`, and the API's URL. The operator token is read from
`$CSMS_OPERATOR_TOKEN` (operator routes answer 401 while it is unset). With `--node-api`, drivers
pay as they charge (or prepay) over payment channels the CSMS looks up on that node's HTTP API,
and each billed session's meter record is committed to the ledger through it (`commitment.py`);
the CPO's channel key comes from the 32-byte hex seed in `--cpo-seed-file`. With `--devices`, a
token whose channel key, or whose device (`--device-token`, hex device id), is a quarantined
device of the node's registry is refused by name, Blocked (`devices.py`);
with `--refund-seed-file` (a wallet seed, hex), a prepaid session's unused rest is paid back from
that wallet (`refund.py`). With `--ocpi-port`, eMSPs roam (`roaming_service.py`): they register
with the Token A in `$OCPI_TOKEN_A`, push their tokens, and get OCPI Sessions and CDRs priced by
`--tariff` at the OCPI CdrLocation in `--location` (partners, tokens and CDRs sent are kept in
the CSMS's database). A CSMS restarted on
the same database resumes every unbilled session. `cdrs` lists the final bill of
each ended session. `verify-session` is the driver's check (`verify.py`): the session record the
back office serves hashes to the digest on the ledger (read from the node given), and every
signed meter value in it verifies with the meter's OCMF public key (hex DER or PEM, in the
file). `refunds` lists the refunds owed to drivers (`--held`: those the refunder no longer
pays), a page of `--limit` ordered by refund (KIND is `session`, ID `CP/TX`, or `token`, ID the
row id; `--after` the last one listed for the next page: a full page says so on stderr), each
with its state, attempt, failed tries, the idempotency key of its current attempt, as the
CPO's wallet records its transfer (`wallet history`), and that transfer's state in the wallet
(`transfer`: `none`, `pending`, `confirmed`, `failed`, `abandoned`, `unknown` where its record
cannot be read; null when there is no wallet state file, `<db>.wallet.sqlite`, beside the
database: read only); `refund-retry` owes
a held refund again (one the refunder held under its next attempt, once the operator has
checked that its failed transfer can never confirm; one `refund-hold` paused under its key);
`refund-settle` forgets one paid outside the ledger and prints it with the note, and refuses
while the wallet's transfer under its key is pending (it may still confirm: `refund-retry` it
to resume it), confirmed (the ledger paid it: `refund-retry` it, and the refunder records it
paid) or abandoned after it was attached (it may be attached again and apply, until the wallet
records one of its inputs spent by another of its transfers); `refund-hold` stops the refunder
paying one (`paused`), so that it can be settled (a payment under way attaches nothing once
it finds the refund held: `refund_desk`). Errors are one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tangle.errors import TangleError
from wallet import AccountKey, Wallet
from wallet.client import NodeClient
from wallet.errors import WalletError
from wallet.keys import AddressKey, ExtendedKey

from ..channels.service import PayeeService
from ..errors import PaymentError
from ..payperuse.cashier import Cashier, LedgerDirectory
from ..payperuse.metering import Tariff
from . import ocmf, ocpi_json
from .backoffice import backoffice_app, serve_backoffice
from .channel_rows import CsmsChannels
from .commitment import LedgerCommitter
from .csms import Csms, run_process, serve_csms, tune_process
from .devices import DeviceGate
from .errors import SignedMeterValueError
from .ocpi_location import parse_cdr_location
from .ocpi_tariff import parse_tariff
from .pay_stream import payment_stream
from .payment import ChargePayments
from .pricing import ocpi_pricing
from .refund import PrepaidRefunds
from .refund_desk import MAX_PAGE, SESSION, TOKEN, parse_ref
from .refund_wallet import LedgerWallet, state_records, wallet_state_path
from .roaming_service import serve_roaming
from .store import CsmsStore
from .verify import verify_session

if TYPE_CHECKING:
    from .refund_attempts import TransferRecords
    from .roaming_cpo import RoamingCpo
    from .session import Pricing
    from .tariff import Tariff as OcpiTariff


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tanglepay charging", description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("data/charging/csms.sqlite"))
    parser.add_argument("--json", action="store_true", help="print JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the CSMS")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8180)
    serve.add_argument("--api-port", type=int, default=8181, help="the back-office API")
    serve.add_argument("--price-per-kwh", type=int, default=30, help="minor units per kWh")
    serve.add_argument(
        "--tariff", type=Path, help="an OCPI 2.2.1 tariff (JSON) for sessions not paid by channel"
    )
    serve.add_argument("--node-api", help="a node's HTTP API: take channel payments")
    serve.add_argument("--network-id", type=int, default=0)
    serve.add_argument("--cpo-seed-file", type=Path, help="the CPO's channel key seed (hex)")
    serve.add_argument("--margin", type=int, default=100, help="most a driver may owe")
    serve.add_argument("--devices", action="store_true", help="refuse quarantined devices")
    serve.add_argument(
        "--device-token", action="append", default=[], help="TOKEN=DEVICE_ID (hex), repeatable"
    )
    serve.add_argument("--refund-seed-file", type=Path, help="pays prepaid rests back (hex seed)")
    serve.add_argument("--ocpi-port", type=int, help="serve OCPI 2.2.1 to eMSPs (roaming)")
    serve.add_argument("--party", default="NL/TPY", help="our OCPI country code/party id")
    serve.add_argument("--location", type=Path, help="an OCPI CdrLocation (JSON) for CDRs")
    serve.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="what the CSMS logs on stderr (refunds paid, held and settled at info)",
    )
    stations = commands.add_parser("stations", help="add or list charge points")
    actions = stations.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="register a station (or set its password)")
    add.add_argument("station")
    add.add_argument("--password-env", required=True, help="the variable holding its password")
    actions.add_parser("list", help="list the stations")
    commands.add_parser("sessions", help="list the sessions")
    commands.add_parser("cdrs", help="list the bills of ended sessions")
    refunds = commands.add_parser("refunds", help="list the refunds owed to drivers")
    refunds.add_argument("--held", action="store_true", help="only those held for the operator")
    refunds.add_argument("--limit", type=_page_size, default=MAX_PAGE, help=f"1-{MAX_PAGE}")
    refunds.add_argument("--after", help="KIND/ID: the last refund of the page before")
    for name, text in (
        ("refund-retry", "owe a held refund again, under its next attempt"),
        (
            "refund-settle",
            "forget a held refund paid outside the ledger (not while its "
            "transfer is pending, confirmed or abandoned)",
        ),
        ("refund-hold", "stop paying an owed refund (to settle it)"),
    ):
        action = commands.add_parser(name, help=text)
        action.add_argument("kind", choices=(SESSION, TOKEN))
        action.add_argument("id", help="CP/TX for a session, the row id for a token")
        if name == "refund-settle":
            action.add_argument("--note", required=True, help="how it was paid")
    verify = commands.add_parser("verify-session", help="check a session's signed meter values")
    verify.add_argument("station")
    verify.add_argument("transaction")
    verify.add_argument("--api", required=True, help="the CSMS's back-office API")
    verify.add_argument("--node-api", required=True, help="a node you trust")
    verify.add_argument("--meter-key", type=Path, required=True, help="the meter's public key")
    return parser


def per_kwh(tariff: Tariff) -> Pricing:
    """Sessions priced by the energy alone, at `tariff`."""

    def pricing(start_s: int, energy_wh: int, duration_s: int) -> int:
        del start_s, duration_s
        return tariff.cost(energy_wh)

    return pricing


async def _serve(args: argparse.Namespace) -> None:
    if (args.devices or args.refund_seed_file) and not args.node_api:
        raise SystemExit("error: --devices and --refund-seed-file need --node-api")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tariff = Tariff.per_kwh(args.price_per_kwh)
    operator = os.environ.get("CSMS_OPERATOR_TOKEN") or secrets.token_hex(32)
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(CsmsStore(args.db))
        pricing: Pricing = per_kwh(tariff)
        ocpi = None
        if args.tariff is not None:
            ocpi = parse_tariff(ocpi_json.loads(args.tariff.read_bytes()))
            pricing = ocpi_pricing(ocpi)
        csms = Csms(store=store, pricing=pricing)
        payments = None
        refund_wallet: TransferRecords | None = None
        if args.node_api:
            node = await stack.enter_async_context(NodeClient(args.node_api))
            payments = await _payments(args, csms, tariff, node)
            csms.authorize = payments.authorize
            csms.channel_pricing = payments.pricing
            committer = LedgerCommitter(store, node)
            csms.on_bill.append(committer)
            if args.devices:
                payments.devices = DeviceGate(
                    lookup=node.device, lookup_key=node.device_by_key, log_limit=csms.log_limit
                )
            if args.refund_seed_file is not None:
                refunds, refund_wallet = await _refunds(stack, args, payments, node)
                csms.on_bill.append(refunds)
        if refund_wallet is None:  # an earlier run's wallet, if any: what settling checks
            refund_wallet = await stack.enter_async_context(
                state_records(wallet_state_path(args.db))
            )
        roaming = None
        if args.ocpi_port is not None:
            roaming = await _roaming(stack, args, csms, ocpi, node if args.node_api else None)
            if args.node_api:
                committer.cdr_hash = roaming.cdr_hash_of
        if args.devices and args.node_api:
            gate = DeviceGate(
                lookup=node.device,
                lookup_key=node.device_by_key,
                token_devices=_device_tokens(args.device_token),
                log_limit=csms.log_limit,
            )
            csms.authorize = gate.guard(csms.authorize)
        resumed = await csms.restore()
        tune_process()
        pay = None if payments is None else payment_stream(payments)
        server = await stack.enter_async_context(serve_csms(csms, args.host, args.port, pay))
        cdr_hash = None if roaming is None else roaming.cdr_hash_of
        app = backoffice_app(
            csms,
            payments,
            operator,
            tariff=ocpi,
            cdr_hash=cdr_hash,
            refund_wallet=refund_wallet,
        )
        api_port = await stack.enter_async_context(serve_backoffice(app, args.host, args.api_port))
        host, port = next(iter(server.sockets)).getsockname()[:2]
        url = f"ws://{host}:{port}/ocpp"
        line = {
            "url": url,
            "api": f"http://{host}:{api_port}",
            "resumed_sessions": resumed,
            "payments": payments is not None,
            "ocpi": None if roaming is None else roaming.registry.ours.url,
            "pid": os.getpid(),
        }
        print(json.dumps(line) if args.json else f"CSMS at {url}/<station>", flush=True)
        stopping, broken = (asyncio.create_task(e.wait()) for e in (stop, store.broken))
        await asyncio.wait((stopping, broken), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        broken.cancel()
        if store.broken.is_set():  # its answers would all be errors: a restart recovers
            raise SystemExit(f"error: the database {args.db} failed (a rollback failed): exiting")
    print("stopped" if not args.json else json.dumps({"stopped": True}), flush=True)


async def _payments(
    args: argparse.Namespace, csms: Csms, tariff: Tariff, node: NodeClient
) -> ChargePayments:
    if args.cpo_seed_file is None:
        raise SystemExit("error: --node-api needs --cpo-seed-file")
    seed = bytes.fromhex(args.cpo_seed_file.read_text().strip())
    signer = AddressKey(ExtendedKey.from_seed(seed))
    channels = CsmsChannels(csms.store)
    await channels.take_over(args.db.with_suffix(".channels.sqlite"))  # kept there before
    cashier = Cashier(
        payee=signer.public_key,
        network_id=args.network_id,
        directory=LedgerDirectory(node, args.network_id),
        service=PayeeService(channels),
    )
    return ChargePayments(
        csms=csms, cashier=cashier, signer=signer, tariff=tariff, margin=args.margin
    )


def _device_tokens(pairs: list[str]) -> dict[str, bytes]:
    tokens = {}
    for pair in pairs:
        token, _, device = pair.partition("=")
        try:
            tokens[token] = bytes.fromhex(device)
        except ValueError:
            raise SystemExit(f"error: --device-token {pair!r}: not TOKEN=HEX") from None
        if not token or len(tokens[token]) != 32:
            raise SystemExit(f"error: --device-token {pair!r}: a token and a 32-byte device id")
    return tokens


def _page_size(text: str) -> int:
    """`--limit`: a page of 1 to `MAX_PAGE` refunds, refused as the back office refuses it."""
    if not (text.isdecimal() and 0 < int(text) <= MAX_PAGE):
        raise argparse.ArgumentTypeError(f"must be 1-{MAX_PAGE}")
    return int(text)


async def _refunds(
    stack: contextlib.AsyncExitStack,
    args: argparse.Namespace,
    payments: ChargePayments,
    node: NodeClient,
) -> tuple[PrepaidRefunds, LedgerWallet]:
    """The refunder paying from the wallet of `--refund-seed-file`, retrying within `stack`, and
    that wallet (whose records settling checks)."""
    seed = bytes.fromhex(args.refund_seed_file.read_text().strip())
    wallet = await stack.enter_async_context(
        Wallet.open(AccountKey(seed, 0), url=args.node_api, state_path=wallet_state_path(args.db))
    )
    minimum = (await node.info()).min_output_amount
    ledger = LedgerWallet(wallet=wallet)
    refunds = PrepaidRefunds(payments=payments, wallet=ledger, min_amount=minimum)
    await stack.enter_async_context(refunds.retrying())  # owed refunds: now and periodically
    return refunds, ledger


async def _roaming(
    stack: contextlib.AsyncExitStack,
    args: argparse.Namespace,
    csms: Csms,
    tariff: OcpiTariff | None,
    node: NodeClient | None,
) -> RoamingCpo:
    token_a = os.environ.get("OCPI_TOKEN_A")
    if tariff is None or args.location is None or not token_a:
        raise SystemExit("error: --ocpi-port needs --tariff, --location and $OCPI_TOKEN_A")
    location = parse_cdr_location(ocpi_json.loads(args.location.read_bytes()), "location")
    country, _, party = args.party.partition("/")
    roaming, _ = await stack.enter_async_context(
        serve_roaming(
            csms,
            tariff=tariff,
            locations={"*": location},
            country_code=country,
            party_id=party,
            token_a=token_a,
            host=args.host,
            port=args.ocpi_port,
            node=node,
            persist=True,
        )
    )
    return roaming


async def _verify(args: argparse.Namespace) -> object:
    key = ocmf.load_key(args.meter_key.read_text())
    where = f"{args.api.rstrip('/')}/api/sessions/{args.station}/{args.transaction}/commitment"
    async with httpx.AsyncClient(timeout=30) as http, NodeClient(args.node_api) as node:
        try:
            answer = (await http.get(where)).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as e:
            raise SignedMeterValueError("back office", repr(e)) from None
        if not isinstance(answer, dict):
            raise SignedMeterValueError("back office", "not a commitment")
        try:
            return await verify_session(node, answer, key)
        except (WalletError, TangleError) as e:
            raise SignedMeterValueError("ledger", str(e)) from None


async def _query(args: argparse.Namespace) -> object:
    if args.command == "verify-session":
        return await _verify(args)
    async with CsmsStore(args.db) as store:
        if args.command == "stations":
            if args.action == "add":
                password = os.environ.get(args.password_env)
                if not password:
                    raise SystemExit(f"error: ${args.password_env} is empty or not set")
                await store.add_station(args.station, password)
                return {"added": args.station}
            return await store.stations()
        if args.command == "sessions":
            return await store.sessions()
        if args.command.startswith("refund"):
            return await _refunds_query(args, store)
        return [
            {
                "charge_point": b.charge_point,
                "transaction_id": b.transaction_id,
                "energy_wh": b.energy_wh,
                "duration_s": b.duration_s,
                "amount": b.amount,
            }
            for b in await store.bills()
        ]


async def _refunds_query(args: argparse.Namespace, store: CsmsStore) -> object:
    if args.command == "refund-hold":
        return (await store.refunds.hold(parse_ref(args.kind, args.id))).to_json()
    async with state_records(wallet_state_path(args.db)) as wallet:
        if args.command == "refund-retry":
            ref = parse_ref(args.kind, args.id)
            return (await store.refunds.retry_held(ref, wallet=wallet)).to_json()
        if args.command == "refunds":
            page = await store.refunds.page(
                held_only=args.held, after=args.after, limit=args.limit, wallet=wallet
            )
            if page.next is not None:
                print(f"more: --after {page.next}", file=sys.stderr)
            return [refund.to_json() for refund in page.refunds]
        ref = parse_ref(args.kind, args.id)
        settled = await store.refunds.settle_held(ref, args.note, wallet=wallet)
    return {**settled.to_json(), "settled": True, "note": args.note}


def configure_logging(level: str) -> None:
    """Log on stderr with times: tanglepay's own loggers at `level`, other libraries' (websockets,
    ocpp, hypercorn) at warning only (the `ocpp` library logs every message at info)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for package in ("payments", "tangle", "wallet"):
        logging.getLogger(package).setLevel(level.upper())


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command != "verify-session":
        args.db.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.command == "serve":
            configure_logging(args.log_level)
            run_process(_serve(args))
            return 0
        result = asyncio.run(_query(args))
    except (PaymentError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json or not isinstance(result, list):
        print(json.dumps(result))
    else:
        for row in result:
            print(row if isinstance(row, str) else "  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
