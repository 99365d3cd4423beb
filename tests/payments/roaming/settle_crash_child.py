"""An HPMN validating and acknowledging batches without end, to be SIGKILLed by
`test_settle_store.py`. Usage: python -m tests.payments.roaming.settle_crash_child DB

It resumes from the store (next expected sequence, duplicate window), and prints `acked N` after
the acknowledgement of batch N is saved: whatever it printed must survive the kill."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from payments.roaming.batch import Batch, seal
from payments.roaming.rating import rate
from payments.roaming.store import RoamingStore
from payments.roaming.validation import Validator
from tests.payments.roaming.settle_support import HOME_KEY, T0, VISITED_KEY, agreement, record

A = agreement()
PER_BATCH = 20


def batch(sequence: int) -> Batch:
    """Batch `sequence` of the VPMN: the same bytes every time it is asked for."""
    base = T0 + sequence * PER_BATCH
    records = tuple(record(up=100 + i, start=base + i) for i in range(PER_BATCH))
    rated = tuple(replace(r, charge=rate(A, r).charge) for r in records)
    return seal(A, VISITED_KEY, rated, sequence=sequence, now=base + PER_BATCH)


def main(path: Path) -> None:
    with RoamingStore(path) as store:
        validator = Validator(
            A,
            HOME_KEY,
            next_sequence=store.next_expected("FRAVV", "DEUAA"),
            window=store.window(1_000_000),
        )
        for _ in range(100_000):
            b = batch(validator.next_sequence)
            signed = validator.validate(b, now=b.signed.header.sealed_utc)
            store.save_ack(signed, accepted=b.records)
            print(f"acked {signed.ack.sequence}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
