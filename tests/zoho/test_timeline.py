from datetime import UTC, date, datetime

from tests.zoho.fixture import answer
from zoho.fields import Module
from zoho.timeline import (
    StatusChange,
    failed_records,
    failures_query,
    status_changes,
    timeline_path,
    timeline_query,
)


def test_status_changes_come_oldest_first_with_their_time_and_author() -> None:
    page = status_changes(answer("timeline.json"), Module.LEADS)
    assert page.changes == (
        StatusChange("Pre-Qualified", datetime(2024, 5, 1, 8, 2, 51, tzinfo=UTC), "Sam Ortiz"),
        StatusChange("Contacted", datetime(2024, 5, 1, 9, 30, tzinfo=UTC), "Priya Raman"),
    )
    assert page.next_page_token == "a3f1d2c4b5e6f7a8b9c0d1e2f3a4b5c6"


def test_a_deal_timeline_reads_the_stage() -> None:
    # The Leads timeline has no Stage changes.
    assert status_changes(answer("timeline.json"), Module.DEALS).changes == ()


def test_unreadable_entries_are_skipped() -> None:
    document = {
        "__timeline": [
            {"audited_time": "not a time", "field_history": []},
            "junk",
            {
                "audited_time": "2024-05-01T10:00:00Z",
                "field_history": [{"api_name": "Lead_Status"}],
            },
        ],
        "info": {"more_records": False, "next_page_token": "x"},
    }
    page = status_changes(document, Module.LEADS)
    assert page.changes == () and page.next_page_token is None


def test_the_failures_name_each_record_of_the_module_once() -> None:
    leads = failed_records(answer("webhook_failures.json"), Module.LEADS)
    assert leads.record_ids == ("5725767000000438001",) and not leads.more
    deals = failed_records(answer("webhook_failures.json"), Module.DEALS)
    assert deals.record_ids == ("5725767000000512007",)


def test_failures_are_asked_for_by_date_a_day_wider_within_90_days() -> None:
    assert failures_query(Module.LEADS, date(2024, 5, 1), date(2024, 5, 2), 1) == {
        "module": "Leads",
        "from": "2024-04-30",
        "to": "2024-05-03",
        "page": "1",
        "per_page": "200",
    }
    query = failures_query(Module.LEADS, date(2023, 1, 1), date(2024, 5, 2), 2)
    assert (query["from"], query["to"]) == ("2024-02-03", "2024-05-03")
    assert query["page"] == "2"


def test_timeline_paging_sends_per_page_only_first() -> None:
    assert timeline_query(None) == {"per_page": "200"}
    assert timeline_query("tok") == {"page_token": "tok"}
    assert timeline_path(Module.DEALS, "5/7") == "/crm/v8/Deals/5%2F7/__timeline"
