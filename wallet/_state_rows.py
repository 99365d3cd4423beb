"""How the wallet state's rows become records and back: a stored transaction, a transfer with
its attachments, an unspent output (`wallet.state` runs the queries that need them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.errors import TangleError
from tangle.protocol.codec import Reader
from tangle.protocol.ids import Address, MessageId, OutputId
from tangle.protocol.payload import decode_payload, encode_payload
from tangle.protocol.transaction import Transaction

from .coin_selection import Coin
from .errors import WalletStateError
from .records import Attachment, Transfer, TransferStatus

if TYPE_CHECKING:
    import sqlite3


def encode_transaction(tx: Transaction) -> bytes:
    return encode_payload(tx)


def decode_transaction(blob: bytes) -> Transaction:
    reader = Reader(blob, "stored transaction")
    try:
        payload = decode_payload(reader)
        reader.finish()
    except TangleError as exc:
        raise WalletStateError(f"a stored transaction does not decode: {exc}") from None
    if not isinstance(payload, Transaction):
        raise WalletStateError("a stored transfer is not a transaction")
    return payload


def read_transfer(db: sqlite3.Connection, key_hash: bytes) -> Transfer:
    row = db.execute(
        "SELECT payload, recipient, amount, nonce, status, confirmed_index, failure, "
        "created_ms, updated_ms, idempotency_key FROM transfers WHERE key_hash = ?",
        (key_hash,),
    ).fetchone()
    if row is None:
        raise WalletStateError("no transfer with this idempotency key")
    payload, recipient, amount, nonce, status, confirmed, failure, created, updated, key = row
    attachments = tuple(
        Attachment(
            sequence=sequence,
            message_id=None if mid is None else MessageId(mid),
            raw=None if raw is None else bytes(raw),
            cmi=cmi,
            at_ms=at_ms,
        )
        for sequence, mid, raw, cmi, at_ms in db.execute(
            "SELECT sequence, message_id, raw, cmi, at_ms FROM attachments "
            "WHERE key_hash = ? ORDER BY sequence",
            (key_hash,),
        )
    )
    return Transfer(
        key_hash=bytes(key_hash),
        idempotency_key=None if key is None else bytes(key),
        transaction=decode_transaction(bytes(payload)),
        recipient=Address(recipient),
        amount=int(amount),
        nonce=None if nonce is None else int(nonce),
        status=TransferStatus(status),
        attachments=attachments,
        confirmed_index=confirmed,
        failure=failure,
        created_ms=created,
        updated_ms=updated,
    )


def coin_of(row: tuple[bytes, bytes, str]) -> Coin:
    output_id, address, amount = row
    return Coin(output_id=OutputId(output_id), address=Address(address), amount=int(amount))
