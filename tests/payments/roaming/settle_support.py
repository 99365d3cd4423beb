"""Two carriers, their keys, a default agreement and record strategies for the settlement tests."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final

from hypothesis import strategies as st

from payments.channels.core import ChannelTerms
from payments.channels.twoway import Proposal, TwoWayChannel
from payments.roaming.agreement import Agreement, Party, SignedAgreement, sign_agreement
from payments.roaming.batch import seal
from payments.roaming.rating import Plan, PlanKind, Rounding, rate
from payments.roaming.record import EventType, UsageRecord
from payments.roaming.settlement import Settlement
from payments.roaming.subscriber import SubscriberHasher
from payments.roaming.validation import Validator
from tangle.protocol.ids import ChannelId
from wallet.keys import AddressKey, ExtendedKey

if TYPE_CHECKING:
    from payments.roaming.acknowledgement import SignedAcknowledgement

HOME: Final = "DEUAA"
"""The HPMN in most tests (its subscribers roam at VISITED)."""
VISITED: Final = "FRAVV"
HOME_KEY: Final = AddressKey(ExtendedKey.from_seed(b"\x11" * 32))
VISITED_KEY: Final = AddressKey(ExtendedKey.from_seed(b"\x22" * 32))
MALLORY_KEY: Final = AddressKey(ExtendedKey.from_seed(b"\x33" * 32))
KEYS: Final = {HOME: HOME_KEY, VISITED: VISITED_KEY}
HASHER: Final = SubscriberHasher(salt=b"agreement-salt-0123")
T0: Final = 1_790_000_000
"""A second inside the default agreement's validity."""


def standard_plans() -> tuple[Plan, ...]:
    """Data per MiB in whole KiB, calls per minute in 30 s steps (60 s minimum), SMS each."""

    def plan(service: EventType, price: int, per: int, increment: int, minimum: int) -> Plan:
        return Plan(
            service=service, price=price, per=per, increment=increment, minimum=minimum,
            rounding=Rounding.UP, kind=PlanKind.FLAT, tiers=(), commitment=0,
        )  # fmt: skip

    return (
        plan(EventType.DATA, 5_000, 1_048_576, 1024, 1024),
        plan(EventType.MOC, 12_000, 60, 30, 60),
        plan(EventType.MTC, 2_000, 60, 30, 60),
        plan(EventType.SMS_MO, 4_000, 1, 1, 1),
        plan(EventType.SMS_MT, 0, 1, 1, 0),
        plan(EventType.SUPPLEMENTARY, 0, 1, 1, 0),
    )


def agreement(**changes: object) -> Agreement:
    fields: dict[str, object] = {
        "version": 1,
        "previous": None,
        "parties": (
            Party(tadig=HOME, key=HOME_KEY.public_key, plans=standard_plans()),
            Party(tadig=VISITED, key=VISITED_KEY.public_key, plans=standard_plans()),
        ),
        "valid_from": T0 - 86_400,
        "valid_until": T0 + 365 * 86_400,
        "currency": "EUR",
        "decimal_places": 5,
        "tax_bp": 0,
        "batch_max_records": 100,
        "batch_max_age_s": 60,
        "fraud_charge_4h": 10_000_000,
        "dispute_window_s": 45 * 86_400,
    }
    fields.update(changes)
    return Agreement(**fields)  # type: ignore[arg-type]


def signed(a: Agreement) -> SignedAgreement:
    return SignedAgreement(
        agreement=a,
        signatures=tuple(sign_agreement(a, KEYS[p.tadig]) for p in a.parties),  # type: ignore[arg-type]
    )


def record(
    *,
    sender: str = VISITED,
    recipient: str = HOME,
    imsi: str = "262010000000001",
    kind: EventType = EventType.DATA,
    start: int = T0,
    duration: int = 0,
    up: int = 0,
    down: int = 0,
    charge: int = 0,
) -> UsageRecord:
    return UsageRecord(
        sender=sender,
        recipient=recipient,
        imsi_hash=HASHER.imsi(imsi),
        msisdn_hash=bytes(32),
        event_type=kind,
        start_utc=start,
        duration_s=duration,
        volume_up=up,
        volume_down=down,
        apn="iot.example" if kind is EventType.DATA else "",
        serving_network=sender,
        charge=charge,
    )


@st.composite
def records(draw: st.DrawFn, sender: str = VISITED, recipient: str = HOME) -> UsageRecord:
    """Records of the pair within the default agreement's validity, charge 0 (rate them)."""
    kind = draw(st.sampled_from(EventType))
    data = kind is EventType.DATA
    sms = kind in (EventType.SMS_MO, EventType.SMS_MT, EventType.SUPPLEMENTARY)
    return record(
        sender=sender,
        recipient=recipient,
        imsi=f"26201{draw(st.integers(0, 10**10 - 1)):010d}",
        kind=kind,
        start=T0 + draw(st.integers(0, 30 * 86_400)),
        duration=0 if sms else draw(st.integers(0, 86_400)),
        up=draw(st.integers(0, 10**10)) if data else 0,
        down=draw(st.integers(0, 10**10)) if data else 0,
    )


AGREEMENT: Final = agreement()
NOW: Final = T0 + 600


def channel_terms(deposit: int = 10**9) -> ChannelTerms:
    """HOME funds the channel (payer), VISITED is its payee."""
    return ChannelTerms(
        network_id=7,
        channel_id=ChannelId(b"\x42" * 32),
        payer=HOME_KEY.public_key,
        payee=VISITED_KEY.public_key,
        deposit=deposit,
        bidirectional=True,
        challenge_period=100,
        expiry=10_000,
    )


class Carriers:
    """Both carriers: each validates the other's batches, and each holds a channel side."""

    def __init__(self, deposit: int = 10**9) -> None:
        terms = channel_terms(deposit)
        self.channels = {
            HOME: TwoWayChannel(terms, HOME_KEY),
            VISITED: TwoWayChannel(terms, VISITED_KEY),
        }
        self.validators = {
            HOME: Validator(AGREEMENT, HOME_KEY),
            VISITED: Validator(AGREEMENT, VISITED_KEY),
        }
        self.sequences = {HOME: 1, VISITED: 1}
        self.events = 0
        self.settlements = {t: Settlement(AGREEMENT, self.channels[t]) for t in (HOME, VISITED)}

    def usage(self, vpmn: str, charges: int) -> SignedAcknowledgement:
        """`vpmn` sends a batch of `charges` SMS of the other's subscribers; the HPMN answers."""
        hpmn = HOME if vpmn == VISITED else VISITED
        start = T0 + self.events  # each event its own second: no duplicates across batches
        self.events += charges
        records = tuple(
            rated(record(sender=vpmn, recipient=hpmn, kind=EventType.SMS_MO, start=start + i))
            for i in range(charges)
        )
        key = VISITED_KEY if vpmn == VISITED else HOME_KEY
        batch = seal(AGREEMENT, key, records, sequence=self.sequences[vpmn], now=NOW)
        self.sequences[vpmn] += 1
        return self.validators[hpmn].validate(batch, NOW)

    def settle(self, payer: str) -> Proposal | None:
        """`payer` pays what is due; the other side countersigns; `payer` completes."""
        other = HOME if payer == VISITED else VISITED
        proposal = self.settlements[payer].pay()
        if proposal is not None:
            signed = self.channels[other].countersign(proposal)
            theirs = signed.payee_signature if payer == HOME else signed.payer_signature
            assert theirs is not None
            self.channels[payer].complete(proposal.proof.sequence, theirs)
        return proposal


def rated(r: UsageRecord) -> UsageRecord:
    """`r` with the charge the default agreement rates."""
    return replace(r, charge=rate(AGREEMENT, r).charge)
