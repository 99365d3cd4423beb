"""The roaming agreement file: canonical form, hash, both signatures, amendments, and strict
decoding of hostile bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.roaming.agreement import Agreement, SignedAgreement, anchor_payload, sign_agreement
from payments.roaming.errors import (
    AgreementError,
    AgreementSignatureError,
    AmendmentError,
    MalformedAgreementError,
)
from payments.roaming.record import EventType
from tangle.protocol.ids import Signature
from tangle.protocol.payload import MAX_DATA
from tests.payments.roaming.settle_support import (
    HOME,
    HOME_KEY,
    MALLORY_KEY,
    VISITED,
    VISITED_KEY,
    agreement,
    signed,
)


def test_the_canonical_form_round_trips_and_its_hash_covers_every_field() -> None:
    a = agreement()
    raw = a.encode()
    assert Agreement.decode(raw) == a
    assert Agreement.decode(raw).encode() == raw
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert agreement(tax_bp=1).hash != a.hash
    assert agreement(currency="USD").hash != a.hash


def test_a_non_canonical_or_strange_file_is_refused_by_name() -> None:
    raw = agreement().encode()
    obj = json.loads(raw)
    with pytest.raises(MalformedAgreementError, match="canonical"):
        Agreement.decode(json.dumps(obj, sort_keys=True).encode())  # whitespace
    for key, value in [("tax_bp", True), ("tax_bp", -1), ("currency", "eur"), ("extra", 1)]:
        bad = dict(obj, **{key: value})
        with pytest.raises(MalformedAgreementError):
            Agreement.decode(json.dumps(bad, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(MalformedAgreementError, match="not JSON"):
        Agreement.decode(b"[" * 60_000)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_the_error_tree(data: bytes) -> None:
    with pytest.raises(AgreementError):
        Agreement.decode(data)
    with pytest.raises(AgreementError):
        SignedAgreement.decode(data)


def test_both_parties_sign_and_the_file_round_trips() -> None:
    s = signed(agreement())
    assert SignedAgreement.decode(s.encode()) == s
    a = s.agreement
    home_sig = sign_agreement(a, HOME_KEY)
    with pytest.raises(AgreementSignatureError, match=VISITED):
        SignedAgreement(agreement=a, signatures=(home_sig, home_sig))
    with pytest.raises(AgreementSignatureError, match="neither"):
        sign_agreement(a, MALLORY_KEY)
    forged = Signature(MALLORY_KEY.sign(a.signing_message()))
    with pytest.raises(AgreementSignatureError, match=HOME):
        SignedAgreement(agreement=a, signatures=(forged, sign_agreement(a, VISITED_KEY)))
    # a signature of version 1 does not sign an amended version
    amended = a.amend(tax_bp=1900)
    with pytest.raises(AgreementSignatureError):
        SignedAgreement(agreement=amended, signatures=s.signatures)


def test_the_anchor_holds_the_hash_and_both_signatures() -> None:
    s = signed(agreement())
    payload = anchor_payload(s)
    assert payload.data == s.agreement.hash + s.signatures[0] + s.signatures[1]
    assert len(payload.data) <= MAX_DATA


def test_an_amendment_names_the_version_it_replaces() -> None:
    v1 = signed(agreement())
    v2 = signed(v1.agreement.amend(dispute_window_s=30 * 86_400))
    assert v2.agreement.version == 2
    assert v2.agreement.previous == v1.agreement.hash
    v2.check_amends(v1)
    v3 = signed(v2.agreement.amend(tax_bp=10))
    with pytest.raises(AmendmentError):
        v3.check_amends(v1)
    with pytest.raises(AmendmentError):
        v1.agreement.amend(version=7)
    with pytest.raises(AmendmentError):
        agreement(version=2)  # no previous hash


def test_agreement_fields_are_checked() -> None:
    with pytest.raises(AgreementError, match="parties"):
        agreement(parties=tuple(reversed(agreement().parties)))
    with pytest.raises(AgreementError, match="valid_until"):
        agreement(valid_until=agreement().valid_from)
    with pytest.raises(AgreementError, match="decimal_places"):
        agreement(decimal_places=7)
    a = agreement()
    assert a.party(HOME).plan(EventType.SMS_MO).price == 4_000
    assert a.counterparty(HOME).tadig == VISITED
    with pytest.raises(AgreementError, match="not a party"):
        a.party("GBRXX")
