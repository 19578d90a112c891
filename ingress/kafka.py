"""The ingress's Kafka producer: idempotent, acks from all in-sync replicas."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from ingress.forwarder import Forwarder
from ingress.keys import FORWARDER, METRICS, PRODUCER, SETTINGS
from schemas import topics
from schemas.settings import Settings

# aiokafka's default; a larger envelope is refused up front rather than spooled for ever.
MAX_REQUEST_BYTES = 1024 * 1024
# Room for the record batch's own headers.
_BATCH_OVERHEAD = 1024
RETRY_START_S = 1.0

log = logging.getLogger(__name__)


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
        linger_ms=settings.ingress_producer_linger_ms,
        **settings.aiokafka_security(),
    )


async def producer_context(app: web.Application) -> AsyncIterator[None]:
    """The producer, connected in the background when Kafka is down at start: the
    ingress answers from the start, spooling until Kafka answers (Zoho never re-posts)."""
    settings = app[SETTINGS]
    producer = new_producer(settings)
    app[PRODUCER] = producer
    connecting: asyncio.Task[None] | None = None
    try:
        try:
            await producer.start()
        except KafkaConnectionError:
            log.warning("kafka unreachable at start: webhooks go to the spool until it answers")
            connecting = asyncio.create_task(_start_when_reachable(producer), name="kafka-start")
        else:
            await require_topics(producer, [settings.topic(topics.RAW)])
        yield
    finally:
        if connecting is not None:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
        await producer.stop()


async def _start_when_reachable(producer: AIOKafkaProducer) -> None:
    while True:
        await asyncio.sleep(RETRY_START_S)
        try:
            await producer.start()
        except KafkaConnectionError:
            continue
        log.info("kafka reachable: the producer is connected")
        return


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
