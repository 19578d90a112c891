"""Webhooks posted over HTTP come out at the CDP and on cdp.conversions."""

import asyncio
import hashlib
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from harness.pipeline import Pipeline, ingress_ready, wait_for
from schemas.envelope import RawEnvelope, record_key
from tests.integration.conftest import SHOP_KEY

pytestmark = pytest.mark.integration


def lead(status: str, cdp_id: str, **fields: str) -> dict[str, str]:
    return {
        "lead_id": fields.pop("lead_id", uuid.uuid4().hex[:12]),
        "cdp_id": cdp_id,
        "lead_status": status,
        "annual_revenue": fields.pop("annual_revenue", "1,000.10"),
        "modified_by": "jane@example.com",
    } | fields


def new_cdp_id() -> str:
    return f"cdp-{uuid.uuid4().hex[:10]}"


async def delivered(
    pipeline: Pipeline, cdp_id: str, count: int = 1, timeout: float = 90
) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        events = pipeline.cdp.events_for(cdp_id)
        return events if len(events) >= count else None

    return await wait_for(probe, timeout, f"{count} conversion(s) for {cdp_id} at the CDP")


@pytest.fixture(scope="package")
def warm_pipeline(pipeline: Pipeline) -> Pipeline:
    """The worker has joined its group and delivers: later deadlines measure the pipeline,
    not Faust's start-up."""

    async def warm_up() -> None:
        await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
        cdp_id = new_cdp_id()
        status, _ = await pipeline.post("shop", SHOP_KEY, lead("Pre-Qualified", cdp_id))
        assert status == 202
        await delivered(pipeline, cdp_id, timeout=180)

    asyncio.run(warm_up())
    return pipeline


async def test_a_pre_qualified_lead_reaches_the_cdp_and_the_topic(warm_pipeline: Pipeline) -> None:
    cdp_id = new_cdp_id()
    status, body = await warm_pipeline.post(
        "shop",
        SHOP_KEY,
        lead(
            "Pre-Qualified",
            cdp_id,
            lead_id="900001",
            email=" Ann@Example.COM ",
            annual_revenue="$1,000.10",
        ),
    )
    assert status == 202 and body["envelope_id"]

    [event] = await delivered(warm_pipeline, cdp_id)
    assert event["event_name"] == "ConvertedLead"
    assert event["value"] == "1500.15" and event["original_value"] == "1000.10"
    assert event["currency"] == "USD" and event["record_id"] == "900001"
    assert event["previous_status"] is None
    assert event["user_data"]["em"] == [hashlib.sha256(b"ann@example.com").hexdigest()]
    on_topic = [
        e for e in await warm_pipeline.read_topic("cdp.conversions") if e["cdp_id"] == cdp_id
    ]
    assert [e["event_id"] for e in on_topic] == [event["event_id"]]


async def test_json_bodies_and_get_webhooks_are_accepted(warm_pipeline: Pipeline) -> None:
    json_id, get_id = new_cdp_id(), new_cdp_id()
    status, _ = await warm_pipeline.post(
        "shop", SHOP_KEY, lead("Pre-Qualified", json_id), as_json=True
    )
    assert status == 202
    async with aiohttp.ClientSession() as session:
        params = {"api_key": SHOP_KEY} | lead("Pre-Qualified", get_id)
        async with session.get(warm_pipeline.source_url("shop"), params=params) as response:
            assert response.status == 202
    await delivered(warm_pipeline, json_id)
    await delivered(warm_pipeline, get_id)


async def test_a_status_sequence_converts_exactly_once(warm_pipeline: Pipeline) -> None:
    cdp_id, lead_id = new_cdp_id(), uuid.uuid4().hex[:12]
    sequence = [
        "Not Contacted",
        "Contacted",
        "Pre-Qualified",
        "Pre-Qualified",
        "Contacted",
        "Pre-Qualified",
    ]
    for status in sequence + ["Lost Lead"]:
        code, _ = await warm_pipeline.post("shop", SHOP_KEY, lead(status, cdp_id, lead_id=lead_id))
        assert code == 202
    # "Lost Lead" maps to LeadLost for this source: once it arrives, every earlier
    # webhook of the record has been processed (one record, one partition, in order).
    events = await delivered(warm_pipeline, cdp_id, count=2)
    assert [e["event_name"] for e in events] == ["ConvertedLead", "LeadLost"]
    assert events[0]["previous_status"] == "Contacted"


async def test_an_invalid_webhook_is_parked_while_valid_ones_flow(warm_pipeline: Pipeline) -> None:
    before, after = new_cdp_id(), new_cdp_id()
    bad = lead("Pre-Qualified", "", annual_revenue="abc")
    for fields in (lead("Pre-Qualified", before), bad, lead("Pre-Qualified", after)):
        code, _ = await warm_pipeline.post("shop", SHOP_KEY, fields)
        assert code == 202
    await delivered(warm_pipeline, before)
    await delivered(warm_pipeline, after)

    async def parked() -> list[dict[str, Any]]:
        return [
            record
            for record in await warm_pipeline.read_topic("zoho.webhooks.invalid")
            if record["envelope"]
            and record["envelope"]["parameters"].get("lead_id") == bad["lead_id"]
        ]

    [record] = await wait_for(parked, 30, "the invalid webhook in zoho.webhooks.invalid")
    assert "field 'cdp_id' is empty" in record["reasons"]
    assert any("not a number" in reason and "abc" in reason for reason in record["reasons"])


async def test_poison_messages_are_parked_and_later_webhooks_convert(
    warm_pipeline: Pipeline,
) -> None:
    await warm_pipeline.produce_raw(b"{not json", key=b"shop:poison")
    exploding = lead("Pre-Qualified", new_cdp_id(), lead_id=f"explode-{uuid.uuid4().hex[:6]}")
    code, _ = await warm_pipeline.post("shop", SHOP_KEY, exploding)
    assert code == 202
    after = new_cdp_id()
    code, _ = await warm_pipeline.post("shop", SHOP_KEY, lead("Pre-Qualified", after))
    assert code == 202
    await delivered(warm_pipeline, after)

    async def parked() -> list[dict[str, Any]]:
        return [
            record
            for record in await warm_pipeline.read_topic("zoho.webhooks.invalid")
            if record["raw_value"] == "{not json"
        ]

    [record] = await wait_for(parked, 30, "the poison message in zoho.webhooks.invalid")
    assert record["reasons"][0].startswith("not a raw envelope")

    async def crashed() -> list[dict[str, Any]]:
        return [
            record
            for record in await warm_pipeline.read_topic("zoho.webhooks.invalid")
            if record["envelope"]
            and record["envelope"]["parameters"]["lead_id"] == exploding["lead_id"]
        ]

    [record] = await wait_for(crashed, 30, "the webhook whose processing raised")
    assert record["reasons"] == ["processing failed: ZeroDivisionError"]
    assert warm_pipeline.cdp.events_for(exploding["cdp_id"]) == []


async def test_a_cdp_outage_loses_nothing(warm_pipeline: Pipeline) -> None:
    refusals = {"left": 3}

    async def unavailable_for_a_while(events: list[dict[str, Any]]) -> web.Response | None:  # noqa: ARG001 - the callback signature
        if refusals["left"] > 0:
            refusals["left"] -= 1
            return web.json_response(
                {"error": "maintenance"}, status=503, headers={"Retry-After": "0"}
            )
        return None

    cdp_ids = [new_cdp_id() for _ in range(5)]
    warm_pipeline.cdp.cdp.respond = unavailable_for_a_while
    try:
        for cdp_id in cdp_ids:
            code, _ = await warm_pipeline.post("shop", SHOP_KEY, lead("Pre-Qualified", cdp_id))
            assert code == 202
        for cdp_id in cdp_ids:
            [event] = await delivered(warm_pipeline, cdp_id)
            assert event["event_name"] == "ConvertedLead"
    finally:
        warm_pipeline.cdp.cdp.respond = None
    assert refusals["left"] == 0


async def test_an_event_the_cdp_rejects_is_dead_lettered_alone(warm_pipeline: Pipeline) -> None:
    good = [new_cdp_id() for _ in range(4)]
    rejected = new_cdp_id()

    async def picky(events: list[dict[str, Any]]) -> web.Response | None:
        if any(event["cdp_id"] == rejected for event in events):
            return web.json_response({"error": f"unknown cdp_id {rejected}"}, status=400)
        return None

    warm_pipeline.cdp.cdp.respond = picky
    try:
        await asyncio.gather(
            *(
                warm_pipeline.post("shop", SHOP_KEY, lead("Pre-Qualified", cdp_id))
                for cdp_id in [*good[:2], rejected, *good[2:]]
            )
        )
        for cdp_id in good:
            await delivered(warm_pipeline, cdp_id)

        async def dead_lettered() -> list[dict[str, Any]]:
            return [
                record
                for record in await warm_pipeline.read_topic("cdp.conversions.deadletter")
                if record["event"] and record["event"]["cdp_id"] == rejected
            ]

        [record] = await wait_for(dead_lettered, 30, "the rejected event in the dead-letter topic")
    finally:
        warm_pipeline.cdp.cdp.respond = None
    assert record["cdp_status"] == 400
    assert json.loads(record["cdp_response"]) == {"error": f"unknown cdp_id {rejected}"}
    assert warm_pipeline.cdp.events_for(rejected) == []


async def test_webhooks_of_one_record_in_one_batch_convert_once(warm_pipeline: Pipeline) -> None:
    """Written to Kafka together, a record's webhooks reach the worker in one batch: each
    must see what the earlier ones decided, though the table is marked only at the end."""
    sequence = ["Contacted", "Pre-Qualified", "Pre-Qualified", "Contacted", "Pre-Qualified"]
    leads = {new_cdp_id(): uuid.uuid4().hex[:12] for _ in range(20)}
    start = datetime.now(UTC)
    producer = AIOKafkaProducer(bootstrap_servers=warm_pipeline.bootstrap)
    await producer.start()
    try:
        for step, status in enumerate([*sequence, "Lost Lead"]):
            for cdp_id, lead_id in leads.items():
                envelope = RawEnvelope(
                    envelope_id=uuid.uuid4().hex,
                    source_id="shop",
                    received_at=start + timedelta(milliseconds=step),
                    parameters=lead(status, cdp_id, lead_id=lead_id),
                )
                await producer.send(
                    warm_pipeline.topic("zoho.webhooks.raw"),
                    envelope.model_dump_json().encode(),
                    key=record_key("shop", lead_id),
                )
        await producer.flush()
    finally:
        await producer.stop()
    for cdp_id in leads:
        events = await delivered(warm_pipeline, cdp_id, count=2)
        assert [e["event_name"] for e in events] == ["ConvertedLead", "LeadLost"]
    on_topic = Counter(
        (e["cdp_id"], e["event_name"])
        for e in await warm_pipeline.read_topic("cdp.conversions")
        if e["cdp_id"] in leads
    )
    assert set(on_topic.values()) == {1}, on_topic
    assert len(on_topic) == 2 * len(leads)
