"""The console's pages: each handler reads the index or the store, calls one function,
and renders a template."""

import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session
from pydantic import ValidationError

from ingress.console import actions
from ingress.console.actions import ReplayJob
from ingress.console.forms import (
    ACCOUNTS_URLS,
    GENERAL,
    PASS_THROUGH_CHOICES,
    FormProblem,
    field_errors,
    read_form,
)
from ingress.console.security import SIGNED_IN, token_matches
from ingress.console.sources import NotVisibleYet, SourceExists
from ingress.console.state import CONSOLE, Console
from ingress.forwarder import Stored
from ingress.handlers import NotStored, store_envelope
from ingress.keys import FORWARDER
from ingress.spool import SpoolStats
from schemas.source import SourceConfig
from streams.commands.replay_plan import BadSelection, parse_time
from zoho.accounts import SCOPE, token_url
from zoho.fields import IDENTITY_FIELDS, Module, required_fields

log = logging.getLogger(__name__)
CODE_MINUTES = (3, 5, 7, 10)  # the lifetimes Zoho's Self Client offers for a code


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("", home)
    router.add_get("/", home)
    router.add_get("/sign-in", sign_in_page)
    router.add_post("/sign-in", sign_in)
    router.add_post("/sign-out", sign_out)
    router.add_get("/sources", sources_page)
    router.add_post("/sources", create_source)
    router.add_get("/sources/_health", sources_health)
    router.add_get("/sources/{source}", source_page)
    router.add_get("/sources/{source}/activity", source_activity)
    router.add_get("/sources/{source}/actions", actions_page)
    router.add_post("/sources/{source}/test-webhook", send_test_webhook)
    router.add_post("/sources/{source}/replay", start_replay)
    router.add_get("/trace", trace_page)


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


async def home(request: web.Request) -> web.Response:  # noqa: ARG001 - aiohttp's signature
    raise web.HTTPSeeOther("/console/sources")


async def sign_in_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("sign_in.html", request, {"error": None})


async def sign_in(request: web.Request) -> web.Response:
    form = await request.post()
    presented = form.get("token")
    expected = _console(request).settings.admin_token.get_secret_value()
    if not isinstance(presented, str) or not token_matches(expected, presented):
        log.warning("console sign-in refused", extra={"remote": request.remote})
        return aiohttp_jinja2.render_template(
            "sign_in.html", request, {"error": "That is not the admin token."}, status=401
        )
    # A fresh session on sign-in, so a session fixed before it is worth nothing after.
    session = await new_session(request)
    session[SIGNED_IN] = True
    log.info("console sign-in", extra={"remote": request.remote})
    raise web.HTTPSeeOther("/console/sources")


async def sign_out(request: web.Request) -> web.Response:
    (await get_session(request)).invalidate()
    raise web.HTTPSeeOther("/console/sign-in")


def _spool(request: web.Request) -> SpoolStats:
    """This replica's spool: each ingress replica has its own, and the console shows the
    one of the replica that answers."""
    return request.config_dict[FORWARDER].stats


def _health_context(request: web.Request) -> dict[str, Any]:
    console = _console(request)
    now = datetime.now(UTC)
    known = console.store.sources()
    spool = _spool(request)
    ids = sorted((set(known) | set(console.index.source_ids()) | set(spool.by_source)) - {""})
    rows = [
        {
            "health": console.index.health(source_id, now),
            "configured": source_id in known,
            "enabled": source_id in known and known[source_id].enabled,
            "spooled": spool.by_source.get(source_id, 0),
        }
        for source_id in ids
    ]
    return {
        "rows": rows,
        "spool": {"depth": spool.depth, "oldest_age_s": spool.oldest_age_s(time.time())},
    }


async def sources_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "sources.html", request, _sources_context(request, {}, {}, None)
    )


def _sources_context(
    request: web.Request, shown: dict[str, str], errors: dict[str, str], created: Any
) -> dict[str, Any]:
    return _health_context(request) | {
        "caught_up": _console(request).feed.caught_up.is_set(),
        "form": shown,
        "errors": errors,
        "general": GENERAL,
        "accounts_urls": ACCOUNTS_URLS,
        "pass_through_choices": PASS_THROUGH_CHOICES,
        "created": created,
    }


async def sources_health(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("_health.html", request, _health_context(request))


async def create_source(request: web.Request) -> web.Response:
    form = await request.post()
    text = {k: v for k, v in form.items() if isinstance(v, str)}
    pass_through = [v for v in form.getall("pass_through", []) if isinstance(v, str)]
    shown = {k: v for k, v in text.items() if k not in ("client_secret", "refresh_token")}
    try:
        parsed = read_form(text, pass_through)
        created = await _console(request).store.create(parsed.values)
    except FormProblem as problem:
        errors = {problem.field: str(problem)}
    except ValidationError as error:
        errors = field_errors(error)
    except SourceExists as exists:
        errors = {"id": str(exists)}
    except NotVisibleYet as late:
        errors = {GENERAL: str(late)}
    else:
        log.info("source created in the console", extra={"source_id": created.source.id})
        context = _source_context(request, created.source, created.api_key)
        return aiohttp_jinja2.render_template(
            "source.html", request, context | {"just_created": True}
        )
    return aiohttp_jinja2.render_template(
        "sources.html", request, _sources_context(request, shown, errors, None), status=422
    )


def _source(request: web.Request) -> SourceConfig:
    source = _console(request).store.sources().get(request.match_info["source"])
    if source is None:
        raise web.HTTPNotFound(text="No such source.")
    return source


def source_url(request: web.Request, source: SourceConfig, api_key: str | None) -> str:
    base = f"{request.scheme}://{request.host}/sources/{source.id}"
    return f"{base}?{urlencode({'api_key': api_key})}" if api_key else base


def zoho_label(name: str) -> str:
    if name == "cdp_id":
        return "CDP ID (the custom field that holds the CDP's id)"
    return name.replace("_", " ").title()


def webhook_parameters(source: SourceConfig) -> dict[str, list[dict[str, Any]]]:
    tables = {}
    for module in Module:
        required = required_fields(module, source.amount_field)
        rows = [{"name": n, "zoho": zoho_label(n), "required": True} for n in required]
        rows += [
            {"name": n, "zoho": zoho_label(n), "required": False}
            for n in IDENTITY_FIELDS
            if n not in required
        ]
        tables[module.value] = rows
    return tables


def _source_context(
    request: web.Request, source: SourceConfig, api_key: str | None
) -> dict[str, Any]:
    accounts_host = source.accounts_url.split("://", 1)[-1]
    return {
        "source": source,
        "url": source_url(request, source, api_key),
        "parameters": webhook_parameters(source),
        "scope": SCOPE,
        "token_url": token_url(source.accounts_url),
        "api_console": "https://" + accounts_host.replace("accounts.", "api-console.", 1),
        "code_minutes": CODE_MINUTES,
        "has_refresh_token": bool(source.refresh_token.get_secret_value()),
        "has_client_secret": bool(source.client_secret.get_secret_value()),
        "activity": _activity(request, source.id),
        "just_created": False,
    }


def _activity(request: web.Request, source_id: str) -> dict[str, Any]:
    index = _console(request).index
    total, share = index.identifier_share(source_id)
    return {
        "health": index.health(source_id, datetime.now(UTC)),
        "webhooks": index.recent_webhooks(source_id),
        "conversions": index.recent_conversions(source_id),
        "invalid": index.recent_invalid(source_id),
        "dead_letters": index.recent_dead_letters(source_id),
        "share_total": total,
        "share": share,
        "source_id": source_id,
        "spooled": _spool(request).by_source.get(source_id, 0),
    }


async def source_page(request: web.Request) -> web.Response:
    source = _source(request)
    context = _source_context(request, source, source.api_key.get_secret_value())
    return aiohttp_jinja2.render_template("source.html", request, context)


async def source_activity(request: web.Request) -> web.Response:
    source = _source(request)
    return aiohttp_jinja2.render_template(
        "_activity.html", request, {"activity": _activity(request, source.id)}
    )


async def actions_page(request: web.Request) -> web.Response:
    source = _source(request)
    return aiohttp_jinja2.render_template(
        "actions.html", request, _actions_context(request, source, None, None)
    )


def _actions_context(
    request: web.Request, source: SourceConfig, sent: str | None, problem: str | None
) -> dict[str, Any]:
    jobs = _console(request).jobs
    return {
        "source": source,
        "sent": sent,
        "problem": problem,
        "job": jobs.last.get(source.id),
        "converting_status": actions.converting_status(source),
        "spooled": False,
    }


async def send_test_webhook(request: web.Request) -> web.Response:
    source = _source(request)
    try:
        envelope = actions.console_test_envelope(source, datetime.now(UTC))
    except ValueError as error:
        context = _actions_context(request, source, None, str(error))
        return aiohttp_jinja2.render_template("actions.html", request, context, status=422)
    # The path a posted webhook takes (Kafka, or this replica's spool when Kafka is slow
    # or down): the worker, the sink and the CDP see an ordinary webhook, marked test.
    try:
        stored = await store_envelope(request.config_dict, envelope)
    except NotStored as refused:
        context = _actions_context(request, source, None, str(refused))
        return aiohttp_jinja2.render_template("actions.html", request, context, status=503)
    log.info(
        "test webhook sent",
        extra={
            "source_id": source.id,
            "envelope_id": envelope.envelope_id,
            "stored_in": stored.value,
        },
    )
    context = _actions_context(request, source, envelope.envelope_id, None)
    context["spooled"] = stored is Stored.SPOOL
    return aiohttp_jinja2.render_template("actions.html", request, context)


async def start_replay(request: web.Request) -> web.Response:
    source = _source(request)
    console = _console(request)
    form = await request.post()
    now = datetime.now(UTC)
    try:
        since = _time(form.get("since"), now)
        until = _time(form.get("until"), now)
        job = ReplayJob(
            source.id,
            only_invalid=form.get("what") == "invalid",
            since=since,
            until=until,
            dry_run=form.get("confirm") != "yes",
        )
        job.request()
    except BadSelection as error:
        context = _actions_context(request, source, None, str(error))
        return aiohttp_jinja2.render_template("actions.html", request, context, status=422)
    if console.jobs.running(source.id):
        context = _actions_context(request, source, None, "A replay of this source is running.")
        return aiohttp_jinja2.render_template("actions.html", request, context, status=409)
    if job.dry_run:
        console.jobs.last[source.id] = await actions.run_replay(console.settings, job)
    else:
        log.info("replay started in the console", extra={"source_id": source.id, "what": job.what})
        console.jobs.start(console.settings, job)
    raise web.HTTPSeeOther(f"/console/sources/{source.id}/actions")


def _time(value: object, now: datetime) -> datetime | None:
    text = value.strip() if isinstance(value, str) else ""
    return parse_time(text, now) if text else None


async def trace_page(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()
    traces = _console(request).index.trace(query) if query else []
    # From the test webhook's link: the envelope may not be read yet, so the page waits.
    wait = request.query.get("wait") == "1"
    return aiohttp_jinja2.render_template(
        "trace.html", request, {"query": query, "traces": traces, "wait": wait}
    )
