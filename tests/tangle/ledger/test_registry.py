"""The registry rules, one refusal per rule, each by its conflict code; the registry root and
its audit paths; the codec of registry entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from tangle.errors import InvalidDeviceRecordError, NonCanonicalError, WrongNetworkError
from tangle.ledger.ledger import Conflict
from tangle.ledger.registry import (
    Registry,
    apply_registry_diff,
    decode_entry,
    encode_entry,
    registry_path,
)
from tangle.ledger.registry_rules import (
    RegistryOverlay,
    RegistryRules,
    apply_record,
    validate_record,
)
from tangle.protocol.device import (
    DeviceRecord,
    DeviceStatus,
    IssuerRole,
    LiftQuarantine,
    Quarantine,
    RecordSignature,
    RotateKey,
    SetStatus,
    Update,
)
from tangle.protocol.ids import Signature
from tangle.protocol.merkle import root_from_path
from tangle.protocol.milestone import KeySet
from tangle.protocol.transaction import address_of
from tests.builders import NET
from tests.registry_records import admit, device_id, record, register, register_body, signer

if TYPE_CHECKING:
    from coordinator.signers import KeySigner

COMMITTEE = sorted((signer(100 + i) for i in range(3)), key=lambda s: s.public_key)
KEY_SET = KeySet(threshold=2, public_keys=tuple(s.public_key for s in COMMITTEE))
MAKER, OP1, OP2, OP3, AUTHORITY = (signer(n) for n in (10, 11, 12, 13, 14))
OUTSIDER = signer(66)
DEV, DEV2, GATEWAY, SENSOR = (signer(n) for n in (20, 21, 22, 23))


@dataclass
class Chain:
    """A registry moved forward one milestone per `apply` call."""

    rules: RegistryRules = field(default_factory=RegistryRules)
    registry: Registry = field(default_factory=Registry)
    index: int = 0

    def apply(self, *records: DeviceRecord) -> list[Conflict]:
        self.index += 1
        view = RegistryOverlay(base=self.registry)
        found = [
            apply_record(view, r, index=self.index, committee=KEY_SET, rules=self.rules)
            for r in records
        ]
        apply_registry_diff(self.registry, view.diff())
        return found


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    roles = [
        (MAKER, IssuerRole.MAKER),
        (OP1, IssuerRole.OPERATOR),
        (OP2, IssuerRole.OPERATOR),
        (OP3, IssuerRole.OPERATOR),
        (AUTHORITY, IssuerRole.AUTHORITY),
    ]
    assert c.apply(*(admit(s, role, COMMITTEE[:2]) for s, role in roles)) == [Conflict.NONE] * 5
    assert c.apply(register(DEV, MAKER, [OP1])) == [Conflict.NONE]
    return c


def test_issuer_admission_needs_a_committee_quorum_and_a_new_serial(chain: Chain) -> None:
    new = signer(50)
    assert chain.apply(
        admit(new, IssuerRole.OPERATOR, COMMITTEE[:1]),
        admit(new, IssuerRole.OPERATOR, [*COMMITTEE[:2], OUTSIDER]),
        admit(MAKER, IssuerRole.MAKER, COMMITTEE),  # serial 1 again: a replay
    ) == [
        Conflict.COMMITTEE_QUORUM_UNMET,
        Conflict.COMMITTEE_QUORUM_UNMET,
        Conflict.DEVICE_RECORD_REPLAYED,
    ]
    assert new.public_key not in chain.registry.issuers


def test_registration_rules_each_refuse_by_name(chain: Chain) -> None:
    body = register_body(DEV2, MAKER.public_key)
    assert chain.apply(
        register(DEV, MAKER, [OP1]),
        register(DEV2, MAKER, [OUTSIDER]),  # a forged endorsement: not an admitted issuer
        record(body, [MAKER, OP1]),  # the device key did not sign
        register(DEV2, MAKER, []),  # no operator
        record(register_body(DEV2, OP1.public_key), [DEV2, OP1, OP2]),  # the maker is no maker
        register(SENSOR, MAKER, [OP1], gateway=device_id(OUTSIDER)),
    ) == [
        Conflict.DEVICE_ALREADY_REGISTERED,
        Conflict.ENDORSER_NOT_ADMITTED,
        Conflict.DEVICE_KEY_NOT_SIGNED,
        Conflict.ENDORSEMENT_POLICY_UNMET,
        Conflict.ENDORSEMENT_POLICY_UNMET,
        Conflict.GATEWAY_NOT_USABLE,
    ]
    assert set(chain.registry.devices) == {device_id(DEV)}


def test_the_policy_is_the_networks(chain: Chain) -> None:
    chain.rules = RegistryRules(operator_endorsements=2, authority_endorsements=1)
    assert chain.apply(
        register(DEV2, MAKER, [OP1, AUTHORITY]),
        register(DEV2, MAKER, [OP1, OP2]),
        register(DEV2, MAKER, [OP1, OP2, AUTHORITY]),
    ) == [Conflict.ENDORSEMENT_POLICY_UNMET, Conflict.ENDORSEMENT_POLICY_UNMET, Conflict.NONE]
    assert chain.registry.devices[device_id(DEV2)].endorsers == tuple(
        sorted(s.public_key for s in (MAKER, OP1, OP2, AUTHORITY))
    )


def test_a_constrained_device_sits_behind_an_active_full_function_gateway(chain: Chain) -> None:
    assert chain.apply(
        register(GATEWAY, MAKER, [OP1]),
        register(SENSOR, MAKER, [OP1], gateway=device_id(GATEWAY)),
        register(DEV2, MAKER, [OP1], gateway=device_id(SENSOR)),  # behind a constrained one
    ) == [Conflict.NONE, Conflict.NONE, Conflict.GATEWAY_NOT_USABLE]


def _rotate(serial: int, new: KeySigner, signers: list[KeySigner]) -> DeviceRecord:
    body = RotateKey(
        device_id=device_id(DEV),
        serial=serial,
        new_key=new.public_key,
        new_address=address_of(new.public_key),
    )
    return record(body, signers)


def test_updates_and_rotations_need_the_current_key(chain: Chain) -> None:
    new = signer(30)
    update = Update(device_id=device_id(DEV), serial=1, attributes_hash=b"\x01" * 32, uri=b"")
    assert chain.apply(
        record(update, [OUTSIDER]),
        record(
            Update(device_id=device_id(DEV2), serial=1, attributes_hash=bytes(32), uri=b""), [DEV2]
        ),
        record(update, [DEV]),
        record(update, [DEV]),  # the same serial again: a replay
        _rotate(2, new, [new, OP1]),  # not signed by the old key
        _rotate(2, new, [DEV, OP1]),  # not signed by the new key
        _rotate(2, new, [DEV, new]),  # no issuer
        _rotate(2, new, [DEV, new, OUTSIDER]),
        _rotate(2, MAKER, [DEV, MAKER]),  # an issuer's own key is its signature, not a co-signer
        _rotate(2, new, [DEV, new, OP1]),
    ) == [
        Conflict.DEVICE_KEY_NOT_SIGNED,
        Conflict.DEVICE_NOT_REGISTERED,
        Conflict.NONE,
        Conflict.DEVICE_RECORD_REPLAYED,
        Conflict.DEVICE_KEY_NOT_SIGNED,
        Conflict.DEVICE_KEY_NOT_SIGNED,
        Conflict.ENDORSEMENT_POLICY_UNMET,
        Conflict.ENDORSEMENT_POLICY_UNMET,
        Conflict.ENDORSEMENT_POLICY_UNMET,
        Conflict.NONE,
    ]
    entry = chain.registry.devices[device_id(DEV)]
    assert (entry.key, entry.serial, entry.attributes_hash) == (new.public_key, 2, b"\x01" * 32)
    assert chain.registry.by_key == {new.public_key: device_id(DEV)}
    later = Update(device_id=device_id(DEV), serial=3, attributes_hash=bytes(32), uri=b"")
    assert chain.apply(record(later, [DEV]), register(DEV2, MAKER, [OP1])) == [
        Conflict.DEVICE_KEY_NOT_SIGNED,
        Conflict.NONE,
    ]
    assert chain.apply(_rotate(3, DEV2, [new, DEV2, OP1])) == [Conflict.DEVICE_KEY_IN_USE]


def _status(serial: int, status: DeviceStatus) -> SetStatus:
    return SetStatus(device_id=device_id(DEV), serial=serial, status=status)


def test_status_changes_by_an_operator_or_the_maker_and_revocation_is_final(chain: Chain) -> None:
    assert chain.apply(
        record(_status(1, DeviceStatus.SUSPENDED), [OUTSIDER]),
        record(_status(1, DeviceStatus.SUSPENDED), [AUTHORITY]),
        record(_status(1, DeviceStatus.SUSPENDED), [OP2]),
        record(_status(2, DeviceStatus.SUSPENDED), [OP2]),
        record(_status(3, DeviceStatus.ACTIVE), [MAKER]),
        record(_status(4, DeviceStatus.REVOKED), [OP1]),
        record(_status(5, DeviceStatus.ACTIVE), [OP1]),
    ) == [
        Conflict.ENDORSER_NOT_ADMITTED,
        Conflict.ENDORSER_NOT_ADMITTED,
        Conflict.NONE,
        Conflict.DEVICE_STATUS_INVALID,
        Conflict.NONE,
        Conflict.NONE,
        Conflict.DEVICE_STATUS_INVALID,
    ]
    assert chain.registry.devices[device_id(DEV)].status is DeviceStatus.REVOKED


def _quarantine(serial: int, expires_after: int = 50) -> Quarantine:
    return Quarantine(
        device_id=device_id(DEV),
        serial=serial,
        reason=7,
        evidence_hash=b"\x0e" * 32,
        expires_after=expires_after,
    )


def test_quarantine_and_lift_take_the_operator_quorum(chain: Chain) -> None:
    lift = LiftQuarantine(device_id=device_id(DEV), serial=3)
    assert chain.apply(
        record(_quarantine(1), [OP1]),  # below the threshold of 2
        record(_quarantine(1), [OP1, MAKER]),  # the maker is no operator
        record(_quarantine(1, expires_after=2), [OP1, OP2]),  # expired already at milestone 3
        record(lift, [OP1, OP2]),  # nothing to lift
        record(_quarantine(2), [OP1, OP2]),
        record(_quarantine(2), [OP2, OP3]),  # the same serial: a replay
    ) == [
        Conflict.QUARANTINE_QUORUM_UNMET,
        Conflict.ENDORSER_NOT_ADMITTED,
        Conflict.QUARANTINE_EXPIRED,
        Conflict.NOT_QUARANTINED,
        Conflict.NONE,
        Conflict.DEVICE_RECORD_REPLAYED,
    ]
    entry = chain.registry.devices[device_id(DEV)]
    assert entry.quarantined_at(3)
    assert entry.quarantined_at(50)
    assert not entry.quarantined_at(51)
    assert chain.registry.quarantined(DEV.public_key, 3) == entry
    assert chain.apply(record(lift, [OP3]), record(lift, [OP1, OP3])) == [
        Conflict.QUARANTINE_QUORUM_UNMET,
        Conflict.NONE,
    ]
    assert chain.registry.quarantined(DEV.public_key, 4) is None


def test_the_registry_root_proves_each_entry(chain: Chain) -> None:
    chain.apply(register(GATEWAY, MAKER, [OP1]), register(DEV2, MAKER, [OP2]))
    root = chain.registry.root
    for device in (DEV, DEV2, GATEWAY):
        entry, path = registry_path(chain.registry, device_id(device))
        assert decode_entry(encode_entry(entry)) == entry
        assert root_from_path(encode_entry(entry), path) == root
    fresh = Registry()
    apply_registry_diff(fresh, RegistryOverlay(base=fresh).diff())
    assert fresh.root != root


def test_entry_decoding_is_strict(chain: Chain) -> None:
    data = encode_entry(chain.registry.devices[device_id(DEV)])
    with pytest.raises(NonCanonicalError):
        decode_entry(data[:-1] + b"\x02")


def test_forged_signatures_and_other_networks_are_refused_before_attach() -> None:
    rec = register(DEV, MAKER, [OP1])
    validate_record(rec, NET)
    with pytest.raises(WrongNetworkError):
        validate_record(rec, NET + 1)
    sigs = list(rec.signatures)
    sigs[1] = RecordSignature(public_key=sigs[1].public_key, signature=Signature(bytes(64)))
    forged = DeviceRecord(network_id=NET, body=rec.body, signatures=tuple(sigs))
    with pytest.raises(InvalidDeviceRecordError):
        validate_record(forged, NET)
