"""The spool with the ingress as a process and a broker of its own, killed with SIGKILL:
webhooks posted while Kafka is down are answered 202 and shown as spooled; an ingress
killed with SIGKILL while they are spooled starts again with Kafka still down, drains
nothing until it is back, takes more; then every webhook reaches zoho.webhooks.raw, in
arrival order per record.

What the chaos suite proves end to end (conversions at the CDP after these faults) is not
repeated here; this is the edge's own contract: the answers, the spool's depth on
/readyz and /metrics, a start with Kafka down, and the order on the topic."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness.pipeline import wait_for
from tests.chaos.cluster import Broker, Pipeline, running_pipeline, topic_records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

KEY = "spool-api-key-0123456789"
SOURCES_YAML = f"""
sources:
  - id: shop
    api_key: {KEY}
    exchange_rate: "1"
    currency: USD
"""
SPOOL_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of this module's own: the test kills it."""
    broker = Broker(tmp_path_factory.mktemp("spool-broker"))
    broker.start(fresh=True)
    try:
        yield broker
    finally:
        broker.stop()


def webhooks(records: int, per_record: int, start: int = 0) -> list[dict[str, str]]:
    """Interleaved webhooks for a few records, numbered in posting order per record."""
    return [
        {"lead_id": f"L-{r}", "lead_status": "Contacted", "n": str(n)}
        for n in range(start, start + per_record)
        for r in range(records)
    ]


async def post_all(pipeline: Pipeline, posted: list[dict[str, str]]) -> None:
    async with aiohttp.ClientSession() as session:
        for webhook in posted:
            async with session.post(
                pipeline.source_url.replace("/chaos", "/shop"),
                params={"api_key": KEY},
                data=webhook,
                timeout=aiohttp.ClientTimeout(total=SPOOL_TIMEOUT_S + 10),
            ) as response:
                assert response.status == 202, await response.text()


async def get(pipeline: Pipeline, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"http://127.0.0.1:{pipeline.ingress_port}{path}",
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            return response.status, await response.text()


async def readiness(pipeline: Pipeline) -> dict[str, Any] | None:
    try:
        _, text = await get(pipeline, "/readyz")
    except (aiohttp.ClientError, TimeoutError):
        ingress = pipeline.processes["ingress"]
        assert ingress.alive, ingress.log_tail()
        return None
    body: dict[str, Any] = json.loads(text)
    return body


async def spooled(pipeline: Pipeline, depth: int) -> bool:
    body = await readiness(pipeline)
    return body is not None and body["status"] == "spooling" and body["spool"]["depth"] == depth


def assert_all_arrived_in_order(
    posted: list[dict[str, str]], found: list[tuple[int, int, dict[str, Any]]]
) -> None:
    on_topic: dict[str, list[int]] = {}
    for _partition, _offset, envelope in sorted(found, key=lambda r: (r[0], r[1])):
        parameters = envelope["parameters"]
        on_topic.setdefault(parameters["lead_id"], []).append(int(parameters["n"]))
    for lead in {webhook["lead_id"] for webhook in posted}:
        expected = [int(w["n"]) for w in posted if w["lead_id"] == lead]
        seen = on_topic.get(lead, [])
        assert sorted(set(seen)) == expected, f"{lead}: posted {expected}, on the topic {seen}"
        # A duplicate may appear, but never an older webhook after a newer one.
        assert seen == sorted(seen), f"{lead} out of order on the topic: {seen}"


async def test_webhooks_spooled_through_a_broker_kill_and_an_ingress_kill_reach_kafka_in_order(
    broker: Broker, tmp_path: Path
) -> None:
    env = {"INGRESS_SPOOL_TIMEOUT_S": str(SPOOL_TIMEOUT_S), "PRODUCE_TIMEOUT_S": "5"}
    with running_pipeline(broker, tmp_path, SOURCES_YAML, env) as pipeline:
        try:
            pipeline.start_ingress()
            await wait_for(pipeline.ingress_ready, 90, "the ingress")
            before = webhooks(records=3, per_record=2)
            await post_all(pipeline, before)

            broker.kill()
            during = webhooks(records=3, per_record=5, start=2)
            await post_all(pipeline, during)
            await wait_for(lambda: spooled(pipeline, len(during)), 30, "the spool's depth")
            status, metrics = await get(pipeline, "/metrics")
            assert status == 200 and f"ingress_spool_depth {len(during)}.0" in metrics

            # Killed while they are spooled, started again with Kafka still down: it
            # answers, holds what the killed one spooled, and takes more.
            pipeline.processes["ingress"].kill()
            pipeline.start_ingress()
            await wait_for(lambda: spooled(pipeline, len(during)), 90, "the restarted ingress")
            after = webhooks(records=3, per_record=3, start=7)
            await post_all(pipeline, after)
            await wait_for(
                lambda: spooled(pipeline, len(during) + len(after)), 30, "the spool's depth"
            )

            await asyncio.to_thread(broker.start)

            async def drained() -> bool:
                body = await readiness(pipeline)
                return body is not None and body["status"] == "ready"

            await wait_for(drained, 180, "the spool to drain into the restarted broker")
            log = pipeline.processes["ingress"].log_path.read_text()
            assert "spool holds webhooks from before the start" in log
            posted = before + during + after
            assert_all_arrived_in_order(posted, await topic_records(pipeline, "zoho.webhooks.raw"))
        except BaseException:
            print(pipeline.tails())  # noqa: T201
            raise
