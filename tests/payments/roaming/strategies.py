"""Hypothesis strategies for roaming records."""

from __future__ import annotations

from hypothesis import strategies as st

from payments.roaming import EventType, UsageRecord
from payments.roaming.record import APN_MAX, NO_MSISDN

TADIGS = st.from_regex(r"[A-Z]{3}[A-Z0-9]{2}", fullmatch=True)
HASHES = st.binary(min_size=32, max_size=32).filter(lambda b: b != NO_MSISDN)
U64 = st.integers(0, 2**64 - 1)


@st.composite
def records(draw: st.DrawFn) -> UsageRecord:
    sender = draw(TADIGS)
    recipient = draw(TADIGS.filter(lambda t: t != sender))
    kind = draw(st.sampled_from(EventType))
    data = kind is EventType.DATA
    instant = kind in (EventType.SMS_MO, EventType.SMS_MT, EventType.SUPPLEMENTARY)
    return UsageRecord(
        sender=sender,
        recipient=recipient,
        imsi_hash=draw(HASHES),
        msisdn_hash=draw(st.one_of(st.just(NO_MSISDN), HASHES)),
        event_type=kind,
        start_utc=draw(U64),
        duration_s=0 if instant else draw(st.integers(0, 2**32 - 1)),
        volume_up=draw(U64) if data else 0,
        volume_down=draw(U64) if data else 0,
        apn=draw(st.from_regex(rf"[A-Za-z0-9.\-]{{0,{APN_MAX}}}", fullmatch=True)) if data else "",
        serving_network=draw(
            st.one_of(TADIGS, st.from_regex(r"[0-9]{3}-[0-9]{2,3}", fullmatch=True))
        ),
        charge=draw(U64),
    )
