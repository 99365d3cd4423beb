"""Signed meter values in OCMF (the Open Charge Metering Format of S.A.F.E. e.V.), verified.

The signing method supported is OCMF with ECDSA over SHA-256 (`SA` one of `ALGORITHMS`, the
default `ECDSA-secp256r1-SHA256`), the signature DER-encoded in hex (`SE` hex, `SM`
application/x-der), and the meter's public key a DER SubjectPublicKeyInfo in hex (as meters
print it on their label) or PEM. A value is the text

```
OCMF|{payload JSON}|{"SA": ..., "SD": "<hex DER signature>"}
```

signed over the payload section's bytes exactly as sent. OCPP 2.0.1 carries it in
`signedMeterValue.signedMeterData`, base64-encoded (`parse` takes it raw or in base64). The
readings `RD` give the register (`RV` in `RU` kWh or Wh, `RI` an OBIS id); `reading_wh` is the
last one's value in Wh, which must equal the register the charger reported with it.
`context` reads what ties a value to one transaction of one meter: the meter serial `MS`, the
pagination `PG` (`T` or `F` and a counter the meter increments per value), the reading's type
`TX` (`B` begin, `C`/`X`/`T` within, `E` end) and time `TM`.

`sign` makes such a value (a meter's side: the simulators and tests use it).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import SignedMeterValueError

ALGORITHMS: Final[dict[str, type[ec.EllipticCurve]]] = {
    "ECDSA-secp256r1-SHA256": ec.SECP256R1,
    "ECDSA-secp256k1-SHA256": ec.SECP256K1,
    "ECDSA-secp384r1-SHA256": ec.SECP384R1,
    "ECDSA-brainpool256r1-SHA256": ec.BrainpoolP256R1,
    "ECDSA-brainpool384r1-SHA256": ec.BrainpoolP384R1,
}
DEFAULT_ALGORITHM: Final = "ECDSA-secp256r1-SHA256"
MAX_VALUE: Final = 2500
"""OCPP 2.0.1 bounds `signedMeterData` at 2500 characters."""
_WH: Final = {"kWh": Decimal(1000), "Wh": Decimal(1)}
_PAGE: Final = re.compile(r"([TF])([0-9]{1,9})")
_SERIAL_MAX: Final = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedValue:
    """One OCMF value, parsed; `payload` is the signed section as sent."""

    payload: bytes
    fields: dict[str, object]
    algorithm: str
    signature: bytes


def parse(value: str, where: str = "signed meter value") -> SignedValue:
    """An OCMF value (raw or base64); `SignedMeterValueError` for anything else."""
    if len(value) > MAX_VALUE * 2:
        raise SignedMeterValueError(where, "too long")
    if not value.startswith("OCMF|"):
        try:
            value = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise SignedMeterValueError(where, "neither OCMF nor base64 of OCMF") from None
    head, sep, rest = value.partition("|")
    payload, sep2, signature = rest.rpartition("|")
    if head != "OCMF" or not sep or not sep2:
        raise SignedMeterValueError(where, "not OCMF|payload|signature")
    fields = _object(payload, where)
    sig = _object(signature, where)
    algorithm = sig.get("SA", DEFAULT_ALGORITHM)
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise SignedMeterValueError(where, f"signing method {algorithm!r} is not supported")
    if sig.get("SE", "hex") != "hex" or sig.get("SM", "application/x-der") != "application/x-der":
        raise SignedMeterValueError(where, "only hex-encoded DER signatures are supported")
    data = sig.get("SD")
    try:
        raw = bytes.fromhex(data) if isinstance(data, str) else None
    except ValueError:
        raw = None
    if not raw:
        raise SignedMeterValueError(where, "SD is not a hex signature")
    return SignedValue(
        payload=payload.encode(), fields=fields, algorithm=str(algorithm), signature=raw
    )


def _object(text: str, where: str) -> dict[str, object]:
    try:
        doc = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise SignedMeterValueError(where, "a section is not JSON") from None
    if not isinstance(doc, dict):
        raise SignedMeterValueError(where, "a section is not a JSON object")
    return doc


def load_key(text: str) -> ec.EllipticCurvePublicKey:
    """A meter's public key: DER SubjectPublicKeyInfo in hex, or PEM."""
    try:
        if text.strip().startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(bytes.fromhex(text.strip()))
    except (ValueError, UnsupportedAlgorithm):
        raise SignedMeterValueError("meter key", "not a DER (hex) or PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignedMeterValueError("meter key", "not an elliptic-curve key")
    return key


def key_hex(key: ec.EllipticCurvePublicKey) -> str:
    """`key` as meters print it: DER SubjectPublicKeyInfo, hex."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der.hex().upper()


def verify(value: SignedValue, key: ec.EllipticCurvePublicKey, where: str) -> None:
    """`SignedMeterValueError` unless `key` signed `value` with the method it names."""
    if not isinstance(key.curve, ALGORITHMS[value.algorithm]):
        raise SignedMeterValueError(where, f"the meter key is not on {value.algorithm}'s curve")
    try:
        key.verify(value.signature, value.payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignedMeterValueError(where, "the signature does not verify") from None


def reading_wh(value: SignedValue, where: str) -> int:
    """The last reading's register in Wh (`RD[-1]`: `RV` in `RU`)."""
    readings = value.fields.get("RD")
    if not isinstance(readings, list) or not readings or not isinstance(readings[-1], dict):
        raise SignedMeterValueError(where, "no readings (RD)")
    last = readings[-1]
    unit, raw = last.get("RU"), last.get("RV")
    if unit not in _WH or not isinstance(raw, Decimal | int):
        raise SignedMeterValueError(where, "a reading needs RV in RU kWh or Wh")
    try:
        wh = Decimal(raw) * _WH[str(unit)]
    except InvalidOperation:
        raise SignedMeterValueError(where, "RV is not a number") from None
    if not wh.is_finite() or wh < 0 or wh != wh.to_integral_value() or wh > 10**15:
        raise SignedMeterValueError(where, "RV is not a whole number of Wh in range")
    return int(wh)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingContext:
    """What ties a signed value to one transaction of one meter."""

    meter_serial: str
    """`MS`."""
    page: tuple[str, int]
    """`PG`: its kind (`T` transaction, `F` fiscal) and counter."""
    kind: str
    """The last reading's `TX` (B, C, X, E, L, R, A, T)."""
    time_s: int
    """The last reading's `TM`, Unix seconds."""


def context(value: SignedValue, where: str) -> ReadingContext:
    """The meter serial, pagination, type and time of `value`'s last reading."""
    serial, page = value.fields.get("MS"), value.fields.get("PG")
    if not isinstance(serial, str) or not 0 < len(serial) <= _SERIAL_MAX:
        raise SignedMeterValueError(where, "no meter serial (MS)")
    matched = _PAGE.fullmatch(page) if isinstance(page, str) else None
    if matched is None:
        raise SignedMeterValueError(where, "PG is not T or F and a counter")
    readings = value.fields.get("RD")
    if not isinstance(readings, list) or not readings or not isinstance(readings[-1], dict):
        raise SignedMeterValueError(where, "no readings (RD)")
    kind, time = readings[-1].get("TX"), readings[-1].get("TM")
    if kind not in ("B", "C", "X", "E", "L", "R", "A", "T"):
        raise SignedMeterValueError(where, "TX is not an OCMF reading type")
    return ReadingContext(
        meter_serial=serial,
        page=(matched[1], int(matched[2])),
        kind=str(kind),
        time_s=_time_s(time, where),
    )


def _time_s(time: object, where: str) -> int:
    """OCMF `TM` ("2018-07-24T13:22:04,000+0200 S": a time and a sync state) in Unix seconds."""
    if not isinstance(time, str) or len(time) > 40:
        raise SignedMeterValueError(where, "TM is not a time")
    stamp = time.split(" ", 1)[0].replace(",", ".")
    try:
        parsed = dt.datetime.fromisoformat(stamp)
    except ValueError:
        raise SignedMeterValueError(where, "TM is not a time") from None
    if parsed.tzinfo is None:
        raise SignedMeterValueError(where, "TM has no UTC offset")
    return int(parsed.timestamp())


def sign(
    key: ec.EllipticCurvePrivateKey,
    register_wh: int,
    *,
    meter_serial: str,
    time: str,
    kind: str = "C",
    page: int = 1,
    algorithm: str = DEFAULT_ALGORITHM,
) -> str:
    """An OCMF value for one register reading (`kind`: B begin, C charging, E end; `page`: the
    meter's counter, `PG` T<page>)."""
    payload = {
        "FV": "1.0",
        "GI": "tanglepay simulated meter",
        "GS": meter_serial,
        "PG": f"T{page}",
        "MS": meter_serial,
        "IS": False,
        "RD": [
            {
                "TM": time,
                "TX": kind,
                "RV": register_wh / 1000,  # a float's shortest repr: exact to the Wh
                "RI": "1-b:1.8.0",
                "RU": "kWh",
                "ST": "G",
            }
        ],
    }
    text = json.dumps(payload, separators=(",", ":"))
    signature = key.sign(text.encode(), ec.ECDSA(hashes.SHA256()))
    return f"OCMF|{text}|" + json.dumps({"SA": algorithm, "SD": signature.hex().upper()})
