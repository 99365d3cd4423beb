"""Proof-of-work throughput: the `hashlib` loop against the Numba kernel on one and on all cores.

Run `python -m benchmarks.pow [--json]`. The kernels are compiled (or loaded from Numba's cache)
first, then every rate is measured in this run with the impossible target 0, so each call hashes
its whole nonce range:

* `hashlib_loop_hps`: `hashlib_loop`, a tight Python loop over `hashlib.blake2b` of the 40-byte
  input with the target comparison (a little faster than `search_reference`, which validates
  its arguments and calls a helper per nonce; the faster baseline makes the speedup honest);
* `numba_hps_1thread`: `search_range` with the single-thread kernel;
* `numba_hps_all_cores`: `search_range` with the parallel kernel on the whole Numba thread pool.

Each rate is the best of `REPEATS` runs: the machine is shared, and noise only slows a run down.
The targets: the kernel at least 6x the `hashlib` loop on one core, and the parallel kernel at
least 0.9x per thread of its own one-thread rate (1.8x on two cores). Human-readable lines come
first; the last line printed is always one JSON object (`--json` prints only that line).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchmarks._report import arguments, emit
from tangle import work
from tangle.protocol.ids import blake2b_256

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

REPEATS = 5
HASHLIB_NONCES = 1 << 18
"""Nonces per timed `hashlib` loop (about 0.1 s)."""
KERNEL_NONCES_PER_THREAD = 1 << 24
"""Nonces per timed kernel call and thread (about 0.3 s)."""
TARGET_SPEEDUP_1THREAD = 6.0
TARGET_SCALING_PER_THREAD = 0.9

ROOT = blake2b_256(b"benchmarks.pow")
IMPOSSIBLE = 0
"""Target 0: only a work value of exactly 0 is valid, so every nonce in range gets hashed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PowBenchmark:
    """One run's hash rates (hashes per second) and what they mean against the targets."""

    hashlib_loop_hps: float
    """The plain Python loop over `hashlib.blake2b`."""
    numba_hps_1thread: float
    """The single-thread Numba kernel."""
    numba_hps_all_cores: float
    """The parallel Numba kernel on `threads` threads."""
    cores: int
    """`os.cpu_count()`."""
    threads: int
    """Size of the Numba thread pool used for `numba_hps_all_cores`."""
    repeats: int
    """Each rate is the best of this many timed runs."""

    @property
    def speedup_1thread_vs_hashlib(self) -> float:
        return self.numba_hps_1thread / self.hashlib_loop_hps

    @property
    def scaling_all_cores_vs_1thread(self) -> float:
        return self.numba_hps_all_cores / self.numba_hps_1thread

    @property
    def targets_met(self) -> bool:
        return (
            self.speedup_1thread_vs_hashlib >= TARGET_SPEEDUP_1THREAD
            and self.scaling_all_cores_vs_1thread >= TARGET_SCALING_PER_THREAD * self.threads
        )

    def to_json(self) -> dict[str, float | int | bool | str]:
        return {
            **dataclasses.asdict(self),
            "statistic": f"best of {self.repeats}",
            "speedup_1thread_vs_hashlib": round(self.speedup_1thread_vs_hashlib, 2),
            "scaling_all_cores_vs_1thread": round(self.scaling_all_cores_vs_1thread, 3),
            "target_speedup_1thread": TARGET_SPEEDUP_1THREAD,
            "target_scaling_all_cores": round(TARGET_SCALING_PER_THREAD * self.threads, 2),
            "targets_met": self.targets_met,
        }


def hashlib_loop(target: int, count: int) -> int | None:
    """The first nonce below `count` whose work value is at most `target`, in plain Python."""
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    for nonce in range(count):
        digest = blake2b(ROOT + nonce.to_bytes(8, "little"), digest_size=32).digest()
        if from_bytes(digest[:8], "little") <= target:
            return nonce
    return None


def best_rate(run: Callable[[], object], hashes: int, repeats: int = REPEATS) -> float:
    """Hashes per second of the fastest of `repeats` calls of `run`."""
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return hashes / best


def measure() -> PowBenchmark:
    """Warm the kernels up, then time the three searches."""
    work.warm_up()
    threads = work.max_threads()
    one = KERNEL_NONCES_PER_THREAD
    every = KERNEL_NONCES_PER_THREAD * threads
    return PowBenchmark(
        hashlib_loop_hps=best_rate(
            lambda: hashlib_loop(IMPOSSIBLE, HASHLIB_NONCES), HASHLIB_NONCES
        ),
        numba_hps_1thread=best_rate(
            lambda: work.search_range(ROOT, IMPOSSIBLE, 0, one, threads=1), one
        ),
        numba_hps_all_cores=best_rate(
            lambda: work.search_range(ROOT, IMPOSSIBLE, 0, every, threads=threads), every
        ),
        cores=os.cpu_count() or 1,
        threads=threads,
        repeats=REPEATS,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments(__doc__, quick=None).parse_args(argv)
    result = measure()
    rates = [
        ("hashlib loop", result.hashlib_loop_hps),
        ("numba, 1 thread", result.numba_hps_1thread),
        (f"numba, {result.threads} threads", result.numba_hps_all_cores),
    ]
    ratios = [
        ("speedup vs hashlib", result.speedup_1thread_vs_hashlib, TARGET_SPEEDUP_1THREAD),
        (
            "scaling vs 1 thread",
            result.scaling_all_cores_vs_1thread,
            TARGET_SCALING_PER_THREAD * result.threads,
        ),
    ]
    lines = [
        *(
            f"{label:<22}{rate / 1e6:8.2f} M hashes/s  (best of {result.repeats})"
            for label, rate in rates
        ),
        *(f"{label:<22}{ratio:8.2f}x  (target {goal:.2f}x)" for label, ratio, goal in ratios),
    ]
    emit(result, lines, json_only=args.json)


if __name__ == "__main__":
    main()
