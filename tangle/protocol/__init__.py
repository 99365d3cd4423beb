"""The wire protocol: ids, the canonical codec, signatures, messages and their payloads (tagged
data, transactions with basic and channel outputs, milestones, device registry records), the
Merkle root and its audit paths, bech32m addresses and the proof-of-work rule. Pure values and
checks: imports only `tangle.errors`, PyNaCl and the standard library (no Numba, no sqlite, no
trio).
"""

from .bech32 import Network as Network
from .bech32 import decode_address as decode_address
from .bech32 import encode_address as encode_address
from .bech32 import parse_address as parse_address
from .device import DeviceId as DeviceId
from .device import DeviceRecord as DeviceRecord
from .ids import Address as Address
from .ids import MessageId as MessageId
from .ids import MilestoneId as MilestoneId
from .ids import OutputId as OutputId
from .ids import TransactionId as TransactionId
from .merkle import MerklePath as MerklePath
from .message import Message as Message
from .message import Parsed as Parsed
from .message import check_message as check_message
from .message import decode_message as decode_message
from .message import encode_message as encode_message
from .message import prepare as prepare
from .milestone import KeySet as KeySet
from .milestone import KeySetChange as KeySetChange
from .milestone import Milestone as Milestone
from .milestone import MilestoneEssence as MilestoneEssence
from .payload import Payload as Payload
from .payload import TaggedData as TaggedData
from .pow import target as target
from .pow import verify_work as verify_work
from .pow import work_units as work_units
from .pow import work_value as work_value
from .transaction import BasicOutput as BasicOutput
from .transaction import Transaction as Transaction
from .transaction import TransactionEssence as TransactionEssence
