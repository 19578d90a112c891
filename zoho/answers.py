"""Reading Zoho's answers: the accounts server's token answers and the CRM API's
documents, with what their error codes mean.

Zoho's token endpoint answers errors with HTTP 200 and a body like
{"error": "invalid_code"}, so success is "the body has an access_token", never the status.
"""

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from zoho.accounts import DATA_CENTRES

# Token answers are a few hundred bytes and record answers a few kilobytes: a body far
# larger than this is not one of Zoho's answers.
MAX_ANSWER_BYTES = 1024 * 1024
# 401 codes of the CRM API that a fresh access token cures.
STALE_TOKEN_CODES = frozenset({"INVALID_TOKEN", "AUTHENTICATION_FAILURE"})


def json_object(body: bytes, *, parse_float: Callable[[str], Any] = float) -> dict[str, Any] | None:
    """The answer as a JSON object, or None when it is not one."""
    try:
        document = json.loads(body, parse_float=parse_float)
    except (UnicodeDecodeError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def exact_json_object(body: bytes) -> dict[str, Any] | None:
    """As `json_object`, with numbers that have a fraction kept exact (amounts)."""
    return json_object(body, parse_float=Decimal)


def access_token(document: Mapping[str, Any]) -> str | None:
    token = document.get("access_token")
    return token if isinstance(token, str) and token else None


def is_throttled(error: object) -> bool:
    """Zoho's accounts server limits token requests per client with this error."""
    return isinstance(error, str) and error.casefold() == "access denied"


def client_refused(error: str, url: str) -> str | None:
    """The sentence for an error about the source's client credentials, or None."""
    if error == "invalid_client":
        return (
            f"Zoho at {url} does not know this client_id (invalid_client). Most often the "
            "Self Client lives in another data centre: set the source's accounts_url to the "
            f"one of the Zoho account ({', '.join(DATA_CENTRES)}), then check the client_id."
        )
    if error == "invalid_client_secret":
        return (
            f"Zoho at {url} refused the client_secret (invalid_client_secret). Copy it again "
            "from the Self Client in the Zoho API console into the source's configuration."
        )
    return None
