"""Peer-to-peer: gossip frames and the per-peer protocol state machine (sans-I/O), peer
links over trio streams, relay, admission, peering and milestone sync.
"""

from .gossip import LocalNode as LocalNode
from .gossip import NodeId as NodeId
from .gossip import PeerProtocol as PeerProtocol
from .peering import PeerAddress as PeerAddress
from .peering import Peering as Peering
from .peering import PeeringConfig as PeeringConfig
