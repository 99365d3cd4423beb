"""`tanglepay roaming anchor ...` and `clearing ...`: what a carrier puts on the ledger.

```
anchor agreement|bar|dispute|resolution FILE --db DB --node URL   one signed file's anchor
anchor batches --db DB --pair VPMN HPMN --node URL   every sealed header and kept acknowledgement
                                                     of the pair not anchored yet
anchor list    --db DB                               what this carrier anchored, message ids
clearing plan  --participant TADIG:KEY ... --obligation DEBTOR:CREDITOR:AMOUNT ...
               [--acks-from DB ...] --from S --to S [--currency EUR] -o FILE
                                                     net positions and <= N-1 transfers
clearing sign  FILE --key-file K                     this participant's signature (hex)
clearing pay   FILE --signature TADIG:HEX ... --payer TADIG --db DB --node URL
               --wallet-dir DIR --password-file F    pay this payer's transfers, exactly once
clearing show  FILE --db DB                          the plan's transfers with the transaction
                                                     and message ids this carrier recorded
```

`--acks-from DB` adds, for every pair of every agreement in that carrier database, the accepted
amount of each acknowledgement made within [--from, --to) as an obligation of the HPMN to the
VPMN (for carriers that settle by netting instead of over a channel); an acknowledgement kept in
two of the databases counts once, two different ones of the same batch are refused.
Anchors are kept in the carrier's database (`ledger_book.py`): running a command again anchors
nothing twice. `clearing pay` refuses a statement every participant has not signed, pays from
the wallet of `tanglepay wallet` in DIR (its keystore, account 0 and state, so the wallet's
history shows the transfers; the password is the file's first line, as the wallet reads it),
and prints each transfer's transaction and message ids, also kept in the database. The node
and the wallet are reached with trio.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from tangle.protocol.ids import PublicKey, Signature
from wallet import Wallet
from wallet.client import NodeClient
from wallet.keystore import open_keystore

from ._cli_base import UsageError, signer_of
from .acknowledgement import anchor_payload as ack_anchor
from .agreement import SignedAgreement
from .agreement import anchor_payload as agreement_anchor
from .bars import SignedBar
from .bars import anchor_payload as bar_anchor
from .batch import anchor_payload as header_anchor
from .clearing import execute
from .disputes import SignedDispute, SignedResolution
from .disputes import anchor_payload as dispute_anchor
from .errors import NettingError
from .ledger_book import LedgerBook, anchor
from .netting import ClearingStatement, Obligation
from .store import RoamingStore

if TYPE_CHECKING:
    import argparse

    from tangle.protocol.payload import TaggedData

Doc = dict[str, object]
CONFIRM_TIMEOUT_S = 300.0


def _file_payload(kind: str, data: bytes) -> TaggedData:
    if kind == "agreement":
        return agreement_anchor(SignedAgreement.decode(data))
    if kind == "bar":
        return bar_anchor(SignedBar.decode(data))
    if kind == "dispute":
        return dispute_anchor(SignedDispute.decode(data))
    return dispute_anchor(SignedResolution.decode(data))


async def _submit(db: Path, node_url: str, payloads: list[tuple[str, TaggedData]]) -> Doc:
    rows = []
    with LedgerBook(db) as book:
        async with NodeClient(node_url) as node:
            for kind, payload in payloads:
                message_id, new = await anchor(book, node, payload, kind)
                rows.append({"kind": kind, "message_id": message_id.hex(), "new": new})
    return {"anchors": rows}


def _anchor_file(args: argparse.Namespace) -> Doc:
    payload = _file_payload(args.kind, args.file.read_bytes())
    return trio.run(_submit, args.db, args.node, [(args.kind, payload)])


def _anchor_batches(args: argparse.Namespace) -> Doc:
    vpmn, hpmn = args.pair
    payloads: list[tuple[str, TaggedData]] = []
    with RoamingStore(args.db) as store:
        for sequence in range(1, store.next_batch_sequence(vpmn, hpmn)):
            batch = store.batch(vpmn, hpmn, sequence)
            if batch is not None:
                payloads.append(("batch", header_anchor(batch.signed)))
        payloads += [("ack", ack_anchor(a)) for a in store.acks(vpmn, hpmn)]
    return trio.run(_submit, args.db, args.node, payloads)


def _anchor_list(args: argparse.Namespace) -> Doc:
    with LedgerBook(args.db) as book:
        rows = book.anchors()
    return {"anchors": [{"kind": k, "payload": p.hex(), "message_id": m.hex()} for k, p, m in rows]}


def _split(spec: str, parts: int, what: str) -> list[str]:
    fields = spec.split(":")
    if len(fields) != parts:
        raise UsageError(f"{what} {spec!r}: {parts} fields separated by ':'")
    return fields


def _acked(paths: list[Path], start: int, end: int) -> list[Obligation]:
    """The accepted amounts acknowledged within [start, end) in the databases at `paths`."""
    amounts: dict[tuple[str, str, int], tuple[int, bytes]] = {}
    for path in paths:
        with RoamingStore(path) as store:
            pairs = {
                (a.tadig, b.tadig)
                for s in store.agreements()
                for a in s.agreement.parties
                for b in s.agreement.parties
                if a.tadig != b.tadig
            }
            for vpmn, hpmn in sorted(pairs):
                for signed in store.acks(vpmn, hpmn):
                    ack = signed.ack
                    if not start <= ack.acked_utc < end or not ack.accepted_amount:
                        continue
                    key, held = (vpmn, hpmn, ack.sequence), (ack.accepted_amount, ack.hash)
                    if amounts.setdefault(key, held) != held:
                        raise NettingError(f"two acknowledgements of batch {key}")
    return [
        Obligation(debtor=hpmn, creditor=vpmn, amount=amount)
        for (vpmn, hpmn, _), (amount, _) in sorted(amounts.items())
    ]


def _plan(args: argparse.Namespace) -> Doc:
    keys = {}
    for spec in args.participant:
        tadig, key = _split(spec, 2, "--participant")
        keys[tadig] = PublicKey.from_hex(key)
    obligations = []
    for spec in args.obligation:
        debtor, creditor, amount = _split(spec, 3, "--obligation")
        if not amount.isdigit():
            raise UsageError(f"--obligation {spec!r}: the amount is a whole number")
        obligations.append(Obligation(debtor=debtor, creditor=creditor, amount=int(amount)))
    obligations += _acked(args.acks_from, args.start, args.end)
    made = ClearingStatement.of(
        obligations, keys, period_start=args.start, period_end=args.end, currency=args.currency
    )
    args.output.write_bytes(made.encode())
    return {
        "file": str(args.output),
        "hash": made.hash.hex(),
        "positions": dict(made.positions),
        "transfers": [[t.payer, t.payee, t.amount] for t in made.transfers],
    }


def _sign(args: argparse.Namespace) -> Doc:
    made = ClearingStatement.decode(args.file.read_bytes())
    tadig, signature = made.sign(signer_of(args.key_file))
    return {"participant": tadig, "signature": signature.hex(), "hash": made.hash.hex()}


async def _pay_from_wallet(args: argparse.Namespace, made: ClearingStatement) -> Doc:
    signatures = {}
    for spec in args.signature:
        tadig, sig = _split(spec, 2, "--signature")
        signatures[tadig] = Signature.from_hex(sig)
    password = args.password_file.read_text(encoding="utf-8").split("\n", 1)[0].rstrip("\r")
    unlocked = open_keystore(args.wallet_dir / "keystore.json", password)
    network = unlocked.network
    state = args.wallet_dir / f"{network.name}-account0.db"
    async with Wallet.open(
        unlocked.account(0), url=args.node, state_path=state, network=network
    ) as wallet:
        await wallet.sync()
        done = await execute(made, signatures, wallet, args.payer, timeout_s=CONFIRM_TIMEOUT_S)
    with LedgerBook(args.db) as book:
        await trio.to_thread.run_sync(
            partial(book.save_clearing, made.hash, args.payer, done.encode())
        )
    return done.to_json_object()


def _pay(args: argparse.Namespace) -> Doc:
    made = ClearingStatement.decode(args.file.read_bytes())
    return trio.run(_pay_from_wallet, args, made)


def _show(args: argparse.Namespace) -> Doc:
    made = ClearingStatement.decode(args.file.read_bytes())
    payers = sorted({t.payer for t in made.transfers})
    with LedgerBook(args.db) as book:
        kept = [book.clearing(made.hash, p) for p in payers]
    paid: dict[int, object] = {}
    for raw in kept:
        if raw is not None:
            for row in json.loads(raw)["transfers"]:
                paid[int(row["index"])] = row
    transfers = [
        paid.get(i, {"index": i, "payer": t.payer, "payee": t.payee, "amount": t.amount})
        for i, t in enumerate(made.transfers)
    ]
    return {"hash": made.hash.hex(), "positions": dict(made.positions), "transfers": transfers}


def add_ledger_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `anchor` and `clearing` commands, on the roaming CLI's parser."""
    anchor_cmd = commands.add_parser("anchor").add_subparsers(dest="action", required=True)
    for kind in ("agreement", "bar", "dispute", "resolution"):
        sub = anchor_cmd.add_parser(kind)
        sub.add_argument("file", type=Path)
        sub.set_defaults(run=_anchor_file, kind=kind)
    batches = anchor_cmd.add_parser("batches")
    batches.add_argument("--pair", nargs=2, required=True, metavar=("VPMN", "HPMN"))
    batches.set_defaults(run=_anchor_batches)
    listing = anchor_cmd.add_parser("list")
    listing.add_argument("--db", type=Path, required=True)
    listing.set_defaults(run=_anchor_list)
    for name, sub in anchor_cmd.choices.items():
        if name != "list":
            sub.add_argument("--db", type=Path, required=True)
            sub.add_argument("--node", required=True)

    clearing = commands.add_parser("clearing").add_subparsers(dest="action", required=True)
    plan = clearing.add_parser("plan")
    plan.add_argument("--participant", action="append", required=True, metavar="TADIG:KEY")
    plan.add_argument("--obligation", action="append", default=[], metavar="D:C:AMOUNT")
    plan.add_argument("--acks-from", action="append", type=Path, default=[], metavar="DB")
    plan.add_argument("--from", dest="start", type=int, required=True)
    plan.add_argument("--to", dest="end", type=int, required=True)
    plan.add_argument("--currency", default="EUR")
    plan.add_argument("-o", "--output", type=Path, required=True)
    plan.set_defaults(run=_plan)
    sign = clearing.add_parser("sign")
    sign.add_argument("file", type=Path)
    sign.add_argument("--key-file", type=Path, required=True)
    sign.set_defaults(run=_sign)
    pay = clearing.add_parser("pay")
    pay.add_argument("file", type=Path)
    pay.add_argument("--signature", action="append", required=True, metavar="TADIG:HEX")
    pay.add_argument("--payer", required=True)
    pay.add_argument("--db", type=Path, required=True)
    pay.add_argument("--node", required=True)
    pay.add_argument("--wallet-dir", type=Path, required=True)
    pay.add_argument("--password-file", type=Path, required=True)
    pay.set_defaults(run=_pay)
    show = clearing.add_parser("show")
    show.add_argument("file", type=Path)
    show.add_argument("--db", type=Path, required=True)
    show.set_defaults(run=_show)
