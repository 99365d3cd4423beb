"""`tanglepay wallet` against a real node on loopback (hypercorn in a thread, a coordinator
issuing milestones; see `test_wallet_client.node_in_a_thread`), the CLI in this process: what a
new user meets in the first hour (issue 16), in the user's words."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from tanglepay.cli import main
from tests.builders import address
from tests.wallet.test_cli import CHEAP, secret_file
from tests.wallet.test_client import ACCOUNT, BOB, CONFIG, MIN_OUTPUT, RETRY, node_in_a_thread
from wallet import DEVNET, Wallet, encode_address
from wallet.cli import EXIT_INSUFFICIENT_FUNDS, EXIT_NOT_ABANDONED, EXIT_USAGE

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class NodeCli:
    """`tanglepay wallet --dir DIR --node URL --password-file F ...` in this process."""

    def __init__(self, capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str) -> None:
        self.capsys = capsys
        self.base = ["wallet", "--dir", str(tmp_path / "w"), "--node", url]
        self.password = secret_file(tmp_path, "password", "first hour")

    def run(self, *argv: str) -> tuple[int, str, str]:
        code = main([*self.base, *argv, "--password-file", self.password])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> dict[str, Any]:
        code, out, err = self.run("--json", *argv)
        assert code == 0, err
        document: dict[str, Any] = json.loads(out)
        return document


def _fund(tmp_path: Path, url: str, to: str, amount: int) -> None:
    async def pay() -> None:
        async with Wallet.open(
            ACCOUNT, url=url, state_path=tmp_path / "funder.db", config=CONFIG, retry=RETRY
        ) as funder:
            await funder.sync()
            await funder.send(to, amount, idempotency_key=f"fund:{to}")

    anyio.run(pay, backend="trio")


@pytest.fixture
def cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[NodeCli, int]]:
    for name in ("TANGLEPAY_NODE", "TANGLEPAY_WALLET_DIR", "TANGLEPAY_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    with node_in_a_thread(tmp_path) as port:
        url = f"http://127.0.0.1:{port}"
        cli = NodeCli(capsys, tmp_path, url)
        code, _, err = cli.run("create", *CHEAP)
        assert code == 0, err
        mine = cli.json("address")["address"]
        _fund(tmp_path, url, mine, 10_000)
        yield cli, port


def test_a_node_given_without_a_scheme_is_a_usage_error_naming_the_form(
    cli: tuple[NodeCli, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet_cli, port = cli
    code = main(["wallet", "--dir", "unused", "--node", f"127.0.0.1:{port}", "balance"])
    _, err = wallet_cli.capsys.readouterr()
    assert code == EXIT_USAGE
    assert err.startswith("tanglepay wallet: --node: invalid node URL: expected http://HOST:PORT")
    assert "unavailable" not in err
    monkeypatch.setenv("TANGLEPAY_NODE", f"localhost:{port}")
    assert main(["wallet", "--dir", "unused", "balance"]) == EXIT_USAGE
    assert "TANGLEPAY_NODE: invalid node URL" in wallet_cli.capsys.readouterr().err


def test_amounts_below_the_minimum_and_dust_change_say_the_minimum_and_print_no_key(
    cli: tuple[NodeCli, int],
) -> None:
    wallet_cli, _ = cli
    bob = wallet_cli.json("address", "--index", "0")["address"]  # any valid address will do
    code, out, err = wallet_cli.run("send", bob, str(MIN_OUTPUT - 1))
    assert (code, out) == (EXIT_USAGE, "")
    assert err == (
        f"tanglepay wallet: amount {MIN_OUTPUT - 1} is too small: an output must be at least "
        f"{MIN_OUTPUT}\n"
    )
    assert "idempotency key" not in err  # nothing was started
    code, out, err = wallet_cli.run("send", bob, str(10_000 - MIN_OUTPUT // 2))
    assert (code, out) == (EXIT_INSUFFICIENT_FUNDS, "")
    assert f"the change would be below the minimum output of {MIN_OUTPUT}" in err
    assert f"pay exactly 10000, or at most {10_000 - MIN_OUTPUT}" in err


def test_history_shows_received_outputs_and_each_transfers_key(
    cli: tuple[NodeCli, int],
) -> None:
    wallet_cli, _ = cli
    history = wallet_cli.json("history")
    assert history["transfers"] == []
    (incoming,) = history["received"]
    assert incoming["amount"] == 10_000
    code, out, _ = wallet_cli.run("history")
    assert code == 0
    assert "no transfers yet" not in out
    assert " received " in out
    wallet_cli.json("send", wallet_cli.json("address")["address"], "1000")  # to itself
    bob = encode_address(address(BOB), DEVNET)
    wallet_cli.json("send", bob, "2000", "--idempotency-key", "order-9")
    history = wallet_cli.json("history")
    keys = [t["idempotency_key"] for t in history["transfers"]]
    assert keys[1] == "order-9"
    assert keys[0] is not None  # the key the CLI made up is kept too
    assert len(history["received"]) == 1  # change and payments to itself are not incoming
    code, out, _ = wallet_cli.run("history")
    assert "key order-9" in out
    again = wallet_cli.json("resume", history["transfers"][1]["transaction_id"][:10])
    assert again["status"] == "confirmed"
    assert again["transaction_id"] == history["transfers"][1]["transaction_id"]
    code, out, err = wallet_cli.run("abandon", "order-9")  # its payment is made
    assert (code, out) == (EXIT_NOT_ABANDONED, "")
    assert "was confirmed by milestone" in err
    code, out, err = wallet_cli.run("abandon", "order-10")
    assert code == EXIT_USAGE
    assert "order-10" not in err  # a key may mean something to someone
