"""A channel's life cycle: the states, and the one table of transitions between them.

```
OPENING ──> OPEN ──> CLOSING ──> SETTLED
   │          │ ^        ^
   │          v │        │
   │        TOPPING_UP ──┘
   └─────────────────────> SETTLED   (the opening never confirmed: nothing to pay out)
```

* OPENING: the channel output is being confirmed; no payments yet.
* OPEN: payments flow.
* TOPPING_UP: a top-up transaction is in flight; payments still flow against the old deposit.
* CLOSING: a close started (cooperative, unilateral, or the expiry passed); no new payments,
  a two-way channel may still record a newer co-signed state during the challenge period.
* SETTLED: paid out on the ledger; final.

Every change of state goes through `transition`, which raises `InvalidTransitionError` for a pair
that is not in `TRANSITIONS` (as electrum's `lnchannel.state_transitions`). A state may always be
"entered" again from itself (an idempotent restart), except that SETTLED stays SETTLED.
"""

from __future__ import annotations

import enum
from typing import Final

from ..errors import InvalidTransitionError


class ChannelState(enum.IntEnum):
    """Where a channel is in its life; the integer value is what the store writes."""

    OPENING = 0
    OPEN = 1
    TOPPING_UP = 2
    CLOSING = 3
    SETTLED = 4


TRANSITIONS: Final[frozenset[tuple[ChannelState, ChannelState]]] = frozenset(
    {
        (ChannelState.OPENING, ChannelState.OPENING),
        (ChannelState.OPENING, ChannelState.OPEN),
        (ChannelState.OPENING, ChannelState.SETTLED),
        (ChannelState.OPEN, ChannelState.OPEN),
        (ChannelState.OPEN, ChannelState.TOPPING_UP),
        (ChannelState.OPEN, ChannelState.CLOSING),
        (ChannelState.TOPPING_UP, ChannelState.TOPPING_UP),
        (ChannelState.TOPPING_UP, ChannelState.OPEN),
        (ChannelState.TOPPING_UP, ChannelState.CLOSING),
        (ChannelState.CLOSING, ChannelState.CLOSING),
        (ChannelState.CLOSING, ChannelState.SETTLED),
    }
)
"""(from, to) pairs that are allowed; everything else is refused."""

PAYING_STATES: Final = frozenset({ChannelState.OPEN, ChannelState.TOPPING_UP})
"""States in which new payments (new balance proofs) may be made and accepted."""

UPDATABLE_STATES: Final = frozenset(
    {ChannelState.OPEN, ChannelState.TOPPING_UP, ChannelState.CLOSING}
)
"""States in which a two-way channel may still record a newer co-signed state."""


def transition(current: ChannelState, requested: ChannelState) -> ChannelState:
    """Return `requested` if `current -> requested` is allowed; else raise
    `InvalidTransitionError`."""
    if (current, requested) not in TRANSITIONS:
        raise InvalidTransitionError(current, requested)
    return requested


class Role(enum.IntEnum):
    """Which party of a channel this side is (party A pays, party B is paid)."""

    PAYER = 0
    PAYEE = 1
