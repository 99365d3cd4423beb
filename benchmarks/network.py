"""Network throughput and confirmation latency of a devnet under load:
`python -m benchmarks.network [--json] [--nodes 3] [--tps 1100] [--seconds 30] [--single]
[--quick]`.

A coordinator and `--nodes` nodes run as separate processes (`tanglepay.devnet`, a temporary
data directory, a milestone every second) on this machine, beside this client. Every transfer is
signed and worked before the devnet starts, the faucet's genesis outputs are fanned out to the
lanes and confirmed, then the transfers are sent at `--tps`, round-robin over the nodes, and
every node's event stream is followed (`benchmarks._network_load`). They are sent as gateways
send them, one batch per node every `--batch-window` seconds (`POST /api/v1/messages/batch`),
or with `--single` one POST each, as devices talking to the nodes directly; at most
`--in-flight` requests outstanding per node either way. The output names the way
(`submission`). The default rate is 10 % over the 1000 confirmed transfers a second the
network must reach: at an offered 1000 the confirmed rate can only come out just below it (the
window's edges), whatever the network could do. Measured in this run, over the window of
`--seconds` that opens after `--warmup` seconds of sending:

* `confirmed_tps`: transfers INCLUDED (their `transaction` event) by the milestones after the
  first one to arrive in the window up to the last one, over the time between those two (whole
  milestone intervals: the window's edges do not cut a milestone's burst of events);
* `confirmation_latency_p50_s` / `_p99_s`: from the return of a transfer's POST to the arrival of
  its event on the stream of the node it was sent to, over the transfers whose POST returned in
  the window; the client listens up to `--drain` seconds more, and a transfer still unconfirmed
  then counts as never confirmed (a percentile that lands on one reads null);
  `latency_from_schedule_p50_s` counts from when the transfer was due instead (open loop: an
  overloaded devnet shows here, as the POSTs wait for a free slot and take longer);
* `gossip_bytes_per_unique_byte`: per member, the delta over the window of
  `tangle_gossip_received_bytes_total` over that of `tangle_gossip_unique_message_bytes_total`;
* `cpu_cores`: CPU seconds per second over the window of each process and of this client (from
  `/proc/<pid>/stat` and `getrusage`); `cpu_main_thread_cores`: the event-loop thread's part
  (`/proc/<pid>/task/<pid>/stat`; the rest is the writer and reader worker threads);
  `machine_busy_cores` from `/proc/stat`, and `other_processes_cores`, what neither the devnet
  nor the client used of it;
* `cpu_us_per_transfer`: CPU microseconds each process (and the client, and all of them as
  `total`) spent per confirmed transfer: `cpu_cores` over `confirmed_tps`, far less sensitive to
  the machine's other load than the throughput;
* `rss_mb`: VmRSS of each process at the end of the window;
* `client_probe`: before the load, POSTs the first node refuses at once, as fast as
  `--in-flight` allows: requests per second, and the CPU per request of the client (its own
  ceiling is 1000 / that per core) and of the node (its HTTP stack).

`--profile MEMBER` runs that member under cProfile on each thread's CPU clock and reports its top
functions (its other figures are then perturbed). `--sweep 200,400,...` runs again at each rate
(a fresh devnet each) for `--sweep-seconds`, and reports the highest offered rate the devnet
keeps up with within the p50 target: `latency_from_schedule_p50_s` at most 2 s (which bounds
the p50 from the POSTs too; past saturation the POSTs queue and only the former grows).
Human-readable lines come first; the last line printed is always one JSON object (`--json`
prints only that line).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import pstats
import re
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
import trio

from benchmarks import _network_load as load
from tangle import work
from tangle.node.config import parse_network
from tanglepay.devnet import PARAMS, launch, load_or_create

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from tanglepay.devnet import Launched, Member

TARGET_CONFIRMED_TPS: Final = 1000.0
OFFERED_TPS: Final = 1100.0
"""The default offered rate: above the target, so that reaching it shows."""
TARGET_P50_S: Final = 2.0
TARGET_GOSSIP: Final = 2.0
INTERVAL_S: Final = 1.0
"""Milestone interval of the devnet."""
FANOUT_TIMEOUT_S: Final = 60.0
_TICK: Final = os.sysconf("SC_CLK_TCK")
_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$", re.MULTILINE)
_PROFILE_BOOT: Final = """\
import cProfile, pstats, runpy, sys, threading, time
out = sys.argv[1]
sys.argv = ["tanglepay", *sys.argv[2:]]
profiles = []
def start_thread(*_):
    p = cProfile.Profile(time.thread_time); profiles.append(p); p.enable()
threading.setprofile(start_thread)
main = cProfile.Profile(time.thread_time); profiles.append(main); main.enable()
try:
    runpy.run_module("tanglepay.cli", run_name="__main__")
except SystemExit:
    pass
finally:
    main.disable()
    for p in profiles:
        p.create_stats()
    stats = pstats.Stats(main)
    for p in profiles[1:]:
        if p.stats:
            stats.add(p)
    stats.dump_stats(out)
"""
"""Runs `tanglepay.cli` under one profiler for the main thread and one for each thread started
later, each on its thread's CPU clock (so neither waiting nor being preempted by the other
processes counts), merged into one pstats file at exit."""
WAITS: Final = frozenset(
    {
        "<method 'acquire' of '_thread.lock' objects>",
        "<method 'acquire' of '_thread.RLock' objects>",
        "<method 'poll' of 'select.epoll' objects>",
    }
)
"""Blocking waits, left out of the profile tables: under cProfile the thread-CPU clock charges
an idle trio worker thread's lock wait with time (about 2 % of the wait)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """One measured run."""

    nodes: int
    """Nodes beside the coordinator; the transfers go to these."""
    tps: float
    """Offered transfers per second."""
    seconds: float
    """The measurement window."""
    warmup: float
    """Sending before the window opens."""
    drain: float
    """Listening after the window for the window's transfers to confirm."""
    in_flight: int
    """Most POSTs outstanding per node."""
    batch_window: float
    """Seconds between a gateway's batches; 0: one POST per transfer."""
    probe_s: float
    """Duration of the client probe (0: none)."""
    profile: str | None = None
    """Member to run under cProfile."""
    profile_out: Path | None = None
    """Where its pstats go (default `network-MEMBER.pstats`)."""

    @property
    def profile_path(self) -> Path:
        return (self.profile_out or Path(f"network-{self.profile}.pstats")).resolve()


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """Refused POSTs against the first node: what one request costs the client and the node."""

    requests_per_s: float
    """Requests completed per second (bounded by the node as well)."""
    client_cpu_ms_per_request: float
    """The client's CPU per request: 1000 / this is its ceiling on one core."""
    node_cpu_ms_per_request: float
    """The node's CPU per request (HTTP stack, routing, one writer-thread hop)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """What one run measured (see the module docstring)."""

    options: Options
    lanes: int
    rounds: int
    generation_s: float
    submitted: int
    """POSTs that returned 201 in the window."""
    submitted_tps: float
    refused: dict[str, int]
    """POSTs not answered 201 (whole run), by status; "connection": no answer at all."""
    confirmed: int
    confirmed_tps: float
    conflicting: int
    """Transfers (whole run) the event streams reported CONFLICTING."""
    unconfirmed: int
    """Transfers of the window still without an event at the end of the drain."""
    latency_p50_s: float | None
    latency_p99_s: float | None
    post_p50_s: float | None
    post_p99_s: float | None
    scheduled_p50_s: float | None
    """Like `latency_p50_s`, but from when the transfer was due to be sent (open loop: it adds
    the time it waited in the client for a free slot and the POST round trip)."""
    milestones: int
    """Milestone events that arrived in the window (first node's stream)."""
    gossip: dict[str, float | None]
    rss_mb: dict[str, float]
    cpu_cores: dict[str, float]
    cpu_main_thread_cores: dict[str, float]
    machine_busy_cores: float
    other_processes_cores: float
    probe: Probe | None
    loadavg_before: float
    profile_top: dict[str, list[dict[str, Any]]] | None

    @property
    def cpu_us_per_transfer(self) -> dict[str, float | None]:
        """CPU microseconds per confirmed transfer, by process and in total."""
        per = {**self.cpu_cores, "total": sum(self.cpu_cores.values())}
        rate = self.confirmed_tps
        return {k: round(v / rate * 1e6, 1) if rate else None for k, v in per.items()}

    @property
    def targets_met(self) -> bool:
        return (
            self.confirmed_tps >= TARGET_CONFIRMED_TPS
            and self.latency_p50_s is not None
            and self.latency_p50_s <= TARGET_P50_S
            and all(g is not None and g <= TARGET_GOSSIP for g in self.gossip.values())
        )

    def to_json(self) -> dict[str, Any]:
        o = self.options
        return {
            "offered_tps": o.tps,
            "submission": "batch" if o.batch_window else "single",
            "batch_window_s": o.batch_window or None,
            "submitted": self.submitted,
            "submitted_tps": round(self.submitted_tps, 1),
            "refused": self.refused,
            "confirmed": self.confirmed,
            "confirmed_tps": round(self.confirmed_tps, 1),
            "conflicting": self.conflicting,
            "unconfirmed": self.unconfirmed,
            "confirmation_latency_p50_s": _round(self.latency_p50_s),
            "confirmation_latency_p99_s": _round(self.latency_p99_s),
            "post_latency_p50_s": _round(self.post_p50_s),
            "post_latency_p99_s": _round(self.post_p99_s),
            "latency_from_schedule_p50_s": _round(self.scheduled_p50_s),
            "milestones": self.milestones,
            "gossip_bytes_per_unique_byte": {k: _round(v) for k, v in self.gossip.items()},
            "rss_mb": {k: round(v, 1) for k, v in self.rss_mb.items()},
            "cpu_cores": {k: round(v, 3) for k, v in self.cpu_cores.items()},
            "cpu_main_thread_cores": {
                k: round(v, 3) for k, v in self.cpu_main_thread_cores.items()
            },
            "cpu_us_per_transfer": self.cpu_us_per_transfer,
            "machine_busy_cores": round(self.machine_busy_cores, 3),
            "other_processes_cores": round(self.other_processes_cores, 3),
            "client_probe": None if self.probe is None else dataclasses.asdict(self.probe),
            "nodes": o.nodes,
            "lanes": self.lanes,
            "rounds": self.rounds,
            "window_s": o.seconds,
            "warmup_s": o.warmup,
            "in_flight_per_node": o.in_flight,
            "generation_s": round(self.generation_s, 2),
            "cpu_count": os.cpu_count() or 1,
            "loadavg_1m_before": round(self.loadavg_before, 2),
            "profiled": o.profile,
            "profile": self.profile_top,
            "targets": {
                "confirmed_tps": TARGET_CONFIRMED_TPS,
                "confirmation_latency_p50_s": TARGET_P50_S,
                "gossip_bytes_per_unique_byte": TARGET_GOSSIP,
            },
            "targets_met": self.targets_met,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of `values` (inf: never); None if it is inf or there are none."""
    if not values:
        return None
    ordered = sorted(values)
    value = ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
    return None if math.isinf(value) else value


# -- what the processes use --------------------------------------------------------------------


def _stat_seconds(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the whole process, its main thread) CPU seconds process `pid` has used; the whole
    includes the threads that have ended."""
    proc = Path(f"/proc/{pid}")
    return _stat_seconds(proc / "stat"), _stat_seconds(proc / "task" / str(pid) / "stat")


def machine_busy_seconds() -> float:
    """CPU seconds all processors have spent busy (the first line of `/proc/stat`)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for process {pid}")


async def scrape(client: httpx.AsyncClient, api: str) -> dict[str, float]:
    """The samples of a member's `/metrics`, by name (labels included). Asked again once if the
    connection breaks (the server may close an idle keep-alive connection as it is reused)."""
    try:
        text = (await client.get(f"{api}/metrics")).text
    except httpx.TransportError:
        text = (await client.get(f"{api}/metrics")).text
    return {name: float(value) for name, value in _METRIC.findall(text)}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Sample:
    at: float
    cpu: dict[str, tuple[float, float]]
    """(all threads, main thread) CPU seconds by member, "client" and "machine"."""
    metrics: dict[str, dict[str, float]]


async def _sample(client: httpx.AsyncClient, members: Sequence[Launched]) -> _Sample:
    at = trio.current_time()
    cpu = {m.member.name: cpu_seconds(m.process.pid) for m in members}
    own, busy = load.client_cpu_seconds(), machine_busy_seconds()
    cpu["client"], cpu["machine"] = (own, own), (busy, busy)
    metrics = {m.member.name: await scrape(client, m.member.api) for m in members}
    return _Sample(at=at, cpu=cpu, metrics=metrics)


def _profiled(member: Member, out: Path) -> Member:
    """`member` started under `_PROFILE_BOOT`, writing its pstats to `out`."""
    cli_args = member.command[member.command.index("tanglepay.cli") + 1 :]
    return dataclasses.replace(
        member, command=(sys.executable, "-c", _PROFILE_BOOT, str(out), *cli_args)
    )


def profile_top(path: Path, count: int = 25) -> dict[str, list[dict[str, Any]]]:
    """From a pstats file: the `count` functions with the most own CPU time (`WAITS` left out),
    and the `count` functions of `tangle/` and `coordinator/` with the most cumulative time."""
    table: dict[Any, Any] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]

    def row(key: Any, value: Any) -> dict[str, Any]:
        (file, line, name), (_, calls, own, cumulative, _) = key, value
        where = "/".join(Path(file).parts[-2:]) if file != "~" else "~"
        return {
            "function": f"{where}:{line}({name})",
            "calls": calls,
            "own_s": round(own, 3),
            "cumulative_s": round(cumulative, 3),
        }

    own = [i for i in table.items() if i[0][2] not in WAITS]
    ours = [i for i in table.items() if re.search(r"/(tangle|coordinator)/[^/]+$", i[0][0])]
    return {
        "own": [row(*i) for i in sorted(own, key=lambda i: i[1][2], reverse=True)[:count]],
        "cumulative": [row(*i) for i in sorted(ours, key=lambda i: i[1][3], reverse=True)[:count]],
    }


# -- one run -----------------------------------------------------------------------------------


async def run(
    options: Options,
    say: Callable[[str], None],
    beside: Callable[[Sequence[Launched], Path], Awaitable[None]] | None = None,
) -> RunResult:
    """Create a devnet in a temporary directory, load it, measure, stop it, remove it. SIGTERM
    (like Ctrl-C) stops the devnet and removes the directory before the benchmark exits.
    `beside(members, directory)` runs from when the load starts until the measurement ends
    (another load, an attacker: `benchmarks.hostile`)."""
    with trio.open_signal_receiver(signal.SIGTERM) as terminated:
        async with trio.open_nursery() as nursery:

            async def interrupt() -> None:
                async for _ in terminated:
                    raise KeyboardInterrupt("SIGTERM")

            nursery.start_soon(interrupt)
            result = await _run(options, say, beside)
            nursery.cancel_scope.cancel()
    return result


async def _run(
    options: Options,
    say: Callable[[str], None],
    beside: Callable[[Sequence[Launched], Path], Awaitable[None]] | None,
) -> RunResult:
    loadavg = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tanglepay-network-") as tmp:
        devnet = load_or_create(Path(tmp), options.nodes, INTERVAL_S)
        names = [m.name for m in devnet.members]
        if options.profile is not None and options.profile not in names:
            raise ValueError(f"--profile {options.profile}: not one of {', '.join(names)}")
        spec = parse_network(json.loads((Path(tmp) / "network.json").read_text()))
        work.warm_up()
        plan = load.plan_load(
            spec.genesis,
            devnet.accounts,
            PARAMS,
            tps=options.tps,
            duration_s=options.warmup + options.seconds,
            nodes=options.nodes,
        )
        say(
            f"load: {plan.count} transfers in {plan.lanes} lanes x {plan.rounds} rounds, "
            f"signed and worked in {plan.seconds:.1f} s"
        )
        members = tuple(
            _profiled(m, options.profile_path) if m.name == options.profile else m
            for m in devnet.members
        )
        async with (
            httpx.AsyncClient(timeout=30) as control,
            httpx.AsyncClient(timeout=30) as streams,
            contextlib.AsyncExitStack() as stack,
            trio.open_nursery() as processes,
        ):
            posters = [
                await load.open_clients(stack, options.in_flight) for _ in range(options.nodes)
            ]
            try:
                launched = await launch(members, processes, control)
                say(f"devnet: a coordinator and {options.nodes} nodes answer")
                result = await _measure(
                    options, plan, launched, control, streams, posters, say, beside, Path(tmp)
                )
            finally:
                processes.cancel_scope.cancel()  # SIGTERM, and wait for them
    top = profile_top(options.profile_path) if options.profile is not None else None
    return dataclasses.replace(result, loadavg_before=loadavg, profile_top=top)


async def _probe(
    clients: Sequence[httpx.AsyncClient],
    node: Launched,
    options: Options,
    say: Callable[[str], None],
) -> Probe:
    before = cpu_seconds(node.process.pid)[0]
    done, elapsed, spent = await load.probe(
        clients, node.member.api, options.probe_s, options.in_flight
    )
    node_spent = cpu_seconds(node.process.pid)[0] - before
    result = Probe(
        requests_per_s=round(done / elapsed, 1),
        client_cpu_ms_per_request=round(1000 * spent / max(done, 1), 3),
        node_cpu_ms_per_request=round(1000 * node_spent / max(done, 1), 3),
    )
    say(
        f"client probe: {result.requests_per_s:.0f} refused POSTs/s against one node; CPU "
        f"per request {result.client_cpu_ms_per_request:.3f} ms client, "
        f"{result.node_cpu_ms_per_request:.3f} ms node"
    )
    return result


async def _measure(
    options: Options,
    plan: load.LoadPlan,
    launched: Sequence[Launched],
    control: httpx.AsyncClient,
    streams: httpx.AsyncClient,
    posters: Sequence[Sequence[httpx.AsyncClient]],
    say: Callable[[str], None],
    beside: Callable[[Sequence[Launched], Path], Awaitable[None]] | None,
    directory: Path,
) -> RunResult:
    nodes = [m for m in launched if m.member.name != "coordinator"]
    apis = [m.member.api for m in nodes]
    probed = await _probe(posters[0], nodes[0], options, say) if options.probe_s > 0 else None
    tracker = load.Tracker(plan)
    async with trio.open_nursery() as nursery:
        for k, api in enumerate(apis):
            await nursery.start(load.follow, streams, api, k, tracker)
        fanout_ids = await load.fan_out(control, apis[0], plan, tracker, FANOUT_TIMEOUT_S)
        raws = load.transfer_messages(plan, fanout_ids)
        tracker.identify(raws)
        way = (
            f"in batches every {options.batch_window:g} s (gateways)"
            if options.batch_window
            else "one POST each (devices)"
        )
        say(f"fan-out confirmed; sending {options.tps:g} transfers/s, {way}")
        start = trio.current_time() + 0.1
        opens, closes = start + options.warmup, start + options.warmup + options.seconds

        async def sender() -> None:
            if options.batch_window:
                await load.send_batches(
                    posters,
                    apis,
                    raws,
                    tracker,
                    start=start,
                    stop=closes,
                    tps=options.tps,
                    in_flight=options.in_flight,
                    window_s=options.batch_window,
                )
                return
            await load.send(
                posters,
                apis,
                raws,
                tracker,
                start=start,
                stop=closes,
                tps=options.tps,
                in_flight=options.in_flight,
            )

        nursery.start_soon(sender)
        if beside is not None:
            nursery.start_soon(beside, launched, directory)
        await trio.sleep_until(opens)
        first = await _sample(control, launched)
        await trio.sleep_until(closes)
        last = await _sample(control, launched)
        rss = {m.member.name: rss_mb(m.process.pid) for m in launched}
        window = [n for n, at in enumerate(tracker.posted) if opens <= at < closes]
        with trio.move_on_at(closes + options.drain):
            await tracker.until(lambda: all(tracker.settled(n) for n in window))
        nursery.cancel_scope.cancel()
    return _result(options, plan, tracker, window, (opens, closes), (first, last), rss, probed)


def _result(
    options: Options,
    plan: load.LoadPlan,
    tracker: load.Tracker,
    window: list[int],
    bounds: tuple[float, float],
    samples: tuple[_Sample, _Sample],
    rss: dict[str, float],
    probed: Probe | None,
) -> RunResult:
    opens, closes = bounds
    first, last = samples
    # Whole milestone intervals: from the first milestone of the window to its last one.
    inside = [(at, index) for at, index in tracker.milestones if opens <= at < closes]
    if len(inside) >= 2:
        (first_at, first_index), (last_at, last_index) = inside[0], inside[-1]
        span = last_at - first_at
        confirmed = sum(tracker.included.get(i, 0) for i in range(first_index + 1, last_index + 1))
    else:
        span, confirmed = closes - opens, 0
    latencies = [
        tracker.confirmed[n] - tracker.posted[n] if tracker.settled(n) else math.inf for n in window
    ]
    posts = [tracker.posted[n] - tracker.started[n] for n in window]
    start = opens - options.warmup
    scheduled = [
        tracker.confirmed[n] - (start + n / options.tps) if tracker.settled(n) else math.inf
        for n in window
    ]
    gossip: dict[str, float | None] = {}
    for name, after in last.metrics.items():
        before = first.metrics[name]
        received, unique = (
            after[f"tangle_gossip_{key}_total"] - before[f"tangle_gossip_{key}_total"]
            for key in ("received_bytes", "unique_message_bytes")
        )
        gossip[name] = received / unique if unique else None
    elapsed = last.at - first.at
    cpu = {k: (last.cpu[k][0] - v[0]) / elapsed for k, v in first.cpu.items()}
    machine = cpu.pop("machine")
    main = {k: (last.cpu[k][1] - v[1]) / elapsed for k, v in first.cpu.items() if k in rss}
    refused: dict[str, int] = {}
    for status in tracker.status:
        if status not in (0, 201):
            key = "connection" if status < 0 else str(status)
            refused[key] = refused.get(key, 0) + 1
    return RunResult(
        options=options,
        lanes=plan.lanes,
        rounds=plan.rounds,
        generation_s=plan.seconds,
        submitted=len(window),
        submitted_tps=len(window) / (closes - opens),
        refused=refused,
        confirmed=confirmed,
        confirmed_tps=confirmed / span,
        conflicting=sum(tracker.conflicting),
        unconfirmed=sum(1 for n in window if not tracker.settled(n)),
        latency_p50_s=percentile(latencies, 50),
        latency_p99_s=percentile(latencies, 99),
        post_p50_s=percentile(posts, 50),
        post_p99_s=percentile(posts, 99),
        scheduled_p50_s=percentile(scheduled, 50),
        milestones=len(inside),
        gossip=gossip,
        rss_mb=rss,
        cpu_cores=cpu,
        cpu_main_thread_cores=main,
        machine_busy_cores=machine,
        other_processes_cores=max(0.0, machine - sum(cpu.values())),
        probe=probed,
        loadavg_before=0.0,
        profile_top=None,
    )


# -- the command -------------------------------------------------------------------------------


def _human(result: RunResult, say: Callable[[str], None]) -> None:
    o = result.options
    p50, p99 = (
        "never" if v is None else f"{v:.2f} s" for v in (result.latency_p50_s, result.latency_p99_s)
    )
    post50, post99 = (
        "-" if v is None else f"{v:.3f} s" for v in (result.post_p50_s, result.post_p99_s)
    )
    refused = sum(result.refused.values())
    way = "in batches" if o.batch_window else "one POST each"
    say(
        f"offered {o.tps:g}/s ({way}), submitted {result.submitted_tps:.0f}/s ({refused} refused), "
        f"confirmed {result.confirmed_tps:.0f}/s over {o.seconds:g} s ({result.milestones} "
        f"milestones, {result.conflicting} conflicting, {result.unconfirmed} unconfirmed "
        f"{o.drain:g} s after)"
    )
    say(f"confirmation latency p50 {p50}, p99 {p99}; POST round trip p50 {post50}, p99 {post99}")
    scheduled = result.scheduled_p50_s
    say(
        "confirmation latency from when each transfer was due (open loop): p50 "
        + ("never" if scheduled is None else f"{scheduled:.2f} s")
    )
    per_transfer = {
        k: "-" if v is None else f"{v:.0f}" for k, v in result.cpu_us_per_transfer.items()
    }
    for name, rss in result.rss_mb.items():
        gossip = result.gossip.get(name)
        say(
            f"  {name:<12} cpu {result.cpu_cores[name]:.2f} cores "
            f"(event loop {result.cpu_main_thread_cores[name]:.2f}, "
            f"{per_transfer[name]} us per transfer)  rss {rss:.0f} MB  gossip "
            + ("-" if gossip is None else f"{gossip:.2f}")
            + " bytes per unique byte"
        )
    say(
        f"  {'client':<12} cpu {result.cpu_cores['client']:.2f} cores "
        f"({per_transfer['client']} us per transfer; all processes {per_transfer['total']} us); "
        f"the machine was busy {result.machine_busy_cores:.2f} of {os.cpu_count()} cores, "
        f"{result.other_processes_cores:.2f} of them for other processes"
    )
    if result.profile_top:
        for table, label in (("own", "own CPU"), ("cumulative", "cumulative, our code")):
            say(f"profile of {o.profile} ({label}; thread CPU clock, all threads):")
            for row in result.profile_top[table]:
                say(
                    f"  {row['own_s']:8.2f} s own {row['cumulative_s']:8.2f} s cum "
                    f"{row['calls']:>9} calls  {row['function']}"
                )
    say(f"targets {'met' if result.targets_met else 'MISSED'}")


SWEEP_KEYS: Final = (
    "offered_tps",
    "submitted_tps",
    "confirmed_tps",
    "confirmation_latency_p50_s",
    "confirmation_latency_p99_s",
    "latency_from_schedule_p50_s",
    "unconfirmed",
    "cpu_cores",
    "cpu_us_per_transfer",
    "other_processes_cores",
)


def _sweep(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    steps = []
    for tps in (float(t) for t in args.sweep.split(",")):
        say(f"sweep: {tps:g} transfers/s for {args.sweep_seconds:g} s")
        options = dataclasses.replace(
            _options(args, tps, args.sweep_seconds), probe_s=0, profile=None
        )
        step = trio.run(run, options, say)
        _human(step, say)
        doc = step.to_json()
        steps.append({key: doc[key] for key in SWEEP_KEYS})
    # Within the target and keeping up: from when they were due, half confirm within 2 s.
    within = [
        s
        for s in steps
        if s["latency_from_schedule_p50_s"] is not None
        and s["latency_from_schedule_p50_s"] <= TARGET_P50_S
    ]
    best = max(within, key=lambda s: s["offered_tps"], default=None)
    return {
        "sweep": steps,
        "sweep_highest_tps_p50_ok": None if best is None else best["offered_tps"],
        "sweep_highest_tps_p50_ok_confirmed_tps": None if best is None else best["confirmed_tps"],
    }


def _options(args: argparse.Namespace, tps: float, seconds: float) -> Options:
    return Options(
        nodes=args.nodes,
        tps=tps,
        seconds=seconds,
        warmup=args.warmup,
        drain=args.drain,
        in_flight=args.in_flight,
        batch_window=0.0 if args.single else args.batch_window,
        probe_s=args.probe,
        profile=args.profile,
        profile_out=args.profile_out,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--nodes", type=int, default=3, help="nodes beside the coordinator")
    parser.add_argument(
        "--tps", type=float, default=OFFERED_TPS, help="offered transfers per second"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0, help="sending before the window")
    parser.add_argument("--drain", type=float, default=15.0, help="listening after the window")
    parser.add_argument("--in-flight", type=int, default=32, help="most POSTs per node at once")
    parser.add_argument(
        "--batch-window", type=float, default=0.05, help="seconds between a gateway's batches"
    )
    parser.add_argument("--single", action="store_true", help="one POST per transfer")
    parser.add_argument("--probe", type=float, default=2.0, help="client probe seconds (0: none)")
    parser.add_argument("--quick", action="store_true", help="200 tps for 20 s: under a minute")
    parser.add_argument("--profile", metavar="MEMBER", help="run MEMBER under cProfile")
    parser.add_argument("--profile-out", type=Path, help="its pstats file")
    parser.add_argument("--sweep", metavar="TPS,...", help="also run at each of these rates")
    parser.add_argument("--sweep-seconds", type=float, default=12.0, help="window per rate")
    args = parser.parse_args(argv)
    if args.quick:
        args.tps, args.seconds, args.warmup, args.drain, args.probe = 200.0, 20.0, 3.0, 8.0, 1.0
    if not (
        args.nodes >= 1
        and args.tps > 0
        and args.seconds > 0
        and args.in_flight >= 1
        and args.batch_window > 0
    ):
        parser.error("--nodes, --tps, --seconds, --in-flight and --batch-window must be positive")
    # The devnet's idle Numba (OpenMP) workers sleep instead of spinning, as under ./dev.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    say: Callable[[str], None] = (lambda _: None) if args.json else print
    result = trio.run(run, _options(args, args.tps, args.seconds), say)
    _human(result, say)
    doc = {**result.to_json(), "quick": args.quick}
    if args.sweep:
        doc |= _sweep(args, say)
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
