"""A realistic arrival process that grows a window, for benchmarks and tests.

Messages are issued as a Poisson process of rate `rate`. The network delay `delay` is modelled
as one node's view: a message issued at t reaches the window at t + delay, so an issuer at t
picks its 2-8 parents by URTS among the tips as they were `delay` earlier. Every
`milestone_interval` the coordinator (on the same view) issues a milestone message on URTS
tips, attaches it at once and references its unreferenced past cone with the next index, so the
window has cone root indexes and milestone entry points. Nothing is pruned.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from tangle.errors import NoTipsError
from tangle.protocol.ids import MessageId, WorkRoot
from tangle.window.dag import GENESIS_ID, Dag
from tangle.window.tip_selection import UniformRandomTips


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrivalProcess:
    """Parameters of the arrival process."""

    rate: float = 100.0
    """lambda: messages issued per second."""
    delay: float = 0.5
    """h: seconds between issuing a message and its arrival in the window."""
    milestone_interval: float = 10.0
    """Seconds between milestones (Chrysalis mainnet: 10)."""
    min_parents: int = 2
    """Fewest parents a message asks URTS for."""
    max_parents: int = 8
    """Most parents a message asks URTS for (drawn uniformly in between)."""
    milestone_parents: int = 8
    """Parents the coordinator asks URTS for."""


def grow_window(size: int, *, process: ArrivalProcess, seed: int) -> Dag:
    """A window of exactly `size` rows (genesis and milestone messages included)."""
    rng = np.random.default_rng(seed)
    dag = Dag()
    urts = UniformRandomTips()
    in_flight: deque[tuple[float, MessageId, tuple[MessageId, ...]]] = deque()
    issued = 1
    milestone_index = 0
    next_milestone = process.milestone_interval
    now = 0.0

    def new_id() -> MessageId:
        return MessageId(rng.bytes(32))

    def parents_for(count: int) -> tuple[MessageId, ...]:
        try:
            return urts.select(dag, rng, count)
        except NoTipsError:
            milestones = dag.milestone_messages()
            return (milestones[max(milestones)],) if milestones else (GENESIS_ID,)

    def deliver(until: float) -> None:
        while in_flight and in_flight[0][0] <= until:
            _, message_id, parents = in_flight.popleft()
            dag.attach(message_id, parents, WorkRoot(rng.bytes(32)))

    while issued < size:
        now += rng.exponential(1.0 / process.rate)
        while next_milestone <= now and issued < size:
            deliver(next_milestone)
            milestone = new_id()
            dag.attach(milestone, parents_for(process.milestone_parents), WorkRoot(rng.bytes(32)))
            milestone_index += 1
            dag.mark_referenced(dag.unreferenced_past_cone(milestone), milestone_index)
            issued += 1
            next_milestone += process.milestone_interval
        if issued >= size:
            break
        deliver(now)
        count = int(rng.integers(process.min_parents, process.max_parents + 1))
        in_flight.append((now + process.delay, new_id(), parents_for(count)))
        issued += 1
    deliver(float("inf"))
    return dag
