"""Deterministic synthetic Fullbay invoices.

The simulator and the tests need data that looks like the real API (including its
type quirks) yet is reproducible, so that a re-pull of the same window can be
compared byte for byte. Everything derives from ``random.Random(f"{seed}:{day}")``;
the only parts that depend on ``as_of`` are the invoice balance and whether an
invoice has been voided, mirroring what changes after the fact in the real system.

A day is generated in two stages so the simulator can serve one page of a huge
day without building the whole day: :func:`plan_day` draws a per-invoice seed and
a void draw for each index (cheap), and :meth:`DayPlan.invoice` builds one invoice.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

__all__ = [
    "CHAOS_KINDS",
    "MAX_PER_DAY",
    "VOID_AFTER_DAYS",
    "DayPlan",
    "invoices_for_day",
    "plan_day",
    "with_type_chaos",
]

#: Invoices per day the id scheme can tell apart (index is six decimal digits).
MAX_PER_DAY = 1_000_000
#: An invoice chosen for voiding disappears once ``as_of >= day + VOID_AFTER_DAYS``.
VOID_AFTER_DAYS = 3

_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_TS = "%Y-%m-%d %H:%M:%S"

# Id "kinds": the leading digit of every id, so ids never collide across entity types.
_K_INVOICE, _K_ORDER, _K_COMPLAINT, _K_CORRECTION, _K_PART, _K_TECH, _K_MISC = range(1, 8)


# --------------------------------------------------------------------------- helpers


def _q2(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _num(value: Decimal) -> int | float:
    """JSON money: a float that round-trips to the exact two-decimal value; whole
    amounts as integers, as Fullbay sends them (``"laborTotal": 150``)."""
    rounded = _q2(value)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def _qty(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    return Decimal(rng.randint(round(low * 100), round(high * 100))) / 100


def _empty(rng: random.Random) -> str | None:
    """Fullbay leaves empty values as either "" or null; mix both."""
    return "" if rng.random() < 0.5 else None


def _maybe(rng: random.Random, p: float, value: Any) -> Any:
    return value if rng.random() < p else _empty(rng)


def _yes_no(rng: random.Random, p_yes: float) -> str:
    return "Yes" if rng.random() < p_yes else "No"


def _ts(moment: datetime) -> str:
    return moment.strftime(_TS)


def _at(day: date, rng: random.Random, start_hour: int, end_hour: int) -> datetime:
    seconds = rng.randint(start_hour * 3600, end_hour * 3600 - 1)
    return datetime.combine(day, time()) + timedelta(seconds=seconds)


def _phone(rng: random.Random) -> str:
    return f"({rng.randint(200, 989)}) 555-{rng.randint(0, 9999):04d}"


# --------------------------------------------------------------------------- catalogs

_CUSTOMER_PREFIXES = (
    "Prairie", "Summit", "Blue Ridge", "Lone Star", "Great Lakes", "Red River",
    "Iron Horse", "Cascade", "Heartland", "Midway", "Pioneer", "Eagle", "Granite",
    "Coastal", "Timberline", "Silver State", "Keystone", "Frontier", "Northstar",
    "Badger", "Cornbelt", "Tri-County", "Riverbend", "Canyon",
)  # fmt: skip
_CUSTOMER_SUFFIXES = (
    "Haulers LLC", "Freight Inc.", "Logistics", "Transport Co.", "Trucking",
    "Express", "Carriers", "Fleet Services", "Construction", "Waste Solutions",
)  # fmt: skip
_SHOP_NAMES = (
    "Example", "Rapid", "Precision", "Big Rig", "Crossroads", "Highway",
    "Interstate", "Torque", "Diamond", "Apex",
)  # fmt: skip
_SHOP_LOCATIONS = ("North", "South", "East", "West", "Central", "Airport", "Industrial Park")
_FIRST = (
    "Lee", "Maria", "Dwayne", "Tom", "Aisha", "Carlos", "Jen", "Mike", "Priya",
    "Sam", "Luis", "Kim", "Rob", "Tanya", "Hank", "Grace",
)  # fmt: skip
_LAST = (
    "Park", "Gonzalez", "Miller", "Okafor", "Nguyen", "Schmidt", "Baker", "Reyes",
    "Johnson", "Patel", "Kowalski", "Brown", "Silva", "Evans", "Hughes", "Ward",
)  # fmt: skip
_STREETS = ("Industrial Dr", "Main St", "Commerce Pkwy", "Route 9", "Depot Rd", "Freight Ln")
# (city, state code, state name, state rate, county rate or None, postal prefix)
_PLACES: tuple[tuple[str, str, str, str, str | None, str], ...] = (
    ("Springfield", "IL", "Illinois", "6.25", "1.00", "627"),
    ("Amarillo", "TX", "Texas", "6.25", "2.00", "791"),
    ("Columbus", "OH", "Ohio", "5.75", "1.75", "432"),
    ("Indianapolis", "IN", "Indiana", "7.00", None, "462"),
    ("Joplin", "MO", "Missouri", "4.225", "3.5", "648"),
    ("Des Moines", "IA", "Iowa", "6.00", "1.00", "503"),
    ("Omaha", "NE", "Nebraska", "5.50", "1.50", "681"),
)
_UNIT_MODELS: tuple[tuple[str, str, str, str], ...] = (
    ("Truck", "Tractor", "Freightliner", "Cascadia"),
    ("Truck", "Tractor", "Kenworth", "T680"),
    ("Truck", "Tractor", "Peterbilt", "579"),
    ("Truck", "Tractor", "Volvo", "VNL 860"),
    ("Truck", "Box Truck", "International", "MV607"),
    ("Truck", "Dump", "Mack", "Granite"),
    ("Trailer", "Dry Van", "Great Dane", "Everest"),
    ("Trailer", "Reefer", "Utility", "3000R"),
    ("Trailer", "Flatbed", "Wabash", "DuraPlate"),
)
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"

# (component, system, service, complaint note, cause, correction, hours range, parts)
# parts: (description, part number, category, cost low, cost high)
_JOBS: tuple[
    tuple[str, str, str, str, str, str, tuple[float, float], tuple[tuple[str, str, str, float, float], ...]],
    ...,
] = (
    ("ENGINE", "Engine", "Replace", "OIL LEAK AT FRONT OF ENGINE", "Worn crank seal",
     "Replaced front crank seal", (1.0, 3.5),
     (("SEAL, FRONT CRANK", "FC-1120", "Engine", 30, 70), ("OIL, 15W40 GAL", "OIL-1540", "Fluids", 12, 18))),
    ("BRAKES", "Brakes", "Adjust", "BRAKES OUT OF ADJUSTMENT", "Slack adjuster wear",
     "Adjusted brakes, replaced slack adjuster", (0.5, 2.0),
     (("SLACK ADJUSTER, AUTO", "SA-4410", "Brakes", 45, 90), ("CLEVIS PIN KIT", "CP-220", "Brakes", 3, 9))),
    ("BRAKES", "Brakes", "Replace", "GRINDING NOISE FROM REAR AXLE", "Linings worn to rivets",
     "Replaced brake shoes and drums, rear axle", (2.0, 5.0),
     (("BRAKE SHOE KIT", "BS-4707Q", "Brakes", 60, 120), ("BRAKE DRUM", "BD-3600A", "Brakes", 90, 160))),
    ("ELECTRICAL", "Lighting", "Repair", "MARKER LIGHTS INOPERATIVE", "Corroded pigtail",
     "Repaired wiring, replaced marker lamps", (0.5, 1.5),
     (("LAMP, MARKER LED AMBER", "ML-1003A", "Electrical", 4, 12), ("PIGTAIL, 2 WIRE", "PT-22", "Electrical", 2, 6))),
    ("TIRES", "Wheels", "Replace", "TIRE WORN BELOW 4/32", "Normal wear",
     "Mounted and balanced new drive tire", (0.5, 1.5),
     (("TIRE 295/75R22.5 DRIVE", "T-29575D", "Tires", 280, 420), ("VALVE STEM", "VS-1", "Tires", 1, 4))),
    ("COOLING", "Cooling", "Replace", "COOLANT LEAK AT RADIATOR", "Cracked radiator tank",
     "Replaced radiator and hoses", (2.5, 6.0),
     (("RADIATOR ASSY", "RAD-5520", "Cooling", 600, 1100), ("HOSE, UPPER RADIATOR", "HS-118", "Cooling", 25, 60),
      ("COOLANT, ELC 50/50 GAL", "CL-ELC", "Fluids", 10, 16))),
    ("PM", "Preventive Maintenance", "Inspect", "PM SERVICE DUE", "Scheduled maintenance",
     "Performed PM-A service and DOT inspection", (1.5, 3.0),
     (("FILTER, OIL", "LF-9009", "Filters", 15, 35), ("FILTER, FUEL", "FF-5488", "Filters", 20, 45),
      ("FILTER, AIR", "AF-25557", "Filters", 40, 90))),
    ("AFTERTREATMENT", "Exhaust", "Clean", "CHECK ENGINE LIGHT - DPF", "Soot loading",
     "Performed forced regen, cleaned DPF", (1.0, 4.0),
     (("GASKET, DPF CLAMP", "DG-771", "Exhaust", 12, 30), ("SENSOR, NOX", "NX-2894", "Exhaust", 250, 480))),
    ("SUSPENSION", "Suspension", "Replace", "AIR BAG LEAKING", "Ruptured air spring",
     "Replaced air spring", (0.75, 2.0),
     (("AIR SPRING", "AS-9781", "Suspension", 70, 140),)),
    ("HVAC", "Cab", "Repair", "A/C BLOWING WARM", "Low refrigerant, leaking o-ring",
     "Replaced o-ring, evacuated and recharged A/C", (1.0, 2.5),
     (("O-RING KIT, A/C", "AC-ORK", "HVAC", 8, 20), ("REFRIGERANT R134A LB", "R134A", "HVAC", 9, 15))),
)  # fmt: skip
_MISC = (
    ("Shop towels / rags", "4.50", "18.00"),
    ("Environmental / disposal fee", "6.00", "25.00"),
    ("Road test", "15.00", "45.00"),
    ("Freight on special order parts", "12.50", "60.00"),
)


_NULL_ADDRESS: dict[str, None] = dict.fromkeys(("title", "line1", "line2", "city", "state", "country", "postalCode"))

# --------------------------------------------------------------------------- per-seed pools


@dataclass(frozen=True)
class _Shop:
    title: str
    email: str
    address: str
    place: tuple[str, str, str, str, str | None, str]
    technicians: tuple[tuple[str, str], ...]  # (name, number)
    parts_manager: str


@dataclass(frozen=True)
class _Customer:
    fields: tuple[tuple[str, Any], ...]  # Customer{...} in contract order
    title: str
    billing_employee: str | None
    billing_email: str | None
    address: tuple[tuple[str, Any], ...]
    units: tuple[tuple[tuple[str, Any], ...], ...]
    terms_days: int


@lru_cache(maxsize=32)
def _shops(seed: int, count: int) -> tuple[_Shop, ...]:
    rng = random.Random(f"{seed}:shops")
    name = rng.choice(_SHOP_NAMES)
    shops = []
    for n in range(max(1, count)):
        location = _SHOP_LOCATIONS[n] if n < len(_SHOP_LOCATIONS) else f"Location {n + 1}"
        place = rng.choice(_PLACES)
        techs = tuple(
            (f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", str(rng.randint(100, 999)) if rng.random() < 0.6 else "")
            for _ in range(rng.randint(4, 8))
        )
        slug = f"{name}{location}".lower().replace(" ", "")
        shops.append(
            _Shop(
                title=f"{name} Diesel - {location}",
                email=f"service@{slug}diesel.example",
                address=(
                    f"{rng.randint(100, 9999)} {rng.choice(_STREETS)}, "
                    f"{place[0]}, {place[1]} {place[5]}{rng.randint(0, 99):02d}"
                ),
                place=place,
                technicians=techs,
                parts_manager=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            )
        )
    return tuple(shops)


def _vin(rng: random.Random, make: str, year: int) -> str:
    """17 characters without I/O/Q, like a real VIN; the check digit is not computed."""
    maker = make[0].upper() if make[0].upper() in _VIN_CHARS else "N"
    year_code = "ABCDEFGHJKLMNPRSTVWXY123456789"[(year - 2010) % 30]
    body = "".join(rng.choice(_VIN_CHARS) for _ in range(7))
    return f"1{maker}U{body}{year_code}{rng.randint(0, 999999):06d}"


def _address(rng: random.Random, title: str) -> tuple[tuple[str, Any], ...]:
    place = rng.choice(_PLACES)
    return (
        ("title", title),
        ("line1", f"{rng.randint(100, 9999)} {rng.choice(_STREETS)}"),
        ("line2", _maybe(rng, 0.2, f"Suite {rng.randint(1, 400)}")),
        ("city", place[0]),
        ("state", place[1]),
        ("country", "US"),
        ("postalCode", f"{place[5]}{rng.randint(0, 99):02d}"),
    )


@lru_cache(maxsize=32)
def _customers(seed: int) -> tuple[_Customer, ...]:
    """A fixed pool per seed, so the same customers and units recur across days."""
    rng = random.Random(f"{seed}:customers")
    names = [f"{p} {s}" for p in _CUSTOMER_PREFIXES for s in _CUSTOMER_SUFFIXES]
    rng.shuffle(names)
    ids = rng.sample(range(1_000_000, 9_999_999), 50)
    pool = []
    for n, (title, customer_id) in enumerate(zip(names[:50], ids, strict=True)):
        slug = title.split()[0].lower().replace("-", "")
        units = []
        for u in range(rng.randint(1, 6)):
            kind, sub_type, make, model = rng.choice(_UNIT_MODELS)
            year = rng.randint(2012, 2025)
            units.append(
                (
                    ("customerUnitId", str(customer_id * 10 + u)),
                    ("number", f"{'T' if kind == 'Truck' else 'TR'}-{rng.randint(100, 999)}"),
                    ("nickname", _maybe(rng, 0.25, f"{rng.choice(_FIRST)}'s {kind.lower()}")),
                    ("type", kind),
                    ("subType", sub_type if rng.random() < 0.7 else None),
                    ("year", str(year)),
                    ("make", make),
                    ("model", model),
                    ("vin", _vin(rng, make, year)),
                    (
                        "licensePlate",
                        _maybe(rng, 0.6, f"{rng.randint(100, 999)}{rng.choice('ABCDEFGHJK')}{rng.randint(10, 99)}"),
                    ),
                )
            )
        employee = _maybe(rng, 0.8, f"{rng.choice(_FIRST)} {rng.choice(_LAST)}")
        pool.append(
            _Customer(
                fields=(
                    ("customerId", customer_id),
                    ("title", title),
                    ("externalId", _maybe(rng, 0.3, f"EXT-{n:04d}")),
                    ("mainPhone", _phone(rng)),
                    ("secondaryPhone", _maybe(rng, 0.3, _phone(rng))),
                ),
                title=title,
                billing_employee=employee,
                billing_email=_maybe(rng, 0.85, f"ap@{slug}{n}.example"),
                address=_address(rng, title),
                units=tuple(units),
                terms_days=rng.choice((0, 15, 30, 30, 30, 45)),
            )
        )
    return tuple(pool)


# --------------------------------------------------------------------------- invoices


@dataclass(frozen=True)
class _Payment:
    """When the invoice gets paid, fixed at generation so ``as_of`` only selects a stage."""

    mode: str  # "unpaid" | "full" | "partial"
    after_days: int  # k: balance == total while as_of < day + k
    settle_days: int  # partial: fully paid at day + k + settle_days
    remaining: Decimal  # partial: balance between the two stages

    def balance(self, total: Decimal, day: date, as_of: date) -> Decimal:
        elapsed = (as_of - day).days
        if self.mode == "unpaid" or elapsed < self.after_days:
            return total
        if self.mode == "partial" and elapsed < self.after_days + self.settle_days:
            return self.remaining
        return _ZERO


def _build_invoice(seed: int, day: date, index: int, invoice_seed: int, shops: int) -> tuple[dict[str, Any], _Payment]:
    rng = random.Random(invoice_seed)
    ordinal = day.toordinal()

    def ident(kind: int, sub: int) -> str:
        return f"{kind}{ordinal:07d}{index:06d}{sub:02d}"

    shop = rng.choice(_shops(seed, shops))
    customer = rng.choice(_customers(seed))
    unit = dict(rng.choice(customer.units))
    customer_dict = dict(customer.fields)

    invoice_created = _at(day, rng, 13, 20)
    order_day = day - timedelta(days=rng.choice((0, 0, 0, 1, 1, 2, 3, 5)))
    order_created = _at(order_day, rng, 6, 10)
    start = order_created + timedelta(minutes=rng.randint(10, 120))
    completion = invoice_created - timedelta(minutes=rng.randint(5, 60))
    span = max(1, int((completion - start).total_seconds()))

    def during() -> datetime:
        return start + timedelta(seconds=rng.randint(0, span))

    labor_rate = Decimal(rng.choice((125, 135, 145, 150, 165, 175)))
    # Fullbay's laborRate/mileageRate are the *names* of the shop's rates, not amounts.
    rate_name = "Standard" if rng.random() < 0.85 else rng.choice(("Shop Rate", "Road Call", "Fleet"))
    complaints: list[dict[str, Any]] = []
    for c in range(rng.choice((1, 1, 1, 2, 2, 3))):
        job = rng.choice(_JOBS)
        component, system, service, note, cause, fix, (h_low, h_high), catalog = job
        complaint_created = order_created + timedelta(seconds=rng.randint(1, 600))
        corrections: list[dict[str, Any]] = []
        for k in range(rng.randint(1, 3)):
            slot = c * 3 + k
            parts: list[dict[str, Any]] = []
            parts_total = parts_cost = _ZERO
            for p in range(rng.choice((0, 1, 1, 2, 2, 3, 4))):
                description, number, category, c_low, c_high = rng.choice(catalog)
                quantity = (
                    Decimal(rng.randint(1, 4))
                    if rng.random() < 0.85
                    else Decimal(rng.choice(("0.5", "1.5", "2.5", "3.5")))
                )
                cost = _money(rng, c_low, c_high)
                markup = Decimal(rng.choice(("1.25", "1.35", "1.45", "1.6")))
                selling = _q2(cost * markup)
                overridden = rng.random() < 0.1
                if overridden:
                    selling = _q2(selling * Decimal("0.9"))
                parts_total += _q2(quantity * selling)
                parts_cost += _q2(quantity * cost)
                core = rng.random() < 0.1
                parts.append(
                    {
                        "primaryKey": ident(_K_PART, slot * 4 + p),
                        "description": description,
                        "shopPartNumber": number,
                        "vendorPartNumber": _maybe(rng, 0.8, number.replace("-", "")),
                        "partCategory": category,
                        "quantity": _qty(quantity),
                        "toBeReturnedQuantity": 1 if core else 0,
                        "returnedQuantity": 0,
                        "cost": _num(cost),
                        "sellingPrice": _num(selling),
                        "sellingPriceOverridden": "Yes" if overridden else "No",
                        "taxable": _yes_no(rng, 0.9),
                        "inventory": _yes_no(rng, 0.75),
                        "coreType": "Core" if core else _empty(rng),
                        "sublet": "No",
                        "quickBooksItem": _maybe(rng, 0.5, f"Parts:{category}"),
                        "created": _ts(during()),
                    }
                )
            hours = Decimal(rng.randint(round(h_low * 4), round(h_high * 4))) / 4
            labor = _q2(hours * labor_rate)
            performed = rng.random() < 0.95
            corrections.append(
                {
                    "primaryKey": ident(_K_CORRECTION, slot),
                    "globalComponent": component,
                    "globalSystem": system,
                    "globalService": service,
                    "unitService": _maybe(rng, 0.3, f"{service} {component.lower()}"),
                    "laborRate": rate_name,
                    "title": fix if k == 0 else f"{fix} (additional)",
                    "recommendedCorrection": fix,
                    "actualCorrection": fix if performed else _empty(rng),
                    "correctionPerformed": "Performed" if performed else "Not Performed",
                    "preAuthorized": _yes_no(rng, 0.3),
                    "prePaid": _yes_no(rng, 0.05),
                    "laborHoursTotal": _num(hours),
                    "laborTotal": _num(labor),
                    "taxable": _yes_no(rng, 0.4),
                    "partsCostTotal": _num(parts_cost),
                    "partsTotal": _num(parts_total),
                    "created": _ts(complaint_created + timedelta(seconds=rng.randint(1, 300))),
                    "Parts": parts,
                }
            )
        c_hours = sum((Decimal(str(x["laborHoursTotal"])) for x in corrections), _ZERO)
        techs: list[dict[str, Any]] = []
        tech_count = rng.choice((1, 1, 2))
        portions = [100] if tech_count == 1 else [p := rng.choice((50, 60, 70, 75)), 100 - p]
        actual_total = 0.0
        for t, portion in enumerate(portions):
            name, number = rng.choice(shop.technicians)
            # Clocked time in seconds, sent as hours with all their decimals (1.2527777777777778).
            seconds = int(c_hours * 3600 * portion / 100 * rng.randint(80, 120) / 100) + rng.randint(0, 59)
            actual = seconds / 3600
            actual_total += actual
            techs.append(
                {
                    "actualHours": actual,
                    "portion": portion,
                    "primaryKey": ident(_K_TECH, c * 2 + t),
                    "quickBooksLaborItem": None,
                    "technician": name,
                    "technicianNumber": number,
                }
            )
        complaints.append(
            {
                "primaryKey": int(ident(_K_COMPLAINT, c)),
                "mileageRate": rate_name,
                "laborRate": rate_name,
                "type": "Complaint" if rng.random() < 0.85 else "Recommendation",
                "subType": "" if rng.random() < 0.6 else rng.choice(("Driver Reported", "Inspection", "PM")),
                "authorized": _yes_no(rng, 0.97),
                "severity": " - " if rng.random() < 0.5 else rng.choice(("Low", "Medium", "High", "Critical")),
                "note": note,
                "cause": _maybe(rng, 0.8, cause),
                "causeType": None if rng.random() < 0.6 else rng.choice(("Wear and Tear", "Failure", "Damage")),
                "laborHoursTotal": _qty(c_hours),
                "actualHoursTotal": actual_total,
                "laborTaxable": "",
                "laborTotal": _num(sum((Decimal(str(x["laborTotal"])) for x in corrections), _ZERO)),
                "partsCostTotal": _num(sum((Decimal(str(x["partsCostTotal"])) for x in corrections), _ZERO)),
                "partsTotal": _num(sum((Decimal(str(x["partsTotal"])) for x in corrections), _ZERO)),
                "mileageTaxable": "",
                "mileageTotal": 0,
                "mileageCostTotal": 0,
                "serviceCallTaxable": "",
                "serviceCallTotal": 0,
                "sublet": "No",
                "partCategory": None,
                "quickBooksAccount": None,
                "quickBooksItem": None,
                "quickBooksItemType": None,
                "created": _ts(complaint_created),
                "AssignedTechnicians": techs,
                "Corrections": corrections,
            }
        )

    def total_of(items: list[dict[str, Any]], field: str) -> Decimal:
        return sum((Decimal(str(x[field])) for x in items), _ZERO)

    misc: list[dict[str, Any]] = []
    for m in range(rng.choice((0, 0, 0, 1, 1, 2))):
        description, low, high = rng.choice(_MISC)
        amount = _money(rng, float(low), float(high))
        misc.append(
            {
                "primaryKey": ident(_K_MISC, m),
                "description": description,
                "quantity": 1,
                "rate": _num(amount),
                "amount": str(amount),
                "taxable": _yes_no(rng, 0.7),
                "quickBooksItem": _maybe(rng, 0.5, "SHOP FEES"),
                "quickBooksItemType": "misc",
            }
        )

    parts_total = total_of(complaints, "partsTotal")
    labor_total = total_of(complaints, "laborTotal")
    misc_total = sum((Decimal(x["amount"]) for x in misc), _ZERO)
    supplies = _q2(min(labor_total * Decimal("0.05"), Decimal(45))) if rng.random() < 0.7 else _ZERO
    sub_total = parts_total + labor_total + supplies + misc_total

    _city, _state, state_name, state_rate, county_rate, _zip = shop.place
    rates = [("State", Decimal(state_rate))] + ([("County", Decimal(county_rate))] if county_rate else [])
    rate = sum((r for _, r in rates), _ZERO)
    tax_total = _q2(sub_total * rate / 100)
    tax_lines: list[dict[str, Any]] = []
    allocated = _ZERO
    for n, (title, line_rate) in enumerate(rates):
        line_tax = tax_total - allocated if n == len(rates) - 1 else _q2(sub_total * line_rate / 100)
        allocated += line_tax
        tax_lines.append({"taxTitle": title, "taxRate": float(line_rate), "taxTotal": str(line_tax)})
    rate_text = str(rate)
    total = sub_total + tax_total

    mode = rng.choices(("unpaid", "full", "partial"), weights=(10, 45, 45))[0]
    payment = _Payment(
        mode=mode,
        after_days=rng.randint(0, 20),
        settle_days=rng.randint(1, 15),
        remaining=_q2(total * Decimal(rng.randint(20, 80)) / 100),
    )

    creator, creator_number = rng.choice(shop.technicians)
    exported = rng.random() < 0.6

    def zero_or_null() -> float | None:
        return None if rng.random() < 0.5 else 0.0

    service_call, mileage, sublet = zero_or_null(), zero_or_null(), zero_or_null()
    address = dict(customer.address)
    billing_line = (
        ", ".join(str(address[f]) for f in ("line1", "city") if address[f])
        + f", {address['state']} {address['postalCode']}"
    )
    contact = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    all_parts_priced = during()

    submitter, authorizer = contact, _maybe(rng, 0.7, contact)
    contact_phone, contact_email = _phone(rng), f"{contact.split()[0].lower()}@fleet.example"
    # Keys in the order of the verbatim response in fullbay-api.md.
    order: dict[str, Any] = {
        "primaryKey": ident(_K_ORDER, 0),
        "repairOrderNumber": f"{ordinal % 100_000 + 100_000}{index:06d}",
        "technician": creator,
        "technicianNumber": creator_number,
        "partsManager": _maybe(rng, 0.5, shop.parts_manager),
        "partsManagerNumber": "",
        "customerAuthorizedOnHoursOnly": _yes_no(rng, 0.1),
        "Customer": dict(customer_dict),
        "Unit": unit,
        "description": _maybe(rng, 0.4, "; ".join(x["note"] for x in complaints)),
        "submitterContact": submitter,
        "submitterContactEmail": _maybe(rng, 0.5, contact_email),
        "submitterContactPhone": _maybe(rng, 0.7, contact_phone),
        "submitterContactCellPhone": None if rng.random() < 0.7 else _phone(rng),
        "authorizerContact": authorizer,
        "authorizerContactEmail": _maybe(rng, 0.4, contact_email) if authorizer else None,
        "authorizerContactPhone": _maybe(rng, 0.5, contact_phone) if authorizer else None,
        "authorizerContactCellPhone": None,
        "billingCustomer": customer.title,
        "BillingAddress": dict(customer.address),
        "RemitToAddress": dict(_address(rng, shop.title)) if rng.random() < 0.3 else dict(_NULL_ADDRESS),
        "ShipToAddress": dict(customer.address),
        "unitAccessMethod": None,
        "unitAvailableDateTime": _ts(order_created - timedelta(minutes=rng.randint(0, 240))),
        "unitMustBeAccessedAtAvailableDateTime": _yes_no(rng, 0.05),
        "unitReturnDateTime": None if rng.random() < 0.6 else _ts(completion + timedelta(minutes=rng.randint(0, 90))),
        "unitReturnAsap": _yes_no(rng, 0.3),
        "UnitPickUpAddress": dict(customer.address) if rng.random() < 0.3 else dict(_NULL_ADDRESS),
        "locationInformation": _maybe(rng, 0.4, f"Bay {rng.randint(1, 12)}"),
        "authorizationNumber": _maybe(rng, 0.3, f"AUTH{rng.randint(1000, 99999)}"),
        "poNumber": _maybe(rng, 0.4, f"PO-{rng.randint(10000, 99999)}"),
        "partsPoNumber": _maybe(rng, 0.2, str(rng.randint(10_000_000, 99_999_999))),
        "hot": _yes_no(rng, 0.15),
        "followInUseSchedule": "No",
        "unscheduled": _yes_no(rng, 0.35),
        "customerThreshold": float(_money(rng, 500, 3000)) if rng.random() < 0.4 else None,
        "preAuthorized": _yes_no(rng, 0.3),
        "laborHoursTotal": _qty(total_of(complaints, "laborHoursTotal")),
        "actualHoursTotal": sum(x["actualHoursTotal"] for x in complaints),
        "laborTotal": _num(labor_total),
        "subletLaborTotal": sublet,
        "partsCostTotal": _num(total_of(complaints, "partsCostTotal")),
        "partsTotal": _num(parts_total),
        "mileageTotal": mileage,
        "mileageCostTotal": None if mileage is None else 0,
        "overrideSuppliesTotal": "No",
        "overridenSuppliesTotal": 0,
        "serviceCallTotal": service_call,
        "allPartsPricedDateTime": _ts(all_parts_priced) if parts_total else "",
        "startDateTime": _ts(start),
        "completionDateTime": _ts(completion),
        "createdByTechnician": creator,
        "createdByTechnicianNumber": creator_number,
        "created": _ts(order_created),
        "MiscCharges": misc,
        "Complaints": complaints,
    }
    invoice: dict[str, Any] = {
        "primaryKey": f"{_K_INVOICE}{ordinal:07d}{index:06d}",
        "exported": "1" if exported else "0",
        "invoiceDate": day.isoformat(),
        "dueDate": (day + timedelta(days=customer.terms_days)).isoformat(),
        "invoiceNumber": f"{ordinal % 100_000}{index:06d}",
        "customerTitle": customer.title,
        "customerBillingEmployee": customer.billing_employee,
        "customerBillingEmail": customer.billing_email,
        "customerBillingAddress": billing_line,
        "Customer": customer_dict,
        "shopTitle": shop.title,
        "shopEmail": shop.email,
        "shopPhysicalAddress": shop.address,
        "miscChargeTotal": _num(misc_total),
        "serviceCallTotal": service_call,
        "mileageTotal": mileage,
        "mileageCostTotal": None if mileage is None else 0.0,
        "partsTotal": _num(parts_total),
        "laborHoursTotal": _num(total_of(complaints, "laborHoursTotal")),
        "laborTotal": _num(labor_total),
        "subletLaborTotal": sublet,
        "suppliesTotal": _num(supplies),
        "subTotal": _num(sub_total),
        "TaxInformation": {
            "taxTitle": state_name,
            "taxRate": rate_text,
            "taxTotal": _num(tax_total),
            "TaxLineInformation": tax_lines,
        },
        "taxTitle": state_name,
        "taxRate": rate_text,
        "taxTotal": _num(tax_total),
        "total": _num(total),
        "balance": _num(total),
        "quickBooksId": str(rng.randint(10_000, 999_999)) if exported else _empty(rng),
        "promiseToPayDate": _maybe(rng, 0.05, (day + timedelta(days=rng.randint(5, 40))).isoformat()),
        "createdByTechnician": creator,
        "createdByTechnicianNumber": creator_number,
        "created": _ts(invoice_created),
        "ServiceOrder": order,
    }
    return invoice, payment


# --------------------------------------------------------------------------- public API


class DayPlan:
    """One day's invoice seeds and void draws; invoices are built on demand.

    Drawing the per-invoice seeds is cheap (two random draws per invoice), so a
    simulator can count a 50k-invoice day and build only the page it serves.
    Index ``i`` gets the same invoice whatever ``per_day`` is, because the draws
    are sequential.
    """

    def __init__(self, seed: int, day: date, per_day: int, *, void_rate: float = 0.0, shops: int = 3) -> None:
        if not 0 <= per_day <= MAX_PER_DAY:
            raise ValueError(f"per_day must be within 0..{MAX_PER_DAY}, got {per_day}")
        self.seed, self.day, self.per_day, self.void_rate, self.shops = seed, day, per_day, void_rate, shops
        rng = random.Random(f"{seed}:{day.isoformat()}")
        self._seeds = array("Q")
        self._void_draws = array("d")
        self._indexes_memo: tuple[date, tuple[int, ...]] | None = None
        for _ in range(per_day):
            self._seeds.append(rng.getrandbits(64))
            self._void_draws.append(rng.random())

    def is_voided(self, index: int, as_of: date) -> bool:
        return as_of >= self.day + timedelta(days=VOID_AFTER_DAYS) and self._void_draws[index] < self.void_rate

    def indexes(self, as_of: date) -> tuple[int, ...]:
        """Indexes of invoices still present (not voided) as of ``as_of``; memoised for the last ``as_of``."""
        memo = self._indexes_memo
        if memo is not None and memo[0] == as_of:
            return memo[1]
        if self.void_rate <= 0 or as_of < self.day + timedelta(days=VOID_AFTER_DAYS):
            indexes = tuple(range(self.per_day))
        else:
            indexes = tuple(i for i, u in enumerate(self._void_draws) if u >= self.void_rate)
        self._indexes_memo = (as_of, indexes)  # one atomic assignment: safe across server threads
        return indexes

    def invoice(self, index: int, as_of: date) -> dict[str, Any]:
        """Invoice ``index`` (voided or not) with its balance as of ``as_of``."""
        return self.invoice_and_payments(index, as_of)[0]

    def invoice_and_payments(self, index: int, as_of: date) -> tuple[dict[str, Any], list[tuple[date, Decimal]]]:
        """Invoice ``index`` and the payments (day, amount) made on it by ``as_of``:
        together they explain its balance (total minus payments)."""
        if not 0 <= index < self.per_day:
            raise IndexError(index)
        invoice, payment = _build_invoice(self.seed, self.day, index, self._seeds[index], self.shops)
        total = Decimal(str(invoice["total"]))
        invoice["balance"] = _num(payment.balance(total, self.day, as_of))
        paid: list[tuple[date, Decimal]] = []
        if payment.mode != "unpaid":
            first = self.day + timedelta(days=payment.after_days)
            if payment.mode == "partial":
                paid = [(first, total - payment.remaining)]
                paid.append((first + timedelta(days=payment.settle_days), payment.remaining))
            else:
                paid = [(first, total)]
        return invoice, [(day, amount) for day, amount in paid if day <= as_of]

    def invoices(self, as_of: date) -> list[dict[str, Any]]:
        return [self.invoice(i, as_of) for i in self.indexes(as_of)]


def plan_day(seed: int, day: date, per_day: int, *, void_rate: float = 0.0, shops: int = 3) -> DayPlan:
    return DayPlan(seed, day, per_day, void_rate=void_rate, shops=shops)


def invoices_for_day(
    seed: int,
    day: date,
    per_day: int,
    as_of: date,
    shops: int = 3,
    *,
    void_rate: float = 0.0,
) -> list[dict[str, Any]]:
    """All invoices dated ``day`` as the API would return them on ``as_of``.

    Exactly ``per_day`` invoices, minus those voided (a ``void_rate`` fraction,
    chosen per invoice) once ``as_of >= day + 3 days``. Only ``balance`` and the
    voids depend on ``as_of``.
    """
    return plan_day(seed, day, per_day, void_rate=void_rate, shops=shops).invoices(as_of)


# --------------------------------------------------------------------------- type chaos

#: Kinds a field may turn into under type chaos (``with_type_chaos``).
CHAOS_KINDS: tuple[str, ...] = (
    "number_as_string",
    "word",
    "empty_string",
    "null",
    "object",
    "list",
    "boolean",
    "huge_number",
    "ten_decimals",
)
#: The invoice's identity: never changed by type chaos.
IDENTITY_FIELDS = frozenset({"primaryKey", "invoiceDate"})


def _chaos_value(kind: str, value: Any, rng: random.Random) -> Any:
    if kind == "number_as_string":
        return (
            str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(rng.randint(0, 999))
        )
    if kind == "word":
        return rng.choice(("Standard", "n/a", "pending", "TBD", "see notes"))
    if kind == "empty_string":
        return ""
    if kind == "null":
        return None
    if kind == "object":
        return {"value": value if not isinstance(value, (dict, list)) else "nested"}
    if kind == "list":
        return [value] if not isinstance(value, (dict, list)) else []
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "huge_number":
        return rng.choice((10**15, 1e300, -(10**13)))
    return round(rng.uniform(0, 1000), 10) + 1e-10  # a number with ten decimals


def with_type_chaos(
    invoice: dict[str, Any], rate: float, seed: int, identity: frozenset[str] = IDENTITY_FIELDS
) -> dict[str, Any]:
    """A copy of ``invoice`` in which each field except its identity (``primaryKey``
    and ``invoiceDate`` at the top), at any depth, independently takes another JSON
    type with probability ``rate``: the same seed and invoice always give the same
    copy. What real accounts send is not what the contract's types say; this is how
    the loader is held to "identity strict, content tolerant"."""
    rng = random.Random(f"{seed}:chaos:{invoice.get('primaryKey')}")

    def walk(value: Any, top: bool) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if top and key in identity:
                    out[key] = item
                elif rng.random() < rate:
                    out[key] = _chaos_value(rng.choice(CHAOS_KINDS), item, rng)
                else:
                    out[key] = walk(item, False)
            return out
        if isinstance(value, list):
            return [
                _chaos_value(rng.choice(CHAOS_KINDS), item, rng) if rng.random() < rate else walk(item, False)
                for item in value
            ]
        return value

    result: dict[str, Any] = walk(invoice, True)
    return result
