"""Roaming settlement between carriers (issue #12).

```
errors.py     the roaming error tree, rooted in payments' PaymentError
record.py     the canonical UsageRecord, its binary and JSON forms, the IMSI/MSISDN hasher
```
"""

from .record import EventType as EventType
from .record import SubscriberHasher as SubscriberHasher
from .record import UsageRecord as UsageRecord
