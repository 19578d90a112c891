"""The Zoho code exchange at the source URL, without I/O: what to send, what Zoho's
answer means for the operator, and the pages that say so.

Zoho's token endpoint answers errors with HTTP 200 and a body like
{"error": "invalid_code"}, so success is "the body has an access_token", never the status.
"""

import html
import json
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from schemas.source import SourceConfig

SCOPE = "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL"
DATA_CENTRES = (
    "accounts.zoho.com",
    "accounts.zoho.eu",
    "accounts.zoho.in",
    "accounts.zoho.com.au",
    "accounts.zoho.jp",
    "accounts.zoho.com.cn",
    "accounts.zoho.sa",
    "accounts.zohocloud.ca",
)
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
NEXT_STEP = (
    "Put this refresh token into the source's configuration as refresh_token "
    "(for example through an environment variable the sources file names as ${NAME}), "
    "switch on verify or enrich for the source if you want them, and restart the workers. "
    "It is shown only this once and is not stored by this page; if you lose it, generate "
    "a new code."
)
USER_LIMIT_WARNING = (
    "A Zoho user holds at most 20 refresh tokens: creating a 21st silently deletes the "
    "oldest one. Do not generate tokens again and again, or another source or integration "
    "that uses the same Zoho user may stop working."
)


def token_url(accounts_url: str) -> str:
    return f"{accounts_url.rstrip('/')}/oauth/v2/token"


def exchange_form(source: SourceConfig, code: str) -> dict[str, str]:
    """The form body of the code exchange. Secrets go in the body, never the URL."""
    return {
        "grant_type": "authorization_code",
        "client_id": source.client_id,
        "client_secret": source.client_secret.get_secret_value(),
        "code": code,
    }


def missing_client(source: SourceConfig) -> list[str]:
    """The client settings the exchange needs but the source does not have."""
    missing = [] if source.client_id else ["client_id"]
    if not source.client_secret.get_secret_value():
        missing.append("client_secret")
    return missing


@dataclass(frozen=True)
class Exchanged:
    refresh_token: SecretStr
    api_domain: str


@dataclass(frozen=True)
class ExchangeFailed:
    """What went wrong, in words for the operator, with the HTTP status that fits."""

    status: int
    message: str
    token_url: str
    zoho_error: str | None = None


def not_configured(source: SourceConfig) -> ExchangeFailed:
    missing = " and ".join(missing_client(source))
    return ExchangeFailed(
        409,
        f"Source {source.id} has no {missing} yet. Copy them from the Self Client in the "
        "Zoho API console into the source's configuration, restart the ingress, then "
        "generate a new code and open this link again.",
        token_url(source.accounts_url),
    )


def unreachable(url: str, timed_out: bool) -> ExchangeFailed:
    if timed_out:
        return ExchangeFailed(
            504,
            f"Zoho did not answer in time at {url}. The code may still be unused: if it is "
            "less than a few minutes old, open this link again; otherwise generate a new one.",
            url,
        )
    return ExchangeFailed(
        502,
        f"Zoho could not be reached at {url}. Check the source's accounts_url and this "
        "server's network access to Zoho, then try again with a new code.",
        url,
    )


def interpret_exchange(status: int, body: bytes, url: str) -> Exchanged | ExchangeFailed:
    """Zoho's answer to the code exchange: the refresh token, or why there is none."""
    answer = _json_object(body)
    if answer is None:
        return ExchangeFailed(
            502,
            f"Zoho's accounts server at {url} did not give a token answer (HTTP {status}). "
            f"Check that the source's accounts_url is a Zoho accounts URL "
            f"({', '.join(DATA_CENTRES)}).",
            url,
        )
    if isinstance(answer.get("access_token"), str) and answer["access_token"]:
        refresh_token = answer.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return ExchangeFailed(
                502,
                f"Zoho at {url} accepted the code but gave no refresh token. Generate the "
                f"code from a Self Client with scope {SCOPE} and try again.",
                url,
            )
        api_domain = answer.get("api_domain")
        return Exchanged(
            SecretStr(refresh_token), api_domain if isinstance(api_domain, str) else ""
        )
    error = answer.get("error")
    return _refused(str(error) if error is not None else f"HTTP {status} without a token", url)


def _refused(error: str, url: str) -> ExchangeFailed:
    if error == "invalid_code":
        message = (
            "The code has expired or was already used: generate a new one in the Zoho API "
            "console and open this link within a few minutes. (A code is valid for 3 to 10 "
            f"minutes and works once. It was sent to {url}; a code from another data centre "
            "is refused the same way. If this page showed a refresh token a moment ago and was "
            "reloaded, that token is still valid.)"
        )
        return ExchangeFailed(400, message, url, error)
    if error == "invalid_client":
        message = (
            f"Zoho at {url} does not know this client_id. Most often the Self Client lives "
            "in another data centre: set the source's accounts_url to the one of the Zoho "
            f"account ({', '.join(DATA_CENTRES)}), then check the client_id."
        )
        return ExchangeFailed(502, message, url, error)
    if error == "invalid_client_secret":
        message = (
            f"Zoho at {url} refused the client_secret. Copy it again from the Self Client "
            "in the Zoho API console into the source's configuration, restart the ingress, "
            "and use a new code."
        )
        return ExchangeFailed(502, message, url, error)
    if error.casefold() == "access denied":
        message = (
            f"Zoho at {url} is limiting token requests for this client. Wait ten minutes, "
            "then generate a new code and try again."
        )
        return ExchangeFailed(503, message, url, error)
    message = f"Zoho at {url} refused the code exchange with the error {error!r}."
    return ExchangeFailed(502, message, url, error)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


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
    fields = {
        "Leads": ["lead_id", "cdp_id", "lead_status", source.amount_field, "modified_by"],
        "Deals": ["deal_id", "cdp_id", "stage", "amount", "modified_by"],
    }
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


def success_page(
    source: SourceConfig, exchanged: Exchanged, stored_in: str | None, as_json: bool
) -> Page:
    stored = f"It was also written to the secret store at {stored_in}." if stored_in else None
    if as_json:
        document = {
            "source_id": source.id,
            "refresh_token": exchanged.refresh_token.get_secret_value(),
            "api_domain": exchanged.api_domain,
            "next_step": NEXT_STEP,
            "warning": USER_LIMIT_WARNING,
            "stored_in": stored_in,
        }
        return Page(200, "application/json", json.dumps(document))
    token = _e(exchanged.refresh_token.get_secret_value())
    body = (
        "<p>Zoho issued this refresh token:</p>"
        f'<p><input id="token" readonly size="80" value="{token}"> '
        '<button type="button" onclick="navigator.clipboard.writeText('
        "document.getElementById('token').value)\">Copy</button></p>"
        f"<h2>Next step</h2><p>{_e(NEXT_STEP)}</p>"
        + (f"<p>{_e(stored)}</p>" if stored else "")
        + f"<p><strong>Careful:</strong> {_e(USER_LIMIT_WARNING)}</p>"
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
