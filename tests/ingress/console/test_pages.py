"""The console's pages over the ingress's forwarder: the test webhook takes the path of a
posted webhook (Kafka, or this replica's spool when Kafka does not answer), the Sources
page shows what the spool holds, and a trace not read yet waits when asked to.

The ingress's forwarder runs on a real spool directory, over a scripted producer standing
in for Kafka (tests/ingress/test_forwarder.py), with the console mounted as on the ingress."""

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingress.console.app import console_app
from ingress.console.sources import ProcessSources
from ingress.forwarder import Forwarder
from ingress.keys import FORWARDER, METRICS, SETTINGS
from ingress.metrics import IngressMetrics
from ingress.spool import DATABASE
from schemas.settings import Settings
from schemas.sources_file import parse_sources
from tests.ingress.test_forwarder import ScriptedKafka, until

TOKEN = "console-token-for-the-tests-0123"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
Client = TestClient[web.Request, web.Application]


class Ingress:
    def __init__(
        self, client: Client, kafka: ScriptedKafka, forwarder: Forwarder, spool: Path
    ) -> None:
        self.client = client
        self.kafka = kafka
        self.forwarder = forwarder
        self.spool = spool

    def spooled(self) -> list[tuple[bytes, bytes]]:
        """What the spool's file holds, read apart from the forwarder's own connection."""
        with closing(sqlite3.connect(self.spool / DATABASE)) as db:
            rows = db.execute("SELECT key, value FROM spooled ORDER BY seq").fetchall()
        return [(bytes(key), bytes(value)) for key, value in rows]

    async def page(self, path: str) -> str:
        response = await self.client.get(path)
        assert response.status == 200, path
        return await response.text()

    async def post(
        self, path: str, form_page: str, form: dict[str, str] | None = None
    ) -> tuple[int, str]:
        match = CSRF.search(await self.page(form_page))
        assert match
        data = (form or {}) | {"csrf_token": match.group(1)}
        response = await self.client.post(path, data=data)
        return response.status, await response.text()


@pytest.fixture
async def ingress(tmp_path: Path) -> AsyncIterator[Ingress]:
    # No broker behind this address: the console's index stays empty, which is fine here.
    settings = Settings(admin_token=TOKEN, kafka_bootstrap_servers="127.0.0.1:9")
    shop = parse_sources(
        [{"id": "shop", "api_key": "k" * 20, "exchange_rate": "1", "currency": "EUR"}], {}
    )
    kafka = ScriptedKafka()
    forwarder = Forwarder(
        kafka,
        tmp_path / "spool",
        max_bytes=1_000_000,
        ack_timeout_s=0.1,
        settle_timeout_s=0.5,
        max_backoff_s=0.2,
    )
    await forwarder.start()
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = IngressMetrics()
    app[FORWARDER] = forwarder
    app.add_subapp("/console", console_app(settings, ProcessSources(shop), app[METRICS].registry))
    try:
        async with TestClient(TestServer(app)) as client:
            signed_in = Ingress(client, kafka, forwarder, tmp_path / "spool")
            status, _ = await signed_in.post(
                "/console/sign-in", "/console/sign-in", {"token": TOKEN}
            )
            assert status == 200
            yield signed_in
    finally:
        await forwarder.stop()


def envelopes(values: list[bytes]) -> list[dict[str, object]]:
    return [json.loads(value) for value in values]


async def test_a_test_webhook_while_kafka_is_away_is_spooled_and_shown_then_drained(
    ingress: Ingress,
) -> None:
    ingress.kafka.mode = "block"  # aiokafka waiting for a broker that does not answer
    status, page = await ingress.post(
        "/console/sources/shop/test-webhook", "/console/sources/shop/actions"
    )
    assert status == 200
    assert 'id="test-spooled"' in page
    [(key, value)] = ingress.spooled()
    assert key.startswith(b"shop:console-test-")
    assert json.loads(value)["test"] is True

    sources = await ingress.page("/console/sources")
    assert re.search(r'id="spool-depth">1<', sources)
    row = re.search(r'<a href="/console/sources/shop">shop</a>.*?</tr>', sources, re.S)
    assert row and re.search(r'<td class="n warn">1</td>', row.group(0))
    activity = await ingress.page("/console/sources/shop/activity")
    assert re.search(r'id="spooled"><span class="big">1</span>', activity)

    # Kafka is back: the spool drains to it, still marked test, and the page says so.
    ingress.kafka.mode = "ack"
    await until(lambda: bool(ingress.kafka.topic), "the spool to drain to Kafka")
    [delivered] = envelopes(ingress.kafka.topic)
    assert delivered["test"] is True and delivered["source_id"] == "shop"
    await until(lambda: ingress.forwarder.stats.depth == 0, "the drained copy to leave")
    assert "spool is empty" in await ingress.page("/console/sources/_health")


async def test_control_with_kafka_answering_the_test_webhook_goes_straight_to_it(
    ingress: Ingress,
) -> None:
    status, page = await ingress.post(
        "/console/sources/shop/test-webhook", "/console/sources/shop/actions"
    )
    assert status == 200
    assert 'id="test-spooled"' not in page
    [delivered] = envelopes(ingress.kafka.topic)
    assert delivered["test"] is True
    assert ingress.forwarder.stats.depth == 0
    assert "spool is empty" in await ingress.page("/console/sources")


async def test_a_trace_not_read_yet_reloads_only_when_asked_to_wait(ingress: Ingress) -> None:
    waiting = await ingress.page("/console/trace?q=not-read-yet&wait=1")
    assert 'id="trace-waiting"' in waiting and "data-reload-every" in waiting
    # A search typed by hand for something unknown says so once, without reloading.
    searched = await ingress.page("/console/trace?q=not-read-yet")
    assert "Nothing found" in searched and "data-reload-every" not in searched
