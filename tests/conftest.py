"""Session-wide setup: compile (or load from Numba's cache) every kernel once, before any test
and outside every hypothesis deadline."""

from __future__ import annotations

import pytest

from tangle import work
from tangle.window import tip_selection


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels() -> None:
    work.warm_up()
    tip_selection.warm_up()
