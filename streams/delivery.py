"""What the CDP sink does with an answer: deliver, retry, split the batch or reject."""

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import TypeVar

T = TypeVar("T")

RETRY_AFTER_CAP_S = 15 * 60
# Timeouts, "too early" and rate limits are the server asking to be tried again.
_RETRYABLE_4XX = frozenset({408, 425, 429})
# Beyond this the exponential term exceeds any sensible cap anyway.
_MAX_EXPONENT = 64


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    SPLIT = "split"
    REJECT = "reject"


def classify(status: int | None, batch_size: int) -> Outcome:
    """None is no answer at all (timeout, connection error)."""
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if 400 <= status < 500 and status not in _RETRYABLE_4XX:
        # A client error is about some event in the batch: halve until it stands alone.
        return Outcome.SPLIT if batch_size > 1 else Outcome.REJECT
    # 5xx, the retryable 4xx, and 1xx/3xx, which a JSON API should never answer.
    return Outcome.RETRY


def split(batch: Sequence[T]) -> tuple[list[T], list[T]]:
    """Two halves; the first is the smaller when the size is odd."""
    if len(batch) < 2:
        # Splitting one event would loop forever without making progress.
        raise ValueError(f"cannot split a batch of {len(batch)}")
    middle = len(batch) // 2
    return list(batch[:middle]), list(batch[middle:])


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


def idempotency_key(event_ids: Iterable[str]) -> str:
    """The same batch, in any order, gets the same key."""
    digest = hashlib.sha256()
    for event_id in sorted(event_ids):
        encoded = event_id.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()
