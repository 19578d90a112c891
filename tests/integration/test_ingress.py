"""The ingress against the real broker: statuses, the durable write, health and metrics."""

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.admin import AIOKafkaAdminClient

from harness.pipeline import read_topic, wait_for
from ingress.app import create_app
from schemas.envelope import RawEnvelope
from schemas.settings import Settings
from schemas.sources_file import parse_sources
from streams.commands.topic_plan import desired_topics
from streams.commands.topics import set_up_topics

pytestmark = pytest.mark.integration
KEY = "ingress-api-key-0123456789"
SOURCES = parse_sources(
    [{"id": "shop", "api_key": KEY, "exchange_rate": "1", "currency": "USD"}], {}
)


@pytest.fixture
async def settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"ingress-{uuid.uuid4().hex[:8]}.",
        max_body_bytes=4096,
        produce_timeout_s=3,
        ingress_spool_dir=tmp_path / "spool",
        ingress_spool_timeout_s=1,
        ingress_spool_max_bytes=800,
    )
    await set_up_topics(settings, desired_topics(settings))
    return settings


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, SOURCES))) as client:
        yield client


async def test_a_webhook_is_on_the_raw_topic_before_the_202(
    client: TestClient, settings: Settings
) -> None:
    response = await client.post(
        "/sources/shop",
        params={"api_key": KEY, "lead_id": "from-query", "cdp_id": "c-1"},
        data={"lead_id": "L-1", "Lead Status": "Contacted"},
    )
    assert response.status == 202
    envelope_id = (await response.json())["envelope_id"]

    [raw] = [
        RawEnvelope.model_validate(message)
        for message in await read_topic(
            settings.kafka_bootstrap_servers, settings.topic("zoho.webhooks.raw")
        )
        if message["envelope_id"] == envelope_id
    ]
    assert raw.source_id == "shop"
    assert raw.parameters == {"lead_id": "L-1", "cdp_id": "c-1", "Lead Status": "Contacted"}
    assert raw.content_type == "application/x-www-form-urlencoded"
    assert KEY not in json.dumps(raw.model_dump(mode="json"))


async def test_the_api_key_may_come_as_a_header(client: TestClient) -> None:
    response = await client.post(
        "/sources/shop", headers={"X-Api-Key": KEY}, json={"lead_id": "L-2"}
    )
    assert response.status == 202


@pytest.mark.parametrize(
    ("path", "params", "body", "status", "error"),
    [
        ("/sources/nope", {"api_key": KEY}, b"lead_id=1", 404, "unknown source nope"),
        ("/sources/shop", {}, b"lead_id=1", 401, "missing or wrong api key"),
        ("/sources/shop", {"api_key": "wrong"}, b"lead_id=1", 401, "missing or wrong api key"),
    ],
)
async def test_unknown_sources_and_bad_keys(
    client: TestClient, path: str, params: dict[str, str], body: bytes, status: int, error: str
) -> None:
    response = await client.post(path, params=params, data=body)
    assert response.status == status
    assert (await response.json()) == {"error": error}


async def test_malformed_and_oversized_bodies(client: TestClient) -> None:
    malformed = await client.post(
        "/sources/shop",
        params={"api_key": KEY},
        data=b'{"lead_id": ',
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status == 400
    assert "JSON body is malformed" in (await malformed.json())["error"]

    oversized = await client.post(
        "/sources/shop", params={"api_key": KEY}, data={"notes": "x" * 5000}
    )
    assert oversized.status == 413


async def test_no_2xx_when_neither_kafka_nor_the_spool_can_take_the_webhook(
    client: TestClient, settings: Settings
) -> None:
    raw = settings.topic("zoho.webhooks.raw")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([raw])

        async def deleted() -> bool:
            return raw not in await admin.list_topics()

        await wait_for(deleted, 60, f"{raw} to be deleted")
    finally:
        await admin.close()
    notes = {"lead_id": "L-3", "notes": "x" * 300}
    # Kafka cannot take it: the spool does, and says so.
    spooled = await client.post("/sources/shop", params={"api_key": KEY}, data=notes)
    assert spooled.status == 202
    ready = await client.get("/readyz")
    body = await ready.json()
    assert body["spool"]["depth"] == 1 and body["spool"]["bytes"] > 300
    # The next one does not fit under the 800-byte cap.
    refused = await client.post("/sources/shop", params={"api_key": KEY}, data=notes)
    assert refused.status == 503
    assert "spool is full" in (await refused.json())["error"]
    assert ready.status == 503 and body["status"] == "spool full"


async def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await client.post("/sources/shop", params={"api_key": KEY}, data={"lead_id": "L-4"})
    await client.post("/sources/shop", params={"api_key": "bad"}, data={"lead_id": "L-4"})
    text = await (await client.get("/metrics")).text()
    assert "ingress_spool_depth 0.0" in text and "ingress_spool_oldest_age_seconds 0.0" in text
    assert 'ingress_requests_total{source="shop",status="202"} 1.0' in text
    assert 'ingress_requests_total{source="shop",status="401"} 1.0' in text
    assert "ingress_produce_seconds_count 1.0" in text
