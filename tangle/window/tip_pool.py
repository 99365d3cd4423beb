"""Tip scores and the tip pool.

A tip is a solid non-entry row with no approvers, scored against the confirmed milestone index
(CMI) as Hornet does (TIP-3, RFC-0008): lazy if CMI - OCRI > below_max_depth or
CMI - YCRI > max_delta_ycri, semi-lazy if CMI - OCRI > max_delta_ocri, else non-lazy. Scores
change only when the CMI or the cone roots do, so the window scores a tip when it attaches and
rebuilds the pool on each milestone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


class Score(IntEnum):
    """A tip's score (TIP-3 values)."""

    LAZY = 0
    SEMI_LAZY = 1
    NON_LAZY = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class TipRules:
    """Tip scoring thresholds, in milestones; the defaults are Hornet's and TIP-3's (C1, C2, M)."""

    max_delta_ycri: int = 8
    """C1: a tip whose YCRI is more than this below the CMI is lazy."""
    max_delta_ocri: int = 13
    """C2: a tip whose OCRI is more than this below the CMI is semi-lazy."""
    below_max_depth: int = 15
    """M: a message whose OCRI is more than this below the CMI is lazy, and cannot be confirmed."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_delta_ycri <= self.below_max_depth:
            raise InvalidFieldError("max_delta_ycri", "must be in 0..below_max_depth")
        if not 0 <= self.max_delta_ocri <= self.below_max_depth:
            raise InvalidFieldError("max_delta_ocri", "must be in 0..below_max_depth")

    def score(self, cmi: int, ocri: int, ycri: int) -> Score:
        """The score of a tip with these cone root indexes, in Hornet's order of checks."""
        if cmi - ocri > self.below_max_depth:
            return Score.LAZY
        if cmi - ycri > self.max_delta_ycri:
            return Score.LAZY
        if cmi - ocri > self.max_delta_ocri:
            return Score.SEMI_LAZY
        return Score.NON_LAZY


class _RowSet:
    """A set of rows with O(1) add, remove and uniform indexing (swap-remove)."""

    __slots__ = ("items", "positions")

    def __init__(self) -> None:
        self.items: list[int] = []
        self.positions: dict[int, int] = {}

    def add(self, row: int) -> None:
        self.positions[row] = len(self.items)
        self.items.append(row)

    def remove(self, row: int) -> None:
        at = self.positions.pop(row)
        last = self.items.pop()
        if last != row:
            self.items[at] = last
            self.positions[last] = at


class TipPool:
    """The window's tips by score, as rows; O(1) to add a tip or drop an approved one, and a
    uniform pick by index (`rows(score)[i]`)."""

    __slots__ = ("_pools", "_scores", "rules")

    def __init__(self, rules: TipRules) -> None:
        self.rules = rules
        self._pools = (_RowSet(), _RowSet(), _RowSet())
        self._scores: dict[int, Score] = {}

    def __contains__(self, row: object) -> bool:
        return row in self._scores

    def rows(self, score: Score) -> Sequence[int]:
        """The tips with this score, in pool order (a live view: do not keep it across changes)."""
        return self._pools[score].items

    def add(self, row: int, cmi: int, ocri: int, ycri: int) -> None:
        """Add a new tip with these cone root indexes, scored under `cmi`."""
        score = self.rules.score(cmi, ocri, ycri)
        self._scores[row] = score
        self._pools[score].add(row)

    def approved(self, row: int) -> None:
        """`row` got an approver: it is no longer a tip (nothing if it was not one)."""
        score = self._scores.pop(row, None)
        if score is not None:
            self._pools[score].remove(row)

    def rebuild(self, tips: Iterable[tuple[int, int, int]], cmi: int) -> None:
        """Replace the pool with `tips`, (row, OCRI, YCRI) triples, scored under `cmi`."""
        self._pools = (_RowSet(), _RowSet(), _RowSet())
        self._scores = {}
        for row, ocri, ycri in tips:
            self.add(row, cmi, ocri, ycri)
