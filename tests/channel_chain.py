"""A one-message-per-milestone ledger for channel tests: each transaction is applied by its own
white-flag milestone, so tests can say exactly at which index an operation lands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.ledger.ledger import Conflict, Genesis, apply_diff, genesis_state, validate_transaction
from tangle.ledger.white_flag import ConeMessage, white_flag
from tangle.protocol.channel import BalanceProof, ChannelId, ChannelOutput, SignedBalanceProof
from tangle.protocol.ids import MessageId, OutputId, Signature
from tests.builders import NET

if TYPE_CHECKING:
    from nacl.signing import SigningKey

    from tangle.protocol.transaction import Transaction

ENTRY = MessageId(bytes(32))


class Chain:
    """A ledger moved forward one milestone (holding at most one transaction) at a time."""

    def __init__(self, genesis: Genesis, min_output_amount: int = 1) -> None:
        self.state = genesis_state(genesis)
        self.min_output_amount = min_output_amount
        self.spent: set[OutputId] = set()

    @property
    def index(self) -> int:
        """The index of the last applied milestone."""
        return self.state.milestone_index

    def apply(self, tx: Transaction | None = None) -> Conflict:
        """Validate `tx` as a node would at attach, then confirm it in the next milestone."""
        if tx is None:
            self.apply_many([])
            return Conflict.NONE
        return self.apply_many([tx])[0]

    def apply_many(self, txs: list[Transaction]) -> list[Conflict]:
        """Confirm `txs` in the next milestone, applied in the order given."""
        for tx in txs:
            validate_transaction(tx, NET, self.min_output_amount)
        cone: dict[MessageId, ConeMessage] = {}
        parent = ENTRY
        ids = []
        for n, tx in enumerate(txs):
            mid = MessageId((self.index + 1).to_bytes(16, "big") + n.to_bytes(16, "big"))
            cone[mid] = ConeMessage(parents=(parent,), transaction=tx, referenced=False)
            parent = mid
            ids.append(mid)
        result = white_flag(
            index=self.index + 1,
            parents=(parent,),
            lookup=cone.get,
            is_entry_point=lambda m: m == ENTRY,
            unspent=self.state.unspent,
            is_spent=lambda oid: oid in self.spent,
        )
        self.spent.update(s.output_id for s in result.diff.consumed)
        apply_diff(self.state, result.diff)
        conflicts = dict(result.conflicts)
        return [conflicts.get(mid, Conflict.NONE) for mid in ids]

    def advance_to(self, index: int) -> None:
        """Apply empty milestones until the last applied one is `index`."""
        while self.index < index:
            self.apply()

    def channel(self, channel_id: ChannelId) -> tuple[OutputId, ChannelOutput] | None:
        """The unspent output of a channel, if it is still on the ledger."""
        for oid, out in self.state.unspent.items():
            if isinstance(out, ChannelOutput) and out.channel_id == channel_id:
                return oid, out
        return None

    def held_by(self, address: bytes) -> int:
        return sum(
            o.amount
            for o in self.state.unspent.values()
            if not isinstance(o, ChannelOutput) and o.address == address
        )


def sign_proof(
    channel_id: ChannelId,
    sequence: int,
    payee_balance: int,
    payer: SigningKey,
    payee: SigningKey | None = None,
    network_id: int = NET,
) -> SignedBalanceProof:
    proof = BalanceProof(
        network_id=network_id,
        channel_id=channel_id,
        sequence=sequence,
        payee_balance=payee_balance,
    )
    message = proof.message()
    return SignedBalanceProof(
        proof=proof,
        payer_signature=Signature(payer.sign(message).signature),
        payee_signature=None if payee is None else Signature(payee.sign(message).signature),
    )
