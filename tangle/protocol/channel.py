"""Payment channels on the ledger: the channel-lock output, balance proofs and channel unlocks.

A channel locks a deposit in a `ChannelOutput` that names a payer and a payee by their ed25519
keys. Off the ledger the payer signs `BalanceProof`s (network id, channel id, sequence number,
the payee's balance); on the ledger a transaction spends the channel output with a
`ChannelUnlock` whose `ChannelOp` says what it does. The rules a milestone enforces are in
`channel_rules.py` and docs/PROTOCOL.md section 10.

A one-way channel's proofs are signed by the payer alone and the payee's balance is the
cumulative amount paid. A two-way (bidirectional) channel's states are signed by both parties;
the highest sequence number wins.

Encodings (after the output or unlock type byte):

```
channel output (output type 1):
  32   channel_id         H(domain || first input of the opening transaction || u16 output index)
  32   payer              ed25519 public key (party A)
  32   payee              ed25519 public key (party B)
  u64  amount             the deposit, 1..U64_MAX
  u8   bidirectional      0 or 1
  u32  challenge_period   milestones, 1..MAX_CHALLENGE_PERIOD
  u32  expiry             milestone index after which the channel counts as closing
  u64  sequence           sequence number of the state on the ledger
  u64  payee_balance      the payee's share of the deposit in that state, <= amount
  u32  closing_since      0 while open; else the milestone that confirmed the start of the close

channel unlock (unlock type 2):
  u8   op                 ChannelOp
  32   channel_id, 32 payer, 32 payee    must equal the spent channel output's
  u8   signers            bit 0: payer signed the transaction, bit 1: payee did (1..3)
  64   signature per set bit, payer's first, over the transaction's signing message
  u8   has_proof          0 or 1; if 1:
  u64  sequence, u64 payee_balance, 64 payer signature,
  u8   has_payee_signature (0 or 1), 64 payee signature if 1
```
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError, NonCanonicalError, UnknownTypeError

from .codec import U32_MAX, U64_MAX, require_uint, u8, u16, u32, u64
from .ids import Address, ChannelId, OutputId, PublicKey, Signature, blake2b_256
from .signature import is_valid

if TYPE_CHECKING:
    from .codec import Reader

CHANNEL_ID_DOMAIN: Final = b"tanglepay/channel-id/v1"
BALANCE_PROOF_DOMAIN: Final = b"tanglepay/balance-proof/v1"
MAX_CHALLENGE_PERIOD: Final = 1_000_000
"""About 11.5 days of 1 s milestones."""

SIGNED_BY_PAYER: Final = 1
SIGNED_BY_PAYEE: Final = 2


def channel_id_of(first_input: OutputId, output_index: int) -> ChannelId:
    """The id of a channel opened at `output_index` of a transaction whose first input is given.

    Outputs are spent once, so no two channels ever get the same id."""
    return ChannelId(blake2b_256(CHANNEL_ID_DOMAIN, first_input, u16(output_index)))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelOutput:
    """A deposit locked between a payer and a payee (see the module docstring)."""

    channel_id: ChannelId
    """Stable over top-ups and state updates; `channel_id_of` for a new channel."""
    payer: PublicKey
    """Party A: funds the deposit and signs every balance proof."""
    payee: PublicKey
    """Party B: is paid; co-signs states of a bidirectional channel."""
    amount: int
    """The deposit, in base units."""
    bidirectional: bool
    """True if states need both signatures (operator-to-operator flows)."""
    challenge_period: int
    """Milestones between the start of a unilateral close (or the expiry) and settlement."""
    expiry: int
    """Milestone index; after it the channel counts as closing from `expiry` on."""
    sequence: int = 0
    """Sequence number of the state recorded on the ledger."""
    payee_balance: int = 0
    """The payee's share of `amount` in that state."""
    closing_since: int = 0
    """0 while open; else the index of the milestone that confirmed the start of the close."""

    def __post_init__(self) -> None:
        if not isinstance(self.channel_id, ChannelId):
            raise InvalidFieldError("ChannelOutput.channel_id", "must be a ChannelId")
        if not isinstance(self.payer, PublicKey) or not isinstance(self.payee, PublicKey):
            raise InvalidFieldError("ChannelOutput.payer/payee", "must be PublicKeys")
        if self.payer == self.payee:
            raise InvalidFieldError("ChannelOutput.payee", "payer and payee are the same key")
        require_uint("ChannelOutput.amount", self.amount, U64_MAX, minimum=1)
        if not isinstance(self.bidirectional, bool):
            raise InvalidFieldError("ChannelOutput.bidirectional", "must be a bool")
        require_uint(
            "ChannelOutput.challenge_period", self.challenge_period, MAX_CHALLENGE_PERIOD, 1
        )
        require_uint("ChannelOutput.expiry", self.expiry, U32_MAX, minimum=1)
        require_uint("ChannelOutput.sequence", self.sequence, U64_MAX)
        require_uint("ChannelOutput.payee_balance", self.payee_balance, self.amount)
        require_uint("ChannelOutput.closing_since", self.closing_since, U32_MAX)

    @property
    def address(self) -> Address:
        """The key the ledger indexes this output under: the channel id."""
        return Address(self.channel_id)

    def closes_at(self) -> int:
        """The first milestone index at which SETTLE is valid (if nothing else happens first)."""
        start = self.expiry if self.closing_since == 0 else min(self.closing_since, self.expiry)
        return start + self.challenge_period

    def is_closing(self, index: int) -> bool:
        """True if, at milestone `index`, a close has started or the channel has expired."""
        return self.closing_since != 0 or index > self.expiry

    def same_terms(self, other: ChannelOutput) -> bool:
        """True if `other` keeps this channel's id, parties, kind and challenge period."""
        return (
            other.channel_id == self.channel_id
            and other.payer == self.payer
            and other.payee == self.payee
            and other.bidirectional == self.bidirectional
            and other.challenge_period == self.challenge_period
        )


def encode_channel_output(o: ChannelOutput) -> bytes:
    return b"".join(
        (
            o.channel_id,
            o.payer,
            o.payee,
            u64(o.amount),
            u8(int(o.bidirectional)),
            u32(o.challenge_period),
            u32(o.expiry),
            u64(o.sequence),
            u64(o.payee_balance),
            u32(o.closing_since),
        )
    )


def _flag(r: Reader, what: str) -> bool:
    value = r.u8(what)
    if value > 1:
        raise NonCanonicalError(f"{what} flag is {value}, not 0 or 1")
    return value == 1


def decode_channel_output(r: Reader) -> ChannelOutput:
    channel_id = ChannelId(r.take(32, "channel.channel_id"))
    payer = PublicKey(r.take(32, "channel.payer"))
    payee = PublicKey(r.take(32, "channel.payee"))
    amount = r.u64("channel.amount")
    bidirectional = _flag(r, "channel.bidirectional")
    values = (
        r.u32("channel.challenge_period"),
        r.u32("channel.expiry"),
        r.u64("channel.sequence"),
        r.u64("channel.payee_balance"),
        r.u32("channel.closing_since"),
    )
    return ChannelOutput(
        channel_id=channel_id,
        payer=payer,
        payee=payee,
        amount=amount,
        bidirectional=bidirectional,
        challenge_period=values[0],
        expiry=values[1],
        sequence=values[2],
        payee_balance=values[3],
        closing_since=values[4],
    )


# -- balance proofs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceProof:
    """A channel state: who is owed what, bound to one network and one channel."""

    network_id: int
    """The network (a proof is never valid on another)."""
    channel_id: ChannelId
    """The channel (a proof is never valid on another)."""
    sequence: int
    """Grows with every new state; the highest wins a dispute."""
    payee_balance: int
    """The payee's share of the deposit: in a one-way channel, the cumulative amount paid."""

    def __post_init__(self) -> None:
        require_uint("BalanceProof.network_id", self.network_id, U64_MAX)
        if not isinstance(self.channel_id, ChannelId):
            raise InvalidFieldError("BalanceProof.channel_id", "must be a ChannelId")
        require_uint("BalanceProof.sequence", self.sequence, U64_MAX)
        require_uint("BalanceProof.payee_balance", self.payee_balance, U64_MAX)

    def message(self) -> bytes:
        """The bytes each party signs."""
        return b"".join(
            (
                BALANCE_PROOF_DOMAIN,
                u64(self.network_id),
                self.channel_id,
                u64(self.sequence),
                u64(self.payee_balance),
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedBalanceProof:
    """A balance proof with the payer's signature and, for two-way channels, the payee's."""

    proof: BalanceProof
    """The state."""
    payer_signature: Signature
    """The payer's ed25519 signature of `proof.message()`."""
    payee_signature: Signature | None = None
    """The payee's signature of the same bytes (required in bidirectional channels)."""

    def verify(self, payer: PublicKey, payee: PublicKey, *, bidirectional: bool) -> bool:
        """True iff the signatures the channel kind needs are present and valid."""
        message = self.proof.message()
        if not is_valid(payer, message, self.payer_signature):
            return False
        if not bidirectional:
            return True
        return self.payee_signature is not None and is_valid(payee, message, self.payee_signature)


# -- channel unlocks -------------------------------------------------------------------------


class ChannelOp(IntEnum):
    """What a transaction does to the channel output it spends."""

    TOP_UP = 0
    """The payer adds funds and may extend the expiry; the channel must be open."""
    COOPERATIVE_CLOSE = 1
    """Both parties sign; the outputs are whatever they agreed."""
    PAYEE_CLOSE = 2
    """One-way channels: the payee settles at once with a payer-signed proof."""
    START_CLOSE = 3
    """A party starts the challenge period (two-way: optionally with a newer co-signed state)."""
    CHALLENGE = 4
    """Two-way channels, while closing: a party records a newer co-signed state."""
    SETTLE = 5
    """After the challenge period: pay out the state recorded on the ledger."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelUnlock:
    """Authorises spending a channel output for one `ChannelOp`."""

    op: ChannelOp
    """What the transaction does."""
    channel_id: ChannelId
    """The spent channel's id."""
    payer: PublicKey
    """The spent channel's payer key."""
    payee: PublicKey
    """The spent channel's payee key."""
    payer_signature: Signature | None = None
    """The payer's signature of the transaction's signing message, if the payer signed."""
    payee_signature: Signature | None = None
    """The payee's signature of the transaction's signing message, if the payee signed."""
    proof: SignedBalanceProof | None = None
    """A balance proof, for PAYEE_CLOSE, CHALLENGE and a two-way START_CLOSE."""

    def __post_init__(self) -> None:
        if not isinstance(self.op, ChannelOp):
            raise InvalidFieldError("ChannelUnlock.op", "must be a ChannelOp")
        if not isinstance(self.channel_id, ChannelId):
            raise InvalidFieldError("ChannelUnlock.channel_id", "must be a ChannelId")
        if self.payer_signature is None and self.payee_signature is None:
            raise InvalidFieldError("ChannelUnlock", "needs at least one party's signature")
        if self.proof is not None and self.proof.proof.channel_id != self.channel_id:
            raise InvalidFieldError("ChannelUnlock.proof", "is for another channel")

    def signers(self) -> tuple[tuple[PublicKey, Signature], ...]:
        """The (key, signature) pairs over the transaction's signing message."""
        pairs = []
        if self.payer_signature is not None:
            pairs.append((self.payer, self.payer_signature))
        if self.payee_signature is not None:
            pairs.append((self.payee, self.payee_signature))
        return tuple(pairs)


def encode_channel_unlock(unlock: ChannelUnlock) -> bytes:
    mask = (SIGNED_BY_PAYER if unlock.payer_signature is not None else 0) | (
        SIGNED_BY_PAYEE if unlock.payee_signature is not None else 0
    )
    parts = [
        u8(unlock.op),
        unlock.channel_id,
        unlock.payer,
        unlock.payee,
        u8(mask),
        *(signature for _, signature in unlock.signers()),
    ]
    proof = unlock.proof
    if proof is None:
        parts.append(u8(0))
    else:
        parts += [
            u8(1),
            u64(proof.proof.sequence),
            u64(proof.proof.payee_balance),
            proof.payer_signature,
        ]
        if proof.payee_signature is None:
            parts.append(u8(0))
        else:
            parts += [u8(1), proof.payee_signature]
    return b"".join(parts)


def decode_channel_unlock(r: Reader, network_id: int) -> ChannelUnlock:
    """Read a channel unlock; `network_id` (from the essence) completes its balance proof."""
    tag = r.u8("unlock.op")
    if tag > max(ChannelOp):
        raise UnknownTypeError("channel op", tag)
    channel_id = ChannelId(r.take(32, "unlock.channel_id"))
    payer = PublicKey(r.take(32, "unlock.payer"))
    payee = PublicKey(r.take(32, "unlock.payee"))
    mask = r.u8("unlock.signers")
    if not 1 <= mask <= SIGNED_BY_PAYER | SIGNED_BY_PAYEE:
        raise NonCanonicalError(f"channel unlock signer mask {mask}")
    payer_sig = Signature(r.take(64, "unlock.payer_signature")) if mask & 1 else None
    payee_sig = Signature(r.take(64, "unlock.payee_signature")) if mask & 2 else None
    proof = None
    if _flag(r, "unlock.has_proof"):
        state = BalanceProof(
            network_id=network_id,
            channel_id=channel_id,
            sequence=r.u64("proof.sequence"),
            payee_balance=r.u64("proof.payee_balance"),
        )
        proof_payer_sig = Signature(r.take(64, "proof.payer_signature"))
        proof_payee_sig = (
            Signature(r.take(64, "proof.payee_signature"))
            if _flag(r, "proof.has_payee_signature")
            else None
        )
        proof = SignedBalanceProof(
            proof=state, payer_signature=proof_payer_sig, payee_signature=proof_payee_sig
        )
    return ChannelUnlock(
        op=ChannelOp(tag),
        channel_id=channel_id,
        payer=payer,
        payee=payee,
        payer_signature=payer_sig,
        payee_signature=payee_sig,
        proof=proof,
    )
