"""The explorer in headless Chromium while a devnet runs the network benchmark's load:
`python -m benchmarks.explorer [--json] [--quick] [--nodes 3] [--tps 1100] [--seconds 30]
[--screenshot PNG]`.

The load is `benchmarks.network`'s, run as it runs it (a temporary devnet, signed transfers sent
at `--tps` round-robin over the nodes); beside it, from when the sending starts, a headless
Chromium (`benchmarks._browser`: Debian's chromium and chromedriver) opens the dashboard of the
first node and stays on its live view. After `--warmup` seconds the page's own figures are read
every second until the measurement window closes:

* `first_paint_ms`: the page's first contentful paint (Performance API, `paint` entries), from
  navigation start, loaded while the devnet is busy; `first_dag_frame_ms`: when the live view
  first drew messages;
* `frame_time_p95_ms`: the main-thread work of a live-view frame (`performance.now()` around the
  drawing in each `requestAnimationFrame` callback), 95th percentile; the graph is drawn in
  full twice a second and on each milestone into a layer the other frames scroll;
  `graph_render_p95_ms` is the cost of those full drawings alone (up to 5,000 vertices and
  their edges);
  `frame_interval_p50_ms` / `_p95_ms`: the `requestAnimationFrame` deltas; their median is the
  display's frame budget (the ceiling, measured in the same run: `frame_budget_ms`), and a p95
  interval above it counts frames the page dropped; `long_tasks`: tasks over 50 ms
  (`PerformanceObserver`, `longtask`);
* `event_to_paint_p95_ms`: for every milestone event, from `applied_at_ms` (the node's wall
  clock when it applied the milestone, carried in the event, so a little before the event
  leaves the node) to the page drawing it (`Date.now()` after the frame), one machine's clock.

Targets: p95 frame work under 16 ms, event to paint under 1 s, first paint under 500 ms. The
load's own figures (`confirmed_tps` ...) come along under `load`. `--quick`: one node, 100
transfers/s, an 8 s window. The last line printed is one JSON object (`--json` prints only it).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

from benchmarks import network
from benchmarks._browser import chromium, wait_for
from benchmarks.network import percentile

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tanglepay.devnet import Launched

TARGET_FRAME_MS: Final = 16.0
TARGET_EVENT_TO_PAINT_MS: Final = 1000.0
TARGET_FIRST_PAINT_MS: Final = 500.0
TAKE: Final = """
const m = window.__explorer.metrics;
const out = {frames: m.frames, works: m.works, renders: m.renders, paints: m.eventToPaint,
             long: m.longTasks, vertices: window.__explorer.store.vertices.size};
m.frames = []; m.works = []; m.renders = []; m.eventToPaint = []; m.longTasks = 0;
return out;
"""
FIRST_PAINT: Final = """
const fcp = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
return fcp ? fcp.startTime : null;
"""


@dataclass(slots=True)
class PageFigures:
    """What the page measured."""

    first_paint_ms: float | None = None
    first_dag_frame_ms: float | None = None
    frames: list[float] = field(default_factory=list)
    works: list[float] = field(default_factory=list)
    renders: list[float] = field(default_factory=list)
    paints: list[float] = field(default_factory=list)
    long_tasks: int = 0
    vertices: int = 0

    def take(self, chunk: dict[str, Any], counted: bool) -> None:
        if counted:
            self.frames += chunk["frames"]
            self.works += chunk["works"]
            self.renders += chunk["renders"]
            self.paints += chunk["paints"]
            self.long_tasks += int(chunk["long"])
        self.vertices = max(self.vertices, int(chunk["vertices"]))


async def watch_page(
    figures: PageFigures,
    warmup_s: float,
    screenshot: Path | None,
    launched: Sequence[Launched],
    directory: Path,
) -> None:
    """Open the first node's dashboard and read the page's figures every second, counting
    them after `warmup_s`, until cancelled (`benchmarks.network.run`'s `beside`); then save a
    screenshot of the page to `screenshot`, if given."""
    api = next(m.member.api for m in launched if m.member.name != "coordinator")
    driver = await trio.to_thread.run_sync(chromium)
    try:
        await trio.to_thread.run_sync(driver.get, f"{api}/")
        await trio.to_thread.run_sync(wait_for, driver, "window.__explorer.ready", "the page")
        await trio.to_thread.run_sync(
            wait_for, driver, "__explorer.metrics.firstDagFrameMs", "a frame with messages"
        )
        figures.first_paint_ms = await trio.to_thread.run_sync(driver.execute_script, FIRST_PAINT)
        figures.first_dag_frame_ms = await trio.to_thread.run_sync(
            driver.execute_script, "return __explorer.metrics.firstDagFrameMs"
        )
        counting_from = trio.current_time() + warmup_s
        while True:
            await trio.sleep(1.0)
            chunk = await trio.to_thread.run_sync(driver.execute_script, TAKE)
            figures.take(chunk, trio.current_time() > counting_from)
    finally:
        with trio.CancelScope(shield=True):
            if screenshot is not None:
                await trio.to_thread.run_sync(driver.save_screenshot, str(screenshot))
            await trio.to_thread.run_sync(driver.quit)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def report(figures: PageFigures, load: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The benchmark's JSON object."""
    frame_p95 = percentile(figures.works, 95)
    budget = percentile(figures.frames, 50)
    paint_p95 = percentile(figures.paints, 95)
    first = figures.first_paint_ms
    doc = {
        "first_paint_ms": _ms(first),
        "first_dag_frame_ms": _ms(figures.first_dag_frame_ms),
        "frame_time_p50_ms": _ms(percentile(figures.works, 50)),
        "frame_time_p95_ms": _ms(frame_p95),
        "graph_render_p50_ms": _ms(percentile(figures.renders, 50)),
        "graph_render_p95_ms": _ms(percentile(figures.renders, 95)),
        "graph_renders": len(figures.renders),
        "frame_interval_p50_ms": _ms(budget),
        "frame_interval_p95_ms": _ms(percentile(figures.frames, 95)),
        "frames": len(figures.frames),
        "long_tasks": figures.long_tasks,
        "event_to_paint_p50_ms": _ms(percentile(figures.paints, 50)),
        "event_to_paint_p95_ms": _ms(paint_p95),
        "events_painted": len(figures.paints),
        "vertices_held_max": figures.vertices,
        "frame_budget_ms": _ms(budget),
        "ratios": {
            "frame_time_p95_over_budget": None
            if frame_p95 is None or not budget
            else round(frame_p95 / budget, 3),
            "frame_time_p95_over_target": None
            if frame_p95 is None
            else round(frame_p95 / TARGET_FRAME_MS, 3),
            "event_to_paint_p95_over_target": None
            if paint_p95 is None
            else round(paint_p95 / TARGET_EVENT_TO_PAINT_MS, 3),
            "first_paint_over_target": None
            if first is None
            else round(first / TARGET_FIRST_PAINT_MS, 3),
        },
        "targets": {
            "frame_time_p95_ms": TARGET_FRAME_MS,
            "event_to_paint_p95_ms": TARGET_EVENT_TO_PAINT_MS,
            "first_paint_ms": TARGET_FIRST_PAINT_MS,
        },
        "targets_met": frame_p95 is not None
        and frame_p95 <= TARGET_FRAME_MS
        and paint_p95 is not None
        and paint_p95 <= TARGET_EVENT_TO_PAINT_MS
        and first is not None
        and first <= TARGET_FIRST_PAINT_MS,
        "load": {
            k: load[k]
            for k in ("offered_tps", "confirmed_tps", "confirmation_latency_p50_s", "milestones")
            if k in load
        },
        "quick": quick,
    }
    return doc


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--quick", action="store_true", help="1 node, 100 tps, an 8 s window")
    parser.add_argument("--nodes", type=int, default=3, help="nodes beside the coordinator")
    parser.add_argument("--tps", type=float, default=network.OFFERED_TPS, help="offered load")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=5.0, help="load before the window")
    parser.add_argument("--screenshot", type=Path, help="save the page here (PNG) at the end")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.tps, args.seconds, args.warmup = 1, 100.0, 8.0, 2.0
    if not (args.nodes >= 1 and args.tps > 0 and args.seconds > 0 and args.warmup >= 0):
        parser.error("--nodes, --tps and --seconds must be positive")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    say: Callable[[str], None] = (lambda _: None) if args.json else print
    options = network.Options(
        nodes=args.nodes,
        tps=args.tps,
        seconds=args.seconds,
        warmup=args.warmup,
        drain=3.0,
        in_flight=32,
        batch_window=0.05,
        probe_s=0.0,
    )
    figures = PageFigures()
    watch = partial(watch_page, figures, args.warmup, args.screenshot)
    result = trio.run(partial(network.run, beside=watch), options, say)
    doc = report(figures, result.to_json(), args.quick)
    say(
        f"explorer: first paint {doc['first_paint_ms']} ms, frame work p95 "
        f"{doc['frame_time_p95_ms']} ms (budget {doc['frame_budget_ms']} ms), event to paint "
        f"p95 {doc['event_to_paint_p95_ms']} ms over {doc['events_painted']} milestones, at "
        f"{doc['load'].get('confirmed_tps')} confirmed transfers/s"
    )
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
