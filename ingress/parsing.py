"""Turn a webhook request's query string and body into one flat parameter map."""

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from zoho.fields import RECORD_ID_FIELDS, normalise_field_name

# Credentials and one-time codes are never stored with the webhook.
NOT_STORED = frozenset({"api_key", "zoho_code"})


class UnparseableBody(ValueError):
    """The body cannot be read as the content type says; the message says why."""


def parse_body(content_type: str, body: bytes) -> dict[str, str]:
    """Parameters of a JSON or url-encoded body; an empty body has none."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnparseableBody(f"body is not UTF-8: {error.reason} at byte {error.start}") from None
    if content_type == "application/json" or (
        content_type in ("", "text/plain") and text.lstrip().startswith("{")
    ):
        return _parse_json(text)
    if content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        try:
            return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
        except ValueError as error:
            raise UnparseableBody(f"form body is malformed: {error}") from None
    raise UnparseableBody(f"unsupported content type {content_type!r}")


def _parse_json(text: str) -> dict[str, str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UnparseableBody(
            f"JSON body is malformed: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(document, dict):
        raise UnparseableBody(f"JSON body must be an object, not {type(document).__name__}")
    return {str(name): _as_text(value) for name, value in document.items()}


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def merge_parameters(query: Iterable[tuple[str, str]], body: Mapping[str, str]) -> dict[str, str]:
    """Query and body merged, the body winning, without credentials."""
    merged = {name: value for name, value in query} | dict(body)
    return {name: value for name, value in merged.items() if name.lower() not in NOT_STORED}


def record_id(parameters: Mapping[str, str]) -> str:
    """The record's id, for the Kafka key; empty when the webhook has none."""
    by_name = {normalise_field_name(name): value for name, value in parameters.items()}
    for field in RECORD_ID_FIELDS.values():
        if by_name.get(field, "").strip():
            return by_name[field].strip()
    return ""


def is_webhook(parameters: Mapping[str, str]) -> bool:
    """A GET on the source URL is a webhook when it carries a record id field."""
    names = {normalise_field_name(name) for name in parameters}
    return any(field in names for field in RECORD_ID_FIELDS.values())
