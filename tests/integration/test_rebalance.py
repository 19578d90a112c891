"""A worker joining and leaving the group while replayed webhooks trickle in: with the
commit guard every one of them converts; Faust's own consumer (the control) commits past
events nobody processed and loses some."""

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from harness.pipeline import Pipeline, ingress_ready, running_pipeline, wait_for
from schemas.envelope import RawEnvelope, record_key
from tests.integration.conftest import SHOP_KEY, SOURCES_YAML
from tests.integration.test_crash_recovery import all_delivered, converted_lead
from tests.integration.test_replay import worker_caught_up

pytestmark = pytest.mark.integration

WORKER = "tests.integration.rebalance_worker"


class Trickle:
    """Replayed webhooks, one new lead each, sent one by one at a steady pace."""

    def __init__(self, pipeline: Pipeline, producer: AIOKafkaProducer) -> None:
        self.pipeline = pipeline
        self.producer = producer
        self.sent: list[str] = []

    async def run(self, every_s: float) -> None:
        while True:
            cdp_id = f"trickle-{len(self.sent)}-{uuid.uuid4().hex[:6]}"
            fields = converted_lead(cdp_id)
            envelope = RawEnvelope(
                envelope_id=uuid.uuid4().hex,
                source_id="shop",
                received_at=datetime.now(UTC),
                parameters=fields,
                replayed_at=datetime.now(UTC),
            )
            await self.producer.send_and_wait(
                self.pipeline.topic("zoho.webhooks.replay"),
                envelope.model_dump_json().encode(),
                key=record_key("shop", fields["lead_id"]),
            )
            self.sent.append(cdp_id)
            await asyncio.sleep(every_s)

    async def until_sent(self, count: int) -> None:
        async def enough() -> bool:
            return len(self.sent) >= count

        await wait_for(enough, 60, f"{count} webhooks sent")


async def logged(pipeline: Pipeline, process: str, text: str, times: int = 1) -> bool:
    return pipeline.processes[process].log_path.read_text(errors="replace").count(text) >= times


@pytest.mark.parametrize("consumer", ["stock", "guard"])
async def test_webhooks_arriving_while_a_worker_joins_and_leaves_all_convert(
    consumer: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {
        "REBALANCE_CONSUMER": consumer,
        "SLOW_SEEK_S": "2",
        "SLOW_AGENT_S": "0.1",
        "WORKER_HOLE_REREAD_S": "3",
    }
    with running_pipeline(kafka_bootstrap, tmp_path, SOURCES_YAML, env, WORKER) as pipeline:
        try:
            await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
            warm_up = f"warm-{uuid.uuid4().hex[:6]}"
            status, _ = await pipeline.post("shop", SHOP_KEY, converted_lead(warm_up))
            assert status == 202
            await all_delivered(pipeline, [warm_up], timeout=90)
            missing = await trickle_through_two_rebalances(pipeline)
        finally:
            for process in pipeline.processes.values():
                print(f"--- {process.name} log tail ---\n{process.log_tail(15)}")  # noqa: T201
    print(f"{consumer}: {len(missing)} lost")  # noqa: T201
    if consumer == "stock":
        assert missing, "the control lost nothing: the test no longer shows the loss"
    else:
        assert not missing


async def trickle_through_two_rebalances(pipeline: Pipeline) -> set[str]:
    """Starts a second worker and stops it again while webhooks trickle in; returns the
    ones that never reached the CDP once the group has committed everything."""
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, enable_idempotence=True)
    await producer.start()
    trickle = Trickle(pipeline, producer)
    sending = asyncio.create_task(trickle.run(every_s=0.05))
    try:
        await trickle.until_sent(20)
        second = pipeline.process("worker-2", WORKER)
        second.env = pipeline.env | {"WORKER_DATA_DIR": str(pipeline.workdir / "worker-2-data")}
        second.start()
        await wait_for(
            lambda: logged(pipeline, "worker-2", "Worker ready"), 90, "the second worker to join"
        )
        await trickle.until_sent(len(trickle.sent) + 40)
        await asyncio.to_thread(second.stop)
        await wait_for(
            lambda: logged(pipeline, "worker", "Worker ready", times=3),
            90,
            "the first worker to take every partition back",
        )
        await trickle.until_sent(len(trickle.sent) + 20)
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        await producer.stop()
    await wait_for(lambda: worker_caught_up(pipeline), 120, "the worker group to commit all")
    delivered = {event["cdp_id"] for event in list(pipeline.cdp.cdp.delivered)}
    return set(trickle.sent) - delivered
