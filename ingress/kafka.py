"""The ingress's Kafka producer: idempotent, acks from all in-sync replicas."""

import asyncio
from collections.abc import AsyncIterator, Iterable

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingress.forwarder import Forwarder
from ingress.keys import FORWARDER, METRICS, PRODUCER, SETTINGS
from schemas import topics
from schemas.settings import Settings

# aiokafka's default; a larger envelope is refused up front rather than spooled for ever.
MAX_REQUEST_BYTES = 1024 * 1024
# Room for the record batch's own headers.
_BATCH_OVERHEAD = 1024


class MissingTopics(RuntimeError):
    pass


def fits_one_request(key: bytes, value: bytes) -> bool:
    return len(key) + len(value) + _BATCH_OVERHEAD <= MAX_REQUEST_BYTES


def new_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="zoho-cdp-ingress",
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=int(settings.produce_timeout_s * 1000),
        max_request_size=MAX_REQUEST_BYTES,
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


async def forwarder_context(app: web.Application) -> AsyncIterator[None]:
    """The spool next to the producer; what it holds from before is drained from now on."""
    settings = app[SETTINGS]
    forwarder = Forwarder(
        app[PRODUCER],
        settings.ingress_spool_dir,
        max_bytes=settings.ingress_spool_max_bytes,
        ack_timeout_s=settings.ingress_spool_timeout_s,
        # aiokafka gives up on a queued send after its request timeout (and a retry).
        settle_timeout_s=2 * settings.produce_timeout_s + settings.ingress_spool_timeout_s,
    )
    forwarder.on_drained = app[METRICS].drained.inc
    await forwarder.start()
    try:
        app[FORWARDER] = forwarder
        yield
    finally:
        await forwarder.stop()


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
