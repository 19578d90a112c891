"""`zoho-cdp-replay` after a mapping fix: the fixed sources file is imported into the running
pipeline, a window is replayed, and exactly the newly mapped conversions come out."""

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from harness.pipeline import (
    REPO,
    Pipeline,
    ingress_ready,
    running_pipeline,
    wait_for,
)

pytestmark = pytest.mark.integration

SOURCES = """
sources:
  - id: shop
    api_key: shop-api-key-0123456789
    exchange_rate: "2"
    currency: USD{shop_map}
  - id: other
    api_key: other-api-key-0123456789
    exchange_rate: "1"
    currency: EUR{other_map}
  - id: field
    api_key: field-api-key-0123456789
    exchange_rate: "1"
    currency: USD{field_amount}
"""
CONTACTED_IS_A_LEAD = """
    status_map:
      Leads:
        Contacted: Lead"""
BEFORE = SOURCES.format(shop_map="", other_map="", field_amount="")
# The fixes: Contacted now counts as a Lead, and "field" sends its amount under another name.
AFTER = SOURCES.format(
    shop_map=CONTACTED_IS_A_LEAD,
    other_map=CONTACTED_IS_A_LEAD,
    field_amount="\n    amount_field: expected_revenue",
)
KEYS = {source: f"{source}-api-key-0123456789" for source in ("shop", "other", "field")}
POISON = b"{not json"
CONSUMED = ("zoho.webhooks.raw", "zoho.webhooks.replay", "cdp.conversions")


@dataclass
class Scenario:
    pipeline: Pipeline
    cdp_ids: dict[str, str] = field(default_factory=dict)  # letter -> cdp_id
    envelope_ids: dict[str, str] = field(default_factory=dict)  # letter -> envelope_id
    times: dict[str, datetime] = field(default_factory=dict)

    lead_ids: dict[str, str] = field(default_factory=dict)  # letter -> Zoho record id

    async def post(
        self, letter: str, source: str, status: str, *, again: str = "", **fields: str
    ) -> None:
        """A webhook of a new record, or (`again`) another of that letter's record."""
        if not again:
            self.cdp_ids[letter] = fields.pop("cdp_id", f"cdp-{letter}-{uuid.uuid4().hex[:8]}")
            self.lead_ids[letter] = uuid.uuid4().hex[:12]
        record = again or letter
        webhook = {
            "lead_id": self.lead_ids[record],
            "cdp_id": self.cdp_ids[record],
            "lead_status": status,
            "modified_by": "jane@example.com",
        } | fields
        code, body = await self.pipeline.post(source, KEYS[source], webhook)
        assert code == 202, body
        self.envelope_ids[letter] = body["envelope_id"]

    def mark(self, name: str) -> str:
        self.times[name] = datetime.now(UTC)
        return self.times[name].isoformat()


def lead_fields(amount: str = "100") -> dict[str, str]:
    return {"annual_revenue": amount}


async def worker_caught_up(pipeline: Pipeline) -> bool:
    """Every message on the topics the worker reads is processed and committed. The
    committed offsets are read first: an event counted as committed has had its
    conversion confirmed before the end offsets are read."""
    offsets = await consumed_offsets(pipeline)
    return all((committed or 0) >= end for committed, end in offsets.values())


async def consumed_offsets(pipeline: Pipeline) -> dict[TopicPartition, tuple[int | None, int]]:
    """(committed offset or None, end offset) of every partition the worker reads; the
    committed offsets are read first."""
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(pipeline.env["APP_ID"])
    finally:
        await admin.close()
    partitions = [
        TopicPartition(pipeline.topic(name), p)
        for name in CONSUMED
        for p in range(int(pipeline.env["TOPIC_PARTITIONS"]))
    ]
    end = await end_offsets(pipeline.bootstrap, partitions)
    return {tp: (committed[tp].offset if tp in committed else None, end[tp]) for tp in partitions}


async def end_offsets(
    bootstrap: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def records(pipeline: Pipeline, name: str) -> list[tuple[int, bytes | None, dict[str, Any]]]:
    """(partition, key, value) of every message of a topic so far but the poison one."""
    topic = pipeline.topic(name)
    partitions = [TopicPartition(topic, p) for p in range(int(pipeline.env["TOPIC_PARTITIONS"]))]
    consumer = AIOKafkaConsumer(bootstrap_servers=pipeline.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: list[tuple[int, bytes | None, dict[str, Any]]] = []
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found += [
                    (r.partition, r.key, json.loads(r.value)) for r in batch if r.value != POISON
                ]
        return found
    finally:
        await consumer.stop()


def replay_command(pipeline: Pipeline, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "streams.commands.replay", *arguments],
        cwd=REPO,
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def replay_window(scenario: Scenario, *extra: str) -> subprocess.CompletedProcess[str]:
    """Replays source "shop" between the window marks."""
    since, until = scenario.times["window_start"], scenario.times["window_end"]
    return await asyncio.to_thread(
        replay_command,
        scenario.pipeline,
        *extra,
        "--source",
        "shop",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
    )


def conversions_by_letter(scenario: Scenario, events: list[dict[str, Any]]) -> dict[str, list[str]]:
    letters = {cdp_id: letter for letter, cdp_id in scenario.cdp_ids.items()}
    found: dict[str, list[str]] = {letter: [] for letter in scenario.cdp_ids}
    for event in events:
        if event["cdp_id"] in letters:
            found[letters[event["cdp_id"]]].append(event["event_name"])
    return {letter: sorted(names) for letter, names in found.items()}


@pytest.fixture(scope="module")
def scenario(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Webhooks processed with the old sources; then the fixed sources file is imported
    over them, without a restart. Nothing is replayed yet."""
    workdir: Path = tmp_path_factory.mktemp("replay")
    with running_pipeline(kafka_bootstrap, workdir, BEFORE) as pipeline:
        scenario = Scenario(pipeline)

        async def before_the_fix() -> None:
            await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
            await scenario.post("E", "shop", "Contacted", **lead_fields())  # before the window
            scenario.mark("window_start")
            await scenario.post("A", "shop", "Contacted", **lead_fields("10"))
            await scenario.post("A2", "shop", "Pre-Qualified", again="A", **lead_fields("10"))
            await scenario.post("B", "shop", "Contacted", **lead_fields("20"))
            await scenario.post("C", "shop", "Pre-Qualified", **lead_fields("30"))
            await scenario.post("D", "shop", "Not Contacted", **lead_fields())
            await scenario.post("F", "other", "Contacted", **lead_fields())  # another source
            scenario.mark("window_end")
            await scenario.post("G", "shop", "Contacted", **lead_fields())  # after the window

            scenario.mark("invalid_start")
            # Sent under a name the source does not expect yet: parked, fixed later.
            await scenario.post("H1", "field", "Pre-Qualified", expected_revenue="100")
            await scenario.post("H2", "field", "Pre-Qualified", expected_revenue="200")
            # Invalid before and after the fix.
            await scenario.post("J", "field", "Pre-Qualified", cdp_id="", expected_revenue="1")
            await scenario.post("K", "field", "Pre-Qualified", **lead_fields("5"))  # valid
            await pipeline.produce_raw(POISON, key=b"field:poison")

            await wait_for(lambda: worker_caught_up(pipeline), 120, "the worker to catch up")
            # The poison message and the parked webhooks have their rejected_at by now.
            scenario.mark("invalid_end")
            found = conversions_by_letter(scenario, pipeline.cdp.cdp.delivered)
            assert {letter: names for letter, names in found.items() if names} == {
                "A": ["ConvertedLead"],
                "C": ["ConvertedLead"],
                "K": ["ConvertedLead"],
            }

        asyncio.run(before_the_fix())
        fixed = workdir / "sources-fixed.yaml"
        fixed.write_text(AFTER)
        imported = subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "sources.command", "import", str(fixed), "--force"],
            cwd=REPO,
            env=pipeline.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert imported.returncode == 0, imported.stdout + imported.stderr
        assert "shop, other, field" in imported.stdout
        yield scenario
        for process in pipeline.processes.values():
            print(f"--- {process.name} log tail ---\n{process.log_tail()}")  # noqa: T201


async def test_a_dry_run_counts_and_sends_nothing(scenario: Scenario) -> None:
    pipeline = scenario.pipeline
    replay_partitions = [
        TopicPartition(pipeline.topic("zoho.webhooks.replay"), p) for p in range(2)
    ]
    before = await end_offsets(pipeline.bootstrap, replay_partitions)
    result = await replay_window(scenario, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Dry run: nothing was sent.")
    assert "  would replay          5  (shop: 5)\n" in result.stdout
    assert await end_offsets(pipeline.bootstrap, replay_partitions) == before


async def test_a_replayed_window_emits_exactly_the_newly_mapped_conversions(
    scenario: Scenario,
) -> None:
    pipeline = scenario.pipeline
    before = conversions_by_letter(scenario, await pipeline.read_topic("cdp.conversions"))

    result = await replay_window(scenario)
    assert result.returncode == 0, result.stderr
    assert "  replayed              5  (shop: 5)\n" in result.stdout
    assert "100%" in result.stderr  # the progress bar's last line

    async def leads_delivered() -> bool:
        found = conversions_by_letter(scenario, pipeline.cdp.cdp.delivered)
        return "Lead" in found["A"] and "Lead" in found["B"]

    await wait_for(leads_delivered, 120, "Lead conversions of A and B at the CDP")
    await wait_for(lambda: worker_caught_up(pipeline), 120, "the worker to process the replay")

    after = conversions_by_letter(scenario, await pipeline.read_topic("cdp.conversions"))
    new = {letter: sorted(set(after[letter]) - set(before[letter])) for letter in after}
    assert {letter: names for letter, names in new.items() if names} == {
        "A": ["Lead"],
        "B": ["Lead"],
    }
    # Nothing converted earlier is emitted again.
    assert after["A"] == ["ConvertedLead", "Lead"] and after["C"] == ["ConvertedLead"]
    emitted = [e["event_id"] for e in await pipeline.read_topic("cdp.conversions")]
    assert len(emitted) == len(set(emitted))
    # The sink delivers at least once (an event may reach the CDP twice around a worker
    # start); the CDP keeps one per event_id, and that set is exactly what was emitted.
    assert {e["event_id"] for e in pipeline.cdp.cdp.delivered} == set(emitted)

    lead_a = next(
        e for e in pipeline.cdp.events_for(scenario.cdp_ids["A"]) if e["event_name"] == "Lead"
    )
    # The conversion happened when Zoho said so, not when it was replayed.
    assert scenario.times["window_start"] <= datetime.fromisoformat(lead_a["event_time"])
    assert datetime.fromisoformat(lead_a["event_time"]) < scenario.times["window_end"]
    assert lead_a["value"] == "20.00" and lead_a["status"] == "Contacted"

    # Each replayed envelope kept its original key and partition, and is marked.
    raw = {v["envelope_id"]: (p, k) for p, k, v in await records(pipeline, "zoho.webhooks.raw")}
    replayed = [
        (p, k, v)
        for p, k, v in await records(pipeline, "zoho.webhooks.replay")
        if v["source_id"] == "shop"
    ]
    assert sorted(v["envelope_id"] for _, _, v in replayed) == sorted(
        scenario.envelope_ids[letter] for letter in ("A", "A2", "B", "C", "D")
    )
    for partition, key, value in replayed:
        assert (partition, key) == raw[value["envelope_id"]]
        assert value["replayed_at"] is not None


async def test_only_invalid_replays_only_the_parked_envelopes(scenario: Scenario) -> None:
    pipeline = scenario.pipeline
    result = await asyncio.to_thread(
        replay_command,
        pipeline,
        "--only-invalid",
        "--since",
        scenario.times["invalid_start"].isoformat(),
        "--until",
        scenario.times["invalid_end"].isoformat(),
    )
    assert result.returncode == 0, result.stderr
    assert "  replayed              3  (field: 3)\n" in result.stdout
    assert "  undecodable           1  selected, but no envelope to replay\n" in result.stdout

    replayed = [
        v
        for _, _, v in await records(pipeline, "zoho.webhooks.replay")
        if v["source_id"] == "field"
    ]
    assert sorted(v["envelope_id"] for v in replayed) == sorted(
        scenario.envelope_ids[letter] for letter in ("H1", "H2", "J")
    )

    async def fixed_ones_delivered() -> bool:
        found = conversions_by_letter(scenario, pipeline.cdp.cdp.delivered)
        return bool(found["H1"] and found["H2"])

    await wait_for(fixed_ones_delivered, 120, "conversions of the fixed webhooks")
    await wait_for(lambda: worker_caught_up(pipeline), 120, "the worker to process the replay")
    found = conversions_by_letter(scenario, await pipeline.read_topic("cdp.conversions"))
    assert found["H1"] == ["ConvertedLead"] and found["H2"] == ["ConvertedLead"]
    assert found["K"] == ["ConvertedLead"] and found["J"] == []
    values = {e["cdp_id"]: e["value"] for e in pipeline.cdp.cdp.delivered}
    assert values[scenario.cdp_ids["H2"]] == "200.00"

    # The one that is still wrong is parked again, now from the replay topic.
    parked_again = [
        record
        for record in await pipeline.read_topic("zoho.webhooks.invalid")
        if record["envelope"]
        and record["envelope"]["envelope_id"] == scenario.envelope_ids["J"]
        and record["topic"] == pipeline.topic("zoho.webhooks.replay")
    ]
    assert len(parked_again) == 1
