"""The spool's store on a real SQLite file: order, restart, cap, and what a crash leaves."""

import shutil
from pathlib import Path

import pytest

from ingress.spool import DATABASE, SpoolFull, SpoolInUse, SpoolStore, acked_prefix


def values(store: SpoolStore) -> list[bytes]:
    return [record.value for record in store.head(1000)]


def test_records_come_back_in_arrival_order_and_leave_when_deleted(tmp_path: Path) -> None:
    store = SpoolStore(tmp_path, max_bytes=10_000)
    for number in range(5):
        store.append("raw", b"shop:1", f"webhook {number}".encode(), now=100.0 + number)
    head = store.head(2)
    assert [record.value for record in head] == [b"webhook 0", b"webhook 1"]
    assert head[0].topic == "raw" and head[0].key == b"shop:1"
    assert store.stats.oldest_at == 100.0

    store.delete([record.seq for record in head])
    assert values(store) == [b"webhook 2", b"webhook 3", b"webhook 4"]
    assert store.stats.depth == 3 and store.stats.oldest_at == 102.0
    assert store.stats.oldest_age_s(now=110.0) == 8.0
    store.close()


def test_a_reopened_spool_holds_what_was_appended(tmp_path: Path) -> None:
    store = SpoolStore(tmp_path, max_bytes=10_000)
    for number in range(3):
        store.append("raw", b"k", f"webhook {number}".encode())
    store.delete([store.head(1)[0].seq])
    store.close()

    reopened = SpoolStore(tmp_path, max_bytes=10_000)
    assert values(reopened) == [b"webhook 1", b"webhook 2"]
    assert reopened.stats.depth == 2
    assert reopened.stats.size == 2 * len(b"k" + b"webhook 1")
    # New records go after the old ones, even after the oldest left.
    reopened.append("raw", b"k", b"webhook 3")
    assert values(reopened) == [b"webhook 1", b"webhook 2", b"webhook 3"]
    reopened.close()


def test_the_spool_counts_its_records_per_source_through_deletes_and_a_restart(
    tmp_path: Path,
) -> None:
    store = SpoolStore(tmp_path, max_bytes=10_000)
    for key in (b"shop:1", b"shop:2", b"yen:1", b"shop:1"):
        store.append("raw", key, b"webhook")
    assert store.stats.by_source == {"shop": 3, "yen": 1}
    store.delete([record.seq for record in store.head(3)])  # shop:1, shop:2, yen:1
    assert store.stats.by_source == {"shop": 1}
    store.append("raw", b"yen:2", b"webhook")
    store.close()

    reopened = SpoolStore(tmp_path, max_bytes=10_000)
    assert reopened.stats.by_source == {"shop": 1, "yen": 1}
    reopened.delete([record.seq for record in reopened.head(10)])
    assert reopened.stats.by_source == {} and reopened.stats.depth == 0
    reopened.close()


def test_a_full_spool_refuses_and_takes_again_once_drained(tmp_path: Path) -> None:
    store = SpoolStore(tmp_path, max_bytes=25)
    store.append("raw", b"k", b"0123456789")  # 11 bytes
    store.append("raw", b"k", b"0123456789")  # 22
    with pytest.raises(SpoolFull, match="spool holds 22 of 25 bytes"):
        store.append("raw", b"k", b"0123")
    assert store.stats.depth == 2
    store.delete([store.head(1)[0].seq])
    store.append("raw", b"k", b"0123")
    assert store.stats.size == 16
    store.close()


def test_one_directory_serves_one_ingress(tmp_path: Path) -> None:
    store = SpoolStore(tmp_path, max_bytes=100)
    with pytest.raises(SpoolInUse, match="each replica needs a directory of its own"):
        SpoolStore(tmp_path, max_bytes=100)
    store.close()
    SpoolStore(tmp_path, max_bytes=100).close()


def crash_image(store_dir: Path, image: Path) -> Path:
    """The files as a crash would leave them: the live WAL, never checkpointed."""
    image.mkdir()
    for name in (DATABASE, f"{DATABASE}-wal"):
        shutil.copyfile(store_dir / name, image / name)
    return image / f"{DATABASE}-wal"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        pytest.param(lambda data: data[:-100], [b"first"], id="last write cut short"),
        pytest.param(
            lambda data: data[:-4096] + b"\0" * 4096, [b"first"], id="last page never written"
        ),
        pytest.param(
            lambda data: data[:-50] + bytes(b ^ 0xFF for b in data[-50:]), [b"first"], id="torn"
        ),
        pytest.param(
            lambda data: data + b"\x37" * 5000, [b"first", b"second"], id="garbage after the end"
        ),
    ],
)
def test_a_write_torn_by_a_crash_is_not_read_as_a_record(
    tmp_path: Path, damage: object, expected: list[bytes]
) -> None:
    live = tmp_path / "live"
    store = SpoolStore(live, max_bytes=1_000_000)
    store.append("raw", b"k", b"first")
    store.append("raw", b"k", b"second")
    wal = crash_image(live, tmp_path / "crashed")
    store.close()
    assert callable(damage)
    wal.write_bytes(damage(wal.read_bytes()))

    survivor = SpoolStore(tmp_path / "crashed", max_bytes=1_000_000)
    # The damaged commit is gone whole; nothing before it is touched or misread.
    assert values(survivor) == expected
    assert survivor.stats.depth == len(expected)
    survivor.close()


def test_the_intact_image_keeps_both_records(tmp_path: Path) -> None:
    """Control for the torn-write test: the same image undamaged keeps the last record,
    so a missing "second" above is the damage, not the copy."""
    live = tmp_path / "live"
    store = SpoolStore(live, max_bytes=1_000_000)
    store.append("raw", b"k", b"first")
    store.append("raw", b"k", b"second")
    crash_image(live, tmp_path / "crashed")
    store.close()
    survivor = SpoolStore(tmp_path / "crashed", max_bytes=1_000_000)
    assert values(survivor) == [b"first", b"second"]
    survivor.close()


@pytest.mark.parametrize(
    ("outcomes", "prefix"),
    [
        ([], 0),
        ([None, None], 2),
        ([None, TimeoutError(), None], 1),
        ([TimeoutError(), None], 0),
    ],
)
def test_only_an_unbroken_run_of_acks_leaves_the_spool(
    outcomes: list[BaseException | None], prefix: int
) -> None:
    assert acked_prefix(outcomes) == prefix
