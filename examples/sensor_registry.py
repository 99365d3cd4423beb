"""Sensors with ledger identities, signed readings and offline proofs, on a devnet of its own.

    python -m examples.sensor_registry --self-contained [--devices 3] [--readings 10] [--json]

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

The summary (a JSON object with `--json`) holds what each step observed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import trio

from coordinator.signers import KeySigner
from tangle.ledger.ledger import Conflict
from tangle.protocol.device import AdmitIssuer, IssuerRole, Quarantine, sign_record
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
    from tangle.protocol.ids import MessageId

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


async def scenario(data_dir: Path, work: Path, devices: int, readings: int) -> dict[str, Any]:
    """Every step of the module docstring against the devnet under `data_dir`."""
    network = json.loads((data_dir / "network.json").read_text())
    network_id = int(network["network_id"])
    threshold = int(network["committee"]["threshold"])
    seeds = json.loads((data_dir / "secrets.json").read_text())["committee"]
    committee = [KeySigner(bytes.fromhex(seed)) for seed in seeds][:threshold]
    api = json.loads((data_dir / "devnet.json").read_text())["members"][0]["api"]
    doc: dict[str, Any] = {"network_id": network_id}
    async with NodeClient(api) as client:
        issuers = [(MAKER, IssuerRole.MAKER), *((op, IssuerRole.OPERATOR) for op in OPERATORS)]
        sent = []
        for serial, (issuer, role) in enumerate(issuers, start=1):
            body = AdmitIssuer(
                issuer=issuer.public_key, role=role, admitted=True, serial=serial, name=b"example"
            )
            sent.append(await client.submit_pow(sign_record(network_id, body, committee)))
        doc["issuers_admitted_at"] = await confirmed(client, *sent)

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
        quarantine = Quarantine(
            device_id=hijacked.device_id,
            serial=1,
            reason=QUARANTINE_REASON_BOTNET,
            evidence_hash=blake2b_256(b"flow logs of the DDoS"),
            expires_after=1_000_000,
        )
        record = sign_record(network_id, quarantine, OPERATORS[:2])
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-contained", action="store_true", help="run a devnet of its own")
    parser.add_argument("--devices", type=int, default=3)
    parser.add_argument("--readings", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if not args.self_contained:
        parser.error("give --self-contained")
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
