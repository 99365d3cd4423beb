"""Signed meter values verified (`payments.charging.ocmf`, `verify`): a 2.0.1 charger (the `ocpp`
library over loopback WebSockets) sends OCMF values signed by its meter's P-256 key; the session
record the CSMS commits reads back strictly, and a driver holding only the meter's public key
proves the energy billed from it, and catches a register the CPO reported otherwise than the
meter signed, a value signed by another key, and a bill for other energy."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from payments.charging import ocmf
from payments.charging.commitment import SessionRecord, parse_session_record, session_record
from payments.charging.csms import Csms, serve_csms
from payments.charging.errors import SignedMeterValueError
from payments.charging.simulator import Charger201, connect_charger
from payments.charging.station import now_iso
from payments.charging.store import CsmsStore
from payments.charging.verify import check_record

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_780_000_000.0
PASSWORD = "pw"
METER = ec.derive_private_key(0x5EED, ec.SECP256R1())
OTHER = ec.derive_private_key(0xBAD, ec.SECP256R1())


def signed(
    key: ec.EllipticCurvePrivateKey,
    wh: int,
    i: int,
    kind: str = "C",
    *,
    page: int | None = None,
    serial: str = "M-1",
    at: float | None = None,
) -> str:
    """Reading `i` of a transaction: page i + 1 at T0 + 60 i, unless told otherwise."""
    return ocmf.sign(
        key,
        wh,
        meter_serial=serial,
        time=now_iso(T0 + 60 * i if at is None else at),
        kind=kind,
        page=i + 1 if page is None else page,
    )


def record_of(tmp_path: Path, readings: list[tuple[int, str | None]]) -> bytes:
    """The committed record of a 2.0.1 session whose charger reported `readings`."""

    async def main() -> bytes:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            await store.add_station("CP201", PASSWORD)
            csms = Csms(store=store, pricing=lambda t, wh, s: wh // 10)
            async with serve_csms(csms) as server:
                url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/ocpp"
                async with connect_charger(url, "CP201", PASSWORD, "2.0.1") as charger:
                    assert isinstance(charger, Charger201)
                    last = len(readings) - 1
                    for i, (wh, value) in enumerate(readings):
                        kind = "Started" if i == 0 else "Ended" if i == last else "Updated"
                        token = "TOK" if i == 0 else None
                        await charger.event(
                            kind, "T1", i, wh, T0 + 60 * i, id_token=token, signed=value
                        )
            [bill] = await store.bills()
            return session_record(bill, await store.events(("CP201", "T1")))

    return asyncio.run(main())


def test_a_driver_proves_the_energy_billed_from_the_meters_signatures(tmp_path: Path) -> None:
    registers = [12_000, 13_250, 14_500, 15_001]
    kinds = ["B", "C", "C", "E"]
    raw = record_of(
        tmp_path, [(wh, signed(METER, wh, i, kinds[i])) for i, wh in enumerate(registers)]
    )
    record = parse_session_record(raw)
    assert [r.register_wh for r in record.readings] == registers
    assert (record.energy_wh, record.amount) == (3_001, 300)
    check = check_record(record, ocmf.load_key(ocmf.key_hex(METER.public_key())))
    assert check.signed == 4
    assert check.energy_proven
    with pytest.raises(SignedMeterValueError, match="does not verify"):
        check_record(record, OTHER.public_key())
    billed_more = dataclasses.replace(record, energy_wh=3_100)
    with pytest.raises(SignedMeterValueError, match="differ by 3001"):
        check_record(billed_more, METER.public_key())
    for broken in (raw + b"\x00", raw[:-1], raw[:10]):
        with pytest.raises(SignedMeterValueError):
            parse_session_record(broken)
    # values spliced in from another session of the same meter are caught by name
    key = METER.public_key()
    ends = (record.readings[0], record.readings[-1])

    def spliced(value: str) -> SessionRecord:
        middle = dataclasses.replace(record.readings[1], signed_meter_value=value)
        return dataclasses.replace(record, readings=(ends[0], middle, *record.readings[2:]))

    for value, named in (
        (signed(METER, 13_250, 1, serial="M-2"), "more than one meter"),
        (signed(METER, 13_250, 1, page=9), "pagination"),  # ahead of the 3rd value's
        (signed(METER, 13_250, 1, page=1), "pagination"),  # the begin's page again
        (signed(METER, 13_250, 1, at=T0 - 3_600), "run backwards"),
        (signed(METER, 13_250, 1, "B"), "begins or ends"),
        (signed(METER, 13_250, 1, "E"), "begins or ends"),
    ):
        with pytest.raises(SignedMeterValueError, match=named):
            check_record(spliced(value), key)
    late = dataclasses.replace(
        ends[1], signed_meter_value=signed(METER, 15_001, 3, "E", at=T0 + 7_200)
    )  # the end of a later session: the signed span is longer than this one
    with pytest.raises(SignedMeterValueError, match="span more than the session"):
        check_record(dataclasses.replace(record, readings=(*record.readings[:3], late)), key)
    (tmp_path / "c").mkdir()
    no_markers = [(wh, signed(METER, wh, i)) for i, wh in enumerate(registers)]  # all C
    assert not check_record(
        parse_session_record(record_of(tmp_path / "c", no_markers)), key
    ).energy_proven


def test_a_register_reported_otherwise_than_signed_is_caught(tmp_path: Path) -> None:
    readings = [(0, signed(METER, 0, 0)), (1_000, signed(METER, 900, 1)), (2_000, None)]
    record = parse_session_record(record_of(tmp_path, readings))
    with pytest.raises(SignedMeterValueError, match="signed 900 Wh, reported 1000"):
        check_record(record, METER.public_key())


def test_unsigned_ends_do_not_prove_the_energy(tmp_path: Path) -> None:
    readings = [(0, signed(METER, 0, 0)), (500, signed(METER, 500, 1)), (800, None)]
    check = check_record(parse_session_record(record_of(tmp_path, readings)), METER.public_key())
    assert check.signed == 2
    assert not check.energy_proven


def test_ocmf_values_are_read_strictly() -> None:
    good = signed(METER, 1_234, 0)
    value = ocmf.parse(good)
    assert ocmf.reading_wh(value, "x") == 1_234
    ocmf.verify(value, METER.public_key(), "x")
    assert (
        ocmf.parse(base64.b64encode(good.encode()).decode()) == value
    )  # OCPP 2.0.1 carries base64
    for bad in (
        "OCMF|{}",
        "nope",
        good.replace("ECDSA-secp256r1-SHA256", "RSA-PKCS1"),
        good.replace('"SD": "', '"SD": "zz'),
        "OCMF|[]|{}",
        good.replace('"SA": "ECDSA-secp256r1-SHA256"', '"SA": [1]'),  # was a TypeError
        good.replace('"SA": "ECDSA-secp256r1-SHA256"', '"SA": {}'),
    ):
        with pytest.raises(SignedMeterValueError):
            ocmf.parse(bad)
    tampered = ocmf.parse(good.replace('"RV":1.234', '"RV":2.234'))
    with pytest.raises(SignedMeterValueError, match="does not verify"):
        ocmf.verify(tampered, METER.public_key(), "x")
    with pytest.raises(SignedMeterValueError):
        ocmf.load_key("00ff")
