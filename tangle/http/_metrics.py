"""What the HTTP API observes and exposes at `GET /metrics` (Prometheus text format 0.0.4): the
node's counters and window, the gossip layer's figures, the API's own responses, submissions and
event streams, and the confirmation latency of messages submitted through the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import trio

from tangle.window.tip_pool import Score

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tangle.node.core import NodeCore
    from tangle.node.node import Node, Notice
    from tangle.protocol.ids import MessageId
    from tangle.protocol.message import Parsed

    from ._events import EventHub

LATENCY_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
GOSSIP_HELP: Final = {
    "received_bytes_total": "Bytes received from peers.",
    "sent_bytes_total": "Bytes sent to peers.",
    "unique_message_bytes_total": (
        "Bytes of messages received from peers that were new to this node "
        "(received_bytes_total over this, as rates in PromQL, is the gossip overhead)."
    ),
    "messages_received_total": "Messages received from peers.",
    "messages_duplicate_total": "Messages received from peers that this node already had.",
    "messages_published_total": "Messages this node pushed to its peers.",
    "bans_total": "Peers banned for misbehaving.",
    "links": "Peer connections past their handshake.",
    "inbound_links": "Peer connections past their handshake that the peer dialed.",
    "inbound_connections": "Connections dialed in, handshaken or not.",
    "inbound_hosts": "Hosts (IPv4 addresses, IPv6 /64s) connections come in from.",
    "wanted_ids": "Message ids wanted from peers.",
    "wanted_announced_ids": "Message ids wanted only because a peer announced them.",
    "wanted_by_one_peer_ids": "The most message ids wanted on one peer's announces.",
    "request_schedule_entries": "Entries in the schedule of requests to peers.",
    "ban_entries": "Bans kept, by node id and by host.",
    "closing_reasons": "Reasons kept for closed peer connections.",
}
"""Plain-words HELP of the figures `PeerAdmin.gossip_counters` gives (others get a generic one)."""


class Histogram:
    """A Prometheus histogram: cumulative counts per upper bound, sum and count."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1


class LatencyTracker:
    """Confirmation latency of messages submitted through the API: submit to the notice of the
    milestone that referenced them, on the trio clock. Remembers at most `capacity` unconfirmed
    messages (the oldest are forgotten: lazy ones never confirm)."""

    __slots__ = ("_capacity", "_submitted", "histogram", "resubscribed")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._submitted: dict[MessageId, float] = {}
        self.histogram = Histogram(LATENCY_BUCKETS)
        self.resubscribed = 0

    @property
    def unconfirmed(self) -> int:
        return len(self._submitted)

    def submitted(self, message_id: MessageId, at: float) -> None:
        self._submitted[message_id] = at
        while len(self._submitted) > self._capacity:
            del self._submitted[next(iter(self._submitted))]

    def confirmed(self, notice: Notice) -> None:
        submitted = self._submitted
        if not submitted:
            return
        for message_id in notice.confirmed.result.referenced:
            at = submitted.pop(message_id, None)
            if at is not None:
                self.histogram.observe(max(0.0, notice.applied_at - at))

    async def run(
        self, node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow the node's notices for ever (subscribing again if dropped)."""
        while True:
            with node.subscribe(1024) as notices:
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                async for notice in notices:
                    self.confirmed(notice)
            self.resubscribed += 1
            await trio.lowlevel.checkpoint()


class Telemetry:
    """What one app counts and observes, and its Prometheus exposition."""

    __slots__ = ("hub", "latency", "responses", "submissions")

    def __init__(self, hub: EventHub, latency_tracked: int) -> None:
        self.hub = hub
        self.latency = LatencyTracker(latency_tracked)
        self.submissions = {"accepted": 0, "rejected": 0}
        self.responses: dict[str, int] = {}

    def submitted(self, parsed: Parsed | None) -> None:
        """A message submitted through the API: accepted (`parsed`) or refused (None)."""
        if parsed is None:
            self.submissions["rejected"] += 1
            return
        self.submissions["accepted"] += 1
        self.latency.submitted(parsed.id, trio.current_time())

    def responded(self, status: int | None) -> None:
        key = "disconnected" if status is None else str(status)
        self.responses[key] = self.responses.get(key, 0) + 1

    async def exposition(
        self,
        node: Node,
        *,
        peers: Mapping[str, int | None],
        gossip: Mapping[str, float] | None,
        pow_in_flight: int,
    ) -> str:
        """The text at `GET /metrics`: `peers` as `peer_counts` gives them, `gossip` as
        `PeerAdmin.gossip_counters` does (None without peering)."""
        window = await node.read_core(_window_figures)
        counters = node.counters
        out = _Exposition()
        for name, help_text, value in (
            ("messages_accepted", "Messages this node accepted.", counters.messages_accepted),
            ("messages_rejected", "Messages this node refused.", counters.messages_rejected),
            ("milestones_applied", "Milestones this node applied.", counters.milestones_applied),
            (
                "transactions_included",
                "Transactions that milestones applied to the ledger.",
                counters.transactions_included,
            ),
            (
                "transactions_conflicting",
                "Transactions that milestones referenced but could not apply.",
                counters.transactions_conflicting,
            ),
            (
                "messages_expired",
                "Messages dropped from memory unconfirmed (waited too long, or unconfirmable).",
                counters.messages_expired,
            ),
            (
                "equivocations",
                "Equivocations seen: committee-signed milestones that contradict each other.",
                counters.equivocations,
            ),
            (
                "subscribers_dropped",
                "Notice subscribers (event streams included) dropped for reading too slowly.",
                counters.subscribers_dropped,
            ),
        ):
            out.add(f"tangle_{name}_total", "counter", help_text, [({}, value)])
        for name, help_text, gauge in (
            ("confirmed_milestone_index", "Index of the confirmed milestone.", window["confirmed"]),
            ("latest_milestone_index", "Highest milestone index seen.", window["latest"]),
            ("window_messages", "Messages held in the in-memory window.", window["window"]),
            ("pending_messages", "Messages waiting for their parents.", window["pending"]),
            ("missing_messages", "Parents asked for and not received yet.", window["missing"]),
            (
                "pending_sources",
                "Senders (hosts) with messages waiting for parents.",
                window["pending_sources"],
            ),
            (
                "held_milestones",
                "Milestones held until their index comes up.",
                window["held_milestones"],
            ),
            (
                "alarms",
                "Equivocations kept as evidence; above 0 the node applies no milestone.",
                window["alarms"],
            ),
            ("peers_configured", "Peers this node dials.", peers["peers_configured"]),
            ("peers_connected", "Peers with a connection up.", peers["peers_connected"]),
            ("api_event_streams", "Event streams open now.", self.hub.streams),
            (
                "api_event_queue_depth",
                "Notices waiting to be sent on event streams.",
                self.hub.queued(),
            ),
            ("api_pow_in_flight", "Proofs-of-work running now for clients.", pow_in_flight),
            (
                "api_unconfirmed_submissions",
                "Messages submitted through the API and not confirmed yet.",
                self.latency.unconfirmed,
            ),
        ):
            if gauge is not None:
                out.add(f"tangle_{name}", "gauge", help_text, [({}, gauge)])
        for key, figure in sorted((gossip or {}).items()):
            kind = "counter" if key.endswith("_total") else "gauge"
            about = GOSSIP_HELP.get(key, f"Gossip figure {key!r}.")
            out.add(f"tangle_gossip_{key}", kind, about, [({}, figure)])
        tips = [({"score": s.name.lower()}, window[f"tips_{s.name.lower()}"]) for s in Score]
        out.add("tangle_tips", "gauge", "Tips in the window, by score.", tips)
        submissions = [({"outcome": k}, v) for k, v in self.submissions.items()]
        out.add(
            "tangle_api_messages_submitted_total",
            "counter",
            "Messages submitted through the API, by outcome.",
            submissions,
        )
        responses = [({"status": k}, v) for k, v in sorted(self.responses.items())]
        out.add(
            "tangle_api_responses_total", "counter", "API responses, by HTTP status.", responses
        )
        out.histogram(
            "tangle_api_confirmation_latency_seconds",
            "Seconds from a message's submission through the API to the milestone confirming it.",
            self.latency.histogram,
        )
        return out.text()


def _window_figures(core: NodeCore) -> dict[str, int]:
    dag = core.dag
    return {
        "confirmed": core.confirmed_index,
        "latest": core.latest_index,
        "window": len(dag),
        "pending": dag.pending_count(),
        "missing": len(dag.missing()),
        "pending_sources": dag.pending_sources(),
        "held_milestones": core.held_milestones(),
        "alarms": len(core.alarms),
        **{f"tips_{s.name.lower()}": len(dag.tip_rows(s)) for s in Score},
    }


class _Exposition:
    """Lines of the Prometheus text format 0.0.4."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(
        self, name: str, kind: str, help_text: str, samples: Sequence[tuple[dict[str, str], float]]
    ) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [f"{name}{_labels(labels)} {value}" for labels, value in samples]

    def histogram(self, name: str, help_text: str, h: Histogram) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for bound, count in zip(h.bounds, h.counts, strict=True):
            self.lines.append(f'{name}_bucket{{le="{bound!r}"}} {count}')
        self.lines += [
            f'{name}_bucket{{le="+Inf"}} {h.count}',
            f"{name}_sum {h.total!r}",
            f"{name}_count {h.count}",
        ]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    escaped = (
        (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for k, v in labels.items()
    )
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"
