"""The encrypted keystore: a wallet's root secret and metadata in one JSON file.

Version 1 of the file (UTF-8 JSON, keys sorted, hex in lower case, a final newline):

```
{
  "check": "<32 bytes>",
  "cipher": {"name": "xchacha20-poly1305", "nonce": "<24 bytes>"},
  "ciphertext": "<plaintext + 16-byte tag>",
  "format": "tanglepay-keystore",
  "kdf": {"mem_limit": 268435456, "name": "argon2id", "ops_limit": 3, "parallelism": 1,
          "salt": "<16 bytes>", "version": 19},
  "metadata": {"accounts": 1, "network": "devnet"},
  "version": 1
}
```

Key schedule: K = Argon2id(password, salt, t=ops_limit, m=mem_limit/1024 KiB, p=1), 64 bytes;
the password is NFC-normalised UTF-8. K[:32] is the XChaCha20-Poly1305 key and `check` is
BLAKE2b-256(K[32:]). The associated data is `b"tanglepay-keystore/1\\n"` followed by the
canonical JSON (sorted keys, no spaces, ASCII) of every field except `ciphertext`, so no header
field can change unnoticed. Plaintext: `u8 kind`, then for kind 1 `u8 n`, n bytes of BIP-39
entropy and the passphrase, NFKD UTF-8 (the rest); for kind 2 `u8 n` and an n-byte bare seed.

Opening checks, in order: UTF-8 and JSON, the `format` marker, the version, the exact fields and
their types, the algorithm names and bounds; then the password against `check` (a mismatch is
`WrongPasswordError`; so is a changed salt or KDF parameter, which no check can tell apart), then
the AEAD tag (a failure with the right password is `TamperedKeystoreError`). `check` adds nothing
for an attacker: any password guess already costs one Argon2id run before the tag can be tried.

Default KDF: Argon2id (RFC 9106) with t=3, m=256 MiB, p=1, libsodium's "moderate" preset; one
unlock took 0.3 to 0.45 s on one core of an AMD EPYC server. Devices with little memory can pass
`Argon2idParams(ops_limit=3, mem_limit=64 * MIB)` (RFC 9106's second recommended option with
p=1, about 0.07 s there); the file records the parameters it was written with.

Files are written atomically: a 0600 temporary file in the same directory, written, fsynced,
renamed over the target with `os.replace`, then the directory fsynced. Creating and exporting
refuse to replace an existing file (checked just before the rename, so two processes racing to
create one path are not told apart). OS errors (a missing file, a read-only directory) propagate
as `OSError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import nacl.exceptions
import nacl.pwhash.argon2id
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

from ._keystore_fields import json_hex, json_int, json_object, json_str, unclosed
from .address import Network, network_named
from .errors import (
    EmptyPasswordError,
    InvalidAddressError,
    KeystoreExistsError,
    KeystoreFormatError,
    NoKeystoreFileError,
    TamperedKeystoreError,
    TruncatedKeystoreError,
    UnknownKeystoreVersionError,
    UnsupportedAlgorithmError,
    WalletError,
    WrongPasswordError,
)
from .keys import HARDENED, AccountKey
from .mnemonic import WalletSecret

if TYPE_CHECKING:
    from collections.abc import Callable

FORMAT: Final = "tanglepay-keystore"
VERSION: Final = 1
KDF_NAME: Final = "argon2id"
ARGON2_VERSION: Final = 0x13
CIPHER_NAME: Final = "xchacha20-poly1305"
SALT_SIZE: Final = nacl.pwhash.argon2id.SALTBYTES
NONCE_SIZE: Final = 24
TAG_SIZE: Final = 16
CHECK_SIZE: Final = 32
KIB: Final = 1024
MIB: Final = 1024 * KIB
MIN_OPS: Final = 1
MAX_OPS: Final = 16
MIN_MEMORY: Final = 8 * KIB
MAX_MEMORY: Final = 1024 * MIB
"""Opening refuses parameters above these, so a hostile file cannot exhaust the machine."""

_AD_PREFIX: Final = b"tanglepay-keystore/1\n"
_KIND_ENTROPY: Final = 1
_KIND_SEED: Final = 2
_TOP_FIELDS: Final = frozenset(
    {"check", "cipher", "ciphertext", "format", "kdf", "metadata", "version"}
)
_KDF_FIELDS: Final = frozenset({"mem_limit", "name", "ops_limit", "parallelism", "salt", "version"})
_CIPHER_FIELDS: Final = frozenset({"name", "nonce"})
_METADATA_FIELDS: Final = frozenset({"accounts", "network"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Argon2idParams:
    """Argon2id cost parameters (libsodium: parallelism is always 1)."""

    ops_limit: int
    """Passes over memory (Argon2 `t`), 1..16."""
    mem_limit: int
    """Memory in bytes (Argon2 `m` is this / 1024), 8 KiB..1 GiB, a multiple of 1 KiB."""

    def __post_init__(self) -> None:
        if type(self.ops_limit) is not int or not MIN_OPS <= self.ops_limit <= MAX_OPS:
            raise UnsupportedAlgorithmError("kdf", f"ops_limit must be {MIN_OPS}..{MAX_OPS}")
        if (
            type(self.mem_limit) is not int
            or not MIN_MEMORY <= self.mem_limit <= MAX_MEMORY
            or self.mem_limit % KIB
        ):
            raise UnsupportedAlgorithmError(
                "kdf", "mem_limit must be a multiple of 1 KiB in 8 KiB..1 GiB"
            )


DEFAULT_KDF: Final = Argon2idParams(ops_limit=3, mem_limit=256 * MIB)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeystoreMetadata:
    """What a keystore records in the clear (but authenticated) next to the secret."""

    network: str
    """The network name ("mainnet", "testnet", "devnet"); it picks the address prefix."""
    accounts: int = 1
    """How many BIP-44 accounts the wallet uses, 1..2**31."""

    def __post_init__(self) -> None:
        network_named(self.network)
        if type(self.accounts) is not int or not 1 <= self.accounts <= HARDENED:
            raise KeystoreFormatError("metadata.accounts must be an integer in 1..2**31")


class UnlockedWallet:
    """An opened keystore: the root secret, its metadata, and the file it came from."""

    __slots__ = ("_secret", "metadata", "path")

    _secret: WalletSecret
    metadata: KeystoreMetadata
    path: Path | None

    def __init__(
        self, *, secret: WalletSecret, metadata: KeystoreMetadata, path: Path | None
    ) -> None:
        self._secret = secret
        self.metadata = metadata
        self.path = path

    @property
    def secret(self) -> WalletSecret:
        return self._secret

    @property
    def network(self) -> Network:
        return network_named(self.metadata.network)

    def account(self, index: int = 0) -> AccountKey:
        """The key of BIP-44 account `index'`."""
        return AccountKey(self._secret.seed, index)

    def with_metadata(self, metadata: KeystoreMetadata) -> UnlockedWallet:
        """The same secret and file with new metadata (write it with `save_keystore`)."""
        return UnlockedWallet(secret=self._secret, metadata=metadata, path=self.path)

    def __repr__(self) -> str:
        path = None if self.path is None else str(self.path)
        return (
            f"UnlockedWallet(path={path!r}, network={self.metadata.network!r}, "
            f"accounts={self.metadata.accounts}, secret=<redacted>)"
        )

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an UnlockedWallet is not picklable")


# -- sealing and unsealing (pure) ------------------------------------------------------------


def _password_bytes(password: str) -> bytes:
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _stretch(password: str, salt: bytes, kdf: Argon2idParams) -> tuple[bytes, bytes]:
    """The AEAD key and the password check value."""
    stretched = nacl.pwhash.argon2id.kdf(
        64, _password_bytes(password), salt, opslimit=kdf.ops_limit, memlimit=kdf.mem_limit
    )
    return stretched[:32], hashlib.blake2b(stretched[32:], digest_size=CHECK_SIZE).digest()


def _associated_data(header: dict[str, object]) -> bytes:
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _AD_PREFIX + canonical.encode("ascii")


def _encode_secret(secret: WalletSecret) -> bytes:
    if secret.entropy is None:
        return bytes([_KIND_SEED, len(secret.seed)]) + secret.seed
    entropy = secret.entropy
    return bytes([_KIND_ENTROPY, len(entropy)]) + entropy + secret.passphrase.encode("utf-8")


def _decode_secret(plaintext: bytes) -> WalletSecret:
    if len(plaintext) < 2 or len(plaintext) < 2 + plaintext[1]:
        raise KeystoreFormatError("decrypted secret is too short")
    kind, size = plaintext[0], plaintext[1]
    body, rest = plaintext[2 : 2 + size], plaintext[2 + size :]
    try:
        if kind == _KIND_ENTROPY:
            return WalletSecret.from_entropy(body, rest.decode("utf-8"))
        if kind == _KIND_SEED and not rest:
            return WalletSecret.from_seed(body)
    except (WalletError, UnicodeDecodeError):
        raise KeystoreFormatError("decrypted secret is malformed") from None
    raise KeystoreFormatError("decrypted secret has an unknown kind or trailing bytes")


def seal(
    secret: WalletSecret,
    metadata: KeystoreMetadata,
    password: str,
    *,
    kdf: Argon2idParams = DEFAULT_KDF,
    randbytes: Callable[[int], bytes] = secrets.token_bytes,
) -> bytes:
    """The version 1 keystore file of `secret` and `metadata`, encrypted under `password`."""
    if not password:
        raise EmptyPasswordError()
    salt = randbytes(SALT_SIZE)
    nonce = randbytes(NONCE_SIZE)
    key, check = _stretch(password, salt, kdf)
    header: dict[str, object] = {
        "check": check.hex(),
        "cipher": {"name": CIPHER_NAME, "nonce": nonce.hex()},
        "format": FORMAT,
        "kdf": {
            "mem_limit": kdf.mem_limit,
            "name": KDF_NAME,
            "ops_limit": kdf.ops_limit,
            "parallelism": 1,
            "salt": salt.hex(),
            "version": ARGON2_VERSION,
        },
        "metadata": {"accounts": metadata.accounts, "network": metadata.network},
        "version": VERSION,
    }
    ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(
        _encode_secret(secret), _associated_data(header), nonce, key
    )
    document = {**header, "ciphertext": ciphertext.hex()}
    return (json.dumps(document, sort_keys=True, indent=2) + "\n").encode("utf-8")


def unseal(data: bytes, password: str) -> tuple[WalletSecret, KeystoreMetadata]:
    """The secret and metadata of a keystore file's bytes, checked in the order above."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeystoreFormatError("not UTF-8") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if unclosed(text):
            raise TruncatedKeystoreError("the file ends inside the JSON object") from None
        raise KeystoreFormatError(f"not JSON ({error.msg} at offset {error.pos})") from None
    except (ValueError, RecursionError):  # a number too long to convert, nesting too deep
        raise KeystoreFormatError("JSON beyond this reader's limits") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeystoreFormatError(f"no {FORMAT!r} format marker")
    version = document.get("version")
    if type(version) is not int or version not in _READERS:
        raise UnknownKeystoreVersionError(version)
    return _READERS[version](document, password)


def _unseal_v1(document: dict[str, object], password: str) -> tuple[WalletSecret, KeystoreMetadata]:
    document = json_object(document, _TOP_FIELDS, "")
    kdf_obj = json_object(document["kdf"], _KDF_FIELDS, "kdf.")
    cipher_obj = json_object(document["cipher"], _CIPHER_FIELDS, "cipher.")
    metadata_obj = json_object(document["metadata"], _METADATA_FIELDS, "metadata.")

    if json_str(kdf_obj, "name", "kdf.") != KDF_NAME:
        raise UnsupportedAlgorithmError("kdf", f"{kdf_obj['name']!r} (only {KDF_NAME!r})")
    if json_int(kdf_obj, "version", "kdf.") != ARGON2_VERSION:
        raise UnsupportedAlgorithmError("kdf", "only Argon2 version 19 (0x13)")
    if json_int(kdf_obj, "parallelism", "kdf.") != 1:
        raise UnsupportedAlgorithmError("kdf", "only parallelism 1")
    kdf = Argon2idParams(
        ops_limit=json_int(kdf_obj, "ops_limit", "kdf."),
        mem_limit=json_int(kdf_obj, "mem_limit", "kdf."),
    )
    salt = json_hex(kdf_obj, "salt", "kdf.", SALT_SIZE)
    if json_str(cipher_obj, "name", "cipher.") != CIPHER_NAME:
        raise UnsupportedAlgorithmError("cipher", f"{cipher_obj['name']!r} (only {CIPHER_NAME!r})")
    nonce = json_hex(cipher_obj, "nonce", "cipher.", NONCE_SIZE)
    network = json_str(metadata_obj, "network", "metadata.")
    try:
        metadata = KeystoreMetadata(
            network=network, accounts=json_int(metadata_obj, "accounts", "metadata.")
        )
    except InvalidAddressError:
        raise KeystoreFormatError(f"metadata.network {network!r} is not a known network") from None
    check = json_hex(document, "check", "", CHECK_SIZE)
    ciphertext = json_hex(document, "ciphertext", "")
    if len(ciphertext) < TAG_SIZE + 2:
        raise KeystoreFormatError("ciphertext is shorter than a tag and a secret header")

    key, expected = _stretch(password, salt, kdf)
    if not hmac.compare_digest(check, expected):
        raise WrongPasswordError()
    header = {name: value for name, value in document.items() if name != "ciphertext"}
    try:
        plaintext = crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, _associated_data(header), nonce, key
        )
    except nacl.exceptions.CryptoError:
        raise TamperedKeystoreError() from None
    return _decode_secret(plaintext), metadata


_READERS: Final[
    dict[int, Callable[[dict[str, object], str], tuple[WalletSecret, KeystoreMetadata]]]
] = {1: _unseal_v1}
"""One reader per format version ever written; old readers stay, with a frozen fixture each."""


# -- files -----------------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write `data` to `path` (mode 0600) so that a crash leaves the old file or the new one."""
    directory = path.parent
    if not overwrite and path.exists():
        raise KeystoreExistsError(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def create_keystore(
    path: Path,
    secret: WalletSecret,
    password: str,
    *,
    metadata: KeystoreMetadata,
    kdf: Argon2idParams = DEFAULT_KDF,
) -> UnlockedWallet:
    """Write a new keystore at `path` (never over an existing file) and return it unlocked."""
    _write_atomically(path, seal(secret, metadata, password, kdf=kdf), overwrite=False)
    return UnlockedWallet(secret=secret, metadata=metadata, path=path)


def open_keystore(path: Path, password: str) -> UnlockedWallet:
    """Read and decrypt the keystore at `path`."""
    secret, metadata = unseal(path.read_bytes(), password)
    return UnlockedWallet(secret=secret, metadata=metadata, path=path)


def save_keystore(
    wallet: UnlockedWallet, password: str, *, kdf: Argon2idParams = DEFAULT_KDF
) -> None:
    """Re-encrypt `wallet` (new salt and nonce) over its own file, e.g. after new metadata."""
    if wallet.path is None:
        raise NoKeystoreFileError
    data = seal(wallet.secret, wallet.metadata, password, kdf=kdf)
    _write_atomically(wallet.path, data, overwrite=True)


def export_keystore(
    wallet: UnlockedWallet, path: Path, new_password: str, *, kdf: Argon2idParams = DEFAULT_KDF
) -> None:
    """Write a copy of `wallet` to `path` under `new_password`; never over an existing file."""
    data = seal(wallet.secret, wallet.metadata, new_password, kdf=kdf)
    _write_atomically(path, data, overwrite=False)


def import_keystore(
    source: Path,
    password: str,
    destination: Path,
    *,
    new_password: str | None = None,
    kdf: Argon2idParams = DEFAULT_KDF,
) -> UnlockedWallet:
    """Open the keystore at `source` and install it at `destination` (a new file), re-encrypted
    under `new_password` (default: the same password) with fresh salt and nonce."""
    imported = open_keystore(source, password)
    return create_keystore(
        destination,
        imported.secret,
        password if new_password is None else new_password,
        metadata=imported.metadata,
        kdf=kdf,
    )
