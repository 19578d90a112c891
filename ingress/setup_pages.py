"""The pages of the source URL opened in a browser: what the URL is for, and how the
Zoho code exchange went. Pure: they take what happened and return the page."""

import html
import json
from dataclasses import dataclass

from schemas.source import SourceConfig
from zoho.accounts import SCOPE, token_url
from zoho.code_exchange import Exchanged, ExchangeFailed
from zoho.fields import Module, required_fields

# Security headers for every page of the flow: the token must not be cached, and the
# URL (api key, code) must not leak through a Referer.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}
STORED = (
    "The refresh token is stored in the source (encrypted); the workers use it from now "
    "on, without a restart. Switch on verify or enrich for the source if you want them "
    "(zoho-cdp-sources update SOURCE --verify). It is shown only this once, for your own "
    "records."
)
NOT_STORED = (
    "The refresh token could NOT be stored in the source: copy it now and set it with "
    "`zoho-cdp-sources update SOURCE --refresh-token -` (it is read from standard input). "
    "It is shown only this once; if you lose it, generate a new code."
)
USER_LIMIT_WARNING = (
    "A Zoho user holds at most 20 refresh tokens: creating a 21st silently deletes the "
    "oldest one. Do not generate tokens again and again, or another source or integration "
    "that uses the same Zoho user may stop working."
)


def wants_json(accept: str) -> bool:
    """A browser asks for HTML; a script that asks for JSON gets JSON."""
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "application/json" in kinds and "text/html" not in kinds


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    text: str

    def __repr__(self) -> str:
        # A success page carries the refresh token.
        return f"Page(status={self.status}, content_type={self.content_type!r})"


def setup_page(source: SourceConfig, as_json: bool) -> Page:
    """What the source URL is for, when opened without a webhook or a code."""
    fields = {module.value: list(required_fields(module, source.amount_field)) for module in Module}
    purpose = (
        f"This is the webhook URL of source {source.id}. Point a Zoho CRM workflow "
        "webhook at it (POST or GET)."
    )
    connect = (
        "To connect the source to the Zoho CRM API: in the Zoho API console create a Self "
        f"Client, generate a code with scope {SCOPE}, and open this same URL with "
        "&zoho_code=<the code> appended within a few minutes. The code is exchanged at "
        f"{token_url(source.accounts_url)}, so the Zoho account must be in that data centre."
    )
    if as_json:
        document = {"source_id": source.id, "purpose": purpose, "webhook_fields": fields}
        return Page(200, "application/json", json.dumps(document | {"connect": connect}))
    items = "".join(
        f"<li>{_e(module)}: {_e(', '.join(names))}</li>" for module, names in fields.items()
    )
    body = (
        f"<p>{_e(purpose)}</p><p>Fields the webhook sends:</p><ul>{items}</ul><p>{_e(connect)}</p>"
    )
    return Page(200, "text/html", _document(f"Source {source.id}", body))


def success_page(source: SourceConfig, exchanged: Exchanged, stored: bool, as_json: bool) -> Page:
    next_step = STORED if stored else NOT_STORED
    if as_json:
        document = {
            "source_id": source.id,
            "refresh_token": exchanged.refresh_token.get_secret_value(),
            "api_domain": exchanged.api_domain,
            "stored": stored,
            "next_step": next_step,
            "warning": USER_LIMIT_WARNING,
        }
        return Page(200, "application/json", json.dumps(document))
    token = _e(exchanged.refresh_token.get_secret_value())
    body = (
        "<p>Zoho issued this refresh token:</p>"
        f'<p><input id="token" readonly size="80" value="{token}"> '
        '<button type="button" onclick="navigator.clipboard.writeText('
        "document.getElementById('token').value)\">Copy</button></p>"
        f"<h2>{'Stored' if stored else 'Not stored'}</h2><p>{_e(next_step)}</p>"
        f"<p><strong>Careful:</strong> {_e(USER_LIMIT_WARNING)}</p>"
    )
    return Page(200, "text/html", _document(f"Zoho connected for source {source.id}", body))


def failure_page(source: SourceConfig, failed: ExchangeFailed, as_json: bool) -> Page:
    if as_json:
        document = {
            "source_id": source.id,
            "error": failed.message,
            "zoho_error": failed.zoho_error,
            "token_url": failed.token_url,
        }
        return Page(failed.status, "application/json", json.dumps(document))
    detail = (
        f"<p>Zoho's error code: <code>{_e(failed.zoho_error)}</code></p>"
        if failed.zoho_error
        else ""
    )
    body = (
        f"<p>{_e(failed.message)}</p>{detail}"
        f"<p>Token URL used: <code>{_e(failed.token_url)}</code></p>"
    )
    return Page(
        failed.status, "text/html", _document(f"Zoho not connected for source {source.id}", body)
    )


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="robots" content="noindex">'
        f"<title>{_e(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
        "input{font-family:monospace}</style>"
        f"</head><body><h1>{_e(title)}</h1>{body}</body></html>"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)
