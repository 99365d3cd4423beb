"""The proof bundle of one device reading: its links as bytes, and the file that carries them.

The bundle is written by two parties: a gateway or device that holds the reading (the wallet
library, `wallet.devices.proof.build_bundle`), and a node that holds only the ledger's links (the
explorer's proof download, whose reading and batch path are empty). Both write it with this
module; the wallet library reads and checks it (`wallet.devices.proof_file.bundle_from_json`,
`wallet.devices.proof.verify_bundle`).

```
proof.json  {"version": 2,
             "reading": hex, "batch_path": PATH, "anchor": hex, "inclusion_path": PATH,
             "milestone": hex (`bundle_milestone`), "registry_entry": hex,
             "registry_path": PATH}
PATH        {"index": int, "size": int, "siblings": [hex, ...]}
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from .merkle import MerklePath
from .milestone import Milestone, encode_essence

BUNDLE_VERSION: Final = 2
"""2: the milestone link names its signers by key prefix (1 held whole keys)."""
KEY_PREFIX: Final = 8
"""Bytes of a committee key that name it in a bundle's milestone."""
SIGNATURE_BYTES: Final = 64
PATHS: Final = ("batch_path", "inclusion_path", "registry_path")
"""The file's path fields, in file order among the byte fields `BYTES`."""
BYTES: Final = ("reading", "anchor", "milestone", "registry_entry")
MAX_FILE: Final = 64 * 1024
"""The largest proof file a reader takes (`wallet.devices.proof_file`)."""
NO_PATH: Final = MerklePath(index=0, size=1, siblings=())
"""A link the writer does not hold: a path of one leaf, which proves nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofBundle:
    """The links of one reading's proof, as bytes (decoded only when checked)."""

    reading: bytes
    """The signed reading (plain or sealed), canonical bytes."""
    batch_path: MerklePath
    """Its audit path to the batch root."""
    anchor: bytes
    """The message that anchors the batch root, canonical bytes."""
    inclusion_path: MerklePath
    """The anchor message id's audit path to the milestone's inclusion root."""
    milestone: bytes
    """The milestone that confirmed the anchor, as `bundle_milestone` writes it."""
    registry_entry: bytes
    """The device's registry entry after that milestone, canonical bytes."""
    registry_path: MerklePath
    """The entry's audit path to the milestone's registry root."""

    @property
    def size(self) -> int:
        """The bytes of the links: byte strings, path hashes, and 8 for each path's index
        and size (the JSON file holds them in hex, so it is about twice as large)."""
        paths = (self.batch_path, self.inclusion_path, self.registry_path)
        strings = (self.reading, self.anchor, self.milestone, self.registry_entry)
        return sum(map(len, strings)) + sum(8 + 32 * len(p.siblings) for p in paths)


def bundle_milestone(milestone: Milestone) -> bytes:
    """The milestone link of a bundle: `essence || count x (key prefix, signature) || u8 count`
    (the count last, so the essence needs no length)."""
    signatures = b"".join(s.public_key[:KEY_PREFIX] + s.signature for s in milestone.signatures)
    return encode_essence(milestone.essence) + signatures + bytes([len(milestone.signatures)])


def _path_json(path: MerklePath) -> dict[str, Any]:
    return {"index": path.index, "size": path.size, "siblings": [s.hex() for s in path.siblings]}


def bundle_to_json(bundle: ProofBundle) -> str:
    """The file form of `bundle` (fields in a fixed order)."""
    doc = {
        "version": BUNDLE_VERSION,
        "reading": bundle.reading.hex(),
        "batch_path": _path_json(bundle.batch_path),
        "anchor": bundle.anchor.hex(),
        "inclusion_path": _path_json(bundle.inclusion_path),
        "milestone": bundle.milestone.hex(),
        "registry_entry": bundle.registry_entry.hex(),
        "registry_path": _path_json(bundle.registry_path),
    }
    return json.dumps(doc, indent=1) + "\n"
