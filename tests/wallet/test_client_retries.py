"""A try whose answer was lost makes the outcome of a submission unknown (wallet/client.py's
module docstring): a 429 or a refusal after it is `NodeUnavailableError`, and the wallet keeps
the attachment and waits, instead of taking the submission as refused and dropping it. Against
the real in-process node of `test_client` (sqlite ledger, coordinator, ASGI app); a transport
in front of it plays each try of one route by a script: the node gets the request and its
answer is lost, a connection is refused, a proxy answers 429 or 502."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

import httpx
import pytest

from tangle.http.api import ApiConfig, create_app
from tangle.protocol.ids import MessageId, blake2b_256
from tangle.protocol.message import encode_message, prepare
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import work_value
from tests.builders import NET, address
from tests.wallet.test_client import ACCOUNT, BOB, CONFIG, PARAMS, RETRY, Harness, running
from wallet import (
    NodeClient,
    NodeUnavailableError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    TransferStatus,
    Wallet,
    WalletConfig,
)
from wallet.config import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

SUBMIT: Final = ("POST", "/api/v1/messages")
POW: Final = ("POST", "/api/v1/messages/pow")


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": "played by the test"}}
    return httpx.Response(status, json=body, headers=headers)


class Scripted(httpx.AsyncBaseTransport):
    """A node's transport (`inner`: the harness's, or an app's), with the tries of one route
    played by `script`, one step per try (then the node answers):

    - `lost`: the node carries the request out; its answer is lost (a read timeout);
    - `refused`: the connection is refused (nothing sent);
    - `connect-timeout`: the connection is not made in time (nothing sent);
    - `429`: a proxy answers 429 with a `Retry-After` longer than the client waits (not sent);
    - `502`: a proxy forwards the request and answers 502 instead of the node's answer;
    - `500`: the node carries the request out, then fails (500 `internal_error`);
    - `unsynced`: 503 `node_unsynced`, the node's refusal before it changes anything;
    - `quarantined`: 400 `quarantined_device`, a rule checked before the node looks for the
      message (a device quarantined between two tries).
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, route: tuple[str, str], script: Sequence[str]
    ) -> None:
        self.inner = inner
        self.route = route
        self.script = list(script)
        self.played: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if (request.method, request.url.path) != self.route or not self.script:
            return await self.inner.handle_async_request(request)
        step = self.script.pop(0)
        self.played.append(step)
        if step == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if step == "connect-timeout":
            raise httpx.ConnectTimeout("no connection in time", request=request)
        if step == "429":
            return _error(429, "rate_limited", {"Retry-After": "3600"})
        if step == "unsynced":
            return _error(503, "node_unsynced", {"Retry-After": "1"})
        if step == "quarantined":
            return _error(400, "quarantined_device")
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if step == "lost":
            raise httpx.ReadTimeout("the answer was lost", request=request)
        if step == "502":
            return _error(502, "http_502")
        if step == "500":
            return _error(500, "internal_error")
        raise AssertionError(f"unknown step {step!r}")


async def _knows(h: Harness, message_id: MessageId) -> bool:
    return await h.node.read_core(lambda core: core.knows(message_id))


async def _tagged(client: NodeClient, tag: bytes) -> bytes:
    """A tagged-data message on the node's tips, with a valid nonce."""
    unsent = prepare(NET, TaggedData(tag=tag, data=b"x"), PARAMS.work_per_kib)
    nonce = next(n for n in range(10**6) if work_value(unsent.root, n) <= unsent.target)
    return encode_message(unsent.attach(await client.tips(), nonce))


def _limit_pow(h: Harness) -> None:
    """One proof-of-work a minute per client: a second within the minute is a real 429."""
    h.app = create_app(h.node, ApiConfig(pow_per_minute=1))


@contextlib.asynccontextmanager
async def _wallet(
    transport: Scripted, state: Path, config: WalletConfig = CONFIG
) -> AsyncIterator[Wallet]:
    async with Wallet.open(
        ACCOUNT,
        url="http://node",
        state_path=state,
        transport=transport,
        config=config,
        retry=RETRY,
    ) as w:
        yield w


# -- the client ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "unknown"),
    [
        (["lost", "429"], True),  # the node holds it; the 429 says nothing about that
        (["502", "429"], True),  # a proxy forwarded it, then lost the node's answer
        (["500", "429"], True),  # the node failed after storing it
        (["lost", "refused", "429"], True),  # once unknown, later certain tries do not help
        (["429"], False),  # a 429 alone: nothing was carried out
        (["refused", "connect-timeout", "429"], False),  # no connection: nothing sent
        (["unsynced", "429"], False),  # node_unsynced: the node changed nothing
    ],
)
async def test_a_429_after_a_lost_answer_is_an_unknown_outcome(
    tmp_path: Path, script: list[str], unknown: bool
) -> None:
    async with running(tmp_path) as h:
        transport = Scripted(h.transport(), SUBMIT, script)
        async with NodeClient("http://node", transport=transport, retry=RETRY) as client:
            raw = await _tagged(client, b"retries")
            message_id = MessageId(blake2b_256(raw))
            expected = NodeUnavailableError if unknown else RateLimitedError
            with pytest.raises(expected) as caught:
                await client.submit(raw)
            assert transport.played == script
            assert client.retries == len(script) - 1
            assert await _knows(h, message_id) is unknown
            if unknown:
                assert isinstance(caught.value, NodeUnavailableError)
                assert caught.value.outcome_unknown
                assert "rate limited (rate_limited)" in str(caught.value)
                # a later submission reaches the node: duplicate_message, i.e. submitted
                assert await client.submit(raw) == message_id


async def test_a_refusal_of_a_submission_after_a_lost_answer_is_an_unknown_outcome(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as h:
        transport = Scripted(h.transport(), SUBMIT, ["lost", "quarantined"])
        async with NodeClient("http://node", transport=transport, retry=RETRY) as client:
            raw = await _tagged(client, b"refused")
            with pytest.raises(NodeUnavailableError) as caught:
                await client.submit(raw)
            assert caught.value.outcome_unknown
            assert "refused (quarantined_device)" in str(caught.value)
            # the same refusal without a lost answer is a refusal
            transport.script = ["quarantined"]
            with pytest.raises(RejectedError) as refused:
                await client.submit(await _tagged(client, b"refused-2"))
            assert refused.value.code == "quarantined_device"
        # a read keeps its refusal: a 404 after a lost answer is still NotFoundError
        metadata = ("GET", f"/api/v1/messages/{'ab' * 32}/metadata")
        reads = Scripted(h.transport(), metadata, ["lost"])
        async with NodeClient("http://node", transport=reads, retry=RETRY) as client:
            with pytest.raises(NotFoundError):
                await client.metadata(MessageId(bytes.fromhex("ab" * 32)))
            assert reads.played == ["lost"]


async def test_proof_of_work_rate_limited_after_a_lost_answer_is_an_unknown_outcome(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as h:
        _limit_pow(h)
        transport = Scripted(h.transport(), POW, ["lost"])
        async with NodeClient("http://node", transport=transport, retry=RETRY) as client:
            payload = TaggedData(tag=b"pow", data=b"lost")
            with pytest.raises(NodeUnavailableError) as caught:
                await client.submit_pow(payload)  # try 1 attached it, try 2: 429 from the node
            assert caught.value.outcome_unknown
            assert "pow_rate_limited" in str(caught.value)
            assert client.retries == 1
        async with NodeClient("http://node", transport=h.transport(), retry=RETRY) as client:
            with pytest.raises(RateLimitedError) as limited:  # the node's 429 alone
                await client.submit_pow(TaggedData(tag=b"pow", data=b"second"))
            assert limited.value.code == "pow_rate_limited"
            assert limited.value.retry_after_s is not None
            assert limited.value.retry_after_s > RETRY.max_retry_after_s


# -- the wallet ------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["429", "quarantined"])
async def test_a_429_or_a_refusal_after_a_lost_answer_keeps_the_attachment(
    tmp_path: Path, answer: str
) -> None:
    key = f"lost-then-{answer}"
    async with running(tmp_path) as h:
        transport = Scripted(h.transport(), SUBMIT, ["lost", answer])
        async with _wallet(transport, tmp_path / "w.db") as w:
            await w.sync()
            with pytest.raises(NodeUnavailableError):
                await w.send(address(BOB), 50_000, idempotency_key=key)
            (pending,) = await w.transfers()
            assert pending.status is TransferStatus.SUBMITTED  # not SIGNED nor FAILED
            (attachment,) = pending.attachments
            assert attachment.message_id is not None
            assert await _knows(h, attachment.message_id)
            await w.settle()  # never abandoned as unpublished
            assert (await w.transfers())[0].status is not TransferStatus.FAILED
            done = await w.send(address(BOB), 50_000, idempotency_key=key)
        assert done.transaction_id == pending.transaction_id
        assert done.status is TransferStatus.CONFIRMED
        assert [a.message_id for a in done.attachments] == [attachment.message_id]
        assert await h.balance_of(address(BOB)) == 50_000  # paid once


async def test_a_429_on_a_try_never_carried_out_still_drops_the_attachment(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as h:
        transport = Scripted(h.transport(), SUBMIT, ["refused", "429"])
        async with _wallet(transport, tmp_path / "w.db") as w:
            await w.sync()
            with pytest.raises(RateLimitedError):
                await w.send(address(BOB), 30_000, idempotency_key="never-sent")
            (unsent,) = await w.transfers()
            assert unsent.status is TransferStatus.SIGNED  # nothing reached the node
            assert unsent.attachments == ()
            assert h.submitted == []
            done = await w.send(address(BOB), 30_000, idempotency_key="never-sent")
        assert done.status is TransferStatus.CONFIRMED
        assert await h.balance_of(address(BOB)) == 30_000


async def test_node_proof_of_work_rate_limited_after_a_lost_answer_keeps_the_attachment(
    tmp_path: Path,
) -> None:
    remote = WalletConfig(
        remote_pow=True, poll_interval_s=0.05, stream_open_timeout_s=0.2, stream_retry_s=0.3
    )
    async with running(tmp_path) as h:
        _limit_pow(h)
        transport = Scripted(h.transport(stream=False), POW, ["lost"])
        async with _wallet(transport, tmp_path / "w.db", remote) as w:
            await w.sync()
            with pytest.raises(NodeUnavailableError):  # the node's own 429 on the retry
                await w.send(address(BOB), 20_000, idempotency_key="pow-lost")
            (pending,) = await w.transfers()
            assert pending.status is TransferStatus.SUBMITTED
            (attachment,) = pending.attachments
            assert attachment.message_id is None  # the node made it; its id was lost
            done = await w.send(address(BOB), 20_000, idempotency_key="pow-lost")
        assert done.status is TransferStatus.CONFIRMED
        assert await h.balance_of(address(BOB)) == 20_000


@pytest.mark.parametrize(
    ("script", "unknown"),
    [
        (["refused", "connect-timeout", "unsynced"], False),
        (["refused", "lost", "refused"], True),
        (["500", "502", "unsynced"], True),
    ],
)
async def test_a_submission_no_try_of_which_was_answered_says_whether_one_may_have_applied(
    tmp_path: Path, script: list[str], unknown: bool
) -> None:
    """Every try failing: `outcome_unknown` is set when a try may have been carried out (its
    answer lost, or a 500/502 that can follow the work), whichever try it was, and only
    then."""
    async with running(tmp_path) as h:
        transport = Scripted(h.transport(), SUBMIT, script)
        retry = RetryPolicy(attempts=len(script), base_delay_s=0.001, max_delay_s=0.001)
        async with NodeClient("http://node", transport=transport, retry=retry) as client:
            raw = await _tagged(client, b"every try failed")
            with pytest.raises(NodeUnavailableError) as caught:
                await client.submit(raw)
            assert transport.played == script
            assert caught.value.outcome_unknown is unknown
