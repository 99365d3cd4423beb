"""The `tanglepay` command: one entry point, a subcommand per job.

The subcommands are in `tanglepay.commands`, imported once the arguments are parsed (so `--help`
loads neither trio nor Numba); each imports its implementation from the package that owns it.

Our errors are one line on stderr, no tracebacks, exit status 2: bad usage, bad configuration,
anything that stops a process starting (a port taken, a database it cannot open: the line names
the cause and the fix). SIGINT (Ctrl-C) or SIGTERM stops a process cleanly: one line on stdout,
exit status 0 (130 if it came before the process could handle it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tanglepay", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    devnet = commands.add_parser("devnet", help="run a local devnet on embedded sqlite")
    devnet.add_argument("--data-dir", type=Path, default=Path("data/devnet"))
    devnet.add_argument("--nodes", type=int, default=3, help="nodes beside the coordinator")
    devnet.add_argument("--interval", type=float, default=1.0, help="seconds between milestones")
    devnet.add_argument("--tps", type=float, default=20.0, help="transfers per second to send")
    devnet.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    node = commands.add_parser("node", help="run one node from its configuration file")
    node.add_argument("--config", type=Path, required=True, help="the node's node.json")
    node.add_argument(
        "--snapshot", type=Path, help="start a new node from this ledger snapshot file"
    )
    coordinator = commands.add_parser("coordinator", help="run the coordinator and its node")
    coordinator.add_argument("--config", type=Path, required=True, help="coordinator.json")
    # `wallet.cli` parses its own arguments: no prefix character, so every one is passed on.
    wallet = commands.add_parser(
        "wallet", help="the wallet (see tanglepay wallet --help)", add_help=False, prefix_chars="\0"
    )
    wallet.add_argument("args", nargs="*")
    charging = commands.add_parser(
        "charging",
        help="the OCPP CSMS (see tanglepay charging --help)",
        add_help=False,
        prefix_chars="\0",
    )
    charging.add_argument("args", nargs="*")
    roaming = commands.add_parser(
        "roaming", help="roaming settlement (see tanglepay roaming --help)", add_help=False,
        prefix_chars="\0",
    )  # fmt: skip
    roaming.add_argument("args", nargs="*")
    verify = commands.add_parser(
        "verify", help="check a reading's proof bundle offline", add_help=False, prefix_chars="\0"
    )
    verify.add_argument("args", nargs="*")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "charging":  # on asyncio: imports nothing of trio
        from payments.charging.cli import main as charging_main

        return charging_main(args.args)
    from tangle.errors import TangleError

    from . import commands

    known: tuple[type[Exception], ...] = (TangleError,)
    if args.command in ("coordinator", "devnet"):
        from coordinator.errors import CoordinatorError

        known += (CoordinatorError,)
    try:
        return commands.run(args)
    except BaseException as exc:
        status = _report(args.command, exc, known)
        if status is None:
            raise
        return status


def _report(command: str, exc: BaseException, known: tuple[type[Exception], ...]) -> int | None:
    """Print the one line `exc` deserves and return the exit status, or None for a bug (whose
    traceback is the report): 2 for a `known` error (usage, configuration or start-up), 130 for
    an interrupt before the process could handle signals itself."""
    leaves = _leaves(exc)
    errors = [leaf for leaf in leaves if isinstance(leaf, known)]
    if errors and len(errors) == len(leaves):
        print(f"tanglepay {command}: {errors[0]}", file=sys.stderr)
        return 2
    if leaves and all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
        print(f"tanglepay {command}: interrupted", file=sys.stderr)
        return 130
    return None


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside `exc`'s groups (trio's nurseries wrap what they propagate),
    without the cancellations they caused."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    import trio  # loaded already: the command that raised ran on trio

    return [] if isinstance(exc, trio.Cancelled) else [exc]


if __name__ == "__main__":
    sys.exit(main())
