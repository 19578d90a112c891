"""One webhook's way through the worker's decisions: decode -> validate -> check -> track.

The agent and the benchmark both call `process`. The record's state comes in through
`state_of` and the CRM lookup through `lookup`, so nothing here does I/O of its own."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.conversion import ConversionEvent
from schemas.envelope import RawEnvelope
from schemas.records import RecordChange
from schemas.source import SourceConfig
from streams.decisions.event import Lateness, build_conversion
from streams.decisions.record_check import enriched, mismatches, needs_lookup
from streams.decisions.status import RecordState, decide, event_for_status
from streams.decisions.validation import InvalidWebhook, validate
from zoho.crm_api import CrmAuthFailed, CrmRefused, CrmUnavailable
from zoho.fields import Module

REPLAY_HINT = "replay it with `zoho-cdp-replay --only-invalid`"

StateOf = Callable[[str], RecordState]
Lookup = Callable[[SourceConfig, Module, str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Tracked:
    """A usable webhook: the record's new state under `key` and, maybe, a conversion."""

    source_id: str
    envelope_id: str
    key: str
    new_state: RecordState
    changed: bool  # False: the table already holds new_state, so nothing to write
    conversion: ConversionEvent | None
    mapped: bool
    unusable: tuple[str, ...]
    origin: str = "webhook"


@dataclass(frozen=True)
class Rejected:
    """A webhook to park in the invalid topic, with every reason."""

    envelope: RawEnvelope | None
    reasons: list[str]
    error: Exception | None = None  # a decision that raised: a bug to log, not the input


async def process(
    raw: bytes | None,
    sources: Mapping[str, SourceConfig],
    state_of: StateOf,
    lookup: Lookup,
    lateness: Lateness | None = None,
) -> Tracked | Rejected:
    """`lateness` (now, and the late limit) flags conversions whose event_time is old."""
    try:
        envelope = decode_envelope(raw)
    except InvalidWebhook as invalid:
        return Rejected(None, invalid.reasons)
    try:
        return await _process(envelope, sources, state_of, lookup, lateness)
    except InvalidWebhook as invalid:
        return Rejected(envelope, invalid.reasons)
    except Exception as error:  # noqa: BLE001 - a failing decision parks the webhook
        return Rejected(envelope, [f"processing failed: {type(error).__name__}"], error)


async def _process(
    envelope: RawEnvelope,
    sources: Mapping[str, SourceConfig],
    state_of: StateOf,
    lookup: Lookup,
    lateness: Lateness | None,
) -> Tracked:
    change, source = validated_change(envelope, sources)
    key = state_key(change)
    state = state_of(key)
    event_name = event_for_status(change.module, change.status, source.status_map)
    change = await checked(change, source, state, event_name, lookup)
    return track(change, source, state, event_name, key, lateness)


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
    if not source.enabled:
        raise InvalidWebhook(
            [f"source {envelope.source_id!r} is disabled; {REPLAY_HINT} once enabled"]
        )
    return validate(envelope, source), source


def state_key(change: RecordChange) -> str:
    return f"{change.source_id}:{change.module.value}:{change.record_id}"


async def checked(
    change: RecordChange,
    source: SourceConfig,
    state: RecordState,
    event_name: str | None,
    lookup: Lookup,
) -> RecordChange:
    """The change, confirmed and enriched through the CRM as the source asks, where the
    webhook is about to convert.

    Raises InvalidWebhook when the record does not confirm it, and also when Zoho cannot
    be asked: parked, the webhook can be replayed, where skipping the check would let a
    forged webhook through.
    """
    if not needs_lookup(change, source, state, event_name):
        return change
    try:
        record = await lookup(source, change.module, change.record_id)
    except CrmUnavailable as error:
        raise InvalidWebhook([f"could not check the record: {error}; {REPLAY_HINT}"]) from None
    except CrmAuthFailed as error:
        raise InvalidWebhook(
            [
                f"could not check the record: {error}; fix the source's Zoho settings, then "
                f"{REPLAY_HINT}"
            ]
        ) from None
    except CrmRefused as error:
        raise InvalidWebhook([f"could not check the record: {error}"]) from None
    if source.verify:
        reasons = mismatches(change, record, source)
        if reasons:
            raise InvalidWebhook(reasons)
    return enriched(change, record, source) if source.enrich else change


def track(
    change: RecordChange,
    source: SourceConfig,
    state: RecordState,
    event_name: str | None,
    key: str,
    lateness: Lateness | None = None,
) -> Tracked:
    # Ordered by when the change happened, so a status the sweep recovers from the
    # timeline does not rewind a record that has moved on since.
    decision = decide(state, change.status, change.changed_at, event_name)
    conversion, unusable = (
        build_conversion(change, source, decision.emit, decision.previous_status, lateness)
        if decision.emit
        else (None, ())
    )
    return Tracked(
        change.source_id,
        change.envelope_id,
        key,
        decision.new_state,
        decision.new_state != state,
        conversion,
        event_name is not None,
        unusable,
        change.origin,
    )
