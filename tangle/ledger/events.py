"""What the event stream (`GET /api/v1/events`) tells about a confirmed transaction: shared by
the node that sends it and the wallet client that reads it (no server code imported here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tangle.protocol.bech32 import encode_address

if TYPE_CHECKING:
    from tangle.ledger.ledger import Conflict, Inclusion
    from tangle.protocol.bech32 import Network
    from tangle.protocol.ids import Address, MessageId, TransactionId


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionEvent:
    """A transaction message a milestone included or marked conflicting."""

    message_id: MessageId
    """The message."""
    transaction_id: TransactionId
    """Its transaction."""
    milestone_index: int
    """The milestone that referenced it."""
    inclusion: Inclusion
    """INCLUDED or CONFLICTING."""
    conflict: Conflict
    """Why it conflicts (NONE if included)."""
    addresses: frozenset[Address]
    """The addresses it touches."""

    def data(self, network: Network) -> dict[str, Any]:
        """The event's JSON: `addresses` in bech32m on `network`, `addresses_hex` the same
        addresses in hex, in the same order."""
        touched = sorted(self.addresses)
        return {
            "message_id": self.message_id.hex(),
            "transaction_id": self.transaction_id.hex(),
            "milestone_index": self.milestone_index,
            "inclusion": self.inclusion.name.lower(),
            "conflict": self.conflict.name.lower(),
            "addresses": [encode_address(a, network) for a in touched],
            "addresses_hex": [a.hex() for a in touched],
        }
