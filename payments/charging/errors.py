"""The error tree of `payments.charging`, rooted in the package's `PaymentError`.

```
PaymentError
└── SessionError                    a charging session event or command the CSMS must refuse
    ├── MalformedEventError         a field out of range (ids, seqNo, register, timestamps)
    ├── EventConflictError          a second Started/Ended with another seqNo, or a meter
    │                               register below the session's start
    ├── SessionLimitError           too many sessions for one charge point or in total
    ├── UnknownSessionError         no such session
    └── StationAuthError            unknown station or wrong password
```
"""

from __future__ import annotations

from ..errors import PaymentError


class SessionError(PaymentError):
    """A charging session event or command the CSMS refuses; nothing was applied."""


class MalformedEventError(SessionError):
    """A session event with a field out of range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EventConflictError(SessionError):
    """An event that contradicts what the session already holds."""

    def __init__(self, key: tuple[str, str], reason: str) -> None:
        super().__init__(f"session {key[0]}/{key[1]}: {reason}")
        self.key = key
        self.reason = reason


class SessionLimitError(SessionError):
    """A new session beyond the bound per charge point or in total."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"more than {limit} open sessions ({scope})")
        self.scope = scope
        self.limit = limit


class UnknownSessionError(SessionError):
    """No session with this key."""

    def __init__(self, key: tuple[str, str]) -> None:
        super().__init__(f"no session {key[0]}/{key[1]}")
        self.key = key


class StationAuthError(SessionError):
    """A charge point that is not registered, or that gave the wrong password."""

    def __init__(self, station: str) -> None:
        super().__init__(f"station {station!r} refused")
        self.station = station
