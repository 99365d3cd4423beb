"""The explorer's views of the device registry, beside the node's `GET /api/v1/devices/{id}`:
lists the node has no read for, and the node's part of a proof bundle as a file.

```
GET /api/v1/explorer/devices?quarantined=&after=&count=   devices by id (or only those under
                                                           a quarantine in force), a page at a time
GET /api/v1/explorer/issuers?after=&count=                 issuers by key, a page at a time
GET /api/v1/explorer/issuers?keys=k1,k2,...                those issuers (a device's endorsers)
GET /api/v1/explorer/devices/{id}/records                  records applied to a device or issuer
GET /api/v1/explorer/messages/{id}/subject                 the device or issuer a stored device
                                                           record is about (a registration names
                                                           the device by key; this gives its id)
GET /api/v1/explorer/proof?device=&message=                the links of a proof this node holds
```

Lists are read from the registry at the confirmed milestone: the entries are copied once per
registry change (a new registry digest: devices or issuers) in the node's writer thread (a
reference per entry) and sorted beside it, one rebuild at a time; pages are cut from that copy
(`count` at most PAGE_MAX). Which quarantines hold depends on the milestone index too: that is
worked out from the copy's short list of entries with a quarantine.

The proof is a file in the form `tanglepay verify` reads (`wallet/devices/proof_file.py`), with
the links this node holds filled in and the others empty:

- `device`: the device's registry entry and its audit path to the registry root of the
  confirmed milestone, and that milestone (with its committee signatures);
- `message`: the message (an anchor) and its audit path to the inclusion root of the milestone
  that referenced it, and that milestone; with `device` too, the device's entry only while the
  registry root is still that milestone's (as `wallet.devices.collect` asks), else none.

A node never holds a reading or its batch path (the gateway that anchored the batch does), so
`tanglepay verify` checks the milestone's signatures and the registry link, then stops at the
first empty link and names it: `reading` for a device's file, `registry` for a message alone.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio
from starlette.responses import JSONResponse, Response

from tangle.ledger.registry import encode_entry, registry_path
from tangle.protocol.device import DeviceId, DeviceRecord
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone
from tangle.protocol.payload import TaggedData
from tangle.protocol.proof_bundle import (
    MAX_FILE,
    NO_PATH,
    ProofBundle,
    bundle_milestone,
    bundle_to_json,
)

from .._device_api import _FLAGS, render_entry
from .._guard import route
from .._request import ApiError, path_id, path_message_id, query_uint
from ._notes import record_seen

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request
    from starlette.routing import Route

    from tangle.ledger.registry import DeviceEntry, IssuerEntry
    from tangle.node.core import NodeCore
    from tangle.node.node import Node
    from tangle.protocol.bech32 import Network
    from tangle.protocol.ids import MessageId
    from tangle.protocol.merkle import MerklePath
    from tangle.storage.storage import Storage

    from .._proofs import Inclusion, InclusionCache
    from ._notes import Notes, RecordApplied

T = TypeVar("T")

PAGE_MAX: Final = 100


class Snapshot:
    """The registry's entries at one registry digest (its device root and its issuers),
    sorted by id (issuers by key), with those ids and keys to cut pages by (the ids
    themselves, not copies), and the few entries that carry a quarantine (in force or
    expired: which holds depends on the milestone index)."""

    __slots__ = ("devices", "digest", "ids", "index", "issuer_keys", "issuers", "with_quarantine")

    def __init__(
        self,
        index: int,
        digest: bytes,
        devices: list[DeviceEntry],
        issuers: list[IssuerEntry],
    ) -> None:
        self.index = index
        """The confirmed milestone it was read at (any later one with the same digest shares it)."""
        self.digest = digest
        self.devices = sorted(devices, key=lambda e: e.device_id)
        self.ids: list[bytes] = [e.device_id for e in self.devices]
        self.issuers = sorted(issuers, key=lambda i: i.key)
        self.issuer_keys: list[bytes] = [i.key for i in self.issuers]
        self.with_quarantine = [e for e in self.devices if e.quarantine is not None]


class Quarantined:
    """The devices of a snapshot under a quarantine in force at one milestone index."""

    __slots__ = ("devices", "digest", "ids", "index")

    def __init__(self, snapshot: Snapshot, index: int) -> None:
        self.digest = snapshot.digest
        self.index = index
        self.devices = [e for e in snapshot.with_quarantine if e.quarantined_at(index)]
        self.ids: list[bytes] = [e.device_id for e in self.devices]


_Fresh = tuple[bytes, list["DeviceEntry"], list["IssuerEntry"]]


def _reader(held: Snapshot | None) -> Callable[[NodeCore], tuple[int, Snapshot | _Fresh]]:
    """What the writer thread reads: the confirmed index, and `held` if the registry digest
    (devices and issuers) is still its, else references to the registry's entries (no sort, no
    copy of an entry)."""

    def read(core: NodeCore) -> tuple[int, Snapshot | _Fresh]:
        registry = core.ledger.registry
        digest = registry.digest
        if held is not None and held.digest == digest:
            return core.confirmed_index, held
        devices, issuers = list(registry.devices.values()), list(registry.issuers.values())
        return core.confirmed_index, (digest, devices, issuers)

    return read


def _page(rows: list[T], keys: list[bytes], after: bytes | None, count: int) -> list[T]:
    start = 0 if after is None else bisect.bisect_right(keys, after)
    return rows[start : start + count]


def _at(rows: list[T], keys: list[bytes], key: bytes) -> T | None:
    """The row whose key is `key`, if any."""
    at = bisect.bisect_left(keys, key)
    return rows[at] if at < len(keys) and keys[at] == key else None


def _signed(applied: RecordApplied | None) -> dict[str, Any] | None:
    if applied is None:
        return None
    return {
        "message_id": applied.record.message_id.hex(),
        "milestone_index": applied.milestone_index,
        "signers": [s.hex() for s in applied.record.signers],
    }


class RegistryViews:
    """The registry views over one node (module docstring)."""

    def __init__(
        self, node: Node, network: Network, notes: Notes, inclusions: InclusionCache
    ) -> None:
        self.node = node
        self.inclusions = inclusions
        self.network = network
        self.notes = notes
        self._snapshot: Snapshot | None = None
        self._quarantined: Quarantined | None = None
        self._rebuild = trio.Lock()
        self.rebuilt = 0
        """Snapshots made since start (what sharing them saves shows here)."""

    def routes(self) -> list[Route]:
        return [
            route("/api/v1/explorer/devices", get=self.devices),
            route("/api/v1/explorer/issuers", get=self.issuers),
            route("/api/v1/explorer/devices/{device_id}/records", get=self.records),
            route("/api/v1/explorer/proof", get=self.proof),
            route("/api/v1/explorer/messages/{message_id}/subject", get=self.subject),
        ]

    async def snapshot(self) -> tuple[Snapshot, int]:
        """The registry at the confirmed milestone, with that milestone's index. The sorted
        copy is made again only when the registry changed (its digest), one rebuild at a time (the
        others wait, then take it), and kept only if newer than the one held."""
        index, found = await self.node.read_core(_reader(self._snapshot))
        if isinstance(found, Snapshot):
            return found, index
        async with self._rebuild:
            held = self._snapshot
            index, found = await self.node.read_core(_reader(held))
            if isinstance(found, Snapshot):  # another request rebuilt it meanwhile
                return found, index
            made = await trio.to_thread.run_sync(Snapshot, index, *found)
            self.rebuilt += 1
            if held is None or made.index >= held.index:
                self._snapshot = made
            return made, index

    def quarantined(self, snapshot: Snapshot, index: int) -> Quarantined:
        """The devices under a quarantine in force at `index` (from the snapshot's short list
        of entries with a quarantine, kept for the last index asked)."""
        held = self._quarantined
        if held is None or held.digest != snapshot.digest or held.index != index:
            held = self._quarantined = Quarantined(snapshot, index)
        return held

    async def devices(self, request: Request) -> Response:
        params = request.query_params
        count = query_uint(params.get("count", "50"), "count", 1, PAGE_MAX)
        after = None if "after" not in params else bytes(path_id(params["after"]))
        flag = params.get("quarantined", "false")
        if flag not in _FLAGS:
            raise ApiError("invalid_parameter", "quarantined is true or false")
        snap, index = await self.snapshot()
        chosen = self.quarantined(snap, index) if _FLAGS[flag] else snap
        listed = chosen.devices
        page = _page(listed, chosen.ids, after, count)
        rows = []
        for entry in page:
            row = render_entry(entry, self.network, index, with_entry=False)
            quarantine = row["quarantine"]
            if quarantine is not None:
                quarantine["record"] = _signed(self.notes.last(entry.device_id, "quarantine"))
            rows.append(row)
        return JSONResponse(
            {
                "ledger_index": index,
                "total": len(listed),
                "devices": rows,
                "next": page[-1].device_id.hex() if len(page) == count else None,
            }
        )

    async def issuers(self, request: Request) -> Response:
        params = request.query_params
        snap, index = await self.snapshot()
        if "keys" in params:  # a lookup by key (a device's maker and endorsers), no page
            asked = [bytes(path_id(k)) for k in params["keys"].split(",")[: PAGE_MAX + 1]]
            if len(asked) > PAGE_MAX:
                raise ApiError("invalid_parameter", f"keys names at most {PAGE_MAX} issuers")
            found = (_at(snap.issuers, snap.issuer_keys, key) for key in asked)
            page, next_key = [i for i in found if i is not None], None
        else:
            count = query_uint(params.get("count", "50"), "count", 1, PAGE_MAX)
            after = None if "after" not in params else bytes(path_id(params["after"]))
            page = _page(snap.issuers, snap.issuer_keys, after, count)
            next_key = page[-1].key.hex() if len(page) == count else None
        return JSONResponse(
            {
                "ledger_index": index,
                "total": len(snap.issuers),
                "issuers": [
                    {
                        "key": i.key.hex(),
                        "role": i.role.name.lower(),
                        "admitted": i.admitted,
                        "serial": i.serial,
                        "name": i.name.decode("utf-8", "replace"),
                        "record": _signed(self.notes.last(i.key, "admit_issuer")),
                    }
                    for i in page
                ],
                "next": next_key,
            }
        )

    async def records(self, request: Request) -> Response:
        subject = bytes(path_id(request.path_params["device_id"]))
        return JSONResponse(
            {
                "records": [
                    {
                        "message_id": r.record.message_id.hex(),
                        "kind": r.record.kind,
                        "milestone_index": r.milestone_index,
                        "signers": [s.hex() for s in r.record.signers],
                    }
                    for r in self.notes.records(subject)
                ]
            }
        )

    async def subject(self, request: Request) -> Response:
        message_id = path_message_id(request.path_params["message_id"])
        raw = await self.node.read_storage(lambda storage: storage.message(message_id))
        if raw is None:
            raise ApiError("unknown_message", f"no message {message_id.hex()} is stored")
        payload = decode_message(raw).message.payload
        if not isinstance(payload, DeviceRecord):
            raise ApiError("invalid_parameter", "the message carries no device record")
        seen = record_seen(message_id, payload)
        return JSONResponse(
            {
                "kind": seen.kind,
                "subject": seen.subject.hex(),
                "subject_kind": "issuer" if seen.kind == "admit_issuer" else "device",
            }
        )

    async def proof(self, request: Request) -> Response:
        params = request.query_params
        if not {"device", "message"} & set(params):
            raise ApiError("invalid_parameter", "name a device, a message or both")
        device = None if "device" not in params else DeviceId(path_id(params["device"]))
        message = None if "message" not in params else path_message_id(params["message"])
        anchor = b""
        inclusion: MerklePath | None = None
        index = None
        if message is not None:
            anchor, found = await self._inclusion(message)
            inclusion, index = found.path, found.index
        entry, path, index = await self._entry(device, index)
        raw = await self.node.read_storage(lambda storage: storage.milestone(index))
        if raw is None:
            raise ApiError("proof_unavailable", f"milestone {index} is pruned on this node")
        milestone = decode_message(raw.raw).message.payload
        if not isinstance(milestone, Milestone):
            raise ApiError("proof_unavailable", f"milestone {index} does not decode")
        name = (message or device or b"").hex()[:16]
        bundle = ProofBundle(
            reading=b"",
            batch_path=NO_PATH,
            anchor=anchor,
            inclusion_path=inclusion or NO_PATH,
            milestone=bundle_milestone(milestone),
            registry_entry=entry,
            registry_path=path or NO_PATH,
        )
        disposition = {"Content-Disposition": f'attachment; filename="proof-{name}.json"'}
        text = bundle_to_json(bundle)
        if len(text) > MAX_FILE:
            raise ApiError(
                "invalid_parameter",
                f"the proof file would be {len(text)} bytes, over the {MAX_FILE} "
                "that tanglepay verify reads (the anchor is too large)",
            )
        return Response(text, media_type="application/json", headers=disposition)

    async def _inclusion(self, message_id: MessageId) -> tuple[bytes, Inclusion]:
        """The message (a tagged-data anchor) and its inclusion (`InclusionCache`)."""

        def read(storage: Storage) -> tuple[bytes | None, Inclusion]:
            return storage.message(message_id), self.inclusions.inclusion_of(storage, message_id)

        raw, found = await self.node.read_storage(read)
        if raw is None:  # pruned since its metadata was read
            raise ApiError("unknown_message", f"no message {message_id.hex()} is stored")
        if not isinstance(decode_message(raw).message.payload, TaggedData):
            raise ApiError(
                "invalid_parameter", "a proof file proves a tagged-data message (an anchor) only"
            )
        return raw, found

    async def _entry(
        self, device: DeviceId | None, index: int | None
    ) -> tuple[bytes, MerklePath | None, int]:
        """The device's entry and path at the confirmed milestone, with its index; none if the
        registry root changed since milestone `index` (when given)."""

        def read(core: NodeCore) -> tuple[int, DeviceEntry | None, MerklePath | None]:
            registry = core.ledger.registry
            entry = None if device is None else registry.devices.get(device)
            if entry is None or device is None:
                return core.confirmed_index, None, None
            return core.confirmed_index, *registry_path(registry, device)

        confirmed, entry, path = await self.node.read_core(read)
        if device is not None and entry is None:
            raise ApiError("unknown_device", f"no device {device.hex()} is registered")
        if entry is None:
            return b"", None, index if index is not None else confirmed
        if index is not None and index != confirmed:
            same = await self._same_registry(index, confirmed)
            return (encode_entry(entry), path, index) if same else (b"", None, index)
        return encode_entry(entry), path, confirmed

    async def _same_registry(self, first: int, last: int) -> bool:
        def read(storage: Storage) -> bool:
            roots = set()
            for at in (first, last):
                record = storage.milestone(at)
                payload = None if record is None else decode_message(record.raw).message.payload
                if not isinstance(payload, Milestone):
                    return False
                roots.add(payload.essence.registry_root)
            return len(roots) == 1

        return await self.node.read_storage(read)
