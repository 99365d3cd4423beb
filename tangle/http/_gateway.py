"""The gateway rule at the routes that bring messages in (`tangle/ledger/gateway_rule.py`): a
request may name the gateway it comes from with the headers of `gateway_request.py`; each
device's message it carries is checked against that gateway (or against none) at the
confirmed milestone before the node takes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.errors import DecodeError, InvalidFieldError, TangleError
from tangle.ledger.gateway_rule import authenticate_gateway, refuse_unserved
from tangle.ledger.quarantine import payload_keys
from tangle.protocol.gateway_request import read_headers
from tangle.protocol.message import decode_message

from ._request import ApiError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from starlette.requests import Request

    from tangle.node.core import NodeCore, Parameters
    from tangle.node.node import Node
    from tangle.protocol.gateway_request import ItemKind
    from tangle.protocol.payload import Payload


def payload_of(raw: bytes) -> Payload | None:
    """The payload of message `raw`, None if it does not decode (the node refuses it by name)."""
    try:
        return decode_message(raw).message.payload
    except DecodeError:
        return None


async def gateway_refusals(
    node: Node,
    parameters: Callable[[], Awaitable[Parameters]],
    request: Request,
    kind: ItemKind,
    items: Sequence[bytes],
    payloads: Sequence[Payload | None],
) -> dict[int, TangleError]:
    """The position and refusal of each of `payloads` (None: not decodable, left to the node)
    that `request`, handing in `items`, may not carry. A gateway claim that does not hold
    refuses the whole request: raised (`invalid_header`, `gateway_not_serving`,
    `gateway_signature`)."""
    try:
        claim = read_headers(request.headers)
    except InvalidFieldError as exc:
        raise ApiError("invalid_header", str(exc)) from None
    if claim is None and not any(p is not None and payload_keys(p) for p in payloads):
        return {}  # nothing any device signed (tagged data, anchors): no hop to the core
    network_id = (await parameters()).network_id

    def check(core: NodeCore) -> dict[int, TangleError]:
        registry = core.ledger.registry
        gateway = None
        if claim is not None:
            gateway = authenticate_gateway(registry, claim, network_id, kind, items)
        refused: dict[int, TangleError] = {}
        for position, payload in enumerate(payloads):
            if payload is not None:
                try:
                    refuse_unserved(registry, payload, gateway, core.confirmed_index)
                except TangleError as exc:
                    refused[position] = exc
        return refused

    return await node.read_core(check)
