"""The agents: thin loops that read, call a decision, send, and mark the table.

Faust acks an event even when the loop body raises, so nothing may escape a loop:
each failure is routed to a topic with its reason (see the README's delivery notes)."""

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import aiohttp
import faust
import prometheus_client
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
from streams.send import Record, send_all_confirmed, send_confirmed
from streams.transport import confirmed

log = logging.getLogger(__name__)


@app.agent(topics.webhooks, concurrency=1)
async def convert_webhooks(stream: StreamT[bytes]) -> None:
    # The Zoho clients live as long as the agent: each keeps its access token for the
    # process's lifetime (Zoho issues only ~10 per refresh token per 10 minutes).
    async with aiohttp.ClientSession() as session, ZohoClients(session, settings) as crm:
        async for batch in cast(Stream[bytes], stream).take_events(
            settings.worker_batch_size, within=settings.worker_batch_wait_s
        ):
            await handle_batch(batch, crm)
            confirmed(*batch)


class BatchStates:
    """Record states as the batch leaves them: a webhook sees what the batch's earlier
    webhooks of its record decided, before anything is written to the table."""

    def __init__(self) -> None:
        self._states: dict[str, RecordState] = {}
        self.changed: dict[str, tuple[EventT[bytes], RecordState]] = {}

    def state_of(self, key: str) -> RecordState:
        if key not in self._states:
            self._states[key] = state_of(key)
        return self._states[key]

    def update(self, event: EventT[bytes], key: str, state: RecordState) -> None:
        self._states[key] = state
        self.changed[key] = (event, state)


async def handle_batch(batch: Sequence[EventT[bytes]], crm: ZohoClients) -> None:
    """Decides every webhook of the batch, sends what they produce and waits for Kafka's
    acknowledgements together, and only then marks the table: a crash before the marks
    repeats the batch (same event_ids, absorbed downstream), never loses a conversion."""
    webhooks = [event for event in batch if event.message.key != PARTITION_MARKER_KEY]
    if not webhooks:
        return
    # A source change written before these webhooks reached Kafka applies to them;
    # without the sources read, they wait (Kafka is then unwell for the webhooks too).
    newest = max(event.message.timestamp for event in webhooks)
    while not await sources.caught_up(since=newest):
        log.warning("waiting for the sources topic before processing webhooks")
    lateness = Lateness(datetime.now(UTC), timedelta(days=settings.late_conversion_days))
    states = BatchStates()
    outcomes: list[tuple[Tracked | Rejected, RecordState | None]] = []
    records: list[Record] = []
    for event in webhooks:
        with tables.in_event(event):
            outcome = await process(
                event.message.value, sources, states.state_of, crm.get_record, lateness
            )
        if isinstance(outcome, Rejected):
            outcomes.append((outcome, None))
            records.append(invalid_record(event.message, outcome))
            continue
        outcomes.append((outcome, states.state_of(outcome.key)))
        if outcome.changed:
            states.update(event, outcome.key, outcome.new_state)
        if outcome.conversion:
            records.append(conversion_record(outcome.conversion))
    await send_all_confirmed(records)
    # A webhook that changes nothing (a redelivery, an older replayed one) writes
    # nothing; a record changed twice in the batch is written once, as it ends.
    await tables.write_states(
        (event, key, state.to_json()) for key, (event, state) in states.changed.items()
    )
    counts = BatchCounts()
    for outcome, previous in outcomes:
        if isinstance(outcome, Rejected):
            _parked(outcome, counts)
        else:
            _emitted(outcome, previous or RecordState.empty(), counts)
    counts.add_up()


def state_of(key: str) -> RecordState:
    return RecordState.from_json(tables.stored_state(key))


def conversion_record(event: ConversionEvent) -> Record:
    return Record(topics.conversions, event.cdp_id.encode(), event.model_dump_json().encode())


def invalid_record(message: faust.types.Message, rejected: Rejected) -> Record:
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
    return Record(topics.invalid, message.key, record.model_dump_json().encode())


class BatchCounts:
    """The batch's counter increments, added up: a counter's labels() lookup costs more
    than the webhook's other bookkeeping, so it is done once per label set and batch."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[prometheus_client.Counter, tuple[str, ...]]] = Counter()

    def inc(self, metric: prometheus_client.Counter, *labels: str) -> None:
        self._counts[metric, labels] += 1

    def add_up(self) -> None:
        for (metric, labels), count in self._counts.items():
            metric.labels(*labels).inc(count)
        self._counts.clear()


def _parked(rejected: Rejected, counts: BatchCounts) -> None:
    envelope = rejected.envelope
    source_id = envelope.source_id if envelope else ""
    counts.inc(metrics.webhooks, source_id, "invalid")
    for reason in rejected.reasons:
        counts.inc(metrics.validation_failures, source_id, reason_code(reason))
    log.warning("webhook parked as invalid", extra=_ids(envelope) | {"reasons": rejected.reasons})


def _emitted(tracked: Tracked, previous: RecordState, counts: BatchCounts) -> None:
    if tracked.conversion:
        log.info(
            "conversion emitted",
            extra={
                "source_id": tracked.source_id,
                "envelope_id": tracked.envelope_id,
                "event_id": tracked.conversion.event_id,
            },
        )
    _count(tracked, previous, counts)


def _count(tracked: Tracked, previous: RecordState, counts: BatchCounts) -> None:
    source = tracked.source_id
    outcome = "converted" if tracked.conversion else "tracked" if tracked.mapped else "unmapped"
    counts.inc(metrics.webhooks, source, outcome)
    if tracked.new_state.last_status != previous.last_status:
        counts.inc(metrics.status_changes, source)
    if tracked.conversion:
        counts.inc(metrics.conversions, source, tracked.origin)
        counts.inc(metrics.conversions_by_event, source, tracked.conversion.event_name)
        if tracked.origin == "sweep":
            counts.inc(metrics.sweep_only_conversions, source)
        if tracked.conversion.late:
            counts.inc(metrics.late_conversions, source)
    for field in tracked.unusable:
        counts.inc(metrics.unusable_identifiers, source, field)


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
    # One batch in flight, not one round trip per event.
    await send_all_confirmed([Record(topics.conversions_delivered, k, v) for k, v in records])
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
    await send_confirmed(
        Record(topics.conversions_deadletter, key, record.model_dump_json().encode())
    )
    metrics.cdp_rejected.inc()
    log.warning(
        "conversion parked in the dead-letter topic",
        extra={"event_id": event.event_id if event else None, "reason": reason},
    )
