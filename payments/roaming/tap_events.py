"""The call events of a TAP 3.12 transfer batch: MOC, MTC, GPRS call, supplementary service.

Each event is read into a `CallEvent` with the clear IMSI and MSISDN (the importer hashes them
and drops them at once). Tags (APPLICATION class, TD.57 as public decoders document them):

```
MobileOriginatedCall 9 / MobileTerminatedCall 10
    MoBasicCallInformation 147 / MtBasicCallInformation 153
        ChargeableSubscriber 427 > SimChargeableSubscriber 199 > Imsi 129, Msisdn 152
        CallEventStartTimeStamp 44 (LocalTimeStamp 16, UtcTimeOffsetCode 232)
        TotalCallEventDuration 223
    BasicServiceUsedList 38 > BasicServiceUsed 39
        BasicService 36 > ServiceCode 426 > TeleServiceCode 218 ("2x": short message)
        ChargeInformationList 70
GprsCall 14
    GprsBasicCallInformation 114
        GprsChargeableSubscriber 115 > ChargeableSubscriber 427 > ...
        GprsDestination 116 > AccessPointNameNI 261
        CallEventStartTimeStamp 44, TotalCallEventDuration 223
    GprsServiceUsed 121
        DataVolumeIncoming 250 (to the subscriber), DataVolumeOutgoing 251 (from it)
        ChargeInformationList 70
SupplServiceEvent 11
    ChargeableSubscriber 427 > ...
    SupplServiceUsed 206 > ChargingTimeStamp 74, ChargeInformationList 70 (optional)
ChargeInformationList 70 > ChargeInformation 69 > ChargeDetailList 64 > ChargeDetail 63
    ChargeType 71 ("00": the total charge), Charge 62
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .errors import TapStructureError, TapValueError
from .fields import Fields, list_items, local_seconds
from .record import EventType

if TYPE_CHECKING:
    from .ber import Element

MOC: Final = 9
MTC: Final = 10
SUPPL_SERVICE: Final = 11
GPRS: Final = 14
TOTAL_CHARGE: Final = "00"
IMSI_DIGITS: Final = 15
MSISDN_DIGITS: Final = 15


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    """One call event as the file states it, before hashing."""

    offset: int
    """Where the event starts in the file."""
    event_type: EventType
    imsi: str
    msisdn: str | None
    start_utc: int
    duration_s: int
    volume_up: int
    volume_down: int
    apn: str
    charge: int
    """The sum of the event's total charges (ChargeType "00"), minor units."""


def read_call_event(element: Element, offsets: dict[int, int]) -> CallEvent:
    """One element of the CallEventDetailList."""
    if element.tag in (MOC, MTC):
        return _call(element, offsets)
    if element.tag == GPRS:
        return _gprs(element, offsets)
    if element.tag == SUPPL_SERVICE:
        return _suppl(element, offsets)
    raise TapStructureError(element.offset, f"call event kind {element.tag} is not supported")


def _subscriber(chargeable: Fields) -> tuple[str, str | None]:
    sim = chargeable.sub(199, "SimChargeableSubscriber")
    imsi = sim.need(129, "Imsi").digits("Imsi", longest=IMSI_DIGITS)
    msisdn_field = sim.get(152)
    msisdn = None if msisdn_field is None else msisdn_field.digits("Msisdn", longest=MSISDN_DIGITS)
    return imsi, msisdn


def _start(info: Fields, tag: int, offsets: dict[int, int]) -> int:
    stamp = info.sub(tag, "CallEventStartTimeStamp")
    code_field = stamp.need(232, "UtcTimeOffsetCode")
    code = code_field.unsigned("UtcTimeOffsetCode", max_octets=2)
    if code not in offsets:
        raise TapValueError(code_field.value_offset, f"UtcTimeOffsetCode {code} is not defined")
    local = stamp.need(16, "LocalTimeStamp")
    value = local_seconds(local, "LocalTimeStamp") - offsets[code]
    if value < 0:
        raise TapValueError(local.value_offset, "event time before the epoch")
    return value


def _charge(container: Fields) -> int:
    """The total charge over a ChargeInformationList (absent: nothing charged)."""
    listing = container.get(70)
    if listing is None:
        return 0
    total = 0
    for item in list_items(listing, "ChargeInformationList", 69):
        info = Fields(item, "ChargeInformation")
        details = info.need(64, "ChargeDetailList")
        for detail_element in list_items(details, "ChargeDetailList", 63):
            detail = Fields(detail_element, "ChargeDetail")
            kind = detail.need(71, "ChargeType").text("ChargeType", shortest=2, longest=3)
            if kind == TOTAL_CHARGE:
                total += detail.need(62, "Charge").unsigned("Charge")
    return total


def _call(element: Element, offsets: dict[int, int]) -> CallEvent:
    mobile_originated = element.tag == MOC
    name = "MobileOriginatedCall" if mobile_originated else "MobileTerminatedCall"
    event = Fields(element, name)
    info = event.sub(147 if mobile_originated else 153, "BasicCallInformation")
    imsi, msisdn = _subscriber(info.sub(427, "ChargeableSubscriber"))
    duration = info.need(223, "TotalCallEventDuration").unsigned("TotalCallEventDuration")
    services = event.need(38, "BasicServiceUsedList")
    sms = False
    charge = 0
    for used_element in list_items(services, "BasicServiceUsedList", 39):
        used = Fields(used_element, "BasicServiceUsed")
        code = used.sub(36, "BasicService").sub(426, "ServiceCode").get(218)
        if code is not None and code.text("TeleServiceCode", shortest=2, longest=2)[0] == "2":
            sms = True
        charge += _charge(used)
    if mobile_originated:
        kind = EventType.SMS_MO if sms else EventType.MOC
    else:
        kind = EventType.SMS_MT if sms else EventType.MTC
    return CallEvent(
        offset=element.offset,
        event_type=kind,
        imsi=imsi,
        msisdn=msisdn,
        start_utc=_start(info, 44, offsets),
        duration_s=duration,
        volume_up=0,
        volume_down=0,
        apn="",
        charge=charge,
    )


def _gprs(element: Element, offsets: dict[int, int]) -> CallEvent:
    event = Fields(element, "GprsCall")
    info = event.sub(114, "GprsBasicCallInformation")
    chargeable = info.sub(115, "GprsChargeableSubscriber").sub(427, "ChargeableSubscriber")
    imsi, msisdn = _subscriber(chargeable)
    destination = info.optional_sub(116, "GprsDestination")
    apn_field = None if destination is None else destination.get(261)
    apn = "" if apn_field is None else apn_field.text("AccessPointNameNI", longest=63)
    used = event.sub(121, "GprsServiceUsed")
    return CallEvent(
        offset=element.offset,
        event_type=EventType.DATA,
        imsi=imsi,
        msisdn=msisdn,
        start_utc=_start(info, 44, offsets),
        duration_s=info.need(223, "TotalCallEventDuration").unsigned("TotalCallEventDuration"),
        volume_up=used.need(251, "DataVolumeOutgoing").unsigned("DataVolumeOutgoing"),
        volume_down=used.need(250, "DataVolumeIncoming").unsigned("DataVolumeIncoming"),
        apn=apn,
        charge=_charge(used),
    )


def _suppl(element: Element, offsets: dict[int, int]) -> CallEvent:
    event = Fields(element, "SupplServiceEvent")
    imsi, msisdn = _subscriber(event.sub(427, "ChargeableSubscriber"))
    used = event.sub(206, "SupplServiceUsed")
    return CallEvent(
        offset=element.offset,
        event_type=EventType.SUPPLEMENTARY,
        imsi=imsi,
        msisdn=msisdn,
        start_utc=_start(used, 74, offsets),
        duration_s=0,
        volume_up=0,
        volume_down=0,
        apn="",
        charge=_charge(used),
    )
