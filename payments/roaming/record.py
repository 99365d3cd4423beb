"""The canonical usage record: one roaming event as both carriers hold it.

Every importer (TAP 3.12, NRTRDE 2.1, JSON Lines, CSV) produces `UsageRecord`s; rating,
batching, validation and settlement read nothing else. No IMSI or MSISDN is ever in a record:
the importer hashes them with `SubscriberHasher` (keyed BLAKE2b, the key a per-agreement salt
both carriers hold), so the clear values never leave the importer.

`event_id` is not stored: it is BLAKE2b-256 over `EVENT_ID_DOMAIN` and the canonical encoding of
every field except `charge`. The same usage sent twice (even re-rated with another charge) thus
has the same id, which is what duplicate detection needs, and an id cannot disagree with the
fields it names.

Encoding (little-endian; `decode(encode(r)) == r` and `encode(decode(b)) == b`):

```
  u8   version            RECORD_VERSION
  5    sender             TADIG of the VPMN (ASCII)
  5    recipient          TADIG of the HPMN (ASCII)
  32   imsi_hash
  32   msisdn_hash        all zero: the source file named no MSISDN
  u8   event_type         EventType
  u64  start_utc          seconds since the epoch, UTC (the file's UTC offset applied)
  u32  duration_s
  u64  volume_up          bytes sent by the subscriber
  u64  volume_down        bytes received by the subscriber
  u8   n, n bytes         apn (ASCII, at most APN_MAX)
  u8   n, n bytes         serving_network: a TADIG or "MCC-MNC" (ASCII)
  u64  charge             the VPMN's charge, minor units (the batch notes the decimal places)
```
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Final

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U32_MAX, U64_MAX, require_uint

from .errors import InvalidRecordError, MalformedRecordError

RECORD_VERSION: Final = 1
EVENT_ID_DOMAIN: Final = b"tanglepay/roaming/event/v1"
HASH_SIZE: Final = 32
NO_MSISDN: Final = bytes(HASH_SIZE)
APN_MAX: Final = 100
"""An APN is at most 100 octets (3GPP TS 23.003)."""
SERVING_NETWORK_MAX: Final = 7
RECORD_MAX_SIZE: Final = 1 + 5 + 5 + 32 + 32 + 1 + 8 + 4 + 8 + 8 + 1 + APN_MAX + 1 + 7 + 8

_HEAD: Final = struct.Struct("<B5s5s32s32sBQIQQ")
"""version .. volume_down: the fixed-width head of the encoding."""
_TADIG: Final = re.compile(r"[A-Z]{3}[A-Z0-9]{2}")
_MCC_MNC: Final = re.compile(r"[0-9]{3}-[0-9]{2,3}")
_APN: Final = re.compile(r"[A-Za-z0-9.\-]*")


class EventType(IntEnum):
    """What kind of usage a record is."""

    DATA = 0
    """A packet data (GPRS/LTE/5G) session."""
    MOC = 1
    """A mobile-originated call."""
    MTC = 2
    """A mobile-terminated call."""
    SMS_MO = 3
    """A mobile-originated short message."""
    SMS_MT = 4
    """A mobile-terminated short message."""
    SUPPLEMENTARY = 5
    """A supplementary service event (call forwarding set up, barring changed): no duration,
    no volume; TAP files count it in their audit totals, so it is carried rather than dropped."""


_EVENT_TYPES: Final = tuple(EventType)
INSTANT_EVENTS: Final = frozenset({EventType.SMS_MO, EventType.SMS_MT, EventType.SUPPLEMENTARY})
"""Event types without a duration (importers read a source's duration of these as 0)."""


_TEXTS_REMEMBERED: Final = 1024
"""How many texts of each kind `UsageRecord` keeps as checked (all forgotten when full)."""
_TADIGS: Final[dict[str, bytes]] = {}
"""Checked TADIG codes -> their ASCII bytes."""
_APNS: Final[dict[str, bytes]] = {}
"""Checked APNs -> their encoding in a record (a length octet, then ASCII)."""
_SERVING_NETWORKS: Final[dict[str, bytes]] = {}
"""Checked serving networks -> their encoding in a record."""
_EVENT_ID_HASH: Final = hashlib.blake2b(EVENT_ID_DOMAIN, digest_size=HASH_SIZE)
"""The event id's hash with the domain fed in (copied for each record)."""


def _remember(checked: dict[str, bytes], text: str, encoded: bytes) -> bytes:
    """Note `text` (which passed its check) and its encoding in `checked`; the encoding."""
    if type(text) is str:
        if len(checked) >= _TEXTS_REMEMBERED:
            checked.clear()
        checked[text] = encoded
    return encoded


def _sized_ascii(text: str) -> bytes:
    """A u8 length and the ASCII bytes (`text` is checked to be short ASCII)."""
    encoded = text.encode("ascii")
    return len(encoded).to_bytes(1, "little") + encoded


def is_tadig(value: object) -> bool:
    """Whether `value` is a TADIG code: three letters (the country) and two letters or digits."""
    return isinstance(value, str) and _TADIG.fullmatch(value) is not None


def _require_tadig(name: str, value: object) -> None:
    if not is_tadig(value):
        raise InvalidRecordError(name, "a TADIG code is 3 letters then 2 letters or digits")


def _require_uint(name: str, value: int, maximum: int) -> None:
    try:
        require_uint(name, value, maximum)
    except InvalidFieldError as e:
        raise InvalidRecordError(name, e.reason) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRecord:
    """One roaming event, rated by the visited network (see the module docstring)."""

    sender: str
    """TADIG code of the visited network (VPMN) that served the event and charges for it."""
    recipient: str
    """TADIG code of the home network (HPMN) that pays."""
    imsi_hash: bytes
    """32 bytes: `SubscriberHasher.imsi` of the subscriber's IMSI."""
    msisdn_hash: bytes
    """32 bytes: `SubscriberHasher.msisdn` of the MSISDN, or `NO_MSISDN` when none was given."""
    event_type: EventType
    """Data session, call or short message."""
    start_utc: int
    """When the event started: seconds since the epoch, UTC (the file's UTC offset applied)."""
    duration_s: int
    """Seconds (calls and data sessions; 0 for short messages)."""
    volume_up: int
    """Bytes sent by the subscriber (data sessions; 0 otherwise)."""
    volume_down: int
    """Bytes received by the subscriber (data sessions; 0 otherwise)."""
    apn: str
    """The access point name of a data session (ASCII, at most `APN_MAX`); empty otherwise."""
    serving_network: str
    """The network that served the event: a TADIG code or "MCC-MNC"."""
    charge: int
    """The VPMN's charge in minor units of the agreement's currency (decimal places per batch)."""
    event_id: bytes = field(init=False, repr=False, compare=False)
    """Derived: BLAKE2b-256 over `EVENT_ID_DOMAIN` and every field but `charge`."""

    _encoding: bytes = field(init=False, repr=False, compare=False)
    """Derived: the canonical encoding (built once: sealing, sending and storing a record
    each need it); `event_id` hashes all of it but the charge."""

    def __post_init__(self) -> None:
        # Runs for every record imported or decoded: the common case is checked inline (the
        # texts of a file's records repeat, so each TADIG, serving network and APN is matched
        # against its pattern once and then found in a bounded memo), and the helpers that
        # name the broken rule run only when a check fails.
        sender, recipient = self.sender, self.recipient
        tadigs = _TADIGS
        sender_ascii = tadigs.get(sender) if type(sender) is str else None
        recipient_ascii = tadigs.get(recipient) if type(recipient) is str else None
        if sender_ascii is None or recipient_ascii is None:
            _require_tadig("sender", sender)
            _require_tadig("recipient", recipient)
            sender_ascii = _remember(tadigs, sender, sender.encode("ascii"))
            recipient_ascii = _remember(tadigs, recipient, recipient.encode("ascii"))
        if sender == recipient:
            raise InvalidRecordError("recipient", "the home and visited networks are the same")
        imsi_hash, msisdn_hash = self.imsi_hash, self.msisdn_hash
        if not (
            isinstance(imsi_hash, bytes)
            and len(imsi_hash) == HASH_SIZE
            and isinstance(msisdn_hash, bytes)
            and len(msisdn_hash) == HASH_SIZE
        ):
            name = (
                "msisdn_hash"
                if isinstance(imsi_hash, bytes) and len(imsi_hash) == HASH_SIZE
                else "imsi_hash"
            )
            raise InvalidRecordError(name, f"must be {HASH_SIZE} bytes")
        if imsi_hash == NO_MSISDN:
            raise InvalidRecordError("imsi_hash", "all zero: every record names a subscriber")
        kind = self.event_type
        if not isinstance(kind, EventType):
            raise InvalidRecordError("event_type", "must be an EventType")
        start, duration, up, down = (
            self.start_utc,
            self.duration_s,
            self.volume_up,
            self.volume_down,
        )
        charge = self.charge
        if not (
            type(start) is int
            and type(duration) is int
            and type(up) is int
            and type(down) is int
            and type(charge) is int
            and 0 <= start <= U64_MAX
            and 0 <= duration <= U32_MAX
            and 0 <= up <= U64_MAX
            and 0 <= down <= U64_MAX
            and 0 <= charge <= U64_MAX
        ):
            _require_uint("start_utc", start, U64_MAX)
            _require_uint("duration_s", duration, U32_MAX)
            _require_uint("volume_up", up, U64_MAX)
            _require_uint("volume_down", down, U64_MAX)
            _require_uint("charge", charge, U64_MAX)
        apn = self.apn
        apn_field = _APNS.get(apn) if type(apn) is str else None
        if apn_field is None:
            if not isinstance(apn, str) or len(apn) > APN_MAX:
                raise InvalidRecordError("apn", f"a string of at most {APN_MAX} characters")
            if not apn.isascii() or _APN.fullmatch(apn) is None:
                raise InvalidRecordError("apn", "only letters, digits, '.' and '-'")
            apn_field = _remember(_APNS, apn, _sized_ascii(apn))
        serving = self.serving_network
        serving_field = _SERVING_NETWORKS.get(serving) if type(serving) is str else None
        if serving_field is None:
            if not (is_tadig(serving) or _is_mcc_mnc(serving)):
                raise InvalidRecordError("serving_network", "a TADIG code or MCC-MNC")
            serving_field = _remember(_SERVING_NETWORKS, serving, _sized_ascii(serving))
        if kind is not EventType.DATA and (up or down):
            raise InvalidRecordError("volume_up", "only data sessions carry volumes")
        if duration and kind in INSTANT_EVENTS:
            raise InvalidRecordError("duration_s", f"a {kind.name} has no duration")
        identity = (
            _HEAD.pack(
                RECORD_VERSION,
                sender_ascii,
                recipient_ascii,
                imsi_hash,
                msisdn_hash,
                kind,
                start,
                duration,
                up,
                down,
            )
            + apn_field
            + serving_field
        )
        object.__setattr__(self, "_encoding", identity + charge.to_bytes(8, "little"))
        digest = _EVENT_ID_HASH.copy()
        digest.update(identity)
        object.__setattr__(self, "event_id", digest.digest())

    def encode(self) -> bytes:
        """The canonical bytes of this record."""
        return self._encoding

    def to_json_object(self) -> dict[str, object]:
        """This record as a JSON object: hashes in lowercase hex, the event type by name, and
        the derived `event_id` (checked again when read back)."""
        return {
            "apn": self.apn,
            "charge": self.charge,
            "duration_s": self.duration_s,
            "event_id": self.event_id.hex(),
            "event_type": self.event_type.name,
            "imsi_hash": self.imsi_hash.hex(),
            "msisdn_hash": self.msisdn_hash.hex(),
            "recipient": self.recipient,
            "sender": self.sender,
            "serving_network": self.serving_network,
            "start_utc": self.start_utc,
            "volume_down": self.volume_down,
            "volume_up": self.volume_up,
        }

    def canonical_json(self) -> str:
        """Canonical JSON: keys sorted, no whitespace, ASCII only."""
        return json.dumps(self.to_json_object(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def decode(cls, data: bytes) -> UsageRecord:
        """Read exactly one canonical record; anything else raises `MalformedRecordError`.
        The fixed-width head is unpacked in one step: decoding is on every batch's path."""
        data = bytes(data)
        size = len(data)
        if size < _HEAD.size:
            raise MalformedRecordError(f"truncated: {size} bytes")
        version, sender, recipient, imsi_hash, msisdn_hash, kind, start, duration, up, down = (
            _HEAD.unpack_from(data)
        )
        if version != RECORD_VERSION:
            raise MalformedRecordError(f"unknown version {version}")
        if kind >= len(_EVENT_TYPES):
            raise MalformedRecordError(f"unknown event type {kind}")
        pos = _HEAD.size
        apn, pos = _sized(data, pos, APN_MAX, "apn")
        serving_network, pos = _sized(data, pos, SERVING_NETWORK_MAX, "serving_network")
        if size - pos < 8:
            raise MalformedRecordError(f"truncated charge: {size - pos} of 8 bytes")
        if size - pos > 8:
            raise MalformedRecordError(f"{size - pos - 8} trailing bytes")
        try:
            return cls(
                sender=_ascii(sender, "sender"),
                recipient=_ascii(recipient, "recipient"),
                imsi_hash=imsi_hash,
                msisdn_hash=msisdn_hash,
                event_type=_EVENT_TYPES[kind],
                start_utc=start,
                duration_s=duration,
                volume_up=up,
                volume_down=down,
                apn=apn,
                serving_network=serving_network,
                charge=int.from_bytes(data[pos:], "little"),
            )
        except InvalidRecordError as e:
            raise MalformedRecordError(str(e)) from None

    @classmethod
    def from_json_object(cls, obj: object) -> UsageRecord:
        """The record in a JSON object written by `to_json_object` (`event_id` optional, and
        when present it must match); anything else raises `MalformedRecordError`."""
        if not isinstance(obj, dict):
            raise MalformedRecordError("a record is a JSON object")
        expected = set(_JSON_FIELDS) | {"event_id"}
        unknown = set(obj) - expected
        missing = set(_JSON_FIELDS) - set(obj)
        if unknown or missing:
            raise MalformedRecordError(f"unknown {sorted(unknown)}, missing {sorted(missing)}")
        try:
            record = cls(
                sender=_str(obj, "sender"),
                recipient=_str(obj, "recipient"),
                imsi_hash=_hex32(obj, "imsi_hash"),
                msisdn_hash=_hex32(obj, "msisdn_hash"),
                event_type=_event_type(_str(obj, "event_type")),
                start_utc=_int(obj, "start_utc"),
                duration_s=_int(obj, "duration_s"),
                volume_up=_int(obj, "volume_up"),
                volume_down=_int(obj, "volume_down"),
                apn=_str(obj, "apn"),
                serving_network=_str(obj, "serving_network"),
                charge=_int(obj, "charge"),
            )
        except InvalidRecordError as e:
            raise MalformedRecordError(str(e)) from None
        if "event_id" in obj and obj["event_id"] != record.event_id.hex():
            raise MalformedRecordError("event_id does not match the record's fields")
        return record

    @classmethod
    def from_canonical_json(cls, text: str | bytes) -> UsageRecord:
        """Read canonical JSON; input that is not exactly `canonical_json()` of the record it
        holds raises `MalformedRecordError`."""
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise MalformedRecordError(f"not JSON: {e}") from None
        record = cls.from_json_object(obj)
        raw = text if isinstance(text, str) else text.decode("utf-8")
        if raw != record.canonical_json():
            raise MalformedRecordError("not the canonical JSON form")
        return record


_JSON_FIELDS: Final = tuple(sorted(f.name for f in fields(UsageRecord) if f.init))


def _is_mcc_mnc(value: object) -> bool:
    return isinstance(value, str) and _MCC_MNC.fullmatch(value) is not None


def _sized(data: bytes, pos: int, limit: int, name: str) -> tuple[str, int]:
    """A u8 length (at most `limit`) and that many ASCII bytes at `pos`; the text and the end."""
    if pos >= len(data):
        raise MalformedRecordError(f"truncated {name} length")
    n = data[pos]
    if n > limit:
        raise MalformedRecordError(f"{name} length {n} is over {limit}")
    end = pos + 1 + n
    if end > len(data):
        raise MalformedRecordError(f"truncated {name}")
    return _ascii(data[pos + 1 : end], name), end


def _ascii(data: bytes, name: str) -> str:
    if not data.isascii():
        raise MalformedRecordError(f"{name} is not ASCII")
    return data.decode("ascii")


def _str(obj: dict[str, object], name: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise MalformedRecordError(f"{name} must be a string")
    return value


def _int(obj: dict[str, object], name: str) -> int:
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRecordError(f"{name} must be an integer")
    return value


def _hex32(obj: dict[str, object], name: str) -> bytes:
    value = _str(obj, name)
    if len(value) != 2 * HASH_SIZE or value != value.lower():
        raise MalformedRecordError(f"{name} must be {2 * HASH_SIZE} lowercase hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedRecordError(f"{name} must be {2 * HASH_SIZE} lowercase hex digits") from None


def _event_type(name: str) -> EventType:
    try:
        return EventType[name]
    except KeyError:
        raise MalformedRecordError(f"unknown event type {name!r}") from None
