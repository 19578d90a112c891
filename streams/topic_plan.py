"""Which topics the pipeline needs, with which settings, and what to change to get there."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas import topics
from schemas.settings import Settings

TABLE_NAMES = ("record-states",)


@dataclass(frozen=True)
class DesiredTopic:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    topic: str
    action: str  # "create" or "alter"
    configs: dict[str, str]
    partitions: int = 0


def desired_topics(
    settings: Settings, retention_days: Mapping[str, int] | None = None
) -> list[DesiredTopic]:
    """Every topic with explicit partitions, retention and clean-up policy."""
    retention = {spec.name: spec.retention_days for spec in topics.TOPICS} | dict(
        retention_days or {}
    )
    wanted = [
        DesiredTopic(
            settings.topic(name),
            settings.topic_partitions,
            {"cleanup.policy": "delete", "retention.ms": str(days * topics.DAY_MS)},
        )
        for name, days in retention.items()
    ]
    # Table changelogs keep the latest state per record for good: compacted, no expiry.
    wanted += [
        DesiredTopic(
            changelog_topic(settings, table),
            settings.topic_partitions,
            {"cleanup.policy": "compact", "retention.ms": "-1"},
        )
        for table in TABLE_NAMES
    ]
    return wanted


def changelog_topic(settings: Settings, table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


def plan(wanted: list[DesiredTopic], existing: Mapping[str, Mapping[str, str]]) -> list[Change]:
    """Create what is missing; alter only the settings that differ."""
    changes = []
    for topic in wanted:
        current = existing.get(topic.name)
        if current is None:
            changes.append(Change(topic.name, "create", topic.configs, topic.partitions))
            continue
        differing = {k: v for k, v in topic.configs.items() if current.get(k) != v}
        if differing:
            changes.append(Change(topic.name, "alter", differing))
    return changes
