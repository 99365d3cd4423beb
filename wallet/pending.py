"""Pending transfers by the names `history` shows them under: finding one, and abandoning one
that can no longer confirm.

**Finding.** A transfer is named by its idempotency key or by its transaction id (whole, or a
prefix of at least `MIN_PREFIX` hex digits that no other transfer shares). The key is tried
first; a prefix that is also another transfer's key is refused as ambiguous.

**Abandoning** fails a transfer for good (`failed`, reason `abandoned`) and frees its inputs,
only when its transaction cannot confirm unless this wallet attaches it again:

- `signed`: never handed to a node (the state records every attachment before it is
  submitted), so nothing on the tangle carries it. Abandoned at once, with or without a node.
- `expired`: every attachment is below max depth; its inputs were already freed when it
  expired. Abandoning it only stops a repeat of its send from re-attaching it. One whose inputs
  were gone with no record of their spender (`Verdict.inputs_gone`) may have been applied
  through an attachment the node forgot: abandoning it is no proof it was not, and a refunder
  holds such a refund for the operator (`payments.charging.refund_attempts.never_applies`).
- `submitted`: a node holds it and a milestone may still confirm it. Not abandoned
  (`StillPendingError`): freeing its inputs could let a second payment confirm beside it.
  With a node, the wallet first brings every pending transfer up to date (`Wallet.settle`), so
  one that has meanwhile expired, confirmed or failed is treated as what it now is; a
  submitted transfer expires `WalletConfig.expire_after` milestones after its last attachment.
- `confirmed`: the payment is made (`AlreadyConfirmedError`). `failed`: returned as it is.

A sender still driving the transfer in another process is not overtaken: the state changes
the status in one exclusive transaction, so the sender either records its next attachment
first (and the transfer is not abandoned) or finds it failed and attaches nothing.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from .errors import (
    AlreadyConfirmedError,
    AmbiguousTransferError,
    StillPendingError,
    UnknownTransferError,
)
from .idempotency import idempotency_hash
from .records import Transfer, TransferStatus

if TYPE_CHECKING:
    from .account import Wallet
    from .state import WalletState

MIN_PREFIX: Final = 8
"""The fewest hex digits of a transaction id that name a transfer."""
_HEX: Final = re.compile(r"[0-9a-fA-F]+")


def find_transfer(state: WalletState, name: str) -> Transfer:
    """The transfer `name` names (module docstring). Raises `UnknownTransferError` or
    `AmbiguousTransferError`."""
    by_key = state.transfer(idempotency_hash(name))
    by_id: list[Transfer] = []
    if len(name) >= MIN_PREFIX and _HEX.fullmatch(name):
        prefix = name.lower()
        by_id = [t for t in state.transfers() if t.transaction_id.hex().startswith(prefix)]
    found = {t.key_hash: t for t in [*([by_key] if by_key else []), *by_id]}
    if not found:
        raise UnknownTransferError
    if len(found) > 1:
        raise AmbiguousTransferError(name, len(found))
    (transfer,) = found.values()
    return transfer


async def abandon(wallet: Wallet, transfer: Transfer, *, online: bool) -> Transfer:
    """Abandon `transfer` if it cannot confirm (module docstring); `online`: settle pending
    transfers with the wallet's node first. Returns the transfer as it now stands."""
    if online:
        await wallet.settle()
    now = time.time_ns() // 1_000_000
    after = await anyio.to_thread.run_sync(wallet.state.abandon, transfer.key_hash, now, now)
    if after.status is TransferStatus.CONFIRMED:
        raise AlreadyConfirmedError(after.transaction_id.hex(), after.confirmed_index)
    if after.status is TransferStatus.SUBMITTED:
        last = after.last_cmi
        expires_at = None if last is None or not online else last + wallet.config.expire_after
        raise StillPendingError(after.transaction_id.hex(), expires_at)
    return after
