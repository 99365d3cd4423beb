"""`tanglepay wallet` without a node: create, restore, address, export and import, the exit
codes and the one-line errors, `--json` shapes. Driven in-process through `tanglepay.cli.main`
(and, to see what a user sees, a few times as a subprocess). Keystores are written with the
documented `--kdf-memory-mib 1`, so each unlock takes milliseconds instead of ~0.4 s."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tanglepay.cli import main
from wallet import (
    DEVNET,
    TESTNET,
    AccountKey,
    Balance,
    TransferStatus,
    WalletSecret,
    decode_address,
    encode_address,
    parse_address,
)
from wallet._cli_transfers import pay
from wallet.cli import (
    EXIT_INSUFFICIENT_FUNDS,
    EXIT_NO_WALLET,
    EXIT_NODE_UNAVAILABLE,
    EXIT_TRANSFER_FAILED,
    EXIT_USAGE,
    EXIT_WRONG_PASSWORD,
    CliError,
    classify,
    phase,
)
from wallet.errors import InsufficientFundsError, RejectedError, TransferTimeoutError

ROOT = Path(__file__).resolve().parents[2]
CHEAP = ("--kdf-memory-mib", "1")
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
"""A BIP-39 test vector (12 words)."""


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANGLEPAY_NODE", raising=False)
    monkeypatch.delenv("TANGLEPAY_WALLET_DIR", raising=False)
    monkeypatch.delenv("TANGLEPAY_DEBUG", raising=False)


def secret_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text + "\n")
    return str(path)


class Cli:
    """`tanglepay wallet --dir DIR ...` in this process, with its output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], directory: Path) -> None:
        self.capsys = capsys
        self.directory = directory

    def run(self, *argv: str) -> tuple[int, str, str]:
        code = main(["wallet", "--dir", str(self.directory), *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str, expect: int = 0) -> dict[str, Any]:
        code, out, err = self.run("--json", *argv)
        assert code == expect, err
        lines = out.splitlines()
        assert len(lines) == 1, out
        document: dict[str, Any] = json.loads(lines[0])
        return document

    def fails(self, *argv: str, expect: int) -> str:
        """The one stderr line of a failing command."""
        code, out, err = self.run(*argv)
        assert code == expect, (out, err)
        assert out == ""
        assert "Traceback" not in err
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("tanglepay wallet: ")
        return lines[0]


@pytest.fixture
def password(tmp_path: Path) -> str:
    return secret_file(tmp_path, "password", "correct horse battery staple")


def created(cli: Cli, password: str, *extra: str) -> dict[str, Any]:
    return cli.json("create", "--password-file", password, *CHEAP, *extra)


def test_create_writes_a_private_keystore_and_shows_the_mnemonic_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    cli = Cli(capsys, tmp_path / "wallet")
    result = created(cli, password)
    assert set(result) == {"command", "keystore", "network", "address", "mnemonic"}
    assert result["command"] == "create"
    assert result["network"] == "devnet"
    assert len(result["mnemonic"].split()) == 24
    secret = WalletSecret.from_mnemonic(result["mnemonic"])
    keystore = Path(result["keystore"])
    assert keystore == tmp_path / "wallet" / "keystore.json"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert stat.S_IMODE(keystore.parent.stat().st_mode) == 0o700
    assert result["mnemonic"] not in keystore.read_text()
    network, address = parse_address(result["address"])
    assert network == DEVNET
    assert address == AccountKey(secret.seed, 0).address(0)

    people = Cli(capsys, tmp_path / "other")
    code, out, err = people.run("create", "--password-file", password, "--words", "12", *CHEAP)
    assert code == 0, err
    numbered = sorted((int(n), word) for n, word in re.findall(r"(\d+)\. ([a-z]+)", out))
    assert [n for n, _ in numbered] == list(range(1, 13))
    shown = " ".join(word for _, word in numbered)
    restored = WalletSecret.from_mnemonic(shown)  # the grid is the whole, valid mnemonic
    assert err == ""
    assert out.splitlines()[-1] == "address " + encode_address(
        AccountKey(restored.seed, 0).address(0), DEVNET
    )
    assert shown not in (tmp_path / "other" / "keystore.json").read_text()
    assert "tpdev1" in out.splitlines()[-1]
    assert stat.S_IMODE((tmp_path / "other" / "keystore.json").stat().st_mode) == 0o600


def test_restore_reproduces_the_addresses_of_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    original = Cli(capsys, tmp_path / "a")
    mnemonic = created(original, password)["mnemonic"]
    copy = Cli(capsys, tmp_path / "b")
    other_password = secret_file(tmp_path, "other", "another password")
    # extra spaces and capitals are read leniently
    words = secret_file(tmp_path, "words", "  " + mnemonic.upper().replace(" ", "   ") + "  ")
    restored = copy.json(
        "restore", "--mnemonic-file", words, "--password-file", other_password, *CHEAP
    )
    assert restored["command"] == "restore"
    assert set(restored) == {"command", "keystore", "network", "address"}
    for index in range(4):
        mine = original.json("address", "--index", str(index), "--password-file", password)
        theirs = copy.json("address", "--index", str(index), "--password-file", other_password)
        assert mine == theirs
        assert mine["index"] == index
    assert original.json("address", "--password-file", password) == copy.json(
        "--password-file", other_password, "address"
    )
    assert restored["address"] == original.json("address", "--password-file", password)["address"]


def test_a_bip39_passphrase_makes_another_wallet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    words = secret_file(tmp_path, "words", MNEMONIC)
    passphrase = secret_file(tmp_path, "passphrase", "TREZOR")
    plain = Cli(capsys, tmp_path / "plain").json(
        "restore", "--mnemonic-file", words, "--password-file", password, *CHEAP
    )
    salted = Cli(capsys, tmp_path / "salted").json(
        "restore",
        "--mnemonic-file",
        words,
        "--passphrase-file",
        passphrase,
        "--password-file",
        password,
        *CHEAP,
    )
    assert plain["address"] != salted["address"]
    expected = WalletSecret.from_mnemonic(MNEMONIC, "TREZOR")
    assert decode_address(salted["address"], DEVNET) == AccountKey(expected.seed, 0).address(0)


def test_a_bad_mnemonic_is_refused_without_showing_a_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    cli = Cli(capsys, tmp_path / "w")
    wrong = MNEMONIC.replace("yellow", "winner")  # the checksum no longer matches
    line = cli.fails(
        "restore",
        "--mnemonic-file",
        secret_file(tmp_path, "m", wrong),
        "--password-file",
        password,
        expect=EXIT_USAGE,
    )
    assert "checksum" in line
    typo = MNEMONIC.replace("sausage", "sausagf")
    line = cli.fails(
        "restore",
        "--mnemonic-file",
        secret_file(tmp_path, "t", typo),
        "--password-file",
        password,
        expect=EXIT_USAGE,
    )
    assert "word 6" in line
    assert "sausag" not in line
    assert not (tmp_path / "w" / "keystore.json").exists()


def test_export_and_import_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    source = Cli(capsys, tmp_path / "source")
    created(source, password)
    new_password = secret_file(tmp_path, "new", "a new password")
    target = tmp_path / "backup.json"
    exported = source.json(
        "export",
        str(target),
        "--password-file",
        password,
        "--new-password-file",
        new_password,
        *CHEAP,
    )
    assert exported == {"command": "export", "path": str(target), "network": "devnet"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    line = source.fails(
        "export",
        str(target),
        "--password-file",
        password,
        "--new-password-file",
        new_password,
        expect=EXIT_USAGE,
    )
    assert "already exists" in line

    installed = Cli(capsys, tmp_path / "installed")
    line = installed.fails(
        "import", str(target), "--password-file", password, expect=EXIT_WRONG_PASSWORD
    )
    imported = installed.json("import", str(target), "--password-file", new_password, *CHEAP)
    assert imported["command"] == "import"
    assert stat.S_IMODE(Path(imported["keystore"]).stat().st_mode) == 0o600
    for index in ("0", "7"):
        assert installed.json(
            "address", "--index", index, "--password-file", new_password
        ) == source.json("address", "--index", index, "--password-file", password)
    installed.fails("address", "--password-file", password, expect=EXIT_WRONG_PASSWORD)
    line = installed.fails(
        "import", str(target), "--password-file", new_password, expect=EXIT_USAGE
    )
    assert "already exists" in line


def test_a_wrong_password_is_its_own_exit_code_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    cli = Cli(capsys, tmp_path / "w")
    created(cli, password)
    wrong = secret_file(tmp_path, "wrong", "Correct horse battery staple")
    for command in (["address"], ["history"], ["export", str(tmp_path / "x.json")]):
        line = cli.fails(*command, "--password-file", wrong, expect=EXIT_WRONG_PASSWORD)
        assert line == "tanglepay wallet: wrong password for this wallet"
        assert "Correct horse" not in line
    error = cli.json("address", "--password-file", wrong, expect=EXIT_WRONG_PASSWORD)
    assert error == {
        "error": {
            "code": "wrong_password",
            "message": "wrong password for this wallet",
            "exit_code": EXIT_WRONG_PASSWORD,
        }
    }
    assert not (tmp_path / "x.json").exists()


def test_no_wallet_no_node_and_an_unreachable_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    cli = Cli(capsys, tmp_path / "w")
    line = cli.fails(
        "balance",
        "--node",
        "http://127.0.0.1:9",
        "--password-file",
        password,
        expect=EXIT_NO_WALLET,
    )
    assert "no wallet in" in line
    assert cli.json("address", expect=EXIT_NO_WALLET)["error"]["code"] == "no_wallet"
    created(cli, password)
    line = cli.fails("balance", "--password-file", password, expect=EXIT_USAGE)
    assert "no node" in line
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = f"http://127.0.0.1:{port}"
    line = cli.fails(
        "--node",
        node,
        "--retries",
        "0",
        "balance",
        "--password-file",
        password,
        expect=EXIT_NODE_UNAVAILABLE,
    )
    assert "node unavailable" in line
    assert node not in line  # a URL may carry credentials
    recipient = created(Cli(capsys, tmp_path / "r"), password)["address"]
    line = cli.fails(
        "--node",
        node,
        "--retries",
        "0",
        "send",
        recipient,
        "1000",
        "--idempotency-key",
        "order-1",
        "--password-file",
        password,
        expect=EXIT_NODE_UNAVAILABLE,
    )
    assert "resume" not in line  # the node was never reached: nothing was recorded


def test_usage_errors_are_one_line_with_exit_code_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli = Cli(capsys, tmp_path / "w")
    created(cli, password)
    node = ("--node", "http://127.0.0.1:9", "--password-file", password)
    testnet = created(Cli(capsys, tmp_path / "t"), password, "--network", "testnet")["address"]
    assert parse_address(testnet)[0] == TESTNET
    cases = [
        (["frobnicate"], "invalid choice"),
        (["send", "tpdev1xyz"], "required"),
        (["create", "--password-file", password, *CHEAP], "already exists"),
        (["create", "--password-file", password, "--kdf-memory-mib", "0"], "already exists"),
        (["send", "not-an-address", "1000", *node], "bech32m"),
        (["send", testnet, "1000", *node], "prefix"),
        (["send", testnet.replace("tptest", "tpdev"), "1000", *node], "checksum"),
        (["send", testnet, "ten", *node], "not an integer"),
        (["send", testnet, "-5", *node], "positive"),
        (["address", "--password-file", str(tmp_path / "missing")], "cannot read"),
        (["address", "--index", "-1", "--password-file", password], "--index"),
        (["--account", "-1", "address"], "--account"),
    ]
    for argv, expected in cases:
        line = cli.fails(*argv, expect=EXIT_USAGE)
        assert expected in line, (argv, line)
    fresh = Cli(capsys, tmp_path / "fresh")
    line = fresh.fails(
        "create", "--password-file", password, "--kdf-memory-mib", "0", expect=EXIT_USAGE
    )
    assert "--kdf-memory-mib" in line
    line = fresh.fails("create", expect=EXIT_USAGE)  # no terminal to prompt on
    assert "pass a file" in line
    empty = secret_file(tmp_path, "empty", "")
    line = fresh.fails("create", "--password-file", empty, *CHEAP, expect=EXIT_USAGE)
    assert "empty password" in line
    assert not (tmp_path / "fresh" / "keystore.json").exists()
    assert fresh.json("frobnicate", expect=EXIT_USAGE)["error"]["code"] == "usage"
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery staple\n"))
    assert cli.json("address", "--password-file", "-")["index"] == 0


def test_json_shapes_of_offline_commands(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TANGLEPAY_WALLET_DIR", str(tmp_path / "env"))
    code = main(["wallet", "--json", "create", "--password-file", password, *CHEAP])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["keystore"] == str(tmp_path / "env" / "keystore.json")
    cli = Cli(capsys, tmp_path / "env")
    address = cli.json("address", "--password-file", password)
    assert set(address) == {"command", "address", "hex", "index", "network"}
    assert address["index"] == 0
    assert address["address"].startswith("tpdev1")
    history = cli.json("history", "--password-file", password)
    assert history == {"command": "history", "network": "devnet", "transfers": [], "received": []}
    # the state file lives next to the keystore, one per account and network
    assert stat.S_IMODE((tmp_path / "env" / "devnet-account0.db").stat().st_mode) == 0o600
    second = cli.json("--account", "1", "address", "--password-file", password)
    assert second["address"] != address["address"]
    assert (tmp_path / "env" / "devnet-account1.db").exists()
    on_testnet = cli.json("--network", "testnet", "address", "--password-file", password)
    assert on_testnet["address"].startswith("tptest1")
    assert (tmp_path / "env" / "testnet-account0.db").exists()
    code, out, _ = cli.run("history", "--password-file", password)
    assert (code, out) == (0, "no transfers yet\n")
    code, out, _ = cli.run("--help")
    assert code == 0
    assert "exit codes" in out


def test_errors_map_to_their_exit_codes() -> None:
    assert (
        classify(InsufficientFundsError(10, 5, min_output=1)).exit_code == EXIT_INSUFFICIENT_FUNDS
    )
    assert classify(TransferTimeoutError("ab", 3)).code == "timeout"
    refused = classify(RejectedError("POST /api/v1/messages", "insufficient_work", 400, "low"))
    assert (refused.exit_code, refused.code) == (1, "node_refused")
    assert "insufficient_work" in str(refused)
    assert classify(KeyboardInterrupt()).exit_code == 130
    assert classify(ValueError("boom")).exit_code == 1
    assert phase(None, remote=False) == "syncing and signing"


def test_as_a_process_errors_are_one_line_without_a_traceback(
    tmp_path: Path, password: str
) -> None:
    def tanglepay(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tanglepay.cli", "wallet", "--dir", str(tmp_path / "w"), *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("TANGLEPAY_")},
        )

    missing = tanglepay("address")
    assert missing.returncode == EXIT_NO_WALLET
    made = tanglepay("--json", "create", "--password-file", password, *CHEAP)
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""
    mnemonic = json.loads(made.stdout)["mnemonic"]
    wrong = tanglepay("address", "--password-file", secret_file(tmp_path, "bad", "nope"))
    assert wrong.returncode == EXIT_WRONG_PASSWORD
    usage = tanglepay("send")
    assert usage.returncode == EXIT_USAGE
    for result in (missing, wrong, usage):
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert mnemonic.split()[0] + " " + mnemonic.split()[1] not in result.stderr


class _Refusing:
    """The part of a `Wallet` that `send` failures consult."""

    def __init__(self, error: Exception, status: TransferStatus | None, reserved: int) -> None:
        self.error = error
        self.status = status
        self.reserved = reserved

    async def send(self, *args: object, **options: object) -> None:
        raise self.error

    async def transfer(self, key: str) -> object:
        return None if self.status is None else SimpleNamespace(status=self.status)

    async def balance(self) -> Balance:
        return Balance(total=self.reserved + 1000, reserved=self.reserved, outputs=2)


async def test_send_failures_say_what_the_user_can_do() -> None:
    args = argparse.Namespace(address="a", remote_pow=False, no_wait=False, timeout=None)
    refused = RejectedError("POST /api/v1/messages", "invalid_transaction", 400, "bad input")
    failed = _Refusing(refused, TransferStatus.FAILED, 0)
    with pytest.raises(CliError) as caught:
        await pay(failed, args, 5000, "k")
    assert caught.value.exit_code == EXIT_TRANSFER_FAILED  # as a repeat would report it
    assert "invalid_transaction" in str(caught.value)
    with pytest.raises(RejectedError):  # still pending: not failed for good
        await pay(_Refusing(refused, TransferStatus.SUBMITTED, 0), args, 5000, "k")
    short = InsufficientFundsError(5000, 1000, min_output=1000)
    with pytest.raises(CliError) as caught:
        await pay(_Refusing(short, None, 4000), args, 5000, "k")
    assert caught.value.exit_code == EXIT_INSUFFICIENT_FUNDS
    assert "4000 more are held by pending transfers" in str(caught.value)
    with pytest.raises(InsufficientFundsError):
        await pay(_Refusing(short, None, 0), args, 5000, "k")


def test_an_address_is_shown_in_both_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    cli = Cli(capsys, tmp_path / "w")
    first = created(cli, password)["address"]
    both = cli.json("address", "--password-file", password)
    assert both["address"] == first
    assert both["hex"] == decode_address(first, DEVNET).hex()
    code, out, _ = cli.run("address", "--hex", "--password-file", password)
    assert (code, out) == (0, both["hex"] + "\n")
    code, out, _ = cli.run("address", "--index", "3", "--hex", "--password-file", password)
    assert (
        out.strip()
        == decode_address(
            cli.json("address", "--index", "3", "--password-file", password)["address"], DEVNET
        ).hex()
    )
