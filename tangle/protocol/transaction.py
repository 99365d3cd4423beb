"""Value transfers: the transaction payload, its outputs and unlocks.

A transaction spends earlier outputs (its inputs, by `OutputId`) and creates new ones. Its id is
BLAKE2b-256 of the essence alone, and each signature covers that id with a domain prefix, so the
same signed transaction can be re-attached to new parents without re-signing.

Encoding of the transaction payload body (after the payload type byte):

```
essence:
  u64  network_id
  u16  input_count   (1..MAX_INPUTS), then input_count x OutputId (34 bytes), no duplicates
  u16  output_count  (1..MAX_OUTPUTS), then output_count x output
  u8   memo_length   (0..MAX_MEMO), memo bytes
u16  unlock_count (== input_count), then unlock_count x unlock

output:  u8 type; 0 = basic: Address (32) + u64 amount (1..U64_MAX)
                  1 = channel lock: see channel.py
unlock:  u8 type; 0 = signature: PublicKey (32) + Signature (64)
                  1 = reference: u16 index of an earlier signature unlock
                  2 = channel: see channel.py (its balance proof takes the essence's network id)
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from tangle.errors import InvalidFieldError, NonCanonicalError, UnknownTypeError

from .channel import (
    ChannelOutput,
    ChannelUnlock,
    decode_channel_output,
    decode_channel_unlock,
    encode_channel_output,
    encode_channel_unlock,
)
from .codec import U16_MAX, U64_MAX, Reader, require_bytes, require_uint, sized, u8, u16, u64
from .ids import Address, OutputId, PublicKey, Signature, TransactionId, blake2b_256

MAX_INPUTS: Final = 128
MAX_OUTPUTS: Final = 128
MAX_MEMO: Final = 64
SIGNING_DOMAIN: Final = b"tanglepay/transaction/v1"

OUTPUT_BASIC: Final = 0
OUTPUT_CHANNEL: Final = 1
UNLOCK_SIGNATURE: Final = 0
UNLOCK_REFERENCE: Final = 1
UNLOCK_CHANNEL: Final = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class BasicOutput:
    """Tokens locked to an address: spendable by a signature of the address's key."""

    address: Address
    """BLAKE2b-256 of the owner's ed25519 public key."""
    amount: int
    """Base units, 1..U64_MAX."""

    def __post_init__(self) -> None:
        if not isinstance(self.address, Address):
            raise InvalidFieldError("BasicOutput.address", "must be an Address")
        require_uint("BasicOutput.amount", self.amount, U64_MAX, minimum=1)


Output = BasicOutput | ChannelOutput


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureUnlock:
    """An ed25519 signature over the signing message of the transaction."""

    public_key: PublicKey
    """The signer's key; its BLAKE2b-256 must be the address of the spent output."""
    signature: Signature
    """ed25519 signature of `signing_message(transaction_id)`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceUnlock:
    """Reuses an earlier signature unlock for another input of the same address."""

    index: int
    """Position of an earlier `SignatureUnlock` in the unlock list."""

    def __post_init__(self) -> None:
        require_uint("ReferenceUnlock.index", self.index, U16_MAX)


Unlock = SignatureUnlock | ReferenceUnlock | ChannelUnlock


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionEssence:
    """The signed part of a transaction."""

    network_id: int
    """The network this transaction may be applied on (replay protection)."""
    inputs: tuple[OutputId, ...]
    """Outputs spent, each at most once."""
    outputs: tuple[Output, ...]
    """Outputs created; output i gets the id `OutputId.of(transaction_id, i)`."""
    memo: bytes = b""
    """Free data for the parties (an invoice number, an idempotency key), at most MAX_MEMO."""

    def __post_init__(self) -> None:
        require_uint("TransactionEssence.network_id", self.network_id, U64_MAX)
        if not 1 <= len(self.inputs) <= MAX_INPUTS:
            raise InvalidFieldError("TransactionEssence.inputs", f"count {len(self.inputs)}")
        if not all(isinstance(i, OutputId) for i in self.inputs):
            raise InvalidFieldError("TransactionEssence.inputs", "must be OutputIds")
        if len(set(self.inputs)) != len(self.inputs):
            raise InvalidFieldError("TransactionEssence.inputs", "an input appears twice")
        if not 1 <= len(self.outputs) <= MAX_OUTPUTS:
            raise InvalidFieldError("TransactionEssence.outputs", f"count {len(self.outputs)}")
        if not all(isinstance(o, BasicOutput | ChannelOutput) for o in self.outputs):
            raise InvalidFieldError("TransactionEssence.outputs", "unknown output object")
        if sum(o.amount for o in self.outputs) > U64_MAX:
            raise InvalidFieldError("TransactionEssence.outputs", "total amount overflows u64")
        require_bytes("TransactionEssence.memo", self.memo, MAX_MEMO)

    @property
    def total_output(self) -> int:
        return sum(o.amount for o in self.outputs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """A transaction essence with one unlock per input."""

    essence: TransactionEssence
    """What is signed."""
    unlocks: tuple[Unlock, ...]
    """Unlock i authorises input i."""
    id: TransactionId = field(init=False, repr=False, compare=False)
    """BLAKE2b-256 of the essence, computed once."""

    def __post_init__(self) -> None:
        if len(self.unlocks) != len(self.essence.inputs):
            raise InvalidFieldError(
                "Transaction.unlocks",
                f"{len(self.unlocks)} unlocks for {len(self.essence.inputs)} inputs",
            )
        for position, unlock in enumerate(self.unlocks):
            if isinstance(unlock, ReferenceUnlock):
                if unlock.index >= position or not isinstance(
                    self.unlocks[unlock.index], SignatureUnlock
                ):
                    raise InvalidFieldError(
                        "Transaction.unlocks",
                        f"reference at {position} must name an earlier signature unlock",
                    )
            elif not isinstance(unlock, SignatureUnlock | ChannelUnlock):
                raise InvalidFieldError("Transaction.unlocks", "unknown unlock object")
        object.__setattr__(self, "id", transaction_id(self.essence))

    def output_id(self, index: int) -> OutputId:
        return OutputId.of(self.id, index)


def transaction_id(essence: TransactionEssence) -> TransactionId:
    return TransactionId(blake2b_256(encode_essence(essence)))


def signing_message(tx_id: TransactionId) -> bytes:
    """The bytes each signature unlock signs."""
    return SIGNING_DOMAIN + tx_id


def address_of(public_key: bytes) -> Address:
    """The address of an ed25519 public key."""
    return Address(blake2b_256(PublicKey(public_key)))


# -- encoding --------------------------------------------------------------------------------


def encode_output(output: Output) -> bytes:
    if isinstance(output, ChannelOutput):
        return u8(OUTPUT_CHANNEL) + encode_channel_output(output)
    return u8(OUTPUT_BASIC) + output.address + u64(output.amount)


def encode_essence(essence: TransactionEssence) -> bytes:
    return b"".join(
        (
            u64(essence.network_id),
            u16(len(essence.inputs)),
            *essence.inputs,
            u16(len(essence.outputs)),
            *(encode_output(o) for o in essence.outputs),
            sized(1, essence.memo),
        )
    )


def _encode_unlock(unlock: Unlock) -> bytes:
    if isinstance(unlock, SignatureUnlock):
        return u8(UNLOCK_SIGNATURE) + unlock.public_key + unlock.signature
    if isinstance(unlock, ChannelUnlock):
        return u8(UNLOCK_CHANNEL) + encode_channel_unlock(unlock)
    return u8(UNLOCK_REFERENCE) + u16(unlock.index)


def encode_transaction(tx: Transaction) -> bytes:
    return b"".join(
        (encode_essence(tx.essence), u16(len(tx.unlocks)), *map(_encode_unlock, tx.unlocks))
    )


def _count(r: Reader, what: str, maximum: int) -> int:
    n = r.u16(what)
    if not 1 <= n <= maximum:
        raise NonCanonicalError(f"{what} count {n} is outside 1..{maximum}")
    return n


def decode_output(r: Reader) -> Output:
    tag = r.u8("output.type")
    if tag == OUTPUT_CHANNEL:
        return decode_channel_output(r)
    if tag != OUTPUT_BASIC:
        raise UnknownTypeError("output", tag)
    address = Address(r.take(32, "output.address"))
    amount = r.u64("output.amount")
    if amount == 0:
        raise NonCanonicalError("output amount 0")
    return BasicOutput(address=address, amount=amount)


def _decode_essence(r: Reader) -> TransactionEssence:
    network_id = r.u64("network_id")
    inputs = tuple(
        OutputId(r.take(OutputId.SIZE, "input")) for _ in range(_count(r, "inputs", MAX_INPUTS))
    )
    if len(set(inputs)) != len(inputs):
        raise NonCanonicalError("an input appears twice")
    outputs = tuple(decode_output(r) for _ in range(_count(r, "outputs", MAX_OUTPUTS)))
    memo = r.sized(1, MAX_MEMO, "memo")
    return TransactionEssence(network_id=network_id, inputs=inputs, outputs=outputs, memo=memo)


def _decode_unlock(r: Reader, network_id: int) -> Unlock:
    tag = r.u8("unlock.type")
    if tag == UNLOCK_SIGNATURE:
        return SignatureUnlock(
            public_key=PublicKey(r.take(32, "unlock.public_key")),
            signature=Signature(r.take(64, "unlock.signature")),
        )
    if tag == UNLOCK_REFERENCE:
        return ReferenceUnlock(index=r.u16("unlock.index"))
    if tag == UNLOCK_CHANNEL:
        return decode_channel_unlock(r, network_id)
    raise UnknownTypeError("unlock", tag)


def decode_transaction(r: Reader) -> Transaction:
    """Read a transaction body; the caller checks that nothing trails it."""
    essence = _decode_essence(r)
    count = _count(r, "unlocks", MAX_INPUTS)
    unlocks = tuple(_decode_unlock(r, essence.network_id) for _ in range(count))
    return Transaction(essence=essence, unlocks=unlocks)
