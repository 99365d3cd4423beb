"""SIGKILL a coordinator and its node at random moments, many times; then check that no index
ever had two milestones and that the node's state equals a clean replay of what it published."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordinator import Journal
from tangle.errors import DuplicateMessageError
from tangle.node.ledger_node import LedgerNode
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone
from tests.crash_child import GENESIS, PARAMS, SCHEDULE, open_node, read_wire

ROOT = Path(__file__).resolve().parents[3]


def _child(directory: Path, seed: int, rounds: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash_child", str(directory), str(seed), str(rounds)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_during_issuance_and_application(tmp_path: Path) -> None:
    chooser = random.Random(7)
    for kill in range(8):
        child = _child(tmp_path, kill, rounds=1000)
        time.sleep(chooser.uniform(1.0, 3.0))
        if child.poll() is not None:
            _, err = child.communicate()
            pytest.fail(f"child exited early ({child.returncode}): {err.decode()[-2000:]}")
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()
    final = _child(tmp_path, 99, rounds=2)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()[-2000:]

    published = read_wire(tmp_path)
    milestones: dict[int, set[bytes]] = {}
    for raw in published:
        payload = decode_message(raw).message.payload
        if isinstance(payload, Milestone):
            milestones.setdefault(payload.essence.index, set()).add(raw)
    assert all(len(versions) == 1 for versions in milestones.values())

    node = open_node(tmp_path)
    journal = Journal.open(tmp_path / "journal.db")
    confirmed = node.core.confirmed_index
    assert sorted(milestones) == list(range(1, confirmed + 1))
    for index, (raw,) in milestones.items():
        issue = journal.get(index)
        assert issue is not None
        assert issue.messages[-1] == raw

    replay = LedgerNode.open(
        tmp_path / "replay.db", genesis=GENESIS, params=PARAMS, schedule=SCHEDULE
    )
    for raw in published:
        with contextlib.suppress(DuplicateMessageError):
            replay.submit(raw)
    assert replay.core.confirmed_index == confirmed
    assert replay.core.ledger.state_hash == node.core.ledger.state_hash
    assert replay.storage.head() == node.storage.head()
    assert replay.core.ledger.unspent == node.core.ledger.unspent
    for closing in (replay, node, journal):
        closing.close()
