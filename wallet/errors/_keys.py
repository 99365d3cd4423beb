"""Errors of the wallet's secrets: mnemonics, key derivation, addresses, signing, the
keystore."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import WalletError

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.errors import AddressError


# -- mnemonics -------------------------------------------------------------------------------


class MnemonicError(WalletError):
    """A BIP-39 mnemonic sentence or its entropy cannot be used."""


class EntropyLengthError(MnemonicError):
    """Entropy must be 16, 20, 24, 28 or 32 bytes."""

    def __init__(self, size: int) -> None:
        super().__init__(f"entropy is {size} bytes; BIP-39 takes 16, 20, 24, 28 or 32")
        self.size = size


class MnemonicLengthError(MnemonicError):
    """A sentence must have 12, 15, 18, 21 or 24 words."""

    def __init__(self, count: int) -> None:
        super().__init__(f"mnemonic has {count} words; BIP-39 uses 12, 15, 18, 21 or 24")
        self.count = count


class UnknownWordError(MnemonicError):
    """A word that is not in the BIP-39 English word list; `position` counts from 1."""

    def __init__(self, position: int) -> None:
        super().__init__(f"word {position} of the mnemonic is not in the BIP-39 English list")
        self.position = position


class MnemonicChecksumError(MnemonicError):
    """Every word is known, but the checksum bits do not match the entropy bits."""

    def __init__(self) -> None:
        super().__init__("mnemonic checksum does not match (a word is wrong or out of order)")


# -- derivation ------------------------------------------------------------------------------


class DerivationError(WalletError):
    """SLIP-0010 ed25519 key derivation failures."""


class InvalidSeedError(DerivationError):
    """SLIP-0010 takes a seed of 128 to 512 bits."""

    def __init__(self, size: int) -> None:
        super().__init__(f"seed is {size} bytes; SLIP-0010 takes 16 to 64")
        self.size = size


class InvalidPathError(DerivationError):
    """A derivation path that does not parse, or an index outside 0..2**31 - 1."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid derivation path {path!r}: {reason}")
        self.path = path
        self.reason = reason


class NonHardenedError(DerivationError):
    """ed25519 under SLIP-0010 has hardened derivation only; `index` is the raw index."""

    def __init__(self, index: int) -> None:
        super().__init__(
            f"index {index} is not hardened; SLIP-0010 ed25519 derives hardened children only"
        )
        self.index = index


# -- addresses -------------------------------------------------------------------------------


class InvalidAddressError(WalletError):
    """An address, prefix or network name the bech32m codec refused. `rule` is the codec's own
    error (a `tangle.errors.AddressError`: `MixedCaseError`, `Bech32ChecksumError`,
    `WrongPrefixError`, `UnknownNetworkError`, ...), which names the rule that failed."""

    def __init__(self, rule: AddressError) -> None:
        super().__init__(str(rule))
        self.rule = rule


class SigningError(WalletError):
    """A transfer that cannot be signed as asked (signers and inputs do not match)."""


# -- keystore --------------------------------------------------------------------------------


class KeystoreError(WalletError):
    """Failures reading or writing an encrypted keystore file."""


class KeystoreFormatError(KeystoreError):
    """The input is not a keystore of a known shape (bad JSON, missing or mistyped field)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a valid keystore: {reason}")
        self.reason = reason


class TruncatedKeystoreError(KeystoreFormatError):
    """The file ends before the keystore does."""


class UnknownKeystoreVersionError(KeystoreError):
    """A keystore format version this code does not read."""

    def __init__(self, version: object) -> None:
        super().__init__(f"unknown keystore version {version!r}")
        self.version = version


class UnsupportedAlgorithmError(KeystoreError):
    """A KDF or cipher this code does not implement, or parameters outside accepted bounds."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"unsupported {what}: {reason}")
        self.what = what
        self.reason = reason


class WrongPasswordError(KeystoreError):
    """The password (with the file's KDF parameters and salt) does not open the keystore."""

    def __init__(self) -> None:
        super().__init__("wrong password for this keystore")


class TamperedKeystoreError(KeystoreError):
    """The password is right but authentication failed: the header or ciphertext was changed."""

    def __init__(self) -> None:
        super().__init__("keystore authentication failed: header or ciphertext was modified")


class EmptyPasswordError(KeystoreError):
    """A keystore is never written under the empty password."""

    def __init__(self) -> None:
        super().__init__("refusing to encrypt a keystore under an empty password")


class KeystoreExistsError(KeystoreError):
    """Creating or exporting a keystore never replaces an existing file."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; refusing to overwrite it")
        self.path = path


class KeyLengthError(DerivationError):
    """An extended key built from a key or chain code that is not 32 bytes."""

    def __init__(self, key_size: int, chain_code_size: int) -> None:
        super().__init__(
            f"an ed25519 extended key is a 32-byte key and a 32-byte chain code, got "
            f"{key_size} and {chain_code_size}"
        )
        self.key_size = key_size
        self.chain_code_size = chain_code_size


class NoKeystoreFileError(KeystoreError):
    """Saving an unlocked wallet that was never read from or written to a file."""

    def __init__(self) -> None:
        super().__init__("this wallet has no file; use create_keystore")
