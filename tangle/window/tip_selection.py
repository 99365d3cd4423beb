"""Tip selection: which window messages a new message approves.

Two strategies share the `TipSelector` interface; randomness always comes from the caller's
`numpy.random.Generator`.

- `UniformRandomTips` (URTS, TIP-3 / Hornet): uniform over the non-lazy tip pool that `Dag`
  keeps; if that pool is empty, over the semi-lazy pool (a documented fallback, off with
  `semi_lazy_fallback=False`); `NoTipsError` if both are empty. The default.
- `WeightedWalk`: the tangle whitepaper's MCMC. Every walk starts at an entry message (by
  default, as IRI did, the message of the confirmed milestone `depth` below the CMI) and moves
  from x to an approver y with probability proportional to exp(-alpha * (H_x - H_y)), where
  H_x = 1 + the size of x's future cone in the window, until it reaches a message without
  approvers. H is exact: for y in the entry's future cone, y's future cone lies inside it, so
  H is computed once per call on that cone alone and shared by all walks of the call.

The walk has two implementations chosen explicitly: Numba kernels (`_tip_kernels.py`, the
default) and plain-Python references here (`*_reference`) doing the same operations in the same
order, so both return the same tips for the same seed (the differential tests check this).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import numba
import numpy as np
from numpy.typing import NDArray

from tangle.errors import InvalidFieldError, NoTipsError
from tangle.protocol.ids import MessageId, WorkRoot

from . import _tip_kernels as kernels
from .dag import GENESIS_ID, Dag
from .tip_pool import Score

MAX_TIPS: Final = 8
WALK_CHUNK: Final = 64
"""Uniforms drawn per kernel call; a walk that needs more draws another chunk."""
DEFAULT_ALPHA: Final = 0.001
"""IRI's mainnet default."""
DEFAULT_DEPTH: Final = 3
"""Milestones below the CMI where walks start, IRI's usual `depth`."""

PARALLEL_MIN_NODES: Final = 16_384
"""Smaller cones are weighed on one thread (a parallel launch costs more than it saves)."""

Implementation = Literal["numba", "python"]
WalkStep = Callable[[int, NDArray[np.float64]], tuple[int, bool]]


class TipSelector(Protocol):
    """Picks up to `count` (1..8) distinct tips, sorted; raises `NoTipsError` if it finds none."""

    def select(self, dag: Dag, rng: np.random.Generator, count: int) -> tuple[MessageId, ...]: ...


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_TIPS:
        raise InvalidFieldError("count", f"{count} not in 1..{MAX_TIPS}")


@dataclass(frozen=True, slots=True, kw_only=True)
class UniformRandomTips:
    """URTS: uniform random tips from the non-lazy pool."""

    semi_lazy_fallback: bool = True
    """Use the semi-lazy pool when there is no non-lazy tip."""

    def select(self, dag: Dag, rng: np.random.Generator, count: int) -> tuple[MessageId, ...]:
        _check_count(count)
        pool = dag.tip_rows(Score.NON_LAZY)
        if not pool and self.semi_lazy_fallback:
            pool = dag.tip_rows(Score.SEMI_LAZY)
        n = len(pool)
        if n == 0:
            raise NoTipsError("no non-lazy tips")
        if n <= count:
            return tuple(sorted(dag.message_id(row) for row in pool))
        chosen = set(rng.integers(0, n, size=count).tolist())
        while len(chosen) < count:
            chosen.add(int(rng.integers(0, n)))
        return tuple(sorted(dag.message_id(pool[i]) for i in chosen))


@dataclass(frozen=True, slots=True, kw_only=True)
class ConeGraph:
    """An entry message's future cone (with it) renumbered 0..m-1 in row order."""

    rows: NDArray[np.int64]
    """Window row of each local node; node 0 is the entry."""
    parent_ptr: NDArray[np.int64]
    """CSR offsets into `parent_idx` (parents outside the cone are left out)."""
    parent_idx: NDArray[np.int64]
    """Local parents."""
    approver_ptr: NDArray[np.int64]
    """CSR offsets into `approver_idx`."""
    approver_idx: NDArray[np.int64]
    """Local approvers, ascending per node."""


def default_entry(dag: Dag, depth: int) -> MessageId:
    """Where walks start: the message of the newest milestone at most `depth` below the CMI
    that is still in the window; if there is none, the oldest entry point."""
    target = dag.confirmed_milestone_index - depth
    milestones = dag.milestone_messages()
    old_enough = [index for index in milestones if index <= target]
    if old_enough:
        return milestones[max(old_enough)]
    points = dag.entry_points()
    return min(points, key=lambda m: (points[m], dag.row(m)))


def cone_graph(dag: Dag, entry: MessageId) -> ConeGraph:
    arrays = dag.arrays()
    rows, parent_ptr, parent_idx, approver_ptr, approver_idx = kernels.cone_graph(
        dag.row(entry), arrays.parents, arrays.parent_count, arrays.size
    )
    return ConeGraph(
        rows=rows,
        parent_ptr=parent_ptr,
        parent_idx=parent_idx,
        approver_ptr=approver_ptr,
        approver_idx=approver_idx,
    )


def cumulative_weights(cone: ConeGraph) -> NDArray[np.int64]:
    """H for every node of the cone (Numba; cones of `PARALLEL_MIN_NODES` or more are split
    over Numba's threads)."""
    m = cone.rows.shape[0]
    threads = min(numba.get_num_threads(), (m + 63) // 64)
    args = (cone.parent_ptr, cone.parent_idx, cone.approver_ptr, cone.approver_idx)
    weights: NDArray[np.int64]
    if m < PARALLEL_MIN_NODES or threads < 2:
        weights = kernels.cumulative_weights(*args)
    else:
        weights = kernels.cumulative_weights_parallel(*args, threads)
    return weights


def walk_to_tip(
    cone: ConeGraph, weights: NDArray[np.int64], alpha: float, rng: np.random.Generator
) -> int:
    """One weighted walk from node 0 (Numba); returns the local node it ends on."""

    def step(position: int, uniforms: NDArray[np.float64]) -> tuple[int, bool]:
        end, reached = kernels.walk(
            cone.approver_ptr, cone.approver_idx, weights, alpha, position, uniforms
        )
        return int(end), bool(reached)

    return _walk(step, rng)


def _walk(step: WalkStep, rng: np.random.Generator) -> int:
    position = 0
    while True:
        position, reached = step(position, rng.random(WALK_CHUNK))
        if reached:
            return position


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightedWalk:
    """The whitepaper's MCMC walk with exact cumulative weights."""

    alpha: float = DEFAULT_ALPHA
    """Randomness of the walk: 0 is the unweighted walk, larger follows weight more closely."""
    depth: int = DEFAULT_DEPTH
    """Walks start at the message of the milestone this far below the CMI."""
    entry: MessageId | None = None
    """Start here instead (must be in the window)."""
    implementation: Implementation = "numba"
    """"numba" kernels or the "python" reference; both give the same tips for one seed."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise InvalidFieldError("alpha", "must be finite and >= 0")
        if self.depth < 0:
            raise InvalidFieldError("depth", "must be >= 0")
        if self.implementation not in ("numba", "python"):
            raise InvalidFieldError("implementation", repr(self.implementation))

    def select(self, dag: Dag, rng: np.random.Generator, count: int) -> tuple[MessageId, ...]:
        """`count` walks on one weight computation; distinct end points, sorted (so possibly
        fewer than `count`). Never raises `NoTipsError`: a walk always ends somewhere, on the
        entry itself if nothing approves it (the genesis of an empty window)."""
        _check_count(count)
        entry = self.entry if self.entry is not None else default_entry(dag, self.depth)
        if self.implementation == "numba":
            cone = cone_graph(dag, entry)
            weights = cumulative_weights(cone)
            ends = {walk_to_tip(cone, weights, self.alpha, rng) for _ in range(count)}
        else:
            cone = cone_graph_reference(dag, entry)
            reference_weights = cumulative_weights_reference(cone)
            ends = {
                walk_to_tip_reference(cone, reference_weights, self.alpha, rng)
                for _ in range(count)
            }
        return tuple(sorted(dag.message_id(int(cone.rows[v])) for v in ends))


# -- plain-Python references (same steps as the kernels in `_tip_kernels.py`) ---------------


def cone_graph_reference(dag: Dag, entry: MessageId) -> ConeGraph:
    arrays = dag.arrays()
    entry_row = dag.row(entry)
    parents = arrays.parents.tolist()
    counts = arrays.parent_count.tolist()
    local = {entry_row: 0}
    for r in range(entry_row + 1, arrays.size):
        if any(p in local for p in parents[r][: counts[r]]):
            local[r] = len(local)
    m = len(local)
    parent_ptr = [0]
    parent_idx: list[int] = []
    approvers: list[list[int]] = [[] for _ in range(m)]
    for r, v in local.items():
        if v > 0:
            for p in parents[r][: counts[r]]:
                if p in local:
                    parent_idx.append(local[p])
                    approvers[local[p]].append(v)
        parent_ptr.append(len(parent_idx))
    approver_ptr = [0]
    for node_approvers in approvers:
        approver_ptr.append(approver_ptr[-1] + len(node_approvers))
    return ConeGraph(
        rows=np.array(list(local), dtype=np.int64),
        parent_ptr=np.array(parent_ptr, dtype=np.int64),
        parent_idx=np.array(parent_idx, dtype=np.int64),
        approver_ptr=np.array(approver_ptr, dtype=np.int64),
        approver_idx=np.array([a for node in approvers for a in node], dtype=np.int64),
    )


def cumulative_weights_reference(cone: ConeGraph) -> list[int]:
    """H for every node by the kernel's algorithm in plain Python: the same blocks, words and
    candidate order, one block at a time, with per-source counts kept directly rather than in
    bit-sliced counters."""
    parent_ptr = cone.parent_ptr.tolist()
    parent_idx = cone.parent_idx.tolist()
    approver_ptr = cone.approver_ptr.tolist()
    approver_idx = cone.approver_idx.tolist()
    m = len(parent_ptr) - 1
    n_blocks = (m + 63) >> 6
    max_parent = [max(parent_idx[parent_ptr[v] : parent_ptr[v + 1]], default=-1) for v in range(m)]
    crossing: list[list[int]] = [[] for _ in range(n_blocks)]
    long_nodes = []
    for v in range(m):
        first, last = (max_parent[v] >> 6) + 1, (v >> 6) - 1
        if last - first + 1 > kernels.LONG_SPAN_BLOCKS:
            long_nodes.append(v)
        else:
            for k in range(first, last + 1):
                crossing[k].append(v)
    weights = [0] * m
    word = [0] * m
    nonzero = [False] * m
    for k in range(n_blocks):
        s0 = k << 6
        width = min(64, m - s0)
        full = (1 << width) - 1
        seeds = [*range(s0, s0 + width), *crossing[k]]
        seeds += [v for v in long_nodes if max_parent[v] < s0 and v >= s0 + width]
        queued = set(seeds)
        candidates = sorted(queued)
        counts = [0] * width
        visited = []
        while candidates:
            v = heapq.heappop(candidates)
            w = full
            for p in parent_idx[parent_ptr[v] : parent_ptr[v + 1]]:
                if p >= s0:
                    if not nonzero[p]:
                        w = 0
                        break
                    w &= word[p]
            if v < s0 + width:
                w &= full ^ (1 << (v - s0))
            if w:
                word[v] = w
                nonzero[v] = True
                visited.append(v)
                for s in range(width):
                    counts[s] += (w >> s) & 1
                for y in approver_idx[approver_ptr[v] : approver_ptr[v + 1]]:
                    if y not in queued:
                        queued.add(y)
                        heapq.heappush(candidates, y)
        for s in range(width):
            weights[s0 + s] = (m - s0) - counts[s]
        for v in visited:
            nonzero[v] = False
    return weights


def walk_to_tip_reference(
    cone: ConeGraph, weights: list[int], alpha: float, rng: np.random.Generator
) -> int:
    """One weighted walk from node 0, the same float operations as `_tip_kernels.walk`."""
    approver_ptr = cone.approver_ptr.tolist()
    approver_idx = cone.approver_idx.tolist()

    def step(position: int, uniforms: NDArray[np.float64]) -> tuple[int, bool]:
        x = position
        for u in uniforms.tolist():
            approvers = approver_idx[approver_ptr[x] : approver_ptr[x + 1]]
            if not approvers:
                return x, True
            heaviest = max(weights[y] for y in approvers)
            total = 0.0
            for y in approvers:
                total += math.exp(-alpha * float(heaviest - weights[y]))
            target = u * total
            chosen = approvers[-1]
            acc = 0.0
            for y in approvers:
                acc += math.exp(-alpha * float(heaviest - weights[y]))
                if target < acc:
                    chosen = y
                    break
            x = chosen
        return x, approver_ptr[x] == approver_ptr[x + 1]

    return _walk(step, rng)


def warm_up() -> None:
    """Compile (or load from Numba's cache) every window and tip-selection kernel, with the
    argument types used here, on a three-message window."""
    dag = Dag()
    ids = [MessageId(bytes([n]) * 32) for n in (1, 2, 3)]
    dag.attach(ids[0], (GENESIS_ID,), WorkRoot(ids[0]))
    dag.attach(ids[1], (ids[0],), WorkRoot(ids[1]))
    dag.attach(ids[2], (ids[0],), WorkRoot(ids[2]))
    dag.unreferenced_past_cone(ids[1])
    rng = np.random.default_rng(0)
    cone = cone_graph(dag, GENESIS_ID)
    args = (cone.parent_ptr, cone.parent_idx, cone.approver_ptr, cone.approver_idx)
    kernels.cumulative_weights_parallel(*args, 2)
    walk_to_tip(cone, cumulative_weights(cone), 0.001, rng)
    dag.mark_referenced((ids[0],), 1)
    dag.prune(1)
