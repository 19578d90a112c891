"""Which record states are old enough to forget."""

from datetime import datetime, timedelta

from streams.decisions.status import RecordState


def cutoff(now: datetime, retention_days: float) -> datetime:
    """States last touched before this instant expire."""
    return now - timedelta(days=retention_days)


def expired(state: RecordState, before: datetime) -> bool:
    """A state expires once its record's latest webhook was received before `before`.

    A state without a time is kept: there is nothing to age it by.
    """
    return state.last_seen_at is not None and state.last_seen_at < before
