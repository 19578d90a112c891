"""The downstream example reads real conversions from the broker and reports a bad one."""

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from harness.pipeline import REPO, ingress_ready, running_pipeline, wait_for

pytestmark = pytest.mark.integration
KEY = "shop-api-key-0123456789"
SOURCES_YAML = f"""
sources:
  - id: shop
    api_key: {KEY}
    exchange_rate: "1.5"
    currency: USD
"""


def run_example(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, str(REPO / "examples" / "consume_conversions.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_example_validates_real_conversions_and_reports_a_bad_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_pipeline(kafka_bootstrap, tmp_path, SOURCES_YAML) as pipeline:
        await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
        lead_cdp, deal_cdp = f"cdp-{uuid.uuid4().hex[:8]}", f"cdp-{uuid.uuid4().hex[:8]}"
        webhooks = [
            {
                "lead_id": uuid.uuid4().hex[:12],
                "cdp_id": lead_cdp,
                "lead_status": "Pre-Qualified",
                "annual_revenue": "1,000.10",
                "modified_by": "jane@example.com",
                "email": "Ann@Example.com",
                "phone": "+1 212 555 0100",
            },
            {
                "deal_id": uuid.uuid4().hex[:12],
                "cdp_id": deal_cdp,
                "stage": "Closed Won",
                "amount": "",
                "modified_by": "jane@example.com",
            },
        ]
        for fields in webhooks:
            status, body = await pipeline.post("shop", KEY, fields)
            assert status == 202, body

        async def both_delivered() -> list[dict[str, Any]] | None:
            events = pipeline.cdp.events_for(lead_cdp) + pipeline.cdp.events_for(deal_cdp)
            return events if len(events) >= 2 else None

        events = await wait_for(both_delivered, 120, "both conversions at the CDP")
        # A message that breaks the contract: the amount as a JSON number.
        broken = dict(events[0]) | {"value": 1500.15}
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                pipeline.topic("cdp.conversions"), json.dumps(broken).encode(), key=b"x"
            )
        finally:
            await producer.stop()

        result = await asyncio.to_thread(
            run_example,
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            pipeline.topic("cdp.conversions"),
            "--max-messages",
            "3",
            "--idle-timeout",
            "30",
        )

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout + result.stderr
    valid = sorted(line for line in lines if line.startswith("ok "))
    assert len(valid) == 2
    for event in events:
        assert any(f"event_id={event['event_id']}" in line for line in valid)
    [invalid] = [line for line in lines if line.startswith("INVALID ")]
    assert "value: 1500.15 is not valid under any of the given schemas" in invalid
