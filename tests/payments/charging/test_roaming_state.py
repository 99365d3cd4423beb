"""The roaming state on disk (`payments.charging.roaming_state`): a snapshot restores to the same
partners, Token As, tokens and sent CDRs; a document that breaks a rule raises a named error
and fills nothing; the file is replaced whole."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from payments.charging.errors import ChargingError
from payments.charging.ocpi_credentials import (
    Credentials,
    CredentialsRole,
    Endpoint,
    InterfaceRole,
    Party,
    Registry,
    Role,
)
from payments.charging.ocpi_session import WhitelistType
from payments.charging.ocpi_store import OcpiStore
from payments.charging.roaming_state import restore, save, snapshot

from .test_cdr_settlement import cdr
from .test_roaming_cpo import token

if TYPE_CHECKING:
    from pathlib import Path

ROLE = CredentialsRole(role=Role.CPO, party_id="CPO", country_code="NL", business_name="CPO")
EMSP = CredentialsRole(role=Role.EMSP, party_id="MSP", country_code="NL", business_name="MSP")


def _fresh() -> tuple[Registry, OcpiStore]:
    return Registry(ours=Credentials(token="unset", url="", roles=(ROLE,))), OcpiStore()


def test_the_state_round_trips_and_a_broken_one_fills_nothing(tmp_path: Path) -> None:
    registry, store = _fresh()
    registry.issue("token-A2")
    endpoint = Endpoint(identifier="cdrs", role=InterfaceRole.RECEIVER, url="http://e/cdrs")
    credentials = Credentials(token="token-B", url="http://e/ocpi/versions", roles=(EMSP,))
    registry.bind(Party(credentials=credentials, endpoints=(endpoint,), token="token-C"))
    store.put_token(token("RFID-1", WhitelistType.ALWAYS))
    store.add_cdr(cdr("CDR-1", 1_000))
    store.add_cdr(cdr("CDR-2", 2_000))
    store.mark_sent("CDR-1")
    path = tmp_path / "ocpi.json"
    save(path, registry, store)
    registry2, store2 = _fresh()
    assert restore(path, registry2, store2)
    assert registry2.pending == {"token-A2"}
    assert registry2.parties == registry.parties
    assert store2.tokens.rows == store.tokens.rows
    assert store2.cdrs.rows == store.cdrs.rows
    assert store2.sent == {"CDR-1"}
    assert snapshot(registry2, store2) == path.read_bytes()
    assert not restore(tmp_path / "none.json", *_fresh())
    doc = json.loads(path.read_text())
    for broken in (
        {**doc, "format": "other"},
        {**doc, "sent": [""]},
        {**doc, "tokens": [{"uid": "x"}]},
        {**doc, "parties": [{"token": "t"}]},
    ):
        path.write_text(json.dumps(broken))
        registry3, store3 = _fresh()
        with pytest.raises(ChargingError):
            restore(path, registry3, store3)
        assert (registry3.pending, registry3.parties, store3.cdrs.rows) == (set(), {}, {})
