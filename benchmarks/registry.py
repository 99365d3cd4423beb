"""Device registrations applied by white flag: `python -m benchmarks.registry [--json] [--quick]`.

Every figure is measured in this run:

* `registrations_per_s`: `white_flag` over one milestone cone of `REGISTRATIONS` registration
  messages (records signed by the device, its maker and an operator; their signatures were
  checked at attach, so white flag checks who signed), followed by `apply_registry_diff`: the
  rules, the new entries, the registry root the milestone commits to and the state digest;
  against a registry that already holds `BASE_DEVICES` devices; median of `REPEATS`. Checked:
  every registration applied (`RegistryCheckError` otherwise: no figure is printed);
* `registrations_node_per_s`: the same registrations as messages with proof-of-work through a
  fresh node (`Node.submit_many` in groups of `BATCH`: decoding, the 3 signatures of each record,
  attach, the group commit) and a `Coordinator` milestone applying them all (white flag, the
  registry written to sqlite in the milestone's transaction); timed from the first
  `submit_many` to the milestone persisted, one run. Checked: every device in the node's
  registry and stored;
* `ed25519_verify_per_s`: `is_valid` on one core (`benchmarks.ledger.verify_rate`), the ceiling
  of the node path (3 verifications per registration): `ratio_node_to_verify_ceiling` is
  `registrations_node_per_s * 3 / ed25519_verify_per_s`;
* `one_update_ms`, `one_registration_ms`: one milestone (white flag and `apply_registry_diff`)
  that changes one device, or registers one, in a registry of `ONE_CHANGE_BASE` devices;
  median of `ONE_CHANGE_REPEATS`. The registry root is kept in a `SortedMerkleTree`: an update
  costs one path, a registration rebuilds the subtrees after the new id from kept leaf hashes.
  At 100,000 devices on a shared 2-core machine, the code before that tree (the root
  recomputed from every entry each milestone) and this code, run one after the other: 507 ms
  -> 0.30 ms an update, 510 ms -> 39 ms a registration.

Target (issue #14): `registrations_per_s` >= 2,000. `measure_registrations` and
`registration_records` are what `benchmarks.anchoring` imports for its `registrations_per_s`.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final

import trio

from benchmarks import _ledger_workload as workload
from benchmarks._report import arguments, emit
from benchmarks.ledger import verify_rate
from coordinator import KeySigner
from tangle.ledger.ledger import Conflict
from tangle.ledger.registry import (
    DeviceEntry,
    IssuerEntry,
    Registry,
    apply_registry_diff,
    restore_registry,
)
from tangle.ledger.registry_rules import RegistryRules
from tangle.ledger.white_flag import ConeMessage, RegistryContext, white_flag
from tangle.protocol.codec import u64
from tangle.protocol.device import (
    NO_GATEWAY,
    AdmitIssuer,
    Capability,
    DeviceRecord,
    DeviceStatus,
    IssuerRole,
    Register,
    Update,
    device_id_of,
    sign_record,
)
from tangle.protocol.ids import MessageId, blake2b_256
from tangle.protocol.transaction import address_of
from tangle.window.dag import GENESIS_ID

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.ledger.registry import RegistryDiff
    from tangle.protocol.milestone import KeySet

TARGET_REGISTRATIONS_PER_S: Final = 2_000.0
REGISTRATIONS: Final = 10_000
QUICK_REGISTRATIONS: Final = 2_000
BASE_DEVICES: Final = 10_000
QUICK_BASE_DEVICES: Final = 1_000
REPEATS: Final = 3
ONE_CHANGE_BASE: Final = 100_000
QUICK_ONE_CHANGE_BASE: Final = 10_000
ONE_CHANGE_REPEATS: Final = 5
BATCH: Final = 1_000
SIGNATURES_PER_REGISTRATION: Final = 3
MAKER: Final = KeySigner(blake2b_256(b"tanglepay/bench/maker"))
OPERATOR: Final = KeySigner(blake2b_256(b"tanglepay/bench/operator"))


class RegistryCheckError(Exception):
    """The registry did not end where the benchmark requires: its figures would mean nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryBenchmark:
    """One run's figures."""

    registrations_per_s: float
    """Registrations white flag applies per second (median of the repeats)."""
    registrations_node_per_s: float
    """Registrations per second through a node: attach (signatures), storage, milestone."""
    ed25519_verify_per_s: float
    """Signature verifications per second on one core, in this run."""
    ratio_node_to_verify_ceiling: float
    """`registrations_node_per_s * 3 / ed25519_verify_per_s`."""
    registrations: int
    """Registrations in the measured cone."""
    base_devices: int
    """Devices the registry held before the cone."""
    one_update_ms: float
    """A milestone changing one device of `one_change_devices` (white flag and the registry
    diff: the root is updated along one path)."""
    one_registration_ms: float
    """A milestone registering one device onto `one_change_devices` (the root's subtrees after
    the new id are rebuilt from kept leaf hashes)."""
    one_change_devices: int
    """Devices the registry held for the two figures above."""
    cores: int
    """`os.cpu_count()`."""

    @property
    def targets_met(self) -> bool:
        return self.registrations_per_s >= TARGET_REGISTRATIONS_PER_S

    def to_json(self) -> dict[str, float | int | bool]:
        return {
            **asdict(self),
            "target_registrations_per_s": TARGET_REGISTRATIONS_PER_S,
            "targets_met": self.targets_met,
        }


def _device(i: int, salt: bytes) -> KeySigner:
    return KeySigner(blake2b_256(b"tanglepay/bench/device", salt, u64(i)))


def registration_records(network_id: int, count: int, salt: bytes = b"") -> list[DeviceRecord]:
    """`count` registrations of distinct full-function devices, each signed by the device,
    `MAKER` and `OPERATOR`."""
    records = []
    for i in range(count):
        device = _device(i, salt)
        body = Register(
            device_key=device.public_key,
            address=address_of(device.public_key),
            maker=MAKER.public_key,
            model=b"bench-sensor",
            capability=Capability.FULL,
            gateway=NO_GATEWAY,
            attributes_hash=blake2b_256(u64(i)),
            uri=b"",
        )
        records.append(sign_record(network_id, body, [device, MAKER, OPERATOR]))
    return records


def _issuers() -> list[IssuerEntry]:
    return [
        IssuerEntry(key=MAKER.public_key, role=IssuerRole.MAKER, admitted=True, serial=1, name=b""),
        IssuerEntry(
            key=OPERATOR.public_key, role=IssuerRole.OPERATOR, admitted=True, serial=1, name=b""
        ),
    ]


def _base_registry(network_id: int, base: int, committee: KeySet) -> Registry:
    """A registry with the issuers and `base` devices, built by the rules themselves."""
    registry = restore_registry([], _issuers())
    if base:
        records = registration_records(network_id, base, salt=b"base")
        result = _apply(registry, records, committee, index=1)
        apply_registry_diff(registry, result)
    return registry


def _apply(
    registry: Registry, records: Sequence[DeviceRecord], committee: KeySet, index: int
) -> RegistryDiff:
    """White flag over a chain of messages carrying `records`; all of them must apply."""
    cone: dict[MessageId, ConeMessage] = {}
    parent = GENESIS_ID
    for i, rec in enumerate(records):
        mid = MessageId(blake2b_256(b"tanglepay/bench/cone", u64(index), u64(i)))
        cone[mid] = ConeMessage(parents=(parent,), transaction=None, referenced=False, record=rec)
        parent = mid
    result = white_flag(
        index=index,
        parents=(parent,),
        lookup=cone.get,
        is_entry_point=lambda m: m == GENESIS_ID,
        unspent={},
        is_spent=lambda _: False,
        registry=RegistryContext(registry=registry, committee=committee, rules=RegistryRules()),
    )
    if len(result.records) != len(records):
        conflicts = {c for _, c in result.record_conflicts} or {Conflict.NONE}
        raise RegistryCheckError(f"{len(result.record_conflicts)} refused: {conflicts}")
    return result.registry


def measure_registrations(count: int, base: int) -> float:
    """Registrations per second white flag applies (with the registry diff), median of
    `REPEATS`, each against a fresh registry of `base` devices."""
    net = workload.devnet(workload.holder_keys(1), work_per_kib=16)
    committee = net.schedule.key_set_at(1)
    network_id = net.params.network_id
    records = registration_records(network_id, count)
    times = []
    for _ in range(REPEATS):
        registry = _base_registry(network_id, base, committee)
        began = time.perf_counter()
        diff = _apply(registry, records, committee, index=2)
        apply_registry_diff(registry, diff)
        times.append(time.perf_counter() - began)
        if len(registry.devices) != base + count:
            raise RegistryCheckError(f"{len(registry.devices)} devices, not {base + count}")
    return count / statistics.median(times)


def _entries(count: int) -> list[DeviceEntry]:
    """`count` active full-function device entries (made directly: only the registry root's
    cost is measured on them)."""
    entries = []
    for i in range(count):
        key = _device(i, b"base").public_key
        entries.append(
            DeviceEntry(
                device_id=device_id_of(key),
                key=key,
                address=address_of(key),
                maker=MAKER.public_key,
                model=b"bench-sensor",
                capability=Capability.FULL,
                gateway=NO_GATEWAY,
                attributes_hash=blake2b_256(u64(i)),
                uri=b"",
                status=DeviceStatus.ACTIVE,
                serial=0,
                registered_at=1,
                updated_at=1,
                endorsers=tuple(sorted((MAKER.public_key, OPERATOR.public_key))),
            )
        )
    return entries


def measure_one_change(base: int) -> tuple[float, float]:
    """Seconds white flag and `apply_registry_diff` take for a milestone that changes one device
    of a registry of `base` (an update signed by the device) and for one that registers one
    device; medians of `ONE_CHANGE_REPEATS` milestones, after one milestone not timed."""
    net = workload.devnet(workload.holder_keys(1), work_per_kib=16)
    committee = net.schedule.key_set_at(1)
    network_id = net.params.network_id
    registry = restore_registry(_entries(base), _issuers())
    index = 2
    updates: list[float] = []
    registrations: list[float] = []
    for n in range(ONE_CHANGE_REPEATS + 1):
        device = _device(n, b"base")
        body = Update(
            device_id=device_id_of(device.public_key),
            serial=1,
            attributes_hash=blake2b_256(b"changed", u64(n)),
            uri=b"",
        )
        update = sign_record(network_id, body, [device])
        fresh = registration_records(network_id, 1, salt=b"one" + u64(n))
        for records, times in (([update], updates), (fresh, registrations)):
            began = time.perf_counter()
            apply_registry_diff(registry, _apply(registry, records, committee, index=index))
            times.append(time.perf_counter() - began)
            index += 1
    return statistics.median(updates[1:]), statistics.median(registrations[1:])


def measure_node(count: int) -> float:
    """Registrations per second through a fresh node and one milestone (issuers admitted by
    the committee in a first milestone, not timed)."""
    net = workload.devnet(workload.holder_keys(1), work_per_kib=16)
    network_id = net.params.network_id
    view = workload.SenderView(seed=3)
    admissions = [
        sign_record(
            network_id,
            AdmitIssuer(issuer=i.key, role=i.role, admitted=True, serial=1, name=b""),
            net.signers,
        )
        for i in _issuers()
    ]
    first = [workload.send(rec, view, net.params) for rec in admissions]
    raws = [workload.send(rec, view, net.params) for rec in registration_records(network_id, count)]
    with workload.harness_frozen(), workload.node_stack(net) as stack:

        async def run() -> float:
            await workload.submit_all(stack.node, first)
            await stack.coordinator.issue(workload.no_gossip)
            began = time.perf_counter()
            for start in range(0, len(raws), BATCH):
                await workload.submit_all(stack.node, raws[start : start + BATCH])
            await stack.coordinator.issue(workload.no_gossip)
            return time.perf_counter() - began

        seconds = trio.run(run)
        devices = len(stack.ledger.core.ledger.registry.devices)
        stored = stack.ledger.storage.load_ledger().registry.devices
        if devices != count or len(stored) != count:
            raise RegistryCheckError(f"{devices} devices in the core, {len(stored)} stored")
    return count / seconds


def measure(quick: bool) -> RegistryBenchmark:
    count = QUICK_REGISTRATIONS if quick else REGISTRATIONS
    base = QUICK_BASE_DEVICES if quick else BASE_DEVICES
    verify = verify_rate()
    node = measure_node(count)
    one_change = QUICK_ONE_CHANGE_BASE if quick else ONE_CHANGE_BASE
    update_s, registration_s = measure_one_change(one_change)
    return RegistryBenchmark(
        registrations_per_s=measure_registrations(count, base),
        registrations_node_per_s=node,
        ed25519_verify_per_s=verify,
        ratio_node_to_verify_ceiling=node * SIGNATURES_PER_REGISTRATION / verify,
        registrations=count,
        base_devices=base,
        one_update_ms=update_s * 1e3,
        one_registration_ms=registration_s * 1e3,
        one_change_devices=one_change,
        cores=os.cpu_count() or 1,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments(__doc__, quick="fewer registrations").parse_args(argv)
    result = measure(args.quick)
    lines = [
        (
            f"white flag         {result.registrations_per_s:10,.0f} registrations/s  "
            f"({result.registrations} onto {result.base_devices} devices)"
        ),
        (
            f"through a node     {result.registrations_node_per_s:10,.0f} registrations/s  "
            f"(ratio to the ed25519 ceiling {result.ratio_node_to_verify_ceiling:.2f})"
        ),
        f"ed25519 verify     {result.ed25519_verify_per_s:10,.0f} /s",
        (
            f"one change         {result.one_update_ms:10.2f} ms an update, "
            f"{result.one_registration_ms:.2f} ms a registration "
            f"(onto {result.one_change_devices} devices)"
        ),
    ]
    emit(result, lines, json_only=args.json)


if __name__ == "__main__":
    main()
