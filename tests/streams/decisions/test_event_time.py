from datetime import UTC, datetime, timedelta

import pytest

from streams.decisions.event_time import choose_event_time, is_late

RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CHANGED = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("parameters", "changed_at", "expected"),
    [
        # The timeline's time wins over everything.
        ({"modified_time": "2024-05-01T10:00:00Z"}, CHANGED, (CHANGED, "timeline")),
        (
            {"modified_time": "2024-05-01T12:00:00+02:00"},
            None,
            (datetime(2024, 5, 1, 10, 0, tzinfo=UTC), "modified_time"),
        ),
        ({"modified_time": "last tuesday"}, None, (RECEIVED, "received")),
        ({"modified_time": ""}, None, (RECEIVED, "received")),
        ({}, None, (RECEIVED, "received")),
        # Zoho's clock ahead of ours: never an event after it arrived.
        ({"modified_time": "2024-05-01T12:05:00Z"}, None, (RECEIVED, "modified_time")),
    ],
)
def test_the_best_known_time(
    parameters: dict[str, str], changed_at: datetime | None, expected: tuple[datetime, str]
) -> None:
    assert choose_event_time(parameters, RECEIVED, changed_at) == expected


def test_late_is_older_than_the_limit() -> None:
    week = timedelta(days=7)
    assert not is_late(RECEIVED - week, RECEIVED, week)
    assert is_late(RECEIVED - week - timedelta(seconds=1), RECEIVED, week)
    assert not is_late(RECEIVED, RECEIVED, week)
