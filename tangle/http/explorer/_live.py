"""The live part of the event stream the explorer's DAG view reads (`GET /api/v1/events?live=true`):
a `messages` event for each batch of messages the node accepts, as it accepts them.

```
event: messages   data: {"at_ms", "messages": [{"id", "parents", "kind", "index"}],
                         "solid": [ids], "refused": [codes]}
```

`at_ms` is when the node stored the batch (Unix ms), `kind` the payload type (`transaction`,
`tagged_data`, `milestone`, `device_record`), `index` a milestone's index (null otherwise),
`solid` the messages that became solid through the batch, `refused` the error codes of the
batch's refused messages.
These events carry no id: they are not replayed to a client that reconnects (a live view
redraws from what it receives next). A stream whose client reads too slowly is dropped by the
node, as for milestones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tangle.protocol.milestone import Milestone

from .._events import format_event
from .._schema import tangle_error_code
from ._timeline import kind_of

if TYPE_CHECKING:
    from tangle.node.node import Arrival
    from tangle.protocol.message import Parsed

    from ._timeline import Timeline


def _vertex(parsed: Parsed) -> dict[str, Any]:
    payload = parsed.message.payload
    return {
        "id": parsed.id.hex(),
        "parents": [p.hex() for p in parsed.message.parents],
        "kind": kind_of(payload),
        "index": payload.essence.index if isinstance(payload, Milestone) else None,
    }


def arrival_event(arrival: Arrival, timeline: Timeline) -> bytes:
    """One batch of accepted messages as a server-sent `messages` event (encoded once, however
    many live streams send it)."""

    def encode(arrival: Arrival) -> bytes:
        data = {
            "at_ms": timeline.wall_ms(arrival.at),
            "messages": [_vertex(p) for p in arrival.accepted],
            "solid": [m.hex() for m in arrival.solid],
            "refused": [tangle_error_code(e) for _, e in arrival.rejected],
        }
        return format_event("messages", data)

    return timeline.encoded(arrival, encode)
