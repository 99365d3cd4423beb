"""Executing a clearing statement on the ledger: each payer carrier pays its transfers of the
netting plan (`netting.ClearingStatement`) as signed ledger transactions, through the node's
HTTP API with the wallet library, exactly once.

Only a statement every participant signed is executed (`check_signatures`). A transfer goes to
the payee's operator key's ledger address (`address_of`), the key the statement names, so no
address travels beside the signed statement. Each transfer's idempotency key is derived from
the statement's hash and the transfer's index (`transfer_key`): the wallet records the
transaction under that key before it is submitted, so a re-run, a crash between transfers or a
lost answer never pays twice; it finds the recorded transfer and drives it on. The result, a
`ClearingExecution`, names each transfer's transaction and message ids (canonical JSON): what the
participants file beside the signed statement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.protocol.transaction import address_of
from wallet.errors import WalletError

from .errors import ClearingTransferError, NettingError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tangle.protocol.ids import Address, Signature
    from wallet import Wallet

    from .netting import ClearingStatement

TRANSFER_KEY_DOMAIN: Final = "tanglepay/roaming/clearing-transfer/v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class PaidTransfer:
    """One transfer of the plan as the ledger carries it."""

    index: int
    """Its place in the statement's transfers."""
    payer: str
    payee: str
    amount: int
    address: Address
    """The payee's ledger address (of its operator key)."""
    transaction_id: bytes
    message_ids: tuple[bytes, ...]
    """The messages that carry the transaction (more than one if it was re-attached)."""
    confirmed_index: int | None
    """The milestone that confirmed it (None: submitted, not yet confirmed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearingExecution:
    """What one payer paid of a statement."""

    statement: bytes
    """The hash of the executed `ClearingStatement`."""
    payer: str
    transfers: tuple[PaidTransfer, ...]

    def to_json_object(self) -> dict[str, object]:
        return {
            "statement": self.statement.hex(),
            "payer": self.payer,
            "transfers": [
                {
                    "index": t.index,
                    "payer": t.payer,
                    "payee": t.payee,
                    "amount": t.amount,
                    "address": t.address.hex(),
                    "transaction_id": t.transaction_id.hex(),
                    "message_ids": [m.hex() for m in t.message_ids],
                    "confirmed_index": t.confirmed_index,
                }
                for t in self.transfers
            ],
        }

    def encode(self) -> bytes:
        """Canonical JSON: keys sorted, no whitespace, ASCII."""
        return json.dumps(self.to_json_object(), sort_keys=True, separators=(",", ":")).encode()


def transfer_key(statement: ClearingStatement, index: int) -> bytes:
    """The idempotency key of the statement's `index`-th transfer: the same on every run."""
    return f"{TRANSFER_KEY_DOMAIN}/{statement.hash.hex()}/{index}".encode()


def payee_address(statement: ClearingStatement, tadig: str) -> Address:
    """The ledger address of the participant `tadig`'s operator key."""
    for name, key in statement.participants:
        if name == tadig:
            return address_of(key)
    raise NettingError(f"{tadig} is not a participant")


async def execute(
    statement: ClearingStatement,
    signatures: Mapping[str, Signature],
    wallet: Wallet,
    payer: str,
    *,
    timeout_s: float | None = None,
) -> ClearingExecution:
    """Pay `payer`'s transfers of `statement` from `wallet`, in the statement's order, each
    confirmed by a milestone before the next (`timeout_s` each). Refuses (`NettingError`) a
    statement not signed by every participant or a payer that is none; a transfer the ledger
    refuses or that does not confirm raises `ClearingTransferError` (re-run to resume: what
    was paid stays paid, once)."""
    statement.check_signatures(signatures)
    if payer not in {t for t, _ in statement.participants}:
        raise NettingError(f"{payer} is not a participant")
    paid: list[PaidTransfer] = []
    for index, t in enumerate(statement.transfers):
        if t.payer != payer:
            continue
        to = payee_address(statement, t.payee)
        try:
            transfer = await wallet.send(
                to, t.amount, idempotency_key=transfer_key(statement, index), timeout_s=timeout_s
            )
        except WalletError as e:
            raise ClearingTransferError(index, t.payee, t.amount, str(e)) from e
        paid.append(
            PaidTransfer(
                index=index, payer=t.payer, payee=t.payee, amount=t.amount, address=to,
                transaction_id=transfer.transaction_id, message_ids=transfer.message_ids,
                confirmed_index=transfer.confirmed_index,
            )
        )  # fmt: skip
    return ClearingExecution(statement=statement.hash, payer=payer, transfers=tuple(paid))
