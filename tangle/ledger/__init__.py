"""The ledger rules over protocol values: the UTXO state and transaction validation, payment
channel rules, white-flag confirmation of a milestone's cone, the committee key schedule and
milestone verification, and the record of an applied milestone.
"""

from .committee import KeySchedule as KeySchedule
from .committee import verify_milestone as verify_milestone
from .events import TransactionEvent as TransactionEvent
from .ledger import Conflict as Conflict
from .ledger import Genesis as Genesis
from .ledger import Inclusion as Inclusion
from .ledger import LedgerState as LedgerState
from .ledger import validate_transaction as validate_transaction
from .records import MilestoneRecord as MilestoneRecord
from .records import milestone_record as milestone_record
from .white_flag import ConeMessage as ConeMessage
from .white_flag import WhiteFlagResult as WhiteFlagResult
from .white_flag import white_flag as white_flag
