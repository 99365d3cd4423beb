"""The CSMS's group commit on a busy event loop: `python -m benchmarks.charging_commit [--json]
[--quick]`.

One process on the loop a CSMS serves on (`csms.run_process`), with a real `CsmsStore` (sqlite,
WAL, `synchronous=FULL`): `WRITERS` chargers each record a meter value (`CsmsStore.record`, the
group commit every meter value takes) every `WRITE_EVERY_S`, and each write's wait, from the
call to its return after the fsync'd commit, is timed. The same writes run three times:

* `idle`: nothing else on the loop (the ceiling: the group window, the statements, the fsync);
* `busy_default`: while `BUSY_TASKS` tasks keep the loop nearly saturated with Python work in
  slices of `BUSY_SLICE_S` (as chargers' messages do when a CSMS works off a backlog: its CPU
  share 0.7-0.9 here), with Python's own GIL switch interval (5 ms);
* `busy_tuned`: the same, with the switch interval a CSMS process runs with
  (`csms.tune_process`).

A group commit runs on aiosqlite's thread, which lets go of the GIL around every sqlite step and
must take it back from the loop's thread: with a 5 ms interval a busy loop keeps it that long
each time. Reported: each run's `write_p50_ms` and `write_p99_ms`, `loop_cpu_share` (the
process's CPU seconds per second, the busy work included), and the ratios of the busy runs' p99
to the idle one's (`*_ratio_to_idle`) and of the default interval's p99 to the tuned one's
(`tuned_p99_gain`).

Target: with the CSMS's interval, a busy loop's write p99 within `TARGET_RATIO` times the idle
loop's.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import numpy as np

from benchmarks._report import Figures, arguments, emit
from payments.charging.csms import SWITCH_INTERVAL_S, run_process
from payments.charging.session import EventKind, TransactionEvent
from payments.charging.store import CsmsStore

WRITERS: Final = 100
WRITE_EVERY_S: Final = 0.1
"""Each writer's pace: `WRITERS / WRITE_EVERY_S` meter values a second (1,000)."""
BUSY_TASKS: Final = 4
BUSY_SLICE_S: Final = 0.0003
BUSY_REST_S: Final = 0.001
"""Each busy task works `BUSY_SLICE_S`, then yields for `BUSY_REST_S`."""
MEASURE_S: Final = 5.0
QUICK_MEASURE_S: Final = 1.0
PYTHON_SWITCH_INTERVAL_S: Final = 0.005
TARGET_RATIO: Final = 3.0
T0: Final = 1_780_000_000


async def _busy(until: float) -> None:
    while time.perf_counter() < until:
        began = time.perf_counter()
        while time.perf_counter() - began < BUSY_SLICE_S:
            sum(range(64))
        await asyncio.sleep(BUSY_REST_S)


async def _writer(store: CsmsStore, charger: int, until: float, waits: list[float]) -> None:
    seq = 0
    while time.perf_counter() < until:
        seq += 1
        event = TransactionEvent(
            charge_point=f"CP{charger}",
            transaction_id=f"TX{charger}",
            seq_no=seq,
            kind=EventKind.UPDATED,
            timestamp_s=T0 + seq,
            register_wh=10 * seq,
        )
        began = time.perf_counter()
        await store.record(event)
        waits.append(time.perf_counter() - began)
        await asyncio.sleep(max(0.0, WRITE_EVERY_S - (time.perf_counter() - began)))


async def _run(directory: Path, busy: bool, measure_s: float) -> dict[str, float]:
    waits: list[float] = []
    async with CsmsStore(directory / "csms.sqlite") as store:
        until = time.perf_counter() + measure_s
        cpu, wall = time.process_time(), time.perf_counter()
        work = [_writer(store, i, until, waits) for i in range(WRITERS)]
        work += [_busy(until) for _ in range(BUSY_TASKS if busy else 0)]
        await asyncio.gather(*work)
        share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    ms = np.array(waits) * 1e3
    return {
        "writes": len(waits),
        "write_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "write_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "loop_cpu_share": round(share, 2),
    }


def _runs(measure_s: float) -> dict[str, dict[str, float]]:
    before = sys.getswitchinterval()
    runs = {}
    try:
        for name, busy, interval in (
            ("idle", False, SWITCH_INTERVAL_S),
            ("busy_default", True, PYTHON_SWITCH_INTERVAL_S),
            ("busy_tuned", True, SWITCH_INTERVAL_S),
        ):
            sys.setswitchinterval(interval)
            with tempfile.TemporaryDirectory(prefix="tanglepay-commit-bench-") as tmp:
                runs[name] = run_process(_run(Path(tmp), busy, measure_s))
    finally:
        sys.setswitchinterval(before)
    return runs


def measure(quick: bool) -> Figures:
    runs = _runs(QUICK_MEASURE_S if quick else MEASURE_S)
    idle = runs["idle"]["write_p99_ms"]
    doc: dict[str, Any] = {f"{name}_{k}": v for name, run in runs.items() for k, v in run.items()}
    for name in ("busy_default", "busy_tuned"):
        doc[f"{name}_ratio_to_idle"] = round(runs[name]["write_p99_ms"] / idle, 2)
    doc["tuned_p99_gain"] = round(
        runs["busy_default"]["write_p99_ms"] / runs["busy_tuned"]["write_p99_ms"], 2
    )
    doc |= {
        "switch_interval_ms": SWITCH_INTERVAL_S * 1e3,
        "host_load_1m": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count() or 1,
        "target_busy_tuned_ratio_to_idle": TARGET_RATIO,
    }
    doc["targets_met"] = doc["busy_tuned_ratio_to_idle"] <= TARGET_RATIO
    return Figures(figures=doc)


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__, quick="one second a run")
    args = parser.parse_args(argv)
    result = measure(args.quick)
    lines = [f"{key:>34}: {value}" for key, value in result.figures.items()]
    emit(result, lines, json_only=args.json)


if __name__ == "__main__":
    main()
