"""The device's side of pay-per-use: an httpx auth flow that pays `402 Payment Required` answers.

```python
auth = PaymentAuth(
    signer=device_key, network_id=7, funder=funder,
    budget=Budget(total=10_000, per_request=50),
    funding=FundingPolicy(deposit=2_000, top_up=2_000),
)
async with httpx.AsyncClient(auth=auth) as client:     # or httpx.Client(auth=auth)
    response = await client.get("https://sensor.example/readings/latest")
```

On a 402 the flow reads the `Offer` (`payments.payperuse.offer`), checks it (the network, a pinned
payee if one is given, a minimum deposit the funding policy can meet) and the budget
(`BudgetExceededError` before anything is opened, topped up or signed), makes sure it has a channel
to the payee with room for the price (opening one through the `ChannelFunder`, or topping it up when
what is left would fall below `FundingPolicy.low_water`), signs the proof that pays the price, and
sends the request again with `Payment-Proof`. The answer must carry the payee's receipt of exactly
that payment for exactly that request (`ReceiptError` otherwise); a payment the payee refuses raises
`PaymentRejectedError` with its status and code.

A signed proof counts as spent even if the payee refuses it or the answer is lost: the payee holds
it and could settle with it. A refusal that changed nothing at the payee (a 400, 402, 403 or 503
answer, see `payments.payperuse.paywall`) leaves that proof the channel's latest: the next payment
to that payee sends the same proof again (ed25519 signatures are deterministic: nothing new is
signed), signing on top only what a higher price asks beyond it, so the payee never credits one
request twice. A channel the payee refuses as `channel_closed` or `channel_expiring`, or twice in a
row as `unknown_channel` (the first may come from a payee whose node has not yet seen a channel just
confirmed), is retired: saved as CLOSING in the store, and the next payment to that payee opens a
new channel through the funder. Paid requests through one `PaymentAuth` go one at a time (proofs
of a channel must arrive in order); the lock covers the request and its answer. The sync flow
runs the funder's coroutines with `anyio.run` (a device's sync code runs no event loop of its
own), or in the caller's loop through `anyio.from_thread` when called from one of its worker
threads.

**Recovery.** Given a `ChannelStore`, the flow keeps its channels there (role PAYER): it loads them
before its first payment (a restarted device goes on where it was) and saves the channel (with any
new terms from the funder) after each signed proof, before the proof is sent. A device that lost
its database signs a proof the payee already has a newer one for; the payee refuses it as stale and
answers with its latest proof (`Payment-Latest`, see `payments.payperuse.offer`). The flow adopts
that proof if it carries the device's own signature and is newer (`PayerChannel.recover`), and pays
once more from there; the refused proof is then not counted as spent, since the new proof pays the
payee at least as much (one request is never paid twice).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast

import anyio
import anyio.from_thread
import httpx

from ..channels.core import ChannelTerms, PayerChannel
from ..channels.state import PAYING_STATES, ChannelState, Role
from ..channels.store import ChannelRecord
from ..channels.wire import decode_signed_proof, encode_signed_proof
from ..errors import (
    BudgetExceededError,
    ChannelFrameError,
    FundingError,
    MalformedReceiptError,
    OfferError,
    PaymentRejectedError,
    ReceiptMismatchError,
)
from .budget import OpenChannel, TopUp, funder_call, run_blocking
from .offer import LATEST_HEADER, PROOF_HEADER, RECEIPT_HEADER, Offer, parse_offer, request_tag
from .receipt import Receipt, ReceiptKind, b64url_decode, b64url_encode, receipt_from_header

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Coroutine, Generator

    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import PublicKey
    from tangle.protocol.signature import Signer

    from ..channels.store import ChannelStore
    from .budget import Budget, ChannelFunder, FunderCall, FundingPolicy

    _Step: TypeAlias = FunderCall | "_StoreCall" | httpx.Request
    """What the paid flow asks its driver to do."""
    _Answer: TypeAlias = ChannelTerms | httpx.Response | None
    """What the driver sends back: the funder's new terms, the response (body read), or None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Paid:
    """One payment and the request it paid for."""

    offer: Offer
    """What the payee asked."""
    proof: SignedBalanceProof
    """The proof that paid it."""
    tag: bytes
    """The request's tag (`offer.request_tag`)."""
    credit: int
    """What the proof adds to the balance the payee holds (the price, or more when a refused
    proof that paid more is sent again)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Signed:
    proof: SignedBalanceProof
    credit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _Refused:
    proof: SignedBalanceProof
    credit: int
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _StoreCall:
    """A step of the paid flow: run this store coroutine (load, save, retire)."""

    call: Callable[[], Coroutine[Any, Any, None]]
    """The coroutine function."""


def _next(steps: Generator[_Step, _Answer, None], answer: _Answer) -> _Step | None:
    """The flow's next step given the last one's outcome; None once it is done."""
    try:
        return steps.send(answer)
    except StopIteration:
        return None


UNCHANGED_STATUSES: Final = frozenset({400, 402, 403, 503})
"""Refusals after which the payee holds what it held before (`payments.payperuse.paywall`)."""
RETIRING_CODES: Final = frozenset({"channel_closed", "channel_expiring"})
"""Refusals that end a channel for payments at once; `unknown_channel` does the second time."""


class PaymentAuth(httpx.Auth):
    """The auth flow (see the module docstring)."""

    requires_request_body = True

    def __init__(
        self,
        *,
        signer: Signer,
        network_id: int,
        funder: ChannelFunder,
        budget: Budget,
        funding: FundingPolicy,
        payee: PublicKey | None = None,
        store: ChannelStore | None = None,
    ) -> None:
        """`payee`, if given, is the only key this device pays (any other offer is refused);
        `store`, if given, keeps the channels across restarts (see the module docstring)."""
        self._signer = signer
        self.network_id = network_id
        self._funder = funder
        self.budget = budget
        self.funding = funding
        self.payee = payee
        self.spent = 0
        """Base units paid (signed away) so far."""
        self.receipts: list[Receipt] = []
        """Every receipt received, oldest first."""
        self.channels: dict[bytes, PayerChannel] = {}
        """The channel to each payee, by the payee's key."""
        self._refused: dict[bytes, _Refused] = {}
        """The last proof to each payee that it refused without taking it (sent again)."""
        self._store = store
        self._loaded = store is None
        self._async_lock = anyio.Lock()
        self._sync_lock = threading.Lock()

    # -- the flows -----------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.read()
        response = yield request
        if response.status_code != 402:
            return
        response.read()
        with self._sync_lock:
            steps = self._paid_flow(request, self._offer(response))
            answer: _Answer = None
            while (step := _next(steps, answer)) is not None:
                if isinstance(step, httpx.Request):
                    answer = yield step
                    answer.read()
                elif isinstance(step, _StoreCall):
                    run_blocking(step.call)
                    answer = None
                else:
                    answer = run_blocking(funder_call(self._funder, step))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        response = yield request
        if response.status_code != 402:
            return
        await response.aread()
        async with self._async_lock:
            steps = self._paid_flow(request, self._offer(response))
            answer: _Answer = None
            while (step := _next(steps, answer)) is not None:
                if isinstance(step, httpx.Request):
                    answer = yield step
                    await answer.aread()
                elif isinstance(step, _StoreCall):
                    await step.call()
                    answer = None
                else:
                    answer = await funder_call(self._funder, step)()

    def _paid_flow(self, request: httpx.Request, offer: Offer) -> Generator[_Step, _Answer, None]:
        """The paid part of a flow, sans I/O: it yields what to do (a store call, a funder
        call, the request to send) and takes its outcome (None, the new terms, the response
        with its body read); the two flows above only carry these out, sync or async."""
        yield _StoreCall(call=self._load)
        retried = False
        while True:
            signed = yield from self._pay(offer)
            yield _StoreCall(call=lambda: self._save(offer.payee))
            paid = self._attach(request, offer, signed)
            response = cast("httpx.Response", (yield request))
            if retried or not self._recover(response, paid):
                break
            retried = True
        refusal = self._refusal(response, paid)
        if refusal is not None:
            error, retire = refusal
            if retire:
                yield _StoreCall(call=lambda: self._retire(offer.payee))
            raise error
        self._check_answer(response, paid)

    # -- the channel store ---------------------------------------------------------------------

    async def _load(self) -> None:
        """Load this device's open channels from the store, once."""
        if self._loaded or self._store is None:
            return
        for record in await self._store.records(Role.PAYER):
            terms = record.terms
            ours = terms.payer == self._signer.public_key and terms.network_id == self.network_id
            if ours and not terms.bidirectional and record.state in PAYING_STATES:
                self.channels[terms.payee] = PayerChannel.restore(
                    terms, self._signer, record.latest, record.state
                )
        self._loaded = True

    async def _save(self, payee: PublicKey) -> None:
        """Make the channel to `payee` durable (before its newest proof leaves the device)."""
        if self._store is None:
            return
        await self._store.save(ChannelRecord.of(self.channels[payee], Role.PAYER))

    async def _retire(self, payee: PublicKey) -> None:
        """Stop paying on the channel to `payee`: saved as CLOSING, then forgotten (the next
        payment opens a new one)."""
        held = self.channels[payee]
        if self._store is not None:
            closing = PayerChannel.restore(held.terms, self._signer, held.latest, held.state)
            closing.advance(ChannelState.CLOSING)
            with anyio.CancelScope(shield=True):
                await self._store.save(ChannelRecord.of(closing, Role.PAYER))
        del self.channels[payee]
        self._refused.pop(payee, None)

    # -- the steps (no I/O) --------------------------------------------------------------------

    def _offer(self, response: httpx.Response) -> Offer:
        offer = parse_offer(response.headers)
        if offer.network_id != self.network_id:
            raise OfferError(f"network {offer.network_id}, this device pays on {self.network_id}")
        if self.payee is not None and offer.payee != self.payee:
            raise OfferError("the payee is not the one this device pays")
        if offer.channel.min_deposit > self.funding.max_deposit:
            raise OfferError(
                f"the payee wants a deposit of {offer.channel.min_deposit}, "
                f"the funding policy allows {self.funding.max_deposit}"
            )
        return offer

    def _check_budget(self, price: int, new: int) -> None:
        """`price` is the request's, `new` what must be signed away beyond what already was."""
        if price > self.budget.per_request:
            raise BudgetExceededError("per-request", price, self.budget.per_request)
        left = self.budget.total - self.spent
        if new > left:
            raise BudgetExceededError("total", new, max(0, left))

    def _pay(self, offer: Offer) -> Generator[FunderCall, ChannelTerms, _Signed]:
        """The steps of one payment: funder calls out, their terms in, the proof to send last
        (a refused one again if it pays the price, see the module docstring)."""
        price = offer.price
        channel = self.channels.get(offer.payee)
        refused = self._refused.get(offer.payee)
        owed = 0
        if refused is not None and channel is not None and channel.latest == refused.proof:
            owed = refused.credit
        self._check_budget(price, max(0, price - owed))
        if price == 0:
            raise OfferError("a 402 with a price of 0")
        if refused is not None and price <= owed:
            return _Signed(proof=refused.proof, credit=owed)
        price -= owed
        if channel is None:
            deposit = min(
                max(self.funding.deposit, offer.channel.min_deposit, price),
                self.funding.max_deposit,
            )
            if deposit < price:
                raise BudgetExceededError("deposit", price, deposit)
            terms = yield OpenChannel(payee=offer.payee, deposit=deposit)
            channel = self._adopt(terms, offer, deposit)
        left = channel.payer_balance
        if left < price or left - price < self.funding.low_water:
            amount = max(self.funding.top_up, price - left)
            terms = yield TopUp(terms=channel.terms, amount=amount)
            self._apply_top_up(channel, terms, amount)
        proof = channel.pay(price)
        self.spent += price
        return _Signed(proof=proof, credit=owed + price)

    def _adopt(self, terms: ChannelTerms, offer: Offer, deposit: int) -> PayerChannel:
        checks = (
            ("payee", terms.payee == offer.payee),
            ("payer", terms.payer == self._signer.public_key),
            ("network_id", terms.network_id == self.network_id),
            ("bidirectional", not terms.bidirectional),
            ("deposit", terms.deposit >= deposit),
            ("challenge_period", terms.challenge_period >= offer.channel.min_challenge_period),
        )
        for field, ok in checks:
            if not ok:
                raise FundingError(field, "differs from what was asked for")
        channel = PayerChannel(terms, self._signer)
        self.channels[offer.payee] = channel
        return channel

    def _apply_top_up(self, channel: PayerChannel, terms: ChannelTerms, amount: int) -> None:
        old = channel.terms
        if terms.channel_id != old.channel_id or terms.payee != old.payee:
            raise FundingError("channel_id", "the top-up returned another channel")
        if terms.deposit < old.deposit + amount:
            raise FundingError("deposit", f"{terms.deposit} after adding {amount} to {old.deposit}")
        channel.top_up(terms.deposit)

    def _attach(self, request: httpx.Request, offer: Offer, signed: _Signed) -> Paid:
        request.headers[PROOF_HEADER] = b64url_encode(encode_signed_proof(signed.proof))
        raw_path = request.url.raw_path.split(b"?", 1)[0]
        tag = request_tag(request.method, raw_path, request.url.query)
        return Paid(offer=offer, proof=signed.proof, tag=tag, credit=signed.credit)

    def _recover(self, response: httpx.Response, paid: Paid) -> bool:
        """Adopt the payee's latest proof from a stale refusal, if it is newer and ours (else
        `InvalidProofError`); True if the payment should be made again from there."""
        header = response.headers.get(LATEST_HEADER)
        if response.status_code != 409 or header is None:
            return False
        try:
            latest = decode_signed_proof(b64url_decode(header, MalformedReceiptError))
        except (ChannelFrameError, MalformedReceiptError):
            return False
        if not self.channels[paid.offer.payee].recover(latest):
            return False
        self._refused.pop(paid.offer.payee, None)
        if latest.proof.payee_balance + paid.offer.price >= paid.proof.proof.payee_balance:
            self.spent -= paid.offer.price  # the payment made again supersedes the refused one
        return True

    def _refusal(
        self, response: httpx.Response, paid: Paid
    ) -> tuple[PaymentRejectedError, bool] | None:
        """The payee's refusal of the payment, if the answer is one, and whether it retires
        the channel; a refusal that changed nothing at the payee keeps the proof to be sent
        again (see the module docstring)."""
        payee = paid.offer.payee
        status = response.status_code
        before = self._refused.pop(payee, None)
        if RECEIPT_HEADER in response.headers or not (400 <= status < 500 or status == 503):
            return None
        code, message = _error_of(response)
        if status in UNCHANGED_STATUSES:
            self._refused[payee] = _Refused(proof=paid.proof, credit=paid.credit, code=code)
        again = before is not None and before.code == code and before.proof == paid.proof
        retire = code in RETIRING_CODES or (code == "unknown_channel" and again)
        return PaymentRejectedError(status, code, message), retire

    def _check_answer(self, response: httpx.Response, paid: Paid) -> None:
        header = response.headers.get(RECEIPT_HEADER)
        if header is None:
            raise MalformedReceiptError(f"a {response.status_code} answer without a receipt")
        receipt = receipt_from_header(header)
        terms = self.channels[paid.offer.payee].terms
        receipt.verify(terms.payee)
        proof = paid.proof.proof
        checks: tuple[tuple[str, object, object], ...] = (
            ("kind", ReceiptKind.REQUEST, receipt.kind),
            ("network_id", proof.network_id, receipt.network_id),
            ("channel_id", proof.channel_id, receipt.channel_id),
            ("sequence", proof.sequence, receipt.sequence),
            ("cumulative_amount", proof.payee_balance, receipt.cumulative_amount),
            ("credited", paid.credit, receipt.credited),
            ("units", paid.offer.units, receipt.units),
            ("tag", paid.tag, receipt.tag),
        )
        for field, want, got in checks:
            if want != got:
                raise ReceiptMismatchError(field, want, got)
        self.receipts.append(receipt)


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """The `{"error": {"code", "message"}}` of a refusal, or `http_<status>`."""
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.reason_phrase
    if not isinstance(code, str) or not isinstance(message, str):
        return f"http_{response.status_code}", response.reason_phrase
    return code, message[:300]
