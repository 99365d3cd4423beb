"""EV charging: OCPI 2.2.1 tariffs priced in exact integer units, and the OCPI objects and
module server pieces a charge-point operator (CPO) needs.

```
errors.py          the charging error tree, rooted in payments' PaymentError
tariff.py          tariff value objects, the usage of a session (`Usage`), its `Cost`
tariff_pricing.py  `price(tariff, usage) -> Cost`: restrictions, step_size, VAT, min/max
```
"""

from .errors import ChargingError as ChargingError
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
