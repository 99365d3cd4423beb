"""Settlement over the carriers' two-way channel: each acknowledged amount paid HPMN -> VPMN.

Both carriers roam in each other's network, so each is the HPMN of some batches and the VPMN of
others, and one two-way channel (`payments.channels.twoway`) carries both directions. A
`Settlement` (sans-I/O, one per channel and carrier) holds every verified, accepted
acknowledgement of the pair, keyed by (sender, recipient, batch sequence), and derives from them
the one balance the channel must show:

```
target payee balance = base + sum(accepted amounts and credits owed to the channel's payee)
                            - sum(accepted amounts and credits owed by the channel's payee)
```

`due` is how far the channel's latest co-signed state is from that target in the direction this
carrier pays, and `pay` proposes exactly the target. The key makes recording idempotent (the same
acknowledgement twice changes nothing; two different ones for the same batch are refused), and
credit notes (accepted disputes, `disputes.py`) enter the same sum, keyed by dispute. Because
the target is a function of the acknowledgements and credit notes, not of the payments made, a
carrier that was offline for hours pays everything due in one proposal and never twice: a
payment made but not saved here (the channel learns it back from the other side) leaves nothing
due.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..channels.settle import due_to, settle_to
from ..errors import PaymentError
from .acknowledgement import verify_ack
from .errors import ChannelCapacityError, SettlementError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..channels.twoway import Proposal, TwoWayChannel
    from .acknowledgement import SignedAcknowledgement
    from .agreement import Agreement
    from .disputes import CreditNote

BatchKey = tuple[str, str, int]
"""(sender, recipient, sequence) of a batch: what a settlement is idempotent by."""


class Settlement:
    """What one carrier's two-way channel with its partner must pay (module docstring)."""

    __slots__ = ("_acks", "_agreement", "_base", "_channel", "_credits", "_owed", "_payee_tadig")

    def __init__(
        self,
        agreement: Agreement,
        channel: TwoWayChannel,
        *,
        base_payee_balance: int = 0,
        acks: Iterable[SignedAcknowledgement] = (),
    ) -> None:
        keys = {p.key: p.tadig for p in agreement.parties}
        terms = channel.terms
        if set(keys) != {terms.payer, terms.payee}:
            raise SettlementError("the channel's parties are not the agreement's carriers")
        if not 0 <= base_payee_balance <= terms.deposit:
            raise SettlementError("the base balance is outside the deposit")
        self._agreement = agreement
        self._channel = channel
        self._base = base_payee_balance
        self._payee_tadig = keys[terms.payee]
        self._acks: dict[BatchKey, int] = {}
        self._credits: dict[bytes, CreditNote] = {}
        self._owed = 0
        """The sums of the module docstring, kept as each acknowledgement or note is taken."""
        for ack in acks:
            self.record(ack)

    @property
    def channel(self) -> TwoWayChannel:
        return self._channel

    @property
    def settled(self) -> dict[BatchKey, int]:
        """The accepted amount of every acknowledged batch, by key (a copy)."""
        return dict(self._acks)

    def record(self, signed: SignedAcknowledgement) -> bool:
        """Take a verified acknowledgement; False if it was already held (nothing changes).
        A rejected batch (fatal) owes nothing and is not held; an acknowledgement that
        contradicts the one held for the same batch is refused (`SettlementError`)."""
        verify_ack(signed, self._agreement)
        ack = signed.ack
        if not ack.accepted:
            return False
        key = (ack.sender, ack.recipient, ack.sequence)
        held = self._acks.get(key)
        if held is not None:
            if held != ack.accepted_amount:
                raise SettlementError(f"two acknowledgements of batch {key} disagree")
            return False
        self._acks[key] = ack.accepted_amount
        self._owed += (
            ack.accepted_amount if ack.sender == self._payee_tadig else -ack.accepted_amount
        )
        return True

    def credit(self, note: CreditNote) -> bool:
        """Take a credit note (an accepted dispute); False if it was already held."""
        if {note.debtor, note.creditor} != {p.tadig for p in self._agreement.parties}:
            raise SettlementError("a credit note of another pair")
        held = self._credits.get(note.dispute)
        if held is not None:
            if held != note:
                raise SettlementError("two credit notes of one dispute disagree")
            return False
        self._credits[note.dispute] = note
        self._owed += note.amount if note.creditor == self._payee_tadig else -note.amount
        return True

    @property
    def target(self) -> int:
        """The payee balance the channel must show once everything acknowledged is paid and
        every credit note applied."""
        return self._base + self._owed

    @property
    def due(self) -> int:
        """What this carrier still has to pay (0 if the other side owes, or nothing is due)."""
        return due_to(self._channel, self.target)

    def pay(self) -> Proposal | None:
        """Propose the target state if this carrier owes anything; None otherwise. Raises
        `ChannelCapacityError` when this carrier's share cannot cover what is due (top up)."""
        try:
            return settle_to(self._channel, self.target, short=ChannelCapacityError)
        except SettlementError:
            raise
        except PaymentError as e:
            raise SettlementError(f"the channel refused the payment: {e}") from e
