"""The sources as this process knows them: read from the sources topic from its start,
then followed live. It is the `Mapping[str, SourceConfig]` the ingress and the worker
look sources up in, so they need not know where sources come from."""

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas import topics
from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.crypto import SecretBox, UndecryptableSecret
from sources.record import decode_source, describe

log = logging.getLogger(__name__)

Offsets = Mapping[TopicPartition, int]


class MissingSourcesTopic(RuntimeError):
    pass


class SourceRegistry(Mapping[str, SourceConfig]):
    def __init__(self, settings: Settings, box: SecretBox | None = None) -> None:
        self._settings = settings
        # Built at start when not given, so creating a registry never fails on settings.
        self._box = box
        self.topic = settings.topic(topics.SOURCES)
        self._sources: dict[str, SourceConfig] = {}
        self._consumer: AIOKafkaConsumer | None = None
        # Asks for the topic's end on a connection of its own: on the follower's, the
        # question would queue behind its long-polling fetch (up to fetch_max_wait_ms).
        self._end_asker: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._follower: asyncio.Task[None] | None = None
        self._advanced = asyncio.Event()
        self._started = asyncio.Event()
        self._sync_lock = asyncio.Lock()
        # Wall-clock time up to which every write to the topic is known to be applied.
        self._fresh_as_of = float("-inf")

    def __repr__(self) -> str:
        return f"SourceRegistry(topic={self.topic!r}, sources={sorted(self._sources)})"

    def __getitem__(self, source_id: str) -> SourceConfig:
        return self._sources[source_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.from_setting(self._settings.sources_encryption_keys)
        return self._box

    @property
    def following(self) -> bool:
        return self._follower is not None

    def serve_until_read(self, sources: Mapping[str, SourceConfig]) -> None:
        """Sources to answer with while the topic cannot be read (Kafka down at start):
        reading the topic overwrites or deletes each with what the topic holds."""
        self._sources.update(sources)

    async def start(self) -> None:
        """Reads the topic to its end before returning, then follows it."""
        box = self.box  # noqa: F841 - refuses to start without a usable key
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            client_id="zoho-cdp-sources",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            **self._settings.aiokafka_security(),
        )
        end_asker = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            client_id="zoho-cdp-sources-end",
            enable_auto_commit=False,
            **self._settings.aiokafka_security(),
        )
        await consumer.start()
        try:
            await end_asker.start()
            if self.topic not in await consumer.topics():
                raise MissingSourcesTopic(
                    f"Kafka topics {[self.topic]} do not exist: create them with `zoho-cdp-topics`"
                )
            # Without a group, a subscription takes every partition of the topic.
            consumer.subscribe([self.topic])
            async with asyncio.timeout(self._settings.sources_catch_up_timeout_s):
                while not consumer.assignment():
                    await asyncio.sleep(0.05)
            self._partitions = sorted(consumer.assignment())
            await consumer.seek_to_beginning(*self._partitions)
        except BaseException:
            await asyncio.gather(consumer.stop(), end_asker.stop(), return_exceptions=True)
            raise
        self._consumer = consumer
        self._end_asker = end_asker
        self._positions = {tp: 0 for tp in self._partitions}
        self._follower = asyncio.create_task(self._follow(), name="sources-follower")
        self._started.set()
        if not await self.caught_up(timeout=self._settings.sources_catch_up_timeout_s):
            await self.stop()
            raise MissingSourcesTopic(f"could not read {self.topic} to its end")
        log.info("sources read", extra={"sources": sorted(self._sources)})

    async def stop(self) -> None:
        task, self._follower = self._follower, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        end_asker, self._end_asker = self._end_asker, None
        if end_asker is not None:
            await end_asker.stop()

    async def caught_up(self, since: float | None = None, timeout: float | None = None) -> bool:
        """Waits until every write made to the topic before `since` (wall clock, default
        now) is applied here; False when that took longer than `timeout`."""
        since = time.time() if since is None else since
        if since <= self._fresh_as_of:
            return True
        timeout = self._settings.sources_catch_up_timeout_s if timeout is None else timeout
        try:
            async with asyncio.timeout(timeout):
                await self._started.wait()
                async with self._sync_lock:
                    if since <= self._fresh_as_of:
                        return True
                    asked_at = time.time()
                    assert self._end_asker is not None  # noqa: S101 - set before _started
                    end = await self._end_asker.end_offsets(self._partitions)
                    await self._reach(end)
                    self._fresh_as_of = max(self._fresh_as_of, asked_at)
        except (TimeoutError, KafkaError) as error:
            log.warning(
                "sources not caught up",
                extra={"topic": self.topic, "error": type(error).__name__},
            )
            return False
        return True

    async def reached(self, partition: int, offset: int, timeout: float) -> bool:
        """Waits until the message at `offset` is applied here (after this process wrote it)."""
        try:
            async with asyncio.timeout(timeout):
                await self._reach({TopicPartition(self.topic, partition): offset + 1})
        except TimeoutError:
            return False
        return True

    async def _reach(self, targets: Offsets) -> None:
        while True:
            advanced = self._advanced
            if all(self._positions.get(tp, 0) >= offset for tp, offset in targets.items()):
                return
            await advanced.wait()

    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 - started before the task
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self.apply(record.key, record.value)
                for tp in self._partitions:
                    self._positions[tp] = await consumer.position(tp)
            except Exception as error:  # noqa: BLE001 - the follower must outlive any failure
                log.warning(
                    "reading the sources topic failed; retrying",
                    extra={"topic": self.topic, "error": type(error).__name__},
                )
                await asyncio.sleep(1)
                continue
            advanced, self._advanced = self._advanced, asyncio.Event()
            advanced.set()

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One message of the topic: the source's latest version, or a tombstone."""
        if key is None:
            return
        source_id = key.decode("utf-8", "replace")
        if value is None:
            if self._sources.pop(source_id, None) is not None:
                log.info("source deleted", extra={"source_id": source_id})
            return
        try:
            source = decode_source(value, self.box)
        except UndecryptableSecret:
            # Serving the previous version would keep a replaced api key working.
            self._sources.pop(source_id, None)
            log.error(
                "source cannot be decrypted with the configured keys: left out",
                extra={"source_id": source_id},
            )
            return
        except ValidationError as error:
            self._sources.pop(source_id, None)
            log.error(
                "source in the sources topic does not validate: left out",
                extra={
                    "source_id": source_id,
                    "record": describe(value),
                    "fields": [".".join(map(str, e["loc"])) for e in error.errors()],
                },
            )
            return
        if source.id != source_id:
            log.error("source key and id differ: left out", extra={"source_id": source_id})
            return
        changed = self._sources.get(source_id) != source
        self._sources[source_id] = source
        if changed:
            log.info("source updated", extra={"source_id": source_id, "enabled": source.enabled})


async def read_sources(settings: Settings) -> dict[str, SourceConfig]:
    """The sources as the topic holds them now, for a command that runs once."""
    registry = SourceRegistry(settings)
    await registry.start()
    try:
        return dict(registry)
    finally:
        await registry.stop()
