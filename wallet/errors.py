"""The error tree of the `wallet` package.

Every failure the package reports is one of these; callers catch `WalletError` to catch them all.
No error ever carries a secret: not a mnemonic word, a seed, a key or a password. Errors about a
mnemonic name the position of the bad word, never the word (a typo is most of a secret word).

```
WalletError
├── MnemonicError                  a BIP-39 sentence or entropy that cannot be used
│   ├── EntropyLengthError         entropy not 128..256 bits in steps of 32
│   ├── MnemonicLengthError        word count not 12, 15, 18, 21 or 24
│   ├── UnknownWordError           a word outside the English list (its position only)
│   └── MnemonicChecksumError      the checksum bits do not match the entropy
├── DerivationError                SLIP-0010 ed25519 derivation
│   ├── InvalidSeedError           a seed outside 16..64 bytes
│   ├── InvalidPathError           not of the form m/a'/b'/..., or an index out of range
│   └── NonHardenedError           a non-hardened segment (ed25519 derives hardened only)
├── AddressError                   bech32m addresses
│   ├── UnknownNetworkError        no network with that name or prefix
│   ├── Bech32Error                not a valid bech32m string
│   │   ├── MixedCaseError         upper and lower case letters together
│   │   ├── InvalidCharacterError  a character outside the HRP range or the data charset
│   │   ├── Bech32FormatError      no separator, empty prefix, short checksum, too long
│   │   ├── Bech32ChecksumError    the checksum does not verify (bech32 is not bech32m)
│   │   └── PaddingError           more than 4 padding bits, or non-zero padding
│   ├── WrongPrefixError           a valid address of another network
│   └── AddressLengthError         a payload that is not 32 bytes
├── SigningError                   a transfer that cannot be signed as asked
└── KeystoreError                  the encrypted key file
    ├── KeystoreFormatError        not a keystore: bad JSON, missing or mistyped field
    │   └── TruncatedKeystoreError the file ends early
    ├── UnknownKeystoreVersionError a format version this code does not read
    ├── UnsupportedAlgorithmError  a KDF or cipher not known, or parameters out of bounds
    ├── WrongPasswordError         the password does not open the file
    ├── TamperedKeystoreError      the right password, but the header or ciphertext changed
    ├── EmptyPasswordError         refusing to encrypt under an empty password
    └── KeystoreExistsError        refusing to overwrite an existing file
├── WalletConfigError              a `WalletConfig` or `RetryPolicy` value out of range
│   └── NodeUrlError               a node URL that is not http(s)://HOST[:PORT][/PATH]
├── WalletStateError               the state file is unreadable, or belongs to another account
├── ClientError                    talking to a node (`wallet.client`); never a bare httpx error
│   ├── NodeUnavailableError       no usable answer after the retries: connection, timeout, 5xx
│   │   └── EventStreamError       the event stream did not open, broke, ended or was dropped
│   ├── RateLimitedError           still 429 after the retries (`code`, `retry_after_s`)
│   ├── RejectedError              the node refused the request (`code` as the node names it)
│   │   └── NotFoundError          404: no such message, milestone or route
│   └── InvalidResponseError       an answer that is not what the API documents
└── SendError                      a transfer that cannot be made or did not complete
    ├── AmountError                an amount below the network's minimum output, or over u64
    ├── InsufficientFundsError     not enough unreserved funds (or in more than 128 inputs)
    ├── IdempotencyConflictError   an idempotency key reused for a different payment
    ├── TransferFailedError        the ledger marked the transfer conflicting (inputs spent)
    ├── TransferTimeoutError       not confirmed in time; still pending, a repeat resumes it
    ├── UnknownTransferError       no recorded transfer has that idempotency key or id
    ├── AmbiguousTransferError     a transaction id prefix that names several transfers
    ├── StillPendingError          not abandoned: its transaction may still confirm
    └── AlreadyConfirmedError      not abandoned: a milestone confirmed it
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class WalletError(Exception):
    """Root of every error raised by the `wallet` package."""


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


class AddressError(WalletError):
    """Failures to encode or decode a bech32m address."""


class UnknownNetworkError(AddressError):
    """No network has that name (or human-readable prefix)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown network {name!r}")
        self.name = name


class Bech32Error(AddressError):
    """The text is not a valid bech32m string (BIP-173 with the BIP-350 constant)."""


class MixedCaseError(Bech32Error):
    """Both upper and lower case letters; bech32 strings are all one case."""

    def __init__(self) -> None:
        super().__init__("bech32m string mixes upper and lower case")


class InvalidCharacterError(Bech32Error):
    """A prefix character outside ASCII 33..126, or a data character outside the charset."""

    def __init__(self, position: int, code_point: int) -> None:
        super().__init__(f"invalid character U+{code_point:04X} at position {position}")
        self.position = position
        self.code_point = code_point


class Bech32FormatError(Bech32Error):
    """No separator, an empty prefix, a checksum under 6 characters, or over 90 characters."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed bech32m string: {reason}")
        self.reason = reason


class Bech32ChecksumError(Bech32Error):
    """The checksum does not verify (a typo, or a bech32 rather than bech32m string)."""

    def __init__(self) -> None:
        super().__init__("bech32m checksum does not verify")


class PaddingError(Bech32Error):
    """Converting 5-bit groups to bytes left 5 or more bits, or non-zero bits."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid padding: {reason}")
        self.reason = reason


class SigningError(WalletError):
    """A transfer that cannot be signed as asked (signers and inputs do not match)."""


class WrongPrefixError(AddressError):
    """A valid bech32m string whose human-readable prefix is not the expected network's."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"address prefix {got!r} is not this network's {expected!r}")
        self.expected = expected
        self.got = got


class AddressLengthError(AddressError):
    """The decoded payload is not 32 bytes."""

    def __init__(self, size: int) -> None:
        super().__init__(f"address payload is {size} bytes, expected 32")
        self.size = size


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


# -- configuration and state -----------------------------------------------------------------


class WalletConfigError(WalletError):
    """A configuration value out of its range (`field` names it)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class NodeUrlError(WalletConfigError):
    """A node URL without an `http://` or `https://` scheme, or without a host. The URL is not
    repeated: it may carry credentials."""

    def __init__(self) -> None:
        super().__init__(
            "node URL", "expected http://HOST:PORT or https://HOST:PORT, e.g. http://127.0.0.1:8080"
        )


class WalletStateError(WalletError):
    """The wallet state file cannot be used: unreadable, a newer schema, another account or
    another network than the one it was created for."""


# -- talking to a node -----------------------------------------------------------------------


class ClientError(WalletError):
    """A request to a node that did not give a usable answer. Messages name the method and
    path, never the node's URL (which may carry credentials)."""


class NodeUnavailableError(ClientError):
    """No usable answer after the retries: the connection failed or timed out, or the node
    answered 5xx (`status`; `reason` holds the node's error code and message, if any)."""

    def __init__(self, request: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{request}: node unavailable: {reason}")
        self.request = request
        self.reason = reason
        self.status = status


class EventStreamError(NodeUnavailableError):
    """The event stream did not open in time, broke, ended, or the node dropped this client."""


class RateLimitedError(ClientError):
    """The node still answered 429 when the retries ran out; `retry_after_s` is its hint."""

    def __init__(self, request: str, code: str, retry_after_s: float | None) -> None:
        super().__init__(f"{request}: rate limited by the node ({code})")
        self.request = request
        self.code = code
        self.retry_after_s = retry_after_s


class RejectedError(ClientError):
    """The node refused the request; `code` is the node's error code (`insufficient_work`,
    `duplicate_payload`, `invalid_transaction`, ...), `status` the HTTP status."""

    def __init__(self, request: str, code: str, status: int, message: str) -> None:
        super().__init__(f"{request}: refused ({status} {code}): {message}")
        self.request = request
        self.code = code
        self.status = status
        self.node_message = message


class NotFoundError(RejectedError):
    """404: no such message, milestone or route."""


class InvalidResponseError(ClientError):
    """The node answered something the API does not document (not JSON, a missing field)."""

    def __init__(self, request: str, reason: str) -> None:
        super().__init__(f"{request}: unexpected answer: {reason}")
        self.request = request
        self.reason = reason


# -- sending ---------------------------------------------------------------------------------


class SendError(WalletError):
    """A transfer that cannot be made, or did not complete."""


class AmountError(SendError):
    """An amount below the network's minimum output (the dust deposit) or above u64."""

    def __init__(self, amount: int, minimum: int) -> None:
        if amount < minimum:
            why = f"amount {amount} is too small: an output must be at least {minimum}"
        else:
            why = f"amount {amount} is too large: at most 2**64 - 1"
        super().__init__(why)
        self.amount = amount
        self.minimum = minimum


class InsufficientFundsError(SendError):
    """The unreserved outputs cannot pay `needed` without dust change (change below
    `min_output`, the network's minimum output); `available` is their sum. `fragmented` is True
    when the sum would do but not within the input limit (128)."""

    def __init__(
        self, needed: int, available: int, *, min_output: int, fragmented: bool = False
    ) -> None:
        if available < needed:
            why = f"cannot pay {needed}: {available} available"
        elif fragmented:
            why = f"cannot pay {needed} from {available} available in at most 128 inputs"
        else:
            most = available - min_output
            options = f"exactly {available}" + (
                f", or at most {most}" if most >= min_output else ""
            )
            why = (
                f"cannot pay {needed} from {available} available: the change would be below "
                f"the minimum output of {min_output} (pay {options})"
            )
        super().__init__(why)
        self.needed = needed
        self.available = available
        self.min_output = min_output
        self.fragmented = fragmented


class IdempotencyConflictError(SendError):
    """An idempotency key already used for a payment with another recipient, amount or memo.
    The key itself is not repeated here: it may be meaningful to someone."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__(
            f"this idempotency key was used for another payment (transaction {transaction_id})"
        )
        self.transaction_id = transaction_id


class TransferFailedError(SendError):
    """The ledger will never apply the transfer: a milestone marked it conflicting (`reason`,
    e.g. `input_spent`: its inputs were spent elsewhere), or the node refused it outright."""

    def __init__(self, transaction_id: str, reason: str) -> None:
        super().__init__(f"transfer {transaction_id} failed: {reason}")
        self.transaction_id = transaction_id
        self.reason = reason


class TransferTimeoutError(SendError):
    """Not confirmed within `timeout_s`. The transfer stays pending in the wallet state: a
    repeat of the send with the same idempotency key, or `Wallet.resume`, picks it up again."""

    def __init__(self, transaction_id: str, timeout_s: float) -> None:
        super().__init__(f"transfer {transaction_id} not confirmed within {timeout_s:g} s")
        self.transaction_id = transaction_id
        self.timeout_s = timeout_s


class UnknownTransferError(SendError):
    """No recorded transfer has this idempotency key, nor a transaction id starting with it.
    What was asked for is not repeated: a key may be meaningful to someone."""

    def __init__(self) -> None:
        super().__init__(
            "no transfer has this idempotency key or a transaction id starting with it "
            "(see history)"
        )


class AmbiguousTransferError(SendError):
    """A transaction id prefix shared by several recorded transfers (`count`)."""

    def __init__(self, prefix: str, count: int) -> None:
        super().__init__(f"{count} transfers have a transaction id starting with {prefix}")
        self.prefix = prefix
        self.count = count


class StillPendingError(SendError):
    """Not abandoned: the transfer was handed to a node and its transaction may still confirm,
    so its inputs stay reserved. `expires_at` is the confirmed milestone index from which a
    node-backed check may find it expired (None: unknown without a node)."""

    def __init__(self, transaction_id: str, expires_at: int | None) -> None:
        when = (
            f"once milestone {expires_at} is confirmed without it, abandon it again with a node"
            if expires_at is not None
            else "abandon it with a node (--node) to learn whether it expired"
        )
        super().__init__(
            f"transfer {transaction_id} may still confirm, so it was not abandoned: resume it, "
            f"or {when}"
        )
        self.transaction_id = transaction_id
        self.expires_at = expires_at


class AlreadyConfirmedError(SendError):
    """Not abandoned: a milestone confirmed the transfer; its payment is made."""

    def __init__(self, transaction_id: str, index: int | None) -> None:
        super().__init__(
            f"transfer {transaction_id} was confirmed by milestone {index}; nothing to abandon"
        )
        self.transaction_id = transaction_id
        self.index = index
