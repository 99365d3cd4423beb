"""The watch service's core against a real ledger (white-flag milestones, `channel_chain`): it
protects an offline party from a unilateral close, a stale two-way state and expiry; its trio
adapter survives a failing node and failed submissions, channel by channel."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trio

from coordinator.signers import KeySigner
from payments.channels.core import ChannelTerms
from payments.channels.state import Role
from payments.ledger.watch import (
    Challenge,
    CloseWithProof,
    Settle,
    StartClose,
    Watchtower,
    run_watch_service,
)
from tangle.ledger.ledger import Conflict
from tangle.protocol.channel import ChannelOutput, channel_id_of
from tangle.protocol.ids import ChannelId, PublicKey
from tests.builders import NET, address, genesis, key
from tests.channel_chain import Chain, sign_proof
from wallet import ChannelInfo, NodeInfo, channel_tx
from wallet.errors import (
    NodeUnavailableError,
    RateLimitedError,
    TransferFailedError,
    TransferTimeoutError,
)

if TYPE_CHECKING:
    from trio.testing import MockClock

    from tangle.protocol.transaction import Transaction

PAYER, PAYEE = key(21), key(22)
PERIOD = 6


def _setup(*, bidirectional: bool = False, expiry: int = 1000) -> tuple[Chain, ChannelOutput]:
    g = genesis([(PAYER, 5000)])
    (coin,) = g.outputs()
    chain = Chain(g)
    tx = channel_tx.open_channel(
        network_id=NET,
        funding=[(coin, KeySigner(bytes(PAYER)))],
        payer=PublicKey(bytes(PAYER.verify_key)),
        payee=PublicKey(bytes(PAYEE.verify_key)),
        deposit=5000,
        challenge_period=PERIOD,
        expiry=expiry,
        bidirectional=bidirectional,
    )
    assert chain.apply(tx) is Conflict.NONE
    found = chain.channel(channel_id_of(coin, 0))
    assert found is not None
    return chain, found[1]


def _look(tower: Watchtower, chain: Chain, channel: ChannelOutput):  # type: ignore[no-untyped-def]
    return tower.observe(channel.channel_id, chain.channel(channel.channel_id), chain.index)


def _carry_out(chain: Chain, action: object, signer: KeySigner, channel: ChannelOutput) -> Conflict:
    found = chain.channel(channel.channel_id)
    assert found is not None
    oid, out = found
    tx: Transaction
    if isinstance(action, CloseWithProof):
        tx = channel_tx.payee_close(
            network_id=NET, channel_input=oid, channel=out, payee=signer, proof=action.proof
        )
    elif isinstance(action, Challenge):
        tx = channel_tx.challenge(
            network_id=NET, channel_input=oid, channel=out, signer=signer, proof=action.proof
        )
    elif isinstance(action, StartClose):
        tx = channel_tx.start_close(
            network_id=NET, channel_input=oid, channel=out, signer=signer, proof=action.proof
        )
    else:
        assert isinstance(action, Settle)
        tx = channel_tx.settle(network_id=NET, channel_input=oid, channel=out, signer=signer)
    return chain.apply(tx)


def test_the_tower_answers_a_unilateral_close_for_an_offline_payee() -> None:
    chain, channel = _setup()
    tower = Watchtower()
    tower.guard(ChannelTerms.from_output(NET, channel), Role.PAYEE, None)
    latest = sign_proof(channel.channel_id, 40, 1234, PAYER)
    tower.guard(ChannelTerms.from_output(NET, channel), Role.PAYEE, latest)
    assert _look(tower, chain, channel) is None  # open, far from expiry: nothing to do
    oid, _ = chain.channel(channel.channel_id)  # type: ignore[misc]
    start = channel_tx.start_close(
        network_id=NET, channel_input=oid, channel=channel, signer=KeySigner(bytes(PAYER))
    )
    assert chain.apply(start) is Conflict.NONE
    action = _look(tower, chain, channel)
    assert action == CloseWithProof(channel_id=channel.channel_id, proof=latest)
    assert _look(tower, chain, channel) == action  # asked again until it is confirmed
    oid, _ = chain.channel(channel.channel_id)  # type: ignore[misc]
    tower.done(channel.channel_id, oid)
    assert _look(tower, chain, channel) is None  # a node still showing the output is behind
    assert _carry_out(chain, action, KeySigner(bytes(PAYEE)), channel) is Conflict.NONE
    assert chain.held_by(address(PAYEE)) == 1234
    assert _look(tower, chain, channel) is None
    assert tower.channels == ()


def test_the_tower_closes_before_expiry() -> None:
    chain, channel = _setup(expiry=10)
    tower = Watchtower(margin=3)
    latest = sign_proof(channel.channel_id, 2, 700, PAYER)
    tower.guard(ChannelTerms.from_output(NET, channel), Role.PAYEE, latest)
    while (action := _look(tower, chain, channel)) is None:
        chain.apply()
    assert chain.index + 1 + 3 > 10  # it acted within the margin, not before
    assert _carry_out(chain, action, KeySigner(bytes(PAYEE)), channel) is Conflict.NONE
    assert chain.held_by(address(PAYEE)) == 700


def test_the_tower_challenges_a_stale_two_way_state_and_then_settles() -> None:
    chain, channel = _setup(bidirectional=True)
    old = sign_proof(channel.channel_id, 3, 100, PAYER, PAYEE)
    new = sign_proof(channel.channel_id, 8, 3000, PAYER, PAYEE)
    tower = Watchtower()
    tower.guard(ChannelTerms.from_output(NET, channel), Role.PAYEE, new)
    oid, _ = chain.channel(channel.channel_id)  # type: ignore[misc]
    cheat = channel_tx.start_close(
        network_id=NET,
        channel_input=oid,
        channel=channel,
        signer=KeySigner(bytes(PAYER)),
        proof=old,
    )
    assert chain.apply(cheat) is Conflict.NONE
    action = _look(tower, chain, channel)
    assert isinstance(action, Challenge)
    assert _carry_out(chain, action, KeySigner(bytes(PAYEE)), channel) is Conflict.NONE
    while (action := _look(tower, chain, channel)) is None:
        chain.apply()
    assert isinstance(action, Settle)
    assert _carry_out(chain, action, KeySigner(bytes(PAYEE)), channel) is Conflict.NONE
    assert chain.held_by(address(PAYEE)) == 3000
    assert chain.held_by(address(PAYER)) == 2000


class _Node:
    """The node and wallet `run_watch_service` talks to, over a `Chain`, failing on cue."""

    def __init__(self, chain: Chain, *, failing: ChannelId) -> None:
        self.chain = chain
        self.client = self
        self.failing = failing
        self.info_failures = 2
        self.submit_failures: list[Exception] = [
            TransferTimeoutError("t", 5.0),
            TransferFailedError("t", "input_spent"),
        ]
        self.submitted: list[Transaction] = []
        self.applied = trio.Event()

    async def info(self) -> NodeInfo:
        if self.info_failures:
            self.info_failures -= 1
            raise NodeUnavailableError("GET /info", "connection refused")
        index = self.chain.index
        return NodeInfo(
            network_id=NET,
            confirmed_milestone_index=index,
            latest_milestone_index=index,
            healthy=True,
            work_per_kib=0,
            min_output_amount=1,
            pruned_index=0,
        )

    async def channel(self, channel_id: ChannelId) -> ChannelInfo | None:
        if channel_id == self.failing:
            raise RateLimitedError("GET /channels", "rate_limited", 1.0)
        found = self.chain.channel(channel_id)
        if found is None:
            return None
        return ChannelInfo(ledger_index=self.chain.index, output_id=found[0], output=found[1])

    async def submit(self, tx: Transaction, **_: Any) -> None:
        self.submitted.append(tx)
        if self.submit_failures:
            raise self.submit_failures.pop(0)
        assert self.chain.apply(tx) is Conflict.NONE
        self.applied.set()


async def test_the_service_keeps_guarding_through_node_and_submission_failures(
    autojump_clock: MockClock,
) -> None:
    chain, channel = _setup()
    terms = ChannelTerms.from_output(NET, channel)
    other = replace(terms, channel_id=ChannelId(bytes(32)))  # its reads are always refused
    node = _Node(chain, failing=other.channel_id)
    tower = Watchtower()
    latest = sign_proof(channel.channel_id, 40, 1234, PAYER)
    tower.guard(other, Role.PAYEE, None)
    tower.guard(terms, Role.PAYEE, latest)
    oid, _ = chain.channel(channel.channel_id)  # type: ignore[misc]
    start = channel_tx.start_close(
        network_id=NET, channel_input=oid, channel=channel, signer=KeySigner(bytes(PAYER))
    )
    assert chain.apply(start) is Conflict.NONE
    keys = {PublicKey(bytes(PAYEE.verify_key)): KeySigner(bytes(PAYEE))}
    async with trio.open_nursery() as nursery:
        await nursery.start(run_watch_service, tower, node, keys)
        with trio.fail_after(60):
            await node.applied.wait()
        nursery.cancel_scope.cancel()
    assert node.info_failures == 0
    assert len(node.submitted) == 3  # timed out, failed, then confirmed: one close each time
    assert len({tx.id for tx in node.submitted}) == 1  # the same close, resumable by its key
    assert chain.held_by(address(PAYEE)) == 1234
    assert other.channel_id in tower.channels  # still guarded, looked at again each poll
