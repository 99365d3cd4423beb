"""The re-attach policy, as pure functions of a transfer and the ledger's confirmed milestone
index: when a transfer is (re-)attached, and when `settle` gives up on one nobody re-attached.

A message not confirmed 15 milestones after its attachment is below max depth and can no longer
be confirmed; the node then frees the payload's slot. A transfer is re-attached (same payload,
same nonce, fresh tips, never re-signed) `reattach_after` (> 15) milestones after its last
attachment; its inputs are released `expire_after` (>= `reattach_after`) milestones after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .records import TransferStatus

if TYPE_CHECKING:
    from .records import Transfer


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What the ledger says of a transfer's attachments."""

    confirmed_index: int | None = None
    """The milestone that confirmed it, if one did."""
    conflict: str | None = None
    """Why it can never apply, if the ledger shows so: the rule a milestone found it broke
    (one of its own, not of its inputs: every attachment breaks it alike), or `input_spent`
    when another transaction spent one of its inputs."""
    missing: bool = False
    """The latest attachment is one the wallet built and the node does not hold."""
    inputs_gone: bool = False
    """Neither confirmed nor failed, and an input is no longer unspent with no record of which
    transaction spent it (spent before the node's pruning window, or by a milestone it never
    saw): it may have been applied (through an attachment the node forgot or never saw), and a
    new attachment cannot apply. It stays pending, is not attached again, and expires
    `expire_after` milestones after its last attachment (`expire_due`); the gone inputs leave
    the wallet's coins at once, so its expiry frees none of them for another transfer."""


def reattach_due(transfer: Transfer, cmi: int, reattach_after: int) -> bool:
    """Whether `transfer` should be (re-)attached at confirmed milestone index `cmi`: it was never
    attached, or its last attachment is `reattach_after` milestones old."""
    if transfer.status is TransferStatus.SIGNED:
        return True
    last = transfer.last_cmi
    return last is None or cmi - last >= reattach_after


def expire_due(transfer: Transfer, cmi: int, expire_after: int) -> bool:
    """Whether a submitted transfer nobody re-attached has been below max depth long enough at
    `cmi` for `settle` to release its inputs."""
    return (
        transfer.status is TransferStatus.SUBMITTED
        and transfer.last_cmi is not None
        and cmi - transfer.last_cmi >= expire_after
    )
