"""Numba kernels over the window's flat arrays (see `dag.py` for the layout).

Window rows are in topological order: a row's parents have smaller rows. Approvers are linked
lists in arrays: `first_approver[p]` is an edge id `child * 8 + slot` (or -1), `next_approver[e]`
the next edge of the same parent. Cone graphs are local copies of one entry point's future cone,
renumbered 0..m-1 in the same order, with parents and approvers as CSR (`ptr`, `idx`); local
approver lists are ascending.

The tip-selection kernels (`cone_graph`, `cumulative_weights*`, `walk`) have plain-Python twins
in `tip_selection.py` (`*_reference`) under the same differential tests: change both or neither.
The window-maintenance kernels are checked against brute-force recomputation in the DAG tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros as _trailing_zeros
from numpy.typing import NDArray

MAX_PARENTS: Final = 8
LONG_SPAN_BLOCKS: Final = 16
"""A node whose parents all lie more than this many 64-node blocks back is checked by every
block instead of being listed in each block it spans (bounds the crossing lists)."""

_F = TypeVar("_F", bound=Callable[..., Any])
I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
I8 = NDArray[np.int8]
Bools = NDArray[np.bool_]
F64 = NDArray[np.float64]
Crossing = tuple[I64, I64, I64, I64]

trailing_zeros = cast("Callable[[np.uint64], int]", _trailing_zeros)
"""Index of the lowest set bit (an LLVM intrinsic, inside kernels only)."""


def _kernel(fn: _F) -> _F:
    return cast("_F", numba.njit(cache=True)(fn))


def _parallel_kernel(fn: _F) -> _F:
    return cast("_F", numba.njit(cache=True, parallel=True)(fn))


# -- window maintenance ----------------------------------------------------------------------


@_kernel
def mark_referenced(
    rows: I64,
    milestone_index: int,
    parents: I32,
    parent_count: I8,
    referenced: I32,
    entry: Bools,
    ocri: I32,
    ycri: I32,
) -> tuple[int, int]:
    """Mark `rows` referenced and update the cone root indexes of their unreferenced future.

    Returns (-1, 0) on success; otherwise nothing is changed and it returns the offending row
    with 1 = already referenced or an entry point, 2 = a parent outside the cone is unreferenced.
    """
    size = referenced.shape[0]
    in_set = np.zeros(size, np.bool_)
    for r in rows:
        if referenced[r] != 0 or entry[r]:
            return r, 1
        in_set[r] = True
    for r in rows:
        for k in range(parent_count[r]):
            p = parents[r, k]
            if not (in_set[p] or referenced[p] != 0 or entry[p]):
                return r, 2
    if rows.shape[0] == 0:
        return -1, 0
    low = size
    for r in rows:
        referenced[r] = milestone_index
        ocri[r] = milestone_index
        ycri[r] = milestone_index
        low = min(low, r)
    # in_set now doubles as "cone roots changed"; only descendants of changed rows can change
    for v in range(low + 1, size):
        if referenced[v] != 0 or entry[v]:
            continue
        touched = False
        for k in range(parent_count[v]):
            if in_set[parents[v, k]]:
                touched = True
                break
        if not touched:
            continue
        lo = ocri[parents[v, 0]]
        hi = ycri[parents[v, 0]]
        for k in range(1, parent_count[v]):
            lo = min(lo, ocri[parents[v, k]])
            hi = max(hi, ycri[parents[v, k]])
        if lo != ocri[v] or hi != ycri[v]:
            ocri[v] = lo
            ycri[v] = hi
            in_set[v] = True
    return -1, 0


@_kernel
def unreferenced_past_cone(
    row: int, parents: I32, parent_count: I8, referenced: I32, entry: Bools
) -> I64:
    """Rows of `row` and its past cone up to (excluding) referenced rows and entry points,
    ascending. Empty if `row` itself is referenced."""
    seen = np.zeros(row + 1, np.bool_)
    stack = np.empty(row + 1, np.int64)
    count = 0
    if referenced[row] != 0 or entry[row]:
        return np.empty(0, np.int64)
    seen[row] = True
    stack[0] = row
    top = 1
    while top > 0:
        top -= 1
        v = stack[top]
        count += 1
        for k in range(parent_count[v]):
            p = parents[v, k]
            if not seen[p] and referenced[p] == 0 and not entry[p]:
                seen[p] = True
                stack[top] = p
                top += 1
    out = np.empty(count, np.int64)
    n = 0
    for v in range(row + 1):
        if seen[v]:
            out[n] = v
            n += 1
    return out


@_kernel
def link_approvers(
    parents: I32,
    parent_count: I8,
    first_approver: I32,
    next_approver: I32,
    approver_count: I32,
    size: int,
) -> None:
    """Rebuild the approver lists of rows 0..size-1 from their parents (after compaction)."""
    first_approver[:size] = -1
    approver_count[:size] = 0
    for v in range(size):
        for k in range(parent_count[v]):
            p = parents[v, k]
            edge = v * MAX_PARENTS + k
            next_approver[edge] = first_approver[p]
            first_approver[p] = edge
            approver_count[p] += 1


# -- tip selection ---------------------------------------------------------------------------


@_kernel
def cone_graph(
    entry_row: int, parents: I32, parent_count: I8, size: int
) -> tuple[I64, I64, I64, I64, I64]:
    """The future cone of `entry_row` (with it) as a local graph: rows, parent CSR, approver CSR.

    Parents outside the cone are dropped; every approver of a cone member is in the cone.
    """
    span = size - entry_row
    local = np.full(span, -1, np.int64)
    local[0] = 0
    m = 1
    n_par = 0
    for r in range(entry_row + 1, size):
        inside = 0
        for k in range(parent_count[r]):
            p = parents[r, k]
            if p >= entry_row and local[p - entry_row] >= 0:
                inside += 1
        if inside > 0:
            local[r - entry_row] = m
            m += 1
            n_par += inside
    rows = np.empty(m, np.int64)
    parent_ptr = np.zeros(m + 1, np.int64)
    parent_idx = np.empty(n_par, np.int64)
    approver_ptr = np.zeros(m + 1, np.int64)
    e = 0
    for i in range(span):
        v = local[i]
        if v < 0:
            continue
        r = entry_row + i
        rows[v] = r
        if v > 0:
            for k in range(parent_count[r]):
                p = parents[r, k]
                if p >= entry_row and local[p - entry_row] >= 0:
                    parent_idx[e] = local[p - entry_row]
                    approver_ptr[local[p - entry_row] + 1] += 1
                    e += 1
        parent_ptr[v + 1] = e
    for v in range(m):
        approver_ptr[v + 1] += approver_ptr[v]
    approver_idx = np.empty(n_par, np.int64)
    fill = approver_ptr[:-1].copy()
    for v in range(m):
        for j in range(parent_ptr[v], parent_ptr[v + 1]):
            p = parent_idx[j]
            approver_idx[fill[p]] = v
            fill[p] += 1
    return rows, parent_ptr, parent_idx, approver_ptr, approver_idx


@_kernel
def crossing_lists(parent_ptr: I64, parent_idx: I64) -> Crossing:
    """Per 64-node block k, the nodes after it whose parents all lie before it (CSR), plus the
    long-span nodes every block must check itself, and each node's youngest parent."""
    m = parent_ptr.shape[0] - 1
    n_blocks = (m + 63) >> 6
    max_parent = np.full(m, -1, np.int64)
    counts = np.zeros(n_blocks + 1, np.int64)
    n_long = 0
    for v in range(m):
        for j in range(parent_ptr[v], parent_ptr[v + 1]):
            max_parent[v] = max(max_parent[v], parent_idx[j])
        first = (max_parent[v] >> 6) + 1
        last = (v >> 6) - 1
        if last - first + 1 > LONG_SPAN_BLOCKS:
            n_long += 1
        else:
            for k in range(first, last + 1):
                counts[k + 1] += 1
    for k in range(n_blocks):
        counts[k + 1] += counts[k]
    members = np.empty(counts[n_blocks], np.int64)
    long_nodes = np.empty(n_long, np.int64)
    fill = counts[:-1].copy()
    n_long = 0
    for v in range(m):
        first = (max_parent[v] >> 6) + 1
        last = (v >> 6) - 1
        if last - first + 1 > LONG_SPAN_BLOCKS:
            long_nodes[n_long] = v
            n_long += 1
        else:
            for k in range(first, last + 1):
                members[fill[k]] = v
                fill[k] += 1
    return counts, members, long_nodes, max_parent


@_kernel
def _weigh_blocks(
    worker: int,
    n_workers: int,
    parent_ptr: I64,
    parent_idx: I64,
    approver_ptr: I64,
    approver_idx: I64,
    crossing: Crossing,
    weights: I64,
) -> None:
    """Fill `weights` for the 64-node blocks k = worker, worker + n_workers, ...

    For block [s0, s0 + width) bit s of word[v] says "v is neither source s0 + s nor one of its
    descendants". A node's word is the AND of its parents' words (nodes before s0 count as all
    ones) with its own bit cleared. Words are nonzero only near the block and on stragglers, so
    only those nodes are visited: the block, nodes whose parents all precede it, and approvers
    of nonzero nodes, in ascending order (a bitmap of candidates). Per-source counts of set bits
    are kept in bit-sliced counters; H[s0 + s] = (m - s0) - count[s].
    """
    cross_ptr, cross, long_nodes, max_parent = crossing
    m = parent_ptr.shape[0] - 1
    n_blocks = (m + 63) >> 6
    n_planes = 1
    while (1 << n_planes) <= m:
        n_planes += 1
    one = np.uint64(1)
    word = np.empty(m, np.uint64)
    nonzero = np.zeros(m, np.bool_)
    candidates = np.zeros(n_blocks, np.uint64)
    visited = np.empty(m, np.int64)
    planes = np.zeros(n_planes, np.uint64)
    for k in range(worker, n_blocks, n_workers):
        s0 = k << 6
        width = min(64, m - s0)
        full = ~np.uint64(0) if width == 64 else (one << np.uint64(width)) - one
        planes[:] = 0
        candidates[k] = full
        last_word = k
        for j in range(cross_ptr[k], cross_ptr[k + 1]):
            v = cross[j]
            candidates[v >> 6] |= one << np.uint64(v & 63)
            last_word = max(last_word, v >> 6)
        for v in long_nodes:
            if max_parent[v] < s0 and v >= s0 + width:
                candidates[v >> 6] |= one << np.uint64(v & 63)
                last_word = max(last_word, v >> 6)
        n_visited = 0
        w_i = k
        while w_i <= last_word:
            bits = candidates[w_i]
            while bits != 0:
                candidates[w_i] = bits & (bits - one)
                v = (w_i << 6) + trailing_zeros(bits)
                w = full
                for j in range(parent_ptr[v], parent_ptr[v + 1]):
                    p = parent_idx[j]
                    if p >= s0:
                        if nonzero[p]:
                            w &= word[p]
                        else:
                            w = np.uint64(0)
                            break
                if v < s0 + width:
                    w &= ~(one << np.uint64(v - s0))
                if w != 0:
                    word[v] = w
                    nonzero[v] = True
                    visited[n_visited] = v
                    n_visited += 1
                    carry = w
                    plane = 0
                    while carry != 0:
                        overflow = planes[plane] & carry
                        planes[plane] ^= carry
                        carry = overflow
                        plane += 1
                    for j in range(approver_ptr[v], approver_ptr[v + 1]):
                        y = approver_idx[j]
                        candidates[y >> 6] |= one << np.uint64(y & 63)
                        last_word = max(last_word, y >> 6)
                bits = candidates[w_i]
            w_i += 1
        for s in range(width):
            count = np.int64(0)
            for plane in range(n_planes):
                count |= np.int64((planes[plane] >> np.uint64(s)) & one) << plane
            weights[s0 + s] = (m - s0) - count
        for i in range(n_visited):
            nonzero[visited[i]] = False


@_kernel
def cumulative_weights(
    parent_ptr: I64, parent_idx: I64, approver_ptr: I64, approver_idx: I64
) -> I64:
    """H[v] = 1 + |future cone of v| for every node of a cone graph, exactly, on one thread."""
    m = parent_ptr.shape[0] - 1
    weights = np.empty(m, np.int64)
    crossing = crossing_lists(parent_ptr, parent_idx)
    _weigh_blocks(0, 1, parent_ptr, parent_idx, approver_ptr, approver_idx, crossing, weights)
    return weights


@_parallel_kernel
def cumulative_weights_parallel(
    parent_ptr: I64, parent_idx: I64, approver_ptr: I64, approver_idx: I64, n_workers: int
) -> I64:
    """`cumulative_weights` with the blocks dealt round-robin to `n_workers` threads."""
    m = parent_ptr.shape[0] - 1
    weights = np.empty(m, np.int64)
    crossing = crossing_lists(parent_ptr, parent_idx)
    for worker in numba.prange(n_workers):
        _weigh_blocks(
            worker, n_workers, parent_ptr, parent_idx, approver_ptr, approver_idx, crossing, weights
        )
    return weights


@_kernel
def walk(
    approver_ptr: I64, approver_idx: I64, weights: I64, alpha: float, start: int, uniforms: F64
) -> tuple[int, bool]:
    """Walk from `start` towards the tips, one uniform per move; returns (node, reached_tip).

    From x the walk moves to approver y with probability proportional to
    exp(-alpha * (H_x - H_y)), computed as exp(-alpha * (H_max - H_y)) with H_max the heaviest
    approver (the same distribution; it cannot underflow to all zeros).
    """
    x = start
    for i in range(uniforms.shape[0]):
        first = approver_ptr[x]
        end = approver_ptr[x + 1]
        if first == end:
            return x, True
        heaviest = weights[approver_idx[first]]
        for j in range(first + 1, end):
            heaviest = max(heaviest, weights[approver_idx[j]])
        total = 0.0
        for j in range(first, end):
            total += math.exp(-alpha * np.float64(heaviest - weights[approver_idx[j]]))
        target = uniforms[i] * total
        chosen = approver_idx[end - 1]
        acc = 0.0
        for j in range(first, end):
            acc += math.exp(-alpha * np.float64(heaviest - weights[approver_idx[j]]))
            if target < acc:
                chosen = approver_idx[j]
                break
        x = chosen
    return x, approver_ptr[x] == approver_ptr[x + 1]
