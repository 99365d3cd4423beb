"""The ledger feed of a payee: what the ledger does to the channels a `PayeeService` holds.

A payee serving over TCP or HTTP only sees proofs; the ledger's side of its channels comes from
its node. `run_ledger_feed` polls the node each `poll_s` and tells the service, through the
service's own calls (each saved before it is adopted):

1. the confirmed milestone index (`NodeClient.info`) to `PayeeService.observe_index`, so the
   service stops taking payments within the challenge period of a channel's expiry;
2. for each one-way channel of the service's store that is not settled, the channel's output
   (`NodeClient.channel`):
   - a larger deposit or a later expiry (a confirmed top-up): `PayeeService.refresh` with the
     ledger's terms, so payments up to the new deposit are accepted;
   - closing at the index (the payer's START_CLOSE was applied, or the expiry passed):
     `PayeeService.advance(channel_id, CLOSING)`, so every later payment is refused
     (`ChannelClosedError`, REJECT code CHANNEL_CLOSED); the watch service (`watch.py`) then
     closes with the latest proof;
   - gone from the ledger (paid out): CLOSING, then SETTLED.

What to tell the service is decided by `ledger_update`, a pure function of the channel the
service holds, the ledger's output and the index; the loop around it is the only I/O. A node that
is unavailable or rate-limits is asked again at the next poll; other errors end the feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from wallet.errors import NodeUnavailableError, RateLimitedError

from ..channels.core import ChannelTerms
from ..channels.state import PAYING_STATES, ChannelState, Role

if TYPE_CHECKING:
    from tangle.protocol.channel import ChannelOutput
    from wallet.client import NodeClient

    from ..channels.core import ChannelCore
    from ..channels.service import PayeeService


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerUpdate:
    """What a payee's service must learn about one channel from the ledger."""

    terms: ChannelTerms | None
    """The ledger's terms, if they raise the deposit or move the expiry later (None: no top-up)."""
    states: tuple[ChannelState, ...]
    """The states to move the channel to, in order (empty: none)."""


def ledger_update(
    held: ChannelCore, found: ChannelOutput | None, network_id: int, index: int
) -> LedgerUpdate:
    """What the ledger's output `found` of the channel `held` (None: not on the ledger any more)
    at the confirmed milestone `index` means for the payee's service."""
    state = held.state
    if found is None:
        if state is ChannelState.SETTLED:
            return LedgerUpdate(terms=None, states=())
        if state is ChannelState.CLOSING:
            return LedgerUpdate(terms=None, states=(ChannelState.SETTLED,))
        return LedgerUpdate(terms=None, states=(ChannelState.CLOSING, ChannelState.SETTLED))
    terms = None
    if found.amount > held.terms.deposit or found.expiry > held.terms.expiry:
        terms = ChannelTerms.from_output(network_id, found)
    closing = found.is_closing(index) and state in PAYING_STATES
    return LedgerUpdate(terms=terms, states=(ChannelState.CLOSING,) if closing else ())


async def _poll(service: PayeeService, client: NodeClient) -> None:
    info = await client.info()
    service.observe_index(info.confirmed_milestone_index)
    for record in await service.store.records(Role.PAYEE):
        if record.terms.bidirectional or record.state is ChannelState.SETTLED:
            continue
        channel_id = record.terms.channel_id
        found = await client.channel(channel_id)
        held = await service.channel(channel_id)
        output = None if found is None else found.output
        update = ledger_update(held, output, info.network_id, info.confirmed_milestone_index)
        if update.terms is not None:
            await service.refresh(update.terms)
        for state in update.states:
            await service.advance(channel_id, state)


async def run_ledger_feed(
    service: PayeeService,
    client: NodeClient,
    *,
    poll_s: float = 1.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep `service` up to date with the ledger as `client`'s node sees it (module docstring)
    until cancelled; `task_status.started()` once the first poll has been applied."""
    started = False
    while True:
        try:
            await _poll(service, client)
        except (NodeUnavailableError, RateLimitedError):
            pass  # asked again at the next poll
        else:
            if not started:
                task_status.started()
                started = True
        await trio.sleep(poll_s)
