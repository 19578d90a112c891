"""Records as the CRM API returns them (`GET /crm/v8/{module}`), turned into the
parameters a workflow webhook would have sent for the same record, so both take one path
through validation and the status tracker.

A record holds API names (`Lead_Status`, `Annual_Revenue`, `Modified_By` as an object);
webhook names are what `zoho.fields` lists (`lead_status`, `annual_revenue`,
`modified_by`). Fields are matched by their normalised names, so a source's
`amount_field` and `cdp_id_field` find `Annual_Revenue` and `CDP_ID` in any case.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from zoho.fields import (
    CDP_ID_FIELD,
    IDENTITY_API_NAMES,
    MODIFIED_BY_API_NAME,
    MODIFIED_BY_FIELD,
    MODIFIED_TIME_API_NAME,
    MODIFIED_TIME_FIELD,
    RECORD_ID_FIELDS,
    STATUS_API_NAMES,
    STATUS_FIELDS,
    Module,
    amount_field,
    api_name,
    normalise_field_name,
)

# Zoho answers at most 50 API names in `fields`.
MAX_FIELDS = 50


def list_fields(module: Module, lead_amount_field: str, cdp_id_field: str) -> tuple[str, ...]:
    """The API names a sweep asks for: what validation needs, then identity fields."""
    names = [
        STATUS_API_NAMES[module],
        api_name(amount_field(module, lead_amount_field)),
        cdp_id_field,
        MODIFIED_BY_API_NAME,
        MODIFIED_TIME_API_NAME,
    ]
    if module is Module.LEADS:
        names += IDENTITY_API_NAMES.values()
    unique = tuple(dict.fromkeys(names))
    if len(unique) > MAX_FIELDS:
        raise ValueError(f"Zoho answers at most {MAX_FIELDS} fields, not {len(unique)}")
    return unique


def webhook_parameters(
    module: Module, record: Mapping[str, Any], *, lead_amount_field: str, cdp_id_field: str
) -> dict[str, str]:
    """The record under webhook parameter names, values as text.

    Empty and absent fields are left out, as a webhook without them would be, except the
    amount: an empty amount is a conversion without a value, so it is sent blank.
    """
    fields = {normalise_field_name(str(name)): value for name, value in record.items()}
    parameters: dict[str, str] = {}

    def put(name: str, value: Any) -> None:
        text = _text(value)
        if text:
            parameters[name] = text

    put(RECORD_ID_FIELDS[module], fields.get("id"))
    put(CDP_ID_FIELD, fields.get(normalise_field_name(cdp_id_field)))
    put(STATUS_FIELDS[module], fields.get(normalise_field_name(STATUS_API_NAMES[module])))
    amount_name = amount_field(module, lead_amount_field)
    parameters[amount_name] = _text(fields.get(amount_name)) or ""
    put(MODIFIED_BY_FIELD, user_name(fields.get(normalise_field_name(MODIFIED_BY_API_NAME))))
    put(MODIFIED_TIME_FIELD, fields.get(normalise_field_name(MODIFIED_TIME_API_NAME)))
    if module is Module.LEADS:
        for name, api in IDENTITY_API_NAMES.items():
            put(name, fields.get(normalise_field_name(api)))
    return parameters


def user_name(value: Any) -> str | None:
    """A user lookup (`{"name": …, "id": …, "email": …}`) as a webhook's `Modified By`
    shows it: the name, else the email, else the id."""
    if isinstance(value, Mapping):
        for key in ("name", "email", "id"):
            text = _text(value.get(key))
            if text:
                return text
        return None
    return _text(value)


def _text(value: Any) -> str | None:
    """A plain value as text, trimmed; lookups, lists, booleans and null are not text."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return str(value)
    return None
