from decimal import Decimal
from typing import Any

import pytest

from schemas.records import RecordChange
from schemas.source import SourceConfig
from streams.decisions.record_check import enriched, mismatches, missing_fields, needs_lookup
from streams.decisions.status import RecordState, event_for_status
from tests.builders import RECEIVED_AT, record_change
from zoho.fields import Module

CREDENTIALS = {"client_id": "1000.C", "client_secret": "cs", "refresh_token": "1000.r"}


def source(**overrides: Any) -> SourceConfig:
    return SourceConfig.model_validate(
        {"id": "acme", "api_key": "k" * 32, "exchange_rate": "1", "currency": "USD"}
        | CREDENTIALS
        | overrides
    )


def change(**overrides: Any) -> RecordChange:
    return record_change(**overrides)


def deal(**overrides: Any) -> RecordChange:
    return change(module=Module.DEALS, status="Closed Won", **overrides)


# A Leads record as GET /crm/v8/Leads/{id} returns it (trimmed).
LEAD = {
    "id": "5725767000000438001",
    "Lead_Status": "Pre-Qualified",
    "Annual_Revenue": 1234.5,
    "CDP_ID": "cdp-7f3a9c",
    "Email": "ann@example.com",
    "Phone": "+1 555 0100",
    "First_Name": "Ann",
    "Last_Name": "Lee",
    "Designation": "CTO",
    "City": None,
    "Owner": {"name": "Priya Raman", "id": "5725767000000321001"},
    "Tag": [],
}
DEAL = {"id": "5725767000000438001", "Stage": "Closed Won", "Amount": 1234.5}
EMPTY = RecordState.empty()


@pytest.mark.parametrize(
    ("the_change", "record", "reasons"),
    [
        (change(), LEAD, []),
        (change(status="pre qualified"), LEAD, []),
        (change(status="PRE_QUALIFIED", amount=Decimal("1234.5")), LEAD, []),
        (change(amount=None), LEAD, []),
        (deal(), DEAL, []),
        (change(), LEAD | {"CDP_ID": None}, []),
        (change(), {"Lead_Status": "Pre-Qualified"}, []),
        (
            change(),
            None,
            ["Zoho CRM record Leads/5725767000000438001 does not exist"],
        ),
        (
            change(),
            LEAD | {"Lead_Status": "Contacted"},
            [
                "Zoho CRM record Leads/5725767000000438001 has Lead_Status 'Contacted', "
                "the webhook says 'Pre-Qualified'"
            ],
        ),
        (
            change(),
            {"id": "1", "Email": "a@b.c"},
            ["Zoho CRM record Leads/5725767000000438001 has no Lead_Status"],
        ),
        (
            change(),
            LEAD | {"Lead_Status": None},
            ["Zoho CRM record Leads/5725767000000438001 has no Lead_Status"],
        ),
        (
            deal(),
            DEAL | {"Stage": "Negotiation"},
            [
                "Zoho CRM record Deals/5725767000000438001 has Stage 'Negotiation', "
                "the webhook says 'Closed Won'"
            ],
        ),
        (
            change(cdp_id="cdp-attacker"),
            LEAD,
            ["Zoho CRM record Leads/5725767000000438001 has a different cdp_id than the webhook"],
        ),
        (
            change(amount=Decimal("999999")),
            LEAD,
            [
                "Zoho CRM record Leads/5725767000000438001 has annual_revenue 1234.5, "
                "the webhook says 999999"
            ],
        ),
        (
            deal(amount=Decimal("1")),
            DEAL,
            ["Zoho CRM record Deals/5725767000000438001 has amount 1234.5, the webhook says 1"],
        ),
        # A replayed webhook is old: status and amount may have moved on since.
        (
            change(replayed=True, amount=Decimal("1")),
            LEAD | {"Lead_Status": "Contacted"},
            [],
        ),
        (
            change(replayed=True),
            None,
            ["Zoho CRM record Leads/5725767000000438001 does not exist"],
        ),
        (
            change(replayed=True, cdp_id="cdp-attacker"),
            LEAD,
            ["Zoho CRM record Leads/5725767000000438001 has a different cdp_id than the webhook"],
        ),
    ],
)
def test_mismatches(
    the_change: RecordChange, record: dict[str, Any] | None, reasons: list[str]
) -> None:
    assert mismatches(the_change, record, source(verify=True)) == reasons


def test_a_custom_amount_field_is_compared_under_its_api_name() -> None:
    record = LEAD | {"Deal_Value": "10.00"}
    assert mismatches(change(amount=Decimal("10")), record, source(amount_field="Deal Value")) == []
    assert mismatches(change(amount=Decimal("11")), record, source(amount_field="deal_value"))


@pytest.mark.parametrize(
    ("the_change", "record", "amount", "profile"),
    [
        (
            change(amount=None),
            LEAD,
            Decimal("1234.5"),
            {
                "email": "ann@example.com",
                "phone": "+1 555 0100",
                "first_name": "Ann",
                "last_name": "Lee",
                "title": "CTO",
            },
        ),
        # What the webhook sent stays as sent.
        (
            change(profile={"email": "x@y.z"}),
            {"Email": "ann@example.com", "Annual_Revenue": 5},
            Decimal("1234.50"),
            {"email": "x@y.z"},
        ),
        # Lookups, lists, blanks, booleans and unreadable amounts are not values.
        (
            change(amount=None),
            {"Annual_Revenue": "n/a", "Email": "  ", "City": True, "State": {"a": 1}},
            None,
            {},
        ),
        (deal(amount=None), DEAL | {"Email": "a@b.c"}, Decimal("1234.5"), {}),
        (change(amount=None), None, None, {}),
    ],
)
def test_enriched(
    the_change: RecordChange,
    record: dict[str, Any] | None,
    amount: Decimal | None,
    profile: dict[str, str],
) -> None:
    result = enriched(the_change, record, source(enrich=True))
    assert result.amount == amount
    assert result.profile == profile
    assert result.model_dump(exclude={"amount", "profile"}) == the_change.model_dump(
        exclude={"amount", "profile"}
    )


def test_nothing_to_fill_is_the_same_change() -> None:
    complete = change()
    assert enriched(complete, {"Lead_Status": "x"}, source(enrich=True)) is complete


def test_missing_fields() -> None:
    assert missing_fields(deal(amount=None), source()) == ["amount"]
    assert missing_fields(deal(), source()) == []
    lead = change(amount=None, profile={"email": "a@b.c"})
    missing = missing_fields(lead, source(amount_field="Deal Value"))
    assert missing[0] == "deal_value" and "email" not in missing and "phone" in missing


EMITTED = RecordState(
    last_status="Pre-Qualified", last_seen_at=RECEIVED_AT, emitted=("ConvertedLead",)
)


@pytest.mark.parametrize(
    ("options", "the_change", "state", "expected"),
    [
        ({}, change(), EMPTY, False),
        ({"verify": True}, change(), EMPTY, True),
        ({"verify": True}, deal(), EMPTY, True),
        # Not a converting status: no conversion to protect, no API credit spent.
        ({"verify": True}, change(status="Contacted"), EMPTY, False),
        # Converted already: this webhook will not emit.
        ({"verify": True}, change(), EMITTED, False),
        ({"enrich": True}, change(), EMPTY, True),  # profile fields missing
        (
            {"enrich": True},
            deal(),
            EMPTY,
            False,
        ),  # a deal with an amount has nothing to fill
        ({"enrich": True}, deal(amount=None), EMPTY, True),
        ({"enrich": True}, change(status="Contacted", amount=None), EMPTY, False),
        # Read from the CRM by the sweep or the backfill: the record itself, already; a
        # status recovered from the timeline is no longer the record's and would fail.
        ({"verify": True}, change(origin="sweep"), EMPTY, False),
        ({"verify": True, "enrich": True}, change(origin="backfill", amount=None), EMPTY, False),
    ],
)
def test_needs_lookup(
    options: dict[str, bool], the_change: RecordChange, state: RecordState, expected: bool
) -> None:
    the_source = source(**options)
    event_name = event_for_status(the_change.module, the_change.status, the_source.status_map)
    assert needs_lookup(the_change, the_source, state, event_name) is expected


@pytest.mark.parametrize("option", ["verify", "enrich"])
def test_verify_and_enrich_need_api_credentials(option: str) -> None:
    with pytest.raises(ValueError, match="need client_secret, refresh_token"):
        SourceConfig.model_validate(
            {"id": "acme", "api_key": "k" * 32, "exchange_rate": "1", "currency": "USD"}
            | {"client_id": "1000.C", option: True}
        )
    assert getattr(source(**{option: True}), option) is True
