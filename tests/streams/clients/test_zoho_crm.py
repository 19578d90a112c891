"""The per-source Zoho client against a real local server in Zoho's shapes."""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from schemas.logs import JsonFormatter
from schemas.records import RecordChange
from schemas.settings import Settings
from schemas.source import SourceConfig
from streams.clients.zoho_crm import ZohoClients, ZohoCrmClient
from streams.decisions.process import checked
from streams.decisions.status import RecordState, event_for_status
from streams.decisions.validation import InvalidWebhook
from tests.zoho_stand_in import ZohoStandIn, serving
from zoho.crm_api import CrmAuthFailed, CrmUnavailable
from zoho.fields import Module

LEAD_ID = "5725767000000438001"
LEAD = {"Lead_Status": "Pre-Qualified", "Annual_Revenue": 1200, "Email": "ann@example.com"}


class FakeTime:
    """A clock the tests move, and a sleep that moves it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def caught(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
async def zoho(caught: pytest.LogCaptureFixture) -> AsyncIterator[ZohoStandIn]:
    stand_in = ZohoStandIn(records={("Leads", LEAD_ID): dict(LEAD)})
    async with serving(stand_in):
        yield stand_in
    # Whatever a test did, no secret reached a log line or its extra fields.
    formatter = JsonFormatter()
    records = caught.get_records("setup") + caught.get_records("call") + caught.records
    logged = "\n".join(formatter.format(record) for record in records)
    # Not vacuous: the stand-in's access log records every request.
    assert records or not (stand_in.token_requests or stand_in.crm_requests)
    for secret in stand_in.all_secrets():
        assert secret not in logged
    assert stand_in.secrets_in_query == []


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def source_for(zoho: ZohoStandIn, **fields: Any) -> SourceConfig:
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
            "verify": True,
        }
        | fields
    )


def client_for(
    session: aiohttp.ClientSession,
    zoho: ZohoStandIn,
    fake_time: FakeTime,
    max_attempts: int = 4,
    **fields: Any,
) -> ZohoCrmClient:
    return ZohoCrmClient(
        session,
        source_for(zoho, **fields),
        timeout_s=2,
        max_attempts=max_attempts,
        max_backoff_s=60,
        clock=fake_time,
        sleep=fake_time.sleep,
        jitter=lambda: 1.0,
    )


def assert_no_secret(zoho: ZohoStandIn, *texts: object) -> None:
    for text in texts:
        for secret in zoho.all_secrets():
            assert secret not in str(text) and secret not in repr(text)


async def test_a_lookup_refreshes_once_and_reuses_the_token(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time)
    for _ in range(10):
        record = await client.get_record(Module.LEADS, LEAD_ID)
        assert record == {"id": LEAD_ID} | LEAD
    assert zoho.refreshes() == 1 and len(zoho.crm_requests) == 10
    assert_no_secret(zoho, client)


async def test_the_api_domain_of_the_token_answer_is_used(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    crm = ZohoStandIn(records={("Deals", "77"): {"Stage": "Closed Won"}})
    crm.access_tokens = zoho.access_tokens  # one Zoho behind two hosts
    async with serving(crm):
        zoho.api_domain = crm.base_url
        client = client_for(session, zoho, fake_time)
        assert await client.get_record(Module.DEALS, "77") == {"id": "77", "Stage": "Closed Won"}
    assert crm.crm_requests == ["Deals/77"] and zoho.crm_requests == []


async def test_a_token_about_to_expire_is_refreshed_once_for_50_lookups(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time)
    await client.get_record(Module.LEADS, LEAD_ID)
    fake_time.now += 3600 - 30  # within the margin before expires_in runs out
    zoho.token_delay_s = 0.1  # the refresh is still in flight while the others ask
    records = await asyncio.gather(*(client.get_record(Module.LEADS, LEAD_ID) for _ in range(50)))
    assert all(record is not None for record in records)
    assert zoho.refreshes() == 2


async def test_a_token_rejected_mid_stream_is_refreshed_once_for_50_lookups(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time)
    await client.get_record(Module.LEADS, LEAD_ID)
    zoho.expire_access_tokens()  # Zoho answers 401 INVALID_TOKEN before expires_in
    zoho.token_delay_s = 0.1
    records = await asyncio.gather(*(client.get_record(Module.LEADS, LEAD_ID) for _ in range(50)))
    assert [record and record["Lead_Status"] for record in records] == ["Pre-Qualified"] * 50
    assert zoho.refreshes() == 2
    # 1 before, 50 rejected, 50 again with the new token.
    assert len(zoho.crm_requests) == 101


async def test_a_rejected_fresh_token_fails_after_one_refresh(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time)
    zoho.accept_tokens = False
    with pytest.raises(CrmAuthFailed, match="freshly refreshed") as caught:
        await client.get_record(Module.LEADS, LEAD_ID)
    assert zoho.refreshes() == 2 and len(zoho.crm_requests) == 2
    assert_no_secret(zoho, caught.value)


@pytest.mark.parametrize("record_id", ["404404", "a/../../Deals/1"])
async def test_a_missing_record_is_none(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime, record_id: str
) -> None:
    client = client_for(session, zoho, fake_time)
    assert await client.get_record(Module.LEADS, record_id) is None
    assert zoho.crm_requests == [f"Leads/{record_id}"]


async def test_rate_limits_and_server_errors_are_retried_with_backoff(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time)
    zoho.crm_failures = [429, 500, 503]
    assert await client.get_record(Module.LEADS, LEAD_ID) is not None
    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert len(zoho.crm_requests) == 4


async def test_a_lasting_crm_outage_gives_up_after_the_bounded_tries(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time, max_attempts=3)
    zoho.crm_failures = [500] * 10
    with pytest.raises(CrmUnavailable, match="after 3 tries") as caught:
        await client.get_record(Module.LEADS, LEAD_ID)
    assert len(zoho.crm_requests) == 3 and len(fake_time.sleeps) == 2
    assert "INTERNAL_ERROR" in str(caught.value)


async def test_a_throttled_refresh_backs_off_and_keeps_later_lookups_waiting(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time, max_attempts=3)
    zoho.throttle_next = 100  # Zoho: HTTP 200 {"error": "Access Denied"}
    with pytest.raises(CrmUnavailable, match="throttled by Zoho"):
        await client.get_record(Module.LEADS, LEAD_ID)
    assert zoho.refreshes() == 3
    assert fake_time.sleeps == [10.0, 20.0]

    zoho.throttle_next = 0
    assert await client.get_record(Module.LEADS, LEAD_ID) is not None
    # The backoff of the last throttled try is waited out before asking again.
    assert fake_time.sleeps == [10.0, 20.0, 40.0]
    assert zoho.refreshes() == 4


async def test_a_throttle_that_lifts_costs_no_lookup(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time)
    zoho.throttle_next = 2
    assert await client.get_record(Module.LEADS, LEAD_ID) is not None
    assert zoho.refreshes() == 3 and fake_time.sleeps == [10.0, 20.0]


async def test_a_revoked_refresh_token_is_refused_without_retrying(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time, refresh_token="1000.revoked")
    with pytest.raises(CrmAuthFailed, match="invalid_code") as caught:
        await client.get_record(Module.LEADS, LEAD_ID)
    assert zoho.refreshes() == 1 and fake_time.sleeps == []
    assert "1000.revoked" not in str(caught.value)


async def test_a_wrong_client_secret_is_refused(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time, client_secret="not-the-secret")
    with pytest.raises(CrmAuthFailed, match="invalid_client_secret") as caught:
        await client.get_record(Module.LEADS, LEAD_ID)
    assert "not-the-secret" not in str(caught.value) + repr(caught.value) + repr(client)


async def test_zoho_unreachable_is_unavailable_after_the_bounded_tries(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client = client_for(session, zoho, fake_time, max_attempts=3, accounts_url=closed)
    with pytest.raises(CrmUnavailable, match="ClientConnectorError"):
        await client.get_record(Module.LEADS, LEAD_ID)
    assert fake_time.sleeps == [0.5, 1.0]


async def test_close_cancels_a_refresh_in_flight(
    session: aiohttp.ClientSession, zoho: ZohoStandIn, fake_time: FakeTime
) -> None:
    client = client_for(session, zoho, fake_time)
    zoho.token_delay_s = 1
    lookup = asyncio.create_task(client.get_record(Module.LEADS, LEAD_ID))
    while not zoho.token_requests:
        await asyncio.sleep(0.01)
    await client.close()
    with pytest.raises(asyncio.CancelledError):
        await lookup


# --- the record check: the step between validation and tracking -----------------------


async def check_record(
    clients: ZohoClients, change: RecordChange, source: SourceConfig, state: RecordState
) -> RecordChange:
    event_name = event_for_status(change.module, change.status, source.status_map)
    return await checked(change, source, state, event_name, clients.get_record)


def change(**overrides: Any) -> RecordChange:
    return RecordChange.model_validate(
        {
            "source_id": "acme",
            "module": Module.LEADS,
            "record_id": LEAD_ID,
            "cdp_id": "cdp-1",
            "status": "Pre-Qualified",
            "amount": Decimal("1200"),
            "modified_by": "jane@example.com",
            "profile": {},
            "envelope_id": "env-1",
            "received_at": datetime(2024, 5, 1, tzinfo=UTC),
        }
        | overrides
    )


@pytest.fixture
async def clients(
    session: aiohttp.ClientSession, fake_time: FakeTime
) -> AsyncIterator[ZohoClients]:
    settings = Settings(zoho_max_attempts=2, zoho_timeout_s=2)
    async with ZohoClients(session, settings, clock=fake_time, sleep=fake_time.sleep) as clients:
        yield clients


EMPTY = RecordState.empty()


async def test_a_confirmed_webhook_passes(clients: ZohoClients, zoho: ZohoStandIn) -> None:
    the_change = change()
    assert await check_record(clients, the_change, source_for(zoho), EMPTY) is the_change


async def test_a_forged_webhook_is_rejected_by_verify(
    clients: ZohoClients, zoho: ZohoStandIn
) -> None:
    zoho.records[("Leads", LEAD_ID)]["Lead_Status"] = "Contacted"
    with pytest.raises(InvalidWebhook) as caught:
        await check_record(clients, change(), source_for(zoho), EMPTY)
    assert caught.value.reasons == [
        f"Zoho CRM record Leads/{LEAD_ID} has Lead_Status 'Contacted', "
        "the webhook says 'Pre-Qualified'"
    ]


async def test_a_webhook_for_a_record_that_does_not_exist_is_rejected(
    clients: ZohoClients, zoho: ZohoStandIn
) -> None:
    with pytest.raises(InvalidWebhook, match="does not exist"):
        await check_record(clients, change(record_id="1"), source_for(zoho), EMPTY)


async def test_a_crm_outage_parks_the_webhook_for_replay(
    clients: ZohoClients, zoho: ZohoStandIn
) -> None:
    zoho.crm_failures = [503] * 5
    with pytest.raises(InvalidWebhook) as caught:
        await check_record(clients, change(), source_for(zoho), EMPTY)
    [reason] = caught.value.reasons
    assert "unavailable after 2 tries" in reason
    assert "zoho-cdp-replay --only-invalid" in reason


async def test_refused_credentials_say_what_to_fix(clients: ZohoClients, zoho: ZohoStandIn) -> None:
    source = source_for(zoho, refresh_token="1000.revoked")
    with pytest.raises(InvalidWebhook) as caught:
        await check_record(clients, change(), source, EMPTY)
    [reason] = caught.value.reasons
    assert "fix the source's Zoho settings" in reason and "--only-invalid" in reason


async def test_enrich_fills_the_gaps(clients: ZohoClients, zoho: ZohoStandIn) -> None:
    source = source_for(zoho, verify=False, enrich=True)
    result = await check_record(clients, change(amount=None), source, EMPTY)
    assert result.amount == Decimal("1200")
    assert result.profile == {"email": "ann@example.com"}


async def test_no_lookup_when_nothing_would_be_emitted(
    clients: ZohoClients, zoho: ZohoStandIn
) -> None:
    the_change = change(status="Contacted")
    assert await check_record(clients, the_change, source_for(zoho), EMPTY) is the_change
    off = source_for(zoho, verify=False)
    assert await check_record(clients, change(), off, EMPTY) == change()
    assert zoho.token_requests == [] and zoho.crm_requests == []


async def test_one_client_per_source(clients: ZohoClients, zoho: ZohoStandIn) -> None:
    source = source_for(zoho)
    assert clients.for_source(source) is clients.for_source(source)
    await check_record(clients, change(), source, EMPTY)
    await check_record(clients, change(), source, EMPTY)
    assert zoho.refreshes() == 1


async def test_a_new_refresh_token_is_used_without_a_restart(
    clients: ZohoClients, zoho: ZohoStandIn
) -> None:
    revoked = source_for(zoho, refresh_token="1000.revoked")
    with pytest.raises(InvalidWebhook, match="fix the source's Zoho settings"):
        await check_record(clients, change(), revoked, EMPTY)
    # The set-up page stored a new token in the source; the worker's registry has it.
    renewed = revoked.model_copy(update={"refresh_token": SecretStr(zoho.new_refresh_token())})
    assert await check_record(clients, change(), renewed, EMPTY) == change()
    assert clients.for_source(renewed) is not clients.for_source(revoked)


async def test_a_change_that_leaves_the_credentials_keeps_the_client_and_its_token(
    clients: ZohoClients, zoho: ZohoStandIn
) -> None:
    source = source_for(zoho)
    await check_record(clients, change(), source, EMPTY)
    repriced = source.model_copy(update={"exchange_rate": Decimal("2")})
    await check_record(clients, change(), repriced, EMPTY)
    assert clients.for_source(repriced) is clients.for_source(source)
    assert zoho.refreshes() == 1
