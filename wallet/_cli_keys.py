"""The key-file commands of `tanglepay wallet` (`wallet.cli`): `create`, `restore`, `export`
and `import`, with how passwords, passphrases and mnemonics are read, and unlocking the
keystore for the other commands."""

from __future__ import annotations

import getpass
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ._cli_base import (
    EXIT_NO_WALLET,
    EXIT_USAGE,
    PROG,
    Context,
    Outcome,
    network_of,
)
from .address import encode_address, network_named
from .errors import CliError
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
from .mnemonic import WalletSecret

if TYPE_CHECKING:
    import argparse

    from .address import Network

_EPILOG: Final = """exit codes:
  0 success            3 wrong password          6 insufficient funds
  1 other failure      4 no wallet in DIR        7 not confirmed in time (still pending)
  2 usage or input     5 node unavailable        8 transfer failed
  9 not abandoned (it may still confirm, or did)                      130 interrupted"""


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


def unlock(ctx: Context, args: argparse.Namespace) -> UnlockedWallet:
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
