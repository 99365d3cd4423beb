"""Wallet latencies: `python -m benchmarks.wallet [--json] [--quick]`.

A coordinator and two nodes run as separate processes (`tanglepay.devnet`, a temporary data
directory, a milestone every second) on this machine, beside this client. The sending wallet is
funded from the devnet's faucet account (its genesis keys), then measured in this run:

* `send_to_confirmed_p50_s` / `_p90_s`: `Wallet.send` of `AMOUNT` base units to another
  account, from the call until it returns the transfer confirmed, which it learns from the
  node's event stream (`GET /api/v1/events`); the send syncs nothing first, builds and signs
  the transfer, does the proof-of-work locally (the Numba kernel), attaches it on the node's
  tips and follows the stream. `SENDS` sends (`--quick`: `QUICK_SENDS`) one after another, each
  spending the previous one's change, after one unmeasured warm-up send; before each, a pause
  drawn uniformly from one milestone interval, so that sends do not all start right after the
  milestone that confirmed the one before (which would lock them to the milestone clock and
  measure one interval every time). `stream_failures` and
  `polls` count the times a wallet fell back to polling (0: every confirmation came through the
  stream);
* `keystore_unlock_ms`: `open_keystore` of a file written with the default Argon2id parameters
  (t=3, 256 MiB, p=1), the median of `UNLOCKS` (`--quick`: `QUICK_UNLOCKS`);
* `sign_transfer_us`: building the essence of a 1-input, 2-output transfer (with the 36-byte
  idempotency memo the wallet writes) and signing it (`sign_transaction`, ed25519), keys already
  derived; the median of `SIGNATURES` (`--quick`: `QUICK_SIGNATURES`).

The target: a send confirmed within two milestone intervals at the median. Human-readable lines
come first; the last line printed is always one JSON object (`--json` prints only that line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx
import numpy as np
import trio

from tangle import work
from tangle.protocol.ids import Address, OutputId, TransactionId
from tangle.protocol.transaction import BasicOutput, TransactionEssence
from tanglepay.devnet import NETWORK_ID, launch, load_or_create
from wallet import (
    DEFAULT_KDF,
    MEMO_TAG,
    AccountKey,
    KeystoreMetadata,
    Wallet,
    WalletConfig,
    WalletSecret,
    create_keystore,
    open_keystore,
    sign_transaction,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

INTERVAL_S: Final = 1.0
"""Milestone interval of the devnet."""
SENDS: Final = 30
QUICK_SENDS: Final = 8
UNLOCKS: Final = 7
QUICK_UNLOCKS: Final = 3
SIGNATURES: Final = 2000
QUICK_SIGNATURES: Final = 300
FUNDS: Final = 50_000_000
AMOUNT: Final = 1_000
TARGET_P50_S: Final = 2 * INTERVAL_S
PASSWORD: Final = "benchmark password"
SEED: Final = 21584
"""Seeds the pauses between sends."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WalletBenchmark:
    """One run's figures."""

    send_to_confirmed_p50_s: float
    """Median time from `Wallet.send` to its confirmed return."""
    send_to_confirmed_p90_s: float
    """90th percentile of the same."""
    sends: int
    """Measured sends."""
    stream_failures: int
    """Times the sending wallet lost or could not open the event stream."""
    polls: int
    """Metadata polls instead of events."""
    keystore_unlock_ms: float
    """Median `open_keystore` with the default Argon2id parameters."""
    unlocks: int
    """Unlocks timed."""
    sign_transfer_us: float
    """Median build-and-sign of a 1-input, 2-output transfer."""
    signatures: int
    """Transfers signed."""
    milestone_interval_s: float
    """The devnet's milestone interval."""

    @property
    def targets_met(self) -> bool:
        return self.send_to_confirmed_p50_s <= TARGET_P50_S

    def to_json(self) -> dict[str, float | int | bool | str]:
        return {
            **dataclasses.asdict(self),
            "statistic": "median (p50) and p90 of sends; medians of unlocks and signatures",
            "target_send_to_confirmed_p50_s": TARGET_P50_S,
            "targets_met": self.targets_met,
        }


async def _fund(data_dir: Path, api: str, state: Path, to: Address, amount: int) -> None:
    """Pay `amount` to `to` from the faucet account, confirmed."""
    seed = bytes.fromhex(json.loads((data_dir / "secrets.json").read_text())["faucet"])
    config = WalletConfig(confirm_timeout_s=60)
    async with Wallet.open(AccountKey(seed, 0), url=api, state_path=state, config=config) as w:
        await w.sync()
        await w.send(to, amount)


async def measure_sends(count: int, workdir: Path) -> tuple[list[float], int, int]:
    """Seconds from call to confirmation of `count` sends on a fresh devnet, and the sending
    wallet's stream failures and polls."""
    data_dir = workdir / "devnet"
    devnet = load_or_create(data_dir, nodes=2, interval_s=INTERVAL_S)
    sender = AccountKey(WalletSecret.generate().seed, 0)
    receiver = AccountKey(WalletSecret.generate().seed, 0).address(0)
    config = WalletConfig(confirm_timeout_s=60)
    rng = random.Random(SEED)
    latencies = []
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        _, node1, _ = await launch(devnet.members, nursery, http)
        api = node1.member.api
        await _fund(data_dir, api, workdir / "faucet.db", sender.address(0), FUNDS)
        state = workdir / "sender.db"
        async with Wallet.open(sender, url=api, state_path=state, config=config) as w:
            await w.sync()
            await w.send(receiver, AMOUNT)  # warm-up: the kernel, the connection
            failures, polls = w.counters.stream_failures, w.counters.polls
            for _ in range(count):
                await trio.sleep(rng.uniform(0, INTERVAL_S))
                began = time.perf_counter()
                await w.send(receiver, AMOUNT)
                latencies.append(time.perf_counter() - began)
            failures = w.counters.stream_failures - failures
            polls = w.counters.polls - polls
        nursery.cancel_scope.cancel()
    return latencies, failures, polls


def measure_unlock(count: int, workdir: Path) -> list[float]:
    """Milliseconds per `open_keystore` of a default-parameter keystore."""
    path = workdir / "keystore.json"
    create_keystore(
        path, WalletSecret.generate(), PASSWORD, metadata=KeystoreMetadata(network="devnet")
    )
    times = []
    for _ in range(count):
        began = time.perf_counter()
        open_keystore(path, PASSWORD)
        times.append((time.perf_counter() - began) * 1e3)
    return times


def measure_signing(count: int) -> list[float]:
    """Microseconds per build-and-sign of a 1-input, 2-output transfer."""
    account = AccountKey(WalletSecret.generate().seed, 0)
    key = account.address_key(0)
    recipient = AccountKey(WalletSecret.generate().seed, 0).address(0)
    change = account.address(0, change=1)
    spent = OutputId.of(TransactionId(bytes(range(32))), 1)
    memo = MEMO_TAG + bytes(32)
    times = []
    for i in range(count):
        began = time.perf_counter()
        essence = TransactionEssence(
            network_id=NETWORK_ID,
            inputs=(spent,),
            outputs=(
                BasicOutput(address=recipient, amount=AMOUNT + i),
                BasicOutput(address=change, amount=FUNDS - AMOUNT - i),
            ),
            memo=memo,
        )
        sign_transaction(essence, [key])
        times.append((time.perf_counter() - began) * 1e6)
    return times


def measure(quick: bool) -> WalletBenchmark:
    """Every figure, in this run."""
    work.warm_up()
    signing = measure_signing(QUICK_SIGNATURES if quick else SIGNATURES)
    with tempfile.TemporaryDirectory(prefix="tanglepay-wallet-bench-") as tmp:
        workdir = Path(tmp)
        unlocking = measure_unlock(QUICK_UNLOCKS if quick else UNLOCKS, workdir)
        sends = QUICK_SENDS if quick else SENDS
        latencies, failures, polls = trio.run(measure_sends, sends, workdir)
    return WalletBenchmark(
        send_to_confirmed_p50_s=round(statistics.median(latencies), 3),
        send_to_confirmed_p90_s=round(float(np.percentile(latencies, 90)), 3),
        sends=len(latencies),
        stream_failures=failures,
        polls=polls,
        keystore_unlock_ms=round(statistics.median(unlocking), 1),
        unlocks=len(unlocking),
        sign_transfer_us=round(statistics.median(signing), 1),
        signatures=len(signing),
        milestone_interval_s=INTERVAL_S,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    args = parser.parse_args(argv)
    result = measure(args.quick)
    if not args.json:
        print(
            f"send to confirmed   p50 {result.send_to_confirmed_p50_s:6.3f} s  "
            f"p90 {result.send_to_confirmed_p90_s:6.3f} s  ({result.sends} sends, "
            f"milestones every {result.milestone_interval_s:g} s, "
            f"{result.stream_failures} stream failures, {result.polls} polls)"
        )
        print(
            f"keystore unlock     {result.keystore_unlock_ms:8.1f} ms  (Argon2id t=3, "
            f"{DEFAULT_KDF.mem_limit >> 20} MiB; median of {result.unlocks})"
        )
        print(
            f"sign transfer       {result.sign_transfer_us:8.1f} us  (1 input, 2 outputs; "
            f"median of {result.signatures})"
        )
        print(f"targets {'met' if result.targets_met else 'MISSED'}")
    print(json.dumps(result.to_json()))


if __name__ == "__main__":
    main()
