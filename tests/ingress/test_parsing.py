import pytest

from ingress.parsing import (
    UnparseableBody,
    is_webhook,
    merge_parameters,
    parse_body,
    record_id,
)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (
            "application/json",
            b'{"lead_id": "1", "annual_revenue": 12.5}',
            {"lead_id": "1", "annual_revenue": "12.5"},
        ),
        (
            "application/json",
            b'{"ok": true, "none": null, "tags": ["a"]}',
            {"ok": "true", "none": "", "tags": '["a"]'},
        ),
        (
            "application/x-www-form-urlencoded",
            b"lead_id=1&Lead+Status=Pre-Qualified",
            {"lead_id": "1", "Lead Status": "Pre-Qualified"},
        ),
        ("application/x-www-form-urlencoded", b"annual_revenue=", {"annual_revenue": ""}),
        ("text/plain", b'{"lead_id": "7"}', {"lead_id": "7"}),
        ("", b"lead_id=8", {"lead_id": "8"}),
        ("application/json", b"  ", {}),
    ],
)
def test_bodies_become_flat_string_parameters(
    content_type: str, body: bytes, expected: dict[str, str]
) -> None:
    assert parse_body(content_type, body) == expected


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/json", b'{"lead_id": ', "JSON body is malformed"),
        ("application/json", b"[1, 2]", "JSON body must be an object, not list"),
        ("application/json", b"\xff\xfe", "body is not UTF-8"),
        ("application/xml", b"<lead/>", "unsupported content type 'application/xml'"),
    ],
)
def test_unreadable_bodies_say_why(content_type: str, body: bytes, reason: str) -> None:
    with pytest.raises(UnparseableBody, match=reason):
        parse_body(content_type, body)


def test_body_wins_over_query_and_credentials_are_dropped() -> None:
    merged = merge_parameters(
        [("api_key", "secret"), ("lead_id", "from-query"), ("cdp_id", "c1"), ("zoho_code", "x")],
        {"lead_id": "from-body", "API_KEY": "also-secret"},
    )
    assert merged == {"lead_id": "from-body", "cdp_id": "c1"}


@pytest.mark.parametrize(
    ("parameters", "expected_id", "webhook"),
    [
        ({"lead_id": " 42 "}, "42", True),
        ({"Deal Id": "77"}, "77", True),
        ({"Lead_Id": "5"}, "5", True),
        ({"zoho_code": "1000.abc"}, "", False),
        ({}, "", False),
    ],
)
def test_record_ids_for_keys_and_webhook_detection(
    parameters: dict[str, str], expected_id: str, webhook: bool
) -> None:
    assert record_id(parameters) == expected_id
    assert is_webhook(parameters) is webhook
