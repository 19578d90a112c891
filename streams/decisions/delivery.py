"""What the CDP sink does with an answer: deliver, retry, split the batch or reject."""

import hashlib
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import TypeVar

T = TypeVar("T")

# Timeouts, "too early" and rate limits are the server asking to be tried again.
_RETRYABLE_4XX = frozenset({408, 425, 429})


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


def idempotency_key(event_ids: Iterable[str]) -> str:
    """The same batch, in any order, gets the same key."""
    digest = hashlib.sha256()
    for event_id in sorted(event_ids):
        encoded = event_id.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()
