"""Roaming settlement end to end: `python -m benchmarks.roaming [--json] [--quick]`.

Two carrier processes on loopback, and a devnet of their own (a coordinator and one node as
processes, a milestone every `MILESTONE_INTERVAL_S`). This process holds the ten visited
networks (VPMNs); it starts the home networks' process (`_roaming_hpmn.py`: ten HPMNs, one
`CarrierDesk` and sqlite store each, WAL with `synchronous=FULL`, each behind the signed
operator API on its own port). Before the clock starts, each VPMN's billing system writes its
`RECORDS / 10` data sessions (`--quick`: `QUICK_RECORDS / 10`), rated under the pair's
agreement, as TAP 3.12 transfer batch files of `FILE_EVENTS` events (`tap_writer.py`). Then, for
each pair: every file is imported with the TAP importer (`read_tap`: BER parsed and checked,
IMSIs hashed, records built) and kept in the VPMN's `RoamingStore` (the file whole, in one
fsync'd transaction: `payments.roaming.pending`), its audit total checked and every record
re-rated under the agreement; the records are sealed into batches of `BATCH` (Merkle root,
signed header), each batch kept in the store (its records, named by their ids in the file, taken
out of the pending ones in the same transaction) and its signed header queued for anchoring on
the ledger (`_roaming_anchors.Anchoring`), and sent over HTTP; the HPMN verifies the header,
re-rates and checks every record (duplicates over the 80-day window, audit totals), commits the
acknowledgement, the batch and the event ids (one fsync'd transaction), and proposes the payment
of the accepted amount on the pair's two-way channel (`Settlement.pay`); the answer carries the
signed acknowledgement and the signed proposal. The VPMN verifies both, keeps the
acknowledgement in its store, countersigns the channel state and saves it in its `ChannelStore`
(fsync'd): the amount is then durable at the VPMN; its countersignature goes back with the
pair's next batch, and the HPMN completes the state with it before it validates that batch.

The HPMN queues each acknowledgement it signed for anchoring too; the run ends when every anchor
of both processes is confirmed by a milestone.

* `records_per_s`: all records, from the first file's import to the last durable payment;
  `committed_records_per_s`: the same records over the time until every anchor was confirmed;
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
* `stages_cpu_s`: CPU seconds per stage in each process (`Stages`): at the VPMN the TAP import,
  keeping the file (`store_file`), the rating check, sealing, keeping the batch (`store_batch`),
  verifying the answer, keeping the acknowledgement (`store_ack`); at the HPMN decoding the
  batch, validating and committing it, settling; `other` is the rest of the process's CPU time
  (HTTP, the event loops, the channel store, anchoring). The VPMN's stages run to its last
  durable payment; `after_last_payment` is its CPU time after that (waiting for the last
  anchors to be confirmed, closing). `vpmn_us_per_record`: the VPMN's CPU time per record to
  its last durable payment outside the TAP import.

Both processes freeze their setup out of the garbage collector and collect its first generation
every `GC_THRESHOLD` allocations (`_roaming_hpmn.Stages.start`). Targets from the issue: 50,000
records/s, p99 record-to-payment under 5 s, statement under 60 s. The last line printed is one
JSON object (`--json` prints only that line).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import struct
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

from benchmarks._roaming_anchors import Anchoring
from benchmarks._roaming_hpmn import (
    PAIRS,
    T0,
    Stages,
    agreement,
    hpmn_process,
    key_of,
    tadigs,
    terms,
)
from payments.channels.state import Role
from payments.channels.store import ChannelRecord, ChannelStore
from payments.channels.twoway import Proposal, TwoWayChannel
from payments.roaming.acknowledgement import SignedAcknowledgement, verify_ack
from payments.roaming.batch import anchor_payload as batch_anchor
from payments.roaming.batch import encode_batch, seal
from payments.roaming.ledger_book import LedgerBook
from payments.roaming.partner_file import ImportOutcome, ImportPolicy
from payments.roaming.rating import RatingTable
from payments.roaming.record import EventType, SubscriberHasher
from payments.roaming.statement import StatementBuilder
from payments.roaming.store import RoamingStore
from payments.roaming.tap import read_tap
from payments.roaming.tap_events import CallEvent
from payments.roaming.tap_writer import TapFileSpec, write_tap
from tangle.protocol.channel import BalanceProof
from tangle.protocol.ids import ChannelId, Signature
from tanglepay.devnet import launch, load_or_create

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from payments.roaming.partner_file import ImportedFile

RECORDS: Final = 1_000_000
QUICK_RECORDS: Final = 20_000
FILE_EVENTS: Final = 5_000
"""Events per TAP transfer batch file the VPMN's billing system writes."""
BATCH: Final = FILE_EVENTS
"""Records per batch: one TAP file's. Each batch costs the VPMN some 5 ms of CPU whatever its
size (the request to the HPMN, its anchor's submission and confirmation, the signature, three
fsync'd commits): 5 us a record in batches of 1,000, 1 us in batches of 5,000 (measured)."""
QUICK_BATCH: Final = 1_000
"""Two batches a pair in `--quick` mode: the countersignature rides on the pair's next batch."""
KEEP_ALIVE: Final = httpx.Limits(keepalive_expiry=2.0)
"""A pair waits for the other pairs' imports between batches: its idle connection is dropped
before the server's keep-alive timeout (hypercorn's 5 s) can close it under a request."""
STATEMENT_RECORDS: Final = 10_000_000
QUICK_STATEMENT_RECORDS: Final = 200_000
HASH_COUNT: Final = 200_000
TARGET_RECORDS_PER_S: Final = 50_000
TARGET_P99_S: Final = 5.0
TARGET_STATEMENT_S: Final = 60.0
MILESTONE_INTERVAL_S: Final = 0.5
"""The milestone interval of the benchmark's devnet (the examples' own devnet's)."""
HASHER: Final = SubscriberHasher(salt=b"benchmark-salt-0123")


# -- the VPMN side (this process) -------------------------------------------------------------


def tap_files(pair: int, count: int, batch: int) -> list[bytes]:
    """What the pair's VPMN billing system hands over: its roamers' data sessions, each rated
    under the agreement, as TAP 3.12 transfer batches of `FILE_EVENTS` events (written before
    the clock starts: this is the input)."""
    vpmn, hpmn = tadigs(pair)
    a = agreement(pair, batch).agreement
    plan = a.party(vpmn).plan(EventType.DATA)
    files = []
    for number, first in enumerate(range(0, count, FILE_EVENTS), start=1):
        events = []
        for index in range(first, min(first + FILE_EVENTS, count)):
            up, down = 1_000 + index % 5_000, 50_000 + index % 70_000
            events.append(
                CallEvent(
                    offset=0,
                    event_type=EventType.DATA,
                    imsi=f"90101{index % 100_000:010d}",
                    msisdn=None,
                    start_utc=T0 + index,
                    duration_s=60,
                    volume_up=up,
                    volume_down=down,
                    apn="iot.example",
                    charge=plan.price_of(plan.billed(up + down)),
                )
            )
        spec = TapFileSpec(
            sender=vpmn, recipient=hpmn, sequence=number, created_utc=T0 + first + FILE_EVENTS,
            currency=a.currency, decimal_places=a.decimal_places, utc_offset_s=3_600,
        )  # fmt: skip
        files.append(write_tap(spec, events))
    return files


async def vpmn_pair(
    pair: int,
    http: httpx.AsyncClient,
    files: list[bytes],
    batch: int,
    store: ChannelStore,
    roaming: RoamingStore,
    latencies: list[float],
    charged: list[int],
    stages: Stages,
    anchoring: Anchoring,
) -> None:
    signed = agreement(pair, batch)
    a = signed.agreement
    table = RatingTable(a)
    policy = ImportPolicy(hasher=HASHER)
    channel = TwoWayChannel(terms(pair), key_of("v", pair))
    key = key_of("v", pair)
    headers: dict[str, str] = {}
    sequence = 0

    await trio.to_thread.run_sync(roaming.put_agreement, signed)

    def import_file(raw: bytes) -> tuple[ImportedFile, range]:
        began = time.thread_time()
        imported = read_tap(raw, policy)
        began = stages.add("tap_import", began)
        if roaming.import_file(imported) is not ImportOutcome.NEW:
            raise SystemExit(f"pair {pair}: file {imported.meta.sequence} imported before")
        ids = roaming.file_ids(imported.meta)
        stages.add("store_file", began)
        return imported, ids

    def save(stage: str, call: Callable[[], object]) -> None:
        began = time.thread_time()
        call()
        stages.add(stage, began)

    for raw in files:
        imported, ids = await trio.to_thread.run_sync(import_file, raw)
        began = time.thread_time()
        if imported.total_charge != imported.meta.declared_total_charge:
            raise SystemExit(f"pair {pair}: file {imported.meta.sequence} audit total")
        for r in imported.records:
            if table.charge(r) != r.charge:
                raise SystemExit(f"pair {pair}: a record not rated under the agreement")
        stages.add("rate", began)
        for first in range(0, len(imported.records), batch):
            began = time.thread_time()
            records = imported.records[first : first + batch]
            sequence += 1
            b = seal(a, key, records, sequence=sequence, now=records[-1].start_utc + 1)
            signed_at = time.perf_counter()
            content = encode_batch(b)
            stages.add("seal", began)
            await trio.to_thread.run_sync(
                save,
                "store_batch",
                functools.partial(roaming.save_batch, b, ids[first : first + batch]),
            )
            await anchoring.put(batch_anchor(b.signed), "batch", signed_at)
            response = await http.post("/batches", content=content, headers=headers)
            response.raise_for_status()
            began = time.thread_time()
            body = response.content
            (n,) = struct.unpack_from("<I", body)
            ack = SignedAcknowledgement.decode(body[4 : 4 + n])
            verify_ack(ack, a)
            if ack.ack.accepted_count != len(records):
                raise SystemExit(f"pair {pair} batch {sequence}: {ack.ack.returns[:3]}")
            tail = body[4 + n :]
            sequence_, balance = struct.unpack_from("<QQ", tail)
            proof = BalanceProof(
                network_id=1, channel_id=channel.terms.channel_id, sequence=sequence_,
                payee_balance=balance,
            )  # fmt: skip
            state = channel.countersign(Proposal(proof=proof, signature=Signature(tail[-64:])))
            stages.add("verify_and_countersign", began)
            await trio.to_thread.run_sync(
                save, "store_ack", functools.partial(roaming.save_ack, ack)
            )
            await store.save(ChannelRecord.of(channel, Role.PAYEE))
            assert state.payee_signature is not None
            headers = {"x-countersign": f"{proof.sequence}:{state.payee_signature.hex()}"}
            latencies.extend([time.perf_counter() - signed_at] * len(records))
            charged.append(b.signed.header.total_charge)


async def run_vpmns(
    ports: list[int],
    files: list[list[bytes]],
    batch: int,
    directory: Path,
    stages: Stages,
    anchoring: Anchoring,
) -> tuple[float, list[float], int, dict[str, float]]:
    """Run the ten VPMNs against the HPMNs at `ports`; (seconds from the first import to the
    last durable payment, the record-to-payment latencies, the total paid, the CPU seconds
    per stage until then)."""  # fmt: skip
    latencies: list[float] = []
    charged: list[int] = []
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(ChannelStore(directory / "vpmn-channels.db"))
        roaming = [
            stack.enter_context(RoamingStore(directory / f"vpmn{pair}.db")) for pair in range(PAIRS)
        ]
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=120, limits=KEEP_ALIVE
                )
            )
            for port in ports
        ]
        stages.start()
        async with trio.open_nursery() as nursery:
            for pair, http in enumerate(https):
                nursery.start_soon(
                    vpmn_pair, pair, http, files[pair], batch, store, roaming[pair], latencies,
                    charged, stages, anchoring,
                )  # fmt: skip
        elapsed = time.perf_counter() - stages.began
        cpu = stages.report()
        for pair, kept in enumerate(roaming):
            if kept.pending_rows(*tadigs(pair), 1):
                raise SystemExit(f"pair {pair}: a record imported and never batched")
        paid = 0
        for pair in range(PAIRS):
            record = await store.load(ChannelId(bytes([pair + 1]) * 32), Role.PAYEE)
            latest = None if record is None else record.latest
            paid += 0 if latest is None else latest.proof.payee_balance
    if paid != sum(charged):
        raise SystemExit(f"paid {paid}, the batches charged {sum(charged)}")
    return elapsed, latencies, paid, cpu


@dataclass(frozen=True, slots=True, kw_only=True)
class CarriersRun:
    """What `run_carriers` measured."""

    to_payment_s: float
    """From the first import to the last durable payment."""
    committed_s: float
    """From the first import until every anchor of both processes is confirmed."""
    latencies: list[float]
    paid: int
    anchor_latencies: list[float]
    anchors: int
    hpmn_cpu: dict[str, float]
    vpmn_cpu: dict[str, float]
    """The VPMN's CPU per stage until the last durable payment."""


def hpmn_child(
    directory: Path, batch: int, api: str
) -> tuple[subprocess.Popen[str], IO[str], IO[str]]:
    """The HPMN process (`--serve`), anchoring through the node at `api`; its stdin, stdout."""
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.roaming", "--serve", str(directory),
         "--batch", str(batch), "--node", api],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if child.stdout is None or child.stdin is None:
        raise SystemExit("the HPMN process has no pipes")
    return child, child.stdin, child.stdout


async def run_carriers(
    files: list[list[bytes]], batch: int, directory: Path, stages: Stages
) -> CarriersRun:
    """Start a devnet of one node (coordinator and node as processes, a milestone every
    `MILESTONE_INTERVAL_S`) and the HPMN process, then run the VPMNs; the run ends when the
    HPMN process reports that every acknowledgement it anchored is confirmed."""
    devnet = load_or_create(directory / "devnet", nodes=1, interval_s=MILESTONE_INTERVAL_S)
    api = devnet.members[-1].api
    book = LedgerBook(directory / "vpmn-ledger.db")
    child, stdin, stdout = hpmn_child(directory, batch, api)  # it sets up meanwhile
    hpmn: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=10.0) as control, trio.open_nursery() as devnet_nursery:
        try:
            await launch(devnet.members, devnet_nursery, control)
            stdin.write("the node answers\n")
            stdin.flush()
            ports = json.loads(await trio.to_thread.run_sync(stdout.readline))
            async with Anchoring(api, book) as anchoring:
                to_payment, latencies, paid, vpmn_cpu = await run_vpmns(
                    ports, files, batch, directory, stages, anchoring
                )
                stdin.close()
                await anchoring.finish()
                hpmn = json.loads(await trio.to_thread.run_sync(stdout.readline) or "{}")
                committed = time.perf_counter() - stages.began
        finally:
            if not stdin.closed:
                stdin.close()
            await trio.to_thread.run_sync(child.wait, 60)
            stdout.close()
            book.close()
        devnet_nursery.cancel_scope.cancel()
    if not hpmn:
        raise SystemExit("the HPMN process ended without its report (its stderr says why)")
    return CarriersRun(
        to_payment_s=to_payment, committed_s=committed, latencies=latencies, paid=paid,
        anchor_latencies=anchoring.latencies + hpmn["anchor_latencies"],
        anchors=anchoring.queued + hpmn["anchors"], hpmn_cpu=hpmn["stages"], vpmn_cpu=vpmn_cpu,
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


def blake2b_per_s(tap_file: bytes) -> float:
    raw = read_tap(tap_file, ImportPolicy(hasher=HASHER)).records[0].encode()
    best = 0.0
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(HASH_COUNT):
            hashlib.blake2b(raw, digest_size=32).digest()
        best = max(best, HASH_COUNT / (time.perf_counter() - began))
    return best


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
    files = [tap_files(pair, count // PAIRS, batch) for pair in range(PAIRS)]
    ceiling = blake2b_per_s(files[0][0])
    stages = Stages()
    with tempfile.TemporaryDirectory(prefix="tanglepay-roaming-bench-") as tmp:
        run = trio.run(run_carriers, files, batch, Path(tmp), stages)
        tail = stages.report()["other"] - run.vpmn_cpu["other"]
    vpmn_cpu = {**run.vpmn_cpu, "after_last_payment": round(tail, 3)}
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
        tap_files=sum(len(f) for f in files),
        tap_bytes=sum(len(raw) for f in files for raw in f),
        stages_cpu_s={"vpmn": vpmn_cpu, "hpmn": run.hpmn_cpu},
        vpmn_us_per_record=round(
            sum(v for k, v in run.vpmn_cpu.items() if k != "tap_import") / count * 1e6, 2
        ),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--quick", action="store_true", help="fewer records (under 30 s)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
    parser.add_argument("--node", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        trio.run(hpmn_process, args.serve, args.batch, args.node)
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
