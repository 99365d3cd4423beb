"""The TAP importer's two paths under the same tests: a test that takes the `read_tap` fixture
runs once with the Numba kernel (`read_tap(..., reference=False)`, the default) and once with
the tree reader alone (`reference=True`). The kernel is compiled (or loaded from Numba's cache)
before the first test."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol

import pytest

from payments.roaming import tap, tap_scan

if TYPE_CHECKING:
    from payments.roaming.partner_file import ImportedFile, ImportPolicy


class TapReader(Protocol):
    """`tap.read_tap` with its path chosen."""

    def __call__(self, data: bytes, policy: ImportPolicy) -> ImportedFile: ...


@pytest.fixture(scope="session", autouse=True)
def _compiled_tap_kernel() -> None:
    """The kernel compiled once, outside every test (and every hypothesis deadline)."""
    tap_scan.warm_up()


@pytest.fixture(params=[False, True], ids=["kernel", "reference"])
def read_tap(request: pytest.FixtureRequest) -> TapReader:
    reader: TapReader = functools.partial(tap.read_tap, reference=request.param)
    return reader
