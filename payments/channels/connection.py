"""A sans-I/O connection of the channel protocol, in the style of h11: bytes in, events out.

```
conn = Connection(Role.PAYEE)
conn.receive_data(data)            # b"" means the peer closed its end
while not isinstance(event := conn.next_event(), NeedData | Closed):
    ...                            # Hello, Pay, Ack, Reject, Propose, Countersign
transport.write(conn.send(Ack(sequence=n)))
```

The connection cuts the byte stream into frames (any split of the stream gives the same events),
refuses garbage and oversized frames from their header before the body arrives
(`ChannelFrameError`), and enforces the session rules (`UnexpectedChannelFrameError`): each side's
first frame is HELLO (or a REJECT of the session), HELLO is sent once, only the payer sends PAY,
only the payee sends ACK, and the payee's HELLO names the channel the payer asked for. After an
error every further call raises it again; it performs no I/O and reads no clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from ..errors import (
    ChannelFrameError,
    ConnectionClosedError,
    UnexpectedChannelFrameError,
    VersionMismatchError,
)
from .frames import HEADER, HEADER_SIZE, check_header, decode_body, encode_event
from .state import Role
from .wire import MAX_BODY, PROTOCOL_VERSION, Ack, Event, Hello, Pay, Reject

_COMPACT_AT: Final = 1 << 16
"""Consumed bytes after which the receive buffer is compacted."""


class SessionState(enum.Enum):
    """One direction of a connection."""

    AWAIT_HELLO = 0
    READY = 1
    CLOSED = 2
    ERROR = 3


@dataclass(frozen=True, slots=True)
class NeedData:
    """`next_event` needs more bytes before it can return an event."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed its end cleanly (at a frame boundary)."""


NEED_DATA: Final = NeedData()
CLOSED: Final = Closed()


class Connection:
    """One side (`our_role`) of a channel protocol session."""

    __slots__ = (
        "_buffer",
        "_eof",
        "_error",
        "_hello",
        "_pos",
        "our_role",
        "our_state",
        "their_state",
    )

    def __init__(self, our_role: Role) -> None:
        self.our_role = our_role
        self.our_state = SessionState.AWAIT_HELLO
        self.their_state = SessionState.AWAIT_HELLO
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False
        self._error: Exception | None = None
        self._hello: Hello | None = None
        """The first HELLO sent or received: the session's channel."""

    @property
    def hello(self) -> Hello | None:
        """The first HELLO of the session (the payer's), once sent or received."""
        return self._hello

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer; `b""` means the peer closed its end."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise ConnectionClosedError("data received after the end of the stream")
        self._buffer += data

    def next_event(self) -> Event | NeedData | Closed:
        """The next complete event, `NEED_DATA`, or `CLOSED`; raises `ProtocolError`s."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except Exception as e:
            self._error = e
            self.their_state = SessionState.ERROR
            raise

    def _next_event(self) -> Event | NeedData | Closed:
        buffer, pos = self._buffer, self._pos
        available = len(buffer) - pos
        if available >= 4:  # an oversized length is refused before the type byte arrives
            length = int.from_bytes(buffer[pos : pos + 4], "little")
            if length > MAX_BODY:
                raise ChannelFrameError("frame", f"length {length} is above {MAX_BODY}")
        if available < HEADER_SIZE:
            return self._starved(available)
        length, kind_byte = HEADER.unpack_from(buffer, pos)
        kind = check_header(kind_byte, length)
        end = pos + HEADER_SIZE + length
        if end > len(buffer):
            return self._starved(available)
        body = bytes(buffer[pos + HEADER_SIZE : end])
        if end == len(buffer):
            buffer.clear()
            self._pos = 0
        elif end >= _COMPACT_AT:
            del buffer[:end]
            self._pos = 0
        else:
            self._pos = end
        event = decode_body(kind, body)
        self._check_received(event)
        return event

    def _starved(self, available: int) -> NeedData | Closed:
        if not self._eof:
            return NEED_DATA
        if available:
            raise ChannelFrameError("frame", f"the stream ended inside a frame ({available} bytes)")
        self.their_state = SessionState.CLOSED
        return CLOSED

    def _check_received(self, event: Event) -> None:
        name = type(event).__name__
        if self.their_state is SessionState.AWAIT_HELLO:
            if isinstance(event, Reject):
                return
            if not isinstance(event, Hello):
                raise UnexpectedChannelFrameError(name, "the first frame must be HELLO")
            if event.version != PROTOCOL_VERSION:
                raise VersionMismatchError(PROTOCOL_VERSION, event.version)
            if self.our_role is Role.PAYER and self.our_state is SessionState.AWAIT_HELLO:
                raise UnexpectedChannelFrameError(
                    name, "the payee answered before the payer's HELLO"
                )
            self._bind(event, name)
            self.their_state = SessionState.READY
            return
        if isinstance(event, Hello):
            raise UnexpectedChannelFrameError(name, "HELLO was already received")
        if isinstance(event, Pay) and self.our_role is Role.PAYER:
            raise UnexpectedChannelFrameError(name, "only the payer sends payments")
        if isinstance(event, Ack) and self.our_role is Role.PAYEE:
            raise UnexpectedChannelFrameError(name, "only the payee acknowledges")

    def _bind(self, hello: Hello, name: str) -> None:
        first = self._hello
        if first is None:
            self._hello = hello
        elif (first.network_id, first.channel_id) != (hello.network_id, hello.channel_id):
            raise UnexpectedChannelFrameError(
                name, "the HELLO names another channel than the session's"
            )

    def send(self, event: Event) -> bytes:
        """The bytes that send `event`; raises if the session's rules do not allow it."""
        if self.our_state in (SessionState.CLOSED, SessionState.ERROR):
            raise ConnectionClosedError("the connection is closed")
        name = type(event).__name__
        if self.our_state is SessionState.AWAIT_HELLO:
            if isinstance(event, Hello):
                if self.our_role is Role.PAYEE and self.their_state is not SessionState.READY:
                    raise UnexpectedChannelFrameError(name, "the payee answers the payer's HELLO")
                self._bind(event, name)
                self.our_state = SessionState.READY
            elif not isinstance(event, Reject):
                raise UnexpectedChannelFrameError(name, "the first frame must be HELLO")
        elif isinstance(event, Hello):
            raise UnexpectedChannelFrameError(name, "HELLO was already sent")
        elif isinstance(event, Pay) and self.our_role is Role.PAYEE:
            raise UnexpectedChannelFrameError(name, "only the payer sends payments")
        elif isinstance(event, Ack) and self.our_role is Role.PAYER:
            raise UnexpectedChannelFrameError(name, "only the payee acknowledges")
        return encode_event(event)

    def close(self) -> None:
        """Mark our side closed; `send` refuses from now on."""
        self.our_state = SessionState.CLOSED
