"""Running the project's programs (examples, benchmarks) as a user runs them: `python -m NAME
...` from the checkout, in a process of its own, whose last line on stdout is one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent


def run_python(*argv: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run `python *argv` in the checkout; it must exit 0 (else the end of its stderr is the
    failure); what it printed."""
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def run_json(*argv: str, timeout: float = 240) -> dict[str, Any]:
    """`run_python`, whose last stdout line, a JSON object, is returned."""
    done = run_python(*argv, timeout=timeout)
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(doc, dict), doc
    return doc
