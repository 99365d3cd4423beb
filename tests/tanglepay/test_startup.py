"""Start-up cost of the `tanglepay` command: `--help` loads no command and none of trio, Numba
or sqlite, so it answers at the speed of the interpreter."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
HEAVY: Final = ("trio", "numba", "numpy", "sqlite3", "nacl", "tanglepay.commands", "coordinator")


def test_help_loads_no_command_trio_numba_or_sqlite() -> None:
    code = (
        "import sys\n"
        "from tanglepay.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "usage: tanglepay" in done.stdout
    assert done.stderr.strip() == ""


def test_help_answers_at_interpreter_speed() -> None:
    """The median of 5 runs of `python -m tanglepay.cli --help`; about 0.1 s on an idle machine,
    the bound leaves room for a loaded one (eager Numba alone took 0.5 s)."""
    times = []
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tanglepay.cli", "--help"],
            capture_output=True,
            check=True,
            cwd=ROOT,
        )
        times.append(time.perf_counter() - began)
    assert statistics.median(times) < 0.6
