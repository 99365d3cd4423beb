"""The account commands of `tanglepay wallet` (`wallet.cli`): `address`, `balance`, `send`,
`resume`, `abandon` and `history`, with the progress line a send shows while it runs."""

from __future__ import annotations

import datetime
import secrets
import sys
import time
from typing import TYPE_CHECKING, Any, Final

import trio

from ._cli_base import (
    EXIT_INSUFFICIENT_FUNDS,
    EXIT_TRANSFER_FAILED,
    EXIT_USAGE,
    Outcome,
    network_of,
    open_wallet,
)
from .address import decode_address, encode_address
from .errors import CliError, InsufficientFundsError, RejectedError
from .idempotency import idempotency_hash
from .pending import abandon, find_transfer
from .records import TransferStatus

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from ._cli_base import Context
    from .account import Wallet
    from .address import Network
    from .keystore import UnlockedWallet
    from .records import Received, Transfer

_SPINNER: Final = "|/-\\"


def _iso(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def transfer_json(transfer: Transfer, network: Network) -> dict[str, Any]:
    """A transfer as `history` and `send` show it (amounts in base units)."""
    return {
        "transaction_id": transfer.transaction_id.hex(),
        "idempotency_key": transfer.key_text,
        "status": transfer.status.value,
        "recipient": encode_address(transfer.recipient, network),
        "amount": transfer.amount,
        "change": transfer.change,
        "message_ids": [m.hex() for m in transfer.message_ids],
        "attachments": len(transfer.attachments),
        "confirmed_index": transfer.confirmed_index,
        "failure": transfer.failure,
        "created": _iso(transfer.created_ms),
    }


def _received_json(received: Received, network: Network) -> dict[str, Any]:
    return {
        "transaction_id": received.transaction_id.hex(),
        "output_id": received.output_id.hex(),
        "address": encode_address(received.address, network),
        "amount": received.amount,
        "ledger_index": received.ledger_index,
        "seen": _iso(received.seen_ms),
    }


def phase(transfer: Transfer | None, *, remote: bool) -> str:
    """What the progress line says about a send whose recorded transfer is `transfer`."""
    if transfer is None:
        return "syncing and signing"
    if transfer.status is TransferStatus.SIGNED:
        if transfer.nonce is None:
            return "proof of work at the node" if remote else "proof of work"
        return "submitting"
    if transfer.status is TransferStatus.SUBMITTED:
        n = len(transfer.attachments)
        return "waiting for a milestone" + (f" (attachment {n})" if n > 1 else "")
    if transfer.status is TransferStatus.EXPIRED:
        return "expired; re-attaching"
    return transfer.status.value


async def _show_progress(opened: Wallet, key_hash: bytes, remote: bool, began: float) -> None:
    """A status line on stderr, redrawn until cancelled (then erased)."""
    frame = 0
    text = phase(None, remote=remote)
    try:
        while True:
            if frame % 2 == 0:
                found = await trio.to_thread.run_sync(opened.state.transfer, key_hash)
                text = phase(found, remote=remote)
            spin = _SPINNER[frame % len(_SPINNER)]
            sys.stderr.write(f"\r\x1b[2K{spin} {text}  {time.monotonic() - began:.1f} s")
            sys.stderr.flush()
            frame += 1
            await trio.sleep(0.1)
    finally:
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()


async def _with_progress(
    ctx: Context,
    opened: Wallet,
    key_hash: bytes,
    remote: bool,
    run: Callable[[], Awaitable[Transfer]],
) -> tuple[Transfer, float]:
    """`run()` under the progress line (on a terminal, without `--json`); the transfer and the
    seconds it took."""
    began = time.monotonic()
    async with trio.open_nursery() as nursery:
        if not ctx.json and sys.stderr.isatty():
            nursery.start_soon(_show_progress, opened, key_hash, remote, began)
        transfer = await run()
        nursery.cancel_scope.cancel()
    return transfer, time.monotonic() - began


def _where(transfer: Transfer) -> str:
    if transfer.status is TransferStatus.CONFIRMED:
        return f"confirmed by milestone {transfer.confirmed_index}"
    return transfer.status.value


def _send_amount(args: argparse.Namespace) -> int:
    try:
        amount = int(args.amount)
    except ValueError:
        raise CliError(EXIT_USAGE, "usage", f"amount {args.amount!r} is not an integer") from None
    if amount <= 0:
        raise CliError(EXIT_USAGE, "usage", "the amount must be positive")
    if args.timeout is not None and not args.timeout > 0:
        raise CliError(EXIT_USAGE, "usage", "--timeout must be positive")
    if args.idempotency_key == "":
        raise CliError(EXIT_USAGE, "usage", "the idempotency key must not be empty")
    return amount


async def pay(opened: Wallet, args: argparse.Namespace, amount: int, key: str) -> Transfer:
    """`Wallet.send`. A refusal that failed the transfer for good is `EXIT_TRANSFER_FAILED`,
    as a repeat would report it; running short while pending transfers hold funds says so."""
    try:
        return await opened.send(
            args.address,
            amount,
            idempotency_key=key,
            remote_pow=args.remote_pow,
            wait=not args.no_wait,
            timeout_s=args.timeout,
        )
    except RejectedError as exc:
        recorded = await opened.transfer(key)
        if recorded is None or recorded.status is not TransferStatus.FAILED:
            raise
        raise CliError(
            EXIT_TRANSFER_FAILED,
            "transfer_failed",
            f"the node refused the transfer ({exc.code}): {exc.node_message}; it failed for good",
        ) from None
    except InsufficientFundsError as exc:
        reserved = (await opened.balance()).reserved
        if not reserved:
            raise
        raise CliError(
            EXIT_INSUFFICIENT_FUNDS,
            "insufficient_funds",
            f"insufficient funds: {exc}; {reserved} more are held by pending transfers (see "
            "history for their ids and keys: `resume ID` finishes one, `abandon ID` frees the "
            "funds of one that can no longer confirm)",
        ) from None


async def cmd_send(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    network = network_of(ctx, unlocked)
    amount = _send_amount(args)
    decode_address(args.address, network)
    key: str = args.idempotency_key or secrets.token_hex(16)
    async with open_wallet(ctx, unlocked) as opened:
        await opened.check_amount(amount)
        ctx.hint = f"; repeat with --idempotency-key {key} to resume it safely"
        if not ctx.json and args.idempotency_key is None:
            print(f"idempotency key {key} (repeat with it to retry safely)", file=sys.stderr)
        before = await opened.transfer(key)

        async def run() -> Transfer:
            if before is None:
                await opened.sync()
            return await pay(opened, args, amount, key)

        key_hash = idempotency_hash(key)
        transfer, elapsed = await _with_progress(ctx, opened, key_hash, args.remote_pow, run)
    ctx.hint = ""
    data = {
        **transfer_json(transfer, network),
        "idempotency_key": key,  # also for a transfer recorded before the state kept keys
        "repeat": before is not None,
        "elapsed_s": round(elapsed, 3),
    }
    done = "sent" if before is None else "already sent" if before.final else "resumed and sent"
    lines = [
        f"{done} {amount} to {data['recipient']}: {_where(transfer)}",
        f"transaction {data['transaction_id']}  ({elapsed:.1f} s, idempotency key {key})",
    ]
    return Outcome(data=data, lines=lines)


def _found(opened: Wallet, name: str) -> Awaitable[Transfer]:
    return trio.to_thread.run_sync(find_transfer, opened.state, name)


async def cmd_resume(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    if args.timeout is not None and not args.timeout > 0:
        raise CliError(EXIT_USAGE, "usage", "--timeout must be positive")
    network = network_of(ctx, unlocked)
    async with open_wallet(ctx, unlocked) as opened:
        recorded = await _found(opened, args.id)
        ctx.hint = f"; `resume {recorded.transaction_id.hex()[:16]}` again to go on"

        async def run() -> Transfer:
            return await opened.resume(recorded, remote_pow=args.remote_pow, timeout_s=args.timeout)

        transfer, elapsed = await _with_progress(
            ctx, opened, recorded.key_hash, args.remote_pow, run
        )
    ctx.hint = ""
    data = {**transfer_json(transfer, network), "elapsed_s": round(elapsed, 3)}
    done = "already sent" if recorded.final else "resumed and sent"
    lines = [
        f"{done} {transfer.amount} to {data['recipient']}: {_where(transfer)}",
        f"transaction {data['transaction_id']}  ({elapsed:.1f} s)",
    ]
    return Outcome(data=data, lines=lines)


async def cmd_abandon(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    network = network_of(ctx, unlocked)
    async with open_wallet(ctx, unlocked) as opened:
        recorded = await _found(opened, args.id)
        transfer = await abandon(opened, recorded, online=ctx.node is not None)
    data = transfer_json(transfer, network)
    tx = data["transaction_id"]
    if recorded.status is TransferStatus.FAILED:
        line = f"transfer {tx} had already failed ({transfer.failure})"
    elif transfer.failure != "abandoned":
        line = f"transfer {tx} failed meanwhile ({transfer.failure}); its inputs are free"
    else:
        line = (
            f"abandoned transfer {tx} of {transfer.amount}: its inputs are free; "
            "it will never be attached again"
        )
    return Outcome(data=data, lines=[line])


async def cmd_history(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    network = network_of(ctx, unlocked)
    async with open_wallet(ctx, unlocked) as opened:
        if ctx.node is not None:
            await opened.sync()
        transfers = await opened.transfers()
        received = await opened.received()
    sent = [(t.created_ms, transfer_json(t, network)) for t in transfers]
    came = [(r.seen_ms, _received_json(r, network)) for r in received]
    rows = [(ms, "sent", r) for ms, r in sent] + [(ms, "received", r) for ms, r in came]
    lines = [_history_line(kind, row) for _, kind, row in sorted(rows, key=lambda r: r[0])]
    data = {
        "network": network.name,
        "transfers": [r for _, r in sent],
        "received": [r for _, r in came],
    }
    return Outcome(data=data, lines=lines or ["no transfers yet"])


def _history_line(kind: str, row: dict[str, Any]) -> str:
    if kind == "received":
        return (
            f"{row['seen']}  received  {'':<9}  {row['amount']:>14}  {row['address']}  "
            f"tx {row['transaction_id'][:16]}  seen at milestone {row['ledger_index']}"
        )
    key = row["idempotency_key"]
    return (
        f"{row['created']}  sent      {row['status']:<9}  {row['amount']:>14}  "
        f"{row['recipient']}  tx {row['transaction_id'][:16]}"
        + (f"  key {key}" if key is not None else "")
        + (f"  milestone {row['confirmed_index']}" if row["confirmed_index"] is not None else "")
        + (f"  ({row['failure']})" if row["failure"] else "")
    )


__all__ = [
    "cmd_abandon",
    "cmd_history",
    "cmd_resume",
    "cmd_send",
    "pay",
    "phase",
    "transfer_json",
]


async def cmd_address(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    network = network_of(ctx, unlocked)
    async with open_wallet(ctx, unlocked) as opened:
        if args.index is not None:
            if not 0 <= args.index < 2**31:
                raise CliError(EXIT_USAGE, "usage", "--index must be in 0..2**31 - 1")
            index = args.index
            text = encode_address(opened.address(index), network)
        else:
            if ctx.node is not None:
                await opened.sync()
            text = await opened.receive_address()
            rows = await trio.to_thread.run_sync(opened.state.addresses)
            index = next(
                r.index for r in rows if r.chain == 0 and encode_address(r.address, network) == text
            )
        raw = opened.address(index).hex()
    data = {"address": text, "hex": raw, "index": index, "network": network.name}
    return Outcome(data=data, lines=[raw if args.hex else text])


async def cmd_balance(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    async with open_wallet(ctx, unlocked) as opened:
        synced = await opened.sync()
    balance = synced.balance
    data = {
        "network": network_of(ctx, unlocked).name,
        "total": balance.total,
        "available": balance.available,
        "reserved": balance.reserved,
        "outputs": balance.outputs,
        "ledger_index": synced.ledger_index,
    }
    line = f"{balance.total} (available {balance.available}, reserved {balance.reserved})"
    return Outcome(
        data=data,
        lines=[f"balance {line} in {balance.outputs} outputs at milestone {synced.ledger_index}"],
    )
