"""A prepayment raced by the operator's unbinding or rebinding of its token
(`ChargePayments.prepay`, `refund_rows.credit_or_owe`).

`prepay` checks that the token is bound to the proof's channel, then the cashier takes the proof
and its credit in one commit. The operator may unbind the token (and bind it to another
channel) in between: the money the driver paid must then be owed back to the channel's payer,
in the payment's own commit, not kept uncounted. Before the fix the credit statement added the
amount only to a token still bound to the channel (a token rebound elsewhere: the proof was
taken, nothing counted, nothing owed) and bound an unbound token anew (undoing the operator's
unbinding). The race is made deterministic: the cashier the payment runs through does the
operator's step right before it takes the proof."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import pytest

from payments.channels.state import Role
from payments.channels.store import row_record
from payments.charging.channel_rows import CsmsChannels
from payments.charging.errors import PrepaymentOwedBackError, SessionError
from tangle.protocol.transaction import address_of

from .test_payment import DRIVER, World, run
from .test_refund import Sent, refunder

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path


def during_the_commit(world: World, step: Callable[[], Awaitable[object]]) -> None:
    """Run `step` (the operator's, the driver's) once, when the next write reaches the store's
    group commit: after the channel service checked the payment and queued its save."""
    store = world.csms.store
    write = store.write

    async def saving(statements: Any) -> None:
        store.write = write  # type: ignore[method-assign]
        await step()
        await write(statements)

    store.write = saving  # type: ignore[method-assign]


def _conserved(path: Path) -> tuple[int, int, int]:
    """(payee balances of the durable proofs, prepaid credit of the tokens, owed token
    refunds), as another connection reads them."""
    reader = sqlite3.connect(path)
    try:
        rows = reader.execute(
            "SELECT channel_id, role, terms, state, sequence, proof FROM channels WHERE role = ?",
            (int(Role.PAYEE),),
        ).fetchall()
        prepaid = reader.execute("SELECT coalesce(sum(prepaid), 0) FROM tokens").fetchone()[0]
        owed = reader.execute(
            "SELECT coalesce(sum(amount), 0) FROM token_refunds WHERE state = 'owed'"
        ).fetchone()[0]
    finally:
        reader.close()
    balances = [row_record(tuple(r)).latest for r in rows]
    return sum(p.proof.payee_balance for p in balances if p is not None), prepaid, owed


@pytest.mark.parametrize("in_commit", [False, True], ids=["before-the-check", "in-the-commit"])
@pytest.mark.parametrize("rebind", [False, True], ids=["unbound", "rebound"])
def test_a_prepayment_raced_by_the_operator_is_owed_back_in_its_own_commit(
    tmp_path: Path, rebind: bool, in_commit: bool
) -> None:
    """The operator's step lands before the cashier checks the proof, or after the channel
    service checked it and handed its save to the group commit (the commit then takes the
    operator's transaction first)."""
    sent: list[Sent] = []

    async def body(world: World) -> None:
        first = await world.driver(("CP201", "T1"))
        other = await world.driver(("CP201", "T2"), deposit=90_000)
        await world.bind(first, "CARD-R")
        cashier = world.payments.cashier

        store = world.csms.store

        async def operator() -> None:
            assert await world.payments.unbind("CARD-R") == 0
            if rebind:
                await world.bind(other, "CARD-R")

        class OperatorMeanwhile:  # the real cashier; the operator acts before it takes the proof
            def __getattr__(self, name: str) -> Any:
                return getattr(cashier, name)

            async def accept(self, *args: Any, **kwargs: Any) -> Any:
                await operator()
                return await cashier.accept(*args, **kwargs)

        if in_commit:  # the payment's save, queued for its commit
            during_the_commit(world, operator)
        else:
            world.payments.cashier = OperatorMeanwhile()  # type: ignore[assignment]
        with pytest.raises(PrepaymentOwedBackError) as raised:  # not "nothing taken"
            await world.payments.prepay("CARD-R", first.channel.pay(450))
        world.payments.cashier = cashier
        channel_id = first.channel.terms.channel_id
        kept = await CsmsChannels(store).load(channel_id, Role.PAYEE)
        assert kept is not None
        assert kept.latest is not None
        assert kept.latest.proof.payee_balance == 450  # taken...
        rebound = (other.channel.terms.channel_id, 0) if rebind else None
        assert await store.token("CARD-R") == rebound  # ...not credited, the operator's wish kept
        [(_, owed_channel, token, amount)] = await store.refunds.owed_token_refunds()
        assert (owed_channel, token, amount) == (channel_id, "CARD-R", 450)  # ...but owed back
        assert _conserved(tmp_path / "csms.sqlite") == (450, 0, 450)
        assert not isinstance(raised.value, SessionError)  # whose rule: nothing was applied
        assert raised.value.amount == 450
        refunds = refunder(world, sent)
        assert await refunds.retry() == 1
        assert [(to, amount) for to, amount, _ in sent] == [(address_of(DRIVER.public_key), 450)]

    run(tmp_path, body)


def test_a_prepayment_not_raced_is_credited_to_its_token(tmp_path: Path) -> None:
    """The same path with no operator step: the whole amount is the token's credit, nothing
    is owed back (the credit and the refund statements never both apply)."""

    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, "CARD-N")
        receipt = await world.payments.prepay("CARD-N", wallet.channel.pay(450))
        assert receipt.cumulative_amount == 450
        assert await world.csms.store.token("CARD-N") == (wallet.channel.terms.channel_id, 450)
        assert await world.csms.store.refunds.owed_token_refunds(0) == []
        assert _conserved(tmp_path / "csms.sqlite") == (450, 450, 0)

    run(tmp_path, body)


def test_a_prepayment_owed_back_stays_so_when_its_token_is_bound_again_before_the_answer(
    tmp_path: Path,
) -> None:
    """The operator unbinds the token before the payment's commit (the commit owes the 450
    back), and the driver binds it to the same channel again before `prepay` answers: the
    answer is still "owed back", from what the commit did (before, `prepay` read the token
    again after the commit and answered a receipt for a credit the token never got)."""

    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, "CARD-R")
        store = world.csms.store
        write = store.write

        async def saving(statements: Any) -> None:
            store.write = write  # type: ignore[method-assign]
            await world.payments.unbind("CARD-R")
            await write(statements)
            await world.bind(wallet, "CARD-R")  # the driver binds its card again

        store.write = saving  # type: ignore[method-assign]
        with pytest.raises(PrepaymentOwedBackError) as raised:
            await world.payments.prepay("CARD-R", wallet.channel.pay(450))
        assert raised.value.amount == 450
        channel_id = wallet.channel.terms.channel_id
        assert await store.token("CARD-R") == (channel_id, 0)
        assert _conserved(tmp_path / "csms.sqlite") == (450, 0, 450)

    run(tmp_path, body)
