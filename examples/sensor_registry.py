"""Sensors with ledger identities, signed readings and offline proofs, on a devnet of its own
or attached to a running one.

    python -m examples.sensor_registry --self-contained [--devices 3] [--readings 10] [--json]
    python -m examples.sensor_registry --devnet DATA_DIR [--node URL] --forever [--interval S]

A devnet (a coordinator and a node, as processes) starts under a temporary directory. Its
committee admits a maker and three operators (issuer records signed by the committee's
threshold); each sensor registers at start-up, endorsed by the maker and one operator
(`wallet.devices.DeviceAgent`). A gateway follows the registry, verifies every signed reading
the sensors stream, batches them and anchors the batch root in one tagged-data message. Once a
milestone confirms the anchor, one reading's proof bundle is collected from the node, written to
`proof.json`, and checked offline by `tanglepay verify proof.json --committee network.json`
(another process, which reads nothing but those two files). Then the last sensor is hijacked:
two operators (the network's quarantine threshold) sign its quarantine; once applied, the
gateway stops serving it, and the node refuses what its key signs (`quarantined_device`).
Last, a constrained sensor registers behind a gateway device: its own update is refused
(`unserved_device`), and the same update sent through the gateway's client
(`GatewayTransport`, which signs it as the gateway) is applied.

The summary (a JSON object with `--json`) holds what each step observed. Attached to a running
devnet (`--devnet DATA_DIR --forever`, see `_registry_forever.py`), the same story runs round
after round, one JSON line a round.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import trio

from coordinator.signers import KeySigner
from tangle.ledger.ledger import Conflict
from tangle.ledger.registry_rules import RegistryRules
from tangle.protocol.device import (
    AdmitIssuer,
    DeviceId,
    DeviceRecord,
    IssuerRole,
    Quarantine,
    sign_record,
)
from tangle.protocol.ids import blake2b_256
from tangle.protocol.proof_bundle import bundle_to_json
from wallet.client import NodeClient
from wallet.devices.agent import DeviceAgent, Profile
from wallet.devices.collect import collect_bundle
from wallet.devices.errors import UnknownDeviceError
from wallet.devices.gateway import Gateway, anchor_batch
from wallet.devices.gateway_transport import GatewayTransport
from wallet.errors import RejectedError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.protocol.ids import MessageId
    from tangle.protocol.signature import Signer

CONFIRM_TIMEOUT_S = 60.0
POLL_S = 0.2
QUARANTINE_REASON_BOTNET = 1


def _signer(label: str, n: int = 0) -> KeySigner:
    return KeySigner(blake2b_256(b"examples.sensor_registry", label.encode(), bytes([n])))


MAKER = _signer("maker")
GATEWAY_KEY = _signer("gateway")
CONSTRAINED_KEY = _signer("constrained")
OPERATORS = [_signer("operator", i) for i in range(3)]


async def confirmed(client: NodeClient, *ids: MessageId) -> int:
    """Wait until a milestone references every message of `ids` and applied it; its index."""
    index = 0
    with anyio.fail_after(CONFIRM_TIMEOUT_S):
        for message_id in ids:
            while True:
                metadata = await client.metadata(message_id)
                if metadata.referenced_by is not None:
                    break
                await anyio.sleep(POLL_S)
            if metadata.conflict != Conflict.NONE:
                raise SystemExit(f"{message_id.hex()} was refused: {metadata.conflict.name}")
            index = max(index, metadata.referenced_by)
    return index


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetFiles:
    """What the example reads of a devnet's data directory."""

    network_id: int
    committee: tuple[KeySigner, ...]
    """The committee's threshold of members (from `secrets.json`): they admit issuers."""
    quarantine_threshold: int
    api: str
    """The first member's API URL (`devnet.json`)."""


def devnet_files(data_dir: Path) -> DevnetFiles:
    """`network.json`, `secrets.json` and `devnet.json` of the devnet under `data_dir`."""
    network = json.loads((data_dir / "network.json").read_text())
    threshold = int(network["committee"]["threshold"])
    seeds = json.loads((data_dir / "secrets.json").read_text())["committee"]
    rules = network.get("registry", {})
    return DevnetFiles(
        network_id=int(network["network_id"]),
        committee=tuple(KeySigner(bytes.fromhex(seed)) for seed in seeds)[:threshold],
        quarantine_threshold=int(
            rules.get("quarantine_threshold", RegistryRules().quarantine_threshold)
        ),
        api=str(json.loads((data_dir / "devnet.json").read_text())["members"][0]["api"]),
    )


async def admit_issuers(
    client: NodeClient, devnet: DevnetFiles, maker: Signer, operators: Sequence[Signer]
) -> int:
    """Have the committee admit `maker` and `operators` (serial 1: keys it has not admitted
    before); the milestone that applied the last."""
    issuers = [(maker, IssuerRole.MAKER), *((op, IssuerRole.OPERATOR) for op in operators)]
    sent = []
    for issuer, role in issuers:
        body = AdmitIssuer(
            issuer=issuer.public_key, role=role, admitted=True, serial=1, name=b"example"
        )
        sent.append(await client.submit_pow(sign_record(devnet.network_id, body, devnet.committee)))
    return await confirmed(client, *sent)


def quarantine(
    devnet: DevnetFiles, device_id: DeviceId, serial: int, until: int, operators: Sequence[Signer]
) -> DeviceRecord:
    """The quarantine of a hijacked device, signed by the network's threshold of `operators`,
    holding until milestone `until`."""
    body = Quarantine(
        device_id=device_id,
        serial=serial,
        reason=QUARANTINE_REASON_BOTNET,
        evidence_hash=blake2b_256(b"flow logs of the DDoS"),
        expires_after=until,
    )
    return sign_record(devnet.network_id, body, operators[: devnet.quarantine_threshold])


async def scenario(data_dir: Path, work: Path, devices: int, readings: int) -> dict[str, Any]:
    """Every step of the module docstring against the devnet under `data_dir`."""
    from ._devnet import LocalWork  # the proof-of-work is done here: the node rate-limits its own

    devnet = devnet_files(data_dir)
    network_id, api = devnet.network_id, devnet.api
    doc: dict[str, Any] = {"network_id": network_id}
    async with LocalWork(api) as client:
        doc["issuers_admitted_at"] = await admit_issuers(client, devnet, MAKER, OPERATORS)

        agents = [
            DeviceAgent(client, network_id=network_id, key=_signer("sensor", n))
            for n in range(devices)
        ]
        profile = Profile(maker=MAKER.public_key, model=b"thermo-3", attributes_hash=bytes(32))
        registrations = [await agent.start(profile, [MAKER, OPERATORS[0]]) for agent in agents]
        front = DeviceAgent(client, network_id=network_id, key=GATEWAY_KEY)
        registrations.append(await front.start(profile, [MAKER, OPERATORS[0]]))
        doc["registered_at"] = await confirmed(client, *(r for r in registrations if r))

        gateway = Gateway(network_id=network_id)
        for agent in agents:
            found = await client.device(agent.device_id)
            if found is None or not gateway.follow(found.entry, found.ledger_index):
                raise SystemExit(f"sensor {agent.device_id.hex()} is not served")
        for t in range(readings):
            for n, agent in enumerate(agents):
                gateway.accept(agent.reading(f"{20 + n}.{t} C".encode(), timestamp_ms=t))
        batch = gateway.seal()
        if batch is None:
            raise SystemExit("no readings")
        anchor_id = await anchor_batch(client, batch)
        doc["anchored_at"] = await confirmed(client, anchor_id)
        doc["batch_readings"] = len(batch.readings)
        bundle = await collect_bundle(client, batch, len(batch.readings) // 2, anchor_id)

        proof = work / "proof.json"
        proof.write_text(bundle_to_json(bundle))
        doc["proof_bytes"] = bundle.size
        doc["proof_file_bytes"] = proof.stat().st_size
        committee_file = str(data_dir / "network.json")
        command = [sys.executable, "-m", "tanglepay.cli", "verify", str(proof)]
        with anyio.fail_after(CONFIRM_TIMEOUT_S):
            check = await anyio.run_process([*command, "--committee", committee_file], check=False)
        doc["verify_exit_status"] = check.returncode
        doc["verify_output"] = (check.stdout or check.stderr).decode().strip()

        hijacked = agents[-1]
        record = quarantine(devnet, hijacked.device_id, 1, 1_000_000, OPERATORS)
        doc["quarantined_at"] = await confirmed(client, await client.submit_pow(record))
        found = await client.device(hijacked.device_id)
        if found is None:
            raise SystemExit("the hijacked sensor vanished")
        doc["gateway_serves_hijacked"] = gateway.follow(found.entry, found.ledger_index)
        try:
            gateway.accept(hijacked.reading(b"flood", timestamp_ms=readings))
            doc["gateway_refused"] = None
        except UnknownDeviceError as exc:
            doc["gateway_refused"] = type(exc).__name__
        try:
            await hijacked.update(blake2b_256(b"hijacked"), b"")
            doc["node_refused"] = None
        except RejectedError as exc:
            doc["node_refused"] = exc.code
        doc.update(await constrained(client, api, network_id, front))
    return doc


async def constrained(
    client: NodeClient, api: str, network_id: int, front: DeviceAgent
) -> dict[str, Any]:
    """A constrained sensor behind the registered gateway `front`: its update, sent by itself,
    is refused; sent through the gateway's client (`GatewayTransport`), it is applied."""
    doc: dict[str, Any] = {}
    profile = Profile(
        maker=MAKER.public_key,
        model=b"thermo-mini",
        attributes_hash=bytes(32),
        gateway=front.device_id,
    )
    sensor = DeviceAgent(client, network_id=network_id, key=CONSTRAINED_KEY)
    registered = await sensor.start(profile, [MAKER, OPERATORS[0]])
    if registered is not None:
        doc["constrained_registered_at"] = await confirmed(client, registered)
    try:
        await sensor.update(blake2b_256(b"firmware 2"), b"")
        doc["alone_refused"] = None
    except RejectedError as exc:
        doc["alone_refused"] = exc.code
    transport = GatewayTransport(network_id=network_id, gateway=front.device_id, key=GATEWAY_KEY)
    async with NodeClient(api, transport=transport) as through:
        forwarded = DeviceAgent(through, network_id=network_id, key=CONSTRAINED_KEY)
        sent = await forwarded.update(blake2b_256(b"firmware 2"), b"")
        if sent is not None:
            doc["through_gateway_at"] = await confirmed(client, sent)
    return doc


async def self_contained(devices: int, readings: int) -> dict[str, Any]:
    """`scenario` on a devnet of its own under a temporary directory."""
    from ._devnet import local_devnet

    with tempfile.TemporaryDirectory(prefix="sensor-registry-") as tmp:
        work = Path(tmp)
        async with local_devnet(work / "devnet") as devnet:
            return await scenario(devnet.parent, work, devices, readings)


async def attached(
    data_dir: Path, node: str | None, rounds: int | None, interval_s: float, max_devices: int
) -> None:
    """`--devnet DATA_DIR --forever`: round after round on a running devnet (see
    `_registry_forever.py`)."""
    from ._registry_forever import forever, print_line

    await forever(
        data_dir,
        node=node,
        rounds=rounds,
        interval_s=interval_s,
        max_devices=max_devices,
        say=print_line,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--self-contained", action="store_true", help="run a devnet of its own")
    mode.add_argument("--forever", action="store_true", help="on --devnet, until killed")
    parser.add_argument("--devnet", type=Path, help="a running devnet's data directory")
    parser.add_argument("--node", help="the node API URL to use (default: devnet.json's first)")
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--readings", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--rounds", type=int, help="stop after this many rounds (tests)")
    parser.add_argument("--max-devices", type=int, default=60, help="sensors per start")
    args = parser.parse_args(argv)
    if args.forever:
        if args.devnet is None:
            parser.error("--forever needs --devnet DATA_DIR")
        if args.max_devices < 2:
            parser.error("--max-devices is at least 2")
        try:
            trio.run(attached, args.devnet, args.node, args.rounds, args.interval, args.max_devices)
        except KeyboardInterrupt:
            return 130
        return 0
    if args.devices < 2 or args.readings < 1:
        parser.error("at least 2 devices and 1 reading")
    doc = trio.run(self_contained, args.devices, args.readings)
    if args.json:
        print(json.dumps(doc))
    else:
        for key, value in doc.items():
            print(f"{key:>24}: {value}")
    return 0 if doc["verify_exit_status"] == 0 else 1


if __name__ == "__main__":
    if __package__ in (None, ""):  # `python examples/sensor_registry.py`
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from examples.sensor_registry import main as _main

        sys.exit(_main())
    sys.exit(main())
