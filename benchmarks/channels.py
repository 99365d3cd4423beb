"""Durable off-chain payments over TCP: `python -m benchmarks.channels [--json] [--quick]`.

Two processes on loopback, one one-way channel. This process is the payer (`open_payer`); it
starts a payee process (`serve_payee` over a `PayeeService` and a `ChannelStore` in a temporary
directory: sqlite in WAL mode with `synchronous=FULL`, so every ACK follows the fsync'd commit
that holds the payment).
The payer pipelines: `PayerClient.send` signs each payment (one ed25519 signature per payment)
and sends it at once, with at most `WINDOW` payments unacknowledged. The payee verifies the
newest proof of each read (the newest proof covers every earlier one), group-commits, then ACKs.

* `payments_per_s`: `PAYMENTS` (`--quick`: `QUICK_PAYMENTS`) payments of 1 unit, from the first
  send to the ACK of the last, after `WARMUP` unmeasured payments;
* `latency_p50_ms` / `latency_p99_ms`: per payment, from the return of its `send` (signed and
  queued for the socket) to the arrival of the first ACK that covers it;
* `ed25519_sign_verify_pairs_per_s`: in this run, one process signing and verifying the same
  balance-proof message with PyNaCl (the ceiling: what one core does with one signature and one
  verification per payment), best of `REPEATS`; and `ratio_to_sign_verify_ceiling`;
* `payee_commits`, `payee_saves`: the payee's store counters (commits are fsync'd transactions).

After the run the payee's database is read back: its latest proof must be the last payment. The
targets: at least 10,000 durable payments/s and a p99 under 5 ms. Human-readable lines come
first; the last line printed is always one JSON object (`--json` prints only that line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import trio
from nacl.bindings import crypto_sign_open
from nacl.signing import SigningKey

from benchmarks._report import arguments, emit
from payments import (
    ChannelStore,
    ChannelTerms,
    PayeeService,
    PayerChannel,
    open_payer,
    read_records,
)
from payments import serve_payee as serve
from tangle.protocol.channel import BalanceProof
from tangle.protocol.ids import ChannelId
from wallet.keys import AddressKey, ExtendedKey

if TYPE_CHECKING:
    from collections.abc import Sequence

PAYMENTS: Final = 100_000
QUICK_PAYMENTS: Final = 20_000
WARMUP: Final = 2_000
WINDOW: Final = 64
REPEATS: Final = 3
PAIRS: Final = 5_000
TARGET_PAYMENTS_PER_S: Final = 10_000
TARGET_P99_MS: Final = 5.0
PAYER_KEY: Final = AddressKey(ExtendedKey.from_seed(b"benchmarks.channels payer"))
PAYEE_KEY: Final = AddressKey(ExtendedKey.from_seed(b"benchmarks.channels payee"))
TERMS: Final = ChannelTerms(
    network_id=1,
    channel_id=ChannelId(b"\x42" * 32),
    payer=PAYER_KEY.public_key,
    payee=PAYEE_KEY.public_key,
    deposit=10**15,
    bidirectional=False,
    challenge_period=100,
    expiry=1_000_000,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelsBenchmark:
    """One run's figures."""

    payments_per_s: float
    """Durable, acknowledged payments per second."""
    latency_p50_ms: float
    """Median send-to-ACK time."""
    latency_p99_ms: float
    """99th percentile of the same."""
    ed25519_sign_verify_pairs_per_s: float
    """One sign and one verify of a balance proof, per second, in this run."""
    ratio_to_sign_verify_ceiling: float
    """`payments_per_s / ed25519_sign_verify_pairs_per_s`."""
    payments: int
    """Measured payments."""
    window: int
    """Most unacknowledged payments in flight."""
    payee_commits: int
    """fsync'd sqlite transactions at the payee (warm-up included)."""
    payee_saves: int
    """`ChannelStore.save` calls at the payee (warm-up included)."""
    cores: int
    """`os.cpu_count()`."""

    @property
    def targets_met(self) -> bool:
        return self.payments_per_s >= TARGET_PAYMENTS_PER_S and self.latency_p99_ms < TARGET_P99_MS

    def to_json(self) -> dict[str, float | int | bool | str]:
        return {
            **dataclasses.asdict(self),
            "durability": "sqlite WAL, synchronous=FULL; ACK after the commit",
            "target_payments_per_s": TARGET_PAYMENTS_PER_S,
            "target_latency_p99_ms": TARGET_P99_MS,
            "targets_met": self.targets_met,
        }


def sign_verify_pairs_per_s() -> float:
    """Best of `REPEATS`: sign a balance-proof message and verify it, `PAIRS` times."""
    key = SigningKey(b"\x07" * 32)
    public = bytes(key.verify_key)
    best = 0.0
    for _ in range(REPEATS):
        began = time.perf_counter()
        for sequence in range(PAIRS):
            message = BalanceProof(
                network_id=1, channel_id=TERMS.channel_id, sequence=sequence, payee_balance=sequence
            ).message()
            crypto_sign_open(key.sign(message), public)
        best = max(best, PAIRS / (time.perf_counter() - began))
    return best


async def payee_process(directory: Path) -> None:
    """The payee: serve until stdin closes, then print the store's counters as JSON."""
    async with ChannelStore(directory / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(TERMS)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve, service)
            print(port, flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)
            nursery.cancel_scope.cancel()
        print(json.dumps(dataclasses.asdict(store.stats)), flush=True)


async def pay(port: int, count: int, window: int) -> tuple[float, list[float]]:
    """Seconds for `count` payments after the warm-up, and each one's send-to-ACK seconds."""
    sent = [0.0] * (WARMUP + count + 1)
    acked_at = [0.0] * (WARMUP + count + 1)
    last = 0

    def on_ack(sequence: int) -> None:
        nonlocal last
        now = time.perf_counter()
        for s in range(last + 1, sequence + 1):
            acked_at[s] = now
        last = sequence

    channel = PayerChannel(TERMS, PAYER_KEY)
    async with open_payer(channel, "127.0.0.1", port, window=window, on_ack=on_ack) as client:
        for _ in range(WARMUP):
            sequence = await client.send(1)
        await client.drain()
        began = time.perf_counter()
        for _ in range(count):
            sequence = await client.send(1)
            sent[sequence] = time.perf_counter()
        await client.drain()
        elapsed = time.perf_counter() - began
    measured = range(WARMUP + 1, WARMUP + count + 1)
    return elapsed, [acked_at[s] - sent[s] for s in measured]


def measure(quick: bool, window: int) -> ChannelsBenchmark:
    """Every figure, in this run."""
    count = QUICK_PAYMENTS if quick else PAYMENTS
    pairs = sign_verify_pairs_per_s()
    with tempfile.TemporaryDirectory(prefix="tanglepay-channels-bench-") as tmp:
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.channels", "--serve", tmp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if child.stdout is None or child.stdin is None:
            raise SystemExit("the payee process has no pipes")
        try:
            port = int(child.stdout.readline())
            elapsed, latencies = trio.run(pay, port, count, window)
        finally:
            child.stdin.close()
            stats = json.loads(child.stdout.readline() or "{}")
            child.wait(30)
            child.stdout.close()
        (record,) = read_records(Path(tmp) / "payee.db")
        if record.sequence != WARMUP + count:
            raise SystemExit(f"the payee holds sequence {record.sequence}, not {WARMUP + count}")
    rate = count / elapsed
    return ChannelsBenchmark(
        payments_per_s=round(rate),
        latency_p50_ms=round(float(np.percentile(latencies, 50)) * 1e3, 3),
        latency_p99_ms=round(float(np.percentile(latencies, 99)) * 1e3, 3),
        ed25519_sign_verify_pairs_per_s=round(pairs),
        ratio_to_sign_verify_ceiling=round(rate / pairs, 3),
        payments=count,
        window=window,
        payee_commits=int(stats.get("commits", -1)),
        payee_saves=int(stats.get("saves", -1)),
        cores=os.cpu_count() or 1,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = arguments(__doc__, quick="fewer payments")
    parser.add_argument("--window", type=int, default=WINDOW, help="payments in flight")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        trio.run(payee_process, args.serve)
        return
    result = measure(args.quick, args.window)
    lines = [
        f"durable payments   {result.payments_per_s:10,.0f} /s  ({result.payments} payments, "
        f"window {result.window}, {result.payee_commits} payee commits)",
        f"send to ack        p50 {result.latency_p50_ms:.3f} ms  "
        f"p99 {result.latency_p99_ms:.3f} ms",
        f"ed25519 ceiling    {result.ed25519_sign_verify_pairs_per_s:10,.0f} sign+verify/s  "
        f"(ratio {result.ratio_to_sign_verify_ceiling:.2f})",
    ]
    emit(result, lines, json_only=args.json)


if __name__ == "__main__":
    main()
