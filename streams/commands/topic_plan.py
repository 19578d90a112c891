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
    configs: dict[str, str]  # what changes
    partitions: int = 0
    was: dict[str, str] = field(default_factory=dict)  # an alteration's current values
    # Kafka's AlterConfigs replaces every setting made on a topic: an alteration sends the
    # topic's whole set, or the settings it leaves out (compaction, say) fall back to the
    # broker's defaults.
    overrides: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.action == "create":
            settings = " ".join(f"{k}={v}" for k, v in sorted(self.configs.items()))
            return f"create {self.topic} partitions={self.partitions} {settings}"
        changes = ", ".join(
            f"{k} {self.was.get(k, '(unset)')} -> {v}" for k, v in sorted(self.configs.items())
        )
        return f"alter {self.topic} {changes}"


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
    wanted.append(
        DesiredTopic(
            settings.topic(topics.SWEEP_MARKS),
            1,
            {"cleanup.policy": "compact", "retention.ms": "-1"},
        )
    )
    # One partition: every process reads all sources, in the order they were written.
    wanted.append(
        DesiredTopic(
            settings.topic(topics.SOURCES), 1, {"cleanup.policy": "compact", "retention.ms": "-1"}
        )
    )
    return wanted


def changelog_topic(settings: Settings, table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


def plan(
    wanted: list[DesiredTopic],
    existing: Mapping[str, Mapping[str, str]],
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Change]:
    """Create what is missing; alter only the topics whose settings differ.

    `existing` holds each present topic's effective settings, `overrides` the ones set
    on the topic itself, which an alteration keeps.
    """
    changes = []
    for topic in wanted:
        current = existing.get(topic.name)
        if current is None:
            changes.append(Change(topic.name, "create", dict(topic.configs), topic.partitions))
            continue
        differing = {k: v for k, v in topic.configs.items() if current.get(k) != v}
        if differing:
            kept = dict((overrides or {}).get(topic.name, {}))
            changes.append(
                Change(
                    topic.name,
                    "alter",
                    differing,
                    was={k: current[k] for k in differing if k in current},
                    overrides=kept | topic.configs,
                )
            )
    return changes
