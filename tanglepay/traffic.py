"""The devnet's traffic generator and faucet, through a node's HTTP API.

The generator sends signed transfers of random amounts between the faucet accounts; the faucet
(`POST /faucet`) pays any address from them; `follow` reads the node's event stream, reports each
milestone with the confirmation time of the generator's transfers, and keeps the generator's
view of its outputs current.
"""

from __future__ import annotations

import json
import statistics
import string
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tangle import work
from tangle.errors import TangleError
from tangle.protocol.ids import Address, MessageId, OutputId
from tangle.protocol.message import encode_message, prepare
from tangle.protocol.transaction import BasicOutput, TransactionEssence
from wallet import DEVNET as DEVNET_NETWORK
from wallet import WalletError, decode_address, sign_transaction

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx
    import trio
    from starlette.requests import Request

    from tangle.node.core import Parameters
    from wallet import AddressKey

FAUCET_AMOUNT: Final = 10_000_000
FAUCET_MAX: Final = 1_000_000_000


@dataclass(slots=True)
class Traffic:
    """The traffic generator's view of its accounts."""

    params: Parameters
    keys: dict[Address, AddressKey]
    unspent: dict[OutputId, tuple[Address, int]] = field(default_factory=dict)
    in_flight: set[OutputId] = field(default_factory=set)
    sent: dict[str, tuple[float, tuple[OutputId, ...]]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def settle(self, message_id: str, included: bool) -> None:
        """A transfer of ours was confirmed (or refused): its inputs are free (or gone)."""
        sent = self.sent.pop(message_id, None)
        if sent is None:
            return
        self.latencies.append(time.monotonic() - sent[0])
        self.in_flight.difference_update(sent[1])
        if included:
            for oid in sent[1]:
                self.unspent.pop(oid, None)


async def _refresh(traffic: Traffic, client: httpx.AsyncClient, api: str) -> None:
    unspent: dict[OutputId, tuple[Address, int]] = {}
    for address in traffic.keys:
        body = (await client.get(f"{api}/api/v1/addresses/{address.hex()}/outputs")).json()
        for out in body["outputs"]:
            unspent[OutputId.from_hex(out["output_id"])] = (address, int(out["amount"]))
    traffic.unspent = unspent


async def pay_from_faucet(
    traffic: Traffic,
    client: httpx.AsyncClient,
    api: str,
    to: Address,
    amount: int | None,
    rng: np.random.Generator,
) -> str | None:
    """Send `amount` (None: a random amount) from one of the generator's confirmed outputs to
    `to`, the change back; returns the message id, or None if no output can pay it."""
    params = traffic.params
    floor = params.min_output_amount
    least = floor + (floor if amount is None else amount)
    candidates = [
        (oid, held)
        for oid, held in traffic.unspent.items()
        if oid not in traffic.in_flight and held[1] >= least
    ]
    if not candidates:
        return None
    oid, (owner, held) = candidates[int(rng.integers(len(candidates)))]
    traffic.in_flight.add(oid)
    try:
        paid = int(rng.integers(floor, held - floor + 1)) if amount is None else amount
        essence = TransactionEssence(
            network_id=params.network_id,
            inputs=(oid,),
            outputs=(
                BasicOutput(address=to, amount=paid),
                BasicOutput(address=owner, amount=held - paid),
            ),
        )
        signed = sign_transaction(essence, [traffic.keys[owner]])
        unsent = prepare(params.network_id, signed, params.work_per_kib)
        nonce = await work.solve(unsent.root, unsent.target)
        answer = await client.get(f"{api}/api/v1/tips", params={"count": 2})
        if answer.status_code != 200:  # 503 while the node catches up: the next turn retries
            traffic.in_flight.discard(oid)
            return None
        tips = answer.json()["tips"]
        raw = encode_message(unsent.attach(tuple(MessageId.from_hex(t) for t in tips), nonce))
        response = await client.post(
            f"{api}/api/v1/messages",
            content=raw,
            headers={"content-type": "application/octet-stream"},
        )
    except BaseException:
        traffic.in_flight.discard(oid)
        raise
    if response.status_code != 201:
        traffic.in_flight.discard(oid)
        return None
    message_id: str = response.json()["id"]
    traffic.sent[message_id] = (time.monotonic(), (oid,))
    return message_id


async def send(
    traffic: Traffic, client: httpx.AsyncClient, api: str, rng: np.random.Generator
) -> None:
    """One transfer of a random amount between the generator's own accounts."""
    to = list(traffic.keys)[int(rng.integers(len(traffic.keys)))]
    await pay_from_faucet(traffic, client, api, to, None, rng)


def parse_address(text: str) -> Address:
    """A devnet address in bech32m (`tpdev1...`) or 64 hex digits."""
    if len(text) == 2 * Address.SIZE and all(c in string.hexdigits for c in text):
        return Address.from_hex(text)
    return decode_address(text, DEVNET_NETWORK)


def faucet_app(traffic: Traffic, client: httpx.AsyncClient, api: str) -> Starlette:
    """`POST /faucet` with `{"address": hex, "amount": int}` (amount optional, at most
    FAUCET_MAX): pays the address from the faucet accounts; 201 `{"message_id"}`."""
    rng = np.random.default_rng()

    async def pay(request: Request) -> Response:
        try:
            body = await request.json()
            address = parse_address(str(body["address"]))
            amount = int(body.get("amount", FAUCET_AMOUNT))
        except (ValueError, KeyError, TypeError, TangleError, WalletError):
            return JSONResponse(
                {"error": "expected {'address': tpdev1... or hex, 'amount': int}"}, 400
            )
        floor = traffic.params.min_output_amount
        if not floor <= amount <= FAUCET_MAX:
            return JSONResponse({"error": f"amount must be in {floor}..{FAUCET_MAX}"}, 400)
        message_id = await pay_from_faucet(traffic, client, api, address, amount, rng)
        if message_id is None:
            return JSONResponse({"error": "the faucet is busy; try again after a milestone"}, 503)
        return JSONResponse({"message_id": message_id, "amount": amount}, 201)

    return Starlette(routes=[Route("/faucet", pay, methods=["POST"])])


async def follow(
    traffic: Traffic,
    client: httpx.AsyncClient,
    api: str,
    say: Callable[[str], None],
    *,
    task_status: trio.TaskStatus[None],
) -> None:
    """Report each milestone from the event stream and keep the generator's view current."""
    started = False
    async with client.stream("GET", f"{api}/api/v1/events", timeout=None) as stream:
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
                continue
            if not line.startswith("data: "):
                continue
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            if event == "transaction":
                traffic.settle(data["message_id"], data["inclusion"] == "included")
            elif event == "milestone":
                latencies, traffic.latencies = traffic.latencies, []
                p50 = f"{statistics.median(latencies):.2f} s" if latencies else "-"
                say(
                    f"milestone {data['index']:>5}  {data['included']:>4} transfers confirmed "
                    f"(ours {len(latencies)}, p50 {p50})  {data['conflicting']} conflicting  "
                    f"ledger {data['ledger_state_hash'][:16]}"
                )
                await _refresh(traffic, client, api)
                if not started:
                    started = True
                    task_status.started()
