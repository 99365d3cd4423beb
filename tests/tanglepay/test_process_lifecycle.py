"""The shipped processes (`tanglepay node`, `coordinator`, `devnet`) as real subprocesses: what
stops one starting is one line naming the cause and the fix, exit status 2, before the slow
warm-up; SIGINT (Ctrl-C) stops a running one cleanly: one line, exit status 0, no traceback.
The devnet writes its secrets readable by its owner only."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tanglepay.devnet import load_or_create
from tests.tangle.node.test_config import NETWORK, NODE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "tanglepay.cli")


def node_config(tmp_path: Path, change: Callable[[dict[str, Any]], object] = dict) -> Path:
    """A node.json (and its network.json) under `tmp_path`, after `change` edited it."""
    node = json.loads(json.dumps(NODE))
    node["p2p"]["peers"] = []
    change(node)
    (tmp_path / "network.json").write_text(json.dumps(NETWORK))
    path = tmp_path / "node.json"
    path.write_text(json.dumps(node))
    return path


def tanglepay(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    for word in words:
        assert word in line


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another process listens on."""
    with _listen_on(0) as s:
        yield int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("section", ["p2p", "api"])
def test_a_taken_port_is_one_line_that_names_it(
    tmp_path: Path, taken_port: int, section: str
) -> None:
    """(It used to be a 53-line traceback after the warm-up, 5 s; now 1.5 s on this machine.)"""
    config = node_config(tmp_path, lambda n: n[section].update(port=taken_port))
    result = tanglepay("node", "--config", str(config))
    assert_one_line(result, f"127.0.0.1:{taken_port}", "Address already in use", f"{section}.port")


@pytest.mark.slow
def test_a_corrupt_database_is_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    (tmp_path / "node-a").mkdir()
    (tmp_path / "node-a" / "node.db").write_bytes(b"not a database" * 512)
    result = tanglepay("node", "--config", str(config))
    assert_one_line(result, "node.db", "not a database", "restore it from a backup")


@pytest.mark.slow
def test_a_database_of_another_network_is_one_line(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    network = {**NETWORK, "network_id": 8}
    (other / "network.json").write_text(json.dumps(network))
    (other / "node.json").write_text(json.dumps({**NODE, "data_dir": "../node-a"}))
    _create_database(other / "node.json")
    result = tanglepay("node", "--config", str(config))
    assert_one_line(result, "node.db", "network 8")


def _create_database(config: Path) -> None:
    from tangle.node.config import load_node_config
    from tangle.node.ledger_node import LedgerNode

    loaded = load_node_config(config)
    loaded.data_dir.mkdir(parents=True, exist_ok=True)
    LedgerNode.open(
        loaded.data_dir / "node.db",
        genesis=loaded.network.genesis,
        params=loaded.network.params,
        schedule=loaded.network.schedule,
    ).close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("write", "words"),
    [
        (None, ("cannot read", "absent.json")),
        ("{not json", ("not JSON",)),
        (json.dumps({**NODE, "prune": {"keep_milestones": 3, "every_s": 1}}), ("keep_milestones",)),
    ],
    ids=["missing-file", "invalid-json", "invalid-field"],
)
def test_a_bad_configuration_is_one_line(
    tmp_path: Path, write: str | None, words: tuple[str, ...]
) -> None:
    config = node_config(tmp_path)
    if write is None:
        config = tmp_path / "absent.json"
    else:
        config.write_text(write)
    assert_one_line(tanglepay("node", "--config", str(config)), *words)


@pytest.mark.slow
def test_a_coordinator_with_open_signer_keys_is_one_line(tmp_path: Path) -> None:
    load_or_create(tmp_path, 1, 1.0)
    signers = tmp_path / "coordinator" / "signers.json"
    signers.chmod(0o644)
    result = tanglepay("coordinator", "--config", str(tmp_path / "coordinator/coordinator.json"))
    assert_one_line(result, "signers.json", "0600")


@pytest.mark.slow
def test_a_damaged_devnet_folder_is_one_line(tmp_path: Path) -> None:
    load_or_create(tmp_path, 1, 1.0)
    (tmp_path / "devnet.json").write_text('{"members": 3}')
    result = tanglepay("devnet", "--data-dir", str(tmp_path), "--nodes", "1")
    assert_one_line(result, "damaged devnet files", "delete the folder")


def _listen_on(port: int) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


@pytest.mark.slow
def test_a_devnet_member_that_cannot_start_is_one_line_quoting_its_cause(tmp_path: Path) -> None:
    load_or_create(tmp_path, 1, 1.0)
    description = json.loads((tmp_path / "devnet.json").read_text())
    port = int(description["members"][0]["p2p"].rsplit(":", 1)[1])
    with _listen_on(port):
        result = tanglepay("devnet", "--data-dir", str(tmp_path), "--nodes", "1")
    assert_one_line(result, "coordinator exited (2)", f"127.0.0.1:{port}", "p2p.port")


@pytest.mark.slow
def test_a_taken_faucet_port_is_one_line(tmp_path: Path) -> None:
    load_or_create(tmp_path, 1, 1.0)
    description = json.loads((tmp_path / "devnet.json").read_text())
    port = int(description["faucet"].rsplit(":", 1)[1].split("/")[0])
    with _listen_on(port):
        result = tanglepay("devnet", "--data-dir", str(tmp_path), "--nodes", "1")
    assert_one_line(result, "the faucet", f"127.0.0.1:{port}", "devnet.json")
    for name in ("coordinator", "node1"):  # stopped, not left running
        assert (tmp_path / name / "log").read_text().splitlines()[-1].endswith("stopped")


def test_the_devnet_writes_secrets_for_its_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "devnet"
    load_or_create(data_dir, 2, 1.0)
    for folder in (data_dir, data_dir / "coordinator", data_dir / "node1", data_dir / "node2"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    private = ["secrets.json", "coordinator/signers.json"]
    private += [f"{name}/node.json" for name in ("coordinator", "node1", "node2")]  # tokens
    for name in private:
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    assert "admin_token" in (data_dir / "node1" / "node.json").read_text()
    # A devnet written before node.json was private gets it rewritten when it is loaded, even
    # where a crash left a world-readable temporary file behind.
    (data_dir / "node1" / "node.json").chmod(0o644)
    (data_dir / "node1" / "node.tmp").write_text("left by a crash")
    (data_dir / "node1" / "node.tmp").chmod(0o644)
    load_or_create(data_dir, 2, 1.0)
    assert stat.S_IMODE((data_dir / "node1" / "node.json").stat().st_mode) == 0o600
    assert not (data_dir / "node1" / "node.tmp").exists()


def interrupted(argv: tuple[str, ...], ready: str, timeout: float = 120) -> tuple[int, str, str]:
    """Start `tanglepay argv`, wait for the stdout line that starts with `ready`, send SIGINT
    (what Ctrl-C sends); the exit status, stdout and stderr."""
    # Unbuffered: `select` sees every line that was not read yet.
    process = subprocess.Popen(
        [*CLI, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while not (lines and lines[-1].startswith(ready)):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"not ready in {timeout:g} s: {lines}"
            if select.select([process.stdout], [], [], remaining)[0]:
                line = process.stdout.readline().decode()
                assert line, f"exited before it was ready: {lines}"
                lines.append(line)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, "".join(lines) + out.decode(), err.decode()


@pytest.mark.slow
def test_ctrl_c_stops_a_node_cleanly(tmp_path: Path) -> None:
    status, out, err = interrupted(("node", "--config", str(node_config(tmp_path))), "node ready")
    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == "node stopped"


@pytest.mark.slow
def test_ctrl_c_stops_a_coordinator_cleanly(tmp_path: Path) -> None:
    load_or_create(tmp_path, 1, 1.0)
    config = tmp_path / "coordinator" / "coordinator.json"
    status, out, err = interrupted(("coordinator", "--config", str(config)), "coordinator ready")
    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == "coordinator stopped"


@pytest.mark.slow
def test_ctrl_c_stops_a_devnet_and_its_processes_cleanly(tmp_path: Path) -> None:
    argv = ("devnet", "--data-dir", str(tmp_path), "--nodes", "1", "--interval", "0.5")
    status, out, err = interrupted(argv, "faucet")
    assert (status, err) == (0, "")
    assert out.splitlines()[-1].startswith("devnet stopped at milestone ")
    for name, last in (("coordinator", "coordinator stopped"), ("node1", "node stopped")):
        log = (tmp_path / name / "log").read_text()  # each stopped by the devnet's SIGTERM
        assert "Traceback" not in log
        assert log.splitlines()[-1] == last


@pytest.mark.slow
@pytest.mark.parametrize("first", ["tangle", "numba"])
def test_numba_caches_in_one_user_folder_whoever_imports_it_first(
    tmp_path: Path, first: str
) -> None:
    """`tanglepay`, `./dev` and the tests share one kernel cache: `NUMBA_CACHE_DIR` if set, else
    the user's cache folder, even if Numba was imported before `tangle`."""
    script = f"import {first}, tangle, numba.core.config as c; print(c.CACHE_DIR)"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    default = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert default.stdout.strip() == str(tmp_path / "tanglepay" / "numba")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    chosen = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert chosen.stdout.strip() == str(tmp_path / "mine")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["bench", "run"])
def test_dev_without_a_name_prints_its_usage(command: str) -> None:
    result = subprocess.run(
        [str(ROOT / "dev"), command], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(f"usage: ./dev {command} ")
