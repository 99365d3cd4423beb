"""The keystore: round trips, each failure its own error, atomic 0600 files, no secret in any
repr or message, and the frozen version 1 fixture that pins the format."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tangle.errors import UnknownNetworkError
from wallet import errors
from wallet.address import DEVNET, encode_address
from wallet.keystore import (
    DEFAULT_KDF,
    KIB,
    MIB,
    Argon2idParams,
    KeystoreMetadata,
    UnlockedWallet,
    create_keystore,
    export_keystore,
    import_keystore,
    open_keystore,
    save_keystore,
    seal,
    unseal,
)
from wallet.mnemonic import WalletSecret

if TYPE_CHECKING:
    from collections.abc import Callable

CHEAP = Argon2idParams(ops_limit=1, mem_limit=8 * KIB)
"""Test-only parameters; real files use DEFAULT_KDF."""

MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
PASSWORD = "hunter2 but longer"
SECRET = WalletSecret.from_mnemonic(MNEMONIC, "a passphrase")
METADATA = KeystoreMetadata(network="devnet", accounts=1)

FIXTURE = Path(__file__).resolve().parents[1] / "vectors" / "keystore_v1.json"
FIXTURE_SHA256 = "d670b5acd517b932811c5ca93091126c33b03dd0723bd034292392a479f53bdc"
FIXTURE_PASSWORD = "Grüße aus tanglepay"
FIXTURE_MNEMONIC = (
    "legal winner thank year wave sausage worth useful legal winner thank year "
    "wave sausage worth useful legal winner thank year wave sausage worth title"
)
FIXTURE_SEED = (
    "bc09fca1804f7e69da93c2f2028eb238c227f2e9dda30cd63699232578480a40"
    "21b146ad717fbb7e451ce9eb835f43620bf5c514db0f8add49f5d121449d3e87"
)


def sealed(**changes: Any) -> dict[str, Any]:
    """A cheap keystore as a JSON document, for tampering."""
    document: dict[str, Any] = json.loads(seal(SECRET, METADATA, PASSWORD, kdf=CHEAP))
    document.update(changes)
    return document


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()


def flip_hex(text: str, position: int = 0) -> str:
    return text[:position] + ("1" if text[position] == "0" else "0") + text[position + 1 :]


# -- the frozen fixture ----------------------------------------------------------------------


def test_fixture_is_frozen() -> None:
    """keystore_v1.json must never change: it is what version 1 files look like in the wild."""
    assert hashlib.sha256(FIXTURE.read_bytes()).hexdigest() == FIXTURE_SHA256


def test_fixture_opens() -> None:
    # The password is given decomposed (NFD); the file was written from the composed form.
    wallet = open_keystore(FIXTURE, unicodedata.normalize("NFD", FIXTURE_PASSWORD))
    assert wallet.secret.mnemonic == FIXTURE_MNEMONIC
    assert wallet.secret.passphrase == "TREZOR"
    assert wallet.secret.seed.hex() == FIXTURE_SEED  # Trezor's BIP-39 vector for this sentence
    assert wallet.metadata == KeystoreMetadata(network="devnet", accounts=2)
    assert wallet.network == DEVNET
    assert encode_address(wallet.account(0).address(0), DEVNET) == (
        "tpdev1ndtmgq57qh9xrt4fgj58m4l6dgyu2hlvaqupm5dwvq4haxgf2hsqz853d0"
    )
    assert encode_address(wallet.account(1).address(0), DEVNET) == (
        "tpdev1zvp97ytepr7xw07uvps58q5wndw6r3gl6kwnss3l7azswgwv0jts4w2s2k"
    )


def test_fixture_records_its_parameters() -> None:
    document = json.loads(FIXTURE.read_text())
    assert document["version"] == 1
    assert document["format"] == "tanglepay-keystore"
    assert document["kdf"] == {
        "mem_limit": 256 * MIB,
        "name": "argon2id",
        "ops_limit": 3,
        "parallelism": 1,
        "salt": document["kdf"]["salt"],
        "version": 19,
    }
    assert document["cipher"]["name"] == "xchacha20-poly1305"


def test_default_kdf_is_memory_hard() -> None:
    assert DEFAULT_KDF.mem_limit >= 64 * MIB
    document = json.loads(seal(SECRET, METADATA, PASSWORD))
    assert document["kdf"]["mem_limit"] == DEFAULT_KDF.mem_limit
    assert document["kdf"]["ops_limit"] == DEFAULT_KDF.ops_limit


# -- files -----------------------------------------------------------------------------------


def test_create_and_open(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    created = create_keystore(path, SECRET, PASSWORD, metadata=METADATA, kdf=CHEAP)
    opened = open_keystore(path, PASSWORD)
    assert opened.secret == created.secret == SECRET
    assert opened.metadata == METADATA
    assert opened.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wallet.json"]


def test_create_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    path.write_text("precious")
    with pytest.raises(errors.KeystoreExistsError):
        create_keystore(path, SECRET, PASSWORD, metadata=METADATA, kdf=CHEAP)
    assert path.read_text() == "precious"


def test_save_rewrites_metadata(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    wallet = create_keystore(path, SECRET, PASSWORD, metadata=METADATA, kdf=CHEAP)
    before = path.read_bytes()
    grown = wallet.with_metadata(KeystoreMetadata(network="devnet", accounts=3))
    save_keystore(grown, PASSWORD, kdf=CHEAP)
    assert path.read_bytes() != before
    assert open_keystore(path, PASSWORD).metadata.accounts == 3
    with pytest.raises(errors.NoKeystoreFileError):
        save_keystore(UnlockedWallet(secret=SECRET, metadata=METADATA, path=None), PASSWORD)


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wallet.json"
    wallet = create_keystore(path, SECRET, PASSWORD, metadata=METADATA, kdf=CHEAP)
    before = path.read_bytes()

    def crash(*_: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        save_keystore(wallet, "another password", kdf=CHEAP)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wallet.json"]


def test_export_and_import(tmp_path: Path) -> None:
    home = tmp_path / "wallet.json"
    backup = tmp_path / "backup.json"
    wallet = create_keystore(home, SECRET, PASSWORD, metadata=METADATA, kdf=CHEAP)
    export_keystore(wallet, backup, "backup password", kdf=CHEAP)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    with pytest.raises(errors.WrongPasswordError):
        open_keystore(backup, PASSWORD)
    assert open_keystore(backup, "backup password").secret == SECRET
    with pytest.raises(errors.KeystoreExistsError):
        export_keystore(wallet, backup, "again", kdf=CHEAP)

    restored = tmp_path / "restored.json"
    imported = import_keystore(
        backup, "backup password", restored, new_password="restored password", kdf=CHEAP
    )
    assert imported.secret == SECRET
    assert imported.path == restored
    assert open_keystore(restored, "restored password").metadata == METADATA
    same = import_keystore(backup, "backup password", tmp_path / "same.json", kdf=CHEAP)
    assert open_keystore(tmp_path / "same.json", "backup password").secret == same.secret
    with pytest.raises(errors.KeystoreExistsError):
        import_keystore(backup, "backup password", restored, kdf=CHEAP)


def test_bare_seed(tmp_path: Path) -> None:
    secret = WalletSecret.from_seed(bytes(range(64)))
    path = tmp_path / "seed.json"
    create_keystore(path, secret, PASSWORD, metadata=METADATA, kdf=CHEAP)
    opened = open_keystore(path, PASSWORD).secret
    assert opened == secret
    assert opened.mnemonic is None
    assert opened.seed == bytes(range(64))


# -- each failure its own error --------------------------------------------------------------


def test_wrong_password() -> None:
    with pytest.raises(errors.WrongPasswordError):
        unseal(encode(sealed()), "hunter3 but longer")


def test_empty_password() -> None:
    with pytest.raises(errors.EmptyPasswordError):
        seal(SECRET, METADATA, "", kdf=CHEAP)


def test_truncated_anywhere() -> None:
    data = seal(SECRET, METADATA, PASSWORD, kdf=CHEAP)
    end = data.rindex(b"}")
    for cut in range(end + 1):
        with pytest.raises(errors.TruncatedKeystoreError):
            unseal(data[:cut], PASSWORD)
    assert unseal(data[: end + 1], PASSWORD)[0] == SECRET  # only the final newline lost


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.update(ciphertext=flip_hex(d["ciphertext"], 5)), id="ciphertext"),
        pytest.param(lambda d: d.update(ciphertext=d["ciphertext"][:-2]), id="short-ciphertext"),
        pytest.param(lambda d: d["metadata"].update(accounts=9), id="accounts"),
        pytest.param(lambda d: d["metadata"].update(network="testnet"), id="network"),
        pytest.param(
            lambda d: d["cipher"].update(nonce=flip_hex(d["cipher"]["nonce"])), id="nonce"
        ),
    ],
)
def test_tampering_with_the_right_password(change: Any) -> None:
    document = sealed()
    change(document)
    with pytest.raises(errors.TamperedKeystoreError):
        unseal(encode(document), PASSWORD)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.update(check=flip_hex(d["check"])), id="check"),
        pytest.param(lambda d: d["kdf"].update(salt=flip_hex(d["kdf"]["salt"])), id="salt"),
        pytest.param(lambda d: d["kdf"].update(ops_limit=2), id="ops_limit"),
    ],
)
def test_tampering_with_the_key_schedule_reads_as_wrong_password(change: Any) -> None:
    document = sealed()
    change(document)
    with pytest.raises(errors.WrongPasswordError):
        unseal(encode(document), PASSWORD)


@pytest.mark.parametrize("version", [0, 2, "1", 1.0, True, None])
def test_unknown_version(version: object) -> None:
    with pytest.raises(errors.UnknownKeystoreVersionError):
        unseal(encode(sealed(version=version)), PASSWORD)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d["kdf"].update(name="scrypt"), errors.UnsupportedAlgorithmError),
        (lambda d: d["kdf"].update(version=16), errors.UnsupportedAlgorithmError),
        (lambda d: d["kdf"].update(parallelism=4), errors.UnsupportedAlgorithmError),
        (lambda d: d["kdf"].update(mem_limit=64 * 1024 * MIB), errors.UnsupportedAlgorithmError),
        (lambda d: d["kdf"].update(ops_limit=0), errors.UnsupportedAlgorithmError),
        (lambda d: d["cipher"].update(name="aes-256-gcm"), errors.UnsupportedAlgorithmError),
        (lambda d: d.pop("format"), errors.KeystoreFormatError),
        (lambda d: d.update(format="electrum"), errors.KeystoreFormatError),
        (lambda d: d.pop("check"), errors.KeystoreFormatError),
        (lambda d: d.update(label="extra"), errors.KeystoreFormatError),
        (lambda d: d["metadata"].update(accounts=True), errors.KeystoreFormatError),
        (lambda d: d["metadata"].update(accounts=0), errors.KeystoreFormatError),
        (lambda d: d["metadata"].update(network="moonnet"), errors.KeystoreFormatError),
        (lambda d: d["kdf"].update(salt="zz" * 16), errors.KeystoreFormatError),
        (lambda d: d["kdf"].update(salt="00" * 15), errors.KeystoreFormatError),
        (lambda d: d.update(check=d["check"].upper()), errors.KeystoreFormatError),
        (lambda d: d.update(cipher="xchacha20-poly1305"), errors.KeystoreFormatError),
        (lambda d: d.update(ciphertext="00" * 17), errors.KeystoreFormatError),
    ],
)
def test_malformed_header(change: Any, error: type[Exception]) -> None:
    document = sealed()
    change(document)
    with pytest.raises(error):
        unseal(encode(document), PASSWORD)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe{}",
        b"{not json}",
        b"[1, 2]",
        b"{}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"version": ' + b"9" * 5000 + b"}",
    ],
    ids=["not-utf8", "not-json", "array", "empty-object", "deep", "huge-number"],
)
def test_not_a_keystore(data: bytes) -> None:
    with pytest.raises(errors.KeystoreFormatError):
        unseal(data, PASSWORD)


def test_kdf_bounds_on_write() -> None:
    with pytest.raises(errors.UnsupportedAlgorithmError):
        Argon2idParams(ops_limit=1, mem_limit=4 * KIB)
    with pytest.raises(errors.UnsupportedAlgorithmError):
        Argon2idParams(ops_limit=1, mem_limit=8 * KIB + 1)
    with pytest.raises(errors.UnsupportedAlgorithmError):
        Argon2idParams(ops_limit=17, mem_limit=8 * KIB)


def test_metadata_is_checked() -> None:
    with pytest.raises(errors.InvalidAddressError) as unknown:
        KeystoreMetadata(network="moonnet")
    assert isinstance(unknown.value.rule, UnknownNetworkError)
    with pytest.raises(errors.KeystoreFormatError):
        KeystoreMetadata(network="devnet", accounts=0)


# -- no secret escapes -----------------------------------------------------------------------


def failures(tmp_path: Path) -> list[BaseException]:
    """Every error the flows above raise, caught, with the secrets of SECRET in play."""
    caught: list[BaseException] = []
    good = encode(sealed())
    attempts: list[Callable[[], object]] = [
        lambda: unseal(good, "wrong " + PASSWORD),
        lambda: unseal(good[:100], PASSWORD),
        lambda: unseal(encode(sealed(ciphertext=flip_hex(sealed()["ciphertext"]))), PASSWORD),
        lambda: unseal(encode(sealed(version=7)), PASSWORD),
        lambda: unseal(encode(sealed(check="xx")), PASSWORD),
        lambda: seal(SECRET, METADATA, "", kdf=CHEAP),
        lambda: WalletSecret.from_mnemonic(MNEMONIC.replace("yellow", "yellov")),
        lambda: WalletSecret.from_mnemonic(MNEMONIC.replace("yellow", "zoo")),
        lambda: WalletSecret.from_mnemonic(MNEMONIC + " legal"),
        lambda: create_keystore(tmp_path / "w.json", SECRET, PASSWORD, metadata=METADATA),
        lambda: pickle.dumps(SECRET),
    ]
    (tmp_path / "w.json").write_text("x")
    for attempt in attempts:
        try:
            attempt()
        except (errors.WalletError, TypeError) as error:
            caught.append(error)
        else:
            raise AssertionError("expected a failure")
    return caught


def test_no_secret_in_any_repr_or_message(tmp_path: Path) -> None:
    words = set(MNEMONIC.split())
    forbidden = {
        SECRET.seed.hex(),
        (SECRET.entropy or b"").hex(),
        PASSWORD,
        "a passphrase",
        MNEMONIC,
    }
    wallet = UnlockedWallet(secret=SECRET, metadata=METADATA, path=tmp_path / "w.json")
    texts = [repr(wallet), str(wallet), repr(SECRET), str(SECRET)]
    texts += [repr(wallet.account(0)), repr(wallet.account(0).address_key(0))]
    for error in failures(tmp_path):
        texts += [str(error), repr(error), *map(str, error.args)]
    for text in texts:
        assert not any(secret in text for secret in forbidden), text
        lowered = text.lower().replace("_", " ").replace(".", " ").replace("'", " ")
        assert not words & set(lowered.split()), text


def test_secrets_refuse_pickling() -> None:
    wallet = UnlockedWallet(secret=SECRET, metadata=METADATA, path=None)
    for thing in (SECRET, wallet, wallet.account(0), wallet.account(0).address_key(0)):
        with pytest.raises(TypeError):
            pickle.dumps(thing)


# -- properties ------------------------------------------------------------------------------

passwords = st.text(min_size=1, max_size=40)
secrets_ = st.one_of(
    st.builds(
        WalletSecret.from_entropy,
        st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        st.text(max_size=20),
    ),
    st.builds(WalletSecret.from_seed, st.binary(min_size=16, max_size=64)),
)
metadata_ = st.builds(
    KeystoreMetadata,
    network=st.sampled_from(["mainnet", "testnet", "devnet"]),
    accounts=st.integers(1, 2**31),
)


@settings(deadline=None, max_examples=60)
@given(secrets_, metadata_, passwords)
def test_round_trip(secret: WalletSecret, metadata: KeystoreMetadata, password: str) -> None:
    assert unseal(seal(secret, metadata, password, kdf=CHEAP), password) == (secret, metadata)


@settings(deadline=None, max_examples=60)
@given(secrets_, passwords, passwords)
def test_wrong_password_always_rejected(secret: WalletSecret, right: str, wrong: str) -> None:
    if unicodedata.normalize("NFC", right) == unicodedata.normalize("NFC", wrong):
        return
    with pytest.raises(errors.WrongPasswordError):
        unseal(seal(secret, METADATA, right, kdf=CHEAP), wrong)
