"""Keys, terms and strategies shared by the payment-channel tests and their child processes."""

from __future__ import annotations

from typing import Final

from hypothesis import strategies as st

from payments.channels.core import ChannelTerms
from payments.channels.wire import (
    MAX_REASON,
    MAX_TAG,
    Ack,
    Countersign,
    Event,
    Hello,
    Pay,
    Propose,
    Reject,
)
from tangle.protocol.channel import BalanceProof, SignedBalanceProof
from tangle.protocol.codec import U64_MAX
from tangle.protocol.ids import ChannelId, Signature
from wallet.keys import AddressKey, ExtendedKey

NETWORK: Final = 7
PAYER: Final = AddressKey(ExtendedKey.from_seed(b"\x01" * 32))
PAYEE: Final = AddressKey(ExtendedKey.from_seed(b"\x02" * 32))
MALLORY: Final = AddressKey(ExtendedKey.from_seed(b"\x03" * 32))
CHANNEL: Final = ChannelId(b"\x09" * 32)


def terms(
    *, deposit: int = 1_000_000, bidirectional: bool = False, channel: ChannelId = CHANNEL
) -> ChannelTerms:
    return ChannelTerms(
        network_id=NETWORK,
        channel_id=channel,
        payer=PAYER.public_key,
        payee=PAYEE.public_key,
        deposit=deposit,
        bidirectional=bidirectional,
        challenge_period=100,
        expiry=10_000,
    )


def signed(
    key: AddressKey,
    sequence: int,
    balance: int,
    *,
    network: int = NETWORK,
    channel: ChannelId = CHANNEL,
    payee_key: AddressKey | None = None,
) -> SignedBalanceProof:
    """A proof signed by `key` (and `payee_key`), bypassing every channel core."""
    proof = BalanceProof(
        network_id=network, channel_id=channel, sequence=sequence, payee_balance=balance
    )
    message = proof.message()
    return SignedBalanceProof(
        proof=proof,
        payer_signature=key.sign(message),
        payee_signature=None if payee_key is None else payee_key.sign(message),
    )


u64s = st.integers(0, U64_MAX)
signatures = st.binary(min_size=64, max_size=64).map(Signature)
channel_ids = st.binary(min_size=32, max_size=32).map(ChannelId)
signed_proofs = st.builds(
    SignedBalanceProof,
    proof=st.builds(
        BalanceProof, network_id=u64s, channel_id=channel_ids, sequence=u64s, payee_balance=u64s
    ),
    payer_signature=signatures,
    payee_signature=st.none() | signatures,
)


@st.composite
def hellos(draw: st.DrawFn) -> Hello:
    latest = draw(st.none() | signed_proofs)
    if latest is None:
        return Hello(
            network_id=draw(u64s), channel_id=draw(channel_ids), version=draw(st.integers(0, 255))
        )
    return Hello(
        network_id=latest.proof.network_id,
        channel_id=latest.proof.channel_id,
        latest=latest,
        version=draw(st.integers(0, 255)),
    )


reasons = st.text(max_size=MAX_REASON // 4)
events: st.SearchStrategy[Event] = st.one_of(
    hellos(),
    st.builds(
        Pay,
        sequence=u64s,
        payee_balance=u64s,
        payer_signature=signatures,
        tag=st.binary(max_size=MAX_TAG),
    ),
    st.builds(Ack, sequence=u64s),
    st.builds(Reject, sequence=u64s, code=st.integers(0, 0xFFFF), reason=reasons),
    st.builds(Propose, sequence=u64s, payee_balance=u64s, signature=signatures),
    st.builds(Countersign, sequence=u64s, signature=signatures),
)
