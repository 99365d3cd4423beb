"""Wallet keys: BIP-39 against Trezor's vectors, SLIP-0010 ed25519 against its published vectors,
bech32m against BIP-350, and properties of derivation and address round trips."""

from __future__ import annotations

import contextlib
import json
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tangle.errors import (
    AddressError,
    AddressLengthError,
    Bech32ChecksumError,
    Bech32FormatError,
    MixedCaseError,
    UnknownNetworkError,
    WrongPrefixError,
)
from tangle.protocol.ids import Address
from tangle.protocol.signature import is_valid
from tangle.protocol.transaction import address_of
from wallet import errors
from wallet.address import (
    DEVNET,
    MAINNET,
    NETWORKS,
    TESTNET,
    bech32m_encode,
    decode_address,
    encode_address,
    from_5bit,
    network_named,
    network_with_prefix,
    parse_address,
    to_5bit,
)
from wallet.keys import (
    COIN_TYPE,
    HARDENED,
    MASTER,
    AccountKey,
    DerivationPath,
    ExtendedKey,
    account_path,
    address_path,
    derive_address_key,
    hardened,
)
from wallet.mnemonic import (
    WORDS,
    WalletSecret,
    entropy_to_mnemonic,
    generate_mnemonic,
    mnemonic_to_entropy,
    mnemonic_to_seed,
    normalize_mnemonic,
    validate_mnemonic,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"


if TYPE_CHECKING:
    from collections.abc import Iterator


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


BIP39 = load("bip39-english.json")
SLIP10 = load("slip10_ed25519.json")

ABANDON = "abandon " * 11 + "about"
ABANDON_SEED = mnemonic_to_seed(ABANDON)


# -- BIP-39 ----------------------------------------------------------------------------------


def test_vector_copy_matches_the_shared_file() -> None:
    shared = SHARED_VECTORS / "bip39-english.json"
    if not shared.exists():
        pytest.skip(f"{shared} is absent (only the project's copy is used)")
    assert shared.read_bytes() == (VECTORS / "bip39-english.json").read_bytes()


def test_all_trezor_vectors_are_used() -> None:
    assert BIP39["passphrase"] == "TREZOR"
    assert len(BIP39["english"]) == 24


@pytest.mark.parametrize(("entropy", "mnemonic", "seed", "_xprv"), BIP39["english"])
def test_bip39_vector(entropy: str, mnemonic: str, seed: str, _xprv: str) -> None:
    assert entropy_to_mnemonic(bytes.fromhex(entropy)) == mnemonic
    assert mnemonic_to_entropy(mnemonic) == bytes.fromhex(entropy)
    assert mnemonic_to_seed(mnemonic, "TREZOR").hex() == seed
    secret = WalletSecret.from_mnemonic(mnemonic, "TREZOR")
    assert secret.seed.hex() == seed
    assert secret.mnemonic == mnemonic


def test_seed_without_passphrase() -> None:
    # The passphrase is part of the salt: "" and "TREZOR" give different seeds.
    assert mnemonic_to_seed(ABANDON, "TREZOR") != ABANDON_SEED
    assert len(ABANDON_SEED) == 64


@pytest.mark.parametrize("count", [0, 1, 11, 13, 23, 25])
def test_wrong_word_count(count: int) -> None:
    with pytest.raises(errors.MnemonicLengthError) as caught:
        validate_mnemonic(" ".join(["abandon"] * count))
    assert caught.value.count == count


def test_unknown_word_reports_its_position_only() -> None:
    with pytest.raises(errors.UnknownWordError) as caught:
        validate_mnemonic("abandon " * 4 + "abandonn " + "abandon " * 6 + "about")
    assert caught.value.position == 5
    assert "abandonn" not in str(caught.value)


def test_bad_checksum() -> None:
    with pytest.raises(errors.MnemonicChecksumError):
        validate_mnemonic("abandon " * 11 + "abandon")
    with pytest.raises(errors.MnemonicChecksumError):
        mnemonic_to_seed("zoo " * 11 + "zoo")


def test_checks_come_in_order() -> None:
    # A wrong length is reported before an unknown word, an unknown word before the checksum.
    with pytest.raises(errors.MnemonicLengthError):
        validate_mnemonic("notaword " * 13)
    with pytest.raises(errors.UnknownWordError):
        validate_mnemonic("notaword " + "zoo " * 11)


@pytest.mark.parametrize("size", [0, 15, 17, 33, 64])
def test_entropy_length(size: int) -> None:
    with pytest.raises(errors.EntropyLengthError):
        entropy_to_mnemonic(bytes(size))
    with pytest.raises(errors.EntropyLengthError):
        WalletSecret.from_entropy(bytes(size))


@pytest.mark.parametrize(("bits", "words"), [(128, 12), (160, 15), (192, 18), (224, 21), (256, 24)])
def test_generate(bits: int, words: int) -> None:
    sentence = generate_mnemonic(bits)
    assert len(sentence.split()) == words
    validate_mnemonic(sentence)
    assert generate_mnemonic(bits) != sentence


def test_generate_refuses_other_strengths() -> None:
    with pytest.raises(errors.EntropyLengthError):
        generate_mnemonic(100)
    assert len(WalletSecret.generate().mnemonic or "") > 0


def test_input_is_normalised() -> None:
    messy = "  " + ABANDON.upper().replace(" ", " \t\n ") + "  "
    assert normalize_mnemonic(messy) == ABANDON
    assert mnemonic_to_seed(messy) == ABANDON_SEED
    composed = unicodedata.normalize("NFC", "pässphrâse")
    decomposed = unicodedata.normalize("NFD", "pässphrâse")
    assert composed != decomposed
    assert mnemonic_to_seed(ABANDON, composed) == mnemonic_to_seed(ABANDON, decomposed)


def test_word_list() -> None:
    assert len(WORDS) == 2048
    assert WORDS[0] == "abandon"
    assert WORDS[-1] == "zoo"
    assert list(WORDS) == sorted(WORDS)


@given(st.sampled_from([16, 20, 24, 28, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_entropy_round_trip(entropy: bytes) -> None:
    sentence = entropy_to_mnemonic(entropy)
    assert len(sentence.split()) == len(entropy) * 3 // 4
    assert mnemonic_to_entropy(sentence) == entropy


# -- SLIP-0010 -------------------------------------------------------------------------------


SLIP10_CHAINS = [
    pytest.param(vector["seed"], chain, id=f"{vector['name']} {chain['path']}")
    for vector in SLIP10["vectors"]
    for chain in vector["chains"]
]


@pytest.mark.parametrize(("seed", "chain"), SLIP10_CHAINS)
def test_slip10_vector(seed: str, chain: dict[str, str]) -> None:
    path = DerivationPath.parse(chain["path"])
    assert str(path) == chain["path"]
    node = ExtendedKey.from_seed(bytes.fromhex(seed)).derive(path)
    assert node.path == path
    assert node.chain_code.hex() == chain["chain_code"]
    assert node.private_key.hex() == chain["private"]
    assert "00" + node.public_key.hex() == chain["public"]


def test_slip10_vectors_are_complete() -> None:
    assert [len(vector["chains"]) for vector in SLIP10["vectors"]] == [6, 6]


def test_child_by_child_equals_path() -> None:
    master = ExtendedKey.from_seed(bytes.fromhex(SLIP10["vectors"][0]["seed"]))
    stepwise = master.child(hardened(0)).child(hardened(1)).child(hardened(2))
    assert stepwise.private_key == master.derive(MASTER / 0 / 1 / 2).private_key


@pytest.mark.parametrize("text", ["m/44'/0", "m/0", "m/44'/4219'/0'/0'/1"])
def test_path_with_non_hardened_segment(text: str) -> None:
    with pytest.raises(errors.NonHardenedError):
        DerivationPath.parse(text)


def test_non_hardened_raw_index() -> None:
    master = ExtendedKey.from_seed(ABANDON_SEED)
    with pytest.raises(errors.NonHardenedError) as caught:
        master.child(5)
    assert caught.value.index == 5
    with pytest.raises(errors.NonHardenedError):
        DerivationPath(indices=(HARDENED, 7))


@pytest.mark.parametrize(
    "text",
    ["", "44'/0'", "M/0'", "m/", "m//0'", "m/x'", "m/01'", "m/2147483648'", "m/-1'", "m/1''"],
)
def test_invalid_path(text: str) -> None:
    with pytest.raises(errors.InvalidPathError):
        DerivationPath.parse(text)


def test_path_spellings() -> None:
    assert DerivationPath.parse("m/44h/21584H/0'") == account_path(0)
    assert DerivationPath.parse("m") == MASTER
    assert str(MASTER) == "m"
    with pytest.raises(errors.InvalidPathError):
        hardened(HARDENED)
    with pytest.raises(errors.InvalidPathError):
        DerivationPath(indices=(2**32,))


def test_bip44_layout() -> None:
    assert COIN_TYPE == 21584
    assert str(address_path(3, 7)) == "m/44'/21584'/3'/0'/7'"
    assert str(address_path(0, 1, change=1)) == "m/44'/21584'/0'/1'/1'"


@pytest.mark.parametrize("size", [0, 15, 65])
def test_seed_size(size: int) -> None:
    with pytest.raises(errors.InvalidSeedError):
        ExtendedKey.from_seed(bytes(size))
    with pytest.raises(errors.InvalidSeedError):
        WalletSecret.from_seed(bytes(size))


def test_known_first_address() -> None:
    """A regression vector for our whole scheme: BIP-39 "abandon ... about", no passphrase,
    m/44'/21584'/0'/0'/0'. If this changes, every wallet's addresses change."""
    key = derive_address_key(ABANDON_SEED, 0, 0)
    assert key.public_key.hex() == (
        "9712a9138980bccac5ad1673cdff7b736619ba9f9a510f81560e7d06ede92449"
    )
    assert encode_address(key.address, MAINNET) == (
        "tp13dhkhy0a5al7e6uv677kkq0ygnlvshhdfx29n2eqe25v3hla087qr2shuh"
    )
    assert encode_address(key.address, DEVNET) == (
        "tpdev13dhkhy0a5al7e6uv677kkq0ygnlvshhdfx29n2eqe25v3hla087q02pssm"
    )


def test_address_key_signs() -> None:
    key = AccountKey(ABANDON_SEED, 0).address_key(4)
    signature = key.sign(b"message")
    assert is_valid(key.public_key, b"message", signature)
    assert not is_valid(key.public_key, b"other", signature)
    assert key.address == address_of(key.public_key)


def test_repr_hides_key_material() -> None:
    master = ExtendedKey.from_seed(ABANDON_SEED)
    account = AccountKey(ABANDON_SEED, 0)
    key = account.address_key(0)
    secrets = [ABANDON_SEED.hex(), master.private_key.hex(), master.chain_code.hex()]
    for thing in (master, account, key, master.derive(account_path(0))):
        for text in (repr(thing), str(thing)):
            assert not any(secret in text for secret in secrets)
            assert "redacted" in text or "address=" in text


seeds = st.binary(min_size=16, max_size=64)
indices = st.integers(0, HARDENED - 1)


@given(seeds, st.integers(0, 5), indices, st.integers(0, 1))
def test_derivation_is_deterministic(seed: bytes, account: int, index: int, change: int) -> None:
    first = derive_address_key(seed, account, index, change=change)
    second = AccountKey(seed, account).address_key(index, change=change)
    assert first.address == second.address
    assert first.path == second.path == address_path(account, index, change=change)


@given(seeds, st.lists(indices, max_size=4), st.lists(indices, max_size=4))
def test_derivation_composes(seed: bytes, head: list[int], tail: list[int]) -> None:
    master = ExtendedKey.from_seed(seed)
    first = DerivationPath(indices=tuple(hardened(i) for i in head))
    second = DerivationPath(indices=tuple(hardened(i) for i in tail))
    whole = DerivationPath(indices=first.indices + second.indices)
    assert master.derive(first).derive(second).private_key == master.derive(whole).private_key
    assert DerivationPath.parse(str(whole)) == whole


# -- bech32m and addresses -------------------------------------------------------------------


@contextlib.contextmanager
def refused(rule: type[AddressError]) -> Iterator[pytest.ExceptionInfo[errors.InvalidAddressError]]:
    """Expect the wallet's `InvalidAddressError` whose `rule` is the codec's `rule`."""
    with pytest.raises(errors.InvalidAddressError) as caught:
        yield caught
    assert isinstance(caught.value.rule, rule)


def test_networks() -> None:
    assert [(n.name, n.hrp) for n in NETWORKS] == [
        ("mainnet", "tp"),
        ("testnet", "tptest"),
        ("devnet", "tpdev"),
    ]
    assert network_named("testnet") == TESTNET
    assert network_with_prefix("tpdev") == DEVNET
    with refused(UnknownNetworkError):
        network_named("moonnet")
    with refused(UnknownNetworkError):
        parse_address(bech32m_encode("bc", to_5bit(bytes(32))))


ADDRESS = Address(bytes(range(32)))


def test_address_shape() -> None:
    text = encode_address(ADDRESS, MAINNET)
    assert text.startswith("tp1")
    assert len(text) == 2 + 1 + 52 + 6
    assert decode_address(text.upper(), MAINNET) == ADDRESS


def test_wrong_prefix() -> None:
    with refused(WrongPrefixError) as caught:
        decode_address(encode_address(ADDRESS, DEVNET), MAINNET)
    assert (caught.value.rule.expected, caught.value.rule.got) == ("tp", "tpdev")


@pytest.mark.parametrize("size", [0, 20, 31, 33, 40])
def test_wrong_length(size: int) -> None:
    text = bech32m_encode("tp", to_5bit(bytes(size)))
    with refused(AddressLengthError) as caught:
        decode_address(text, MAINNET)
    assert isinstance(caught.value.rule, AddressLengthError)
    assert caught.value.rule.size == size


def test_mixed_case_and_bad_checksum() -> None:
    text = encode_address(ADDRESS, TESTNET)
    with refused(MixedCaseError):
        decode_address(text[:10] + text[10:].upper(), TESTNET)
    flipped = "q" if text[20] != "q" else "p"
    with refused(Bech32ChecksumError):
        decode_address(text[:20] + flipped + text[21:], TESTNET)


@given(st.binary(min_size=32, max_size=32).map(Address), st.sampled_from(NETWORKS))
def test_address_round_trip(address: Address, network: Any) -> None:
    text = encode_address(address, network)
    assert decode_address(text, network) == address
    assert parse_address(text) == (network, address)


@given(st.binary(max_size=50))
def test_5bit_round_trip(data: bytes) -> None:
    assert from_5bit(to_5bit(data)) == data


@given(st.binary(min_size=32, max_size=32).map(Address), st.integers(3, 60), st.data())
def test_single_substitution_is_detected(address: Address, position: int, data: Any) -> None:
    text = encode_address(address, MAINNET)
    replacement = data.draw(st.sampled_from("qpzry9x8gf2tvdw0s3jn54khce6mua7l"))
    if replacement == text[position]:
        return
    with refused(Bech32ChecksumError):
        decode_address(text[:position] + replacement + text[position + 1 :], MAINNET)


def test_an_extended_key_of_the_wrong_length_is_a_derivation_error_not_a_value_error() -> None:
    with pytest.raises(errors.KeyLengthError) as refused:
        ExtendedKey(key=bytes(31), chain_code=bytes(32), path=MASTER)
    assert isinstance(refused.value, errors.DerivationError)
    assert (refused.value.key_size, refused.value.chain_code_size) == (31, 32)


def test_bech32m_data_values_beyond_5_bits_are_a_format_error_not_a_value_error() -> None:
    with refused(Bech32FormatError):
        bech32m_encode("tp", [0, 32])


def test_the_wallet_raises_its_own_error_naming_the_codecs_rule() -> None:
    text = encode_address(ADDRESS, DEVNET)
    with refused(WrongPrefixError) as caught:
        decode_address(text, MAINNET)
    assert isinstance(caught.value, errors.WalletError)
    with refused(Bech32ChecksumError):
        decode_address(text[:-1] + ("q" if text[-1] != "q" else "p"), DEVNET)
