"""The TAP importer's two paths under the same tests: a test that takes the `read_tap` fixture
runs once with the Numba kernel (`read_tap(..., reference=False)`, the default) and once with
the tree reader alone (`reference=True`)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol

import pytest

from payments.roaming import tap

if TYPE_CHECKING:
    from payments.roaming.partner_file import ImportedFile, ImportPolicy


class TapReader(Protocol):
    """`tap.read_tap` with its path chosen."""

    def __call__(self, data: bytes, policy: ImportPolicy) -> ImportedFile: ...


@pytest.fixture(params=[False, True], ids=["kernel", "reference"])
def read_tap(request: pytest.FixtureRequest) -> TapReader:
    reader: TapReader = functools.partial(tap.read_tap, reference=request.param)
    return reader
