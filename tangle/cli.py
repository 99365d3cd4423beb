"""The `tanglepay` command: one entry point, a subcommand per job.

Each subcommand's implementation is imported when it runs, from the package that owns it, so
that `tangle` does not depend on the packages built on top of it.
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
    devnet.add_argument("--interval", type=float, default=1.0, help="seconds between milestones")
    devnet.add_argument("--tps", type=float, default=20.0, help="transfers per second to send")
    devnet.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "devnet":
        return _devnet(args)
    return 2  # argparse rejects unknown commands before this


def _devnet(args: argparse.Namespace) -> int:
    import trio

    from coordinator.devnet import DevnetOptions, run

    if args.interval <= 0 or args.tps <= 0:
        print("tanglepay devnet: --interval and --tps must be positive", file=sys.stderr)
        return 2
    options = DevnetOptions(
        data_dir=args.data_dir, interval_s=args.interval, tps=args.tps, duration_s=args.duration
    )
    try:
        index = trio.run(run, options)
    except KeyboardInterrupt:
        print("devnet stopped (Ctrl-C); run it again to resume")
        return 130
    print(f"devnet stopped at milestone {index}; run it again to resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
