"""The sweep and the backfill through the real processes: the worker's leader-only timer
reads a stand-in Zoho CRM every two seconds, and what it finds reaches the CDP once."""

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from harness.pipeline import (
    REPO,
    Pipeline,
    Process,
    free_port,
    ingress_ready,
    running_pipeline,
    wait_for,
)
from tests.zoho_stand_in import StandInThread, ZohoStandIn
from zoho.listing import zoho_time

pytestmark = pytest.mark.integration

KEY = "swept-api-key-0123456789"
OVERLAP_S = 60
NOW = datetime.now(UTC).replace(microsecond=0)


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def lead(status: str, cdp_id: str, modified: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "Lead_Status": status,
        "Annual_Revenue": 1000,
        "CDP_ID": cdp_id,
        "Modified_By": {"name": "Priya Raman", "id": "5725767000000411001"},
        "Modified_Time": zoho_time(modified),
        "Email": f"{cdp_id}@example.com",
    } | fields


def new_id() -> str:
    return f"5725767{uuid.uuid4().int % 10**12:012d}"


@pytest.fixture(scope="module")
def zoho() -> Iterator[ZohoStandIn]:
    stand_in = ZohoStandIn()
    thread = StandInThread(stand_in)
    thread.start()
    yield stand_in
    thread.stop()


@pytest.fixture(scope="module")
def swept(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, zoho: ZohoStandIn
) -> Iterator[Pipeline]:
    workdir: Path = tmp_path_factory.mktemp("sweep")
    credentials = f"""
    client_id: "{zoho.client_id}"
    client_secret: ${{ZOHO_CLIENT_SECRET}}
    refresh_token: ${{ZOHO_REFRESH_TOKEN}}
    accounts_url: {zoho.base_url}"""
    sources_yaml = f"""
sources:
  - id: swept
    api_key: {KEY}
    exchange_rate: "1"
    currency: USD{credentials}
  # The control: the same CRM, the sweep off.
  - id: unswept
    api_key: unswept-api-key-0123456789
    exchange_rate: "1"
    currency: USD
    sweep: false{credentials}
"""
    env = {
        "ZOHO_CLIENT_SECRET": zoho.client_secret,
        "ZOHO_REFRESH_TOKEN": zoho.new_refresh_token(),
        "ZOHO_MAX_ATTEMPTS": "3",
        "ZOHO_MAX_BACKOFF_S": "1",
        "ZOHO_SWEEP_INTERVAL_S": "2",
        "ZOHO_SWEEP_OVERLAP_S": str(OVERLAP_S),
        "ZOHO_SWEEP_FIRST_LOOKBACK_S": str(3 * 24 * 3600),
        "WORKER_METRICS_PORT": str(free_port()),
    }
    with running_pipeline(kafka_bootstrap, workdir, sources_yaml, env) as running:
        yield running
        for process in running.processes.values():
            print(f"--- {process.name} log tail ---\n{process.log_tail()}")  # noqa: T201


async def metric(pipeline: Pipeline, name: str, **labels: str) -> float:
    """A counter of the worker's /metrics, 0 when it has no such sample yet."""
    url = f"http://127.0.0.1:{pipeline.env['WORKER_METRICS_PORT']}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def events(pipeline: Pipeline, cdp_id: str, source_id: str = "swept") -> list[dict[str, Any]]:
    return [e for e in pipeline.cdp.events_for(cdp_id) if e["source_id"] == source_id]


async def delivered(pipeline: Pipeline, cdp_id: str, what: str) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]]:
        return events(pipeline, cdp_id)

    # Faust's first start-up is slow: this deadline covers joining the group.
    return await wait_for(probe, 180, what)


async def worker_caught_up(pipeline: Pipeline) -> None:
    """The worker group committed to the end of zoho.webhooks.raw."""
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.bootstrap)
    await admin.start()
    try:

        async def probe() -> bool:
            topic = pipeline.topic("zoho.webhooks.raw")
            partitions = [TopicPartition(topic, p) for p in range(2)]
            consumer = AIOKafkaConsumer(bootstrap_servers=pipeline.bootstrap)
            await consumer.start()
            try:
                end = await consumer.end_offsets(partitions)
            finally:
                await consumer.stop()
            group = pipeline.env["APP_ID"]
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            return all(
                end[tp] == 0 or (tp in committed and committed[tp].offset >= end[tp])
                for tp in partitions
            )

        await wait_for(probe, 60, "the worker to commit to the end of zoho.webhooks.raw")
    finally:
        await admin.close()


async def test_a_webhook_that_never_arrived_converts_from_the_next_sweep(
    swept: Pipeline, zoho: ZohoStandIn
) -> None:
    lost, cdp_id = new_id(), f"cdp-lost-{uuid.uuid4().hex[:6]}"
    zoho.records[("Leads", lost)] = lead("Pre-Qualified", cdp_id, at(30))
    lost_deal, deal_cdp_id = new_id(), f"cdp-deal-{uuid.uuid4().hex[:6]}"
    zoho.records[("Deals", lost_deal)] = {
        "Stage": "Closed Won",
        "Amount": 2500,
        "CDP_ID": deal_cdp_id,
        "Modified_By": {"name": "Priya Raman", "id": "5725767000000411001"},
        "Modified_Time": zoho_time(at(29)),
    }

    [event] = await delivered(swept, cdp_id, "the sweep's conversion at the CDP")
    assert event["record_id"] == lost and event["event_name"] == "ConvertedLead"
    assert datetime.fromisoformat(event["event_time"]) == at(30)
    assert event["event_time_source"] == "modified_time" and event["late"] is False
    [deal] = await delivered(swept, deal_cdp_id, "the sweep's deal conversion")
    assert (deal["module"], deal["event_name"], deal["value"]) == ("Deals", "Purchase", "2500.00")
    log = swept.processes["worker"].log_path.read_text(errors="replace")
    assert "sweep failed" not in log and '"message": "sweep read"' in log
    assert await metric(swept, "worker_sweep_only_conversions_total", source="swept") == 2
    assert await metric(swept, "worker_conversions_total", origin="sweep", source="swept") == 2
    assert await metric(swept, "worker_zoho_api_calls_total", call="list", source="swept") > 0
    assert await metric(swept, "worker_sweep_records_total", module="Deals", source="swept") >= 1
    # Sweeps go on reading the record again in their overlap; it is published once.
    calls = len(zoho.list_calls)
    await wait_for(lambda: _now(len(zoho.list_calls) >= calls + 6), 60, "three more sweeps")
    published = [
        message
        for message in await swept.read_topic("zoho.webhooks.raw")
        if message["parameters"].get("lead_id") == lost
    ]
    assert [message["origin"] for message in published] == ["sweep"]
    # The control: the same record, for the source whose sweep is off, converts nothing.
    await worker_caught_up(swept)
    assert events(swept, cdp_id, "unswept") == []
    assert zoho.refreshes() == 1, "one access token serves every sweep of the worker"


async def test_a_change_seen_by_webhook_and_sweep_converts_once(
    swept: Pipeline, zoho: ZohoStandIn
) -> None:
    await wait_for(lambda: ingress_ready(swept), 60, "the ingress to be ready")
    both, cdp_id = new_id(), f"cdp-both-{uuid.uuid4().hex[:6]}"
    webhook = {
        "lead_id": both,
        "cdp_id": cdp_id,
        "lead_status": "Pre-Qualified",
        "annual_revenue": "1000",
        "modified_by": "Priya Raman",
        "modified_time": zoho_time(at(1)),
    }
    code, _ = await swept.post("swept", KEY, webhook)
    assert code == 202
    [event] = await delivered(swept, cdp_id, "the webhook's conversion")
    assert event["event_time_source"] == "modified_time"
    assert datetime.fromisoformat(event["event_time"]) == at(1)

    zoho.records[("Leads", both)] = lead("Pre-Qualified", cdp_id, at(1))

    async def swept_in() -> bool:
        return any(
            message.get("origin") == "sweep" and message["parameters"].get("lead_id") == both
            for message in await swept.read_topic("zoho.webhooks.raw")
        )

    await wait_for(swept_in, 60, "the sweep to publish the same record")
    await worker_caught_up(swept)
    assert len(events(swept, cdp_id)) == 1
    conversions = [
        message
        for message in await swept.read_topic("cdp.conversions")
        if message["cdp_id"] == cdp_id
    ]
    assert len(conversions) == 1


async def test_a_status_passed_through_is_recovered_from_failures_and_timeline(
    swept: Pipeline, zoho: ZohoStandIn
) -> None:
    passed, cdp_id = new_id(), f"cdp-passed-{uuid.uuid4().hex[:6]}"
    # Changes made now, in Zoho's clock: after the sweep's mark.
    now = datetime.now(UTC).replace(microsecond=0)
    qualified_at, left_at = now - timedelta(seconds=20), now - timedelta(seconds=10)
    zoho.add_status_change("Leads", passed, "New", "Pre-Qualified", zoho_time(qualified_at), "Sam")
    zoho.add_status_change("Leads", passed, "Pre-Qualified", "Contacted", zoho_time(left_at), "Ann")
    zoho.add_webhook_failure("Leads", passed, zoho_time(qualified_at + timedelta(seconds=2)))
    zoho.records[("Leads", passed)] = lead("Contacted", cdp_id, left_at)

    [event] = await delivered(swept, cdp_id, "the recovered conversion")
    assert event["status"] == "Pre-Qualified" and event["modified_by"] == "Sam"
    assert event["event_time_source"] == "timeline"
    assert datetime.fromisoformat(event["event_time"]) == qualified_at
    assert f"Leads/{passed}" in zoho.timeline_requests


async def latest_mark(pipeline: Pipeline, key: bytes = b"swept:Leads") -> datetime | None:
    """The latest mark written under the key."""
    consumer = AIOKafkaConsumer(bootstrap_servers=pipeline.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(pipeline.topic("zoho.sweep.marks"), 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        mark = None
        while await consumer.position(partition) < end:
            for record in (await consumer.getmany(partition, timeout_ms=500)).get(partition, []):
                if record.key == key and record.value:
                    mark = datetime.fromisoformat(json.loads(record.value)["mark"])
        return mark
    finally:
        await consumer.stop()


async def test_the_sweep_resumes_from_its_mark_after_a_restart_and_runs_on_one_worker_of_two(
    swept: Pipeline, zoho: ZohoStandIn
) -> None:
    await wait_for(lambda: latest_mark(swept), 120, "a sweep mark")
    swept.processes["worker"].stop()
    mark = await latest_mark(swept)
    assert mark is not None
    tokens_before = {call.access_token for call in zoho.list_calls}
    calls_before = len(zoho.list_calls)

    swept.processes["worker"].start()

    async def first_call_after_restart() -> Any:
        for call in zoho.list_calls[calls_before:]:
            if call.access_token not in tokens_before and call.module == "Leads":
                return call
        return None

    call = await wait_for(first_call_after_restart, 180, "the restarted worker's first sweep")
    # From the mark, not from the first-sweep look-back of three days.
    assert call.if_modified_since == zoho_time(mark - timedelta(seconds=OVERLAP_S))

    # Its own metrics port and data directory: the first worker holds the configured ones
    # (RocksDB locks a data directory to one process).
    second = Process(
        "worker-2",
        [sys.executable, "-m", "streams.main"],
        swept.env
        | {"WORKER_METRICS_PORT": "0", "WORKER_DATA_DIR": str(swept.workdir / "worker-2-data")},
        swept.workdir / "worker-2.log",
    )
    swept.processes["worker-2"] = second
    second.start()

    async def both_ready() -> bool:
        logs = [
            swept.processes[name].log_path.read_text(errors="replace")
            for name in ("worker", "worker-2")
        ]
        return all("Ready" in text for text in logs)

    await wait_for(both_ready, 180, "both workers to be ready")
    # Let the group settle after the second worker joined: a few sweeps (two list calls
    # each, Leads and Deals) go by first.
    settled = len(zoho.list_calls)
    await wait_for(lambda: _now(len(zoho.list_calls) >= settled + 10), 90, "sweeps after the join")
    window_start = len(zoho.list_calls)
    await wait_for(
        lambda: _now(len(zoho.list_calls) >= window_start + 8), 60, "eight more sweep calls"
    )
    window = zoho.list_calls[window_start:]
    assert len({call.access_token for call in window}) == 1, "two workers swept at once"
    # Still converting while both run.
    later, cdp_id = new_id(), f"cdp-later-{uuid.uuid4().hex[:6]}"
    zoho.records[("Leads", later)] = lead("Pre-Qualified", cdp_id, datetime.now(UTC))
    await delivered(swept, cdp_id, "a conversion with two workers")
    second.stop()


async def _now(value: bool) -> bool:
    return value


def backfill(pipeline: Pipeline, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "streams.commands.backfill", *arguments],
        cwd=REPO,
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_backfill_dry_run_counts_by_event_and_sends_nothing(
    swept: Pipeline, zoho: ZohoStandIn
) -> None:
    old = [new_id() for _ in range(3)]
    for n, record_id in enumerate(old):
        status = "Pre-Qualified" if n < 2 else "Contacted"
        zoho.records[("Leads", record_id)] = lead(status, f"cdp-old-{record_id}", at(60 * 24 * 40))
    zoho.records[("Deals", new_id())] = {
        "Stage": "Closed Won",
        "Amount": 5000,
        "CDP_ID": "cdp-old-deal",
        "Modified_By": {"name": "Priya Raman"},
        "Modified_Time": zoho_time(at(60 * 24 * 41)),
    }
    since, until = zoho_time(at(60 * 24 * 45)), zoho_time(at(60 * 24 * 30))

    result = backfill(swept, "--source", "swept", "--since", since, "--until", until, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "read 4 records (0 without a CDP ID, skipped)" in result.stdout
    assert "would publish 4 envelopes" in result.stdout
    assert "ConvertedLead 2, Purchase 1" in result.stdout
    assert "dry run: nothing was sent" in result.stdout
    assert "backfill" in result.stderr  # the progress bar
    raw = await swept.read_topic("zoho.webhooks.raw")
    assert not [message for message in raw if message.get("origin") == "backfill"]

    result = backfill(
        swept, "--source", "swept", "--module", "Leads", "--since", since, "--until", until
    )
    assert result.returncode == 0, result.stderr
    [first, *_] = await delivered(swept, f"cdp-old-{old[0]}", "a backfilled conversion")
    assert first["late"] is True and first["event_time_source"] == "modified_time"
    await delivered(swept, f"cdp-old-{old[1]}", "the second backfilled conversion")
    assert await metric(swept, "worker_late_conversions_total", source="swept") == 2
    assert await metric(swept, "worker_conversions_total", origin="backfill", source="swept") == 2
    raw = await swept.read_topic("zoho.webhooks.raw")
    assert len([message for message in raw if message.get("origin") == "backfill"]) == 3
    assert json.loads(json.dumps(first))["record_id"] == old[0]
