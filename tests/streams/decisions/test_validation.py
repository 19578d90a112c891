from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas.envelope import RawEnvelope
from schemas.records import RecordChange
from schemas.source import SourceConfig
from streams.decisions.validation import InvalidWebhook, validate
from zoho.fields import Module

RECEIVED_AT = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)

# As a Zoho workflow webhook sends a lead: labels for some parameters, API names for others.
ZOHO_LEAD = {
    "Lead Id": "5725767000000438001",
    "cdp_id": "cdp-7f3a9c",
    "Lead Status": "Pre-Qualified",
    "Annual Revenue": "1,250,000.00",
    "Modified By": "Priya Raman",
    "Email": "priya.customer@example.com",
    "Phone": "+1 650 253 0000",
    "Mobile": "",
    "First Name": "Dana",
    "Last Name": "Whitfield",
    "City": "Mountain View",
    "Zip Code": "94043",
    "Country": "United States",
    "Lead Source": "Trade Show",
    "Description": "Met at the booth",
}
ZOHO_DEAL = {
    "deal_id": "5725767000000512007",
    "cdp_id": "cdp-7f3a9c",
    "stage": "Closed Won",
    "amount": "$48,000",
    "modified_by": "Priya Raman",
    "email": "priya.customer@example.com",
    "closing_date": "2024-05-01",
}


def source(**overrides: Any) -> SourceConfig:
    return SourceConfig.model_validate(
        {"id": "acme", "api_key": "k" * 32, "exchange_rate": "0.92", "currency": "EUR"} | overrides
    )


def envelope(parameters: dict[str, str]) -> RawEnvelope:
    return RawEnvelope(
        envelope_id="env-1",
        source_id="acme",
        received_at=RECEIVED_AT,
        parameters=parameters,
    )


def reasons_for(parameters: dict[str, str], **source_overrides: Any) -> list[str]:
    with pytest.raises(InvalidWebhook) as raised:
        validate(envelope(parameters), source(**source_overrides))
    return raised.value.reasons


def test_a_zoho_lead() -> None:
    assert validate(envelope(ZOHO_LEAD), source()) == RecordChange(
        source_id="acme",
        module=Module.LEADS,
        record_id="5725767000000438001",
        cdp_id="cdp-7f3a9c",
        status="Pre-Qualified",
        amount=Decimal("1250000.00"),
        modified_by="Priya Raman",
        profile={
            "email": "priya.customer@example.com",
            "phone": "+1 650 253 0000",
            "first_name": "Dana",
            "last_name": "Whitfield",
            "city": "Mountain View",
            "zip_code": "94043",
            "country": "United States",
        },
        envelope_id="env-1",
        received_at=RECEIVED_AT,
    )


def test_a_zoho_deal() -> None:
    assert validate(envelope(ZOHO_DEAL), source()) == RecordChange(
        source_id="acme",
        module=Module.DEALS,
        record_id="5725767000000512007",
        cdp_id="cdp-7f3a9c",
        status="Closed Won",
        amount=Decimal("48000"),
        modified_by="Priya Raman",
        profile={"email": "priya.customer@example.com"},
        envelope_id="env-1",
        received_at=RECEIVED_AT,
    )


def test_values_are_trimmed() -> None:
    change = validate(
        envelope(
            {
                "lead_id": " 1 ",
                "cdp_id": "\tcdp-1 ",
                "lead_status": " Contacted ",
                "annual_revenue": " 10 ",
                "modified_by": " Priya ",
                "email": " a@example.com ",
            }
        ),
        source(),
    )
    assert (change.record_id, change.cdp_id, change.status, change.modified_by) == (
        "1",
        "cdp-1",
        "Contacted",
        "Priya",
    )
    assert change.amount == Decimal("10")
    assert change.profile == {"email": "a@example.com"}


LEAD = {
    "lead_id": "1",
    "cdp_id": "cdp-1",
    "lead_status": "Contacted",
    "annual_revenue": "10",
    "modified_by": "Priya",
}
DEAL = {
    "deal_id": "2",
    "cdp_id": "cdp-1",
    "stage": "Closed Won",
    "amount": "10",
    "modified_by": "Priya",
}


def without(parameters: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in parameters.items() if key != name}


@pytest.mark.parametrize(
    ("parameters", "reasons"),
    [
        (without(LEAD, "lead_id"), ["missing field 'lead_id'"]),
        (without(LEAD, "cdp_id"), ["missing field 'cdp_id'"]),
        (without(LEAD, "lead_status"), ["missing field 'lead_status'"]),
        (without(LEAD, "modified_by"), ["missing field 'modified_by'"]),
        (without(LEAD, "annual_revenue"), ["missing field 'annual_revenue'"]),
        (without(DEAL, "cdp_id"), ["missing field 'cdp_id'"]),
        (without(DEAL, "stage"), ["missing field 'stage'"]),
        (without(DEAL, "modified_by"), ["missing field 'modified_by'"]),
        (without(DEAL, "amount"), ["missing field 'amount'"]),
        # Without deal_id it reads as a lead.
        (
            without(DEAL, "deal_id"),
            [
                "missing field 'lead_id'",
                "missing field 'lead_status'",
                "missing field 'annual_revenue'",
            ],
        ),
        (LEAD | {"cdp_id": ""}, ["field 'cdp_id' is empty"]),
        (LEAD | {"cdp_id": "   "}, ["field 'cdp_id' is empty"]),
        (LEAD | {"lead_id": ""}, ["field 'lead_id' is empty"]),
        (LEAD | {"lead_status": " "}, ["field 'lead_status' is empty"]),
        (LEAD | {"modified_by": ""}, ["field 'modified_by' is empty"]),
        (DEAL | {"deal_id": ""}, ["field 'deal_id' is empty"]),
        (DEAL | {"stage": ""}, ["field 'stage' is empty"]),
        (LEAD | {"annual_revenue": "abc"}, ["field 'annual_revenue' is not a number: 'abc'"]),
        (
            LEAD | {"annual_revenue": "-5"},
            ["field 'annual_revenue' is negative: '-5' (a conversion value is never negative)"],
        ),
        (
            DEAL | {"amount": "1e5"},
            ["field 'amount' is not a number: '1e5' (exponent notation is not accepted)"],
        ),
        (
            LEAD | {"Lead Status": "Pre-Qualified"},
            ["field 'lead_status' is sent twice with different values"],
        ),
        (
            {"Lead Status": ""},
            [
                "missing field 'lead_id'",
                "missing field 'cdp_id'",
                "field 'lead_status' is empty",
                "missing field 'modified_by'",
                "missing field 'annual_revenue'",
            ],
        ),
        (
            {"lead_id": " ", "cdp_id": "", "annual_revenue": "1.2.3"},
            [
                "field 'lead_id' is empty",
                "field 'cdp_id' is empty",
                "missing field 'lead_status'",
                "missing field 'modified_by'",
                "field 'annual_revenue' is not a number: '1.2.3' (more than one decimal point)",
            ],
        ),
    ],
)
def test_invalid(parameters: dict[str, str], reasons: list[str]) -> None:
    assert reasons_for(parameters) == reasons


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1,234.50", Decimal("1234.50")),
        (" 99 ", Decimal("99")),
        ("$1,000.00", Decimal("1000.00")),
        ("€ 12", Decimal("12")),
        ("USD 5", Decimal("5")),
        ("0", Decimal("0")),
        # Present but blank: a conversion without a value.
        ("", None),
        ("  ", None),
    ],
)
def test_amounts(text: str, amount: Decimal | None) -> None:
    assert validate(envelope(LEAD | {"annual_revenue": text}), source()).amount == amount


@pytest.mark.parametrize(
    ("amount_field", "parameters", "amount"),
    [
        ("expected_revenue", without(LEAD, "annual_revenue") | {"expected_revenue": "7"}, "7"),
        ("Expected Revenue", without(LEAD, "annual_revenue") | {"Expected Revenue": "7"}, "7"),
        ("expected_revenue", LEAD | {"Expected Revenue": "7"}, "7"),
    ],
)
def test_a_custom_amount_field(amount_field: str, parameters: dict[str, str], amount: str) -> None:
    change = validate(envelope(parameters), source(amount_field=amount_field))
    assert change.amount == Decimal(amount)


def test_a_custom_amount_field_is_required() -> None:
    assert reasons_for(LEAD, amount_field="expected_revenue") == [
        "missing field 'expected_revenue'"
    ]


def test_deals_always_read_amount() -> None:
    change = validate(envelope(DEAL), source(amount_field="expected_revenue"))
    assert change.amount == Decimal("10")


def test_lead_id_wins_over_deal_id() -> None:
    change = validate(envelope(LEAD | {"deal_id": "2"}), source())
    assert (change.module, change.record_id) == (Module.LEADS, "1")


def test_the_same_value_under_two_spellings_is_fine() -> None:
    change = validate(envelope(LEAD | {"Lead Status": " Contacted"}), source())
    assert change.status == "Contacted"


def test_reasons_are_the_message_too() -> None:
    error = InvalidWebhook(["missing field 'cdp_id'", "field 'lead_id' is empty"])
    assert str(error) == "missing field 'cdp_id'; field 'lead_id' is empty"


def test_an_invalid_webhook_has_a_reason() -> None:
    with pytest.raises(ValueError):
        InvalidWebhook([])


def test_an_envelope_of_another_source_is_a_wiring_mistake() -> None:
    with pytest.raises(ValueError, match="'acme' checked against 'other'"):
        validate(envelope(LEAD), source(id="other"))


def test_a_replayed_envelope_is_marked_replayed() -> None:
    replayed = envelope(ZOHO_LEAD).model_copy(update={"replayed_at": RECEIVED_AT})
    assert validate(replayed, source()).replayed is True
    assert validate(envelope(ZOHO_LEAD), source()).replayed is False
