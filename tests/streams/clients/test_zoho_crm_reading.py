"""Reading many records, webhook failures and timelines through the Zoho client, against
the stand-in CRM that answers in Zoho's documented shapes."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from schemas.envelope import RawEnvelope
from schemas.source import SourceConfig
from streams.clients.zoho_crm import ZohoCrmClient
from streams.crm_reader import read_modified, recover_from_failures
from streams.decisions.sweep import Budget
from tests.streams.clients.test_zoho_crm import FakeTime
from tests.zoho_stand_in import ZohoStandIn, serving
from zoho.fields import Module

START = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
BEFORE = START - timedelta(minutes=1)
NOW = datetime(2024, 5, 2, 0, 0, tzinfo=UTC)


def lead(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "Lead_Status": "Pre-Qualified" if n % 2 else "Contacted",
        "Annual_Revenue": 1000 + n,
        "CDP_ID": f"cdp-{n}",
        "Modified_By": {"name": "Priya Raman", "id": "5725767000000411001"},
        "Modified_Time": (START + timedelta(seconds=10 * n)).isoformat(),
        "Email": f"lead{n}@example.com",
    } | fields


def record_id(n: int) -> str:
    return f"57257670000{n:08d}"


@pytest.fixture
async def zoho() -> AsyncIterator[ZohoStandIn]:
    stand_in = ZohoStandIn()
    async with serving(stand_in):
        yield stand_in


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def source_for(zoho: ZohoStandIn) -> SourceConfig:
    return SourceConfig.model_validate(
        {
            "id": "acme",
            "api_key": "k" * 32,
            "exchange_rate": "1",
            "currency": "USD",
            "client_id": zoho.client_id,
            "client_secret": zoho.client_secret,
            "refresh_token": zoho.new_refresh_token(),
            "accounts_url": zoho.base_url,
        }
    )


class Reader:
    def __init__(self, session: aiohttp.ClientSession, zoho: ZohoStandIn) -> None:
        self.time = FakeTime()
        self.source = source_for(zoho)
        self.calls: list[str] = []
        self.client = ZohoCrmClient(
            session,
            self.source,
            timeout_s=5,
            max_attempts=4,
            max_backoff_s=60,
            clock=self.time,
            sleep=self.time.sleep,
            jitter=lambda: 0.0,
            count_call=lambda _source, kind: self.calls.append(kind),
        )
        self.sent: list[RawEnvelope] = []

    async def send(self, envelope: RawEnvelope) -> None:
        self.sent.append(envelope)

    async def read(self, since: datetime = BEFORE, budget: int = 100, **options: Any) -> Any:
        return await read_modified(
            self.client,
            self.source,
            Module.LEADS,
            since=since,
            until=options.get("until"),
            origin="sweep",
            budget=Budget(budget),
            send=self.send,
            now=lambda: NOW,
        )


async def test_more_than_2000_records_are_read_by_page_token(
    session: aiohttp.ClientSession, zoho: ZohoStandIn
) -> None:
    zoho.records = {("Leads", record_id(n)): lead(n) for n in range(2450)}
    reader = Reader(session, zoho)
    read = await reader.read()
    assert read.complete and read.records == 2450 == read.envelopes
    assert [e.parameters["lead_id"] for e in reader.sent] == [record_id(n) for n in range(2450)]
    assert read.mark == START + timedelta(seconds=10 * 2449)
    assert len(zoho.list_calls) == 13 and all(c.status == 200 for c in zoho.list_calls)
    first, *rest = zoho.list_calls
    assert "page_token" not in first.query and all("page_token" in c.query for c in rest)
    assert all("page" not in c.query for c in zoho.list_calls)
    assert first.query["sort_by"] == "Modified_Time" and first.query["sort_order"] == "asc"
    assert first.query["converted"] == "both" and first.query["per_page"] == "200"
    assert first.if_modified_since == "2024-04-30T23:59:00+00:00"
    # One access token served every page.
    assert zoho.refreshes() == 1 and len({c.access_token for c in zoho.list_calls}) == 1

    # The control: page numbers stop at 2,000 records, as Zoho's do.
    token = next(iter(zoho.access_tokens))
    async with session.get(
        f"{zoho.base_url}/crm/v8/Leads",
        params={"fields": "Lead_Status", "page": "11", "per_page": "200"},
        headers={"Authorization": f"Zoho-oauthtoken {token}"},
    ) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"


async def test_a_429_in_the_middle_is_retried_after_retry_after(
    session: aiohttp.ClientSession, zoho: ZohoStandIn
) -> None:
    zoho.records = {("Leads", record_id(n)): lead(n) for n in range(500)}
    zoho.throttle_list_calls = {2}
    zoho.retry_after_s = 7
    reader = Reader(session, zoho)
    read = await reader.read()
    assert read.complete and read.records == 500
    assert [c.status for c in zoho.list_calls] == [200, 429, 200, 200]
    # Jitter is 0 here: the only wait is the one Zoho asked for.
    assert reader.time.sleeps == [7.0]
    assert reader.calls == ["list"] * 4


async def test_a_304_is_an_empty_answer(session: aiohttp.ClientSession, zoho: ZohoStandIn) -> None:
    zoho.records = {("Leads", record_id(n)): lead(n) for n in range(3)}
    reader = Reader(session, zoho)
    read = await reader.read(since=START + timedelta(hours=1))
    assert read.complete and read.records == 0 and read.mark is None and reader.sent == []
    assert [c.status for c in zoho.list_calls] == [304]


async def test_records_before_the_window_or_without_a_cdp_id_are_not_sent(
    session: aiohttp.ClientSession, zoho: ZohoStandIn
) -> None:
    zoho.records = {("Leads", record_id(n)): lead(n) for n in range(6)}
    zoho.records[("Leads", record_id(5))]["CDP_ID"] = None
    reader = Reader(session, zoho)
    read = await reader.read(
        since=START + timedelta(seconds=15), until=START + timedelta(seconds=45)
    )
    # Modified after 00:00:15 and before 00:00:45: records 2, 3 and 4.
    assert [e.parameters["lead_id"] for e in reader.sent] == [record_id(n) for n in (2, 3, 4)]
    assert read.records == 3 and read.without_cdp_id == 0
    assert (await reader.read(since=START + timedelta(seconds=45))).without_cdp_id == 1


async def test_a_spent_budget_stops_the_reading_at_a_complete_prefix(
    session: aiohttp.ClientSession, zoho: ZohoStandIn
) -> None:
    zoho.records = {("Leads", record_id(n)): lead(n) for n in range(700)}
    reader = Reader(session, zoho)
    read = await reader.read(budget=2)
    assert not read.complete and read.records == 400 and len(zoho.list_calls) == 2
    assert read.mark == START + timedelta(seconds=10 * 399)


async def test_a_passed_through_status_is_recovered_from_failures_and_timeline(
    session: aiohttp.ClientSession, zoho: ZohoStandIn
) -> None:
    lost = record_id(1)
    zoho.records = {("Leads", lost): lead(1, Lead_Status="Contacted")}
    zoho.add_status_change(
        "Leads", lost, "New", "Pre-Qualified", "2024-05-01T08:00:00+00:00", "Sam"
    )
    zoho.add_status_change(
        "Leads", lost, "Pre-Qualified", "Contacted", "2024-05-01T09:00:00Z", "Ann"
    )
    zoho.add_webhook_failure("Leads", lost, "2024-05-01T08:00:03+00:00")
    zoho.add_webhook_failure("Deals", "99", "2024-05-01T08:00:03+00:00")
    reader = Reader(session, zoho)
    read = await reader.read()
    assert [e.parameters["lead_status"] for e in reader.sent] == ["Contacted"]
    await recover_from_failures(
        reader.client,
        reader.source,
        Module.LEADS,
        since=START,
        until=NOW,
        origin="sweep",
        budget=Budget(10),
        send=reader.send,
        now=lambda: NOW,
        read=read,
    )
    recovered = reader.sent[1:]
    assert [(e.parameters["lead_status"], e.status_changed_at) for e in recovered] == [
        ("Pre-Qualified", datetime(2024, 5, 1, 8, 0, tzinfo=UTC))
    ]
    assert recovered[0].parameters["modified_by"] == "Sam" and read.recovered == 1
    assert zoho.failure_requests[0] | {} == {
        "module": "Leads",
        "from": "2024-04-30",
        "to": "2024-05-03",
        "page": "1",
        "per_page": "200",
    }
    assert zoho.timeline_requests == [f"Leads/{lost}"]
    assert reader.calls == ["list", "failures", "timeline", "record"]
