"""Which record states are old enough to forget."""

from datetime import UTC, datetime, timedelta

import pytest

from streams.decisions.expiry import cutoff, expired
from streams.decisions.status import RecordState

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BEFORE = cutoff(NOW, 400)


def seen(at: datetime | None) -> RecordState:
    return RecordState(last_status="Contacted", last_seen_at=at, emitted=("ConvertedLead",))


def test_the_cutoff_is_the_retention_back_from_now() -> None:
    assert cutoff(NOW, 400) == NOW - timedelta(days=400)
    assert cutoff(NOW, 0.5) == NOW - timedelta(hours=12)


@pytest.mark.parametrize(
    ("state", "is_expired"),
    [
        (seen(NOW - timedelta(days=401)), True),
        (seen(NOW - timedelta(days=400, seconds=1)), True),
        (seen(NOW - timedelta(days=400)), False),  # exactly at the cutoff: kept
        (seen(NOW - timedelta(days=1)), False),
        (seen(None), False),  # nothing to age it by
        (RecordState.empty(), False),
    ],
)
def test_a_state_expires_once_its_last_webhook_is_older_than_the_cutoff(
    state: RecordState, is_expired: bool
) -> None:
    assert expired(state, BEFORE) is is_expired
