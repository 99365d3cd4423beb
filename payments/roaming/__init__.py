"""Roaming settlement between carriers (issue #12); the public API is re-exported here.

```
errors.py        the roaming error tree, rooted in payments' PaymentError
record.py        the canonical UsageRecord (binary and JSON forms)
_record_bulk.py  many records at once: a batch's encodings decoded, a file's columns built
subscriber.py    the IMSI/MSISDN hasher (keyed BLAKE2b per agreement)
ber.py           a strict BER reader: tags, definite and indefinite lengths, offsets, bounds
ber_writer.py    its mirror: a strict definite-length BER writer
fields.py        SEQUENCEs by tag number and the formats' time stamps, over the BER tree
partner_file.py  what importers return: file metadata with declared audit totals, records,
                 the import policy (hasher, IMSI ranges), idempotent import keys and ledger
tap.py           TAP 3.12 transfer batches and notifications (tap_events.py: the call events)
tap_writer.py    TAP 3.12 transfer batches written from call events (what a VPMN hands over)
nrtrde.py        NRTRDE 2.1
rap.py           RAP 1.5 return batches and acknowledgements, classified
line_formats.py  JSON Lines and CSV from newer systems
fraud.py         sans-I/O fraud rules evaluated as records arrive, with bounded tables
```
"""

from .line_formats import LineFileHeader as LineFileHeader
from .line_formats import read_csv as read_csv
from .line_formats import read_jsonl as read_jsonl
from .nrtrde import read_nrtrde as read_nrtrde
from .partner_file import FileKind as FileKind
from .partner_file import ImportedFile as ImportedFile
from .partner_file import ImportKey as ImportKey
from .partner_file import ImportLedger as ImportLedger
from .partner_file import ImportOutcome as ImportOutcome
from .partner_file import ImportPolicy as ImportPolicy
from .partner_file import PartnerFile as PartnerFile
from .rap import RapFile as RapFile
from .rap import RapKind as RapKind
from .rap import read_rap as read_rap
from .record import EventType as EventType
from .record import UsageRecord as UsageRecord
from .subscriber import SubscriberHasher as SubscriberHasher
from .tap import read_tap as read_tap
from .tap_writer import TapFileSpec as TapFileSpec
from .tap_writer import write_tap as write_tap
