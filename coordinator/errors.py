"""The error tree of the `coordinator` package.

```
CoordinatorError
├── NotEnoughSignersError   fewer committee keys at hand than the threshold in force
├── JournalError            the issuance journal is unusable or contradicts the ledger
└── NotConfirmedError       the node did not apply a milestone the coordinator issued
```
"""

from __future__ import annotations


class CoordinatorError(Exception):
    """Root of every error raised by the `coordinator` package."""


class NotEnoughSignersError(CoordinatorError):
    """Fewer keys of the key set in force are at hand than its threshold."""

    def __init__(self, index: int, available: int, threshold: int) -> None:
        super().__init__(
            f"milestone {index} needs {threshold} committee signatures, {available} signers at hand"
        )
        self.index = index
        self.available = available
        self.threshold = threshold


class JournalError(CoordinatorError):
    """The issuance journal cannot be used, or disagrees with the confirmed ledger."""


class NotConfirmedError(CoordinatorError):
    """The coordinator's own node did not apply the milestone it just issued."""
