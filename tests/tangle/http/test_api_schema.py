"""The API against its own OpenAPI document, checked by schemathesis: every operation, examples
generated from the document with a fixed seed and budget, sent to the ASGI app in-process (no
sockets). Any 5xx, an undocumented status, a wrong content type, a body or header that does not
match the document fails. The event stream is read up to its first chunk."""

from __future__ import annotations

import datetime
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tangle.http.api import ApiConfig, api_document, create_app
from tangle.node.node import Node
from tests.tangle.http.test_api import TOKEN, open_stream
from tests.tangle.http.test_api_fuzz import _peers
from tests.tangle.http.test_api_fuzz import (
    ledger as ledger,  # the fuzz tests' node: one confirmed transfer
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from tangle.node.ledger_node import LedgerNode

SCHEMA = schemathesis.openapi.from_dict(api_document(keep_milestones_minimum=16))
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    allow_header_conformance,
]
BUDGET = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_every_documented_operation_is_checked() -> None:
    document = api_document(keep_milestones_minimum=16)
    documented = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}
    assert set(OPERATIONS) == documented
    assert {"GET /api/v1/events", "POST /api/v1/messages/batch"} <= documented


async def _send(app: ASGIApp, kwargs: dict[str, Any]) -> httpx.Response:
    """Send schemathesis's request (its `requests`-style arguments) to `app` with httpx; the
    event stream straight to the app, read up to its first chunk (it never ends)."""
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["content"] = json.dumps(kwargs["json"]).encode()
        kwargs.setdefault("headers", {}).setdefault("Content-Type", "application/json")
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body["content"] = data.encode() if isinstance(data, str) else data
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        request = client.build_request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers=kwargs.get("headers"),
            cookies=kwargs.get("cookies"),
            **body,
        )
        if request.url.path != "/api/v1/events":
            return await client.send(request)
    head = [(k.decode(), v.decode("latin-1")) for k, v in request.headers.raw]
    query = request.url.query.decode()
    started = time.monotonic()
    async with open_stream(app, request.url.path, query, head) as stream:
        first = await stream.chunks.receive()
    response = httpx.Response(stream.status, headers=stream.headers, content=first, request=request)
    response.elapsed = datetime.timedelta(seconds=time.monotonic() - started)
    return response


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@seed(16)
@BUDGET
@given(data=st.data())
async def test_the_api_conforms_to_its_document(
    ledger: LedgerNode, label: str, data: st.DataObject
) -> None:
    operation = OPERATIONS[label]
    case = data.draw(operation.as_strategy())
    app = create_app(Node(ledger), ApiConfig(admin_token=TOKEN), peers=_peers(ledger))
    headers = {"Authorization": f"Bearer {TOKEN}"} if "/admin/" in label else {}
    kwargs = case.as_transport_kwargs(base_url="http://node", headers=headers)
    with trio.fail_after(30):
        response = await _send(app, kwargs)
    case.validate_response(response, checks=CHECKS, headers=headers)
