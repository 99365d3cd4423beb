"""`python -m examples.sensor_registry --devnet DATA_DIR --forever`: the device registry's story
on a running devnet, round after round, until killed.

At start the devnet's committee (its seeds, from `secrets.json`) admits a maker and three
operators, keys fresh to this start, so a restarted flow needs nothing of the last one; a gateway
device registers. Each round (`--interval`, 5 s):

- until `--max-devices` are registered, `NEW_FULL` sensors register themselves and one
  constrained sensor registers behind the gateway, its record handed over by the gateway's client
  (`GatewayTransport`), each endorsed by the maker and an operator; the newest constrained
  sensor's firmware update, which the node takes only from its gateway, goes the same way;
- every sensor streams `READINGS` signed readings; the gateway (following the registry) verifies
  them, refuses the quarantined ones', seals a batch and anchors its root;
- once a milestone confirms the anchor, one reading's proof bundle is collected, written to
  `<DATA_DIR>/flows/registry-proof.json` and checked offline against `network.json`'s committee;
- every `QUARANTINE_EVERY` rounds a full sensor is hijacked: the network's threshold of operators
  quarantine it and the node refuses what its key signs; every `LIFT_EVERY` rounds the oldest
  quarantine is lifted and the gateway serves the sensor again.

Every message's proof-of-work is done here, on one thread (`LocalWork`): the node's
proof-of-work budget is per client address, and the devnet's other users share loopback's. One
JSON line a round on stdout (the first says which keys this start admitted); a round the node
fails (busy, catching up, a confirmation that takes too long) is one line naming the error, and
the next round goes on.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import trio

from coordinator.signers import KeySigner
from tangle.protocol.device import LiftQuarantine, sign_record
from tangle.protocol.ids import blake2b_256
from tangle.protocol.proof_bundle import bundle_to_json
from wallet.devices.agent import DeviceAgent, Profile
from wallet.devices.collect import collect_bundle
from wallet.devices.gateway import Gateway, anchor_batch
from wallet.devices.gateway_transport import GatewayTransport
from wallet.devices.proof import verify_bundle
from wallet.devices.proof_file import Committee, bundle_from_json, read_committee
from wallet.errors import RejectedError, WalletError

from ._devnet import LocalWork
from .sensor_registry import DevnetFiles, admit_issuers, confirmed, devnet_files, quarantine

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tangle.protocol.device import DeviceRecord
    from tangle.protocol.ids import MessageId
    from wallet.client import NodeClient

NEW_FULL: Final = 2
"""Full sensors registering a round (and one constrained sensor behind the gateway)."""
READINGS: Final = 3
"""Readings each sensor streams a round."""
QUARANTINE_EVERY: Final = 2
LIFT_EVERY: Final = 3
QUARANTINE_SPAN: Final = 100_000
"""Milestones a quarantine holds unless lifted."""


def _fresh() -> KeySigner:
    return KeySigner(secrets.token_bytes(32))


@dataclass(slots=True, kw_only=True)
class Fleet:
    """This start's issuers, gateway and sensors."""

    devnet: DevnetFiles
    committee: Committee
    """The committee's key schedule, as an offline verifier reads it from `network.json`."""
    client: NodeClient
    through: NodeClient
    """The gateway's client: what it hands the node is signed as the gateway."""
    maker: KeySigner
    operators: list[KeySigner]
    front: DeviceAgent
    gateway: Gateway
    sensors: list[DeviceAgent] = field(default_factory=list)
    constrained: set[bytes] = field(default_factory=set)
    quarantined: list[DeviceAgent] = field(default_factory=list)

    async def register(self, max_devices: int) -> int | None:
        """Register this round's new sensors (none once `max_devices` are); the milestone that
        applied them."""
        sent: list[MessageId] = []
        for n in range(min(NEW_FULL + 1, max_devices - len(self.sensors))):
            behind = n == NEW_FULL
            endorsers = [self.maker, self.operators[len(self.sensors) % len(self.operators)]]
            agent = DeviceAgent(
                self.through if behind else self.client,
                network_id=self.devnet.network_id,
                key=_fresh(),
            )
            profile = Profile(
                maker=self.maker.public_key,
                model=b"thermo-mini" if behind else b"thermo-3",
                attributes_hash=bytes(32),
                gateway=self.front.device_id if behind else None,
            )
            sent.append(await agent.register(profile, endorsers))
            self.sensors.append(agent)
            if behind:
                self.constrained.add(agent.device_id)
        return await confirmed(self.client, *sent) if sent else None

    async def follow(self) -> int:
        """Have the gateway follow every sensor's registry entry; how many it serves."""
        served = 0
        for agent in self.sensors:
            found = await self.client.device(agent.device_id)
            if found is not None:
                served += self.gateway.follow(found.entry, found.ledger_index)
        return served

    async def forward(self, number: int) -> MessageId | None:
        """The newest constrained sensor's firmware update for round `number`, which the node
        takes only from its gateway: handed over by the gateway's client."""
        behind = [a for a in self.sensors if a.device_id in self.constrained]
        if not behind:
            return None
        return await behind[-1].update(blake2b_256(b"firmware", number.to_bytes(4, "little")), b"")

    def hijackable(self) -> DeviceAgent | None:
        """The oldest full sensor under no quarantine."""
        held = {a.device_id for a in self.quarantined}
        for agent in self.sensors:
            if agent.device_id not in held and agent.device_id not in self.constrained:
                return agent
        return None

    async def _record(self, agent: DeviceAgent, make: Callable[[int], DeviceRecord]) -> int:
        found = await self.client.device(agent.device_id)
        serial = 1 if found is None else found.entry.quarantine_serial + 1
        return await confirmed(self.client, await self.client.submit_pow(make(serial)))

    async def hijack(self, until: int) -> dict[str, Any]:
        """Quarantine a full sensor; whether the node then refuses its own update."""
        agent = self.hijackable()
        if agent is None:
            return {}
        devnet, operators = self.devnet, self.operators
        at = await self._record(
            agent, lambda serial: quarantine(devnet, agent.device_id, serial, until, operators)
        )
        self.quarantined.append(agent)
        try:
            await agent.update(blake2b_256(b"hijacked"), b"")
            refused = None
        except RejectedError as exc:
            refused = exc.code
        return {"quarantined": agent.device_id.hex(), "quarantined_at": at, "node_refused": refused}

    async def lift(self) -> dict[str, Any]:
        """Lift the oldest quarantine."""
        if not self.quarantined:
            return {}
        agent = self.quarantined.pop(0)
        network_id, signers = self.devnet.network_id, self.operators
        threshold = self.devnet.quarantine_threshold
        at = await self._record(
            agent,
            lambda serial: sign_record(
                network_id, LiftQuarantine(device_id=agent.device_id, serial=serial),
                signers[:threshold],
            ),
        )  # fmt: skip
        return {"lifted": agent.device_id.hex(), "lifted_at": at}


async def one_round(fleet: Fleet, number: int, max_devices: int, proof: Path) -> dict[str, Any]:
    """Round `number` (the module docstring); its JSON line."""
    before = len(fleet.sensors)
    doc: dict[str, Any] = {"round": number, "registered_at": await fleet.register(max_devices)}
    doc["registered"] = [agent.device_id.hex() for agent in fleet.sensors[before:]]
    doc["served"] = await fleet.follow()
    refused_before = sum(fleet.gateway.stats.refused.values())
    now_ms = time.time_ns() // 1_000_000
    for t in range(READINGS):
        fleet.gateway.accept_many(
            agent.reading(f"{20 + t}.{number} C".encode(), timestamp_ms=now_ms + t)
            for agent in fleet.sensors
        )
    doc["gateway_refused"] = sum(fleet.gateway.stats.refused.values()) - refused_before
    batch = fleet.gateway.seal()
    if batch is None:
        raise SystemExit("no sensor is served")
    anchor_id = await anchor_batch(fleet.client, batch)
    forwarded = await fleet.forward(number)
    doc["forwarded"] = None if forwarded is None else forwarded.hex()
    # the milestone that confirmed the batch (the one its proof names); the constrained sensor's
    # forwarded update may be confirmed by that milestone or a later one
    doc["anchored_at"] = await confirmed(fleet.client, anchor_id)
    if forwarded is not None:
        await confirmed(fleet.client, forwarded)
    doc["batch_readings"] = len(batch.readings)
    bundle = await collect_bundle(fleet.client, batch, len(batch.readings) // 2, anchor_id)
    text = bundle_to_json(bundle)
    await trio.Path(proof).write_text(text)
    committee = fleet.committee
    proved = verify_bundle(
        bundle_from_json(text), committee.schedule, network_id=committee.network_id
    )
    doc["proof_bytes"] = bundle.size
    doc["proved_device"] = proved.device.device_id.hex()
    doc["proved_at"] = proved.milestone.essence.index
    if number % LIFT_EVERY == 0:
        doc.update(await fleet.lift())
    if number % QUARANTINE_EVERY == 0:
        doc.update(await fleet.hijack(doc["anchored_at"] + QUARANTINE_SPAN))
    doc["sensors"] = len(fleet.sensors)
    doc["under_quarantine"] = len(fleet.quarantined)
    return doc


async def forever(
    data_dir: Path,
    *,
    node: str | None,
    rounds: int | None,
    interval_s: float,
    max_devices: int,
    say: Callable[[dict[str, Any]], None],
) -> None:
    """Run against the devnet under `data_dir` (module docstring), through its API at `node`
    (None: `devnet.json`'s first member); `rounds` None runs until cancelled."""
    devnet = devnet_files(data_dir)
    if node is not None:
        devnet = replace(devnet, api=node)
    proof = data_dir / "flows" / "registry-proof.json"
    proof.parent.mkdir(parents=True, exist_ok=True)
    maker, operators, gateway_key = _fresh(), [_fresh() for _ in range(3)], _fresh()
    async with LocalWork(devnet.api) as client:
        admitted = await admit_issuers(client, devnet, maker, operators)
        front = DeviceAgent(client, network_id=devnet.network_id, key=gateway_key)
        profile = Profile(maker=maker.public_key, model=b"gateway-1", attributes_hash=bytes(32))
        front_at = await confirmed(client, await front.register(profile, [maker, operators[0]]))
        transport = GatewayTransport(
            network_id=devnet.network_id, gateway=front.device_id, key=gateway_key
        )
        async with LocalWork(devnet.api, transport=transport) as through:
            fleet = Fleet(
                devnet=devnet,
                committee=read_committee(data_dir / "network.json"),
                client=client,
                through=through,
                maker=maker,
                operators=operators,
                front=front,
                gateway=Gateway(network_id=devnet.network_id),
            )
            say({"issuers_admitted_at": admitted, "maker": maker.public_key.hex(),
                 "operators": [op.public_key.hex() for op in operators],
                 "gateway": front.device_id.hex(), "gateway_registered_at": front_at,
                 "proof_file": str(proof)})  # fmt: skip
            number = 0
            while rounds is None or number < rounds:
                number += 1
                try:
                    line = await one_round(fleet, number, max_devices, proof)
                except (WalletError, TimeoutError) as exc:  # a node busy or catching up
                    line = {"round": number, "error": f"{type(exc).__name__}: {exc}"}
                say(line)
                await trio.sleep(interval_s)


def print_line(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, sort_keys=True), flush=True)
