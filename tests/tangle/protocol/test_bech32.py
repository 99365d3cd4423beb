"""The bech32m codec the node and the wallet share (`tangle.protocol.bech32`), against BIP-350's
vectors and with the tangle errors a node's API turns into `invalid_address`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tangle import errors
from tangle.protocol.bech32 import (
    DEVNET,
    MAINNET,
    bech32m_decode,
    bech32m_encode,
    decode_address,
    encode_address,
    from_5bit,
    parse_address,
)
from tangle.protocol.ids import Address

BIP350: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "bip350.json").read_text()
)
ADDRESS = Address(bytes(range(32)))


def witness_program(text: str) -> bytes:
    """Decode as BIP-350 does for segwit: checksum, then the program after the version value."""
    _, data = bech32m_decode(text)
    return from_5bit(data[1:])


@pytest.mark.parametrize("text", BIP350["valid_bech32m"])
def test_bip350_valid(text: str) -> None:
    hrp, data = bech32m_decode(text)
    assert bech32m_encode(hrp, data) == text.lower()


@pytest.mark.parametrize(
    "case", BIP350["invalid_bech32m"] + BIP350["invalid_segwit"], ids=lambda c: c["reason"]
)
def test_bip350_invalid(case: dict[str, str]) -> None:
    with pytest.raises(getattr(errors, case["error"])):
        witness_program(case["string"])


def test_addresses_round_trip_and_name_their_network() -> None:
    text = encode_address(ADDRESS, DEVNET)
    assert text.startswith("tpdev1")
    assert decode_address(text.upper(), DEVNET) == ADDRESS
    assert parse_address(text) == (DEVNET, ADDRESS)
    with pytest.raises(errors.WrongPrefixError):
        decode_address(text, MAINNET)


@pytest.mark.parametrize("case", BIP350["valid_segwit_v1_plus"], ids=lambda c: c["address"][:12])
def test_bip350_segwit_programs(case: dict[str, str]) -> None:
    _, data = bech32m_decode(case["address"])
    program = from_5bit(data[1:])
    assert (bytes([0x50 + data[0], len(program)]) + program).hex() == case["script_pubkey"]
