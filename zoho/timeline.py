"""What happened to a record, from two CRM APIs: the webhook failures of the org
(`GET /crm/v8/settings/automation/webhook_failures`) name the records whose webhook Zoho
failed to post, and a record's timeline (`GET /crm/v8/{module}/{id}/__timeline`) has each
change of its fields with the time it was made, so a status the record passed through and
left before anyone looked can still be known."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from zoho.crm_api import API_VERSION
from zoho.fields import STATUS_API_NAMES, Module, normalise_field_name
from zoho.listing import PER_PAGE, parse_time
from zoho.records import user_name

FAILURES_PATH = f"/crm/{API_VERSION}/settings/automation/webhook_failures"
# Zoho refuses a `from`..`to` span longer than this.
MAX_FAILURE_SPAN_DAYS = 90


def timeline_path(module: Module, record_id: str) -> str:
    return f"/crm/{API_VERSION}/{module.value}/{quote(record_id, safe='')}/__timeline"


def timeline_query(page_token: str | None) -> dict[str, str]:
    # Zoho takes per_page on the first page only; later pages carry the token alone.
    return {"page_token": page_token} if page_token else {"per_page": str(PER_PAGE)}


def failures_query(module: Module, since: date, until: date, page: int) -> dict[str, str]:
    """Dates, not times (`YYYY-MM-DD`), which Zoho reads in the org's time zone: a day
    more on each side covers any zone, and the timeline's times narrow it again."""
    since, until = since - timedelta(days=1), until + timedelta(days=1)
    if (until - since).days > MAX_FAILURE_SPAN_DAYS:
        since = date.fromordinal(until.toordinal() - MAX_FAILURE_SPAN_DAYS)
    return {
        "module": module.value,
        "from": since.isoformat(),
        "to": until.isoformat(),
        "page": str(page),
        "per_page": str(PER_PAGE),
    }


@dataclass(frozen=True)
class FailedRecords:
    record_ids: tuple[str, ...]  # in the order Zoho listed them, each once
    more: bool


def failed_records(document: Mapping[str, Any], module: Module) -> FailedRecords:
    """The module's records named by `{"webhook_failures": [{"entity_details": {"id": …,
    "module": {"api_name": "Leads"}}, …}], "info": {"more_records": …}}`."""
    failures = document.get("webhook_failures")
    ids: dict[str, None] = {}
    for failure in failures if isinstance(failures, list) else []:
        entity = failure.get("entity_details") if isinstance(failure, Mapping) else None
        if not isinstance(entity, Mapping):
            continue
        record_id, named = entity.get("id"), _module_name(entity.get("module"))
        if isinstance(record_id, str | int) and str(record_id) and named == module.value:
            ids[str(record_id)] = None
    info = document.get("info")
    more = isinstance(info, Mapping) and info.get("more_records") is True
    return FailedRecords(tuple(ids), more)


def _module_name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        name = value.get("api_name")
        return name if isinstance(name, str) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class StatusChange:
    status: str
    changed_at: datetime
    changed_by: str | None


@dataclass(frozen=True)
class TimelinePage:
    changes: tuple[StatusChange, ...]
    next_page_token: str | None


def status_changes(document: Mapping[str, Any], module: Module) -> TimelinePage:
    """Each change of the module's status field on this page of the timeline:
    `{"__timeline": [{"audited_time": …, "done_by": {"name": …}, "field_history":
    [{"api_name": "Lead_Status", "_value": {"new": …, "old": …}}]}], "info": …}`."""
    status_field = normalise_field_name(STATUS_API_NAMES[module])
    entries = document.get("__timeline")
    changes = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        changed_at = parse_time(entry.get("audited_time"))
        history = entry.get("field_history")
        if changed_at is None or not isinstance(history, list):
            continue
        for field in history:
            if not isinstance(field, Mapping):
                continue
            if normalise_field_name(str(field.get("api_name", ""))) != status_field:
                continue
            value = field.get("_value")
            new = value.get("new") if isinstance(value, Mapping) else None
            if isinstance(new, str) and new.strip():
                changes.append(
                    StatusChange(new.strip(), changed_at, user_name(entry.get("done_by")))
                )
    info = document.get("info")
    token = info.get("next_page_token") if isinstance(info, Mapping) else None
    more = isinstance(info, Mapping) and info.get("more_records") is True
    next_token = token if more and isinstance(token, str) and token else None
    return TimelinePage(tuple(sorted(changes, key=lambda c: c.changed_at)), next_token)
