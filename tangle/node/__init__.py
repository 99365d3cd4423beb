"""The node: the sans-I/O core (`NodeCore`: events in, decisions out), the node over storage
(`LedgerNode`), its trio runtime (`Node`) and the node configuration.
"""

from .config import NetworkSpec as NetworkSpec
from .config import NodeConfig as NodeConfig
from .config import load_node_config as load_node_config
from .core import Accepted as Accepted
from .core import Confirmed as Confirmed
from .core import Event as Event
from .core import MilestoneRejected as MilestoneRejected
from .core import NodeCore as NodeCore
from .core import Parameters as Parameters
from .core import Requested as Requested
from .ledger_node import LedgerNode as LedgerNode
from .node import Node as Node
