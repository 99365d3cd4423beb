"""`tanglepay roaming returns`: the details of one acknowledged batch's returns, as a carrier's
RAP desk reads them (`returns.py`): error code, severity, the record field and TAP element at
fault, the value found and the value expected; JSON, or CSV with `--format csv`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ._cli_base import UsageError, signed_agreement
from .acknowledgement import verify_ack
from .returns import details_csv, explain
from .store import RoamingStore

if TYPE_CHECKING:
    import argparse

Doc = dict[str, object]


def _returns(args: argparse.Namespace) -> Doc:
    agreement = signed_agreement(args.agreement).agreement
    vpmn, hpmn = args.pair
    with RoamingStore(args.db) as store:
        batch = store.batch(vpmn, hpmn, args.sequence)
        ack = store.ack(vpmn, hpmn, args.sequence)
    if batch is None or ack is None:
        raise UsageError(f"no acknowledged batch {args.sequence} of {vpmn}->{hpmn} in {args.db}")
    verify_ack(ack, agreement)
    details = explain(ack, batch, agreement)
    if args.format == "csv" and not args.json:
        print(details_csv(details), end="")
    return {"sequence": args.sequence, "returns": [d.to_json_object() for d in details]}


def add_return_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `returns` command, on the roaming CLI's parser."""
    returns = commands.add_parser("returns")
    returns.add_argument("--db", type=Path, required=True)
    returns.add_argument("--agreement", type=Path, required=True)
    returns.add_argument("--pair", nargs=2, required=True, metavar=("VPMN", "HPMN"))
    returns.add_argument("--sequence", type=int, required=True)
    returns.add_argument("--format", choices=("json", "csv"), default="json")
    returns.set_defaults(run=_returns)
