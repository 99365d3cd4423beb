"""`tanglepay verify PROOF --committee KEYS`: check a reading's proof bundle offline.

Exit status 0 when every link holds (one line on stdout says what was proved), 1 when a link
is broken (one line on stderr names it), 2 when the files cannot be read or are not a proof
bundle or a committee file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DeviceProofError, ProofBundleFormatError
from .proof import verify_bundle
from .proof_file import read_bundle, read_committee

if TYPE_CHECKING:
    from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tanglepay verify", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("proof", type=Path, help="the proof bundle (proof.json)")
    parser.add_argument(
        "--committee",
        type=Path,
        required=True,
        help="the committee's key schedule (keys.json), or the network's network.json",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        committee = read_committee(args.committee)
        bundle = read_bundle(args.proof)
    except OSError as exc:
        print(f"tanglepay verify: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except ProofBundleFormatError as exc:
        print(f"tanglepay verify: {exc}", file=sys.stderr)
        return 2
    try:
        proved = verify_bundle(bundle, committee.schedule, network_id=committee.network_id)
    except DeviceProofError as exc:
        print(f"tanglepay verify: broken link: {exc}", file=sys.stderr)
        return 1
    reading = proved.reading.reading
    milestone = proved.milestone
    print(
        f"proof ok: reading {reading.counter} of device {reading.device_id.hex()} "
        f"on network {reading.network_id} (stream {reading.stream}, "
        f"{reading.form.name.lower()}, {len(bundle.reading)} bytes), "
        f"anchored by message {proved.anchor_id.hex()} in a batch of {proved.anchor.leaf_count}, "
        f"confirmed by milestone {milestone.essence.index} with {len(milestone.signatures)} "
        f"committee signatures; proof {bundle.size} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
