"""`tanglepay devnet`: a coordinator and nodes as processes; transfers confirm; it resumes."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tanglepay.devnet import DevnetOptions, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_devnet_confirms_transfers_and_resumes(tmp_path: Path) -> None:
    lines: list[str] = []
    options = DevnetOptions(data_dir=tmp_path, nodes=2, interval_s=0.5, tps=30, duration_s=5)
    first = await run(options, lines.append)
    assert first is not None
    assert first >= 3
    milestones = [line for line in lines if line.startswith("milestone")]
    assert any("(ours 0," not in line for line in milestones)
    assert all(" 0 conflicting" in line for line in milestones)
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "coordinator" / "signers.json").stat().st_mode) == 0o600
    description = json.loads((tmp_path / "devnet.json").read_text())
    assert [m["name"] for m in description["members"]] == ["coordinator", "node1", "node2"]
    lines.clear()
    paid = bytes(range(32)).hex()
    async with trio.open_nursery() as nursery:
        result: list[int] = []

        async def resume() -> None:
            result.append(await run(options, lines.append))

        nursery.start_soon(resume)
        balance = await _faucet_pays(tmp_path, paid)
    assert balance == 5_000_000
    assert result[0] > first


async def _faucet_pays(data_dir: Path, address: str) -> int:
    """Ask the running devnet's faucet for funds; the balance once a node confirmed them."""
    async with httpx.AsyncClient(timeout=10) as client:
        description = json.loads((data_dir / "devnet.json").read_text())
        with trio.fail_after(60):
            while True:
                try:
                    response = await client.post(
                        description["faucet"], json={"address": address, "amount": 5_000_000}
                    )
                except httpx.ConnectError:  # not up yet
                    await trio.sleep(0.2)
                    continue
                if response.status_code != 503:  # 503: no confirmed output free yet
                    break
                await trio.sleep(0.2)
            assert response.status_code == 201, response.text
            api = description["members"][1]["api"]
            while True:
                body = (await client.get(f"{api}/api/v1/addresses/{address}/balance")).json()
                if int(body["balance"]):
                    return int(body["balance"])
                await trio.sleep(0.2)


@pytest.mark.slow
def test_cli_usage_errors_are_one_line(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "tanglepay.cli", "devnet", "--tps", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "must be positive" in bad.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "tanglepay.cli", "node", "--config", str(tmp_path / "none.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr + bad.stderr


def test_the_faucet_takes_bech32m_or_hex_addresses() -> None:
    from tangle.errors import WrongPrefixError
    from tangle.protocol.ids import Address
    from tanglepay.traffic import parse_address
    from wallet import DEVNET, TESTNET, InvalidAddressError, WalletError, encode_address

    address = Address(bytes(range(32)))
    assert parse_address(encode_address(address, DEVNET)) == address
    assert parse_address(address.hex()) == address
    with pytest.raises(InvalidAddressError) as refused:
        parse_address(encode_address(address, TESTNET))
    assert isinstance(refused.value.rule, WrongPrefixError)
    with pytest.raises(WalletError):
        parse_address(encode_address(address, DEVNET)[:-1] + "q")
