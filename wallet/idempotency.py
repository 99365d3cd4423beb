"""What names a payment: the idempotency key's hash (the state's key and the memo's tag), the
fingerprint a repeat under the same key must match, and the fingerprint that keeps one state file
to one account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from tangle.protocol.codec import u8, u64
from tangle.protocol.ids import blake2b_256

from .config import RECEIVE

if TYPE_CHECKING:
    from tangle.protocol.ids import Address, TransactionId

    from .keys import AccountKey

MEMO_TAG: Final = b"tpik"
"""Memo prefix of a payment sent with an idempotency key; the key's hash follows."""
_KEY_DOMAIN: Final = b"tanglepay/idempotency/v1"
_REQUEST_DOMAIN: Final = b"tanglepay/transfer-request/v1"
_ACCOUNT_DOMAIN: Final = b"tanglepay/wallet-state/v1"


def idempotency_hash(key: str | bytes) -> bytes:
    """BLAKE2b-256 of a domain tag and the key (UTF-8 for text): what the memo carries and the
    state is keyed by."""
    return blake2b_256(_KEY_DOMAIN, key_bytes(key))


def key_bytes(key: str | bytes) -> bytes:
    """An idempotency key as bytes (UTF-8 for text)."""
    return key.encode() if isinstance(key, str) else bytes(key)


def request_fingerprint(recipient: Address, amount: int, memo: bytes) -> bytes:
    """What a repeat with the same key must match: recipient, amount and memo."""
    return blake2b_256(_REQUEST_DOMAIN, recipient, u64(amount), u8(len(memo)), memo)


def submission_fingerprint(transaction_id: TransactionId) -> bytes:
    """What a repeat of `submit` with the same key must match: the transaction."""
    return blake2b_256(_REQUEST_DOMAIN, transaction_id)


def account_fingerprint(account: AccountKey) -> bytes:
    """A public identifier of an account (its coin type, index and first address), to keep one
    state file to one account."""
    first = account.address(0, change=RECEIVE)
    return blake2b_256(_ACCOUNT_DOMAIN, u64(account.coin_type), u64(account.account), first)
