"""Ctrl-C during `wallet send`, as a user at a terminal meets it (issue 16): the CLI runs in a
pseudo-terminal against a real devnet (a coordinator and one node as processes), is
interrupted (SIGINT) while it waits for a milestone, and the transfer is found again from what
`history` shows, refused by `abandon` (it may still confirm), and finished by `resume`.

The coordinator is paused (SIGSTOP) while the send waits, so no milestone can come before the
interrupt, and continued (SIGCONT) before the resume.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import threading
from typing import TYPE_CHECKING

import httpx
import pytest
import trio

from tanglepay.devnet import launch, load_or_create
from tests.wallet.test_devnet import FUNDS, ROOT, WalletCli, _pay_from_faucet
from wallet.cli import EXIT_INTERRUPTED, EXIT_NOT_ABANDONED

if TYPE_CHECKING:
    from pathlib import Path

AMOUNT = 1_000_000


class Terminal:
    """A process whose standard streams are the slave side of a pseudo-terminal; everything
    it writes is collected from the master side by a thread."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = os.openpty()
        self.process = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("TANGLEPAY_")},
            close_fds=True,
        )
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while chunk := os.read(self._master, 4096):
                self._chunks.append(chunk)
        except OSError:  # EIO: the slave side is closed
            pass

    @property
    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    async def until_shown(self, needle: str, timeout_s: float) -> None:
        with trio.fail_after(timeout_s):
            while needle not in self.text:
                assert self.process.poll() is None, self.text
                await trio.sleep(0.05)

    async def exit_code(self, timeout_s: float) -> int:
        code = await trio.to_thread.run_sync(functools.partial(self.process.wait, timeout_s))
        await trio.to_thread.run_sync(self._reader.join, 10)
        os.close(self._master)
        return code


@pytest.mark.slow
async def test_ctrl_c_while_waiting_for_a_milestone_then_resume_from_history(
    tmp_path: Path,
) -> None:
    devnet = load_or_create(tmp_path / "devnet", nodes=1, interval_s=0.5)
    password = tmp_path / "password"
    password.write_text("devnet wallet password\n")
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        coordinator, node = await launch(devnet.members, nursery, http)
        alice = WalletCli(tmp_path / "alice", node.member.api, password)
        bob = WalletCli(tmp_path / "bob", node.member.api, password)
        for cli in (alice, bob):
            await cli.ok("create", "--kdf-memory-mib", "8")
        alice_address = (await alice.ok("address"))["address"]
        bob_address = (await bob.ok("address"))["address"]
        await _pay_from_faucet(
            tmp_path / "devnet", node.member.api, tmp_path / "faucet.db", alice_address, FUNDS
        )
        await alice.until_balance(FUNDS)

        coordinator.process.send_signal(signal.SIGSTOP)
        try:
            argv = [a for a in alice.argv("send", bob_address, str(AMOUNT)) if a != "--json"]
            terminal = Terminal(argv)
            await terminal.until_shown("waiting for a milestone", timeout_s=120)
            terminal.process.send_signal(signal.SIGINT)  # what Ctrl-C delivers
            assert await terminal.exit_code(timeout_s=30) == EXIT_INTERRUPTED
            shown = terminal.text
            assert "Traceback" not in shown
            printed = re.search(r"repeat with --idempotency-key (\w+) to resume it safely", shown)
            assert printed is not None, shown

            # the printed line is lost: history gives the key and the id back
            (pending,) = (await alice.ok("history"))["transfers"]
            assert pending["status"] == "submitted"
            assert pending["idempotency_key"] == printed.group(1)
            transfer_id = pending["transaction_id"][:16]
            code, refused = await alice.run("abandon", transfer_id)
            assert code == EXIT_NOT_ABANDONED  # it may still confirm: its funds stay held
            assert refused["error"]["code"] == "still_pending"
            assert (await alice.ok("balance"))["reserved"] == FUNDS
        finally:
            coordinator.process.send_signal(signal.SIGCONT)

        resumed = await alice.ok("resume", transfer_id, "--timeout", "60")
        assert resumed["status"] == "confirmed"
        assert resumed["transaction_id"] == pending["transaction_id"]
        assert resumed["idempotency_key"] == printed.group(1)
        await bob.until_balance(AMOUNT)
        assert await alice.balance() == FUNDS - AMOUNT
        (received,) = (await bob.ok("history"))["received"]
        assert (received["amount"], received["transaction_id"]) == (
            AMOUNT,
            pending["transaction_id"],
        )
        nursery.cancel_scope.cancel()
