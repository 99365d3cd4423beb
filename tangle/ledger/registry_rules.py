"""The registry rules white flag applies, record by record, in milestone cone order.

Every signature of a record verified when its message was attached (`validate_record`), so
here only who signed matters. A record that breaks a rule stays in the tangle, marked
conflicting with the `Conflict` of that rule, and changes nothing:

- admit issuer: at least `threshold` keys of the committee in force at the milestone signed,
  and no other key (`COMMITTEE_QUORUM_UNMET`); the serial is above the issuer's last
  (`DEVICE_RECORD_REPLAYED`).
- register: the device is new (`DEVICE_ALREADY_REGISTERED`), its key is no other device's
  current key (`DEVICE_KEY_IN_USE`), its key signed (`DEVICE_KEY_NOT_SIGNED`), every other signer
  is an admitted issuer (`ENDORSER_NOT_ADMITTED`), the named maker is an admitted maker and the
  endorsements meet the network's policy (`ENDORSEMENT_POLICY_UNMET`), a constrained device's
  gateway is an active, full-function device (`GATEWAY_NOT_USABLE`).
- update, rotate, status, quarantine, lift: the device is registered (`DEVICE_NOT_REGISTERED`)
  and not revoked (`DEVICE_STATUS_INVALID`); the serial is above the last
  (`DEVICE_RECORD_REPLAYED`).
- update: signed by the device's current key. Rotate: signed by the current key and the new one
  (`DEVICE_KEY_NOT_SIGNED`) and by an admitted issuer (`ENDORSEMENT_POLICY_UNMET`), the new key
  in no one's use (`DEVICE_KEY_IN_USE`). Status: signed by an admitted operator or the device's
  maker (`ENDORSER_NOT_ADMITTED`), and a change (`DEVICE_STATUS_INVALID`).
- quarantine, lift: every signer an admitted operator (`ENDORSER_NOT_ADMITTED`), at least the
  network's `quarantine_threshold` of them (`QUARANTINE_QUORUM_UNMET`); a lift needs a quarantine
  in force (`NOT_QUARANTINED`), a quarantine an expiry not before the milestone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tangle.errors import InvalidDeviceRecordError, WrongNetworkError
from tangle.protocol.codec import require_uint
from tangle.protocol.device import (
    MAX_SIGNERS,
    AdmitIssuer,
    Capability,
    DeviceId,
    DeviceRecord,
    DeviceStatus,
    IssuerRole,
    LiftQuarantine,
    Quarantine,
    Register,
    RotateKey,
    SetStatus,
    Update,
)
from tangle.protocol.signature import is_valid

from .ledger import Conflict
from .registry import DeviceEntry, IssuerEntry, QuarantineState, Registry, RegistryDiff

if TYPE_CHECKING:
    from tangle.protocol.ids import PublicKey
    from tangle.protocol.milestone import KeySet


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryRules:
    """What a network requires of registry records (every node of it must agree)."""

    maker_endorses: bool = True
    """A registration needs the signature of the maker it names."""
    operator_endorsements: int = 1
    """...and of at least this many admitted operators."""
    authority_endorsements: int = 0
    """...and of at least this many admitted authorities."""
    quarantine_threshold: int = 2
    """k of the k-of-n operators a quarantine or a lift needs."""

    def __post_init__(self) -> None:
        require_uint("RegistryRules.operator_endorsements", self.operator_endorsements, MAX_SIGNERS)
        require_uint(
            "RegistryRules.authority_endorsements", self.authority_endorsements, MAX_SIGNERS
        )
        require_uint(
            "RegistryRules.quarantine_threshold", self.quarantine_threshold, MAX_SIGNERS, minimum=1
        )


def validate_record(record: DeviceRecord, network_id: int) -> None:
    """The stateless checks a node makes before it attaches a record: its network, and every
    signature valid (a forged one is refused here, by name)."""
    if record.network_id != network_id:
        raise WrongNetworkError(network_id, record.network_id)
    message = record.signing_message()
    for position, sig in enumerate(record.signatures):
        if not is_valid(sig.public_key, message, sig.signature):
            raise InvalidDeviceRecordError(f"signature {position} does not verify")


@dataclass(slots=True)
class RegistryOverlay:
    """The registry plus the changes of the records applied so far in one cone (read only
    base; nothing is written to it)."""

    base: Registry
    devices: dict[DeviceId, DeviceEntry] = field(default_factory=dict)
    issuers: dict[PublicKey, IssuerEntry] = field(default_factory=dict)
    keys: dict[PublicKey, DeviceId | None] = field(default_factory=dict)

    def device(self, device_id: DeviceId) -> DeviceEntry | None:
        found = self.devices.get(device_id)
        return found if found is not None else self.base.devices.get(device_id)

    def issuer(self, key: PublicKey, role: IssuerRole | None = None) -> IssuerEntry | None:
        """The admitted issuer with `key` (and `role`, if given)."""
        found = self.issuers.get(key) or self.base.issuers.get(key)
        if found is None or not found.admitted or (role is not None and found.role != role):
            return None
        return found

    def key_owner(self, key: PublicKey) -> DeviceId | None:
        if key in self.keys:
            return self.keys[key]
        return self.base.by_key.get(key)

    def put(self, entry: DeviceEntry, old_key: PublicKey | None = None) -> None:
        if old_key is not None and old_key != entry.key:
            self.keys[old_key] = None
        self.keys[entry.key] = entry.device_id
        self.devices[entry.device_id] = entry

    def diff(self) -> RegistryDiff:
        root, digest = self.base.roots_with(self.devices, self.issuers)
        return RegistryDiff(
            devices=tuple(self.devices.values()),
            issuers=tuple(self.issuers.values()),
            root=root,
            digest=digest,
        )


def apply_record(
    view: RegistryOverlay,
    record: DeviceRecord,
    *,
    index: int,
    committee: KeySet | None,
    rules: RegistryRules,
) -> Conflict:
    """Apply `record` at milestone `index` to `view`, or return why not (nothing changes).
    `committee` is the key set in force at `index` (None: no one may admit issuers)."""
    body = record.body
    signers = record.signers
    if isinstance(body, AdmitIssuer):
        return _admit(view, body, signers, committee)
    if isinstance(body, Register):
        return _register(view, body, signers, index, rules)
    entry = view.device(body.device_id)
    if entry is None:
        return Conflict.DEVICE_NOT_REGISTERED
    if entry.status is DeviceStatus.REVOKED:
        return Conflict.DEVICE_STATUS_INVALID
    if isinstance(body, Quarantine | LiftQuarantine):
        return _quarantine(view, entry, body, signers, index, rules)
    if body.serial <= entry.serial:
        return Conflict.DEVICE_RECORD_REPLAYED
    if isinstance(body, Update):
        if entry.key not in signers:
            return Conflict.DEVICE_KEY_NOT_SIGNED
        changed = replace(entry, attributes_hash=body.attributes_hash, uri=body.uri)
    elif isinstance(body, RotateKey):
        if entry.key not in signers or body.new_key not in signers:
            return Conflict.DEVICE_KEY_NOT_SIGNED
        others = signers - {entry.key, body.new_key}
        if not others or any(view.issuer(k) is None for k in others):
            return Conflict.ENDORSEMENT_POLICY_UNMET
        if view.key_owner(body.new_key) is not None:
            return Conflict.DEVICE_KEY_IN_USE
        changed = replace(entry, key=body.new_key, address=body.new_address)
    else:
        conflict = _status(view, entry, body, signers)
        if conflict is not Conflict.NONE:
            return conflict
        changed = replace(entry, status=body.status)
    view.put(replace(changed, serial=body.serial, updated_at=index), old_key=entry.key)
    return Conflict.NONE


def _admit(
    view: RegistryOverlay,
    body: AdmitIssuer,
    signers: frozenset[PublicKey],
    committee: KeySet | None,
) -> Conflict:
    if (
        committee is None
        or not signers <= set(committee.public_keys)
        or len(signers) < committee.threshold
    ):
        return Conflict.COMMITTEE_QUORUM_UNMET
    known = view.issuers.get(body.issuer) or view.base.issuers.get(body.issuer)
    if known is not None and body.serial <= known.serial:
        return Conflict.DEVICE_RECORD_REPLAYED
    view.issuers[body.issuer] = IssuerEntry(
        key=body.issuer,
        role=body.role,
        admitted=body.admitted,
        serial=body.serial,
        name=body.name,
    )
    return Conflict.NONE


def _register(
    view: RegistryOverlay,
    body: Register,
    signers: frozenset[PublicKey],
    index: int,
    rules: RegistryRules,
) -> Conflict:
    device_id = body.device_id
    if view.device(device_id) is not None:
        return Conflict.DEVICE_ALREADY_REGISTERED
    if view.key_owner(body.device_key) is not None:
        return Conflict.DEVICE_KEY_IN_USE
    if body.device_key not in signers:
        return Conflict.DEVICE_KEY_NOT_SIGNED
    endorsers = signers - {body.device_key}
    roles = [view.issuer(k) for k in endorsers]
    if any(r is None for r in roles):
        return Conflict.ENDORSER_NOT_ADMITTED
    counted = dict.fromkeys(IssuerRole, 0)
    for issuer in roles:
        if issuer is not None:
            counted[issuer.role] += 1
    maker_ok = not rules.maker_endorses or (
        body.maker in endorsers and view.issuer(body.maker, IssuerRole.MAKER) is not None
    )
    if (
        not maker_ok
        or counted[IssuerRole.OPERATOR] < rules.operator_endorsements
        or counted[IssuerRole.AUTHORITY] < rules.authority_endorsements
    ):
        return Conflict.ENDORSEMENT_POLICY_UNMET
    if body.capability is Capability.CONSTRAINED:
        gateway = view.device(DeviceId(body.gateway))
        if (
            gateway is None
            or gateway.capability is not Capability.FULL
            or gateway.status is not DeviceStatus.ACTIVE
        ):
            return Conflict.GATEWAY_NOT_USABLE
    view.put(
        DeviceEntry(
            device_id=device_id,
            key=body.device_key,
            address=body.address,
            maker=body.maker,
            model=body.model,
            capability=body.capability,
            gateway=body.gateway,
            attributes_hash=body.attributes_hash,
            uri=body.uri,
            status=DeviceStatus.ACTIVE,
            serial=0,
            registered_at=index,
            updated_at=index,
            endorsers=tuple(sorted(endorsers)),
        )
    )
    return Conflict.NONE


def _status(
    view: RegistryOverlay, entry: DeviceEntry, body: SetStatus, signers: frozenset[PublicKey]
) -> Conflict:
    allowed = any(
        view.issuer(k, IssuerRole.OPERATOR) is not None
        or (k == entry.maker and view.issuer(k, IssuerRole.MAKER) is not None)
        for k in signers
    )
    if not allowed:
        return Conflict.ENDORSER_NOT_ADMITTED
    if body.status is entry.status:
        return Conflict.DEVICE_STATUS_INVALID
    return Conflict.NONE


def _quarantine(
    view: RegistryOverlay,
    entry: DeviceEntry,
    body: Quarantine | LiftQuarantine,
    signers: frozenset[PublicKey],
    index: int,
    rules: RegistryRules,
) -> Conflict:
    if body.serial <= entry.quarantine_serial:
        return Conflict.DEVICE_RECORD_REPLAYED
    if any(view.issuer(k, IssuerRole.OPERATOR) is None for k in signers):
        return Conflict.ENDORSER_NOT_ADMITTED
    if len(signers) < rules.quarantine_threshold:
        return Conflict.QUARANTINE_QUORUM_UNMET
    if isinstance(body, LiftQuarantine):
        if not entry.quarantined_at(index):
            return Conflict.NOT_QUARANTINED
        state = None
    else:
        if body.expires_after < index:
            return Conflict.QUARANTINE_EXPIRED
        state = QuarantineState(
            reason=body.reason,
            evidence_hash=body.evidence_hash,
            since=index,
            expires_after=body.expires_after,
        )
    view.put(replace(entry, quarantine_serial=body.serial, quarantine=state, updated_at=index))
    return Conflict.NONE
