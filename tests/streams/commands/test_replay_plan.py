from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.envelope import RawEnvelope, source_of_key
from streams.commands.replay_plan import (
    BadSelection,
    Selection,
    Tally,
    parse_offsets,
    parse_time,
    replayed,
    scan_range,
    summary_text,
)

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("7d", NOW - timedelta(days=7)),
        ("1w", NOW - timedelta(weeks=1)),
        ("45s", NOW - timedelta(seconds=45)),
        (" 2 h ", NOW - timedelta(hours=2)),
        ("0m", NOW),
        ("2024-05-01T13:00:00Z", datetime(2024, 5, 1, 13, tzinfo=UTC)),
        ("2024-05-01T13:00:00+02:00", datetime(2024, 5, 1, 11, tzinfo=UTC)),
        ("2024-05-01T13:00", datetime(2024, 5, 1, 13, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_or_back_from_now(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


def test_an_explicit_offset_is_kept() -> None:
    parsed = parse_time("2024-05-01T13:00:00+02:00", NOW)
    assert parsed.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("text", ["", "yesterday", "2x", "-2h", "2024-13-01", "h2"])
def test_unreadable_times_are_refused_with_the_forms_that_work(text: str) -> None:
    with pytest.raises(BadSelection, match=r"ISO 8601 .*\(30m, 2h, 7d\)"):
        parse_time(text, NOW)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {}),
        (["120"], {None: 120}),
        (["0:5", "2:17"], {0: 5, 2: 17}),
        (["100", "1:3"], {None: 100, 1: 3}),
    ],
)
def test_offsets_are_per_partition_or_for_all(
    values: list[str], expected: dict[int | None, int]
) -> None:
    assert parse_offsets(values, "--from-offset") == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["a"], "--from-offset 'a': expected PARTITION:OFFSET or OFFSET"),
        (["1:-2"], "expected PARTITION:OFFSET"),
        (["0:1", "0:2"], "given twice for partition 0"),
        (["1", "2"], "given twice for every partition"),
    ],
)
def test_bad_offsets_are_refused(values: list[str], message: str) -> None:
    with pytest.raises(BadSelection, match=message):
        parse_offsets(values, "--from-offset")


T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("selection", "source_id", "at", "expected"),
    [
        (Selection(), "shop", T0, True),
        (Selection(), None, None, True),
        (Selection(sources=frozenset({"shop"})), "shop", T0, True),
        (Selection(sources=frozenset({"shop"})), "yen", T0, False),
        (Selection(sources=frozenset({"shop"})), None, T0, False),
        (Selection(since=T0), "shop", T0, True),
        (Selection(since=T0), "shop", T0 - timedelta(microseconds=1), False),
        (Selection(until=T1), "shop", T1 - timedelta(microseconds=1), True),
        (Selection(until=T1), "shop", T1, False),
        (Selection(since=T0, until=T1), "shop", None, False),
        (Selection(since=T0, until=T1), "shop", T0 + timedelta(minutes=30), True),
        (
            Selection(sources=frozenset({"shop", "yen"}), since=T0, until=T1),
            "yen",
            T0 + timedelta(minutes=1),
            True,
        ),
        # Zoho's own time zone does not matter: times compare as instants.
        (
            Selection(since=T0),
            "shop",
            datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            True,
        ),
    ],
)
def test_selection_by_source_and_time(
    selection: Selection, source_id: str | None, at: datetime | None, expected: bool
) -> None:
    assert selection.matches(source_id, at) is expected


@pytest.mark.parametrize(("since", "until"), [(T1, T0), (T0, T0)])
def test_an_empty_window_is_refused(since: datetime, until: datetime) -> None:
    with pytest.raises(BadSelection, match="is not before --until"):
        Selection(since=since, until=until)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"shop:123", "shop"),
        (b"shop:a:b", "shop"),
        (b"poison", None),
        (b"", None),
        (None, None),
    ],
)
def test_the_source_of_a_key(key: bytes | None, expected: str | None) -> None:
    assert source_of_key(key) == expected


def test_a_replayed_envelope_is_the_original_with_the_mark() -> None:
    original = RawEnvelope(
        envelope_id="e-1",
        source_id="shop",
        received_at=T0,
        parameters={"lead_id": "1", "lead_status": "Contacted"},
    )
    again = replayed(original, T1)
    assert again.replayed_at == T1
    assert again.model_dump(exclude={"replayed_at"}) == original.model_dump(exclude={"replayed_at"})
    assert original.replayed_at is None
    assert RawEnvelope.model_validate_json(again.model_dump_json()) == again


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, range(10, 100)),
        ({"from_offsets": {None: 20}}, range(20, 100)),
        ({"from_offsets": {None: 5}}, range(10, 100)),  # already deleted by retention
        ({"to_offsets": {None: 49}}, range(10, 50)),  # --to-offset is inclusive
        ({"to_offsets": {None: 500}}, range(10, 100)),  # never past the end seen at start
        ({"from_offsets": {None: 20, 1: 30}}, range(30, 100)),  # the named partition wins
        ({"from_offsets": {0: 30}}, range(10, 10)),  # offsets name another partition only
        ({"from_offsets": {0: 30, None: 40}}, range(40, 100)),
        ({"to_offsets": {1: 60}, "from_offsets": {0: 30}}, range(10, 61)),
        ({"time_start": 40, "time_stop": 70}, range(40, 70)),
        ({"time_start": 40, "from_offsets": {None: 50}}, range(50, 100)),
        ({"time_stop": 70, "to_offsets": {None: 59}}, range(10, 60)),
        ({"time_start": 100}, range(100, 100)),  # nothing at or after --since
        ({"from_offsets": {None: 80}, "to_offsets": {None: 30}}, range(80, 80)),
    ],
)
def test_the_scan_range_of_partition_1(kwargs: dict[str, object], expected: range) -> None:
    arguments: dict[str, object] = {"from_offsets": {}, "to_offsets": {}} | kwargs
    assert scan_range(1, 10, 100, **arguments) == expected  # type: ignore[arg-type]


def test_the_summary_counts_what_was_replayed_per_source() -> None:
    tally = Tally(
        scanned=12, replayed=7, not_selected=4, undecodable=1, by_source=Counter(shop=5, yen=2)
    )
    text = summary_text(
        tally,
        source_topic="zoho.webhooks.raw",
        target_topic="zoho.webhooks.replay",
        partitions=3,
        seconds=2.0,
        dry_run=False,
    )
    assert text.splitlines() == [
        "Replay of zoho.webhooks.raw to zoho.webhooks.replay",
        "  scanned              12  messages in 3 partition(s)",
        "  replayed              7  (shop: 5, yen: 2)",
        "  not selected          4  outside the source or time filter",
        "  undecodable           1  selected, but no envelope to replay",
        "  took 2.0 s (6 messages/s)",
    ]


def test_a_dry_run_summary_says_nothing_was_sent() -> None:
    text = summary_text(
        Tally(scanned=3, replayed=2, not_selected=0, duplicates=1, by_source=Counter(shop=2)),
        source_topic="zoho.webhooks.invalid",
        target_topic="zoho.webhooks.replay",
        partitions=1,
        seconds=0.0,
        dry_run=True,
    )
    assert text.startswith("Dry run: nothing was sent. Replay of zoho.webhooks.invalid")
    assert "  would replay          2  (shop: 2)" in text
    assert "  duplicates            1  same envelope parked more than once" in text
    assert "undecodable" not in text
    assert "(0 messages/s)" in text
