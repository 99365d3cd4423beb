"""Who may connect: peer slots kept for the peers this node dials, connections per host, and
bans (the rules are in `peering.py`).

A host is an IPv4 address or an IPv6 /64 (`host_key`): one machine can choose any source port,
any node id and, with IPv6, any address of its /64, so connections in are counted and banned
by it. Connections out are banned by the address dialed instead: a host ban must not stop this
node dialing an honest static peer that shares the host (loopback, NAT) with an attacker.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from tangle.errors import TooManyPeersError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from ._peer_link import Link, PeerAddress
    from ._peering_config import PeeringConfig
    from .gossip import NodeId

MAX_REMEMBERED: Final = 4096
"""Most closing reasons, addresses and bans kept about peers."""
K = TypeVar("K")
V = TypeVar("V")


def remember(table: dict[K, V], key: K, value: V) -> None:
    """Set `table[key]` as its newest entry, forgetting the oldest beyond `MAX_REMEMBERED`."""
    table.pop(key, None)
    table[key] = value
    while len(table) > MAX_REMEMBERED:
        del table[next(iter(table))]


def host_key(host: str) -> str:
    """The unit connections in are counted and banned by: an IPv4 address (also when mapped
    into IPv6) or an IPv6 /64; a name that is not an address stands for itself."""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def ban_key(link: Link) -> str | PeerAddress:
    """What a ban of `link`'s peer is keyed by besides its node id."""
    return link.source if link.outbound else host_key(link.source.host)


@dataclass(frozen=True, slots=True)
class Ban:
    until: float
    node_id: NodeId | None
    address: PeerAddress
    """Where the banned connection came from or went to."""


class Admission:
    """The slot, per-host and ban rules, and the tables they keep."""

    __slots__ = ("_bans", "_config", "_hosts", "_inbound")

    def __init__(self, config: PeeringConfig) -> None:
        self._config = config
        self._bans: dict[NodeId | str | PeerAddress, Ban] = {}
        self._hosts: dict[str, int] = {}
        self._inbound = 0

    @property
    def inbound_connections(self) -> int:
        """Connections in, with or without a handshake."""
        return self._inbound

    @property
    def hosts(self) -> int:
        """Hosts with connections in."""
        return len(self._hosts)

    @property
    def bans(self) -> int:
        """Ban entries kept (by node id and by host or address; expired ones included)."""
        return len(self._bans)

    def banned(self) -> Iterator[Ban]:
        yield from self._bans.values()

    def ban_of(self, node_id: NodeId | None, key: str | PeerAddress, now: float) -> Ban | None:
        """The ban in force on `node_id` or `key`, if any."""
        for k in (node_id, key):
            ban = self._bans.get(k) if k is not None else None
            if ban is not None and ban.until > now:
                return ban
        return None

    def ban(
        self, node_id: NodeId | None, key: str | PeerAddress, address: PeerAddress, now: float
    ) -> None:
        """Ban `node_id` and `key` (a host key, or the address dialed) for `ban_s`."""
        ban = Ban(until=now + self._config.ban_s, node_id=node_id, address=address)
        remember(self._bans, key, ban)
        if node_id is not None:
            remember(self._bans, node_id, ban)

    def open_inbound(self, host: str) -> str:
        """A connection in from `host` before its handshake: returns its host key to give to
        `close_inbound`; raises `TooManyPeersError` if the host, or connections in, are at
        their limit."""
        config = self._config
        key = host_key(host)
        if self._hosts.get(key, 0) >= config.max_inbound_per_host:
            raise TooManyPeersError(f"{config.max_inbound_per_host} connections from {key}")
        if self._inbound >= 2 * config.max_inbound:  # handshakes pending, at most as many
            raise TooManyPeersError(f"{self._inbound} connections in already")
        self._hosts[key] = self._hosts.get(key, 0) + 1
        self._inbound += 1
        return key

    def close_inbound(self, key: str) -> None:
        self._inbound -= 1
        left = self._hosts[key] - 1
        if left:
            self._hosts[key] = left
        else:
            del self._hosts[key]

    def slot(self, links: Mapping[NodeId, Link], link: Link) -> Link | None:
        """Whether `link` (handshaken, not a duplicate) may take a peer slot: raises
        `TooManyPeersError` if not; returns the inbound link a dialed one replaces, if any."""
        config = self._config
        if len(links) < config.max_peers and link.outbound:
            return None
        inbound = [other for other in links.values() if not other.outbound]
        if not link.outbound:
            if len(links) >= config.max_peers or len(inbound) >= config.max_inbound:
                raise TooManyPeersError(f"{len(inbound)} peers in, {len(links)} in all")
            return None
        if not inbound:
            raise TooManyPeersError(f"{len(links)} peers already")
        return max(inbound, key=lambda other: other.since or 0.0)
