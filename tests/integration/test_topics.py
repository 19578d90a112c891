"""`zoho-cdp-topics` against the real broker, and the processes that refuse to start
without the topics it creates."""

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from harness.pipeline import REPO, free_port, wait_for
from sources.crypto import generate_key

pytestmark = pytest.mark.integration
DAY_MS = 24 * 60 * 60 * 1000
MANAGED = ("cleanup.policy", "retention.ms", "max.message.bytes")
SOURCES_YAML = """
sources:
  - id: shop
    api_key: shop-api-key-0123456789
    exchange_rate: "1"
    currency: USD
"""


def environment(bootstrap: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES_YAML)
    return dict(os.environ) | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "TOPIC_PARTITIONS": "2",
        "APP_ID": f"{prefix}worker",
        "SOURCES_FILE": str(sources),
        "SOURCES_ENCRYPTION_KEYS": generate_key(),
        "WORKER_DATA_DIR": str(tmp_path / "worker-data"),
        "WORKER_METRICS_PORT": "0",
        "INGRESS_PORT": str(free_port()),
        "CDP_TOKEN": "topics-test-token",
    }


def run(module: str, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", module, *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


async def topic_settings(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        return {
            name: {entry[0]: entry[1] for entry in entries if entry[0] in MANAGED}
            for response in responses
            for _, _, _, name, entries in response.resources
        }
    finally:
        await admin.close()


async def set_by_hand(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    """What an operator might do with kafka-configs.sh (a full replacement, like it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    finally:
        await admin.close()


async def test_the_command_creates_everything_once_then_changes_only_what_differs(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"topics-{uuid.uuid4().hex[:8]}."
    env = environment(kafka_bootstrap, prefix, tmp_path)
    names = [
        f"{prefix}zoho.webhooks.raw",
        f"{prefix}zoho.webhooks.replay",
        f"{prefix}zoho.webhooks.invalid",
        f"{prefix}cdp.conversions",
        f"{prefix}cdp.conversions.deadletter",
        f"{prefix}cdp.conversions.delivered",
        f"{prefix}worker-record-states-changelog",
        f"{prefix}zoho.sweep.marks",
        f"{prefix}cdp.sources",
    ]

    first = await asyncio.to_thread(run, "streams.commands.topics", env)
    assert first.returncode == 0, first.stderr
    assert sorted(line.split()[1] for line in first.stdout.splitlines()) == sorted(names)
    assert all(line.startswith("create ") for line in first.stdout.splitlines())
    created = await topic_settings(kafka_bootstrap, names)
    assert created[f"{prefix}zoho.webhooks.raw"]["retention.ms"] == str(30 * DAY_MS)
    assert created[f"{prefix}zoho.webhooks.replay"]["retention.ms"] == str(30 * DAY_MS)
    assert created[f"{prefix}cdp.conversions"]["retention.ms"] == str(7 * DAY_MS)
    assert created[f"{prefix}cdp.conversions.deadletter"]["retention.ms"] == str(30 * DAY_MS)
    assert created[f"{prefix}worker-record-states-changelog"]["cleanup.policy"] == "compact"
    marks = created[f"{prefix}zoho.sweep.marks"]
    assert (marks["cleanup.policy"], marks["retention.ms"]) == ("compact", "-1")
    assert created[f"{prefix}cdp.sources"]["cleanup.policy"] == "compact"
    assert created[f"{prefix}cdp.sources"]["retention.ms"] == "-1"

    second = await asyncio.to_thread(run, "streams.commands.topics", env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "all topics are as wanted; nothing changed\n"
    assert await topic_settings(kafka_bootstrap, names) == created

    # An operator's own setting on the topic must survive the command's alteration.
    raw = f"{prefix}zoho.webhooks.raw"
    await set_by_hand(
        kafka_bootstrap,
        raw,
        {
            "cleanup.policy": "delete",
            "retention.ms": str(30 * DAY_MS),
            "max.message.bytes": "2000000",
        },
    )
    third = await asyncio.to_thread(
        run, "streams.commands.topics", env, "--retention-days-zoho-webhooks-raw", "10"
    )
    assert third.returncode == 0, third.stderr
    assert third.stdout == f"alter {raw} retention.ms {30 * DAY_MS} -> {10 * DAY_MS}\n"

    async def applied() -> dict[str, dict[str, str]] | None:
        settings = await topic_settings(kafka_bootstrap, names)
        return settings if settings[raw]["retention.ms"] == str(10 * DAY_MS) else None

    altered = await wait_for(applied, timeout=30, what=f"{raw}'s new retention")
    assert altered[raw] == created[raw] | {
        "retention.ms": str(10 * DAY_MS),
        "max.message.bytes": "2000000",
    }
    assert {n: s for n, s in altered.items() if n != raw} == {
        n: s for n, s in created.items() if n != raw
    }


async def test_a_changelog_faust_created_first_stays_compacted(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"topics-{uuid.uuid4().hex[:8]}."
    env = environment(kafka_bootstrap, prefix, tmp_path)
    changelog = f"{prefix}worker-record-states-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        # As Faust declares it: compacted, retention left to the broker.
        await admin.create_topics(
            [NewTopic(changelog, 2, 1, topic_configs={"cleanup.policy": "compact"})]
        )

        # Creation is asynchronous: the command must find the topic, not race to create it.
        async def visible() -> bool:
            return changelog in await admin.list_topics()

        await wait_for(visible, timeout=30, what=f"{changelog} to be visible")
    finally:
        await admin.close()

    result = await asyncio.to_thread(run, "streams.commands.topics", env)
    assert result.returncode == 0, result.stderr
    assert f"alter {changelog} retention.ms " in result.stdout

    # The broker applies an accepted change a moment later.
    async def kept_forever() -> bool:
        [settings] = (await topic_settings(kafka_bootstrap, [changelog])).values()
        return settings["retention.ms"] == "-1"

    await wait_for(kept_forever, timeout=30, what=f"{changelog} to keep its records forever")
    [settings] = (await topic_settings(kafka_bootstrap, [changelog])).values()
    assert settings["cleanup.policy"] == "compact"


@pytest.mark.parametrize("module", ["streams.main", "ingress.main"])
async def test_the_worker_and_the_ingress_refuse_to_start_without_their_topics(
    kafka_bootstrap: str, tmp_path: Path, module: str
) -> None:
    env = environment(kafka_bootstrap, f"missing-{uuid.uuid4().hex[:8]}.", tmp_path)
    result = await asyncio.to_thread(run, module, env)
    assert result.returncode != 0
    assert "do not exist: create them with `zoho-cdp-topics`" in result.stderr
    assert "Traceback" not in result.stderr  # one clear line, not a stack
    # The check itself must not create them (a broker may auto-create on metadata requests).
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert not [t for t in await admin.list_topics() if t.startswith(env["TOPIC_PREFIX"])]
    finally:
        await admin.close()
