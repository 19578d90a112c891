"""An ingress started while Kafka is down answers, and spools, from the start: Zoho
never re-posts a webhook, so a replica restarted during an outage must not refuse them.
Nothing listens on the broker's port here."""

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from harness.broker import free_ports
from ingress.app import create_app
from schemas.settings import Settings
from schemas.sources_file import parse_sources
from sources.crypto import generate_key

KEY = "start-api-key-0123456789"
SEED = parse_sources([{"id": "shop", "api_key": KEY, "exchange_rate": "1", "currency": "USD"}], {})


def settings_without_kafka(tmp_path: Path) -> Settings:
    [port] = free_ports(1)
    return Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        sources_encryption_keys=SecretStr(generate_key()),
        ingress_spool_dir=tmp_path / "spool",
        ingress_spool_timeout_s=0.5,
        produce_timeout_s=1,
    )


async def test_an_ingress_started_with_kafka_down_spools_the_sources_file_webhooks(
    tmp_path: Path,
) -> None:
    app = create_app(settings_without_kafka(tmp_path), seed=SEED)
    async with TestClient(TestServer(app)) as client:
        for n in range(3):
            answer = await client.post(
                "/sources/shop",
                params={"api_key": KEY},
                data={"lead_id": "L-1", "lead_status": "Contacted", "n": str(n)},
            )
            assert answer.status == 202, await answer.text()
        # A source it cannot know about yet is not taken for another.
        wrong = await client.post("/sources/shop", params={"api_key": "not-the-key-0123456"})
        assert wrong.status == 401
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 200
        assert body["status"] == "spooling" and body["kafka"] == "unreachable"
        assert body["spool"]["depth"] == 3
