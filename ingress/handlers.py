"""Request handlers: parse, call a function, turn its errors into HTTP statuses."""

import json
import logging
import time
import uuid
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingress import zoho_setup
from ingress.auth import BadApiKey, DisabledSource, UnknownSource, authenticate
from ingress.kafka import kafka_reachable
from ingress.keys import METRICS, PRODUCER, SETTINGS, SOURCES
from ingress.parsing import UnparseableBody, is_webhook, merge_parameters, parse_body, record_id
from schemas import topics
from schemas.envelope import RawEnvelope, record_key
from schemas.source import SourceConfig

log = logging.getLogger(__name__)


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json")


async def source_endpoint(request: web.Request) -> web.StreamResponse:
    """The source URL: a webhook (POST, or GET with record fields) or the set-up page."""
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
    envelope = RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source_id=source.id,
        received_at=datetime.now(UTC),
        method=request.method,
        content_type=request.content_type if request.body_exists else "",
        parameters=merge_parameters(request.query.items(), body),
    )
    await _write_to_kafka(request.app, envelope)
    log.info(
        "webhook accepted",
        extra={"source_id": source.id, "envelope_id": envelope.envelope_id},
    )
    return web.json_response({"envelope_id": envelope.envelope_id}, status=202)


async def _body_parameters(request: web.Request) -> dict[str, str]:
    if not request.body_exists:
        return {}
    if request.content_type == "multipart/form-data":
        form = await request.post()
        return {name: value for name, value in form.items() if isinstance(value, str)}
    try:
        return parse_body(request.content_type, await request.read())
    except UnparseableBody as error:
        raise _error(web.HTTPBadRequest, str(error)) from None


async def _write_to_kafka(app: web.Application, envelope: RawEnvelope) -> None:
    """Returns only once Kafka has the envelope; anything else is a 503."""
    settings = app[SETTINGS]
    started = time.perf_counter()
    try:
        await app[PRODUCER].send_and_wait(
            settings.topic(topics.RAW),
            value=envelope.model_dump_json().encode(),
            key=record_key(envelope.source_id, record_id(envelope.parameters)),
        )
    except (KafkaError, TimeoutError) as error:
        log.warning(
            "kafka did not take the webhook",
            extra={"source_id": envelope.source_id, "error": type(error).__name__},
        )
        raise _error(web.HTTPServiceUnavailable, "cannot store the webhook now; retry") from None
    app[METRICS].produce_seconds.observe(time.perf_counter() - started)


async def setup_page(request: web.Request, source: SourceConfig) -> web.Response:
    """The set-up page, or with ?zoho_code= the exchange of a Zoho code for a refresh token."""
    return await zoho_setup.show(request, source)


async def healthz(request: web.Request) -> web.Response:  # noqa: ARG001 - aiohttp's handler signature
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if await kafka_reachable(request.app[PRODUCER], timeout_s=3):
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "kafka unreachable"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(request.app[METRICS].registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests by source and status; unknown source ids share one label."""
    source_id = request.match_info.get("source_id")
    # The admin API names sources too, but is not their traffic.
    if source_id is None or request.path.startswith("/admin/"):
        return await handler(request)
    label = source_id if source_id in request.app[SOURCES] else "unknown"
    try:
        response = await handler(request)
    except web.HTTPException as error:
        request.app[METRICS].requests.labels(label, str(error.status)).inc()
        raise
    request.app[METRICS].requests.labels(label, str(response.status)).inc()
    return response
