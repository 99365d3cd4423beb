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
│   ├── NonHardenedError           a non-hardened segment (ed25519 derives hardened only)
│   └── KeyLengthError             an extended key whose key or chain code is not 32 bytes
├── InvalidAddressError            a bech32m address the codec refused (`rule`: which rule)
├── SigningError                   a transfer that cannot be signed as asked
├── KeystoreError                  the encrypted key file
│   ├── KeystoreFormatError        not a keystore: bad JSON, missing or mistyped field
│   │   └── TruncatedKeystoreError the file ends early
│   ├── UnknownKeystoreVersionError a format version this code does not read
│   ├── UnsupportedAlgorithmError  a KDF or cipher not known, or parameters out of bounds
│   ├── WrongPasswordError         the password does not open the file
│   ├── TamperedKeystoreError      the right password, but the header or ciphertext changed
│   ├── EmptyPasswordError         refusing to encrypt under an empty password
│   ├── KeystoreExistsError        refusing to overwrite an existing file
│   └── NoKeystoreFileError        saving a wallet that has no file
├── WalletConfigError              a `WalletConfig` or `RetryPolicy` value out of range
│   └── NodeUrlError               a node URL that is not http(s)://HOST[:PORT][/PATH]
├── WalletStateError               the state file is unreadable, or belongs to another account
├── ClientError                    talking to a node (`wallet.client`); never a bare httpx error
│   ├── NodeUnavailableError       no usable answer after the retries: connection, timeout, 5xx;
│   │   │                          or an outcome unknown (a 429 after a lost answer)
│   │   └── EventStreamError       the event stream did not open, broke, ended or was dropped
│   ├── RateLimitedError           still 429 after the retries, none carried out (`code`, ...)
│   ├── RejectedError              the node refused the request (`code` as the node names it)
│   │   └── NotFoundError          404: no such message, milestone or route
│   └── InvalidResponseError       an answer that is not what the API documents
├── CliError                       `tanglepay wallet` failed (`exit_code`, `code`): every failure
│                                  on the command line ends as one
├── DeviceDataError                device readings, gateways, proofs, sealed data: its subtree
│                                  is drawn in `wallet.devices.errors`
└── SendError                      a transfer that cannot be made or did not complete
    ├── AmountError                an amount below the network's minimum output, or over u64
    ├── InsufficientFundsError     not enough unreserved funds (or in more than 128 inputs)
    ├── IdempotencyConflictError   an idempotency key reused for a different payment
    ├── TransferFailedError        the ledger marked the transfer conflicting (inputs spent)
    ├── TransferTimeoutError       not confirmed in time; still pending, a repeat resumes it
    ├── UnknownTransferError       no recorded transfer has that idempotency key or id
    ├── AmbiguousTransferError     a transaction id prefix that names several transfers
    ├── StillPendingError          not abandoned: its transaction may still confirm
    ├── AlreadyConfirmedError      not abandoned: a milestone confirmed it
    └── InputLimitError            a coin selection limit outside 1..128 inputs
```

The classes live in `_keys` (secrets: mnemonics to keystore), `_node` (configuration, state,
client, command line) and `_send` (sending); import them from here.
"""

from __future__ import annotations

from ._base import WalletError as WalletError
from ._keys import DerivationError as DerivationError
from ._keys import EmptyPasswordError as EmptyPasswordError
from ._keys import EntropyLengthError as EntropyLengthError
from ._keys import InvalidAddressError as InvalidAddressError
from ._keys import InvalidPathError as InvalidPathError
from ._keys import InvalidSeedError as InvalidSeedError
from ._keys import KeyLengthError as KeyLengthError
from ._keys import KeystoreError as KeystoreError
from ._keys import KeystoreExistsError as KeystoreExistsError
from ._keys import KeystoreFormatError as KeystoreFormatError
from ._keys import MnemonicChecksumError as MnemonicChecksumError
from ._keys import MnemonicError as MnemonicError
from ._keys import MnemonicLengthError as MnemonicLengthError
from ._keys import NoKeystoreFileError as NoKeystoreFileError
from ._keys import NonHardenedError as NonHardenedError
from ._keys import SigningError as SigningError
from ._keys import TamperedKeystoreError as TamperedKeystoreError
from ._keys import TruncatedKeystoreError as TruncatedKeystoreError
from ._keys import UnknownKeystoreVersionError as UnknownKeystoreVersionError
from ._keys import UnknownWordError as UnknownWordError
from ._keys import UnsupportedAlgorithmError as UnsupportedAlgorithmError
from ._keys import WrongPasswordError as WrongPasswordError
from ._node import ClientError as ClientError
from ._node import CliError as CliError
from ._node import EventStreamError as EventStreamError
from ._node import InvalidResponseError as InvalidResponseError
from ._node import NodeUnavailableError as NodeUnavailableError
from ._node import NodeUrlError as NodeUrlError
from ._node import NotFoundError as NotFoundError
from ._node import RateLimitedError as RateLimitedError
from ._node import RejectedError as RejectedError
from ._node import WalletConfigError as WalletConfigError
from ._node import WalletStateError as WalletStateError
from ._send import AlreadyConfirmedError as AlreadyConfirmedError
from ._send import AmbiguousTransferError as AmbiguousTransferError
from ._send import AmountError as AmountError
from ._send import IdempotencyConflictError as IdempotencyConflictError
from ._send import InputLimitError as InputLimitError
from ._send import InsufficientFundsError as InsufficientFundsError
from ._send import SendError as SendError
from ._send import StillPendingError as StillPendingError
from ._send import TransferFailedError as TransferFailedError
from ._send import TransferTimeoutError as TransferTimeoutError
from ._send import UnknownTransferError as UnknownTransferError
