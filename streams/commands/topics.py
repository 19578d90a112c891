"""`zoho-cdp-topics`: create or update every topic the pipeline uses. Idempotent."""

import argparse
import asyncio
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas import topics
from schemas.settings import Settings
from streams.commands.topic_plan import Change, DesiredTopic, desired_topics, plan
from streams.kafka_admin import admin_client

VISIBLE_TIMEOUT_S = 30


# DescribeConfigs v1+ names where a value comes from; this one is "set on the topic".
DYNAMIC_TOPIC_CONFIG = 1
TOPIC_ALREADY_EXISTS = 36

Configs = dict[str, dict[str, str]]


async def existing_configs(admin: AIOKafkaAdminClient, names: list[str]) -> tuple[Configs, Configs]:
    """Each present topic's effective settings, and the ones set on the topic itself."""
    present = set(await admin.list_topics()) & set(names)
    if not present:
        return {}, {}
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(present)]
    )
    effective: Configs = {}
    overrides: Configs = {}
    for response in responses:
        for code, message, _, name, entries in response.resources:
            if code:
                raise RuntimeError(f"cannot read the settings of {name}: {message or code}")
            effective[name] = {entry[0]: entry[1] for entry in entries}
            overrides[name] = {
                entry[0]: entry[1]
                for entry in entries
                if _set_on_topic(entry[3]) and entry[1] is not None
            }
    return effective, overrides


def _set_on_topic(source: int | bool) -> bool:
    # DescribeConfigs v0 has an is_default flag where later versions have the source.
    if isinstance(source, bool):
        return not source
    return source == DYNAMIC_TOPIC_CONFIG


async def apply(admin: AIOKafkaAdminClient, settings: Settings, changes: list[Change]) -> None:
    creations = [
        NewTopic(c.topic, c.partitions, settings.topic_replication_factor, topic_configs=c.configs)
        for c in changes
        if c.action == "create"
    ]
    if creations:
        response = await admin.create_topics(creations)
        failures = [
            (name, code, *detail)
            for name, code, *detail in response.topic_errors
            if code not in (0, TOPIC_ALREADY_EXISTS)
        ]
        if failures:
            raise RuntimeError(f"Kafka refused to create topics: {failures}")
    alterations = [
        ConfigResource(ConfigResourceType.TOPIC, c.topic, configs=c.overrides)
        for c in changes
        if c.action == "alter"
    ]
    if alterations:
        responses = await admin.alter_configs(alterations)
        refused = [
            (name, code, message)
            for response in responses
            for code, message, _, name in response.resources
            if code
        ]
        if refused:
            raise RuntimeError(f"Kafka refused to change topic settings: {refused}")


async def set_up_topics(settings: Settings, wanted: list[DesiredTopic]) -> list[Change]:
    async with admin_client(settings) as admin:
        effective, overrides = await existing_configs(admin, [t.name for t in wanted])
        changes = plan(wanted, effective, overrides)
        await apply(admin, settings, changes)
        await _until_visible(admin, [t.name for t in wanted])
        return changes


async def _until_visible(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Creation is asynchronous: wait until clients can see every topic."""
    deadline = time.monotonic() + VISIBLE_TIMEOUT_S
    while missing := set(names) - set(await admin.list_topics()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics still not visible after {VISIBLE_TIMEOUT_S} s: {missing}")
        await asyncio.sleep(0.1)


async def missing_topics(settings: Settings) -> list[str]:
    """Topics the worker needs that do not exist yet."""
    async with admin_client(settings) as admin:
        present = set(await admin.list_topics())
    return sorted({topic.name for topic in desired_topics(settings)} - present)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for spec in topics.TOPICS:
        parser.add_argument(
            f"--retention-days-{spec.name.replace('.', '-')}",
            dest=spec.name,
            type=int,
            default=spec.retention_days,
            help=f"{spec.purpose} (default {spec.retention_days})",
        )
    arguments = parser.parse_args(argv)
    settings = Settings()
    retention = {spec.name: getattr(arguments, spec.name) for spec in topics.TOPICS}
    try:
        changes = asyncio.run(set_up_topics(settings, desired_topics(settings, retention)))
    except Exception as error:  # noqa: BLE001 - one clear line for the operator
        sys.exit(f"topic set-up failed: {error}")
    for change in changes:
        print(change)  # noqa: T201
    if not changes:
        print("all topics are as wanted; nothing changed")  # noqa: T201


if __name__ == "__main__":
    main()
