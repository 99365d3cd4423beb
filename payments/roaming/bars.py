"""Bars: the HPMN stops paying for one subscriber's usage from a given second.

A `Bar` names the subscriber by its keyed IMSI hash (never the IMSI), the HPMN and the second
from which usage is refused; the HPMN signs it and sends it to the VPMN (and may anchor it:
`anchor_payload`). The validator returns every later record of that IMSI as SEVERE `BARRED`, so
it is never paid. The bar reaches the VPMN over the operator API (`api.post_bar`) or as a file
(`tanglepay roaming bars record`); from then on the VPMN refuses that subscriber's later usage
before keeping or batching it (`BarList.admit`: `BarredUsageError`). `BarList` holds the bars
of one agreement, bounded in entries; a bar may not date its start before it arrived (less a
grace), and the first one kept for a subscriber holds.

```
bar (little-endian, BAR_SIZE bytes, then the HPMN's 64-byte signature of signing_message())
  u8   version   BAR_VERSION
  32   agreement hash of the agreement version
  5    hpmn      TADIG of the barring home network
  32   imsi_hash
  u64  since     first second (UTC) of refused usage
```
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from tangle.protocol.ids import Signature, blake2b_256
from tangle.protocol.payload import TaggedData
from tangle.protocol.signature import is_valid

from .errors import BackdatedBarError, BarError, BarredUsageError
from .record import is_tadig

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from tangle.protocol.signature import Signer

    from .agreement import Agreement
    from .record import UsageRecord

BAR_VERSION: Final = 1
BAR_DOMAIN: Final = b"tanglepay/roaming/bar/v1"
BAR_TAG: Final = b"tanglepay/roaming/bar"
_BAR: Final = struct.Struct("<B32s5s32sQ")
BAR_SIZE: Final = _BAR.size
MAX_BARS: Final = 1_000_000
BAR_GRACE_S: Final = 900
"""How far before its arrival a bar may date its start (clock skew and transit)."""
K = TypeVar("K")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """Usage of `imsi_hash` from `since` on is refused by `hpmn`."""

    agreement: bytes
    hpmn: str
    imsi_hash: bytes
    since: int

    def encode(self) -> bytes:
        try:
            return _BAR.pack(
                BAR_VERSION, self.agreement, self.hpmn.encode("ascii"), self.imsi_hash, self.since
            )
        except (struct.error, UnicodeEncodeError) as e:
            raise BarError(f"a field out of range: {e}") from None

    def signing_message(self) -> bytes:
        return BAR_DOMAIN + b"/sign" + blake2b_256(BAR_DOMAIN, self.encode())


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedBar:
    bar: Bar
    signature: Signature

    def encode(self) -> bytes:
        return self.bar.encode() + self.signature

    @classmethod
    def decode(cls, data: bytes) -> SignedBar:
        if len(data) != BAR_SIZE + 64:
            raise BarError(f"a signed bar is {BAR_SIZE + 64} bytes")
        version, agreement, hpmn, imsi_hash, since = _BAR.unpack_from(data)
        if version != BAR_VERSION or not hpmn.isascii() or not is_tadig(hpmn.decode("ascii")):
            raise BarError("not one canonical bar")
        bar = Bar(agreement=agreement, hpmn=hpmn.decode("ascii"), imsi_hash=imsi_hash, since=since)
        return cls(bar=bar, signature=Signature(data[BAR_SIZE:]))


def sign_bar(bar: Bar, signer: Signer) -> SignedBar:
    return SignedBar(bar=bar, signature=signer.sign(bar.signing_message()))


def anchor_payload(signed: SignedBar) -> TaggedData:
    """The ledger anchor of a bar (it holds a keyed IMSI hash, never the IMSI)."""
    return TaggedData(tag=BAR_TAG, data=signed.encode())


class BarList:
    """The bars of one agreement, verified, at most `capacity`; a bar counts only for usage
    billed to the HPMN that signed it.

    A bar counts from the second it names, and that second may not lie before the bar reached
    this carrier (`add`'s `now`, less `BAR_GRACE_S` of clock skew and transit): a bar dated
    back would turn usage already served into usage the HPMN need not pay (`BackdatedBarError`).
    The first bar kept for a subscriber holds: a later one changes nothing, so a bar never
    moves earlier once it is kept."""

    __slots__ = ("_agreement", "_bars", "_capacity")

    def __init__(self, agreement: Agreement, capacity: int = MAX_BARS) -> None:
        self._agreement = agreement
        self._bars: dict[tuple[str, bytes], int] = {}
        self._capacity = capacity

    @classmethod
    def restored(
        cls, agreement: Agreement, held: Iterable[SignedBar], hpmn: str, capacity: int = MAX_BARS
    ) -> BarList:
        """The bars of `agreement` signed by `hpmn` among `held` (a store's bars, each checked
        against its time of arrival when it was kept; those of other agreements or parties are
        left out)."""
        bars = cls(agreement, capacity)
        for signed in held:
            if signed.bar.agreement == agreement.hash and signed.bar.hpmn == hpmn:
                bars._keep(signed)
        return bars

    def __len__(self) -> int:
        return len(self._bars)

    def add(self, signed: SignedBar, now: int) -> bool:
        """Take a bar that reached this carrier at `now` after checking it; False if it changes
        nothing (a bar of the subscriber is held already)."""
        if signed.bar.since + BAR_GRACE_S < now:
            raise BackdatedBarError(signed.bar.since, now)
        return self._keep(signed)

    def _keep(self, signed: SignedBar) -> bool:
        bar = signed.bar
        if bar.agreement != self._agreement.hash:
            raise BarError("a bar of another agreement")
        party = self._agreement.party(bar.hpmn)
        if not is_valid(party.key, bar.signing_message(), signed.signature):
            raise BarError(f"not signed by {bar.hpmn}")
        key = (bar.hpmn, bar.imsi_hash)
        if key in self._bars:
            return False
        if len(self._bars) >= self._capacity:
            raise BarError(f"more than {self._capacity} bars")
        self._bars[key] = bar.since
        return True

    def items(self) -> Iterator[tuple[str, bytes, int]]:
        """Each held bar: the HPMN, the keyed IMSI hash and the second it counts from."""
        return ((hpmn, imsi_hash, since) for (hpmn, imsi_hash), since in self._bars.items())

    def barred(self, record: UsageRecord) -> bool:
        """Whether `record` is usage its HPMN (the record's recipient) barred before it began."""
        return self._since(record) is not None

    def check(self, record: UsageRecord) -> None:
        """Raise `BarredUsageError` if its HPMN barred `record`'s subscriber before it began."""
        since = self._since(record)
        if since is not None:
            raise BarredUsageError(record.imsi_hash, since, record.start_utc)

    def _since(self, record: UsageRecord) -> int | None:
        since = self._bars.get((record.recipient, record.imsi_hash))
        return since if since is not None and record.start_utc >= since else None

    def admit(
        self, rows: Iterable[tuple[K, UsageRecord]]
    ) -> tuple[list[tuple[K, UsageRecord]], list[tuple[K, BarredUsageError]]]:
        """The VPMN's gate, before usage is kept or batched: of `rows` (a key, such as a row
        id, and a record), those it may keep, and the refused ones with their
        `BarredUsageError`."""
        kept: list[tuple[K, UsageRecord]] = []
        refused: list[tuple[K, BarredUsageError]] = []
        for key, record in rows:
            try:
                self.check(record)
            except BarredUsageError as e:
                refused.append((key, e))
            else:
                kept.append((key, record))
        return kept, refused
