"""Two-way channels over TCP on loopback: operators paying each other, recovery of a lost
database from the other side's HELLO, refused proposals, and the last co-signed state settled on
a white-flag ledger."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING

import pytest
import trio

from payments import (
    NEED_DATA,
    ChannelStore,
    ChannelTerms,
    Closed,
    Connection,
    CounterpartyRejectedError,
    Countersign,
    Hello,
    InvalidAmountError,
    PaymentInDoubtError,
    Propose,
    Reject,
    RejectCode,
    Role,
    StoreError,
    TwoWayChannel,
    TwoWaySession,
    open_two_way,
    read_records,
    serve_two_way,
)
from tangle.ledger.ledger import Conflict, Genesis
from tangle.protocol.channel import BalanceProof, SignedBalanceProof
from tangle.protocol.ids import ChannelId
from tangle.protocol.transaction import address_of
from tests.builders import NET
from tests.channel_chain import Chain
from tests.payments_support import CHANNEL, MALLORY, NETWORK, PAYEE, PAYER, terms
from wallet import channel_tx

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from payments.channels.store import ChannelRecord
    from payments.channels.wire import Event
    from tangle.protocol.ids import Signature
    from wallet.keys import AddressKey

DEPOSIT = 10_000
TERMS = terms(deposit=DEPOSIT, bidirectional=True)
A_AMOUNTS = [1 + i % 7 for i in range(80)]
B_AMOUNTS = [2 + i % 5 for i in range(80)]


@contextlib.asynccontextmanager
async def _session(
    dialer: TwoWayChannel,
    dialer_store: Path,
    listener: TwoWayChannel,
    listener_store: Path,
    on_session: Callable[[TwoWaySession], Awaitable[None]] | None = None,
) -> AsyncIterator[TwoWaySession]:
    """The `dialer`'s session with the `listener` on loopback, each party with its own store."""
    async with (
        ChannelStore(dialer_store) as a_store,
        ChannelStore(listener_store) as b_store,
        trio.open_nursery() as nursery,
    ):
        channels = {listener.terms.channel_id: listener}
        port = await nursery.start(partial(serve_two_way, channels, b_store, on_session=on_session))
        async with open_two_way(dialer, a_store, "127.0.0.1", port) as session:
            yield session
        nursery.cancel_scope.cancel()


async def _pay_both_ways(a: TwoWayChannel, b: TwoWayChannel, tmp_path: Path) -> None:
    """A (the dialer, store `a.db`) gives B (store `b.db`) a float of 1000, then both pay their
    amounts at the same time."""
    b_done = trio.Event()
    float_paid = trio.Event()

    async def b_pays(session: TwoWaySession) -> None:
        await float_paid.wait()
        for amount in B_AMOUNTS:
            await session.pay(amount)
        b_done.set()

    async with _session(a, tmp_path / "a.db", b, tmp_path / "b.db", b_pays) as session:
        await session.pay(1000)
        float_paid.set()
        for amount in A_AMOUNTS:
            state = await session.pay(amount)
            assert state == a.latest
        await b_done.wait()


def _durable(path: Path) -> SignedBalanceProof | None:
    (record,) = read_records(path)
    return record.latest


async def test_both_operators_pay_each_other_and_agree_on_one_durable_state(
    tmp_path: Path,
) -> None:
    a, b = TwoWayChannel(TERMS, PAYER), TwoWayChannel(TERMS, PAYEE)
    await _pay_both_ways(a, b, tmp_path)
    expected = 1000 + sum(A_AMOUNTS) - sum(B_AMOUNTS)
    assert a.latest is not None
    assert a.latest == b.latest == _durable(tmp_path / "a.db") == _durable(tmp_path / "b.db")
    assert a.latest.verify(PAYER.public_key, PAYEE.public_key, bidirectional=True)
    assert b.payee_balance == expected
    assert a.own_balance + b.own_balance == DEPOSIT
    assert a.sequence >= 1 + len(A_AMOUNTS) + len(B_AMOUNTS)
    assert (a.pending, b.pending) == (None, None)


async def test_a_side_that_lost_its_database_recovers_from_the_other(tmp_path: Path) -> None:
    a, b = TwoWayChannel(TERMS, PAYER), TwoWayChannel(TERMS, PAYEE)
    await _pay_both_ways(a, b, tmp_path)
    latest = a.latest
    assert latest is not None
    # the dialer starts empty: the listener's HELLO brings the latest state back, saved at once
    fresh_a = TwoWayChannel(TERMS, PAYER)
    async with _session(fresh_a, tmp_path / "a-fresh.db", b, tmp_path / "b.db") as session:
        assert fresh_a.latest == latest
        assert _durable(tmp_path / "a-fresh.db") == latest
        after = await session.pay(5)
    assert after.proof.sequence > latest.proof.sequence
    assert after.proof.payee_balance == latest.proof.payee_balance + 5
    # the listener starts empty: the dialer's HELLO brings the latest state back
    fresh_b = TwoWayChannel(TERMS, PAYEE)
    async with _session(
        fresh_a, tmp_path / "a-fresh.db", fresh_b, tmp_path / "b-fresh.db"
    ) as session:
        assert fresh_b.latest == after
        assert _durable(tmp_path / "b-fresh.db") == after
        final = await session.pay(1)
    assert fresh_b.latest == final == _durable(tmp_path / "b-fresh.db")


class _RawDialer:
    """Party A speaking the protocol frame by frame, to send what an honest session never does."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = Connection(Role.PAYER)

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.conn.send(event))

    async def receive(self) -> object:
        while (event := self.conn.next_event()) is NEED_DATA:
            self.conn.receive_data(await self.stream.receive_some(4096))
        return event


def _signature(key: AddressKey, sequence: int, balance: int) -> Signature:
    proof = BalanceProof(
        network_id=NETWORK, channel_id=CHANNEL, sequence=sequence, payee_balance=balance
    )
    return key.sign(proof.message())


def _proposal(key: AddressKey, sequence: int, balance: int) -> Propose:
    return Propose(
        sequence=sequence, payee_balance=balance, signature=_signature(key, sequence, balance)
    )


async def test_forged_and_stale_proposals_are_refused_and_change_nothing(tmp_path: Path) -> None:
    b = TwoWayChannel(TERMS, PAYEE)
    async with ChannelStore(tmp_path / "b.db") as store, trio.open_nursery() as nursery:
        port = await nursery.start(serve_two_way, {CHANNEL: b}, store)
        dialer = _RawDialer(await trio.open_tcp_stream("127.0.0.1", port))
        await dialer.send(Hello(network_id=NETWORK, channel_id=CHANNEL))
        assert await dialer.receive() == Hello(network_id=NETWORK, channel_id=CHANNEL)
        await dialer.send(_proposal(PAYER, 1, 100))
        answer = await dialer.receive()
        assert isinstance(answer, Countersign)
        assert answer.sequence == 1
        state = b.latest
        refusals = [
            (_proposal(MALLORY, 3, 200), RejectCode.INVALID_PROOF),  # forged
            (_proposal(PAYER, 1, 300), RejectCode.STALE_PROOF),  # a replayed sequence
            (_proposal(PAYER, 3, 50), RejectCode.BALANCE_DECREASED),  # takes from B
            (_proposal(PAYER, 3, DEPOSIT + 1), RejectCode.INSUFFICIENT_DEPOSIT),
        ]
        for proposal, code in refusals:
            await dialer.send(proposal)
            reject = await dialer.receive()
            assert isinstance(reject, Reject)
            assert (reject.sequence, reject.code) == (proposal.sequence, code)
            assert b.latest == state
            assert _durable(tmp_path / "b.db") == state
        await dialer.stream.aclose()

        # a forged state in HELLO is refused with the session, and changes nothing
        dialer = _RawDialer(await trio.open_tcp_stream("127.0.0.1", port))
        proof = BalanceProof(
            network_id=NETWORK, channel_id=CHANNEL, sequence=9, payee_balance=DEPOSIT
        )
        forged = SignedBalanceProof(
            proof=proof,
            payer_signature=PAYER.sign(proof.message()),
            payee_signature=MALLORY.sign(proof.message()),
        )
        await dialer.send(Hello(network_id=NETWORK, channel_id=CHANNEL, latest=forged))
        reject = await dialer.receive()
        assert isinstance(reject, Reject)
        assert (reject.sequence, reject.code) == (0, RejectCode.INVALID_PROOF)
        assert b.latest == state == _durable(tmp_path / "b.db")
        await dialer.stream.aclose()
        nursery.cancel_scope.cancel()


async def test_crossing_proposals_the_lower_one_is_proposed_again(tmp_path: Path) -> None:
    b = TwoWayChannel(TERMS, PAYEE)
    b_pays, b_paid = trio.Event(), trio.Event()
    paid: list[SignedBalanceProof] = []

    async def on_session(session: TwoWaySession) -> None:
        await b_pays.wait()
        paid.append(await session.pay(30))
        b_paid.set()

    async with ChannelStore(tmp_path / "b.db") as store, trio.open_nursery() as nursery:
        port = await nursery.start(
            partial(serve_two_way, {CHANNEL: b}, store, on_session=on_session)
        )
        dialer = _RawDialer(await trio.open_tcp_stream("127.0.0.1", port))
        await dialer.send(Hello(network_id=NETWORK, channel_id=CHANNEL))
        await dialer.receive()
        await dialer.send(_proposal(PAYER, 1, 100))
        assert isinstance(await dialer.receive(), Countersign)
        b_pays.set()
        assert await dialer.receive() == _proposal(PAYEE, 2, 70)  # B's proposal...
        await dialer.send(_proposal(PAYER, 3, 110))  # ...crosses A's higher one
        await dialer.send(Reject(sequence=2, code=RejectCode.STALE_PROOF, reason="crossed"))
        assert await dialer.receive() == Countersign(
            sequence=3, signature=_signature(PAYEE, 3, 110)
        )
        again = await dialer.receive()  # B pays again, on top of the state A proposed
        assert again == _proposal(PAYEE, 4, 80)
        await dialer.send(Countersign(sequence=4, signature=_signature(PAYER, 4, 80)))
        await b_paid.wait()
        assert paid[0] == b.latest == _durable(tmp_path / "b.db")
        assert (b.sequence, b.payee_balance, b.pending) == (4, 80, None)
        await dialer.stream.aclose()
        nursery.cancel_scope.cancel()


async def test_unknown_channel_and_overspending_are_refused(tmp_path: Path) -> None:
    other = TwoWayChannel(terms(bidirectional=True, channel=ChannelId(b"\x44" * 32)), PAYER)
    async with (
        ChannelStore(tmp_path / "a.db") as a_store,
        ChannelStore(tmp_path / "b.db") as b_store,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(serve_two_way, {CHANNEL: TwoWayChannel(TERMS, PAYEE)}, b_store)
        with pytest.raises(CounterpartyRejectedError) as info:
            async with open_two_way(other, a_store, "127.0.0.1", port):
                pass
        assert info.value.code == RejectCode.UNKNOWN_CHANNEL
        a = TwoWayChannel(TERMS, PAYER)
        with pytest.raises(InvalidAmountError):
            async with open_two_way(a, a_store, "127.0.0.1", port) as session:
                await session.pay(DEPOSIT + 1)
        assert a.latest is None
        nursery.cancel_scope.cancel()


async def test_the_last_co_signed_state_settles_on_the_ledger(tmp_path: Path) -> None:
    payer_address, payee_address = address_of(PAYER.public_key), address_of(PAYEE.public_key)
    chain = Chain(Genesis(network_id=NET, supply=50_000, allocations=((payer_address, 50_000),)))
    (coin,) = chain.state.unspent
    opening = channel_tx.open_channel(
        network_id=NET,
        funding=[(coin, PAYER)],
        payer=PAYER.public_key,
        payee=PAYEE.public_key,
        deposit=DEPOSIT,
        challenge_period=5,
        expiry=1000,
        bidirectional=True,
        change=(payer_address, 40_000),
    )
    assert chain.apply(opening) is Conflict.NONE
    found = chain.channel(opening.essence.outputs[0].channel_id)  # type: ignore[union-attr]
    assert found is not None
    on_ledger = ChannelTerms.from_output(NET, found[1])
    a, b = TwoWayChannel(on_ledger, PAYER), TwoWayChannel(on_ledger, PAYEE)
    await _pay_both_ways(a, b, tmp_path)
    final = _durable(tmp_path / "b.db")
    assert final is not None
    assert final == a.latest

    oid, channel = found
    start = channel_tx.start_close(
        network_id=NET, channel_input=oid, channel=channel, signer=PAYEE, proof=final
    )
    assert chain.apply(start) is Conflict.NONE
    oid, closing = chain.channel(channel.channel_id)  # type: ignore[misc]
    assert (closing.sequence, closing.payee_balance) == (final.proof.sequence, b.payee_balance)
    chain.advance_to(closing.closing_since + 5 - 1)
    settle = channel_tx.settle(network_id=NET, channel_input=oid, channel=closing, signer=PAYER)
    assert chain.apply(settle) is Conflict.NONE
    assert chain.channel(channel.channel_id) is None
    assert chain.held_by(payee_address) == b.payee_balance == 1000 + sum(A_AMOUNTS) - sum(B_AMOUNTS)
    assert chain.held_by(payer_address) == 40_000 + a.own_balance


class _FragileStore:
    """A store whose next save fails (`fail`) or waits for `gate` (shielded or not)."""

    def __init__(self, inner: ChannelStore) -> None:
        self.inner = inner
        self.fail = False
        self.gate: trio.Event | None = None
        self.entered = trio.Event()

    async def save(self, record: ChannelRecord) -> None:
        if self.fail:
            raise StoreError("the disk is full")
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()
        await self.inner.save(record)


class _SeenChannels(dict[ChannelId, TwoWayChannel]):
    """The listener's channels, telling when a HELLO has looked its channel up `n` times."""

    def __init__(self, channel: TwoWayChannel) -> None:
        super().__init__({channel.terms.channel_id: channel})
        self.looked_up = 0
        self.second = trio.Event()

    def get(self, key: ChannelId, default: object = None) -> TwoWayChannel | None:  # type: ignore[override]
        self.looked_up += 1
        if self.looked_up == 2:
            self.second.set()
        return super().get(key)


async def test_a_takeover_during_a_save_leaves_memory_equal_to_disk(tmp_path: Path) -> None:
    b = TwoWayChannel(TERMS, PAYEE)
    channels = _SeenChannels(b)
    async with ChannelStore(tmp_path / "b.db") as inner, trio.open_nursery() as nursery:
        store = _FragileStore(inner)
        port = await nursery.start(serve_two_way, channels, store)
        first = _RawDialer(await trio.open_tcp_stream("127.0.0.1", port))
        await first.send(Hello(network_id=NETWORK, channel_id=CHANNEL))
        await first.receive()
        store.gate = trio.Event()
        await first.send(_proposal(PAYER, 1, 100))
        await store.entered.wait()  # B is saving the co-signed state 1...
        second = _RawDialer(await trio.open_tcp_stream("127.0.0.1", port))
        await second.send(Hello(network_id=NETWORK, channel_id=CHANNEL))
        await channels.second.wait()  # ...when a new connection cancels the first session
        store.gate.set()
        hello = await second.receive()
        assert isinstance(hello, Hello)
        assert hello.latest == b.latest == _durable(tmp_path / "b.db")
        assert b.sequence == 1  # the save went through, and only then was it adopted
        await first.stream.aclose()
        await second.stream.aclose()
        nursery.cancel_scope.cancel()


async def test_a_failed_save_of_a_countersignature_changes_nothing(tmp_path: Path) -> None:
    b = TwoWayChannel(TERMS, PAYEE)
    async with ChannelStore(tmp_path / "b.db") as inner, trio.open_nursery() as nursery:
        store = _FragileStore(inner)
        port = await nursery.start(serve_two_way, {CHANNEL: b}, store)
        dialer = _RawDialer(await trio.open_tcp_stream("127.0.0.1", port))
        await dialer.send(Hello(network_id=NETWORK, channel_id=CHANNEL))
        await dialer.receive()
        store.fail = True
        await dialer.send(_proposal(PAYER, 1, 100))
        with contextlib.suppress(trio.BrokenResourceError):
            assert isinstance(await dialer.receive(), Closed)  # the session ended, unanswered
        assert (b.latest, b.pending) == (None, None)
        assert read_records(tmp_path / "b.db") == []
        await dialer.stream.aclose()
        nursery.cancel_scope.cancel()


async def test_a_payment_countersigned_but_not_saved_is_reported_as_made(tmp_path: Path) -> None:
    a, b = TwoWayChannel(TERMS, PAYER), TwoWayChannel(TERMS, PAYEE)
    async with (
        ChannelStore(tmp_path / "a.db") as a_inner,
        ChannelStore(tmp_path / "b.db") as b_store,
        trio.open_nursery() as nursery,
    ):
        a_store = _FragileStore(a_inner)
        port = await nursery.start(serve_two_way, {CHANNEL: b}, b_store)

        async def pay_twice() -> None:
            async with open_two_way(a, a_store, "127.0.0.1", port) as session:  # type: ignore[arg-type]
                await session.pay(7)
                a_store.fail = True
                await session.pay(100)

        with pytest.raises(PaymentInDoubtError) as info:
            await pay_twice()
        made = info.value.signed
        assert made is not None
        assert made == b.latest == _durable(tmp_path / "b.db")  # B holds the payment
        assert a.sequence == 1  # A kept what it saved, no further
        assert a.latest == _durable(tmp_path / "a.db")
        a_store.fail = False
        async with open_two_way(a, a_store, "127.0.0.1", port):  # type: ignore[arg-type]
            assert a.latest == made  # B's HELLO brings it back: nobody pays twice
        nursery.cancel_scope.cancel()


async def test_a_session_that_ends_after_the_proposal_leaves_the_payment_in_doubt(
    tmp_path: Path,
) -> None:
    a, b = TwoWayChannel(TERMS, PAYER), TwoWayChannel(TERMS, PAYEE)
    async with (
        ChannelStore(tmp_path / "a.db") as a_store,
        ChannelStore(tmp_path / "b.db") as b_inner,
        trio.open_nursery() as nursery,
    ):
        store = _FragileStore(b_inner)
        port = await nursery.start(serve_two_way, {CHANNEL: b}, store)
        store.fail = True
        with pytest.raises(PaymentInDoubtError) as info:
            async with open_two_way(a, a_store, "127.0.0.1", port) as session:
                await session.pay(100)
        assert (info.value.sequence, info.value.signed) == (1, None)
        assert a.latest is b.latest is None
        nursery.cancel_scope.cancel()
