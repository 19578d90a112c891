"""The Zoho CRM API: where a record lives, what an answer holds, and the ways a call
fails, each an exception whose message names no secret."""

from typing import Any
from urllib.parse import quote

from zoho.answers import client_refused
from zoho.fields import Module

API_VERSION = "v8"


class ZohoError(Exception):
    """A Zoho call that did not give an answer. Messages never hold a secret."""


class CrmUnavailable(ZohoError):
    """Zoho did not answer usefully within the bounded retries: try again later."""


class CrmRefused(ZohoError):
    """Zoho refused the request for good: asking again gets the same answer."""


class CrmAuthFailed(CrmRefused):
    """Zoho refused the source's credentials: nothing works until they are fixed."""


def record_path(module: Module, record_id: str) -> str:
    return f"/crm/{API_VERSION}/{module.value}/{quote(record_id, safe='')}"


def first_record(document: dict[str, Any], module: Module, record_id: str) -> dict[str, Any]:
    """The record of a single-record answer: `{"data": [{...}]}`."""
    data = document.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    raise CrmRefused(f"Zoho CRM answered {module.value}/{record_id} without a record")


def refresh_refused(error: str, url: str) -> str:
    """Why the accounts server refused to refresh the source's access token."""
    if error == "invalid_code":
        return (
            f"Zoho at {url} refused the refresh token (invalid_code): it was revoked, deleted "
            "as its user's oldest of 20, or is from another data centre; get a new one at the "
            "source URL with &zoho_code=<code>"
        )
    return client_refused(error, url) or f"Zoho at {url} refused the token refresh ({error})"
