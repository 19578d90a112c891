"""Whatever a client sends, the webhook parser answers parameters or UnparseableBody, and
what it answers can be stored: never another exception, which would be a 500."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ingress.parsing import (
    MAX_JSON_DEPTH,
    UnparseableBody,
    is_webhook,
    merge_parameters,
    parse_body,
    record_id,
    require_unicode,
)
from schemas.envelope import RawEnvelope

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
        "application/xml",
        "multipart/form-data",
    ]
) | st.text(max_size=30)

# JSON as a hostile client writes it: NaN, infinities, huge and negative-zero numbers,
# lone surrogate escapes, duplicated keys, deep nesting.
NUMBERS = (
    st.sampled_from(
        ["1e309", "-1e309", "NaN", "Infinity", "-Infinity", "-0", "-0.0", "1" * 5000, "0.1e-400"]
    )
    | st.integers().map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
)
STRINGS = st.text().map(lambda text: json.dumps(text)) | st.sampled_from(
    ['"\\ud800"', '"\\udfff\\ud800"', '"a\\u0000b"', '"\\uffff"']
)
SCALARS = NUMBERS | STRINGS | st.sampled_from(["true", "false", "null"])


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(members: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{name}:{value}" for name, value in members) + "}"


JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4).map(_array)
        | st.lists(st.tuples(STRINGS, inner), max_size=4).map(_object)
    ),
    max_leaves=20,
)
JSON_DOCUMENTS = (
    st.lists(
        st.tuples(STRINGS | st.sampled_from(['"lead_id"', '"lead_id"']), JSON_VALUES), max_size=8
    ).map(_object)
    | JSON_VALUES
    | st.integers(1, 3000).map(lambda depth: '{"a":' + "[" * depth + "]" * depth + "}")
)
FORM_BODIES = st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=10).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
) | st.sampled_from(["%ff%fe=%c3", "a=%", "&&&", "=", "a=1&a=2", "%ED%A0%80=1"])


def stored(parameters: dict[str, str]) -> None:
    """What the ingress does next with accepted parameters."""
    envelope = RawEnvelope(
        envelope_id="e",
        source_id="shop",
        received_at=datetime(2024, 1, 1, tzinfo=UTC),
        parameters=require_unicode(merge_parameters([], parameters)),
    )
    RawEnvelope.model_validate_json(envelope.model_dump_json())
    record_id(envelope.parameters)
    is_webhook(envelope.parameters)


def parses_or_refuses(content_type: str, body: bytes) -> dict[str, str] | None:
    try:
        parameters = parse_body(content_type, body)
    except UnparseableBody as error:
        assert str(error)
        return None
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parameters.items())
    try:
        stored(parameters)
    except UnparseableBody:
        pass
    return parameters


@settings(max_examples=300)
@given(CONTENT_TYPES, st.binary(max_size=2000))
@example("application/json", b"\xff\xfe{}")
@example("text/plain", b"\xed\xa0\x80")
def test_any_bytes_parse_or_are_refused_with_a_reason(content_type: str, body: bytes) -> None:
    parses_or_refuses(content_type, body)


@settings(max_examples=500)
@given(st.sampled_from(["application/json", "text/plain", ""]), JSON_DOCUMENTS)
@example("application/json", '{"lead_id": "\\ud800"}')
@example("application/json", '{"annual_revenue": 1e309, "x": NaN}')
def test_any_json_parses_or_is_refused_with_a_reason(content_type: str, document: str) -> None:
    parses_or_refuses(content_type, document.encode("utf-8", "surrogatepass"))


@settings(max_examples=300)
@given(st.sampled_from(["application/x-www-form-urlencoded", "text/plain", ""]), FORM_BODIES)
def test_any_form_parses_or_is_refused_with_a_reason(content_type: str, body: str) -> None:
    parses_or_refuses(content_type, body.encode("utf-8", "surrogatepass"))


@given(st.lists(st.tuples(st.text(), st.text())), st.dictionaries(st.text(), st.text()))
def test_merging_and_reading_ids_never_raise(
    query: list[tuple[str, str]], body: dict[str, str]
) -> None:
    merged = merge_parameters(query, body)
    assert not {name.lower() for name in merged} & {"api_key", "zoho_code"}
    record_id(merged)
    is_webhook(merged)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        # Numbers are kept as written: money is not rounded through a float.
        ('{"annual_revenue": 1000.10}', {"annual_revenue": "1000.10"}),
        ('{"annual_revenue": 1e309}', {"annual_revenue": "1e309"}),
        ('{"annual_revenue": -0}', {"annual_revenue": "-0"}),
        ('{"lead_id": ' + "9" * 5000 + "}", {"lead_id": "9" * 5000}),
        ('{"tags": [1.50, {"b": -0}]}', {"tags": '[1.50,{"b":-0}]'}),
        # A name sent twice keeps its last value.
        ('{"lead_id": "1", "lead_id": "2"}', {"lead_id": "2"}),
    ],
)
def test_json_numbers_and_repeated_names(document: str, expected: dict[str, str]) -> None:
    assert parse_body("application/json", document.encode()) == expected


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('{"annual_revenue": NaN}', "NaN is not a JSON number"),
        ('{"annual_revenue": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + "}", "nests deeper"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests deeper"),
        ("12", "must be an object, not number"),
    ],
)
def test_json_that_is_refused(document: str, reason: str) -> None:
    with pytest.raises(UnparseableBody, match=reason):
        parse_body("application/json", document.encode())


def test_a_lone_surrogate_is_refused_naming_the_parameter() -> None:
    parameters = parse_body("application/json", b'{"lead_id": "\\ud800"}')
    with pytest.raises(UnparseableBody, match="parameter 'lead_id': its value is not valid"):
        require_unicode(parameters)


def test_nesting_up_to_the_limit_is_kept_as_json_text() -> None:
    nested: Any = []
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = [nested]
    parameters = parse_body("application/json", json.dumps({"a": nested}).encode())
    assert json.loads(parameters["a"]) == nested
