"""Actors and signed registry records for the device registry tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordinator.signers import KeySigner
from tangle.protocol.device import (
    NO_GATEWAY,
    AdmitIssuer,
    Capability,
    DeviceId,
    DeviceRecord,
    IssuerRole,
    Register,
    device_id_of,
)
from tangle.protocol.device import sign_record as sign
from tangle.protocol.transaction import address_of
from tests.builders import NET

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.protocol.device import Body
    from tangle.protocol.ids import PublicKey


def signer(seed: int) -> KeySigner:
    return KeySigner(seed.to_bytes(32, "little"))


def record(body: Body, signers: Sequence[KeySigner], network_id: int = NET) -> DeviceRecord:
    return sign(network_id, body, signers)


def admit(
    issuer: KeySigner, role: IssuerRole, committee: Sequence[KeySigner], serial: int = 1
) -> DeviceRecord:
    body = AdmitIssuer(
        issuer=issuer.public_key, role=role, admitted=True, serial=serial, name=b"issuer"
    )
    return record(body, committee)


def register_body(
    device: KeySigner, maker: PublicKey, gateway: DeviceId | None = None, model: bytes = b"m1"
) -> Register:
    return Register(
        device_key=device.public_key,
        address=address_of(device.public_key),
        maker=maker,
        model=model,
        capability=Capability.FULL if gateway is None else Capability.CONSTRAINED,
        gateway=NO_GATEWAY if gateway is None else gateway,
        attributes_hash=bytes(32),
        uri=b"https://example.org/d",
    )


def register(
    device: KeySigner,
    maker: KeySigner,
    endorsers: Sequence[KeySigner],
    gateway: DeviceId | None = None,
) -> DeviceRecord:
    body = register_body(device, maker.public_key, gateway)
    return record(body, [device, maker, *endorsers])


def device_id(device: KeySigner) -> DeviceId:
    return device_id_of(device.public_key)
