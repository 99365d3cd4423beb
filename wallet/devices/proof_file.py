"""Reading the file forms of a proof bundle (written by `tangle.protocol.proof_bundle`, which
gives its fields) and of a committee key schedule (JSON, hex, strict).

```
keys.json   {"key_schedule": [{"activation_index": int, "threshold": int,
                               "public_keys": [hex, ...]}, ...], "network_id": int (optional)}
            or a network file's {"network_id": int,
                                 "committee": {"threshold": int, "public_keys": [hex, ...]}}
            (one key set from milestone 1; other fields of that file are ignored)
```
Version 1 proof files (whose milestone link is the milestone's payload encoding, each signer's
whole key beside its signature) are read too: proof files are long-lived offline artifacts. The
link is decoded and rewritten in the version 2 form (`bundle_milestone`), which names the same
signers and signatures, so every check is the same; a version 1 milestone that does not decode
is a `ProofBundleFormatError` naming it.

Strict: exactly these fields (for a proof), none twice, each of its type (a bool is not an
int), lowercase hex of whole bytes, and a file of at most MAX_FILE bytes (MAX_COMMITTEE_FILE for
keys). Every defect is a `ProofBundleFormatError` naming the field; nothing else escapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from tangle.errors import TangleError
from tangle.ledger.committee import KeySchedule
from tangle.protocol.codec import Reader
from tangle.protocol.ids import PublicKey
from tangle.protocol.merkle import MerklePath
from tangle.protocol.milestone import KeySet, decode_milestone
from tangle.protocol.proof_bundle import (
    BUNDLE_VERSION,
    BYTES,
    MAX_FILE,
    PATHS,
    ProofBundle,
    bundle_milestone,
)

from .errors import ProofBundleFormatError

if TYPE_CHECKING:
    from pathlib import Path

READ_VERSIONS: Final = (1, BUNDLE_VERSION)
"""The proof file versions read (1: the milestone link holds whole signer keys)."""
MAX_COMMITTEE_FILE: Final = 4 * 1024 * 1024
"""A network file with its genesis allocations may be large."""
_HEX_DIGITS: Final = frozenset("0123456789abcdef")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise ProofBundleFormatError("a field is given twice")
    return doc


def _load(text: str | bytes, what: str, limit: int = MAX_FILE) -> Any:
    if len(text) > limit:
        raise ProofBundleFormatError(f"{what} is over {limit} bytes")
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except (ValueError, RecursionError) as exc:
        raise ProofBundleFormatError(f"{what} is not JSON: {exc}") from None


def _only(doc: Any, fields: set[str], where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ProofBundleFormatError(f"{where} is not an object")
    if set(doc) != fields:
        extra, missing = sorted(set(doc) - fields), sorted(fields - set(doc))
        raise ProofBundleFormatError(f"{where}: unknown fields {extra}, missing {missing}")
    return doc


def _int(doc: dict[str, Any], name: str, where: str) -> int:
    value = doc[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofBundleFormatError(f"{where}.{name} is not an integer")
    return value


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or len(value) % 2 or not _HEX_DIGITS.issuperset(value):
        raise ProofBundleFormatError(f"{where} is not lowercase hex of whole bytes")
    return bytes.fromhex(value)


def _list(value: Any, where: str, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise ProofBundleFormatError(f"{where} is not a list of at most {limit}")
    return value


def _path(value: Any, where: str) -> MerklePath:
    doc = _only(value, {"index", "size", "siblings"}, where)
    siblings = tuple(
        _hex(s, f"{where}.siblings[{i}]")
        for i, s in enumerate(_list(doc["siblings"], f"{where}.siblings", 64))
    )
    try:
        return MerklePath(
            index=_int(doc, "index", where), size=_int(doc, "size", where), siblings=siblings
        )
    except TangleError as exc:
        raise ProofBundleFormatError(f"{where}: {exc}") from None


def bundle_from_json(text: str | bytes) -> ProofBundle:
    """Read the file form of a proof bundle; `ProofBundleFormatError` for any defect."""
    doc = _only(_load(text, "the proof"), {"version", *PATHS, *BYTES}, "the proof")
    version = _int(doc, "version", "the proof")
    if version not in READ_VERSIONS:
        raise ProofBundleFormatError(f"version {version}, this code reads {READ_VERSIONS}")
    paths = {name: _path(doc[name], name) for name in PATHS}
    strings = {name: _hex(doc[name], name) for name in BYTES}
    if version == 1:
        strings["milestone"] = _milestone_v1(strings["milestone"])
    return ProofBundle(
        reading=strings["reading"],
        batch_path=paths["batch_path"],
        anchor=strings["anchor"],
        inclusion_path=paths["inclusion_path"],
        milestone=strings["milestone"],
        registry_entry=strings["registry_entry"],
        registry_path=paths["registry_path"],
    )


def _milestone_v1(raw: bytes) -> bytes:
    """A version 1 milestone link (the milestone's payload encoding) in the version 2 form."""
    try:
        r = Reader(raw, "milestone")
        milestone = decode_milestone(r)
        r.finish()
    except TangleError as exc:
        raise ProofBundleFormatError(f"milestone: not a version 1 milestone: {exc}") from None
    return bundle_milestone(milestone)


def _key_set(value: Any, where: str, fields: set[str]) -> KeySet:
    doc = _only(value, fields, where)
    keys = tuple(
        PublicKey(_hex(k, f"{where}.public_keys[{i}]"))
        for i, k in enumerate(_list(doc["public_keys"], f"{where}.public_keys", 32))
    )
    return KeySet(threshold=_int(doc, "threshold", where), public_keys=keys)


@dataclass(frozen=True, slots=True, kw_only=True)
class Committee:
    """What a verifier trusts: the committee's key schedule, and the network if the file names
    it (a milestone of another network is then refused)."""

    schedule: KeySchedule
    """Key sets by the milestone index from which each signs."""
    network_id: int | None
    """The network, when the file gives it."""


def committee_from_json(text: str | bytes) -> Committee:
    """Read a committee key schedule (or a network file's committee); `ProofBundleFormatError`
    for any defect."""
    doc = _load(text, "the committee file", MAX_COMMITTEE_FILE)
    if not isinstance(doc, dict):
        raise ProofBundleFormatError("the committee file is not an object")
    network_id = _int(doc, "network_id", "the committee file") if "network_id" in doc else None
    try:
        if "key_schedule" in doc:
            fields = {"activation_index", "threshold", "public_keys"}
            entries = []
            for i, entry in enumerate(_list(doc["key_schedule"], "key_schedule", 1024)):
                where = f"key_schedule[{i}]"
                key_set = _key_set(entry, where, fields)
                entries.append((_int(entry, "activation_index", where), key_set))
            schedule = KeySchedule(entries=tuple(entries))
        elif "committee" in doc:
            key_set = _key_set(doc["committee"], "committee", {"threshold", "public_keys"})
            schedule = KeySchedule(entries=((1, key_set),))
        else:
            raise ProofBundleFormatError(
                "the committee file has neither key_schedule nor committee"
            )
    except TangleError as exc:
        raise ProofBundleFormatError(f"the committee file: {exc}") from None
    return Committee(schedule=schedule, network_id=network_id)


def committee_to_json(committee: Committee) -> str:
    """The `key_schedule` file form of `committee`."""
    entries = [
        {
            "activation_index": start,
            "threshold": key_set.threshold,
            "public_keys": [k.hex() for k in key_set.public_keys],
        }
        for start, key_set in committee.schedule.entries
    ]
    doc: dict[str, Any] = {"key_schedule": entries}
    if committee.network_id is not None:
        doc["network_id"] = committee.network_id
    return json.dumps(doc, indent=1) + "\n"


def read_bundle(path: Path) -> ProofBundle:
    """`bundle_from_json` of a file, reading at most MAX_FILE + 1 bytes of it."""
    with path.open("rb") as f:
        return bundle_from_json(f.read(MAX_FILE + 1))


def read_committee(path: Path) -> Committee:
    """`committee_from_json` of a file, reading at most MAX_COMMITTEE_FILE + 1 bytes of it."""
    with path.open("rb") as f:
        return committee_from_json(f.read(MAX_COMMITTEE_FILE + 1))
