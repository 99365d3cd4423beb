"""The gateway's side of the node's gateway rule (`tangle/ledger/gateway_rule.py`): an httpx
transport that signs, as the gateway, every message and every proof-of-work payload a
`NodeClient` hands a node, so a constrained device's records and transactions go through the
wallet's client unchanged:

```python
client = NodeClient(url, transport=GatewayTransport(network_id=7, gateway=gw_id, key=gw_key))
await client.submit_pow(record_signed_by_a_sensor_behind_it)
```

It signs `POST .../api/v1/messages` (the octet body, or JSON `{"message": hex}`), `.../batch`
(the octet form, `decode_batch`, or JSON `{"messages": [hex, ...]}`) and `.../pow` (JSON
`{"payload": hex}`) with the headers of
`tangle/protocol/gateway_request.py`; any other request, or a body it cannot read, goes on
unsigned (the node then refuses a constrained device's message by name). The key must be the
gateway's current registry key.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx

from tangle.errors import DecodeError
from tangle.protocol.gateway_request import ItemKind, decode_batch, gateway_headers

if TYPE_CHECKING:
    from tangle.protocol.device import DeviceId
    from tangle.protocol.signature import Signer

_FIELDS = {
    "/api/v1/messages": ("message", ItemKind.MESSAGES),
    "/api/v1/messages/batch": ("messages", ItemKind.MESSAGES),
    "/api/v1/messages/pow": ("payload", ItemKind.PAYLOAD),
}


class GatewayTransport(httpx.AsyncBaseTransport):
    """Signs what a gateway hands a node (module docstring), then sends it on `inner` (real
    HTTP by default)."""

    def __init__(
        self,
        *,
        network_id: int,
        gateway: DeviceId,
        key: Signer,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._network_id = network_id
        self._gateway = gateway
        self._key = key
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            found = _items(request, await request.aread())
            if found is not None:
                kind, items = found
                request.headers.update(
                    gateway_headers(self._network_id, kind, items, self._gateway, self._key)
                )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _items(request: httpx.Request, body: bytes) -> tuple[ItemKind, list[bytes]] | None:
    """What a submitting request carries, None for any other request or an unreadable body."""
    route = next((r for r in _FIELDS if request.url.path.endswith(r)), None)
    if route is None:
        return None
    field, kind = _FIELDS[route]
    if request.headers.get("content-type", "").startswith("application/octet-stream"):
        if route == "/api/v1/messages":
            return kind, [body]
        if route == "/api/v1/messages/batch":
            try:
                return kind, decode_batch(body)
            except DecodeError:
                return None
        return None
    try:
        value = json.loads(body)[field]
        texts = value if isinstance(value, list) else [value]
        return kind, [bytes.fromhex(t) for t in texts]
    except (ValueError, TypeError, KeyError):
        return None
