"""The message window: attach, solidification, payload slots, milestones, tip scores, pruning."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tangle.errors import (
    BelowMaxDepthError,
    DuplicateMessageError,
    DuplicatePayloadError,
    InvalidFieldError,
    PendingLimitError,
    UnknownMessageError,
)
from tangle.protocol.ids import MessageId, WorkRoot, blake2b_256
from tangle.window._dag_pending import PendingLimits
from tangle.window.dag import GENESIS_ID, AttachResult, Dag
from tangle.window.tip_pool import Score, TipRules

if TYPE_CHECKING:
    import random


def mid(n: int) -> MessageId:
    return MessageId(blake2b_256(b"message", n.to_bytes(4, "little")))


def root(n: int) -> WorkRoot:
    return WorkRoot(blake2b_256(b"payload", n.to_bytes(4, "little")))


def attach(dag: Dag, n: int, *parents: MessageId, payload: int | None = None) -> AttachResult:
    return dag.attach(mid(n), sorted(set(parents)), root(n if payload is None else payload))


def cone_roots(dag: Dag, message_id: MessageId) -> tuple[int, int]:
    """OCRI and YCRI by walking the past cone down to referenced messages (as Hornet does)."""
    info = dag.tip_info(message_id)
    if info.referenced_by or info.entry_point:
        return info.referenced_by, info.referenced_by
    found: set[int] = set()
    stack, seen = [message_id], {message_id}
    while stack:
        for parent in dag.parents(stack.pop()):
            parent_info = dag.tip_info(parent)
            if parent_info.referenced_by or parent_info.entry_point:
                found.add(parent_info.referenced_by)
            elif parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return min(found), max(found)


def check_window(dag: Dag) -> None:
    """Rows are topological, approvers mirror parents, cone roots and tip pools are exact."""
    ids = [dag.message_id(row) for row in range(len(dag))]
    approvers: dict[MessageId, list[MessageId]] = {m: [] for m in ids}
    for row, message_id in enumerate(ids):
        for parent in dag.parents(message_id):
            assert dag.row(parent) < row
            approvers[parent].append(message_id)
    pools: dict[Score, set[MessageId]] = {score: set() for score in Score}
    for message_id in ids:
        info = dag.tip_info(message_id)
        assert dag.approvers(message_id) == tuple(sorted(approvers[message_id]))
        ocri, ycri = cone_roots(dag, message_id)
        assert (info.oldest_cone_root_index, info.youngest_cone_root_index) == (ocri, ycri)
        assert info.is_tip == (not approvers[message_id] and not info.entry_point)
        if info.is_tip:
            pools[dag.rules.score(dag.confirmed_milestone_index, ocri, ycri)].add(message_id)
    for score in Score:
        assert set(dag.tips(score)) == pools[score]


# -- attach and lookups ----------------------------------------------------------------------


def test_new_window_holds_only_the_genesis() -> None:
    dag = Dag()
    assert len(dag) == 1
    assert dag.entry_points() == {GENESIS_ID: 0}
    assert dag.confirmed_milestone_index == 0
    assert all(dag.tips(score) == () for score in Score)


def test_attach_links_parents_approvers_and_tips() -> None:
    dag = Dag()
    assert attach(dag, 1, GENESIS_ID).solid == (mid(1),)
    attach(dag, 2, GENESIS_ID)
    result = attach(dag, 3, mid(1), mid(2))
    assert result.solid == (mid(3),)
    assert result.missing == ()
    assert dag.parents(mid(3)) == tuple(sorted([mid(1), mid(2)]))
    assert dag.approvers(GENESIS_ID) == tuple(sorted([mid(1), mid(2)]))
    assert dag.tips(Score.NON_LAZY) == (mid(3),)
    info = dag.tip_info(mid(3))
    assert (info.oldest_cone_root_index, info.youngest_cone_root_index) == (0, 0)
    assert info.is_tip
    check_window(dag)


@pytest.mark.parametrize(
    "parents",
    [
        [],
        [mid(i) for i in range(9)],
        sorted([mid(1), mid(2)], reverse=True),
        [GENESIS_ID, GENESIS_ID],
        [mid(7)],
    ],
    ids=["none", "nine", "unsorted", "repeated", "itself"],
)
def test_attach_rejects_bad_parent_lists(parents: list[MessageId]) -> None:
    dag = Dag()
    with pytest.raises(InvalidFieldError):
        dag.attach(mid(7), parents, root(7))
    assert len(dag) == 1
    assert dag.pending_count() == 0


def test_same_message_twice_is_a_duplicate_solid_or_pending() -> None:
    dag = Dag()
    attach(dag, 1, GENESIS_ID)
    attach(dag, 2, mid(99))
    with pytest.raises(DuplicateMessageError):
        attach(dag, 1, GENESIS_ID, payload=101)
    with pytest.raises(DuplicateMessageError):
        attach(dag, 2, mid(99), payload=102)
    with pytest.raises(DuplicateMessageError):
        dag.attach(GENESIS_ID, [mid(1)], root(5))


def test_unknown_ids_raise() -> None:
    dag = Dag()
    attach(dag, 2, mid(1))
    for lookup in (dag.row, dag.parents, dag.approvers, dag.tip_info, dag.unreferenced_past_cone):
        with pytest.raises(UnknownMessageError):
            lookup(mid(1))
        with pytest.raises(UnknownMessageError):
            lookup(mid(2))  # pending messages are not in the window yet
    with pytest.raises(UnknownMessageError):
        dag.discard_pending(mid(1))
    with pytest.raises(UnknownMessageError):
        dag.mark_referenced([mid(2)], 1)


def test_window_grows_past_its_initial_capacity() -> None:
    dag = Dag()
    previous = GENESIS_ID
    for n in range(1, 2600):
        attach(dag, n, previous, GENESIS_ID)
        previous = mid(n)
    assert len(dag) == 2600
    assert dag.tips() == (mid(2599),)
    assert len(dag.approvers(GENESIS_ID)) == 2599
    assert dag.parents(mid(2599)) == tuple(sorted([GENESIS_ID, mid(2598)]))


# -- solidification --------------------------------------------------------------------------


def test_pending_messages_solidify_transitively_in_order() -> None:
    dag = Dag()
    result = attach(dag, 3, mid(2), GENESIS_ID)
    assert result.solid == ()
    assert result.missing == (mid(2),)
    assert attach(dag, 4, mid(3), mid(1)).missing == (mid(1),)
    assert dag.missing() == {mid(1), mid(2)}
    assert attach(dag, 2, mid(1)).missing == (mid(1),)
    assert dag.missing() == {mid(1)}
    assert dag.pending_count() == 3
    result = attach(dag, 1, GENESIS_ID)
    assert result.solid == (mid(1), mid(2), mid(3), mid(4))
    assert dag.missing() == frozenset()
    assert dag.pending_count() == 0
    check_window(dag)


def test_discard_pending_frees_its_slot_and_missing_parents() -> None:
    dag = Dag()
    attach(dag, 2, mid(1))
    attach(dag, 3, mid(2))
    dag.discard_pending(mid(2))
    assert dag.missing() == {mid(2)}  # still wanted by message 3
    assert not dag.is_pending(mid(2))
    assert attach(dag, 5, GENESIS_ID, payload=2).solid == (mid(5),)  # the slot is free again


# -- payload slots ---------------------------------------------------------------------------


def test_one_live_attachment_per_payload() -> None:
    dag = Dag()
    attach(dag, 1, GENESIS_ID, payload=7)
    with pytest.raises(DuplicatePayloadError):
        attach(dag, 2, GENESIS_ID, payload=7)
    with pytest.raises(DuplicatePayloadError):
        attach(dag, 3, mid(9), payload=7)  # nor can a copy wait for parents
    dag.mark_referenced([mid(1)], 1)
    for index in range(2, 40):  # a referenced attachment never frees its slot
        dag.mark_referenced([], index)
    with pytest.raises(DuplicatePayloadError):
        attach(dag, 5, GENESIS_ID, payload=7)


def test_reattachment_is_allowed_once_the_first_is_below_max_depth() -> None:
    dag = Dag(rules=TipRules(max_delta_ycri=1, max_delta_ocri=2, below_max_depth=3))
    attach(dag, 1, GENESIS_ID, payload=7)
    for index in range(1, 4):
        dag.mark_referenced([], index)
        with pytest.raises(DuplicatePayloadError):
            attach(dag, 10 + index, GENESIS_ID, payload=7)
    attach(dag, 20, GENESIS_ID)
    dag.mark_referenced([mid(20)], 4)  # CMI 4 - OCRI 0 > 3: message 1 cannot be confirmed
    assert attach(dag, 2, mid(20), payload=7).solid == (mid(2),)
    with pytest.raises(DuplicatePayloadError):
        attach(dag, 3, mid(20), payload=7)  # the slot moved to message 2


# -- hostile input: squatting, replays, pending floods ---------------------------------------


def test_payload_squatting_on_a_missing_parent_holds_no_slot() -> None:
    dag = Dag()
    attach(dag, 2, mid(99), payload=7)  # a copy of payload 7 on a parent that never comes
    assert attach(dag, 1, GENESIS_ID, payload=7).solid == (mid(1),)  # the real one is taken
    with pytest.raises(DuplicatePayloadError):
        attach(dag, 3, GENESIS_ID, payload=7)  # and it holds the slot now


def test_a_milestone_waiting_for_a_message_takes_it_whatever_holds_its_slot() -> None:
    dag = Dag()
    attach(dag, 2, GENESIS_ID, payload=7)  # a squatter's solid copy holds the slot
    attach(dag, 10, mid(1))  # a milestone that references the real attachment waits for it
    with pytest.raises(DuplicatePayloadError):
        attach(dag, 1, GENESIS_ID, payload=7)
    dag.protect([mid(10)])  # once the node holds that milestone
    assert dag.is_protected(mid(1))
    assert attach(dag, 1, GENESIS_ID, payload=7).solid == (mid(1), mid(10))
    with pytest.raises(DuplicatePayloadError):
        attach(dag, 3, GENESIS_ID, payload=7)  # the slot stays with the first holder


def test_replayed_history_below_max_depth_is_refused() -> None:
    dag = Dag(rules=TipRules(max_delta_ycri=1, max_delta_ocri=2, below_max_depth=3))
    attach(dag, 1, GENESIS_ID)
    for index in range(1, 6):
        dag.mark_referenced([mid(1)] if index == 1 else [], index)
    with pytest.raises(BelowMaxDepthError):
        attach(dag, 2, mid(1))  # approves only history confirmed 4 milestones ago (M = 3)
    assert len(dag) == 2
    attach(dag, 3, mid(99))  # a milestone waits for it through message 3
    dag.protect([mid(3)])
    assert attach(dag, 99, mid(1)).solid == (mid(99), mid(3))


def test_pending_messages_are_bounded_per_source_and_in_total() -> None:
    dag = Dag(pending_limits=PendingLimits(max_total=5, max_per_source=3))
    for n in range(3):
        attach_from(dag, 10 + n, "flooder")
    with pytest.raises(PendingLimitError):
        attach_from(dag, 13, "flooder")
    attach_from(dag, 20, "honest")
    attach_from(dag, 21, None)
    with pytest.raises(PendingLimitError):
        attach_from(dag, 22, "honest")  # the total is reached
    assert dag.pending_count() == 5
    assert dag.pending_sources() == 3
    attach(dag, 30, GENESIS_ID)  # a solid message is never refused for room
    dag.attach(mid(90), [mid(91)], root(90), protected=True)  # nor a held milestone
    assert attach(dag, 91, mid(92)).missing == (mid(92),)  # nor what it waits for
    with pytest.raises(PendingLimitError):
        attach(dag, 93, mid(94))


def attach_from(dag: Dag, n: int, source: str | None) -> AttachResult:
    return dag.attach(mid(n), [mid(1000 + n)], root(n), source=source)


def test_pending_messages_expire_unless_a_held_milestone_waits_for_them() -> None:
    dag = Dag(pending_limits=PendingLimits(max_age=2))
    attach_from(dag, 10, "squatter")
    attach(dag, 20, mid(21))  # milestone 20 waits for 21, which waits for 22
    dag.protect([mid(20)])
    attach(dag, 21, mid(22))
    for index in range(1, 3):
        dag.mark_referenced([], index)
        assert dag.expire_pending() == ()
    dag.mark_referenced([], 3)
    assert dag.expire_pending() == (mid(10),)
    assert dag.pending_count() == 2
    assert dag.missing() == {mid(22)}
    assert attach(dag, 10, mid(1010)).missing == (mid(1010),)  # it may come again


def test_prune_drops_unreferenced_messages_that_can_never_be_confirmed() -> None:
    dag = Dag(rules=TipRules(max_delta_ycri=1, max_delta_ocri=2, below_max_depth=3))
    attach(dag, 1, GENESIS_ID)
    attach(dag, 2, GENESIS_ID)  # lazy once the CMI moves on
    attach(dag, 3, mid(2))
    attach(dag, 4, mid(3), mid(5))  # pending, approves the lazy 3
    dag.mark_referenced([mid(1)], 1)
    for index in range(2, 6):  # a chain of referenced messages 12..15
        attach(dag, 10 + index, mid(10 + index - 1) if index > 2 else mid(1))
        dag.mark_referenced([mid(10 + index)], index)
    result = dag.prune(2)
    assert set(result.dropped) == {mid(2), mid(3), mid(4)}
    assert mid(2) not in dag
    assert not dag.is_pending(mid(4))
    assert dag.missing() == frozenset()
    assert attach(dag, 6, mid(15), payload=2).solid == (mid(6),)  # its slot is free
    check_window(dag)


# -- milestones and tip scores ---------------------------------------------------------------


def test_milestone_updates_cone_roots_of_the_unreferenced_future() -> None:
    dag = Dag()
    attach(dag, 1, GENESIS_ID)
    attach(dag, 2, mid(1))
    attach(dag, 3, mid(2), GENESIS_ID)
    attach(dag, 4, GENESIS_ID)
    dag.mark_referenced(dag.unreferenced_past_cone(mid(1)), 1)
    assert dag.milestone_messages() == {1: mid(1)}
    assert dag.tip_info(mid(1)).referenced_by == 1
    info = dag.tip_info(mid(3))
    assert (info.oldest_cone_root_index, info.youngest_cone_root_index) == (0, 1)
    assert dag.tip_info(mid(4)).youngest_cone_root_index == 0
    dag.mark_referenced(dag.unreferenced_past_cone(mid(2)), 2)
    info = dag.tip_info(mid(3))
    assert (info.oldest_cone_root_index, info.youngest_cone_root_index) == (0, 2)
    check_window(dag)


def test_mark_referenced_rejects_bad_input_and_changes_nothing() -> None:
    dag = Dag()
    attach(dag, 1, GENESIS_ID)
    attach(dag, 2, mid(1))
    with pytest.raises(InvalidFieldError):
        dag.mark_referenced([mid(2)], 1)  # its parent 1 would stay unreferenced
    with pytest.raises(InvalidFieldError):
        dag.mark_referenced([GENESIS_ID], 1)  # an entry point
    with pytest.raises(InvalidFieldError):
        dag.mark_referenced([mid(1)], 0)  # not above the CMI
    assert dag.confirmed_milestone_index == 0
    assert dag.tip_info(mid(1)).referenced_by == 0
    dag.mark_referenced([mid(1), mid(2)], 1)
    with pytest.raises(InvalidFieldError):
        dag.mark_referenced([mid(2)], 2)  # already referenced
    check_window(dag)


def test_tip_scores_follow_the_hornet_thresholds() -> None:
    dag = Dag()  # C1 = 8, C2 = 13, M = 15
    attach(dag, 1, GENESIS_ID)
    dag.mark_referenced([mid(1)], 1)
    for index in range(2, 14):
        dag.mark_referenced([], index)
    attach(dag, 2, GENESIS_ID)
    dag.mark_referenced([mid(2)], 14)
    attach(dag, 3, mid(1), mid(2))  # OCRI 1, YCRI 14
    attach(dag, 4, mid(2))  # OCRI = YCRI = 14
    expected = {
        14: (Score.NON_LAZY, Score.NON_LAZY),
        15: (Score.SEMI_LAZY, Score.NON_LAZY),  # 15 - 1 > 13
        17: (Score.LAZY, Score.NON_LAZY),  # 17 - 1 > 15: below max depth
        22: (Score.LAZY, Score.NON_LAZY),
        23: (Score.LAZY, Score.LAZY),  # 23 - 14 > 8
    }
    for index in range(14, 24):
        if index > 14:
            dag.mark_referenced([], index)
        if index in expected:
            scores = tuple(dag.tip_info(mid(n)).score for n in (3, 4))
            assert scores == expected[index], index
            check_window(dag)


def test_tip_rules_validate() -> None:
    with pytest.raises(InvalidFieldError):
        TipRules(max_delta_ocri=20)
    with pytest.raises(InvalidFieldError):
        TipRules(max_delta_ycri=-1)


# -- pruning ---------------------------------------------------------------------------------


def test_prune_keeps_still_approved_messages_as_entry_points() -> None:
    dag = Dag()
    attach(dag, 1, GENESIS_ID)
    attach(dag, 2, mid(1))
    attach(dag, 3, mid(1))
    dag.mark_referenced([mid(1), mid(2)], 1)
    attach(dag, 4, mid(2), mid(3))
    attach(dag, 5, mid(99), mid(1))  # pending, approves 1
    dag.mark_referenced(dag.unreferenced_past_cone(mid(4)), 2)
    attach(dag, 6, mid(4))
    result = dag.prune(2)
    assert result.removed == 1  # the genesis: nothing approves it any more
    assert result.entry_points == (mid(1), mid(2))  # 1 for pending 5, 2 for 4
    assert dag.entry_points() == {mid(1): 1, mid(2): 1}
    assert [dag.message_id(row) for row in range(len(dag))] == [mid(n) for n in (1, 2, 3, 4, 6)]
    assert dag.parents(mid(2)) == ()
    assert dag.approvers(mid(1)) == (mid(3),)
    assert dag.milestone_messages() == {1: mid(2), 2: mid(4)}  # 2 stays, as an entry point
    assert attach(dag, 99, mid(2)).solid == (mid(99), mid(5))
    check_window(dag)
    with pytest.raises(InvalidFieldError):
        dag.prune(3)  # above the CMI


def test_prune_drops_payload_slots_of_removed_messages() -> None:
    dag = Dag()
    attach(dag, 1, GENESIS_ID, payload=7)
    dag.mark_referenced([mid(1)], 1)
    attach(dag, 2, GENESIS_ID)
    dag.mark_referenced([mid(2)], 2)
    result = dag.prune(2)
    assert result.removed == 1  # 1 goes; 2 still approves the genesis
    assert result.entry_points == (GENESIS_ID,)
    assert attach(dag, 3, mid(2), payload=7).solid == (mid(3),)
    check_window(dag)


# -- the same tangle in any arrival order ----------------------------------------------------


@st.composite
def tangles(draw: st.DrawFn) -> list[tuple[int, ...]]:
    """Parents (as message numbers, 0 = genesis) of messages 1..n."""
    n = draw(st.integers(1, 40))
    shape = []
    for i in range(1, n + 1):
        parents = draw(st.sets(st.integers(max(0, i - 6), i - 1), min_size=1, max_size=4))
        shape.append(tuple(parents))
    return shape


def number_id(n: int) -> MessageId:
    return GENESIS_ID if n == 0 else mid(n)


@given(shape=tangles(), order=st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_arrival_order_does_not_change_the_window(
    shape: list[tuple[int, ...]], order: random.Random
) -> None:
    messages = list(enumerate(shape, start=1))
    shuffled = messages.copy()
    order.shuffle(shuffled)
    views = []
    for sequence in (messages, shuffled):
        dag = Dag()
        solid: list[MessageId] = []
        for n, parents in sequence:
            solid += dag.attach(mid(n), sorted(number_id(p) for p in parents), root(n)).solid
        assert sorted(solid) == sorted(mid(n) for n, _ in messages)
        assert dag.missing() == frozenset()
        check_window(dag)
        views.append({m: dag.tip_info(m) for m in solid})
    assert views[0] == views[1]


class WindowMachine(RuleBasedStateMachine):
    """Messages of a fixed random tangle arrive in any order, interleaved with milestones and
    pruning; the window must always match a brute-force recomputation."""

    def __init__(self) -> None:
        super().__init__()
        self.dag = Dag(rules=TipRules(max_delta_ycri=2, max_delta_ocri=3, below_max_depth=4))
        self.shape: list[tuple[int, ...]] = []
        self.unsent: list[int] = []
        self.milestone = 0

    @initialize(shape=tangles())
    def start(self, shape: list[tuple[int, ...]]) -> None:
        self.shape = shape
        self.unsent = list(range(1, len(shape) + 1))

    @precondition(lambda self: self.unsent)
    @rule(data=st.data())
    def arrive(self, data: st.DataObject) -> None:
        n = data.draw(st.sampled_from(self.unsent))
        self.unsent.remove(n)
        parents = sorted(number_id(p) for p in self.shape[n - 1])
        unknown = {p for p in parents if p not in self.dag and not self.dag.is_pending(p)}
        try:
            result = self.dag.attach(mid(n), parents, root(n))
        except BelowMaxDepthError:  # refused only if it could attach solid, below max depth
            assert not unknown
            ocri = min(self.dag.tip_info(p).oldest_cone_root_index for p in parents)
            assert self.dag.confirmed_milestone_index - ocri > self.dag.rules.below_max_depth
            return
        assert set(result.missing) == unknown
        assert unknown <= self.dag.missing()
        assert mid(n) not in self.dag.missing()

    @rule(data=st.data())
    def milestone_on_a_tip(self, data: st.DataObject) -> None:
        tips = [self.dag.message_id(r) for r in range(len(self.dag))]
        tips = [m for m in tips if self.dag.tip_info(m).is_tip]
        self.milestone += 1
        cone: tuple[MessageId, ...] = ()
        on_a_tip = data.draw(st.booleans())
        if tips and on_a_tip:
            cone = self.dag.unreferenced_past_cone(data.draw(st.sampled_from(tips)))
        self.dag.mark_referenced(cone, self.milestone)

    @precondition(lambda self: self.milestone > 0)
    @rule(data=st.data())
    def prune(self, data: st.DataObject) -> None:
        before = {self.dag.message_id(r) for r in range(len(self.dag))}
        below = data.draw(st.integers(0, self.milestone))
        self.dag.prune(below)
        after = {self.dag.message_id(r) for r in range(len(self.dag))}
        assert after <= before

    @invariant()
    def window_is_exact(self) -> None:
        check_window(self.dag)


TestWindowMachine = WindowMachine.TestCase
TestWindowMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
