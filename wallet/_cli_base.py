"""What the commands of `tanglepay wallet` (`wallet.cli`) share: exit codes, the failure and
outcome types, the parsed invocation, and the wallet opened on the node."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .account import Wallet

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from .address import Network
    from .config import RetryPolicy
    from .keystore import UnlockedWallet

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_WRONG_PASSWORD: Final = 3
EXIT_NO_WALLET: Final = 4
EXIT_NODE_UNAVAILABLE: Final = 5
EXIT_INSUFFICIENT_FUNDS: Final = 6
EXIT_TIMEOUT: Final = 7
EXIT_TRANSFER_FAILED: Final = 8
EXIT_NOT_ABANDONED: Final = 9
EXIT_INTERRUPTED: Final = 130

PROG: Final = "tanglepay wallet"
KEYSTORE_NAME: Final = "keystore.json"
OFFLINE_URL: Final = "http://offline.invalid"
"""The node URL of a wallet opened without `--node`; offline commands never contact it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a command produced: the JSON object, and the lines for people."""

    data: dict[str, Any]
    """Printed as one JSON object with `--json` (with `command` added)."""
    lines: list[str]
    """Printed otherwise."""


@dataclass(slots=True, kw_only=True)
class Context:
    """The parsed invocation."""

    directory: Path
    """Where the keystore and state files live."""
    node: str | None
    """The node's API URL, if any."""
    network: Network | None
    """The network asked for (None: the keystore's)."""
    account: int
    """The BIP-44 account."""
    retry: RetryPolicy
    """How requests are retried."""
    json: bool
    """One JSON object on stdout."""
    hint: str = ""
    """Appended to an error message (the idempotency key of a send under way)."""

    @property
    def keystore(self) -> Path:
        return self.directory / KEYSTORE_NAME

    def state_path(self, network: Network) -> Path:
        return self.directory / f"{network.name}-account{self.account}.db"


def network_of(ctx: Context, unlocked: UnlockedWallet) -> Network:
    return ctx.network or unlocked.network


@contextlib.asynccontextmanager
async def open_wallet(ctx: Context, unlocked: UnlockedWallet) -> AsyncIterator[Wallet]:
    """The account's wallet on the node (or offline), its 0600 state next to the keystore."""
    network = network_of(ctx, unlocked)
    state_path = ctx.state_path(network)
    os.close(os.open(state_path, os.O_WRONLY | os.O_CREAT, 0o600))
    async with Wallet.open(
        unlocked.account(ctx.account),
        url=ctx.node or OFFLINE_URL,
        state_path=state_path,
        network=network,
        retry=ctx.retry,
    ) as opened:
        yield opened
