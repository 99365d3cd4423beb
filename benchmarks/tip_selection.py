"""Tip selection cost on realistic windows: `python -m benchmarks.tip_selection [--json]`.

Grows windows of 10k and 100k messages with the arrival process of `benchmarks._arrival`, then
times URTS pairs, weighted-walk (MCMC, exact weights) pairs from the default entry, the Python
reference on the 10k window from the same entry, and a weighted-walk pair whose entry is the
oldest message of the 100k window (the whole window as the cone). Each figure is the median
of several batches after a warm-up. The last line printed is one JSON object.

OpenMP workers of the parallel weight kernel are set to sleep rather than spin between calls
(`OMP_WAIT_POLICY=PASSIVE`, unless already set): on a small shared machine a spinning worker
steals the core the caller needs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import statistics
import time
from typing import TYPE_CHECKING

import numba
import numpy as np

from benchmarks._arrival import ArrivalProcess, grow_window
from tangle.window.tip_selection import (
    TipSelector,
    UniformRandomTips,
    WeightedWalk,
    cone_graph,
    default_entry,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tangle.window.dag import Dag

ALPHA = 0.001
DEPTH = 3
PROCESS = ArrivalProcess()


def _per_call(call: Callable[[], object], calls: int, batches: int = 5) -> float:
    """Median over `batches` of the mean seconds per call."""
    means = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        means.append((time.perf_counter() - start) / calls)
    return statistics.median(means)


def _pair_cost(dag: Dag, selector: TipSelector, calls: int, batches: int = 5) -> float:
    rng = np.random.default_rng(7)
    selector.select(dag, rng, 2)  # warm-up: compile or load kernels, fault pages in
    return _per_call(lambda: selector.select(dag, rng, 2), calls, batches)


def run() -> dict[str, object]:
    result: dict[str, object] = {
        "arrival": {
            "rate_per_s": PROCESS.rate,
            "delay_s": PROCESS.delay,
            "milestone_interval_s": PROCESS.milestone_interval,
            "parents": [PROCESS.min_parents, PROCESS.max_parents],
        },
        "alpha": ALPHA,
        "depth": DEPTH,
        "threads": numba.get_num_threads(),
    }
    for label, size in (("10k", 10_000), ("100k", 100_000)):
        start = time.perf_counter()
        dag = grow_window(size, process=PROCESS, seed=1)
        result[f"build_s_{label}"] = round(time.perf_counter() - start, 2)
        entry = default_entry(dag, DEPTH)
        urts = _pair_cost(dag, UniformRandomTips(), calls=20_000)
        result[f"urts_us_per_pair_{label}"] = round(urts * 1e6, 2)
        walk = WeightedWalk(alpha=ALPHA, depth=DEPTH)
        result[f"mcmc_ms_per_pair_{label}"] = round(_pair_cost(dag, walk, calls=50) * 1e3, 3)
        result[f"mcmc_cone_size_{label}"] = int(cone_graph(dag, entry).rows.size)
        if label == "10k":
            python_walk = WeightedWalk(alpha=ALPHA, entry=entry, implementation="python")
            numba_walk = WeightedWalk(alpha=ALPHA, entry=entry)
            python_cost = _pair_cost(dag, python_walk, calls=2, batches=3)
            numba_cost = _pair_cost(dag, numba_walk, calls=50)
            result["python_mcmc_ms_per_pair_10k"] = round(python_cost * 1e3, 2)
            result["mcmc_speedup_vs_python_10k"] = round(python_cost / numba_cost, 1)
            same = all(
                numba_walk.select(dag, np.random.default_rng(s), 2)
                == python_walk.select(dag, np.random.default_rng(s), 2)
                for s in range(3)
            )
            result["python_matches_numba_10k"] = same
        else:
            oldest = dag.message_id(0)
            whole = WeightedWalk(alpha=ALPHA, entry=oldest)
            cost = _pair_cost(dag, whole, calls=3, batches=3)
            result["mcmc_ms_per_pair_100k_whole_window"] = round(cost * 1e3, 2)
            result["mcmc_cone_size_100k_whole_window"] = int(cone_graph(dag, oldest).rows.size)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    result = run()
    if not args.json:
        for key, value in result.items():
            print(f"{key:40} {value}")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
