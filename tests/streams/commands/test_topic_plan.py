import pytest

from schemas import topics
from schemas.settings import Settings
from streams.commands.topic_plan import Change, DesiredTopic, changelog_topic, desired_topics, plan

DAY_MS = 24 * 60 * 60 * 1000
SETTINGS = Settings(topic_prefix="p.", topic_partitions=6, app_id="p.worker")


def by_name(wanted: list[DesiredTopic]) -> dict[str, DesiredTopic]:
    return {topic.name: topic for topic in wanted}


def test_every_topic_has_explicit_partitions_retention_and_clean_up() -> None:
    wanted = by_name(desired_topics(SETTINGS))
    assert wanted == {
        "p.zoho.webhooks.raw": DesiredTopic(
            "p.zoho.webhooks.raw",
            6,
            {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
        ),
        "p.zoho.webhooks.replay": DesiredTopic(
            "p.zoho.webhooks.replay",
            6,
            {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
        ),
        "p.zoho.webhooks.invalid": DesiredTopic(
            "p.zoho.webhooks.invalid",
            6,
            {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
        ),
        "p.cdp.conversions": DesiredTopic(
            "p.cdp.conversions",
            6,
            {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
        ),
        "p.cdp.conversions.deadletter": DesiredTopic(
            "p.cdp.conversions.deadletter",
            6,
            {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
        ),
        "p.cdp.conversions.delivered": DesiredTopic(
            "p.cdp.conversions.delivered",
            6,
            {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
        ),
        "p.worker-record-states-changelog": DesiredTopic(
            "p.worker-record-states-changelog",
            6,
            {"cleanup.policy": "compact", "retention.ms": "-1"},
        ),
        # Read whole by the sweep's leader: one partition, the latest mark per key.
        "p.zoho.sweep.marks": DesiredTopic(
            "p.zoho.sweep.marks", 1, {"cleanup.policy": "compact", "retention.ms": "-1"}
        ),
        # One partition, so every process reads every source in write order.
        "p.cdp.sources": DesiredTopic(
            "p.cdp.sources", 1, {"cleanup.policy": "compact", "retention.ms": "-1"}
        ),
    }


def test_the_table_changelog_is_compacted_and_never_expires() -> None:
    [changelog] = [t for t in desired_topics(SETTINGS) if t.name.endswith("-changelog")]
    assert changelog.name == changelog_topic(SETTINGS, "record-states")
    assert changelog.configs == {"cleanup.policy": "compact", "retention.ms": "-1"}


def test_retention_overrides_change_only_their_topic() -> None:
    default = by_name(desired_topics(SETTINGS))
    changed = by_name(desired_topics(SETTINGS, {topics.RAW: 90, topics.REPLAY: 3}))
    assert changed["p.zoho.webhooks.raw"].configs["retention.ms"] == str(90 * DAY_MS)
    assert changed["p.zoho.webhooks.replay"].configs["retention.ms"] == str(3 * DAY_MS)
    untouched = set(default) - {"p.zoho.webhooks.raw", "p.zoho.webhooks.replay"}
    assert {name: changed[name] for name in untouched} == {
        name: default[name] for name in untouched
    }


def test_nothing_exists_so_everything_is_created() -> None:
    wanted = desired_topics(SETTINGS)
    changes = plan(wanted, {})
    assert changes == [Change(t.name, "create", t.configs, t.partitions) for t in wanted]


def test_only_the_missing_topics_are_created() -> None:
    wanted = desired_topics(SETTINGS)
    existing = {t.name: dict(t.configs) for t in wanted if "webhooks" in t.name}
    created = [change.topic for change in plan(wanted, existing)]
    assert created == [
        "p.cdp.conversions",
        "p.cdp.conversions.deadletter",
        "p.cdp.conversions.delivered",
        "p.worker-record-states-changelog",
        "p.zoho.sweep.marks",
        "p.cdp.sources",
    ]


def test_nothing_changes_when_every_topic_is_as_wanted() -> None:
    wanted = desired_topics(SETTINGS)
    # The broker reports every effective setting, not only the ones the plan manages.
    existing = {t.name: dict(t.configs) | {"min.insync.replicas": "1"} for t in wanted}
    assert plan(wanted, existing) == []


def test_only_the_differing_settings_of_a_topic_are_altered() -> None:
    wanted = desired_topics(SETTINGS)
    existing = {t.name: dict(t.configs) for t in wanted}
    existing["p.zoho.webhooks.raw"] = {
        "cleanup.policy": "delete",
        "retention.ms": str(7 * DAY_MS),
        "min.insync.replicas": "2",
    }
    overrides = {
        "p.zoho.webhooks.raw": {"retention.ms": str(7 * DAY_MS), "min.insync.replicas": "2"}
    }
    [change] = plan(wanted, existing, overrides)
    assert change.topic == "p.zoho.webhooks.raw" and change.action == "alter"
    assert change.configs == {"retention.ms": str(30 * DAY_MS)}
    assert change.was == {"retention.ms": str(7 * DAY_MS)}
    # Kafka replaces a topic's whole set of settings: what an operator set stays.
    assert change.overrides == {
        "retention.ms": str(30 * DAY_MS),
        "min.insync.replicas": "2",
        "cleanup.policy": "delete",
    }


def test_altering_a_changelog_keeps_it_compacted() -> None:
    wanted = desired_topics(SETTINGS)
    existing = {t.name: dict(t.configs) for t in wanted}
    name = "p.worker-record-states-changelog"
    # Created by Faust before the topic set-up ran: compacted, broker-default retention.
    existing[name] = {"cleanup.policy": "compact", "retention.ms": str(7 * DAY_MS)}
    [change] = plan(wanted, existing, {name: {"cleanup.policy": "compact"}})
    assert change.configs == {"retention.ms": "-1"}
    assert change.overrides == {"cleanup.policy": "compact", "retention.ms": "-1"}


def test_a_changelog_that_lost_compaction_gets_it_back() -> None:
    wanted = desired_topics(SETTINGS)
    existing = {t.name: dict(t.configs) for t in wanted}
    name = "p.worker-record-states-changelog"
    existing[name] = {"cleanup.policy": "delete", "retention.ms": "-1"}
    [change] = plan(wanted, existing)
    assert change.configs == {"cleanup.policy": "compact"}


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            Change("t", "create", {"retention.ms": "1", "cleanup.policy": "delete"}, 3),
            "create t partitions=3 cleanup.policy=delete retention.ms=1",
        ),
        (
            Change("t", "alter", {"retention.ms": "2"}, was={"retention.ms": "1"}),
            "alter t retention.ms 1 -> 2",
        ),
        (
            Change("t", "alter", {"cleanup.policy": "compact"}),
            "alter t cleanup.policy (unset) -> compact",
        ),
    ],
)
def test_what_the_command_prints(change: Change, line: str) -> None:
    assert str(change) == line
