"""One small description per date-windowed Fullbay endpoint.

Seven PHP scripts answer with the same date window, paging and envelope
(``shared/fullbay-api.md``). What differs is the name, the record's key, the field
that carries a record's date (known only for invoices), and the nested lists that
become line tables. Everything else in the pipeline is shared.

Where the evidence does not say which field dates a record, the date is not
guessed: such an endpoint is fetched in one-day windows, so a record's day is the
day the API returned it for, and schema observation lists the candidate fields.
Once a field is confirmed in configuration (``FULLBAY_DATE_FIELDS``) the endpoint
moves to seven-day windows and records are placed by that field. Both settings are
read once, by ``defs.settings``; this module only parses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from fullbay_dagster.fullbay.windows import MAX_WINDOW_DAYS


@dataclass(frozen=True)
class Typed:
    """A typed column and the field (dotted path) it is read from; a value that does
    not parse is NULL there and a row of ``fullbay_field_issues``."""

    column: str
    path: str
    kind: str  # id | text | number | date


def _t(column: str, path: str, kind: str = "text") -> Typed:
    return Typed(column, path, kind)


_CUSTOMER = (_t("customer_id", "Customer.customerId", "id"), _t("customer_title", "Customer.title"))
_VENDOR_LINES = (
    _t("part_number", "partNumber"),
    _t("description", "description"),
    _t("quantity", "quantity", "number"),
    _t("cost", "cost", "number"),
)


@dataclass(frozen=True)
class Endpoint:
    """What differs between Fullbay's date-windowed endpoints."""

    name: str  # the logical name used in settings, tables and assets
    php: str  # the script under the base URL
    key_field: str = "primaryKey"
    #: The field that dates a record, when the evidence (or configuration) confirms it.
    date_field: str | None = None
    #: Fields that may date a record (seen in one client or the simulator): documentation
    #: and a hint for reading ``fullbay_schema_fields``; never used to place records.
    date_candidates: tuple[str, ...] = ()
    #: Typed columns of ``fullbay_<name>``; every other field stays in raw_data.
    columns: tuple[Typed, ...] = ()
    #: The nested list whose items become rows of ``fullbay_<name>_lines``, and their columns.
    lines_path: str | None = None
    line_columns: tuple[Typed, ...] = ()
    evidence: str = ""

    @property
    def table(self) -> str:
        return f"fullbay_{self.name}"

    @property
    def lines_table(self) -> str | None:
        return f"fullbay_{self.name}_lines" if self.lines_path else None

    @property
    def window_days(self) -> int:
        """One-day windows until the date field is known: the window then dates the record."""
        return MAX_WINDOW_DAYS if self.date_field else 1


INVOICES = Endpoint(
    "invoices",
    "getInvoices.php",
    date_field="invoiceDate",
    # Invoices keep their own tables (fullbay_raw_work_orders, fullbay_work_orders and
    # fullbay_work_order_lines), described in fields.MAPPED.
    evidence="H: filters on invoice date; ~28k real invoices",
)
CUSTOMER_PAYMENTS = Endpoint(
    "customer_payments",
    "getCustomerPayments.php",
    date_candidates=("paymentDate", "created"),
    columns=(
        *_CUSTOMER,
        _t("amount", "amount", "number"),
        _t("invoice_fullbay_id", "invoicePrimaryKey", "id"),
        _t("payment_method", "paymentMethod"),
    ),
    evidence="H: name, windows, paging; fields unknown",
)
CUSTOMER_CREDITS = Endpoint(
    "customer_credits",
    "getCustomerCredits.php",
    date_candidates=("creditDate", "created"),
    columns=(
        *_CUSTOMER,
        _t("amount", "amount", "number"),
        _t("invoice_fullbay_id", "invoicePrimaryKey", "id"),
        _t("credit_number", "creditNumber"),
    ),
    evidence="H: name, windows, paging; fields unknown",
)
ADJUSTMENTS = Endpoint(
    "adjustments",
    "getAdjustments.php",
    date_candidates=("adjustmentDate", "created"),
    columns=(
        _t("part_number", "partNumber"),
        _t("quantity", "quantity", "number"),
        _t("cost", "cost", "number"),
        _t("reason", "reason"),
    ),
    evidence="H: inventory movements; L: no shopTitle",
)
COUNTER_SALES = Endpoint(
    "counter_sales",
    "getCounterSales.php",
    date_candidates=("saleDate", "created"),
    columns=(
        *_CUSTOMER,
        _t("sale_number", "saleNumber"),
        _t("sub_total", "subTotal", "number"),
        _t("tax_total", "taxTotal", "number"),
        _t("total", "total", "number"),
    ),
    lines_path="Parts",
    line_columns=(*_VENDOR_LINES[:3], _t("price", "price", "number")),
    evidence="H: name, windows, paging; fields unknown",
)
VENDOR_BILLS = Endpoint(
    "vendor_bills",
    "getVendorBills.php",
    date_candidates=("billDate",),
    columns=(
        _t("bill_number", "billNumber"),
        _t("vendor_title", "Vendor.title"),
        _t("amount", "amount", "number"),
        _t("status", "status"),
    ),
    lines_path="Lines",
    line_columns=_VENDOR_LINES,
    evidence="L (one client, unverified): primaryKey, billNumber, billDate, amount, Vendor.title, Lines[]",
)
VENDOR_CREDITS = Endpoint(
    "vendor_credits",
    "getVendorCredits.php",
    date_candidates=("creditDate", "billDate"),
    columns=(
        _t("credit_number", "creditNumber"),
        _t("vendor_title", "Vendor.title"),
        _t("amount", "amount", "number"),
    ),
    lines_path="Lines",
    line_columns=_VENDOR_LINES,
    evidence="H: name, windows, paging; fields unknown",
)

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        INVOICES,
        CUSTOMER_PAYMENTS,
        CUSTOMER_CREDITS,
        ADJUSTMENTS,
        COUNTER_SALES,
        VENDOR_BILLS,
        VENDOR_CREDITS,
    )
}


ENDPOINTS_SETTING, DATE_FIELDS_SETTING = "FULLBAY_ENDPOINTS", "FULLBAY_DATE_FIELDS"


def _pairs(text: str, setting: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(
                f"{setting}: expected endpoint=field pairs separated by commas "
                f"(customer_payments=paymentDate), got {item!r}"
            )
        pairs[name.strip()] = value.strip()
    return pairs


def _lookup(name: str, setting: str) -> Endpoint:
    wanted = name.strip().lower()
    for endpoint in ENDPOINTS.values():
        if wanted in (endpoint.name, endpoint.php.lower(), endpoint.php.removesuffix(".php").lower()):
            return endpoint
    raise ValueError(f"{setting}: unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}")


def selected_endpoints(
    chosen: str | None = None, date_fields: str | None = None, env: Mapping[str, str] | None = None
) -> list[Endpoint]:
    """The endpoints to run (``FULLBAY_ENDPOINTS``: names or PHP names, comma-separated,
    default all) with the date fields confirmed in ``FULLBAY_DATE_FIELDS``
    (``customer_payments=paymentDate,...``), from the arguments or else from ``env``.

    A pure parser: the code location reads the environment once, in
    ``defs.settings.load_settings``, which calls this. Raises ``ValueError`` naming the
    setting: an unknown name, a pair without ``=``, or a value that names no endpoint."""
    env = {} if env is None else env
    chosen = env.get(ENDPOINTS_SETTING) if chosen is None else chosen
    date_fields = env.get(DATE_FIELDS_SETTING, "") if date_fields is None else date_fields
    confirmed: dict[str, str] = {}
    for name, field in _pairs(date_fields, DATE_FIELDS_SETTING).items():
        endpoint = _lookup(name, DATE_FIELDS_SETTING)
        if endpoint is INVOICES:
            raise ValueError(f"{DATE_FIELDS_SETTING}: invoices are always placed by invoiceDate; remove {name!r}")
        confirmed[endpoint.name] = field
    names = [part for part in (p.strip() for p in (chosen or "").split(",")) if part]
    if chosen is not None and chosen.strip() and not names:
        raise ValueError(f"{ENDPOINTS_SETTING} {chosen!r} names no endpoint; known: {', '.join(ENDPOINTS)} (or all)")
    if names == ["all"] or not names:
        picked: list[Endpoint] = list(ENDPOINTS.values())
    else:
        picked = [_lookup(n, ENDPOINTS_SETTING) for n in names]
    out: list[Endpoint] = []
    for endpoint in picked:
        if any(e.name == endpoint.name for e in out):
            continue
        date_field = confirmed.get(endpoint.name)
        out.append(replace(endpoint, date_field=date_field) if date_field else endpoint)
    return out


#: The endpoints that share the generic tables (invoices keep theirs).
GENERIC_ENDPOINTS: tuple[Endpoint, ...] = tuple(e for e in ENDPOINTS.values() if e is not INVOICES)
