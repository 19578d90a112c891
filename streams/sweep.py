"""The reconciliation sweep: on the leader worker only, every ZOHO_SWEEP_INTERVAL_S,
each source with a refresh token is read through the CRM API for the changes since its
high-water mark, and what it finds is published to zoho.webhooks.raw under the record's
key, where the webhook agent decides as for a webhook: a change its webhook already
brought converts nothing again, one whose webhook was lost converts now.

Marks live in the compacted zoho.sweep.marks topic, so a restarted worker, or the next
leader, resumes from them. A mark is written only after every envelope it covers was
confirmed by Kafka."""

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import aiohttp
import mode
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas import topics as topic_names
from schemas.envelope import RawEnvelope, record_key
from schemas.settings import Settings
from schemas.source import SourceConfig
from schemas.sweep import SweepMark
from streams import metrics, topics
from streams.app import app, settings, sources
from streams.clients.zoho_crm import ZohoClients, ZohoCrmClient
from streams.crm_reader import ModuleRead, read_modified, recover_from_failures
from streams.decisions.sweep import (
    Budget,
    envelope_time,
    mark_key,
    recent,
    sweep_since,
    swept,
)
from streams.send import Record, send_confirmed
from zoho.fields import RECORD_ID_FIELDS, Module, module_of

log = logging.getLogger(__name__)

MARKS_READ_TIMEOUT_S = 30.0


def count_call(source_id: str, kind: str) -> None:
    metrics.zoho_calls.labels(source_id, kind).inc()


@app.service
class SweepClients(mode.Service):
    """The sweep's HTTP session and Zoho clients, started and stopped with the worker; a
    client keeps its access token from one sweep to the next."""

    crm: ClassVar[ZohoClients | None] = None

    async def on_start(self) -> None:
        self._session = aiohttp.ClientSession()
        SweepClients.crm = ZohoClients(self._session, settings, count_call=count_call)

    async def on_stop(self) -> None:
        crm, SweepClients.crm = SweepClients.crm, None
        if crm is not None:
            await crm.close()
        await self._session.close()


async def sweep() -> None:
    crm = SweepClients.crm
    if crm is None:
        return
    # The sources as they are now, so a source changed a moment ago is swept as changed.
    await sources.caught_up()
    chosen = [s for s in list(sources.values()) if swept(s, settings.zoho_sweep_enabled)]
    if not chosen:
        return
    try:
        marks = await read_marks(settings)
    except Exception as error:  # noqa: BLE001 - an exception would end the timer for good
        log.warning("sweep skipped: its marks cannot be read", extra={"error": repr(error)})
        return
    for source in chosen:
        try:
            outcome = await sweep_source(crm.for_source(source), source, marks)
        except Exception as error:  # noqa: BLE001 - one source's failure stops not the others
            outcome = "failed"
            log.warning(
                "sweep failed; the next one reads the same window again",
                extra={"source_id": source.id, "error": f"{type(error).__name__}: {error}"},
            )
        metrics.sweep_runs.labels(source.id, outcome).inc()


# Faust runs a leader-only timer on the one worker of the group that leads it, so the
# CRM is read once per interval however many workers run.
app.timer(settings.zoho_sweep_interval_s, on_leader=True)(sweep)


async def sweep_source(
    client: ZohoCrmClient, source: SourceConfig, marks: Mapping[str, SweepMark]
) -> str:
    budget = Budget(settings.zoho_sweep_max_calls)
    started = datetime.now(UTC)
    complete = True
    for module in Module:
        key = mark_key(source.id, module)
        read = await sweep_module(client, source, module, marks.get(key), budget, started)
        complete = complete and read.complete
    if not complete:
        log.warning(
            "sweep stopped at its call budget; the next one goes on from the mark",
            extra={"source_id": source.id, "calls": budget.used},
        )
    return "complete" if complete else "budget_spent"


async def sweep_module(
    client: ZohoCrmClient,
    source: SourceConfig,
    module: Module,
    old: SweepMark | None,
    budget: Budget,
    started: datetime,
) -> ModuleRead:
    overlap = timedelta(seconds=settings.zoho_sweep_overlap_s)
    since = sweep_since(
        old.mark if old else None,
        started,
        overlap,
        timedelta(seconds=settings.zoho_sweep_first_lookback_s),
    )
    seen = dict(old.seen) if old else {}
    skipped = 0

    async def publish_new(envelope: RawEnvelope) -> None:
        nonlocal skipped
        if envelope.envelope_id in seen:
            skipped += 1  # published by an earlier sweep, read again in the overlap
            return
        await publish(envelope)
        at = envelope_time(envelope)
        if at is not None:
            seen[envelope.envelope_id] = at

    read = await read_modified(
        client,
        source,
        module,
        since=since,
        until=None,
        origin="sweep",
        budget=budget,
        send=publish_new,
        now=_now,
    )
    if read.complete:
        await recover_from_failures(
            client,
            source,
            module,
            since=since,
            until=started,
            origin="sweep",
            budget=budget,
            send=publish_new,
            now=_now,
            read=read,
        )
    await _advance(mark_key(source.id, module), old, read, seen, overlap)
    _count(source, module, read, skipped)
    return read


async def publish(envelope: RawEnvelope) -> None:
    module = module_of(envelope.parameters)
    key = record_key(envelope.source_id, envelope.parameters[RECORD_ID_FIELDS[module]])
    await send_confirmed(Record(topics.raw, key, envelope.model_dump_json().encode()))


async def _advance(
    key: str,
    old: SweepMark | None,
    read: ModuleRead,
    seen: dict[str, datetime],
    overlap: timedelta,
) -> None:
    times = [t for t in (read.mark, old.mark if old else None) if t is not None]
    if not times:
        return
    mark = max(times)
    kept = recent(seen, mark, overlap)
    if old is not None and old.mark == mark and old.seen == kept:
        return
    value = SweepMark(mark=mark, updated_at=datetime.now(UTC), seen=kept)
    await send_confirmed(Record(topics.sweep_marks, key.encode(), value.model_dump_json().encode()))


def _count(source: SourceConfig, module: Module, read: ModuleRead, skipped: int) -> None:
    metrics.sweep_records.labels(source.id, module.value).inc(read.records)
    # Envelopes published: those read again in the overlap and published before are not.
    metrics.sweep_envelopes.labels(source.id, module.value, "record").inc(read.envelopes - skipped)
    metrics.sweep_envelopes.labels(source.id, module.value, "timeline").inc(read.recovered)
    log.info(
        "sweep read",
        extra={
            "source_id": source.id,
            # `module` is a LogRecord attribute of its own.
            "crm_module": module.value,
            "records": read.records,
            "envelopes": read.envelopes,
            "recovered": read.recovered,
            "without_cdp_id": read.without_cdp_id,
            "already_published": skipped,
            "mark": read.mark.isoformat() if read.mark else None,
        },
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def read_marks(settings: Settings) -> dict[str, SweepMark]:
    """Every mark in the compacted topic, the latest per key."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        **settings.aiokafka_security(),
    )
    await consumer.start()
    try:
        async with asyncio.timeout(MARKS_READ_TIMEOUT_S):
            return await _read_to_end(
                consumer, TopicPartition(settings.topic(topic_names.SWEEP_MARKS), 0)
            )
    finally:
        await consumer.stop()


async def _read_to_end(consumer: AIOKafkaConsumer, partition: TopicPartition) -> dict[str, Any]:
    consumer.assign([partition])
    await consumer.seek_to_beginning(partition)
    end = (await consumer.end_offsets([partition]))[partition]
    marks: dict[str, Any] = {}
    while await consumer.position(partition) < end:
        batch = await consumer.getmany(partition, timeout_ms=1000)
        for record in batch.get(partition, []):
            if record.key is None or record.value is None:
                continue
            try:
                marks[record.key.decode()] = SweepMark.model_validate_json(record.value)
            except (UnicodeDecodeError, ValidationError):
                log.warning("unreadable sweep mark skipped", extra={"offset": record.offset})
    return marks
