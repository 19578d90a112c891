"""The ingress's sources: followed live from the sources topic, written through the
store, seeded from the sources file at start."""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from ingress.kafka import RETRY_START_S
from ingress.keys import FORCE_SEED, SEED, SETTINGS, SOURCE_STORE, SOURCES
from schemas.source import SourceConfig
from sources.registry import SourceRegistry
from sources.seed import plan_import
from sources.store import KafkaSourceStore, SourceStore, new_sources_producer

log = logging.getLogger(__name__)


async def live_sources_context(app: web.Application) -> AsyncIterator[None]:
    """Follows the sources topic; when Kafka is down at start, the sources file's sources
    are served until the topic can be read, so the ingress can spool their webhooks."""
    registry = app[SOURCES]
    if not isinstance(registry, SourceRegistry):
        yield  # fixed sources given to create_app (tests)
        return
    settings = app[SETTINGS]
    producer = new_sources_producer(settings)
    app[SOURCE_STORE] = KafkaSourceStore(producer, registry, registry.box)
    connecting: asyncio.Task[None] | None = None
    try:
        try:
            await _follow(app, registry, producer)
        except KafkaConnectionError:
            seed = app[SEED]
            if not registry.following:
                registry.serve_until_read(seed)
            log.warning(
                "kafka unreachable at start: serving the sources file until the sources "
                "topic can be read",
                extra={"sources": sorted(seed)},
            )
            connecting = asyncio.create_task(
                _follow_when_reachable(app, registry, producer), name="sources-start"
            )
        yield
    finally:
        if connecting is not None:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
        await producer.stop()
        await registry.stop()


async def _follow(
    app: web.Application, registry: SourceRegistry, producer: AIOKafkaProducer
) -> None:
    if not registry.following:
        await registry.start()
    await producer.start()
    await import_seed(app[SOURCE_STORE], registry, app[SEED], force=app[FORCE_SEED])


async def _follow_when_reachable(
    app: web.Application, registry: SourceRegistry, producer: AIOKafkaProducer
) -> None:
    while True:
        await asyncio.sleep(RETRY_START_S)
        try:
            await _follow(app, registry, producer)
        except KafkaConnectionError:
            continue
        except Exception:
            log.exception("following the sources topic failed after kafka came back")
            return
        log.info("sources topic read after kafka came back", extra={"sources": sorted(registry)})
        return


async def import_seed(
    store: SourceStore,
    existing: Mapping[str, SourceConfig],
    seed: Mapping[str, SourceConfig],
    force: bool,
) -> None:
    plan = plan_import(seed, existing, force)
    for source in plan.write:
        await store.put(source)
    if seed:
        log.info(
            "sources file imported",
            extra={"written": [s.id for s in plan.write], "kept": list(plan.kept)},
        )
