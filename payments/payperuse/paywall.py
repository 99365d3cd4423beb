"""ASGI middleware that puts any ASGI HTTP app behind `402 Payment Required`.

```python
app = Paywall(
    Starlette(routes=...),
    signer=payee_key, network_id=7, tariff=Tariff.per_request(10),
    directory=LedgerDirectory(node, 7), service=PayeeService(ChannelStore(path)),
)
```

For every HTTP request (`exempt(scope)` aside):

* no `Payment-Proof` header: `402` with the `Offer` (price, units, tariff, payee key, network,
  accepted channels) in `Payment-*` headers and in the JSON body (see `payments.payperuse.offer`);
  the app is not called;
* a `Payment-Proof` header (base64url of `payments.channels.wire.encode_signed_proof`): the proof
  goes to the `Cashier`, which checks it, requires it to raise the channel's balance by at least the
  price, and has the `PayeeService` (shared with the process's TCP and HTTP transports) save
  the new state durably; only then is the request passed to the app, and its
  answer carries `Payment-Receipt`: a `ReceiptKind.REQUEST` receipt, signed by the payee, of the
  channel, sequence, amount credited and the request's tag (`offer.request_tag`);
* a payment the paywall refuses is answered with the error below and changes nothing; a 409
  for a proof the payer signed carries the channel's latest proof in `Payment-Latest`, so a
  device that lost its channel database recovers (`payments.payperuse.offer`).

| status | code                   | when                                                        |
| ------ | ---------------------- | ----------------------------------------------------------- |
| 400    | `malformed_payment`    | the header is not one base64url encoded signed proof        |
| 402    | `insufficient_payment` | it raises the balance by less than the price                |
| 402    | `insufficient_deposit` | it pays beyond the deposit (the payer must top up)          |
| 403    | `wrong_channel`        | it is for another network                                   |
| 403    | `unknown_channel`      | no open channel with that id pays this payee                |
| 403    | `unacceptable_channel` | the channel's terms are not accepted (`ChannelRequirements`)|
| 403    | `invalid_proof`        | the payer's signature does not verify (forged)              |
| 403    | `channel_closed`       | the channel is closing or settled                           |
| 403    | `channel_expiring`     | the ledger is within the challenge period of the expiry     |
| 403    | `invalid_terms`        | the ledger's channel no longer matches the one held         |
| 403    | `quarantined_device`   | the payer is a device under quarantine (`devices` given)    |
| 409    | `stale_proof`          | a sequence already seen (a replay)                          |
| 409    | `balance_decreased`    | a balance below the latest                                  |
| 503    | `store_unavailable`    | the payee's channel database failed (`StoreError`)          |
| 503    | `ledger_unavailable`   | the payee's node did not answer (`NodeUnavailableError`)    |
| 503    | `ledger_rate_limited`  | the payee's node rate-limits it (`RateLimitedError`)        |

A 503 carries `Retry-After` (seconds): nothing changed, the same proof may be sent again.

Every 402 carries the offer's headers, so a payer can pay again from any of them. WebSocket
connections are closed (1008, policy violation): the paywall only prices HTTP requests. Only anyio
is used, so the middleware runs under trio and asyncio alike.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

from wallet.errors import NodeUnavailableError, RateLimitedError

from ..channels.wire import decode_signed_proof, encode_signed_proof
from ..errors import (
    BalanceDecreasedError,
    ChannelClosedError,
    ChannelExpiringError,
    ChannelFrameError,
    InsufficientDepositError,
    InsufficientPaymentError,
    InvalidProofError,
    InvalidTermsError,
    MalformedPaymentError,
    PaywallError,
    QuarantinedPayerError,
    StaleProofError,
    StoreError,
    UnacceptableChannelError,
    UnknownChannelError,
    WrongChannelError,
)
from .cashier import Cashier
from .offer import (
    LATEST_HEADER,
    PROOF_HEADER,
    RECEIPT_HEADER,
    ChannelRequirements,
    Offer,
    request_tag,
)
from .receipt import ReceiptKind, b64url_decode, b64url_encode, issue_receipt, receipt_to_header

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.signature import Signer

    from ..channels.service import PayeeService
    from .cashier import ChannelDirectory
    from .metering import Tariff
    from .receipt import Receipt
    from .standing import DeviceStanding

REFUSALS: Final[dict[type[Exception], tuple[int, str]]] = {
    MalformedPaymentError: (400, "malformed_payment"),
    InsufficientPaymentError: (402, "insufficient_payment"),
    InsufficientDepositError: (402, "insufficient_deposit"),
    WrongChannelError: (403, "wrong_channel"),
    UnknownChannelError: (403, "unknown_channel"),
    UnacceptableChannelError: (403, "unacceptable_channel"),
    InvalidProofError: (403, "invalid_proof"),
    ChannelClosedError: (403, "channel_closed"),
    ChannelExpiringError: (403, "channel_expiring"),
    InvalidTermsError: (403, "invalid_terms"),
    QuarantinedPayerError: (403, "quarantined_device"),
    StaleProofError: (409, "stale_proof"),
    BalanceDecreasedError: (409, "balance_decreased"),
    StoreError: (503, "store_unavailable"),
    NodeUnavailableError: (503, "ledger_unavailable"),
    RateLimitedError: (503, "ledger_rate_limited"),
}
"""Each refused payment's HTTP status and error code (the table of the module docstring)."""

REFUSED: Final = tuple(REFUSALS)

RETRY_AFTER_S: Final = 1
"""The `Retry-After` of a 503: the store or the node is asked again on the next request."""


def refusal_of(error: Exception) -> tuple[int, str]:
    """The status and code a refused payment is answered with (`400 payment_refused` for a
    `PaymentError` outside `REFUSALS`, which an app's own handlers may raise)."""
    for cls in type(error).__mro__:
        if cls in REFUSALS:
            return REFUSALS[cls]
    return 400, "payment_refused"


def _one_header(scope: Scope, name: bytes) -> str | None:
    """The value of header `name` (lower case), None if absent; `MalformedPaymentError` if it
    is repeated or not ASCII."""
    values = [value for key, value in scope.get("headers", ()) if key.lower() == name]
    if not values:
        return None
    if len(values) > 1:
        raise MalformedPaymentError(f"{name.decode()} is repeated")
    try:
        return bytes(values[0]).decode("ascii")
    except UnicodeDecodeError:
        raise MalformedPaymentError(f"{name.decode()} is not ASCII") from None


def _tag_of(scope: Scope) -> bytes:
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    path = bytes(raw_path).split(b"?", 1)[0]
    return request_tag(scope["method"], path, bytes(scope.get("query_string", b"")))


def _one_unit(scope: Scope) -> int:
    return 1


def _nothing_exempt(scope: Scope) -> bool:
    return False


class Paywall:
    """The middleware (see the module docstring)."""

    __slots__ = (
        "_app",
        "_exempt",
        "_signer",
        "_units",
        "cashier",
        "requirements",
        "service",
        "tariff",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        signer: Signer,
        network_id: int,
        tariff: Tariff,
        directory: ChannelDirectory,
        service: PayeeService,
        requirements: ChannelRequirements | None = None,
        units: Callable[[Scope], int] = _one_unit,
        exempt: Callable[[Scope], bool] = _nothing_exempt,
        devices: DeviceStanding | None = None,
    ) -> None:
        """`signer` holds the payee key (channels must pay it; receipts are signed with it);
        `units(scope)` prices a request in the tariff's units (1 by default); `exempt(scope)`
        lets a request through unpaid (health checks, the API description); `service` holds
        the channels (one per process, shared with its other transports); `devices` (in
        production `LedgerDevices`) refuses payers that are quarantined devices."""
        self._app = app
        self._signer = signer
        self.tariff = tariff
        self.requirements = requirements or ChannelRequirements()
        self._units = units
        self._exempt = exempt
        self.service = service
        self.cashier = Cashier(
            payee=signer.public_key,
            network_id=network_id,
            directory=directory,
            service=service,
            requirements=self.requirements,
            devices=devices,
        )

    def offer(self, scope: Scope) -> Offer:
        """The price of the request `scope` and how to pay it."""
        units = self._units(scope)
        return Offer(
            network_id=self.cashier.network_id,
            payee=self._signer.public_key,
            tariff=self.tariff,
            units=units,
            price=self.tariff.cost(units),
            channel=self.requirements,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "payment required"})
            return
        if scope["type"] != "http" or self._exempt(scope):
            await self._app(scope, receive, send)
            return
        offer = self.offer(scope)
        signed: SignedBalanceProof | None = None
        try:
            header = _one_header(scope, PROOF_HEADER.encode())
            if header is None:
                await self._refuse(
                    send,
                    offer,
                    402,
                    "payment_required",
                    f"this request costs {offer.price} base units; pay with a Payment-Proof header",
                )
                return
            signed = _decode_proof(header)
            receipt = await self._charge(signed, offer, _tag_of(scope))
        except REFUSED as e:
            status, code = refusal_of(e)
            latest = self._latest_for(signed) if status == 409 else None
            await self._refuse(send, offer, status, code, str(e), latest)
            return
        await self._app(scope, receive, _with_receipt(send, receipt_to_header(receipt)))

    async def _charge(self, signed: SignedBalanceProof, offer: Offer, tag: bytes) -> Receipt:
        """Check, credit and save the payment; the signed receipt for it."""
        credit = await self.cashier.accept(signed, price=offer.price)
        proof = credit.proof.proof
        return issue_receipt(
            self._signer,
            kind=ReceiptKind.REQUEST,
            network_id=proof.network_id,
            channel_id=proof.channel_id,
            sequence=proof.sequence,
            cumulative_amount=proof.payee_balance,
            credited=credit.credited,
            units=offer.units,
            tag=tag,
        )

    def _latest_for(self, signed: SignedBalanceProof | None) -> SignedBalanceProof | None:
        """The channel's latest proof, for a refused proof that its payer signed."""
        held = None if signed is None else self.service.held(signed.proof.channel_id)
        if signed is None or held is None:
            return None
        if not signed.verify(held.terms.payer, held.terms.payee, bidirectional=False):
            return None
        return held.latest

    async def _refuse(
        self,
        send: Send,
        offer: Offer,
        status: int,
        code: str,
        message: str,
        latest: SignedBalanceProof | None = None,
    ) -> None:
        body: dict[str, object] = {"error": {"code": code, "message": message}}
        headers = [(b"content-type", b"application/json")]
        if latest is not None:
            value = b64url_encode(encode_signed_proof(latest))
            headers.append((LATEST_HEADER.encode(), value.encode()))
        if status == 503:
            headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
        if status == 402:
            body["payment"] = offer.document()
            headers += [(k.encode(), v.encode()) for k, v in offer.headers().items()]
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


def _decode_proof(header: str) -> SignedBalanceProof:
    try:
        return decode_signed_proof(b64url_decode(header, MalformedPaymentError))
    except ChannelFrameError as e:
        raise MalformedPaymentError(f"not a signed balance proof: {e.reason}") from None


def _with_receipt(send: Send, receipt: str) -> Send:
    """`send` that adds the receipt header to the response's start."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (RECEIPT_HEADER.encode(), receipt.encode())]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


__all__ = ["REFUSALS", "Paywall", "PaywallError", "refusal_of"]
