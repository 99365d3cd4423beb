"""Coin selection: hypothesis properties of `select_coins` and a few worked cases."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tangle.protocol.ids import Address, OutputId, TransactionId
from tangle.protocol.transaction import MAX_INPUTS
from wallet.coin_selection import Coin, Selection, select_coins
from wallet.errors import AmountError, InputLimitError, InsufficientFundsError

TX = TransactionId(bytes(32))
OWNER = Address(bytes(range(32)))


def coins_of(*amounts: int) -> list[Coin]:
    return [
        Coin(output_id=OutputId.of(TX, i), address=OWNER, amount=amount)
        for i, amount in enumerate(amounts)
    ]


amounts = st.integers(1, 10**9)
minimums = st.integers(1, 10**6)
wallets = st.lists(amounts, max_size=200).map(lambda a: coins_of(*a))


def shortest_valid_prefix(coins: list[Coin], amount: int, minimum: int) -> int | None:
    """Inputs in the shortest largest-first prefix that pays without dust change."""
    ordered = sorted((c.amount for c in coins), reverse=True)
    for count, total in enumerate(itertools.accumulate(ordered), start=1):
        if total == amount or total - amount >= minimum:
            return count
    return None


def check(selection: Selection, coins: list[Coin], amount: int, minimum: int) -> None:
    ids = [c.output_id for c in selection.inputs]
    assert len(set(ids)) == len(ids), "an input twice"
    assert set(selection.inputs) <= set(coins), "an input the wallet does not have"
    assert 1 <= len(selection.inputs) <= MAX_INPUTS
    assert selection.amount == amount
    assert selection.total == amount + selection.change, "amounts not conserved"
    assert selection.change == 0 or selection.change >= minimum, "dust change"


@settings(max_examples=400)
@given(coins=wallets, amount=amounts, minimum=minimums)
@example(coins=coins_of(100, 50), amount=120, minimum=40)  # 150 leaves dust 30: swap to exact?
@example(coins=coins_of(1000, 1000, 1000), amount=1500, minimum=100)
@example(coins=coins_of(5, 5, 5), amount=10, minimum=100)  # exact match in two
@example(coins=coins_of(100, 50, 20), amount=120, minimum=1000)  # exact only by the swap
def test_a_selection_pays_exactly_without_dust_or_fails_for_a_reason(
    coins: list[Coin], amount: int, minimum: int
) -> None:
    assume(amount >= minimum)
    best = shortest_valid_prefix(coins, amount, minimum)
    failure: InsufficientFundsError | None = None
    try:
        selection = select_coins(coins, amount, min_output=minimum)
    except InsufficientFundsError as exc:
        failure = exc
    if failure is not None:
        # whenever the largest-first prefix pays without dust, selection must succeed
        assert best is None or best > MAX_INPUTS
        assert failure.needed == amount
        assert failure.available == sum(c.amount for c in coins)
        return
    if best is None:  # only an exact completion found by the swap pays
        check(selection, coins, amount, minimum)
        assert selection.change == 0
        return
    check(selection, coins, amount, minimum)
    assert len(selection.inputs) <= best, "more inputs than the plain greedy choice"
    fewest = next(
        k
        for k, total in enumerate(
            itertools.accumulate(sorted((c.amount for c in coins), reverse=True)), start=1
        )
        if total >= amount
    )
    assert len(selection.inputs) >= fewest


@given(coins=wallets, amount=amounts, minimum=minimums)
def test_one_output_is_used_when_one_will_do(coins: list[Coin], amount: int, minimum: int) -> None:
    assume(amount >= minimum)
    assume(any(c.amount == amount or c.amount - amount >= minimum for c in coins))
    selection = select_coins(coins, amount, min_output=minimum)
    assert len(selection.inputs) == 1
    (coin,) = selection.inputs
    if any(c.amount == amount for c in coins):
        assert selection.change == 0, "an exact match is preferred"
    else:
        candidates = [c.amount for c in coins if c.amount - amount >= minimum]
        assert coin.amount == min(candidates), "the smallest output that leaves valid change"


@given(count=st.integers(MAX_INPUTS + 1, 300), minimum=st.integers(1, 10))
def test_the_input_limit_holds_and_fragmentation_is_named(count: int, minimum: int) -> None:
    coins = coins_of(*[100] * count)
    amount = 100 * count
    with pytest.raises(InsufficientFundsError) as caught:
        select_coins(coins, amount, min_output=minimum)
    assert caught.value.fragmented
    assert "128 inputs" in str(caught.value)
    selection = select_coins(coins, 100 * MAX_INPUTS, min_output=minimum)
    assert len(selection.inputs) == MAX_INPUTS
    assert selection.change == 0


@given(coins=wallets, amount=amounts, minimum=minimums, limit=st.integers(1, MAX_INPUTS))
def test_a_smaller_input_limit_is_respected(
    coins: list[Coin], amount: int, minimum: int, limit: int
) -> None:
    assume(amount >= minimum)
    try:
        selection = select_coins(coins, amount, min_output=minimum, max_inputs=limit)
    except InsufficientFundsError:
        return
    assert len(selection.inputs) <= limit
    check(selection, coins, amount, minimum)


@given(coins=wallets, minimum=minimums, data=st.data())
def test_selection_is_deterministic_and_order_free(
    coins: list[Coin], minimum: int, data: st.DataObject
) -> None:
    total = sum(c.amount for c in coins)
    assume(total >= minimum)
    amount = data.draw(st.integers(minimum, total))
    shuffled = data.draw(st.permutations(coins))
    try:
        first = select_coins(coins, amount, min_output=minimum)
    except InsufficientFundsError:
        with pytest.raises(InsufficientFundsError):
            select_coins(shuffled, amount, min_output=minimum)
        return
    assert select_coins(shuffled, amount, min_output=minimum) == first


def test_worked_cases() -> None:
    coins = coins_of(1000, 400, 300, 120)
    # exact single match
    assert [c.amount for c in select_coins(coins, 400, min_output=100).inputs] == [400]
    # the smallest single output leaving change >= 100
    chosen = select_coins(coins, 250, min_output=100)
    assert [c.amount for c in chosen.inputs] == [400]
    assert chosen.change == 150
    # 300 would leave 50 (dust) for 250: another output is taken instead, never 50 of dust
    chosen = select_coins(coins_of(300, 120, 110), 250, min_output=100)
    assert chosen.change in (0,) or chosen.change >= 100
    assert chosen.total == 250 + chosen.change
    # dust cannot be avoided: fail rather than overpay
    with pytest.raises(
        InsufficientFundsError, match=r"below the minimum output of 100 \(pay exactly 300, or"
    ):
        select_coins(coins_of(300), 250, min_output=100)
    with pytest.raises(InsufficientFundsError, match="cannot pay 2000: 1820 available"):
        select_coins(coins, 2000, min_output=100)
    # two largest with the second swapped for the exact completion
    chosen = select_coins(coins, 1120, min_output=100)
    assert sorted(c.amount for c in chosen.inputs) == [120, 1000]
    assert chosen.change == 0


@pytest.mark.parametrize(("amount", "minimum"), [(0, 1), (99, 100), (2**64, 1), (5, 0), (True, 1)])
def test_amounts_outside_the_rules_are_refused(amount: int, minimum: int) -> None:
    with pytest.raises(AmountError):
        select_coins(coins_of(10**9), amount, min_output=minimum)


@pytest.mark.parametrize("limit", [0, MAX_INPUTS + 1])
def test_an_input_limit_outside_the_protocol_is_a_wallet_error_not_a_value_error(
    limit: int,
) -> None:
    with pytest.raises(InputLimitError) as refused:
        select_coins(coins_of(1000), 500, min_output=1, max_inputs=limit)
    assert not isinstance(refused.value, ValueError)
    assert refused.value.max_inputs == limit
