"""Ledger throughput, milestone cost and node memory: `python -m benchmarks.ledger [--json]`.

Every figure is measured in this run, on sqlite databases in temporary directories:

* `pynacl_verify_per_s`: `tangle.protocol.signature.is_valid` over pre-signed 100-byte
  messages on one core, best of `VERIFY_REPEATS` (the ceiling for signed transfers);
* `transfers_per_s`: signed transfers (each spends a distinct genesis output, proof-of-work done
  by its sender at the devnet difficulty ahead of time, 2 parents among recent messages) given
  to one `tangle.node.Node` (the `LedgerNode` behind its writer thread) in groups of `BATCH` per
  `submit_many`, with a real `Coordinator` issuing a milestone every
  `MILESTONE_EVERY_TRANSFERS` transfers; timed from the first `submit_many`
  to the last milestone applied and persisted; median of `TRANSFER_REPEATS` runs, a fresh node
  each. Checked after each run: every transfer INCLUDED in storage, and the stored ledger state
  hash equal to the core's (a failed check raises `LedgerCheckError`: no figure is printed);
* `milestone_apply_ms_10k`: `LedgerNode.submit(milestone)` (signatures, white-flag walk, ledger
  apply and the durable sqlite transaction) for a milestone whose cone holds 10,000 unconfirmed
  transfers, built by `Coordinator.build()`; median of `APPLY_REPEATS`, a fresh node each;
* `rss_mb_1m_messages`: VmRSS of a fresh process after one node stored 1,000,000 tagged-data
  messages (milestones every `MILESTONE_EVERY_MESSAGES`; every `PRUNE_EVERY` milestones the
  node prunes storage and core down to `KEEP_MILESTONES` in its writer thread), with its peak
  (VmHWM), the wall time, where the time went, and the database size.

A figure measured at another size than its name says (`--quick`, `--transfers`, `--messages`)
sits under the size-neutral key only: the size-named key and its target read null. The
human-readable lines come first; the last line printed is always one JSON object (`--json`
prints only that line).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio
from nacl.signing import SigningKey

from benchmarks import _ledger_workload as workload
from tangle import work
from tangle.errors import TangleError
from tangle.ledger.ledger import Inclusion
from tangle.node.core import Confirmed
from tangle.protocol.ids import MessageId, blake2b_256
from tangle.protocol.signature import is_valid

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from coordinator import Issue
    from tangle.node.ledger_node import LedgerNode

TARGET_TRANSFERS_PER_S: Final = 5000.0
TARGET_RSS_MB: Final = 1000.0

TRANSFERS: Final = 20_000
MAX_TRANSFERS: Final = 0xFFFF
"""A genesis holds at most this many allocations, and each transfer spends its own."""
CONE: Final = 10_000
MESSAGES: Final = 1_000_000
QUICK_TRANSFERS: Final = 4_000
QUICK_CONE: Final = 1_000
QUICK_MESSAGES: Final = 30_000

BATCH: Final = 1_000
"""Messages per `submit_many`: one group commit."""
MILESTONE_EVERY_TRANSFERS: Final = 2_000
MILESTONE_EVERY_MESSAGES: Final = 10_000
QUICK_MILESTONE_EVERY_MESSAGES: Final = 1_000
KEEP_MILESTONES: Final = 20
"""Milestones a pruning node keeps (more than below-max-depth, 15)."""
PRUNE_EVERY: Final = 5
"""Milestones between two prunes."""
VERIFY_MESSAGES: Final = 2_000
VERIFY_REPEATS: Final = 5
APPLY_REPEATS: Final = 3
TRANSFER_REPEATS: Final = 3
MIB: Final = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRun:
    """Signed transfers through one node and its coordinator."""

    transfers: int
    """Transfers submitted, all of them checked INCLUDED afterwards."""
    seconds: float
    """From the first `submit_many` to the last milestone applied and persisted."""
    milestones: int
    """Milestones issued during the run."""
    submit_seconds: float
    """Of `seconds`, the part spent in `submit_many` (attach, signatures, group commits)."""
    gc_seconds: float
    """Of `seconds`, the part spent in the cyclic garbage collector."""

    @property
    def per_s(self) -> float:
        return self.transfers / self.seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneApply:
    """Applying one milestone over a cone of unconfirmed transfers."""

    cone: int
    """Transfers the milestone included (checked on each repeat)."""
    seconds: tuple[float, ...]
    """`node.submit(milestone)` per repeat, a fresh node each."""
    gc_seconds: tuple[float, ...]
    """Of each, the part spent in the cyclic garbage collector."""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1e3


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryRun:
    """One node storing a stream of tagged-data messages, in a process of its own."""

    messages: int
    """Messages submitted."""
    milestones: int
    """Milestones issued."""
    prunes: int
    """Prune calls (storage and core)."""
    window: int
    """Messages the core still holds in its window at the end."""
    seconds: float
    """Wall time of the whole stream, the senders' work included."""
    send_seconds: float
    """Of `seconds`: building the messages (senders' side: payload, proof-of-work, parents)."""
    submit_seconds: float
    """Of `seconds`: `submit_many`."""
    milestone_seconds: float
    """Of `seconds`: `Coordinator.issue`."""
    prune_seconds: float
    """Of `seconds`: pruning."""
    gc_seconds: float
    """Of `seconds`: the cyclic garbage collector, wherever it ran."""
    rss_mb: float
    """VmRSS at the end, the node open."""
    peak_rss_mb: float
    """VmHWM: the most the process ever held resident."""
    baseline_rss_mb: float
    """VmRSS before the node was opened (interpreter, numpy, Numba kernels)."""
    db_mb: float
    """Size of the database file at the end."""
    wal_mb: float
    """Size of its write-ahead log at the end."""

    @property
    def node_us_per_message(self) -> float:
        node = self.submit_seconds + self.milestone_seconds + self.prune_seconds
        return node / self.messages * 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerBenchmark:
    """One run's figures."""

    verify_per_s: float
    """`pynacl_verify_per_s`."""
    transfer_runs: tuple[TransferRun, ...]
    """`TRANSFER_REPEATS` transfer runs, fresh node each, on the same messages."""
    apply: MilestoneApply
    """The milestone over a large cone."""
    memory: MemoryRun
    """The long-running node."""
    load_average: float
    """The machine's 1-minute load average when the run began (others' work slows it down)."""

    @property
    def transfers(self) -> TransferRun:
        """The median transfer run, by time."""
        runs = sorted(self.transfer_runs, key=lambda run: run.seconds)
        return runs[len(runs) // 2]

    def targets(self) -> dict[str, bool | None]:
        """Each target: met, missed, or None when it was measured at another size."""
        rss = self.memory.rss_mb if self.memory.messages == MESSAGES else None
        return {
            "transfers_per_s": self.transfers.per_s >= TARGET_TRANSFERS_PER_S,
            "rss_mb_1m_messages": None if rss is None else rss <= TARGET_RSS_MB,
        }

    def to_json(self) -> dict[str, object]:
        transfers, apply, memory = self.transfers, self.apply, self.memory
        targets = self.targets()
        met = None if None in targets.values() else all(targets.values())
        return {
            "pynacl_verify_per_s": round(self.verify_per_s),
            "verify_statistic": f"best of {VERIFY_REPEATS} x {VERIFY_MESSAGES}",
            "transfers_per_s": round(transfers.per_s),
            "transfers_per_s_vs_verify_ceiling": round(transfers.per_s / self.verify_per_s, 3),
            "transfers": transfers.transfers,
            "transfer_seconds": round(transfers.seconds, 3),
            "transfer_submit_seconds": round(transfers.submit_seconds, 3),
            "transfer_gc_seconds": round(transfers.gc_seconds, 3),
            "transfer_milestones": transfers.milestones,
            "transfer_statistic": f"median of {len(self.transfer_runs)} runs",
            "transfer_runs_per_s": [round(run.per_s) for run in self.transfer_runs],
            "batch": BATCH,
            "work_per_kib": workload.DEVNET_WORK_PER_KIB,
            "all_included": True,
            "state_hash_matches": True,
            "milestone_apply_ms": round(apply.median_ms, 2),
            "milestone_apply_ms_10k": round(apply.median_ms, 2) if apply.cone == CONE else None,
            "milestone_apply_cone": apply.cone,
            "milestone_apply_runs_ms": [round(s * 1e3, 2) for s in apply.seconds],
            "milestone_apply_runs_gc_ms": [round(s * 1e3, 2) for s in apply.gc_seconds],
            "rss_mb": round(memory.rss_mb, 1),
            "rss_mb_1m_messages": round(memory.rss_mb, 1) if memory.messages == MESSAGES else None,
            "rss_source": "/proc/self/status VmRSS of the node's own process, node open; MiB",
            "peak_rss_mb": round(memory.peak_rss_mb, 1),
            "baseline_rss_mb": round(memory.baseline_rss_mb, 1),
            "db_mb": round(memory.db_mb, 1),
            "wal_mb": round(memory.wal_mb, 1),
            "messages": memory.messages,
            "message_milestones": memory.milestones,
            "message_prunes": memory.prunes,
            "message_window": memory.window,
            "message_seconds": round(memory.seconds, 2),
            "message_send_seconds": round(memory.send_seconds, 2),
            "message_submit_seconds": round(memory.submit_seconds, 2),
            "message_milestone_seconds": round(memory.milestone_seconds, 2),
            "message_prune_seconds": round(memory.prune_seconds, 2),
            "message_gc_seconds": round(memory.gc_seconds, 2),
            "message_node_us_per_message": round(memory.node_us_per_message, 1),
            "keep_milestones": KEEP_MILESTONES,
            "target_transfers_per_s": TARGET_TRANSFERS_PER_S,
            "target_rss_mb_1m_messages": TARGET_RSS_MB,
            "targets": targets,
            "targets_met": met,
            "load_average_1min_at_start": round(self.load_average, 2),
            "cores": os.cpu_count(),
        }


# -- the signature ceiling -------------------------------------------------------------------


def verify_rate() -> float:
    """`is_valid` calls per second over pre-signed 100-byte messages, best of the repeats."""
    key = SigningKey(blake2b_256(b"tanglepay/bench/verify"))
    public_key = bytes(key.verify_key)
    signed = []
    for i in range(VERIFY_MESSAGES):
        message = (blake2b_256(i.to_bytes(4, "little")) * 4)[:100]
        signed.append((message, key.sign(message).signature))
    best = float("inf")
    for _ in range(VERIFY_REPEATS):
        began = time.perf_counter()
        valid = all(is_valid(public_key, message, sig) for message, sig in signed)
        best = min(best, time.perf_counter() - began)
        if not valid:
            raise workload.LedgerCheckError("a pre-signed message did not verify")
    return VERIFY_MESSAGES / best


# -- transfers -------------------------------------------------------------------------------


def transfer_run(net: workload.Devnet, raws: Sequence[bytes]) -> TransferRun:
    """Time `raws` through a fresh node and coordinator, then check the node's end state."""
    with workload.harness_frozen(), workload.node_stack(net) as stack:
        submitting = 0.0
        milestones = 0

        async def run() -> None:
            nonlocal submitting, milestones
            for start in range(0, len(raws), BATCH):
                end = min(start + BATCH, len(raws))
                began = time.perf_counter()
                await workload.submit_all(stack.node, raws[start:end])
                submitting += time.perf_counter() - began
                if end % MILESTONE_EVERY_TRANSFERS == 0 or end == len(raws):
                    await stack.coordinator.issue(workload.no_gossip)
                    milestones += 1

        with workload.GcClock() as collector:
            began = time.perf_counter()
            trio.run(run)
            seconds = time.perf_counter() - began
        _check_included(stack.ledger, raws)
    return TransferRun(
        transfers=len(raws),
        seconds=seconds,
        milestones=milestones,
        submit_seconds=submitting,
        gc_seconds=collector.seconds,
    )


def _check_included(ledger: LedgerNode, raws: Iterable[bytes]) -> None:
    storage = ledger.storage
    for raw in raws:
        metadata = storage.metadata(MessageId(blake2b_256(raw)))
        if metadata is None or metadata.inclusion is not Inclusion.INCLUDED:
            raise workload.LedgerCheckError(f"a transfer is not included: {metadata}")
    if storage.head().state_hash != ledger.core.ledger.state_hash:
        raise workload.LedgerCheckError("the stored ledger state hash differs from the core's")


# -- one milestone over a large cone ---------------------------------------------------------


def milestone_apply(net: workload.Devnet, raws: Sequence[bytes]) -> MilestoneApply:
    """Time `LedgerNode.submit` of a milestone confirming all of `raws` (the milestone built by
    the coordinator), each time on a fresh node."""
    seconds, collecting = [], []
    for _ in range(APPLY_REPEATS):
        with workload.harness_frozen(), workload.node_stack(net) as stack:

            async def prepare() -> Issue:
                await workload.submit_all(stack.node, raws)
                return await stack.coordinator.build()

            issue = trio.run(prepare)
            with workload.GcClock() as collector:
                began = time.perf_counter()
                events = stack.ledger.submit(issue.messages[-1])
                seconds.append(time.perf_counter() - began)
            collecting.append(collector.seconds)
        included = [len(e.result.included) for e in events if isinstance(e, Confirmed)]
        if included != [len(raws)]:
            raise workload.LedgerCheckError(f"the milestone included {included}, not {len(raws)}")
    return MilestoneApply(cone=len(raws), seconds=tuple(seconds), gc_seconds=tuple(collecting))


# -- memory of a long-running node -----------------------------------------------------------


def memory_run(messages: int, milestone_every: int) -> MemoryRun:
    """Stream `messages` tagged-data messages through one node (run in a fresh process)."""
    work.warm_up()
    net = workload.devnet(workload.holder_keys(1), workload.CHEAP_WORK_PER_KIB)
    baseline = workload.status_mib("VmRSS")
    with workload.node_stack(net) as stack:
        clock = {"send": 0.0, "submit": 0.0, "milestone": 0.0, "prune": 0.0}
        counts = {"messages": 0, "milestones": 0, "prunes": 0}

        def lap(phase: str, since: float) -> float:
            now = time.perf_counter()
            clock[phase] += now - since
            return now

        async def run() -> None:
            batches = workload.sensor_batches(net, messages, BATCH, seed=2)
            mark = time.perf_counter()
            for batch in batches:
                mark = lap("send", mark)
                await workload.submit_all(stack.node, batch)
                mark = lap("submit", mark)
                counts["messages"] += len(batch)
                if counts["messages"] % milestone_every and counts["messages"] != messages:
                    continue
                await stack.coordinator.issue(workload.no_gossip)
                counts["milestones"] += 1
                mark = lap("milestone", mark)
                if (
                    counts["milestones"] % PRUNE_EVERY == 0
                    and counts["milestones"] > KEEP_MILESTONES
                ):
                    await stack.node.write(lambda ledger: workload.prune(ledger, KEEP_MILESTONES))
                    counts["prunes"] += 1
                    mark = lap("prune", mark)

        with workload.GcClock() as collector:
            began = time.perf_counter()
            trio.run(run)
            seconds = time.perf_counter() - began
        rss, peak = workload.status_mib("VmRSS"), workload.status_mib("VmHWM")
        core = stack.ledger.core
        if core.confirmed_index != counts["milestones"]:
            raise workload.LedgerCheckError(f"the node is at milestone {core.confirmed_index}")
        db = stack.ledger.storage.path
        wal = db.with_name(db.name + "-wal")
        db_mb = db.stat().st_size / MIB
        wal_mb = wal.stat().st_size / MIB if wal.exists() else 0.0
        window = len(core.dag)
    return MemoryRun(
        messages=counts["messages"],
        milestones=counts["milestones"],
        prunes=counts["prunes"],
        window=window,
        seconds=seconds,
        send_seconds=clock["send"],
        submit_seconds=clock["submit"],
        milestone_seconds=clock["milestone"],
        prune_seconds=clock["prune"],
        gc_seconds=collector.seconds,
        rss_mb=rss,
        peak_rss_mb=peak,
        baseline_rss_mb=baseline,
        db_mb=db_mb,
        wal_mb=wal_mb,
    )


def _memory_run_picklable(messages: int, milestone_every: int) -> MemoryRun:
    """`memory_run`, its `TangleError`s turned into errors the parent can unpickle."""
    try:
        return memory_run(messages, milestone_every)
    except TangleError as exc:
        raise workload.LedgerCheckError(f"{type(exc).__name__}: {exc}") from None


def memory_run_in_child(messages: int, milestone_every: int) -> MemoryRun:
    """`memory_run` in a fresh interpreter, so that no earlier phase's memory is counted."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_memory_run_picklable, messages, milestone_every).result()


# -- the run ---------------------------------------------------------------------------------


def measure(*, transfers: int, cone: int, messages: int, milestone_every: int) -> LedgerBenchmark:
    """Warm the kernels up, prepare the senders' transfers (untimed), then time each figure."""
    load_average = os.getloadavg()[0]
    work.warm_up()
    verify = verify_rate()
    holders = workload.holder_keys(transfers)
    net = workload.devnet(holders, workload.DEVNET_WORK_PER_KIB)
    raws = workload.transfer_messages(net, holders, seed=1)
    return LedgerBenchmark(
        verify_per_s=verify,
        transfer_runs=tuple(transfer_run(net, raws) for _ in range(TRANSFER_REPEATS)),
        apply=milestone_apply(net, raws[:cone]),
        memory=memory_run_in_child(messages, milestone_every),
        load_average=load_average,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--transfers", type=int, default=0, help=f"signed transfers (default {TRANSFERS})"
    )
    parser.add_argument(
        "--messages", type=int, default=0, help=f"messages for memory (default {MESSAGES})"
    )
    args = parser.parse_args(argv)
    transfers = args.transfers or (QUICK_TRANSFERS if args.quick else TRANSFERS)
    messages = args.messages or (QUICK_MESSAGES if args.quick else MESSAGES)
    if not 1 <= transfers <= MAX_TRANSFERS:
        parser.error(f"--transfers must be in 1..{MAX_TRANSFERS} (one genesis output each)")
    if messages < 1:
        parser.error("--messages must be positive")
    result = measure(
        transfers=transfers,
        cone=min(transfers, QUICK_CONE if args.quick else CONE),
        messages=messages,
        milestone_every=QUICK_MILESTONE_EVERY_MESSAGES if args.quick else MILESTONE_EVERY_MESSAGES,
    )
    if not args.json:
        _print_lines(result)
    print(json.dumps(result.to_json()))


def _print_lines(result: LedgerBenchmark) -> None:
    t, a, m = result.transfers, result.apply, result.memory
    print(f"ed25519 verify        {result.verify_per_s:10,.0f} /s  (is_valid, one core)")
    print(
        f"signed transfers      {t.per_s:10,.0f} /s  (median run: {t.transfers:,} in "
        f"{t.seconds:.2f} s, {t.milestones} milestones, gc {t.gc_seconds:.2f} s; "
        f"{t.per_s / result.verify_per_s:.0%} of the verify ceiling; runs "
        f"{', '.join(f'{run.per_s:,.0f}' for run in result.transfer_runs)} /s)"
    )
    print(
        f"milestone apply       {a.median_ms:10.1f} ms  (cone of {a.cone:,} transfers, median; "
        f"runs {', '.join(f'{s * 1e3:.0f}' for s in a.seconds)} ms, "
        f"gc {', '.join(f'{s * 1e3:.0f}' for s in a.gc_seconds)} ms)"
    )
    print(
        f"memory                {m.rss_mb:10.1f} MiB (VmRSS after {m.messages:,} messages; "
        f"peak {m.peak_rss_mb:.1f}, before the node {m.baseline_rss_mb:.1f})"
    )
    print(
        f"stream                {m.seconds:10.1f} s   (node {m.node_us_per_message:.0f} "
        f"us/message; db {m.db_mb:.1f} MiB + wal {m.wal_mb:.1f} MiB)"
    )
    print(
        f"  of which            send {m.send_seconds:.1f} s, submit {m.submit_seconds:.1f} s, "
        f"milestones {m.milestone_seconds:.1f} s ({m.milestones}), prune {m.prune_seconds:.1f} s "
        f"({m.prunes}); gc {m.gc_seconds:.1f} s throughout"
    )
    for name, met in result.targets().items():
        verdict = "n/a at this size" if met is None else "met" if met else "MISSED"
        print(f"target {name:<22} {verdict}")
    print(f"load average at start {result.load_average:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
