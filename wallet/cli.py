"""`tanglepay wallet`: the wallet on the command line, over `Wallet` and the keystore.

```
tanglepay wallet [GLOBAL OPTIONS] COMMAND [OPTIONS]

create   [--words N] [--passphrase-file F] [--kdf-memory-mib M]
         a new wallet: writes the keystore, shows the mnemonic once
restore  [--mnemonic-file F] [--passphrase-file F] [--kdf-memory-mib M]
         a wallet from its mnemonic (default: a prompt without echo)
address  [--index I] [--hex]  the next receiving address (or the one at I), bech32m (or hex)
balance                    sync with the node, then the account's funds
send     ADDRESS AMOUNT [--idempotency-key K] [--remote-pow] [--no-wait] [--timeout S]
         pay AMOUNT base units, exactly once per key
history                    payments sent (status, idempotency key) and received
resume   ID [--remote-pow] [--timeout S]
         drive a recorded transfer to its end (ID: its idempotency key or transaction id)
abandon  ID                give up a transfer that can no longer confirm, freeing its funds
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

**Node.** Given as a URL, `http://HOST:PORT` (a bare `HOST:PORT` is a usage error).
`balance`, `send` and `resume` need one; `address`, `history` and `abandon` use it when one is
given (to discover used addresses and incoming outputs, to bring pending transfers up to date)
and work offline otherwise.

**Sending** is exactly once per idempotency key (see `wallet.account`). Without
`--idempotency-key` a random key is made and printed on stderr as the send starts; either way
the result, and the error of a send that may still be pending, name it: a send that was
interrupted, timed out or lost its node is repeated safely with the same key (the repeat
resumes the recorded transfer and never pays twice). While the proof-of-work and the
confirmation run, a status line on stderr shows where the transfer stands (only when stderr is
a terminal and without `--json`). The key is printed only once the amount is known to be
valid for the node's network (at least its minimum output).

**Pending transfers.** `history` shows every transfer with its status, transaction id and
idempotency key (transfers recorded by wallets older than that show none), and the outputs
received from others (as far as this wallet's syncs saw them: the node keeps no history).
`resume ID` finishes a pending transfer as repeating its send would; ID is its idempotency key,
or its transaction id or a prefix of it (8 hex digits at least) as history shows it.
`abandon ID` fails a transfer for good and frees its funds only when its transaction can no
longer confirm (`wallet.pending`): one never handed to a node (`signed`), or one whose every
attachment is below max depth (`expired`). A `submitted` transfer may still confirm and is
refused (exit 9): resume it, or abandon it once it has expired (20 milestones after its last
attachment; with `--node`, the wallet checks first). Its payment is then never made by this
wallet; a new send needs a new key.

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
     existing wallet, an idempotency key reused for another payment, no node given or a node
     that is not a URL, a transfer ID that names none or several [usage]
3    wrong password [wrong_password]
4    no wallet in DIR [no_wallet]
5    node unreachable after the retries, or rate limiting [node_unavailable]
6    insufficient funds [insufficient_funds]
7    not confirmed within --timeout; still pending, a repeat with the key resumes it [timeout]
8    failed for good: an input spent elsewhere, a rule broken, or refused [transfer_failed]
9    not abandoned: it may still confirm [still_pending], or it is confirmed [confirmed]
130  interrupted [interrupted]
```
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import trio

from ._cli_base import (
    EXIT_FAILURE,
    EXIT_INSUFFICIENT_FUNDS,
    EXIT_INTERRUPTED,
    EXIT_NO_WALLET,
    EXIT_NODE_UNAVAILABLE,
    EXIT_NOT_ABANDONED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_TRANSFER_FAILED,
    EXIT_USAGE,
    EXIT_WRONG_PASSWORD,
    PROG,
    Context,
    Outcome,
)
from ._cli_keys import cmd_create, cmd_export, cmd_import, cmd_restore, unlock
from ._cli_transfers import (
    cmd_abandon,
    cmd_address,
    cmd_balance,
    cmd_history,
    cmd_resume,
    cmd_send,
    phase,
)
from .address import NETWORKS, network_named
from .client import check_node_url
from .config import RetryPolicy
from .errors import (
    AlreadyConfirmedError,
    AmbiguousTransferError,
    AmountError,
    CliError,
    IdempotencyConflictError,
    InsufficientFundsError,
    InvalidAddressError,
    KeystoreError,
    MnemonicError,
    NodeUnavailableError,
    RateLimitedError,
    RejectedError,
    StillPendingError,
    TransferFailedError,
    TransferTimeoutError,
    UnknownTransferError,
    WalletConfigError,
    WalletError,
    WrongPasswordError,
)
from .keystore import (
    DEFAULT_KDF,
    MIB,
)
from .mnemonic import WORD_COUNTS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


_EPILOG: Final = """exit codes:
  0 success            3 wrong password          6 insufficient funds
  1 other failure      4 no wallet in DIR        7 not confirmed in time (still pending)
  2 usage or input     5 node unavailable        8 transfer failed
  9 not abandoned (it may still confirm, or did)                      130 interrupted"""


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
    address.add_argument("--hex", action="store_true", help="print it as hex, not bech32m")
    command("balance", "sync with the node and show the funds")
    send = command("send", "pay AMOUNT base units to ADDRESS, exactly once per key")
    send.add_argument("address")
    send.add_argument("amount")
    send.add_argument("--idempotency-key", help="repeat a send safely with the same key")
    send.add_argument("--remote-pow", action="store_true", help="the node does the work")
    send.add_argument("--no-wait", action="store_true", help="return once submitted")
    send.add_argument("--timeout", type=float, help="seconds to wait for confirmation")
    command("history", "payments sent (with their idempotency keys) and received")
    resume = command("resume", "drive a pending transfer to its end: ID as history shows it")
    resume.add_argument("id", metavar="ID", help="its idempotency key or transaction id (prefix)")
    resume.add_argument("--remote-pow", action="store_true", help="the node does the work")
    resume.add_argument("--timeout", type=float, help="seconds to wait for confirmation")
    abandon = command(
        "abandon",
        "give up a pending transfer that can no longer confirm and free its funds: one never "
        "handed to a node, or expired (below max depth); one that may still confirm is refused",
    )
    abandon.add_argument("id", metavar="ID", help="its idempotency key or transaction id (prefix)")
    export = command("export", "write a copy of the keystore under a new password")
    export.add_argument("path", type=Path)
    export.add_argument("--new-password-file", help="the copy's password (default: a prompt)")
    _kdf_option(export)
    install = command("import", "install a keystore file as this directory's wallet")
    install.add_argument("path", type=Path)
    install.add_argument("--new-password-file", help="re-encrypt it under another password")
    _kdf_option(install)
    return parser


def _context(args: argparse.Namespace) -> Context:
    if not 0 <= args.account < 2**31:
        raise CliError(EXIT_USAGE, "usage", "--account must be in 0..2**31 - 1")
    if not 0 <= args.retries <= 20:
        raise CliError(EXIT_USAGE, "usage", "--retries must be in 0..20")
    directory = args.dir or os.environ.get("TANGLEPAY_WALLET_DIR") or Path.home() / ".tanglepay"
    node = args.node or os.environ.get("TANGLEPAY_NODE") or None
    if node is not None:
        try:
            check_node_url(node)
        except WalletConfigError as exc:
            origin = "--node" if args.node else "TANGLEPAY_NODE"
            raise CliError(EXIT_USAGE, "usage", f"{origin}: {exc}") from None
    return Context(
        directory=Path(directory).expanduser(),
        node=node,
        network=None if args.network is None else network_named(args.network),
        account=args.account,
        retry=RetryPolicy(attempts=args.retries + 1),
        json=args.json,
    )


_OFFLINE: Final[dict[str, Callable[[Context, argparse.Namespace], Outcome]]] = {
    "create": cmd_create,
    "restore": cmd_restore,
    "import": cmd_import,
}
_UNLOCKED: Final = {"export": cmd_export}
_ONLINE: Final = frozenset({"balance", "send", "resume"})
_ASYNC: Final = {
    "address": cmd_address,
    "balance": cmd_balance,
    "send": cmd_send,
    "resume": cmd_resume,
    "abandon": cmd_abandon,
    "history": cmd_history,
}


def _run(ctx: Context, args: argparse.Namespace) -> Outcome:
    command: str = args.command
    if command in _OFFLINE:
        return _OFFLINE[command](ctx, args)
    if command in _ONLINE and ctx.node is None:
        raise CliError(EXIT_USAGE, "usage", "no node: pass --node URL or set TANGLEPAY_NODE")
    unlocked = unlock(ctx, args)
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
    if isinstance(exc, StillPendingError):
        return CliError(EXIT_NOT_ABANDONED, "still_pending", str(exc))
    if isinstance(exc, AlreadyConfirmedError):
        return CliError(EXIT_NOT_ABANDONED, "confirmed", str(exc))
    if isinstance(exc, RejectedError):
        return CliError(
            EXIT_FAILURE,
            "node_refused",
            f"the node refused {exc.request} ({exc.code}): {exc.node_message}",
        )
    usage = (
        InvalidAddressError,
        AmbiguousTransferError,
        AmountError,
        IdempotencyConflictError,
        KeystoreError,
        MnemonicError,
        UnknownTransferError,
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


def _ignore_unraisable(_: object) -> None:
    """`sys.unraisablehook` for a process that is exiting after an interrupt."""


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
        if isinstance(leaf, KeyboardInterrupt):
            # Async generators the interrupted run left open (an HTTP body being read) are
            # finalized after trio.run has returned, and trio can only complain about it then:
            # the one line below is what the user gets to read.
            sys.unraisablehook = _ignore_unraisable
        return _report(classify(leaf), ctx, as_json)
    _emit(outcome, args.command, as_json)
    return EXIT_OK


__all__ = [
    "EXIT_FAILURE",
    "EXIT_INSUFFICIENT_FUNDS",
    "EXIT_INTERRUPTED",
    "EXIT_NODE_UNAVAILABLE",
    "EXIT_NOT_ABANDONED",
    "EXIT_NO_WALLET",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_TRANSFER_FAILED",
    "EXIT_USAGE",
    "EXIT_WRONG_PASSWORD",
    "CliError",
    "Context",
    "Outcome",
    "build_parser",
    "classify",
    "main",
    "phase",
]
