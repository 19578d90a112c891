"""Reading many records: `GET /crm/v8/{module}` by Modified_Time, page by page.

Zoho's `page` numbers stop at 2,000 records (`DISCRETE_PAGINATION_LIMIT_EXCEEDED`), so
pages are followed by `page_token` (`info.next_page_token`). The `If-Modified-Since`
header narrows the answer to records modified since then; 304 means there are none.
COQL is not used: the scope the set-up flow asks for lacks `ZohoCRM.coql.READ`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from zoho.crm_api import API_VERSION
from zoho.fields import MODIFIED_TIME_API_NAME, Module

PER_PAGE = 200
PAGE_LIMIT_CODE = "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
THROTTLED_CODE = "TOO_MANY_REQUESTS"


def list_path(module: Module) -> str:
    return f"/crm/{API_VERSION}/{module.value}"


def list_query(module: Module, fields: Sequence[str], page_token: str | None) -> dict[str, str]:
    """Oldest change first, so a sweep cut short has read everything up to its last
    record's Modified_Time. Converted leads are included (`converted=both`)."""
    query = {
        "fields": ",".join(fields),
        "sort_by": MODIFIED_TIME_API_NAME,
        "sort_order": "asc",
        "per_page": str(PER_PAGE),
    }
    if module is Module.LEADS:
        query["converted"] = "both"
    if page_token:
        query["page_token"] = page_token
    return query


def zoho_time(moment: datetime) -> str:
    """ISO 8601 with an offset and whole seconds, as Zoho writes and reads times."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.isoformat(timespec="seconds")


def parse_time(text: Any) -> datetime | None:
    """A time Zoho wrote (`2024-05-01T09:30:00+02:00`), or None when it is not one.
    A time without an offset is taken as UTC."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    records: tuple[dict[str, Any], ...]
    next_page_token: str | None  # None: this was the last page


EMPTY_PAGE = Page((), None)


def page_of(document: Mapping[str, Any]) -> Page:
    """`{"data": [...], "info": {"more_records": true, "next_page_token": "…"}}`."""
    data = document.get("data")
    records = tuple(r for r in data if isinstance(r, dict)) if isinstance(data, list) else ()
    info = document.get("info")
    info = info if isinstance(info, Mapping) else {}
    token = info.get("next_page_token")
    more = info.get("more_records") is True and isinstance(token, str) and bool(token)
    return Page(records, token if more else None)


def modified_time(record: Mapping[str, Any]) -> datetime | None:
    return parse_time(record.get(MODIFIED_TIME_API_NAME))
