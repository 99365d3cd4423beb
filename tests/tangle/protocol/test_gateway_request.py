"""A gateway's request signature: bound to the network, the kind of item and every item in
order; its headers read strictly."""

from __future__ import annotations

import pytest

from coordinator.signers import KeySigner
from tangle.errors import InvalidFieldError
from tangle.protocol.device import device_id_of
from tangle.protocol.gateway_request import (
    GATEWAY_HEADER,
    SIGNATURE_HEADER,
    ItemKind,
    gateway_headers,
    read_headers,
    signed_by,
)

GATEWAY = KeySigner(b"\x05" * 32)
ITEMS = [b"first", b"second"]


def _signed() -> tuple[bytes, bytes]:
    headers = gateway_headers(
        7, ItemKind.MESSAGES, ITEMS, device_id_of(GATEWAY.public_key), GATEWAY
    )
    claim = read_headers(headers)
    assert claim is not None
    return claim


def test_the_signature_covers_network_kind_and_items_in_order() -> None:
    gateway, signature = _signed()
    assert gateway == device_id_of(GATEWAY.public_key)
    key = GATEWAY.public_key
    assert signed_by(key, signature, 7, ItemKind.MESSAGES, ITEMS)
    assert not signed_by(key, signature, 8, ItemKind.MESSAGES, ITEMS)
    assert not signed_by(key, signature, 7, ItemKind.PAYLOAD, ITEMS)
    assert not signed_by(key, signature, 7, ItemKind.MESSAGES, ITEMS[::-1])
    assert not signed_by(key, signature, 7, ItemKind.MESSAGES, ITEMS[:1])
    assert not signed_by(KeySigner(b"\x06" * 32).public_key, signature, 7, ItemKind.MESSAGES, ITEMS)


@pytest.mark.parametrize(
    "headers",
    [
        {GATEWAY_HEADER: "00" * 32},
        {SIGNATURE_HEADER: "00" * 64},
        {GATEWAY_HEADER: "00" * 31, SIGNATURE_HEADER: "00" * 64},
        {GATEWAY_HEADER: "0 " * 32, SIGNATURE_HEADER: "00" * 64},
        {GATEWAY_HEADER: "zz" * 32, SIGNATURE_HEADER: "00" * 64},
        {GATEWAY_HEADER: "00" * 32, SIGNATURE_HEADER: "00" * 65},
    ],
)
def test_malformed_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidFieldError):
        read_headers(headers)


def test_no_headers_is_no_gateway() -> None:
    assert read_headers({"content-type": "application/json"}) is None
