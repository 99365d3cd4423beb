"""The `tanglepay` command: one entry point, a subcommand per job.

Each subcommand's implementation is imported when it runs, from the package that owns it, so
that `tangle` does not depend on the packages built on top of it. Errors are one line on stderr
with exit status 2 (bad usage or configuration) or 1 (failure at run time); no tracebacks.
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
    from tangle.errors import TangleError

    try:
        if args.command == "devnet":
            return _devnet(args)
        if args.command == "node":
            return _node(args)
        if args.command == "wallet":
            return _wallet(args)
        return _coordinator(args)
    except TangleError as exc:
        print(f"tanglepay {args.command}: {exc}", file=sys.stderr)
        return 2


async def _until_signalled(start: Callable[[trio.Nursery], Awaitable[None]]) -> None:
    """Run `start`'s services until SIGINT or SIGTERM, then cancel them cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await start(nursery)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def _node(args: argparse.Namespace) -> int:
    from tangle.config import load_node_config
    from tangle.service import run_node, start_from_snapshot

    config = load_node_config(args.config)
    if args.snapshot is not None:
        start_from_snapshot(config, args.snapshot)

    async def start(nursery: trio.Nursery) -> None:
        running = await nursery.start(run_node, config)
        print(
            f"node ready: api http://{config.api.host}:{running.api_port} "
            f"p2p {config.p2p.host}:{running.p2p_port}",
            flush=True,
        )

    trio.run(_until_signalled, start)
    print("node stopped", flush=True)
    return 0


def _coordinator(args: argparse.Namespace) -> int:
    from coordinator.process import load_coordinator_config, run_coordinator

    config = load_coordinator_config(args.config)

    async def start(nursery: trio.Nursery) -> None:
        running = await nursery.start(run_coordinator, config)
        print(
            f"coordinator ready: api http://{config.node.api.host}:{running.api_port} "
            f"p2p {config.node.p2p.host}:{running.p2p_port}, "
            f"a milestone every {config.interval_s:g} s",
            flush=True,
        )

    trio.run(_until_signalled, start)
    print("coordinator stopped", flush=True)
    return 0


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
    index = trio.run(run, options)
    print(f"devnet stopped at milestone {index}; run it again to resume", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
