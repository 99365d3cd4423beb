"""`tanglepay wallet`: the wallet on the command line, over `Wallet` and the keystore.

```
tanglepay wallet [GLOBAL OPTIONS] COMMAND [OPTIONS]

create   [--words N] [--passphrase-file F] [--kdf-memory-mib M]
         a new wallet: writes the keystore, shows the mnemonic once
restore  [--mnemonic-file F] [--passphrase-file F] [--kdf-memory-mib M]
         a wallet from its mnemonic (default: a prompt without echo)
address  [--index I]       the next receiving address (or the one at I), bech32m
balance                    sync with the node, then the account's funds
send     ADDRESS AMOUNT [--idempotency-key K] [--remote-pow] [--no-wait] [--timeout S]
         pay AMOUNT base units, exactly once per key
history                    the account's transfers with their status
export   PATH [--new-password-file F] [--kdf-memory-mib M]
         a copy of the keystore under a new password
import   PATH [--new-password-file F] [--kdf-memory-mib M]
         install a keystore file (its password: --password-file) as the wallet
```

Global options (before or after COMMAND): `--dir DIR` (default `$TANGLEPAY_WALLET_DIR`, else
`~/.tanglepay`), `--node URL` (default `$TANGLEPAY_NODE`), `--network devnet|testnet|mainnet`
(default: the keystore's; `create` and `restore`: devnet), `--account N` (BIP-44 account,
default 0), `--retries N` (per request, default 5), `--password-file F` (its first line), `--json`.
A file option given as `-` reads the next line of standard input (the mnemonic, then the
passphrase, then the password, as a command asks for them).

**Files.** `DIR/keystore.json` (0600, in a 0700 directory) and, next to it, one state file per
account and network, `DIR/<network>-account<N>.db` (0600; `wallet.state`). Without a password
file the password is asked for without echo, a new one twice. `--kdf-memory-mib` sets Argon2id's
memory for a file written (default 256; 64 suits small devices; less is for tests only); the
file records it, so opening needs no option.

**Node.** `balance` and `send` need one; `address` and `history` use it when one is given (to
discover used addresses, to bring pending transfers up to date) and work offline otherwise.

**Sending** is exactly once per idempotency key (see `wallet.account`). Without
`--idempotency-key` a random key is made and printed on stderr as the send starts; either way
the result, and the error of a send that may still be pending, name it: a send that was
interrupted, timed out or lost its node is repeated safely with the same key (the repeat
resumes the recorded transfer and never pays twice). While the proof-of-work and the
confirmation run, a status line on stderr shows where the transfer stands (only when stderr is
a terminal and without `--json`).

**Output.** Lines for people on stdout; with `--json` exactly one JSON object on stdout, whose
`command` names the command (amounts are integers in base units). Errors are one line on stderr
(`tanglepay wallet: ...`), never a traceback (unless `TANGLEPAY_DEBUG` is set and the error is
not one of the wallet's), and with `--json` also `{"error": {"code", "message", "exit_code"}}`
on stdout. No secret (password, mnemonic) ever goes to stderr.

Exit codes (`error.code` in brackets):

```
0    success
1    any other failure: the node refused a request, showing its code [node_refused]; an
     unusable state file or node answer [failed]
2    usage or input: arguments, addresses, amounts, mnemonics, unreadable or invalid files, an
     existing wallet, an idempotency key reused for another payment, no node given [usage]
3    wrong password [wrong_password]
4    no wallet in DIR [no_wallet]
5    node unreachable after the retries, or rate limiting [node_unavailable]
6    insufficient funds [insufficient_funds]
7    not confirmed within --timeout; still pending, a repeat with the key resumes it [timeout]
8    the transfer failed for good: conflicting, or refused before publication [transfer_failed]
130  interrupted [interrupted]
```
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import getpass
import json
import math
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import trio

from .account import Wallet, idempotency_hash
from .address import NETWORKS, Network, decode_address, encode_address, network_named
from .client import RetryPolicy
from .errors import (
    AddressError,
    AmountError,
    IdempotencyConflictError,
    InsufficientFundsError,
    KeystoreError,
    MnemonicError,
    NodeUnavailableError,
    RateLimitedError,
    RejectedError,
    TransferFailedError,
    TransferTimeoutError,
    WalletConfigError,
    WalletError,
    WrongPasswordError,
)
from .keystore import (
    DEFAULT_KDF,
    MIB,
    Argon2idParams,
    KeystoreMetadata,
    UnlockedWallet,
    create_keystore,
    export_keystore,
    import_keystore,
    open_keystore,
)
from .mnemonic import WORD_COUNTS, WalletSecret
from .state import Transfer, TransferStatus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_WRONG_PASSWORD: Final = 3
EXIT_NO_WALLET: Final = 4
EXIT_NODE_UNAVAILABLE: Final = 5
EXIT_INSUFFICIENT_FUNDS: Final = 6
EXIT_TIMEOUT: Final = 7
EXIT_TRANSFER_FAILED: Final = 8
EXIT_INTERRUPTED: Final = 130

PROG: Final = "tanglepay wallet"
KEYSTORE_NAME: Final = "keystore.json"
OFFLINE_URL: Final = "http://offline.invalid"
"""The node URL of a wallet opened without `--node`; offline commands never contact it."""
_SPINNER: Final = "|/-\\"


_EPILOG: Final = """exit codes:
  0 success            3 wrong password          6 insufficient funds
  1 other failure      4 no wallet in DIR        7 not confirmed in time (still pending)
  2 usage or input     5 node unavailable        8 transfer failed   130 interrupted"""


class CliError(Exception):
    """A failure with its exit code and JSON error code; the message is the one line shown."""

    def __init__(self, exit_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a command produced: the JSON object, and the lines for people."""

    data: dict[str, Any]
    """Printed as one JSON object with `--json` (with `command` added)."""
    lines: list[str]
    """Printed otherwise."""


class _Parser(argparse.ArgumentParser):
    """Usage errors become one `CliError` line instead of the usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise CliError(EXIT_USAGE, "usage", f"{message} (see {self.prog} --help)")


# -- arguments -------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, *, repeated: bool) -> None:
    """The options every command takes; after COMMAND they default to `SUPPRESS`, so they only
    override when given."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if repeated else value

    parser.add_argument(
        "--dir", type=Path, metavar="DIR", default=default(None), help="the wallet directory"
    )
    parser.add_argument("--node", metavar="URL", default=default(None), help="the node's API")
    parser.add_argument(
        "--network", choices=[n.name for n in NETWORKS], default=default(None), help="network"
    )
    parser.add_argument("--account", type=int, metavar="N", default=default(0), help="account")
    parser.add_argument(
        "--retries", type=int, metavar="N", default=default(5), help="retries per request"
    )
    parser.add_argument(
        "--password-file", metavar="FILE", default=default(None), help="password (- for stdin)"
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print one JSON object"
    )


def _kdf_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kdf-memory-mib",
        type=int,
        default=DEFAULT_KDF.mem_limit // MIB,
        help="Argon2id memory for the new file (default 256; 64 for small devices)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="The tanglepay wallet: keys, addresses, balance and exactly-once payments.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, repeated=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, repeated=True)
        return sub

    create = command("create", "create a new wallet and show its mnemonic once")
    create.add_argument("--words", type=int, choices=WORD_COUNTS, default=24)
    create.add_argument("--passphrase-file", help="an optional BIP-39 passphrase")
    _kdf_option(create)
    restore = command("restore", "restore a wallet from its mnemonic")
    restore.add_argument("--mnemonic-file", help="the mnemonic (default: a prompt)")
    restore.add_argument("--passphrase-file", help="its BIP-39 passphrase, if it has one")
    _kdf_option(restore)
    address = command("address", "the next receiving address")
    address.add_argument("--index", type=int, help="the receiving address at this index")
    command("balance", "sync with the node and show the funds")
    send = command("send", "pay AMOUNT base units to ADDRESS, exactly once per key")
    send.add_argument("address")
    send.add_argument("amount")
    send.add_argument("--idempotency-key", help="repeat a send safely with the same key")
    send.add_argument("--remote-pow", action="store_true", help="the node does the work")
    send.add_argument("--no-wait", action="store_true", help="return once submitted")
    send.add_argument("--timeout", type=float, help="seconds to wait for confirmation")
    command("history", "the account's transfers and their status")
    export = command("export", "write a copy of the keystore under a new password")
    export.add_argument("path", type=Path)
    export.add_argument("--new-password-file", help="the copy's password (default: a prompt)")
    _kdf_option(export)
    install = command("import", "install a keystore file as this directory's wallet")
    install.add_argument("path", type=Path)
    install.add_argument("--new-password-file", help="re-encrypt it under another password")
    _kdf_option(install)
    return parser


@dataclass(slots=True, kw_only=True)
class Context:
    """The parsed invocation."""

    directory: Path
    """Where the keystore and state files live."""
    node: str | None
    """The node's API URL, if any."""
    network: Network | None
    """The network asked for (None: the keystore's)."""
    account: int
    """The BIP-44 account."""
    retry: RetryPolicy
    """How requests are retried."""
    json: bool
    """One JSON object on stdout."""
    hint: str = ""
    """Appended to an error message (the idempotency key of a send under way)."""

    @property
    def keystore(self) -> Path:
        return self.directory / KEYSTORE_NAME

    def state_path(self, network: Network) -> Path:
        return self.directory / f"{network.name}-account{self.account}.db"


def _context(args: argparse.Namespace) -> Context:
    if not 0 <= args.account < 2**31:
        raise CliError(EXIT_USAGE, "usage", "--account must be in 0..2**31 - 1")
    if not 0 <= args.retries <= 20:
        raise CliError(EXIT_USAGE, "usage", "--retries must be in 0..20")
    directory = args.dir or os.environ.get("TANGLEPAY_WALLET_DIR") or Path.home() / ".tanglepay"
    return Context(
        directory=Path(directory).expanduser(),
        node=args.node or os.environ.get("TANGLEPAY_NODE") or None,
        network=None if args.network is None else network_named(args.network),
        account=args.account,
        retry=RetryPolicy(attempts=args.retries + 1),
        json=args.json,
    )


# -- secrets ---------------------------------------------------------------------------------


def _read_line(name: str, *, whole: bool = False) -> str:
    """The first line (or, with `whole`, all) of file `name`; `-` is standard input."""
    try:
        text = sys.stdin.readline() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise CliError(EXIT_USAGE, "usage", f"cannot read {name}: {reason}") from None
    return text if whole else text.split("\n", 1)[0].rstrip("\r")


def _prompt(label: str) -> str:
    if not sys.stdin.isatty():
        raise CliError(
            EXIT_USAGE,
            "usage",
            f"{label.lower()} needed: no terminal to ask on; pass a file (- for standard input)",
        )
    return getpass.getpass(f"{label}: ")


def _password(file: str | None, label: str = "Wallet password") -> str:
    return _read_line(file) if file is not None else _prompt(label)


def _new_password(file: str | None, label: str) -> str:
    if file is not None:
        return _read_line(file)
    first = _prompt(label)
    if _prompt("Repeat it") != first:
        raise CliError(EXIT_USAGE, "usage", "the two passwords differ")
    return first


def _kdf(args: argparse.Namespace) -> Argon2idParams:
    mib: int = args.kdf_memory_mib
    if not 1 <= mib <= 1024:
        raise CliError(EXIT_USAGE, "usage", "--kdf-memory-mib must be in 1..1024")
    return Argon2idParams(ops_limit=DEFAULT_KDF.ops_limit, mem_limit=mib * MIB)


def _make_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _refuse_existing(ctx: Context) -> None:
    if ctx.keystore.exists():
        raise CliError(
            EXIT_USAGE, "usage", f"a wallet already exists in {ctx.directory}; use another --dir"
        )


def _unlock(ctx: Context, args: argparse.Namespace) -> UnlockedWallet:
    if not ctx.keystore.is_file():
        raise CliError(
            EXIT_NO_WALLET,
            "no_wallet",
            f"no wallet in {ctx.directory}: run `{PROG} create`, `restore` or `import` first",
        )
    return open_keystore(ctx.keystore, _password(args.password_file))


def _network(ctx: Context, unlocked: UnlockedWallet) -> Network:
    return ctx.network or unlocked.network


@contextlib.asynccontextmanager
async def _open(ctx: Context, unlocked: UnlockedWallet) -> AsyncIterator[Wallet]:
    """The account's wallet on the node (or offline), its 0600 state next to the keystore."""
    network = _network(ctx, unlocked)
    state_path = ctx.state_path(network)
    os.close(os.open(state_path, os.O_WRONLY | os.O_CREAT, 0o600))
    async with Wallet.open(
        unlocked.account(ctx.account),
        url=ctx.node or OFFLINE_URL,
        state_path=state_path,
        network=network,
        retry=ctx.retry,
    ) as opened:
        yield opened


# -- commands --------------------------------------------------------------------------------


def _mnemonic_lines(mnemonic: str) -> list[str]:
    words = mnemonic.split()
    rows = math.ceil(len(words) / 4)
    cells = [f"{i + 1:>2}. {word:<10}" for i, word in enumerate(words)]
    grid = [
        "   " + " ".join(cells[c * rows + r] for c in range(4) if c * rows + r < len(cells))
        for r in range(rows)
    ]
    return [
        "Write these words down, in order, and keep them offline. They are shown only now;",
        "anyone who has them can spend this wallet's funds.",
        "",
        *(line.rstrip() for line in grid),
        "",
    ]


def _install(
    ctx: Context, args: argparse.Namespace, secret: WalletSecret, network: Network
) -> UnlockedWallet:
    kdf = _kdf(args)
    password = _new_password(args.password_file, "New wallet password")
    _make_directory(ctx.directory)
    return create_keystore(
        ctx.keystore, secret, password, metadata=KeystoreMetadata(network=network.name), kdf=kdf
    )


def cmd_create(ctx: Context, args: argparse.Namespace) -> Outcome:
    _refuse_existing(ctx)
    _kdf(args)
    passphrase = "" if args.passphrase_file is None else _read_line(args.passphrase_file)
    network = ctx.network or network_named("devnet")
    secret = WalletSecret.generate(args.words * 32 // 3, passphrase)
    unlocked = _install(ctx, args, secret, network)
    mnemonic = secret.mnemonic or ""
    first = encode_address(unlocked.account(ctx.account).address(0), network)
    data = {"keystore": str(ctx.keystore), "network": network.name, "address": first}
    lines = [*_mnemonic_lines(mnemonic), f"wallet created in {ctx.keystore}", f"address {first}"]
    return Outcome(data={**data, "mnemonic": mnemonic}, lines=lines)


def cmd_restore(ctx: Context, args: argparse.Namespace) -> Outcome:
    _refuse_existing(ctx)
    _kdf(args)
    if args.mnemonic_file is not None:
        mnemonic = _read_line(args.mnemonic_file, whole=True)
    else:
        mnemonic = _prompt("Mnemonic (words separated by spaces)")
    passphrase = "" if args.passphrase_file is None else _read_line(args.passphrase_file)
    secret = WalletSecret.from_mnemonic(mnemonic, passphrase)
    network = ctx.network or network_named("devnet")
    unlocked = _install(ctx, args, secret, network)
    first = encode_address(unlocked.account(ctx.account).address(0), network)
    data = {"keystore": str(ctx.keystore), "network": network.name, "address": first}
    return Outcome(data=data, lines=[f"wallet restored in {ctx.keystore}", f"address {first}"])


async def cmd_address(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    network = _network(ctx, unlocked)
    async with _open(ctx, unlocked) as opened:
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
    data = {"address": text, "index": index, "network": network.name}
    return Outcome(data=data, lines=[text])


async def cmd_balance(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    async with _open(ctx, unlocked) as opened:
        synced = await opened.sync()
    balance = synced.balance
    data = {
        "network": _network(ctx, unlocked).name,
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


def _transfer_json(transfer: Transfer, network: Network) -> dict[str, Any]:
    return {
        "transaction_id": transfer.transaction_id.hex(),
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


def _iso(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


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


async def _pay(opened: Wallet, args: argparse.Namespace, amount: int, key: str) -> Transfer:
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
            f"insufficient funds: {exc}; {reserved} more are held by pending transfers "
            "(see history; repeat their sends with their keys to finish them)",
        ) from None


async def cmd_send(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    network = _network(ctx, unlocked)
    amount = _send_amount(args)
    decode_address(args.address, network)
    key: str = args.idempotency_key or secrets.token_hex(16)
    ctx.hint = f"; repeat with --idempotency-key {key} to resume it safely"
    if not ctx.json and args.idempotency_key is None:
        print(f"idempotency key {key} (repeat with it to retry safely)", file=sys.stderr)
    began = time.monotonic()
    async with _open(ctx, unlocked) as opened:
        before = await opened.transfer(key)
        async with trio.open_nursery() as nursery:
            if not ctx.json and sys.stderr.isatty():
                progress = functools.partial(_show_progress, opened, idempotency_hash(key))
                nursery.start_soon(progress, args.remote_pow, began)
            if before is None:
                await opened.sync()
            transfer = await _pay(opened, args, amount, key)
            nursery.cancel_scope.cancel()
    elapsed = time.monotonic() - began
    ctx.hint = ""
    data = {
        "idempotency_key": key,
        "repeat": before is not None,
        **_transfer_json(transfer, network),
        "elapsed_s": round(elapsed, 3),
    }
    done = "sent" if before is None else "already sent" if before.final else "resumed and sent"
    where = (
        f"confirmed by milestone {transfer.confirmed_index}"
        if transfer.status is TransferStatus.CONFIRMED
        else transfer.status.value
    )
    lines = [
        f"{done} {amount} to {data['recipient']}: {where}",
        f"transaction {data['transaction_id']}  ({elapsed:.1f} s, idempotency key {key})",
    ]
    return Outcome(data=data, lines=lines)


async def cmd_history(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    network = _network(ctx, unlocked)
    async with _open(ctx, unlocked) as opened:
        if ctx.node is not None:
            await opened.settle()
        transfers = await opened.transfers()
    rows = [_transfer_json(t, network) for t in transfers]
    lines = [
        f"{r['created']}  {r['status']:<9}  {r['amount']:>14}  {r['recipient']}  "
        f"tx {r['transaction_id'][:16]}"
        + (f"  milestone {r['confirmed_index']}" if r["confirmed_index"] is not None else "")
        + (f"  ({r['failure']})" if r["failure"] else "")
        for r in rows
    ] or ["no transfers yet"]
    return Outcome(data={"network": network.name, "transfers": rows}, lines=lines)


def cmd_export(ctx: Context, args: argparse.Namespace, unlocked: UnlockedWallet) -> Outcome:
    target: Path = args.path
    if target.exists():
        raise CliError(EXIT_USAGE, "usage", f"{target} already exists; refusing to overwrite it")
    kdf = _kdf(args)
    new_password = _new_password(args.new_password_file, "Password for the copy")
    export_keystore(unlocked, target, new_password, kdf=kdf)
    return Outcome(
        data={"path": str(target), "network": unlocked.metadata.network},
        lines=[f"keystore exported to {target}"],
    )


def cmd_import(ctx: Context, args: argparse.Namespace) -> Outcome:
    _refuse_existing(ctx)
    kdf = _kdf(args)
    source: Path = args.path
    if not source.is_file():
        raise CliError(EXIT_USAGE, "usage", f"cannot read {source}: no such file")
    password = _password(args.password_file, f"Password of {source}")
    new_password = None
    if args.new_password_file is not None:
        new_password = _read_line(args.new_password_file)
    _make_directory(ctx.directory)
    unlocked = import_keystore(source, password, ctx.keystore, new_password=new_password, kdf=kdf)
    network = _network(ctx, unlocked)
    first = encode_address(unlocked.account(ctx.account).address(0), network)
    data = {"keystore": str(ctx.keystore), "network": network.name, "address": first}
    return Outcome(data=data, lines=[f"wallet imported into {ctx.keystore}", f"address {first}"])


_OFFLINE: Final[dict[str, Callable[[Context, argparse.Namespace], Outcome]]] = {
    "create": cmd_create,
    "restore": cmd_restore,
    "import": cmd_import,
}
_UNLOCKED: Final = {"export": cmd_export}
_ONLINE: Final = frozenset({"balance", "send"})
_ASYNC: Final = {
    "address": cmd_address,
    "balance": cmd_balance,
    "send": cmd_send,
    "history": cmd_history,
}


def _run(ctx: Context, args: argparse.Namespace) -> Outcome:
    command: str = args.command
    if command in _OFFLINE:
        return _OFFLINE[command](ctx, args)
    if command in _ONLINE and ctx.node is None:
        raise CliError(EXIT_USAGE, "usage", "no node: pass --node URL or set TANGLEPAY_NODE")
    unlocked = _unlock(ctx, args)
    if command in _UNLOCKED:
        return _UNLOCKED[command](ctx, args, unlocked)
    return trio.run(functools.partial(_ASYNC[command], ctx, args, unlocked))


# -- errors ----------------------------------------------------------------------------------


def _leaf(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups, the first if there are several."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        exc = (inner or list(exc.exceptions))[0]
    return exc


def classify(exc: BaseException) -> CliError:
    """The exit code, JSON code and one-line message of a failure."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return CliError(EXIT_INTERRUPTED, "interrupted", "interrupted")
    if isinstance(exc, WrongPasswordError):
        return CliError(EXIT_WRONG_PASSWORD, "wrong_password", "wrong password for this wallet")
    if isinstance(exc, NodeUnavailableError | RateLimitedError):
        return CliError(EXIT_NODE_UNAVAILABLE, "node_unavailable", f"cannot use the node: {exc}")
    if isinstance(exc, InsufficientFundsError):
        return CliError(EXIT_INSUFFICIENT_FUNDS, "insufficient_funds", f"insufficient funds: {exc}")
    if isinstance(exc, TransferTimeoutError):
        return CliError(EXIT_TIMEOUT, "timeout", f"{exc}; it is still pending")
    if isinstance(exc, TransferFailedError):
        return CliError(EXIT_TRANSFER_FAILED, "transfer_failed", str(exc))
    if isinstance(exc, RejectedError):
        return CliError(
            EXIT_FAILURE,
            "node_refused",
            f"the node refused {exc.request} ({exc.code}): {exc.node_message}",
        )
    usage = (
        AddressError,
        AmountError,
        IdempotencyConflictError,
        KeystoreError,
        MnemonicError,
        WalletConfigError,
    )
    if isinstance(exc, usage):
        return CliError(EXIT_USAGE, "usage", str(exc))
    if isinstance(exc, WalletError):
        return CliError(EXIT_FAILURE, "failed", str(exc))
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CliError(EXIT_FAILURE, "failed", f"{where}{exc.strerror or exc}")
    return CliError(EXIT_FAILURE, "failed", f"unexpected {type(exc).__name__}: {exc}")


_PENDING: Final = (EXIT_NODE_UNAVAILABLE, EXIT_TIMEOUT, EXIT_INTERRUPTED, EXIT_FAILURE)
"""Failures after which a send may still be under way (and a repeat resumes it)."""


def _emit(outcome: Outcome, command: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"command": command, **outcome.data}))
    else:
        for line in outcome.lines:
            print(line)


def _report(error: CliError, ctx: Context | None, as_json: bool) -> int:
    message = str(error)
    if ctx is not None and ctx.hint and error.exit_code in _PENDING:
        message += ctx.hint
    print(f"{PROG}: {message}", file=sys.stderr)
    if as_json:
        body = {"code": error.code, "message": message, "exit_code": error.exit_code}
        print(json.dumps({"error": body}))
    return error.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tanglepay wallet` with `argv` (the arguments after `wallet`); the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in arguments
    ctx: Context | None = None
    try:
        try:
            args = build_parser().parse_args(arguments)
        except SystemExit as exit_:  # --help
            return exit_.code if isinstance(exit_.code, int) else EXIT_OK
        as_json = args.json
        ctx = _context(args)
        outcome = _run(ctx, args)
    except BaseException as exc:  # every failure is one line; never a traceback
        leaf = _leaf(exc)
        if isinstance(leaf, SystemExit | GeneratorExit) or (
            os.environ.get("TANGLEPAY_DEBUG") and not isinstance(leaf, WalletError | CliError)
        ):
            raise
        return _report(classify(leaf), ctx, as_json)
    _emit(outcome, args.command, as_json)
    return EXIT_OK


__all__ = ["CliError", "Context", "Outcome", "build_parser", "classify", "main", "phase"]
