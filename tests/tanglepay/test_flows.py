"""The devnet's flows (`tanglepay.flows`): a flow child starts with the node and faucet URLs and
the devnet's data directory, is reported, and is stopped with SIGTERM when the devnet stops; one
that exits on its own is reported with its log's last line. The charging flow is the table's
first entry; the registry flow attaches to the devnet's data directory."""

from __future__ import annotations

import os
import signal
import sys
from functools import partial
from pathlib import Path

import trio

from tanglepay.flows import FLOWS, Flow, run_flow

NODE, FAUCET = "http://127.0.0.1:1/", "http://127.0.0.1:2/faucet"
# the child prints its arguments, then waits for a signal (SIGTERM ends it)
WAITS = "import sys, time; print('args', *sys.argv[1:], flush=True); time.sleep(60)"


def _flow(code: str) -> Flow:
    return Flow(
        name="probe",
        argv=lambda node, faucet, data_dir: [
            sys.executable,
            "-c",
            code,
            node,
            faucet,
            str(data_dir),
        ],
        description="a test flow",
    )


async def test_a_flow_child_starts_is_reported_and_is_stopped(tmp_path: Path) -> None:
    lines: list[str] = []
    log = tmp_path / "flows" / "probe.log"
    async with trio.open_nursery() as nursery:
        process = await nursery.start(run_flow, _flow(WAITS), NODE, FAUCET, tmp_path, lines.append)
        with trio.fail_after(20):
            for _ in range(400):  # the child writes its line
                if log.exists() and "args" in log.read_text():
                    break
                await trio.sleep(0.05)
        assert process.returncode is None  # running
        nursery.cancel_scope.cancel()  # the devnet stops
    assert process.returncode == -signal.SIGTERM
    assert log.read_text().strip() == f"args {NODE} {FAUCET} {tmp_path}"
    assert lines[0].startswith(f"flow probe   a test flow (pid {process.pid}")
    assert len(lines) == 1  # stopped, not "exited"


async def test_a_flow_that_exits_is_reported_in_one_line(tmp_path: Path) -> None:
    lines: list[str] = []
    code = "print('cannot reach the node'); raise SystemExit(3)"
    with trio.fail_after(20):
        await run_flow(_flow(code), NODE, FAUCET, tmp_path, lines.append)
    assert lines[1] == (
        f"flow probe exited (3): cannot reach the node (log: {tmp_path / 'flows' / 'probe.log'})"
    )


def test_the_charging_flow_is_the_first() -> None:
    charging = FLOWS[0]
    assert charging.name == "charging"
    assert charging.argv(NODE, FAUCET, Path("devnet"))[1:] == [
        "-m",
        "examples.charging",
        "--node",
        NODE,
        "--faucet",
        FAUCET,
        "--forever",
    ]


def test_the_registry_flow_attaches_to_the_devnet_data_directory() -> None:
    flows = {flow.name: flow for flow in FLOWS}
    assert list(flows) == ["charging", "roaming", "registry"]
    assert flows["roaming"].argv(NODE, FAUCET, Path("d"))[2:4] == ["examples.roaming", "--node"]
    assert flows["registry"].argv(NODE, FAUCET, Path("/data/devnet"))[1:] == [
        "-m",
        "examples.sensor_registry",
        "--devnet",
        "/data/devnet",
        "--node",
        NODE,
        "--forever",
    ]


async def test_stopping_a_flow_stops_what_it_started(tmp_path: Path) -> None:
    """The flow's own child (a CSMS, say) ignores SIGTERM and outlives its parent: the group
    is killed all the same, so nothing of the flow is left running."""
    spawn = (
        "import signal, subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); "
        "print('child', child.pid, flush=True); time.sleep(60)"
    )
    log = tmp_path / "flows" / "probe.log"
    async with trio.open_nursery() as nursery:
        start = partial(run_flow, grace_s=0.5)
        await nursery.start(start, _flow(spawn), NODE, FAUCET, tmp_path, [].append)
        with trio.fail_after(20):
            for _ in range(400):  # the child names its own child
                if log.exists() and "child" in log.read_text():
                    break
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    child = int(log.read_text().split()[1])
    for _ in range(200):
        if not _alive(child):
            break
        await trio.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
