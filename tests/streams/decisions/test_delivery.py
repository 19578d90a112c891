import hashlib

import pytest

from streams.decisions.delivery import Outcome, classify, idempotency_key, split


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
