"""The conversion event a record change becomes, with its deterministic id."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.conversion import ConversionEvent
from schemas.records import RecordChange
from schemas.source import SourceConfig
from streams.decisions.event_time import is_late
from streams.decisions.identity import build_identity
from streams.decisions.money import convert
from zoho.fields import Module


def event_id(source_id: str, module: Module, record_id: str, event_name: str) -> str:
    """Same inputs, same id, so a repeated conversion is absorbed downstream."""
    message = bytearray()
    for part in (source_id, module.value, record_id, event_name):
        # Length-prefixed, so ("ab", "c") and ("a", "bc") never collide.
        encoded = part.encode("utf-8")
        message += len(encoded).to_bytes(8, "big") + encoded
    value = int.from_bytes(hashlib.sha256(message).digest()[:16], "big")
    # Marked as an RFC 9562 version 8 (custom) UUID, so strict UUID parsers accept it.
    value = (value & ~(0xF << 76)) | (0x8 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    # What str(uuid.UUID(int=value)) gives, without building the UUID.
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


@dataclass(frozen=True)
class Lateness:
    """When the event is made and how old its event_time may be before it is late."""

    now: datetime
    limit: timedelta


def build_conversion(
    change: RecordChange,
    source: SourceConfig,
    event_name: str,
    previous_status: str | None,
    lateness: Lateness | None = None,
) -> tuple[ConversionEvent, tuple[str, ...]]:
    """The event, and the identity fields that were present but unusable."""
    if change.source_id != source.id:
        raise ValueError(f"change of source {change.source_id!r} converted with {source.id!r}")
    identity = build_identity(change.profile, source.default_country, source.pass_through)
    value = (
        convert(change.amount, source.exchange_rate, source.currency)
        if change.amount is not None
        else None
    )
    event = ConversionEvent(
        event_id=event_id(change.source_id, change.module, change.record_id, event_name),
        event_name=event_name,
        event_time=change.changed_at,
        event_time_source=change.event_time_source,
        late=lateness is not None and is_late(change.changed_at, lateness.now, lateness.limit),
        source_id=change.source_id,
        module=change.module,
        record_id=change.record_id,
        cdp_id=change.cdp_id,
        status=change.status,
        previous_status=previous_status,
        value=value,
        original_value=change.amount,
        currency=source.currency,
        exchange_rate=source.exchange_rate,
        modified_by=change.modified_by,
        user_data=identity.user_data,
        profile=identity.profile,
        test=change.test,
    )
    return event, identity.unusable
