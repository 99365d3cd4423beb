"""Several nodes fed the same registry records in different arrival orders reach the same
registry and ledger state hash, and refuse forgeries and replays by name.

A hypothesis state machine sends admissions, registrations, updates, rotations, status changes,
quarantines and lifts (valid ones and deliberate forgeries) through a coordinator's node, issues
milestones, and delivers every message to followers in a shuffled order; one follower restarts
from its database now and then. Invariants: every node has the coordinator's confirmed index,
state hash and registry root, and the milestone's registry root is theirs. Each forgery is
checked against the conflict codes its rule allows: a registration endorsed by a key that was
never admitted, a rotation not signed by the device's key, a quarantine signed by one operator
(the threshold is 2), and a replay of an applied record are never applied.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import trio
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from coordinator import Coordinator, Journal, KeySigner
from tangle.errors import DuplicateMessageError, DuplicatePayloadError, QuarantinedDeviceError
from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Conflict
from tangle.node.core import Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.protocol.device import (
    DeviceId,
    DeviceStatus,
    IssuerRole,
    LiftQuarantine,
    Quarantine,
    RotateKey,
    SetStatus,
    Update,
)
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import KeySet, Milestone
from tangle.protocol.transaction import address_of
from tests.builders import NET, genesis, key, on_tips
from tests.registry_records import admit, device_id, record, register, signer

if TYPE_CHECKING:
    from tangle.protocol.device import DeviceRecord
    from tangle.protocol.ids import MessageId

PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=1)
COMMITTEE = [KeySigner(bytes([i]) * 32) for i in (1, 2, 3)]
SCHEDULE = KeySchedule(
    entries=((1, KeySet(threshold=2, public_keys=tuple(sorted(s.public_key for s in COMMITTEE)))),)
)
GENESIS = genesis([(key(1), 1_000)])
MAKER = signer(10)
OPERATORS = [signer(11 + i) for i in range(3)]
OUTSIDER = signer(66)
ISSUERS = [(MAKER, IssuerRole.MAKER), *((op, IssuerRole.OPERATOR) for op in OPERATORS)]
DEVICES = [signer(20 + i) for i in range(5)]
FOLLOWERS = 2

FORGED_ENDORSEMENT = frozenset(
    {
        Conflict.ENDORSER_NOT_ADMITTED,
        Conflict.DEVICE_ALREADY_REGISTERED,
        Conflict.DEVICE_KEY_IN_USE,
    }
)
_DEVICE_GONE = frozenset(
    {
        Conflict.DEVICE_NOT_REGISTERED,
        Conflict.DEVICE_STATUS_INVALID,
        Conflict.DEVICE_RECORD_REPLAYED,
    }
)
ROTATION_WITHOUT_OLD_KEY = _DEVICE_GONE | {Conflict.DEVICE_KEY_NOT_SIGNED}
QUARANTINE_BELOW_THRESHOLD = _DEVICE_GONE | {Conflict.QUARANTINE_QUORUM_UNMET}


async def _ignore(raw: bytes) -> None:
    del raw


class RegistryAgreement(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)
        self.origin = self._open("origin")
        self.followers = [self._open(f"f{i}") for i in range(FOLLOWERS)]
        self.coordinator = Coordinator(
            Node(self.origin), Journal.open(self.root / "journal.db"), COMMITTEE
        )
        self.rng = np.random.default_rng(0)
        self.undelivered: list[bytes] = []
        self.serial = 1
        self.fresh = 1000
        # Message id -> (record, the conflicts it may meet; None: any outcome).
        self.sent: dict[MessageId, tuple[DeviceRecord, frozenset[Conflict] | None]] = {}
        self.applied: list[DeviceRecord] = []

    def _open(self, name: str) -> LedgerNode:
        return LedgerNode.open(
            self.root / f"{name}.db", genesis=GENESIS, params=PARAMS, schedule=SCHEDULE
        )

    def teardown(self) -> None:
        for node in (self.origin, *self.followers):
            node.close()
        self.dir.cleanup()

    def _next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def _send(self, rec: DeviceRecord, allowed: frozenset[Conflict] | None = None) -> None:
        raw = on_tips(self.origin.core, rec, self.rng)
        try:
            self.origin.submit(raw)
        except DuplicatePayloadError:
            return  # a replay of a record still live in the window: refused at attach
        except QuarantinedDeviceError as refused:  # signed by a quarantined device
            entry = self.origin.core.ledger.registry.devices[DeviceId(refused.device_id)]
            assert entry.quarantined_at(self.origin.core.confirmed_index)
            return
        self.undelivered.append(raw)
        self.sent[decode_message(raw).id] = (rec, allowed)

    @initialize(data=st.data())
    def admit_issuers_and_register_devices(self, data: st.DataObject) -> None:
        """Milestone 1 admits the issuers, milestone 2 registers three devices, one of them a
        constrained device behind another."""
        for issuer, role in ISSUERS:
            self._send(admit(issuer, role, COMMITTEE[:2], serial=self._next_serial()))
        self.milestone(data)
        self._send(register(DEVICES[0], MAKER, OPERATORS[:1]))
        self._send(register(DEVICES[1], MAKER, OPERATORS[1:]))
        self.milestone(data)
        self._send(register(DEVICES[2], MAKER, OPERATORS[:1], gateway=device_id(DEVICES[0])))
        self.milestone(data)
        assert len(self.origin.core.ledger.registry.devices) == 3

    # -- records ---------------------------------------------------------------------------

    @rule(which=st.integers(0, len(ISSUERS) - 1), quorum=st.integers(1, 3))
    def admit_issuer(self, which: int, quorum: int) -> None:
        issuer, role = ISSUERS[which]
        self._send(admit(issuer, role, COMMITTEE[:quorum], serial=self._next_serial()))

    @rule(
        device=st.integers(0, len(DEVICES) - 1),
        operators=st.lists(st.integers(0, 2), max_size=2, unique=True),
        gateway=st.none() | st.integers(0, len(DEVICES) - 1),
    )
    def register_device(self, device: int, operators: list[int], gateway: int | None) -> None:
        behind = None if gateway is None else device_id(DEVICES[gateway])
        endorsers = [OPERATORS[i] for i in operators]
        self._send(register(DEVICES[device], MAKER, endorsers, gateway=behind))

    @rule(device=st.integers(0, len(DEVICES) - 1))
    def forged_endorsement(self, device: int) -> None:
        self._send(register(DEVICES[device], MAKER, [OUTSIDER]), FORGED_ENDORSEMENT)

    @rule(device=st.integers(0, len(DEVICES) - 1), by=st.integers(0, len(DEVICES) - 1))
    def update(self, device: int, by: int) -> None:
        body = Update(
            device_id=device_id(DEVICES[device]),
            serial=self._next_serial(),
            attributes_hash=self.serial.to_bytes(32, "little"),
            uri=b"",
        )
        self._send(record(body, [DEVICES[by]]))

    @rule(device=st.integers(0, len(DEVICES) - 1), signed_by_old=st.booleans())
    def rotate(self, device: int, signed_by_old: bool) -> None:
        self.fresh += 1
        new = signer(self.fresh)
        body = RotateKey(
            device_id=device_id(DEVICES[device]),
            serial=self._next_serial(),
            new_key=new.public_key,
            new_address=address_of(new.public_key),
        )
        if signed_by_old:  # by the first key: the current one unless it rotated already
            self._send(record(body, [DEVICES[device], new, OPERATORS[0]]))
        else:
            self._send(record(body, [new, OPERATORS[0]]), ROTATION_WITHOUT_OLD_KEY)

    @rule(device=st.integers(0, len(DEVICES) - 1), status=st.sampled_from(DeviceStatus))
    def set_status(self, device: int, status: DeviceStatus) -> None:
        body = SetStatus(
            device_id=device_id(DEVICES[device]), serial=self._next_serial(), status=status
        )
        self._send(record(body, [OPERATORS[1]]))

    @rule(
        device=st.integers(0, len(DEVICES) - 1),
        signers=st.integers(1, 3),
        lift=st.booleans(),
        expires_in=st.integers(0, 3),
    )
    def quarantine(self, device: int, signers: int, lift: bool, expires_in: int) -> None:
        target = device_id(DEVICES[device])
        serial = self._next_serial()
        body: Quarantine | LiftQuarantine = (
            LiftQuarantine(device_id=target, serial=serial)
            if lift
            else Quarantine(
                device_id=target,
                serial=serial,
                reason=1,
                evidence_hash=bytes(32),
                expires_after=self.origin.core.confirmed_index + 1 + expires_in,
            )
        )
        allowed = QUARANTINE_BELOW_THRESHOLD if signers == 1 and not lift else None
        self._send(record(body, OPERATORS[:signers]), allowed)

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        if self.applied:
            rec = data.draw(st.sampled_from(self.applied))
            self._send(rec, frozenset(Conflict) - {Conflict.NONE})

    # -- milestones and delivery -----------------------------------------------------------

    @rule(data=st.data())
    def milestone(self, data: st.DataObject) -> None:
        issue = trio.run(self.coordinator.issue, _ignore)
        self.undelivered.extend(issue.messages)
        for follower in self.followers:
            for raw in data.draw(st.permutations(self.undelivered)):
                with contextlib.suppress(DuplicateMessageError):
                    follower.submit(raw)
        self.undelivered.clear()
        for mid, (rec, allowed) in list(self.sent.items()):
            metadata = self.origin.storage.metadata(mid)
            if metadata is None or metadata.referenced_by is None:
                continue
            del self.sent[mid]
            event(f"{type(rec.body).__name__}: {metadata.conflict.name}")
            if allowed is not None:
                assert metadata.conflict in allowed, (rec.body, metadata.conflict)
            if metadata.conflict is Conflict.NONE:
                self.applied.append(rec)

    @rule(which=st.integers(0, FOLLOWERS - 1))
    def restart(self, which: int) -> None:
        node = self.followers[which]
        before = node.core.ledger.state_hash
        node.close()
        self.followers[which] = self._open(f"f{which}")
        assert self.followers[which].core.ledger.state_hash == before

    @invariant()
    def nodes_agree(self) -> None:
        core = self.origin.core
        head = self.origin.storage.head()
        assert head.state_hash == core.ledger.state_hash
        for follower in self.followers:
            assert follower.core.confirmed_index == core.confirmed_index
            assert follower.core.ledger.state_hash == core.ledger.state_hash
            assert follower.core.ledger.registry.root == core.ledger.registry.root
        record_ = self.origin.storage.milestone(core.confirmed_index)
        if record_ is not None:
            payload = decode_message(record_.raw).message.payload
            assert isinstance(payload, Milestone)
            assert payload.essence.registry_root == core.ledger.registry.root

    @invariant()
    def no_outsider_vouches(self) -> None:
        for entry in self.origin.core.ledger.registry.devices.values():
            assert OUTSIDER.public_key not in entry.endorsers


RegistryAgreement.TestCase.settings = settings(
    max_examples=20, stateful_step_count=25, deadline=None
)
TestRegistryAgreement = RegistryAgreement.TestCase
