"""What a node's API answers, as typed values: the views `NodeClient` returns and the events an
`EventReader` yields, parsed strictly from JSON (`InvalidResponseError` for anything else), and
the mapping of a refusal to the wallet's errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from tangle.errors import TangleError
from tangle.ledger.events import TransactionEvent

from .errors import (
    InvalidResponseError,
    NotFoundError,
    RejectedError,
)

if TYPE_CHECKING:
    from tangle.ledger.ledger import Conflict, Inclusion
    from tangle.ledger.registry import DeviceEntry
    from tangle.protocol.channel import ChannelOutput
    from tangle.protocol.ids import (
        Address,
        MerkleRoot,
        MessageId,
        MilestoneId,
        OutputId,
        TransactionId,
    )
    from tangle.protocol.merkle import MerklePath

_Id = TypeVar("_Id", bound=bytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """`GET /api/v1/info`: the node's status and the network's parameters."""

    network_id: int
    """The network the node follows."""
    confirmed_milestone_index: int
    """Its confirmed milestone."""
    latest_milestone_index: int
    """The highest milestone it has seen."""
    healthy: bool
    """Whether its confirmed milestone is recent: it follows a live network."""
    work_per_kib: int
    """Proof-of-work hashes expected per KiB."""
    min_output_amount: int
    """The least an output may hold (dust deposit)."""
    pruned_index: int
    """Messages referenced at or below this milestone are forgotten."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputInfo:
    """One unspent output."""

    output_id: OutputId
    """Its id (transaction id and index)."""
    address: Address
    """Where it is locked."""
    amount: int
    """Base units."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRecord:
    """`GET /api/v1/outputs/{output_id}`: an output the node's ledger holds unspent, or saw
    spent inside its pruning window."""

    output_id: OutputId
    """The output asked about."""
    created_at: int
    """The milestone that applied the transaction creating it."""
    spent_by: TransactionId | None
    """The transaction that spent it; None while it is unspent."""
    spent_at: int | None
    """The milestone that applied that transaction; None while it is unspent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelInfo:
    """`GET /api/v1/channels/{channel_id}`."""

    ledger_index: int
    """The confirmed milestone the answer reflects."""
    output_id: OutputId
    """The channel output's id (it changes with every top-up and close step)."""
    output: ChannelOutput
    """The channel as the ledger records it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressOutputs:
    """`GET /api/v1/addresses/{address}/outputs`."""

    address: Address
    """The address asked about."""
    ledger_index: int
    """The confirmed milestone the answer reflects."""
    outputs: tuple[OutputInfo, ...]
    """Its unspent outputs, by output id."""

    @property
    def balance(self) -> int:
        return sum(o.amount for o in self.outputs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Metadata:
    """`GET /api/v1/messages/{id}/metadata`."""

    message_id: MessageId
    """The message."""
    solid: bool
    """Whether its past cone is complete."""
    referenced_by: int | None
    """The milestone that referenced it, None while unreferenced."""
    inclusion: Inclusion
    """What that milestone made of it."""
    conflict: Conflict
    """Why its transaction was not applied (NONE unless conflicting)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneEvent:
    """A confirmed milestone, sent after the transaction events it caused."""

    index: int
    """Its index: the node's confirmed milestone index from now on."""
    milestone_id: MilestoneId
    """Its id."""
    message_id: MessageId
    """The message that carried it."""
    timestamp_ms: int
    """When the coordinator issued it."""


NodeEvent = MilestoneEvent | TransactionEvent


# -- parsing helpers -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredDevice:
    """`GET /api/v1/devices/{id}`: a device's registry entry at the node's confirmed milestone."""

    ledger_index: int
    """The confirmed milestone the entry is read at."""
    registry_root: MerkleRoot
    """The registry root after that milestone."""
    entry: DeviceEntry
    """The entry (decoded from its canonical bytes, which the node sends)."""
    registry_path: MerklePath | None
    """With `proof=True`, the entry's audit path to `registry_root`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InclusionPath:
    """`GET /api/v1/messages/{id}/inclusion`: where a referenced message sits under its
    milestone's inclusion root."""

    milestone_index: int
    """The milestone that referenced the message."""
    milestone_message_id: MessageId
    """The message that carries that milestone."""
    path: MerklePath
    """The message id's audit path to the milestone's inclusion root."""


class Doc:
    """Typed access to a JSON object, each miss an `InvalidResponseError`."""

    __slots__ = ("_doc", "_request")

    def __init__(self, request: str, doc: object) -> None:
        if not isinstance(doc, dict):
            raise InvalidResponseError(request, "expected a JSON object")
        self._request = request
        self._doc: dict[str, Any] = doc

    def _get(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self._doc.get(key)
        if isinstance(value, bool) and kind is int:
            value = None
        if not isinstance(value, kind):
            raise InvalidResponseError(self._request, f"field {key!r} is missing or mistyped")
        return value

    def integer(self, key: str) -> int:
        value: int = self._get(key, int)
        return value

    def optional_integer(self, key: str) -> int | None:
        if self._doc.get(key) is None:
            return None
        return self.integer(key)

    def boolean(self, key: str) -> bool:
        value: bool = self._get(key, bool)
        return value

    def text(self, key: str) -> str:
        value: str = self._get(key, str)
        return value

    def decimal(self, key: str) -> int:
        text = self.text(key)
        if not text.isdecimal() or not text.isascii():
            raise InvalidResponseError(self._request, f"field {key!r} is not a decimal")
        return int(text)

    def hexbytes(self, key: str) -> bytes:
        try:
            return bytes.fromhex(self.text(key))
        except ValueError:
            raise InvalidResponseError(self._request, f"field {key!r} is not hex") from None

    def optional_hexbytes(self, key: str) -> bytes | None:
        if self._doc.get(key) is None:
            return None
        return self.hexbytes(key)

    def items(self, key: str) -> list[Any]:
        value: list[Any] = self._get(key, list)
        return value

    def enum_name(self, key: str) -> str:
        return self.text(key).upper()

    def sub(self, value: object) -> Doc:
        return Doc(self._request, value)

    def child(self, key: str) -> Doc:
        return Doc(self._request, self._doc.get(key))


def parse_json(request: str, response: httpx.Response) -> Doc:
    try:
        return Doc(request, json.loads(response.content))
    except (ValueError, RecursionError):
        raise InvalidResponseError(request, "the body is not JSON") from None


def fixed(request: str, cls: type[_Id], raw: bytes) -> _Id:
    try:
        return cls(raw)
    except TangleError:
        raise InvalidResponseError(request, f"a {cls.__name__} of the wrong size") from None


def describe(exc: Exception) -> str:
    """A transport failure in words: the class and, for network errors, the OS's reason."""
    shown = httpx.NetworkError | httpx.TimeoutException | httpx.UnsupportedProtocol
    detail = str(exc) if isinstance(exc, shown) else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def retry_after(response: httpx.Response) -> float | None:
    text = response.headers.get("retry-after", "")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def error_of(request: str, response: httpx.Response) -> tuple[str, str]:
    """The node's error code and message (`{"error": {"code", "message"}}`), or, for a body
    of another shape, `http_<status>` and the reason phrase."""
    try:
        error = parse_json(request, response).child("error")
        return error.text("code"), error.text("message")
    except InvalidResponseError:
        return f"http_{response.status_code}", response.reason_phrase or "no message"


def refusal(request: str, response: httpx.Response) -> RejectedError:
    code, message = error_of(request, response)
    cls = NotFoundError if response.status_code == 404 else RejectedError
    return cls(request, code, response.status_code, message[:300])


# -- the client ------------------------------------------------------------------------------
