"""The window's rows as flat numpy arrays, for the Numba kernels.

Per row: the parents (`N x 8`, -1 padded, with a count), the approver lists (linked through edge
ids `child * 8 + slot`), the milestone index that referenced it (0 = none), whether it is a solid
entry point, and its oldest and youngest cone root indexes (OCRI, YCRI). The arrays grow by
doubling; rows are handed out in topological order (a row's parents have smaller rows), and
`compact` keeps that order when the window is pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np

from . import _tip_kernels as kernels

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

MAX_PARENTS: Final = kernels.MAX_PARENTS
_T = TypeVar("_T", bound=np.generic)
_NAMES: Final = (
    "parents",
    "parent_count",
    "first_approver",
    "next_approver",
    "approver_count",
    "referenced",
    "entry",
    "ocri",
    "ycri",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DagArrays:
    """Read-only views of the window's first `size` rows, for kernels."""

    size: int
    """Number of rows."""
    parents: NDArray[np.int32]
    """size x 8 parent rows, -1 padded."""
    parent_count: NDArray[np.int8]
    """Parents per row (0 for entry points)."""
    first_approver: NDArray[np.int32]
    """First approver edge per row, -1 if none."""
    next_approver: NDArray[np.int32]
    """Next edge of the same parent, by edge id `child * 8 + slot`."""
    referenced: NDArray[np.int32]
    """Referencing milestone index, 0 if none."""
    entry_point: NDArray[np.bool_]
    """Solid entry point flag."""
    ocri: NDArray[np.int32]
    """Oldest cone root index."""
    ycri: NDArray[np.int32]
    """Youngest cone root index."""


class RowArrays:
    """The arrays of the window's rows and how many rows are in use (`size`)."""

    __slots__ = (*_NAMES, "size")

    parents: NDArray[np.int32]
    parent_count: NDArray[np.int8]
    first_approver: NDArray[np.int32]
    next_approver: NDArray[np.int32]
    approver_count: NDArray[np.int32]
    referenced: NDArray[np.int32]
    entry: NDArray[np.bool_]
    ocri: NDArray[np.int32]
    ycri: NDArray[np.int32]

    def __init__(self, capacity: int) -> None:
        self.size = 0
        self._allocate(capacity)

    def append(self) -> int:
        """A new, empty row (growing the arrays when full)."""
        row = self.size
        if row == self.parents.shape[0]:
            old: list[NDArray[Any]] = [getattr(self, name) for name in _NAMES]
            self._allocate(2 * row)
            for name, array in zip(_NAMES, old, strict=True):
                getattr(self, name)[: array.shape[0]] = array
        self.size = row + 1
        return row

    def link(self, row: int, parent_rows: Sequence[int]) -> tuple[int, int]:
        """Give the new `row` its parents: parent slots, approver edges, and cone root indexes
        (the parents' lowest OCRI and highest YCRI), which it returns."""
        self.parents[row, : len(parent_rows)] = parent_rows
        self.parent_count[row] = len(parent_rows)
        ocri = min(self.ocri.item(p) for p in parent_rows)
        ycri = max(self.ycri.item(p) for p in parent_rows)
        self.ocri[row] = ocri
        self.ycri[row] = ycri
        first, following, counts = self.first_approver, self.next_approver, self.approver_count
        for slot, parent in enumerate(parent_rows):
            edge = row * MAX_PARENTS + slot
            following[edge] = first.item(parent)
            first[parent] = edge
            counts[parent] += 1
        return ocri, ycri

    def view(self) -> DagArrays:
        """Read-only views of the rows in use; valid until the next change."""
        n = self.size

        def view(array: NDArray[_T]) -> NDArray[_T]:
            out = array[:n]
            out.flags.writeable = False
            return out

        return DagArrays(
            size=n,
            parents=view(self.parents),
            parent_count=view(self.parent_count),
            first_approver=view(self.first_approver),
            next_approver=view(self.next_approver),
            referenced=view(self.referenced),
            entry_point=view(self.entry),
            ocri=view(self.ocri),
            ycri=view(self.ycri),
        )

    def compact(self, keep: NDArray[np.bool_], new_entries: NDArray[np.bool_]) -> NDArray[np.int32]:
        """Keep the rows flagged in `keep`, in order, turning those flagged in `new_entries` into
        entry points (no parents); relink the approvers. Returns old row -> new row (-1: gone;
        index -1 maps to -1, for padding)."""
        n = self.size
        rows = np.flatnonzero(keep)
        remap = np.full(n + 1, -1, np.int32)
        remap[rows] = np.arange(rows.size, dtype=np.int32)
        parents = remap[self.parents[rows]]
        parents[new_entries[rows]] = -1
        self.parents[: rows.size] = parents
        self.parents[rows.size : n] = -1
        self.parent_count[: rows.size] = np.where(new_entries[rows], 0, self.parent_count[rows])
        per_row: tuple[NDArray[np.generic], ...] = (
            self.referenced,
            self.ocri,
            self.ycri,
            self.entry,
        )
        for array in per_row:
            array[: rows.size] = array[rows]
        self.entry[: rows.size] |= new_entries[rows]
        for array in (*per_row, self.parent_count):
            array[rows.size : n] = 0
        self.first_approver[rows.size : n] = -1
        self.approver_count[rows.size : n] = 0
        self.size = rows.size
        kernels.link_approvers(
            self.parents,
            self.parent_count,
            self.first_approver,
            self.next_approver,
            self.approver_count,
            self.size,
        )
        return remap

    def _allocate(self, capacity: int) -> None:
        self.parents = np.full((capacity, MAX_PARENTS), -1, np.int32)
        self.parent_count = np.zeros(capacity, np.int8)
        self.first_approver = np.full(capacity, -1, np.int32)
        self.next_approver = np.full(capacity * MAX_PARENTS, -1, np.int32)
        self.approver_count = np.zeros(capacity, np.int32)
        self.referenced = np.zeros(capacity, np.int32)
        self.entry = np.zeros(capacity, np.bool_)
        self.ocri = np.zeros(capacity, np.int32)
        self.ycri = np.zeros(capacity, np.int32)
