import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from schemas.conversion import ConversionEvent, UserData
from schemas.records import RecordChange
from schemas.source import SourceConfig
from streams.decisions.event import build_conversion, event_id
from streams.decisions.identity import sha256_hex
from tests.builders import RECEIVED_AT, record_change
from zoho.fields import Module


def source(**overrides: Any) -> SourceConfig:
    return SourceConfig.model_validate(
        {"id": "acme", "api_key": "k" * 32, "exchange_rate": "1", "currency": "USD"} | overrides
    )


def change(**overrides: Any) -> RecordChange:
    return record_change(**overrides)


BASE_ID = ("acme", Module.LEADS, "5725767000000438001", "ConvertedLead")


def test_event_id_is_deterministic() -> None:
    assert event_id(*BASE_ID) == event_id(*BASE_ID)


def test_event_id_is_a_uuid() -> None:
    parsed = uuid.UUID(event_id(*BASE_ID))
    assert str(parsed) == event_id(*BASE_ID)
    assert parsed.version == 8
    assert parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    "other",
    [
        ("acme2", Module.LEADS, "5725767000000438001", "ConvertedLead"),
        ("acme", Module.DEALS, "5725767000000438001", "ConvertedLead"),
        ("acme", Module.LEADS, "5725767000000438002", "ConvertedLead"),
        ("acme", Module.LEADS, "5725767000000438001", "Purchase"),
        # Shifting characters between parts is a different id too.
        ("acm", Module.LEADS, "e5725767000000438001", "ConvertedLead"),
        ("acme", Module.LEADS, "5725767000000438001Converted", "Lead"),
    ],
)
def test_any_difference_is_another_event_id(other: tuple[str, Module, str, str]) -> None:
    assert event_id(*other) != event_id(*BASE_ID)


def test_parts_cannot_run_into_each_other() -> None:
    assert event_id("a\x1fb", Module.LEADS, "c", "d") != event_id("a", Module.LEADS, "b\x1fc", "d")


@pytest.mark.parametrize(
    ("amount", "rate", "currency", "value"),
    [
        ("1234.50", "1", "USD", "1234.50"),
        ("1234.50", "150.5", "JPY", "185792"),
        ("0.125", "1", "USD", "0.13"),
        ("2.5", "1", "JPY", "3"),
        ("1000", "0.30765", "KWD", "307.650"),
        ("1.2345", "1", "KWD", "1.235"),
        ("0", "0.92", "EUR", "0.00"),
    ],
)
def test_value_is_converted_and_rounded_once(
    amount: str, rate: str, currency: str, value: str
) -> None:
    event, _ = build_conversion(
        change(amount=Decimal(amount)),
        source(exchange_rate=rate, currency=currency),
        "ConvertedLead",
        None,
    )
    assert str(event.value) == value
    assert event.original_value == Decimal(amount)
    assert (event.currency, event.exchange_rate) == (currency, Decimal(rate))


def test_no_amount_is_no_value() -> None:
    event, _ = build_conversion(change(amount=None), source(), "ConvertedLead", "Contacted")
    assert (event.value, event.original_value) == (None, None)


def test_the_event() -> None:
    event, unusable = build_conversion(
        change(
            profile={
                "email": "Priya.Customer@Example.com",
                "phone": "(650) 253-0000",
                "mobile": "not a phone",
                "first_name": "Dana",
                "title": "CTO",
            }
        ),
        source(exchange_rate="0.92", currency="EUR", default_country="US", pass_through=["title"]),
        "ConvertedLead",
        "Contacted",
    )
    assert event == ConversionEvent(
        event_id=event_id(*BASE_ID),
        event_name="ConvertedLead",
        event_time=RECEIVED_AT,
        event_time_source="received",
        source_id="acme",
        module=Module.LEADS,
        record_id="5725767000000438001",
        cdp_id="cdp-7f3a9c",
        status="Pre-Qualified",
        previous_status="Contacted",
        value=Decimal("1135.74"),
        original_value=Decimal("1234.50"),
        currency="EUR",
        exchange_rate=Decimal("0.92"),
        modified_by="Priya Raman",
        user_data=UserData(
            em=[sha256_hex("priya.customer@example.com")],
            ph=[sha256_hex("16502530000")],
            ph_e164=[sha256_hex("+16502530000")],
            fn=[sha256_hex("dana")],
        ),
        profile={"title": "CTO"},
    )
    assert unusable == ("mobile",)


def test_event_json_carries_decimal_strings() -> None:
    event, _ = build_conversion(
        change(amount=Decimal("1234.50")),
        source(exchange_rate="150.5", currency="JPY"),
        "ConvertedLead",
        None,
    )
    document = json.loads(event.model_dump_json())
    assert (document["value"], document["original_value"], document["exchange_rate"]) == (
        "185792",
        "1234.50",
        "150.5",
    )
    assert document["schema_version"] == 1
    assert document["module"] == "Leads"
    assert document["event_time"] == "2024-05-01T09:30:00Z"
    assert ConversionEvent.model_validate_json(event.model_dump_json()) == event


def test_event_json_without_a_value() -> None:
    event, _ = build_conversion(change(amount=None), source(), "ConvertedLead", None)
    document = json.loads(event.model_dump_json())
    assert (document["value"], document["original_value"]) == (None, None)


def test_a_change_of_another_source_is_a_wiring_mistake() -> None:
    with pytest.raises(ValueError, match="'acme' converted with 'other'"):
        build_conversion(change(), source(id="other"), "ConvertedLead", None)
