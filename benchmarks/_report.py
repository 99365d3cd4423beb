"""What every benchmark's `main` shares: its arguments (`--json`, and `--quick` where it has a
small run) and its report (the human lines, a targets line, then one JSON object, the last line
printed; `--json` prints only that line)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable


class Result(Protocol):
    """A benchmark's figures."""

    @property
    def cores(self) -> int: ...

    @property
    def targets_met(self) -> bool: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """A `Result` that is one dict of figures, `cores` and `targets_met` among them, in the
    order they are reported."""

    figures: dict[str, Any]

    @property
    def cores(self) -> int:
        return int(self.figures["cores"])

    @property
    def targets_met(self) -> bool:
        return bool(self.figures["targets_met"])

    def to_json(self) -> dict[str, Any]:
        return self.figures


def arguments(doc: str | None, *, quick: str | None) -> argparse.ArgumentParser:
    """A parser described by the first line of `doc`, with `--json` and, if `quick` says what the
    small run is, `--quick`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def emit(result: Result, lines: Iterable[str], *, json_only: bool) -> None:
    """Print `lines` and whether the targets were met (unless `json_only`), then the JSON line."""
    if not json_only:
        for line in lines:
            print(line)
        print(f"targets {'met' if result.targets_met else 'MISSED'} on {result.cores} cores")
    print(json.dumps(result.to_json()))
