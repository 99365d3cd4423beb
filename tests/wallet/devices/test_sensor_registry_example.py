"""`python -m examples.sensor_registry --self-contained --json` runs end to end on a devnet of its
own: issuers admitted, sensors registered, readings anchored, one proof checked offline by the
CLI in another process, the hijacked sensor quarantined and refused by gateway and node, a
constrained sensor's update refused alone and applied through its gateway; attached to a running
devnet (`--devnet DATA_DIR --forever`), round after round of the same."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tangle.protocol.device import Capability
from tanglepay.devnet import launch, load_or_create
from tests._programs import run_json
from wallet.client import NodeClient
from wallet.devices.cli import main as verify_main

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_sensor_registry_example_runs_end_to_end() -> None:
    doc = run_json("-m", "examples.sensor_registry", "--self-contained", "--json", timeout=240)
    assert doc["issuers_admitted_at"] < doc["registered_at"] < doc["anchored_at"]
    assert doc["anchored_at"] < doc["quarantined_at"]
    assert doc["batch_readings"] == 30
    assert doc["verify_exit_status"] == 0
    assert doc["verify_output"].startswith("proof ok: ")
    assert doc["gateway_serves_hijacked"] is False
    assert doc["gateway_refused"] == "UnknownDeviceError"
    assert doc["node_refused"] == "quarantined_device"
    assert doc["quarantined_at"] < doc["constrained_registered_at"] < doc["through_gateway_at"]
    assert doc["alone_refused"] == "unserved_device"


@pytest.mark.slow
async def test_attached_to_a_devnet_sensors_register_anchor_and_get_quarantined(
    tmp_path: Path,
) -> None:
    """`--devnet DATA_DIR --forever` (bounded by `--rounds` here) against a running devnet,
    started twice as the devnet restarts a flow: each start admits its own issuers; each round
    registers sensors (one behind the gateway), anchors a batch whose proof verifies; round 2
    quarantines a sensor, which the node's registry then holds as quarantined, and round 3 (of
    the second start) lifts that quarantine."""
    devnet = load_or_create(tmp_path / "devnet", nodes=1, interval_s=0.5)
    data_dir = tmp_path / "devnet"
    argv = [sys.executable, "-m", "examples.sensor_registry", "--devnet", str(data_dir),
            "--forever", "--interval", "0.1", "--rounds"]  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as http, trio.open_nursery() as nursery:
        _, node = await launch(devnet.members, nursery, http)
        starts = []
        # a restart works against a registry holding the first's; the second start is given
        # the node to use (as the devnet's flow is), the first uses devnet.json's first member
        for extra in (["2"], ["3", "--node", node.member.api]):
            with trio.fail_after(240):
                done = await trio.run_process(
                    [*argv, *extra], cwd=ROOT, capture_stdout=True, capture_stderr=True, check=False
                )
            assert done.returncode == 0, done.stderr.decode()[-4000:]
            starts.append([json.loads(line) for line in done.stdout.decode().splitlines()])
        async with NodeClient(node.member.api) as client:
            ids = {i for _, *rounds in starts for r in rounds for i in r["registered"]}
            entries = {i: await client.device(bytes.fromhex(i)) for i in ids}
            at = (await client.info()).confirmed_milestone_index
        nursery.cancel_scope.cancel()
    third = starts[1][3]  # the second start's round 3: the quarantined sensor's readings are
    assert third["served"] == 9 - 1  # refused by the gateway, then its quarantine is lifted
    assert third["gateway_refused"] == 3
    assert third["lifted"] == starts[1][2]["quarantined"]
    assert third["under_quarantine"] == 0
    for first, *rounds in starts:
        assert first["issuers_admitted_at"] <= first["gateway_registered_at"]
        assert [len(r["registered"]) for r in rounds] == [3] * len(rounds)  # 2 full, 1 behind
        assert rounds[0]["served"] == 3
        assert rounds[0]["batch_readings"] == 3 * 3
        assert rounds[1]["batch_readings"] == 6 * 3
        assert rounds[1]["quarantined_at"] > rounds[1]["anchored_at"]
        assert rounds[1]["node_refused"] == "quarantined_device"
        assert rounds[1]["under_quarantine"] == 1
        held, seen, constrained = [], [], 0
        for r in rounds:
            seen += r["registered"]
            assert r["proved_device"] in seen  # the proof is of one of this start's sensors
            assert r["proved_at"] == r["anchored_at"]  # by the milestone that confirmed the batch
            for i in r["registered"]:
                found = entries[i]
                assert found is not None  # registered, as the node's API says
                if found.entry.capability is Capability.CONSTRAINED:
                    assert found.entry.gateway.hex() == first["gateway"]
                    assert found.entry.serial == 1  # its update, through the gateway, applied
                    constrained += 1
                if found.entry.quarantined_at(at):
                    held.append(i)
        assert held == ([] if "lifted" in rounds[-1] else [rounds[1]["quarantined"]])
        assert constrained == len(rounds)
    # the last round's proof, as written to the devnet's directory, verifies offline
    proof = data_dir / "flows" / "registry-proof.json"
    committee = str(data_dir / "network.json")
    assert verify_main([str(proof), "--committee", committee]) == 0
