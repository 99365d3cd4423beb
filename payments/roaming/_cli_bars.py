"""`tanglepay roaming bars ...`: the HPMN bars a subscriber; the VPMN keeps the bar.

```
bars add    --db DB --agreement F --key-file K --imsi DIGITS --salt-file F --since S -o FILE
            [--now S]
bars send   FILE --to URL --agreement F --key-file K   (the HPMN) send the bar to the VPMN's
                                                operator API; from then on the VPMN refuses
                                                the subscriber's later usage
bars record FILE --db DB --agreement F [--now S]   (the VPMN) keep the HPMN's signed bar
bars list   --db DB                             keyed IMSI hashes and the second each bar starts
```

The IMSI is hashed with the agreement's salt at once and never printed, stored or sent: the bar,
the store and the output carry only the keyed hash. A bar may not start before it is added or
recorded (`--now`, the clock by default) less `BAR_GRACE_S`: it is refused by name
(`BackdatedBarError`), since it would take back usage already served.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import trio

from ._cli_base import signed_agreement, signer_of
from .api import post_bar
from .bars import Bar, BarList, SignedBar, sign_bar
from .desk import CarrierDesk
from .store import RoamingStore
from .subscriber import SubscriberHasher

if TYPE_CHECKING:
    import argparse

Doc = dict[str, object]


def _now(args: argparse.Namespace) -> int:
    return int(time.time()) if args.now is None else int(args.now)


def _add(args: argparse.Namespace) -> Doc:
    signed = signed_agreement(args.agreement)
    signer = signer_of(args.key_file)
    hasher = SubscriberHasher(salt=bytes.fromhex(args.salt_file.read_text().strip()))
    home = next(p.tadig for p in signed.agreement.parties if p.key == signer.public_key)
    bar = Bar(
        agreement=signed.agreement.hash, hpmn=home, imsi_hash=hasher.imsi(args.imsi),
        since=args.since,
    )  # fmt: skip
    signed_bar = sign_bar(bar, signer)
    with RoamingStore(args.db) as store:
        new = CarrierDesk(store, signed, signer).bar(signed_bar, _now(args))
    args.output.write_bytes(signed_bar.encode())
    return {"imsi_hash": bar.imsi_hash.hex(), "since": bar.since, "new": new}


def _send(args: argparse.Namespace) -> Doc:
    agreement = signed_agreement(args.agreement).agreement
    signed = SignedBar.decode(args.file.read_bytes())
    signer = signer_of(args.key_file)
    home = signed.bar.hpmn
    vpmn = agreement.counterparty(home).tadig

    async def send() -> bool:
        async with httpx.AsyncClient(base_url=args.to, timeout=30) as http:
            return await post_bar(http, signer, home, vpmn, signed, int(time.time()))

    new = trio.run(send)
    return {"imsi_hash": signed.bar.imsi_hash.hex(), "since": signed.bar.since, "to": vpmn,
            "new": new}  # fmt: skip


def _record(args: argparse.Namespace) -> Doc:
    agreement = signed_agreement(args.agreement)
    signed = SignedBar.decode(args.file.read_bytes())
    with RoamingStore(args.db) as store:
        bars = BarList.restored(agreement.agreement, store.bars(), signed.bar.hpmn)
        new = bars.add(signed, _now(args))
        if new:
            store.put_agreement(agreement)  # the import gate finds the pair's bars through it
            store.save_bar(signed)
    return {"imsi_hash": signed.bar.imsi_hash.hex(), "since": signed.bar.since, "new": new}


def _list(args: argparse.Namespace) -> Doc:
    with RoamingStore(args.db) as store:
        held = store.bars()
    rows = [
        {"imsi_hash": b.bar.imsi_hash.hex(), "hpmn": b.bar.hpmn, "since": b.bar.since} for b in held
    ]
    return {"bars": rows}


def add_bar_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `bars` subcommands, on the roaming CLI's parser."""
    bars = commands.add_parser("bars").add_subparsers(dest="action", required=True)
    add = bars.add_parser("add")
    record = bars.add_parser("record")
    send = bars.add_parser("send")
    listing = bars.add_parser("list")
    for sub in (add, record, listing):
        sub.add_argument("--db", type=Path, required=True)
    for sub in (add, record, send):
        sub.add_argument("--agreement", type=Path, required=True)
    for sub in (record, send):
        sub.add_argument("file", type=Path)
    for sub in (add, record):
        sub.add_argument(
            "--now", type=int, default=None, help="the second the bar arrives (default: now)"
        )
    for sub in (add, send):
        sub.add_argument("--key-file", type=Path, required=True)
    send.add_argument("--to", required=True, help="the VPMN's operator API, e.g. https://...")
    send.set_defaults(run=_send)
    add.add_argument("--imsi", required=True)
    add.add_argument("--salt-file", type=Path, required=True)
    add.add_argument("--since", type=int, required=True)
    add.add_argument("-o", "--output", type=Path, required=True)
    add.set_defaults(run=_add)
    record.set_defaults(run=_record)
    listing.set_defaults(run=_list)
