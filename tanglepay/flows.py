"""The devnet's flows: programs that exercise one kind of user against the running devnet, each
in a child process of its own (issue #15: the devnet's traffic exercises every flow).

`FLOWS` is the table: a name, the command line built from the node's API URL, the faucet's URL
and the devnet's data directory, and a one-line description. `run_flow` starts one as a child
process (in its own session, output appended to `<data dir>/flows/<name>.log`), reports it, and
when cancelled stops it (SIGTERM, then SIGKILL after `grace_s`); a flow that exits on its own is
reported in one line quoting the last line of its log, and the devnet goes on without it. A flow
runs its own event loop in its own process (the charging flow's CSMS is on asyncio; the devnet
is on trio).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT: Final = Path(__file__).resolve().parent.parent
"""The checkout the flows' programs (`examples/`) are run from."""
GRACE_S: Final = 15.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """One flow of the devnet."""

    name: str
    argv: Callable[[str, str, Path], list[str]]
    """The command line from (node API URL, faucet URL, the devnet's data directory)."""
    description: str


def _example(module: str) -> Callable[[str, str, Path], list[str]]:
    def argv(node: str, faucet: str, data_dir: Path) -> list[str]:
        return [sys.executable, "-m", module, "--node", node, "--faucet", faucet, "--forever"]

    return argv


def _registry(node: str, faucet: str, data_dir: Path) -> list[str]:
    module, devnet = "examples.sensor_registry", str(data_dir.resolve())
    return [sys.executable, "-m", module, "--devnet", devnet, "--node", node, "--forever"]


FLOWS: Final = (
    Flow(
        name="charging",
        argv=_example("examples.charging"),
        description="a CSMS with OCPP 1.6J and 2.0.1 chargers; drivers pay per kWh, prepay",
    ),
    Flow(
        name="roaming",
        argv=_example("examples.roaming"),
        description="two carriers roam both ways, anchor batches and acks, settle over a channel",
    ),
    Flow(
        name="registry",
        argv=_registry,
        description="sensors register (some behind a gateway), anchor readings, get quarantined",
    ),
)


def _signal_group(process: trio.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


async def stop_gently(process: trio.Process, grace_s: float = GRACE_S) -> None:
    """Cancel delivery for a devnet child (a node, the coordinator, a flow), which leads a
    process group of its own (`start_new_session`): SIGTERM to the group, then SIGKILL after
    `grace_s`; whatever of the group outlives its leader is killed (a flow's CSMS, say)."""
    _signal_group(process, signal.SIGTERM)
    with trio.move_on_after(grace_s):
        await process.wait()
    _signal_group(process, signal.SIGKILL)


def _last_line(log: Path, tail: int = 4096) -> str:
    """The last line of `log`, read from its last `tail` bytes (a log grows as long as the
    devnet runs)."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - tail))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"


async def run_flow(
    flow: Flow,
    node: str,
    faucet: str,
    data_dir: Path,
    say: Callable[[str], None],
    *,
    grace_s: float = GRACE_S,
    task_status: trio.TaskStatus[trio.Process] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `flow` until it exits or this task is cancelled (see the module docstring); reports
    its process once started."""

    directory = data_dir / "flows"
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{flow.name}.log"
    with log.open("ab") as sink:
        run = partial(
            trio.run_process,
            flow.argv(node, faucet, data_dir),
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
            cwd=ROOT,
            deliver_cancel=partial(stop_gently, grace_s=grace_s),
            start_new_session=True,
        )
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(run)
            say(f"flow {flow.name:<7} {flow.description} (pid {process.pid}, log {log})")
            task_status.started(process)
    say(f"flow {flow.name} exited ({process.returncode}): {_last_line(log)} (log: {log})")
