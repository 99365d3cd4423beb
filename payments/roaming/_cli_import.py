"""`tanglepay roaming import`: a partner file (TAP 3.12 or NRTRDE 2.1) into the carrier's store,
whole or not at all, idempotent by (sender, recipient, kind, file sequence), with a progress bar
on a terminal. At the VPMN, usage of a subscriber its HPMN barred (a bar kept with `bars record`
or received over the operator API, under an agreement of the file's pair) is refused by name
(`BarredUsageError`) and not kept."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .bars import BarList
from .nrtrde import read_nrtrde
from .partner_file import ImportedFile, ImportPolicy
from .store import RoamingStore
from .subscriber import SubscriberHasher
from .tap import read_tap

if TYPE_CHECKING:
    import argparse

Doc = dict[str, object]
MAX_LISTED: Final = 100
"""Refused records (or returns) listed one by one in an output (all are counted)."""


def _progress(done: int, total: int, what: str, quiet: bool) -> None:
    if quiet or not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r{what} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _import(args: argparse.Namespace) -> Doc:
    size = args.file.stat().st_size
    chunks = []
    with args.file.open("rb") as f:
        for _ in range(size // (1 << 20) + 2):
            chunk = f.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            _progress(sum(map(len, chunks)), size, "reading", args.json)
    data = b"".join(chunks)
    salt = bytes.fromhex(args.salt_file.read_text().strip())
    policy = ImportPolicy(hasher=SubscriberHasher(salt=salt))
    imported = (read_tap if args.format == "tap" else read_nrtrde)(data, policy)
    with RoamingStore(args.db) as store:
        kept, refused = list(enumerate(imported.records)), []
        held, m = store.bars(), imported.meta
        for signed in store.agreements():  # each version of the pair's agreement kept a bar
            if {p.tadig for p in signed.agreement.parties} == {m.sender, m.recipient}:
                gate = BarList.restored(signed.agreement, held, m.recipient)
                kept, more = gate.admit(kept)
                refused += [e for _, e in more]
        if refused:
            imported = ImportedFile(meta=imported.meta, records=tuple(r for _, r in kept))
        outcome = store.import_file(imported)
    _progress(len(imported.records), len(imported.records), "stored", args.json)
    m = imported.meta
    return {
        "outcome": outcome.value,
        "sender": m.sender,
        "recipient": m.recipient,
        "sequence": m.sequence,
        "records": len(imported.records),
        "total_charge": imported.total_charge,
        "declared_total_charge": m.declared_total_charge,
        "audit_total_matches": m.declared_total_charge in (None, imported.total_charge),
        "refused": len(refused),
        "refusals": [
            {
                "error": type(e).__name__,
                "imsi_hash": e.imsi_hash.hex(),
                "since": e.since,
                "start_utc": e.start_utc,
            }
            for e in refused[:MAX_LISTED]
        ],
    }


def add_import_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `import` command, on the roaming CLI's parser."""
    imp = commands.add_parser("import")
    imp.add_argument("file", type=Path)
    imp.add_argument("--db", type=Path, required=True)
    imp.add_argument("--format", choices=("tap", "nrtrde"), required=True)
    imp.add_argument("--salt-file", type=Path, required=True)
    imp.set_defaults(run=_import)
