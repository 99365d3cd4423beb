"""Session prices from an OCPI 2.2.1 tariff: the adapter between the session core's `Pricing`
callable and the tariff engine (`tariff_pricing.price`).

The core knows a session's start, its energy (the register difference) and its length; the
adapter prices that as one charging period from the start, with the energy spread evenly over
it, and bills the total including VAT (excluding it when the tariff gives no VAT). Parking and
reservations are not seen by the CSMS's meter and are not priced here; the CDR, built from the
session's periods, carries them (`ocpi_cdr.build_cdr`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from .tariff import ChargingPeriod, PeriodKind, Usage
from .tariff_pricing import price

if TYPE_CHECKING:
    from .session import Pricing
    from .tariff import Tariff


def session_usage(
    start_s: int, energy_wh: int, duration_s: int, time_zone: dt.tzinfo = dt.UTC
) -> Usage:
    """One charging period of `duration_s` from `start_s` delivering `energy_wh`."""
    start = dt.datetime.fromtimestamp(start_s, dt.UTC)
    period = ChargingPeriod(start=start, kind=PeriodKind.CHARGING, energy_wh=energy_wh)
    end = start + dt.timedelta(seconds=duration_s)
    return Usage(start=start, end=end, periods=(period,), time_zone=time_zone)


def ocpi_pricing(tariff: Tariff, time_zone: dt.tzinfo = dt.UTC) -> Pricing:
    """The `Pricing` of sessions under `tariff` at a location in `time_zone`."""

    def pricing(start_s: int, energy_wh: int, duration_s: int) -> int:
        total = price(tariff, session_usage(start_s, energy_wh, duration_s, time_zone)).total
        return total.excl_vat if total.incl_vat is None else total.incl_vat

    return pricing
