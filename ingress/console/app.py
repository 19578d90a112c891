"""The operator console, mounted on the ingress under /console/."""

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import get_session, new_session, session_middleware
from prometheus_client import CollectorRegistry, Gauge

from ingress.console import views
from ingress.console.activity import ActivityIndex
from ingress.console.feed import Feed, feed_task
from ingress.console.security import (
    CONSOLE_HEADERS,
    CSRF_FIELD,
    SIGNED_IN,
    ConsoleCookieStorage,
    csrf_ok,
    csrf_token,
    session_fernet,
)
from ingress.console.sources import ConsoleSources
from ingress.console.state import CONSOLE, Console
from schemas.settings import Settings

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
PUBLIC = ("/console/sign-in", "/console/static/")


def console_app(
    settings: Settings, store: ConsoleSources, registry: CollectorRegistry
) -> web.Application:
    index = ActivityIndex(settings.console_recent_per_source, settings.console_trace_records)
    lag = Gauge(
        "pipeline_consumer_lag",
        "Messages the worker group has not committed yet, per topic and partition.",
        ["topic", "partition"],
        registry=registry,
    )
    Gauge(
        "console_index_messages",
        "Pipeline messages the console has read into its index.",
        registry=registry,
    ).set_function(lambda: index.messages)
    feed = Feed(settings, index, lambda t, p, n: lag.labels(t, str(p)).set(n))
    storage = ConsoleCookieStorage(
        session_fernet(settings.admin_token.get_secret_value()),
        max_age_s=int(settings.console_session_hours * 3600),
    )
    app = web.Application(middlewares=[security_headers, session_middleware(storage), guard])
    app[CONSOLE] = Console(settings, store, index, feed)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[_context],
    )
    app.cleanup_ctx.append(_feed)
    app.cleanup_ctx.append(_jobs)
    app.router.add_static("/static/", HERE / "static", name="static")
    views.add_routes(app.router)
    return app


async def _feed(app: web.Application) -> AsyncIterator[None]:
    async for _ in feed_task(app[CONSOLE].feed):
        yield


async def _jobs(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[CONSOLE].jobs.close()


async def _context(request: web.Request) -> dict[str, object]:
    session = await get_session(request)
    return {"csrf_field": CSRF_FIELD, "csrf": csrf_token(session), "path": request.path}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(CONSOLE_HEADERS)
        raise
    response.headers.update(CONSOLE_HEADERS)
    return response


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Nothing but the sign-in page and the static files without a session; no POST
    without the session's CSRF token."""
    session = await get_session(request)
    if request.method == "POST":
        form = await request.post()
        presented = form.get(CSRF_FIELD)
        if not csrf_ok(session, presented if isinstance(presented, str) else None):
            raise web.HTTPForbidden(
                text="The form is out of date or was not sent by the console: "
                "reload the page and try again."
            )
    if request.path.startswith(PUBLIC) or session.get(SIGNED_IN) is True:
        return await handler(request)
    if request.method == "GET":
        if session.new:
            # A cookie that could not be decrypted gives a new, empty session.
            await new_session(request)
        raise web.HTTPSeeOther("/console/sign-in")
    raise web.HTTPUnauthorized(text="Sign in first.")
