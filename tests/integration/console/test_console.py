"""The console over HTTP against the running pipeline: sign-in, CSRF, the pages filled
from the topics, the test webhook and a replay."""

import json
import re
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from cryptography.fernet import Fernet
from yarl import URL

from harness.pipeline import Pipeline, wait_for
from ingress.console.security import COOKIE_NAME, session_fernet
from tests.integration.console.conftest import ADMIN_TOKEN, SHOP_KEY, ConsoleClient, csrf_of

pytestmark = pytest.mark.integration


def lead(cdp_id: str, status: str = "Pre-Qualified", **fields: str) -> dict[str, str]:
    return {
        "lead_id": fields.pop("lead_id", uuid.uuid4().hex[:12]),
        "cdp_id": cdp_id,
        "lead_status": status,
        "annual_revenue": "100",
        "modified_by": "jane@example.com",
        "email": "jane@example.com",
    } | fields


@pytest.fixture
async def client(console_pipeline: Pipeline) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(console_pipeline)
    yield client
    await client.close()


@pytest.fixture
async def signed_in(client: ConsoleClient) -> ConsoleClient:
    status, page = await client.sign_in()
    assert status == 200 and "Sources" in page
    return client


async def text_appears(client: ConsoleClient, path: str, *needles: str, timeout: float = 90) -> str:
    async def probe() -> str | None:
        _, page = await client.get(path)
        return page if all(needle in page for needle in needles) else None

    return await wait_for(probe, timeout, f"{needles} on {path}")


async def test_nothing_is_reachable_without_signing_in(client: ConsoleClient) -> None:
    for path in (
        "/console/sources",
        "/console/sources/shop",
        "/console/trace?q=x",
        "/console/sources/shop/activity",
        "/console/sources/_health",
    ):
        status, page = await client.get(path, allow_redirects=False)
        assert status == 303, path
        assert "shop" not in page
    status, page = await client.post("/console/sources/shop/test-webhook", {}, "/console/sign-in")
    assert status == 401 and "shop" not in page


async def test_a_wrong_token_gets_nothing(client: ConsoleClient) -> None:
    status, page = await client.sign_in("console-admin-token-wrong-guess")
    assert status == 401
    assert "not the admin token" in page and "shop" not in page
    status, _ = await client.get("/console/sources", allow_redirects=False)
    assert status == 303


async def test_a_form_without_its_csrf_token_is_refused(client: ConsoleClient) -> None:
    status, _ = await client.post("/console/sign-in", {"token": ADMIN_TOKEN})
    assert status == 403
    status, _ = await client.get("/console/sources", allow_redirects=False)
    assert status == 303, "signed in without a CSRF token"
    await client.sign_in()
    status, _ = await client.post(
        "/console/sources", {"id": "no-csrf", "exchange_rate": "1", "currency": "EUR"}
    )
    assert status == 403
    _, page = await client.get("/console/sources")
    assert "no-csrf" not in page


async def test_a_forged_cookie_gets_nothing_and_a_real_one_works(
    console_pipeline: Pipeline,
) -> None:
    def cookie(fernet: Fernet) -> str:
        data = {"created": 2_000_000_000, "session": {"signed_in": True}}
        return fernet.encrypt(json.dumps(data).encode()).decode()

    async def status_with(value: str) -> int:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            session.cookie_jar.update_cookies({COOKIE_NAME: value}, console_pipeline_url)
            async with session.get(
                f"{console_pipeline.base_url}/console/sources", allow_redirects=False
            ) as response:
                return response.status

    console_pipeline_url = URL(console_pipeline.base_url + "/console/")
    assert await status_with(cookie(Fernet(Fernet.generate_key()))) == 303
    assert await status_with("not-even-a-token") == 303
    # Control: the same cookie under the key the console derives from the token is let in.
    assert await status_with(cookie(session_fernet(ADMIN_TOKEN))) == 200


async def test_pages_carry_the_security_headers_and_the_cookie_its_flags(
    client: ConsoleClient,
) -> None:
    async with client.session.get(client.base + "/console/sign-in") as response:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert "Path=/console" in set_cookie
    assert "Secure" not in set_cookie  # plain HTTP here; Secure over TLS


async def test_a_webhook_shows_in_activity_and_trace_with_its_delivery(
    console_pipeline: Pipeline, signed_in: ConsoleClient
) -> None:
    cdp_id = f"cdp-{uuid.uuid4().hex[:10]}"
    fields = lead(cdp_id)
    status, answer = await console_pipeline.post("shop", SHOP_KEY, fields)
    assert status == 202
    activity = "/console/sources/shop/activity"
    page = await text_appears(signed_in, activity, fields["lead_id"], "delivered", timeout=180)
    assert "converted" in page
    page = await text_appears(signed_in, f"/console/trace?q={cdp_id}", "delivered to the CDP")
    steps = re.findall(r'<span class="kind">([a-z-]+)</span>', page)
    assert steps == ["received", "status", "converted", "delivered"]
    assert answer["envelope_id"] in page
    status, _ = await signed_in.get(f"/console/trace?q={answer['envelope_id']}")
    assert status == 200


async def test_a_test_webhook_goes_to_the_cdp_marked_test(
    console_pipeline: Pipeline, signed_in: ConsoleClient
) -> None:
    status, page = await signed_in.post(
        "/console/sources/shop/test-webhook", {}, "/console/sources/shop/actions"
    )
    assert status == 200
    envelope_id = re.search(r"envelope <code>([0-9a-f]+)</code>", page).group(1)  # type: ignore[union-attr]
    trace = await text_appears(signed_in, f"/console/trace?q={envelope_id}", "delivered to the CDP")
    record = re.search(r"record (console-test-[0-9a-f]+)", trace).group(1)  # type: ignore[union-attr]
    [event] = await wait_for(
        lambda: _async(console_pipeline.cdp.events_for(record)), 30, "the test event at the CDP"
    )
    assert event["test"] is True


async def parked(client: ConsoleClient, source_id: str, record_id: str) -> str:
    """Waits until the record is in the source's list of invalid records, not merely
    received: another record's reasons may already be on the page."""

    async def probe() -> str | None:
        _, page = await client.get(f"/console/sources/{source_id}/activity")
        invalid = re.search(r'<table id="invalid">.*?</table>', page, re.S)
        row = invalid and re.search(rf"<tr>(?:(?!</tr>).)*{record_id}.*?</tr>", invalid[0], re.S)
        return row[0] if row else None

    return await wait_for(probe, 90, f"{record_id} among the invalid records")


async def test_an_invalid_record_is_counted_then_replayed(
    console_pipeline: Pipeline, signed_in: ConsoleClient
) -> None:
    fields = lead("", lead_id=f"bad-{uuid.uuid4().hex[:8]}")
    status, _ = await console_pipeline.post("shop", SHOP_KEY, fields)
    assert status == 202
    assert "is empty" in await parked(signed_in, "shop", fields["lead_id"])
    actions = "/console/sources/shop/actions"
    status, page = await signed_in.post(
        "/console/sources/shop/replay", {"what": "invalid"}, actions
    )
    assert status == 200
    count = int(re.search(r'id="replay-count">(\d+)<', page).group(1))  # type: ignore[union-attr]
    assert count >= 1
    status, page = await signed_in.post(
        "/console/sources/shop/replay",
        {
            "what": "invalid",
            "since": "",
            "until": "",
            "confirm": "yes",
            "csrf_token": csrf_of(page),
        },
    )
    assert status == 200
    # Records parked between the count and the replay are replayed too: at least `count`.
    page = await text_appears(signed_in, actions, "Replayed ", timeout=180)
    replayed = int(re.search(r"Replayed (\d+) invalid record", page).group(1))  # type: ignore[union-attr]
    assert replayed >= count
    await text_appears(signed_in, f"/console/trace?q={fields['lead_id']}", "replayed webhook")


async def test_a_time_window_is_counted_before_it_is_replayed(
    console_pipeline: Pipeline, signed_in: ConsoleClient
) -> None:
    assert (await console_pipeline.post("shop", SHOP_KEY, lead("cdp-window")))[0] == 202
    actions = "/console/sources/shop/actions"
    form = {"what": "window", "since": "1h", "until": ""}
    status, page = await signed_in.post("/console/sources/shop/replay", form, actions)
    assert status == 200
    count = int(re.search(r'id="replay-count">(\d+)<', page).group(1))  # type: ignore[union-attr]
    assert count >= 1
    assert "webhooks from" in page
    status, page = await signed_in.post(
        "/console/sources/shop/replay", form | {"since": "yesterday"}, actions
    )
    assert status == 422 and "neither an ISO 8601 time" in page


async def test_a_source_created_in_the_console_takes_webhooks_at_once(
    signed_in: ConsoleClient,
) -> None:
    bad = {"id": "new shop", "exchange_rate": "0", "currency": "EURO"}
    status, page = await signed_in.post("/console/sources", bad, "/console/sources")
    assert status == 422
    for field in ("id", "exchange_rate", "currency"):
        assert f'id="error-{field}"' in page, field
    assert "is not an ISO 4217 currency code" in page
    source_id = f"new-{uuid.uuid4().hex[:6]}"
    good = {"id": source_id, "exchange_rate": "1.1", "currency": "EUR"}
    status, page = await signed_in.post("/console/sources", good, "/console/sources")
    assert status == 200
    url = re.search(r'id="source-url" readonly value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    url = url.replace("&amp;", "&")
    assert f"/sources/{source_id}?api_key=" in url
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=lead("cdp-new")) as response:
            assert response.status == 202
    # Written to the sources topic: the worker follows it and converts at once too.
    await text_appears(
        signed_in, f"/console/sources/{source_id}/activity", "converted", "delivered", timeout=180
    )


async def test_both_processes_count_what_happened(
    console_pipeline: Pipeline, signed_in: ConsoleClient
) -> None:
    ingress_url = f"{console_pipeline.base_url}/metrics"
    worker_url = f"http://127.0.0.1:{console_pipeline.env['WORKER_METRICS_PORT']}/metrics"
    ingress_series = (
        'ingress_requests_total{source="shop",status="202"}',
        "ingress_produce_seconds_count",
    )
    worker_series = (
        'worker_webhooks_total{outcome="converted",source="shop"}',
        'worker_webhooks_total{outcome="invalid",source="shop"}',
        'worker_conversions_by_event_total{event="ConvertedLead",source="shop"}',
        'worker_validation_failures_total{reason="empty_field",source="shop"}',
        'worker_status_changes_total{source="shop"}',
        'worker_cdp_posts_total{outcome="delivered"}',
        'worker_cdp_delivered_total{source="shop"}',
    )
    ingress_before = _values(await _scrape(ingress_url), ingress_series)
    worker_before = _values(await _scrape(worker_url), worker_series)

    cdp_id = f"cdp-{uuid.uuid4().hex[:10]}"
    assert (await console_pipeline.post("shop", SHOP_KEY, lead(cdp_id)))[0] == 202
    assert (await console_pipeline.post("shop", SHOP_KEY, lead("")))[0] == 202
    await text_appears(signed_in, f"/console/trace?q={cdp_id}", "delivered to the CDP", timeout=180)

    ingress_text = await _scrape(ingress_url)
    ingress_after = _values(ingress_text, ingress_series)
    assert all(ingress_after[s] >= ingress_before[s] + 2 for s in ingress_series), ingress_after
    assert _values(ingress_text, ("console_index_messages",))["console_index_messages"] > 0

    async def lag_reported() -> bool:
        return "pipeline_consumer_lag{" in await _scrape(ingress_url)

    await wait_for(lag_reported, 30, "the worker group's lag on the ingress's metrics")

    async def worker_moved() -> dict[str, float] | None:
        after = _values(await _scrape(worker_url), worker_series)
        moved = all(after[s] > worker_before[s] for s in worker_series)
        return after if moved else None

    await wait_for(worker_moved, 30, f"every one of {worker_series} to move")


async def _scrape(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


def _values(text: str, series: tuple[str, ...]) -> dict[str, float]:
    return {name: _value(text, name) for name in series}


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def _async(value: object) -> object:
    return value
