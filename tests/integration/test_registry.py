"""The registry on the real broker: a change written before `caught_up` is asked for is
applied when it returns, which is what makes a new rate apply to the next webhook."""

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.crypto import SecretBox, generate_key
from sources.record import encode_source, source_key
from sources.registry import SourceRegistry
from streams.commands.topic_plan import desired_topics
from streams.commands.topics import set_up_topics

pytestmark = pytest.mark.integration
BOX = SecretBox([generate_key()])


def source(rate: str) -> SourceConfig:
    return SourceConfig.model_validate(
        {
            "id": "shop",
            "api_key": "shop-api-key-0123456789",
            "exchange_rate": rate,
            "currency": "USD",
        }
    )


@pytest.fixture
async def settings(kafka_bootstrap: str) -> Settings:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=f"registry-{uuid.uuid4().hex[:8]}."
    )
    await set_up_topics(settings, desired_topics(settings))
    return settings


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


async def write(producer: AIOKafkaProducer, settings: Settings, value: SourceConfig) -> None:
    await producer.send_and_wait(
        settings.topic("cdp.sources"), key=source_key("shop"), value=encode_source(value, BOX)
    )


async def test_caught_up_applies_every_change_written_before_it_was_asked(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    await write(producer, settings, source("1"))
    registry = SourceRegistry(settings, BOX)
    await registry.start()
    try:
        assert registry["shop"].exchange_rate == 1  # read from the start at boot
        for rate in ("2", "3", "4", "5", "6"):
            await write(producer, settings, source(rate))
            assert await registry.caught_up(since=time.time())
            assert str(registry["shop"].exchange_rate) == rate
        # Already fresh for anything written before the last check: no new request.
        assert await registry.caught_up(since=time.time() - 60)
    finally:
        await registry.stop()


async def test_without_caught_up_a_fresh_change_is_usually_not_there_yet(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    """The control: what the worker would see if it did not wait."""
    registry = SourceRegistry(settings, BOX)
    await registry.start()
    try:
        stale = 0
        for rate in ("2", "3", "4", "5", "6"):
            await write(producer, settings, source(rate))
            current = registry.get("shop")
            stale += current is None or str(current.exchange_rate) != rate
            assert await registry.caught_up()
        assert stale >= 3
    finally:
        await registry.stop()
