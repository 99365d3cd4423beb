"""The gateway rule at the routes that bring messages in (`tangle/ledger/gateway_rule.py`): a
request may name the gateway it comes from with the headers of `gateway_request.py`; each
device's message it carries is checked against that gateway (or against none) at the
confirmed milestone before the node takes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from tangle.errors import DecodeError, InvalidFieldError, TangleError
from tangle.ledger.gateway_rule import gateway_key, refuse_unserved, verify_gateway
from tangle.ledger.quarantine import payload_keys, refuse_quarantined
from tangle.protocol.gateway_request import read_headers
from tangle.protocol.message import decode_message

from ._request import ApiError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from starlette.requests import Request

    from tangle.node.core import NodeCore, Parameters
    from tangle.node.node import Node
    from tangle.protocol.device import DeviceId
    from tangle.protocol.gateway_request import ItemKind
    from tangle.protocol.ids import PublicKey
    from tangle.protocol.payload import Payload


def payloads_of(raws: Sequence[bytes]) -> list[Payload | None]:
    """The payload of each message of `raws`, None for one that does not decode (the node
    refuses it by name). Up to 256 messages of 32 KiB: run it in a worker thread."""
    out: list[Payload | None] = []
    for raw in raws:
        try:
            out.append(decode_message(raw).message.payload)
        except DecodeError:
            out.append(None)
    return out


async def gateway_refusals(
    node: Node,
    parameters: Callable[[], Awaitable[Parameters]],
    request: Request,
    kind: ItemKind,
    items: Sequence[bytes],
    payloads: Sequence[Payload | None],
    *,
    quarantine: bool = False,
) -> dict[int, TangleError]:
    """The position and refusal of each of `payloads` (None: not decodable, left to the node)
    that `request`, handing in `items`, may not carry (with `quarantine`, first: signed by a
    device quarantined now). A gateway claim that does not hold refuses the whole request:
    raised (`invalid_header`, `gateway_not_serving`, `gateway_signature`).

    One hop to the node's writer reads the registry (the gateway's key, each payload's
    devices); the claim's signature is checked after it in a worker thread, so the writer
    neither hashes the items nor verifies a signature."""
    try:
        claim = read_headers(request.headers)
    except InvalidFieldError as exc:
        raise ApiError("invalid_header", str(exc)) from None
    if claim is None and not any(p is not None and payload_keys(p) for p in payloads):
        return {}  # nothing any device signed (tagged data, anchors): no hop to the core
    network_id = (await parameters()).network_id

    def check(core: NodeCore) -> tuple[PublicKey | None, dict[int, TangleError]]:
        registry = core.ledger.registry
        gateway: DeviceId | None = None
        key = None
        if claim is not None:
            gateway, key = gateway_key(registry, claim[0])
        refused: dict[int, TangleError] = {}
        for position, payload in enumerate(payloads):
            if payload is not None:
                try:
                    if quarantine:
                        refuse_quarantined(registry, payload, core.confirmed_index)
                    refuse_unserved(registry, payload, gateway, core.confirmed_index)
                except TangleError as exc:
                    refused[position] = exc
        return key, refused

    key, refused = await node.read_core(check)
    if claim is not None and key is not None:
        gateway, signature = claim
        await trio.to_thread.run_sync(
            verify_gateway, gateway, key, signature, network_id, kind, items
        )
    return refused
