"""Human-readable addresses: bech32m (BIP-350) of the 32-byte address, prefixed per network.

```
tp1<52 data characters><6 checksum characters>        mainnet
tptest1...                                           testnet
tpdev1...                                            devnet
```

The data part is the 32 address bytes (BLAKE2b-256 of the ed25519 public key) regrouped into
5-bit values, zero-padded at the end (52 characters), then a bech32m checksum over the prefix and
the data. Bech32m is BIP-173's bech32 with the final constant 0x2bc830a3, which fixes bech32's
weakness to inserted or deleted `q`s before a final `p`. The separator is the last `1`, so the
prefixes cannot be confused even though one is the start of another.

Encoding is lower case. Decoding accepts all-lower or all-upper case and checks, in order: the
overall length (at most 90), every character's range, mixed case, the separator, a non-empty
prefix, a checksum of 6 characters, every data character, the checksum, the prefix against the
expected network, the padding, and the payload length. Each failure is its own `AddressError`.

The node's API and the wallet share this codec (`wallet.address` re-exports it with the wallet's
errors), so both spell and read an address the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import (
    AddressLengthError,
    Bech32ChecksumError,
    Bech32FormatError,
    InvalidCharacterError,
    MixedCaseError,
    PaddingError,
    UnknownNetworkError,
    WrongPrefixError,
)

from .ids import Address

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

CHARSET: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
"""The 32 data characters; a character's position is its 5-bit value."""
_VALUES: Final = {char: value for value, char in enumerate(CHARSET)}
BECH32M_CONST: Final = 0x2BC830A3
_GENERATOR: Final = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
CHECKSUM_LENGTH: Final = 6
MAX_LENGTH: Final = 90
ADDRESS_SIZE: Final = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    """A network as far as addresses are concerned: its name and its address prefix."""

    name: str
    """What users and config files call it: "mainnet", "testnet", "devnet"."""
    hrp: str
    """The bech32m human-readable prefix of its addresses."""


MAINNET: Final = Network(name="mainnet", hrp="tp")
TESTNET: Final = Network(name="testnet", hrp="tptest")
DEVNET: Final = Network(name="devnet", hrp="tpdev")
NETWORKS: Final = (MAINNET, TESTNET, DEVNET)


def network_named(name: str) -> Network:
    """The network called `name`."""
    for network in NETWORKS:
        if network.name == name:
            return network
    raise UnknownNetworkError(name)


def network_with_prefix(hrp: str) -> Network:
    """The network whose addresses start with `hrp` (lower case)."""
    for network in NETWORKS:
        if network.hrp == hrp:
            return network
    raise UnknownNetworkError(hrp)


# -- bech32m ---------------------------------------------------------------------------------


def _polymod(values: Iterable[int]) -> int:
    """The BCH checksum state over GF(32) after feeding `values` (BIP-173)."""
    state = 1
    for value in values:
        top = state >> 25
        state = (state & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if top >> i & 1:
                state ^= generator
    return state


def _expand_prefix(hrp: str) -> list[int]:
    """The prefix as checksum input: high bits of each character, a zero, the low bits."""
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _checksum(hrp: str, data: Sequence[int]) -> list[int]:
    residue = _polymod([*_expand_prefix(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ BECH32M_CONST
    return [residue >> 5 * (5 - i) & 31 for i in range(CHECKSUM_LENGTH)]


def bech32m_encode(hrp: str, data: Sequence[int]) -> str:
    """The bech32m string of prefix `hrp` and 5-bit values `data`."""
    if not hrp:
        raise Bech32FormatError("empty human-readable prefix")
    for position, char in enumerate(hrp):
        if not 33 <= ord(char) <= 126:
            raise InvalidCharacterError(position, ord(char))
    if hrp.lower() != hrp and hrp.upper() != hrp:
        raise MixedCaseError()
    if len(hrp) + 1 + len(data) + CHECKSUM_LENGTH > MAX_LENGTH:
        raise Bech32FormatError(f"longer than {MAX_LENGTH} characters")
    if any(not 0 <= value < 32 for value in data):
        raise Bech32FormatError("data values are 5-bit")
    hrp = hrp.lower()
    return hrp + "1" + "".join(CHARSET[v] for v in (*data, *_checksum(hrp, data)))


def bech32m_decode(text: str) -> tuple[str, tuple[int, ...]]:
    """The lower-case prefix and the 5-bit data values (checksum removed) of a bech32m string."""
    if len(text) > MAX_LENGTH:
        raise Bech32FormatError(f"{len(text)} characters, more than {MAX_LENGTH}")
    for position, char in enumerate(text):
        if not 33 <= ord(char) <= 126:
            raise InvalidCharacterError(position, ord(char))
    if text.lower() != text and text.upper() != text:
        raise MixedCaseError()
    text = text.lower()
    separator = text.rfind("1")
    if separator == -1:
        raise Bech32FormatError("no separator '1'")
    if separator == 0:
        raise Bech32FormatError("empty human-readable prefix")
    if len(text) - separator - 1 < CHECKSUM_LENGTH:
        raise Bech32FormatError(f"checksum shorter than {CHECKSUM_LENGTH} characters")
    hrp = text[:separator]
    values = []
    for position in range(separator + 1, len(text)):
        value = _VALUES.get(text[position])
        if value is None:
            raise InvalidCharacterError(position, ord(text[position]))
        values.append(value)
    if _polymod([*_expand_prefix(hrp), *values]) != BECH32M_CONST:
        raise Bech32ChecksumError()
    return hrp, tuple(values[:-CHECKSUM_LENGTH])


def to_5bit(data: bytes) -> list[int]:
    """Bytes regrouped into 5-bit values, the last one zero-padded."""
    values = []
    accumulator = 0
    bits = 0
    for byte in data:
        accumulator = (accumulator << 8 | byte) & 0xFFF
        bits += 8
        while bits >= 5:
            bits -= 5
            values.append(accumulator >> bits & 31)
    if bits:
        values.append(accumulator << (5 - bits) & 31)
    return values


def from_5bit(values: Sequence[int]) -> bytes:
    """5-bit values regrouped into bytes; the leftover must be under 5 bits, all zero."""
    out = bytearray()
    accumulator = 0
    bits = 0
    for value in values:
        accumulator = (accumulator << 5 | value) & 0xFFF
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append(accumulator >> bits & 0xFF)
    if bits >= 5:
        raise PaddingError(f"{bits} bits of padding, at most 4 allowed")
    if accumulator & ((1 << bits) - 1):
        raise PaddingError("non-zero padding bits")
    return bytes(out)


# -- addresses -------------------------------------------------------------------------------


def encode_address(address: Address, network: Network) -> str:
    """The bech32m form of `address` on `network`."""
    if len(address) != ADDRESS_SIZE:
        raise AddressLengthError(len(address))
    return bech32m_encode(network.hrp, to_5bit(address))


def decode_address(text: str, network: Network) -> Address:
    """The address that `text` spells on `network`; another network's prefix is an error."""
    hrp, values = bech32m_decode(text)
    if hrp != network.hrp:
        raise WrongPrefixError(network.hrp, hrp)
    return _payload(values)


def parse_address(text: str) -> tuple[Network, Address]:
    """The network (found by prefix) and the address of a bech32m string."""
    hrp, values = bech32m_decode(text)
    network = network_with_prefix(hrp)
    return network, _payload(values)


def _payload(values: Sequence[int]) -> Address:
    payload = from_5bit(values)
    if len(payload) != ADDRESS_SIZE:
        raise AddressLengthError(len(payload))
    return Address(payload)
