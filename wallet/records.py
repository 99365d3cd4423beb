"""The wallet state's records as value objects: transfers and their status rules, attachments,
incoming outputs, the balance and derived addresses (`wallet.state` stores them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from .errors import WalletStateError

if TYPE_CHECKING:
    from tangle.protocol.ids import Address, MessageId, OutputId, TransactionId
    from tangle.protocol.transaction import Transaction


class TransferStatus(StrEnum):
    """Where a transfer stands."""

    SIGNED = "signed"
    """Recorded and signed, inputs reserved; never submitted."""
    SUBMITTED = "submitted"
    """Handed to a node at least once (perhaps without an answer); inputs reserved."""
    EXPIRED = "expired"
    """Unconfirmed with every attachment below max depth: it can only confirm if re-attached.
    Its inputs are released (spending one of them elsewhere cancels it for good). One whose
    inputs were gone (`Verdict.inputs_gone`) may have been applied already; they left the coins."""
    CONFIRMED = "confirmed"
    """Included by a milestone; its inputs are spent."""
    FAILED = "failed"
    """Never applicable: another transaction spent an input, a milestone found it broke a rule
    of its own, the node refused it, or it was abandoned (before submission; after it, once
    expired, it may still apply: `wallet.pending`)."""


TRANSITIONS: Final[dict[TransferStatus, frozenset[TransferStatus]]] = {
    TransferStatus.SIGNED: frozenset({TransferStatus.SUBMITTED, TransferStatus.FAILED}),
    TransferStatus.SUBMITTED: frozenset(
        {
            TransferStatus.SIGNED,  # its only attachment was refused: nothing was published
            TransferStatus.SUBMITTED,
            TransferStatus.EXPIRED,
            TransferStatus.CONFIRMED,
            TransferStatus.FAILED,
        }
    ),
    TransferStatus.EXPIRED: frozenset(
        {TransferStatus.SUBMITTED, TransferStatus.CONFIRMED, TransferStatus.FAILED}
    ),
    TransferStatus.CONFIRMED: frozenset(),
    TransferStatus.FAILED: frozenset(),
}
"""The status changes allowed; `SIGNED -> FAILED` only for a transfer never published."""
FINAL: Final = frozenset({TransferStatus.CONFIRMED, TransferStatus.FAILED})


def check_transition(transfer: Transfer, to: TransferStatus) -> None:
    """Raise `WalletStateError` unless `TRANSITIONS` lets `transfer` become `to`."""
    if to not in TRANSITIONS[transfer.status]:
        raise WalletStateError(
            f"transfer {transfer.transaction_id.hex()} is {transfer.status.value}; "
            f"it cannot become {to.value}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """One attachment of a transfer's transaction to the tangle."""

    sequence: int
    """0 for the first, then 1, 2, ... for re-attachments."""
    message_id: MessageId | None
    """The message; None while the node's proof-of-work answer is awaited, or if it was lost."""
    raw: bytes | None
    """The message bytes, when the wallet built it (so it can submit it again)."""
    cmi: int
    """The node's confirmed milestone index read just before submitting: every cone root of
    the message is at most this, so it is below max depth once the index exceeds it by 15."""
    at_ms: int
    """When it was recorded (ms since the epoch)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """A payment the wallet made or is making, as recorded in the state."""

    key_hash: bytes
    """BLAKE2b-256 of the idempotency key: what the memo carries and the state is keyed by."""
    idempotency_key: bytes | None
    """The idempotency key itself (UTF-8 for a text key), so a lost key can be read back;
    None for a transfer recorded before the state kept keys (schema 1)."""
    transaction: Transaction
    """The signed transaction; re-attachments carry exactly this payload."""
    recipient: Address
    """Who is paid."""
    amount: int
    """What they get."""
    nonce: int | None
    """The proof-of-work nonce for the payload, once known (valid for any parents)."""
    status: TransferStatus
    """Where it stands."""
    attachments: tuple[Attachment, ...]
    """Its attachments, oldest first."""
    confirmed_index: int | None
    """The milestone that included it; when only the ledger's outputs showed it included (its
    attachment unknown to the node), the ledger index at which they were seen."""
    failure: str | None
    """Why it failed (`input_spent`, a node error code, `abandoned`)."""
    created_ms: int
    """When it was recorded."""
    updated_ms: int
    """When its row last changed."""

    @property
    def transaction_id(self) -> TransactionId:
        return self.transaction.id

    @property
    def message_ids(self) -> tuple[MessageId, ...]:
        return tuple(a.message_id for a in self.attachments if a.message_id is not None)

    @property
    def inputs(self) -> tuple[OutputId, ...]:
        return self.transaction.essence.inputs

    @property
    def change(self) -> int:
        return self.transaction.essence.total_output - self.amount

    @property
    def last_cmi(self) -> int | None:
        """The confirmed index before the latest attachment, None if never attached."""
        return self.attachments[-1].cmi if self.attachments else None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def key_text(self) -> str | None:
        """The idempotency key as the text a `send --idempotency-key` takes; None when it is
        not recorded or is not UTF-8 (a library caller's bytes)."""
        if self.idempotency_key is None:
            return None
        try:
            return self.idempotency_key.decode()
        except UnicodeDecodeError:
            return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """An output paid to one of the account's addresses by a transaction the account did not
    make, as first seen by a sync. Kept after it is spent: the node keeps no history."""

    output_id: OutputId
    """The output (its transaction id and index)."""
    address: Address
    """The account's address it is locked to."""
    amount: int
    """Base units."""
    ledger_index: int
    """The confirmed milestone of the sync that first saw it: it was included at or before."""
    seen_ms: int
    """When the wallet first saw it."""

    @property
    def transaction_id(self) -> TransactionId:
        return self.output_id.transaction_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance:
    """The account's funds as the state knows them (after the last sync or confirmation)."""

    total: int
    """All known unspent outputs."""
    reserved: int
    """Held as inputs by transfers in flight."""
    outputs: int
    """How many unspent outputs."""

    @property
    def available(self) -> int:
        return self.total - self.reserved


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressRow:
    """A derived address of the account."""

    chain: int
    """0 receiving, 1 change."""
    index: int
    """Its index on the chain."""
    address: Address
    """The address."""
    used: bool
    """Seen funded, or handed out as change."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """What `create_transfer`'s builder returns: a signed transaction and its bookkeeping."""

    transaction: Transaction
    """Signed."""
    recipient: Address
    """Who is paid."""
    amount: int
    """What they get."""
    change: tuple[int, Address] | None
    """The change address (its index on chain 1, and it), if there is change."""
