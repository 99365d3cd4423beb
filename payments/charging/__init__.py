"""EV charging: OCPI 2.2.1 tariffs priced in exact integer units, and the OCPI objects and
module server pieces a charge-point operator (CPO) needs to roam with an eMSP.

```
errors.py            the charging error tree, rooted in payments' PaymentError (a flat list)
tariff.py            tariff value objects, what a session used (`Usage`), what it costs (`Cost`)
tariff_pricing.py    `price(tariff, usage) -> Cost`: restrictions, step_size, VAT, min/max;
                     `tariff_in_force`: which of a connector's tariffs prices a session
ocpi_json.py         strict OCPI JSON reading (decimals to exact integers), canonical writing
ocpi_tariff.py       the OCPI Tariff object <-> `Tariff`
ocpi_session.py      OCPI Session and Token objects, and the CDR parts they share
ocpi_location.py     the location frozen into a CDR
ocpi_cdr.py          OCPI CDRs: built from a session and tariff, credit CDRs, the CDR hash
ocpi_credentials.py  versions and the Token A/B/C credentials handshake (sans-I/O `Registry`)
ocpi_store.py        the OCPI objects a party holds (bounded), sent CDRs immutable, pagination
ocpi_app.py          the OCPI modules served as a Starlette app (CPO: Sender; eMSP: CDR Receiver)
ocpi_client.py       `OcpiClient` on httpx: register with a party, push CDRs
roaming_cpo.py       eMSP tokens at the CSMS: authorization, live Sessions, CDRs pushed, credits
roaming_service.py   the CPO's OCPI modules served beside the CSMS, joined to it
roaming_state.py     the roaming partners, tokens and CDRs sent, kept on disk
cdr_settlement.py    each period's net CDR amount over the CPO-eMSP two-way channel
devices.py           Authorize refuses quarantined devices (the node's device registry)
refund.py            a prepaid session's unused rest paid back on the ledger
refund_attempts.py   a refund's attempts' keys, which failed transfer may be replaced
refund_wallet.py     the CPO's wallet as refunds use it: the refunder's, and its records read only
ocmf.py, verify.py   signed meter values (OCMF) verified; a driver's check of a session
```

The pricing core and the objects are pure; only `ocpi_app` and `ocpi_client` do I/O (ASGI and
httpx, so they run under asyncio or trio).
"""

from .errors import ChargingError as ChargingError
from .ocpi_app import ocpi_app as ocpi_app
from .ocpi_cdr import Cdr as Cdr
from .ocpi_cdr import build_cdr as build_cdr
from .ocpi_cdr import cdr_hash as cdr_hash
from .ocpi_cdr import cdr_to_json as cdr_to_json
from .ocpi_cdr import credit_cdr as credit_cdr
from .ocpi_cdr import parse_cdr as parse_cdr
from .ocpi_cdr import usage_from_cdr as usage_from_cdr
from .ocpi_client import OcpiClient as OcpiClient
from .ocpi_credentials import Credentials as Credentials
from .ocpi_credentials import CredentialsRole as CredentialsRole
from .ocpi_credentials import Party as Party
from .ocpi_credentials import Registry as Registry
from .ocpi_credentials import Role as Role
from .ocpi_location import CdrLocation as CdrLocation
from .ocpi_session import AuthMethod as AuthMethod
from .ocpi_session import CdrToken as CdrToken
from .ocpi_session import Session as Session
from .ocpi_session import SessionStatus as SessionStatus
from .ocpi_session import Token as Token
from .ocpi_session import TokenType as TokenType
from .ocpi_session import parse_session as parse_session
from .ocpi_session import parse_token as parse_token
from .ocpi_session import session_to_json as session_to_json
from .ocpi_session import token_to_json as token_to_json
from .ocpi_store import OcpiStore as OcpiStore
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
from .tariff_pricing import tariff_in_force as tariff_in_force
