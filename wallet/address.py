"""Human-readable addresses: the bech32m codec and network prefixes of `tangle.protocol.bech32` (see
there for the format), with the wallet's errors.

The codec lives in `tangle` so that the node's API reads and writes addresses exactly as the
wallet does; here each call raises an `InvalidAddressError` whose `rule` is the codec's error
(`MixedCaseError`, `WrongPrefixError`, ...), so callers catch `WalletError`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from tangle import errors as tangle_errors
from tangle.protocol import bech32
from tangle.protocol.bech32 import ADDRESS_SIZE as ADDRESS_SIZE
from tangle.protocol.bech32 import BECH32M_CONST as BECH32M_CONST
from tangle.protocol.bech32 import CHARSET as CHARSET
from tangle.protocol.bech32 import CHECKSUM_LENGTH as CHECKSUM_LENGTH
from tangle.protocol.bech32 import DEVNET as DEVNET
from tangle.protocol.bech32 import MAINNET as MAINNET
from tangle.protocol.bech32 import MAX_LENGTH as MAX_LENGTH
from tangle.protocol.bech32 import NETWORKS as NETWORKS
from tangle.protocol.bech32 import TESTNET as TESTNET
from tangle.protocol.bech32 import Network as Network  # noqa: TC001 (re-exported)
from tangle.protocol.bech32 import to_5bit as to_5bit

from .errors import InvalidAddressError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from tangle.protocol.ids import Address


@contextlib.contextmanager
def _wallet_errors() -> Iterator[None]:
    try:
        yield
    except tangle_errors.AddressError as exc:
        raise InvalidAddressError(exc) from None


def network_named(name: str) -> Network:
    """The network called `name`."""
    with _wallet_errors():
        return bech32.network_named(name)


def network_with_prefix(hrp: str) -> Network:
    """The network whose addresses start with `hrp` (lower case)."""
    with _wallet_errors():
        return bech32.network_with_prefix(hrp)


def bech32m_encode(hrp: str, data: Sequence[int]) -> str:
    """The bech32m string of prefix `hrp` and 5-bit values `data`."""
    with _wallet_errors():
        return bech32.bech32m_encode(hrp, data)


def bech32m_decode(text: str) -> tuple[str, tuple[int, ...]]:
    """The lower-case prefix and the 5-bit data values (checksum removed) of a bech32m string."""
    with _wallet_errors():
        return bech32.bech32m_decode(text)


def from_5bit(values: Sequence[int]) -> bytes:
    """5-bit values regrouped into bytes; the leftover must be under 5 bits, all zero."""
    with _wallet_errors():
        return bech32.from_5bit(values)


def encode_address(address: Address, network: Network) -> str:
    """The bech32m form of `address` on `network`."""
    with _wallet_errors():
        return bech32.encode_address(address, network)


def decode_address(text: str, network: Network) -> Address:
    """The address that `text` spells on `network`; another network's prefix is an error."""
    with _wallet_errors():
        return bech32.decode_address(text, network)


def parse_address(text: str) -> tuple[Network, Address]:
    """The network (found by prefix) and the address of a bech32m string."""
    with _wallet_errors():
        return bech32.parse_address(text)
