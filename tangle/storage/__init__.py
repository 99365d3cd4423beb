"""Durable storage on embedded sqlite (messages, metadata, milestones, the ledger) and
snapshots of the confirmed ledger.
"""

from .snapshot import Snapshot as Snapshot
from .snapshot import create_from_snapshot as create_from_snapshot
from .snapshot import read_snapshot as read_snapshot
from .snapshot import take_snapshot as take_snapshot
from .snapshot import write_snapshot as write_snapshot
from .storage import MessageMetadata as MessageMetadata
from .storage import Storage as Storage
from .storage import StoredOutput as StoredOutput
