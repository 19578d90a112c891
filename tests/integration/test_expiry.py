"""A record no webhook touched for STATE_RETENTION_DAYS loses its state, on disk and in
the changelog; a recent one keeps it."""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from harness.pipeline import Pipeline, running_pipeline, wait_for
from schemas.envelope import RawEnvelope, record_key
from tests.integration.conftest import SOURCES_YAML

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def expiring(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir: Path = tmp_path_factory.mktemp("expiry")
    env = {"STATE_RETENTION_DAYS": "30", "STATE_SWEEP_INTERVAL_S": "1"}
    with running_pipeline(kafka_bootstrap, workdir, SOURCES_YAML, extra_env=env) as running:
        yield running
        for process in running.processes.values():
            print(f"--- {process.name} log tail ---\n{process.log_tail()}")  # noqa: T201


def envelope(lead_id: str, cdp_id: str, received_at: datetime) -> RawEnvelope:
    return RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source_id="shop",
        received_at=received_at,
        parameters={
            "lead_id": lead_id,
            "cdp_id": cdp_id,
            "lead_status": "Pre-Qualified",
            "annual_revenue": "100",
            "modified_by": "jane",
        },
    )


async def send(pipeline: Pipeline, lead_id: str, cdp_id: str, received_at: datetime) -> None:
    value = envelope(lead_id, cdp_id, received_at).model_dump_json().encode()
    await pipeline.produce_raw(value, record_key("shop", lead_id))


async def changelog(pipeline: Pipeline) -> list[tuple[str, bytes | None]]:
    """Every (key, value) of the status table's changelog so far."""
    topic = f"{pipeline.env['APP_ID']}-record-states-changelog"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=pipeline.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await wait_for(lambda: _now(bool(consumer.assignment())), 10, "changelog partitions")
        partitions = list(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[tuple[str, bytes | None]] = []
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [(json.loads(record.key), record.value) for record in batch]
        return records
    finally:
        await consumer.stop()


async def _now(value: bool) -> bool:
    return value


async def test_an_untouched_record_expires_and_converts_again(expiring: Pipeline) -> None:
    now = datetime.now(UTC)
    old_lead, recent_lead = uuid.uuid4().hex[:10], uuid.uuid4().hex[:10]
    old_cdp, recent_cdp = f"cdp-old-{old_lead}", f"cdp-new-{recent_lead}"
    old_key, recent_key = f"shop:Leads:{old_lead}", f"shop:Leads:{recent_lead}"
    await send(expiring, old_lead, old_cdp, now - timedelta(days=45))
    await send(expiring, recent_lead, recent_cdp, now - timedelta(days=1))

    async def converted(cdp_id: str, count: int) -> bool:
        return len(expiring.cdp.events_for(cdp_id)) >= count

    await wait_for(lambda: converted(old_cdp, 1), 180, "the old lead's conversion")
    await wait_for(lambda: converted(recent_cdp, 1), 60, "the recent lead's conversion")

    async def tombstoned() -> bool:
        return (old_key, None) in await changelog(expiring)

    await wait_for(tombstoned, 60, "the old lead's tombstone in the changelog")

    # The same conversion again: the expired record has no memory of it, the recent one does.
    await send(expiring, old_lead, old_cdp, now - timedelta(days=44))
    await send(expiring, recent_lead, recent_cdp, now)
    await wait_for(lambda: converted(old_cdp, 2), 60, "the old lead's second conversion")

    async def recent_marked_again() -> bool:
        return len([value for key, value in await changelog(expiring) if key == recent_key]) >= 2

    await wait_for(recent_marked_again, 60, "the recent lead's second state write")
    # A conversion is confirmed on the topic before its state is written.
    conversions = await expiring.read_topic("cdp.conversions")
    assert [event["cdp_id"] for event in conversions].count(recent_cdp) == 1
    assert (recent_key, None) not in await changelog(expiring)
    [first, second] = expiring.cdp.events_for(old_cdp)
    assert first["event_id"] == second["event_id"]  # a duplicate the CDP recognises
