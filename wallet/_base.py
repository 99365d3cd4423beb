"""What every part of a wallet shares: its node client, its state, its keys, its configuration
and counters, and the helpers over them (`Wallet` in `account.py` is built on this)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import anyio
import anyio.to_thread

from .address import DEVNET, Network
from .config import WalletConfig
from .errors import ClientError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tangle.protocol.ids import Address

    from ._responses import AddressOutputs, NodeInfo
    from .client import NodeClient
    from .keys import AccountKey, AddressKey
    from .records import Transfer
    from .state import WalletState

T = TypeVar("T")
P = ParamSpec("P")


def now_ms() -> int:
    """Wall-clock milliseconds, as the state records times."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class Counters:
    """What a wallet did, for metrics and tests."""

    streams_opened: int = 0
    stream_failures: int = 0
    polls: int = 0
    attachments: int = 0
    reattachments: int = 0
    resubmissions: int = 0


@dataclass(slots=True)
class KeyRing:
    """Derived address keys and which (chain, index) each address is, shared by the wallets
    of one `SyncWallet`."""

    account: AccountKey
    keys: dict[tuple[int, int], AddressKey] = field(default_factory=dict)
    owners: dict[Address, tuple[int, int]] = field(default_factory=dict)

    def key(self, chain: int, index: int) -> AddressKey:
        found = self.keys.get((chain, index))
        if found is None:
            found = self.keys[chain, index] = self.account.address_key(index, change=chain)
            self.owners[found.address] = (chain, index)
        return found


class WalletBase:
    """The parts of one account on one node (see `account.Wallet`)."""

    __slots__ = ("_client", "_config", "_keys", "_network", "_network_id", "_state", "counters")

    def __init__(
        self,
        account: AccountKey,
        *,
        client: NodeClient,
        state: WalletState,
        network: Network = DEVNET,
        config: WalletConfig | None = None,
        _keys: KeyRing | None = None,
    ) -> None:
        self._keys = _keys or KeyRing(account)
        self._client = client
        self._state = state
        self._network = network
        self._config = config or WalletConfig()
        self._network_id: int | None = None
        self.counters = Counters()

    @property
    def client(self) -> NodeClient:
        return self._client

    @property
    def state(self) -> WalletState:
        return self._state

    @property
    def config(self) -> WalletConfig:
        return self._config

    async def _db(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A state call, in a worker thread (never abandoned: it always completes)."""
        return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs))

    async def _info(self) -> NodeInfo:
        """The node's status; the first answer binds the state to its network."""
        info = await self._client.info()
        if self._network_id != info.network_id:
            await self._db(self._state.bind_network, info.network_id)
            self._network_id = info.network_id
        return info

    async def _load_owners(self) -> None:
        for row in await self._db(self._state.addresses):
            if row.address not in self._keys.owners:
                self._keys.owners[row.address] = (row.chain, row.index)

    async def _reload(self, transfer: Transfer) -> Transfer:
        found = await self._db(self._state.transfer, transfer.key_hash)
        return transfer if found is None else found

    async def _query_outputs(self, addresses: Sequence[Address]) -> dict[Address, AddressOutputs]:
        """The outputs of each address, `sync_concurrency` queries at a time; the first
        `ClientError` cancels the rest and is raised as itself (not in an exception group)."""
        limiter = anyio.CapacityLimiter(self._config.sync_concurrency)
        found: dict[Address, AddressOutputs] = {}
        failures: list[ClientError] = []

        async def query(address: Address, cancel: anyio.CancelScope) -> None:
            async with limiter:
                try:
                    found[address] = await self._client.outputs(address)
                except ClientError as exc:
                    failures.append(exc)
                    cancel.cancel()

        async with anyio.create_task_group() as group:
            for address in addresses:
                group.start_soon(query, address, group.cancel_scope)
        if failures:
            raise failures[0]
        return found
