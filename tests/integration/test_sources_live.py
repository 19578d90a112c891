"""Sources as data on the running pipeline: two ingress replicas and a worker follow the
sources topic, and every change made over the admin API applies without a restart."""

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness.pipeline import (
    ADMIN_TOKEN,
    Pipeline,
    free_port,
    ingress_ready,
    running_pipeline,
    wait_for,
)
from schemas.envelope import RawEnvelope, record_key

pytestmark = pytest.mark.integration

# The seed: the sources file imported by the ingress at its start.
SEED_YAML = """
sources:
  - id: seeded
    api_key: seeded-api-key-0123456789
    exchange_rate: "1"
    currency: EUR
"""
CLIENT_SECRET = "client-secret-that-must-stay-hidden-1234"
REFRESH_TOKEN = "1000.refresh-token-that-must-stay-hidden-5678"


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir: Path = tmp_path_factory.mktemp("sources-live")
    with running_pipeline(kafka_bootstrap, workdir, SEED_YAML) as pipeline:
        pipeline.second_port = free_port()  # type: ignore[attr-defined]
        pipeline.start_ingress("ingress-b", pipeline.second_port)  # type: ignore[attr-defined]

        async def warm_up() -> None:
            await wait_for(lambda: ingress_ready(pipeline), 60, "ingress A to be ready")
            await wait_for(lambda: ingress_ready(pipeline, second(pipeline)), 60, "ingress B")
            # The worker has joined its group and delivers.
            cdp_id = new_cdp_id()
            status, _ = await pipeline.post(
                "seeded", "seeded-api-key-0123456789", lead("Pre-Qualified", cdp_id)
            )
            assert status == 202
            await delivered(pipeline, cdp_id, timeout=180)

        asyncio.run(warm_up())
        yield pipeline
        for process in pipeline.processes.values():
            print(f"--- {process.name} log tail ---\n{process.log_tail()}")  # noqa: T201


def second(pipeline: Pipeline) -> int:
    port: int = pipeline.second_port  # type: ignore[attr-defined]
    return port


def new_cdp_id() -> str:
    return f"cdp-{uuid.uuid4().hex[:10]}"


def lead(status: str, cdp_id: str, amount: str = "10") -> dict[str, str]:
    return {
        "lead_id": uuid.uuid4().hex[:12],
        "cdp_id": cdp_id,
        "lead_status": status,
        "annual_revenue": amount,
        "modified_by": "jane@example.com",
    }


async def delivered(
    pipeline: Pipeline, cdp_id: str, count: int = 1, timeout: float = 60
) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        events = pipeline.cdp.events_for(cdp_id)
        return events if len(events) >= count else None

    return await wait_for(probe, timeout, f"{count} conversion(s) for {cdp_id} at the CDP")


async def page_status(pipeline: Pipeline, source_id: str, api_key: str, port: int) -> int:
    """The set-up page of the source URL: a probe that sends no webhook."""
    async with aiohttp.ClientSession() as session:
        async with session.get(
            pipeline.source_url(source_id, port), params={"api_key": api_key}
        ) as response:
            return response.status


async def answers(
    pipeline: Pipeline, source_id: str, api_key: str, port: int, status: int, timeout: float = 10
) -> None:
    async def probe() -> bool:
        return await page_status(pipeline, source_id, api_key, port) == status

    await wait_for(probe, timeout, f"{source_id} to answer {status} on port {port}")


async def create(pipeline: Pipeline, port: int | None = None, **fields: Any) -> dict[str, Any]:
    source_id = f"src-{uuid.uuid4().hex[:8]}"
    body = {"id": source_id, "exchange_rate": "2", "currency": "USD"} | fields
    status, answer = await pipeline.admin("POST", "/sources", body, port=port)
    assert status == 201, answer
    assert isinstance(answer, dict)
    return answer


async def test_a_source_created_over_the_api_takes_webhooks_on_both_replicas_within_seconds(
    live: Pipeline,
) -> None:
    created = await create(live)
    source_id, api_key = created["id"], created["api_key"]
    assert len(api_key) >= 43  # 32 random bytes, URL-safe
    # The id is taken on every replica at once.
    body = {"id": source_id, "exchange_rate": "1", "currency": "USD"}
    assert (await live.admin("POST", "/sources", body, port=second(live)))[0] == 409
    started = time.monotonic()
    # A: the replica that wrote it answers at once; B follows the topic.
    assert await page_status(live, source_id, api_key, live.ingress_port) == 200
    await answers(live, source_id, api_key, second(live), 200, timeout=10)
    assert time.monotonic() - started < 10

    cdp_id = new_cdp_id()
    status, _ = await live.post(
        source_id, api_key, lead("Pre-Qualified", cdp_id, "10"), port=second(live)
    )
    assert status == 202
    [event] = await delivered(live, cdp_id)
    assert event["source_id"] == source_id and event["value"] == "20.00"


async def test_a_changed_rate_applies_to_the_next_conversion(live: Pipeline) -> None:
    created = await create(live)
    source_id, api_key = created["id"], created["api_key"]
    first = new_cdp_id()
    assert (await live.post(source_id, api_key, lead("Pre-Qualified", first, "10")))[0] == 202
    assert (await delivered(live, first))[0]["value"] == "20.00"

    # Changed through replica B; the next webhook goes through A straight away.
    status, view = await live.admin(
        "PATCH", f"/sources/{source_id}", {"exchange_rate": "3.5"}, port=second(live)
    )
    assert status == 200 and view["exchange_rate"] == "3.5"
    # Replica A's admin API answers with the change at once, not a moment later.
    status, view = await live.admin("GET", f"/sources/{source_id}")
    assert status == 200 and view["exchange_rate"] == "3.5"
    after = new_cdp_id()
    assert (await live.post(source_id, api_key, lead("Pre-Qualified", after, "10")))[0] == 202
    [event] = await delivered(live, after)
    assert event["value"] == "35.00" and event["exchange_rate"] == "3.5"


async def test_a_rotated_key_and_the_previous_one_both_work_until_the_overlap_ends(
    live: Pipeline,
) -> None:
    created = await create(live)
    source_id, old_key = created["id"], created["api_key"]
    await answers(live, source_id, old_key, second(live), 200)

    status, rotated = await live.admin("POST", f"/sources/{source_id}/rotate-key", {"overlap_s": 6})
    assert status == 200, rotated
    new_key = rotated["api_key"]
    ends = datetime.fromisoformat(rotated["previous_api_key_expires_at"])
    assert new_key != old_key
    await answers(live, source_id, new_key, second(live), 200)
    for port in (live.ingress_port, second(live)):
        for key in (old_key, new_key):
            assert await page_status(live, source_id, key, port) == 200
    assert datetime.now(UTC) < ends, "the checks above took longer than the overlap"

    for port in (live.ingress_port, second(live)):
        await answers(live, source_id, old_key, port, 401, timeout=20)
        assert datetime.now(UTC) >= ends
        assert await page_status(live, source_id, new_key, port) == 200


async def test_a_disabled_source_answers_410_and_converts_nothing(live: Pipeline) -> None:
    created = await create(live)
    source_id, api_key = created["id"], created["api_key"]
    status, view = await live.admin("POST", f"/sources/{source_id}/disable")
    assert status == 200 and view["enabled"] is False
    await answers(live, source_id, api_key, second(live), 410)
    status, _ = await live.post(source_id, api_key, lead("Pre-Qualified", new_cdp_id()))
    assert status == 410

    # A webhook the ingress accepted just before the source was disabled.
    cdp_id = new_cdp_id()
    envelope = RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source_id=source_id,
        received_at=datetime.now(UTC),
        method="POST",
        content_type="application/x-www-form-urlencoded",
        parameters=lead("Pre-Qualified", cdp_id),
    )
    await live.produce_raw(
        envelope.model_dump_json().encode(), record_key(source_id, envelope.parameters["lead_id"])
    )

    async def parked() -> list[dict[str, Any]]:
        invalid = await live.read_topic("zoho.webhooks.invalid")
        return [
            r
            for r in invalid
            if (r.get("envelope") or {}).get("envelope_id") == envelope.envelope_id
        ]

    [record] = await wait_for(parked, 60, "the webhook of the disabled source to be parked")
    assert record["reasons"] == [
        f"source {source_id!r} is disabled; replay it with `zoho-cdp-replay --only-invalid` "
        "once enabled"
    ]
    assert live.cdp.events_for(cdp_id) == []

    status, view = await live.admin("POST", f"/sources/{source_id}/enable", port=second(live))
    assert status == 200 and view["enabled"] is True
    await answers(live, source_id, api_key, live.ingress_port, 200)


async def test_a_deleted_source_is_gone_on_both_replicas(live: Pipeline) -> None:
    created = await create(live)
    source_id, api_key = created["id"], created["api_key"]
    await answers(live, source_id, api_key, second(live), 200)
    status, _ = await live.admin("DELETE", f"/sources/{source_id}", port=second(live))
    assert status == 204
    await answers(live, source_id, api_key, live.ingress_port, 404)
    await answers(live, source_id, api_key, second(live), 404)
    assert (await live.admin("GET", f"/sources/{source_id}"))[0] == 404


async def test_a_wrong_or_missing_admin_token_gets_401_and_no_data(live: Pipeline) -> None:
    created = await create(live)
    for token in (None, "", "wrong-token-0123456789", ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x"):
        for method, path, body in (
            ("GET", "/sources", None),
            ("GET", f"/sources/{created['id']}", None),
            ("PATCH", f"/sources/{created['id']}", {"exchange_rate": "9"}),
            ("POST", f"/sources/{created['id']}/rotate-key", None),
            ("DELETE", f"/sources/{created['id']}", None),
        ):
            status, answer = await live.admin(method, path, body, token=token)
            assert status == 401, (token, method, path)
            assert answer == {"error": "missing or wrong admin token", "fields": []}
    status, view = await live.admin("GET", f"/sources/{created['id']}")
    assert status == 200 and view["exchange_rate"] == "2"  # nothing was changed
    # Basic credentials are not the bearer token.
    basic = base64.b64encode(f"admin:{ADMIN_TOKEN}".encode()).decode()
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{live.base_url}/admin/sources", headers={"Authorization": f"Basic {basic}"}
        ) as response:
            assert response.status == 401


async def test_secrets_are_never_answered_and_never_in_the_clear_in_the_topic(
    live: Pipeline,
) -> None:
    created = await create(
        live,
        client_id="1000.CLIENT",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        verify=True,
    )
    source_id, api_key = created["id"], created["api_key"]
    assert created["secrets_set"] == {
        "api_key": True,
        "client_secret": True,
        "refresh_token": True,
        "previous_api_key": False,
    }
    assert "client_secret" not in created and "refresh_token" not in created
    status, rotated = await live.admin("POST", f"/sources/{source_id}/rotate-key")
    assert status == 200
    status, view = await live.admin("GET", f"/sources/{source_id}", port=second(live))
    status_list, listing = await live.admin("GET", "/sources")
    answered = f"{view}{listing}"
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, api_key, rotated["api_key"]):
        assert secret not in answered

    raw = await live.read_topic_bytes("cdp.sources")
    assert source_id.encode() in raw  # not vacuous: the source's records are there
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, api_key, rotated["api_key"]):
        assert secret.encode() not in raw
    # A secret is known to no other process, so the api key must be on the topic encrypted.
    assert b"gAAAAA" in raw  # Fernet's token prefix


async def test_a_restarted_ingress_rebuilds_the_sources_from_the_topic(live: Pipeline) -> None:
    created = await create(live)
    source_id, api_key = created["id"], created["api_key"]
    disabled = await create(live)
    await live.admin("POST", f"/sources/{disabled['id']}/disable")
    await answers(live, disabled["id"], disabled["api_key"], second(live), 410)

    replica = live.processes["ingress-b"]
    replica.stop()
    replica.start()
    await wait_for(lambda: ingress_ready(live, second(live)), 60, "ingress B after its restart")
    assert await page_status(live, source_id, api_key, second(live)) == 200
    assert await page_status(live, disabled["id"], disabled["api_key"], second(live)) == 410
    # The seed did not overwrite what the topic holds.
    status, seeded = await live.admin("GET", "/sources/seeded", port=second(live))
    assert status == 200 and seeded["currency"] == "EUR"


async def test_a_second_worker_started_later_sees_the_same_sources(live: Pipeline) -> None:
    created = await create(live, exchange_rate="4")
    source_id, api_key = created["id"], created["api_key"]
    first = live.processes["worker"]
    later = live.process("worker-later", "streams.main")
    later.start()
    # The first worker leaves: every partition moves to the one that started later.
    first.stop()

    # Faust can drop what is in flight while a group changes: one more webhook per try.
    cdp_ids: list[str] = []
    last_sent = 0.0

    async def converted() -> list[dict[str, Any]] | None:
        nonlocal last_sent
        if time.monotonic() - last_sent > 15:
            cdp_ids.append(new_cdp_id())
            status, _ = await live.post(source_id, api_key, lead("Pre-Qualified", cdp_ids[-1]))
            assert status == 202
            last_sent = time.monotonic()
        return [e for c in cdp_ids for e in live.cdp.events_for(c)] or None

    [event, *_] = await wait_for(converted, 150, "the later worker to convert")
    assert event["value"] == "40.00"
    invalid = await live.read_topic("zoho.webhooks.invalid")
    assert not [r for r in invalid if (r.get("envelope") or {}).get("source_id") == source_id]
