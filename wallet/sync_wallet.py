"""`SyncWallet`: the blocking face of `Wallet` for simple device code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio

from ._base import KeyRing
from .account import Wallet
from .address import DEVNET
from .client import NodeClient
from .idempotency import account_fingerprint
from .state import WalletState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    import httpx

    from tangle.protocol.ids import Address

    from .account import SyncResult
    from .address import Network
    from .config import RetryPolicy, WalletConfig
    from .keys import AccountKey
    from .records import Balance, Received, Transfer

T = TypeVar("T")


class SyncWallet:
    """The blocking face of `Wallet`, for simple device code: each call runs in its own event
    loop (`anyio.run`, asyncio by default), with a fresh HTTP client. Close it when done."""

    __slots__ = (
        "_backend",
        "_config",
        "_keys",
        "_network",
        "_retry",
        "_state",
        "_transport",
        "_url",
    )

    def __init__(
        self,
        account: AccountKey,
        *,
        url: str,
        state_path: Path,
        network: Network = DEVNET,
        config: WalletConfig | None = None,
        retry: RetryPolicy | None = None,
        transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
    ) -> None:
        """`transport_factory` makes the transport of each call (default: real HTTP); each
        call runs on `backend`."""
        self._state = WalletState.open(state_path, account=account_fingerprint(account))
        self._keys = KeyRing(account)
        self._url = url
        self._network = network
        self._config = config
        self._retry = retry
        self._transport = transport_factory
        self._backend = backend

    def __enter__(self) -> SyncWallet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._state.close()

    def __repr__(self) -> str:
        return f"SyncWallet(account={self._keys.account.account}, state={self._state!r})"

    def _run(self, call: Callable[[Wallet], Awaitable[T]]) -> T:
        async def main() -> T:
            transport = None if self._transport is None else self._transport()
            async with NodeClient(self._url, transport=transport, retry=self._retry) as client:
                wallet = Wallet(
                    self._keys.account,
                    client=client,
                    state=self._state,
                    network=self._network,
                    config=self._config,
                    _keys=self._keys,
                )
                return await call(wallet)

        return anyio.run(main, backend=self._backend)

    def sync(self) -> SyncResult:
        return self._run(lambda w: w.sync())

    def balance(self) -> Balance:
        return self._run(lambda w: w.balance())

    def receive_address(self) -> str:
        return self._run(lambda w: w.receive_address())

    def send(self, recipient: str | Address, amount: int, **options: Any) -> Transfer:
        """`Wallet.send` (same keyword options)."""
        return self._run(lambda w: w.send(recipient, amount, **options))

    def resume(self, idempotency_key: str | bytes, **options: Any) -> Transfer:
        return self._run(lambda w: w.resume(idempotency_key, **options))

    def settle(self) -> list[Transfer]:
        return self._run(lambda w: w.settle())

    def transfers(self) -> list[Transfer]:
        return self._run(lambda w: w.transfers())

    def received(self) -> list[Received]:
        return self._run(lambda w: w.received())
