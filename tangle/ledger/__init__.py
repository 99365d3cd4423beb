"""The ledger rules over protocol values: the UTXO state and transaction validation, payment
channel rules, the device registry and its rules, quarantine enforcement, white-flag confirmation
of a milestone's cone, the inclusion root, the committee key schedule and milestone
verification, and the record of an applied milestone.
"""

from .committee import KeySchedule as KeySchedule
from .committee import verify_milestone as verify_milestone
from .events import TransactionEvent as TransactionEvent
from .inclusion import inclusion_path as inclusion_path
from .inclusion import inclusion_root as inclusion_root
from .ledger import Conflict as Conflict
from .ledger import Genesis as Genesis
from .ledger import Inclusion as Inclusion
from .ledger import LedgerState as LedgerState
from .ledger import validate_transaction as validate_transaction
from .records import MilestoneRecord as MilestoneRecord
from .records import milestone_record as milestone_record
from .registry import DeviceEntry as DeviceEntry
from .registry import Registry as Registry
from .registry import registry_path as registry_path
from .registry_rules import RegistryRules as RegistryRules
from .white_flag import ConeMessage as ConeMessage
from .white_flag import WhiteFlagResult as WhiteFlagResult
from .white_flag import white_flag as white_flag
