"""The HTTP face of pay-per-use: the payment terms of a 402 answer, the header names, and the
request tag a receipt binds to.

A request without payment is answered `402 Payment Required` with the `Offer` in headers (and in
the JSON body, under `"payment"`, next to the usual `{"error": {"code", "message"}}`):

```
Payment-Scheme: tanglepay-channel-v1
Payment-Network: 7                          the network id (decimal)
Payment-Payee: 9f1c...                      the payee's ed25519 key (hex): open channels to it
Payment-Price: 30                           base units this request costs
Payment-Units: 3                            the units it is priced at
Payment-Tariff: 10/1 request                price / per unit: the tariff behind the price
Payment-Channel: one-way; min-deposit=1000; min-challenge-period=10
```

The payer retries with `Payment-Proof: <base64url of payments.channels.wire.encode_signed_proof>`, a
proof that raises its channel's balance by at least the price; the answer carries `Payment-Receipt:
<base64url of payments.payperuse.receipt.encode_receipt>`, a `ReceiptKind.REQUEST` receipt whose tag
is `request_tag(method, path, query)`.

A proof refused as stale (409 `stale_proof` or `balance_decreased`) whose payer signature
verifies is answered with `Payment-Latest: <base64url of encode_signed_proof>`, the channel's
latest proof at the payee (as the TCP HELLO answer): a payer that lost its channel database
adopts it (its own signature) and pays again from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U64_MAX, require_uint
from tangle.protocol.ids import PublicKey, blake2b_256

from ..errors import InvalidAmountError, MeterOverflowError, OfferError, TariffError
from .metering import Tariff, tariff_uint

if TYPE_CHECKING:
    from collections.abc import Mapping

SCHEME: Final = "tanglepay-channel-v1"
PROOF_HEADER: Final = "payment-proof"
RECEIPT_HEADER: Final = "payment-receipt"
LATEST_HEADER: Final = "payment-latest"
REQUEST_TAG_DOMAIN: Final = b"tanglepay/request/v1"

_DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,19}")
_TARIFF: Final = re.compile(r"(0|[1-9][0-9]{0,19})/(0|[1-9][0-9]{0,19}) ([A-Za-z0-9_]{1,16})")
_CHANNEL: Final = re.compile(
    r"one-way; min-deposit=(0|[1-9][0-9]{0,19}); min-challenge-period=(0|[1-9][0-9]{0,9})"
)


def request_tag(method: str, path: bytes, query: bytes) -> bytes:
    """The 32-byte tag of a request: BLAKE2b-256 of the domain, the method, the raw path and the
    raw query string, each but the last ended by a zero byte."""
    return blake2b_256(
        REQUEST_TAG_DOMAIN, method.upper().encode("ascii"), b"\0", path, b"\0", query
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelRequirements:
    """The channels a payee accepts payments through."""

    min_deposit: int = 1
    """The least deposit of a channel it accepts (base units)."""
    min_challenge_period: int = 1
    """The shortest challenge period (milestones) it accepts: time to act on a close."""

    def __post_init__(self) -> None:
        tariff_uint("ChannelRequirements.min_deposit", self.min_deposit, minimum=1)
        if isinstance(self.min_challenge_period, bool) or not self.min_challenge_period >= 1:
            raise TariffError("ChannelRequirements.min_challenge_period", "must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """What a 402 answer asks for: the price of this request and how to pay it."""

    network_id: int
    """The network the payee's channels live on."""
    payee: PublicKey
    """The payee's key: the payee of the channel to pay through."""
    tariff: Tariff
    """The tariff the price follows."""
    units: int
    """The units this request is priced at."""
    price: int
    """`tariff.cost(units)`: what this request costs, in base units."""
    channel: ChannelRequirements
    """The channels the payee accepts."""

    def __post_init__(self) -> None:
        try:
            require_uint("network_id", self.network_id, U64_MAX)
        except InvalidFieldError:
            raise OfferError("the network id is not a u64") from None
        if not isinstance(self.payee, PublicKey):
            raise OfferError("the payee is not a public key")
        try:
            cost = self.tariff.cost(self.units)
        except (MeterOverflowError, InvalidAmountError):
            raise OfferError(f"units {self.units!r} cannot be priced") from None
        if self.price != cost:
            raise OfferError(f"price {self.price} is not the tariff's {cost}")

    def headers(self) -> dict[str, str]:
        """The 402 answer's payment headers."""
        t = self.tariff
        return {
            "payment-scheme": SCHEME,
            "payment-network": str(self.network_id),
            "payment-payee": self.payee.hex(),
            "payment-price": str(self.price),
            "payment-units": str(self.units),
            "payment-tariff": f"{t.price}/{t.per} {t.unit}",
            "payment-channel": (
                f"one-way; min-deposit={self.channel.min_deposit}; "
                f"min-challenge-period={self.channel.min_challenge_period}"
            ),
        }

    def document(self) -> dict[str, object]:
        """The JSON view (amounts and the network id as decimal strings, keys in hex)."""
        t = self.tariff
        return {
            "scheme": SCHEME,
            "network_id": str(self.network_id),
            "payee": self.payee.hex(),
            "price": str(self.price),
            "units": str(self.units),
            "tariff": {"price": str(t.price), "per": str(t.per), "unit": t.unit},
            "channel": {
                "bidirectional": False,
                "min_deposit": str(self.channel.min_deposit),
                "min_challenge_period": self.channel.min_challenge_period,
            },
            "proof_header": "Payment-Proof",
            "receipt_header": "Payment-Receipt",
        }


def _decimal(headers: Mapping[str, str], name: str) -> int:
    text = headers.get(name)
    if text is None:
        raise OfferError(f"no {name} header")
    if not _DECIMAL.fullmatch(text.strip()):
        raise OfferError(f"{name} is not a decimal")
    value = int(text)
    if value > U64_MAX:
        raise OfferError(f"{name} is beyond u64")
    return value


def parse_offer(headers: Mapping[str, str]) -> Offer:
    """Read the offer of a 402 answer from its headers (names lower case, as httpx gives them
    case-insensitively); anything missing or malformed raises `OfferError`."""
    if headers.get("payment-scheme", "").strip() != SCHEME:
        raise OfferError(f"the payment scheme is not {SCHEME}")
    tariff_match = _TARIFF.fullmatch(headers.get("payment-tariff", "").strip())
    channel_match = _CHANNEL.fullmatch(headers.get("payment-channel", "").strip())
    if tariff_match is None:
        raise OfferError("payment-tariff is not `price/per unit`")
    if channel_match is None:
        raise OfferError("payment-channel is not a one-way channel with its minimums")
    try:
        payee = PublicKey.from_hex(headers.get("payment-payee", "").strip())
        tariff = Tariff(price=int(tariff_match[1]), per=int(tariff_match[2]), unit=tariff_match[3])
        channel = ChannelRequirements(
            min_deposit=int(channel_match[1]), min_challenge_period=int(channel_match[2])
        )
    except (InvalidFieldError, TariffError) as e:
        raise OfferError(str(e)) from None
    return Offer(
        network_id=_decimal(headers, "payment-network"),
        payee=payee,
        tariff=tariff,
        units=_decimal(headers, "payment-units"),
        price=_decimal(headers, "payment-price"),
        channel=channel,
    )
