"""The subcommands of `tanglepay`, one function each, run by `run` on the parsed arguments.

Each imports its implementation when it runs, from the package that owns it (`tangle.service`,
`coordinator.process`, `wallet.cli`, `tanglepay.devnet`), so a command loads only what it needs.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable


def run(args: argparse.Namespace) -> int:
    """Run the subcommand `args.command` and return its exit status."""
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "devnet": _devnet,
        "node": _node,
        "coordinator": _coordinator,
        "wallet": _wallet,
        "roaming": _roaming,
        "verify": _verify,
    }
    return commands[args.command](args)


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
    from tangle.node.config import load_node_config
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


def _roaming(args: argparse.Namespace) -> int:
    from payments.roaming.cli import main as roaming_main

    return roaming_main(args.args)


def _verify(args: argparse.Namespace) -> int:
    from wallet.devices.cli import main as verify_main

    return verify_main(args.args)


def _devnet(args: argparse.Namespace) -> int:
    from tanglepay.devnet import DevnetOptions, run

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
