from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.decisions.retry import backoff_seconds, retry_after_seconds

NOW = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


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
