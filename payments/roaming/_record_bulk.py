"""Many usage records at once, as an importer or a home network meets them: `decode_many` (a
batch's encodings, as `UsageRecord.decode` reads each) and `build_many` (a file's columns, as the
constructor builds each row). Each checks what the one-record path checks, a file's or batch's
repeated networks and APNs once, and sets the fields as checked; whatever it does not take goes
through the one-record path, which names the broken rule, so both accept the same input, build
equal records and refuse with the same error (tests/payments/roaming/test_record_many.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

from tangle.protocol.codec import U32_MAX, U64_MAX

from .record import (
    _APN,
    _APNS,
    _EVENT_ID_HASH,
    _EVENT_TYPES,
    _HEAD,
    APN_MAX,
    HASH_SIZE,
    INSTANT_EVENTS,
    NO_MSISDN,
    RECORD_VERSION,
    SERVING_NETWORK_MAX,
    EventType,
    UsageRecord,
    _is_mcc_mnc,
    is_tadig,
)

if TYPE_CHECKING:
    from collections.abc import Iterable


class _Unsealed:
    """A record being built: `UsageRecord`'s slots (so its layout) without the frozen guard.
    A builder sets every field with a plain attribute store, some three times faster than
    calling each slot's setter (the frozen class allows no other way), then makes it a
    `UsageRecord` by setting its class, which Python allows between classes of the same
    slots; only once every check passed (tests/payments/roaming/test_record_many.py checks
    that a built record has every field, and that these annotations are `UsageRecord`'s)."""

    __slots__ = UsageRecord.__slots__
    sender: str
    recipient: str
    imsi_hash: bytes
    msisdn_hash: bytes
    event_type: EventType
    start_utc: int
    duration_s: int
    volume_up: int
    volume_down: int
    apn: str
    serving_network: str
    charge: int
    event_id: bytes
    _encoding: bytes


def _sealed(record: _Unsealed) -> UsageRecord:
    """`record`, every field set and checked, made the `UsageRecord` it now is."""
    record.__class__ = UsageRecord  # type: ignore[assignment]  # same slots: Python allows it
    return cast("UsageRecord", record)


_INSTANT_CODES: Final = frozenset(int(k) for k in INSTANT_EVENTS)
_Pair = tuple[str, str]
_UNSEEN: Final = ("", "")
_REMEMBERED: Final = 4096
"""Distinct (sender, recipient) and (apn, serving network) values `decode_many` remembers."""


def decode_many(encodings: Iterable[bytes]) -> list[UsageRecord]:
    """`UsageRecord.decode` of each encoding, in one pass: what `decode` checks, with each
    distinct (sender, recipient) and (apn, serving network) checked once and the fields set as
    decoded (a canonical encoding is the identity, then the charge). An encoding the fast path
    does not take goes through `decode`, which names the broken rule (`MalformedRecordError`):
    so both accept the same bytes, build equal records and refuse with the same error."""
    pairs: dict[bytes, _Pair | None] = {}
    tails: dict[bytes, _Pair | None] = {}
    unpack, head = _HEAD.unpack_from, _HEAD.size
    event_id_hash = _EVENT_ID_HASH.copy
    event_types, instant, kinds = _EVENT_TYPES, _INSTANT_CODES, len(_EVENT_TYPES)
    new, sealed = object.__new__, _sealed
    out: list[UsageRecord] = []
    append = out.append
    for raw in encodings:
        end = len(raw) - 8
        if end < head:
            append(UsageRecord.decode(raw))  # raises, naming the rule
            continue
        version, _, _, imsi, msisdn, kind, start, duration, up, down = unpack(raw)
        key = raw[1:11]
        pair = pairs.get(key, _UNSEEN)
        if pair is _UNSEEN:
            pair = _note(pairs, key, _pair(key))
        key = raw[head:end]
        tail = tails.get(key, _UNSEEN)
        if tail is _UNSEEN:
            tail = _note(tails, key, _tail(key))
        if (
            pair is None
            or tail is None
            or version != RECORD_VERSION
            or imsi == NO_MSISDN
            or kind >= kinds
            or (kind and (up or down))
            or (duration and kind in instant)
        ):
            append(UsageRecord.decode(raw))  # raises, naming the rule
            continue
        h = event_id_hash()
        h.update(raw[:end])
        record = new(_Unsealed)
        record.sender, record.recipient = pair
        record.imsi_hash = imsi
        record.msisdn_hash = msisdn
        record.event_type = event_types[kind]
        record.start_utc = start
        record.duration_s = duration
        record.volume_up = up
        record.volume_down = down
        record.apn, record.serving_network = tail
        record.charge = int.from_bytes(raw[end:], "little")
        record.event_id = h.digest()
        record._encoding = raw
        append(sealed(record))
    return out


def _note(seen: dict[bytes, _Pair | None], key: bytes, value: _Pair | None) -> _Pair | None:
    if len(seen) < _REMEMBERED:
        seen[key] = value
    return value


def _pair(data: bytes) -> _Pair | None:
    """The (sender, recipient) of a record's 10 bytes after the version, if both are TADIG
    codes and not the same; None if not."""
    sender, recipient = data[:5], data[5:]
    if not (sender.isascii() and recipient.isascii()) or sender == recipient:
        return None
    pair = sender.decode("ascii"), recipient.decode("ascii")
    return pair if is_tadig(pair[0]) and is_tadig(pair[1]) else None


def _tail(data: bytes) -> _Pair | None:
    """The (apn, serving network) of a record's bytes between the fixed head and the charge,
    if they are exactly both, each valid; None if not."""
    n = data[0] if data else APN_MAX + 1
    if n > APN_MAX or len(data) < n + 2 or len(data) != n + 2 + data[n + 1]:
        return None
    apn, serving = data[1 : n + 1], data[n + 2 :]
    if not (apn.isascii() and serving.isascii()) or len(serving) > SERVING_NETWORK_MAX:
        return None
    text = apn.decode("ascii"), serving.decode("ascii")
    if _APN.fullmatch(text[0]) is None or not (is_tadig(text[1]) or _is_mcc_mnc(text[1])):
        return None
    return text


def build_many(
    sender: str,
    recipient: str,
    serving_network: str,
    columns: tuple[
        list[bytes],
        list[bytes],
        list[EventType],
        list[int],
        list[int],
        list[int],
        list[int],
        list[str],
        list[int],
    ],
) -> list[UsageRecord]:
    """`UsageRecord(...)` of each row of `columns` (imsi_hash, msisdn_hash, event_type,
    start_utc, duration_s, volume_up, volume_down, apn, charge: one list a field, the rows of
    one sender, recipient and serving network, as an importer reads a file): what the
    constructor checks, with the TADIGs and serving network checked once and each APN found in
    the constructor's memo, the fields set as built. A row the fast path does not take goes
    through the constructor, which names the broken rule (`InvalidRecordError`): so both
    accept the same rows, build equal records and refuse with the same error."""
    if not columns[0]:
        return []
    first = UsageRecord(
        sender=sender,
        recipient=recipient,
        imsi_hash=b"\x01" * HASH_SIZE,
        msisdn_hash=NO_MSISDN,
        event_type=EventType.DATA,
        start_utc=0,
        duration_s=0,
        volume_up=0,
        volume_down=0,
        apn="",
        serving_network=serving_network,
        charge=0,
    )
    encoded = first.encode()
    sender_ascii, recipient_ascii = encoded[1:6], encoded[6:11]
    serving_field = encoded[_HEAD.size + 1 : -8]  # after the empty APN's length octet
    pack, apns, instant = _HEAD.pack, _APNS, INSTANT_EVENTS
    event_id_hash = _EVENT_ID_HASH.copy
    new, sealed = object.__new__, _sealed
    out: list[UsageRecord] = []
    append = out.append
    for imsi, msisdn, kind, start, duration, up, down, apn, charge in zip(*columns, strict=True):
        apn_field = apns.get(apn) if type(apn) is str else None
        if (
            apn_field is None
            or type(imsi) is not bytes
            or type(msisdn) is not bytes
            or len(imsi) != HASH_SIZE
            or len(msisdn) != HASH_SIZE
            or imsi == NO_MSISDN
            or type(kind) is not EventType
            or not type(start) is type(duration) is type(up) is type(down) is type(charge) is int
            or not (0 <= start <= U64_MAX and 0 <= duration <= U32_MAX)
            or not (0 <= up <= U64_MAX and 0 <= down <= U64_MAX and 0 <= charge <= U64_MAX)
            or (kind and (up or down))
            or (duration and kind in instant)
        ):
            append(
                UsageRecord(
                    sender=sender,
                    recipient=recipient,
                    imsi_hash=imsi,
                    msisdn_hash=msisdn,
                    event_type=kind,
                    start_utc=start,
                    duration_s=duration,
                    volume_up=up,
                    volume_down=down,
                    apn=apn,
                    serving_network=serving_network,
                    charge=charge,
                )
            )  # raises, naming the rule, or takes an APN into the memo
            continue
        identity = (
            pack(
                RECORD_VERSION,
                sender_ascii,
                recipient_ascii,
                imsi,
                msisdn,
                kind,
                start,
                duration,
                up,
                down,
            )
            + apn_field
            + serving_field
        )
        h = event_id_hash()
        h.update(identity)
        record = new(_Unsealed)
        record.sender = sender
        record.recipient = recipient
        record.imsi_hash = imsi
        record.msisdn_hash = msisdn
        record.event_type = kind
        record.start_utc = start
        record.duration_s = duration
        record.volume_up = up
        record.volume_down = down
        record.apn = apn
        record.serving_network = serving_network
        record.charge = charge
        record.event_id = h.digest()
        record._encoding = identity + charge.to_bytes(8, "little")
        append(sealed(record))
    return out
