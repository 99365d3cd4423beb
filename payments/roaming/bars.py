"""Bars: the HPMN stops paying for one subscriber's usage from a given second.

A `Bar` names the subscriber by its keyed IMSI hash (never the IMSI), the HPMN and the second
from which usage is refused; the HPMN signs it and sends it to the VPMN (and may anchor it:
`anchor_payload`). The validator returns every later record of that IMSI as SEVERE `BARRED`, so
it is never paid. The bar reaches the VPMN over the operator API (`api.post_bar`) or as a file
(`tanglepay roaming bars record`); from then on the VPMN refuses that subscriber's later usage
before keeping or batching it (`BarList.admit`, `admit`: `BarredUsageError`). `BarList` holds
the bars of one agreement, bounded in entries.

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
from typing import TYPE_CHECKING, Final

from tangle.protocol.ids import Signature, blake2b_256
from tangle.protocol.payload import TaggedData
from tangle.protocol.signature import is_valid

from .errors import BarError, BarredUsageError
from .record import is_tadig

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tangle.protocol.signature import Signer

    from .agreement import Agreement
    from .record import UsageRecord

BAR_VERSION: Final = 1
BAR_DOMAIN: Final = b"tanglepay/roaming/bar/v1"
BAR_TAG: Final = b"tanglepay/roaming/bar"
_BAR: Final = struct.Struct("<B32s5s32sQ")
BAR_SIZE: Final = _BAR.size
MAX_BARS: Final = 1_000_000


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
    """The bars of one agreement, verified, at most `capacity` (the earliest `since` kept)."""

    __slots__ = ("_agreement", "_bars", "_capacity")

    def __init__(self, agreement: Agreement, capacity: int = MAX_BARS) -> None:
        self._agreement = agreement
        self._bars: dict[bytes, int] = {}
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._bars)

    def add(self, signed: SignedBar) -> bool:
        """Take a bar after checking it; False if it changes nothing (an earlier bar holds)."""
        bar = signed.bar
        if bar.agreement != self._agreement.hash:
            raise BarError("a bar of another agreement")
        party = self._agreement.party(bar.hpmn)
        if not is_valid(party.key, bar.signing_message(), signed.signature):
            raise BarError(f"not signed by {bar.hpmn}")
        held = self._bars.get(bar.imsi_hash)
        if held is not None and held <= bar.since:
            return False
        if held is None and len(self._bars) >= self._capacity:
            raise BarError(f"more than {self._capacity} bars")
        self._bars[bar.imsi_hash] = bar.since
        return True

    def barred(self, imsi_hash: bytes, start_utc: int) -> bool:
        """Whether usage of `imsi_hash` starting at `start_utc` is refused."""
        since = self._bars.get(imsi_hash)
        return since is not None and start_utc >= since

    def check(self, record: UsageRecord) -> None:
        """Raise `BarredUsageError` if `record` is usage of a subscriber barred before it
        started (the VPMN's gate)."""
        since = self._bars.get(record.imsi_hash)
        if since is not None and record.start_utc >= since:
            raise BarredUsageError(record.imsi_hash, since, record.start_utc)


def admit(
    records: Iterable[UsageRecord], bars: Iterable[SignedBar]
) -> tuple[list[UsageRecord], list[BarredUsageError]]:
    """The VPMN's gate over `records`: those it may keep, and one `BarredUsageError` for each
    record of a subscriber that the record's HPMN barred before the usage started. `bars` were
    checked when they were kept (`BarList.add`); a bar counts only for its own HPMN."""
    since: dict[tuple[str, bytes], int] = {}
    for signed in bars:
        key = (signed.bar.hpmn, signed.bar.imsi_hash)
        since[key] = min(since.get(key, signed.bar.since), signed.bar.since)
    kept: list[UsageRecord] = []
    refused: list[BarredUsageError] = []
    for record in records:
        held = since.get((record.recipient, record.imsi_hash))
        if held is not None and record.start_utc >= held:
            refused.append(BarredUsageError(record.imsi_hash, held, record.start_utc))
        else:
            kept.append(record)
    return kept, refused
