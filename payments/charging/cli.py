"""`tanglepay charging ...`: run the CSMS and look after its stations, sessions and bills.

```
tanglepay charging serve --db csms.sqlite [--host 127.0.0.1] [--port 8180] [--price-per-kwh 30]
tanglepay charging stations add CP-1 --password-env CP1_PASSWORD
tanglepay charging stations list [--json]
tanglepay charging sessions [--json]
tanglepay charging cdrs [--json]
```

`serve` runs the CSMS on asyncio until SIGINT or SIGTERM and prints one line (with `--json`, one
JSON object) naming the URL charge points connect to: `ws://HOST:PORT/ocpp/<station id>`. A CSMS
restarted on the same database resumes every unbilled session. `cdrs` lists the final bill of
each ended session. Errors are one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PaymentError
from .csms import Csms, serve_csms
from .store import CsmsStore

if TYPE_CHECKING:
    from collections.abc import Callable


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tanglepay charging", description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("data/charging/csms.sqlite"))
    parser.add_argument("--json", action="store_true", help="print JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the CSMS")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8180)
    serve.add_argument("--price-per-kwh", type=int, default=30, help="minor units per kWh")
    stations = commands.add_parser("stations", help="add or list charge points")
    actions = stations.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="register a station (or set its password)")
    add.add_argument("station")
    add.add_argument("--password-env", required=True, help="the variable holding its password")
    actions.add_parser("list", help="list the stations")
    commands.add_parser("sessions", help="list the sessions")
    commands.add_parser("cdrs", help="list the bills of ended sessions")
    return parser


def per_kwh(price: int) -> Callable[[int, int], int]:
    """`price` minor units per kWh, rounded up, whatever the duration."""

    def pricing(energy_wh: int, duration_s: int) -> int:
        del duration_s
        return -(-energy_wh * price // 1000)

    return pricing


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with CsmsStore(args.db) as store:
        csms = Csms(store=store, pricing=per_kwh(args.price_per_kwh))
        resumed = await csms.restore()
        async with serve_csms(csms, args.host, args.port) as server:
            host, port = next(iter(server.sockets)).getsockname()[:2]
            url = f"ws://{host}:{port}/ocpp"
            line = {"url": url, "resumed_sessions": resumed, "pid": os.getpid()}
            print(json.dumps(line) if args.json else f"CSMS at {url}/<station>", flush=True)
            await stop.wait()
    print("stopped" if not args.json else json.dumps({"stopped": True}), flush=True)


async def _query(args: argparse.Namespace) -> object:
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.db.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.command == "serve":
            asyncio.run(_serve(args))
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
