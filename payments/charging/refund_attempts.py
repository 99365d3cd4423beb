"""A refund's attempts: the key each attempt is sent under (a session's refund:
`session_refund_key`, an amount owed to a channel's payer: `unbind_refund_key`; then
`attempt_key`), which failed transfer a next attempt may replace without paying twice, and what
the CPO wallet's records say of a refund's transfer (the wallet itself: `refund_wallet`).

A refund is paid with the CPO wallet's `Wallet.send` under an idempotency key, and the wallet
pays a key once, for ever: a transfer under it that failed for good stays failed, and `send`
raises `TransferFailedError` at every repeat. So a refund whose transfer failed for good moves
to its next *attempt*, sent under a key of its own (`attempt_key`), at the same amount
(`refund_rows.RefundRows.next_refund_attempt`); at most `MAX_ATTEMPTS` of them, after which the
refund is `held`: kept, logged at error level, and read by no retry round.

*At most once.* A next attempt is made only when the wallet's record of the failed transfer
shows that it can never apply (`never_applies`), as the wallet's rules give it
(`wallet.account`, `wallet.confirmation`, `wallet.pending`):

- the ledger named another transaction as the spender of one of its inputs (`input_spent`):
  a spent output stays spent, so no attachment of it can ever apply. A conflict on its inputs
  alone is no such failure (a re-attachment of a transaction applied through another
  attachment meets one too): when the node cannot tell who spent them (pruned), the transfer
  stays pending and expires, and an abandoned one is held, below. A record failed
  `input_not_found` comes only from a wallet before that verdict (`INPUT_NOT_FOUND`): its
  transaction may have been applied through an attachment the node forgot, so it is held too.
  An old record failed `input_spent` is as ambiguous (that wallet failed a re-attachment of an
  applied transaction so, when the node still knew the spend); it cannot be told from the
  current wallet's, which names another spender, and is replaced: check such refunds by hand
  after upgrading from a wallet before the verdict;
- a milestone marked its attachment conflicting for a rule of its own (amounts, unlocks): it
  holds for every attachment alike;
- it was never handed to a node (no attachment recorded: the wallet records each attachment
  before it submits it): refused by the node at its only attachment, or abandoned while signed
  only. Nobody but this wallet holds its bytes.

A transfer the owner abandoned after it was attached (`wallet abandon` of an expired transfer,
reason `abandoned` with attachments) is not such a failure: its payload is on the tangle and
anyone (the driver, who would gain) may attach it again, and it applies while its inputs are
unspent; the wallet freed them, and a next attempt may be funded from other coins. Such a refund
is `held` at once, for the operator, and it stays live for settling too: only once the wallet
records one of its inputs as spent by another of its confirmed transfers (`recorded_state`:
a spent output stays spent) can it never apply.

*What the operator sees* (`transfer_state`, `refund_desk`): the wallet's record under a
refund's current key, as one of `TransferState`: nothing recorded, pending (it may still
confirm), confirmed, failed (it can never apply) or abandoned after it was attached (it may
still apply). A process that holds no key of the CPO's wallet (the CLI beside the CSMS, a
CSMS run without a refund seed) reads the wallet's state file beside the CSMS's database read
only (`refund_wallet.state_records`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol

from wallet.records import TransferStatus

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from tangle.protocol.ids import Address, OutputId
    from wallet.records import Transfer

REFUND_KEY: Final = b"tanglepay/charging/refund/"
"""The prefix of a session's refund key (`session_refund_key`)."""
UNBIND_REFUND_KEY: Final = b"tanglepay/charging/unbind-refund/"
"""The prefix of a refund's key owed to a channel's payer (`unbind_refund_key`)."""
MAX_ATTEMPTS: Final = 4
"""The most attempts (transfers under keys of their own: `attempt_key`) a refund is paid under;
one whose last attempt failed for good too is `held`."""
ATTEMPT_KEY: Final = b"tanglepay/charging/refund-attempt/"
"""The prefix of a next attempt's key (`attempt_key`): no refund's own key starts with it."""
ABANDONED: Final = "abandoned"
"""The failure the wallet records for a transfer its owner (or `Wallet.settle`) abandoned."""
INPUT_NOT_FOUND: Final = "input_not_found"
"""A failure only wallets before the ledger verdict (`wallet.confirmation`) recorded, also for a
re-attachment of a transaction applied through an attachment the node had pruned: it may still
have applied (the module docstring)."""


def session_refund_key(key: tuple[str, str]) -> bytes:
    """The idempotency key of session `key`'s refund (its first attempt's):
    `REFUND_KEY || charge point / transaction id`."""
    return b"%s%s/%s" % (REFUND_KEY, key[0].encode(), key[1].encode())


def unbind_refund_key(channel_id: bytes, id_token: str, refund_id: int) -> bytes:
    """The idempotency key of an unbound token's refund: its channel, its token and its row id
    (the row id alone restarts at 1 in every database, and two CSMS databases may share a CPO
    wallet: one refund would then be taken for another and never paid)."""
    return b"%s%s/%s/%d" % (
        UNBIND_REFUND_KEY,
        channel_id.hex().encode(),
        id_token.encode(),
        refund_id,
    )


def attempt_key(key: bytes, attempt: int) -> bytes:
    """The idempotency key of a refund's `attempt`: its own `key` for the first (0, so a row a
    version before attempts left `sending` keeps its key), `ATTEMPT_KEY || N / key` for
    N >= 1. So no attempt's key is another refund's key or attempt's, whatever text a charger's
    transaction id or a token holds (a suffix after `key` could be part of another session's
    transaction id): the prefix tells the first attempts from the others, and N ends at the
    first `/`."""
    return key if attempt == 0 else b"%s%d/%s" % (ATTEMPT_KEY, attempt, key)


def never_applies(transfer: Transfer | None) -> bool:
    """Whether the wallet's record shows a transfer that failed and can never apply (the module
    docstring): failed, and conflicting by a milestone's verdict or never handed to a node;
    not an attached transfer abandoned or failed `input_not_found` by an older wallet."""
    if transfer is None or transfer.status is not TransferStatus.FAILED:
        return False
    return not transfer.attachments or transfer.failure not in (ABANDONED, INPUT_NOT_FOUND)


class TransferState(StrEnum):
    """The CPO wallet's record of a refund's transfer under one key, as the operator is shown
    it (`transfer_state`)."""

    NONE = "none"
    """Nothing recorded under the key: never sent."""
    PENDING = "pending"
    """Signed, submitted or expired, not final: it may still confirm."""
    CONFIRMED = "confirmed"
    """Included by a milestone: the ledger paid it."""
    FAILED = "failed"
    """Failed, and can never apply (`never_applies`; or abandoned, and one of its inputs
    spent by another confirmed transfer: `recorded_state`)."""
    ABANDONED = "abandoned"
    """Abandoned by the wallet's owner after it was attached (or failed `input_not_found` by an
    older wallet): final in the wallet, but its payload is on the tangle and applies if anyone
    attaches it again before its inputs are spent elsewhere, or already did (the refunder holds
    such a refund for the operator): live, as pending."""
    UNKNOWN = "unknown"
    """The record could not be read (the listing's: settling such a refund is refused)."""


def transfer_state(transfer: Transfer | None) -> TransferState:
    """What the wallet's record `transfer` (None: nothing recorded) says of the refund."""
    if transfer is None:
        return TransferState.NONE
    if transfer.status is TransferStatus.CONFIRMED:
        return TransferState.CONFIRMED
    if transfer.status is not TransferStatus.FAILED:
        return TransferState.PENDING
    return TransferState.FAILED if never_applies(transfer) else TransferState.ABANDONED


async def recorded_state(
    records: TransferRecords, key: bytes
) -> tuple[Transfer | None, TransferState]:
    """The transfer `records` holds under `key` (None: none) and its state (`transfer_state`),
    except that one abandoned after it was attached is failed once the wallet records one of
    its inputs as spent by another of its confirmed transfers: no attachment of it can ever
    apply then. (An input spent by a transaction of someone else's is not recorded, and the
    transfer stays abandoned: refusing to settle it is safe.)"""
    transfer = await records.transfer(key)
    state = transfer_state(transfer)
    if transfer is not None and state is TransferState.ABANDONED:
        spenders = await records.spenders(transfer.inputs)
        if any(spender != transfer.key_hash for spender in spenders.values()):
            return transfer, TransferState.FAILED
    return transfer, state


def next_attempt(failed: int, retry: bool) -> int | None:
    """The attempt after attempt `failed`, whose transfer failed for good: the next one if that
    transfer can never apply (`retry`, `never_applies`) and `MAX_ATTEMPTS` allows one more,
    else None (the refund is `held`)."""
    return failed + 1 if retry and failed + 1 < MAX_ATTEMPTS else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """What a refund's payment sends, once its row is `sending` (`RefundRows.claim_refund`)."""

    amount: int
    """Fixed at the first try: the same at every later try and attempt."""
    attempt: int
    """Which attempt's key it is sent under (`attempt_key`)."""


class TransferRecords(Protocol):
    """The CPO wallet's records of its transfers, read only (`refund_wallet`)."""

    async def transfer(self, key: bytes, /) -> Transfer | None:
        """The transfer recorded under `key` (`Wallet.transfer`), None if none was."""
        ...

    async def spenders(self, inputs: Sequence[OutputId], /) -> dict[OutputId, bytes]:
        """The confirmed transfer (key hash) recorded as spending each of `inputs` that one
        spent (`Wallet.spenders`)."""
        ...


class RefundWallet(Protocol):
    """What the refunder uses of the CPO's wallet (`refund_wallet.LedgerWallet`)."""

    async def transfer(self, key: bytes, /) -> Transfer | None:
        """The transfer recorded under `key` (`Wallet.transfer`), None if none was."""
        ...

    async def send(
        self, to: Address, amount: int, key: bytes, claimed: Callable[[], Awaitable[bool]], /
    ) -> object:
        """Pay `amount` to `to` under idempotency key `key`; return once the ledger took it
        (`Wallet.send`: a key is paid once; `TransferFailedError` if its transfer failed).
        Once its transfer is recorded and before any node sees it, `claimed()` tells whether
        the refund is still to be paid (`RefundReleasedError` if not: nothing attached)."""
        ...
