"""BIP-39 mnemonics and the wallet's root secret.

A mnemonic sentence encodes 128 to 256 bits of entropy plus a checksum of `bits / 32` bits (the
first bits of SHA-256 of the entropy) as 12 to 24 words of 11 bits each, from the English list
of 2048 words (taken from the `mnemonic` package, Trezor's reference implementation). The seed is
PBKDF2-HMAC-SHA512 over the NFKD-normalised sentence, salted with `"mnemonic" + passphrase`
(also NFKD), 2048 rounds, 64 bytes.

Input sentences are read leniently and checked strictly: NFKD, split on any whitespace, lower
case; then length, every word, and the checksum are checked in that order, each failure its own
error. The seed is always computed from the canonical sentence (single spaces, lower case), so a
phrase typed with extra spaces or capitals gives the same wallet as in any other BIP-39 wallet.

`WalletSecret` is the root everything else derives from: BIP-39 entropy with its passphrase, or
(for a wallet restored from elsewhere) a bare seed. It never shows its contents in a `repr`.
Python cannot reliably wipe memory, so secrets live as ordinary `bytes` until collected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from typing import Final

from mnemonic import Mnemonic

from .errors import (
    EntropyLengthError,
    InvalidSeedError,
    MnemonicChecksumError,
    MnemonicLengthError,
    UnknownWordError,
)
from .keys import MAX_SEED, MIN_SEED

WORDS: Final[tuple[str, ...]] = tuple(Mnemonic("english").wordlist)
"""The BIP-39 English word list, in index order."""
_INDEX: Final[dict[str, int]] = {word: i for i, word in enumerate(WORDS)}

ENTROPY_BITS: Final = (128, 160, 192, 224, 256)
WORD_COUNTS: Final = (12, 15, 18, 21, 24)
SEED_SIZE: Final = 64
PBKDF2_ROUNDS: Final = 2048

if len(WORDS) != 2048 or len(_INDEX) != 2048:  # a broken install of the word list
    raise ImportError("the BIP-39 English word list must have 2048 distinct words")


def _nfkd(text: str) -> str:
    return unicodedata.normalize("NFKD", text)


def _checksum_bits(entropy: bytes) -> int:
    """The first `len(entropy) * 8 / 32` bits of SHA-256(entropy), as an integer."""
    size = len(entropy) * 8 // 32
    return hashlib.sha256(entropy).digest()[0] >> (8 - size)


def generate_entropy(bits: int = 256) -> bytes:
    """Fresh entropy from the OS CSPRNG (`secrets`); `bits` is 128, 160, 192, 224 or 256."""
    if bits not in ENTROPY_BITS:
        raise EntropyLengthError(bits // 8)
    return secrets.token_bytes(bits // 8)


def entropy_to_mnemonic(entropy: bytes) -> str:
    """The mnemonic sentence (single spaces) that encodes `entropy`."""
    if len(entropy) * 8 not in ENTROPY_BITS:
        raise EntropyLengthError(len(entropy))
    checksum_size = len(entropy) * 8 // 32
    value = int.from_bytes(entropy, "big") << checksum_size | _checksum_bits(entropy)
    count = (len(entropy) * 8 + checksum_size) // 11
    indices = [(value >> (11 * (count - 1 - i))) & 0x7FF for i in range(count)]
    return " ".join(WORDS[i] for i in indices)


def generate_mnemonic(bits: int = 256) -> str:
    """A new mnemonic over `bits` of fresh entropy (24 words by default)."""
    return entropy_to_mnemonic(generate_entropy(bits))


def _words(mnemonic: str) -> list[str]:
    return _nfkd(mnemonic).lower().split()


def mnemonic_to_entropy(mnemonic: str) -> bytes:
    """The entropy a sentence encodes, after checking word count, each word, and the checksum."""
    words = _words(mnemonic)
    if len(words) not in WORD_COUNTS:
        raise MnemonicLengthError(len(words))
    value = 0
    for position, word in enumerate(words, start=1):
        index = _INDEX.get(word)
        if index is None:
            raise UnknownWordError(position)
        value = value << 11 | index
    checksum_size = len(words) * 11 // 33
    entropy_size = len(words) * 11 - checksum_size
    entropy = (value >> checksum_size).to_bytes(entropy_size // 8, "big")
    if not hmac.compare_digest(
        (value & ((1 << checksum_size) - 1)).to_bytes(1, "big"),
        _checksum_bits(entropy).to_bytes(1, "big"),
    ):
        raise MnemonicChecksumError()
    return entropy


def validate_mnemonic(mnemonic: str) -> None:
    """Raise the first `MnemonicError` the sentence has; return None if it is valid."""
    mnemonic_to_entropy(mnemonic)


def normalize_mnemonic(mnemonic: str) -> str:
    """The canonical spelling of a valid sentence: NFKD, lower case, single spaces."""
    return entropy_to_mnemonic(mnemonic_to_entropy(mnemonic))


def mnemonic_to_seed(mnemonic: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP-39 seed of a valid sentence and an optional passphrase."""
    sentence = normalize_mnemonic(mnemonic)
    salt = ("mnemonic" + _nfkd(passphrase)).encode("utf-8")
    return hashlib.pbkdf2_hmac(
        "sha512", _nfkd(sentence).encode("utf-8"), salt, PBKDF2_ROUNDS, SEED_SIZE
    )


class WalletSecret:
    """The root secret of a wallet: BIP-39 entropy and passphrase, or a bare seed.

    Build one with `generate`, `from_mnemonic`, `from_entropy` or `from_seed`. `seed` is what
    key derivation takes; `mnemonic` reveals the backup sentence (None for a bare seed).
    """

    __slots__ = ("_entropy", "_passphrase", "_seed")

    _entropy: bytes | None
    _passphrase: str
    _seed: bytes

    def __init__(self, *, entropy: bytes | None, passphrase: str, seed: bytes) -> None:
        """Internal; use the class methods, which check their inputs."""
        self._entropy = entropy
        self._passphrase = passphrase
        self._seed = seed

    @classmethod
    def generate(cls, bits: int = 256, passphrase: str = "") -> WalletSecret:
        """A new secret over fresh entropy."""
        return cls.from_entropy(generate_entropy(bits), passphrase)

    @classmethod
    def from_entropy(cls, entropy: bytes, passphrase: str = "") -> WalletSecret:
        sentence = entropy_to_mnemonic(entropy)
        return cls(
            entropy=bytes(entropy),
            passphrase=_nfkd(passphrase),
            seed=mnemonic_to_seed(sentence, passphrase),
        )

    @classmethod
    def from_mnemonic(cls, mnemonic: str, passphrase: str = "") -> WalletSecret:
        return cls.from_entropy(mnemonic_to_entropy(mnemonic), passphrase)

    @classmethod
    def from_seed(cls, seed: bytes) -> WalletSecret:
        """A bare seed of 16..64 bytes (SLIP-0010's range), e.g. from another wallet."""
        if not MIN_SEED <= len(seed) <= MAX_SEED:
            raise InvalidSeedError(len(seed))
        return cls(entropy=None, passphrase="", seed=bytes(seed))

    @property
    def seed(self) -> bytes:
        """The seed that SLIP-0010 derivation starts from."""
        return self._seed

    @property
    def entropy(self) -> bytes | None:
        """The BIP-39 entropy, or None for a bare seed."""
        return self._entropy

    @property
    def passphrase(self) -> str:
        """The BIP-39 passphrase (NFKD), "" when none or for a bare seed."""
        return self._passphrase

    @property
    def mnemonic(self) -> str | None:
        """The backup sentence, or None for a bare seed. Show it to the user, never log it."""
        return None if self._entropy is None else entropy_to_mnemonic(self._entropy)

    def __repr__(self) -> str:
        kind = "seed" if self._entropy is None else "mnemonic"
        return f"WalletSecret(kind={kind!r}, <redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WalletSecret):
            return NotImplemented
        return (
            hmac.compare_digest(self._seed, other._seed)
            and (self._entropy is None) == (other._entropy is None)
            and hmac.compare_digest(self._entropy or b"", other._entropy or b"")
            and hmac.compare_digest(self._passphrase.encode(), other._passphrase.encode())
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a WalletSecret is not picklable; store it with wallet.keystore")
