"""From a raw webhook message to the record's new state and, maybe, a conversion."""

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from schemas.conversion import ConversionEvent
from schemas.envelope import RawEnvelope
from schemas.records import RecordChange
from schemas.source import SourceConfig
from streams.conversion import build_conversion
from streams.status import RecordState, decide, event_for_status
from streams.validation import InvalidWebhook, validate


@dataclass(frozen=True)
class Tracked:
    new_state: RecordState
    conversion: ConversionEvent | None
    mapped: bool
    unusable: tuple[str, ...]


def decode_envelope(raw: bytes | None) -> RawEnvelope:
    try:
        return RawEnvelope.model_validate_json(raw or b"")
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        raise InvalidWebhook([f"not a raw envelope: {where}: {first['msg']}"]) from None


def validated_change(
    envelope: RawEnvelope, sources: Mapping[str, SourceConfig]
) -> tuple[RecordChange, SourceConfig]:
    source = sources.get(envelope.source_id)
    if source is None:
        raise InvalidWebhook([f"unknown source {envelope.source_id!r}"])
    return validate(envelope, source), source


def state_key(change: RecordChange) -> str:
    return f"{change.source_id}:{change.module.value}:{change.record_id}"


def track(change: RecordChange, source: SourceConfig, state: RecordState) -> Tracked:
    event_name = event_for_status(change.module, change.status, source.status_map)
    decision = decide(state, change.status, change.received_at, event_name)
    conversion, unusable = (
        build_conversion(change, source, decision.emit, decision.previous_status)
        if decision.emit
        else (None, ())
    )
    return Tracked(decision.new_state, conversion, event_name is not None, unusable)
