"""The sweep's decisions: which window to read, how far its mark moves, and which
envelopes the records and status changes it read become.

The high-water mark of a source and module is the latest Modified_Time the sweep has
read, in Zoho's clock; the next sweep reads from a few minutes before it, so a record
saved in the same second as the last one read, or committed late on Zoho's side, is
read again rather than missed (a repeat converts nothing twice)."""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.envelope import Origin, RawEnvelope
from schemas.source import SourceConfig
from streams.decisions.status import event_for_status
from zoho.fields import (
    CDP_ID_FIELD,
    MODIFIED_BY_FIELD,
    MODIFIED_TIME_FIELD,
    STATUS_FIELDS,
    Module,
)
from zoho.listing import modified_time, parse_time
from zoho.records import webhook_parameters
from zoho.timeline import StatusChange

_ENVELOPE_NAMESPACE = uuid.UUID("6f1c1a52-8d0e-4c8e-9b43-3f0a9c5e7d21")


def can_call_crm(source: SourceConfig) -> bool:
    """Whether the source has what a Zoho CRM API call needs."""
    return bool(
        source.client_id
        and source.client_secret.get_secret_value()
        and source.refresh_token.get_secret_value()
    )


def swept(source: SourceConfig, enabled: bool) -> bool:
    """Whether the sweep reads this source: on globally and for it, enabled, with
    credentials."""
    return enabled and source.enabled and source.sweep and can_call_crm(source)


def sweep_since(
    mark: datetime | None, now: datetime, overlap: timedelta, first_lookback: timedelta
) -> datetime:
    """From the mark minus the overlap; a source's first sweep looks back `first_lookback`
    (older history is the backfill command's)."""
    return mark - overlap if mark is not None else now - first_lookback


def advanced_mark(mark: datetime | None, records: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The latest Modified_Time of the records read, never moving back."""
    times = [t for t in (modified_time(r) for r in records) if t is not None]
    if mark is not None:
        times.append(mark)
    return max(times, default=None)


# At most this many envelope ids are remembered per mark; past it the oldest are
# forgotten, which only means publishing them once more.
MAX_SEEN = 1000


def recent(
    seen: Mapping[str, datetime], mark: datetime | None, overlap: timedelta
) -> dict[str, datetime]:
    """The envelope ids the next sweep will read again (modified within the overlap before
    the mark), so it can leave them out; the latest MAX_SEEN of them."""
    if mark is None:
        return {}
    kept = sorted(
        ((envelope_id, at) for envelope_id, at in seen.items() if at >= mark - overlap),
        key=lambda item: item[1],
    )
    return dict(kept[-MAX_SEEN:])


def envelope_time(envelope: RawEnvelope) -> datetime | None:
    """The Modified_Time of the record reading the envelope holds."""
    return parse_time(envelope.parameters.get(MODIFIED_TIME_FIELD))


def mark_key(source_id: str, module: Module) -> str:
    return f"{source_id}:{module.value}"


def record_envelope(
    source: SourceConfig,
    module: Module,
    record: Mapping[str, Any],
    origin: Origin,
    received_at: datetime,
) -> RawEnvelope | None:
    """The envelope a webhook for this record would have made; None for a record without
    a CDP ID, which no webhook of it could convert either (it is not parked each sweep)."""
    parameters = webhook_parameters(
        module, record, lead_amount_field=source.amount_field, cdp_id_field=source.cdp_id_field
    )
    if not parameters.get(CDP_ID_FIELD):
        return None
    return _envelope(source, parameters, origin, received_at, None)


def timeline_envelopes(
    source: SourceConfig,
    module: Module,
    record: Mapping[str, Any],
    changes: Iterable[StatusChange],
    since: datetime,
    origin: Origin,
    received_at: datetime,
) -> list[RawEnvelope]:
    """One envelope per change into a mapped status within the window, with the record's
    other fields as they are now and the change's own time and author."""
    current = record_envelope(source, module, record, origin, received_at)
    if current is None:
        return []
    envelopes = []
    for change in changes:
        if change.changed_at < since:
            continue
        if event_for_status(module, change.status, source.status_map) is None:
            continue
        parameters = dict(current.parameters) | {STATUS_FIELDS[module]: change.status}
        if change.changed_by:
            parameters[MODIFIED_BY_FIELD] = change.changed_by
        envelopes.append(_envelope(source, parameters, origin, received_at, change.changed_at))
    return envelopes


def _envelope(
    source: SourceConfig,
    parameters: dict[str, str],
    origin: Origin,
    received_at: datetime,
    status_changed_at: datetime | None,
) -> RawEnvelope:
    # The same reading of the same record state gets the same id, so the repeats the
    # overlap causes are recognisable.
    identity = "\x1f".join(
        [
            source.id,
            origin,
            str(status_changed_at),
            *sorted(f"{k}={v}" for k, v in parameters.items()),
        ]
    )
    return RawEnvelope(
        envelope_id=str(uuid.uuid5(_ENVELOPE_NAMESPACE, identity)),
        source_id=source.id,
        received_at=received_at,
        method="GET",
        content_type="application/json",
        parameters=parameters,
        origin=origin,
        status_changed_at=status_changed_at,
    )


@dataclass
class Budget:
    """Zoho CRM API calls one sweep of a source may still make (credits are finite)."""

    limit: int
    used: int = 0

    def take(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit
