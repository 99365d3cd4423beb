"""`tanglepay roaming serve`: one carrier's desks, one per agreement (partner), as a process
(trio).

```
serve --db DB --agreement F [--agreement F ...] --key-file K [--host H] [--port P]
      [--backoffice-host H] [--backoffice-port Q]
      [--token-file F] [--node URL] [--data-volume-limit B] [--call-seconds-limit S]
      [--imsi-spend-cap N] [--partner-spend-cap N]
```

It serves the operator API (`api.py`: the partner's batches in, signed acknowledgements and
the partner's bars) on `--port`, and the back-office API (`backoffice.py`: fraud alerts as a long
poll, Prometheus metrics) on `--backoffice-host` and `--backoffice-port`. Both listen on loopback
by default, and the back office stays there when `--host` opens the operator API to partners: its
alerts name subscribers (keyed IMSI hashes), so a back-office host that is not loopback is refused
without `--token-file` (the bearer token it then requires). Port 0 picks a free one.
Every agreement names this carrier (the key's party) and one partner; a partner's request goes
to its agreement's desk. The records of every accepted batch, from every partner, go through
one fraud watch as they arrive, so a SIM seen in two partners' networks at once is a clone
(thresholds from the flags; the IMSI spend cap defaults to the smallest 4-hour fraud charge of
the agreements). Once both listen
it prints one JSON line naming their URLs, then runs until interrupted. With `--node`, every
acknowledgement it signs is anchored on the ledger through that node as it goes out (kept in
the ledger book, so `anchor batches` later anchors only what this missed: a node that was down,
or more than `ANCHOR_QUEUE` waiting). Read the alerts with
`tanglepay roaming alerts --url BACKOFFICE_URL [--follow]`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from wallet.client import NodeClient

from ._cli_base import UsageError, signed_agreement, signer_of
from .acknowledgement import SignedAcknowledgement
from .acknowledgement import anchor_payload as ack_anchor
from .alerts import FraudWatch
from .api import roaming_app
from .backoffice import backoffice_app
from .desk import CarrierDesk
from .errors import RoamingError
from .fraud import FraudConfig, FraudMonitor
from .ledger_book import LedgerBook, anchor
from .request_auth import RequestVerifier
from .store import RoamingStore

if TYPE_CHECKING:
    import argparse

    from starlette.applications import Starlette


Doc = dict[str, object]
ANCHOR_QUEUE: Final = 10_000
"""Acknowledgements waiting to be anchored; past it, the newest wait for `anchor batches`."""


async def _anchor_acks(
    db: Path, node: str, acks: trio.MemoryReceiveChannel[SignedAcknowledgement]
) -> None:
    """Anchor each acknowledgement from `acks` through `node`, once; a failure is reported on
    stderr and left to `anchor batches`."""
    with LedgerBook(db) as book:
        async with NodeClient(node) as client:
            async for signed in acks:
                try:
                    await anchor(book, client, ack_anchor(signed), "ack")
                except RoamingError as e:
                    print(f"tanglepay roaming serve: {e}", file=sys.stderr, flush=True)


async def _listen(
    app: Starlette, host: str, port: int, *, task_status: trio.TaskStatus[int]
) -> None:
    """Serve `app` with hypercorn on `host:port` (0: a free port); report the bound port. (The
    node's `tangle.http.api.serve_api` does the same, but `payments` may not import the node's
    HTTP room.)"""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.include_server_header = False
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(hypercorn_serve, app, config))  # type: ignore[arg-type]
        task_status.started(int(binds[0].rsplit(":", 1)[1]))


async def _stop_on_signal(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Cancel `scope` (every service, then the stores close) on SIGINT or SIGTERM: a stop is a
    cancellation at the services' checkpoints, never a KeyboardInterrupt raised wherever the
    signal lands (inside a worker thread's sqlite call, or hypercorn's shutdown)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            scope.cancel()
            return


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


async def _serve(args: argparse.Namespace) -> None:
    signer = signer_of(args.key_file)
    agreements = [signed_agreement(path) for path in args.agreement]
    charges = [s.agreement.fraud_charge_4h for s in agreements if s.agreement.fraud_charge_4h]
    config = FraudConfig(
        data_volume_limit=args.data_volume_limit,
        call_seconds_limit=args.call_seconds_limit,
        imsi_spend_cap=args.imsi_spend_cap or min(charges, default=10**12),
        partner_spend_cap=args.partner_spend_cap,
    )
    token = None if args.token_file is None else args.token_file.read_text().strip()
    watch = FraudWatch(FraudMonitor(config))
    with RoamingStore(args.db) as store, RoamingStore(args.db) as reader:
        desks: dict[str, CarrierDesk] = {}
        for signed in agreements:
            desk = CarrierDesk(store, signed, signer, watch=watch)
            if desk.partner in desks or desk.home != next(iter(desks.values()), desk).home:
                raise UsageError("one agreement per partner, each naming this carrier")
            desks[desk.partner] = desk
        home = next(iter(desks.values())).home
        keys = {t: d.agreement.agreement.party(t).key for t, d in desks.items()}
        verifier = RequestVerifier(keys, own=home)
        send, receive = trio.open_memory_channel[SignedAcknowledgement](ANCHOR_QUEUE)

        def queue(signed: SignedAcknowledgement) -> None:
            with contextlib.suppress(trio.WouldBlock):
                send.send_nowait(signed)

        on_ack = None if args.node is None else queue
        operator = roaming_app(desks, verifier, clock=lambda: int(time.time()), on_ack=on_ack)
        office = backoffice_app(watch, reader, token=token)
        async with trio.open_nursery() as nursery:
            await nursery.start(_stop_on_signal, nursery.cancel_scope)
            if args.node is not None:
                nursery.start_soon(_anchor_acks, args.db, args.node, receive)
            port = await nursery.start(_listen, operator, args.host, args.port)
            office_port = await nursery.start(
                _listen, office, args.backoffice_host, args.backoffice_port
            )
            where = {
                "carrier": home,
                "partners": sorted(desks),
                "operator_api": f"http://{args.host}:{port}",
                "backoffice_api": f"http://{args.backoffice_host}:{office_port}",
            }
            print(json.dumps(where, sort_keys=True), flush=True)


def _run(args: argparse.Namespace) -> Doc:
    if args.token_file is None and not _loopback(args.backoffice_host):
        raise UsageError(
            f"--backoffice-host {args.backoffice_host} is not loopback: the back office needs"
            " --token-file there"
        )
    trio.run(_serve, args)
    return {"stopped": True}


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `serve` command, on the roaming CLI's parser."""
    serve = commands.add_parser("serve")
    serve.add_argument("--db", type=Path, required=True)
    serve.add_argument("--agreement", type=Path, action="append", required=True)
    serve.add_argument("--key-file", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--backoffice-host", default="127.0.0.1")
    serve.add_argument("--backoffice-port", type=int, default=0)
    serve.add_argument("--token-file", type=Path)
    serve.add_argument("--node", help="anchor each acknowledgement through this node")
    serve.add_argument("--data-volume-limit", type=int, default=5 * 1024**3)
    serve.add_argument("--call-seconds-limit", type=int, default=4 * 3600)
    serve.add_argument("--imsi-spend-cap", type=int, default=0, help="0: the agreements'")
    serve.add_argument("--partner-spend-cap", type=int, default=10**12)
    serve.set_defaults(run=_run)
