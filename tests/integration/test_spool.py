"""The spool against a real broker that is stopped and restarted on its data: webhooks
are answered 202 while Kafka is down and reach zoho.webhooks.raw, in order, once it is
back, also when the ingress is killed with SIGKILL in between.

These tests stop their broker, so they run one of their own rather than the session's."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from harness.broker import KAFKA_SH, REPO, broker_environment, free_ports
from harness.pipeline import Process, free_port, read_topic, wait_for
from ingress.app import create_app
from schemas.settings import Settings
from schemas.sources_file import parse_sources
from sources.crypto import generate_key
from streams.commands.topic_plan import desired_topics
from streams.commands.topics import set_up_topics

pytestmark = pytest.mark.integration
KEY = "spool-api-key-0123456789"
SOURCES_YAML = f"""
sources:
  - id: shop
    api_key: {KEY}
    exchange_rate: "1"
    currency: USD
"""
SOURCES = parse_sources(
    [{"id": "shop", "api_key": KEY, "exchange_rate": "1", "currency": "USD"}], {}
)
SPOOL_TIMEOUT_S = 2.0


class OwnBroker:
    """A broker of this module's, stopped and started on the same data."""

    def __init__(self, home: Path) -> None:
        self.kafka_port, controller_port = free_ports(2)
        self.home = home
        self.env = broker_environment(home, self.kafka_port, controller_port)
        self.bootstrap = f"127.0.0.1:{self.kafka_port}"
        self.log = home.parent / f"{home.name}.kafka-sh.log"

    def start(self, fresh: bool = False) -> None:
        env = self.env | {"KAFKA_FRESH": "1" if fresh else "0"}
        with self.log.open("ab") as log:
            subprocess.run(  # noqa: S603 - our own script
                [str(KAFKA_SH), "start"], env=env, check=True, stdout=log, stderr=log, timeout=180
            )

    def ensure_running(self) -> None:
        """A test that failed while its broker was stopped must not fail the next one."""
        status = subprocess.run(  # noqa: S603 - our own script
            [str(KAFKA_SH), "status"], env=self.env, capture_output=True, check=False
        )
        if status.returncode != 0:
            self.start()

    def stop(self) -> None:
        with self.log.open("ab") as log:
            subprocess.run(  # noqa: S603 - our own script
                [str(KAFKA_SH), "stop"], env=self.env, check=True, stdout=log, stderr=log
            )


@pytest.fixture(scope="module")
def broker() -> Iterator[OwnBroker]:
    home = REPO / ".broker" / f"pytest-spool-{uuid.uuid4().hex[:8]}"
    own = OwnBroker(home)
    try:
        own.start(fresh=True)
        yield own
    finally:
        own.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def settings(broker: OwnBroker, tmp_path: Path) -> Settings:
    broker.ensure_running()
    settings = Settings(
        kafka_bootstrap_servers=broker.bootstrap,
        topic_prefix=f"spool-{uuid.uuid4().hex[:8]}.",
        topic_partitions=2,
        produce_timeout_s=5,
        ingress_spool_dir=tmp_path / "spool",
        ingress_spool_timeout_s=SPOOL_TIMEOUT_S,
    )
    await set_up_topics(settings, desired_topics(settings))
    return settings


def webhooks(records: int, per_record: int) -> list[dict[str, str]]:
    """Interleaved webhooks for a few records, numbered in posting order per record."""
    ids = [f"L-{uuid.uuid4().hex[:8]}" for _ in range(records)]
    return [
        {"lead_id": lead, "lead_status": "Contacted", "n": str(n)}
        for n in range(per_record)
        for lead in ids
    ]


async def raw_by_record(settings: Settings) -> dict[str, list[int]]:
    """The `n` of every webhook on the raw topic, per record, in topic order."""
    found: dict[str, list[int]] = {}
    for message in await read_topic(
        settings.kafka_bootstrap_servers, settings.topic("zoho.webhooks.raw")
    ):
        parameters = message["parameters"]
        if "n" in parameters:
            found.setdefault(parameters["lead_id"], []).append(int(parameters["n"]))
    return found


def assert_all_arrived_in_order(posted: list[dict[str, str]], found: dict[str, list[int]]) -> None:
    for lead in {webhook["lead_id"] for webhook in posted}:
        expected = [int(w["n"]) for w in posted if w["lead_id"] == lead]
        seen = found.get(lead, [])
        assert sorted(set(seen)) == expected, f"{lead}: posted {expected}, on the topic {seen}"
        # A duplicate may appear, but never an older webhook after a newer one.
        assert seen == sorted(seen), f"{lead} out of order on the topic: {seen}"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, SOURCES))) as client:
        yield client


async def test_webhooks_posted_while_kafka_is_down_are_answered_and_delivered_in_order(
    broker: OwnBroker, settings: Settings, client: TestClient
) -> None:
    before = {"lead_id": "L-before", "lead_status": "Contacted"}
    assert (await client.post("/sources/shop", params={"api_key": KEY}, data=before)).status == 202
    posted = webhooks(records=3, per_record=10)

    broker.stop()
    slowest = 0.0
    for webhook in posted:
        started = time.monotonic()
        response = await client.post("/sources/shop", params={"api_key": KEY}, data=webhook)
        slowest = max(slowest, time.monotonic() - started)
        assert response.status == 202, await response.text()
    # The first waits for its timeout; the rest join the spool behind it at once. The
    # margin is for a loaded machine, not for Kafka: it is down.
    assert slowest < SPOOL_TIMEOUT_S + 5
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["status"] == "spooling"
    assert body["kafka"] == "unreachable" and body["spool"]["depth"] == len(posted)
    metrics = await (await client.get("/metrics")).text()
    assert f"ingress_spool_depth {len(posted)}.0" in metrics
    assert f"ingress_spooled_total {len(posted)}.0" in metrics
    assert "ingress_spool_oldest_age_seconds 0.0" not in metrics

    broker.start()

    async def drained() -> bool:
        body = await (await client.get("/readyz")).json()
        return body["status"] == "ready" and body["spool"]["depth"] == 0

    await wait_for(drained, 180, "the spool to drain into the restarted broker")
    assert_all_arrived_in_order(posted, await raw_by_record(settings))
    # Straight to Kafka again.
    after = {"lead_id": "L-after", "lead_status": "Contacted"}
    assert (await client.post("/sources/shop", params={"api_key": KEY}, data=after)).status == 202
    metrics = await (await client.get("/metrics")).text()
    assert "ingress_spool_depth 0.0" in metrics
    assert f"ingress_spooled_total {len(posted)}.0" in metrics


def ingress_process(
    settings: Settings, workdir: Path, spool: Path, name: str, encryption_key: str
) -> Process:
    sources = workdir / "sources.yaml"
    sources.write_text(SOURCES_YAML)
    env = dict(os.environ) | {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "SOURCES_FILE": str(sources),
        "SOURCES_ENCRYPTION_KEYS": encryption_key,
        "INGRESS_PORT": str(free_port()),
        "INGRESS_SPOOL_DIR": str(spool),
        "INGRESS_SPOOL_TIMEOUT_S": str(SPOOL_TIMEOUT_S),
        "PRODUCE_TIMEOUT_S": "5",
    }
    process = Process(name, [sys.executable, "-m", "ingress.main"], env, workdir / f"{name}.log")
    process.start()
    return process


def url(process: Process, path: str) -> str:
    return f"http://127.0.0.1:{process.env['INGRESS_PORT']}{path}"


async def readiness(process: Process) -> dict[str, Any] | None:
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url(process, "/readyz")) as response:
                body: dict[str, Any] = await response.json()
                return body
    except aiohttp.ClientError:
        assert process.popen is not None and process.popen.poll() is None, process.log_tail()
        return None


async def test_webhooks_spooled_by_an_ingress_killed_with_sigkill_are_drained_by_its_restart(
    broker: OwnBroker, settings: Settings, tmp_path: Path
) -> None:
    spool = tmp_path / "ingress-spool"
    key = generate_key()
    first = ingress_process(settings, tmp_path, spool, "ingress-1", key)
    try:
        await wait_for(lambda: readiness(first), 60, "the ingress to start")
        posted = webhooks(records=2, per_record=10)
        broker.stop()
        async with aiohttp.ClientSession() as session:
            for webhook in posted:
                async with session.post(
                    url(first, "/sources/shop"), params={"api_key": KEY}, data=webhook
                ) as response:
                    assert response.status == 202, await response.text()
        body = await readiness(first)
        assert body is not None and body["spool"]["depth"] == len(posted)
        assert first.popen is not None
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait(10)
    finally:
        first.stop(kill=True)

    broker.start()
    # Control: an ingress with an empty spool of its own does not bring them, so what
    # the restart below delivers came from the spool the killed process left.
    control = ingress_process(settings, tmp_path, tmp_path / "other-spool", "ingress-control", key)
    try:
        await wait_for(lambda: readiness(control), 60, "the control ingress to start")
    finally:
        control.stop()
    assert await raw_by_record(settings) == {}

    second = ingress_process(settings, tmp_path, spool, "ingress-2", key)
    try:

        async def drained() -> bool:
            body = await readiness(second)
            return body is not None and body["status"] == "ready" and not body["spool"]["depth"]

        await wait_for(drained, 120, "the restarted ingress to drain the spool")
    finally:
        second.stop()
    assert_all_arrived_in_order(posted, await raw_by_record(settings))
    assert "spool holds webhooks from before the start" in second.log_path.read_text()
