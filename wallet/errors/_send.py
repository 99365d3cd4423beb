"""Errors of sending: transfers that cannot be made or did not complete."""

from __future__ import annotations

from ._base import WalletError

# -- sending ---------------------------------------------------------------------------------


class SendError(WalletError):
    """A transfer that cannot be made, or did not complete."""


class AmountError(SendError):
    """An amount below the network's minimum output (the dust deposit) or above u64."""

    def __init__(self, amount: int, minimum: int) -> None:
        if amount < minimum:
            why = f"amount {amount} is too small: an output must be at least {minimum}"
        else:
            why = f"amount {amount} is too large: at most 2**64 - 1"
        super().__init__(why)
        self.amount = amount
        self.minimum = minimum


class InsufficientFundsError(SendError):
    """The unreserved outputs cannot pay `needed` without dust change (change below
    `min_output`, the network's minimum output); `available` is their sum. `fragmented` is True
    when the sum would do but not within the input limit (128)."""

    def __init__(
        self, needed: int, available: int, *, min_output: int, fragmented: bool = False
    ) -> None:
        if available < needed:
            why = f"cannot pay {needed}: {available} available"
        elif fragmented:
            why = f"cannot pay {needed} from {available} available in at most 128 inputs"
        else:
            most = available - min_output
            options = f"exactly {available}" + (
                f", or at most {most}" if most >= min_output else ""
            )
            why = (
                f"cannot pay {needed} from {available} available: the change would be below "
                f"the minimum output of {min_output} (pay {options})"
            )
        super().__init__(why)
        self.needed = needed
        self.available = available
        self.min_output = min_output
        self.fragmented = fragmented


class IdempotencyConflictError(SendError):
    """An idempotency key already used for a payment with another recipient, amount or memo.
    The key itself is not repeated here: it may be meaningful to someone."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__(
            f"this idempotency key was used for another payment (transaction {transaction_id})"
        )
        self.transaction_id = transaction_id


class TransferFailedError(SendError):
    """The ledger will never apply the transfer: a milestone found it broke a rule of its own
    (`reason`), another transaction spent one of its inputs (`input_spent`), or the node refused
    it outright."""

    def __init__(self, transaction_id: str, reason: str) -> None:
        super().__init__(f"transfer {transaction_id} failed: {reason}")
        self.transaction_id = transaction_id
        self.reason = reason


class TransferTimeoutError(SendError):
    """Not confirmed within `timeout_s`. The transfer stays pending in the wallet state: a
    repeat of the send with the same idempotency key, or `Wallet.resume`, picks it up again."""

    def __init__(self, transaction_id: str, timeout_s: float) -> None:
        super().__init__(f"transfer {transaction_id} not confirmed within {timeout_s:g} s")
        self.transaction_id = transaction_id
        self.timeout_s = timeout_s


class UnknownTransferError(SendError):
    """No recorded transfer has this idempotency key, nor a transaction id starting with it.
    What was asked for is not repeated: a key may be meaningful to someone."""

    def __init__(self) -> None:
        super().__init__(
            "no transfer has this idempotency key or a transaction id starting with it "
            "(see history)"
        )


class AmbiguousTransferError(SendError):
    """A transaction id prefix shared by several recorded transfers (`count`)."""

    def __init__(self, prefix: str, count: int) -> None:
        super().__init__(f"{count} transfers have a transaction id starting with {prefix}")
        self.prefix = prefix
        self.count = count


class StillPendingError(SendError):
    """Not abandoned: the transfer was handed to a node and its transaction may still confirm,
    so its inputs stay reserved. `expires_at` is the confirmed milestone index from which a
    node-backed check may find it expired (None: unknown without a node)."""

    def __init__(self, transaction_id: str, expires_at: int | None) -> None:
        when = (
            f"once milestone {expires_at} is confirmed without it, abandon it again with a node"
            if expires_at is not None
            else "abandon it with a node (--node) to learn whether it expired"
        )
        super().__init__(
            f"transfer {transaction_id} may still confirm, so it was not abandoned: resume it, "
            f"or {when}"
        )
        self.transaction_id = transaction_id
        self.expires_at = expires_at


class AlreadyConfirmedError(SendError):
    """Not abandoned: a milestone confirmed the transfer; its payment is made."""

    def __init__(self, transaction_id: str, index: int | None) -> None:
        super().__init__(
            f"transfer {transaction_id} was confirmed by milestone {index}; nothing to abandon"
        )
        self.transaction_id = transaction_id
        self.index = index


class InputLimitError(SendError):
    """A coin selection asked for with an input limit outside 1..128 (the protocol's limit)."""

    def __init__(self, max_inputs: int, limit: int) -> None:
        super().__init__(f"max_inputs {max_inputs} is outside 1..{limit}")
        self.max_inputs = max_inputs
        self.limit = limit
