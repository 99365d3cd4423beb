"""Keys and readings for the device tests: wallet address keys derived from fixed seeds."""

from __future__ import annotations

from tangle.protocol.device import DeviceId, device_id_of
from tangle.protocol.ids import blake2b_256
from wallet.devices.reading import Form, Reading, SignedReading, encode_signed, sign_reading
from wallet.keys import AddressKey, derive_address_key

NETWORK = 7


def device_key(n: int) -> AddressKey:
    """Device `n`'s key (a wallet address key; any `Signer` does)."""
    return derive_address_key(blake2b_256(b"device seed", n.to_bytes(4, "little")), 0, 0)


def device_id(n: int) -> DeviceId:
    """Device `n`'s registry id (from its first key, fixed over key rotations)."""
    return device_id_of(device_key(n).public_key)


def reading(
    n: int,
    counter: int,
    *,
    data: bytes = b"21.5C",
    network_id: int = NETWORK,
    key: AddressKey | None = None,
    form: Form = Form.PLAIN,
) -> SignedReading:
    """Device `n`'s reading number `counter`, signed."""
    content = Reading(
        network_id=network_id,
        device_id=device_id(n),
        counter=counter,
        timestamp_ms=1_700_000_000_000 + counter,
        stream=1,
        form=form,
        data=data,
    )
    return sign_reading(content, key or device_key(n))


def raw_reading(n: int, counter: int, **kwargs: object) -> bytes:
    return encode_signed(reading(n, counter, **kwargs))  # type: ignore[arg-type]
