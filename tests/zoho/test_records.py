from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.zoho.fixture import answer
from zoho.fields import Module
from zoho.listing import list_query, page_of, parse_time, zoho_time
from zoho.records import list_fields, webhook_parameters


def test_a_lead_from_the_api_has_the_webhook_names() -> None:
    [lead, _] = page_of(answer("leads_page.json")).records
    assert webhook_parameters(
        Module.LEADS, lead, lead_amount_field="annual_revenue", cdp_id_field="CDP_ID"
    ) == {
        "lead_id": "5725767000000438001",
        "cdp_id": "cdp-7f3a9c",
        "lead_status": "Pre-Qualified",
        "annual_revenue": "1250000.50",
        "modified_by": "Priya Raman",
        "modified_time": "2024-05-01T11:30:00+02:00",
        "email": "priya.customer@example.com",
        "phone": "+1 650 253 0000",
        "first_name": "Dana",
        "last_name": "Whitfield",
        "city": "Mountain View",
        "state": "CA",
        "zip_code": "94043",
        "country": "United States",
        "title": "CTO",
    }


def test_empty_fields_are_left_out_but_an_empty_amount_is_sent_blank() -> None:
    [_, walk_in] = page_of(answer("leads_page.json")).records
    parameters = webhook_parameters(
        Module.LEADS, walk_in, lead_amount_field="annual_revenue", cdp_id_field="CDP_ID"
    )
    assert "cdp_id" not in parameters and "first_name" not in parameters
    assert parameters["annual_revenue"] == ""
    assert parameters["last_name"] == "Okafor"


def test_a_deal_from_the_api() -> None:
    [deal] = page_of(answer("deals_page.json")).records
    assert webhook_parameters(
        Module.DEALS, deal, lead_amount_field="annual_revenue", cdp_id_field="CDP_ID"
    ) == {
        "deal_id": "5725767000000512007",
        "cdp_id": "cdp-7f3a9c",
        "stage": "Closed Won",
        "amount": "48000",
        "modified_by": "Priya Raman",
        "modified_time": "2024-05-03T08:05:44-07:00",
    }


def test_the_cdp_id_and_amount_fields_follow_the_source() -> None:
    record = {"id": "1", "Lead_Status": "New", "Expected_Value": 10, "cdp_ref__c": "x-1"}
    parameters = webhook_parameters(
        Module.LEADS, record, lead_amount_field="expected_value", cdp_id_field="CDP_Ref__c"
    )
    assert parameters["cdp_id"] == "x-1" and parameters["expected_value"] == "10"
    assert list_fields(Module.LEADS, "expected_value", "CDP_Ref__c")[:3] == (
        "Lead_Status",
        "Expected_Value",
        "CDP_Ref__c",
    )


def test_modified_by_falls_back_to_email_then_id() -> None:
    def by(user: object) -> str | None:
        return webhook_parameters(
            Module.DEALS,
            {"id": "1", "Modified_By": user},
            lead_amount_field="annual_revenue",
            cdp_id_field="CDP_ID",
        ).get("modified_by")

    assert by({"name": "", "email": "a@example.com", "id": "7"}) == "a@example.com"
    assert by({"id": "7"}) == "7"
    assert by(None) is None


def test_the_fields_asked_for_stay_within_zohos_50() -> None:
    fields = list_fields(Module.LEADS, "annual_revenue", "CDP_ID")
    assert len(fields) == len(set(fields)) <= 50
    assert {"Lead_Status", "Annual_Revenue", "CDP_ID", "Modified_By", "Modified_Time"} <= set(
        fields
    )
    assert list_fields(Module.DEALS, "annual_revenue", "CDP_ID") == (
        "Stage",
        "Amount",
        "CDP_ID",
        "Modified_By",
        "Modified_Time",
    )


def test_a_page_says_whether_another_follows() -> None:
    assert page_of(answer("leads_page.json")).next_page_token == (
        "c8582e7f1c0ad5bb9e6d9f55b0b2c7e70a5e4c4ab3a5e2f2d1f2"
    )
    assert page_of(answer("deals_page.json")).next_page_token is None
    # A token without more_records is not followed.
    assert page_of({"data": [], "info": {"next_page_token": "t"}}).next_page_token is None
    assert page_of({}).records == ()


def test_the_list_query_asks_oldest_change_first_and_includes_converted_leads() -> None:
    query = list_query(Module.LEADS, ("Lead_Status", "CDP_ID"), None)
    assert query == {
        "fields": "Lead_Status,CDP_ID",
        "sort_by": "Modified_Time",
        "sort_order": "asc",
        "per_page": "200",
        "converted": "both",
    }
    deals = list_query(Module.DEALS, ("Stage",), "tok")
    assert "converted" not in deals and deals["page_token"] == "tok" and "page" not in deals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T11:30:00+02:00", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("2024-05-01T09:30:00Z", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("2024-05-01 09:30:00", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_zoho_times(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_times_go_to_zoho_with_their_offset() -> None:
    assert zoho_time(datetime(2024, 5, 1, 9, 30, 5, 123, tzinfo=UTC)) == "2024-05-01T09:30:05+00:00"
    ist = timezone(timedelta(hours=5, minutes=30))
    assert zoho_time(datetime(2024, 5, 1, 15, 0, tzinfo=ist)) == "2024-05-01T15:00:00+05:30"
