"""`tanglepay roaming ...`: a carrier's roaming back office from the shell.

```
agreement create  --party TADIG:KEY --party TADIG:KEY --valid-from S --valid-until S ... -o FILE
agreement sign    FILE --key-file K          this carrier's signature (hex)
agreement seal    FILE --signature HEX --signature HEX -o FILE   both signatures, checked
agreement show    FILE                       parties, validity, rates, hash (signed or not)
import            FILE --db DB --format tap|nrtrde --salt-file F   progress on stderr; usage of
                  a subscriber its HPMN barred (`bars record`) is refused, not kept
batch             --db DB --agreement FILE --key-file K --pair VPMN HPMN --now S   pending
                  usage of a subscriber the HPMN barred since it was imported is refused
batches           --db DB --pair VPMN HPMN   sealed batches and their acknowledgement
validate          FILE --db DB --agreement FILE --key-file K --now S   (HPMN) -> ack file
ack               FILE --db DB --agreement FILE   (VPMN) keep the HPMN's acknowledgement; the
                  records it returns BARRED with no bar kept here from before they began are
                  listed (`barred_without_a_bar`, batch indexes: dispute them)
returns           --db DB --agreement F --pair VPMN HPMN --sequence N [--format json|csv]
                  each return's code, severity, field, TAP element, found and expected value
statement         --db DB --agreement FILE --from S --to S --format json|csv|html
disputes          raise | answer | record | list   (see _cli_disputes.py)
bars              add | record | list               (see _cli_bars.py)
serve             --db DB --agreement F --key-file K   operator and back-office APIs (_cli_serve.py)
alerts            --url URL [--follow]              fraud alerts (see _cli_alerts.py)
anchor            agreement | bar | dispute | resolution | batches | list   (see _cli_ledger.py)
clearing          plan | sign | pay                 multilateral netting paid on the ledger
```

`--json` (anywhere) prints one JSON object on stdout; errors are one line on stderr (with
`--json`, `{"error": {...}}` on stdout). Exit codes: 0 done, 2 usage, 3 refused (a roaming rule
or a malformed input), 4 a file that cannot be read or written. A key file holds the 32-byte
ed25519 seed of the operator key in hex. No IMSI or MSISDN is ever printed: records carry only
their keyed hashes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from tangle.errors import TangleError
from tangle.protocol.ids import PublicKey, Signature
from tangle.protocol.signature import is_valid
from wallet.errors import WalletError

from ._cli_alerts import add_alert_commands
from ._cli_bars import add_bar_commands
from ._cli_base import UsageError, load_agreement, signed_agreement, signer_of
from ._cli_disputes import add_dispute_commands
from ._cli_import import MAX_LISTED, add_import_command
from ._cli_ledger import add_ledger_commands
from ._cli_returns import add_return_commands
from ._cli_serve import add_serve_command
from .acknowledgement import ReturnCode, SignedAcknowledgement, verify_ack
from .agreement import Agreement, Party, SignedAgreement, sign_agreement
from .bars import BarList
from .batch import Batch, Batcher, decode_batch, encode_batch
from .desk import CarrierDesk
from .errors import BarredUsageError, RoamingError
from .rating import Plan, PlanKind, Rounding
from .record import EventType
from .returns import explain
from .statement import StatementBuilder
from .store import RoamingStore

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_IO: Final = 4
Doc = dict[str, object]


def _plans(args: argparse.Namespace) -> tuple[Plan, ...]:
    def flat(service: EventType, price: int, per: int, increment: int, minimum: int) -> Plan:
        return Plan(
            service=service, price=price, per=per, increment=increment, minimum=minimum,
            rounding=Rounding.UP, kind=PlanKind.FLAT, tiers=(), commitment=0,
        )  # fmt: skip

    voice = args.voice_increment
    return (
        flat(
            EventType.DATA, args.data_price, args.data_per, args.data_increment, args.data_increment
        ),
        flat(EventType.MOC, args.voice_price, 60, voice, voice),
        flat(EventType.MTC, args.mtc_price, 60, voice, voice),
        flat(EventType.SMS_MO, args.sms_price, 1, 1, 1),
        flat(EventType.SMS_MT, 0, 1, 1, 0),
        flat(EventType.SUPPLEMENTARY, 0, 1, 1, 0),
    )


def _agreement_create(args: argparse.Namespace) -> Doc:
    parties = []
    for spec in sorted(args.party):
        tadig, _, key = spec.partition(":")
        try:
            parties.append(Party(tadig=tadig, key=PublicKey.from_hex(key), plans=_plans(args)))
        except TangleError as e:
            raise UsageError(f"--party {spec}: {e}") from None
    if len(parties) != 2:
        raise UsageError("two --party TADIG:KEY")
    agreement = Agreement(
        version=1, previous=None, parties=(parties[0], parties[1]),
        valid_from=args.valid_from, valid_until=args.valid_until, currency=args.currency,
        decimal_places=args.decimal_places, tax_bp=args.tax_bp,
        batch_max_records=args.batch_records, batch_max_age_s=args.batch_age,
        fraud_charge_4h=args.fraud_charge_4h, dispute_window_s=args.dispute_days * 86_400,
    )  # fmt: skip
    args.output.write_bytes(agreement.encode())
    return {"file": str(args.output), "hash": agreement.hash.hex()}


def _agreement_show(args: argparse.Namespace) -> Doc:
    agreement, signed = load_agreement(args.file)
    return {
        "hash": agreement.hash.hex(),
        "signed_by_both": signed is not None,
        "agreement": agreement.to_json_object(),
    }


def _agreement_sign(args: argparse.Namespace) -> Doc:
    agreement, _ = load_agreement(args.file)
    signer = signer_of(args.key_file)
    signature = sign_agreement(agreement, signer)
    tadig = next(p.tadig for p in agreement.parties if p.key == signer.public_key)
    return {"party": tadig, "signature": signature.hex(), "hash": agreement.hash.hex()}


def _agreement_seal(args: argparse.Namespace) -> Doc:
    agreement, _ = load_agreement(args.file)
    sigs = [Signature.from_hex(s) for s in args.signature]
    message = agreement.signing_message()
    ordered = [
        next((s for s in sigs if is_valid(p.key, message, s)), sigs[0]) for p in agreement.parties
    ]
    signed = SignedAgreement(agreement=agreement, signatures=(ordered[0], ordered[1]))
    args.output.write_bytes(signed.encode())
    return {"file": str(args.output), "hash": agreement.hash.hex()}


def _batch(args: argparse.Namespace) -> Doc:
    signed = signed_agreement(args.agreement)
    agreement = signed.agreement
    vpmn, hpmn = args.pair
    sealed: list[Batch] = []
    with RoamingStore(args.db) as store:
        batcher = Batcher(
            agreement, signer_of(args.key_file), sender=vpmn, recipient=hpmn,
            next_sequence=store.next_batch_sequence(vpmn, hpmn),
        )  # fmt: skip
        bars = BarList.restored(agreement, store.bars(), hpmn)
        refused: list[BarredUsageError] = []
        for _ in range(10_000):
            rows = store.pending_rows(vpmn, hpmn, agreement.batch_max_records)
            if not rows:
                break
            _, barred = bars.admit(rows)
            if barred:  # out of batching for good, then read the pending records again
                store.refuse_pending(row_id for row_id, _ in barred)
                refused += [e for _, e in barred]
                continue
            full = None  # only the last record can fill the batch: rows are at most its size
            for _, r in rows:
                full = batcher.add(r, args.now)
            batch = full if full is not None else batcher.flush(args.now)
            if batch is None:
                break
            store.save_batch(batch, [row_id for row_id, _ in rows])
            sealed.append(batch)
            if args.out_dir is not None:
                name = f"{vpmn}-{hpmn}-{batch.signed.header.sequence:08d}.batch"
                (args.out_dir / name).write_bytes(encode_batch(batch))
    return {"batches": [_header(b) for b in sealed], "refused": len(refused)}


def _header(batch: Batch) -> Doc:
    h = batch.signed.header
    return {
        "sequence": h.sequence,
        "count": h.count,
        "total_charge": h.total_charge,
        "root": h.root.hex(),
        "hash": h.hash.hex(),
    }


def _batches(args: argparse.Namespace) -> Doc:
    vpmn, hpmn = args.pair
    out = []
    with RoamingStore(args.db) as store:
        for seq in range(1, store.next_batch_sequence(vpmn, hpmn)):
            batch = store.batch(vpmn, hpmn, seq)
            ack = store.ack(vpmn, hpmn, seq)
            if batch is None:
                continue
            row = _header(batch)
            row["acknowledged"] = None if ack is None else ack.ack.accepted_amount
            out.append(row)
    return {"batches": out}


def _validate(args: argparse.Namespace) -> Doc:
    batch = decode_batch(args.file.read_bytes())
    with RoamingStore(args.db) as store:
        desk = CarrierDesk(store, signed_agreement(args.agreement), signer_of(args.key_file))
        signed = desk.receive_batch(batch, args.now)
    if args.ack_out is not None:
        args.ack_out.write_bytes(signed.encode())
    a = signed.ack
    details = explain(signed, batch, desk.agreement.agreement)
    return {
        "sequence": a.sequence,
        "fatal": a.fatal.name,
        "accepted_count": a.accepted_count,
        "accepted_amount": a.accepted_amount,
        "returns": [[r.index, r.severity.name, r.code.name] for r in a.returns],
        "return_details": [d.to_json_object() for d in details[:MAX_LISTED]],
    }


def _ack(args: argparse.Namespace) -> Doc:
    signed = SignedAcknowledgement.decode(args.file.read_bytes())
    agreement = signed_agreement(args.agreement).agreement
    verify_ack(signed, agreement)
    a = signed.ack
    with RoamingStore(args.db) as store:
        kept = store.save_ack(signed)
        batch = store.batch(a.sender, a.recipient, a.sequence)
        bars = BarList.restored(agreement, store.bars(), a.recipient)
    barred = [r.index for r in a.returns if r.code is ReturnCode.BARRED]
    records = () if batch is None else batch.records
    unbacked = [i for i in barred if i >= len(records) or not bars.barred(records[i])]
    return {"sequence": a.sequence, "accepted_amount": a.accepted_amount, "new": kept,
            "barred_without_a_bar": unbacked}  # fmt: skip


def _statement(args: argparse.Namespace) -> Doc:
    agreement = signed_agreement(args.agreement).agreement
    builder = StatementBuilder(agreement, period_start=args.start, period_end=args.end)
    a, b = (p.tadig for p in agreement.parties)
    with RoamingStore(args.db) as store:
        for sender, recipient in ((a, b), (b, a)):
            for ack in store.acks(sender, recipient):
                batch = store.batch(sender, recipient, ack.ack.sequence)
                if batch is not None:
                    builder.add_batch(batch, ack)
    statement = builder.build()
    text = {
        "json": lambda: statement.encode().decode(),
        "csv": statement.csv,
        "html": statement.html,
    }
    rendered = text[args.format]()
    if args.output is not None:
        args.output.write_text(rendered)
    elif not args.json:
        print(rendered)
    return {"hash": statement.hash.hex(), "statement": statement.to_json_object()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tanglepay roaming", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    commands = parser.add_subparsers(dest="command", required=True)
    agreement = commands.add_parser("agreement").add_subparsers(dest="action", required=True)
    create = agreement.add_parser("create")
    create.add_argument("--party", action="append", required=True, metavar="TADIG:KEY")
    for name, default in (
        ("valid-from", None), ("valid-until", None), ("decimal-places", 3), ("tax-bp", 0),
        ("batch-records", 1000), ("batch-age", 60), ("fraud-charge-4h", 0), ("dispute-days", 45),
        ("data-price", 1000), ("data-per", 1_048_576), ("data-increment", 1024),
        ("voice-price", 100), ("mtc-price", 20), ("voice-increment", 60), ("sms-price", 10),
    ):  # fmt: skip
        create.add_argument(f"--{name}", type=int, required=default is None, default=default)
    create.add_argument("--currency", default="EUR")
    create.add_argument("-o", "--output", type=Path, required=True)
    create.set_defaults(run=_agreement_create)
    for action, run in (
        ("show", _agreement_show),
        ("sign", _agreement_sign),
        ("seal", _agreement_seal),
    ):
        sub = agreement.add_parser(action)
        sub.add_argument("file", type=Path)
        sub.set_defaults(run=run)
        if action == "sign":
            sub.add_argument("--key-file", type=Path, required=True)
        if action == "seal":
            sub.add_argument("--signature", action="append", required=True)
            sub.add_argument("-o", "--output", type=Path, required=True)
    add_import_command(commands)
    batch = commands.add_parser("batch")
    batches = commands.add_parser("batches")
    validate = commands.add_parser("validate")
    ack = commands.add_parser("ack")
    ack.add_argument("file", type=Path)
    ack.add_argument("--db", type=Path, required=True)
    ack.add_argument("--agreement", type=Path, required=True)
    ack.set_defaults(run=_ack)
    statement = commands.add_parser("statement")
    validate.add_argument("file", type=Path)
    for sub in (batch, batches, validate, statement):
        sub.add_argument("--db", type=Path, required=True)
    for sub in (batch, validate, statement):
        sub.add_argument("--agreement", type=Path, required=True)
    for sub in (batch, validate):
        sub.add_argument("--key-file", type=Path, required=True)
        sub.add_argument("--now", type=int, required=True)
    for sub in (batch, batches):
        sub.add_argument("--pair", nargs=2, required=True, metavar=("VPMN", "HPMN"))
    batch.add_argument("--out-dir", type=Path)
    validate.add_argument("--ack-out", type=Path)
    statement.add_argument("--from", dest="start", type=int, required=True)
    statement.add_argument("--to", dest="end", type=int, required=True)
    statement.add_argument("--format", choices=("json", "csv", "html"), default="json")
    statement.add_argument("-o", "--output", type=Path)
    add_dispute_commands(commands)
    add_bar_commands(commands)
    add_alert_commands(commands)
    add_ledger_commands(commands)
    add_return_commands(commands)
    add_serve_command(commands)
    batch.set_defaults(run=_batch)
    batches.set_defaults(run=_batches)
    validate.set_defaults(run=_validate)
    statement.set_defaults(run=_statement)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tanglepay roaming` with `argv` (the arguments after `roaming`); the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in arguments
    arguments = [a for a in arguments if a != "--json"]
    try:
        args = build_parser().parse_args(arguments)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    args.json = as_json
    try:
        doc = args.run(args)
    except UsageError as e:
        return _fail(EXIT_USAGE, "usage", str(e), as_json)
    except (RoamingError, TangleError, WalletError) as e:
        return _fail(EXIT_REFUSED, type(e).__name__, str(e), as_json)
    except OSError as e:
        return _fail(EXIT_IO, "io", str(e), as_json)
    if as_json:
        print(json.dumps(doc, sort_keys=True))
    elif args.command not in ("statement", "alerts", "serve") and not (
        args.command == "returns" and args.format == "csv"
    ):
        print(json.dumps(doc, indent=2, sort_keys=True))
    return EXIT_OK


def _fail(code: int, name: str, message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": {"code": name, "message": message, "exit_code": code}}))
    else:
        print(f"tanglepay roaming: {name}: {message}", file=sys.stderr)
    return code
