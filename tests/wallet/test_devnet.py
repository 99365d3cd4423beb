"""`tanglepay wallet` against a real devnet: a coordinator and two nodes as processes
(`tanglepay.devnet.load_or_create` + `launch`), the CLI as a subprocess per command.

The wallet is funded from the devnet's faucet account (its genesis keys in `secrets.json`),
paid by a library `Wallet` in this process: the faucet's HTTP service runs only inside
`tanglepay.devnet.run`, which owns its processes, and this test must kill one of them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio

from tanglepay.devnet import launch, load_or_create
from wallet import AccountKey, Wallet, WalletConfig
from wallet.cli import EXIT_INSUFFICIENT_FUNDS, EXIT_NODE_UNAVAILABLE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

ROOT = Path(__file__).resolve().parents[2]
FUNDS = 5_000_000


@dataclass(frozen=True, slots=True)
class WalletCli:
    """`tanglepay wallet --json` on one wallet directory and one node, as a subprocess."""

    directory: Path
    node: str
    password: Path

    def argv(self, *argv: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tanglepay.cli",
            "wallet",
            "--dir",
            str(self.directory),
            "--node",
            self.node,
            "--password-file",
            str(self.password),
            "--json",
            *argv,
        ]

    async def run(self, *argv: str) -> tuple[int, dict[str, Any]]:
        done = await trio.run_process(
            self.argv(*argv),
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("TANGLEPAY_")},
        )
        stderr = done.stderr.decode()
        assert "Traceback" not in stderr, stderr
        assert len(stderr.splitlines()) == (0 if done.returncode == 0 else 1), stderr
        (line,) = done.stdout.decode().splitlines()
        document: dict[str, Any] = json.loads(line)
        return done.returncode, document

    async def ok(self, *argv: str) -> dict[str, Any]:
        code, document = await self.run(*argv)
        assert code == 0, document
        return document

    async def balance(self) -> int:
        total: int = (await self.ok("balance"))["total"]
        return total

    async def until_balance(self, expected: int, timeout_s: float = 20) -> None:
        """The balance reaches `expected` (the wallet's node may be a milestone behind)."""
        with trio.fail_after(timeout_s):
            while True:
                if await self.balance() == expected:
                    return
                await trio.sleep(0.3)


async def _pay_from_faucet(data_dir: Path, api: str, state: Path, to: str, amount: int) -> None:
    seed = bytes.fromhex(json.loads((data_dir / "secrets.json").read_text())["faucet"])
    config = WalletConfig(confirm_timeout_s=30, pow_threads=1)
    async with Wallet.open(AccountKey(seed, 0), url=api, state_path=state, config=config) as w:
        await w.sync()
        await w.send(to, amount, idempotency_key=f"faucet:{to}")


async def _until(check: Callable[[], Awaitable[bool] | bool], timeout_s: float) -> None:
    with trio.fail_after(timeout_s):
        while True:
            outcome = check()
            if outcome if isinstance(outcome, bool) else await outcome:
                return
            await trio.sleep(0.01)


def _transfers(state: Path) -> list[tuple[str, int]]:
    """(status, attachments) of each transfer in a wallet's state file, read-only."""
    if not state.exists():
        return []
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        return [
            (status, count)
            for status, count in db.execute(
                "SELECT t.status, (SELECT count(*) FROM attachments a "
                "WHERE a.key_hash = t.key_hash) FROM transfers t ORDER BY t.created_ms"
            )
        ]
    except sqlite3.OperationalError:  # the schema is not written yet
        return []
    finally:
        db.close()


@pytest.mark.slow
async def test_cli_wallet_pays_exactly_once_on_a_devnet(tmp_path: Path) -> None:
    data_dir = tmp_path / "devnet"
    devnet = load_or_create(data_dir, nodes=2, interval_s=0.5)
    password = tmp_path / "password"
    password.write_text("devnet wallet password\n")
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        _, node1, node2 = await launch(devnet.members, nursery, http)
        alice = WalletCli(tmp_path / "alice", node2.member.api, password)
        bob = WalletCli(tmp_path / "bob", node1.member.api, password)
        for cli in (alice, bob):
            await cli.ok("create", "--kdf-memory-mib", "8")
        alice_address = (await alice.ok("address"))["address"]
        bob_address = (await bob.ok("address"))["address"]
        await _pay_from_faucet(
            data_dir, node1.member.api, tmp_path / "faucet.db", alice_address, FUNDS
        )
        await alice.until_balance(FUNDS)

        # a payment, confirmed; both balances follow
        sent = await alice.ok("send", bob_address, "1000000", "--idempotency-key", "order-1")
        assert sent["status"] == "confirmed"
        assert sent["repeat"] is False
        assert sent["idempotency_key"] == "order-1"
        assert sent["confirmed_index"] >= 1
        await bob.until_balance(1_000_000)
        assert await alice.balance() == FUNDS - 1_000_000

        # the same send again: the recorded transfer, no second payment
        again = await alice.ok("send", bob_address, "1000000", "--idempotency-key", "order-1")
        assert again["repeat"] is True
        assert again["transaction_id"] == sent["transaction_id"]
        await trio.sleep(1.2)  # two milestones
        assert await bob.balance() == 1_000_000
        assert await alice.balance() == FUNDS - 1_000_000
        code, short = await alice.run("send", bob_address, str(10 * FUNDS))
        assert code == EXIT_INSUFFICIENT_FUNDS
        assert short["error"]["code"] == "insufficient_funds"

        # the node the wallet talks to is killed (SIGKILL) in the middle of a send and started
        # again with the same command (it resumes from its database): once right after the
        # transfer was signed, before its message was built; once right after its attachment
        # was recorded, as it goes to the node
        state = alice.directory / "devnet-account0.db"
        paid = 1_000_000
        for key, amount, stage in (
            ("order-2", 500_000, "signed"),
            ("order-3", 250_000, "attached"),
        ):
            outcome: list[tuple[int, dict[str, Any]]] = []
            argv = ("send", bob_address, str(amount), "--idempotency-key", key, "--timeout", "60")
            before = len(_transfers(state))

            async def send(argv: tuple[str, ...] = argv, outcome: list[Any] = outcome) -> None:
                outcome.append(await alice.run(*argv))

            def reached(stage: str = stage, before: int = before) -> bool:
                found = _transfers(state)
                return len(found) > before and (stage == "signed" or found[-1][1] >= 1)

            nursery.start_soon(send)
            await _until(reached, timeout_s=30)
            node2.process.kill()
            await node2.process.wait()
            status, _ = _transfers(state)[-1]
            assert status in ("signed", "submitted"), status
            (node2,) = await launch((node2.member,), nursery, http)
            await _until(lambda outcome=outcome: bool(outcome), timeout_s=70)
            code, document = outcome[0]
            repeated = code == EXIT_NODE_UNAVAILABLE
            if repeated:  # gave up before the node was back: repeat (it resumes, never re-pays)
                assert f"--idempotency-key {key}" in document["error"]["message"]
                code, document = await alice.run(*argv)
            assert code == 0, document
            assert document["status"] == "confirmed"
            assert document["repeat"] is repeated
            paid += amount
            await bob.until_balance(paid)
        await trio.sleep(1.2)  # two more milestones: nothing is paid twice
        assert await bob.balance() == paid
        assert await alice.balance() == FUNDS - paid
        history = (await alice.ok("history"))["transfers"]
        assert [(t["amount"], t["status"]) for t in history] == [
            (1_000_000, "confirmed"),
            (500_000, "confirmed"),
            (250_000, "confirmed"),
        ]
        assert history[2]["transaction_id"] == document["transaction_id"]
        nursery.cancel_scope.cancel()
