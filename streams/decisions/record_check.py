"""Does the Zoho CRM record confirm the webhook, and what may be filled in from it.

Records come from GET /crm/v8/{module}/{id} under Zoho's field API names (`Lead_Status`,
`Annual_Revenue`, `Stage`, `Amount`, `Email`, ...). Webhook fields are matched to them by
their normalised names, so "annual_revenue" finds `Annual_Revenue`.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from schemas.records import RecordChange
from schemas.source import SourceConfig, normalise_status
from streams.decisions.money import InvalidAmount, parse_amount
from streams.decisions.status import RecordState
from zoho.fields import (
    API_NAME_ALIASES,
    IDENTITY_FIELDS,
    STATUS_API_NAMES,
    Module,
    normalise_field_name,
)
from zoho.fields import amount_field as module_amount_field


def amount_field(change: RecordChange, source: SourceConfig) -> str:
    """The webhook's amount field, as validation chose it."""
    return module_amount_field(change.module, source.amount_field)


def needs_lookup(
    change: RecordChange, source: SourceConfig, state: RecordState, event_name: str | None
) -> bool:
    """Only a webhook about to emit a conversion (`event_name`, not yet emitted) is worth
    an API call: the record is confirmed or enriched before emitting, and Zoho's API
    credits are not spent on the edits in between."""
    if event_name is None or event_name in state.emitted:
        return False
    if change.origin != "webhook":
        # The sweep and the backfill read the record from the CRM themselves; a status
        # recovered from its timeline is one the record has left, which verify would
        # refuse.
        return False
    return source.verify or (source.enrich and bool(missing_fields(change, source)))


def missing_fields(change: RecordChange, source: SourceConfig) -> list[str]:
    """The webhook fields that enrichment could fill."""
    missing = [amount_field(change, source)] if change.amount is None else []
    if change.module is Module.LEADS:
        missing += [name for name in IDENTITY_FIELDS if name not in change.profile]
    return missing


def mismatches(
    change: RecordChange, record: Mapping[str, Any] | None, source: SourceConfig
) -> list[str]:
    """Why the record does not confirm the webhook; empty when it does."""
    where = f"Zoho CRM record {change.module.value}/{change.record_id}"
    if record is None:
        return [f"{where} does not exist"]
    fields = _by_name(record)
    reasons = []
    # A replayed webhook is an old one: the record has moved on since, so only what
    # cannot change (it exists, it belongs to that CDP id) is compared.
    if not change.replayed:
        reasons += _status_mismatch(where, change, fields)
    # The CDP id and the amount decide who is credited with how much: when the record
    # carries them, a webhook must agree with it.
    cdp_id = _text(fields.get("cdp_id"))
    if cdp_id is not None and cdp_id.strip() != change.cdp_id:
        reasons.append(f"{where} has a different cdp_id than the webhook")
    name = amount_field(change, source)
    recorded = _amount(fields.get(name))
    if (
        not change.replayed
        and change.amount is not None
        and recorded is not None
        and recorded != change.amount
    ):
        reasons.append(f"{where} has {name} {recorded}, the webhook says {change.amount}")
    return reasons


def _status_mismatch(where: str, change: RecordChange, fields: Mapping[str, Any]) -> list[str]:
    status_field = STATUS_API_NAMES[change.module]
    current = _text(fields.get(normalise_field_name(status_field)))
    if current is None:
        return [f"{where} has no {status_field}"]
    if normalise_status(current) != normalise_status(change.status):
        return [f"{where} has {status_field} {current!r}, the webhook says {change.status!r}"]
    return []


def enriched(
    change: RecordChange, record: Mapping[str, Any] | None, source: SourceConfig
) -> RecordChange:
    """The change with its missing amount and profile fields taken from the record.

    Only gaps are filled: what the webhook sent stays as sent.
    """
    if record is None:
        return change
    fields = _by_name(record)
    updates: dict[str, Any] = {}
    if change.amount is None:
        amount = _amount(fields.get(amount_field(change, source)))
        if amount is not None:
            updates["amount"] = amount
    profile = dict(change.profile)
    if change.module is Module.LEADS:
        for name in IDENTITY_FIELDS:
            value = _text(fields.get(API_NAME_ALIASES.get(name, name)))
            if name not in profile and value and value.strip():
                profile[name] = value.strip()
    if profile != change.profile:
        updates["profile"] = profile
    return change.model_copy(update=updates) if updates else change


def _by_name(record: Mapping[str, Any]) -> dict[str, Any]:
    return {normalise_field_name(str(name)): value for name, value in record.items()}


def _text(value: Any) -> str | None:
    """A plain field's value as text; lookups, lists and empty values are not text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def _amount(value: Any) -> Decimal | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return parse_amount(text)
    except InvalidAmount:
        return None
