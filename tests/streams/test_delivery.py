import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.delivery import (
    Outcome,
    backoff_seconds,
    classify,
    idempotency_key,
    retry_after_seconds,
    split,
)

NOW = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "batch_size", "outcome"),
    [
        (None, 1, Outcome.RETRY),
        (None, 50, Outcome.RETRY),
        (200, 50, Outcome.DELIVERED),
        (201, 1, Outcome.DELIVERED),
        (202, 1, Outcome.DELIVERED),
        (204, 1, Outcome.DELIVERED),
        (299, 1, Outcome.DELIVERED),
        (408, 50, Outcome.RETRY),
        (408, 1, Outcome.RETRY),
        (425, 1, Outcome.RETRY),
        (429, 50, Outcome.RETRY),
        (429, 1, Outcome.RETRY),
        (500, 1, Outcome.RETRY),
        (502, 50, Outcome.RETRY),
        (503, 50, Outcome.RETRY),
        (504, 1, Outcome.RETRY),
        (599, 1, Outcome.RETRY),
        (400, 50, Outcome.SPLIT),
        (400, 2, Outcome.SPLIT),
        (400, 1, Outcome.REJECT),
        (401, 50, Outcome.SPLIT),
        (404, 1, Outcome.REJECT),
        (409, 3, Outcome.SPLIT),
        (413, 50, Outcome.SPLIT),
        (422, 1, Outcome.REJECT),
        (499, 1, Outcome.REJECT),
        (100, 1, Outcome.RETRY),
        (301, 50, Outcome.RETRY),
        (304, 1, Outcome.RETRY),
        (0, 1, Outcome.RETRY),
        (600, 1, Outcome.RETRY),
    ],
)
def test_classify(status: int | None, batch_size: int, outcome: Outcome) -> None:
    assert classify(status, batch_size) is outcome


@pytest.mark.parametrize(
    ("batch", "halves"),
    [
        ([1, 2], ([1], [2])),
        ([1, 2, 3], ([1], [2, 3])),
        ([1, 2, 3, 4], ([1, 2], [3, 4])),
        ((1, 2, 3, 4, 5), ([1, 2], [3, 4, 5])),
    ],
)
def test_split(batch: list[int], halves: tuple[list[int], list[int]]) -> None:
    assert split(batch) == halves


@pytest.mark.parametrize("batch", [[], [1]])
def test_split_needs_two(batch: list[int]) -> None:
    with pytest.raises(ValueError, match="cannot split"):
        split(batch)


def never_jitter() -> float:
    return 1.0


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "random_value", "expected"),
    [
        (0, 0.5, 60.0, 1.0, 0.5),
        (1, 0.5, 60.0, 1.0, 1.0),
        (2, 0.5, 60.0, 1.0, 2.0),
        (6, 0.5, 60.0, 1.0, 32.0),
        (7, 0.5, 60.0, 1.0, 60.0),
        (10_000, 0.5, 60.0, 1.0, 60.0),
        (3, 0.5, 60.0, 0.5, 2.0),
        (3, 0.5, 60.0, 0.0, 0.0),
        (20, 1.0, 30.0, 0.25, 7.5),
    ],
)
def test_backoff_is_capped_exponential_with_full_jitter(
    attempt: int, base: float, cap: float, random_value: float, expected: float
) -> None:
    delay = backoff_seconds(
        attempt, base=base, cap=cap, retry_after=None, now=NOW, random=lambda: random_value
    )
    assert delay == pytest.approx(expected)


@pytest.mark.parametrize(
    ("retry_after", "random_value", "expected"),
    [
        # The server's wish is a floor...
        ("10", 0.0, 10.0),
        ("10", 1.0, 10.0),
        (" 10 ", 0.0, 10.0),
        ("Wed, 01 May 2024 09:30:20 GMT", 0.0, 20.0),
        ("Wed, 01 May 2024 09:30:20 +0000", 0.0, 20.0),
        # ...not a ceiling: a longer jittered backoff stands.
        ("1", 1.0, 4.0),
        # A date in the past asks for nothing.
        ("Wed, 01 May 2024 09:00:00 GMT", 0.5, 2.0),
        ("0", 0.0, 0.0),
        # Capped at 15 minutes, whichever form.
        ("3600", 0.0, 900.0),
        ("99999999999999999999999999", 0.0, 900.0),
        ("Thu, 02 May 2024 09:30:00 GMT", 0.0, 900.0),
        # Garbage is ignored.
        ("soon", 0.5, 2.0),
        ("-5", 0.5, 2.0),
        ("1.5", 0.5, 2.0),
        ("", 0.5, 2.0),
        ("Wed, 99 Foo 2024", 0.5, 2.0),
        ("١٠", 0.5, 2.0),
    ],
)
def test_backoff_honours_retry_after(
    retry_after: str, random_value: float, expected: float
) -> None:
    delay = backoff_seconds(
        2, base=1.0, cap=60.0, retry_after=retry_after, now=NOW, random=lambda: random_value
    )
    assert delay == pytest.approx(expected)


@pytest.mark.parametrize(
    ("header", "now", "expected"),
    [
        (None, NOW, None),
        ("120", NOW, 120.0),
        ("Wed, 01 May 2024 09:31:00 GMT", NOW, 60.0),
        # A naive `now` is UTC; an aware one in another zone is compared as itself.
        ("Wed, 01 May 2024 09:31:00 GMT", NOW.replace(tzinfo=None), 60.0),
        (
            "Wed, 01 May 2024 09:31:00 GMT",
            datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))),
            60.0,
        ),
        # The obsolete RFC 850 and asctime forms HTTP still allows.
        ("Wednesday, 01-May-24 09:31:00 GMT", NOW, 60.0),
        ("Wed May  1 09:31:00 2024", NOW, 60.0),
        ("garbage", NOW, None),
    ],
)
def test_retry_after_seconds(header: str | None, now: datetime, expected: float | None) -> None:
    assert retry_after_seconds(header, now) == expected


def test_backoff_refuses_a_negative_attempt() -> None:
    with pytest.raises(ValueError):
        backoff_seconds(-1, base=1.0, cap=1.0, retry_after=None, now=NOW, random=never_jitter)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        (["a", "b", "c"], ["a", "b", "c"], True),
        (["c", "a", "b"], ["a", "b", "c"], True),
        (["a", "b"], ["a", "b", "c"], False),
        (["ab", "c"], ["a", "bc"], False),
        (["a\nb"], ["a", "b"], False),
        ([], ["a"], False),
    ],
)
def test_idempotency_key(first: list[str], second: list[str], same: bool) -> None:
    assert (idempotency_key(first) == idempotency_key(second)) is same


def test_idempotency_key_is_sha256_hex_and_takes_any_iterable() -> None:
    key = idempotency_key(event_id for event_id in ("b", "a"))
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key == idempotency_key(["a", "b"])
    assert key != hashlib.sha256(b"ab").hexdigest()
