"""Paying for a charge over a payment channel: the CPO's side (`ChargePayments`) and the
driver's (`DriverWallet`), on the metering and receipts of `payments.payperuse`.

*Pay as you charge.* The driver binds an id token (RFID card, app token) to the one-way channel
it pays from, signing `BIND_DOMAIN || channel id || token` with the channel's payer key. Authorize
accepts the token only if the channel, as the ledger has it (the `Cashier`'s directory: a node's
HTTP API in production), is open to this CPO and its payer balance covers the first increment
(`increment_wh` at the tariff). A session started with the token is bound to the channel and may
owe at most `margin`; the session core stops it when it owes more (within one meter interval:
the check runs on every meter value). As meter values arrive the driver fetches the invoice
(cumulative: energy so far, its price, what was paid), checks it against its own measure of the
energy (`PayerMeter`: a bill above the meter is refused with `OverchargeError`), pays the
difference with the next balance proof, and gets a METERED receipt signed with the CPO's channel
key for each increment, checked in turn.

*Prepaid.* The driver pays an amount up front through the channel (`prepay`); its sessions stop
once the energy that amount buys is delivered. The unused rest is owed back to the driver and
shown on the bill (`refund`); a one-way channel cannot carry money back, so the CPO returns it
by a ledger transfer to the channel payer's address (`refund.PrepaidRefunds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from tangle.protocol.ids import ChannelId
from tangle.protocol.signature import is_valid

from ..errors import StaleProofError
from ..payperuse.metering import Invoice, Meter, PayerMeter
from ..payperuse.receipt import NO_TAG
from .channel_rows import CsmsChannels, paying_for
from .errors import (
    InvoiceDisagreesError,
    PrepaymentOwedBackError,
    TokenBindingError,
    UnknownSessionError,
)
from .session import SessionLimits
from .store import Binding, CsmsStore

if TYPE_CHECKING:
    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import PublicKey
    from tangle.protocol.signature import Signer

    from ..channels.core import PayerChannel
    from ..payperuse.cashier import Cashier
    from ..payperuse.metering import Tariff
    from ..payperuse.receipt import Receipt
    from .csms import Csms
    from .devices import DeviceGate
    from .session import ChargingSession

BIND_DOMAIN: Final = b"tanglepay/charging/bind/v1"
LAST_RECEIPTS: Final = 100_000
"""Sessions whose last receipt `ChargePayments` keeps to answer a re-sent payment (the oldest
is forgotten first)."""
MAX_ID_TOKEN: Final = 36
"""The longest id token bound to a channel: OCPP 2.0.1's IdTokenType.idToken (1.6's idTag is
20), so a longer one could never start a session."""
MAX_TOKENS_PER_CHANNEL: Final = 16
"""The most id tokens bound to one channel (a driver's cards, phone and car)."""


def bind_message(channel_id: ChannelId, id_token: str) -> bytes:
    """What the channel's payer signs to bind `id_token` to it."""
    return BIND_DOMAIN + channel_id + id_token.encode()


def session_tag(key: tuple[str, str]) -> bytes:
    """The 32-byte tag of a session's receipts: its key, padded (ids are at most 64 chars, so
    longer keys are cut; the channel and sequence bind a receipt all the same)."""
    raw = f"{key[0]}/{key[1]}".encode()[:32]
    return raw + NO_TAG[len(raw) :]


@dataclass(slots=True)
class ChargePayments:
    """The CPO's side (see the module docstring): authorizes tokens, prices sessions with a
    per-kWh `Tariff`, takes payments and signs receipts. The cashier's channels are kept in the
    CSMS's own store (`channel_rows.CsmsChannels`), so a payment is one commit."""

    csms: Csms
    cashier: Cashier
    signer: Signer
    tariff: Tariff
    margin: int
    """The most a pay-as-you-charge driver may owe, in minor units."""
    increment_wh: int = 1000
    """The first increment Authorize requires the channel to cover."""
    devices: DeviceGate | None = None
    """If set, a token whose device or channel payer key is quarantined is refused."""
    _last: dict[tuple[str, str], tuple[SignedBalanceProof, Receipt]] = field(
        default_factory=dict, init=False, repr=False
    )
    """Each live session's last payment and its receipt: the same payment sent again (its
    answer was lost on the way) gets the same receipt, not a `StaleProofError`."""

    def __post_init__(self) -> None:
        channels = self.cashier.service.store
        if not isinstance(channels, CsmsChannels) or channels.store is not self.csms.store:
            raise TypeError(
                "the cashier's channels must be kept in the CSMS's store (CsmsChannels)"
            )

    def pricing(self, start_s: int, energy_wh: int, duration_s: int) -> int:
        """The price of a session paid through a channel: the tariff's cost of its energy."""
        del start_s, duration_s
        return self.tariff.cost(energy_wh)

    async def bind(self, id_token: str, channel_id: ChannelId, signature: bytes) -> None:
        """Bind `id_token` to the driver's channel; `TokenBindingError` unless the channel's
        payer signed `bind_message` (the channel must be acceptable to the cashier), if the
        token is not 1 to `MAX_ID_TOKEN` characters, if it is bound to another channel, or if
        `MAX_TOKENS_PER_CHANNEL` others are bound to this one (only the operator unbinds:
        `unbind`; so one channel's payer cannot grow the token table without bound). Binding
        the same channel again keeps the token's prepaid amount."""
        if not 0 < len(id_token) <= MAX_ID_TOKEN:
            raise TokenBindingError(id_token[:MAX_ID_TOKEN], "not 1 to 36 characters long")
        channel = await self.cashier.open(channel_id)
        if not is_valid(channel.terms.payer, bind_message(channel_id, id_token), signature):
            raise TokenBindingError(id_token, "not signed by the channel's payer")
        store = self.csms.store
        if not await store.bind_token(id_token, channel_id, MAX_TOKENS_PER_CHANNEL):
            bound = await store.token(id_token)
            if bound is not None and bound[0] != channel_id:
                raise TokenBindingError(id_token, "bound to another channel (the operator unbinds)")
            raise TokenBindingError(
                id_token, f"its channel has {MAX_TOKENS_PER_CHANNEL} tokens (the operator unbinds)"
            )

    async def unbind(self, id_token: str) -> int | None:
        """The operator's unbinding of `id_token` (so that it can be bound to another channel):
        the prepaid amount it held, owed back to the driver of its channel from the same commit
        on (`refund.PrepaidRefunds` pays it); None if unbound."""
        return await self.csms.store.refunds.unbind_token(id_token)

    async def prepay(self, id_token: str, signed: SignedBalanceProof) -> Receipt:
        """Take a payment up front for the token's next session (the token must be bound:
        else `TokenBindingError` and nothing is taken). The proof and its credit are one commit:
        the token's prepaid amount if the token is still bound to the proof's channel then, else
        (the operator unbound or rebound it meanwhile) an owed refund to the channel's payer
        (`CsmsStore.add_credit`), answered with `PrepaymentOwedBackError`. The answer is what
        that commit did (the owed row it wrote, found by the proof: `RefundRows.owed_back`),
        whatever the token's binding is by then; if the refunder paid that row already, the
        token not bound to the channel tells it."""
        bound = await self.csms.store.token(id_token)
        if bound is None or bound[0] != signed.proof.channel_id:
            raise TokenBindingError(id_token, "not bound to this proof's channel")
        channel_id, sequence = bound[0], signed.proof.sequence
        with paying_for(
            lambda credited: CsmsStore.add_credit(id_token, channel_id, credited, sequence)
        ):
            credit = await self.cashier.accept(signed, price=1)  # one commit: proof and credit
        if await self.csms.store.refunds.owed_back(channel_id, sequence):
            raise PrepaymentOwedBackError(id_token, credit.credited)
        after = await self.csms.store.token(id_token)
        if after is None or after[0] != channel_id:  # owed back, and paid meanwhile
            raise PrepaymentOwedBackError(id_token, credit.credited)
        meter = self._meter(signed.proof.channel_id, (id_token, "prepaid"))
        return meter.credit(signed.proof, credit.credited)

    async def authorize(self, id_token: str) -> Binding | None:
        """How a session with `id_token` is paid, or None: unbound token, or a channel that
        cannot cover the first increment (nor a prepaid amount that does). Only looks: a
        prepaid amount is taken when the session is bound (`CsmsStore.bind`). A quarantined
        device is refused by name (`DeviceQuarantinedError`, with `devices`)."""
        bound = await self.csms.store.token(id_token)
        if bound is None:
            return None
        channel_id, prepaid = ChannelId(bound[0]), bound[1]
        first = self.tariff.cost(self.increment_wh)
        if self.devices is not None:
            payer = (await self.cashier.open(channel_id)).terms.payer
            await self.devices.check(id_token, bytes(payer))
        if prepaid:
            if prepaid < first:
                return None
            limits = SessionLimits(energy_wh=self.tariff.units_for(prepaid))
            return Binding(id_token=id_token, channel_id=channel_id, limits=limits, paid=prepaid)
        channel = await self.cashier.open(channel_id)
        if channel.payer_balance < first:
            return None
        limits = SessionLimits(margin=self.margin)
        return Binding(id_token=id_token, channel_id=channel_id, limits=limits, paid=0)

    def _session(self, key: tuple[str, str]) -> ChargingSession:
        session = self.csms.book.sessions.get(key)
        if session is None:
            raise UnknownSessionError(key)
        return session

    async def invoice(self, key: tuple[str, str]) -> Invoice:
        """The session's bill so far: energy, its price, what was paid (the final bill once the
        session ended and was paid in full)."""
        if key not in self.csms.book.sessions:
            return await self._final_invoice(key)
        session = self._session(key)
        binding = self.csms.bindings.get(key)
        if binding is None or binding.channel_id is None:
            raise UnknownSessionError(key)
        return Invoice(
            channel_id=ChannelId(binding.channel_id),
            units=session.energy_wh,
            amount=session.billed(),
            paid=session.paid,
        )

    async def _final_invoice(self, key: tuple[str, str]) -> Invoice:
        bill = await self.csms.store.bill_of(key)
        binding = await self.csms.store.binding(key)
        if bill is None or binding is None or binding.channel_id is None:
            raise UnknownSessionError(key)
        return Invoice(
            channel_id=ChannelId(binding.channel_id),
            units=bill.energy_wh,
            amount=bill.amount,
            paid=binding.paid,
        )

    async def pay(
        self, key: tuple[str, str], signed: SignedBalanceProof, billed: Invoice | None = None
    ) -> Receipt:
        """Take one payment for session `key` (the channel core's checks in the cashier, and
        one durable commit of the proof with the session's paid amount: `channel_rows`), count
        it, and sign its receipt for the units paid for.

        `billed` is the invoice the driver computed from its own meter and paid (one request
        per payment): taken only if the CSMS bills the same, its units no more than the CSMS
        metered and its amount the tariff's for them; else `InvoiceDisagreesError` with the
        CSMS's own invoice and nothing taken. None pays toward the CSMS's invoice as it is."""
        session = self._session(key)
        binding = self.csms.bindings.get(key)
        if binding is None or binding.channel_id != signed.proof.channel_id:
            raise TokenBindingError(session.id_token or "", "the proof's channel is not bound")
        units = session.energy_wh if billed is None else billed.units
        if billed is not None and (
            billed.channel_id != signed.proof.channel_id
            or billed.units > session.energy_wh
            or billed.amount != self.tariff.cost(billed.units)
        ):
            raise InvoiceDisagreesError(key, session.energy_wh, session.billed(), session.paid)
        try:
            with paying_for(lambda credited: CsmsStore.add_paid(key, credited)):  # one commit
                credit = await self.cashier.accept(signed, price=1)
        except StaleProofError:
            last = self._last.get(key)
            if last is not None and last[0] == signed:
                return last[1]  # taken before, its answer lost: the same receipt again
            raise
        session.credit(credit.credited)
        meter = self._meter(signed.proof.channel_id, key)
        meter.record(units)
        receipt = meter.credit(signed.proof, credit.credited)
        self.csms.settle_if_done(session)
        self._last.pop(key, None)
        if key in self.csms.book.sessions:
            if len(self._last) >= LAST_RECEIPTS:
                del self._last[next(iter(self._last))]
            self._last[key] = (signed, receipt)
        return receipt

    def _meter(self, channel_id: ChannelId, key: tuple[str, str]) -> Meter:
        return Meter(
            self.tariff,
            signer=self.signer,
            network_id=self.cashier.network_id,
            channel_id=channel_id,
            session=session_tag(key),
        )

    def refund(self, session: ChargingSession) -> int:
        """What a prepaid session's driver is owed back: paid beyond the bill."""
        return max(0, session.paid - session.billed())


class DriverWallet:
    """The driver's side of one session: its own measure of the energy, the bills it accepts,
    the payments it signs and the receipts it checks."""

    __slots__ = ("channel", "meter", "pending")

    def __init__(
        self, channel: PayerChannel, tariff: Tariff, cpo: PublicKey, key: tuple[str, str]
    ) -> None:
        self.channel = channel
        self.meter = PayerMeter(
            tariff,
            payee=cpo,
            network_id=channel.terms.network_id,
            channel_id=channel.terms.channel_id,
            session=session_tag(key),
        )
        self.pending: tuple[Invoice, SignedBalanceProof] | None = None
        """A payment sent and not yet acknowledged (`pay_seen`, `check`)."""

    def bind_signature(self, signer: Signer, id_token: str) -> bytes:
        """The payer's signature binding `id_token` to this channel."""
        return bytes(signer.sign(bind_message(self.channel.terms.channel_id, id_token)))

    def observe(self, register_wh: int, start_wh: int) -> None:
        """The car's own meter: `register_wh - start_wh` delivered so far."""
        delivered = register_wh - start_wh
        if delivered > self.meter.units:
            self.meter.observe(delivered - self.meter.units)

    def settle(self, invoice: Invoice) -> SignedBalanceProof | None:
        """The proof paying what `invoice` says is due, or None; `OverchargeError` if it bills
        more than this side measured."""
        amount = self.meter.accept(invoice)
        if not amount:
            return None
        proof = self.channel.pay(amount)
        self.meter.paying(proof.proof, amount, invoice)
        return proof

    def own_invoice(self) -> Invoice:
        """The bill as this side measured it: the energy seen, its price, what was paid."""
        m = self.meter
        return Invoice(
            channel_id=m.channel_id, units=m.units, amount=m.tariff.cost(m.units), paid=m.paid
        )

    def pay_seen(self) -> tuple[Invoice, SignedBalanceProof] | None:
        """The payment to send next with the invoice it pays (one request per payment): the
        one sent last if its receipt is still owed (the CSMS had not metered that far), else
        a new proof for the energy seen so far; None when nothing is due."""
        if self.pending is None:
            invoice = self.own_invoice()
            proof = self.settle(invoice)
            if proof is not None:
                self.pending = (invoice, proof)
        return self.pending

    def disputed(self, invoice: Invoice) -> None:
        """The CSMS answered the pending payment with its own `invoice` and took nothing: the
        payment stays pending, sent again next time; `OverchargeError` if the CSMS bills more
        than this side measured (an overbilling CPO)."""
        self.meter.accept(invoice)

    def taken_unreceipted(self) -> None:
        """The CSMS refused the pending payment as stale (`stale_proof`): only this side signs
        the channel's proofs, so it holds that very proof; it took the payment and lost its
        receipt (restarted after taking it). The payment stays counted as paid in the meter
        (`paying` counted it), no receipt is expected, and the next payment goes on from it."""
        self.pending = None

    def check(self, receipt: Receipt) -> None:
        """Accept the receipt of the last payment, or raise (see `PayerMeter.check_receipt`)."""
        self.meter.check_receipt(receipt)
        self.pending = None
