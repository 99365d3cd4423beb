"""Bounds on the log lines hostile input can cause.

A charger, a driver, an eMSP or any TCP client decides how often the CSMS refuses something: a
line per refusal would let 1,000 refused Authorize calls a second write 1,000 lines a second,
filling the disk and spending a small box's CPU on formatting. `LogLimiter` lets at most `lines`
lines of one key, a (source, kind) pair such as (a station id, "token refused"), through per
window of `interval_s`; the rest are counted, and the count is logged as one summary line
("suppressed K similar lines (kind) from source in the last T s", on this module's logger) once
the window has closed: before the key's next line, at the latest at the next `flush` (the
CSMS's tick), or when the key is forgotten. It remembers at most `max_keys` keys, the least
recently used forgotten first, so no number of distinct sources (station ids, eMSPs) can grow
it; a token or a client's address is never part of a key, only of the line.

A forgotten key's next line opens a fresh window, so more than `max_keys` keys flooding in turn
would each write `lines` lines per turn. On top of each key's bound, at most `max_lines` lines of
all keys together, summaries included, are written per window of `interval_s`; the lines over
that cap are counted under one key (`OVERFLOW`), whose one summary line per window the cap does
not hold back. A line of a key no hostile input chooses (the operator's own store failing) can
be written outside the cap (`capped=False`), so that no flood of other keys can hide it.

The core (`admit`, `expire`) does no I/O: it updates the windows on the injected clock and says
what to write; `log` and `flush` write.

`LimitedLogger` puts the same bound on a library's own lines, under one source: the `websockets`
server's, which an unauthenticated client causes (an unreadable or dropped handshake is an error
line with a traceback per TCP connection), and the `ocpp` library's of one station's connection
(a call the station answers with a CALLERROR is a warning line each).

Lines about money (refunds paid, held or settled; bills, their commitments and CDRs) do not go
through a limiter: they are the operator's record, one per refund or bill, not per message.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .errors import LogLimitError

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping

LINES: Final = 10
"""Lines of one key written per window."""
INTERVAL_S: Final = 60.0
"""The window's length."""
MAX_KEYS: Final = 1024
"""Keys remembered (each a few hundred bytes)."""
MAX_LINES: Final = 1000
"""Lines of every key together, summaries included, written per window: a forgotten key's next
line opens a fresh window, so without this cap more than `MAX_KEYS` keys flooding in turn would
each write `LINES` lines per turn (2,000 sources writing 10 lines each: all 20,000 written)."""
OVERFLOW: Final = ("all sources", "over the cap on all lines")
"""The key the lines over `MAX_LINES` are counted under, in one summary per window."""
LOG: Final = logging.getLogger(__name__)
CLIENTS: Final = "websocket clients"
"""The source of the `websockets` server's lines: a key per address would let a client with
many addresses (an IPv6 prefix) write `LINES` lines per address; each line written names its
client's address instead (`LimitedLogger`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppressed:
    """Lines of one key that were not written, owed a summary line."""

    source: str
    """Who caused them (a station id, an eMSP, `CLIENTS`)."""
    kind: str
    """What they were about."""
    count: int
    """How many were not written."""
    level: int
    """The highest level among them: the summary's."""
    seconds: float
    """How long ago the window they fell in opened."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What to write for one line."""

    write: bool
    """Whether the line itself is written."""
    summaries: tuple[Suppressed, ...]
    """Summaries to write first: the key's closed window, a forgotten key's."""


@dataclass(slots=True)
class _Window:
    start: float
    written: int = 0
    suppressed: int = 0
    level: int = logging.NOTSET
    """The highest level among the suppressed lines."""


@dataclass(slots=True, kw_only=True)
class LogLimiter:
    """At most `lines` lines per key per `interval_s`, and `max_lines` in all (see the module
    docstring). Not locked: every caller runs on the CSMS's event loop thread (its handlers,
    its tick, and the `websockets` and `ocpp` libraries, which log on the loop too)."""

    lines: int = LINES
    interval_s: float = INTERVAL_S
    max_keys: int = MAX_KEYS
    max_lines: int = MAX_LINES
    clock: Callable[[], float] = time.monotonic
    _windows: OrderedDict[tuple[str, str], _Window] = field(default_factory=OrderedDict, init=False)
    _all: _Window | None = field(default=None, init=False)
    """The window of `max_lines`: `written` counts the lines and summaries of every capped key,
    `suppressed` those over the cap (owed the `OVERFLOW` summary)."""

    def __post_init__(self) -> None:
        if self.lines < 0:
            raise LogLimitError("lines", self.lines, "at least 0")
        if not self.interval_s > 0:  # NaN too: no window would ever close
            raise LogLimitError("interval_s", self.interval_s, "above 0")
        if self.max_keys < 1:
            raise LogLimitError("max_keys", self.max_keys, "at least 1")
        if self.max_lines < 0:
            raise LogLimitError("max_lines", self.max_lines, "at least 0")

    def admit(self, source: str, kind: str, level: int, *, capped: bool = True) -> Verdict:
        """Count one line of (`source`, `kind`) at `level` and say what to write for it. A line
        that is not `capped` (of a key no hostile input chooses: the operator's own store
        failing) has only its key's bound, and neither takes nor waits for a place under
        `max_lines`: no flood of other keys can hide it."""
        now = self.clock()
        summaries = list(self._close_all(now))
        key = (source, kind)
        owed: list[Suppressed] = []
        window = self._windows.get(key)
        if window is not None and now - window.start >= self.interval_s:
            owed.extend(_summary(key, window, now))
            window = None
        if window is None:
            window = self._windows[key] = _Window(start=now)
        self._windows.move_to_end(key)
        while len(self._windows) > self.max_keys:
            old_key, old = self._windows.popitem(last=False)
            owed.extend(_summary(old_key, old, now))
        summaries.extend(s for s in owed if self._take(now, s.level, s.count))
        if window.written >= self.lines:
            window.suppressed += 1
            window.level = max(window.level, level)
            return Verdict(write=False, summaries=tuple(summaries))
        write = not capped or self._take(now, level, 1)  # else counted under `OVERFLOW`
        if write:
            window.written += 1
        return Verdict(write=write, summaries=tuple(summaries))

    def expire(self) -> tuple[Suppressed, ...]:
        """Forget every key whose window has closed; the summaries of those that suppressed
        lines (so that a flood which stopped is counted without waiting for its next line)."""
        now = self.clock()
        closed = [key for key, w in self._windows.items() if now - w.start >= self.interval_s]
        owed = [s for key in closed for s in _summary(key, self._windows.pop(key), now)]
        summaries = self._close_all(now)
        return (*summaries, *(s for s in owed if self._take(now, s.level, s.count)))

    def _close_all(self, now: float) -> tuple[Suppressed, ...]:
        """The `OVERFLOW` summary of the window of `max_lines`, if it has closed (and it is
        forgotten: the next line opens one). Written over the cap: one per window."""
        if self._all is None or now - self._all.start < self.interval_s:
            return ()
        closed, self._all = self._all, None
        return _summary(OVERFLOW, closed, now)

    def _take(self, now: float, level: int, count: int) -> bool:
        """Take a place under `max_lines` for a line, or a summary of `count` lines; if there
        is none left, count the `count` lines under `OVERFLOW` instead."""
        if self._all is None:
            self._all = _Window(start=now)
        if self._all.written < self.max_lines:
            self._all.written += 1
            return True
        self._all.suppressed += count
        self._all.level = max(self._all.level, level)
        return False

    def log(
        self,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        level: int,
        source: str,
        kind: str,
        msg: str,
        *args: object,
        capped: bool = True,
        **kwargs: Any,
    ) -> None:
        """`logger.log(level, msg, *args, **kwargs)` if (`source`, `kind`) has lines left in
        its window (and, if `capped`, `max_lines` has room: `admit`), after the summaries owed;
        a line the logger would drop is not counted. The record names the caller's location
        (`stacklevel` counts from the caller of this method), not this module's."""
        if not logger.isEnabledFor(level):
            return
        verdict = self.admit(source, kind, level, capped=capped)
        _write(verdict.summaries)
        if verdict.write:
            stacklevel = kwargs.pop("stacklevel", 1) + 1
            logger.log(level, msg, *args, stacklevel=stacklevel, **kwargs)

    def flush(self) -> None:
        """Write the summaries of the windows closed by now (`expire`); the CSMS calls it on
        its tick."""
        _write(self.expire())


def _summary(key: tuple[str, str], window: _Window, now: float) -> tuple[Suppressed, ...]:
    if window.suppressed == 0:
        return ()
    return (
        Suppressed(
            source=key[0],
            kind=key[1],
            count=window.suppressed,
            level=window.level,
            seconds=now - window.start,
        ),
    )


def _write(summaries: tuple[Suppressed, ...]) -> None:
    """Summaries go to this module's logger, whichever logger the lines were for: a summary
    `flush` writes has no line of its own to follow."""
    for s in summaries:
        LOG.log(
            s.level,
            "suppressed %d similar lines (%s) from %s in the last %.0f s",
            s.count,
            s.kind,
            s.source,
            s.seconds,
        )


class LimitedLogger(logging.LoggerAdapter[logging.Logger]):
    """The logger given to a library: its lines go through `limiter`, one key per message (the
    library's format string, and the class of the error a line carries: `websockets` writes
    "opening handshake failed" for a client that sent garbage and for our own `process_request`
    failing alike, and one must not hide the other) under `source`; a line about a `websockets`
    connection names the connection's client address."""

    def __init__(self, logger: logging.Logger, limiter: LogLimiter, source: str) -> None:
        super().__init__(logger, {})
        self.limiter = limiter
        self.source = source

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):  # a debug line costs no work of ours
            return
        extra: MutableMapping[str, object] = kwargs.get("extra") or {}
        address = getattr(extra.get("websocket"), "remote_address", None)
        line = str(msg)
        if isinstance(address, tuple) and address:  # a line about one connection
            if not args:  # not a format string then: "% sent keepalive ping" must stay as is
                line = line.replace("%", "%%")
            line, args = f"{line} (client %s)", (*args, address[0])
        kind = str(msg)
        error = _error_class(kwargs.get("exc_info"))
        if error is not None:  # as many keys as the program has error classes
            kind = f"{kind} ({error.__name__})"
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1  # the library's call, not ours
        self.limiter.log(self.logger, level, self.source, kind, line, *args, **kwargs)


def _error_class(exc_info: object) -> type[BaseException] | None:
    """The class of the error a logging call's `exc_info` names, if any."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return type(exc_info)
    if isinstance(exc_info, tuple) and exc_info and isinstance(exc_info[0], type):
        return exc_info[0]
    return None
