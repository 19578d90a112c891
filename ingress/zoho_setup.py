"""The source URL opened in a browser: the set-up page, or the Zoho code exchange."""

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from ingress.keys import SETTINGS, SOURCE_STORE, SOURCES, ZOHO_SESSION
from ingress.setup_pages import (
    PAGE_HEADERS,
    Page,
    failure_page,
    setup_page,
    success_page,
    wants_json,
)
from schemas.source import SourceConfig
from sources.operations import InvalidSource, changed
from sources.registry import SourceRegistry
from sources.store import StoreUnavailable
from zoho.accounts import exchange_form, token_url
from zoho.answers import MAX_ANSWER_BYTES
from zoho.code_exchange import (
    Exchanged,
    ExchangeFailed,
    interpret_exchange,
    missing_client,
    not_configured,
    unreachable,
)

log = logging.getLogger(__name__)


async def zoho_session_context(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[ZOHO_SESSION] = session
        yield


async def show(request: web.Request, source: SourceConfig) -> web.Response:
    as_json = wants_json(request.headers.get("Accept", ""))
    code = request.query.get("zoho_code", "").strip()
    if not code:
        return _response(setup_page(source, as_json))
    result = await exchange_code(
        request.app[ZOHO_SESSION], source, code, request.app[SETTINGS].zoho_timeout_s
    )
    if isinstance(result, ExchangeFailed):
        log.warning(
            "zoho code exchange failed",
            extra={
                "source_id": source.id,
                "zoho_error": result.zoho_error,
                "token_url": result.token_url,
                "status": result.status,
            },
        )
        return _response(failure_page(source, result, as_json))
    stored = await _store(request.app, source, result)
    log.info(
        "zoho refresh token issued",
        extra={"source_id": source.id, "api_domain": result.api_domain, "stored": stored},
    )
    return _response(success_page(source, result, stored, as_json))


async def exchange_code(
    session: aiohttp.ClientSession, source: SourceConfig, code: str, timeout_s: float
) -> Exchanged | ExchangeFailed:
    if missing_client(source):
        return not_configured(source)
    url = token_url(source.accounts_url)
    try:
        async with session.post(
            url,
            data=exchange_form(source.client_id, source.client_secret, code),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            body = await response.content.read(MAX_ANSWER_BYTES)
            return interpret_exchange(response.status, body, url)
    except TimeoutError:
        return unreachable(url, timed_out=True)
    except aiohttp.ClientError:
        return unreachable(url, timed_out=False)


async def _store(app: web.Application, source: SourceConfig, exchanged: Exchanged) -> bool:
    """Writes the token into the source (encrypted in the sources topic). A failure must
    not hide it, since the page is then the only place it appears."""
    store = app.get(SOURCE_STORE)
    sources = app[SOURCES]
    if isinstance(sources, SourceRegistry):
        # The token goes into the latest version of the source, not an older one.
        await sources.caught_up(timeout=5)
    current = sources.get(source.id)
    if store is None or current is None:
        return False
    try:
        await store.put(
            changed(current, refresh_token=SecretStr(exchanged.refresh_token.get_secret_value()))
        )
    except (StoreUnavailable, InvalidSource) as error:
        log.error(
            "refresh token not stored in the source",
            extra={"source_id": source.id, "error": type(error).__name__},
        )
        return False
    return True


def _response(page: Page) -> web.Response:
    return web.Response(
        status=page.status,
        text=page.text,
        content_type=page.content_type,
        charset="utf-8",
        headers=PAGE_HEADERS,
    )
