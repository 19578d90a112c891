"""The ingress application factory."""

import logging
from collections.abc import Mapping, MutableMapping

from aiohttp import web

from ingress import handlers
from ingress.admin import add_admin_routes
from ingress.console.app import console_app
from ingress.console.sources import ConsoleSources, ProcessSources, WrittenSources
from ingress.kafka import forwarder_context, producer_context
from ingress.keys import FORCE_SEED, METRICS, SEED, SETTINGS, SOURCE_STORE, SOURCES
from ingress.metrics import IngressMetrics
from ingress.sources_live import live_sources_context
from ingress.zoho_setup import zoho_session_context
from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.registry import SourceRegistry

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    sources: Mapping[str, SourceConfig] | None = None,
    *,
    seed: Mapping[str, SourceConfig] | None = None,
    force_seed: bool = False,
) -> web.Application:
    """Without `sources`, the sources topic is followed live (and `seed` imported into it)."""
    # aiohttp answers 413 itself when a body is larger than client_max_size.
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[SOURCES] = SourceRegistry(settings) if sources is None else sources
    app[SEED] = seed or {}
    app[FORCE_SEED] = force_seed
    app[METRICS] = IngressMetrics()
    app.cleanup_ctx.append(live_sources_context)
    app.cleanup_ctx.append(producer_context)
    app.cleanup_ctx.append(forwarder_context)
    app.cleanup_ctx.append(zoho_session_context)
    app.router.add_route("GET", "/sources/{source_id}", handlers.source_endpoint)
    app.router.add_route("POST", "/sources/{source_id}", handlers.source_endpoint)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    if add_admin_routes(app):
        log.info("admin API on", extra={"path": "/admin/"})
    else:
        log.warning("admin API off: ADMIN_TOKEN is not set")
    if settings.admin_token.get_secret_value():
        store = _console_sources(app)
        app.add_subapp("/console", console_app(settings, store, app[METRICS].registry))
        log.info("console on", extra={"path": "/console/"})
    return app


def _console_sources(app: web.Application) -> ConsoleSources:
    """The sources topic when the app follows it, written through the admin API's store;
    fixed sources (tests, benchmarks) are this process's own."""
    sources = app[SOURCES]
    if isinstance(sources, MutableMapping):
        return ProcessSources(sources)
    return WrittenSources(lambda: app[SOURCES], lambda source: app[SOURCE_STORE].put(source))
