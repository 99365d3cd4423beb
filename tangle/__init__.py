"""The tangle: message format, proof-of-work, the DAG window and tip selection, the UTXO ledger
with white-flag confirmation, milestone verification, storage, and the sans-I/O node core.

The public API is re-exported here; the modules are the detail. Errors are in `tangle.errors`.
`_numba_cache` is imported first: it sets Numba's cache folder before Numba loads.
"""

from ._numba_cache import numba_cache_dir as numba_cache_dir
from .committee import KeySchedule as KeySchedule
from .committee import verify_milestone as verify_milestone
from .core import Accepted as Accepted
from .core import Confirmed as Confirmed
from .core import Event as Event
from .core import MilestoneRejected as MilestoneRejected
from .core import NodeCore as NodeCore
from .core import Parameters as Parameters
from .core import Requested as Requested
from .dag import GENESIS_ID as GENESIS_ID
from .dag import Dag as Dag
from .dag import Score as Score
from .dag import TipRules as TipRules
from .errors import TangleError as TangleError
from .ids import Address as Address
from .ids import MessageId as MessageId
from .ids import MilestoneId as MilestoneId
from .ids import OutputId as OutputId
from .ids import TransactionId as TransactionId
from .ledger import Conflict as Conflict
from .ledger import Genesis as Genesis
from .ledger import Inclusion as Inclusion
from .ledger import LedgerState as LedgerState
from .ledger_node import LedgerNode as LedgerNode
from .message import Message as Message
from .message import Parsed as Parsed
from .message import decode_message as decode_message
from .message import encode_message as encode_message
from .message import prepare as prepare
from .milestone import KeySet as KeySet
from .milestone import KeySetChange as KeySetChange
from .milestone import Milestone as Milestone
from .milestone import MilestoneEssence as MilestoneEssence
from .payload import Payload as Payload
from .payload import TaggedData as TaggedData
from .storage import Storage as Storage
from .tip_selection import TipSelector as TipSelector
from .tip_selection import UniformRandomTips as UniformRandomTips
from .tip_selection import WeightedWalk as WeightedWalk
from .transaction import BasicOutput as BasicOutput
from .transaction import Transaction as Transaction
from .transaction import TransactionEssence as TransactionEssence
