"""Rating: the charge of a usage record under an agreement, in integers only.

Both carriers run this same function on the same canonical agreement, so they compute the same
charge to the last minor unit. A `Plan` prices one service of one visited network:

```
quantity   DATA: volume_up + volume_down (bytes)   MOC/MTC: duration_s
           SMS_MO/SMS_MT/SUPPLEMENTARY: 1 per event
billed     max(minimum, quantity rounded to a multiple of `increment` with `rounding`)
charge     billed * price / per, rounded to a minor unit with `rounding`
tax        charge * tax_bp / 10_000, rounded with `rounding`
```

so data is priced per volume unit (`per` = 1_048_576 for a MiB) with its rounding (`increment`
= 1024 bills whole KiB), voice per minute (`per` = 60) with its charging increment (30 s) and a
minimum, SMS per message (`per` = 1). That per-record charge is the standard rate the VPMN puts
in each record. Discount agreements work on a period's total (`period_charge`): FLAT keeps the
sum of the record charges, TIERED prices each band of the billed total at its own tier's price,
THRESHOLD prices the whole total at the price of the highest tier it reaches; a volume
commitment (`commitment`, minor units) is the least a period costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from .errors import AgreementError, MalformedAgreementError, RecordOutsideAgreementError
from .record import EventType

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .record import UsageRecord

MAX_PRICE: Final = 10**12
MAX_PER: Final = 10**12
MAX_INCREMENT: Final = 10**9
MAX_TIERS: Final = 16
BASIS_POINTS: Final = 10_000
_E = TypeVar("_E", bound=IntEnum)
_CALLS: Final = frozenset({EventType.MOC, EventType.MTC})


class Rounding(IntEnum):
    """How a quantity is rounded to its increment and an amount to a minor unit."""

    UP = 0
    """Towards +infinity (what operators usually bill)."""
    DOWN = 1
    """Towards zero."""
    NEAREST = 2
    """To the nearest, halves up."""


class PlanKind(IntEnum):
    """How a period's total is priced (`period_charge`)."""

    FLAT = 0
    TIERED = 1
    THRESHOLD = 2


def divide(numerator: int, denominator: int, rounding: Rounding) -> int:
    """`numerator / denominator` (both >= 0, denominator > 0) rounded to an integer."""
    if rounding is Rounding.UP:
        return -(-numerator // denominator)
    if rounding is Rounding.DOWN:
        return numerator // denominator
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tier:
    """One band of a tiered or threshold plan."""

    from_units: int
    """The billed quantity (bytes, seconds, messages) from which this tier's price applies."""
    price: int
    """Minor units per `Plan.per`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The rates of one service of one visited network (see the module docstring)."""

    service: EventType
    price: int
    """The standard rate: minor units per `per` quantity."""
    per: int
    """The quantity `price` is for: bytes (data), seconds (calls), messages (SMS)."""
    increment: int
    """The charging increment: the quantity is billed in multiples of it."""
    minimum: int
    """The least quantity a record is billed for."""
    rounding: Rounding
    kind: PlanKind
    tiers: tuple[Tier, ...]
    """TIERED and THRESHOLD: bands by `from_units`, the first from 0, rising; FLAT: none."""
    commitment: int
    """The least a period costs, minor units (0: no commitment)."""

    def __post_init__(self) -> None:
        if not isinstance(self.service, EventType):
            raise AgreementError("plan.service", "must be an EventType")
        _check("plan.price", self.price, 0, MAX_PRICE)
        _check("plan.per", self.per, 1, MAX_PER)
        _check("plan.increment", self.increment, 1, MAX_INCREMENT)
        _check("plan.minimum", self.minimum, 0, MAX_INCREMENT)
        _check("plan.commitment", self.commitment, 0, 2**63)
        if not isinstance(self.rounding, Rounding) or not isinstance(self.kind, PlanKind):
            raise AgreementError("plan.rounding", "rounding and kind must be their enums")
        if (self.kind is PlanKind.FLAT) != (not self.tiers) or len(self.tiers) > MAX_TIERS:
            raise AgreementError("plan.tiers", f"FLAT has none, the others 1..{MAX_TIERS}")
        starts = [t.from_units for t in self.tiers]
        if starts and (starts[0] != 0 or starts != sorted(set(starts))):
            raise AgreementError("plan.tiers", "the first from 0, then strictly rising")
        for t in self.tiers:
            _check("tier.price", t.price, 0, MAX_PRICE)
            _check("tier.from_units", t.from_units, 0, 2**63)

    def quantity(self, record: UsageRecord) -> int:
        """The raw quantity of `record` this plan prices."""
        if self.service is EventType.DATA:
            return record.volume_up + record.volume_down
        if self.service in (EventType.MOC, EventType.MTC):
            return record.duration_s
        return 1

    def billed(self, quantity: int) -> int:
        """`quantity` rounded to the increment, at least the minimum."""
        rounded = divide(quantity, self.increment, self.rounding) * self.increment
        return max(self.minimum, rounded)

    def price_of(self, billed: int) -> int:
        """The charge of a `billed` quantity at the standard rate, rounded to a minor unit."""
        return divide(billed * self.price, self.per, self.rounding)

    def prices(self, quantities: list[int]) -> list[int]:
        """`price_of(billed(q))` of each of `quantities` (raw quantities, >= 0), the arithmetic
        of `divide` written out for the plan's rounding (a batch's records are priced at once)."""
        low, step, price, per = self.minimum, self.increment, self.price, self.per
        if self.rounding is Rounding.UP:
            return [-(-max(low, -(-q // step) * step) * price // per) for q in quantities]
        if self.rounding is Rounding.DOWN:
            return [max(low, q // step * step) * price // per for q in quantities]
        half_step, half_per = 2 * step, 2 * per
        return [
            (2 * max(low, (2 * q + step) // half_step * step) * price + per) // half_per
            for q in quantities
        ]

    def to_json_object(self) -> dict[str, object]:
        return {
            "commitment": self.commitment,
            "increment": self.increment,
            "kind": self.kind.name,
            "minimum": self.minimum,
            "per": self.per,
            "price": self.price,
            "rounding": self.rounding.name,
            "service": self.service.name,
            "tiers": [[t.from_units, t.price] for t in self.tiers],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Rating:
    """What a record costs under the agreement."""

    billed: int
    """The billed quantity (after increment and minimum)."""
    charge: int
    """Minor units, before tax: what the record's `charge` must be."""
    tax: int
    """Minor units of tax on `charge`."""


class RatedParty(Protocol):
    """What rating reads of an agreement's party (`agreement.Party`)."""

    @property
    def tadig(self) -> str: ...

    @property
    def plans(self) -> tuple[Plan, ...]: ...


class RatedAgreement(Protocol):
    """What rating reads of an agreement (`agreement.Agreement`)."""

    @property
    def parties(self) -> tuple[RatedParty, RatedParty]: ...

    @property
    def valid_from(self) -> int: ...

    @property
    def valid_until(self) -> int: ...

    @property
    def tax_bp(self) -> int: ...


def rate(agreement: RatedAgreement, record: UsageRecord) -> Rating:
    """The rating of `record` under `agreement`; `RecordOutsideAgreementError` if the agreement
    does not cover it (another pair, or an event outside the validity period). For many records
    build one `RatingTable`."""
    return RatingTable(agreement).rate(record)


class RatingTable:
    """`rate` for many records of one agreement: the pair, the validity period, the tax rate and
    every (visited network, service) plan looked up once."""

    __slots__ = ("_plans", "_tax_bp", "_valid_from", "_valid_until")

    def __init__(self, agreement: RatedAgreement) -> None:
        a, b = agreement.parties
        self._plans = {
            (sender, recipient, plan.service): plan
            for sender, recipient, plans in (
                (a.tadig, b.tadig, a.plans),
                (b.tadig, a.tadig, b.plans),
            )
            for plan in plans
        }
        self._valid_from = agreement.valid_from
        self._valid_until = agreement.valid_until
        self._tax_bp = agreement.tax_bp

    def plan(self, record: UsageRecord) -> Plan:
        """The plan that prices `record` (its VPMN's plan for its service)."""
        plan = self._plans.get((record.sender, record.recipient, record.event_type))
        if plan is None:
            raise RecordOutsideAgreementError(
                f"{record.sender}->{record.recipient} is not a party pair"
            )
        if not self._valid_from <= record.start_utc < self._valid_until:
            raise RecordOutsideAgreementError("the event is outside the validity period")
        return plan

    def charge(self, record: UsageRecord) -> int:
        """`rate(...).charge`: what the record's `charge` must be."""
        plan = self.plan(record)
        return plan.price_of(plan.billed(plan.quantity(record)))

    def charges(self, records: Iterable[UsageRecord], pair: tuple[str, str]) -> list[int]:
        """`charge` of each of `records`, all of the (VPMN, HPMN) `pair`; a record of another
        pair, or one the agreement does not cover, raises `RecordOutsideAgreementError` (each
        service's plan looked up once, each service's quantities priced together:
        `Plan.prices`)."""
        sender, recipient = pair
        plans = {kind: plan for (s, r, kind), plan in self._plans.items() if (s, r) == pair}
        if not plans:  # else it holds every event type: a party has a plan for each
            raise RecordOutsideAgreementError(f"{sender}->{recipient} is not a party pair")
        low, high = self._valid_from, self._valid_until
        data, calls = EventType.DATA, _CALLS
        kinds: list[EventType] = []
        quantities: list[int] = []
        for r in records:
            if r.sender != sender or r.recipient != recipient:
                raise RecordOutsideAgreementError(
                    f"{r.sender}->{r.recipient} in a batch of {sender}->{recipient}"
                )
            if not low <= r.start_utc < high:
                raise RecordOutsideAgreementError("the event is outside the validity period")
            kind = r.event_type
            kinds.append(kind)
            quantities.append(
                r.volume_up + r.volume_down
                if kind is data
                else r.duration_s
                if kind in calls
                else 1
            )
        services = set(kinds)
        if len(services) == 1:
            return plans[kinds[0]].prices(quantities)
        out = [0] * len(kinds)
        for kind in services:
            at = [i for i, k in enumerate(kinds) if k is kind]
            for i, charge in zip(at, plans[kind].prices([quantities[i] for i in at]), strict=True):
                out[i] = charge
        return out

    def rate(self, record: UsageRecord) -> Rating:
        plan = self.plan(record)
        billed = plan.billed(plan.quantity(record))
        charge = plan.price_of(billed)
        tax = divide(charge * self._tax_bp, BASIS_POINTS, plan.rounding)
        return Rating(billed=billed, charge=charge, tax=tax)


def period_charge(plan: Plan, billed_total: int, charge_total: int) -> int:
    """What a period costs under `plan`'s discount: `billed_total` is the sum of the records'
    billed quantities, `charge_total` the sum of their charges (see the module docstring)."""
    if plan.kind is PlanKind.FLAT:
        amount = charge_total
    elif plan.kind is PlanKind.THRESHOLD:
        price = next(t.price for t in reversed(plan.tiers) if t.from_units <= billed_total)
        amount = divide(billed_total * price, plan.per, plan.rounding)
    else:
        bounds = [t.from_units for t in plan.tiers[1:]] + [
            max(billed_total, plan.tiers[-1].from_units)
        ]
        weighted = sum(
            max(0, min(billed_total, end) - t.from_units) * t.price
            for t, end in zip(plan.tiers, bounds, strict=True)
        )
        amount = divide(weighted, plan.per, plan.rounding)
    return max(amount, plan.commitment)


def plan_from_json(obj: object) -> Plan:
    """A plan written by `Plan.to_json_object`; `MalformedAgreementError` otherwise."""
    names = {"commitment", "increment", "kind", "minimum", "per", "price", "rounding"}
    names |= {"service", "tiers"}
    if not isinstance(obj, dict) or set(obj) != names:
        raise MalformedAgreementError(f"plan: an object with exactly {sorted(names)}")
    tiers = obj["tiers"]
    if not isinstance(tiers, list) or len(tiers) > MAX_TIERS:
        raise MalformedAgreementError(f"plan.tiers: a list of at most {MAX_TIERS}")
    parsed = []
    for tier in tiers:
        if not isinstance(tier, list) or len(tier) != 2:
            raise MalformedAgreementError("a tier is [from_units, price]")
        parsed.append(Tier(from_units=_int(tier[0], "tier"), price=_int(tier[1], "tier")))
    return Plan(
        service=_enum(EventType, obj["service"]),
        price=_int(obj["price"], "price"),
        per=_int(obj["per"], "per"),
        increment=_int(obj["increment"], "increment"),
        minimum=_int(obj["minimum"], "minimum"),
        rounding=_enum(Rounding, obj["rounding"]),
        kind=_enum(PlanKind, obj["kind"]),
        tiers=tuple(parsed),
        commitment=_int(obj["commitment"], "commitment"),
    )


def _check(name: str, value: int, minimum: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise AgreementError(name, f"an integer in [{minimum}, {maximum}]")


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedAgreementError(f"plan.{name} must be an integer")
    return value


def _enum(kind: type[_E], value: object) -> _E:
    if not isinstance(value, str) or value not in kind.__members__:
        raise MalformedAgreementError(f"{kind.__name__}: one of {sorted(kind.__members__)}")
    return kind[value]
