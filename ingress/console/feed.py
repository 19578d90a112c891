"""The console's view of Kafka: one consumer, no group, reading the pipeline's topics from
the start into the activity index and following them; and the worker group's lag."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError

from ingress.console.activity import ActivityIndex
from schemas import topics
from schemas.conversion import ConversionEvent, DeliveryReceipt, RejectedConversion
from schemas.envelope import RawEnvelope
from schemas.records import InvalidRecord
from schemas.settings import Settings
from schemas.sweep import SweepMark
from streams.commands.topic_plan import changelog_topic
from streams.kafka_admin import admin_client

log = logging.getLogger(__name__)
REFRESH_S = 10.0
_M = TypeVar("_M", bound=BaseModel)


@dataclass
class Feed:
    settings: Settings
    index: ActivityIndex
    on_lag: Callable[[str, int, int], None] | None = None
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    undecodable: int = 0

    def readers(self) -> dict[str, Callable[[ConsumerRecord[bytes, bytes]], None]]:
        s = self.settings
        return {
            s.topic(topics.RAW): self._webhook,
            s.topic(topics.REPLAY): self._webhook,
            s.topic(topics.INVALID): self._invalid,
            s.topic(topics.CONVERSIONS): self._conversion,
            s.topic(topics.CONVERSIONS_DELIVERED): self._delivery,
            s.topic(topics.CONVERSIONS_DEADLETTER): self._dead_letter,
            changelog_topic(s, "record-states"): self._status,
            s.topic(topics.SWEEP_MARKS): self._sweep_mark,
        }

    async def run(self) -> None:
        # Every run reads from the start: what an earlier run read would be doubled.
        self.index.clear()
        readers = self.readers()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="zoho-cdp-console",
            **self.settings.aiokafka_security(),
        )
        await consumer.start()
        try:
            assigned: set[TopicPartition] = set()
            targets: dict[TopicPartition, int] = {}
            refreshed = 0.0
            loop = asyncio.get_running_loop()
            while True:
                if loop.time() - refreshed > REFRESH_S or not assigned:
                    assigned, new = await self._assign(consumer, assigned, set(readers))
                    if new:
                        targets |= await consumer.end_offsets(list(new))
                    measured = await self._report_lag(consumer)
                    # A group coordinator still being elected: ask again soon.
                    refreshed = loop.time() - (0 if measured else REFRESH_S - 1)
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batches.items():
                    read = readers[tp.topic]
                    for record in records:
                        if record.key != topics.PARTITION_MARKER_KEY and record.value:
                            read(record)
                if not self.caught_up.is_set() and assigned:
                    positions = {tp: await consumer.position(tp) for tp in targets}
                    if all(positions[tp] >= end for tp, end in targets.items()):
                        self.caught_up.set()
                        log.info("console caught up", extra={"messages": self.index.messages})
        finally:
            await consumer.stop()

    async def _assign(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition], wanted: set[str]
    ) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """Adds partitions of topics that appeared (the changelog comes with the worker),
        keeping the positions already reached."""
        present: set[TopicPartition] = set()
        for topic in wanted:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
                partitions = consumer.partitions_for_topic(topic) or set()
            present |= {TopicPartition(topic, p) for p in partitions}
        new = present - assigned
        if not new:
            return assigned, set()
        positions = {tp: await consumer.position(tp) for tp in assigned}
        consumer.assign(list(present))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        await consumer.seek_to_beginning(*new)
        return present, new

    async def _report_lag(self, consumer: AIOKafkaConsumer) -> bool:
        """The worker group's lag on the webhook and conversion topics, per partition."""
        s = self.settings
        watched = [s.topic(topics.RAW), s.topic(topics.REPLAY), s.topic(topics.CONVERSIONS)]
        partitions = [
            TopicPartition(topic, p)
            for topic in watched
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        if not partitions:
            return False
        try:
            async with admin_client(s) as admin:
                committed = await admin.list_consumer_group_offsets(s.app_id, partitions=partitions)
            ends = await consumer.end_offsets(partitions)
        except (KafkaError, OSError) as error:
            log.info("consumer lag not measured", extra={"error": type(error).__name__})
            return False
        for tp in partitions:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else 0
            if self.on_lag is not None:
                self.on_lag(tp.topic, tp.partition, max(0, ends[tp] - offset))
        return True

    def _decode(self, record: ConsumerRecord[bytes, bytes], model: type[_M]) -> _M | None:
        try:
            return model.model_validate_json(record.value or b"")
        except ValidationError:
            self.undecodable += 1
            return None

    def _webhook(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if envelope := self._decode(record, RawEnvelope):
            self.index.add_webhook(envelope)

    def _invalid(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if parked := self._decode(record, InvalidRecord):
            self.index.add_invalid(parked, record.key)

    def _conversion(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if event := self._decode(record, ConversionEvent):
            self.index.add_conversion(event)

    def _delivery(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if receipt := self._decode(record, DeliveryReceipt):
            self.index.add_delivery(receipt)

    def _dead_letter(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if rejected := self._decode(record, RejectedConversion):
            self.index.add_dead_letter(rejected)

    def _sweep_mark(self, record: ConsumerRecord[bytes, bytes]) -> None:
        source_id, _, module = (record.key or b"").decode("utf-8", "replace").partition(":")
        if mark := self._decode(record, SweepMark):
            self.index.add_sweep_mark(source_id, module, mark)

    def _status(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            key = json.loads(record.key or b"null")
            state = json.loads(record.value or b"null")
        except ValueError:
            self.undecodable += 1
            return
        if isinstance(key, str) and isinstance(state, dict):
            source_id, _, rest = key.partition(":")
            _, _, record_id = rest.partition(":")
            self.index.add_status(source_id, record_id, state)


async def feed_task(feed: Feed) -> AsyncIterator[None]:
    task = asyncio.create_task(_keep_running(feed))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _keep_running(feed: Feed) -> None:
    """Kafka may be away for a while; the console reads on once it is back."""
    while True:
        try:
            await feed.run()
        except (KafkaError, OSError) as error:
            log.warning("console feed stopped; starting again", extra={"error": repr(error)})
            await asyncio.sleep(2)
