"""When a conversion happened: the time its status changed in the CRM, where the pipeline
can know it, and whether that is too long ago for ad platforms to take it as is."""

from collections.abc import Mapping
from datetime import datetime, timedelta

from schemas.conversion import EventTimeSource
from zoho.fields import MODIFIED_TIME_FIELD
from zoho.listing import parse_time


def choose_event_time(
    parameters: Mapping[str, str], received_at: datetime, status_changed_at: datetime | None
) -> tuple[datetime, EventTimeSource]:
    """The timeline's change time; else the record's Modified_Time (a sweep's record, or a
    webhook whose admin sends `modified_time`); else when the webhook was received.

    `parameters` are under normalised names. A Modified_Time after the webhook arrived is
    a clock off between Zoho and us: the arrival bounds it, so no event is in the future.
    """
    if status_changed_at is not None:
        return status_changed_at, "timeline"
    modified = parse_time(parameters.get(MODIFIED_TIME_FIELD))
    if modified is not None:
        return min(modified, received_at), "modified_time"
    return received_at, "received"


def is_late(event_time: datetime, now: datetime, limit: timedelta) -> bool:
    """Older than `limit` when made (Meta's CRM integration takes 7 days)."""
    return now - event_time > limit
