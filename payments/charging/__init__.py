"""EV charging: OCPI 2.2.1 tariffs priced in exact integer units, and the OCPI objects and
module server pieces a charge-point operator (CPO) needs.

```
errors.py          the charging error tree, rooted in payments' PaymentError
tariff.py          tariff value objects, the usage of a session (`Usage`), its `Cost`
tariff_pricing.py  `price(tariff, usage) -> Cost`: restrictions, step_size, VAT, min/max
ocpi_json.py       strict OCPI JSON reading (decimals to exact integers), canonical writing
ocpi_tariff.py     the OCPI Tariff object <-> `Tariff`
```
"""

from .errors import ChargingError as ChargingError
from .ocpi_tariff import parse_tariff as parse_tariff
from .ocpi_tariff import tariff_to_json as tariff_to_json
from .tariff import ChargingPeriod as ChargingPeriod
from .tariff import Cost as Cost
from .tariff import DayOfWeek as DayOfWeek
from .tariff import DisplayText as DisplayText
from .tariff import PeriodKind as PeriodKind
from .tariff import Price as Price
from .tariff import PriceComponent as PriceComponent
from .tariff import ReservationRestrictionType as ReservationRestrictionType
from .tariff import Tariff as Tariff
from .tariff import TariffDimensionType as TariffDimensionType
from .tariff import TariffElement as TariffElement
from .tariff import TariffRestrictions as TariffRestrictions
from .tariff import TariffType as TariffType
from .tariff import Usage as Usage
from .tariff_pricing import price as price
