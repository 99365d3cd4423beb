"""What one pay-as-you-charge payment costs each side in CPU:
`python -m benchmarks.charging_payments [--json] [--quick] [--stations N]`.

The set-up of `benchmarks.charging` (one CSMS process with its sqlite stores, `synchronous=FULL`;
library charge points in one simulator process, each with its driver's wallet and payment stream,
`payments.charging.pay_client`), run twice with the same charge points and meter values: once
paying after every meter value, once never. Each process samples its own CPU seconds (user and
system, all threads) over the measured window; the difference of the two runs, per payment, is
what payments cost:

* `csms_cpu_ms_per_payment`: the CSMS's CPU per payment (the PAY frame read, the proof checked
  with PyNaCl, saved in the channel store and the session's paid count, the receipt signed and
  sent);
* `driver_cpu_ms_per_payment`: the simulator process's CPU per payment (the wallet's invoice, the
  proof signed, the frame sent, the answer read, the receipt's signature and fields checked);
* the floor, measured in the same run: `ed25519_sign_verify_ms`, one PyNaCl signature and one
  verification of a receipt-sized message in this process (each side does one of each per
  payment), and the ratios of both sides to it;
* `payments`, `meter_values`, `payment_p50_ms` and `host_load_1m` (the machine is shared).

`--quick` (20 charge points, 3 s) checks that the run works; its few payments make its figures
rough (a side's CPU difference is then within its sampling noise).

Targets: the CSMS at most 0.3 ms and the driver at most 0.4 ms of CPU per payment.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
from nacl.bindings import crypto_sign_open
from nacl.signing import SigningKey

from benchmarks._report import Figures, arguments, emit
from benchmarks.charging import INTERVAL_S, _committed, _run, _window

STATIONS: Final = 200
QUICK_STATIONS: Final = 20
MEASURE_S: Final = 10.0
QUICK_MEASURE_S: Final = 3.0
PAIRS: Final = 2000
TARGET_CSMS_MS: Final = 0.3
TARGET_DRIVER_MS: Final = 0.4


def sign_verify_ms() -> float:
    """Best of three: one PyNaCl signature and one verification of a 137-byte message, in ms."""
    key = SigningKey(b"\x07" * 32)
    public = bytes(key.verify_key)
    message = bytes(137)
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        for _ in range(PAIRS):
            crypto_sign_open(key.sign(message), public)
        best = min(best, (time.process_time() - began) / PAIRS * 1e3)
    return best


def _one(stations: int, measure_s: float, pay_every: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tanglepay-charging-pay-bench-") as tmp:
        csms = ["--csms", tmp, "--stations", str(stations)]
        results, server = _run(csms, stations, 1, measure_s, pay_every, INTERVAL_S)
        committed = _committed(Path(tmp))
    window = _window(results)
    return {
        "meter_values": committed,
        "payments": sum(len(r["pay"]) for r in results),
        "csms_cpu_s": server["cpu_share"] * window,
        "driver_cpu_s": sum(r["cpu_share"] for r in results) * window,
        "pay": [x for r in results for x in r["pay"]],
        "failed": sum(r["failed"] for r in results),
    }


def measure(stations: int, quick: bool) -> Figures:
    measure_s = QUICK_MEASURE_S if quick else MEASURE_S
    floor = sign_verify_ms()
    paying = _one(stations, measure_s, 1)
    base = _one(stations, measure_s, 0)
    n = max(1, paying["payments"])
    scale = paying["meter_values"] / max(1, base["meter_values"])  # the same meter values
    csms_ms = (paying["csms_cpu_s"] - scale * base["csms_cpu_s"]) / n * 1e3
    driver_ms = (paying["driver_cpu_s"] - scale * base["driver_cpu_s"]) / n * 1e3
    pays = np.array(paying["pay"]) * 1e3
    doc: dict[str, Any] = {
        "stations": stations,
        "payments": paying["payments"],
        "meter_values": paying["meter_values"],
        "meter_values_without_payments": base["meter_values"],
        "failed_charge_points": paying["failed"] + base["failed"],
        "csms_cpu_ms_per_payment": round(csms_ms, 3),
        "driver_cpu_ms_per_payment": round(driver_ms, 3),
        "payment_p50_ms": round(float(np.percentile(pays, 50)), 2) if pays.size else None,
        "ed25519_sign_verify_ms": round(floor, 3),
        "csms_ratio_to_sign_verify": round(csms_ms / floor, 2),
        "driver_ratio_to_sign_verify": round(driver_ms / floor, 2),
        "host_load_1m": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count() or 1,
        "target_csms_cpu_ms_per_payment": TARGET_CSMS_MS,
        "target_driver_cpu_ms_per_payment": TARGET_DRIVER_MS,
    }
    doc["targets_met"] = (
        paying["payments"] > 0 and csms_ms <= TARGET_CSMS_MS and driver_ms <= TARGET_DRIVER_MS
    )
    return Figures(figures=doc)


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__, quick="few charge points, a short run")
    parser.add_argument("--stations", type=int, default=None)
    args = parser.parse_args(argv)
    stations = args.stations or (QUICK_STATIONS if args.quick else STATIONS)
    result = measure(stations, args.quick)
    lines = [f"{key:>34}: {value}" for key, value in result.figures.items()]
    emit(result, lines, json_only=args.json)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
