"""SLIP-0010 ed25519 key derivation, and the account and address keys of a wallet.

Master key: I = HMAC-SHA512(key="ed25519 seed", seed); the private key is I[:32], the chain code
I[32:]. Child i (hardened only, i >= 2**31): I = HMAC-SHA512(chain code, 0x00 || key || ser32(i)),
split the same way. ed25519 has no non-hardened (public) derivation in SLIP-0010, so every path
segment must carry a `'`; a bare index raises `NonHardenedError`.

Wallet keys follow BIP-44, all levels hardened:

```
m / 44' / 21584' / account' / change' / index'
```

The coin type is 21584 (0x5450, ASCII "TP"). It is not registered in SLIP-0044: it was absent
from the registry when chosen, and a mainnet release must register it (or another free value)
there. It is deliberately not IOTA's 4218 nor Shimmer's 4219: reusing a live network's coin type
would derive the same keys, and so link or endanger funds, for anyone who uses one mnemonic in
both wallets. `change` is 0 for receiving addresses and 1 for change, as in BIP-44.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final, Self

from nacl.signing import SigningKey

from tangle.protocol.ids import Address, PublicKey, Signature
from tangle.protocol.transaction import address_of

from .errors import InvalidPathError, InvalidSeedError, KeyLengthError, NonHardenedError

CURVE_KEY: Final = b"ed25519 seed"
HARDENED: Final = 0x8000_0000
"""Raw indices at or above this are hardened; `n'` means `n + HARDENED`."""
PURPOSE: Final = 44
COIN_TYPE: Final = 21584
MIN_SEED: Final = 16
MAX_SEED: Final = 64


def hardened(index: int) -> int:
    """The raw index of `index'` (0 <= index < 2**31)."""
    if not 0 <= index < HARDENED:
        raise InvalidPathError(str(index), "index must be in 0..2**31 - 1")
    return index + HARDENED


@dataclass(frozen=True, slots=True, kw_only=True)
class DerivationPath:
    """A path of hardened raw indices below the master key; `m` is the empty path."""

    indices: tuple[int, ...]
    """Raw indices, each in 2**31 .. 2**32 - 1."""

    def __post_init__(self) -> None:
        for index in self.indices:
            if not 0 <= index < 2 * HARDENED:
                raise InvalidPathError(str(index), "raw index must be a u32")
            if index < HARDENED:
                raise NonHardenedError(index)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse `m/44'/21584'/0'`; `h` and `H` are accepted for `'`."""
        parts = text.strip().split("/")
        if parts[0] != "m":
            raise InvalidPathError(text, "must start with 'm'")
        indices = []
        for part in parts[1:]:
            is_hardened = part[-1:] in ("'", "h", "H")
            digits = part[:-1] if is_hardened else part
            if not digits.isdecimal() or not digits.isascii() or digits != str(int(digits)):
                raise InvalidPathError(text, f"segment {part!r} is not a decimal index")
            number = int(digits)
            if number >= HARDENED:
                raise InvalidPathError(text, f"segment {part!r} is not below 2**31")
            if not is_hardened:
                raise NonHardenedError(number)
            indices.append(number + HARDENED)
        return cls(indices=tuple(indices))

    def child(self, index: int) -> DerivationPath:
        """This path extended by `index'` (an unhardened number, 0 <= index < 2**31)."""
        return DerivationPath(indices=(*self.indices, hardened(index)))

    def __truediv__(self, index: int) -> DerivationPath:
        return self.child(index)

    def __str__(self) -> str:
        return "/".join(["m", *(f"{index - HARDENED}'" for index in self.indices)])


MASTER: Final = DerivationPath(indices=())


def account_path(account: int, *, coin_type: int = COIN_TYPE) -> DerivationPath:
    """`m/44'/coin_type'/account'`."""
    return MASTER / PURPOSE / coin_type / account


def address_path(
    account: int, index: int, *, change: int = 0, coin_type: int = COIN_TYPE
) -> DerivationPath:
    """`m/44'/coin_type'/account'/change'/index'`."""
    return account_path(account, coin_type=coin_type) / change / index


class ExtendedKey:
    """A SLIP-0010 ed25519 node: a private key, its chain code, and the path it sits at."""

    __slots__ = ("_chain_code", "_key", "path")

    _key: bytes
    _chain_code: bytes
    path: DerivationPath

    def __init__(self, *, key: bytes, chain_code: bytes, path: DerivationPath) -> None:
        if len(key) != 32 or len(chain_code) != 32:
            raise KeyLengthError(len(key), len(chain_code))
        self._key = bytes(key)
        self._chain_code = bytes(chain_code)
        self.path = path

    @classmethod
    def from_seed(cls, seed: bytes) -> ExtendedKey:
        """The master node of a 16..64-byte seed."""
        if not MIN_SEED <= len(seed) <= MAX_SEED:
            raise InvalidSeedError(len(seed))
        digest = hmac.digest(CURVE_KEY, seed, hashlib.sha512)
        return cls(key=digest[:32], chain_code=digest[32:], path=MASTER)

    def child(self, raw_index: int) -> ExtendedKey:
        """The child at raw index `raw_index`, which must be hardened (>= 2**31)."""
        path = DerivationPath(indices=(*self.path.indices, raw_index))
        data = b"\x00" + self._key + raw_index.to_bytes(4, "big")
        digest = hmac.digest(self._chain_code, data, hashlib.sha512)
        return ExtendedKey(key=digest[:32], chain_code=digest[32:], path=path)

    def derive(self, path: DerivationPath) -> ExtendedKey:
        """The node `path` below this one (for the master node, the node at `path`)."""
        node = self
        for raw_index in path.indices:
            node = node.child(raw_index)
        return node

    @property
    def private_key(self) -> bytes:
        """The 32-byte ed25519 private key (RFC 8032 seed). Secret."""
        return self._key

    @property
    def chain_code(self) -> bytes:
        """The 32-byte chain code. Secret: with it and the key, every child is derivable."""
        return self._chain_code

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(bytes(SigningKey(self._key).verify_key))

    def __repr__(self) -> str:
        return f"ExtendedKey(path={self.path}, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an ExtendedKey is not picklable")


class AddressKey:
    """The signing key of one address, at `m/44'/coin'/account'/change'/index'`."""

    __slots__ = ("_signing_key", "address", "path", "public_key")

    _signing_key: SigningKey
    path: DerivationPath
    public_key: PublicKey
    address: Address

    def __init__(self, node: ExtendedKey) -> None:
        self._signing_key = SigningKey(node.private_key)
        self.path = node.path
        self.public_key = PublicKey(bytes(self._signing_key.verify_key))
        self.address = address_of(self.public_key)

    def sign(self, message: bytes) -> Signature:
        """The ed25519 signature of `message` (pass `signing_message(tx.id)` for a transaction)."""
        return Signature(self._signing_key.sign(message).signature)

    def __repr__(self) -> str:
        return f"AddressKey(path={self.path}, address={self.address.hex()})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an AddressKey is not picklable")


class AccountKey:
    """The node `m/44'/coin'/account'`, from which the account's address keys derive."""

    __slots__ = ("_node", "account", "coin_type")

    _node: ExtendedKey
    account: int
    coin_type: int

    def __init__(self, seed: bytes, account: int, *, coin_type: int = COIN_TYPE) -> None:
        self._node = ExtendedKey.from_seed(seed).derive(account_path(account, coin_type=coin_type))
        self.account = account
        self.coin_type = coin_type

    def address_key(self, index: int, *, change: int = 0) -> AddressKey:
        """The key of address `index'` on chain `change'` (0 receiving, 1 change)."""
        return AddressKey(self._node.child(hardened(change)).child(hardened(index)))

    def address(self, index: int, *, change: int = 0) -> Address:
        return self.address_key(index, change=change).address

    def __repr__(self) -> str:
        return f"AccountKey(path={self._node.path}, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an AccountKey is not picklable")


def derive_address_key(
    seed: bytes, account: int, index: int, *, change: int = 0, coin_type: int = COIN_TYPE
) -> AddressKey:
    """The key at `m/44'/coin_type'/account'/change'/index'` of `seed`."""
    path = address_path(account, index, change=change, coin_type=coin_type)
    return AddressKey(ExtendedKey.from_seed(seed).derive(path))
