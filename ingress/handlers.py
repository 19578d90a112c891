"""Request handlers: parse, call a function, turn its errors into HTTP statuses."""

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from datetime import UTC, datetime

import orjson
from aiohttp import web
from aiohttp.helpers import ChainMapProxy
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic_core import PydanticSerializationError

from ingress import zoho_setup
from ingress.auth import BadApiKey, DisabledSource, UnknownSource, authenticate
from ingress.forwarder import Stored
from ingress.kafka import fits_one_request, kafka_reachable
from ingress.keys import FORWARDER, METRICS, PRODUCER, SETTINGS, SOURCES
from ingress.parsing import (
    UnparseableBody,
    is_webhook,
    merge_parameters,
    parse_body,
    record_id,
    require_unicode,
)
from ingress.spool import SpoolFull
from schemas import topics
from schemas.envelope import RawEnvelope, record_key
from schemas.source import SourceConfig

log = logging.getLogger(__name__)


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json")


async def source_endpoint(request: web.Request) -> web.StreamResponse:
    """The source URL: a webhook (POST, or GET with record fields) or the set-up page.
    Counted by source and status; unknown source ids share one label."""
    source_id = request.match_info["source_id"]
    label = source_id if source_id in request.app[SOURCES] else "unknown"
    metrics = request.app[METRICS]
    try:
        response = await _answer_source_request(request)
    except web.HTTPException as error:
        metrics.count_request(label, error.status)
        raise
    metrics.count_request(label, response.status)
    return response


async def _answer_source_request(request: web.Request) -> web.StreamResponse:
    source = _authenticated_source(request)
    if request.method == "GET" and not is_webhook(request.query):
        return await setup_page(request, source)
    return await accept_webhook(request, source)


def _authenticated_source(request: web.Request) -> SourceConfig:
    source_id = request.match_info["source_id"]
    presented = request.query.get("api_key") or request.headers.get("X-Api-Key")
    try:
        return authenticate(request.app[SOURCES], source_id, presented)
    except UnknownSource:
        raise _error(web.HTTPNotFound, f"unknown source {source_id}") from None
    except BadApiKey:
        raise _error(web.HTTPUnauthorized, "missing or wrong api key") from None
    except DisabledSource:
        raise _error(web.HTTPGone, f"source {source_id} is disabled") from None


async def accept_webhook(request: web.Request, source: SourceConfig) -> web.Response:
    body = await _body_parameters(request)
    try:
        parameters = require_unicode(merge_parameters(request.query.items(), body))
    except UnparseableBody as error:
        raise _error(web.HTTPBadRequest, str(error)) from None
    envelope = RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source_id=source.id,
        received_at=datetime.now(UTC),
        method=request.method,
        content_type=_content_type(request),
        parameters=parameters,
    )
    try:
        stored = await store_envelope(request.app, envelope)
    except NotStored as refused:
        raise _error(refused.status, str(refused)) from None
    # The raw topic is the record of what was accepted; a line per webhook would cost
    # about a tenth of the ingress's CPU. A spooled webhook is worth the operator's eye.
    log.log(
        logging.INFO if stored is Stored.SPOOL else logging.DEBUG,
        "webhook accepted",
        extra={
            "source_id": source.id,
            "envelope_id": envelope.envelope_id,
            "stored_in": stored.value,
        },
    )
    # orjson: json_response's encoder was about 3 % of the ingress's CPU.
    return web.Response(
        body=orjson.dumps({"envelope_id": envelope.envelope_id}),
        status=202,
        content_type="application/json",
    )


def _content_type(request: web.Request) -> str:
    if not request.body_exists:
        return ""
    # Header bytes that are not UTF-8 arrive as surrogates, which JSON cannot carry.
    return request.content_type.encode("utf-8", "replace").decode("utf-8")


async def _body_parameters(request: web.Request) -> dict[str, str]:
    if not request.body_exists:
        return {}
    deadline = request.app[SETTINGS].ingress_body_timeout_s
    try:
        if request.content_type == "multipart/form-data":
            async with asyncio.timeout(deadline):
                return await _multipart_parameters(request)
        if request.content.is_eof():
            # The whole body came with the headers, as a webhook's usually does: no timer.
            body = await request.read()
        else:
            async with asyncio.timeout(deadline):
                body = await request.read()
    except TimeoutError:
        raise _error(
            web.HTTPRequestTimeout, f"the request body did not arrive within {deadline:g} s"
        ) from None
    try:
        return parse_body(request.content_type, body)
    except UnparseableBody as error:
        raise _error(web.HTTPBadRequest, str(error)) from None


async def _multipart_parameters(request: web.Request) -> dict[str, str]:
    try:
        form = await request.post()
    except (ValueError, HttpProcessingError) as error:
        # A missing boundary, a broken part header, a part that is not UTF-8.
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        raise _error(web.HTTPBadRequest, f"multipart body is malformed: {message}") from None
    return {name: value for name, value in form.items() if isinstance(value, str)}


class NotStored(Exception):
    """Neither Kafka nor the spool took the envelope; `status` is the answer to give."""

    def __init__(self, status: type[web.HTTPException], message: str) -> None:
        super().__init__(message)
        self.status = status


async def store_envelope(app: web.Application | ChainMapProxy, envelope: RawEnvelope) -> Stored:
    """The path every accepted webhook takes, the console's test webhook included: returns
    only once Kafka or this replica's spool has the envelope; NotStored otherwise."""
    settings = app[SETTINGS]
    try:
        value = envelope.model_dump_json().encode()
    except PydanticSerializationError:
        raise NotStored(
            web.HTTPBadRequest, "the request carries text that is not valid Unicode"
        ) from None
    key = record_key(envelope.source_id, record_id(envelope.parameters))
    if not fits_one_request(key, value):
        raise NotStored(
            web.HTTPRequestEntityTooLarge,
            f"the webhook is {len(value)} bytes as stored, more than Kafka takes in one record",
        )
    started = time.perf_counter()
    try:
        stored = await app[FORWARDER].deliver(settings.topic(topics.RAW), key, value)
    except SpoolFull:
        log.warning(
            "kafka is behind and the spool is full", extra={"source_id": envelope.source_id}
        )
        raise NotStored(
            web.HTTPServiceUnavailable,
            "cannot store the webhook now: Kafka is unavailable and the ingress's spool is "
            "full; retry later",
        ) from None
    except (OSError, sqlite3.Error) as error:
        log.error(
            "kafka is behind and the spool cannot be written",
            extra={"source_id": envelope.source_id, "error": type(error).__name__},
        )
        raise NotStored(web.HTTPServiceUnavailable, "cannot store the webhook now; retry") from None
    if stored is Stored.KAFKA:
        app[METRICS].produce_seconds.observe(time.perf_counter() - started)
    else:
        app[METRICS].spooled.inc()
    return stored


async def setup_page(request: web.Request, source: SourceConfig) -> web.Response:
    """The set-up page, or with ?zoho_code= the exchange of a Zoho code for a refresh token."""
    return await zoho_setup.show(request, source)


async def healthz(request: web.Request) -> web.Response:  # noqa: ARG001 - aiohttp's handler signature
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready while webhooks can be stored: Kafka answers, or the spool has room."""
    forwarder = request.app[FORWARDER]
    stats = forwarder.stats
    kafka = await kafka_reachable(request.app[PRODUCER], timeout_s=3)
    room = forwarder.has_room(request.app[SETTINGS].max_body_bytes)
    if kafka and not forwarder.queued:
        status = "ready"
    elif room:
        status = "spooling"
    else:
        status = "spool full"
    body = {
        "status": status,
        "kafka": "reachable" if kafka else "unreachable",
        "spool": {
            "depth": stats.depth,
            "bytes": stats.size,
            "oldest_age_s": round(stats.oldest_age_s(time.time()), 3),
        },
    }
    # While the spool holds anything, new webhooks join it, whatever Kafka says.
    accepting = room or (kafka and not forwarder.queued)
    return web.json_response(body, status=200 if accepting else 503)


async def metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    stats = request.app[FORWARDER].stats
    metrics.spool_depth.set(stats.depth)
    metrics.spool_bytes.set(stats.size)
    metrics.spool_oldest_age.set(stats.oldest_age_s(time.time()))
    response = web.Response(body=generate_latest(metrics.registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response
