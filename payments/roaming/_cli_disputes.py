"""`tanglepay roaming disputes ...`: raise, answer, record and list disputes, kept in the store.

```
disputes raise  --db DB --agreement F --key-file K --pair VPMN HPMN --sequence N --amount A
                --reason TEXT [--index I ...] --now S -o FILE     the signed dispute file
disputes answer FILE --db DB --agreement F --key-file K (--credit C | --reject) --reason TEXT
                --now S -o FILE                                   the signed resolution file
disputes record FILE --db DB --agreement F        the other carrier's dispute or resolution
disputes list   --db DB --agreement F             every dispute, its status and credit notes
```

Every file is checked by a `DisputeBook` rebuilt from the store (window, amounts, signers)
before it is kept, so the store never holds a dispute the rules refuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ._cli_base import UsageError, signed_agreement, signer_of
from .disputes import (
    Dispute,
    DisputeBook,
    Resolution,
    SignedDispute,
    SignedResolution,
    sign_dispute,
    sign_resolution,
)
from .errors import DisputeError
from .store import RoamingStore

if TYPE_CHECKING:
    import argparse

    from .acknowledgement import SignedAcknowledgement
    from .agreement import Agreement

Doc = dict[str, object]


def _book(store: RoamingStore, agreement: Agreement) -> DisputeBook:
    book = DisputeBook(agreement)
    for dispute, ack, resolution in store.disputes():
        book.raise_dispute(dispute, ack)
        if resolution is not None:
            book.resolve(resolution)
    return book


def _ack_of(store: RoamingStore, agreement: Agreement, batch: bytes) -> SignedAcknowledgement:
    a, b = (p.tadig for p in agreement.parties)
    for sender, recipient in ((a, b), (b, a)):
        for ack in store.acks(sender, recipient):
            if ack.ack.batch == batch:
                return ack
    raise DisputeError("no acknowledgement of that batch in this store")


def _raise(args: argparse.Namespace) -> Doc:
    agreement = signed_agreement(args.agreement).agreement
    signer = signer_of(args.key_file)
    me = next(p.tadig for p in agreement.parties if p.key == signer.public_key)
    with RoamingStore(args.db) as store:
        ack = store.ack(args.pair[0], args.pair[1], args.sequence)
        if ack is None:
            raise UsageError(f"no acknowledgement of batch {args.sequence} of {args.pair}")
        dispute = Dispute(
            agreement=agreement.hash, batch=ack.ack.batch, raised_by=me,
            indices=tuple(sorted(set(args.index))), amount=args.amount, reason=args.reason,
            raised_utc=args.now,
        )  # fmt: skip
        signed = sign_dispute(dispute, signer)
        _book(store, agreement).raise_dispute(signed, ack)
        store.save_dispute(signed, ack)
    args.output.write_bytes(signed.encode())
    return {"dispute": dispute.id.hex(), "file": str(args.output)}


def _answer(args: argparse.Namespace) -> Doc:
    agreement = signed_agreement(args.agreement).agreement
    signed = SignedDispute.decode(args.file.read_bytes())
    with RoamingStore(args.db) as store:
        ack = _ack_of(store, agreement, signed.body.batch)
        book = _book(store, agreement)
        book.raise_dispute(signed, ack)
        store.save_dispute(signed, ack)
        resolution = Resolution(
            dispute=signed.body.id, accepted=args.credit is not None, credit=args.credit or 0,
            reason=args.reason, resolved_utc=args.now,
        )  # fmt: skip
        answer = sign_resolution(resolution, signer_of(args.key_file))
        note = book.resolve(answer)
        store.save_resolution(answer)
    args.output.write_bytes(answer.encode())
    return {"dispute": signed.body.id.hex(), "credit_note": None if note is None else note.amount}


def _record(args: argparse.Namespace) -> Doc:
    agreement = signed_agreement(args.agreement).agreement
    data = args.file.read_bytes()
    with RoamingStore(args.db) as store:
        book = _book(store, agreement)
        if b'"dispute":' in data:
            answer = SignedResolution.decode(data)
            note = book.resolve(answer)
            store.save_resolution(answer)
            return {"resolution": answer.body.id.hex(), "credit_note": note and note.amount}
        signed = SignedDispute.decode(data)
        ack = _ack_of(store, agreement, signed.body.batch)
        book.raise_dispute(signed, ack)
        store.save_dispute(signed, ack)
        return {"dispute": signed.body.id.hex()}


def _list(args: argparse.Namespace) -> Doc:
    agreement = signed_agreement(args.agreement).agreement
    with RoamingStore(args.db) as store:
        book = _book(store, agreement)
    rows = []
    for dispute, resolution in book.history():
        d = dispute.body
        status = (
            "open" if resolution is None else "accepted" if resolution.body.accepted else "rejected"
        )
        credit = 0 if resolution is None else resolution.body.credit
        rows.append({"id": d.id.hex(), "raised_by": d.raised_by, "amount": d.amount,
                     "reason": d.reason, "status": status, "credit": credit})  # fmt: skip
    notes = [
        {"debtor": n.debtor, "creditor": n.creditor, "amount": n.amount}
        for n in book.credit_notes()
    ]
    return {"disputes": rows, "credit_notes": notes}


def add_dispute_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `disputes` subcommands, on the roaming CLI's parser."""
    disputes = commands.add_parser("disputes").add_subparsers(dest="action", required=True)
    raise_ = disputes.add_parser("raise")
    answer = disputes.add_parser("answer")
    record = disputes.add_parser("record")
    listing = disputes.add_parser("list")
    for sub in (raise_, answer, record, listing):
        sub.add_argument("--db", type=Path, required=True)
        sub.add_argument("--agreement", type=Path, required=True)
    for sub in (answer, record):
        sub.add_argument("file", type=Path)
    for sub in (raise_, answer):
        sub.add_argument("--key-file", type=Path, required=True)
        sub.add_argument("--reason", required=True)
        sub.add_argument("--now", type=int, required=True)
        sub.add_argument("-o", "--output", type=Path, required=True)
    raise_.add_argument("--pair", nargs=2, required=True, metavar=("VPMN", "HPMN"))
    raise_.add_argument("--sequence", type=int, required=True)
    raise_.add_argument("--amount", type=int, required=True)
    raise_.add_argument("--index", type=int, action="append", default=[])
    verdict = answer.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--credit", type=int, help="accept, granting this credit")
    verdict.add_argument("--reject", action="store_true")
    raise_.set_defaults(run=_raise)
    answer.set_defaults(run=_answer)
    record.set_defaults(run=_record)
    listing.set_defaults(run=_list)
