"""The UTXO ledger: genesis, transaction rules, and the state the milestones move forward.

Rules a transaction must meet before any node attaches it (`validate_transaction`, stateless):
its network id, every output at least `min_output_amount` (the storage deposit that keeps dust
from bloating the ledger; a channel's payout is exempt), every signature a valid ed25519
signature of the transaction's signing message, at most one channel spent, a balance proof's
signatures valid, and a new channel output with the id and the initial state of a new channel.

Rules checked when a milestone applies it (`white_flag.py`, stateful): every input unspent, each
input's address is the BLAKE2b-256 of its unlock's public key (or the channel rules of
`channel_rules.py` allow the spend), and inputs and outputs sum to the same amount. A
transaction failing them stays in the tangle, marked conflicting with a `Conflict`.

The ledger state hash is a digest of the UTXO set at the confirmed milestone: the sum, modulo
2**256, of BLAKE2b-256(output id || output) over unspent outputs, hashed with the milestone index
and the device registry's digest (`registry.py`).
Being a sum, it is updated in O(1) per created or consumed output and does not depend on the order
in which outputs were applied. It is a consistency check between nodes, not a commitment a light
client may rely on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from tangle.errors import (
    IndexGapError,
    InvalidGenesisError,
    InvalidTransactionError,
    WrongNetworkError,
)
from tangle.protocol.channel import ChannelOp, ChannelOutput, ChannelUnlock, channel_id_of
from tangle.protocol.codec import U32_MAX, U64_MAX, require_uint, u32, u64
from tangle.protocol.ids import Address, OutputId, TransactionId, blake2b_256
from tangle.protocol.merkle import merkle_root
from tangle.protocol.signature import is_valid
from tangle.protocol.transaction import (
    BasicOutput,
    Output,
    ReferenceUnlock,
    SignatureUnlock,
    Transaction,
    encode_output,
    signing_message,
)

from .registry import Registry, registry_digest

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

STATE_DOMAIN: Final = b"tanglepay/ledger-state/v1"
GENESIS_DOMAIN: Final = b"tanglepay/genesis/v1"
_MOD: Final = 1 << 256


class Inclusion(IntEnum):
    """What a milestone made of a referenced message."""

    NO_TRANSACTION = 0
    INCLUDED = 1
    CONFLICTING = 2


class Conflict(IntEnum):
    """Why a referenced transaction was not applied."""

    NONE = 0
    INPUT_NOT_FOUND = 1
    INPUT_SPENT = 2
    AMOUNT_MISMATCH = 3
    UNLOCK_ADDRESS_MISMATCH = 4
    CHANNEL_UNLOCK_MISMATCH = 5
    """A channel unlock on a basic output, or one naming another channel or other keys."""
    CHANNEL_NOT_AUTHORISED = 6
    """The operation lacks a signature it needs (the payer's, or both parties')."""
    CHANNEL_WRONG_STATE = 7
    """The operation is not allowed now (channel closing, expired, not yet mature, wrong kind)."""
    CHANNEL_STALE_PROOF = 8
    """The balance proof is missing, not newer than the ledger's state, or beyond the deposit."""
    CHANNEL_BAD_OUTPUTS = 9
    """The continuing channel output or the payout is not what the operation requires."""
    # Device registry records (registry_rules.py), one code per rule.
    DEVICE_ALREADY_REGISTERED = 10
    DEVICE_NOT_REGISTERED = 11
    DEVICE_RECORD_REPLAYED = 12
    """The serial is not above the last one applied for that device or issuer."""
    DEVICE_KEY_NOT_SIGNED = 13
    """The device's current key (or the key it registers or rotates to) did not sign."""
    ENDORSER_NOT_ADMITTED = 14
    """A signer vouching for the record is not an admitted issuer of the role needed."""
    ENDORSEMENT_POLICY_UNMET = 15
    """The endorsements fall short of the network's policy (maker, operators, authorities)."""
    GATEWAY_NOT_USABLE = 16
    """A constrained device's gateway is unknown, constrained itself, or not active."""
    DEVICE_STATUS_INVALID = 17
    """The device is revoked, or the status record changes nothing."""
    COMMITTEE_QUORUM_UNMET = 18
    """An issuer admission not signed by a quorum of the committee in force (and only it)."""
    QUARANTINE_QUORUM_UNMET = 19
    """Fewer operators signed than the network's quarantine threshold."""
    NOT_QUARANTINED = 20
    """A lift for a device under no quarantine."""
    DEVICE_KEY_IN_USE = 21
    """The key is another device's current key."""
    QUARANTINE_EXPIRED = 22
    """A quarantine whose expiry is before the milestone that applies it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Genesis:
    """The snapshot a network starts from: the whole supply, minted once."""

    network_id: int
    """The network."""
    supply: int
    """Total base units; never changes afterwards."""
    allocations: tuple[tuple[Address, int], ...]
    """Initial outputs (address, amount); they sum to `supply`."""

    def __post_init__(self) -> None:
        require_uint("Genesis.network_id", self.network_id, U64_MAX)
        require_uint("Genesis.supply", self.supply, U64_MAX, minimum=1)
        if not 1 <= len(self.allocations) <= 0xFFFF:
            raise InvalidGenesisError(f"{len(self.allocations)} allocations")
        for address, amount in self.allocations:
            if not isinstance(address, Address):
                raise InvalidGenesisError("allocation addresses must be Addresses")
            require_uint("Genesis.allocations.amount", amount, U64_MAX, minimum=1)
        if sum(amount for _, amount in self.allocations) != self.supply:
            raise InvalidGenesisError("allocations do not sum to the supply")

    @property
    def transaction_id(self) -> TransactionId:
        """The pseudo-transaction whose outputs are the allocations."""
        return TransactionId(blake2b_256(GENESIS_DOMAIN, u64(self.network_id)))

    def outputs(self) -> dict[OutputId, Output]:
        tx_id = self.transaction_id
        return {
            OutputId.of(tx_id, i): BasicOutput(address=address, amount=amount)
            for i, (address, amount) in enumerate(self.allocations)
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    """An output consumed by a milestone."""

    output_id: OutputId
    """The output."""
    output: Output
    """What it held."""
    transaction_id: TransactionId
    """The transaction that spent it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerDiff:
    """The ledger changes of one milestone."""

    index: int
    """The milestone index."""
    created: tuple[tuple[OutputId, Output], ...]
    """New outputs, in white-flag order."""
    consumed: tuple[Spend, ...]
    """Outputs spent, in white-flag order."""


def output_leaf(output_id: OutputId, output: Output) -> int:
    return int.from_bytes(blake2b_256(output_id, encode_output(output)), "little")


@dataclass(slots=True)
class LedgerState:
    """The UTXO set at the confirmed milestone. Change it only with `apply_diff`."""

    network_id: int
    supply: int
    milestone_index: int = 0
    unspent: dict[OutputId, Output] = field(default_factory=dict)
    accumulator: int = 0
    registry: Registry = field(default_factory=Registry)
    """The device registry at the same milestone (`apply_registry_diff` moves it)."""

    @property
    def state_hash(self) -> bytes:
        return ledger_state_hash(self.milestone_index, self.accumulator, self.registry.digest)


EMPTY_REGISTRY_DIGEST: Final = registry_digest(merkle_root([]), [])


def ledger_state_hash(
    index: int, accumulator: int, registry: bytes = EMPTY_REGISTRY_DIGEST
) -> bytes:
    """The state hash; `registry` is the registry's digest (default: an empty registry)."""
    return blake2b_256(STATE_DOMAIN, u32(index), accumulator.to_bytes(32, "little"), registry)


def accumulate(outputs: Iterable[tuple[OutputId, Output]]) -> int:
    """The state accumulator of a set of unspent outputs (for replay and snapshot checks)."""
    return sum(output_leaf(oid, out) for oid, out in outputs) % _MOD


def genesis_state(genesis: Genesis) -> LedgerState:
    outputs = genesis.outputs()
    return LedgerState(
        network_id=genesis.network_id,
        supply=genesis.supply,
        unspent=outputs,
        accumulator=accumulate(outputs.items()),
    )


def restore_state(
    network_id: int,
    supply: int,
    index: int,
    unspent: Mapping[OutputId, Output],
    registry: Registry | None = None,
) -> LedgerState:
    """A ledger state loaded from storage or a snapshot (with its device registry, empty if
    None); refuses one that breaks the supply."""
    require_uint("LedgerState.milestone_index", index, U32_MAX)
    held = sum(o.amount for o in unspent.values())
    if held != supply:
        raise InvalidGenesisError(f"outputs hold {held}, the supply is {supply}")
    outputs = dict(unspent)
    return LedgerState(
        network_id=network_id,
        supply=supply,
        milestone_index=index,
        unspent=outputs,
        accumulator=accumulate(outputs.items()),
        registry=Registry() if registry is None else registry,
    )


def apply_diff(state: LedgerState, diff: LedgerDiff) -> None:
    """Move `state` to milestone `diff.index`."""
    if diff.index != state.milestone_index + 1:
        raise IndexGapError(state.milestone_index + 1, diff.index)
    acc = state.accumulator
    for spend in diff.consumed:
        del state.unspent[spend.output_id]
        acc -= output_leaf(spend.output_id, spend.output)
    for oid, output in diff.created:
        state.unspent[oid] = output
        acc += output_leaf(oid, output)
    state.accumulator = acc % _MOD
    state.milestone_index = diff.index


def unlock_key(tx: Transaction, input_position: int) -> bytes | None:
    """The public key that unlocks input `input_position`; None for a channel unlock."""
    unlock = tx.unlocks[input_position]
    if isinstance(unlock, ReferenceUnlock):
        # Transaction construction guarantees a reference names a signature unlock.
        unlock = tx.unlocks[unlock.index]
    return unlock.public_key if isinstance(unlock, SignatureUnlock) else None


def validate_transaction(tx: Transaction, network_id: int, min_output_amount: int) -> None:
    """The stateless checks a node makes before it attaches a transaction."""
    if tx.essence.network_id != network_id:
        raise WrongNetworkError(network_id, tx.essence.network_id)
    channel_unlocks = [u for u in tx.unlocks if isinstance(u, ChannelUnlock)]
    if len(channel_unlocks) > 1:
        raise InvalidTransactionError("a transaction spends at most one channel")
    spent = channel_unlocks[0] if channel_unlocks else None
    pays_out = spent is not None and spent.op in (ChannelOp.PAYEE_CLOSE, ChannelOp.SETTLE)
    for i, output in enumerate(tx.essence.outputs):
        if output.amount < min_output_amount and not pays_out:
            raise InvalidTransactionError(
                f"output {i} holds {output.amount}, below the deposit of {min_output_amount}"
            )
        if isinstance(output, ChannelOutput) and (
            spent is None or output.channel_id != spent.channel_id
        ):
            _validate_new_channel(tx, i, output)
    message = signing_message(tx.id)
    for i, unlock in enumerate(tx.unlocks):
        if isinstance(unlock, SignatureUnlock) and not is_valid(
            unlock.public_key, message, unlock.signature
        ):
            raise InvalidTransactionError(f"signature unlock {i} does not verify")
        if isinstance(unlock, ChannelUnlock):
            _validate_channel_signatures(i, unlock, message)


def _validate_new_channel(tx: Transaction, position: int, output: ChannelOutput) -> None:
    if output.channel_id != channel_id_of(tx.essence.inputs[0], position):
        raise InvalidTransactionError(
            f"output {position} opens a channel whose id is not derived from the first input"
        )
    if output.sequence != 0 or output.closing_since != 0:
        raise InvalidTransactionError(f"output {position} opens a channel with a later state")
    if output.payee_balance != 0:
        # A two-way channel that the payee co-funds records the payee's share as a co-signed
        # state (sequence 1) signed before the opening transaction, never in the output: every
        # state the parties sign then starts from a known zero.
        raise InvalidTransactionError(
            f"output {position} opens a channel that already owes the payee"
        )


def _validate_channel_signatures(position: int, unlock: ChannelUnlock, message: bytes) -> None:
    for key, signature in unlock.signers():
        if not is_valid(key, message, signature):
            raise InvalidTransactionError(f"channel unlock {position}: a signature does not verify")
    proof = unlock.proof
    if proof is None:
        return
    signed = proof.proof.message()
    payee_signature = proof.payee_signature
    if not is_valid(unlock.payer, signed, proof.payer_signature) or (
        payee_signature is not None and not is_valid(unlock.payee, signed, payee_signature)
    ):
        raise InvalidTransactionError(
            f"channel unlock {position}: the balance proof's signature does not verify"
        )
