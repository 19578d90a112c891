"""Writing sources: to the sources topic, answered once this process's registry has
read the write back, so the next read on this replica sees it."""

from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.crypto import SecretBox
from sources.record import encode_source, source_key
from sources.registry import SourceRegistry


class StoreUnavailable(RuntimeError):
    pass


class SourceStore(Protocol):
    """What the admin API and the set-up page write through."""

    async def put(self, source: SourceConfig) -> None: ...

    async def delete(self, source_id: str) -> None: ...


def new_sources_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="zoho-cdp-sources",
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=int(settings.produce_timeout_s * 1000),
        **settings.aiokafka_security(),
    )


class KafkaSourceStore:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        registry: SourceRegistry,
        box: SecretBox,
        read_back_timeout_s: float = 10.0,
    ) -> None:
        self._producer = producer
        self._registry = registry
        self._box = box
        self._timeout = read_back_timeout_s

    def __repr__(self) -> str:
        return f"KafkaSourceStore(topic={self._registry.topic!r})"

    async def put(self, source: SourceConfig) -> None:
        await self._write(source.id, encode_source(source, self._box))

    async def delete(self, source_id: str) -> None:
        await self._write(source_id, None)

    async def _write(self, source_id: str, value: bytes | None) -> None:
        try:
            written = await self._producer.send_and_wait(
                self._registry.topic, key=source_key(source_id), value=value
            )
        except (KafkaError, TimeoutError) as error:
            raise StoreUnavailable(
                f"Kafka did not take the write ({type(error).__name__})"
            ) from None
        if not await self._registry.reached(written.partition, written.offset, self._timeout):
            raise StoreUnavailable("the write is stored but not read back yet")
