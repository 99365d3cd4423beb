"""The re-attach policy as pure functions: when a transfer is (re-)attached, and when `settle`
releases the inputs of one nobody re-attached."""

from __future__ import annotations

import pytest

from tangle.protocol.ids import OutputId, TransactionId
from tests.builders import address, key, transfer
from wallet.config import BELOW_MAX_DEPTH
from wallet.reattach import expire_due, reattach_due
from wallet.records import Attachment, Transfer, TransferStatus

PAYER = key(1)
REATTACH_AFTER = BELOW_MAX_DEPTH + 1
EXPIRE_AFTER = 20


def recorded(status: TransferStatus, *cmis: int) -> Transfer:
    tx = transfer([(OutputId.of(TransactionId(bytes(32)), 0), PAYER)], [(address(key(2)), 100)])
    return Transfer(
        key_hash=bytes(32),
        idempotency_key=b"k",
        transaction=tx,
        recipient=address(key(2)),
        amount=100,
        nonce=None,
        status=status,
        attachments=tuple(
            Attachment(sequence=i, message_id=None, raw=None, cmi=cmi, at_ms=0)
            for i, cmi in enumerate(cmis)
        ),
        confirmed_index=None,
        failure=None,
        created_ms=0,
        updated_ms=0,
    )


def test_a_signed_transfer_is_attached_at_once() -> None:
    assert reattach_due(recorded(TransferStatus.SIGNED), 0, REATTACH_AFTER)


@pytest.mark.parametrize(("cmi", "due"), [(100, False), (115, False), (116, True), (200, True)])
def test_a_submitted_transfer_is_reattached_only_once_below_max_depth(cmi: int, due: bool) -> None:
    submitted = recorded(TransferStatus.SUBMITTED, 50, 100)  # the latest attachment counts
    assert reattach_due(submitted, cmi, REATTACH_AFTER) is due


def test_a_submitted_transfer_whose_attachments_were_all_dropped_is_attached_again() -> None:
    assert reattach_due(recorded(TransferStatus.SUBMITTED), 7, REATTACH_AFTER)


@pytest.mark.parametrize(("cmi", "due"), [(119, False), (120, True)])
def test_settle_expires_a_submitted_transfer_expire_after_its_last_attachment(
    cmi: int, due: bool
) -> None:
    assert expire_due(recorded(TransferStatus.SUBMITTED, 100), cmi, EXPIRE_AFTER) is due


@pytest.mark.parametrize("status", [TransferStatus.SIGNED, TransferStatus.EXPIRED])
def test_only_a_submitted_transfer_expires(status: TransferStatus) -> None:
    assert not expire_due(recorded(status, 0), 10**6, EXPIRE_AFTER)
