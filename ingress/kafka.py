"""The ingress's Kafka producer: idempotent, acks from all in-sync replicas."""

import asyncio
from collections.abc import AsyncIterator, Iterable

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingress.keys import PRODUCER, SETTINGS
from schemas import topics
from schemas.settings import Settings


class MissingTopics(RuntimeError):
    pass


def new_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="zoho-cdp-ingress",
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=int(settings.produce_timeout_s * 1000),
        **settings.aiokafka_security(),
    )


async def producer_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    producer = new_producer(settings)
    await producer.start()
    try:
        await require_topics(producer, [settings.topic(topics.RAW)])
        app[PRODUCER] = producer
        yield
    finally:
        await producer.stop()


async def require_topics(producer: AIOKafkaProducer, names: Iterable[str]) -> None:
    """Refuse to start rather than fail every request later."""
    cluster = await producer.client.fetch_all_metadata()
    missing = sorted(set(names) - cluster.topics())
    if missing:
        raise MissingTopics(
            f"Kafka topics {missing} do not exist: create them with `zoho-cdp-topics`"
        )


async def kafka_reachable(producer: AIOKafkaProducer, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout_s)
    except (KafkaError, TimeoutError):
        return False
    return True
