"""The Zoho flow through the real processes: the code exchange at the ingress's source
URL, and the worker's `verify` rejecting a forged webhook, against a local Zoho stand-in."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness.pipeline import Pipeline, ingress_ready, running_pipeline, wait_for
from tests.zoho_stand_in import StandInThread, ZohoStandIn

pytestmark = pytest.mark.integration

KEY = "verified-api-key-0123456789"
GENUINE, FORGED, MISSING = "5725767000000500001", "5725767000000500002", "5725767000000599999"
DURING_OUTAGE = "5725767000000500003"
BEFORE_NEW_TOKEN, AFTER_NEW_TOKEN = "5725767000000500004", "5725767000000500005"


@pytest.fixture(scope="module")
def zoho() -> Iterator[ZohoStandIn]:
    stand_in = ZohoStandIn(
        records={
            ("Leads", GENUINE): {"Lead_Status": "Pre-Qualified", "Annual_Revenue": 1000},
            # A real record that never reached Pre-Qualified.
            ("Leads", FORGED): {"Lead_Status": "Contacted", "Annual_Revenue": 1000},
            ("Leads", DURING_OUTAGE): {"Lead_Status": "Pre-Qualified"},
            ("Leads", BEFORE_NEW_TOKEN): {"Lead_Status": "Pre-Qualified"},
            ("Leads", AFTER_NEW_TOKEN): {"Lead_Status": "Pre-Qualified"},
        }
    )
    thread = StandInThread(stand_in)
    thread.start()
    yield stand_in
    thread.stop()


@pytest.fixture(scope="module")
def zoho_pipeline(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, zoho: ZohoStandIn
) -> Iterator[Pipeline]:
    workdir: Path = tmp_path_factory.mktemp("zoho-flow")
    sources_yaml = f"""
sources:
  - id: verified
    api_key: {KEY}
    exchange_rate: "1"
    currency: USD
    client_id: "{zoho.client_id}"
    client_secret: ${{ZOHO_CLIENT_SECRET}}
    refresh_token: ${{ZOHO_REFRESH_TOKEN}}
    accounts_url: {zoho.base_url}
    verify: true
"""
    secrets = {
        "ZOHO_CLIENT_SECRET": zoho.client_secret,
        "ZOHO_REFRESH_TOKEN": zoho.new_refresh_token(),
        "ZOHO_MAX_ATTEMPTS": "2",
        "ZOHO_MAX_BACKOFF_S": "1",
    }
    with running_pipeline(kafka_bootstrap, workdir, sources_yaml, secrets) as running:
        yield running
        for process in running.processes.values():
            print(f"--- {process.name} log tail ---\n{process.log_tail()}")  # noqa: T201


def assert_no_secret_logged(pipeline: Pipeline, zoho: ZohoStandIn, *more: str) -> None:
    for process in pipeline.processes.values():
        text = process.log_path.read_text(errors="replace")
        for secret in [*zoho.all_secrets(), *more]:
            assert secret not in text, f"a secret is in the {process.name} log"


async def open_source_url(
    pipeline: Pipeline, params: dict[str, str], accept: str = "text/html"
) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            pipeline.source_url("verified"), params=params, headers={"Accept": accept}
        ) as response:
            return response.status, await response.text()


async def test_the_source_url_exchanges_a_code_for_a_refresh_token(
    zoho_pipeline: Pipeline, zoho: ZohoStandIn
) -> None:
    pipeline = zoho_pipeline
    await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
    issued_before = set(zoho.refresh_tokens)
    code = zoho.new_code()

    status, page = await open_source_url(pipeline, {"api_key": KEY, "zoho_code": code})
    assert status == 200
    [refresh_token] = zoho.refresh_tokens - issued_before
    assert f'value="{refresh_token}"' in page
    assert "at most 20 refresh tokens" in page

    status, page = await open_source_url(pipeline, {"api_key": KEY, "zoho_code": code})
    assert status == 400
    assert "the code has expired or was already used" in page.lower()
    assert f"{zoho.base_url}/oauth/v2/token" in page

    status, _ = await open_source_url(pipeline, {"api_key": "wrong", "zoho_code": code})
    assert status == 401
    status, page = await open_source_url(pipeline, {"api_key": KEY})
    assert status == 200 and "webhook URL of source verified" in page

    assert_no_secret_logged(pipeline, zoho, code, KEY)


def lead(lead_id: str, cdp_id: str) -> dict[str, str]:
    return {
        "lead_id": lead_id,
        "cdp_id": cdp_id,
        "lead_status": "Pre-Qualified",
        "annual_revenue": "1000",
        "modified_by": "jane@example.com",
    }


async def test_verify_rejects_a_forged_webhook_and_passes_a_genuine_one(
    zoho_pipeline: Pipeline, zoho: ZohoStandIn
) -> None:
    pipeline = zoho_pipeline
    await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
    genuine, forged, missing = (f"cdp-{uuid.uuid4().hex[:10]}" for _ in range(3))
    for fields in (lead(FORGED, forged), lead(MISSING, missing), lead(GENUINE, genuine)):
        code, _ = await pipeline.post("verified", KEY, fields)
        assert code == 202

    async def delivered() -> list[dict[str, Any]]:
        return pipeline.cdp.events_for(genuine)

    # Faust's first start-up is slow: this deadline covers joining the group.
    [event] = await wait_for(delivered, 180, "the genuine conversion at the CDP")
    assert event["record_id"] == GENUINE and event["event_name"] == "ConvertedLead"

    async def parked() -> dict[str, list[str]] | None:
        by_lead = {
            record["envelope"]["parameters"]["lead_id"]: record["reasons"]
            for record in await pipeline.read_topic("zoho.webhooks.invalid")
            if record["envelope"]
        }
        return by_lead if {FORGED, MISSING} <= set(by_lead) else None

    reasons = await wait_for(parked, 60, "the forged webhooks in zoho.webhooks.invalid")
    assert reasons[FORGED] == [
        f"Zoho CRM record Leads/{FORGED} has Lead_Status 'Contacted', "
        "the webhook says 'Pre-Qualified'"
    ]
    assert reasons[MISSING] == [f"Zoho CRM record Leads/{MISSING} does not exist"]
    assert pipeline.cdp.events_for(forged) == [] and pipeline.cdp.events_for(missing) == []
    # One access token served every lookup of the worker.
    assert zoho.refreshes() == 1
    for record_id in (GENUINE, FORGED, MISSING):
        assert zoho.crm_requests.count(f"Leads/{record_id}") == 1
    assert_no_secret_logged(pipeline, zoho, KEY)


async def test_a_crm_outage_parks_the_webhook_for_replay_and_the_stream_goes_on(
    zoho_pipeline: Pipeline, zoho: ZohoStandIn
) -> None:
    pipeline = zoho_pipeline
    await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
    cdp_id = f"cdp-{uuid.uuid4().hex[:10]}"
    zoho.crm_failures = [503] * 2  # as many as the worker's ZOHO_MAX_ATTEMPTS
    code, first = await pipeline.post("verified", KEY, lead(DURING_OUTAGE, cdp_id))
    assert code == 202

    async def parked() -> list[list[str]]:
        return [
            record["reasons"]
            for record in await pipeline.read_topic("zoho.webhooks.invalid")
            if record["envelope"] and record["envelope"]["envelope_id"] == first["envelope_id"]
        ]

    [reasons] = await wait_for(parked, 180, "the webhook parked during the outage")
    [reason] = reasons
    assert "Zoho CRM unavailable after 2 tries (HTTP 503 INTERNAL_ERROR)" in reason
    assert "zoho-cdp-replay --only-invalid" in reason

    # Zoho answers again: the same record's next webhook converts.
    code, _ = await pipeline.post("verified", KEY, lead(DURING_OUTAGE, cdp_id))
    assert code == 202
    await wait_for(
        lambda: _now(pipeline.cdp.events_for(cdp_id)), 60, "the conversion after the outage"
    )


async def test_the_refresh_token_the_set_up_page_stores_is_used_by_the_running_worker(
    zoho_pipeline: Pipeline, zoho: ZohoStandIn
) -> None:
    pipeline = zoho_pipeline
    await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
    # The worker's client for the source holds the old refresh token and an access token.
    before = f"cdp-{uuid.uuid4().hex[:10]}"
    code, _ = await pipeline.post("verified", KEY, lead(BEFORE_NEW_TOKEN, before))
    assert code == 202
    await wait_for(lambda: _now(pipeline.cdp.events_for(before)), 180, "a verified conversion")
    # Every refresh token so far is revoked, and the worker's access token has expired:
    # without the new token the worker cannot verify anything.
    zoho.refresh_tokens.clear()
    zoho.expire_access_tokens()
    status, page = await open_source_url(pipeline, {"api_key": KEY, "zoho_code": zoho.new_code()})
    assert status == 200 and "stored in the source" in page
    [new_token] = zoho.refresh_tokens

    cdp_id = f"cdp-{uuid.uuid4().hex[:10]}"
    code, _ = await pipeline.post("verified", KEY, lead(AFTER_NEW_TOKEN, cdp_id))
    assert code == 202
    [event] = await wait_for(
        lambda: _now(pipeline.cdp.events_for(cdp_id)), 60, "the conversion with the new token"
    )
    assert event["record_id"] == AFTER_NEW_TOKEN
    raw = await pipeline.read_topic_bytes("cdp.sources")
    assert b"verified" in raw and new_token.encode() not in raw
    assert_no_secret_logged(pipeline, zoho, KEY)


async def _now(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return value
