"""The ingress application factory."""

from collections.abc import Mapping

from aiohttp import web

from ingress import handlers
from ingress.kafka import producer_context
from ingress.keys import METRICS, SETTINGS, SOURCES
from ingress.metrics import IngressMetrics
from ingress.zoho_setup import zoho_session_context
from schemas.settings import Settings
from schemas.source import SourceConfig


def create_app(settings: Settings, sources: Mapping[str, SourceConfig]) -> web.Application:
    # aiohttp answers 413 itself when a body is larger than client_max_size.
    app = web.Application(
        client_max_size=settings.max_body_bytes, middlewares=[handlers.count_requests]
    )
    app[SETTINGS] = settings
    app[SOURCES] = sources
    app[METRICS] = IngressMetrics()
    app.cleanup_ctx.append(producer_context)
    app.cleanup_ctx.append(zoho_session_context)
    app.router.add_route("GET", "/sources/{source_id}", handlers.source_endpoint)
    app.router.add_route("POST", "/sources/{source_id}", handlers.source_endpoint)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    return app
