"""How long to wait before trying a remote service again: the CDP and Zoho alike."""

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_AFTER_CAP_S = 15 * 60
# Beyond this the exponential term exceeds any sensible cap anyway.
_MAX_EXPONENT = 64


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: str | None,
    now: datetime,
    random: Callable[[], float],
) -> float:
    """Capped exponential backoff with full jitter, never sooner than Retry-After asks.

    `attempt` counts from 0; `random` returns a float in [0, 1).
    """
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, not {attempt}")
    jittered = min(cap, base * 2.0 ** min(attempt, _MAX_EXPONENT)) * random()
    asked = retry_after_seconds(retry_after, now)
    return max(jittered, asked) if asked is not None else jittered


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """The Retry-After header (delta-seconds or HTTP-date) as seconds from `now`, capped
    at 15 minutes; None when absent or unreadable."""
    if header is None:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        # Long digit strings are past the cap anyway (and int() refuses huge ones).
        delta = int(text) if len(text) <= 9 else RETRY_AFTER_CAP_S
        return float(min(delta, RETRY_AFTER_CAP_S))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    seconds = (_aware(when) - _aware(now)).total_seconds()
    return min(max(seconds, 0.0), float(RETRY_AFTER_CAP_S))


def _aware(moment: datetime) -> datetime:
    # HTTP dates are GMT; a naive `now` is taken to be UTC as well.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
