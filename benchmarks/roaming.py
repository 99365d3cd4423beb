"""Roaming settlement end to end: `python -m benchmarks.roaming [--json] [--quick]`.

Carrier processes on loopback, and a devnet of their own (a coordinator and one node as
processes, a milestone every `MILESTONE_INTERVAL_S`). This process starts them and keeps the
clock: the home networks' process (`_roaming_hpmn.py`: ten HPMNs, one `CarrierDesk` and sqlite
store each, WAL with `synchronous=FULL`, each behind the signed operator API on its own port)
and `VPMN_PROCESSES` processes of the visited networks (`_roaming_vpmn.py`: the ten VPMNs split
among them, each with its own stores and anchoring). Before the clock starts, each VPMN's
billing system writes its `RECORDS / 10` data sessions (`--quick`: `QUICK_RECORDS / 10`), rated
under the pair's agreement, as TAP 3.12 transfer batch files of `FILE_EVENTS` events
(`tap_writer.py`). Then, for each pair: every file is imported with the TAP importer
(`read_tap`: BER parsed and checked, IMSIs hashed, records built) and kept in the VPMN's
`RoamingStore` (the file whole, in one fsync'd transaction: `payments.roaming.pending`), its
audit total checked and every record re-rated under the agreement; the records are sealed into
batches of `BATCH` (Merkle root, signed header), each batch kept in the store (its records,
named by their ids in the file, taken out of the pending ones in the same transaction) and its
signed header queued for anchoring on the ledger (`_roaming_anchors.Anchoring`), and sent over
HTTP; the HPMN verifies the header, re-rates and checks every record (duplicates over the 80-day
window, audit totals), commits the acknowledgement, the batch and the event ids (one fsync'd
transaction), and proposes the payment of the accepted amount on the pair's two-way channel
(`Settlement.pay`); the answer carries the signed acknowledgement and the signed proposal. The
VPMN verifies both, keeps the acknowledgement in its store, countersigns the channel state and
saves it in its `ChannelStore` (fsync'd): the amount is then durable at the VPMN; its
countersignature goes back with the pair's next batch, and the HPMN completes the state with it
before it validates that batch.

The HPMN queues each acknowledgement it signed for anchoring too; the run ends when every anchor
of every process is confirmed by a milestone. The benchmark's anchoring does its own proof of
work and submits up to 32 anchors gathered over `LINGER_S` in one request; the product
(`tanglepay roaming serve`) does not yet: it anchors each acknowledgement through the node's
proof-of-work route, one at a time. The carriers here are the benchmark's own processes on the
product's stores, validation, settlement and `WORKERS`, not `roaming serve`.

* `records_per_s`: all records, from the VPMN processes' start (every one set up, its TAP files
  written) to the last durable payment; `committed_records_per_s`: the same records over the
  time until every anchor was confirmed;
* `anchors`, `anchors_confirmed`, `anchor_p50_s` / `anchor_p99_s`: batch headers and
  acknowledgements anchored, those confirmed, and the time from an anchor's signing to the
  moment its process saw it referenced by a milestone;
* `record_to_payment_p50_s` / `p99_s`: per batch (every record of a batch shares it), from the
  batch's header being signed to its payment being durable at the VPMN;
* `statement_s`: `StatementBuilder` over `STATEMENT_RECORDS` accepted records of one month
  (`--quick`: `QUICK_STATEMENT_RECORDS`), aggregated per direction, service and day, then built
  and rendered as canonical JSON and CSV;
* `blake2b_hashes_per_s`: BLAKE2b-256 of one encoded record, per second, in this run (the
  ceiling: the least hashing a record needs is its event id), and `ratio_to_blake2b_ceiling`;
* `stages_cpu_s`: CPU seconds per stage in each side (`Stages`, the VPMN processes summed): at
  the VPMN the TAP import, keeping the file (`store_file`), the rating check, sealing, keeping
  the batch (`store_batch`), verifying the answer, keeping the acknowledgement (`store_ack`); at
  the HPMN decoding the batch, validating and committing it, settling; `other` is the rest of
  the process's CPU time (HTTP, the event loops, the channel store, anchoring). The VPMN's
  stages run to its last durable payment; `after_last_payment` is its CPU time after that
  (waiting for the last anchors to be confirmed, closing). `vpmn_us_per_record`: the VPMN's CPU
  time per record to its last durable payment outside the TAP import.

The carrier processes freeze their setup out of the garbage collector and collect its first
generation every `GC_THRESHOLD` allocations (`_roaming_hpmn.Stages.start`), and run their
CPU-bound stages (the HPMN's batches, the VPMN's imports) in at most the product's `WORKERS`
(`payments.roaming.api`) threads at once. Targets from the issue: 50,000 records/s, p99
record-to-payment under 5 s, statement under 60 s. The last line printed is one JSON object
(`--json` prints only that line).
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
from typing import IO, TYPE_CHECKING, Any, Final

import httpx
import numpy as np
import trio

from benchmarks._roaming_hpmn import PAIRS, T0, agreement, blake2b_per_s, hpmn_process, tadigs
from benchmarks._roaming_vpmn import (
    FILE_EVENTS,
    HASHER,
    VPMN_PROCESSES,
    tap_files,
    vpmn_process,
)
from payments.roaming.partner_file import ImportPolicy
from payments.roaming.statement import StatementBuilder
from payments.roaming.tap import read_tap
from tanglepay.devnet import launch, load_or_create

if TYPE_CHECKING:
    from collections.abc import Sequence


RECORDS: Final = 1_000_000
QUICK_RECORDS: Final = 20_000
BATCH: Final = FILE_EVENTS
"""Records per batch: one TAP file's. Each batch costs the VPMN 5 to 10 ms of CPU whatever its
size (the request to the HPMN, its anchor's submission and confirmation, the signature, three
fsync'd commits): measured on a shared 2-core machine, the VPMN's `other` was 6 to 11 us a
record in batches of 1,000 and 2.5 us in batches of 5,000."""
QUICK_BATCH: Final = 1_000
"""Two batches a pair in `--quick` mode: the countersignature rides on the pair's next batch."""
STATEMENT_RECORDS: Final = 10_000_000
QUICK_STATEMENT_RECORDS: Final = 200_000
IMPORT_AND_TAIL: Final = ("tap_import", "after_last_payment")
TARGET_RECORDS_PER_S: Final = 50_000
TARGET_P99_S: Final = 5.0
TARGET_STATEMENT_S: Final = 60.0
MILESTONE_INTERVAL_S: Final = 0.5
"""The milestone interval of the benchmark's devnet (the examples' own devnet's)."""


# -- the VPMN side (this process) -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CarriersRun:
    """What `run_carriers` measured."""

    to_payment_s: float
    """From the VPMNs' start to the last durable payment."""
    committed_s: float
    """From the VPMNs' start until every anchor of every process is confirmed."""
    latencies: list[float]
    paid: int
    anchor_latencies: list[float]
    anchors: int
    hpmn_cpu: dict[str, float]
    vpmn_cpu: dict[str, float]
    """The VPMNs' CPU per stage until their last durable payment, summed over the processes,
    and `after_last_payment`."""
    tap_files: int
    tap_bytes: int


def child(args: list[str]) -> tuple[subprocess.Popen[str], IO[str], IO[str]]:
    """`python -m benchmarks.roaming ARGS` as a process; its stdin, stdout."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.roaming", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if process.stdout is None or process.stdin is None:
        raise SystemExit("a carrier process has no pipes")
    return process, process.stdin, process.stdout


async def line(stdout: IO[str], who: str) -> dict[str, Any]:
    """The next JSON line of a carrier process."""
    text = await trio.to_thread.run_sync(stdout.readline)
    if not text:
        raise SystemExit(f"the {who} process ended early (its stderr says why)")
    out: dict[str, Any] = json.loads(text)
    return out


def summed(reports: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for report in reports:
        for k, v in report.items():
            out[k] = round(out.get(k, 0.0) + v, 3)
    return out


async def run_carriers(count: int, batch: int, directory: Path) -> CarriersRun:
    """Start a devnet of one node (coordinator and node as processes, a milestone every
    `MILESTONE_INTERVAL_S`), the HPMN process and the `VPMN_PROCESSES` VPMN processes, then
    start the VPMNs together; the run ends when every process reports that every anchor it
    queued is confirmed."""
    devnet = load_or_create(directory / "devnet", nodes=1, interval_s=MILESTONE_INTERVAL_S)
    api = devnet.members[-1].api
    hpmn, hpmn_in, hpmn_out = child(
        ["--serve", str(directory), "--batch", str(batch), "--node", api]
    )
    processes = [(hpmn, hpmn_in, hpmn_out)]
    async with httpx.AsyncClient(timeout=10.0) as control, trio.open_nursery() as devnet_nursery:
        try:
            await launch(devnet.members, devnet_nursery, control)
            hpmn_in.write("the node answers\n")
            hpmn_in.flush()
            ports = json.loads(await trio.to_thread.run_sync(hpmn_out.readline) or "null")
            if ports is None:
                raise SystemExit("the HPMN process ended early (its stderr says why)")
            vpmns = []
            for k in range(VPMN_PROCESSES):
                spec = {
                    "directory": str(directory), "pairs": list(range(k, PAIRS, VPMN_PROCESSES)),
                    "records": count // PAIRS, "batch": batch, "api": api, "ports": ports,
                }  # fmt: skip
                vpmns.append(child(["--vpmn", json.dumps(spec)]))
            processes += vpmns
            for _, _, stdout in vpmns:
                await line(stdout, "VPMN")  # set up: files written, stores open
            began = time.perf_counter()
            for _, stdin, _ in vpmns:
                stdin.write("go\n")
                stdin.flush()
            paid = [await line(stdout, "VPMN") for _, _, stdout in vpmns]
            to_payment = time.perf_counter() - began
            hpmn_in.close()
            done = [await line(stdout, "VPMN") for _, _, stdout in vpmns]
            report = await line(hpmn_out, "HPMN")
            committed = time.perf_counter() - began
        finally:
            for process, stdin, stdout in processes:
                if not stdin.closed:
                    stdin.close()
                await trio.to_thread.run_sync(process.wait, 60)
                stdout.close()
        devnet_nursery.cancel_scope.cancel()
    vpmn_cpu = summed([r["cpu"] for r in paid])
    vpmn_cpu["after_last_payment"] = round(sum(d["after_last_payment"] for d in done), 3)
    return CarriersRun(
        to_payment_s=to_payment, committed_s=committed,
        latencies=[s for r in paid for s, n in r["latencies"] for _ in range(n)],
        paid=sum(r["paid"] for r in paid),
        anchor_latencies=[x for d in [*done, report] for x in d["anchor_latencies"]],
        anchors=sum(d["anchors"] for d in [*done, report]), hpmn_cpu=report["stages"],
        vpmn_cpu=vpmn_cpu, tap_files=sum(r["tap_files"] for r in paid),
        tap_bytes=sum(r["tap_bytes"] for r in paid),
    )  # fmt: skip


def statement_seconds(count: int) -> float:
    a = agreement(0, 1000).agreement
    vpmn, hpmn = tadigs(0)
    month = 30 * 86_400
    began = time.perf_counter()
    builder = StatementBuilder(a, period_start=T0, period_end=T0 + month)
    add = builder.add_usage
    step = month // count or 1
    for i in range(count):
        add(vpmn, hpmn, i % 4, T0 + i * step % month, 100 + i % 1000)
    statement = builder.build()
    statement.encode()
    statement.csv()
    return time.perf_counter() - began


@dataclass(frozen=True, slots=True, kw_only=True)
class RoamingBenchmark:
    records_per_s: float
    committed_records_per_s: float
    """Records over the time until every anchor of both processes was confirmed too."""
    record_to_payment_p50_s: float
    record_to_payment_p99_s: float
    anchors: int
    """Batch headers (VPMN) and acknowledgements (HPMN) queued for anchoring."""
    anchors_confirmed: int
    """Those a milestone referenced before the run ended."""
    anchor_p50_s: float
    anchor_p99_s: float
    """From an anchor's signing to the milestone that referenced it being seen."""
    statement_s: float
    statement_records: int
    blake2b_hashes_per_s: float
    ratio_to_blake2b_ceiling: float
    records: int
    batch: int
    pairs: int
    paid_total: int
    cores: int
    tap_files: int
    tap_bytes: int
    stages_cpu_s: dict[str, dict[str, float]]
    """CPU seconds per stage in each process (`Stages`), summed over the pairs."""
    vpmn_us_per_record: float
    """The VPMN's CPU microseconds per record to its last payment, the TAP import left out."""

    @property
    def targets_met(self) -> bool:
        return (
            self.records_per_s >= TARGET_RECORDS_PER_S
            and self.record_to_payment_p99_s < TARGET_P99_S
            and self.statement_s < TARGET_STATEMENT_S
            and self.statement_records >= STATEMENT_RECORDS
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "target_records_per_s": TARGET_RECORDS_PER_S,
            "target_record_to_payment_p99_s": TARGET_P99_S,
            "target_statement_s": TARGET_STATEMENT_S,
            "targets_met": self.targets_met,
        }


def measure(quick: bool) -> RoamingBenchmark:
    count = QUICK_RECORDS if quick else RECORDS
    batch = QUICK_BATCH if quick else BATCH
    ceiling = blake2b_per_s(
        read_tap(tap_files(0, 1, batch)[0], ImportPolicy(hasher=HASHER)).records[0].encode()
    )
    with tempfile.TemporaryDirectory(prefix="tanglepay-roaming-bench-") as tmp:
        run = trio.run(run_carriers, count, batch, Path(tmp))
    statement_records = QUICK_STATEMENT_RECORDS if quick else STATEMENT_RECORDS
    rate_ = count / run.to_payment_s
    return RoamingBenchmark(
        records_per_s=round(rate_),
        committed_records_per_s=round(count / run.committed_s),
        record_to_payment_p50_s=round(float(np.percentile(run.latencies, 50)), 3),
        record_to_payment_p99_s=round(float(np.percentile(run.latencies, 99)), 3),
        anchors=run.anchors,
        anchors_confirmed=len(run.anchor_latencies),
        anchor_p50_s=round(float(np.percentile(run.anchor_latencies, 50)), 3),
        anchor_p99_s=round(float(np.percentile(run.anchor_latencies, 99)), 3),
        statement_s=round(statement_seconds(statement_records), 3),
        statement_records=statement_records,
        blake2b_hashes_per_s=round(ceiling),
        ratio_to_blake2b_ceiling=round(rate_ / ceiling, 4),
        records=count,
        batch=batch,
        pairs=PAIRS,
        paid_total=run.paid,
        cores=os.cpu_count() or 1,
        tap_files=run.tap_files,
        tap_bytes=run.tap_bytes,
        stages_cpu_s={"vpmn": run.vpmn_cpu, "hpmn": run.hpmn_cpu},
        vpmn_us_per_record=round(
            sum(v for k, v in run.vpmn_cpu.items() if k not in IMPORT_AND_TAIL) / count * 1e6, 2
        ),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--quick", action="store_true", help="fewer records (under 30 s)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
    parser.add_argument("--node", help=argparse.SUPPRESS)
    parser.add_argument("--vpmn", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        trio.run(hpmn_process, args.serve, args.batch, args.node)
        return
    if args.vpmn is not None:
        vpmn_process(args.vpmn)
        return
    result = measure(args.quick)
    if not args.json:
        print(f"records end to end  {result.records_per_s:10,.0f} /s  ({result.records} records)")
        print(
            f"record to payment   p50 {result.record_to_payment_p50_s:.3f} s  "
            f"p99 {result.record_to_payment_p99_s:.3f} s"
        )
        print(
            f"statement           {result.statement_s:.2f} s ({result.statement_records:,} records)"
        )
        print(f"blake2b ceiling     {result.blake2b_hashes_per_s:10,.0f} /s")
        print(f"targets {'met' if result.targets_met else 'MISSED'} on {result.cores} cores")
    print(json.dumps(result.to_json()))


if __name__ == "__main__":
    main()
