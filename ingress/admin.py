"""The admin API under /admin/: sources created, changed and removed while the pipeline
runs. Handlers parse, call `sources.operations`, write through the store and answer."""

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ingress.keys import SETTINGS, SOURCE_STORE, SOURCES
from ingress.openapi import openapi_document
from schemas.admin import (
    ErrorAnswer,
    FieldProblem,
    ImportAnswer,
    KeyRotation,
    SourceList,
    SourcesImport,
)
from schemas.source import SourceConfig
from sources import operations
from sources.operations import InvalidSource, SourceExists, problems_of
from sources.registry import SourceRegistry
from sources.seed import plan_import
from sources.store import StoreUnavailable

log = logging.getLogger(__name__)
# Past this the request goes on with what this replica has.
CATCH_UP_TIMEOUT_S = 5.0

AdminHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_admin_routes(app: web.Application) -> bool:
    """Adds the admin API when an admin token is set; says whether it did."""
    if not app[SETTINGS].admin_token.get_secret_value():
        return False
    routes = [
        ("GET", "/admin/sources", list_sources),
        ("POST", "/admin/sources", create_source),
        ("GET", "/admin/sources/{source_id}", show_source),
        ("PATCH", "/admin/sources/{source_id}", update_source),
        ("DELETE", "/admin/sources/{source_id}", delete_source),
        ("POST", "/admin/sources/{source_id}/disable", disable_source),
        ("POST", "/admin/sources/{source_id}/enable", enable_source),
        ("POST", "/admin/sources/{source_id}/rotate-key", rotate_key),
        ("POST", "/admin/import", import_sources),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guarded(handler))
    app.router.add_get("/admin/openapi.json", openapi)
    return True


def _answer(status: int, model: BaseModel | None = None) -> web.Response:
    if model is None:
        return web.Response(status=status)
    return web.Response(
        status=status,
        text=model.model_dump_json(),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _error(status: int, message: str, invalid: InvalidSource | None = None) -> web.Response:
    answer = ErrorAnswer(error=message, fields=invalid.problems if invalid else [])
    return _answer(status, answer)


def _guarded(handler: AdminHandler) -> AdminHandler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not _token_ok(request):
            response = _error(401, "missing or wrong admin token")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        await _caught_up(request.app)
        try:
            return await handler(request)
        except InvalidSource as invalid:
            return _error(422, "invalid request", invalid)
        except SourceExists as exists:
            return _error(409, f"source {exists} exists")
        except StoreUnavailable as error:
            log.warning("source write failed", extra={"error": str(error)})
            return _error(503, f"cannot store the change now ({error}); retry")

    return guarded


async def _caught_up(app: web.Application) -> None:
    """Every change another replica answered before this request is seen here: a read
    finds it, and a change is made to it rather than to an older version."""
    sources = app[SOURCES]
    if isinstance(sources, SourceRegistry):
        await sources.caught_up(timeout=CATCH_UP_TIMEOUT_S)


def _token_ok(request: web.Request) -> bool:
    expected = request.app[SETTINGS].admin_token.get_secret_value().encode()
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # Constant-time, so timing does not reveal how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(expected, presented.strip().encode())


def _source(request: web.Request) -> SourceConfig:
    source_id = request.match_info["source_id"]
    source = request.app[SOURCES].get(source_id)
    if source is None:
        raise web.HTTPNotFound(
            text=ErrorAnswer(error=f"unknown source {source_id}").model_dump_json(),
            content_type="application/json",
        )
    return source


async def _put(request: web.Request, source: SourceConfig, action: str) -> None:
    await request.app[SOURCE_STORE].put(source)
    log.info("source %s", action, extra={"source_id": source.id, "action": action})


async def _body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise web.HTTPRequestEntityTooLarge(
            max_size=request.app[SETTINGS].max_body_bytes,
            actual_size=request.content_length or 0,
            text=ErrorAnswer(error="the request is too large").model_dump_json(),
            content_type="application/json",
        ) from None


async def openapi(request: web.Request) -> web.Response:  # noqa: ARG001 - aiohttp's signature
    return web.json_response(openapi_document())


async def list_sources(request: web.Request) -> web.Response:
    sources = request.app[SOURCES]
    return _answer(200, SourceList(sources=[operations.view(sources[i]) for i in sorted(sources)]))


async def create_source(request: web.Request) -> web.Response:
    source = operations.create(await _body(request), request.app[SOURCES], operations.new_api_key())
    await _put(request, source, "created")
    return _answer(201, operations.created_view(source))


async def show_source(request: web.Request) -> web.Response:
    return _answer(200, operations.view(_source(request)))


async def update_source(request: web.Request) -> web.Response:
    source = operations.update(_source(request), await _body(request))
    await _put(request, source, "updated")
    return _answer(200, operations.view(source))


async def delete_source(request: web.Request) -> web.Response:
    source = _source(request)
    await request.app[SOURCE_STORE].delete(source.id)
    log.info("source deleted", extra={"source_id": source.id, "action": "deleted"})
    return _answer(204)


async def disable_source(request: web.Request) -> web.Response:
    source = operations.changed(_source(request), enabled=False)
    await _put(request, source, "disabled")
    return _answer(200, operations.view(source))


async def enable_source(request: web.Request) -> web.Response:
    source = operations.changed(_source(request), enabled=True)
    await _put(request, source, "enabled")
    return _answer(200, operations.view(source))


async def rotate_key(request: web.Request) -> web.Response:
    source = _source(request)
    body = await _body(request)
    try:
        rotation = KeyRotation.model_validate_json(body) if body.strip() else KeyRotation()
    except ValidationError as error:
        raise InvalidSource(problems_of(error)) from None
    overlap_s = (
        request.app[SETTINGS].api_key_overlap_s
        if rotation.overlap_s is None
        else rotation.overlap_s
    )
    rotated = operations.rotate_key(
        source, operations.new_api_key(), datetime.now(UTC), timedelta(seconds=overlap_s)
    )
    await _put(request, rotated, "key rotated")
    return _answer(200, operations.rotated_view(rotated))


async def import_sources(request: web.Request) -> web.Response:
    try:
        wanted = SourcesImport.model_validate_json(await _body(request))
    except ValidationError as error:
        raise InvalidSource(problems_of(error)) from None
    seen: set[str] = set()
    for position, source in enumerate(wanted.sources):
        if source.id in seen:
            raise InvalidSource(
                [FieldProblem(field=f"sources.{position}.id", message="used twice")]
            )
        seen.add(source.id)
    plan = plan_import({s.id: s for s in wanted.sources}, request.app[SOURCES], wanted.force)
    for source in plan.write:
        await _put(request, source, "imported")
    return _answer(200, ImportAnswer(written=[s.id for s in plan.write], kept=list(plan.kept)))
