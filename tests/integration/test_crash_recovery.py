"""A worker killed or stopped mid-stream loses nothing: everything accepted is delivered
after a restart (perhaps twice, with the same event_id). What it converted, it remembers
across a restart."""

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from harness.pipeline import Pipeline, ingress_ready, running_pipeline, wait_for
from tests.integration.conftest import SHOP_KEY, SOURCES_YAML

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir: Path = tmp_path_factory.mktemp("crash")
    with running_pipeline(kafka_bootstrap, workdir, SOURCES_YAML) as running:
        asyncio.run(wait_for(lambda: ingress_ready(running), 60, "the ingress to be ready"))
        yield running


def converted_lead(cdp_id: str, lead_id: str = "", status: str = "Pre-Qualified") -> dict[str, str]:
    return {
        "lead_id": lead_id or uuid.uuid4().hex[:12],
        "cdp_id": cdp_id,
        "lead_status": status,
        "annual_revenue": "10",
        "modified_by": "jane@example.com",
    }


async def all_delivered(pipeline: Pipeline, cdp_ids: list[str], timeout: float) -> None:
    async def probe() -> bool:
        received = {event["cdp_id"] for event in list(pipeline.cdp.cdp.delivered)}
        return received >= set(cdp_ids)

    await wait_for(probe, timeout, f"all {len(cdp_ids)} conversions at the CDP")


async def test_a_worker_killed_mid_delivery_loses_nothing(pipeline: Pipeline) -> None:
    cdp_ids = [f"kill-{n}-{uuid.uuid4().hex[:6]}" for n in range(40)]
    in_flight: list[str] = []

    async def hang(events: list[dict[str, Any]]) -> web.Response:
        in_flight.extend(event["cdp_id"] for event in events)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    pipeline.cdp.cdp.respond = hang
    for cdp_id in cdp_ids:
        status, _ = await pipeline.post("shop", SHOP_KEY, converted_lead(cdp_id))
        assert status == 202

    async def posting() -> bool:
        return bool(set(in_flight) & set(cdp_ids))

    await wait_for(posting, 120, "the sink to be posting our conversions")
    worker = pipeline.processes["worker"]
    worker.stop(kill=True)
    pipeline.cdp.cdp.respond = None
    worker.start()
    await all_delivered(pipeline, cdp_ids, timeout=180)


async def test_a_worker_stopped_while_the_cdp_is_down_loses_nothing(pipeline: Pipeline) -> None:
    cdp_ids = [f"down-{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    attempts: list[list[str]] = []

    async def down(events: list[dict[str, Any]]) -> web.Response:
        attempts.append([event["cdp_id"] for event in events])
        return web.json_response({"error": "down"}, status=503)

    pipeline.cdp.cdp.respond = down
    for cdp_id in cdp_ids:
        status, _ = await pipeline.post("shop", SHOP_KEY, converted_lead(cdp_id))
        assert status == 202

    async def retrying() -> bool:
        return len(attempts) >= 2 and bool(set(attempts[-1]) & set(cdp_ids))

    await wait_for(retrying, 120, "the sink to retry an undelivered batch")
    worker = pipeline.processes["worker"]
    worker.stop()  # SIGTERM: a clean shutdown in the middle of retrying
    pipeline.cdp.cdp.respond = None
    worker.start()
    await all_delivered(pipeline, cdp_ids, timeout=180)


@pytest.mark.parametrize("data_directory", ["kept", "emptied"])
async def test_a_restarted_worker_remembers_what_it_converted(
    pipeline: Pipeline, data_directory: str
) -> None:
    """The record's state survives a restart: read from the worker's own data directory,
    or from the changelog when the directory is gone. A webhook repeating the converted
    status then converts nothing; without the state it would convert again."""
    cdp_id, lead_id = f"restart-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:12]
    status, _ = await pipeline.post("shop", SHOP_KEY, converted_lead(cdp_id, lead_id))
    assert status == 202

    async def in_changelog() -> bool:
        changelog = await pipeline.read_topic_bytes("worker-record-states-changelog")
        return lead_id.encode() in changelog

    await wait_for(in_changelog, 90, "the lead's state in the changelog")
    worker = pipeline.processes["worker"]
    worker.stop()
    if data_directory == "emptied":
        shutil.rmtree(worker.env["WORKER_DATA_DIR"])
    worker.start()
    for repeated in ("Pre-Qualified", "Lost Lead"):
        status, _ = await pipeline.post("shop", SHOP_KEY, converted_lead(cdp_id, lead_id, repeated))
        assert status == 202

    # "Lost Lead" maps to LeadLost: once it is delivered, the repeated webhook before it
    # (same record, same partition) has been processed.
    async def lost_delivered() -> list[str] | None:
        names = [event["event_name"] for event in pipeline.cdp.events_for(cdp_id)]
        return names if "LeadLost" in names else None

    names = await wait_for(lost_delivered, 180, "the LeadLost conversion at the CDP")
    assert names == ["ConvertedLead", "LeadLost"]
