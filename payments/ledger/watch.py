"""The watch service: closes or challenges on the ledger for a party that is offline.

`Watchtower` is the sans-I/O core. It is told the channels to guard (terms, the guarded party's
role, the latest proof that party holds) and what the ledger shows of each at a milestone, and
answers with the `Action` that protects the party:

- a one-way payee: when the channel is closing (the payer started a unilateral close, or the
  expiry is within `margin` milestones), `CloseWithProof` with the latest proof, which pays the
  payee at once;
- a two-way party: when the channel is closing and the ledger holds an older state than the
  party's, `Challenge` with the latest co-signed state (or, near the expiry of an open channel,
  `StartClose` with it);
- any party: once the close is mature, `Settle` (a payer gets its deposit back this way).

It asks for an action again at each observation of the same channel output until told that the
action was confirmed (`done`); a new output, after a top-up or a close step, can call for a new
one. `run_watch_service` is the trio adapter: each poll it reads the latest proofs from the
party's channel store (`read_records`), the channel outputs from a node, and submits what the
tower asks through a wallet (`funder.py`), holding the party's key, waiting for confirmation.
Errors are handled per channel: a node that is unavailable or rate-limits, a transaction that
failed (its input was spent first, say by the payer's own SETTLE) or was not confirmed in time,
or a channel gone in between, are logged and the channel is looked at again at the next poll
(a repeated submission of the same transaction resumes it: the wallet's idempotency key is its
id). Other errors end the service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio

from wallet.errors import (
    NodeUnavailableError,
    RateLimitedError,
    TransferFailedError,
    TransferTimeoutError,
)

from ..channels.state import Role
from ..channels.store import read_records
from ..errors import UnknownChannelError
from . import funder

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from tangle.protocol.channel import ChannelOutput, SignedBalanceProof
    from tangle.protocol.ids import ChannelId, OutputId, PublicKey
    from tangle.protocol.signature import Signer
    from wallet import NodeInfo, Wallet

    from ..channels.core import ChannelTerms

DEFAULT_MARGIN: Final = 3
"""Milestones before the expiry at which a guarded payee closes on its own."""

RETRIED: Final = (
    NodeUnavailableError,
    RateLimitedError,
    TransferFailedError,
    TransferTimeoutError,
    UnknownChannelError,
)
"""What `run_watch_service` logs and tries again at the next poll (per channel)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseWithProof:
    """Close a one-way channel as its payee with `proof`."""

    channel_id: ChannelId
    """The channel."""
    proof: SignedBalanceProof
    """The payee's latest proof."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartClose:
    """Start the close of a two-way channel, recording `proof` (the latest co-signed state)."""

    channel_id: ChannelId
    """The channel."""
    proof: SignedBalanceProof | None
    """The state to record, if newer than the ledger's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """Record a newer co-signed state of a closing two-way channel."""

    channel_id: ChannelId
    """The channel."""
    proof: SignedBalanceProof
    """The guarded party's latest state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settle:
    """Pay out a channel whose close is mature."""

    channel_id: ChannelId
    """The channel."""


Action = CloseWithProof | StartClose | Challenge | Settle


@dataclass(slots=True)
class _Guarded:
    terms: ChannelTerms
    role: Role
    latest: SignedBalanceProof | None
    acted_on: OutputId | None = None


class Watchtower:
    """Decides, per ledger observation, what protects each guarded party (module docstring)."""

    def __init__(self, *, margin: int = DEFAULT_MARGIN) -> None:
        self._margin = margin
        self._guarded: dict[ChannelId, _Guarded] = {}

    @property
    def channels(self) -> tuple[ChannelId, ...]:
        return tuple(self._guarded)

    def guard(self, terms: ChannelTerms, role: Role, latest: SignedBalanceProof | None) -> None:
        """Guard `role`'s side of a channel, or update the latest proof it holds."""
        found = self._guarded.get(terms.channel_id)
        if found is None:
            self._guarded[terms.channel_id] = _Guarded(terms=terms, role=role, latest=latest)
            return
        found.terms = terms
        if latest is not None and (
            found.latest is None or latest.proof.sequence > found.latest.proof.sequence
        ):
            found.latest = latest

    def observe(
        self,
        channel_id: ChannelId,
        found: tuple[OutputId, ChannelOutput] | None,
        index: int,
    ) -> Action | None:
        """What to do about a channel whose ledger output (id and output) at milestone `index`
        is `found` (None: settled, and no longer guarded)."""
        guarded = self._guarded.get(channel_id)
        if guarded is None:
            return None
        if found is None:
            del self._guarded[channel_id]
            return None
        output_id, output = found
        if guarded.acted_on == output_id:
            return None
        return self._decide(guarded, output, index + 1)

    def done(self, channel_id: ChannelId, output_id: OutputId) -> None:
        """The action asked for channel output `output_id` was confirmed: ask nothing more of
        that output (a node that still shows it has not caught up)."""
        guarded = self._guarded.get(channel_id)
        if guarded is not None:
            guarded.acted_on = output_id

    def _decide(self, guarded: _Guarded, output: ChannelOutput, at: int) -> Action | None:
        """The action for a transaction that lands at milestone `at` at the earliest."""
        latest = guarded.latest
        mature = at >= output.closes_at()
        closing_soon = output.is_closing(at + self._margin)
        if not output.bidirectional:
            if guarded.role is Role.PAYEE:
                if closing_soon and latest is not None and latest.proof.payee_balance > 0:
                    return CloseWithProof(channel_id=output.channel_id, proof=latest)
                return None
            return Settle(channel_id=output.channel_id) if mature else None
        if latest is not None and latest.proof.sequence > output.sequence and not mature:
            if output.is_closing(at):
                return Challenge(channel_id=output.channel_id, proof=latest)
            if closing_soon:
                return StartClose(channel_id=output.channel_id, proof=latest)
            return None
        return Settle(channel_id=output.channel_id) if mature else None


async def run_watch_service(
    tower: Watchtower,
    wallet: Wallet,
    keys: Mapping[PublicKey, Signer],
    *,
    store_path: Path | None = None,
    poll_s: float = 1.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Guard the tower's channels until cancelled: each `poll_s`, take the latest proofs from
    the channel store at `store_path` (if given), read each channel from the wallet's node, and
    submit the tower's actions signed with the guarded party's key from `keys` (`RETRIED`
    errors are logged and tried again at the next poll, see the module docstring)."""
    task_status.started()
    while True:
        if store_path is not None:
            for record in await trio.to_thread.run_sync(read_records, store_path):
                if record.terms.payer in keys or record.terms.payee in keys:
                    tower.guard(record.terms, record.role, record.latest)
        try:
            info = await wallet.client.info()
        except (NodeUnavailableError, RateLimitedError) as e:
            log.warning("watch: no ledger index (%s); trying again at the next poll", e)
        else:
            for channel_id in tower.channels:
                try:
                    await _watch(tower, wallet, keys, channel_id, info)
                except RETRIED as e:
                    log.warning(
                        "watch: channel %s: %s; trying again at the next poll", channel_id.hex(), e
                    )
        await trio.sleep(poll_s)


async def _watch(
    tower: Watchtower,
    wallet: Wallet,
    keys: Mapping[PublicKey, Signer],
    channel_id: ChannelId,
    info: NodeInfo,
) -> None:
    """Observe one channel and carry out the tower's action, if any, until it is confirmed."""
    found = await wallet.client.channel(channel_id)
    if found is None:
        tower.observe(channel_id, None, info.confirmed_milestone_index)
        return
    output = found.output
    action = tower.observe(channel_id, (found.output_id, output), info.confirmed_milestone_index)
    signer = keys.get(output.payee) or keys.get(output.payer)
    if action is not None and signer is not None:
        await _carry_out(action, wallet, signer, info.network_id)
        tower.done(channel_id, found.output_id)


async def _carry_out(action: Action, wallet: Wallet, signer: Signer, network_id: int) -> None:
    if isinstance(action, CloseWithProof):
        await funder.close_with_proof(wallet, signer, action.proof)
    elif isinstance(action, StartClose):
        await funder.start_close(wallet, signer, action.channel_id, network_id, action.proof)
    elif isinstance(action, Challenge):
        await funder.challenge(wallet, signer, action.proof)
    else:
        await funder.settle(wallet, signer, action.channel_id, network_id)
