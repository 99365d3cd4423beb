"""A carrier's roaming desk for one agreement: the HPMN side that takes the partner's batches,
validates them and keeps the acknowledgements, over the store (blocking; call it from a worker
thread).

The validator resumes from the store (next expected sequence, duplicate window), so a restart
continues where the last saved acknowledgement left off. A batch whose acknowledgement is
already stored (the VPMN retries because the answer was lost) gets that same acknowledgement
back, so a VPMN that was offline catches up by sending again. Only accepted batches are stored
(a fatal answer leaves the sequence number expected, for a corrected batch). If saving fails
the desk refuses everything after (`RoamingStoreError`): its validator would be ahead of the
store; a restart rebuilds it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from .acknowledgement import Severity
from .bars import BarList
from .errors import RoamingStoreError
from .validation import Validator

if TYPE_CHECKING:
    from tangle.protocol.signature import Signer

    from .acknowledgement import SignedAcknowledgement
    from .agreement import SignedAgreement
    from .bars import SignedBar
    from .batch import Batch
    from .store import RoamingStore

WINDOW_CAPACITY: Final = 5_000_000


class CarrierDesk:
    """The HPMN's batch intake for one agreement (see the module docstring)."""

    __slots__ = ("_broken", "_lock", "_validator", "agreement", "home", "partner", "store")

    def __init__(
        self,
        store: RoamingStore,
        agreement: SignedAgreement,
        signer: Signer,
        *,
        window_capacity: int = WINDOW_CAPACITY,
    ) -> None:
        a = agreement.agreement
        self.store = store
        self.agreement = agreement
        self.home = next(p.tadig for p in a.parties if p.key == signer.public_key)
        self.partner = a.counterparty(self.home).tadig
        store.put_agreement(agreement)
        bars = BarList(a)
        for bar in store.bars():
            bars.add(bar)
        self._validator = Validator(
            a,
            signer,
            next_sequence=store.next_expected(self.partner, self.home),
            window=store.window(window_capacity),
            bars=bars,
        )
        self._lock = threading.Lock()
        self._broken = False

    def receive_batch(self, batch: Batch, now: int) -> SignedAcknowledgement:
        """Validate `batch`, keep its acknowledgement if accepted, and return it; the stored
        acknowledgement if this batch was acknowledged before. Refusals raise (see
        `Validator.validate`) and change nothing."""
        header = batch.signed.header
        with self._lock:
            if self._broken:
                raise RoamingStoreError("a save failed: restart the desk")
            held = self.store.ack(header.sender, header.recipient, header.sequence)
            if held is not None and held.ack.batch == header.hash:
                return held
            signed = self._validator.validate(batch, now)
            if not signed.ack.accepted:
                return signed
            severe = {r.index for r in signed.ack.returns if r.severity is Severity.SEVERE}
            accepted = [r for i, r in enumerate(batch.records) if i not in severe]
            try:
                self.store.save_ack(signed, accepted, batch)
            except BaseException:
                self._broken = True
                raise
            return signed

    def bar(self, signed: SignedBar) -> bool:
        """Take and keep a bar (checked: signed by the agreement's party it names); from then
        on the subscriber's later usage is returned BARRED. False if an earlier bar holds."""
        with self._lock:
            if not self._validator.bars.add(signed):
                return False
            self.store.save_bar(signed)
            return True

    @property
    def next_sequence(self) -> int:
        return self._validator.next_sequence
