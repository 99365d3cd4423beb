"""The CSMS under load: `python -m benchmarks.charging [--json] [--quick] [--stations N]
[--pay-every N] [--pay-together] [--profile DIR]`.

One CSMS process (`payments.charging.csms` with its sqlite store in WAL mode, `synchronous=FULL`,
and the drivers' payment streams on its OCPP server, on the event loop `charging serve` runs it
on: `csms.run_process`), and `SIMULATORS` simulator processes (on the same loop) holding
the charge points: each charge point is an `ocpp` library `ChargePoint` (half 1.6J, half 2.0.1) on
its own WebSocket over loopback, authenticated with HTTP Basic (a failed handshake is tried again,
as a charger does). Every charge point starts a session; once every simulator process has all of its
charge points in session, all of them start at one moment to send a meter value every `INTERVAL_S`
seconds (an open-loop schedule, so a slow CSMS shows as latency, not as a lower offered rate;
each sample is stamped with its time on the schedule, as a charger samples on its clock and
sends when it can: one sent late does not share a second with the next); every
`PAY_EVERY`-th meter value (`--quick`: every second one; `--pay-every 0`: never) its driver pays
what its own meter shows through its one-way channel, on its own payment stream
(`payments.charging.pay_client`: a WebSocket on the CSMS's OCPP server, one binary frame each way:
the driver's invoice with a balance proof signed by the driver, verified, committed with the
session's paid amount in the CSMS's group commit, and answered with a signed receipt, checked).
Drivers' sessions begin at different times, so driver `i` pays after its meter values `n` with
`(n + i) % PAY_EVERY == 0` (a quarter of the drivers in each interval); `--pay-together` makes
every driver pay in the same intervals (all 1,000 payments in one second, none in the next three:
a burst no fleet of independent drivers makes, kept to show what it does to the tail). The
simulators skip the library's schema validation of their own messages (`check_schemas=False`);
the CSMS validates every message it receives and sends.

* `connected_charge_points`: charge points connected and in a session;
* `meter_values_per_s`: meter values the CSMS committed (read back from its database afterwards)
  per second of the measured window, and `meter_values_offered_per_s`: each charge point sends
  every meter value its schedule puts in the `MEASURE_S` window, each once the one before was
  answered (never waiting for its driver's payment: the driver's phone pays in a task of its
  own, one payment in flight at a time), so the window is `MEASURE_S` longer by how late the
  slowest answers held the last one back (a slow CSMS: a lower rate);
* `response_p50_ms` / `response_p99_ms`: per meter value, from the send to the CSMS's answer (the
  answer follows the fsync'd commit); `response_p99_ms_by_interval_phase`: the p99 of the meter
  values of intervals `n` with `n % pay_every == k`, for each `k` (with `--pay-together`, `k = 0`
  are the intervals in which every driver pays), and `response_p99_ms_by_interval`, for each
  interval in turn (a tail in a few intervals only is a passing stall; in every one, the CSMS's
  own);
* `payments_per_s`, `payment_p99_ms`: accepted payments (invoice + proof + receipt, one round
  trip) per second; `payment_asked_p99_ms`: from the meter value that made a payment due to its
  receipt (a wait behind the driver's payment in flight included); `payments_merged`: payments
  due while the driver's previous one was still in flight, paid by the next one (invoices are
  cumulative);
* the ceiling, measured in the same run: `sqlite_fsync_commits_per_s`, one-row commits per second
  with the CSMS's settings on this disk (what the CSMS would reach committing each meter value
  alone), and `ratio_to_fsync_ceiling`;
* `csms_cpu_share` and `csms_cpu_ms_per_meter_value`: the CSMS process's CPU seconds per second
  in the window (sampled by the process itself) and per committed meter value (payments
  included when there are any), `csms_kernel_share_of_cpu` (the part spent in the kernel:
  sockets, epoll, fsync);
* where a tail comes from, in the window: `csms_commit_p99_ms` / `_max_ms` (a group commit from
  taking the store's lock to the end of its fsync'd commit; every charger in it waits that
  long), `csms_commit_lock_wait_p99_ms` (how long a group commit waited for the store's lock:
  another writer's transaction), `csms_commit_fsync_p99_ms` (the commit call alone, its fsync)
  and `csms_rows_per_commit` (writes: meter values and payments), `csms_loop_lag_p99_ms` /
  `_max_ms` (how late the CSMS's loop wakes a 20 ms sleeper: its own backlog, or a machine that
  does not give it a core),
  `csms_gc_ms_per_s` (wall time in the garbage collector), `csms_gc_cpu_ms_per_s` (its CPU
  time: wall well over CPU means the process waited for a core), `csms_gc_pause_max_ms` and
  `csms_gc_full_collections`; `simulator_gc_ms_per_s` and `simulator_gc_pause_max_ms` likewise;
* simulators are not the bottleneck when `simulator_cpu_share_max` (a simulator's CPU seconds per
  wall second) stays well under 1 and `simulator_loop_lag_p99_ms` (how late a simulator's event
  loop wakes a 20 ms sleeper: its own backlog, or the machine's) stays small: both are reported,
  and `simulators_saturated` is true when either is not (over 0.8, over 10 ms);
  `simulator_cpu_ms_per_meter_value` is their CPU per meter value (`simulator_kernel_share_of_cpu`
  in the kernel);
* the simulators' ceiling, measured in the same run: the same simulators against a trivial OCPP
  answerer (a fixed CALLRESULT per action, no validation, no storage, no payments) offered
  `CEILING_SPEEDUP` times the meter values: `simulator_ceiling_meter_values_per_s` (answered per
  second), its p99 and loop lag, and `ratio_to_simulator_ceiling`;
* `host_load_1m`: the machine's load average at the end (the run shares the machine).

`--profile DIR` runs the CSMS process and each simulator process (of the CSMS run, not the
ceiling's) under `cProfile` and writes their statistics to `DIR/csms-PID.prof` and
`DIR/simulator-PID.prof`, timed in the main thread's CPU seconds (not wall time, which a shared
machine inflates), whose own cost inflates the CPU figures of such a run.

Channels for the drivers are built from deterministic keys in both processes (no ledger: the CPO's
channel directory here is a table of those channels, as `benchmarks.channels` builds its terms).
Targets: 1,000 charge points, at least 1,000 meter values/s, p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from benchmarks._charging_load import simulator_process
from benchmarks._charging_servers import csms_process, echo_process, fsync_commits_per_s
from payments.charging.csms import run_process

if TYPE_CHECKING:
    from collections.abc import Coroutine

STATIONS: Final = 1000
QUICK_STATIONS: Final = 40
SIMULATORS: Final = 4
QUICK_SIMULATORS: Final = 2
INTERVAL_S: Final = 1.0
CEILING_SPEEDUP: Final = 3
"""The simulators' ceiling run offers this many times the CSMS run's meter values."""
PAY_EVERY: Final = 4
QUICK_PAY_EVERY: Final = 2
MEASURE_S: Final = 20.0
QUICK_MEASURE_S: Final = 3.0
TARGET_STATIONS: Final = 1000
TARGET_METER_VALUES_PER_S: Final = 1000
TARGET_P99_MS: Final = 50.0


def _inside(
    samples: list[list[float]], window: tuple[float, float], width: int
) -> np.ndarray[Any, Any]:
    """`[unix time, seconds, ...]` samples (`width` values after the time) taken inside
    `window`, without their time, the seconds in ms: one row each."""
    rows = [s[1:] for s in samples if window[0] <= s[0] <= window[1]]
    inside = np.array(rows, dtype=float).reshape(len(rows), width)
    inside[:, 0] *= 1e3
    return inside


def _p99(values: np.ndarray[Any, Any]) -> float:
    return round(float(np.percentile(values, 99)), 2) if values.size else 0.0


def _cpu_share(samples: list[list[float]], window: tuple[float, float], column: int = 1) -> float:
    """CPU seconds per second of a server process over `window` (from its samples; `column`
    2: in the kernel)."""
    inside = [s for s in samples if window[0] <= s[0] <= window[1]]
    if len(inside) < 2:
        return -1.0
    return (inside[-1][column] - inside[0][column]) / (inside[-1][0] - inside[0][0])


def _committed(directory: Path) -> int:
    """Meter values committed (all are sent within the measured window)."""
    db = sqlite3.connect(directory / "csms.sqlite")
    try:
        (n,) = db.execute("SELECT count(*) FROM events WHERE kind = 'Updated'").fetchone()
    finally:
        db.close()
    return int(n)


def _run(
    server: list[str],
    stations: int,
    sims: int,
    measure_s: float,
    pay_every: int,
    interval_s: float,
    profile: Path | None = None,
    together: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Start `server` (a child printing its URLs), run `sims` simulator processes against it;
    returns their figures and the server's in their window: `cpu_share` (its CPU seconds per
    second), `lag` and `gc` (its loop lag and collector pauses there, ms). With `profile`, every
    child runs under cProfile (see the module docstring)."""
    me = [sys.executable, "-m", "benchmarks.charging"]
    if profile is not None:
        me = [*me, "--profile", str(profile)]
    child = subprocess.Popen(
        [*me, *server], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    if child.stdout is None or child.stdin is None:
        raise SystemExit("the server process has no pipes")
    try:
        where = json.loads(child.stdout.readline())
        share = -(-stations // sims)
        children = [
            subprocess.Popen(
                [
                    *me,
                    "--simulate",
                    where["url"],
                    str(first),
                    str(min(share, stations - first)),
                    str(measure_s),
                    str(pay_every),
                    str(interval_s),
                    "together" if together else "spread",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for first in range(0, stations, share)
        ]
        for c in children:  # each says when its charge points are in their sessions
            if c.stdout is None or not c.stdout.readline():
                raise SystemExit("a simulator process failed")
        start = f"{time.time() + 0.5}\n"  # then all start metering at the same moment
        for c in children:
            if c.stdin is not None:
                c.stdin.write(start)
                c.stdin.close()
        results = [json.loads(c.stdout.read()) for c in children if c.stdout is not None]
        for c in children:
            c.wait(60)
    finally:
        child.stdin.close()
        samples = json.loads(child.stdout.readline() or "{}")
        child.wait(60)
        child.stdout.close()
    window = _bounds(results)
    return results, {
        "cpu_share": _cpu_share(samples.get("cpu", []), window),
        "kernel_share": _cpu_share(samples.get("cpu", []), window, 2),
        "lag": _inside(samples.get("lag", []), window, 1)[:, 0],
        "gc": _inside(samples.get("gc", []), window, 3),
        "commits": _inside(samples.get("commits", []), window, 4),
    }


def _bounds(results: list[dict[str, Any]]) -> tuple[float, float]:
    return min(r["window"][0] for r in results), max(r["window"][1] for r in results)


def _window(results: list[dict[str, Any]]) -> float:
    began, ended = _bounds(results)
    return ended - began


def measure(
    stations: int,
    quick: bool,
    pay_every: int | None = None,
    profile: Path | None = None,
    together: bool = False,
) -> dict[str, Any]:
    measure_s = QUICK_MEASURE_S if quick else MEASURE_S
    sims = min(QUICK_SIMULATORS if quick else SIMULATORS, stations)
    if pay_every is None:
        pay_every = QUICK_PAY_EVERY if quick else PAY_EVERY
    with tempfile.TemporaryDirectory(prefix="tanglepay-charging-bench-") as tmp:
        ceiling = fsync_commits_per_s(Path(tmp))
        csms_run = ["--csms", tmp, "--stations", str(stations)]
        results, csms = _run(
            csms_run, stations, sims, measure_s, pay_every, INTERVAL_S, profile, together
        )
        committed = _committed(Path(tmp))
    echo, echo_server = _run(["--echo"], stations, sims, measure_s, 0, INTERVAL_S / CEILING_SPEEDUP)
    csms_cpu = csms["cpu_share"]
    meter = np.array([x for r in results for x in r["meter"]]) * 1e3
    interval = np.array([x for r in results for x in r["interval"]], dtype=np.int64)
    pays = np.array([x for r in results for x in r["pay"]]) * 1e3
    asked = np.array([x for r in results for x in r["pay_asked"]]) * 1e3
    lag = np.array([x[1] for r in results for x in r["lag"]]) * 1e3
    sim_gc = np.array([x[1] for r in results for x in r["gc"]]) * 1e3
    gc_pauses = csms["gc"]
    window = _window(results)
    rate = committed / window
    cpu_share_max = max(r["cpu_share"] for r in results)
    lag_p99 = float(np.percentile(lag, 99)) if lag.size else 0.0
    echo_rate = sum(len(r["meter"]) for r in echo) / _window(echo)
    echo_lag = np.array([x[1] for r in echo for x in r["lag"]]) * 1e3
    load = os.getloadavg()[0]
    doc: dict[str, Any] = {
        "connected_charge_points": sum(r["connected"] for r in results),
        "failed_charge_points": sum(r["failed"] for r in results),
        "connects_retried": sum(r.get("retried", 0) for r in results),
        "errors": [e for r in results for e in r.get("errors", [])][:4],
        "meter_values_per_s": round(rate, 1),
        "meter_values_offered_per_s": round(stations / INTERVAL_S, 1),
        "meter_values": committed,
        "response_p50_ms": round(float(np.percentile(meter, 50)), 2),
        "response_p99_ms": round(float(np.percentile(meter, 99)), 2),
        "payments_per_s": round(pays.size / window, 1),
        "pay_every_meter_values": pay_every,
        "payments_together": together,
        "response_p99_ms_by_interval_phase": [
            _p99(meter[interval % max(1, pay_every) == k]) for k in range(max(1, pay_every))
        ],
        "response_p99_ms_by_interval": [
            _p99(meter[interval == n]) for n in range(1, int(interval.max(initial=0)) + 1)
        ],
        "payments_merged": sum(r["pay_merged"] for r in results),
        "payment_p50_ms": round(float(np.percentile(pays, 50)), 2) if pays.size else None,
        "payment_p99_ms": round(float(np.percentile(pays, 99)), 2) if pays.size else None,
        "payment_asked_p99_ms": round(float(np.percentile(asked, 99)), 2) if asked.size else None,
        "sqlite_fsync_commits_per_s": round(ceiling, 1),
        "ratio_to_fsync_ceiling": round(rate / ceiling, 2),
        "csms_cpu_share": round(csms_cpu, 2),
        "csms_cpu_ms_per_meter_value": round(csms_cpu * window / max(1, committed) * 1e3, 3),
        "csms_commit_p99_ms": _p99(csms["commits"][:, 0]),
        "csms_commit_max_ms": round(float(csms["commits"][:, 0].max()), 2)
        if csms["commits"].size
        else 0.0,
        "csms_rows_per_commit": round(float(csms["commits"][:, 1].mean()), 1)
        if csms["commits"].size
        else 0.0,
        "csms_commit_lock_wait_p99_ms": _p99(csms["commits"][:, 2] * 1e3),
        "csms_commit_fsync_p99_ms": _p99(csms["commits"][:, 3] * 1e3),
        "csms_kernel_share_of_cpu": round(csms["kernel_share"] / max(csms_cpu, 1e-9), 2),
        "csms_loop_lag_p99_ms": _p99(csms["lag"]),
        "csms_loop_lag_max_ms": round(float(csms["lag"].max()), 2) if csms["lag"].size else 0.0,
        "csms_gc_ms_per_s": round(float(gc_pauses[:, 0].sum()) / window, 2),
        "csms_gc_cpu_ms_per_s": round(float(gc_pauses[:, 1].sum()) * 1e3 / window, 2),
        "csms_gc_pause_max_ms": round(float(gc_pauses[:, 0].max()), 2) if gc_pauses.size else 0.0,
        "csms_gc_full_collections": int((gc_pauses[:, 2] == 2).sum()),
        "simulators": len(results),
        "simulator_cpu_share_max": round(cpu_share_max, 2),
        "simulator_cpu_ms_per_meter_value": round(
            sum(r["cpu_share"] for r in results) * window / max(1, meter.size) * 1e3, 3
        ),
        "simulator_kernel_share_of_cpu": round(
            sum(r["kernel_share"] for r in results) / sum(r["cpu_share"] for r in results), 2
        ),
        "simulator_loop_lag_p99_ms": round(lag_p99, 2),
        "simulator_gc_ms_per_s": round(float(sim_gc.sum()) / window / len(results), 2),
        "simulator_gc_pause_max_ms": round(float(sim_gc.max()), 2) if sim_gc.size else 0.0,
        "simulators_saturated": cpu_share_max > 0.8 or lag_p99 > 10.0,
        "simulator_ceiling_meter_values_per_s": round(echo_rate, 1),
        "simulator_ceiling_offered_per_s": round(stations * CEILING_SPEEDUP / INTERVAL_S, 1),
        "simulator_ceiling_p99_ms": round(
            float(np.percentile([x for r in echo for x in r["meter"]], 99)) * 1e3, 2
        ),
        "simulator_ceiling_loop_lag_p99_ms": round(
            float(np.percentile(echo_lag, 99)) if echo_lag.size else 0.0, 2
        ),
        "echo_server_cpu_share": round(echo_server["cpu_share"], 2),
        "ratio_to_simulator_ceiling": round(rate / echo_rate, 2),
        "host_load_1m": round(load, 2),
        "window_s": round(window, 2),
        "cores": os.cpu_count() or 1,
        "durability": "sqlite WAL, synchronous=FULL; answer after the commit",
        "target_connected_charge_points": TARGET_STATIONS,
        "target_meter_values_per_s": TARGET_METER_VALUES_PER_S,
        "target_response_p99_ms": TARGET_P99_MS,
    }
    doc["targets_met"] = (
        doc["connected_charge_points"] >= TARGET_STATIONS
        and rate >= TARGET_METER_VALUES_PER_S
        and doc["response_p99_ms"] < TARGET_P99_MS
    )
    return doc


def _run_role(work: Coroutine[Any, Any, None], profile: Path | None, role: str) -> None:
    """`work` on the loop the CSMS serves on (`run_process`: uvloop), the simulators' too (the
    `ocpp` library runs on any asyncio loop, and theirs is the cheapest: their CPU is taken from
    the two cores the CSMS runs on), under cProfile if `profile` names a folder for its
    statistics."""
    if profile is None:
        run_process(work)
        return
    profiler = cProfile.Profile(time.thread_time)  # CPU time: the machine is shared
    profiler.enable()
    try:
        run_process(work)
    finally:
        profiler.disable()
        profiler.dump_stats(profile / f"{role}-{os.getpid()}.prof")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--quick", action="store_true", help="few charge points, a short run")
    parser.add_argument("--stations", type=int, default=None)
    parser.add_argument(
        "--pay-every", type=int, default=None, help="pay every N-th meter value (0: never)"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="write cProfile statistics of each process here"
    )
    parser.add_argument("--csms", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--pay-together",
        action="store_true",
        help="every driver pays after the same meter values (a burst every N-th interval)",
    )
    parser.add_argument("--simulate", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stations = args.stations or (QUICK_STATIONS if args.quick else STATIONS)
    if args.csms is not None:
        _run_role(csms_process(args.csms, stations), args.profile, "csms")
        return
    if args.echo:
        run_process(echo_process())  # the CSMS's loop: the answerer's own cost stays small
        return
    if args.simulate is not None:
        url, first, count, measure_s, pay_every, interval_s, phases = args.simulate
        _run_role(
            simulator_process(
                url,
                int(first),
                int(count),
                float(measure_s),
                int(pay_every),
                float(interval_s),
                phases == "together",
            ),
            args.profile,
            "simulator",
        )
        return
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    doc = measure(stations, args.quick, args.pay_every, args.profile, args.pay_together)
    if not args.json:
        for key, value in doc.items():
            print(f"{key:>32}: {value}")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
