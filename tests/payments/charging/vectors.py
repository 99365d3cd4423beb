"""The official OCPI 2.2.1 examples in ../shared/vectors/ocpi-2.2.1 (see its README for the
source: ocpi/ocpi examples/, branch release-2.2.1-bugfixes, CC BY-ND 4.0), and session builders."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from payments.charging import ocpi_json
from payments.charging.tariff import ChargingPeriod, PeriodKind, Usage

OCPI = Path(__file__).resolve().parents[3] / ".." / "shared" / "vectors" / "ocpi-2.2.1"


def names(prefix: str) -> list[str]:
    """The example files starting with `prefix` (none when the folder is absent)."""
    return sorted(p.name for p in OCPI.glob(f"{prefix}*.json")) if OCPI.is_dir() else []


def load(name: str) -> object:
    if not OCPI.is_dir():
        pytest.skip(f"../shared/vectors/ocpi-2.2.1 absent: {OCPI} (official OCPI examples)")
    return ocpi_json.loads((OCPI / name).read_bytes())


def at(hour: int, minute: int = 0, second: int = 0, *, day: int = 29) -> dt.datetime:
    """A UTC time in June 2015 (the 29th is a Monday, the 27th a Saturday)."""
    return dt.datetime(2015, 6, day, hour, minute, second, tzinfo=dt.UTC)


def usage(
    start: dt.datetime,
    *stretches: tuple[PeriodKind, int, int],
    expired: bool = False,
    current_ma: int | None = None,
    power_w: int | None = None,
) -> Usage:
    """A usage from (kind, minutes, Wh) stretches laid end to end from `start`."""
    periods = []
    when = start
    for kind, minutes, wh in stretches:
        periods.append(
            ChargingPeriod(
                start=when, kind=kind, energy_wh=wh, current_ma=current_ma, power_w=power_w
            )
        )
        when += dt.timedelta(minutes=minutes)
    return Usage(start=start, end=when, periods=tuple(periods), reservation_expired=expired)
