"""A carrier's roaming desk for one agreement: the HPMN side that takes the partner's batches,
validates them and keeps the acknowledgements, and the VPMN side that keeps the partner's bars,
over the store (blocking; call it from a worker thread).

Bars go both ways through `bar`: one this carrier signed as HPMN returns the subscriber's later
usage BARRED (and the fraud watch raises USAGE_AFTER_BAR); one the partner signed reaches this
carrier as VPMN, and its gate (`BarList.admit`, at import and batching) then refuses the
subscriber's later usage (`BarredUsageError`). A bar counts from no earlier than it arrived,
less a grace (`BackdatedBarError`), and the first one kept for a subscriber holds. With a
`FraudWatch`, the accepted records of every batch (and the ones returned BARRED) go through the
fraud rules as they arrive and the alerts are published to its log; a duplicate or a record
returned to be corrected is not counted twice.

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

from .acknowledgement import ReturnCode, Severity
from .bars import BarList
from .errors import BarError, BatchError, RoamingStoreError
from .validation import Validator

if TYPE_CHECKING:
    from tangle.protocol.signature import Signer

    from .acknowledgement import SignedAcknowledgement
    from .agreement import SignedAgreement
    from .alerts import FraudWatch
    from .bars import SignedBar
    from .batch import Batch
    from .store import RoamingStore

WINDOW_CAPACITY: Final = 5_000_000


class CarrierDesk:
    """The HPMN's batch intake for one agreement (see the module docstring)."""

    __slots__ = (
        "_broken",
        "_lock",
        "_served",
        "_validator",
        "agreement",
        "home",
        "partner",
        "store",
        "watch",
    )

    def __init__(
        self,
        store: RoamingStore,
        agreement: SignedAgreement,
        signer: Signer,
        *,
        window_capacity: int = WINDOW_CAPACITY,
        watch: FraudWatch | None = None,
    ) -> None:
        a = agreement.agreement
        self.store = store
        self.agreement = agreement
        home = next((p.tadig for p in a.parties if p.key == signer.public_key), None)
        if home is None:
            raise BatchError("the desk's key is neither party's of the agreement")
        self.home = home
        self.partner = a.counterparty(self.home).tadig
        self.watch = watch
        store.put_agreement(agreement)
        held = store.bars()  # a store may hold the bars of other agreements too
        bars = BarList.restored(a, held, self.home)
        self._served = BarList.restored(a, held, self.partner)
        """The partner's bars: this carrier, as VPMN, refuses the subscribers' later usage."""
        if watch is not None:
            for _, imsi_hash, since in bars.items():
                watch.bar(imsi_hash, since)
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
        if self.watch is not None:
            # the accepted records, and the barred ones (usage after a bar is an alert of its
            # own); not the other returns, which come again corrected or were counted before
            barred = {r.index for r in signed.ack.returns if r.code is ReturnCode.BARRED}
            seen = [r for i, r in enumerate(batch.records) if i not in severe or i in barred]
            self.watch.observe(seen, now)
        return signed

    def bar(self, signed: SignedBar, now: int) -> bool:
        """Take and keep a bar that reached this carrier at `now` (checked: signed by the
        agreement's party it names, not dated before `now` less the grace). This carrier's own
        bar: the subscriber's later usage is returned BARRED; the partner's: this carrier's
        gate (`BarList.admit` at import and batching) refuses it. False if a bar of the
        subscriber is held already."""
        hpmn = signed.bar.hpmn
        if hpmn not in (self.home, self.partner):
            raise BarError(f"a bar of {hpmn}, not a party of this agreement")
        with self._lock:
            bars = self._validator.bars if hpmn == self.home else self._served
            if not bars.add(signed, now):
                return False
            self.store.save_bar(signed)
        if hpmn == self.home and self.watch is not None:
            self.watch.bar(signed.bar.imsi_hash, signed.bar.since)
        return True

    @property
    def next_sequence(self) -> int:
        return self._validator.next_sequence
