"""The `tanglepay` command: one entry point, a subcommand per job.

Each subcommand's implementation is imported when it runs, from the package that owns it, so
that `tangle` does not depend on the packages built on top of it. Our errors are one line on
stderr, no tracebacks, exit status 2: bad usage, bad configuration, anything that stops a process
starting (a port taken, a database it cannot open: the line names the cause and the fix).
SIGINT (Ctrl-C) or SIGTERM stops a process cleanly: one line on stdout, exit status 0 (130 if
it came before the process could handle it).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "devnet": _devnet,
        "node": _node,
        "coordinator": _coordinator,
        "wallet": _wallet,
    }
    from tangle.errors import TangleError

    known: tuple[type[Exception], ...] = (TangleError,)
    if args.command in ("coordinator", "devnet"):
        from coordinator.errors import CoordinatorError

        known += (CoordinatorError,)
    try:
        return commands[args.command](args)
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
    return [] if isinstance(exc, trio.Cancelled) else [exc]


async def _on_signal(act: Callable[[], object], *, task_status: trio.TaskStatus[None]) -> None:
    """Call `act` on each SIGINT or SIGTERM (Ctrl-C, or a supervisor's stop)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            act()


def _serve(name: str, start: Callable[[trio.Nursery], Awaitable[str]]) -> int:
    """Run `start`'s services until SIGINT or SIGTERM, then cancel them cleanly; `start`
    returns the line that says the process is ready."""

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(_on_signal, nursery.cancel_scope.cancel)
            print(await start(nursery), flush=True)

    trio.run(serve)
    print(f"{name} stopped", flush=True)
    return 0


def _node(args: argparse.Namespace) -> int:
    from tangle.config import load_node_config
    from tangle.service import run_node, start_from_snapshot

    config = load_node_config(args.config)
    if args.snapshot is not None:
        start_from_snapshot(config, args.snapshot)

    async def start(nursery: trio.Nursery) -> str:
        running = await nursery.start(run_node, config)
        return (
            f"node ready: api http://{config.api.host}:{running.api_port} "
            f"p2p {config.p2p.host}:{running.p2p_port}"
        )

    return _serve("node", start)


def _coordinator(args: argparse.Namespace) -> int:
    from coordinator.process import load_coordinator_config, run_coordinator

    config = load_coordinator_config(args.config)

    async def start(nursery: trio.Nursery) -> str:
        running = await nursery.start(run_coordinator, config)
        return (
            f"coordinator ready: api http://{config.node.api.host}:{running.api_port} "
            f"p2p {config.node.p2p.host}:{running.p2p_port}, "
            f"a milestone every {config.interval_s:g} s"
        )

    return _serve("coordinator", start)


def _wallet(args: argparse.Namespace) -> int:
    from wallet.cli import main as wallet_main

    return wallet_main(args.args)


def _devnet(args: argparse.Namespace) -> int:
    from coordinator.devnet import DevnetOptions, run

    if args.interval <= 0 or args.tps <= 0 or not 1 <= args.nodes <= 16:
        print(
            "tanglepay devnet: --interval and --tps must be positive, --nodes 1..16",
            file=sys.stderr,
        )
        return 2
    options = DevnetOptions(
        data_dir=args.data_dir,
        nodes=args.nodes,
        interval_s=args.interval,
        tps=args.tps,
        duration_s=args.duration,
    )

    async def devnet() -> int | None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(_on_signal, stop.set)
            index = await run(options, stop=stop)
            nursery.cancel_scope.cancel()
        return index

    index = trio.run(devnet)
    if index is None:
        print("devnet stopped before it was ready", flush=True)
    else:
        print(f"devnet stopped at milestone {index}; run it again to resume", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
