"""The peering configuration, and what the peering reports: `PeerInfo`, `PeeringCounters`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError

from ._peer_link import PeerAddress
from .gossip import MAX_MILESTONE_WINDOW, Limits, Traffic

if TYPE_CHECKING:
    from .gossip import NodeId

_MAY_BE_ZERO: Final = frozenset({"request_delay_s", "sync_grace_s"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PeeringConfig:
    """How a node talks to its peers."""

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 0
    """Port to listen on (0: any free port)."""
    peers: tuple[tuple[str, int], ...] = ()
    """Static peers (host, port) to dial and keep dialing."""
    max_peers: int = 32
    """Most connected peers."""
    max_inbound: int = 24
    """Most peers that dialed in: the other `max_peers - max_inbound` slots are kept for the
    peers this node dials (static or added), and a dialed peer that finds every slot taken
    replaces the newest inbound one."""
    max_inbound_per_host: int = 8
    """Most connections from one IP address (one /64 for IPv6), handshaken or not."""
    limits: Limits = field(default_factory=Limits)
    """Per-peer rate limits and deadlines."""
    heartbeat_interval_s: float = 5.0
    """Time between heartbeats (keep well below `limits.idle_timeout_s`)."""
    outbox_frames: int = 1024
    """Frames queued per peer before relays to it are dropped."""
    serve_queue: int = 64
    """Requests queued per peer before more are dropped."""
    write_timeout_s: float = 20.0
    """Longest one write to a peer may take."""
    slow_peer_timeout_s: float = 10.0
    """Longest a peer's outbox may stay full before it is dropped as too slow."""
    inbound_queue: int = 512
    """Messages from all peers waiting for the node before readers stop reading."""
    max_batch: int = 256
    """Most messages per `Node.submit_many`."""
    batch_window_s: float = 0.005
    """Longest a batch waits to fill."""
    announce_interval_s: float = 0.005
    """Announces are batched over this long."""
    request_delay_s: float = 0.05
    """Wait before requesting an announced id (its push is usually on its way)."""
    request_timeout_s: float = 2.0
    """Wait for a requested message before asking another peer."""
    request_attempts: int = 8
    """Requests for one id before it is given up."""
    max_wanted_per_peer: int = 2048
    """Most ids wanted on one peer's announces alone (more are not requested)."""
    max_wanted_announced: int = 16_384
    """Most ids wanted on announces alone, from all peers."""
    serve_bytes_per_s: float = 8 * 1024 * 1024
    """Bytes of messages served to one peer per second, sustained; requests beyond the budget
    are answered in part or not at all (the peer asks again or elsewhere)."""
    serve_burst_bytes: float = 16 * 1024 * 1024
    """Bytes above the sustained serving rate one peer may be sent at once."""
    retry_backoff_s: float = 1.0
    """First pause once every peer was asked for an id; doubles each round."""
    retry_backoff_max_s: float = 30.0
    """Longest such pause."""
    solidify_interval_s: float = 1.0
    """How often missing parents are looked up again."""
    sync_window: int = 64
    """Milestones per MILESTONE_REQUEST."""
    sync_windows_in_flight: int = 4
    """Milestone windows outstanding at once."""
    sync_timeout_s: float = 5.0
    """Wait for a milestone window before asking another peer."""
    sync_grace_s: float = 1.0
    """A peer's newest milestone is requested only if not pushed to us within this time."""
    reconnect_min_s: float = 0.5
    """First pause before redialing a static peer."""
    reconnect_max_s: float = 30.0
    """Longest pause before redialing."""
    ban_s: float = 600.0
    """How long a misbehaving peer stays banned: by node id, and by IP address (/64 for IPv6)
    for connections in, by the dialed address for connections out."""
    known_recent: int = 65_536
    """Message ids remembered as received or sent (duplicate suppression)."""

    def __post_init__(self) -> None:
        PeerAddress(self.host, self.port)
        for host, port in self.peers:
            PeerAddress(host, port)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and f.name != "port":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidFieldError(f"PeeringConfig.{f.name}", "must be an integer >= 1")
            elif f.type == "float":
                least_ok = 0.0 if f.name in _MAY_BE_ZERO else 1e-9
                if not isinstance(value, int | float) or not value >= least_ok:
                    raise InvalidFieldError(f"PeeringConfig.{f.name}", "must be positive")
        if self.max_inbound > self.max_peers:
            raise InvalidFieldError("PeeringConfig.max_inbound", "above max_peers")
        if self.sync_window > MAX_MILESTONE_WINDOW:
            raise InvalidFieldError("PeeringConfig.sync_window", f"above {MAX_MILESTONE_WINDOW}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerInfo:
    """One peer as the administration sees it; times are `trio.current_time()` seconds."""

    node_id: NodeId | None
    """Its node id (None until a handshake with it completed)."""
    address: str
    """`host:port` where it listens (where it connected from, if it does not listen)."""
    connected: bool
    """Whether a connection with it is up."""
    outbound: bool
    """True for peers this node dials (static or added), False for peers that dialed in."""
    since: float | None
    """When the current connection's handshake completed."""
    confirmed_index: int | None
    """Its confirmed milestone index, from its last handshake or heartbeat."""
    bytes_in: int
    """Bytes received on the current connection."""
    bytes_out: int
    """Bytes sent on the current connection."""
    messages_in: int
    """MESSAGE frames received on the current connection."""
    unique_message_bytes_in: int
    """Bytes of the messages received on it that the node accepted (new to it)."""
    bytes_in_by_type: dict[str, int]
    """`bytes_in` by frame type name (HANDSHAKE, MESSAGE, ANNOUNCE, ...)."""
    bytes_out_by_type: dict[str, int]
    """`bytes_out` by frame type name."""
    banned_until: float | None
    """While banned, until when."""
    last_error: str | None
    """Why the last connection with it was closed by this node."""


@dataclass(slots=True)
class PeeringCounters:
    """Monotonic counters over all peers, past and present."""

    traffic: Traffic = field(default_factory=Traffic)
    """Frames and bytes by type, both ways."""
    messages_received: int = 0
    """MESSAGE frames received."""
    messages_duplicate: int = 0
    """... of which for ids received before (not submitted)."""
    messages_accepted: int = 0
    """... accepted by the node."""
    unique_message_bytes: int = 0
    """Bytes of the messages received and accepted by the node."""
    refused_benign: int = 0
    """Refused as duplicate or stale (nobody's fault)."""
    refused_for_cause: int = 0
    """Refused for cause: the sender was banned."""
    refused_other: int = 0
    """Refused for another reason."""
    published: int = 0
    """Messages originated here and pushed."""
    ids_requested: int = 0
    """Ids asked of peers."""
    milestones_requested: int = 0
    """Milestone indexes asked of peers."""
    messages_served: int = 0
    """Messages sent in answer to requests."""
    messages_not_served: int = 0
    """Messages asked for and held but not sent: over the peer's serving budget, or its
    outbox full."""
    connections: int = 0
    """Connections opened (both directions)."""
    handshakes: int = 0
    """Connections that completed a handshake."""
    bans: int = 0
    """Peers banned."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Connections this node closed, by the name of the reason's error class."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PeeringSizes:
    """The sizes, at one moment, of the tables peers can make grow (each one bounded)."""

    links: int
    """Handshaken connections (at most `max_peers`)."""
    inbound_links: int
    """... of which dialed in (at most `max_inbound`)."""
    inbound_connections: int
    """Connections in, handshaken or not (at most twice `max_inbound`)."""
    inbound_hosts: int
    """Hosts (IPv4 addresses, IPv6 /64s) they come from."""
    wanted: int
    """Message ids wanted from peers."""
    wanted_announced: int
    """... on announces alone (at most `max_wanted_announced`)."""
    wanted_by_one_peer: int
    """... the most on one connected peer's announces (at most `max_wanted_per_peer`)."""
    request_schedule: int
    """Entries in the request deadline heap (at most about twice `wanted`)."""
    bans: int
    """Ban entries kept (at most 4096)."""
    errors: int
    """Closing reasons kept (at most 4096)."""
