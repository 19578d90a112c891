"""The ingress's sources: followed live from the sources topic, written through the
store, seeded from the sources file at start."""

import logging
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from ingress.keys import FORCE_SEED, SEED, SETTINGS, SOURCE_STORE, SOURCES
from schemas.source import SourceConfig
from sources.registry import SourceRegistry
from sources.seed import plan_import
from sources.store import KafkaSourceStore, SourceStore, new_sources_producer

log = logging.getLogger(__name__)


async def live_sources_context(app: web.Application) -> AsyncIterator[None]:
    registry = app[SOURCES]
    if not isinstance(registry, SourceRegistry):
        yield  # fixed sources given to create_app (tests)
        return
    settings = app[SETTINGS]
    await registry.start()
    producer = new_sources_producer(settings)
    try:
        await producer.start()
        store = KafkaSourceStore(producer, registry, registry.box)
        app[SOURCE_STORE] = store
        await import_seed(store, registry, app[SEED], force=app[FORCE_SEED])
        yield
    finally:
        await producer.stop()
        await registry.stop()


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
