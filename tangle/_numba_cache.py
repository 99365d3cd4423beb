"""Where Numba caches the compiled kernels: one folder per user, whatever starts them.

Numba reads `NUMBA_CACHE_DIR` when it is imported; `tangle/__init__.py` imports this module
before any module of ours that imports Numba (and has Numba read it again if something imported
Numba before `tangle`). Unless the variable is set already, it becomes
`$XDG_CACHE_HOME/tanglepay/numba` (`~/.cache/tanglepay/numba`), so `./dev`, `tanglepay` and the
tests share the kernels one of them compiled instead of compiling them again (about 10 s).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def numba_cache_dir() -> Path:
    """The folder Numba caches the kernels in (the variable, or the per-user default)."""
    configured = os.environ.get("NUMBA_CACHE_DIR")
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "tanglepay" / "numba"


os.environ["NUMBA_CACHE_DIR"] = str(numba_cache_dir())
if "numba" in sys.modules:
    from numba.core import config

    config.reload_config()  # type: ignore[no-untyped-call]
