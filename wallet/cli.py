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
8    the transfer failed for good: conflicting, or refused before publication [transfer_failed]
9    not abandoned: it may still confirm [still_pending], or it is confirmed [confirmed]
130  interrupted [interrupted]
```
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import math
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
    CliError,
    Context,
    Outcome,
    network_of,
    open_wallet,
)
from ._cli_transfers import cmd_abandon, cmd_history, cmd_resume, cmd_send, phase
from .address import NETWORKS, encode_address, network_named
from .client import RetryPolicy, check_node_url
from .errors import (
    AddressError,
    AlreadyConfirmedError,
    AmbiguousTransferError,
    AmountError,
    IdempotencyConflictError,
    InsufficientFundsError,
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
    Argon2idParams,
    KeystoreMetadata,
    UnlockedWallet,
    create_keystore,
    export_keystore,
    import_keystore,
    open_keystore,
)
from .mnemonic import WORD_COUNTS, WalletSecret

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .address import Network

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
    network = network_of(ctx, unlocked)
    first = encode_address(unlocked.account(ctx.account).address(0), network)
    data = {"keystore": str(ctx.keystore), "network": network.name, "address": first}
    return Outcome(data=data, lines=[f"wallet imported into {ctx.keystore}", f"address {first}"])


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
        AddressError,
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
