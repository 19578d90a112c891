"""The agents: thin loops that read, call a decision, send, and mark the table.

Faust acks an event even when the loop body raises, so nothing may escape a loop:
each failure is routed to a topic with its reason (see the README's delivery notes)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import aiohttp
import faust
from faust.streams import Stream
from faust.types import EventT, StreamT

from schemas.conversion import ConversionEvent, DeliveryReceipt, RejectedConversion
from schemas.envelope import RawEnvelope
from schemas.records import InvalidRecord
from schemas.topics import PARTITION_MARKER_KEY
from streams import metrics, tables, topics
from streams.app import app, settings, sources
from streams.clients.cdp import CdpAnswer, CdpClient, deliver
from streams.clients.zoho_crm import ZohoClients
from streams.decisions.delivery import classify as delivery_outcome
from streams.decisions.event import Lateness
from streams.decisions.process import Rejected, Tracked, process
from streams.decisions.reasons import reason_code
from streams.decisions.status import RecordState
from streams.send import send_confirmed
from streams.transport import confirmed

log = logging.getLogger(__name__)


@app.agent(topics.webhooks, concurrency=1)
async def convert_webhooks(stream: StreamT[bytes]) -> None:
    # The Zoho clients live as long as the agent: each keeps its access token for the
    # process's lifetime (Zoho issues only ~10 per refresh token per 10 minutes).
    async with aiohttp.ClientSession() as session, ZohoClients(session, settings) as crm:
        async for event in stream.events():
            if event.message.key != PARTITION_MARKER_KEY:
                await handle_webhook(event.message, crm)
            confirmed(event)


async def handle_webhook(message: faust.types.Message, crm: ZohoClients) -> None:
    # A source change written before this webhook reached Kafka applies to it; without
    # the sources read, the webhook waits (Kafka is then unwell for the webhooks too).
    while not await sources.caught_up(since=message.timestamp):
        log.warning("waiting for the sources topic before processing webhooks")
    lateness = Lateness(datetime.now(UTC), timedelta(days=settings.late_conversion_days))
    outcome = await process(message.value, sources, state_of, crm.get_record, lateness)
    if isinstance(outcome, Rejected):
        await park_invalid(message, outcome)
        return
    if outcome.conversion:
        await send_conversion(outcome.conversion, outcome.envelope_id)
    previous = state_of(outcome.key)
    # Marked after the confirmed send: a crash in between repeats the event (same
    # event_id, absorbed downstream) instead of losing it. A webhook that changes nothing
    # (a redelivery, an older replayed one) writes nothing: no changelog record either.
    if outcome.changed:
        tables.record_states[outcome.key] = outcome.new_state.to_json()
    _count(outcome, previous)


def state_of(key: str) -> RecordState:
    return RecordState.from_json(tables.record_states.get(key))


async def send_conversion(event: ConversionEvent, envelope_id: str) -> None:
    await send_confirmed(
        topics.conversions, event.cdp_id.encode(), event.model_dump_json().encode()
    )
    log.info(
        "conversion emitted",
        extra={
            "source_id": event.source_id,
            "envelope_id": envelope_id,
            "event_id": event.event_id,
        },
    )


async def park_invalid(message: faust.types.Message, rejected: Rejected) -> None:
    envelope = rejected.envelope
    if rejected.error is not None:
        log.error("webhook processing failed", exc_info=rejected.error, extra=_ids(envelope))
    record = InvalidRecord(
        reasons=rejected.reasons,
        envelope=envelope,
        raw_value=None if envelope else (message.value or b"").decode("utf-8", "replace"),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        rejected_at=datetime.now(UTC),
    )
    await send_confirmed(topics.invalid, message.key, record.model_dump_json().encode())
    source_id = envelope.source_id if envelope else ""
    metrics.webhooks.labels(source_id, "invalid").inc()
    for reason in rejected.reasons:
        metrics.validation_failures.labels(source_id, reason_code(reason)).inc()
    log.warning("webhook parked as invalid", extra=_ids(envelope) | {"reasons": rejected.reasons})


def _count(tracked: Tracked, previous: RecordState) -> None:
    outcome = "converted" if tracked.conversion else "tracked" if tracked.mapped else "unmapped"
    metrics.webhooks.labels(tracked.source_id, outcome).inc()
    if tracked.new_state.last_status != previous.last_status:
        metrics.status_changes.labels(tracked.source_id).inc()
    if tracked.conversion:
        metrics.conversions.labels(tracked.source_id, tracked.origin).inc()
        metrics.conversions_by_event.labels(tracked.source_id, tracked.conversion.event_name).inc()
        if tracked.origin == "sweep":
            metrics.sweep_only_conversions.labels(tracked.source_id).inc()
        if tracked.conversion.late:
            metrics.late_conversions.labels(tracked.source_id).inc()
    for field in tracked.unusable:
        metrics.unusable_identifiers.labels(tracked.source_id, field).inc()


def _ids(envelope: RawEnvelope | None) -> dict[str, str]:
    if envelope is None:
        return {}
    return {"source_id": envelope.source_id, "envelope_id": envelope.envelope_id}


@app.agent(topics.conversions, concurrency=1)
async def deliver_to_cdp(stream: StreamT[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        cdp = CdpClient(session, settings)
        # take_events is on the concrete Stream, not on the StreamT protocol.
        async for batch in cast(Stream[bytes], stream).take_events(
            settings.cdp_batch_size, within=settings.cdp_batch_wait_s
        ):
            await deliver_batch(cdp, batch)
            confirmed(*batch)


async def deliver_batch(cdp: CdpClient, batch: Sequence[EventT[bytes]]) -> None:
    """Nothing escapes: the batch is acked only once every event reached the CDP or a
    dead-letter record."""
    events = []
    for event in batch:
        try:
            events.append(ConversionEvent.model_validate_json(event.value))
        except Exception as error:  # noqa: BLE001 - not ours to deliver; parked, not skipped
            await park_rejected(
                None, f"not a conversion event: {type(error).__name__}", None, event.value
            )
    await deliver(
        events,
        counted_post(cdp),
        reject_by_cdp,
        max_backoff_s=settings.cdp_max_backoff_s,
        accepted=receipt_for,
    )


def counted_post(cdp: CdpClient) -> Callable[[Sequence[ConversionEvent]], Awaitable[CdpAnswer]]:
    async def post(events: Sequence[ConversionEvent]) -> CdpAnswer:
        answer = await cdp.post(events)
        metrics.cdp_posts.labels(delivery_outcome(answer.status, len(events)).value).inc()
        return answer

    return post


async def receipt_for(events: Sequence[ConversionEvent], answer: CdpAnswer) -> None:
    """What the CDP accepted, for the console; confirmed before the batch is acked."""
    now = datetime.now(UTC)
    records = [
        (
            event.cdp_id.encode(),
            DeliveryReceipt(
                event_id=event.event_id,
                source_id=event.source_id,
                record_id=event.record_id,
                cdp_id=event.cdp_id,
                event_name=event.event_name,
                test=event.test,
                cdp_status=answer.status or 0,
                delivered_at=now,
            )
            .model_dump_json()
            .encode(),
        )
        for event in events
    ]
    try:
        # One batch in flight, not one round trip per event.
        sent = [await topics.conversions_delivered.send(key=k, value=v) for k, v in records]
        await asyncio.gather(*sent)
    except Exception:  # noqa: BLE001 - sent again one by one, until Kafka takes each
        for key, value in records:
            await send_confirmed(topics.conversions_delivered, key, value)
    for event in events:
        metrics.cdp_delivered.labels(event.source_id).inc()


async def reject_by_cdp(event: ConversionEvent, answer: CdpAnswer) -> None:
    await park_rejected(event, "rejected by the CDP", answer, None)


async def park_rejected(
    event: ConversionEvent | None, reason: str, answer: CdpAnswer | None, raw: bytes | None
) -> None:
    record = RejectedConversion(
        event=event,
        raw_value=raw.decode("utf-8", "replace") if raw is not None else None,
        reason=reason,
        cdp_status=answer.status if answer else None,
        cdp_response=answer.body if answer else "",
        rejected_at=datetime.now(UTC),
    )
    key = event.cdp_id.encode() if event else None
    await send_confirmed(topics.conversions_deadletter, key, record.model_dump_json().encode())
    metrics.cdp_rejected.inc()
    log.warning(
        "conversion parked in the dead-letter topic",
        extra={"event_id": event.event_id if event else None, "reason": reason},
    )
