"""The invoice fields the project knows, and the columns it maps them to.

``KNOWN`` lists every path (array positions folded to ``[]``) seen in the
documented contract, the verbatim real response and the simulator; anything else
the API sends is reported by the schema check as new. ``MAPPED`` names the column
each loaded path lands in and the JSON types its parser accepts, so a mapped path
that arrives with another type is reported too (its values become field issues).
"""

from __future__ import annotations

# object path -> its field names (space separated)
_FIELDS: dict[str, str] = {
    "": (
        "Customer ServiceOrder TaxInformation balance created createdByTechnician createdByTechnicianNumber "
        "customerBillingAddress customerBillingEmail customerBillingEmployee customerTitle dueDate exported "
        "invoiceDate invoiceNumber laborHoursTotal laborTotal mileageCostTotal mileageTotal miscChargeTotal "
        "partsTotal primaryKey promiseToPayDate quickBooksId serviceCallTotal shopEmail shopPhysicalAddress "
        "shopTitle subTotal subletLaborTotal suppliesTotal taxRate taxTitle taxTotal total"
    ),
    "Customer": "customerId externalId mainPhone secondaryPhone title",
    "ServiceOrder": (
        "BillingAddress Complaints Complaints[] Customer MiscCharges MiscCharges[] RemitToAddress "
        "ShipToAddress Unit UnitPickUpAddress actualHoursTotal allPartsPricedDateTime authorizationNumber "
        "authorizerContact authorizerContactCellPhone authorizerContactEmail authorizerContactPhone "
        "billingCustomer completionDateTime created createdByTechnician createdByTechnicianNumber "
        "customerAuthorizedOnHoursOnly customerThreshold description followInUseSchedule hot laborHoursTotal "
        "laborTotal locationInformation mileageCostTotal mileageTotal overrideSuppliesTotal "
        "overridenSuppliesTotal partsCostTotal partsManager partsManagerNumber partsPoNumber partsTotal "
        "poNumber preAuthorized primaryKey repairOrderNumber serviceCallTotal startDateTime subletLaborTotal "
        "submitterContact submitterContactCellPhone submitterContactEmail submitterContactPhone technician "
        "technicianNumber unitAccessMethod unitAvailableDateTime unitMustBeAccessedAtAvailableDateTime "
        "unitReturnAsap unitReturnDateTime unscheduled"
    ),
    "ServiceOrder.BillingAddress": "city country line1 line2 postalCode state title",
    "ServiceOrder.Complaints[]": (
        "AssignedTechnicians AssignedTechnicians[] Corrections Corrections[] actualHoursTotal authorized "
        "cause causeType created laborHoursTotal laborRate laborTaxable laborTotal mileageCostTotal "
        "mileageRate mileageTaxable mileageTotal note partCategory partsCostTotal partsTotal primaryKey "
        "quickBooksAccount quickBooksItem quickBooksItemType serviceCallTaxable serviceCallTotal severity "
        "subType sublet type"
    ),
    "ServiceOrder.Complaints[].AssignedTechnicians[]": (
        "actualHours portion primaryKey quickBooksLaborItem technician technicianNumber"
    ),
    "ServiceOrder.Complaints[].Corrections[]": (
        "Parts Parts[] actualCorrection correctionPerformed created globalComponent globalService "
        "globalSystem laborHoursTotal laborRate laborTotal partsCostTotal partsTotal preAuthorized prePaid "
        "primaryKey recommendedCorrection taxable title unitService"
    ),
    "ServiceOrder.Complaints[].Corrections[].Parts[]": (
        "coreType cost created description inventory partCategory primaryKey quantity quickBooksItem "
        "returnedQuantity sellingPrice sellingPriceOverridden shopPartNumber sublet taxable "
        "toBeReturnedQuantity vendorPartNumber"
    ),
    "ServiceOrder.Customer": "customerId externalId mainPhone secondaryPhone title",
    "ServiceOrder.MiscCharges[]": (
        "amount description primaryKey quantity quickBooksItem quickBooksItemType rate taxable"
    ),
    "ServiceOrder.RemitToAddress": "city country line1 line2 postalCode state title",
    "ServiceOrder.ShipToAddress": "city country line1 line2 postalCode state title",
    "ServiceOrder.Unit": "customerUnitId licensePlate make model nickname number subType type vin year",
    "ServiceOrder.UnitPickUpAddress": "city country line1 line2 postalCode state title",
    "TaxInformation": "TaxLineInformation TaxLineInformation[] taxRate taxTitle taxTotal",
    "TaxInformation.TaxLineInformation[]": "taxRate taxTitle taxTotal",
}
KNOWN: frozenset[str] = frozenset(
    f"{parent}.{name}" if parent else name for parent, names in _FIELDS.items() for name in names.split()
)

_NUMBER = frozenset({"number", "string", "null"})
_ID = frozenset({"number", "string", "null"})
_TEXT = frozenset({"string", "number", "null"})
_STRING = frozenset({"string", "null"})
_FLAG = frozenset({"string", "boolean", "number", "null"})
_OBJECT = frozenset({"object", "null"})
_LIST = frozenset({"array", "null"})

_WO = "fullbay_work_orders."
_LINES = "fullbay_work_order_lines."
_SO = "ServiceOrder."
_C = "ServiceOrder.Complaints[]."
_R = "ServiceOrder.Complaints[].Corrections[]."
_P = "ServiceOrder.Complaints[].Corrections[].Parts[]."
_M = "ServiceOrder.MiscCharges[]."

#: folded path -> (the column it is loaded into, the JSON types its parser accepts)
MAPPED: dict[str, tuple[str, frozenset[str]]] = {
    "primaryKey": (_WO + "fullbay_id", frozenset({"string", "number"})),
    "invoiceDate": (_WO + "invoice_date", frozenset({"string"})),
    "invoiceNumber": (_WO + "invoice_number", _TEXT),
    "dueDate": (_WO + "due_date", _STRING),
    "customerTitle": (_WO + "customer_name", _TEXT),
    "shopTitle": (_WO + "shop_title", _TEXT),
    "created": (_WO + "created_at", _STRING),
    "total": (_WO + "total_amount", _NUMBER),
    "balance": (_WO + "balance", _NUMBER),
    "laborTotal": (_WO + "labor_amount", _NUMBER),
    "partsTotal": (_WO + "parts_amount", _NUMBER),
    "taxTotal": (_WO + "tax_amount", _NUMBER),
    "TaxInformation": (_WO + "tax_amount", _OBJECT),
    "TaxInformation.taxTotal": (_WO + "tax_amount", _NUMBER),
    "suppliesTotal": (_WO + "supplies_amount", _NUMBER),
    "miscChargeTotal": (_WO + "misc_amount", _NUMBER),
    "subTotal": (_WO + "subtotal_amount", _NUMBER),
    "laborHoursTotal": (_WO + "labor_hours", _NUMBER),
    "exported": (_WO + "exported", _FLAG),
    "Customer": (_WO + "customer_id", _OBJECT),
    "Customer.customerId": (_WO + "customer_id", _ID),
    "Customer.title": (_WO + "customer_name", _TEXT),
    "ServiceOrder": (_WO + "service_order_id", _OBJECT),
    _SO + "primaryKey": (_WO + "service_order_id", _ID),
    _SO + "repairOrderNumber": (_WO + "work_order_number", _TEXT),
    _SO + "Customer": (_WO + "customer_id", _OBJECT),
    _SO + "Customer.customerId": (_WO + "customer_id", _ID),
    _SO + "Customer.title": (_WO + "customer_name", _TEXT),
    _SO + "Unit": (_WO + "vehicle_info", _OBJECT),
    _SO + "created": (_WO + "so_created_at", _STRING),
    _SO + "startDateTime": (_WO + "so_started_at", _STRING),
    _SO + "completionDateTime": (_WO + "so_completed_at", _STRING),
    _SO + "Complaints": (_LINES + "complaint_id", _LIST),
    _SO + "Complaints[]": (_LINES + "complaint_id", frozenset({"object"})),
    _C + "primaryKey": (_LINES + "complaint_id", _ID),
    _C + "AssignedTechnicians": (_LINES + "technicians", _LIST),
    _C + "AssignedTechnicians[]": (_LINES + "technicians", frozenset({"object"})),
    _C + "AssignedTechnicians[].technician": (_LINES + "technicians", _TEXT),
    _C + "Corrections": (_LINES + "source_key", _LIST),
    _C + "Corrections[]": (_LINES + "source_key", frozenset({"object"})),
    _R + "primaryKey": (_LINES + "source_key", _ID),
    _R + "actualCorrection": (_LINES + "description", _TEXT),
    _R + "title": (_LINES + "description", _TEXT),
    _R + "globalComponent": (_LINES + "component", _TEXT),
    _R + "laborHoursTotal": (_LINES + "quantity", _NUMBER),
    _R + "laborRate": (_LINES + "rate_name", _TEXT),
    _R + "laborTotal": (_LINES + "amount", _NUMBER),
    _R + "taxable": (_LINES + "taxable", _FLAG),
    _R + "created": (_LINES + "created_at", _STRING),
    _R + "Parts": (_LINES + "source_key", _LIST),
    _R + "Parts[]": (_LINES + "source_key", frozenset({"object"})),
    _P + "primaryKey": (_LINES + "source_key", _ID),
    _P + "description": (_LINES + "description", _TEXT),
    _P + "shopPartNumber": (_LINES + "component", _TEXT),
    _P + "quantity": (_LINES + "quantity", _NUMBER),
    _P + "sellingPrice": (_LINES + "unit_price", _NUMBER),
    _P + "cost": (_LINES + "unit_cost", _NUMBER),
    _P + "taxable": (_LINES + "taxable", _FLAG),
    _P + "created": (_LINES + "created_at", _STRING),
    _SO + "MiscCharges": (_LINES + "source_key", _LIST),
    _SO + "MiscCharges[]": (_LINES + "source_key", frozenset({"object"})),
    _M + "primaryKey": (_LINES + "source_key", _ID),
    _M + "description": (_LINES + "description", _TEXT),
    _M + "quantity": (_LINES + "quantity", _NUMBER),
    _M + "rate": (_LINES + "unit_price", _NUMBER),
    _M + "amount": (_LINES + "amount", _NUMBER),
    _M + "taxable": (_LINES + "taxable", _FLAG),
}
