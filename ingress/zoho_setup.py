"""The source URL opened in a browser: the set-up page, or the Zoho code exchange."""

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from ingress.keys import SETTINGS, ZOHO_SESSION
from ingress.setup_pages import (
    PAGE_HEADERS,
    Page,
    failure_page,
    setup_page,
    success_page,
    wants_json,
)
from schemas.source import SourceConfig
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
    stored_in = await _store(request.app[SETTINGS].zoho_refresh_token_dir, source, result)
    log.info(
        "zoho refresh token issued",
        extra={"source_id": source.id, "api_domain": result.api_domain, "stored": bool(stored_in)},
    )
    return _response(success_page(source, result, stored_in, as_json))


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


async def _store(directory: Path | None, source: SourceConfig, exchanged: Exchanged) -> str | None:
    """Writes the token where the operator asked; a failure must not hide it, since the
    page is the only other place it appears."""
    if directory is None:
        return None
    try:
        path = await asyncio.to_thread(
            write_secret, directory, f"{source.id}.refresh_token", exchanged
        )
    except OSError as error:
        log.error(
            "refresh token not written to the secret store",
            extra={
                "source_id": source.id,
                "directory": str(directory),
                "error": type(error).__name__,
            },
        )
        return None
    return str(path)


def write_secret(directory: Path, name: str, exchanged: Exchanged) -> Path:
    """Owner-only file, replaced atomically, so a reader never sees half a token."""
    target = directory / name
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(exchanged.refresh_token.get_secret_value() + "\n")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _response(page: Page) -> web.Response:
    return web.Response(
        status=page.status,
        text=page.text,
        content_type=page.content_type,
        charset="utf-8",
        headers=PAGE_HEADERS,
    )
