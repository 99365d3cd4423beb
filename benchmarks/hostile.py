"""A devnet under its normal load and under attack: `python -m benchmarks.hostile [--json]
[--tps 200] [--seconds 60] [--quick]`.

Two runs of `benchmarks.network` (a coordinator and 3 node processes, signed transfers sent at
`--tps` in gateway batches), each on a fresh devnet: one without an attacker, then one with,
for `--seconds` each. The attacker does, against every node at once, for the whole window:

* squatting: a hostile gossip peer (`tests/hostile_peer.py`, the real protocol over loopback)
  asks for every message a node announces and sends a copy of its payload and nonce on a parent
  that does not exist to every node, through gossip and through `POST /api/v1/messages`;
* replays: it keeps what it fetched and sends it again later, after the operator pruned it
  (the run prunes every node to 20 milestones every 10 s, as an operator with a small disk);
* announce floods: random ids at the peer's full allowance, from their own host;
* eclipse: swarms of 40 inbound links from one host, again and again;
* request amplification: REQUESTs for thousands of stored ids per frame;
* a hostile API client: junk on `POST /api/v1/messages/pow` and 300 event streams held open.

Each kind comes from its own loopback address (127.0.0.x) and reconnects as a new node id when
a node drops or bans it. Reported: `confirmed_tps` of both runs and their ratio, per node
`max_rss_mb` and its growth over the window, `milestones_missed` (how far each node is behind
the coordinator after the drain), and the largest value each bounded table's metric reached
(sampled every second). Targets: ratio at least 0.8, RSS growth under 50 MB, no milestone missed.
The last line printed is one JSON object (`--json` prints only that line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import httpx
import trio

from benchmarks import _network_load as load
from benchmarks import network
from tangle.errors import TangleError
from tangle.node.config import parse_network
from tangle.p2p.gossip import MAX_IDS, Announce, MessageFrame
from tangle.protocol.payload import TaggedData, encode_payload
from tests.hostile_peer import HostilePeer, Target, hostile, random_ids, reattach, swarm

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from tanglepay.devnet import Launched

TARGET_RATIO: Final = 0.8
TARGET_RSS_GROWTH_MB: Final = 50.0
PRUNE_KEEP: Final = 20
PRUNE_EVERY_S: Final = 10.0
REPLAY_KEPT: Final = 20_000
TABLES: Final = (
    "tangle_window_messages",
    "tangle_pending_messages",
    "tangle_pending_sources",
    "tangle_missing_messages",
    "tangle_held_milestones",
    "tangle_gossip_links",
    "tangle_gossip_inbound_connections",
    "tangle_gossip_inbound_hosts",
    "tangle_gossip_wanted_ids",
    "tangle_gossip_wanted_announced_ids",
    "tangle_gossip_request_schedule_entries",
    "tangle_gossip_ban_entries",
    "tangle_gossip_closing_reasons",
    "tangle_api_event_streams",
    "tangle_api_pow_in_flight",
)
"""Gauges of the tables an attacker can grow (those a node exports)."""


@dataclass(slots=True)
class Watch:
    """What the sampler saw."""

    rss_first: dict[str, float] = field(default_factory=dict)
    rss_max: dict[str, float] = field(default_factory=dict)
    tables: dict[str, dict[str, float]] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    """What the attacker sent, by kind."""

    def count(self, kind: str, n: int = 1) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + n


def _host(n: int) -> str:
    return f"127.0.0.{n}"


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _sample(client: httpx.AsyncClient, nodes: Sequence[Launched], watch: Watch) -> None:
    while True:
        for node in nodes:
            name = node.member.name
            rss = network.rss_mb(node.process.pid)
            watch.rss_first.setdefault(name, rss)
            watch.rss_max[name] = max(rss, watch.rss_max.get(name, 0.0))
            with contextlib.suppress(httpx.HTTPError):
                metrics = await network.scrape(client, node.member.api)
                seen = watch.tables.setdefault(name, {})
                for metric in TABLES:
                    if metric in metrics:
                        seen[metric] = max(metrics[metric], seen.get(metric, 0.0))
        await trio.sleep(1.0)


async def _prune(client: httpx.AsyncClient, nodes: Sequence[Launched]) -> None:
    """The operator: prune every node to `PRUNE_KEEP` milestones every `PRUNE_EVERY_S`."""
    while True:
        await trio.sleep(PRUNE_EVERY_S)
        for node in nodes:
            with contextlib.suppress(httpx.HTTPError):
                await client.post(
                    f"{node.member.api}/api/v1/admin/prune",
                    json={"keep_milestones": PRUNE_KEEP},
                    headers={"authorization": f"Bearer {node.member.admin_token}"},
                )


async def _persist(attack: Callable[[], Any]) -> None:
    """Run `attack` again whenever the node drops or refuses it."""
    while True:
        with contextlib.suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            await attack()
        await trio.sleep(0.5)


class Squatter:
    """Fetches what the nodes announce, squats and later replays it."""

    def __init__(self, targets: Sequence[Target], watch: Watch) -> None:
        self.targets = targets
        self.watch = watch
        self.links: dict[int, HostilePeer] = {}
        self.sending: dict[int, trio.Lock] = {}
        """One sender at a time per link."""
        self.kept: list[bytes] = []
        self.copies: trio.MemorySendChannel[bytes]
        self.copies, self._copies = trio.open_memory_channel[bytes](10_000)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for k in range(len(self.targets)):
                nursery.start_soon(_persist, lambda k=k: self._link(k))
            nursery.start_soon(self._squat)
            nursery.start_soon(self._replay)

    async def _link(self, k: int) -> None:
        async with hostile(self.targets[k], local_host=_host(20)) as bad:
            self.links[k] = bad
            self.sending[id(bad)] = lock = trio.Lock()
            seen = 0
            while not bad.closed.is_set():
                frames, bad.frames = bad.frames, []
                wanted = list(
                    dict.fromkeys(i for f in frames if isinstance(f, Announce) for i in f.ids)
                )
                if wanted:
                    async with lock:
                        await bad.request(wanted)
                for frame in frames:
                    if isinstance(frame, MessageFrame):
                        seen += 1
                        self.kept.append(frame.raw)
                        with contextlib.suppress(trio.WouldBlock):
                            self.copies.send_nowait(frame.raw)
                del self.kept[:-REPLAY_KEPT]
                await trio.sleep(0.05)

    async def _squat(self) -> None:
        async for raw in self._copies:
            try:
                copy = reattach(raw, random_ids(1))
            except TangleError:  # a milestone names its parents: it cannot be copied
                continue
            for link in list(self.links.values()):
                async with self.sending[id(link)]:
                    await link.message(copy)
            self.watch.count("squatted_copies")

    async def _replay(self) -> None:
        while True:
            await trio.sleep(PRUNE_EVERY_S + 2)
            old = self.kept[: len(self.kept) // 2]
            for raw in old:
                for link in list(self.links.values()):
                    async with self.sending[id(link)]:
                        await link.message(raw)
            self.watch.count("replayed", len(old))


async def _flood(target: Target, watch: Watch) -> None:
    async with hostile(target, local_host=_host(21)) as bad:
        while not bad.closed.is_set():
            await bad.announce(random_ids(MAX_IDS))
            watch.count("announced_ids", MAX_IDS)
            await trio.sleep(0.01)


async def _eclipse(target: Target, watch: Watch) -> None:
    async with swarm(target, 40, local_host=_host(22)) as links:
        watch.count("links_opened", len(links))
        await trio.sleep(2.0)


async def _amplify(target: Target, squatter: Squatter, watch: Watch) -> None:
    async with hostile(target, local_host=_host(23)) as bad:
        while not bad.closed.is_set():
            kept = squatter.kept[-MAX_IDS:]
            if kept:
                await bad.request(dict.fromkeys(load.message_id(raw) for raw in kept))
                watch.count("requested_ids", len(kept))
            bad.frames.clear()
            await trio.sleep(0.05)


async def _api(nodes: Sequence[Launched], squatter: Squatter, watch: Watch) -> None:
    """A hostile HTTP client: junk proof-of-work requests, copies through the API, and event
    streams held open."""
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with (
        httpx.AsyncClient(timeout=5, limits=limits) as client,
        trio.open_nursery() as nursery,
    ):

        async def hold(api: str) -> None:
            with contextlib.suppress(httpx.HTTPError):
                async with client.stream("GET", f"{api}/api/v1/events") as response:
                    watch.count(f"event_streams_{response.status_code}")
                    async for _ in response.aiter_bytes():
                        pass

        for n in range(300):
            nursery.start_soon(hold, nodes[n % len(nodes)].member.api)
        while True:
            for node in nodes:
                api = node.member.api
                with contextlib.suppress(httpx.HTTPError):
                    junk = {
                        "payload": encode_payload(TaggedData(tag=b"", data=os.urandom(4000))).hex()
                    }
                    response = await client.post(f"{api}/api/v1/messages/pow", json=junk)
                    watch.count(f"pow_{response.status_code}")
                    if squatter.kept:
                        try:
                            raw = reattach(squatter.kept[-1], random_ids(1))
                        except TangleError:
                            continue
                        response = await client.post(
                            f"{api}/api/v1/messages",
                            content=raw,
                            headers={"content-type": "application/octet-stream"},
                        )
                        watch.count(f"api_copy_{response.status_code}")
            await trio.sleep(0.02)


def attacker(watch: Watch) -> Callable[[Sequence[Launched], Path], Any]:
    async def attack(launched: Sequence[Launched], directory: Path) -> None:
        spec = parse_network(json.loads((directory / "network.json").read_text()))
        nodes = [m for m in launched if m.member.name != "coordinator"]
        targets = [Target.of_spec(spec, _address(m.member.p2p)) for m in nodes]
        squatter = Squatter(targets, watch)
        async with httpx.AsyncClient(timeout=10) as control, trio.open_nursery() as nursery:
            nursery.start_soon(_sample, control, nodes, watch)
            nursery.start_soon(_prune, control, nodes)
            nursery.start_soon(squatter.run)
            for target in targets:
                nursery.start_soon(_persist, lambda t=target: _flood(t, watch))
                nursery.start_soon(_persist, lambda t=target: _eclipse(t, watch))
                nursery.start_soon(_persist, lambda t=target: _amplify(t, squatter, watch))
            nursery.start_soon(_api, nodes, squatter, watch)

    return attack


async def _behind(launched: Sequence[Launched]) -> dict[str, int]:
    """Milestones each node is behind the coordinator's index (read first), after giving them 5 s
    to receive the last ones."""

    async def index(client: httpx.AsyncClient, m: Launched) -> int:
        info = (await client.get(f"{m.member.api}/api/v1/info")).json()
        return int(info["confirmed_milestone_index"])

    async with httpx.AsyncClient(timeout=10) as client:
        coordinator, *nodes = sorted(launched, key=lambda m: m.member.name != "coordinator")
        target = await index(client, coordinator)
        behind = {m.member.name: target for m in nodes}
        with trio.move_on_after(5):
            while any(behind.values()):
                for m in nodes:
                    behind[m.member.name] = max(0, target - await index(client, m))
                await trio.sleep(0.2)
        return behind


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--tps", type=float, default=200.0, help="offered transfers per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="window of each run")
    parser.add_argument("--quick", action="store_true", help="15 s windows")
    args = parser.parse_args(argv)
    seconds = 15.0 if args.quick else args.seconds
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    say: Callable[[str], None] = (lambda _: None) if args.json else print
    options = network.Options(
        nodes=3,
        tps=args.tps,
        seconds=seconds,
        warmup=3.0,
        drain=10.0,
        in_flight=32,
        batch_window=0.05,
        probe_s=0.0,
    )
    say(f"baseline: {args.tps:g} transfers/s for {seconds:g} s, no attacker")
    calm = trio.run(network.run, options, say)
    watch = Watch()
    missed: dict[str, int] = {}

    async def attacked() -> network.RunResult:
        attack = attacker(watch)

        async def attack_then_measure(launched: Sequence[Launched], directory: Path) -> None:
            try:
                await attack(launched, directory)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(15):
                    missed.update(await _behind(launched))

        return await network.run(options, say, attack_then_measure)

    say("attacked: the same, with a hostile peer and a hostile API client")
    hit = trio.run(attacked)
    ratio = hit.confirmed_tps / calm.confirmed_tps if calm.confirmed_tps else 0.0
    growth = {name: watch.rss_max[name] - watch.rss_first[name] for name in watch.rss_max}
    doc: dict[str, Any] = {
        "benchmark": "hostile",
        "offered_tps": args.tps,
        "seconds": seconds,
        "confirmed_tps_without_attacker": round(calm.confirmed_tps, 1),
        "confirmed_tps": round(hit.confirmed_tps, 1),
        "confirmed_tps_ratio": round(ratio, 3),
        "max_rss_mb": {k: round(v, 1) for k, v in watch.rss_max.items()},
        "rss_growth_mb": {k: round(v, 1) for k, v in growth.items()},
        "milestones_missed": missed,
        "largest_tables": watch.tables,
        "attack_sent": watch.sent,
        "targets": {
            "confirmed_tps_ratio": TARGET_RATIO,
            "rss_growth_mb": TARGET_RSS_GROWTH_MB,
            "milestones_missed": 0,
        },
    }
    doc["targets_met"] = (
        ratio >= TARGET_RATIO
        and all(g < TARGET_RSS_GROWTH_MB for g in growth.values())
        and bool(missed)
        and all(m == 0 for m in missed.values())
    )
    say(
        f"confirmed {hit.confirmed_tps:.0f}/s under attack vs {calm.confirmed_tps:.0f}/s "
        f"without (ratio {ratio:.2f}); milestones missed {missed}; RSS growth "
        + ", ".join(f"{k} {v:.0f} MB" for k, v in growth.items())
    )
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
