"""Turn a webhook request's query string and body into one flat parameter map."""

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from yarl import query_to_pairs

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
        return _parse_form(text)
    raise UnparseableBody(f"unsupported content type {content_type!r}")


def _parse_form(text: str) -> dict[str, str]:
    """A url-encoded form, every field `name=value` (a field without "=" is refused, as
    urllib's strict parsing does). yarl's parser gives urllib's pairs in a fifth of the
    time; it was the ingress's largest single cost after aiohttp's own."""
    for field in text.split("&"):
        if "=" not in field:
            raise UnparseableBody(f"form body is malformed: bad query field: {field!r}")
    return dict(query_to_pairs(text))


# Zoho sends flat objects; a nested value is kept as compact JSON text, to this depth.
MAX_JSON_DEPTH = 32


class _Number(str):
    """A JSON number as written: "1000.10" stays that, 1e309 is not infinity, and an
    integer of any length is not converted (Python refuses over 4300 digits)."""


def _not_json(constant: str) -> None:
    raise UnparseableBody(f"JSON body is malformed: {constant} is not a JSON number")


def _parse_json(text: str) -> dict[str, str]:
    try:
        document = json.loads(
            text, parse_float=_Number, parse_int=_Number, parse_constant=_not_json
        )
    except json.JSONDecodeError as error:
        raise UnparseableBody(
            f"JSON body is malformed: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise UnparseableBody(f"JSON body nests deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(document, dict):
        raise UnparseableBody(f"JSON body must be an object, not {_json_type(document)}")
    if _depth(document) > MAX_JSON_DEPTH:
        raise UnparseableBody(f"JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    # A name sent twice keeps its last value, as JSON parsers commonly do.
    return {str(name): _as_text(value) for name, value in document.items()}


def _json_type(value: Any) -> str:
    return "number" if isinstance(value, _Number) else type(value).__name__


def _depth(document: Any) -> int:
    """Levels of nesting, counted without recursion."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, level = pending.pop()
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            pending += [(child, level + 1) for child in children]
    return deepest


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _compact(value)


def _compact(value: Any) -> str:
    """Compact JSON of a nested value, numbers as they were written."""
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, dict):
        members = (
            f"{json.dumps(name, ensure_ascii=False)}:{_compact(item)}"
            for name, item in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_compact(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def merge_parameters(query: Iterable[tuple[str, str]], body: Mapping[str, str]) -> dict[str, str]:
    """Query and body merged, the body winning, without credentials."""
    merged = {name: value for name, value in query} | dict(body)
    return {name: value for name, value in merged.items() if name.lower() not in NOT_STORED}


def require_unicode(parameters: dict[str, str]) -> dict[str, str]:
    """The parameters, unless one holds a lone surrogate (a JSON "\\ud800" escape, or
    bytes that were not UTF-8): Kafka's JSON and the worker could not carry it."""
    try:
        # One encode for all of them, the common case; the loop below names the culprit.
        "".join(itertools.chain.from_iterable(parameters.items())).encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return parameters
    for name, value in parameters.items():
        for part, text in (("name", name), ("value", value)):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:
                shown = name.encode("utf-8", "backslashreplace").decode("ascii", "replace")
                raise UnparseableBody(
                    f"parameter '{shown}': its {part} is not valid Unicode "
                    f"(a lone surrogate at character {error.start})"
                ) from None
    return parameters


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
