"""Tip selection: URTS, and the weighted walk whose Numba kernels must agree exactly with the
plain-Python references and with brute force."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks._arrival import ArrivalProcess, grow_window
from tangle.errors import InvalidFieldError, NoTipsError
from tangle.protocol.ids import MessageId, WorkRoot, blake2b_256
from tangle.window import _tip_kernels as kernels
from tangle.window.dag import GENESIS_ID, Dag
from tangle.window.tip_pool import Score
from tangle.window.tip_selection import (
    ConeGraph,
    UniformRandomTips,
    WeightedWalk,
    cone_graph,
    cone_graph_reference,
    cumulative_weights,
    cumulative_weights_reference,
    default_entry,
    walk_to_tip,
    walk_to_tip_reference,
)

if TYPE_CHECKING:
    from collections.abc import Callable

ALPHAS = [0.0, 0.001, 0.1, 1.0, 50.0]


def mid(n: int) -> MessageId:
    return GENESIS_ID if n == 0 else MessageId(blake2b_256(b"tip", n.to_bytes(4, "little")))


def build(shape: list[tuple[int, ...]]) -> Dag:
    """A window from parents lists (message numbers, 0 = genesis) of messages 1..n."""
    dag = Dag()
    for n, parents in enumerate(shape, start=1):
        dag.attach(mid(n), sorted(mid(p) for p in parents), WorkRoot(mid(n)))
    return dag


def brute_force_weights(cone: ConeGraph) -> list[int]:
    """1 + future cone size, by set union in reverse order (an independent oracle)."""
    ptr, idx = cone.approver_ptr.tolist(), cone.approver_idx.tolist()
    m = len(ptr) - 1
    descendants = [0] * m
    for v in reversed(range(m)):
        cone_bits = 1 << v
        for y in idx[ptr[v] : ptr[v + 1]]:
            cone_bits |= descendants[y]
        descendants[v] = cone_bits
    return [bits.bit_count() for bits in descendants]


def assert_cones_equal(a: ConeGraph, b: ConeGraph) -> None:
    for field in ("rows", "parent_ptr", "parent_idx", "approver_ptr", "approver_idx"):
        assert getattr(a, field).tolist() == getattr(b, field).tolist(), field


def all_weights(cone: ConeGraph) -> list[list[int]]:
    """Weights by every implementation: serial, parallel (2 and 3 workers), reference."""
    args = (cone.parent_ptr, cone.parent_idx, cone.approver_ptr, cone.approver_idx)
    return [
        cumulative_weights(cone).tolist(),
        kernels.cumulative_weights(*args).tolist(),
        kernels.cumulative_weights_parallel(*args, 2).tolist(),
        kernels.cumulative_weights_parallel(*args, 3).tolist(),
        cumulative_weights_reference(cone),
    ]


@pytest.fixture(scope="module")
def window() -> Dag:
    """A grown window with milestones, plus stragglers whose parents are all far back (they
    exercise the crossing lists, long-span ones included)."""
    dag = grow_window(3000, process=ArrivalProcess(rate=50.0, delay=1.0), seed=3)
    early = [dag.message_id(row) for row in (1, 5, 40, 300)]
    for n, parents in enumerate([early[:1], early[1:3], early[2:], [GENESIS_ID]], start=1):
        dag.attach(
            MessageId(blake2b_256(b"straggler", bytes([n]))), sorted(parents), WorkRoot(mid(n))
        )
    return dag


@st.composite
def shapes(draw: st.DrawFn, max_size: int = 200) -> list[tuple[int, ...]]:
    """Random tangles: mostly recent parents, sometimes far ones, and some lazy messages whose
    parents are all more than a 64-message block back."""
    n = draw(st.integers(1, max_size))
    reach = draw(st.integers(1, 40))
    shape = []
    for i in range(1, n + 1):
        near = st.integers(max(0, i - reach), i - 1)
        parent = st.one_of(near, near, near, st.integers(0, i - 1))
        if i > 70 and draw(st.integers(0, 9)) == 0:
            parent = st.integers(0, i - 66)
        shape.append(tuple(sorted(draw(st.sets(parent, min_size=1, max_size=8)))))
    return shape


# -- cumulative weights ----------------------------------------------------------------------


@given(shape=shapes(), data=st.data())
@settings(max_examples=60, deadline=None)
def test_weights_agree_across_implementations_and_brute_force(
    shape: list[tuple[int, ...]], data: st.DataObject
) -> None:
    dag = build(shape)
    entry = mid(data.draw(st.integers(0, len(shape))))
    cone = cone_graph(dag, entry)
    assert_cones_equal(cone, cone_graph_reference(dag, entry))
    expected = brute_force_weights(cone)
    for weights in all_weights(cone):
        assert weights == expected


def test_weights_on_a_grown_window_with_stragglers(window: Dag) -> None:
    for entry in (GENESIS_ID, window.milestone_messages()[5], default_entry(window, 3)):
        cone = cone_graph(window, entry)
        assert_cones_equal(cone, cone_graph_reference(window, entry))
        expected = brute_force_weights(cone)
        assert expected[0] == cone.rows.size  # everything in the cone descends from the entry
        for weights in all_weights(cone):
            assert weights == expected


def test_long_span_stragglers_are_in_the_weighed_cone(window: Dag) -> None:
    cone = cone_graph(window, GENESIS_ID)
    _, _, long_nodes, _ = kernels.crossing_lists(cone.parent_ptr, cone.parent_idx)
    assert long_nodes.size >= 3


def test_weights_of_a_single_message_cone() -> None:
    cone = cone_graph(Dag(), GENESIS_ID)
    for weights in all_weights(cone):
        assert weights == [1]


# -- the walk --------------------------------------------------------------------------------


@given(shape=shapes(max_size=120), alpha=st.sampled_from(ALPHAS), seed=st.integers(0, 2**32))
@settings(max_examples=80, deadline=None)
def test_walk_agrees_with_reference_and_ends_on_a_tip(
    shape: list[tuple[int, ...]], alpha: float, seed: int
) -> None:
    dag = build(shape)
    cone = cone_graph(dag, GENESIS_ID)
    weights = cumulative_weights(cone)
    fast, slow = np.random.default_rng(seed), np.random.default_rng(seed)
    for _ in range(3):
        end = walk_to_tip(cone, weights, alpha, fast)
        assert end == walk_to_tip_reference(cone, weights.tolist(), alpha, slow)
        assert cone.approver_ptr[end] == cone.approver_ptr[end + 1]
        assert dag.tip_info(dag.message_id(int(cone.rows[end]))).is_tip
    assert fast.random() == slow.random()  # both drew the same uniforms


def test_long_walks_span_several_uniform_chunks() -> None:
    dag = build([(n - 1,) for n in range(1, 301)])  # a chain: 300 moves
    cone = cone_graph(dag, GENESIS_ID)
    weights = cumulative_weights(cone)
    fast, slow = np.random.default_rng(1), np.random.default_rng(1)
    assert walk_to_tip(cone, weights, 0.5, fast) == 300
    assert walk_to_tip_reference(cone, weights.tolist(), 0.5, slow) == 300
    assert fast.random() == slow.random()


def test_alpha_weighs_the_choice() -> None:
    # The genesis has two approvers: 1 (a chain of 20 grows on it) and 2 (a lone tip).
    dag = build([(0,), (0,), (1,), *[(n,) for n in range(3, 22)]])
    cone = cone_graph(dag, GENESIS_ID)
    weights = cumulative_weights(cone)
    lone = int(np.flatnonzero(cone.rows == dag.row(mid(2)))[0])

    def lone_share(alpha: float) -> float:
        rng = np.random.default_rng(5)
        return sum(walk_to_tip(cone, weights, alpha, rng) == lone for _ in range(2000)) / 2000

    assert 0.45 < lone_share(0.0) < 0.55  # unweighted: 1/2 at the genesis
    assert 0.05 < lone_share(0.1) < 0.15  # e^(-0.1 * 20) / (1 + e^(-0.1 * 20)) = 0.119
    assert lone_share(50.0) == 0.0


# -- strategies ------------------------------------------------------------------------------


def test_weighted_walk_selects_the_same_tips_in_numba_and_python(window: Dag) -> None:
    for alpha in ALPHAS:
        fast = WeightedWalk(alpha=alpha)
        slow = WeightedWalk(alpha=alpha, implementation="python")
        for seed in range(3):
            tips = fast.select(window, np.random.default_rng(seed), 4)
            assert tips == slow.select(window, np.random.default_rng(seed), 4)
            assert tips == tuple(sorted(set(tips)))
            assert 1 <= len(tips) <= 4
            assert all(window.tip_info(t).is_tip for t in tips)


def test_default_entry_is_the_milestone_depth_below_the_cmi(window: Dag) -> None:
    cmi = window.confirmed_milestone_index
    assert cmi >= 5
    assert default_entry(window, 3) == window.milestone_messages()[cmi - 3]
    assert default_entry(window, 0) == window.milestone_messages()[cmi]
    assert default_entry(window, cmi + 10) == GENESIS_ID


def test_weighted_walk_on_an_empty_window_approves_the_genesis() -> None:
    assert WeightedWalk().select(Dag(), np.random.default_rng(0), 2) == (GENESIS_ID,)


@pytest.mark.parametrize(
    "make",
    [
        lambda: WeightedWalk(alpha=-1.0),
        lambda: WeightedWalk(alpha=float("nan")),
        lambda: WeightedWalk(depth=-1),
        lambda: WeightedWalk(implementation="cuda"),  # type: ignore[arg-type]
    ],
    ids=["negative-alpha", "nan-alpha", "negative-depth", "unknown-implementation"],
)
def test_weighted_walk_rejects_bad_parameters(make: Callable[[], WeightedWalk]) -> None:
    with pytest.raises(InvalidFieldError):
        make()


@pytest.mark.parametrize("count", [0, 9])
def test_selectors_reject_bad_counts(window: Dag, count: int) -> None:
    for selector in (UniformRandomTips(), WeightedWalk()):
        with pytest.raises(InvalidFieldError):
            selector.select(window, np.random.default_rng(0), count)


def test_urts_picks_distinct_sorted_non_lazy_tips(window: Dag) -> None:
    pool = set(window.tips(Score.NON_LAZY))
    assert len(pool) > 8
    rng = np.random.default_rng(0)
    for count in range(1, 9):
        tips = UniformRandomTips().select(window, rng, count)
        assert tips == tuple(sorted(set(tips)))
        assert len(tips) == count
        assert set(tips) <= pool
    again = UniformRandomTips().select(window, np.random.default_rng(9), 3)
    assert again == UniformRandomTips().select(window, np.random.default_rng(9), 3)


def test_urts_is_uniform_over_the_pool() -> None:
    dag = build([(0,)] * 5)  # five tips on the genesis
    rng = np.random.default_rng(2)
    counts: dict[MessageId, int] = {}
    for _ in range(5000):
        (tip,) = UniformRandomTips().select(dag, rng, 1)
        counts[tip] = counts.get(tip, 0) + 1
    assert len(counts) == 5
    assert all(900 < c < 1100 for c in counts.values())


def test_urts_returns_the_whole_pool_when_it_is_small() -> None:
    dag = build([(0,), (0,), (0,)])
    assert UniformRandomTips().select(dag, np.random.default_rng(0), 8) == dag.tips()


def test_urts_falls_back_to_semi_lazy_tips_then_gives_up() -> None:
    dag = build([(0,), (1,)])
    dag.mark_referenced([mid(1)], 1)
    for index in range(2, 16):
        dag.mark_referenced([], index)
    dag.attach(mid(3), [mid(1)], WorkRoot(mid(3)))
    dag.attach(mid(4), [GENESIS_ID], WorkRoot(mid(4)))
    dag.attach(mid(6), [GENESIS_ID], WorkRoot(mid(6)))
    dag.mark_referenced([mid(6)], 16)
    dag.attach(mid(7), sorted([mid(1), mid(6)]), WorkRoot(mid(7)))
    # CMI 16. 4: OCRI 0, below max depth; 2 and 3: YCRI 1, lazy; 7: OCRI 1, YCRI 16, semi-lazy
    assert dag.tips(Score.NON_LAZY) == ()
    assert dag.tips(Score.SEMI_LAZY) == (mid(7),)
    rng = np.random.default_rng(0)
    assert UniformRandomTips().select(dag, rng, 2) == (mid(7),)
    with pytest.raises(NoTipsError):
        UniformRandomTips(semi_lazy_fallback=False).select(dag, rng, 2)
    with pytest.raises(NoTipsError):
        UniformRandomTips().select(Dag(), rng, 2)
